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
  divided by the node's batch. Conv and ConvTranspose (1-D/2-D/3-D, groups, dilation), Gemm and
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

from engine.errors import CnnlabError
from export.onnx_file import first_line, load_onnx
from export.onnx_macs import MAC_COUNTERS, NO_MAC_OPS, NodeShapes, concrete, prod

Shape = list[int | str]

MAC_CONVENTION = (
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


def dtype_name(elem_type: int) -> str:
    """`float`, `int64`...: the TensorProto type name in lower case."""
    from onnx import TensorProto

    try:
        return str(TensorProto.DataType.Name(elem_type)).lower()
    except ValueError:
        return f"type{elem_type}"


def value_shape(vi: Any) -> Shape | None:
    """A ValueInfo's shape with symbolic dims as their names (`?` for an unnamed one)."""
    t = vi.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in t.tensor_type.shape.dim
    ]


def _io(vi: Any) -> dict[str, Any]:
    t = vi.type
    kind = t.WhichOneof("value") or "unknown"
    dtype = dtype_name(t.tensor_type.elem_type) if kind == "tensor_type" else kind
    return {"name": vi.name, "dtype": dtype, "shape": value_shape(vi)}


def node_attributes(node: Any) -> dict[str, Any]:
    """A node's attributes as JSON-able values (subgraphs and tensors as placeholders)."""
    from onnx import AttributeProto, helper

    out: dict[str, Any] = {}
    for attr in node.attribute:
        if attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
            out[attr.name] = "<subgraph>"
        elif attr.type in (AttributeProto.TENSOR, AttributeProto.TENSORS):
            out[attr.name] = "<tensor>"
        else:
            value = helper.get_attribute_value(attr)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            elif isinstance(value, list):
                value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
            out[attr.name] = value
    return out


def parse_dims(specs: list[str] | None) -> dict[str, int]:
    """`["N=1", "H=224"]` → {"N": 1, "H": 224} (the `--dim` flag); CnnlabError if malformed."""
    dims: dict[str, int] = {}
    for spec in specs or []:
        name, sep, value = spec.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit() or int(value) < 1:
            raise CnnlabError(f"--dim {spec!r}: expected NAME=SIZE with SIZE ≥ 1, e.g. N=1")
        dims[name.strip()] = int(value)
    return dims


def _fix_dims(model: Any, dims: Mapping[str, int]) -> Any:
    """A copy of `model` whose named dims are fixed; CnnlabError naming the file's dims if a
    name is not one of them."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    seen: set[str] = set()
    graph = fixed.graph
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        if not vi.type.HasField("tensor_type"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                seen.add(d.dim_param)
                if d.dim_param in dims:
                    d.dim_value = dims[d.dim_param]  # a oneof: clears dim_param
    unknown = sorted(set(dims) - seen)
    if unknown:
        named = ", ".join(sorted(seen)) or "none"
        raise CnnlabError(f"no dimension named {unknown[0]!r} (this file's named dims: {named})")
    return fixed


# onnxruntime's fused ops (in files it optimised) and the standard op whose shapes they share.
_FUSED_AS_STANDARD = {"FusedConv": "Conv", "FusedGemm": "Gemm", "FusedMatMul": "MatMul"}


def _inference_proxy(model: Any) -> Any:
    """`model`, or a copy whose com.microsoft Fused* nodes are their standard ops, so that
    onnx.shape_inference (which does not know onnxruntime's contrib ops) infers through them."""
    import onnx

    fused = [
        n
        for n in model.graph.node
        if n.domain == "com.microsoft" and n.op_type in _FUSED_AS_STANDARD
    ]
    if not fused:
        return model
    proxy = onnx.ModelProto()
    proxy.CopyFrom(model)
    opset = next((o.version for o in proxy.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        return model
    for node in proxy.graph.node:
        if node.domain != "com.microsoft" or node.op_type not in _FUSED_AS_STANDARD:
            continue
        schema = onnx.defs.get_schema(_FUSED_AS_STANDARD[node.op_type], opset, "")
        node.op_type, node.domain = schema.name, ""
        keep = [a for a in node.attribute if a.name in schema.attributes]
        del node.attribute[:]
        node.attribute.extend(keep)
        del node.input[schema.max_input :]  # FusedConv's optional Z (sum) input
    return proxy


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
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from export.onnx_file import OnnxFileError

    path = Path(path)
    model, warnings, external = load_onnx(path)
    dims = dict(dims or {})
    work = _fix_dims(model, dims) if dims else model
    try:
        inferred = onnx.shape_inference.infer_shapes(
            _inference_proxy(work), check_type=False, strict_mode=False, data_prop=True
        )
    except Exception as exc:  # inference is best effort on foreign files
        warnings.append(f"shape inference failed: {first_line(str(exc))}")
        inferred = work
    graph = model.graph

    shapes: dict[str, Shape | None] = {}
    dtypes: dict[str, str] = {}
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        shapes[vi.name] = value_shape(vi)
        if vi.type.HasField("tensor_type"):
            dtypes[vi.name] = dtype_name(vi.type.tensor_type.elem_type)

    # Stored weights: the initializers (also those an IR-3 file lists as graph inputs).
    initializers: list[dict[str, Any]] = []
    constants: dict[str, str] = {}  # tensor name → "stored" | "generated"
    float_values: list[Any] = []
    init_bytes = 0
    for tensor in graph.initializer:
        dims_ = [int(d) for d in tensor.dims]
        dtype = dtype_name(tensor.data_type)
        shapes[tensor.name], dtypes[tensor.name] = list(dims_), dtype
        constants[tensor.name] = "stored"
        entry: dict[str, Any] = {
            "name": tensor.name,
            "dtype": dtype,
            "shape": dims_,
            "size": prod(dims_),
            "param": _is_param(dtype),
        }
        if initializer_stats or entry["param"]:
            try:
                array = numpy_helper.to_array(tensor)
            except Exception as exc:
                raise OnnxFileError(
                    f"{path}: initializer {tensor.name!r} is unreadable ({first_line(str(exc))})"
                ) from None
            init_bytes += int(array.nbytes)
            if initializer_stats:
                entry.update(_tensor_stats(array))
            if entry["param"] and array.dtype.kind == "f" and array.size:
                float_values.append(array.ravel())
        initializers.append(entry)

    # Fold the nodes that compute from constants only, in graph order. `roots` maps a constant
    # to the tensor holding its data: copy ops (Identity, Cast, Reshape...) keep their input's.
    folded: set[int] = set()
    roots: dict[str, str] = {name: name for name in constants}
    for index, node in enumerate(graph.node):
        if not _foldable(node, constants):
            continue
        folded.add(index)
        if node.op_type == "Constant":
            shape, const_dtype = _constant_shape(node)
            if node.output:
                out = node.output[0]
                if shapes.get(out) is None and shape is not None:
                    shapes[out] = shape
                if const_dtype and out not in dtypes:
                    dtypes[out] = const_dtype
                constants[out], roots[out] = "stored", out
            continue
        data = next((i for i in node.input if i), "")
        copy = node.op_type in _COPY_OPS
        for out in node.output:
            constants[out] = constants[data] if copy else "generated"
            roots[out] = roots[data] if copy else out

    # The weights a pass reads: constant inputs of the other nodes, each data tensor once.
    read: dict[str, str] = {}  # root → origin
    for index, node in enumerate(graph.node):
        if index not in folded:
            for name in node.input:
                if name in constants:
                    read.setdefault(roots[name], constants[name])
    generated: list[dict[str, Any]] = []
    stored = 0
    for root, origin in read.items():
        shape, root_dtype = shapes.get(root), dtypes.get(root)
        size = prod(concrete(shape) or []) if shape is not None else None
        if origin == "generated":
            generated.append(
                {
                    "name": root,
                    "dtype": root_dtype,
                    "shape": shape,
                    "size": size,
                    "param": _is_param(root_dtype),
                }
            )
        elif _is_param(root_dtype) and size is not None:
            stored += size
        if shape is None and _is_param(root_dtype):
            warnings.append(f"weight {root!r}: shape unknown, not counted")
    unread = [e["name"] for e in initializers if e["name"] not in read and e["param"]]
    if unread:
        warnings.append(
            f"{len(unread)} initializer(s) read by no computing node, not counted as parameters: "
            + ", ".join(unread[:5])
        )

    batch = _file_batch(inferred, {i["name"] for i in initializers})
    nodes: list[NodeFacts] = []
    for index, node in enumerate(graph.node):
        attrs = node_attributes(node)
        weights = [name for name in node.input if name in constants]
        params = 0
        # A folded node's inputs are counted where its output is read, not twice.
        for name in [] if index in folded else weights:
            shape = shapes.get(name)
            if _is_param(dtypes.get(name)) and shape is not None:
                params += prod(concrete(shape) or [])
        macs, status = _node_macs(node, index in folded, shapes, attrs)
        nodes.append(
            NodeFacts(
                index=index,
                name=node.name,
                op_type=node.op_type,
                domain=node.domain or "ai.onnx",
                inputs=list(node.input),
                outputs=list(node.output),
                output_shapes=[shapes.get(name) for name in node.output],
                output_dtypes=[dtypes.get(name) for name in node.output],
                attributes=attrs,
                weights=weights,
                params=params,
                macs=macs,
                mac_status=status,
            )
        )
    unknown_shapes = sum(1 for n in nodes if any(s is None for s in n.output_shapes))
    if unknown_shapes:
        warnings.append(f"{unknown_shapes} node(s) have outputs whose shape could not be inferred")

    if float_values:
        allv = np.concatenate(float_values).astype(np.float64, copy=False)
        weight_stats = {
            "count": int(allv.size),
            **_tensor_stats(allv),
            "zeros": int((allv == 0).sum()),
        }
    else:
        weight_stats = {"count": 0, "min": None, "max": None, "mean": None, "std": None, "zeros": 0}

    init_names = {i["name"] for i in initializers}
    result = OnnxAnalysis(
        path=path,
        model=model,
        warnings=warnings,
        external=external,
        shapes=shapes,
        dtypes=dtypes,
        initializers=initializers,
        generated=generated,
        inputs=[_io(vi) for vi in inferred.graph.input if vi.name not in init_names],
        outputs=[_io(vi) for vi in inferred.graph.output],
        nodes=nodes,
        batch=batch,
        dims=dims,
        weight_stats=weight_stats,
    )
    result.totals = _totals(result, stored, init_bytes)
    return result


def _file_batch(inferred: Any, init_names: set[str]) -> int | str | None:
    """Dim 0 of the first graph input that is not an initializer: the file's own batch."""
    for vi in inferred.graph.input:
        if vi.name in init_names:
            continue
        shape = value_shape(vi)
        return shape[0] if shape else None
    return None


def _node_macs(
    node: Any, is_folded: bool, shapes: Mapping[str, Shape | None], attrs: dict[str, Any]
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
    # Per sample: a pass at the node's own batch (dim 0 of its output) divided by that batch.
    out = shapes.get(node.output[0]) if node.output else None
    batch = out[0] if out and len(out) >= 2 and isinstance(out[0], int) else 1
    if batch > 1 and macs % batch == 0:
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
