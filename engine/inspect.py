"""Take a model apart: the layer table (summary.json) and each layer's arithmetic.

`summarize_keras_model(model)` turns a Keras model into a JSON-able layer table; the engine
writes it as `summary.json` in every run. The arithmetic functions (`explain_layer`) work from
that table alone (no TensorFlow), so the TUI and `engine inspect --layer` spell out the same
numbers. Keras is only touched by the functions that receive a Keras model.
"""

from __future__ import annotations

import math
from typing import Any

# Config keys worth showing (and needed for the arithmetic), when a layer has them.
CONFIG_KEYS = (
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "dilation_rate",
    "depth_multiplier",
    "groups",
    "units",
    "activation",
    "use_bias",
    "pool_size",
    "rate",
    "axis",
    "epsilon",
    "center",
    "scale",
    "data_format",
    "size",
    "interpolation",
    "target_shape",
)


# --------------------------------------------------------------------------------------------
# Keras model -> summary dict
# --------------------------------------------------------------------------------------------


def summarize_keras_model(model: Any) -> dict[str, Any]:
    """The layer table of a Keras model as a JSON-able dict (the run's summary.json).

    Nested models (a backbone inside a transfer model) are flattened: their layers appear in
    order with `"parent"` set to the nested model's name, so the freeze map can show every
    backbone layer. Totals come from the model's own weights, not from summing rows.
    """
    layers: list[dict[str, Any]] = []
    nested_outputs: dict[str, list[str]] = {}
    _collect_layers(model, layers, parent=None, outer_inbound=None, nested_outputs=nested_outputs)
    for row in layers:  # a nested model's name in `inbound` means its output layers
        row["inbound"] = [n for name in row["inbound"] for n in nested_outputs.get(name, [name])]
    total = _count(model.weights)
    trainable = _count(model.trainable_weights)
    macs = sum(int(row.get("macs") or 0) for row in layers)
    inputs = [
        {"name": _tensor_name(t), "shape": _shape(getattr(t, "shape", None))}
        for t in _as_list(getattr(model, "inputs", None))
    ]
    outputs = [
        {"name": _tensor_name(t), "shape": _shape(getattr(t, "shape", None))}
        for t in _as_list(getattr(model, "outputs", None))
    ]
    return {
        "model": str(model.name),
        "format": "keras",
        "inputs": inputs,
        "outputs": outputs,
        "layers": layers,
        "totals": {
            "total": total,
            "trainable": trainable,
            "frozen": total - trainable,
            "macs": macs,
            "layers": len(layers),
        },
    }


def _collect_layers(
    model: Any,
    rows: list[dict[str, Any]],
    parent: str | None,
    outer_inbound: list[str] | None,
    nested_outputs: dict[str, list[str]],
) -> None:
    for layer in model.layers:
        if _is_nested_model(layer):
            inbound = _inbound_names(layer)
            _collect_layers(layer, rows, str(layer.name), inbound, nested_outputs)
            nested_outputs[str(layer.name)] = [
                _tensor_name(t) for t in _as_list(getattr(layer, "outputs", None))
            ]
            continue
        inbound = _inbound_names(layer)
        if not inbound and outer_inbound is not None and type(layer).__name__ == "InputLayer":
            inbound = list(outer_inbound)
        rows.append(_layer_row(layer, inbound, parent))


def _is_nested_model(layer: Any) -> bool:
    import keras  # already imported by whoever built `layer`

    return isinstance(layer, keras.Model) and hasattr(layer, "layers")


def _layer_row(layer: Any, inbound: list[str], parent: str | None) -> dict[str, Any]:
    params = _count(layer.weights)
    trainable_params = _count(layer.trainable_weights)
    config = _layer_config(layer)
    input_shapes = _input_shapes(layer)
    output_shape = _output_shape(layer)
    row: dict[str, Any] = {
        "name": str(layer.name),
        "type": type(layer).__name__,
        "output_shape": output_shape,
        "input_shape": input_shapes[0] if len(input_shapes) == 1 else input_shapes or None,
        "params": params,
        "trainable_params": trainable_params,
        "trainable": bool(layer.trainable) and (trainable_params > 0 or params == 0),
        "macs": 0,
        "config": config,
        "inbound": inbound,
        "weights": [
            {"name": _weight_name(w), "shape": _shape(w.shape), "trainable": bool(w.trainable)}
            for w in layer.weights
        ],
    }
    if parent is not None:
        row["parent"] = parent
    row["macs"] = layer_macs(row)
    return row


def _count(weights: Any) -> int:
    total = 0
    for w in weights:
        total += int(math.prod(int(d) for d in w.shape))
    return total


def _weight_name(w: Any) -> str:
    path = getattr(w, "path", None)
    return str(path or getattr(w, "name", "weight"))


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    if isinstance(x, dict):
        return list(x.values())
    return [x]


def _shape(shape: Any) -> list[int | None] | None:
    if shape is None:
        return None
    try:
        return [None if d is None else int(d) for d in shape]
    except TypeError:
        return None


def _tensor_name(t: Any) -> str:
    history = getattr(t, "_keras_history", None)
    if history is not None:
        return str(history.operation.name)
    return str(getattr(t, "name", "?"))


def _inbound_names(layer: Any) -> list[str]:
    names: list[str] = []
    for node in getattr(layer, "_inbound_nodes", [])[:1]:
        for t in _as_list(getattr(node, "input_tensors", None)):
            name = _tensor_name(t)
            if name not in names:
                names.append(name)
    return names


def _input_shapes(layer: Any) -> list[list[int | None] | None]:
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return []
    return [_shape(getattr(t, "shape", None)) for t in _as_list(nodes[0].input_tensors)]


def _output_shape(layer: Any) -> Any:
    nodes = getattr(layer, "_inbound_nodes", [])
    if nodes:
        outs = _as_list(nodes[0].output_tensors)
        shapes = [_shape(getattr(t, "shape", None)) for t in outs]
        return shapes[0] if len(shapes) == 1 else shapes
    try:
        return _shape(layer.output.shape)
    except Exception:  # a layer that was never called has no output
        return None


def _layer_config(layer: Any) -> dict[str, Any]:
    try:
        full = layer.get_config()
    except Exception:  # custom layers without get_config
        return {}
    config: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        if key not in full:
            continue
        value = full[key]
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, dict):  # e.g. a serialised activation object
            value = value.get("config", {}).get("name") or value.get("class_name")
        if isinstance(value, (str, int, float, bool, list)) or value is None:
            config[key] = value
    return config


# --------------------------------------------------------------------------------------------
# Arithmetic from a summary row (no TensorFlow)
# --------------------------------------------------------------------------------------------


def _pair(value: Any, default: int = 1) -> tuple[int, int]:
    if value is None:
        return (default, default)
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return (int(value[0]), int(value[0]))
        return (int(value[0]), int(value[1]))
    return (int(value), int(value))


def _spatial(shape: Any) -> tuple[int | None, int | None, int | None]:
    """(H, W, C) of a channels-last 4-D shape, else Nones."""
    if isinstance(shape, list) and len(shape) == 4 and not isinstance(shape[0], list):
        return shape[1], shape[2], shape[3]
    return None, None, None


def layer_macs(row: dict[str, Any]) -> int:
    """Multiply-accumulates of one layer for one image (conv and dense layers; else 0)."""
    kind = row.get("type", "")
    cfg = row.get("config") or {}
    out = row.get("output_shape")
    inp = row.get("input_shape")
    if kind in ("Conv2D", "Conv1D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D"):
        if not isinstance(out, list) or not isinstance(inp, list) or len(out) < 3:
            return 0
        if any(d is None for d in out[1:]) or inp[-1] is None:
            return 0
        cin = int(inp[-1])
        spatial_out = math.prod(int(d) for d in out[1:-1])
        kernel = math.prod(_as_ints(cfg.get("kernel_size"), len(out) - 2))
        if kind == "DepthwiseConv2D":
            mult = int(cfg.get("depth_multiplier") or 1)
            return spatial_out * kernel * cin * mult
        if kind == "SeparableConv2D":
            mult = int(cfg.get("depth_multiplier") or 1)
            cout = int(out[-1])
            strides = _pair(cfg.get("strides"))
            # Depthwise runs at the output resolution too (strides apply to it).
            del strides
            return spatial_out * kernel * cin * mult + spatial_out * cin * mult * cout
        groups = int(cfg.get("groups") or 1)
        cout = int(out[-1])
        return spatial_out * kernel * (cin // groups) * cout
    if kind == "Dense":
        if not isinstance(inp, list) or not isinstance(out, list) or inp[-1] is None:
            return 0
        leading = math.prod(int(d) for d in inp[1:-1] if d is not None) if len(inp) > 2 else 1
        return leading * int(inp[-1]) * int(out[-1])
    return 0


def _as_ints(value: Any, n: int) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    if value is None:
        return [1] * n
    return [int(value)] * n


def _fmt(n: int | float) -> str:
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.2f}"
    return f"{int(n):,}"


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


def explain_layer(row: dict[str, Any]) -> dict[str, Any]:
    """The arithmetic of one layer with its real numbers.

    Returns `{"layer", "type", "lines": [text...], "output_shape": [...], "params": {"formula",
    "value", "reported"}, "macs": {"formula", "value"}, "checks": {...}}` where `checks` says
    whether each computed figure equals what the model reports.
    """
    kind = str(row.get("type", ""))
    cfg = row.get("config") or {}
    inp = row.get("input_shape")
    out = row.get("output_shape")
    reported_params = int(row.get("params") or 0)
    lines: list[str] = []
    result: dict[str, Any] = {
        "layer": row.get("name"),
        "type": kind,
        "input_shape": inp,
        "output_shape": out,
        "lines": lines,
        "params": {"formula": None, "value": reported_params, "reported": reported_params},
        "macs": {"formula": None, "value": int(row.get("macs") or 0)},
        "checks": {},
    }
    h, w, cin = _spatial(inp)

    if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D") and h and w and cin:
        kh, kw = _pair(cfg.get("kernel_size"))
        sh, sw = _pair(cfg.get("strides"))
        dh, dw = _pair(cfg.get("dilation_rate"))
        padding = str(cfg.get("padding", "valid"))
        use_bias = bool(cfg.get("use_bias", True))
        groups = int(cfg.get("groups") or 1)
        mult = int(cfg.get("depth_multiplier") or 1)
        if kind == "Conv2D":
            cout = int(cfg.get("filters") or (out[-1] if isinstance(out, list) else 0))
        elif kind == "DepthwiseConv2D":
            cout = cin * mult
        else:
            cout = int(cfg.get("filters") or 0)
        ho = conv_output_size(h, kh, sh, padding, dh)
        wo = conv_output_size(w, kw, sw, padding, dw)
        lines.append(
            f"input {h}×{w}×{cin}, kernel {kh}×{kw}, stride {sh}×{sw}, padding '{padding}'"
            + (f", dilation {dh}×{dw}" if (dh, dw) != (1, 1) else "")
        )
        lines.extend(_size_lines("height", ho, padding))
        if (h, w) != (ho["out"], wo["out"]) or kh != kw or sh != sw:
            lines.extend(_size_lines("width", wo, padding))
        elif ho == wo:
            lines.append(f"width: the same, {wo['out']}")
        computed_shape = [ho["out"], wo["out"], cout]
        lines.append(f"output {ho['out']}×{wo['out']}×{cout}")
        bias = cout if use_bias else 0
        if kind == "Conv2D":
            cin_g = cin // groups
            value = kh * kw * cin_g * cout + bias
            formula = f"{kh}·{kw}·{cin_g}·{cout}" + (f" + {cout}" if use_bias else "")
            lines.append(
                f"parameters = K·K·Cin·Cout{' + Cout (bias)' if use_bias else ''} = "
                f"{formula} = {_fmt(value)}"
                + (f" (groups={groups}: Cin per group {cin_g})" if groups > 1 else "")
            )
            lines.append(
                f"parameter sharing: each filter has {kh}·{kw}·{cin_g} = {_fmt(kh * kw * cin_g)} "
                f"weights, reused at all {_fmt(ho['out'] * wo['out'])} output positions"
            )
            macs = ho["out"] * wo["out"] * kh * kw * cin_g * cout
            macs_formula = f"{ho['out']}·{wo['out']}·{kh}·{kw}·{cin_g}·{cout}"
        elif kind == "DepthwiseConv2D":
            value = kh * kw * cin * mult + bias
            formula = f"{kh}·{kw}·{cin}·{mult}" + (f" + {cout}" if use_bias else "")
            lines.append(
                f"parameters = K·K·Cin·multiplier{' + Cout' if use_bias else ''} = "
                f"{formula} = {_fmt(value)} (one {kh}×{kw} filter per channel, no mixing)"
            )
            macs = ho["out"] * wo["out"] * kh * kw * cin * mult
            macs_formula = f"{ho['out']}·{wo['out']}·{kh}·{kw}·{cin}·{mult}"
        else:
            depth = kh * kw * cin * mult
            point = cin * mult * cout
            value = depth + point + bias
            formula = f"{kh}·{kw}·{cin}·{mult} + {cin * mult}·{cout}" + (
                f" + {cout}" if use_bias else ""
            )
            lines.append(f"parameters = depthwise + pointwise = {formula} = {_fmt(value)}")
            macs = ho["out"] * wo["out"] * (kh * kw * cin * mult + cin * mult * cout)
            macs_formula = f"{ho['out']}·{wo['out']}·({kh}·{kw}·{cin}·{mult} + {cin * mult}·{cout})"
        lines.append(f"MACs = Hout·Wout·K·K·Cin·Cout = {macs_formula} = {_fmt(macs)}")
        result["params"] = {"formula": formula, "value": value, "reported": reported_params}
        result["macs"] = {"formula": macs_formula, "value": macs}
        result["computed_output_shape"] = computed_shape
        result["checks"] = {
            "params": value == reported_params,
            "output_shape": _same_shape(computed_shape, out),
        }
    elif kind == "Dense" and isinstance(inp, list) and inp and inp[-1]:
        fan_in = int(inp[-1])
        units = int(cfg.get("units") or (out[-1] if isinstance(out, list) else 0))
        use_bias = bool(cfg.get("use_bias", True))
        value = fan_in * units + (units if use_bias else 0)
        formula = f"{_fmt(fan_in)}·{_fmt(units)}" + (f" + {_fmt(units)}" if use_bias else "")
        lines.append(
            f"input {_fmt(fan_in)} features → {_fmt(units)} units, every input to every unit"
        )
        lines.append(
            f"parameters = inputs·units{' + units (bias)' if use_bias else ''} = "
            f"{formula} = {_fmt(value)}"
        )
        leading = math.prod(int(d) for d in inp[1:-1] if d) if len(inp) > 2 else 1
        macs = leading * fan_in * units
        macs_formula = (
            f"{_fmt(leading)}·" if leading > 1 else ""
        ) + f"{_fmt(fan_in)}·{_fmt(units)}"
        lines.append(f"MACs = {macs_formula} = {_fmt(macs)}")
        result["params"] = {"formula": formula, "value": value, "reported": reported_params}
        result["macs"] = {"formula": macs_formula, "value": macs}
        result["checks"] = {"params": value == reported_params}
    elif kind in ("MaxPooling2D", "AveragePooling2D") and h and w and cin:
        kh, kw = _pair(cfg.get("pool_size"), 2)
        sh, sw = _pair(cfg.get("strides") or cfg.get("pool_size"), 2)
        padding = str(cfg.get("padding", "valid"))
        ho = conv_output_size(h, kh, sh, padding)
        wo = conv_output_size(w, kw, sw, padding)
        lines.append(
            f"input {h}×{w}×{cin}, window {kh}×{kw}, stride {sh}×{sw}, padding '{padding}'"
        )
        lines.extend(_size_lines("height", ho, padding))
        if ho != wo:
            lines.extend(_size_lines("width", wo, padding))
        computed_shape = [ho["out"], wo["out"], cin]
        op = "maximum" if kind.startswith("Max") else "mean"
        lines.append(
            f"output {ho['out']}×{wo['out']}×{cin}: the {op} of each window, channel by channel"
        )
        lines.append("parameters = 0 (nothing to learn)")
        result["params"] = {"formula": "0", "value": 0, "reported": reported_params}
        result["computed_output_shape"] = computed_shape
        result["checks"] = {
            "params": reported_params == 0,
            "output_shape": _same_shape(computed_shape, out),
        }
    elif kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D") and h and w and cin:
        op = "average" if "Average" in kind else "maximum"
        lines.append(f"input {h}×{w}×{cin} → {cin}: the {op} of each {h}×{w} feature map")
        lines.append("parameters = 0")
        result["params"] = {"formula": "0", "value": 0, "reported": reported_params}
        result["checks"] = {"params": reported_params == 0}
    elif kind == "Flatten" and isinstance(inp, list) and all(d for d in inp[1:]):
        dims = [int(d) for d in inp[1:]]
        n = math.prod(dims)
        lines.append(
            f"flatten {'×'.join(str(d) for d in dims)} → {'·'.join(str(d) for d in dims)} = {_fmt(n)} features"
        )
        lines.append("parameters = 0 (a reshape; the spatial layout is lost here)")
        result["params"] = {"formula": "0", "value": 0, "reported": reported_params}
        result["checks"] = {"params": reported_params == 0}
    elif kind == "BatchNormalization" and isinstance(inp, list) and inp[-1]:
        c = int(inp[-1])
        n_vec = sum(1 for k in ("center", "scale") if cfg.get(k, True))
        value = c * (n_vec + 2)
        lines.append(
            f"per channel: γ, β (trained) and moving mean, variance (not trained), C = {c}"
        )
        lines.append(f"parameters = {n_vec + 2}·{c} = {_fmt(value)} ({_fmt(n_vec * c)} trainable)")
        result["params"] = {
            "formula": f"{n_vec + 2}·{c}",
            "value": value,
            "reported": reported_params,
        }
        result["checks"] = {"params": value == reported_params}
    else:
        lines.append(f"{kind}: output {_shape_text(out)}, {_fmt(reported_params)} parameters")
        if row.get("weights"):
            for wt in row["weights"]:
                lines.append(f"  weight {wt['name']}: {_shape_text(wt['shape'])}")
    if reported_params and row.get("trainable_params") is not None:
        tp = int(row.get("trainable_params") or 0)
        lines.append(
            f"{'trainable' if tp else 'frozen'}: {_fmt(tp)} of {_fmt(reported_params)} parameters train"
        )
    return result


def _size_lines(label: str, dim: dict[str, Any], padding: str) -> list[str]:
    w, k, s, p2, out = dim["in"], dim["kernel"], dim["stride"], dim["pad_total"], dim["out"]
    if padding == "same":
        if p2 % 2 == 0:
            p = p2 // 2
            return [
                f"{label}: (W − K + 2P)/S + 1 = ({w} − {k} + 2·{p})/{s} + 1 = {out}"
                f"  ('same' pads P = {p} on each side → ceil({w}/{s}) = {out})"
            ]
        return [
            f"{label}: 'same' → ceil(W/S) = ceil({w}/{s}) = {out}; Keras pads {p2} in total "
            f"({p2 // 2} before, {p2 - p2 // 2} after): ({w} − {k} + {p2})/{s} + 1 = {out}"
        ]
    exact = (w - k) / s + 1
    floor_note = "" if float(exact).is_integer() else f" (floor of {exact:.2f})"
    return [f"{label}: (W − K + 2P)/S + 1 = ({w} − {k} + 2·0)/{s} + 1 = {out}{floor_note}"]


def _same_shape(computed: list[int], reported: Any) -> bool:
    if not isinstance(reported, list):
        return False
    return [int(d) for d in reported[1:]] == computed


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def shape_text(shape: Any) -> str:
    """A shape for people: `(N, 32, 32, 3)`; several outputs joined by commas."""
    return _shape_text(shape)


def find_layer(summary: dict[str, Any], name: str) -> dict[str, Any]:
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
