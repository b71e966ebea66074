"""Gather what a report shows from run folders: runs, parent tables, MACs, corrupt folders.

Everything here reads files the engine already wrote (run.json, summary.json); rankings and
before/after tables come from the parents' `table`, never recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import RunError, UsageError
from engine.runs import Run, RunStore, read_json

PARENT_EXPERIMENTS = ("compare", "preprocessing")


@dataclass
class ReportRun:
    """One run as the report sees it: its folder and record, plus facts read beside it."""

    path: Path
    record: dict[str, Any]
    macs: int | None = None

    @property
    def id(self) -> str:
        return str(self.record.get("id") or self.path.name)

    @property
    def experiment(self) -> str:
        return str(self.record.get("experiment") or "")

    @property
    def is_parent(self) -> bool:
        return self.experiment in PARENT_EXPERIMENTS

    @property
    def model(self) -> dict[str, Any]:
        return self.record.get("model") or {}

    @property
    def metrics(self) -> dict[str, Any]:
        return self.record.get("metrics") or {}

    @property
    def params(self) -> dict[str, Any]:
        return self.record.get("params") or {}

    @property
    def random_init(self) -> bool:
        return bool(self.model.get("random_init"))

    @property
    def model_name(self) -> str:
        """The backbone for transfer runs, else the model (simple_cnn, mlp, ...)."""
        return str(self.model.get("backbone") or self.model.get("name") or self.experiment)

    @property
    def status(self) -> str:
        return (
            "died"
            if Run(self.path, self.record).is_stale()
            else str(self.record.get("status", "unknown"))
        )


@dataclass
class CorruptRun:
    """A folder whose run.json cannot be read, and why."""

    path: Path
    reason: str


@dataclass
class ReportData:
    """Every run of a report, parents apart, in the order they are shown (oldest first)."""

    runs: list[ReportRun]
    corrupt: list[CorruptRun] = field(default_factory=list)

    @property
    def trained(self) -> list[ReportRun]:
        """Runs that trained one model (not compare/preprocessing parents)."""
        return [r for r in self.runs if not r.is_parent]

    def parents(self, experiment: str) -> list[ReportRun]:
        return [r for r in self.runs if r.experiment == experiment and r.record.get("table")]

    def find(self, run_id: str | None) -> ReportRun | None:
        return next((r for r in self.runs if r.id == run_id), None) if run_id else None


def summary_macs(run_dir: Path) -> int | None:
    """Multiply-accumulates per image: the sum of summary.json's per-layer "macs", if present."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = read_json(path)
    except RunError:
        return None
    layers = summary.get("layers") if isinstance(summary, dict) else None
    if not isinstance(layers, list):
        return None
    return sum(int(row.get("macs") or 0) for row in layers if isinstance(row, dict))


def _load(path: Path) -> ReportRun | CorruptRun:
    try:
        record = read_json(path / "run.json")
    except RunError as exc:
        return CorruptRun(path, str(exc).removeprefix(f"{path / 'run.json'}: "))
    if not isinstance(record, dict) or "id" not in record:
        return CorruptRun(path, "run.json is not a run record")
    try:  # fields of the wrong type ("metrics": "high") make it corrupt too, as in RunStore
        from engine.records import RunRecord

        RunRecord.from_json(record, "run.json")
    except RunError as exc:
        return CorruptRun(path, str(exc))
    return ReportRun(path, record, macs=summary_macs(path))


def _resolve(store: RunStore, name: str) -> Path:
    """A run id, unique prefix or folder → its folder; a folder with a broken run.json too."""
    for candidate in (Path(name), store.root / name):
        if (candidate / "run.json").is_file():
            return candidate
    try:
        return store.open(name).path
    except RunError as exc:
        problem = exc
    if store.root.is_dir():  # a unique prefix of a folder whose run.json does not parse
        matches = [
            p for p in store.root.iterdir() if p.name.startswith(name) and (p / "run.json").exists()
        ]
        if len(matches) == 1:
            return matches[0]
    raise UsageError(str(problem))


def collect_report(runs_root: Path | str | None, selection: list[str] | None = None) -> ReportData:
    """The runs named in `selection` (ids, prefixes or folders) with their children, or all.

    A parent (compare, preprocessing) brings its children along, so its figures and MACs are
    there. No readable run at all is an error; unreadable ones are listed, not fatal.
    """
    store = RunStore(runs_root)
    if selection:
        folders = [_resolve(store, name) for name in selection]
    elif store.root.is_dir():
        folders = sorted(p for p in store.root.iterdir() if (p / "run.json").exists())
    else:
        folders = []
    loaded: dict[Path, ReportRun | CorruptRun] = {}
    queue = list(folders)
    while queue:
        folder = queue.pop(0).resolve()
        if folder in loaded:
            continue
        item = loaded[folder] = _load(folder)
        if isinstance(item, ReportRun) and item.is_parent:
            for child in item.record.get("children") or []:
                if (store.root / str(child) / "run.json").exists():
                    queue.append(store.root / str(child))
    runs = [r for r in loaded.values() if isinstance(r, ReportRun)]
    corrupt = [c for c in loaded.values() if isinstance(c, CorruptRun)]
    if not runs:
        where = ", ".join(selection) if selection else str(store.root)
        extra = f" ({len(corrupt)} unreadable)" if corrupt else ""
        raise RunError(f"no readable runs to report on in {where}{extra}")
    runs.sort(key=lambda r: (str(r.record.get("created", "")), r.id))
    return ReportData(runs, corrupt)
