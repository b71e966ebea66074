"""What an export promises and how closely it keeps them: the graph's contract (one NHWC input
`image` with a dynamic batch, one output `probabilities`) and parity with Keras."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.errors import CnnlabError, first_line
from export.onnx_metadata import INPUT_NAME, OUTPUT_NAME

DEFAULT_TOLERANCE = 1e-4
DEFAULT_PARITY_SAMPLES = 512


class ExportError(CnnlabError):
    """Conversion failed, or produced a graph that is not what cnnlab promises."""


class ParityError(ExportError):
    """The ONNX file's outputs differ from Keras' beyond the tolerance."""


@dataclass
class Parity:
    """How closely the ONNX file reproduces Keras on the same images."""

    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    n: int
    tolerance: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_exported(
    proto: Any, *, image_shape: tuple[int, ...], baked: bool, num_classes: int | None = None
) -> None:
    """Assert the promises: valid ONNX, one input `image` (NHWC, dynamic batch), one output."""
    import onnx
    from onnx import TensorProto

    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ExportError(f"the exported graph fails onnx.checker: {first_line(exc)}") from None
    graph = proto.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
        raise ExportError(
            f"expected one graph input named {INPUT_NAME!r}, got {[i.name for i in inputs]}"
        )
    tensor_type = inputs[0].type.tensor_type
    want_type = TensorProto.UINT8 if baked else TensorProto.FLOAT
    if tensor_type.elem_type != want_type:
        raise ExportError(
            f"input {INPUT_NAME!r} has type {TensorProto.DataType.Name(tensor_type.elem_type)}, "
            f"expected {TensorProto.DataType.Name(want_type)}"
        )
    dims = tensor_type.shape.dim
    if len(dims) != 4 or dims[0].dim_value or not dims[0].dim_param:
        raise ExportError(
            f"input {INPUT_NAME!r} must be 4-D with a dynamic batch dimension, got {graph_dims(dims)}"
        )
    if [d.dim_value for d in dims[1:]] != [int(v) for v in image_shape]:
        raise ExportError(
            f"input {INPUT_NAME!r} is {graph_dims(dims)}, expected [batch, {', '.join(map(str, image_shape))}]"
        )
    if len(graph.output) != 1 or graph.output[0].name != OUTPUT_NAME:
        raise ExportError(
            f"expected one output named {OUTPUT_NAME!r}, got {[o.name for o in graph.output]}"
        )
    out_dims = graph.output[0].type.tensor_type.shape.dim
    if num_classes is not None and (
        len(out_dims) != 2 or out_dims[1].dim_value not in (0, num_classes)
    ):
        raise ExportError(
            f"output {OUTPUT_NAME!r} is {graph_dims(out_dims)}, expected [batch, {num_classes}]"
        )


def graph_dims(dims: Any) -> list[Any]:
    return [d.dim_param or d.dim_value for d in dims]


def as_probabilities(y: np.ndarray) -> np.ndarray:
    """`y` if its rows are already probabilities, else their softmax (for logits models)."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2 and y.min() >= 0 and np.allclose(y.sum(axis=1), 1.0, atol=1e-3):
        return y
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def compare_outputs(keras_out: np.ndarray, onnx_out: np.ndarray, tolerance: float) -> Parity:
    """Max/mean abs difference of the probabilities and top-1 agreement."""
    a, b = as_probabilities(keras_out), as_probabilities(onnx_out)
    if a.shape != b.shape:
        raise ParityError(f"ONNX output shape {b.shape} differs from Keras' {a.shape}")
    diff = np.abs(a - b)
    max_diff = float(diff.max()) if diff.size else 0.0
    return Parity(
        max_abs_diff=max_diff,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        top1_agreement=float((a.argmax(axis=1) == b.argmax(axis=1)).mean()) if len(a) else 1.0,
        n=int(len(a)),
        tolerance=float(tolerance),
        passed=bool(max_diff <= tolerance),
    )


def parity_sample(x: np.ndarray, n: int) -> np.ndarray:
    """Up to n images spread evenly over x (test sets are often sorted by class)."""
    if n <= 0 or n >= len(x):
        return x
    return x[np.linspace(0, len(x) - 1, n).round().astype(int)]


def run_onnx(
    session: Any,
    x: np.ndarray,
    batch_size: int | None = None,
    *,
    model: Any = None,
    key: str = "",
) -> np.ndarray:
    """Run the session on x in batches; the first output as float32.

    Without `batch_size` the batch is measured on this machine (engine.batching), within the
    memory that `model` (the session's ModelProto, for its tensor sizes) needs per image; `key`
    names the model in the in-process cache of measured batches.
    """
    from engine.batching import onnx_activation_bytes, onnx_inference_batch

    if batch_size is None:
        if model is None:
            raise ValueError("run_onnx needs the ModelProto to measure a batch size")
        batch_size = onnx_inference_batch(
            session, x, key=key, bytes_per_image=onnx_activation_bytes(model)
        ).batch
    name = session.get_inputs()[0].name
    outs = [
        session.run(None, {name: x[i : i + batch_size]})[0] for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0,), np.float32)
