"""Gather what a report shows from run folders: runs, parent tables, MACs, corrupt folders.

Everything here reads files the engine already wrote (run.json, summary.json); rankings and
before/after tables come from the parents' `table`, never recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import RunError, UsageError
from engine.records import Metrics, ModelInfo, Params, RunRecord
from engine.runs import Run, RunStore, read_json


@dataclass
class ReportRun:
    """One run as the report sees it: its folder and typed record, plus facts read beside it."""

    run: Run
    macs: int | None = None

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def record(self) -> RunRecord:
        return self.run.info

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def experiment(self) -> str:
        return self.record.experiment

    @property
    def is_parent(self) -> bool:
        return self.record.is_parent

    @property
    def model(self) -> ModelInfo | None:
        return self.record.model

    @property
    def metrics(self) -> Metrics:
        """The run's metrics; all None when it has none (failed early, or a parent)."""
        return self.record.metrics or Metrics()

    @property
    def params(self) -> Params | None:
        return self.record.params

    @property
    def random_init(self) -> bool:
        """The run's own model was not pretrained (a parent's table is not looked at)."""
        return bool(self.model and self.model.random_init)

    @property
    def model_name(self) -> str:
        """The backbone for transfer runs, else the model (simple_cnn, mlp, ...)."""
        return (self.model.label if self.model else "") or self.experiment

    @property
    def status(self) -> str:
        """run.json's status, or "died" when its process is gone (`Run.status`)."""
        return self.run.status


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
        """The `experiment` parents (compare, preprocessing) that hold a table."""
        return [r for r in self.runs if r.experiment == experiment and r.record.table]

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
        data = read_json(path / "run.json")
    except RunError as exc:
        return CorruptRun(path, str(exc).removeprefix(f"{path / 'run.json'}: "))
    if not isinstance(data, dict) or "id" not in data:
        return CorruptRun(path, "run.json is not a run record")
    try:  # fields of the wrong type ("metrics": "high") make it corrupt too, as in RunStore
        info = RunRecord.from_json(data, "run.json")
    except RunError as exc:
        return CorruptRun(path, str(exc))
    return ReportRun(Run(path, data, info), macs=summary_macs(path))


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
            for child in item.record.children:
                if (store.root / child / "run.json").exists():
                    queue.append(store.root / child)
    runs = [r for r in loaded.values() if isinstance(r, ReportRun)]
    corrupt = [c for c in loaded.values() if isinstance(c, CorruptRun)]
    if not runs:
        where = ", ".join(selection) if selection else str(store.root)
        extra = f" ({len(corrupt)} unreadable)" if corrupt else ""
        raise RunError(f"no readable runs to report on in {where}{extra}")
    runs.sort(key=lambda r: (r.record.created, r.id))
    return ReportData(runs, corrupt)
