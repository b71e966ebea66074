"""A Keras model's layer table (the run's summary.json), one row per layer.

`summarize_keras_model(model)` flattens nested models (a backbone inside a transfer model) so
the freeze map shows every layer; each row carries what the arithmetic needs (config, shapes,
weights) and its MACs. Keras is only touched through the model it receives.
"""

from __future__ import annotations

import math
from typing import Any

from engine.inspect.arithmetic import layer_macs

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
