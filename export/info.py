"""Take any .onnx file apart: opset, producer, I/O, nodes with inferred shapes, params, MACs.

Works on files cnnlab did not make. Everything the `engine onnx-info --json` command prints is
the dict `onnx_info(path)` returns, so the TUI can call it directly (in a worker thread).

Conventions, stated once:
- params: elements of the initializers with a floating or 8/16-bit integer type; int32/int64
  initializers (shapes, axes, indices) are not parameters. A node's params are those of the
  initializers it reads; totals count each initializer once.
- MACs: multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul (and onnxruntime's Fused*
  forms), for one pass with symbolic dimensions such as the batch taken as 1. FLOPs = 2 × MACs.

Refused with one clear line (OnnxFileError): missing, empty, corrupt, truncated or non-ONNX
files, ops unknown to the declared opset, missing external-data files, and external-data paths
that leave the model's folder. Only `onnx` and numpy are imported (no onnxruntime, no TF).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CnnlabError

MAX_PROTOBUF_BYTES = 2**31 - 1  # protobuf cannot parse a single message larger than 2 GiB

_INDEX_TYPES = {"INT32", "INT64", "UINT32", "UINT64", "BOOL", "STRING"}
_CONV_OPS = {"Conv", "FusedConv", "NhwcConv"}
_GEMM_OPS = {"Gemm", "FusedGemm"}
_MATMUL_OPS = {"MatMul", "FusedMatMul"}
_STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}


class OnnxFileError(CnnlabError):
    """The file is not a usable ONNX model (corrupt, truncated, unsafe, unknown op...)."""


# ------------------------------------------------------------------------------ loading
def _all_graphs(graph: Any) -> Iterator[Any]:
    """The graph and every subgraph (If/Loop/Scan bodies), depth first."""
    from onnx import AttributeProto

    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _all_graphs(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _all_graphs(sub)


def _all_tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto that can hold data: initializers and Constant/attribute tensors."""
    from onnx import AttributeProto

    for graph in _all_graphs(model.graph):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == AttributeProto.TENSOR:
                    yield attr.t
                elif attr.type == AttributeProto.TENSORS:
                    yield from attr.tensors


def check_external_data(model: Any, base_dir: Path) -> list[dict[str, Any]]:
    """Validate every external-data reference; return one entry per referenced file.

    Refuses absolute paths and paths resolving (symlinks included) outside `base_dir`, and
    reports missing files and ranges that run past the end of the file.
    """
    from onnx import TensorProto

    base = base_dir.resolve()
    files: dict[str, dict[str, Any]] = {}
    for tensor in _all_tensors(model):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries.get("location", "")
        if not location:
            raise OnnxFileError(
                f"tensor {tensor.name!r} says its data is external but names no file"
            )
        if (
            os.path.isabs(location)
            or location.startswith(("/", "\\"))
            or ":" in Path(location).parts[0]
        ):
            raise OnnxFileError(
                f"tensor {tensor.name!r}: external data path {location!r} is absolute; refused "
                "(external data must live in the model's folder)"
            )
        target = (base / location).resolve()
        if target != base and base not in target.parents:
            raise OnnxFileError(
                f"tensor {tensor.name!r}: external data path {location!r} points outside the model's folder; refused"
            )
        if not target.is_file():
            raise OnnxFileError(
                f"tensor {tensor.name!r}: external data file {location!r} is missing (looked in {base})"
            )
        size = target.stat().st_size
        try:
            offset = int(entries.get("offset", "0") or 0)
            length = int(entries["length"]) if entries.get("length") else None
        except ValueError:
            raise OnnxFileError(
                f"tensor {tensor.name!r}: unreadable external data offset/length"
            ) from None
        if offset < 0 or (length is not None and length < 0):
            raise OnnxFileError(f"tensor {tensor.name!r}: negative external data offset/length")
        end = offset + (length if length is not None else 0)
        if offset > size or end > size:
            raise OnnxFileError(
                f"tensor {tensor.name!r}: external data {location!r} is {size} bytes, "
                f"but the tensor needs bytes {offset}..{end} (truncated file?)"
            )
        info = files.setdefault(location, {"location": location, "bytes": size, "tensors": 0})
        info["tensors"] += 1
    return list(files.values())


def _checker_message(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "unknown problem"
    return first


def load_onnx(path: str | Path) -> tuple[Any, list[str], list[dict[str, Any]]]:
    """Parse, validate and load (with external data) an ONNX file.

    Returns (model, warnings, external_files). Raises OnnxFileError with one clear line.
    """
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.exists():
        raise OnnxFileError(f"{path}: no such file")
    if not path.is_file():
        raise OnnxFileError(f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise OnnxFileError(f"{path}: empty file, not an ONNX model")
    if size > MAX_PROTOBUF_BYTES:
        raise OnnxFileError(
            f"{path}: {size} bytes is over protobuf's 2 GiB limit for one ONNX file"
        )
    data = path.read_bytes()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError:
        raise OnnxFileError(
            f"{path}: not an ONNX model, or a corrupt/truncated one (protobuf could not parse it)"
        ) from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
        raise OnnxFileError(f"{path}: not an ONNX model (no IR version, graph or opset import)")
    warnings: list[str] = []
    opsets = {(o.domain or ""): o.version for o in model.opset_import}
    for graph in _all_graphs(model.graph):
        for node in graph.node:
            domain = node.domain or ""
            label = node.name or f"#{list(graph.node).index(node)}"
            if domain not in opsets and not (domain == "ai.onnx" and "" in opsets):
                raise OnnxFileError(
                    f"{path}: node {label} ({node.op_type}) uses domain {domain!r}, which the model does not import"
                )
            version = opsets[domain] if domain in opsets else opsets[""]  # ai.onnx is ""
            if domain in _STANDARD_DOMAINS:
                schema_domain = "" if domain == "ai.onnx" else domain
                if not onnx.defs.has(node.op_type, version, schema_domain):
                    raise OnnxFileError(
                        f"{path}: unknown op {node.op_type!r} (node {label}) in domain "
                        f"{domain or 'ai.onnx'} at opset {version}"
                    )
    custom = sorted(
        {
            (n.domain, n.op_type)
            for g in _all_graphs(model.graph)
            for n in g.node
            if (n.domain or "") not in _STANDARD_DOMAINS
        }
    )
    for domain, op in custom:
        warnings.append(
            f"custom op {op} (domain {domain}): not checked by onnx; its output shapes may be unknown"
        )
    external = check_external_data(model, path.parent)
    if external:
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(model, str(path.parent))
        except Exception as exc:
            raise OnnxFileError(
                f"{path}: could not read external data ({_checker_message(str(exc))})"
            ) from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise OnnxFileError(f"{path}: invalid ONNX model: {_checker_message(str(exc))}") from None
    return model, warnings, external


# ------------------------------------------------------------------------------ shapes
def _dtype_name(elem_type: int) -> str:
    from onnx import TensorProto

    try:
        return str(TensorProto.DataType.Name(elem_type)).lower()
    except ValueError:
        return f"type{elem_type}"


def _value_shape(vi: Any) -> list[int | str] | None:
    t = vi.type
    if not t.HasField("tensor_type"):
        return None
    if not t.tensor_type.HasField("shape"):
        return None
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in t.tensor_type.shape.dim
    ]


def _io(vi: Any) -> dict[str, Any]:
    t = vi.type
    kind = t.WhichOneof("value") or "unknown"
    dtype = _dtype_name(t.tensor_type.elem_type) if kind == "tensor_type" else kind
    return {"name": vi.name, "dtype": dtype, "shape": _value_shape(vi)}


def _concrete(shape: list[int | str] | None) -> list[int] | None:
    """Symbolic dims → 1 (batch-of-one arithmetic); None if the shape is unknown."""
    if shape is None:
        return None
    return [d if isinstance(d, int) and d > 0 else 1 for d in shape]


def _prod(values: list[int]) -> int:
    return int(math.prod(values)) if values else 1


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


# ------------------------------------------------------------------------------ MACs
def node_macs(
    node: Any, shapes: dict[str, list[int | str] | None], attrs: dict[str, Any]
) -> int | None:
    """Multiply-accumulates of one node (None when not counted or shapes are unknown)."""
    op = node.op_type

    def shape(i: int, outputs: bool = False) -> list[int] | None:
        names = node.output if outputs else node.input
        return _concrete(shapes.get(names[i])) if len(names) > i and names[i] else None

    if op in _CONV_OPS:
        w, out = shape(1), shape(0, outputs=True)
        if not w or not out or len(w) < 3:
            return None
        # W: [M, C/group, k...]; each output element needs C/group × prod(k) MACs.
        return _prod(out) * w[1] * _prod(w[2:])
    if op == "ConvTranspose":
        x, w = shape(0), shape(1)
        if not x or not w or len(w) < 3:
            return None
        # W: [C, M/group, k...]; each input element is spread over (M/group) × prod(k) outputs.
        return _prod(x) * w[1] * _prod(w[2:])
    if op in _GEMM_OPS:
        a, out = shape(0), shape(0, outputs=True)
        if not a or not out or len(a) != 2:
            return None
        k = a[0] if int(attrs.get("transA", 0)) else a[1]
        return _prod(out) * k
    if op in _MATMUL_OPS:
        a, out = shape(0), shape(0, outputs=True)
        if not a or out is None:
            return None
        k = a[-1]
        return _prod(out) * k
    return None


def _attrs(node: Any) -> dict[str, Any]:
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


# ------------------------------------------------------------------------------ stats
def _num(x: float) -> float | str:
    """A JSON-safe float (NaN/inf become strings)."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


def _is_param(dtype: str) -> bool:
    return dtype.upper() not in _INDEX_TYPES


def _tensor_stats(array: np.ndarray) -> dict[str, Any]:
    if array.size == 0 or array.dtype.kind not in "fiub":
        return {"min": None, "max": None, "mean": None, "std": None}
    a = array.astype(np.float64, copy=False)
    return {
        "min": _num(a.min()),
        "max": _num(a.max()),
        "mean": _num(a.mean()),
        "std": _num(a.std()),
    }


# ------------------------------------------------------------------------------ the report
def onnx_info(
    path: str | Path, *, nodes: bool = True, initializer_stats: bool = True
) -> dict[str, Any]:
    """Everything about an ONNX file, as plain JSON-able data (what `engine onnx-info --json` prints).

    Keys: file, size_bytes, ir_version, opset, producer, graph, inputs, outputs, nodes,
    totals, op_histogram, initializers, initializer_stats, metadata, cnnlab, external_data,
    warnings. Raises OnnxFileError for files it cannot read safely.
    """
    import onnx
    from onnx import numpy_helper

    from export.convert import cnnlab_metadata

    path = Path(path)
    model, warnings, external = load_onnx(path)
    try:
        inferred = onnx.shape_inference.infer_shapes(
            _inference_proxy(model), check_type=False, strict_mode=False, data_prop=True
        )
    except Exception as exc:  # inference is best effort on foreign files
        warnings.append(f"shape inference failed: {_checker_message(str(exc))}")
        inferred = model
    graph = model.graph

    shapes: dict[str, list[int | str] | None] = {}
    dtypes: dict[str, str] = {}
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        shapes[vi.name] = _value_shape(vi)
        if vi.type.HasField("tensor_type"):
            dtypes[vi.name] = _dtype_name(vi.type.tensor_type.elem_type)

    inits: dict[str, dict[str, Any]] = {}
    float_values: list[np.ndarray] = []
    init_bytes = 0
    for tensor in graph.initializer:
        dims = [int(d) for d in tensor.dims]
        dtype = _dtype_name(tensor.data_type)
        shapes[tensor.name] = dims  # type: ignore[assignment]
        dtypes[tensor.name] = dtype
        entry: dict[str, Any] = {
            "name": tensor.name,
            "dtype": dtype,
            "shape": dims,
            "size": _prod(dims),
        }
        entry["param"] = _is_param(dtype)
        if initializer_stats or entry["param"]:
            try:
                array = numpy_helper.to_array(tensor)
            except Exception as exc:
                raise OnnxFileError(
                    f"{path}: initializer {tensor.name!r} is unreadable ({_checker_message(str(exc))})"
                ) from None
            init_bytes += int(array.nbytes)
            if initializer_stats:
                entry.update(_tensor_stats(array))
            if entry["param"] and array.dtype.kind == "f" and array.size:
                float_values.append(array.ravel())
        inits[tensor.name] = entry

    graph_inputs = [vi for vi in inferred.graph.input if vi.name not in inits]
    node_rows: list[dict[str, Any]] = []
    histogram: Counter[str] = Counter()
    total_macs = 0
    macs_by_op: Counter[str] = Counter()
    unknown_shapes = 0
    for index, node in enumerate(graph.node):
        label = (
            f"{node.domain}.{node.op_type}"
            if node.domain and node.domain != "ai.onnx"
            else node.op_type
        )
        histogram[label] += 1
        attrs = _attrs(node)
        params = sum(
            inits[name]["size"] for name in node.input if name in inits and inits[name]["param"]
        )
        macs = node_macs(node, shapes, attrs)
        if macs is not None:
            total_macs += macs
            macs_by_op[label] += macs
        out_shapes = [shapes.get(name) for name in node.output]
        if any(s is None for s in out_shapes):
            unknown_shapes += 1
        if nodes:
            node_rows.append(
                {
                    "index": index,
                    "name": node.name,
                    "op_type": node.op_type,
                    "domain": node.domain or "ai.onnx",
                    "inputs": list(node.input),
                    "outputs": list(node.output),
                    "output_shapes": out_shapes,
                    "output_dtypes": [dtypes.get(name) for name in node.output],
                    "params": params,
                    "weights": [name for name in node.input if name in inits],
                    "macs": macs,
                    "attributes": attrs,
                }
            )
    if unknown_shapes:
        warnings.append(f"{unknown_shapes} node(s) have outputs whose shape could not be inferred")

    params_total = sum(e["size"] for e in inits.values() if e["param"])
    if float_values:
        allv = np.concatenate(float_values).astype(np.float64, copy=False)
        overall = {"count": int(allv.size), **_tensor_stats(allv), "zeros": int((allv == 0).sum())}
    else:
        overall = {"count": 0, "min": None, "max": None, "mean": None, "std": None, "zeros": 0}
    metadata = {p.key: p.value for p in model.metadata_props}
    return {
        "file": str(path),
        "size_bytes": path.stat().st_size,
        "ir_version": int(model.ir_version),
        "opset": {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import},
        "producer": {"name": model.producer_name, "version": model.producer_version},
        "domain": model.domain,
        "model_version": int(model.model_version),
        "doc_string": model.doc_string,
        "graph": {"name": model.graph.name, "doc_string": model.graph.doc_string},
        "inputs": [_io(vi) for vi in graph_inputs],
        "outputs": [_io(vi) for vi in inferred.graph.output],
        "nodes": node_rows,
        "totals": {
            "nodes": len(graph.node),
            "params": int(params_total),
            "initializers": len(inits),
            "initializer_elements": int(sum(e["size"] for e in inits.values())),
            "initializer_bytes": int(init_bytes),
            "macs": int(total_macs),
            "flops": int(2 * total_macs),
            "macs_by_op": dict(macs_by_op.most_common()),
            "macs_note": "per pass with symbolic dimensions (batch) = 1; Conv, ConvTranspose, Gemm, MatMul",
        },
        "op_histogram": dict(histogram.most_common()),
        "initializers": list(inits.values()),
        "initializer_stats": overall,
        "metadata": metadata,
        "cnnlab": cnnlab_metadata(metadata),
        "external_data": external,
        "warnings": warnings,
    }
