"""Read any .onnx file onnxruntime could run, and refuse only what cannot be read safely.

`load_onnx(path)` parses the file, validates every external-data reference and loads it, then
runs onnx's checker. Checker findings (an IR-3 file whose initializers are not graph inputs,
a missing value_info...) become warnings: onnxruntime runs such files, so the analysis must
too. Refused with one line (OnnxFileError): missing, empty, unparsable or truncated files,
ops unknown to the declared opset or from an undeclared domain (onnxruntime refuses them as
well), external data that is missing, truncated, or that leaves the model's folder.
Only `onnx` is imported, lazily (no onnxruntime, no TensorFlow).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.errors import CnnlabError, first_line

MAX_PROTOBUF_BYTES = 2**31 - 1  # protobuf cannot parse a single message larger than 2 GiB

_STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}


class OnnxFileError(CnnlabError):
    """The file is not a usable ONNX model (corrupt, truncated, unsafe, unknown op...)."""


# ------------------------------------------------------------------------------ loading
def all_graphs(graph: Any) -> Iterator[Any]:
    """The graph and every subgraph (If/Loop/Scan bodies), depth first."""
    from onnx import AttributeProto

    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from all_graphs(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from all_graphs(sub)


def _all_tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto that can hold data: initializers and Constant/attribute tensors."""
    from onnx import AttributeProto

    for graph in all_graphs(model.graph):
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


def _first_non_text(message: Any, where: str = "model") -> str | None:
    """The first string field (names, op types, metadata) that is not valid UTF-8, or None."""
    from google.protobuf.descriptor import FieldDescriptor

    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_STRING:
            values = [value] if isinstance(value, (str, bytes)) else value
            if any(not isinstance(v, str) for v in values):
                return f"{where}.{field.name}"
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            items = [value] if hasattr(value, "ListFields") else value
            for item in items:
                found = _first_non_text(item, f"{where}.{field.name}")
                if found is not None:
                    return found
    return None


def load_onnx(path: str | Path) -> tuple[Any, list[str], list[dict[str, Any]]]:
    """Parse, check and load (with external data) an ONNX file.

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
    bad_text = _first_non_text(model)
    if (
        bad_text is not None
    ):  # protobuf hands such strings over as bytes; nothing downstream expects them
        raise OnnxFileError(f"{path}: corrupt ONNX model ({bad_text} is not valid UTF-8 text)")
    warnings: list[str] = []
    opsets = {(o.domain or ""): o.version for o in model.opset_import}
    for graph in all_graphs(model.graph):
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
            for g in all_graphs(model.graph)
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
                f"{path}: could not read external data ({first_line(str(exc))})"
            ) from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnxruntime runs files the checker dislikes: say, don't refuse
        warnings.append(f"onnx checker: {first_line(str(exc))}")
    return model, warnings, external
