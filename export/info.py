"""Take any .onnx file apart: opset, producer, I/O, nodes with inferred shapes, params, MACs.

`onnx_info(path)` is what `engine onnx-info --json` prints and what the TUI's ONNX pane shows:
a plain-JSON view of `export.onnx_analysis.analyze_onnx`, whose conventions (weights stored
vs generated, MACs per sample) it states in `totals["macs_note"]`. Works on files cnnlab did
not make. Only `onnx` and numpy are imported (no onnxruntime, no TF).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from export.onnx_analysis import analyze_onnx, op_histogram
from export.onnx_file import OnnxFileError, check_external_data, load_onnx

__all__ = ["OnnxFileError", "check_external_data", "load_onnx", "onnx_info"]


def onnx_info(
    path: str | Path,
    *,
    nodes: bool = True,
    initializer_stats: bool = True,
    dims: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Everything about an ONNX file, as plain JSON-able data (what `engine onnx-info --json` prints).

    Keys: file, size_bytes, ir_version, opset, producer, graph, inputs, outputs, nodes,
    totals, op_histogram, initializers, generated_weights, initializer_stats, metadata,
    cnnlab, external_data, warnings. `dims` fixes named dims (`{"N": 1}`). Raises
    OnnxFileError for files it cannot read safely.
    """
    from export.onnx_metadata import cnnlab_metadata

    a = analyze_onnx(path, dims=dims, initializer_stats=initializer_stats)
    model = a.model
    node_rows = [
        {
            "index": n.index,
            "name": n.name,
            "op_type": n.op_type,
            "domain": n.domain,
            "inputs": n.inputs,
            "outputs": n.outputs,
            "output_shapes": n.output_shapes,
            "output_dtypes": n.output_dtypes,
            "params": n.params,
            "weights": n.weights,
            "macs": n.macs,
            "mac_status": n.mac_status,
            "attributes": n.attributes,
        }
        for n in a.nodes
    ]
    metadata = {p.key: p.value for p in model.metadata_props}
    return {
        "file": str(a.path),
        "size_bytes": a.path.stat().st_size,
        "ir_version": int(model.ir_version),
        "opset": {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import},
        "producer": {"name": model.producer_name, "version": model.producer_version},
        "domain": model.domain,
        "model_version": int(model.model_version),
        "doc_string": model.doc_string,
        "graph": {"name": model.graph.name, "doc_string": model.graph.doc_string},
        "inputs": a.inputs,
        "outputs": a.outputs,
        "nodes": node_rows if nodes else [],
        "totals": a.totals,
        "op_histogram": op_histogram(a),
        "initializers": a.initializers,
        "generated_weights": a.generated,
        "initializer_stats": a.weight_stats,
        "metadata": metadata,
        "cnnlab": cnnlab_metadata(metadata),
        "external_data": a.external,
        "warnings": a.warnings,
    }
