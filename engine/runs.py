"""Runs are folders: `run.json` (+ `model.keras`, `summary.json`, `*.onnx`), written atomically.

No TensorFlow here: the TUI lists and reads runs with this module alone. `RunStore` is the one
place that reads run folders and decides a run's status ("died": run.json says running but its
process is gone); records come back typed (`Run.info`, an `engine.records.RunRecord`).
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import RunError, first_line
from engine.i18n import N_
from engine.paths import RUNS_ENV, default_runs_root  # noqa: F401  (their home is engine.paths)
from engine.records import RUN_SCHEMA, ChildPlan, CompareRow, RunRecord, ranked, to_jsonable

SCHEMA = RUN_SCHEMA
# How lists show a finished run whose model.keras is gone; translated where shown.
MODEL_MISSING_LABEL = N_("{status} (model missing)")
CORRUPT = "corrupt"  # the status of a run folder whose run.json cannot be read


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success rename it over `path`, else delete it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # Keep the real suffix: Keras refuses to save to a name that does not end in .keras.
    tmp_with_suffix = tmp.with_name(tmp.name + path.suffix) if path.suffix else tmp
    if tmp_with_suffix != tmp:
        tmp.unlink()
    try:
        yield tmp_with_suffix
        os.replace(tmp_with_suffix, path)
    finally:
        if tmp_with_suffix.exists():
            tmp_with_suffix.unlink()


def write_json_atomic(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, default=_json_default)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, Paths
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in JSON")


def read_json(path: Path) -> Any:
    """A JSON file's value; RunError with a one-line reason when it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise RunError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RunError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise RunError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise RunError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 5000 digits, [[[[…]]]]
        raise RunError(f"{path}: not valid JSON ({first_line(exc)})") from None


def new_run_id(experiment: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{experiment}-{secrets.token_hex(2)}"


@dataclass
class Run:
    """One run folder and its record.

    `record` is run.json as JSON (what `save()` writes atomically); `info` is the same record
    typed. The engine writes through `update()`, readers use `info` and `status`.
    """

    path: Path
    record: dict[str, Any]
    _info: RunRecord | None = field(default=None, repr=False, compare=False)
    _died: bool | None = field(default=None, repr=False, compare=False)
    corrupt: str | None = None  # why run.json cannot be read; the record is then a placeholder

    @classmethod
    def load(cls, path: Path) -> Run:
        """Read `path/run.json` (schema 1 or 2); RunError if unreadable, RecordError if corrupt."""
        info = RunRecord.from_json(read_json(path / "run.json"), str(path / "run.json"))
        return cls(path, info.to_json(), info)

    @classmethod
    def broken(cls, path: Path, reason: str) -> Run:
        """A run folder whose run.json cannot be read, listed with `reason` (status "corrupt").

        Its record is a placeholder (id = the folder's name) so lists can show it; it is never
        saved: the file on disk stays as it is, for a person to repair."""
        info = RunRecord(id=path.name, experiment="?", status=CORRUPT, error=reason)
        return cls(path, info.to_json(), info, corrupt=reason)

    @property
    def info(self) -> RunRecord:
        """The record, typed (re-read from `record` after every save)."""
        if self._info is None:
            self._info = RunRecord.from_json(self.record, str(self.run_json))
        return self._info

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def status(self) -> str:
        """run.json's status, or "died" when it says running but its process is gone.

        Decided once per loaded run: a list of runs never disagrees with itself."""
        if self.corrupt is not None:
            return CORRUPT
        status = str(self.record.get("status", "unknown"))
        if status != "running":
            return status
        if self._died is None:
            self._died = self.is_stale()
        return "died" if self._died else status

    @property
    def model_missing(self) -> bool:
        """A finished training run whose model.keras is gone.

        The engine saves model.keras, then summary.json, then marks the run finished: a finished
        run with a summary.json but no model.keras lost its model afterwards. (Hand-made records
        without either, as in tests, describe no model files at all.)"""
        if self.corrupt is not None or self.status != "finished":
            return False
        info = self.info
        if info.model is None or info.is_parent:
            return False
        return self.summary_path.exists() and not self.model_path.is_file()

    @property
    def problem(self) -> str | None:
        """What is wrong with this run folder, in one line (None when nothing is)."""
        if self.corrupt is not None:
            return self.corrupt
        if self.model_missing:
            return f"model.keras is missing from {self.path}"
        return None

    @property
    def status_label(self) -> str:
        """The status as lists show it: 'finished (model missing)' when the model is gone."""
        return self.status_label_in(lambda message: message)

    def status_label_in(self, gettext: Callable[[str], str]) -> str:
        """`status_label` in a language: `gettext` translates the status and the template."""
        status = gettext(self.status)
        return gettext(MODEL_MISSING_LABEL).format(status=status) if self.model_missing else status

    def require_model(self) -> Path:
        """model.keras of this run; RunError (one line) when the run is corrupt or has none."""
        if self.corrupt is not None:
            raise RunError(f"run {self.id} is corrupt: {self.corrupt}")
        if not self.model_path.is_file():
            why = "it is missing" if self.model_missing else "a parent run, or it stopped early"
            raise RunError(f"run {self.id} has no model.keras ({why})")
        return self.model_path

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    def save(self) -> None:
        if self.corrupt is not None:  # never overwrite a broken run.json with the placeholder
            raise RunError(f"run {self.id} is corrupt ({self.corrupt}); not writing its run.json")
        self.record["updated"] = now_iso()
        write_json_atomic(self.run_json, self.record)
        self._info = None

    def update(self, **fields: Any) -> None:
        """Set top-level keys (records or plain JSON values) and save."""
        self.record.update({key: to_jsonable(value) for key, value in fields.items()})
        self.save()

    def is_stale(self) -> bool:
        """True when run.json says running but the process that wrote it is gone."""
        if self.record.get("status") != "running":
            return False
        pid = self.record.get("pid")
        # 0 and negative pids name process groups, not a process: a writer never records them.
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return True
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, OverflowError):
            return True
        except PermissionError:
            return False
        return False


def transfer_ranking(runs: Iterable[Run]) -> list[CompareRow]:
    """The compare table of plain transfer runs: the newest finished one per backbone, ranked.

    `runs` newest first (as `RunStore.scan` yields them)."""
    newest: dict[str, CompareRow] = {}
    for run in runs:
        info = run.info
        if info.experiment != "transfer" or info.parent or run.status != "finished":
            continue
        row = CompareRow.of(run.id, info, run.status)
        if info.model is None or row.backbone in newest or row.test_accuracy is None:
            continue
        newest[row.backbone] = row
    return ranked(list(newest.values()))


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # e.g. a name too long, a permission denied on the way
        return False


def _has_run_json(folder: Path) -> bool:
    run_json = folder / "run.json"
    try:
        return run_json.exists() or run_json.is_symlink()
    except OSError:
        return False


def _reason(exc: RunError, run_json: Path) -> str:
    """A RunError's message with its run.json path shortened to "run.json" (the list shows the
    run's folder already)."""
    text = str(exc)
    full = str(run_json)
    return "run.json" + text[len(full) :] if text.startswith(full) else text


class RunStore:
    """The runs root: create, list, open and delete run folders."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_root()

    def create(
        self,
        experiment: str,
        *,
        title: str = "",
        config: dict[str, Any] | None = None,
        parent: str | None = None,
        plan: list[ChildPlan] | None = None,
    ) -> Run:
        self.root.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            run_id = new_run_id(experiment)
            path = self.root / run_id
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 20 collisions of 16 random bits in one second
            raise RunError(f"could not create a run folder under {self.root}")
        info = RunRecord(
            id=run_id,
            experiment=experiment,
            title=title,
            parent=parent,
            plan=list(plan or []),
            status="running",
            created=now_iso(),
            updated=now_iso(),
            pid=os.getpid(),
            config=config or {},
        )
        run = Run(path, info.to_json())
        run.save()
        return run

    def open(self, run_id_or_path: str | Path) -> Run:
        """Open a run by id, unique id prefix, or folder path (RecordError if corrupt)."""
        if not str(run_id_or_path).strip():
            raise RunError("no run given (an empty run id)")
        candidate = Path(run_id_or_path)
        # exists(), not is_file(): a run.json that is a folder or a dangling link is a broken
        # run to report as such, not "no run".
        if _has_run_json(candidate):
            return Run.load(candidate)
        direct = self.root / str(run_id_or_path)
        if _has_run_json(direct):
            return Run.load(direct)
        if _is_dir(self.root):
            matches = sorted(
                p
                for p in self.root.iterdir()
                if p.name.startswith(str(run_id_or_path)) and _has_run_json(p)
            )
            if len(matches) == 1:
                return Run.load(matches[0])
            if len(matches) > 1:
                raise RunError(
                    f"run {str(run_id_or_path)!r} is ambiguous: {', '.join(m.name for m in matches[:5])}"
                )
        raise RunError(f"no run {str(run_id_or_path)!r} under {self.root}")

    def scan(
        self, cancelled: Callable[[], bool] = lambda: False, *, with_corrupt: bool = False
    ) -> Iterator[Run]:
        """Every run, newest folder name (= start time) first, read one at a time so a caller can
        show the first ones at once. A folder whose run.json cannot be read comes as a corrupt
        run (`Run.corrupt` says why) with `with_corrupt` (lists), else it is skipped (callers
        that want results). Folders without a run.json are not runs."""
        try:
            paths = sorted(
                (p for p in self.root.iterdir() if _is_dir(p)), key=lambda p: p.name, reverse=True
            )
        except OSError:
            return
        for path in paths:
            if cancelled():
                return
            run_json = path / "run.json"
            if not _has_run_json(path):
                continue
            try:
                run = Run.load(path)
            except RunError as exc:  # RecordError included
                if with_corrupt:
                    yield Run.broken(path, _reason(exc, run_json))
                continue
            if run.id != path.name:  # a copied folder: two rows with one id would be one run
                if with_corrupt:
                    yield Run.broken(
                        path, f"run.json belongs to run {run.id!r}, not to this folder"
                    )
                continue
            yield run

    def list(
        self, predicate: Callable[[Run], bool] | None = None, *, with_corrupt: bool = False
    ) -> list[Run]:
        """Every run, newest first (corrupt ones too with `with_corrupt`, see `scan`)."""
        runs = [
            run
            for run in self.scan(with_corrupt=with_corrupt)
            if predicate is None or predicate(run)
        ]
        runs.sort(key=lambda r: (str(r.record.get("created", "")), r.id), reverse=True)
        return runs

    def children(self, parent: Run) -> builtins.list[Run]:
        """The child runs of a parent that are still on disk, in the order it ran them."""
        out = []
        for child_id in parent.info.children:
            try:
                out.append(self.open(child_id))
            except RunError:
                continue
        return out

    def delete(self, run_id_or_path: str | Path) -> Path:
        run = self.open(run_id_or_path)
        shutil.rmtree(run.path)
        return run.path
