"""Where int8 departs from fp32: the error of every node output the two graphs share.

A QDQ model keeps the float graph's tensor names (quantization inserts QuantizeLinear/
DequantizeLinear pairs around them), so each node output of the fp32 model that the int8
model also produces is exposed as an extra graph output on copies of both, and both run on
the same few calibration (training) images. onnxruntime optimizations are limited to "basic"
so that fusions do not hide the tensors being compared.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_LAYER_IMAGES = 8


def _float_tensors(proto: Any) -> list[str]:
    """Node outputs of float type, in graph order (types from ONNX shape inference)."""
    import onnx
    from onnx import TensorProto

    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {
        vi.name: vi.type.tensor_type.elem_type
        for vi in [*inferred.graph.value_info, *inferred.graph.output]
    }
    return [
        out
        for node in proto.graph.node
        for out in node.output
        if out and types.get(out) == TensorProto.FLOAT
    ]


def _producers(proto: Any) -> dict[str, tuple[str, str]]:
    return {out: (node.name, node.op_type) for node in proto.graph.node for out in node.output}


def _dequantized(proto: Any) -> dict[str, str]:
    """tensor → the output of its QuantizeLinear→DequantizeLinear pair: the value consumers of a
    quantized tensor really see (a QDQ graph may also drop a Relu whose clipping the
    quantization range performs, so the raw tensor alone would overstate the error)."""
    q_out = {n.input[0]: n.output[0] for n in proto.graph.node if n.op_type == "QuantizeLinear"}
    dq_of = {n.input[0]: n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    return {t: dq_of[q] for t, q in q_out.items() if q in dq_of}


def _with_outputs(proto: Any, names: list[str]) -> bytes:
    """A copy of `proto` whose graph also outputs `names` (float tensors)."""
    import onnx
    from onnx import TensorProto, helper

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    have = {o.name for o in copy.graph.output}
    copy.graph.output.extend(
        helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names if n not in have
    )
    return bytes(copy.SerializeToString())


def tensor_error(reference: np.ndarray, other: np.ndarray) -> dict[str, float | None]:
    """max |Δ|, relative L2 (‖Δ‖/‖ref‖) and SQNR in dB (None when the two are identical)."""
    a = np.asarray(reference, dtype=np.float64).ravel()
    b = np.asarray(other, dtype=np.float64).ravel()
    diff = a - b
    signal, noise = float(a @ a), float(diff @ diff)
    return {
        "max_abs": float(np.abs(diff).max()) if diff.size else 0.0,
        "rel_l2": math.sqrt(noise / signal) if signal > 0 else (0.0 if noise == 0 else None),
        "sqnr_db": (10 * math.log10(signal / noise)) if noise > 0 and signal > 0 else None,
    }


def layer_errors(fp32_model: Path, int8_model: Path, feed: np.ndarray) -> list[dict[str, Any]]:
    """Per shared node output: node name (as `--exclude` takes it), op, error figures; worst
    first (lowest SQNR, identical tensors last)."""
    import onnx

    from export.providers import create_session, session_options

    fp32 = onnx.load(str(fp32_model))
    int8 = onnx.load(str(int8_model))
    int8_producers = _producers(int8)
    quant_ops = {"QuantizeLinear", "DequantizeLinear"}
    shared = [
        t
        for t in _float_tensors(fp32)
        if t in int8_producers and int8_producers[t][1] not in quant_ops
    ]
    if not shared:
        return []
    seen = _dequantized(int8)
    int8_names = [seen.get(t, t) for t in shared]
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for key, proto, names in (("fp32", fp32, shared), ("int8", int8, int8_names)):
        options = session_options(graph_optimization="basic")
        session = create_session(_with_outputs(proto, names), "cpu", options=options).session
        values = session.run(names, {session.get_inputs()[0].name: feed})
        outputs[key] = dict(zip(names, values, strict=True))
    scored = []
    for tensor, int8_name in zip(shared, int8_names, strict=True):
        node, op = int8_producers[tensor]
        err = tensor_error(outputs["fp32"][tensor], outputs["int8"][int8_name])
        sqnr = err["sqnr_db"]
        order = (sqnr is None, sqnr or 0.0, -(err["max_abs"] or 0.0))
        row = {"node": node, "op": op, "tensor": tensor, "quantized": tensor in seen, **err}
        scored.append((order, row))
    scored.sort(key=lambda pair: pair[0])
    return [row for _, row in scored]
