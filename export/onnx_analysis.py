"""One analysis of an ONNX file: shapes, weights, MACs and op counts, with one convention.

`analyze_onnx(path)` is the single source of these facts: `engine onnx-info`, `engine inspect
X.onnx`, the Layers pane and the ONNX pane are views of its result, so they agree.

Conventions, stated once:
- Shapes come from onnx shape inference; symbolic dims (`N`, `unk__0`) are kept. `dims`
  (`--dim N=1`) fixes a named dim before inference, for files where it matters.
- Weights are the initializers plus the tensors computed from constants only (Constant,
  ConstantOfShape, Identity/Cast/Reshape... of constants). Parameters are the elements, of
  floating or 8/16-bit integer type (int32/int64 tensors are shapes and indices), of the weights
  a pass reads, each data tensor once (a Cast or Reshape of a weight is the same data).
  "Stored" ones are in the file (initializers, Constant values); "generated" ones are computed
  in the graph. Initializers no computing node reads are named in a warning.
- MACs are per sample (batch 1): one pass at the file's shapes (a free symbolic dim counts as 1)
  divided by the file's batch (dim 0 of its first input) for the nodes whose output carries it. Conv and ConvTranspose (1-D/2-D/3-D, groups, dilation), Gemm and
  MatMul are counted (and onnxruntime's Fused* forms); every other op that does arithmetic is
  listed under `not_counted`, never a silent 0. FLOPs = 2 × MACs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import first_line
from engine.i18n import N_
from export.onnx_file import load_onnx
from export.onnx_graph import (
    Shape,
    dtype_name,
    fix_dims,
    inference_proxy,
    io_entry,
    node_attributes,
    value_shape,
)
from export.onnx_macs import MAC_COUNTERS, NO_MAC_OPS, NodeShapes, concrete, prod

MAC_CONVENTION = N_(
    "MACs per sample (batch 1): one pass at the file's batch divided by that batch; "
    "Conv, ConvTranspose, Gemm and MatMul are counted, other ops are listed as not counted"
)

_INDEX_TYPES = {"INT32", "INT64", "UINT32", "UINT64", "BOOL", "STRING"}
_STANDARD_DOMAINS = {"", "ai.onnx"}
# Constant folding keeps the origin (stored/generated) through these: same data, new view.
_COPY_OPS = {"Identity", "Cast", "CastLike", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"}  # fmt: skip
_RANDOM_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}  # fmt: skip


@dataclass
class NodeFacts:
    """One node: its shapes, the constant inputs it reads, its parameters and MACs per sample.

    `mac_status` is "counted", "no MACs" (data movement), "constant" (computed from weights
    only: not part of a pass), "not counted" (an op the counter does not know) or "shape
    unknown" (a counted op whose shapes inference could not give).
    """

    index: int
    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    output_shapes: list[Shape | None]
    output_dtypes: list[str | None]
    attributes: dict[str, Any]
    weights: list[str]
    params: int
    macs: int | None
    mac_status: str

    @property
    def label(self) -> str:
        """The op as the histogram names it (`com.microsoft.FusedConv` for contrib ops)."""
        if self.domain and self.domain != "ai.onnx":
            return f"{self.domain}.{self.op_type}"
        return self.op_type


@dataclass
class OnnxAnalysis:
    """Everything `analyze_onnx` found; views (`onnx_info`, `summarize_onnx`) read only this."""

    path: Path
    model: Any
    warnings: list[str]
    external: list[dict[str, Any]]
    shapes: dict[str, Shape | None]
    dtypes: dict[str, str]
    initializers: list[dict[str, Any]]
    generated: list[dict[str, Any]]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    nodes: list[NodeFacts]
    batch: int | str | None
    dims: dict[str, int]
    weight_stats: dict[str, Any]
    totals: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------ helpers
def _is_param(dtype: str | None) -> bool:
    return dtype is not None and dtype.upper() not in _INDEX_TYPES


def _num(x: float) -> float | str:
    """A JSON-safe float (NaN/inf become strings)."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


def _tensor_stats(array: Any) -> dict[str, Any]:
    import numpy as np

    if array.size == 0 or array.dtype.kind not in "fiub":
        return {"min": None, "max": None, "mean": None, "std": None}
    a = array.astype(np.float64, copy=False)
    return {
        "min": _num(a.min()),
        "max": _num(a.max()),
        "mean": _num(a.mean()),
        "std": _num(a.std()),
    }


def _foldable(node: Any, constants: Mapping[str, str]) -> bool:
    """Whether a node computes from constants only (so its outputs are weights, not activations)."""
    if node.op_type == "Constant":
        return (node.domain or "") in _STANDARD_DOMAINS
    if (node.domain or "") not in _STANDARD_DOMAINS or node.op_type in _RANDOM_OPS:
        return False
    inputs = [i for i in node.input if i]
    if not inputs or any(a.g.ByteSize() or len(a.graphs) for a in node.attribute):
        return False
    return all(i in constants for i in inputs)


def _constant_shape(node: Any) -> tuple[Shape | None, str | None]:
    """Shape and dtype of a Constant node's value (shape inference may leave them out)."""
    for attr in node.attribute:
        if attr.name == "value":
            return [int(d) for d in attr.t.dims], dtype_name(attr.t.data_type)
        if attr.name in ("value_float", "value_int"):
            return [], "float" if attr.name == "value_float" else "int64"
        if attr.name in ("value_floats", "value_ints"):
            n = len(attr.floats) if attr.name == "value_floats" else len(attr.ints)
            return [n], "float" if attr.name == "value_floats" else "int64"
    return None, None


# ------------------------------------------------------------------------------ the analysis
def analyze_onnx(
    path: str | Path, *, dims: Mapping[str, int] | None = None, initializer_stats: bool = True
) -> OnnxAnalysis:
    """Load, infer shapes, fold constants, count parameters and MACs (see the module's
    conventions). Raises OnnxFileError for files it cannot read safely, CnnlabError for a
    `dims` name the file does not have."""
    path = Path(path)
    model, warnings, external = load_onnx(path)
    dims = dict(dims or {})
    inferred, t = _infer(model, dims, warnings)
    init = _read_initializers(path, model.graph, t, initializer_stats)
    folded, roots = _fold_constants(model.graph, t)
    stored, generated = _read_weights(model.graph, folded, roots, t, init.entries, warnings)
    init_names = {e["name"] for e in init.entries}
    batch = _file_batch(inferred, init_names)
    nodes = [_node_facts(i, node, i in folded, t, batch) for i, node in enumerate(model.graph.node)]
    unknown_shapes = sum(1 for n in nodes if any(s is None for s in n.output_shapes))
    if unknown_shapes:
        warnings.append(f"{unknown_shapes} node(s) have outputs whose shape could not be inferred")
    result = OnnxAnalysis(
        path=path,
        model=model,
        warnings=warnings,
        external=external,
        shapes=t.shapes,
        dtypes=t.dtypes,
        initializers=init.entries,
        generated=generated,
        inputs=[io_entry(vi) for vi in inferred.graph.input if vi.name not in init_names],
        outputs=[io_entry(vi) for vi in inferred.graph.output],
        nodes=nodes,
        batch=batch,
        dims=dims,
        weight_stats=_weight_stats(init.float_values),
    )
    result.totals = _totals(result, stored, init.nbytes)
    return result


@dataclass
class _Tensors:
    """What is known of every tensor: shape, dtype, and for constants where the data is from."""

    shapes: dict[str, Shape | None] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)  # name → "stored" | "generated"


@dataclass
class _Initializers:
    entries: list[dict[str, Any]]
    float_values: list[Any]
    nbytes: int


def _infer(model: Any, dims: dict[str, int], warnings: list[str]) -> tuple[Any, _Tensors]:
    """Shape inference (best effort on foreign files), after fixing `dims`."""
    import onnx

    work = fix_dims(model, dims) if dims else model
    try:
        inferred = onnx.shape_inference.infer_shapes(
            inference_proxy(work), check_type=False, strict_mode=False, data_prop=True
        )
    except Exception as exc:
        warnings.append(f"shape inference failed: {first_line(str(exc))}")
        inferred = work
    t = _Tensors()
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        t.shapes[vi.name] = value_shape(vi)
        if vi.type.HasField("tensor_type"):
            t.dtypes[vi.name] = dtype_name(vi.type.tensor_type.elem_type)
    return inferred, t


def _read_initializers(path: Path, graph: Any, t: _Tensors, stats: bool) -> _Initializers:
    """The stored weights (also those an IR-3 file lists as graph inputs), with statistics."""
    from onnx import numpy_helper

    from export.onnx_file import OnnxFileError

    entries: list[dict[str, Any]] = []
    float_values: list[Any] = []
    nbytes = 0
    for tensor in graph.initializer:
        shape = [int(d) for d in tensor.dims]
        dtype = dtype_name(tensor.data_type)
        t.shapes[tensor.name], t.dtypes[tensor.name] = list(shape), dtype
        t.constants[tensor.name] = "stored"
        entry: dict[str, Any] = {
            "name": tensor.name,
            "dtype": dtype,
            "shape": shape,
            "size": prod(shape),
            "param": _is_param(dtype),
        }
        if stats or entry["param"]:
            try:
                array = numpy_helper.to_array(tensor)
            except Exception as exc:
                raise OnnxFileError(
                    f"{path}: initializer {tensor.name!r} is unreadable ({first_line(str(exc))})"
                ) from None
            nbytes += int(array.nbytes)
            if stats:
                entry.update(_tensor_stats(array))
            if entry["param"] and array.dtype.kind == "f" and array.size:
                float_values.append(array.ravel())
        entries.append(entry)
    return _Initializers(entries, float_values, nbytes)


def _fold_constants(graph: Any, t: _Tensors) -> tuple[set[int], dict[str, str]]:
    """Mark the nodes that compute from constants only, in graph order; their outputs become
    constants. Returns (folded node indexes, roots): a root is the tensor holding a constant's
    data; copy ops (Identity, Cast, Reshape...) keep their input's."""
    folded: set[int] = set()
    roots: dict[str, str] = {name: name for name in t.constants}
    for index, node in enumerate(graph.node):
        if not _foldable(node, t.constants):
            continue
        folded.add(index)
        if node.op_type == "Constant":
            shape, dtype = _constant_shape(node)
            if node.output:
                out = node.output[0]
                if t.shapes.get(out) is None and shape is not None:
                    t.shapes[out] = shape
                if dtype and out not in t.dtypes:
                    t.dtypes[out] = dtype
                t.constants[out], roots[out] = "stored", out
            continue
        data = next((i for i in node.input if i), "")
        copy = node.op_type in _COPY_OPS
        for out in node.output:
            t.constants[out] = t.constants[data] if copy else "generated"
            roots[out] = roots[data] if copy else out
    return folded, roots


def _read_weights(
    graph: Any,
    folded: set[int],
    roots: dict[str, str],
    t: _Tensors,
    initializers: list[dict[str, Any]],
    warnings: list[str],
) -> tuple[int, list[dict[str, Any]]]:
    """The weights a pass reads (constant inputs of unfolded nodes), each data tensor once:
    (stored parameter count, generated weights)."""
    read: dict[str, str] = {}  # root → origin
    for index, node in enumerate(graph.node):
        if index not in folded:
            for name in node.input:
                if name in t.constants:
                    read.setdefault(roots[name], t.constants[name])
    generated: list[dict[str, Any]] = []
    stored = 0
    for root, origin in read.items():
        shape, dtype = t.shapes.get(root), t.dtypes.get(root)
        size = prod(concrete(shape) or []) if shape is not None else None
        if origin == "generated":
            generated.append(
                {
                    "name": root,
                    "dtype": dtype,
                    "shape": shape,
                    "size": size,
                    "param": _is_param(dtype),
                }
            )
        elif _is_param(dtype) and size is not None:
            stored += size
        if shape is None and _is_param(dtype):
            warnings.append(f"weight {root!r}: shape unknown, not counted")
    unread = [e["name"] for e in initializers if e["name"] not in read and e["param"]]
    if unread:
        warnings.append(
            f"{len(unread)} initializer(s) read by no computing node, not counted as parameters: "
            + ", ".join(unread[:5])
        )
    return stored, generated


def _node_facts(
    index: int, node: Any, is_folded: bool, t: _Tensors, batch: int | str | None
) -> NodeFacts:
    attrs = node_attributes(node)
    weights = [name for name in node.input if name in t.constants]
    params = 0
    for name in [] if is_folded else weights:  # a fold's inputs count where its output is read
        shape = t.shapes.get(name)
        if _is_param(t.dtypes.get(name)) and shape is not None:
            params += prod(concrete(shape) or [])
    macs, status = _node_macs(node, is_folded, t.shapes, attrs, batch)
    return NodeFacts(
        index=index,
        name=node.name,
        op_type=node.op_type,
        domain=node.domain or "ai.onnx",
        inputs=list(node.input),
        outputs=list(node.output),
        output_shapes=[t.shapes.get(name) for name in node.output],
        output_dtypes=[t.dtypes.get(name) for name in node.output],
        attributes=attrs,
        weights=weights,
        params=params,
        macs=macs,
        mac_status=status,
    )


def _weight_stats(float_values: list[Any]) -> dict[str, Any]:
    """min, max, mean, std and zeros over every stored floating-point parameter."""
    import numpy as np

    if not float_values:
        return {"count": 0, "min": None, "max": None, "mean": None, "std": None, "zeros": 0}
    allv = np.concatenate(float_values).astype(np.float64, copy=False)
    return {"count": int(allv.size), **_tensor_stats(allv), "zeros": int((allv == 0).sum())}


def _file_batch(inferred: Any, init_names: set[str]) -> int | str | None:
    """Dim 0 of the first graph input that is not an initializer: the file's own batch."""
    for vi in inferred.graph.input:
        if vi.name in init_names:
            continue
        shape = value_shape(vi)
        return shape[0] if shape else None
    return None


def _node_macs(
    node: Any,
    is_folded: bool,
    shapes: Mapping[str, Shape | None],
    attrs: dict[str, Any],
    batch: int | str | None,
) -> tuple[int | None, str]:
    """(MACs per sample, status) of one node; see NodeFacts.mac_status."""
    if is_folded:
        return None, "constant"
    counter = MAC_COUNTERS.get(node.op_type)
    if counter is None:
        return None, "no MACs" if node.op_type in NO_MAC_OPS else "not counted"
    view = NodeShapes(node, shapes, attrs)
    macs = counter(view)
    if macs is None:
        return None, "shape unknown"
    # Per sample: a pass at the file's batch divided by it, for the nodes that carry it (dim 0
    # of the output); a symbolic batch already counts as 1.
    out = shapes.get(node.output[0]) if node.output else None
    if isinstance(batch, int) and batch > 1 and out and len(out) >= 2 and out[0] == batch:
        macs //= batch
    return macs, "counted"


def _totals(a: OnnxAnalysis, stored: int, init_bytes: int) -> dict[str, Any]:
    macs_by_op: Counter[str] = Counter()
    not_counted: Counter[str] = Counter()
    for n in a.nodes:
        if n.macs is not None:
            macs_by_op[n.label] += n.macs
        elif n.mac_status in ("not counted", "shape unknown"):
            not_counted[n.label] += 1
    generated = sum(int(g["size"] or 0) for g in a.generated if g["param"])
    total = sum(macs_by_op.values())
    return {
        "nodes": len(a.nodes),
        "params": int(stored + generated),
        "params_stored": int(stored),
        "params_generated": int(generated),
        "initializers": len(a.initializers),
        "initializer_elements": int(sum(e["size"] for e in a.initializers)),
        "initializer_bytes": int(init_bytes),
        "macs": int(total),
        "flops": int(2 * total),
        "macs_by_op": dict(macs_by_op.most_common()),
        "not_counted": dict(not_counted.most_common()),
        "batch": a.batch,
        "dims": dict(a.dims),
        "macs_note": MAC_CONVENTION,
    }


def op_histogram(a: OnnxAnalysis) -> dict[str, int]:
    """How many nodes of each op (`domain.op` for contrib ops), most common first."""
    return dict(Counter(n.label for n in a.nodes).most_common())


def macs_summary(totals: Mapping[str, Any]) -> str:
    """The MAC total with its convention and what was not counted, as every output says it:
    `9,472 MACs per sample (batch 1; the file's batch: 2); not counted: Relu ×1`."""
    batch = totals.get("batch")
    text = (
        f"{int(totals.get('macs') or 0):,} MACs per sample "
        f"(batch 1; the file's batch: {'?' if batch is None else batch})"
    )
    skipped = totals.get("not_counted") or {}
    if skipped:
        text += "; not counted: " + ", ".join(f"{op} ×{n}" for op, n in skipped.items())
    return text
