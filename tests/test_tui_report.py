"""Pilot tests of the report keys: Runs (w), a run's details (w) and Compare (w).

The Runs and details keys start the real `engine report` child process (EngineClient) on the
fixed run store; Compare writes its tables with engine.report's table code in a worker.
"""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import FakeEngine, settle

from tui.app import CnnLabApp
from tui.engine_client import EngineClient
from tui.reports import new_report_folder, reports_root
from tui.screens.compare import CompareScreen
from tui.screens.run_detail import RunDetailScreen
from tui.screens.runs import RunsScreen

CNN = "20260101-100000-simple-cnn-aaaa"


def messages(app: CnnLabApp) -> list[str]:
    return [n.message for n in app._notifications]


def written(app: CnnLabApp, prefix: str) -> Path | None:
    for message in messages(app):
        if message.startswith(prefix):
            return Path(message.removeprefix(prefix).split(" (")[0].strip())
    return None


def test_report_folder_sits_beside_the_runs_root(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    assert reports_root(root) == (tmp_path / "reports").resolve()
    first = new_report_folder(root)
    assert first.parent == (tmp_path / "reports").resolve()
    assert first.name.startswith("report-")
    first.mkdir(parents=True)
    assert new_report_folder(root) != first  # never the same folder twice


async def test_runs_key_writes_the_report_with_the_engine(runs_root: Path) -> None:
    app = CnnLabApp(engine=EngineClient(), runs_root=runs_root, lang="en")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await settle(pilot, lambda: screen.loaded)
        screen.table.move_cursor(row=[r.id for r in screen.shown].index(CNN))
        await pilot.press("w")
        await settle(pilot, lambda: written(app, "Report written to ") is not None, timeout=60)
        path = written(app, "Report written to ")
        assert path is not None, messages(app)
        assert path.name == "report.md" and path.is_file()
        assert path.parent.parent == reports_root(runs_root)
        text = path.read_text(encoding="utf-8")
        assert CNN in text and "69.37 %" in text
        # Only the run under the cursor: the MLP is not in it.
        assert "20260101-110000-mlp-bbbb" not in text


async def test_detail_key_reports_the_run_and_a_failure_says_why(runs_root: Path) -> None:
    app = CnnLabApp(engine=EngineClient(), runs_root=runs_root, lang="en")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await settle(pilot, lambda: screen.loaded)
        screen.table.move_cursor(row=[r.id for r in screen.shown].index(CNN))
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.press("w")
        await settle(pilot, lambda: written(app, "Report written to ") is not None, timeout=60)
        path = written(app, "Report written to ")
        assert path is not None and path.is_file(), messages(app)
        assert CNN in path.read_text(encoding="utf-8")
    # A run folder whose run.json is gone: the engine's one-line reason reaches the user.
    app = CnnLabApp(engine=EngineClient(), runs_root=runs_root, lang="en")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await settle(pilot, lambda: screen.loaded)
        screen.table.move_cursor(row=[r.id for r in screen.shown].index(CNN))
        (runs_root / CNN / "run.json").unlink()
        await pilot.press("w")
        await settle(
            pilot, lambda: any(m.startswith("The report failed") for m in messages(app)), 60
        )
        failed = [m for m in messages(app) if m.startswith("The report failed")]
        assert failed and CNN in failed[0], messages(app)


async def test_compare_key_writes_ranking_and_before_after_tables(runs_root: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root, lang="en")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await settle(pilot, lambda: bool(screen.gathered.compare_runs))
        await pilot.press("w")
        await settle(pilot, lambda: written(app, "Tables written to ") is not None, timeout=30)
        folder = written(app, "Tables written to ")
        assert folder is not None, messages(app)
        assert folder.parent == reports_root(runs_root) and folder.name.startswith("compare-")
        assert sorted(p.name for p in folder.iterdir()) == [
            "preprocessing.csv",
            "preprocessing.md",
            "ranking.csv",
            "ranking.md",
        ]
        with (folder / "ranking.csv").open(encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert rows[0][:3] == ["Rank", "Backbone", "Test accuracy"]
        assert rows[1][:3] == ["1", "ResNet50 (random init)", "66.01 %"]
        assert len(rows) == 4
        md = (folder / "preprocessing.md").read_text(encoding="utf-8")
        assert "| ResNet50 (random init) | resnet | 27.02 % | 66.01 % | +39.0 |" in md


async def test_compare_key_with_nothing_to_write_says_so(tmp_path: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=tmp_path / "runs", lang="en")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause(0.3)
        await pilot.press("w")
        await pilot.pause(0.2)
        assert any(m.startswith("No table to write yet") for m in messages(app))
        assert not reports_root(tmp_path / "runs").exists()
