"""The lessons of one model, from its layer table and run record: text with emphasis, translatable.

A TUI-free port of the Inspect screen's lessons, so the report and (later) the TUI share one
builder. Sentences are whole translatable messages; emphasis is written inline as `<b>…</b>`
(bold) or `<r>…</r>` (bold red) and split into `Span`s after formatting, so translators can move
it with the words. `for_tui` adds the sentences that point at TUI panes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.i18n import Language
from engine.report.layer_geometry import (
    CONV,
    display_name,
    input_shape_of,
    kernel_stride,
    receptive_fields,
    spatial,
)

if TYPE_CHECKING:
    from engine.records import RunRecord

TAGS = {"b": "bold", "r": "bold red", "d": "dim"}
_TAG = re.compile(r"<([brd])>(.*?)</\1>", re.S)


@dataclass(frozen=True)
class Span:
    """A run of text and its emphasis: None, "bold", "bold red" or "dim" (rich style names)."""

    text: str
    style: str | None = None


@dataclass
class Lesson:
    """One lesson: a stable key, a title and its text as spans."""

    key: str
    title: str
    spans: list[Span] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.spans)

    def add(self, marked: str) -> None:
        """Append text that may hold <b>, <r> or <d> tags."""
        pos = 0
        for match in _TAG.finditer(marked):
            if match.start() > pos:
                self.spans.append(Span(marked[pos : match.start()]))
            self.spans.append(Span(match.group(2), TAGS[match.group(1)]))
            pos = match.end()
        if pos < len(marked):
            self.spans.append(Span(marked[pos:]))


def model_lessons(
    summary: dict[str, Any],
    run: RunRecord | None,
    results: dict[str, Any] | None,
    lang: Language,
    *,
    for_tui: bool = False,
) -> list[Lesson]:
    """Each lesson that applies to this model (keys: sharing, parameters, hierarchy,
    preprocessing, input_size, frozen), with its own numbers."""
    _ = lang._
    n = lang.integer
    layers = summary.get("layers", [])
    totals = summary.get("totals", {})
    model_info = run.model if run else None
    convs = [r for r in layers if r.get("type") in CONV and int(r.get("params") or 0) > 0]
    dense = [
        r
        for r in layers
        if r.get("type") in ("Dense", "Gemm", "MatMul") and int(r.get("params") or 0) > 0
    ]
    input_shape = input_shape_of(layers, convs)
    lessons: list[Lesson] = []

    # Parameter sharing: the first convolution against a dense layer doing the same job.
    out = spatial(convs[0]) if convs else None
    if convs and input_shape and out:
        first = convs[0]
        h, w, c = input_shape
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
        ks = kernel_stride(first)
        k = ks[0] if ks else 3
        lesson = Lesson("sharing", _("Why CNNs beat MLPs: parameter sharing"))
        values = {
            "layer": display_name(first),
            "params": n(p),
            "filters": co,
            "weights": n(per_filter),
        }
        if has_bias:
            lesson.add(
                _(
                    "{layer} has <b>{params} parameters</b>: {filters} filters of {weights} weights (+ a bias each)."
                ).format(**values)
            )
        else:
            lesson.add(
                _(
                    "{layer} has <b>{params} parameters</b>: {filters} filters of {weights} weights."
                ).format(**values)
            )
        lesson.add(
            " "
            + _(
                "Each filter slides over the whole {h}×{w} image and is reused at all {positions} "
                "output positions — a {k}×{k} filter has {kk} weights per channel wherever it looks."
            ).format(h=h, w=w, positions=n(ho * wo), k=k, kk=k * k)
        )
        if k != 3:
            lesson.add(" " + _("(A 3×3 one has 9.)"))
        lesson.add(" " + _(
            "A dense layer making the same {ho}×{wo}×{co} = {outputs} outputs from the {inputs} "
            "input numbers would need <r>{dense} parameters</r> ({ratio}× more), and would have to "
            "learn an edge detector separately for every position."
        ).format(
            ho=ho, wo=wo, co=co, outputs=n(ho * wo * co), inputs=n(pixels), dense=n(dense_same),
            ratio=lang.number(dense_same / max(p, 1), 0),
        ))  # fmt: skip
        lesson.add(
            " "
            + _(
                "Sharing is why the same pattern is recognised anywhere (translation invariance) and "
                "why CNNs beat MLPs on images: the assignment's simple CNN reached {ref_cnn} against "
                "the best MLP's {ref_mlp}."
            ).format(ref_cnn=lang.percent(0.6937), ref_mlp=lang.percent(0.562, 1))
        )
        lessons.append(lesson)

    # Where the parameters are.
    total = int(totals.get("total") or 0)
    if total and dense and convs:
        conv_p = sum(int(r["params"]) for r in convs)
        dense_p = sum(int(r["params"]) for r in dense)
        biggest = max(dense, key=lambda r: int(r["params"]))
        lesson = Lesson("parameters", _("Where the parameters are"))
        lesson.add(_(
            "Convolutions hold {conv} parameters ({conv_share}), dense layers <b>{dense} "
            "({dense_share})</b>."
        ).format(
            conv=n(conv_p), conv_share=lang.percent(conv_p / total, 1),
            dense=n(dense_p), dense_share=lang.percent(dense_p / total, 1),
        ))  # fmt: skip
        fan_in = biggest.get("input_shape")
        values = {"layer": display_name(biggest), "params": n(int(biggest["params"]))}
        if isinstance(fan_in, list) and fan_in and isinstance(fan_in[-1], int):
            lesson.add(
                " "
                + _(
                    "The largest single layer is {layer} with {params} (every one of its {fan_in} "
                    "inputs connects to every unit)."
                ).format(fan_in=n(fan_in[-1]), **values)
            )
        else:
            lesson.add(
                " " + _("The largest single layer is {layer} with {params}.").format(**values)
            )
        if dense_p > conv_p:
            lesson.add(
                " "
                + _(
                    "Convolutions do most of the computing with few weights; the dense layers on the "
                    "flattened map hold most of the weights — and most of the room to overfit."
                )
            )
        else:
            lesson.add(
                " "
                + _(
                    "Here the convolutions hold almost everything: global average pooling before the "
                    "head shrinks each feature map to one number, so the dense part stays small."
                )
            )
        lessons.append(lesson)

    # The feature hierarchy: receptive fields grow with depth.
    if convs:
        fields = receptive_fields(summary)
        picks = (
            convs if len(convs) <= 6 else [convs[round(i * (len(convs) - 1) / 5)] for i in range(6)]
        )
        lesson = Lesson("hierarchy", _("The feature hierarchy"))
        lesson.add(
            _("Each unit of a deeper layer sees a larger patch of the input (its receptive field):")
            + "\n"
        )
        img = input_shape[0] if input_shape else None
        for r in picks:
            rf, _jump = fields.get(str(r["name"]), (1, 1))
            shown = min(rf, img) if img else rf
            lesson.spans.append(Span(f"  {display_name(r):<28} ", "bold"))
            lesson.add(_("{size}×{size} pixels").format(size=shown))
            if img and rf >= img:
                lesson.add(_(" — the whole image"))
            if img and rf > img:
                lesson.add(
                    " <d>"
                    + _("(field {field}, larger than the {image}-pixel image)").format(
                        field=rf, image=img
                    )
                    + "</d>"
                )
            lesson.add("\n")
        lesson.add(
            _(
                "Early filters see a few pixels: edges and colours. Middle layers combine those into "
                "textures, later ones into parts and whole objects."
            )
        )
        if for_tui:
            lesson.add(
                " "
                + _(
                    "The Filters pane shows the first ones as patches; the Activations pane shows maps "
                    "getting coarser and more abstract."
                )
            )
        lessons.append(lesson)

    # Preprocessing matters more than the architecture.
    from engine.inspect import ASSIGNMENT_PREPROCESSING

    metadata = summary.get("metadata") or {}
    backbone = (model_info.backbone if model_info else None) or metadata.get("cnnlab.backbone")
    prep = (model_info.preprocessing if model_info else None) or metadata.get(
        "cnnlab.preprocessing"
    )
    rng = model_info.preprocessing_range if model_info else None
    lesson = Lesson("preprocessing", _("Why preprocessing matters more than the architecture"))
    if backbone:
        if rng:
            lesson.add(_("This {backbone} was trained with preprocessing '{prep}' (inputs in [{low}, {high}]).").format(
                backbone=backbone, prep=prep, low=lang.number(rng[0], 0), high=lang.number(rng[1], 0)
            ))  # fmt: skip
        else:
            lesson.add(
                _("This {backbone} was trained with preprocessing '{prep}'.").format(
                    backbone=backbone, prep=prep
                )
            )
        lesson.add(
            " " + _("Pretrained weights only work on inputs in the range they were trained on.")
        )
        ref = ASSIGNMENT_PREPROCESSING.get(str(backbone))
        if ref:
            lesson.add(
                " "
                + _(
                    "In the assignment, {backbone} fed x/255 reached {before}; with its own "
                    "preprocess_input {after}."
                ).format(
                    backbone=backbone,
                    before=lang.percent(ref["before"], 1),
                    after=lang.percent(ref["after"]),
                )
            )
        mine = (results or {}).get(str(backbone))
        if mine and mine.get("before") is not None and mine.get("after") is not None:
            values = {
                "before": lang.percent(mine["before"], 1),
                "after": lang.percent(mine["after"], 1),
            }
            if mine.get("random_init"):
                lesson.add(
                    " "
                    + _("Your runs: {before} → {after} (random init, so both are low).").format(
                        **values
                    )
                )
            else:
                lesson.add(" " + _("Your runs: {before} → {after}.").format(**values))
    else:
        lesson.add(
            _(
                "This model was trained from scratch on x/255, so x/255 is right for it. A pretrained "
                "backbone is different: ResNet and VGG expect 'caffe' inputs (BGR, ImageNet mean "
                "subtracted, about −124..151), MobileNetV2 [-1, 1], EfficientNet raw 0..255."
            )
        )
    lesson.add(
        " "
        + _(
            "Feeding ResNet50 x/255 puts every pixel within 1 of zero in a space that spans 275: to the "
            "network every image is nearly the same flat grey, and accuracy fell from {right} to "
            "{wrong}. No architecture change buys 39 points; the right preprocessing does."
        ).format(right=lang.percent(0.6601), wrong=lang.percent(0.2702))
    )
    if for_tui:
        lesson.add(" " + _("The Preprocessing pane shows the ranges."))
    lessons.append(lesson)

    # 224×224 ImageNet against 32×32 CIFAR-10.
    maps = [(hwc, r) for r in layers if (hwc := spatial(r)) is not None]
    if backbone and maps and input_shape:
        (hs, ws, cs), row = min(maps, key=lambda sr: sr[0][0] * sr[0][1])
        stride = max(1, input_shape[0] // max(hs, 1))
        lesson = Lesson("input_size", _("224×224 ImageNet vs 32×32 CIFAR-10"))
        lesson.add(_(
            "ImageNet backbones were built for 224×224. At {h}×{w} this {backbone}'s smallest "
            "feature map ({layer}) is <b>{hs}×{ws}×{cs}</b>: a total stride of {stride}. At 224×224 "
            "the same layer would be {at}×{at}."
        ).format(
            h=input_shape[0], w=input_shape[1], backbone=backbone, layer=display_name(row),
            hs=hs, ws=ws, cs=cs, stride=stride, at=224 // stride,
        ))  # fmt: skip
        lesson.add(
            " "
            + _(
                "With 32×32 inputs the backbone's filters, tuned to objects dozens of pixels wide, see "
                "whole CIFAR images inside one field, most of the spatial layout is gone by the middle "
                "of the network, and the frozen features fit CIFAR poorly — hence {ref_transfer} for "
                "frozen MobileNetV2 against {ref_cnn} for the small CNN. Upscaling the images (input "
                "size 96–224) is the assignment's suggested fix."
            ).format(ref_transfer=lang.percent(0.555, 1), ref_cnn=lang.percent(0.6937))
        )
        lessons.append(lesson)

    # Frozen and trainable parameters, and what that does to overfitting.
    trainable = totals.get("trainable")
    if backbone and total and trainable is not None:
        gap = run.metrics.overfit_gap if run and run.metrics else None
        lesson = Lesson("frozen", _("Frozen and trainable parameters"))
        lesson.add(_(
            "{trainable} of {total} parameters train ({share}); the frozen {frozen} only compute "
            "features."
        ).format(
            trainable=n(trainable), total=n(total), share=lang.percent(trainable / total),
            frozen=n(total - trainable),
        ))  # fmt: skip
        phases = run.phases if run else []
        ft = next((p for p in phases if p.name == "finetune"), None)
        if ft:
            lesson.add(" " + _(
                "Fine-tuning unfroze {layers} layers: {trainable} trainable parameters (the "
                "assignment's {ref} for MobileNetV2's last 10 layers)."
            ).format(
                layers=len(ft.trainable_layers), trainable=n(ft.trainable),
                ref=n(745_290),
            ))  # fmt: skip
            if for_tui:
                lesson.add(" " + _("The freeze map in the Layers pane shows which."))
        if gap is not None:
            lesson.add(
                " "
                + _(
                    "This run's train − validation gap: {gap} points (the assignment's frozen "
                    "MobileNetV2: {ref} — a small head memorises features that do not generalise)."
                ).format(gap=lang.number(float(gap), 1), ref=lang.number(44.5, 1))
            )
        lessons.append(lesson)
    return lessons
