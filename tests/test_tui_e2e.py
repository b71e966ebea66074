"""End to end: the app drives the real engine (`python -m engine run simple-cnn`) on synthetic
data for one short epoch, then finds the run on the Runs screen. TensorFlow runs in the child
process only; this test process never imports it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from tui.app import CnnLabApp
from tui.engine_client import EngineClient
from tui.screens.experiments import ExperimentsScreen
from tui.screens.runs import RunsScreen
from tui.widgets.monitor import RunMonitor

pytestmark = pytest.mark.slow


async def test_real_engine_short_run(tmp_path: Path) -> None:
    runs_root = tmp_path / "runs"
    tf_before = "tensorflow" in sys.modules  # other tests in this process may have loaded it
    app = CnnLabApp(engine=EngineClient(), runs_root=runs_root, data_source="synthetic:easy")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        for name, value in (("subset", "200"), ("epochs", "1"), ("batch_size", "32")):
            screen.query_one(f"#edit-{name}", Input).value = value
        await pilot.pause()
        await pilot.press("ctrl+s")
        deadline = time.monotonic() + 240
        while not screen.done and time.monotonic() < deadline:
            await pilot.pause(0.25)
        assert screen.done, "the engine did not finish in time"
        state = screen.query_one(RunMonitor).state
        assert screen.done[-1][0].startswith("✓"), (screen.done, state.error)
        assert state.status == "finished"
        assert len(state.history) == 1 and state.epochs == 1
        assert state.data is not None and state.data.source == "synthetic:easy"
        assert tf_before or "tensorflow" not in sys.modules
        run_dirs = [p for p in runs_root.iterdir() if (p / "run.json").is_file()]
        assert len(run_dirs) == 1
        record = json.loads((run_dirs[0] / "run.json").read_text(encoding="utf-8"))
        assert record["status"] == "finished" and record["id"] == state.run_id
        assert record["config"]["epochs"] == 1 and record["config"]["subset"] == 200
        await pilot.press("2")
        await pilot.pause(0.5)
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        assert [r.id for r in runs.shown] == [record["id"]]
