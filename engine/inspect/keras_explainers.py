"""The registered explainers of Keras layers: each spells out one layer type's parameter
count, output size and MACs with the row's real numbers (see `arithmetic.explain_layer`).

Lines are `Phrase`s: English templates (marked with `N_`) and their values, so the TUI shows
them in its language with its own number format; the English text is the Phrase itself."""

from __future__ import annotations

import math
from typing import Any

from engine.i18n import N_, Phrase
from engine.inspect.arithmetic import (
    HEIGHT,
    WIDTH,
    Row,
    conv_output_size,
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
    dilation = Phrase(N_(", dilation {dh}×{dw}"), dh=dh, dw=dw) if (dh, dw) != (1, 1) else ""
    template = N_("input {h}×{w}×{cin}, kernel {kh}×{kw}, stride {sh}×{sw}, padding '{padding}'")
    geometry = Phrase(template, h=h, w=w, cin=cin, kh=kh, kw=kw, sh=sh, sw=sw, padding=padding)
    # Joined by a template with no words: the sentence and the clause are translated apart.
    lines.append(Phrase("{geometry}{dilation}", geometry=geometry, dilation=dilation))
    lines.extend(size_lines(HEIGHT, ho, padding))
    if (h, w) != (ho["out"], wo["out"]) or kh != kw or sh != sw:
        lines.extend(size_lines(WIDTH, wo, padding))
    elif ho == wo:
        lines.append(Phrase(N_("width: the same, {out}"), out=wo["out"]))
    lines.append(Phrase(N_("output {ho}×{wo}×{cout}"), ho=ho["out"], wo=wo["out"], cout=cout))
    return {"cin": cin, "kh": kh, "kw": kw, "ho": ho["out"], "wo": wo["out"],
            "use_bias": bool(cfg.get("use_bias", True)),
            "mult": int(cfg.get("depth_multiplier") or 1)}  # fmt: skip


def _finish_conv(
    row: Row, result: dict[str, Any], lines: list[str], g: dict[str, Any], cout: int,
    formula: str, value: int, macs_formula: str, macs: int,
) -> bool:  # fmt: skip
    lines.append(
        Phrase(
            "MACs = Hout·Wout·K·K·Cin·Cout = {formula} = {macs:,}", formula=macs_formula, macs=macs
        )
    )
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
    if use_bias:
        template = N_("parameters = K·K·Cin·Cout + Cout (bias) = {formula} = {value:,}")
    else:
        template = N_("parameters = K·K·Cin·Cout = {formula} = {value:,}")
    grouped = N_(" (groups={groups}: Cin per group {cin_g})")
    groups_note = Phrase(grouped, groups=groups, cin_g=cin_g) if groups > 1 else ""
    parameters = Phrase(template, formula=formula, value=value)
    lines.append(Phrase("{parameters}{groups}", parameters=parameters, groups=groups_note))
    positions = g["ho"] * g["wo"]
    if positions > 1:
        template = N_(
            "parameter sharing: each filter has {kh}·{kw}·{cin} = {weights:,} weights, "
            "reused at all {positions:,} output positions"
        )
    else:
        template = N_(
            "parameter sharing: each filter has {kh}·{kw}·{cin} = {weights:,} weights, "
            "used once: the map is already 1×1 here"
        )
    lines.append(
        Phrase(template, kh=kh, kw=kw, cin=cin_g, weights=kh * kw * cin_g, positions=positions)
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
    if use_bias:
        template = N_(
            "parameters = K·K·Cin·multiplier + Cout = {formula} = {value:,} "
            "(one {kh}×{kw} filter per channel, no mixing)"
        )
    else:
        template = N_(
            "parameters = K·K·Cin·multiplier = {formula} = {value:,} "
            "(one {kh}×{kw} filter per channel, no mixing)"
        )
    lines.append(Phrase(template, formula=formula, value=value, kh=kh, kw=kw))
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
    template = N_("parameters = depthwise + pointwise = {formula} = {value:,}")
    lines.append(Phrase(template, formula=formula, value=value))
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
    # The formulas are Phrases too: their counts are grouped the way the shown language does.
    formula = Phrase(
        "{fan_in:,}·{units:,} + {units:,}" if use_bias else "{fan_in:,}·{units:,}",
        fan_in=fan_in,
        units=units,
    )
    template = N_("input {fan_in:,} features → {units:,} units, every input to every unit")
    lines.append(Phrase(template, fan_in=fan_in, units=units))
    if use_bias:
        template = N_("parameters = inputs·units + units (bias) = {formula} = {value:,}")
    else:
        template = N_("parameters = inputs·units = {formula} = {value:,}")
    lines.append(Phrase(template, formula=formula, value=value))
    leading = math.prod(int(d) for d in inp[1:-1] if d) if len(inp) > 2 else 1
    macs = leading * fan_in * units
    macs_formula = Phrase(
        "{leading:,}·{fan_in:,}·{units:,}" if leading > 1 else "{fan_in:,}·{units:,}",
        leading=leading,
        fan_in=fan_in,
        units=units,
    )
    lines.append(Phrase("MACs = {formula} = {macs:,}", formula=macs_formula, macs=macs))
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
    template = N_("input {h}×{w}×{cin}, window {kh}×{kw}, stride {sh}×{sw}, padding '{padding}'")
    lines.append(Phrase(template, h=h, w=w, cin=cin, kh=kh, kw=kw, sh=sh, sw=sw, padding=padding))
    lines.extend(size_lines(HEIGHT, ho, padding))
    if ho != wo:
        lines.extend(size_lines(WIDTH, wo, padding))
    computed = [ho["out"], wo["out"], cin]
    if str(row.get("type")).startswith("Max"):
        template = N_("output {ho}×{wo}×{cin}: the maximum of each window, channel by channel")
    else:
        template = N_("output {ho}×{wo}×{cin}: the mean of each window, channel by channel")
    lines.append(Phrase(template, ho=ho["out"], wo=wo["out"], cin=cin))
    lines.append(N_("parameters = 0 (nothing to learn)"))
    result["computed_output_shape"] = computed
    _set(result, row, "0", 0, {"output_shape": same_shape(computed, row.get("output_shape"))})
    return True


@layer_explainer("GlobalAveragePooling2D", "GlobalMaxPooling2D")
def _explain_global_pooling(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    h, w, cin = spatial(row.get("input_shape"))
    if not (h and w and cin):
        return False
    if "Average" in str(row.get("type")):
        template = N_("input {h}×{w}×{cin} → {cin}: the average of each {h}×{w} feature map")
    else:
        template = N_("input {h}×{w}×{cin} → {cin}: the maximum of each {h}×{w} feature map")
    lines.append(Phrase(template, h=h, w=w, cin=cin))
    lines.append(N_("parameters = 0"))
    _set(result, row, "0", 0, {})
    return True


@layer_explainer("Flatten")
def _explain_flatten(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    inp = row.get("input_shape")
    if not (isinstance(inp, list) and all(d for d in inp[1:])):
        return False
    dims = [int(d) for d in inp[1:]]
    n = math.prod(dims)
    shape, product = "×".join(str(d) for d in dims), "·".join(str(d) for d in dims)
    lines.append(
        Phrase(
            N_("flatten {shape} → {product} = {n:,} features"), shape=shape, product=product, n=n
        )
    )
    lines.append(N_("parameters = 0 (a reshape; the spatial layout is lost here)"))
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
    template = N_("per channel: γ, β (trained) and moving mean, variance (not trained), C = {c}")
    lines.append(Phrase(template, c=c))
    template = N_("parameters = {vectors}·{c} = {value:,} ({trainable:,} trainable)")
    lines.append(Phrase(template, vectors=n_vec + 2, c=c, value=value, trainable=n_vec * c))
    _set(result, row, f"{n_vec + 2}·{c}", value, {})
    return True
