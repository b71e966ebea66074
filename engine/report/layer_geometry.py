"""Geometry read from a layer table (summary.json or the ONNX node table): output sizes,
kernels and strides, receptive fields. Pure functions of the rows; no TensorFlow, no onnx."""

from __future__ import annotations

from typing import Any

CONV = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv")
POOL = ("MaxPooling2D", "AveragePooling2D", "MaxPool", "AveragePool")


def display_name(row: dict[str, Any]) -> str:
    """ONNX node names repeat the model's scopes; the last two parts are enough."""
    name = str(row.get("name", "?"))
    if row.get("format") == "onnx" and name.count("/") > 1:
        return "/".join(name.split("/")[-2:])
    return name


def spatial(row: dict[str, Any]) -> tuple[int, int, int] | None:
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


def kernel_stride(row: dict[str, Any]) -> tuple[int, int] | None:
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
        ks = kernel_stride(row)
        if ks is not None:
            k, s = ks
            rf, jump = rf + (k - 1) * jump, jump * s
        fields[str(row.get("name"))] = (rf, jump)
    return fields


def input_shape_of(
    layers: list[dict[str, Any]], convs: list[dict[str, Any]]
) -> tuple[int, int, int] | None:
    shape = next((spatial(r) for r in layers if r.get("type") in ("InputLayer", "Input")), None)
    if shape is None and convs:
        first_in = convs[0].get("input_shape")
        if isinstance(first_in, list) and len(first_in) == 4:
            dims = first_in[1:]
            if convs[0].get("format") == "onnx":
                return int(dims[1]), int(dims[2]), int(dims[0])
            return int(dims[0]), int(dims[1]), int(dims[2])
    return shape
