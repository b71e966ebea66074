"""Pilot tests of the Runs screen: listing, filter, details, overlay, delete, inspect; and of
the Compare and Data screens (they read the same run store / the fake engine's data)."""

from __future__ import annotations

import dataclasses
import sys
import time
import types
from pathlib import Path

import pytest
from conftest import CLASSES, FakeEngine, make_record, plain, write_run
from textual.screen import Screen
from textual.widgets import DataTable, Static

from engine.runs import RunStore
from tui.app import CnnLabApp
from tui.screens.compare import CompareScreen
from tui.screens.data import DataScreen
from tui.screens.overlay import OverlayScreen
from tui.screens.run_detail import RunDetailScreen
from tui.screens.runs import RunsScreen, matches
from tui.widgets.charts import BarChart, LineChart
from tui.widgets.pixels import PixelImage
from tui.widgets.run_info import model_label

NEWEST_FIRST = [
    "20260101-150000-preprocessing-ffff",
    "20260101-140000-compare-eeee",
    "20260101-130000-simple-cnn-dddd",
    "20260101-120000-transfer-cccc",
    "20260101-110000-mlp-bbbb",
    "20260101-100000-simple-cnn-aaaa",
]


async def open_runs(pilot) -> RunsScreen:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await pilot.press("2")
    await pilot.pause(0.2)
    screen = pilot.app.screen
    assert isinstance(screen, RunsScreen)
    return screen


def cell_text(table: DataTable, row: int, column: str) -> str:  # type: ignore[type-arg]
    return str(table.get_cell_at((row, table.get_column_index(column))))


async def test_runs_listed_newest_first_with_random_init_marked(runs_root: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        runs = await open_runs(pilot)
        assert [r.id for r in runs.shown] == NEWEST_FIRST
        assert runs.table.row_count == 6
        transfer = NEWEST_FIRST.index("20260101-120000-transfer-cccc")
        assert cell_text(runs.table, transfer, "model") == "MobileNetV2 ⚠"
        assert cell_text(runs.table, transfer, "test") == "55.5 %"
        assert (
            cell_text(runs.table, NEWEST_FIRST.index("20260101-130000-simple-cnn-dddd"), "status")
            == "failed"
        )
        runs.table.move_cursor(row=transfer)
        await pilot.pause()
        assert "random init" in plain(runs.query_one("#run-preview", Static))


async def test_filter_narrows_the_list(runs_root: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        runs = await open_runs(pilot)
        await pilot.press("slash")
        assert runs.focused is runs.filter_input
        runs.filter_input.value = "status:finished simple"
        await pilot.pause()
        assert [r.id for r in runs.shown] == ["20260101-100000-simple-cnn-aaaa"]
        assert "1 of 6 runs" in plain(runs.query_one("#runs-count", Static))
        await pilot.press("escape")
        await pilot.pause()
        assert len(runs.shown) == 6
        assert runs.focused is runs.table


def test_filter_terms() -> None:
    rows = {row.id: row for row in RunStore(Path("/nonexistent")).scan()}
    assert rows == {}


def test_filter_terms_on_records(runs_root: Path) -> None:
    rows = {row.id[16:]: row for row in RunStore(runs_root).scan()}
    assert matches(rows["transfer-cccc"], "random")
    assert matches(rows["transfer-cccc"], "model:mobilenet exp:transfer")
    assert not matches(rows["mlp-bbbb"], "random")
    assert matches(rows["compare-eeee"], "parent")
    assert model_label(rows["compare-eeee"].info) == "3 backbones"
    assert model_label(rows["preprocessing-ffff"].info) == "2 backbones"
    assert matches(rows["preprocessing-ffff"], "model:2 backbones")
    assert matches(rows["transfer-cccc"], "status:finished") and not matches(
        rows["simple-cnn-dddd"], "status:finished"
    )


async def test_open_details_shows_results(runs_root: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        runs = await open_runs(pilot)
        runs.table.move_cursor(row=NEWEST_FIRST.index("20260101-100000-simple-cnn-aaaa"))
        await pilot.press("enter")
        await pilot.pause()
        detail = app.screen
        assert isinstance(detail, RunDetailScreen)
        metrics = plain(detail.query_one("#box-metrics Static", Static))
        assert "69.37 %" in metrics and "gap" in metrics and "(overfits)" in metrics
        params = plain(detail.query_one("#box-params Static", Static))
        assert "2,122,186" in params
        confusion = plain(detail.query_one("#box-confusion Static", Static))
        assert "airpl" in confusion and "acc" in confusion
        bars = detail.query_one("#box-per-class BarChart", BarChart).bars
        assert [b.label for b in bars] == CLASSES
        assert any(b.note == "worst" for b in bars)
        assert len(detail.query_one("#detail-acc", LineChart).series[1].points) == 9
        onnx = plain(detail.query_one("#box-onnx Static", Static))
        assert "model.onnx" in onnx and "✓ 4.8e-07" in onnx and "cpu (fell back from auto)" in onnx
        assert "69.31 %" in onnx and "69.37 %" in onnx
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


async def test_parent_run_details_list_children_and_table(runs_root: Path) -> None:
    child = make_record(
        "20260101-140000-compare-c0",
        "transfer",
        backbone="ResNet50",
        random_init=True,
        params=(24_100_000, 20_490),
        parent="20260101-140000-compare-eeee",
    )
    write_run(runs_root, child)
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        runs = await open_runs(pilot)
        runs.table.move_cursor(row=[r.id for r in runs.shown].index("20260101-140000-compare-eeee"))
        await pilot.press("enter")
        await pilot.pause()
        detail = app.screen
        assert isinstance(detail, RunDetailScreen)
        assert "ResNet50 ⚠" in plain(detail.query_one("#box-children Static", Static))
        children = detail.query_one("#children-table", DataTable)
        assert children.row_count == 3
        assert str(children.get_cell_at((0, 1))) == "finished"
        assert str(children.get_cell_at((1, 1))) == "missing"
        children.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert (
            isinstance(app.screen, RunDetailScreen)
            and app.screen.row.id == "20260101-140000-compare-c0"
        )


async def test_overlay_validation_curves_of_selected_runs(runs_root: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        runs = await open_runs(pilot)
        await pilot.press("o")
        await pilot.pause()
        assert "Select two or more" in "\n".join(n.message for n in app._notifications)
        runs.table.move_cursor(row=NEWEST_FIRST.index("20260101-120000-transfer-cccc"))
        await pilot.press("space")  # selects and moves down to the MLP
        await pilot.press("down")
        await pilot.press("space")
        await pilot.pause()
        assert runs.selected == {"20260101-120000-transfer-cccc", "20260101-100000-simple-cnn-aaaa"}
        assert (
            cell_text(runs.table, NEWEST_FIRST.index("20260101-100000-simple-cnn-aaaa"), "mark")
            == "●"
        )
        await pilot.press("o")
        await pilot.pause()
        overlay = app.screen
        assert isinstance(overlay, OverlayScreen)
        series = overlay.query_one("#overlay-acc", LineChart).series
        assert [len(s.points) for s in series] == [6, 9]  # newest first, like the list
        assert series[0].label.endswith("⚠rand")
        bars = overlay.query_one(BarChart).bars
        assert [round(b.value, 4) for b in bars] == [0.555, 0.6937]


async def test_delete_asks_first(runs_root: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        runs = await open_runs(pilot)
        victim = "20260101-110000-mlp-bbbb"
        runs.table.move_cursor(row=NEWEST_FIRST.index(victim))
        await pilot.press("d")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")
        await pilot.pause()
        assert (runs_root / victim).is_dir()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause(0.2)
        assert not (runs_root / victim).exists()
        assert victim not in [r.id for r in runs.shown]
        assert runs.table.row_count == 5


async def test_running_run_cannot_be_deleted(runs_root: Path) -> None:
    record = make_record("20260102-100000-simple-cnn-live", status="running", test=None)
    import os

    record.pid = os.getpid()  # alive: not stale
    write_run(runs_root, record)
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        runs = await open_runs(pilot)
        assert runs.shown[0].status == "running"
        await pilot.press("d")
        await pilot.pause()
        assert type(app.screen).__name__ == "RunsScreen"
        assert (runs_root / record.id).is_dir()


async def test_inspect_key_opens_the_inspector_on_the_run(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path | None] = []

    class StubInspect(Screen[None]):
        def __init__(self, target: Path | None = None, runs_root: Path | None = None) -> None:
            super().__init__()
            opened.append(target)

    module = types.ModuleType("tui.screens.inspect")
    module.InspectScreen = StubInspect  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tui.screens.inspect", module)
    run_dir = runs_root / "20260101-100000-simple-cnn-aaaa"
    (run_dir / "summary.json").write_text("{}", encoding="utf-8")
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        runs = await open_runs(pilot)
        await pilot.press("i")  # the preprocessing parent has no model
        await pilot.pause()
        assert opened == []
        runs.table.move_cursor(row=NEWEST_FIRST.index(run_dir.name))
        await pilot.press("i")
        await pilot.pause()
        assert opened == [run_dir]


async def test_many_runs_first_rows_arrive_before_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    base = make_record("20260101-000000-simple-cnn-0000")
    for i in range(600):
        rec = dataclasses.replace(
            base,
            id=f"2026{(i // 100) + 1:02d}{(i % 28) + 1:02d}-{i % 24:02d}0000-simple-cnn-{i:04x}",
        )
        write_run(root, rec)
    app = CnnLabApp(engine=FakeEngine(), runs_root=root)
    async with app.run_test(size=(120, 40)) as pilot:
        t0 = time.perf_counter()
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause(0.05)
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        while not runs.loaded and time.perf_counter() - t0 < 20:
            await pilot.pause(0.05)
        assert runs.table.row_count == 600
        ids = [r.id for r in runs.shown]
        assert ids == sorted(ids, reverse=True)


async def test_compare_screen_ranks_backbones_and_shows_preprocessing(runs_root: Path) -> None:
    write_run(
        runs_root,
        make_record(
            "20260102-090000-transfer-1111",
            "transfer",
            test=0.41,
            backbone="VGG19",
            params=(20_000_000, 5130),
        ),
    )
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause(0.3)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        ranking = plain(compare.query_one("#ranking-table", Static))
        assert (
            ranking.index("ResNet50 ⚠") < ranking.index("VGG16 ⚠") < ranking.index("MobileNetV2 ⚠")
        )
        assert "0.027" in ranking and "random weights" in ranking
        bars = compare.query_one("#ranking-bars", BarChart).bars
        assert [b.label for b in bars] == ["ResNet50", "VGG16", "MobileNetV2"]
        assert all(b.note == "⚠" for b in bars)
        prep = plain(compare.query_one("#prep-table", Static))
        assert "27.02 %" in prep and "66.01 %" in prep and "+39.0" in prep
        # The other source: transfer runs on disk (newest per backbone).
        compare.query_one("#ranking-source").value = "transfer-runs"
        await pilot.pause()
        ranking = plain(compare.query_one("#ranking-table", Static))
        assert "VGG19" in ranking and "MobileNetV2 ⚠" in ranking and "41.00 %" in ranking


async def test_compare_screen_without_runs_explains_what_to_do(tmp_path: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=tmp_path / "empty")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause(0.3)
        text = plain(app.screen.query_one("#ranking-table", Static))
        assert "No compare run" in text and "66.01" in text


async def test_data_screen_counts_and_samples(runs_root: Path) -> None:
    engine = FakeEngine()
    app = CnnLabApp(engine=engine, runs_root=runs_root, data_source="synthetic")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("4")
        await pilot.pause(0.3)
        data = app.screen
        assert isinstance(data, DataScreen)
        assert engine.data_calls == [("synthetic", 6)]
        counts = plain(data.query_one("#data-counts", Static))
        assert "airplane" in counts and "4,000" not in counts and "400" in counts
        rows = data.query(".sample-row")
        assert len(rows) == 10
        assert len(rows.first().query(PixelImage)) == 6
        await pilot.press("z")
        await pilot.pause(0.3)
        assert data.pixel_width == 32
        assert (
            len(data.query(".sample-row").first().query(PixelImage)) == 3
        )  # as many as fit at 120 columns


async def test_data_screen_reports_a_bad_source(runs_root: Path) -> None:
    engine = FakeEngine()
    app = CnnLabApp(engine=engine, runs_root=runs_root, data_source="broken")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("4")
        await pilot.pause(0.3)
        assert "unknown data source 'broken'" in plain(app.screen.query_one("#data-counts", Static))
        assert any(n.severity == "error" for n in app._notifications)


async def test_a_failing_worker_is_a_notification_not_a_crash(runs_root: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root, data_source="explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("4")
        await pilot.pause(0.3)
        assert isinstance(app.screen, DataScreen)
        assert any("the fake engine blew up" in n.message for n in app._notifications)
        await pilot.press("1")
        await pilot.pause()
        assert app.is_running
