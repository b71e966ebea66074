"""What the Inspect screen looks at, and how it gets it without importing TensorFlow.

Run folders are read as JSON (run.json, summary.json); ONNX files with `onnx` (in a thread
worker); anything that needs Keras (a bare .keras file, a run without summary.json) and the
test images (`engine data --samples`) come from `python -m engine ... --json` child processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.i18n import _, integer

if TYPE_CHECKING:
    from engine.records import RunRecord

# Child processes started here and still running: killed when the screen goes away.
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


class EngineFailed(Exception):
    """An engine child process failed; `str()` is its one-line reason."""


@dataclass
class LoadedTarget:
    """The thing being inspected, read once by a worker."""

    path: Path
    kind: str  # "run", "onnx", "keras"
    summary: dict[str, Any]
    run: dict[str, Any] | None = None
    onnx_path: Path | None = None
    keras_path: Path | None = None
    runs_root: Path | None = None

    @property
    def record(self) -> RunRecord | None:
        """The run's record, typed; None for a model file, or a run.json off its schema."""
        from engine.records import RecordError, RunRecord

        if not self.run:
            return None
        try:
            return RunRecord.from_json(self.run)
        except RecordError:
            return None

    @property
    def title(self) -> str:
        if self.run:
            return str(self.run.get("title") or self.run.get("experiment") or self.path.name)
        return self.path.name

    @property
    def data_source(self) -> str | None:
        """The data the run trained on (the images the panes should show), if known."""
        if not self.run:
            return None
        data = self.run.get("data") or {}
        config = self.run.get("config") or {}
        return data.get("source") or config.get("data")

    @property
    def classes(self) -> list[str]:
        if self.run:
            classes = (self.run.get("data") or {}).get("classes")
            if classes:
                return [str(c) for c in classes]
        meta = self.summary.get("metadata") or {}
        raw = meta.get("cnnlab.classes")
        if raw:
            try:
                return [str(c) for c in json.loads(raw)]
            except ValueError:
                pass
        return []

    @property
    def backbone(self) -> str | None:
        model = (self.run or {}).get("model") or {}
        if model.get("backbone"):
            return str(model["backbone"])
        meta = self.summary.get("metadata") or {}
        return meta.get("cnnlab.backbone") or None

    @property
    def preprocessing(self) -> str | None:
        model = (self.run or {}).get("model") or {}
        if model.get("preprocessing"):
            return str(model["preprocessing"])
        meta = self.summary.get("metadata") or {}
        return meta.get("cnnlab.preprocessing") or None


@dataclass
class Samples:
    """Test images of one data source, class-major (the order `engine data --samples` uses)."""

    source: str
    images: Any  # uint8 N×H×W×3
    labels: Any  # int N
    classes: list[str] = field(default_factory=list)


def engine_command(app: Any) -> list[str]:
    """How to start the engine: the app's EngineClient prefix when it has one (tests swap it)."""
    client = getattr(app, "engine", None)
    prefix = getattr(client, "prefix", None)
    if isinstance(prefix, list) and prefix:
        return list(prefix)
    return [sys.executable, "-m", "engine"]


def run_engine_json(prefix: list[str], args: list[str], timeout: float = 600.0) -> Any:
    """Run `engine ARGS --json` to completion (thread worker) and parse its stdout."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        proc = subprocess.Popen(
            [*prefix, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal is the app's, not the child's
        )
    except OSError as exc:
        raise EngineFailed(_("cannot start the engine: {error}").format(error=exc)) from None
    with _LIVE_LOCK:
        _LIVE.add(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise EngineFailed(
            _("engine {command} took longer than {seconds} s").format(
                command=args[0], seconds=f"{timeout:.0f}"
            )
        ) from None
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)
    if proc.returncode != 0:
        lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
        reason = next(
            (ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else ""
        )
        reason = reason.replace("engine: error:", "").strip()
        reason = reason or _("exit code {code}").format(code=proc.returncode)
        raise EngineFailed(
            _("engine {command} failed: {reason}").format(command=args[0], reason=reason)
        )
    try:
        return json.loads(out.decode("utf-8", "replace"))
    except ValueError:
        raise EngineFailed(
            _("engine {command} printed something that is not JSON").format(command=args[0])
        ) from None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_children() -> None:
    """Stop every engine child this module started (the screen is closing)."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        if proc.poll() is None:
            _kill(proc)


def read_target(path: Path, prefix: list[str], runs_root: Path | None = None) -> LoadedTarget:
    """Read a run folder, .onnx or .keras file (thread worker; raises with a readable reason)."""
    from engine.inspect import run_onnx_path
    from export.onnx_layers import summarize_onnx

    path = Path(path).expanduser()
    if path.is_dir():
        run_json = path / "run.json"
        if not run_json.is_file():
            raise ValueError(_("{path}: not a run folder (no run.json)").format(path=path))
        run = json.loads(run_json.read_text(encoding="utf-8"))
        keras_path = path / "model.keras"
        summary_path = path / "summary.json"
        onnx_path = run_onnx_path(path, run)
        if summary_path.is_file():
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        elif keras_path.is_file():
            summary = run_engine_json(prefix, ["inspect", str(path), "--json"])
        elif onnx_path is not None:
            summary = summarize_onnx(onnx_path)
        else:
            raise ValueError(
                _("run {name} has no model to inspect (a parent run, or it failed)").format(
                    name=path.name
                )
            )
        return LoadedTarget(
            path=path,
            kind="run",
            summary=summary,
            run=run,
            onnx_path=onnx_path,
            keras_path=keras_path if keras_path.is_file() else None,
            runs_root=runs_root or path.parent,
        )
    if not path.is_file():
        raise ValueError(_("{path}: no such file or run folder").format(path=path))
    if path.suffix == ".onnx":
        return LoadedTarget(
            path=path,
            kind="onnx",
            summary=summarize_onnx(path),
            onnx_path=path,
            runs_root=runs_root,
        )
    if path.suffix == ".keras":
        summary = run_engine_json(prefix, ["inspect", str(path), "--json"])
        return LoadedTarget(
            path=path, kind="keras", summary=summary, keras_path=path, runs_root=runs_root
        )
    raise ValueError(
        _("{path}: expected a run folder, an .onnx or a .keras file").format(path=path)
    )


def load_samples(prefix: list[str], source: str, per_class: int = 10) -> Samples:
    """Test images of `source` through `engine data --samples` (the child loads the data)."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="cnnlab-samples-") as tmp:
        file = Path(tmp) / "samples.npz"
        run_engine_json(
            prefix,
            ["data", source, "--json", "--samples", str(per_class), "--samples-file", str(file)],
        )
        with np.load(file, allow_pickle=False) as data:
            return Samples(
                source=source,
                images=np.asarray(data["images"]),
                labels=np.asarray(data["labels"]),
                classes=[str(c) for c in data["classes"]],
            )


def list_inspectable(runs_root: Path | None) -> list[tuple[str, Path]]:
    """(label, path) of every run with a model and every .onnx file in the runs root."""
    from engine.runs import RunStore

    items: list[tuple[str, Path]] = []
    if runs_root is None or not Path(runs_root).is_dir():
        return items
    for run in RunStore(runs_root).list():
        has_model = (run.path / "model.keras").is_file() or (run.path / "summary.json").is_file()
        if has_model:
            params = (run.record.get("params") or {}).get("total")
            label = f"{run.id}  {run.record.get('title') or run.record.get('experiment')}"
            if params:
                label += "  " + _("{count} params").format(count=integer(int(params)))
            items.append((label, run.path))
        for onnx_file in sorted(run.path.glob("*.onnx")):
            items.append((f"{run.id}/{onnx_file.name}", onnx_file))
    return items
