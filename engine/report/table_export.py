"""`engine runs export`: one row per run (config, params, metrics, timings) as CSV or JSON.

The flat table people paste into a spreadsheet. Numbers are written plainly (0.6937, not
"69,37 %"): the spreadsheet formats them. A folder whose run.json is unreadable is a row with
status "corrupt", so the count of rows is the count of run folders.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from engine.report.assemble import CorruptRun, ReportRun, collect_report

FIXED_COLUMNS = (
    "id",
    "experiment",
    "title",
    "status",
    "parent",
    "created",
    "model",
    "backbone",
    "weights",
    "random_init",
    "preprocessing",
    "input_size",
    "params_total",
    "params_trainable",
    "params_frozen",
    "macs",
    "train_accuracy",
    "val_accuracy",
    "test_accuracy",
    "train_loss",
    "val_loss",
    "test_loss",
    "overfit_gap",
    "epochs_run",
    "best_epoch",
)


def _flat(value: Any) -> Any:
    """Lists become "a;b;c" so every cell is one value; None stays empty."""
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def run_row(run: ReportRun) -> dict[str, Any]:
    """The export row of one run: fixed columns, then `config_*` and `timing_*` ones."""
    record, model, params, m = run.record, run.model, run.params, run.metrics
    row: dict[str, Any] = {
        "id": run.id,
        "experiment": run.experiment,
        "title": record.title,
        "status": run.status,
        "parent": record.parent,
        "created": record.created,
        "model": model.name if model else None,
        "backbone": model.backbone if model else None,
        "weights": model.weights if model else None,
        "random_init": model.random_init if model else None,
        "preprocessing": model.preprocessing if model else None,
        "input_size": model.input_size if model else None,
        "params_total": params.total if params else None,
        "params_trainable": params.trainable if params else None,
        "params_frozen": params.frozen if params else None,
        "macs": run.macs,
        "train_accuracy": m.train_accuracy,
        "val_accuracy": m.val_accuracy,
        "test_accuracy": m.test_accuracy,
        "train_loss": m.train_loss,
        "val_loss": m.val_loss,
        "test_loss": m.test_loss,
        "overfit_gap": m.overfit_gap,
        "epochs_run": m.epochs_run,
        "best_epoch": m.best_epoch,
    }
    for key, value in sorted(record.config.items()):
        row[f"config_{key}"] = _flat(value)
    for key, value in sorted(record.timings.items()):
        row[f"timing_{key}"] = _flat(value)
    return row


def export_rows(runs_root: Path | str | None) -> list[dict[str, Any]]:
    """One row per run folder under `runs_root`, oldest first; corrupt folders included."""
    data = collect_report(runs_root)
    rows = [run_row(run) for run in data.runs]
    rows += [_corrupt_row(c) for c in data.corrupt]
    return rows


def _corrupt_row(corrupt: CorruptRun) -> dict[str, Any]:
    return {"id": corrupt.path.name, "status": "corrupt", "title": corrupt.reason}


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The fixed columns, then every config_/timing_ column any row has, sorted."""
    extra = sorted({key for row in rows for key in row} - set(FIXED_COLUMNS))
    return list(FIXED_COLUMNS) + extra


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def to_json(rows: list[dict[str, Any]]) -> str:
    names = columns(rows)
    return json.dumps([{k: row.get(k) for k in names} for row in rows], indent=2) + "\n"


def write_text(target: str, text: str) -> None:
    """Write `text` to `target` atomically, or to stdout when `target` is "-"."""
    if target == "-":
        sys.stdout.write(text)
        return
    from engine.runs import atomic_path

    with atomic_path(Path(target)) as tmp:
        tmp.write_text(text, encoding="utf-8")
