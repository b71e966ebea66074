"""Runs are folders: `run.json` (+ `model.keras`, `summary.json`, `*.onnx`), written atomically.

No TensorFlow here: the TUI lists and reads runs with this module alone.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import RunError

SCHEMA = 1
RUNS_ENV = "CNNLAB_RUNS"


def default_runs_root() -> Path:
    """`$CNNLAB_RUNS`, else `./runs`."""
    return Path(os.environ.get(RUNS_ENV) or "runs")


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
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise RunError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def new_run_id(experiment: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{experiment}-{secrets.token_hex(2)}"


@dataclass
class Run:
    """One run folder and its record. `save()` rewrites run.json atomically."""

    path: Path
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def status(self) -> str:
        return str(self.record.get("status", "unknown"))

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
        self.record["updated"] = now_iso()
        write_json_atomic(self.run_json, self.record)

    def update(self, **fields: Any) -> None:
        self.record.update(fields)
        self.save()

    def is_stale(self) -> bool:
        """True when run.json says running but the process that wrote it is gone."""
        if self.status != "running":
            return False
        pid = self.record.get("pid")
        if not isinstance(pid, int):
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


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
        record: dict[str, Any] = {
            "schema": SCHEMA,
            "id": run_id,
            "experiment": experiment,
            "title": title,
            "parent": parent,
            "children": [],
            "status": "running",
            "error": None,
            "created": now_iso(),
            "updated": now_iso(),
            "pid": os.getpid(),
            "config": config or {},
            "model": None,
            "data": None,
            "params": None,
            "phases": [],
            "history": [],
            "metrics": None,
            "timings": {},
            "environment": None,
            "table": None,
            "onnx": None,
        }
        run = Run(path, record)
        run.save()
        return run

    def open(self, run_id_or_path: str | Path) -> Run:
        """Open a run by id, unique id prefix, or folder path."""
        candidate = Path(run_id_or_path)
        if (candidate / "run.json").is_file():
            return Run(candidate, read_json(candidate / "run.json"))
        direct = self.root / str(run_id_or_path)
        if (direct / "run.json").is_file():
            return Run(direct, read_json(direct / "run.json"))
        if self.root.is_dir():
            matches = sorted(
                p
                for p in self.root.iterdir()
                if p.name.startswith(str(run_id_or_path)) and (p / "run.json").is_file()
            )
            if len(matches) == 1:
                return Run(matches[0], read_json(matches[0] / "run.json"))
            if len(matches) > 1:
                raise RunError(
                    f"run {str(run_id_or_path)!r} is ambiguous: {', '.join(m.name for m in matches[:5])}"
                )
        raise RunError(f"no run {str(run_id_or_path)!r} under {self.root}")

    def list(self, predicate: Callable[[Run], bool] | None = None) -> list[Run]:
        """Every readable run, newest first. Unreadable folders are skipped."""
        runs: list[Run] = []
        if not self.root.is_dir():
            return runs
        for path in self.root.iterdir():
            run_json = path / "run.json"
            if not run_json.is_file():
                continue
            try:
                run = Run(path, read_json(run_json))
            except RunError:
                continue
            if predicate is None or predicate(run):
                runs.append(run)
        runs.sort(key=lambda r: (str(r.record.get("created", "")), r.id), reverse=True)
        return runs

    def delete(self, run_id_or_path: str | Path) -> Path:
        run = self.open(run_id_or_path)
        shutil.rmtree(run.path)
        return run.path
