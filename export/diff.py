"""`engine diff A B`: how two models differ, layer by layer and output by output.

A and B are runs or .onnx files, in any mix. Both sides with an ONNX file (a run's float export,
or the file itself) are compared node by node from the one analysis (`analyze_onnx`: params and
MACs per sample); two runs without exports are compared layer by layer from their summary.json.

Matching: by name first; what is left is aligned by op sequence (difflib), so a node renamed
by a converter or an optimizer still pairs with its twin. Quantization nodes
(QuantizeLinear/DequantizeLinear...) are counted as a group, never listed as noise.

Output divergence runs both files on CPU on the same test images (the run's data or `--data`),
each fed as its own metadata says: max |Δprob| and top-1 agreement. It is n/a, with the reason,
when the inputs or the number of classes differ, or when there is no data.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CnnlabError, UsageError
from engine.runs import Run, RunStore

DEFAULT_DIFF_IMAGES = 256  # `engine diff --images` (export.diff_cli mirrors it)
QUANT_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "com.microsoft.QuantizeLinear",
    "com.microsoft.DequantizeLinear",
}

FOLDED_ACTIVATIONS = {"Relu", "Clip"}


@dataclass
class Item:
    """One node (ONNX) or layer (Keras), reduced to what a diff compares."""

    name: str
    op: str
    shape: list[Any] | None
    params: int
    macs: int | None


@dataclass
class DiffSide:
    """One side of the diff: what the user named, and the model facts found for it."""

    label: str
    run: Run | None
    onnx: Path | None
    items: list[Item]
    quant_nodes: dict[str, int]
    totals: dict[str, Any]
    kind: str  # "onnx" | "keras"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "run_id": self.run.id if self.run else None,
            "onnx": str(self.onnx) if self.onnx else None,
            "kind": self.kind,
            "params": self.totals.get("params"),
            "macs": self.totals.get("macs"),
            "nodes": len(self.items) + sum(self.quant_nodes.values()),
            "quantization_nodes": dict(self.quant_nodes),
        }


# ------------------------------------------------------------------------------ the sides
def _onnx_side(label: str, path: Path, run: Run | None) -> DiffSide:
    from export.onnx_analysis import analyze_onnx

    analysis = analyze_onnx(path, initializer_stats=False)
    items: list[Item] = []
    quant: dict[str, int] = {}
    for node in analysis.nodes:
        if node.mac_status == "constant":  # folded weight arithmetic: not part of a pass
            continue
        if node.label in QUANT_OPS:
            quant[node.label] = quant.get(node.label, 0) + 1
            continue
        shape = node.output_shapes[0] if node.output_shapes else None
        items.append(
            Item(node.name or f"#{node.index}", node.label, _plain(shape), node.params, node.macs)
        )
    totals = {k: analysis.totals.get(k) for k in ("params", "macs", "not_counted")}
    return DiffSide(label, run, path, items, quant, totals, "onnx")


def _keras_side(label: str, run: Run) -> DiffSide:
    import json

    if not run.summary_path.is_file():
        raise UsageError(
            f"run {run.id} has neither an ONNX export nor a summary.json; run `engine export {run.id}`"
        )
    summary = json.loads(run.summary_path.read_text())
    items = [
        Item(
            str(row.get("name")),
            str(row.get("type")),
            _plain(row.get("output_shape")),
            int(row.get("params") or 0),
            row.get("macs"),
        )
        for row in summary.get("layers") or []
    ]
    totals = summary.get("totals") or {}
    return DiffSide(
        label,
        run,
        None,
        items,
        {},
        {"params": totals.get("total"), "macs": totals.get("macs"), "not_counted": {}},
        "keras",
    )


def _plain(shape: Any) -> list[Any] | None:
    return None if shape is None else [d if isinstance(d, int) else str(d) for d in shape]


def _float_export(run: Run) -> Path | None:
    from export.deploy.source import _float_export as latest

    try:
        return latest(run)
    except UsageError:
        return None


def open_side(target: str, runs_root: Path | str | None) -> DiffSide:
    """RUN|FILE → its side. A run uses its float export when it has one, else summary.json."""
    from export.onnx_file import OnnxFileError

    path = Path(target)
    if path.is_file():
        return _onnx_side(target, path, None)
    if path.suffix == ".onnx":
        raise OnnxFileError(f"{path}: no such file")
    try:
        run = RunStore(runs_root).open(target)
    except CnnlabError:
        raise UsageError(f"{target}: neither an .onnx file nor a run") from None
    export = _float_export(run)
    return _onnx_side(run.id, export, run) if export else _keras_side(run.id, run)


# ------------------------------------------------------------------------------ matching
def _changes(a: Item, b: Item) -> dict[str, list[Any]]:
    fields = {"op": (a.op, b.op), "shape": (a.shape, b.shape), "params": (a.params, b.params)}
    return {k: [x, y] for k, (x, y) in fields.items() if x != y}


def match_items(a: list[Item], b: list[Item]) -> dict[str, Any]:
    """Pairs by name, then the rest aligned by op sequence: added, removed, changed, same."""
    b_by_name = {item.name: item for item in b}
    pairs: list[tuple[Item, Item, str]] = []
    left = []
    for item in a:
        twin = b_by_name.pop(item.name, None)
        if twin is not None:
            pairs.append((item, twin, "name"))
        else:
            left.append(item)
    right = [item for item in b if item.name in b_by_name]
    removed, added = [], []
    matcher = difflib.SequenceMatcher(
        a=[i.op for i in left], b=[i.op for i in right], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            pairs += [(x, y, "position") for x, y in zip(left[i1:i2], right[j1:j2], strict=True)]
        else:
            removed += left[i1:i2]
            added += right[j1:j2]
    changed = []
    same = 0
    for x, y, how in pairs:
        delta = _changes(x, y)
        if not delta and x.name == y.name:
            same += 1
            continue
        changed.append({"a": x.name, "b": y.name, "matched_by": how, "changes": delta})
    return {
        "same": same,
        "changed": changed,
        "added": [_item_dict(i) for i in added],
        "removed": [_item_dict(i) for i in removed],
    }


def _item_dict(item: Item) -> dict[str, Any]:
    return {"name": item.name, "op": item.op, "shape": item.shape, "params": item.params}


# ------------------------------------------------------------------------------ divergence
def divergence(
    a: DiffSide,
    b: DiffSide,
    *,
    data: str | None,
    images: int,
    runs_root: Path | str | None,
    preprocessing: str | None = None,
) -> dict[str, Any]:
    """max |Δprob| and top-1 agreement of A and B on the same test images, or why it is n/a."""
    for side in (a, b):
        if side.onnx is None:
            return _na(f"{side.label} has no ONNX export; run `engine export {side.label}` first")
    assert a.onnx is not None and b.onnx is not None
    from export.deploy.measure import outputs_logits, run_batches, softmax
    from export.deploy.source import resolve_target
    from export.providers import create_session

    ta = resolve_target(a.onnx, runs_root=runs_root, preprocessing=preprocessing)
    tb = resolve_target(b.onnx, runs_root=runs_root, preprocessing=preprocessing)
    source_run = ta.run or tb.run
    x = _test_images(source_run, data, images)
    if x is None:
        return _na("no data to run on: pass --data SOURCE (the files name no run)")
    outputs = []
    for target in (ta, tb):
        session = create_session(target.model, "cpu").session
        feed = target.feed(x)
        expected = session.get_inputs()[0].shape
        if len(expected) != feed.ndim or any(
            isinstance(d, int) and d != s
            for d, s in zip(expected[1:], feed.shape[1:], strict=False)
        ):
            return _na(
                f"the inputs differ: {target.model.name} takes {expected}, the images are {list(feed.shape)}"
            )
        y = run_batches(session, feed)
        outputs.append(softmax(y) if outputs_logits(y) else y)
    ya, yb = outputs
    if ya.shape[1:] != yb.shape[1:]:
        return _na(f"different outputs: {ya.shape[-1]} vs {yb.shape[-1]} classes")
    return {
        "available": True,
        "reason": None,
        "images": int(len(x)),
        "max_abs_dprob": float(np.abs(ya - yb).max()),
        "agreement": round(float((ya.argmax(axis=1) == yb.argmax(axis=1)).mean()), 6),
    }


def _na(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason, "images": 0}


def _test_images(run: Run | None, data: str | None, n: int) -> np.ndarray | None:
    from engine.data import config_of_run, dataset_for
    from export.checks import parity_sample

    record = run.record if run else {}
    if not data and not config_of_run(record).data:
        return None
    changes = {"data": data} if data else {}
    dataset = dataset_for(config_of_run(record, **changes))
    x = np.asarray(dataset.x_test)
    if len(x) == 0:
        raise UsageError("the data has no test images")
    return np.asarray(parity_sample(x, n))


def _quantization_notes(a: DiffSide, b: DiffSide, layers: dict[str, Any]) -> list[str]:
    """Why activations vanish in a quantized copy: onnxruntime folds a Relu/Clip that follows a
    quantized op into the QuantizeLinear range, so "removed" there is not a lost layer."""
    notes = []
    for gone, quant, other in (("removed", b, a), ("added", a, b)):
        folded = [r["name"] for r in layers[gone] if r["op"] in FOLDED_ACTIVATIONS]
        if quant.quant_nodes and not other.quant_nodes and folded:
            notes.append(
                f"{', '.join(folded)}: folded into the quantization ranges of {quant.label} "
                "(a Relu/Clip after a quantized op is its QuantizeLinear's range)"
            )
    return notes


# ------------------------------------------------------------------------------ the diff
def diff_models(
    a: str | Path,
    b: str | Path,
    *,
    data: str | None = None,
    images: int = DEFAULT_DIFF_IMAGES,
    runs_root: Path | str | None = None,
    preprocessing: str | None = None,
    outputs: bool = True,
) -> dict[str, Any]:
    """The diff of A and B as a JSON-able dict (see the module docstring)."""
    side_a, side_b = open_side(str(a), runs_root), open_side(str(b), runs_root)
    same_file = side_a.onnx and side_b.onnx and side_a.onnx.resolve() == side_b.onnx.resolve()
    if same_file or (side_a.run and side_b.run and side_a.run.path == side_b.run.path):
        raise UsageError(f"{a} and {b} are the same model; diff two different ones")
    notes = []
    if side_a.kind != side_b.kind:
        keras_side = side_a if side_a.kind == "keras" else side_b
        notes.append(
            f"{keras_side.label} has no ONNX export: layers are not compared with nodes; "
            f"run `engine export {keras_side.label}` first"
        )
        layers: dict[str, Any] | None = None
    else:
        layers = match_items(side_a.items, side_b.items)
        notes += _quantization_notes(side_a, side_b, layers)
    if outputs:
        output = divergence(
            side_a,
            side_b,
            data=data,
            images=images,
            runs_root=runs_root,
            preprocessing=preprocessing,
        )
    else:
        output = _na("skipped (--no-outputs)")
    return {
        "a": side_a.to_dict(),
        "b": side_b.to_dict(),
        "unit": "nodes" if side_a.kind == "onnx" else "layers",
        "layers": layers,
        "outputs": output,
        "notes": notes,
    }
