"""What the inspection commands take apart: a run (folder or id), a .keras or an .onnx file,
and its layer table (summary.json, the Keras model, or the ONNX analysis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import CnnlabError, UsageError, first_line


def resolve(target: str, runs_dir: Path | None) -> tuple[str, Path, dict[str, Any] | None]:
    """(kind, path, run record): kind is "run", "keras" or "onnx"."""
    from engine.runs import RunStore

    path = Path(target)
    if path.is_file():
        if path.suffix == ".onnx":
            return "onnx", path, None
        if path.suffix == ".keras":
            return "keras", path, None
        raise UsageError(f"{path}: expected a run, a .keras or an .onnx file")
    if path.suffix in (".keras", ".onnx") and not (path / "run.json").exists():
        what = "is a folder, not a file" if path.is_dir() else "no such file"
        raise CnnlabError(f"{path}: {what}")
    run = RunStore(runs_dir).open(target)
    if run.model_missing:  # its summary.json describes a model that is gone
        raise CnnlabError(f"run {run.id}: {run.problem}")
    return "run", run.path, run.record


def load_summary(kind: str, path: Path, dims: dict[str, int] | None = None) -> dict[str, Any]:
    """The layer table: the ONNX analysis, summary.json, else summarised from the Keras model
    (imports TensorFlow)."""
    from engine import inspect
    from engine.runs import read_json

    if kind == "onnx":
        from export.onnx_layers import summarize_onnx

        return summarize_onnx(path, dims=dims)
    if kind == "run":
        if (path / "summary.json").is_file():
            summary: dict[str, Any] = read_json(path / "summary.json")
            return summary
        path = path / "model.keras"
        if not path.is_file():
            raise CnnlabError(f"{path.parent}: this run has no model (a parent run, or it failed)")
    # Not a .keras archive: say so before TensorFlow's seconds-long import (Keras would then
    # call it "File not found").
    inspect.read_keras_config(path)
    try:  # TensorFlow's start-up chatter off the user's screen
        from engine.tfquiet import load_tensorflow

        load_tensorflow()
    except ImportError:
        pass
    import keras  # ~3 s: only for a model without a summary.json

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise CnnlabError(f"{path}: Keras cannot load it ({first_line(exc)})") from None
    return inspect.summarize_keras_model(model)


def run_onnx_file(path: Path, record: dict[str, Any] | None) -> Path:
    """The ONNX export of a run folder (newest of run.json's onnx.exports, else newest *.onnx)."""
    from engine.inspect import run_onnx_path

    found = run_onnx_path(path, record)
    if found is None:
        raise CnnlabError(
            f"run {path.name} has no ONNX export yet: run `engine export {path.name}`"
        )
    return found
