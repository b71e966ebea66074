"""Pilot tests of the Deploy pane and the Diff screen, with real `engine deploy` / `engine diff`
child processes on the hand-built conv net of test_deploy (no TensorFlow anywhere)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeEngine
from test_deploy import FAST, make_run
from test_tui_inspect import open_inspector, text_of
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable

from export.deploy.lab import deploy
from tui.screens.diff import DiffScreen
from tui.screens.inspect import InspectScreen
from tui.widgets.charts import BarChart
from tui.widgets.inspect.deploy_pane import DeployPane, read_variants, variant_rows

FAST_CHILD = ["--variants", "fp32,int8", "--calibration", "32", "--latency-runs", "2", "--throughput-repeats", "1", "--layer-error", "--provider", "cpu"]  # fmt: skip


class Host(App[None]):
    def __init__(self, screen: Any) -> None:
        super().__init__()
        self.engine = FakeEngine()  # no prefix: panes start `python -m engine` for real
        self.first = screen

    def on_mount(self) -> None:
        self.push_screen(self.first)


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        await pilot.pause(0.1)
    raise AssertionError("timed out waiting for the screen")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    run = make_run(tmp_path_factory.mktemp("runs"))
    result = deploy(
        run.id,
        runs_root=run.path.parent,
        variants="fp32,int8",
        calibration=32,
        layer_error=True,
        **FAST,
    )
    return run.path, result


async def test_stored_variants_table_chart_and_layer_error(
    deployed: tuple[Path, dict[str, Any]],
) -> None:
    run_dir, result = deployed
    app = Host(InspectScreen(target=run_dir, runs_root=run_dir.parent, tab="tab-deploy"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector(pilot)
        assert screen.tabs.active == "tab-deploy"
        pane = screen.deploy_pane
        assert [(r.variant, r.provider) for r in pane.rows] == [("fp32", "cpu"), ("int8", "cpu")]
        assert pane.variants_table.row_count == 2
        accuracy = result["variants"][1]["results"][0]["accuracy"]
        assert pane.variants_table.get_row_at(1)[3] == f"{accuracy * 100:.1f}"
        bars = pane.query_one("#deploy-chart", BarChart).bars
        assert {b.label.split()[0] for b in bars} == {"acc", "p50", "MB"}
        assert pane.layers_table.row_count == len(result["layer_error"]) > 0
        assert "stored in run.json" in text_of(pane, "#deploy-status")
        # Enter on the worst node keeps it in float on the next run.
        worst = result["layer_error"][0]["node"]
        pane.layers_table.focus()
        await pilot.press("enter")
        assert pane.excluded == [worst] and worst in text_of(pane, "#deploy-status")
        assert pane.deploy_args()[4:6] == ["--exclude", worst]
        await pilot.press("enter")
        assert pane.excluded == [] and "--exclude" not in pane.deploy_args()


async def test_deploy_runs_as_a_child_and_can_be_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path)
    monkeypatch.setattr(DeployPane, "options", FAST_CHILD)
    app = Host(InspectScreen(target=run.path, runs_root=tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector(pilot)
        pane = screen.deploy_pane
        assert pane.rows == [] and "No variants yet" in text_of(pane, "#deploy-status")
        # Started and cancelled at once: nothing is written into the run.
        await pilot.press("R")
        assert screen.tabs.active == "tab-deploy"
        await wait_for(pilot, lambda: pane.running)
        await pilot.press("C")
        await wait_for(pilot, lambda: "cancelled" in text_of(pane, "#deploy-status"))
        assert not pane.running and not (run.path / "deploy").exists()
        # Again, to the end: progress lines, then the table from the child's JSON.
        await pilot.press("R")
        await wait_for(pilot, lambda: "engine deploy:" in text_of(pane, "#deploy-status"))
        await wait_for(pilot, lambda: "deploy finished" in text_of(pane, "#deploy-status"), 120)
        assert [r.variant for r in pane.rows] == ["fp32", "int8"]
        assert pane.layers_table.row_count > 0
        assert (run.path / "deploy" / "int8.onnx").is_file()


def test_variant_rows_keep_errors() -> None:
    stored = {
        "variant": "fp16",
        "file": "deploy/fp16.onnx",
        "size_bytes": 2_000_000,
        "results": [{"provider": {"requested": "cpu"}, "error": "no kernel"}],
    }
    rows = variant_rows(read_variants([stored]))
    assert rows[0].error == "no kernel" and rows[0].size_mb == 2.0 and rows[0].accuracy is None


async def test_diff_screen(deployed: tuple[Path, dict[str, Any]]) -> None:
    run_dir, _ = deployed
    int8 = run_dir / "deploy" / "int8.onnx"
    app = Host(DiffScreen(run_dir, int8, runs_root=run_dir.parent))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        await wait_for(pilot, lambda: screen.result is not None)
        summary = text_of(screen, "#diff-summary")
        assert "quantization: QuantizeLinear" in summary and "top-1 agreement" in summary
        table = screen.query_one("#diff-table", DataTable)
        layers = screen.result["layers"]
        assert table.row_count == len(layers["added"]) + len(layers["removed"]) + len(
            layers["changed"]
        )


async def test_diff_from_inspect_picks_the_second_model(
    deployed: tuple[Path, dict[str, Any]],
) -> None:
    run_dir, _ = deployed
    app = Host(InspectScreen(target=run_dir, runs_root=run_dir.parent))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_inspector(pilot)
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen))
        screen = app.screen
        assert isinstance(screen, DiffScreen) and screen.has_class("picking")
        await pilot.click("#diff-picker-path")
        await pilot.press(*str(run_dir / "model.onnx"), "enter")
        # The run's own export: the engine refuses a model against itself, in one line.
        await wait_for(pilot, lambda: "failed" in text_of(screen, "#diff-title"))
        assert "same model" in text_of(screen, "#diff-title")


async def test_lessons_show_the_reference_check(tmp_path: Path) -> None:
    import json

    from engine.runs import RunStore

    run = RunStore(tmp_path).create("transfer", config={"data": "synthetic:200"})
    rows = [
        {"name": "input", "type": "InputLayer", "output_shape": [None, 32, 32, 3], "params": 0, "trainable_params": 0, "macs": 0, "parent": "resnet50", "inbound": []},
        {"name": "conv1", "type": "Conv2D", "output_shape": [None, 16, 16, 64], "params": 9472, "trainable_params": 9472, "macs": 2_359_296, "parent": "resnet50", "inbound": ["input"]},
        {"name": "bn1", "type": "BatchNormalization", "output_shape": [None, 16, 16, 64], "params": 256, "trainable_params": 128, "macs": 0, "parent": "resnet50", "inbound": ["conv1"]},
        {"name": "dense", "type": "Dense", "output_shape": [None, 10], "params": 650, "trainable_params": 650, "macs": 640, "inbound": ["bn1"]},
    ]  # fmt: skip
    summary = {
        "model": "transfer",
        "format": "keras",
        "inputs": [{"name": "input", "shape": [None, 32, 32, 3]}],
        "outputs": [],
        "layers": rows,
        "totals": {
            "total": 10378,
            "trainable": 10250,
            "frozen": 128,
            "macs": 2_359_936,
            "layers": 4,
        },
    }
    run.summary_path.write_text(json.dumps(summary))
    run.update(status="finished")
    app = Host(InspectScreen(target=run.path, runs_root=tmp_path, tab="tab-lessons"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector(pilot)
        await wait_for(pilot, lambda: "Reference check" in text_of(screen, "#reference-check"))
        text = text_of(screen, "#reference-check")
        assert "ResNet50" in text and "128 here, in 1 layers" in text and "v1.5" in text
        assert "32×32" in text and "(dense) adds 650" in text


async def test_runs_list_diffs_two_marked_runs_and_details_open_deploy(tmp_path: Path) -> None:
    from tui.app import CnnLabApp
    from tui.screens.run_detail import RunDetailScreen
    from tui.screens.runs import RunsScreen

    first, second = make_run(tmp_path), make_run(tmp_path)
    app = CnnLabApp(engine=FakeEngine(), runs_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        runs = await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen)
        await wait_for(pilot, lambda: len(runs.shown) == 2)
        await pilot.press("equals_sign")  # nothing marked: a hint, no screen
        assert app.screen is runs
        await pilot.press("space", "space", "equals_sign")
        diff = await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen) and app.screen)
        await wait_for(pilot, lambda: diff.result is not None)
        assert {diff.result["a"]["run_id"], diff.result["b"]["run_id"]} == {first.id, second.id}
        assert diff.result["outputs"]["agreement"] == 1.0  # the same hand-built net twice
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is runs)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.press("D")
        inspect = await wait_for(
            pilot, lambda: isinstance(app.screen, InspectScreen) and app.screen
        )
        await wait_for(pilot, lambda: inspect.loaded is not None)
        assert inspect.tabs.active == "tab-deploy"
