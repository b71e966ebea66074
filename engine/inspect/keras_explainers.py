"""The registered explainers of Keras layers: each spells out one layer type's parameter
count, output size and MACs with the row's real numbers (see `arithmetic.explain_layer`)."""

from __future__ import annotations

import math
from typing import Any

from engine.inspect.arithmetic import (
    Row,
    conv_output_size,
    fmt,
    layer_explainer,
    pair,
    same_shape,
    size_lines,
    spatial,
)


def _set(
    result: dict[str, Any], row: Row, formula: str, value: int, checks: dict[str, bool]
) -> None:
    reported = int(row.get("params") or 0)
    result["params"] = {"formula": formula, "value": value, "reported": reported}
    result["checks"] = {"params": value == reported, **checks}


def _conv_geometry(row: Row, cout: int, lines: list[str]) -> dict[str, Any] | None:
    """Kernel, stride, padding and output size lines of a 2-D convolution row."""
    cfg = row.get("config") or {}
    h, w, cin = spatial(row.get("input_shape"))
    if not (h and w and cin):
        return None
    kh, kw = pair(cfg.get("kernel_size"))
    sh, sw = pair(cfg.get("strides"))
    dh, dw = pair(cfg.get("dilation_rate"))
    padding = str(cfg.get("padding", "valid"))
    ho = conv_output_size(h, kh, sh, padding, dh)
    wo = conv_output_size(w, kw, sw, padding, dw)
    lines.append(
        f"input {h}×{w}×{cin}, kernel {kh}×{kw}, stride {sh}×{sw}, padding '{padding}'"
        + (f", dilation {dh}×{dw}" if (dh, dw) != (1, 1) else "")
    )
    lines.extend(size_lines("height", ho, padding))
    if (h, w) != (ho["out"], wo["out"]) or kh != kw or sh != sw:
        lines.extend(size_lines("width", wo, padding))
    elif ho == wo:
        lines.append(f"width: the same, {wo['out']}")
    lines.append(f"output {ho['out']}×{wo['out']}×{cout}")
    return {"cin": cin, "kh": kh, "kw": kw, "ho": ho["out"], "wo": wo["out"],
            "use_bias": bool(cfg.get("use_bias", True)),
            "mult": int(cfg.get("depth_multiplier") or 1)}  # fmt: skip


def _finish_conv(
    row: Row, result: dict[str, Any], lines: list[str], g: dict[str, Any], cout: int,
    formula: str, value: int, macs_formula: str, macs: int,
) -> bool:  # fmt: skip
    lines.append(f"MACs = Hout·Wout·K·K·Cin·Cout = {macs_formula} = {fmt(macs)}")
    computed = [g["ho"], g["wo"], cout]
    result["macs"] = {"formula": macs_formula, "value": macs}
    result["computed_output_shape"] = computed
    _set(
        result,
        row,
        formula,
        value,
        {"output_shape": same_shape(computed, row.get("output_shape"))},
    )
    return True


@layer_explainer("Conv2D")
def _explain_conv2d(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    cfg, out = row.get("config") or {}, row.get("output_shape")
    cout = int(cfg.get("filters") or (out[-1] if isinstance(out, list) else 0))
    g = _conv_geometry(row, cout, lines)
    if g is None:
        return False
    kh, kw, use_bias = g["kh"], g["kw"], g["use_bias"]
    groups = int(cfg.get("groups") or 1)
    cin_g = g["cin"] // groups
    value = kh * kw * cin_g * cout + (cout if use_bias else 0)
    formula = f"{kh}·{kw}·{cin_g}·{cout}" + (f" + {cout}" if use_bias else "")
    lines.append(
        f"parameters = K·K·Cin·Cout{' + Cout (bias)' if use_bias else ''} = {formula} = {fmt(value)}"
        + (f" (groups={groups}: Cin per group {cin_g})" if groups > 1 else "")
    )
    positions = g["ho"] * g["wo"]
    lines.append(
        f"parameter sharing: each filter has {kh}·{kw}·{cin_g} = {fmt(kh * kw * cin_g)} "
        + (
            f"weights, reused at all {fmt(positions)} output positions"
            if positions > 1
            else "weights, used once: the map is already 1×1 here"
        )
    )
    macs = positions * kh * kw * cin_g * cout
    macs_formula = f"{g['ho']}·{g['wo']}·{kh}·{kw}·{cin_g}·{cout}"
    return _finish_conv(row, result, lines, g, cout, formula, value, macs_formula, macs)


@layer_explainer("DepthwiseConv2D")
def _explain_depthwise(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    _, _, cin = spatial(row.get("input_shape"))
    mult = int((row.get("config") or {}).get("depth_multiplier") or 1)
    cout = int(cin or 0) * mult
    g = _conv_geometry(row, cout, lines)
    if g is None:
        return False
    kh, kw, cin, use_bias = g["kh"], g["kw"], g["cin"], g["use_bias"]
    value = kh * kw * cin * mult + (cout if use_bias else 0)
    formula = f"{kh}·{kw}·{cin}·{mult}" + (f" + {cout}" if use_bias else "")
    lines.append(
        f"parameters = K·K·Cin·multiplier{' + Cout' if use_bias else ''} = "
        f"{formula} = {fmt(value)} (one {kh}×{kw} filter per channel, no mixing)"
    )
    macs = g["ho"] * g["wo"] * kh * kw * cin * mult
    macs_formula = f"{g['ho']}·{g['wo']}·{kh}·{kw}·{cin}·{mult}"
    return _finish_conv(row, result, lines, g, cout, formula, value, macs_formula, macs)


@layer_explainer("SeparableConv2D")
def _explain_separable(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    cout = int((row.get("config") or {}).get("filters") or 0)
    g = _conv_geometry(row, cout, lines)
    if g is None:
        return False
    kh, kw, cin, mult, use_bias = g["kh"], g["kw"], g["cin"], g["mult"], g["use_bias"]
    depth, point = kh * kw * cin * mult, cin * mult * cout
    value = depth + point + (cout if use_bias else 0)
    formula = f"{kh}·{kw}·{cin}·{mult} + {cin * mult}·{cout}" + (f" + {cout}" if use_bias else "")
    lines.append(f"parameters = depthwise + pointwise = {formula} = {fmt(value)}")
    macs = g["ho"] * g["wo"] * (depth + point)
    macs_formula = f"{g['ho']}·{g['wo']}·({kh}·{kw}·{cin}·{mult} + {cin * mult}·{cout})"
    return _finish_conv(row, result, lines, g, cout, formula, value, macs_formula, macs)


@layer_explainer("Dense")
def _explain_dense(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    cfg, inp, out = row.get("config") or {}, row.get("input_shape"), row.get("output_shape")
    if not (isinstance(inp, list) and inp and inp[-1]):
        return False
    fan_in = int(inp[-1])
    units = int(cfg.get("units") or (out[-1] if isinstance(out, list) else 0))
    use_bias = bool(cfg.get("use_bias", True))
    value = fan_in * units + (units if use_bias else 0)
    formula = f"{fmt(fan_in)}·{fmt(units)}" + (f" + {fmt(units)}" if use_bias else "")
    lines.append(f"input {fmt(fan_in)} features → {fmt(units)} units, every input to every unit")
    lines.append(
        f"parameters = inputs·units{' + units (bias)' if use_bias else ''} = {formula} = {fmt(value)}"
    )
    leading = math.prod(int(d) for d in inp[1:-1] if d) if len(inp) > 2 else 1
    macs = leading * fan_in * units
    macs_formula = (f"{fmt(leading)}·" if leading > 1 else "") + f"{fmt(fan_in)}·{fmt(units)}"
    lines.append(f"MACs = {macs_formula} = {fmt(macs)}")
    result["macs"] = {"formula": macs_formula, "value": macs}
    _set(result, row, formula, value, {})
    return True


@layer_explainer("MaxPooling2D", "AveragePooling2D")
def _explain_pooling(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    cfg = row.get("config") or {}
    h, w, cin = spatial(row.get("input_shape"))
    if not (h and w and cin):
        return False
    kh, kw = pair(cfg.get("pool_size"), 2)
    sh, sw = pair(cfg.get("strides") or cfg.get("pool_size"), 2)
    padding = str(cfg.get("padding", "valid"))
    ho = conv_output_size(h, kh, sh, padding)
    wo = conv_output_size(w, kw, sw, padding)
    lines.append(f"input {h}×{w}×{cin}, window {kh}×{kw}, stride {sh}×{sw}, padding '{padding}'")
    lines.extend(size_lines("height", ho, padding))
    if ho != wo:
        lines.extend(size_lines("width", wo, padding))
    computed = [ho["out"], wo["out"], cin]
    op = "maximum" if str(row.get("type")).startswith("Max") else "mean"
    lines.append(
        f"output {ho['out']}×{wo['out']}×{cin}: the {op} of each window, channel by channel"
    )
    lines.append("parameters = 0 (nothing to learn)")
    result["computed_output_shape"] = computed
    _set(result, row, "0", 0, {"output_shape": same_shape(computed, row.get("output_shape"))})
    return True


@layer_explainer("GlobalAveragePooling2D", "GlobalMaxPooling2D")
def _explain_global_pooling(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    h, w, cin = spatial(row.get("input_shape"))
    if not (h and w and cin):
        return False
    op = "average" if "Average" in str(row.get("type")) else "maximum"
    lines.append(f"input {h}×{w}×{cin} → {cin}: the {op} of each {h}×{w} feature map")
    lines.append("parameters = 0")
    _set(result, row, "0", 0, {})
    return True


@layer_explainer("Flatten")
def _explain_flatten(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    inp = row.get("input_shape")
    if not (isinstance(inp, list) and all(d for d in inp[1:])):
        return False
    dims = [int(d) for d in inp[1:]]
    n = math.prod(dims)
    lines.append(
        f"flatten {'×'.join(str(d) for d in dims)} → {'·'.join(str(d) for d in dims)} = {fmt(n)} features"
    )
    lines.append("parameters = 0 (a reshape; the spatial layout is lost here)")
    _set(result, row, "0", 0, {})
    return True


@layer_explainer("BatchNormalization")
def _explain_batchnorm(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    cfg, inp = row.get("config") or {}, row.get("input_shape")
    if not (isinstance(inp, list) and inp[-1]):
        return False
    c = int(inp[-1])
    n_vec = sum(1 for k in ("center", "scale") if cfg.get(k, True))
    value = c * (n_vec + 2)
    lines.append(f"per channel: γ, β (trained) and moving mean, variance (not trained), C = {c}")
    lines.append(f"parameters = {n_vec + 2}·{c} = {fmt(value)} ({fmt(n_vec * c)} trainable)")
    _set(result, row, f"{n_vec + 2}·{c}", value, {})
    return True
