"""Start-up guards: what `tui.app` imports, and what comes before the first frame.

The timing itself is measured by bench/tui_start_bench.py; these tests keep the causes of a
slow start from coming back without depending on the machine's speed.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FakeEngine

from tui.app import CnnLabApp, resume_gc
from tui.screens.experiments import ExperimentsScreen

ROOT = Path(__file__).resolve().parent.parent

# Modules the first frame does not need: heavy libraries, the engine's training side, the
# other sections' screens and the widgets mounted only after the first frame.
NOT_AT_START = (
    "numpy",
    "tensorflow",
    "keras",
    "onnx",
    "onnxruntime",
    "rich.syntax",
    "rich.pretty",
    "engine.training",
    "engine.data",
    # engine.models is read at start (5 ms): the config's model choices come from its registry,
    # whose builders import TensorFlow only when called.
    "engine.inspect",
    # The run records load with the first engine event or the Runs section, not before.
    "engine.records",
    "engine.runs",
    "export",
    "tui.screens.runs",
    "tui.screens.compare",
    "tui.screens.data",
    "tui.screens.run_detail",
    "tui.screens.inspect",
    "tui.screens.inspect_panes",
    "tui.screens.confirm",
    "tui.widgets.monitor",
    "tui.widgets.charts",
    "tui.widgets.settings_form",
    "tui.widgets.layer_table",
    "tui.widgets.onnx_pane",
    "tui.widgets.lessons",
)


def modules_after(code: str) -> set[str]:
    """The modules loaded after running `code` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


def test_the_real_start_loads_only_what_the_first_frame_needs(tmp_path: Path) -> None:
    # `cnnlab` as typed (argument parsing, data source, runs folder, app), headless, stopped at
    # its first frame: what is loaded by then.
    code = f"""
import json, sys
from tui.app import CnnLabApp
from tui import __main__ as cli
run = CnnLabApp.run
CnnLabApp.run = lambda self, **kw: run(self, headless=True, size=(120, 40))
async def first_frame(self):
    sys.stdout.write(json.dumps(sorted(sys.modules)) + "\\n")
    self.exit()
CnnLabApp._first_frame = first_frame
sys.exit(cli.main(["--runs-dir", {str(tmp_path / "runs")!r}, "--data", "synthetic"]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "tui.screens.experiments" in modules  # the probe ran in the app
    early = [name for name in NOT_AT_START if loaded(modules, name)]
    assert early == [], f"loaded before the first frame: {early}"


def test_importing_the_app_loads_only_the_first_screen() -> None:
    modules = modules_after("import tui.__main__, tui.app")
    assert "tui.screens.experiments" in modules  # the probe sees what the app imports
    assert "textual.app" in modules
    early = [name for name in NOT_AT_START if loaded(modules, name)]
    assert early == [], f"imported before the first frame: {early}"


async def test_first_frame_comes_before_the_deferred_build(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}
    first_frame = CnnLabApp._first_frame

    async def probe(self: CnnLabApp) -> None:
        screen = self.screen
        assert isinstance(screen, ExperimentsScreen)
        seen["ready"] = screen.ready
        seen["forms"] = len(screen._forms)
        seen["tabs"] = len(screen.query("#exp-tabs"))
        seen["stack"] = [type(s).__name__ for s in self.screen_stack]
        await first_frame(self)

    monkeypatch.setattr(CnnLabApp, "_first_frame", probe)
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root, data_source="synthetic")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        for _ in range(100):
            await pilot.pause(0.05)
            if screen.ready:
                break
        # Started straight in the Experiments mode, nothing under it.
        assert app.current_mode == "experiments"
        assert seen["stack"] == ["ExperimentsScreen"]
        # The form and the monitor came after the first frame, and then they did come.
        assert seen["ready"] is False and seen["forms"] == 0 and seen["tabs"] == 0
        assert screen.ready and app.first_frame_seconds is not None
        assert app.ready_seconds is not None
        assert screen.form.rows
        # Asked later, a first-frame callback runs at once.
        ran: list[bool] = []
        app.call_after_first_frame(lambda: ran.append(True))
        await pilot.pause()
        assert ran == [True]


def test_resume_gc_turns_the_collector_back_on() -> None:
    gc.disable()
    try:
        resume_gc()
        assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
    resume_gc()  # with the collector on, nothing to do
    assert gc.isenabled()


async def test_ctrl_s_before_the_form_is_drawn_starts_once_it_is(runs_root: Path) -> None:
    engine = FakeEngine()
    app = CnnLabApp(engine=engine, runs_root=runs_root, data_source="synthetic")
    pressed: dict[str, bool] = {}

    def press_early() -> None:  # as the first frame lands, before the form is mounted
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        pressed["ready"] = screen.ready
        screen.action_start()

    app.call_after_first_frame(press_early)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        for _ in range(100):
            await pilot.pause(0.05)
            if engine.requests:
                break
        assert pressed == {"ready": False}
        assert [r.experiment for r in engine.requests] == ["simple-cnn"]
