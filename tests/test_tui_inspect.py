"""Pilot tests of the Inspect screen: every pane on a tiny trained run and on a hand-built ONNX
file, the picker, errors as notifications, and a ~600-layer table staying responsive."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FakeEngine
from rich.console import Console
from test_inspect_support import HAND_META, hand_built_onnx, trained_run
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Select, Static

from engine.data import SYNTHETIC_CLASSES
from tui.app import CnnLabApp
from tui.screens import inspect as inspect_screen
from tui.screens.inspect import InspectScreen
from tui.screens.inspect_target import Samples

CLASSES = SYNTHETIC_CLASSES  # the synthetic source's names, as a run on it would record


def fake_samples(prefix: list[str], source: str, per_class: int = 10) -> Samples:
    """Deterministic test images without a child process (one pattern per class)."""
    labels = np.repeat(np.arange(10), 2)
    images = np.zeros((len(labels), 32, 32, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, :, :] = ((label * 25) % 256, (label * 70) % 256, 200)
        images[i, 4 + label : 20 + label, 8:24] = 255 - images[i, 0, 0]
    return Samples(source=source, images=images, labels=labels, classes=CLASSES)


@pytest.fixture(autouse=True)
def no_child_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspect_screen, "load_samples", fake_samples)


class InspectHost(App[None]):
    """Just the Inspect screen, the way the app pushes it (`open_inspector`)."""

    def __init__(self, target: Path | None, runs_root: Path) -> None:
        super().__init__()
        self.engine = FakeEngine()
        self.target, self.runs_root = target, runs_root

    def on_mount(self) -> None:
        self.push_screen(InspectScreen(target=self.target, runs_root=self.runs_root))


def make_app(target: Path | None, runs_root: Path) -> App[None]:
    return InspectHost(target, runs_root)


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError("timed out waiting for the screen")


def screen_of(pilot: Pilot[Any]) -> InspectScreen:
    screen = pilot.app.screen
    assert isinstance(screen, InspectScreen)
    return screen


def text_of(widget: Any, selector: str) -> str:
    """The plain text a Static shows (strings, Rich Text, tables or groups)."""
    content = widget.query_one(selector, Static).content
    if isinstance(content, str):
        return content
    console = Console(width=160, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(content)
    return capture.get()


async def open_inspector(pilot: Pilot[Any]) -> InspectScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, InspectScreen))
    screen = screen_of(pilot)
    await wait_for(pilot, lambda: screen.loaded is not None)
    await pilot.pause()
    return screen


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_run(tmp_path_factory)


async def test_layers_arithmetic_and_freeze_map(run_dir: Path) -> None:
    app = make_app(run_dir, run_dir.parent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector(pilot)
        table = screen.layer_table
        assert table.row_count == 8
        assert "2,122,186 params" in text_of(screen, "#inspect-title")
        await pilot.press("down", "down", "down")  # image, conv1, pool1 → conv2
        await wait_for(pilot, lambda: "conv2" in text_of(screen, "#arithmetic"))
        arithmetic = text_of(screen, "#arithmetic")
        assert "3·3·32·64 + 64 = 18,496" in arithmetic
        assert "(16 − 3 + 2·1)/1 + 1 = 16" in arithmetic
        assert "✓ params" in arithmetic
        await pilot.press("down", "down", "down")  # pool2, flatten → dense1
        await wait_for(
            pilot, lambda: "4,096·512 + 512 = 2,097,664" in text_of(screen, "#arithmetic")
        )
        assert "4 layers, 2,122,186 params train" in text_of(screen, "#freeze-map")


async def test_filters_pane_pages_and_channels(run_dir: Path) -> None:
    app = make_app(run_dir, run_dir.parent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector(pilot)
        pane = screen.query_one("#filters-pane")
        await pilot.press("f")
        await wait_for(pilot, lambda: pane.report is not None)
        assert pane.report["mode"] == "rgb" and pane.report["kernel_shape"] == [3, 3, 3, 32]
        await pilot.press("l", "down", "down", "down")  # select conv2 in the table…
        await wait_for(pilot, lambda: pane.report and pane.report["kernel_shape"] == [3, 3, 32, 64])
        await pilot.press("f")  # …and the Filters pane follows it
        assert pane.report["mode"] == "channel" and pane.report["channel"] == 0
        await pilot.press("full_stop")
        assert pane.report["channel"] == 1
        first = pane.report["range"]
        await pilot.press("right_square_bracket")
        assert pane.report["range"][0] == first[1]  # the next page starts where this one ended
        assert "page 2/" in text_of(pane, "#filters-info")
        assert pane.report["filters"][0]["values"]  # kernels drawn from model.keras via h5py


async def test_activations_pane(run_dir: Path) -> None:
    app = make_app(run_dir, run_dir.parent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector(pilot)
        pane = screen.query_one("#activations-pane")
        await pilot.press("a")
        await wait_for(pilot, lambda: pane.outputs is not None)
        await pilot.pause()
        assert "top-5" in text_of(pane, "#act-top5")
        assert "true disc" in text_of(pane, "#act-image")
        assert pane.maps.maps is not None and pane.maps.maps.ndim == 3
        await pilot.press("full_stop")
        await wait_for(pilot, lambda: pane.outputs_index == 1)
        select = pane.query_one("#act-layer", Select)
        dense = next(t.name for t in pane.probe.tensors if t.layout == "NC")
        select.value = dense
        await wait_for(pilot, lambda: pane.tensor == dense)
        assert pane.maps.maps.shape[1:] == (1, 1)
        assert "strongest" in pane.maps.render().plain


async def test_preprocessing_pane(run_dir: Path) -> None:
    app = make_app(run_dir, run_dir.parent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector(pilot)
        pane = screen.query_one("#preprocessing-pane")
        await pilot.press("p")
        await wait_for(pilot, lambda: pane.stats is not None)
        assert pane.stats["preprocessing"]["name"] == "unit"  # the simple CNN's own
        pane.query_one("#prep-backbone", Select).value = "ResNet50"
        await wait_for(pilot, lambda: pane.stats["preprocessing"]["name"] == "resnet")
        assert [c["name"] for c in pane.stats["after"]["channels"]] == ["B", "G", "R"]
        assert "of the expected range" in text_of(pane, "#prep-range")
        acc = text_of(pane, "#prep-acc")
        assert "assignment x/255" in acc and "27.0 %" in acc and "66.0 %" in acc


async def test_onnx_pane_overview_parity_and_eval(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_engine(prefix: list[str], args: list[str], timeout: float = 0) -> dict[str, Any]:
        calls.append(args)
        return {
            "data": "synthetic",
            "n": 20,
            "provider": {"requested": "cpu", "used": ["cpu"], "fell_back": False, "notes": []},
            "accuracy": 0.15,
            "keras_test_accuracy": 0.15,
            "latency_ms": {"p50": 0.2, "p90": 0.3, "p99": 0.4},
            "throughput": {"batch": 256, "images_per_s": 5000.0},
        }

    import tui.screens.inspect_target as target_module

    monkeypatch.setattr(target_module, "run_engine_json", fake_engine)
    app = make_app(run_dir, run_dir.parent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector(pilot)
        pane = screen.query_one("#onnx-pane")
        await pilot.press("o")
        await wait_for(pilot, lambda: pane.info is not None)
        await pilot.pause()
        overview = text_of(pane, "#onnx-overview")
        assert (
            "op histogram" in overview and "Conv" in overview and "cnnlab.preprocessing" in overview
        )
        assert "parity at export: passed" in text_of(pane, "#onnx-parity")
        pane.query_one("#onnx-provider", Select).value = "cpu"
        await pilot.click("#onnx-eval")
        await wait_for(pilot, lambda: "running on" in text_of(pane, "#onnx-eval-result"))
        assert (
            calls and calls[0][0] == "eval" and calls[0][calls[0].index("--provider") + 1] == "cpu"
        )
        assert "15.00 %" in text_of(pane, "#onnx-eval-result")


async def test_lessons_use_the_model_numbers(run_dir: Path) -> None:
    app = make_app(run_dir, run_dir.parent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: "896 parameters" in text_of(screen, "#lessons"))
        lessons = text_of(screen, "#lessons")
        assert "9 weights per channel" in lessons and "8×8 pixels" in lessons


async def test_hand_built_onnx_file(tmp_path: Path) -> None:
    path = hand_built_onnx(tmp_path / "hand.onnx", HAND_META)
    app = make_app(path, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector(pilot)
        assert screen.layer_table.row_count == 8  # the input + 7 nodes
        assert not screen.freeze_map.display  # an ONNX file has no trainable flags
        await pilot.press("down", "down")  # image, to_nchw → conv
        await wait_for(pilot, lambda: "3·3·3·2 + 2 = 56" in text_of(screen, "#arithmetic"))
        filters = screen.query_one("#filters-pane")
        await pilot.press("f")
        await wait_for(pilot, lambda: filters.report is not None)
        assert filters.report["kernel_shape"] == [3, 3, 3, 2]  # read from the initializers
        acts = screen.query_one("#activations-pane")
        await pilot.press("a")
        await wait_for(pilot, lambda: acts.outputs is not None)
        await pilot.pause()
        assert acts.maps.maps is not None
        assert any(c in text_of(acts, "#act-top5") for c in ("a ", "b ", "c "))
        onnx_pane = screen.query_one("#onnx-pane")
        await pilot.press("o")
        await wait_for(pilot, lambda: onnx_pane.info is not None)
        assert "Not from a run" in text_of(onnx_pane, "#onnx-parity")
        # The Layers pane (title) and the ONNX pane state the same total, per sample.
        macs = f"{screen.loaded.summary['totals']['macs']:,} MACs per sample (batch 1"
        assert screen.loaded.summary["totals"]["macs"] == onnx_pane.info["totals"]["macs"] > 0
        assert macs in text_of(screen, "#inspect-title")
        assert macs in text_of(onnx_pane, "#onnx-overview")
        await pilot.press("e")
        assert "conv has" in text_of(screen, "#lessons")


async def test_picker_and_errors(tmp_path: Path, run_dir: Path) -> None:
    app = make_app(None, run_dir.parent)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, InspectScreen))
        screen = screen_of(pilot)
        await wait_for(pilot, lambda: screen._picker_paths)
        assert run_dir in screen._picker_paths and run_dir / "model.onnx" in screen._picker_paths
        screen.load(tmp_path / "missing.onnx")
        await wait_for(pilot, lambda: "could not open" in text_of(screen, "#inspect-title"))
        assert any("no such file" in n.message for n in app._notifications)
        await pilot.press("enter")  # the picker is back, the first entry (the run) opens
        await wait_for(pilot, lambda: screen.loaded is not None)
        assert screen.loaded.path == run_dir
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, InspectScreen))


async def test_six_hundred_layers_stay_responsive(tmp_path: Path) -> None:
    run = tmp_path / "big"
    run.mkdir()
    rows = []
    for i in range(600):
        rows.append(
            {
                "name": f"conv{i}",
                "type": "Conv2D",
                "output_shape": [None, 4, 4, 64],
                "input_shape": [None, 4, 4, 64],
                "params": 36928,
                "trainable_params": 36928 if i >= 590 else 0,
                "trainable": i >= 590,
                "macs": 589824,
                "config": {
                    "filters": 64,
                    "kernel_size": [3, 3],
                    "strides": [1, 1],
                    "padding": "same",
                    "use_bias": True,
                },
                "inbound": [f"conv{i - 1}"] if i else [],
            }
        )
    summary = {
        "model": "big",
        "layers": rows,
        "totals": {"total": 600 * 36928, "trainable": 10 * 36928, "frozen": 590 * 36928, "macs": 0},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    names = [f"conv{i}" for i in range(590, 600)]
    record = {
        "id": "big",
        "status": "finished",
        "phases": [
            {"name": "frozen", "trainable_layers": []},
            {"name": "finetune", "trainable_layers": names},
        ],
    }
    (run / "run.json").write_text(json.dumps(record))
    app = make_app(run, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        t0 = time.perf_counter()
        screen = await open_inspector(pilot)
        assert screen.layer_table.row_count == 600
        await pilot.press("end")
        await wait_for(pilot, lambda: "conv599" in text_of(screen, "#arithmetic"))
        assert time.perf_counter() - t0 < 10
        freeze = text_of(screen, "#freeze-map")
        assert "finetune" in freeze and "10 layers, 369,280 params train" in freeze
        assert "3·3·64·64 + 64 = 36,928" in text_of(screen, "#arithmetic")


async def test_opened_from_the_app(run_dir: Path) -> None:
    """The app's own entry points: `cnnlab RUN_DIR` (open_target) and key 5."""
    app = CnnLabApp(engine=FakeEngine(), runs_root=run_dir.parent, open_target=run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector(pilot)
        assert screen.loaded is not None and screen.loaded.path == run_dir
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, InspectScreen))
        await pilot.press("5")
        screen = await open_inspector(pilot)
        assert screen.loaded.path == run_dir


def test_the_inspector_never_imports_tensorflow(run_dir: Path) -> None:
    """Everything the screen does in-process (read the run, kernels via h5py, onnxruntime
    activations, onnx_info, histograms) leaves TensorFlow and Keras unimported; the engine
    side of inspection never imports textual."""
    import subprocess
    import sys

    code = f"""
import sys
from pathlib import Path
import numpy as np
import tui.screens.inspect
from tui.screens.inspect_target import read_target
from engine.inspect import load_kernel, filter_report, preprocess_stats
from export.activations import ActivationProbe
from tui.widgets.onnx_pane import onnx_overview
run = Path({str(run_dir)!r})
target = read_target(run, [sys.executable, "-m", "engine"])
filter_report(load_kernel(target.keras_path, "conv2"))
probe = ActivationProbe.open(target.onnx_path)
probe.run(np.zeros((32, 32, 3), np.uint8))
onnx_overview(target.onnx_path)
preprocess_stats(np.zeros((2, 32, 32, 3), np.uint8), "resnet")
heavy = [m for m in ("tensorflow", "keras", "tf2onnx") if m in sys.modules]
assert not heavy, heavy
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    code = "import sys, engine.inspect, export.inspect_cli, export.image_cli, export.activations; assert 'textual' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
