"""Each layer's arithmetic from a summary row alone (no TensorFlow): MACs, and the parameter
count and output size spelled out with the layer's real numbers.

Both are registries keyed by layer type (`LAYER_MACS` here, `LAYER_EXPLAINERS` filled by
`engine.inspect.keras_explainers`): supporting a new layer is registering one function, never
another branch in a chain. The explanation skeleton
(`explanation`) is shared with the ONNX node explainers in `export.onnx_layers`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from engine.i18n import N_, Phrase

Row = dict[str, Any]
Explainer = Callable[[Row, dict[str, Any], list[str]], bool]
MacRule = Callable[[Row], int]

LAYER_MACS: dict[str, MacRule] = {}
LAYER_EXPLAINERS: dict[str, Explainer] = {}


def layer_macs_rule(*kinds: str) -> Callable[[MacRule], MacRule]:
    """Register the MAC count of these Keras layer types."""

    def register(fn: MacRule) -> MacRule:
        for kind in kinds:
            LAYER_MACS[kind] = fn
        return fn

    return register


def layer_explainer(*kinds: str) -> Callable[[Explainer], Explainer]:
    """Register an explainer: it fills `result` and `lines` and returns False when the row
    lacks what it needs (then the generic description is used)."""

    def register(fn: Explainer) -> Explainer:
        for kind in kinds:
            LAYER_EXPLAINERS[kind] = fn
        return fn

    return register


# ------------------------------------------------------------------------------ small helpers
def pair(value: Any, default: int = 1) -> tuple[int, int]:
    """A Keras size argument (int, or list of one or two) as (height, width)."""
    if value is None:
        return (default, default)
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return (int(value[0]), int(value[0]))
        return (int(value[0]), int(value[1]))
    return (int(value), int(value))


def spatial(shape: Any) -> tuple[int | None, int | None, int | None]:
    """(H, W, C) of a channels-last 4-D shape, else Nones."""
    if isinstance(shape, list) and len(shape) == 4 and not isinstance(shape[0], list):
        return shape[1], shape[2], shape[3]
    return None, None, None


def _as_ints(value: Any, n: int) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    if value is None:
        return [1] * n
    return [int(value)] * n


def fmt(n: int | float) -> str:
    """A count with thousands separators (two decimals if not whole)."""
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.2f}"
    return f"{int(n):,}"


def shape_text(shape: Any) -> str:
    """A shape for people: `(N, 32, 32, 3)`; several outputs joined by commas."""
    if shape is None:
        return "?"
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        return ", ".join(shape_text(s) for s in shape)
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def same_shape(computed: list[int], reported: Any) -> bool:
    """Whether a computed (H, W, C) equals a reported shape without its batch dim."""
    if not isinstance(reported, list):
        return False
    return [int(d) for d in reported[1:]] == computed


def conv_output_size(w: int, k: int, s: int, padding: str, dilation: int = 1) -> dict[str, Any]:
    """One spatial dimension of a convolution or pooling: the size and the padding Keras used.

    `valid`: out = floor((W − K_eff) / S) + 1 with P = 0. `same`: out = ceil(W / S); Keras pads
    max((out − 1)·S + K_eff − W, 0) in total (the extra one, if odd, at the end).
    """
    k_eff = (k - 1) * dilation + 1
    if padding == "same":
        out = -(-w // s)
        pad_total = max((out - 1) * s + k_eff - w, 0)
    else:
        out = (w - k_eff) // s + 1
        pad_total = 0
    return {"in": w, "kernel": k_eff, "stride": s, "pad_total": pad_total, "out": out}


HEIGHT, WIDTH = Phrase(N_("height")), Phrase(N_("width"))  # the dimension a size line is about


def size_lines(label: Phrase, dim: dict[str, Any], padding: str) -> list[str]:
    """The output-size formula of one dimension, with its numbers (Keras' padding rules)."""
    w, k, s, p2, out = dim["in"], dim["kernel"], dim["stride"], dim["pad_total"], dim["out"]
    if padding == "same":
        if p2 % 2 == 0:
            template = N_(
                "{label}: (W − K + 2P)/S + 1 = ({w} − {k} + 2·{p})/{s} + 1 = {out}"
                "  ('same' pads P = {p} on each side → ceil({w}/{s}) = {out})"
            )
            return [Phrase(template, label=label, w=w, k=k, p=p2 // 2, s=s, out=out)]
        template = N_(
            "{label}: 'same' → ceil(W/S) = ceil({w}/{s}) = {out}; Keras pads {p2} in total "
            "({before} before, {after} after): ({w} − {k} + {p2})/{s} + 1 = {out}"
        )
        before, after = p2 // 2, p2 - p2 // 2
        return [
            Phrase(template, label=label, w=w, k=k, s=s, p2=p2, out=out, before=before, after=after)
        ]
    exact = (w - k) / s + 1
    floor_note = (
        "" if float(exact).is_integer() else Phrase(N_(" (floor of {exact:.2f})"), exact=exact)
    )
    template = "{label}: (W − K + 2P)/S + 1 = ({w} − {k} + 2·0)/{s} + 1 = {out}{floor_note}"
    return [Phrase(template, label=label, w=w, k=k, s=s, out=out, floor_note=floor_note)]


# ------------------------------------------------------------------------------ MACs
def layer_macs(row: Row) -> int:
    """Multiply-accumulates of one layer for one image (registered layer types; else 0)."""
    rule = LAYER_MACS.get(str(row.get("type", "")))
    return rule(row) if rule else 0


def _conv_dims(row: Row) -> tuple[int, int, int] | None:
    """(Cin, output positions, kernel size) of a convolution row, or None if shapes are open."""
    out, inp = row.get("output_shape"), row.get("input_shape")
    if not isinstance(out, list) or not isinstance(inp, list) or len(out) < 3:
        return None
    if any(d is None for d in out[1:]) or inp[-1] is None:
        return None
    cfg = row.get("config") or {}
    kernel = math.prod(_as_ints(cfg.get("kernel_size"), len(out) - 2))
    return int(inp[-1]), math.prod(int(d) for d in out[1:-1]), kernel


@layer_macs_rule("Conv1D", "Conv2D", "Conv3D")
def _conv_macs(row: Row) -> int:
    dims = _conv_dims(row)
    if dims is None:
        return 0
    cin, positions, kernel = dims
    groups = int((row.get("config") or {}).get("groups") or 1)
    return positions * kernel * (cin // groups) * int(row["output_shape"][-1])


@layer_macs_rule("DepthwiseConv2D")
def _depthwise_macs(row: Row) -> int:
    dims = _conv_dims(row)
    if dims is None:
        return 0
    cin, positions, kernel = dims
    return positions * kernel * cin * int((row.get("config") or {}).get("depth_multiplier") or 1)


@layer_macs_rule("SeparableConv2D")
def _separable_macs(row: Row) -> int:
    # The depthwise part runs at the output resolution too (strides apply to it).
    dims = _conv_dims(row)
    if dims is None:
        return 0
    cin, positions, kernel = dims
    mult = int((row.get("config") or {}).get("depth_multiplier") or 1)
    cout = int(row["output_shape"][-1])
    return positions * kernel * cin * mult + positions * cin * mult * cout


@layer_macs_rule("Dense")
def _dense_macs(row: Row) -> int:
    inp, out = row.get("input_shape"), row.get("output_shape")
    if not isinstance(inp, list) or not isinstance(out, list) or inp[-1] is None:
        return 0
    leading = math.prod(int(d) for d in inp[1:-1] if d is not None) if len(inp) > 2 else 1
    return leading * int(inp[-1]) * int(out[-1])


# ------------------------------------------------------------------------------ explanations
def explanation(row: Row) -> tuple[dict[str, Any], list[str]]:
    """The result skeleton shared by Keras-layer and ONNX-node explanations, and its text lines
    (filled in by the caller); figures start as the reported ones."""
    reported = int(row.get("params") or 0)
    lines: list[str] = []
    result: dict[str, Any] = {
        "layer": row.get("name"),
        "type": str(row.get("type", "")),
        "input_shape": row.get("input_shape"),
        "output_shape": row.get("output_shape"),
        "lines": lines,
        "params": {"formula": None, "value": reported, "reported": reported},
        "macs": {"formula": None, "value": int(row.get("macs") or 0)},
        "checks": {},
    }
    return result, lines


def explain_layer(row: Row) -> dict[str, Any]:
    """The arithmetic of one Keras layer with its real numbers.

    Returns `{"layer", "type", "lines": [text...], "output_shape": [...], "params": {"formula",
    "value", "reported"}, "macs": {"formula", "value"}, "checks": {...}}` where `checks` says
    whether each computed figure equals what the model reports.
    """
    kind = str(row.get("type", ""))
    reported = int(row.get("params") or 0)
    result, lines = explanation(row)
    explainer = LAYER_EXPLAINERS.get(kind)
    if explainer is None or not explainer(row, result, lines):
        shape = shape_text(row.get("output_shape"))
        template = N_("{kind}: output {shape}, {params:,} parameters")
        lines.append(Phrase(template, kind=kind, shape=shape, params=reported))
        for wt in row.get("weights") or []:
            template = N_("  weight {name}: {shape}")
            lines.append(Phrase(template, name=wt["name"], shape=shape_text(wt["shape"])))
    if reported and row.get("trainable_params") is not None:
        tp = int(row.get("trainable_params") or 0)
        if tp:
            template = N_("trainable: {trainable:,} of {params:,} parameters train")
        else:
            template = N_("frozen: {trainable:,} of {params:,} parameters train")
        lines.append(Phrase(template, trainable=tp, params=reported))
    return result


# ------------------------------------------------------------------------------ table lookups
def find_layer(summary: dict[str, Any], name: str) -> Row:
    """The summary row called `name` (KeyError naming close matches if absent)."""
    for row in summary.get("layers", []):
        if row.get("name") == name:
            return row
    close = [
        r["name"]
        for r in summary.get("layers", [])
        if name.lower() in str(r.get("name", "")).lower()
    ]
    hint = f"; did you mean {', '.join(close[:5])}?" if close else ""
    raise KeyError(f"no layer {name!r} in {summary.get('model', 'the model')}{hint}")


def weight_shape(row: Row, index: int) -> list[int] | None:
    """Shape of the constant feeding input `index` of an ONNX node row, if it is one."""
    inputs = row.get("inputs") or []
    if index >= len(inputs):
        return None
    for w in row.get("weights") or []:
        if w["name"] == inputs[index] and w.get("shape") is not None:
            return list(w["shape"])
    return None


CONV_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv")


def conv_layers(summary: dict[str, Any]) -> list[str]:
    """Names of the rows whose weights are 2-D kernels (what the Filters pane can draw)."""
    names = []
    for row in summary.get("layers", []):
        if row.get("type") not in CONV_TYPES:
            continue
        if row.get("format") == "onnx":
            w = weight_shape(row, 1)
            if w and len(w) == 4:
                names.append(str(row["name"]))
        elif int(row.get("params") or 0) > 0:
            names.append(str(row["name"]))
    return names
