"""Snapshot tests (pytest-textual-snapshot): fixed run folders, a fake engine with fixed event
times, no clocks. Update with `pytest tests/test_tui_snapshots.py --snapshot-update` after
checking the new pictures (the report in snapshot_report.html shows the difference)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import FakeEngine, populate_runs, settle, training_events

from tui.app import CnnLabApp


@pytest.fixture
def snap_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run folders under ./runs of a temp cwd, so no absolute temp path shows on screen."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    populate_runs(tmp_path / "runs")
    return Path("runs")


def test_experiments_at_80x24(snap_compare: Any, snap_runs: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=snap_runs)
    assert snap_compare(app, terminal_size=(80, 24))


def test_live_progress_mid_run(snap_compare: Any, snap_runs: Path) -> None:
    engine = FakeEngine(
        (
            training_events("20260101-160000-simple-cnn-1234", epochs=3, steps=4, pause_after=2),
            0,
            [],
        )
    )
    app = CnnLabApp(engine=engine, runs_root=snap_runs)

    async def start(pilot: Any) -> None:
        await pilot.pause()  # the form is mounted just after the first frame
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(120, 40), run_before=start)


async def runs_shown(pilot: Any) -> None:
    """Open Runs and wait until every run is listed and the table has laid out its columns (a
    fixed pause sometimes caught the columns still as wide as their headers)."""
    await pilot.press("2")
    await settle(pilot, lambda: pilot.app.screen.loaded)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.1)


def test_runs_list(snap_compare: Any, snap_runs: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=snap_runs)

    async def open_runs(pilot: Any) -> None:
        await runs_shown(pilot)
        await pilot.press("down", "down", "down")  # the random-init transfer run
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=open_runs)


def test_run_details(snap_compare: Any, snap_runs: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=snap_runs)

    async def open_details(pilot: Any) -> None:
        await runs_shown(pilot)
        await pilot.press("end", "enter")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(120, 40), run_before=open_details)


def test_compare(snap_compare: Any, snap_runs: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=snap_runs)

    async def open_compare(pilot: Any) -> None:
        await pilot.press("3")
        await pilot.pause(0.4)

    assert snap_compare(app, terminal_size=(120, 40), run_before=open_compare)


def test_data_samples(snap_compare: Any, snap_runs: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=snap_runs)

    async def open_data(pilot: Any) -> None:
        await pilot.press("4")
        await pilot.pause(0.4)

    assert snap_compare(app, terminal_size=(120, 40), run_before=open_data)
