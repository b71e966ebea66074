"""Reading an ONNX graph for the analysis: tensor types and shapes (symbolic dims kept), node
attributes as plain values, named dims fixed before shape inference (`--dim N=1`), and a proxy
through which onnx's shape inference understands onnxruntime's fused ops."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import CnnlabError

Shape = list[int | str]


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


def io_entry(vi: Any) -> dict[str, Any]:
    """A graph input or output as `{name, dtype, shape}`."""
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


def fix_dims(model: Any, dims: Mapping[str, int]) -> Any:
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


def inference_proxy(model: Any) -> Any:
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
