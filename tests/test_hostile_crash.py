"""A crash between writing model.keras and the final run.json leaves a consistent run.

The engine saves model.keras (atomically), then summary.json, then marks the run finished with
its metrics. Here the engine is SIGKILLed right after model.keras lands: the run must list as
"died" (never "finished" with metrics it never wrote), keep its model, and leave no temp files.
The kill is injected from outside the engine: a wrapper script patches the atomic writer that
the training module uses, so the engine itself carries no test hook.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.cli import main
from engine.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]

KILL_AFTER_MODEL = """
import os, signal, sys
from contextlib import contextmanager

import engine.training.single as single

real_atomic_path = single.atomic_path


@contextmanager
def atomic_path_then_die(path):
    with real_atomic_path(path) as tmp:
        yield tmp
    if path.name == "model.keras":  # renamed into place: die before anything else is written
        os.kill(os.getpid(), signal.SIGKILL)


single.atomic_path = atomic_path_then_die
from cnnlab.cli import main

sys.exit(main(sys.argv[1:]))
"""


def test_a_kill_right_after_model_keras_leaves_a_consistent_listable_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_MODEL, "run", "mlp"]
        + ["--data", "synthetic:easy", "--subset", "100", "--epochs", "1", "--mlp-units", "8"]
        + ["--events", "none", "--runs-dir", str(runs)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    (folder,) = [p for p in runs.iterdir()]
    assert (folder / "model.keras").is_file()
    assert not (folder / "summary.json").exists()  # the kill came before it
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], "temp files left"

    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "running" and record.get("metrics") is None
    (run,) = RunStore(runs).list(with_corrupt=True)
    assert run.status == "died" and run.corrupt is None and not run.model_missing

    assert main(["runs", "list", "--json", "--runs-dir", str(runs)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "died" and row["test_accuracy"] is None and row["problem"] is None
