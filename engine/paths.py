"""Where cnnlab keeps its runs by default. Stdlib only: the TUI reads it before its first frame,
when the run records (engine.runs, engine.records) are not loaded yet."""

from __future__ import annotations

import os
from pathlib import Path

RUNS_ENV = "CNNLAB_RUNS"


def default_runs_root() -> Path:
    """`$CNNLAB_RUNS`, else `./runs`."""
    return Path(os.environ.get(RUNS_ENV) or "runs")
