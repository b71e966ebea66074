"""Results on disk the panes put next to the figures: the preprocessing ablation's accuracies
(the assignment's and the runs'), and a run's ONNX export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The assignment's before (x/255) → after (own preprocess_input) test accuracies; "~" values
# are the write-up's approximations. MobileNetV2's "after" is its nine-backbone result.
ASSIGNMENT_PREPROCESSING: dict[str, dict[str, Any]] = {
    "ResNet50": {"before": 0.2702, "after": 0.6601, "approx_before": False},
    "VGG16": {"before": 0.25, "after": 0.6371, "approx_before": True},
    "EfficientNetB0": {"before": 0.23, "after": 0.5713, "approx_before": True},
    "MobileNetV2": {"before": 0.21, "after": 0.2994, "approx_before": True},
}


def assignment_percent(backbone: str) -> tuple[str, str] | None:
    """The assignment's before/after accuracies of `backbone` as percent texts for tables:
    ("27.02", "66.01"), approximate ones marked ("~25", "63.71"); None if it has none."""
    ref = ASSIGNMENT_PREPROCESSING.get(backbone)
    if ref is None:
        return None

    def pct(value: float) -> str:
        return f"{value * 100:.2f}".rstrip("0").rstrip(".")

    before = pct(ref["before"])
    return ("~" + before if ref["approx_before"] else before), pct(ref["after"])


def preprocessing_results(runs_root: Path | None) -> dict[str, dict[str, Any]]:
    """Per backbone, the test accuracy of runs fed x/255 ("before") and their own ("after").

    Reads `preprocessing` parent runs' tables first, then single transfer runs (their
    `config.preprocessing` says which); the newest finished run wins.
    """
    from engine.runs import RunStore

    results: dict[str, dict[str, Any]] = {}
    if runs_root is None or not Path(runs_root).is_dir():
        return results
    runs = RunStore(runs_root).list(lambda r: r.status == "finished")
    for run in runs:  # newest first: setdefault keeps the newest
        for row in run.record.get("table") or []:
            if not isinstance(row, dict) or "before" not in row:
                continue
            entry = results.setdefault(str(row.get("backbone")), {})
            if row.get("before") is not None:
                entry.setdefault("before", row["before"])
                entry.setdefault("before_run", row.get("wrong_run_id"))
            if row.get("after") is not None:
                entry.setdefault("after", row["after"])
                entry.setdefault("after_run", row.get("right_run_id"))
            entry.setdefault("random_init", bool(row.get("random_init")))
    for run in runs:
        model = run.record.get("model") or {}
        metrics = run.record.get("metrics") or {}
        backbone = model.get("backbone")
        acc = metrics.get("test_accuracy")
        if not backbone or acc is None:
            continue
        key = "before" if model.get("preprocessing") == "unit" else "after"
        entry = results.setdefault(str(backbone), {})
        if key not in entry:
            entry[key] = acc
            entry[f"{key}_run"] = run.id
            entry.setdefault("random_init", bool(model.get("random_init")))
    return results


def run_onnx_path(run_dir: Path, record: dict[str, Any] | None) -> Path | None:
    """A run's ONNX export: the newest entry of run.json's `onnx.exports` that still exists,
    else the newest *.onnx in the folder, else None."""
    run_dir = Path(run_dir)
    onnx_record = (record or {}).get("onnx") or {}
    exports = onnx_record.get("exports") if isinstance(onnx_record, dict) else None
    for entry in reversed(exports or []):
        for key in ("path", "file"):
            value = entry.get(key) if isinstance(entry, dict) else None
            if not value:
                continue
            candidate = Path(value)
            if not candidate.is_absolute():
                candidate = run_dir / candidate
            if candidate.is_file():
                return candidate
    files = sorted(run_dir.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    return files[0] if files else None
