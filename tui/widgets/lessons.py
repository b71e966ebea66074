"""Lessons: the assignment's questions answered with the numbers of the model on screen.

`build_lessons(summary, run, results)` is a pure function (tested on its own); the pane just
shows its output. Each lesson takes its figures from the layer table (summary.json or the
ONNX node table) and the run record, so the explanation changes with the model.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from engine.inspect import ASSIGNMENT_PREPROCESSING
from tui.widgets.layer_table import display_name

CONV = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv")
POOL = ("MaxPooling2D", "AveragePooling2D", "MaxPool", "AveragePool")


def _n(value: float) -> str:
    return f"{int(value):,}"


def _spatial(row: dict[str, Any]) -> tuple[int, int, int] | None:
    """(H, W, C) of a row's 4-D output, whichever layout (ONNX rows are NCHW)."""
    shape = row.get("output_shape")
    if not isinstance(shape, list) or len(shape) != 4 or isinstance(shape[0], list):
        return None
    dims = shape[1:]
    if any(d is None for d in dims):
        return None
    if row.get("format") == "onnx":
        c, h, w = dims
    else:
        h, w, c = dims
    return int(h), int(w), int(c)


def _kernel_stride(row: dict[str, Any]) -> tuple[int, int] | None:
    cfg = row.get("config") or {}
    kind = row.get("type")
    if kind in CONV or kind in POOL:
        k: Any = cfg.get("kernel_size") or cfg.get("kernel_shape") or cfg.get("pool_size")
        s: Any = cfg.get("strides")
        if k is None and row.get("format") == "onnx":
            w = next((w["shape"] for w in row.get("weights") or [] if len(w["shape"]) == 4), None)
            k = w[2] if w else 1
        k0 = int(k[0] if isinstance(k, list) else (k or 1))
        if s is None:
            s = k if kind in POOL and row.get("format") != "onnx" else 1
        s0 = int(s[0] if isinstance(s, list) else s)
        return k0, s0
    return None


def receptive_fields(summary: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Layer name → (receptive field in input pixels, jump), along the graph's inbound edges.

    rf_out = rf_in + (K − 1)·jump_in and jump_out = jump_in·S; merges take the largest field,
    so a ResNet's 1×1 shortcut convolutions do not inflate it.
    """
    fields: dict[str, tuple[int, int]] = {}
    for row in summary.get("layers", []):
        inbound = [fields[i] for i in row.get("inbound") or [] if i in fields]
        rf, jump = max(inbound) if inbound else (1, 1)
        ks = _kernel_stride(row)
        if ks is not None:
            k, s = ks
            rf, jump = rf + (k - 1) * jump, jump * s
        fields[str(row.get("name"))] = (rf, jump)
    return fields


def build_lessons(
    summary: dict[str, Any],
    run: dict[str, Any] | None = None,
    results: dict[str, Any] | None = None,
) -> list[tuple[str, Text]]:
    """(title, text) for each lesson that applies to this model."""
    layers = summary.get("layers", [])
    totals = summary.get("totals", {})
    model_info = (run or {}).get("model") or {}
    lessons: list[tuple[str, Text]] = []
    convs = [r for r in layers if r.get("type") in CONV and int(r.get("params") or 0) > 0]
    dense = [
        r
        for r in layers
        if r.get("type") in ("Dense", "Gemm", "MatMul") and int(r.get("params") or 0) > 0
    ]
    input_shape = next(
        (_spatial(r) for r in layers if r.get("type") in ("InputLayer", "Input")), None
    )
    if input_shape is None and convs:
        first_in = convs[0].get("input_shape")
        if isinstance(first_in, list) and len(first_in) == 4:
            dims = first_in[1:]
            input_shape = (
                (int(dims[1]), int(dims[2]), int(dims[0]))
                if convs[0].get("format") == "onnx"
                else (int(dims[0]), int(dims[1]), int(dims[2]))
            )

    # 1. Parameter sharing: the first convolution against a dense layer doing the same job.
    if convs and input_shape:
        first = convs[0]
        out = _spatial(first)
        h, w, c = input_shape
        if out:
            ho, wo, co = out
            p = int(first["params"])
            pixels = h * w * c
            dense_same = pixels * ho * wo * co + ho * wo * co
            cfg = first.get("config") or {}
            has_bias = (
                cfg.get("use_bias", True)
                if first.get("format") != "onnx"
                else len(first.get("weights") or []) > 1
            )
            per_filter = (p - co) // co if has_bias else p // max(co, 1)
            ks = _kernel_stride(first)
            k = ks[0] if ks else 3
            t = Text()
            t.append(f"{display_name(first)} has ")
            t.append(f"{_n(p)} parameters", style="bold")
            t.append(
                f": {co} filters of {_n(per_filter)} weights{' (+ a bias each)' if has_bias else ''}. "
                f"Each filter slides over the whole {h}×{w} image and is reused at all {_n(ho * wo)} "
                f"output positions — a {k}×{k} filter has {k * k} weights per channel wherever it looks. "
                + ("" if k == 3 else "(a 3×3 one, 9) ")
                + f"A dense layer making the same {ho}×{wo}×{co} = {_n(ho * wo * co)} "
                f"outputs from the {_n(pixels)} input numbers would need "
            )
            t.append(f"{_n(dense_same)} parameters", style="bold red")
            t.append(
                f" ({dense_same / max(p, 1):,.0f}× more), and would have to learn an edge detector "
                "separately for every position. Sharing is why the same pattern is recognised "
                "anywhere (translation invariance) and why CNNs beat MLPs on images: the assignment's "
                "simple CNN reached 69.37 % against the best MLP's 56.2 %."
            )
            lessons.append(("Why CNNs beat MLPs: parameter sharing", t))

    # 2. Where the parameters are.
    total = int(totals.get("total") or 0)
    if total and dense and convs:
        conv_p = sum(int(r["params"]) for r in convs)
        dense_p = sum(int(r["params"]) for r in dense)
        biggest = max(dense, key=lambda r: int(r["params"]))
        t = Text()
        t.append(
            f"Convolutions hold {_n(conv_p)} parameters ({conv_p / total * 100:.1f} %), dense layers "
        )
        t.append(f"{_n(dense_p)} ({dense_p / total * 100:.1f} %)", style="bold")
        t.append(
            f". The largest single layer is {display_name(biggest)} with {_n(biggest['params'])}"
        )
        fan_in = biggest.get("input_shape")
        if isinstance(fan_in, list) and fan_in and isinstance(fan_in[-1], int):
            t.append(f" (every one of its {_n(fan_in[-1])} inputs connects to every unit)")
        if dense_p > conv_p:
            t.append(
                ". Convolutions do most of the computing with few weights; the dense layers on the "
                "flattened map hold most of the weights — and most of the room to overfit."
            )
        else:
            t.append(
                ". Here the convolutions hold almost everything: global average pooling before the "
                "head shrinks each feature map to one number, so the dense part stays small."
            )
        lessons.append(("Where the parameters are", t))

    # 3. Feature hierarchy: receptive fields grow with depth.
    if convs:
        fields = receptive_fields(summary)
        picks = (
            convs if len(convs) <= 6 else [convs[round(i * (len(convs) - 1) / 5)] for i in range(6)]
        )
        t = Text()
        t.append(
            "Each unit of a deeper layer sees a larger patch of the input (its receptive field):\n"
        )
        img = input_shape[0] if input_shape else None
        for r in picks:
            rf, jump = fields.get(str(r["name"]), (1, 1))
            shown = min(rf, img) if img else rf
            note = ""
            if img and rf >= img:
                note = " — the whole image"
            t.append(f"  {display_name(r):<28} ", style="bold")
            t.append(f"{shown}×{shown} pixels{note}")
            if img and rf > img:
                t.append(f" (field {rf}, larger than the {img}-pixel image)", style="dim")
            t.append("\n")
        t.append(
            "Early filters see a few pixels: edges and colours (the Filters pane shows them as "
            "patches). Middle layers combine those into textures, later ones into parts and whole "
            "objects — the Activations pane shows maps getting coarser and more abstract."
        )
        lessons.append(("The feature hierarchy", t))

    # 4. Preprocessing matters more than the architecture.
    backbone = model_info.get("backbone") or (summary.get("metadata") or {}).get("cnnlab.backbone")
    t = Text()
    prep = model_info.get("preprocessing") or (summary.get("metadata") or {}).get(
        "cnnlab.preprocessing"
    )
    rng = model_info.get("preprocessing_range")
    if backbone:
        t.append(f"This {backbone} was trained with preprocessing '{prep}'")
        if rng:
            t.append(f" (inputs in [{rng[0]:g}, {rng[1]:g}])")
        t.append(". Pretrained weights only work on inputs in the range they were trained on. ")
        ref = ASSIGNMENT_PREPROCESSING.get(str(backbone))
        if ref:
            t.append(
                f"In the assignment, {backbone} fed x/255 reached {ref['before'] * 100:.1f} %; with its own "
                f"preprocess_input {ref['after'] * 100:.2f} %. "
            )
        mine = (results or {}).get(str(backbone))
        if mine and mine.get("before") is not None and mine.get("after") is not None:
            t.append(
                f"Your runs: {mine['before'] * 100:.1f} % → {mine['after'] * 100:.1f} %"
                + (" (random init, so both are low)" if mine.get("random_init") else "")
                + ". "
            )
    else:
        t.append(
            "This model was trained from scratch on x/255, so x/255 is right for it. A pretrained "
            "backbone is different: ResNet and VGG expect 'caffe' inputs (BGR, ImageNet mean "
            "subtracted, about −124..151), MobileNetV2 [-1, 1], EfficientNet raw 0..255. "
        )
    t.append(
        "Feeding ResNet50 x/255 puts every pixel within 1 of zero in a space that spans 275: to the "
        "network every image is nearly the same flat grey, and accuracy fell from 66.01 % to 27.02 %. "
        "No architecture change buys 39 points; the right preprocessing does (Preprocessing pane)."
    )
    lessons.append(("Why preprocessing matters more than the architecture", t))

    # 5. 224×224 vs 32×32.
    spatial: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
    for r in layers:
        hwc = _spatial(r)
        if hwc is not None:
            spatial.append((hwc, r))
    if backbone and spatial and input_shape:
        smallest = min(spatial, key=lambda sr: sr[0][0] * sr[0][1])
        (hs, ws, cs), row = smallest
        stride = max(1, input_shape[0] // max(hs, 1))
        at224 = 224 // stride
        t = Text()
        t.append(
            f"ImageNet backbones were built for 224×224. At {input_shape[0]}×{input_shape[1]} this "
            f"{backbone}'s smallest feature map ({display_name(row)}) is "
        )
        t.append(f"{hs}×{ws}×{cs}", style="bold")
        t.append(
            f": a total stride of {stride}. At 224×224 the same layer would be {at224}×{at224}. "
            "With 32×32 inputs the backbone's filters, tuned to objects dozens of pixels wide, see "
            "whole CIFAR images inside one field, most of the spatial layout is gone by the middle of "
            "the network, and the frozen features fit CIFAR poorly — hence 55.5 % for frozen "
            "MobileNetV2 against 69.37 % for the small CNN. Upscaling the images (input size 96–224) "
            "is the assignment's suggested fix."
        )
        lessons.append(("224×224 ImageNet vs 32×32 CIFAR-10", t))

    # 6. Frozen vs trained parameters, and what that does to overfitting.
    trainable = totals.get("trainable")
    if backbone and total and trainable is not None:
        metrics = (run or {}).get("metrics") or {}
        gap = metrics.get("overfit_gap")
        t = Text()
        t.append(
            f"{_n(trainable)} of {_n(total)} parameters train ({trainable / total * 100:.2f} %); the "
            f"frozen {_n(total - trainable)} only compute features."
        )
        phases = (run or {}).get("phases") or []
        ft = next((p for p in phases if p.get("name") == "finetune"), None)
        if ft:
            t.append(
                f" Fine-tuning unfroze {len(ft.get('trainable_layers') or [])} layers: "
                f"{_n(ft.get('trainable') or 0)} trainable parameters (the assignment's 745,290 for "
                "MobileNetV2's last 10 layers); the freeze map in the Layers pane shows which."
            )
        if gap is not None:
            t.append(f" This run's train − validation gap: {gap:.1f} points")
            t.append(
                " (the assignment's frozen MobileNetV2: 44.5 — a small head memorises features that "
                "do not generalise)."
            )
        lessons.append(("Frozen and trainable parameters", t))
    return lessons


def render_lessons(lessons: list[tuple[str, Text]]) -> Text:
    out = Text()
    for i, (title, body) in enumerate(lessons):
        if i:
            out.append("\n\n")
        out.append(f"{i + 1}. {title}\n", style="bold underline")
        out.append_text(body)
    return out


class LessonsView(Static):
    """The lessons for the model on screen."""

    DEFAULT_CSS = """
    LessonsView { padding: 0 2; height: auto; }
    """

    def show(
        self,
        summary: dict[str, Any],
        run: dict[str, Any] | None = None,
        results: dict[str, Any] | None = None,
    ) -> None:
        self.update(render_lessons(build_lessons(summary, run, results)))
