"""Take a model apart: the layer table (summary.json) and each layer's arithmetic.

`summarize_keras_model(model)` turns a Keras model into a JSON-able layer table; the engine
writes it as `summary.json` in every run. The arithmetic functions (`explain_layer`) work from
that table alone (no TensorFlow), so the TUI and `engine inspect --layer` spell out the same
numbers. Keras is only touched by the functions that receive a Keras model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import CnnlabError

if TYPE_CHECKING:
    import numpy as np

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


def _explanation(row: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
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
    result, lines = _explanation(row)
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
                + (
                    f"weights, reused at all {_fmt(ho['out'] * wo['out'])} output positions"
                    if ho["out"] * wo["out"] > 1
                    else "weights, used once: the map is already 1×1 here"
                )
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


# --------------------------------------------------------------------------------------------
# Weights without TensorFlow: model.keras is a zip of config.json + model.weights.h5
# --------------------------------------------------------------------------------------------


def _snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case, restated so that reading needs no Keras."""
    import re

    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def read_keras_config(model_path: Path) -> dict[str, Any]:
    """The model's config.json from a .keras archive."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(model_path) as archive:
            return dict(json.loads(archive.read("config.json")))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise CnnlabError(f"{model_path}: not a readable .keras archive ({exc})") from None


def keras_weight_groups(config: dict[str, Any]) -> dict[str, str]:
    """Layer name → its group in model.weights.h5, the way Keras' saving_lib names them.

    Keras stores weights by position, not by layer name: the n-th Conv2D of a container is
    `layers/conv2d_<n>` (the first has no suffix), and a nested model is `layers/functional`.
    """
    groups: dict[str, str] = {}

    def walk(model_config: dict[str, Any], prefix: str) -> None:
        used: dict[str, int] = {}
        for layer in model_config.get("config", {}).get("layers", []):
            key = _snake_case(str(layer.get("class_name", "layer")))
            if key in used:
                used[key] += 1
                key = f"{key}_{used[key]}"
            else:
                used[key] = 0
            path = f"{prefix}layers/{key}"
            name = str(layer.get("config", {}).get("name", key))
            if "layers" in layer.get("config", {}):
                walk(layer, f"{path}/")
            else:
                groups[name] = path

    walk(config, "")
    return groups


class _Window:
    """A read-only file object over bytes [start, start + size) of a file (a stored zip member).

    h5py reads through it with seek/read, so one layer's kernel is read without loading the
    whole weights file (a ResNet152 has ~230 MB of them).
    """

    def __init__(self, fh: Any, start: int, size: int) -> None:
        self.fh, self.start, self.size, self.pos = fh, start, size, 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        if n < 0 or self.pos + n > self.size:
            n = max(0, self.size - self.pos)
        self.fh.seek(self.start + self.pos)
        data: bytes = self.fh.read(n)
        self.pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def _open_weights_h5(model_path: Path) -> Iterator[Any]:
    """model.weights.h5 inside a .keras zip, opened with h5py without extracting it."""
    import io
    import struct
    import zipfile

    import h5py

    try:
        with zipfile.ZipFile(model_path) as archive:
            info = archive.getinfo("model.weights.h5")
            data = None if info.compress_type == zipfile.ZIP_STORED else archive.read(info)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise CnnlabError(f"{model_path}: no readable model.weights.h5 ({exc})") from None
    if data is not None:  # a compressed member: no random access, read it whole
        with h5py.File(io.BytesIO(data), "r") as h5:
            yield h5
        return
    with open(model_path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        with h5py.File(_Window(fh, start, info.file_size), "r") as h5:
            yield h5


def load_keras_weights(model_path: Path, layer: str) -> list[np.ndarray]:
    """The weight arrays of one layer of a .keras file (kernel first), read with h5py."""
    import numpy as np

    groups = keras_weight_groups(read_keras_config(model_path))
    if layer not in groups:
        raise CnnlabError(f"no layer {layer!r} with weights in {model_path}")
    with _open_weights_h5(model_path) as h5:
        group = h5.get(groups[layer] + "/vars")
        if group is None:
            return []
        return [np.asarray(group[k]) for k in sorted(group.keys(), key=int)]


# --------------------------------------------------------------------------------------------
# ONNX files: the same layer table, one row per node (onnx imported lazily, no onnxruntime)
# --------------------------------------------------------------------------------------------

# Nodes that compute shapes rather than features; dimmed in the table.
ONNX_PLUMBING = {
    "Shape",
    "Gather",
    "Cast",
    "Slice",
    "Unsqueeze",
    "Squeeze",
    "Constant",
    "ConstantOfShape",
    "Identity",
    "Range",
    "Expand",
}


def load_onnx(path: Path) -> Any:
    """onnx.load with a clear error (external data must stay beside the model)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"{path}: no such file")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf and external-data errors share no base class
        raise CnnlabError(f"{path}: not a readable ONNX model ({exc})") from None


def _onnx_shape(vi: Any) -> list[int | None] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [int(d.dim_value) if d.HasField("dim_value") else None for d in t.shape.dim]


def _onnx_attrs(node: Any) -> dict[str, Any]:
    import onnx

    attrs: dict[str, Any] = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, (list, tuple)):
            value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
            if not all(isinstance(v, (int, float, str)) for v in value):
                continue
        elif not isinstance(value, (int, float, str)):
            continue
        attrs[a.name] = value
    return attrs


def summarize_onnx(path: Path) -> dict[str, Any]:
    """The layer table of an ONNX file: one row per node, with the initializers it uses.

    Same keys as `summarize_keras_model` rows; `type` is the op type, `trainable` is None
    (an ONNX file has no notion of it), `weights` lists the initializer inputs.
    """
    import onnx

    path = Path(path)
    model = load_onnx(path)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # unknown ops: no inferred shapes, the table still works
        inferred = model
    graph = inferred.graph
    # Parameters are the float initializers; int64 ones are shapes and indices.
    float_types = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
    inits = {i.name: [int(d) for d in i.dims] for i in graph.initializer}
    param_inits = {i.name for i in graph.initializer if i.data_type in float_types}
    shapes: dict[str, list[int | None] | None] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        shapes[vi.name] = _onnx_shape(vi)
    for name, dims in inits.items():
        shapes.setdefault(name, list(dims))
    producer: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for i, inp in enumerate(graph.input):
        if inp.name in inits:
            continue
        producer[inp.name] = inp.name
        rows.append(
            {
                "name": inp.name,
                "type": "Input",
                "output_shape": shapes.get(inp.name),
                "input_shape": None,
                "params": 0,
                "trainable_params": None,
                "trainable": None,
                "macs": 0,
                "config": {},
                "inbound": [],
                "weights": [],
                "outputs": [inp.name],
                "index": i,
            }
        )
    seen_names: set[str] = set()
    for node in graph.node:
        name = node.name or (node.output[0] if node.output else node.op_type)
        if name in seen_names:  # node names are optional and may repeat
            name = f"{name}#{len(rows)}"
        seen_names.add(name)
        weights = [
            {"name": i, "shape": inits[i], "trainable": None} for i in node.input if i in inits
        ]
        data_inputs = [i for i in node.input if i and i not in inits]
        params = sum(math.prod(w["shape"]) for w in weights if w["name"] in param_inits)
        row: dict[str, Any] = {
            "name": name,
            "type": node.op_type,
            "output_shape": shapes.get(node.output[0]) if node.output else None,
            "input_shape": shapes.get(data_inputs[0]) if data_inputs else None,
            "params": params,
            "trainable_params": None,
            "trainable": None,
            "macs": 0,
            "config": _onnx_attrs(node),
            "inbound": [producer[i] for i in data_inputs if i in producer],
            "weights": weights,
            "inputs": list(node.input),
            "outputs": list(node.output),
            "format": "onnx",
        }
        row["macs"] = onnx_node_macs(row)
        for out in node.output:
            producer[out] = name
        rows.append(row)
    total = sum(math.prod(d) for name, d in inits.items() if name in param_inits)
    return {
        "model": graph.name or path.stem,
        "format": "onnx",
        "path": str(path),
        "opset": max(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None
        ),
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [
            {"name": i.name, "shape": shapes.get(i.name)}
            for i in graph.input
            if i.name not in inits
        ],
        "outputs": [{"name": o.name, "shape": shapes.get(o.name)} for o in graph.output],
        "metadata": {p.key: p.value for p in model.metadata_props},
        "layers": rows,
        "totals": {
            "total": total,
            "trainable": None,
            "frozen": None,
            "macs": sum(int(r["macs"]) for r in rows),
            "layers": len(rows),
        },
    }


def _weight_shape(row: dict[str, Any], index: int) -> list[int] | None:
    inputs = row.get("inputs") or []
    if index >= len(inputs):
        return None
    for w in row.get("weights") or []:
        if w["name"] == inputs[index]:
            return list(w["shape"])
    return None


def onnx_node_macs(row: dict[str, Any]) -> int:
    """MACs of one ONNX node for one image: Conv, ConvTranspose, Gemm, MatMul (else 0)."""
    op = row.get("type")
    out = row.get("output_shape")
    inp = row.get("input_shape")
    if op == "Conv":
        w = _weight_shape(row, 1)
        if not w or not isinstance(out, list) or any(d is None for d in out[2:]):
            return 0
        return int(math.prod(int(d) for d in out[2:]) * math.prod(w[1:]) * w[0])
    if op in ("Gemm", "MatMul"):
        w = _weight_shape(row, 1)
        if not w or len(w) != 2:
            return 0
        leading = 1
        if isinstance(inp, list) and len(inp) > 2:
            leading = math.prod(int(d) for d in inp[1:-1] if d)
        return int(leading * w[0] * w[1])
    return 0


def explain_onnx_node(row: dict[str, Any]) -> dict[str, Any]:
    """The arithmetic of one ONNX node (NCHW convolutions, Gemm/MatMul), real numbers."""
    op = str(row.get("type"))
    cfg = row.get("config") or {}
    inp = row.get("input_shape")
    out = row.get("output_shape")
    reported = int(row.get("params") or 0)
    result, lines = _explanation(row)
    w = _weight_shape(row, 1)
    if op == "Conv" and w and len(w) == 4 and isinstance(inp, list) and len(inp) == 4:
        cout, cin_g, kh, kw = w
        group = int(cfg.get("group", 1))
        sh, sw = (list(cfg.get("strides") or [1, 1]) + [1, 1])[:2]
        dh, dw = (list(cfg.get("dilations") or [1, 1]) + [1, 1])[:2]
        pads = list(cfg.get("pads") or [0, 0, 0, 0])
        auto_pad = str(cfg.get("auto_pad", "NOTSET"))
        c, h, wd = inp[1], inp[2], inp[3]
        has_bias = _weight_shape(row, 2) is not None
        lines.append(
            f"input {c}×{h}×{wd} (NCHW), kernel {kh}×{kw}, stride {sh}×{sw}, pads {pads}"
            + (f", group {group}" if group > 1 else "")
            + (f", auto_pad {auto_pad}" if auto_pad != "NOTSET" else "")
        )
        computed: list[int] = []
        if h and wd and auto_pad == "NOTSET":
            for label, size, k, s, d, p0, p1 in (
                ("height", h, kh, sh, dh, pads[0], pads[2]),
                ("width", wd, kw, sw, dw, pads[1], pads[3]),
            ):
                k_eff = (k - 1) * d + 1
                o = (size + p0 + p1 - k_eff) // s + 1
                computed.append(o)
                lines.append(
                    f"{label}: (W − K + P_begin + P_end)/S + 1 = ({size} − {k_eff} + {p0} + {p1})/{s} + 1 = {o}"
                )
            result["computed_output_shape"] = [cout, *computed]
            result["checks"]["output_shape"] = isinstance(out, list) and [
                int(d) for d in out[1:] if d is not None
            ] == [cout, *computed]
        value = cout * cin_g * kh * kw + (cout if has_bias else 0)
        formula = f"{kh}·{kw}·{cin_g}·{cout}" + (f" + {cout}" if has_bias else "")
        lines.append(
            f"parameters = K·K·(Cin/group)·Cout{' + Cout (bias)' if has_bias else ''} = {formula} = {_fmt(value)}"
        )
        if group > 1 and group == c:
            lines.append(f"depthwise: group = Cin = {c}, one {kh}×{kw} filter per channel")
        macs = int(row.get("macs") or 0)
        if isinstance(out, list) and len(out) == 4 and out[2] and out[3]:
            macs_formula = f"{out[2]}·{out[3]}·{kh}·{kw}·{cin_g}·{cout}"
            lines.append(f"MACs = Hout·Wout·K·K·Cin/group·Cout = {macs_formula} = {_fmt(macs)}")
            result["macs"] = {"formula": macs_formula, "value": macs}
        result["params"] = {"formula": formula, "value": value, "reported": reported}
        result["checks"]["params"] = value == reported
    elif op in ("Gemm", "MatMul") and w and len(w) == 2:
        trans_b = op == "Gemm" and int(cfg.get("transB", 0)) == 1
        fan_in, units = (w[1], w[0]) if trans_b else (w[0], w[1])
        has_bias = op == "Gemm" and _weight_shape(row, 2) is not None
        value = fan_in * units + (units if has_bias else 0)
        formula = f"{_fmt(fan_in)}·{_fmt(units)}" + (f" + {_fmt(units)}" if has_bias else "")
        lines.append(f"{_fmt(fan_in)} inputs → {_fmt(units)} outputs (a dense layer)")
        lines.append(f"parameters = {formula} = {_fmt(value)}")
        if op == "MatMul":
            lines.append("(a bias, if any, is a separate Add node)")
        lines.append(f"MACs = {_fmt(int(row.get('macs') or 0))}")
        result["params"] = {"formula": formula, "value": value, "reported": reported}
        result["checks"]["params"] = value == reported
    elif op in ("MaxPool", "AveragePool") and isinstance(inp, list) and len(inp) == 4:
        window = list(cfg.get("kernel_shape") or [1, 1])
        step = list(cfg.get("strides") or [1, 1])
        pads = list(cfg.get("pads") or [0, 0, 0, 0])
        lines.append(
            f"input {inp[1]}×{inp[2]}×{inp[3]} (NCHW), window {window[0]}×{window[1]}, "
            f"stride {step[0]}×{step[1]}"
        )
        if inp[2]:
            o = (inp[2] + pads[0] + pads[2] - window[0]) // step[0] + 1
            lines.append(
                f"height: ({inp[2]} − {window[0]} + {pads[0]} + {pads[2]})/{step[0]} + 1 = {o}"
            )
        lines.append("parameters = 0")
    else:
        lines.append(
            f"{op}: output {_shape_text(out)}, {_fmt(reported)} parameters in initializers"
        )
        for wt in row.get("weights") or []:
            lines.append(f"  {wt['name']}: {_shape_text(wt['shape'])}")
        if cfg:
            lines.append("attributes: " + ", ".join(f"{k}={v}" for k, v in list(cfg.items())[:6]))
    return result


def explain(row: dict[str, Any]) -> dict[str, Any]:
    """explain_layer for Keras rows, explain_onnx_node for ONNX rows."""
    if row.get("format") == "onnx":
        return explain_onnx_node(row)
    return explain_layer(row)


def onnx_conv_kernel(path: Path, node_name: str) -> np.ndarray:
    """A Conv node's weights from the initializers, as K×K×Cin×Cout (Keras' layout)."""
    import numpy as np
    from onnx import numpy_helper

    model = load_onnx(path)
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        name = node.name or (node.output[0] if node.output else "")
        if name != node_name and node_name not in node.output:
            continue
        if node.op_type not in ("Conv", "ConvTranspose") or len(node.input) < 2:
            raise CnnlabError(f"{node_name} is a {node.op_type}, not a convolution")
        weight = node.input[1]
        if weight not in inits:
            raise CnnlabError(f"{node_name}: its weights are computed in the graph, not stored")
        w = np.asarray(numpy_helper.to_array(inits[weight]), dtype=np.float32)
        if w.ndim != 4:
            raise CnnlabError(f"{node_name}: weights of shape {list(w.shape)} are not 2-D kernels")
        if node.op_type == "ConvTranspose":  # (Cin, Cout, kH, kW)
            return w.transpose(2, 3, 0, 1)
        return w.transpose(2, 3, 1, 0)  # (Cout, Cin, kH, kW) → (kH, kW, Cin, Cout)
    raise CnnlabError(f"no node {node_name!r} in {Path(path).name}")


CONV_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv")


def conv_layers(summary: dict[str, Any]) -> list[str]:
    """Names of the rows whose weights are 2-D kernels (what the Filters pane can draw)."""
    names = []
    for row in summary.get("layers", []):
        if row.get("type") not in CONV_TYPES:
            continue
        if row.get("format") == "onnx":
            w = _weight_shape(row, 1)
            if w and len(w) == 4:
                names.append(str(row["name"]))
        elif int(row.get("params") or 0) > 0:
            names.append(str(row["name"]))
    return names


def load_kernel(source: Path, layer: str) -> np.ndarray:
    """A convolution's kernel as K×K×Cin×Cout from a run folder, .keras or .onnx file.

    DepthwiseConv2D kernels (K×K×C×multiplier) come back as K×K×1×(C·multiplier): each
    filter sees one channel.
    """
    import numpy as np

    source = Path(source)
    if source.is_dir():
        source = source / "model.keras"
    if source.suffix == ".onnx":
        return onnx_conv_kernel(source, layer)
    weights = load_keras_weights(source, layer)
    if not weights or np.asarray(weights[0]).ndim != 4:
        raise CnnlabError(f"{layer} has no 2-D convolution kernel")
    kernel = np.asarray(weights[0], dtype=np.float32)
    config = read_keras_config(source)
    kind = _layer_class(config, layer)
    if kind == "DepthwiseConv2D":
        kh, kw, c, m = kernel.shape
        kernel = kernel.reshape(kh, kw, 1, c * m)
    return kernel


def _layer_class(config: dict[str, Any], name: str) -> str | None:
    stack = [config]
    while stack:
        cfg = stack.pop()
        for layer in cfg.get("config", {}).get("layers", []):
            if layer.get("config", {}).get("name") == name:
                return str(layer.get("class_name"))
            if "layers" in layer.get("config", {}):
                stack.append(layer)
    return None


def filter_report(
    kernel: np.ndarray,
    *,
    layer: str = "",
    start: int = 0,
    count: int | None = None,
    channel: int = 0,
    values: bool = True,
) -> dict[str, Any]:
    """What the Filters pane draws: per-filter statistics and (optionally) the kernels.

    `mode` is "rgb" for a first layer (Cin = 3: each filter is a colour patch), else
    "channel" (one input channel of each filter, `channel`). Values are K×K (×3 for rgb).
    """
    import numpy as np

    kh, kw, cin, cout = kernel.shape
    count = cout if count is None else count
    start = max(0, min(start, cout))
    stop = min(cout, start + max(count, 0))
    mode = "rgb" if cin == 3 else "channel"
    if mode == "channel" and not 0 <= channel < cin:
        raise CnnlabError(f"channel {channel} out of range: this layer has {cin} input channels")
    limit = float(np.abs(kernel).max()) if kernel.size else 0.0
    filters = []
    for f in range(start, stop):
        w = kernel[..., f]
        entry: dict[str, Any] = {
            "index": f,
            "min": round(float(w.min()), 6),
            "max": round(float(w.max()), 6),
            "mean": round(float(w.mean()), 6),
            "std": round(float(w.std()), 6),
            "l2": round(float(np.sqrt((w.astype(np.float64) ** 2).sum())), 6),
        }
        if values:
            patch = w if mode == "rgb" else w[:, :, channel]
            entry["values"] = np.round(patch.astype(np.float64), 6).tolist()
        filters.append(entry)
    return {
        "layer": layer,
        "kernel_shape": [kh, kw, cin, cout],
        "mode": mode,
        "channel": channel if mode == "channel" else None,
        "filters_total": cout,
        "range": [start, stop],
        "abs_max": round(limit, 6),
        "weights_per_filter": kh * kw * cin,
        "filters": filters,
    }


def preprocess_stats(images: np.ndarray, preprocessing: str, *, bins: int = 24) -> dict[str, Any]:
    """Per-channel histograms of a uint8 RGB batch before and after a preprocessing.

    `after` is binned over the range the preprocessing produces (what the backbone expects);
    `mistake` is the same batch as x/255, the classic error, binned over [0, 1]. Channel names
    follow the data: "caffe" preprocessing swaps RGB to BGR, so its channels are B, G, R.
    """
    import numpy as np

    from engine.preprocessing import get_preprocessing

    spec = get_preprocessing(preprocessing)
    raw = np.asarray(images)
    rgb = ["R", "G", "B"]
    after_names = ["B", "G", "R"] if spec.mode == "caffe" else rgb
    lo, hi = (float(v) for v in spec.output_range)
    result: dict[str, Any] = {
        "preprocessing": spec.to_dict(),
        "expected_range": [lo, hi],
        "count": int(raw.shape[0]) if raw.ndim == 4 else 1,
        "before": _channel_hists(raw.astype(np.float32), rgb, bins, (0.0, 255.0)),
        "after": _channel_hists(spec.apply(raw), after_names, bins, (lo, hi)),
    }
    if spec.mode != "unit":
        unit = get_preprocessing("unit")
        result["mistake"] = _channel_hists(unit.apply(raw), rgb, bins, (0.0, 1.0))
    return result


def _channel_hists(
    x: np.ndarray, names: list[str], bins: int, value_range: tuple[float, float] | None
) -> dict[str, Any]:
    import numpy as np

    lo = float(x.min()) if value_range is None else value_range[0]
    hi = float(x.max()) if value_range is None else value_range[1]
    if hi <= lo:
        hi = lo + 1.0
    channels = []
    for c, name in enumerate(names):
        v = x[..., c].reshape(-1)
        counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
        channels.append(
            {
                "name": name,
                "min": round(float(v.min()), 4),
                "max": round(float(v.max()), 4),
                "mean": round(float(v.mean()), 4),
                "std": round(float(v.std()), 4),
                "counts": counts.astype(int).tolist(),
                "edges": [round(float(e), 4) for e in edges],
            }
        )
    return {
        "min": round(float(x.min()), 4),
        "max": round(float(x.max()), 4),
        "range": [round(lo, 4), round(hi, 4)],
        "channels": channels,
    }


# --------------------------------------------------------------------------------------------
# Results on disk the panes put next to the figures
# --------------------------------------------------------------------------------------------

# The assignment's before (x/255) → after (own preprocess_input) test accuracies; "~" values
# are the write-up's approximations. MobileNetV2's "after" is its nine-backbone result.
ASSIGNMENT_PREPROCESSING: dict[str, dict[str, Any]] = {
    "ResNet50": {"before": 0.2702, "after": 0.6601, "approx_before": False},
    "VGG16": {"before": 0.25, "after": 0.6371, "approx_before": True},
    "EfficientNetB0": {"before": 0.23, "after": 0.5713, "approx_before": True},
    "MobileNetV2": {"before": 0.21, "after": 0.2994, "approx_before": True},
}


def preprocessing_results(runs_root: Path | None) -> dict[str, dict[str, Any]]:
    """Per backbone, the test accuracy of runs fed x/255 ("before") and their own ("after").

    Reads `preprocessing` parent runs' tables first, then single transfer runs (their
    `config.preprocessing` says which); the newest finished run wins.
    """
    from engine.runs import RunStore

    results: dict[str, dict[str, Any]] = {}
    if runs_root is None or not Path(runs_root).is_dir():
        return results
    runs = RunStore(runs_root).list(lambda r: r.status == "finished")
    for run in runs:  # newest first: setdefault keeps the newest
        for row in run.record.get("table") or []:
            if not isinstance(row, dict) or "before" not in row:
                continue
            entry = results.setdefault(str(row.get("backbone")), {})
            if row.get("before") is not None:
                entry.setdefault("before", row["before"])
                entry.setdefault("before_run", row.get("wrong_run_id"))
            if row.get("after") is not None:
                entry.setdefault("after", row["after"])
                entry.setdefault("after_run", row.get("right_run_id"))
            entry.setdefault("random_init", bool(row.get("random_init")))
    for run in runs:
        model = run.record.get("model") or {}
        metrics = run.record.get("metrics") or {}
        backbone = model.get("backbone")
        acc = metrics.get("test_accuracy")
        if not backbone or acc is None:
            continue
        key = "before" if model.get("preprocessing") == "unit" else "after"
        entry = results.setdefault(str(backbone), {})
        if key not in entry:
            entry[key] = acc
            entry[f"{key}_run"] = run.id
            entry.setdefault("random_init", bool(model.get("random_init")))
    return results


def run_onnx_path(run_dir: Path, record: dict[str, Any] | None) -> Path | None:
    """A run's ONNX export: the newest entry of run.json's `onnx.exports` that still exists,
    else the newest *.onnx in the folder, else None."""
    run_dir = Path(run_dir)
    onnx_record = (record or {}).get("onnx") or {}
    exports = onnx_record.get("exports") if isinstance(onnx_record, dict) else None
    for entry in reversed(exports or []):
        for key in ("path", "file"):
            value = entry.get(key) if isinstance(entry, dict) else None
            if not value:
                continue
            candidate = Path(value)
            if not candidate.is_absolute():
                candidate = run_dir / candidate
            if candidate.is_file():
                return candidate
    files = sorted(run_dir.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    return files[0] if files else None
