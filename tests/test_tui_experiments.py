"""Pilot tests of the Experiments screen with a fake engine: form, start, progress, cancel,
a queue of two runs, an engine that crashes mid-run, and settings the engine refuses."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeEngine, settle, training_events
from textual.widgets import Input, RichLog

from engine.records import ChildPlan, ErrorEvent, ModelInfo, RunStarted
from tui.app import CnnLabApp
from tui.screens.experiments import ExperimentsScreen
from tui.widgets.monitor import RunMonitor
from tui.widgets.settings_form import SettingRow, SettingsForm


def log_text(app: CnnLabApp) -> str:
    log = app.screen.query_one("#live-log", RichLog)
    return "\n".join("".join(seg.text for seg in strip) for strip in log.lines)


def notes(app: CnnLabApp) -> str:
    return "\n".join(n.message for n in app._notifications)


def screen(app: CnnLabApp) -> ExperimentsScreen:
    assert isinstance(app.screen, ExperimentsScreen)
    return app.screen


async def set_input(pilot: Any, selector: str, text: str) -> None:
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.value = text
    await pilot.pause()


@pytest.fixture(autouse=True)
def empty_keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No cached ImageNet weights: the form's offline warning is deterministic."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


async def test_form_refuses_bad_values_with_the_engines_reason(runs_root: Path) -> None:
    engine = FakeEngine()
    app = CnnLabApp(engine=engine, runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        form = screen(app).form
        assert isinstance(form, SettingsForm)
        assert [r.setting for r in form.rows][:3] == ["data", "subset", "val_split"]
        await set_input(pilot, "#edit-epochs", "0")
        row = form.row("epochs")
        assert row.has_class("-invalid")
        assert row.error == "epochs: 0 is below the minimum 1"
        await set_input(pilot, "#edit-learning_rate", "fast")
        assert "cannot read 'fast'" in (form.row("learning_rate").error or "")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert engine.requests == []
        assert "Settings refused" in [n.title for n in app._notifications]
        # Fixing the values clears the reasons.
        await set_input(pilot, "#edit-epochs", "3")
        await set_input(pilot, "#edit-learning_rate", "0.01")
        assert form.problems() == []
        assert form.row("epochs").has_class("-changed")


async def test_transfer_form_warns_about_uncached_imagenet_weights(runs_root: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = screen(app)
        s.select_experiment("transfer")
        await pilot.pause()
        note = str(s.form.query_one("#form-note").render())
        assert "not in" in note and "weights none" in note
        await set_input(pilot, "#form-transfer #edit-weights", "none")
        assert str(s.form.query_one("#form-note").render()) == ""
        assert s.form.values()["weights"] == "none"


async def test_start_shows_progress_curves_eta_and_result(runs_root: Path) -> None:
    engine = FakeEngine((training_events("run-1", epochs=2, steps=4, pause_after=1), 0, []))
    app = CnnLabApp(engine=engine, runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await set_input(pilot, "#edit-epochs", "2")
        await set_input(pilot, "#edit-subset", "200")
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        s = screen(app)
        request = engine.requests[0]
        args = request.args()
        assert args[:4] == ["run", "simple-cnn", "--events", "jsonl"]
        assert args[args.index("--epochs") + 1] == "2"
        assert args[args.index("--subset") + 1] == "200"
        assert args[args.index("--early-stopping") + 1] == "yes"
        assert args[args.index("--runs-dir") + 1] == str(runs_root)
        assert s.tabs.active == "tab-progress"
        state = s.query_one(RunMonitor).state
        assert (state.epoch, state.epochs, state.step, state.steps) == (1, 2, 4, 4)
        assert len(state.history) == 1
        assert state.eta() == pytest.approx(8.0)  # one more epoch of 4 batches × 2 s
        assert "ETA 8.0 s" in str(s.query_one("#live-progress").render())
        assert app.engine_status.startswith("▶ simple_cnn")
        engine.jobs[0].resume()
        await settle(pilot, lambda: state.status == "finished")
        assert state.status == "finished"
        assert len(state.history) == 2
        assert "test 61.00 %" in log_text(app)
        assert any("finished" in n.title.lower() for n in app._notifications if n.title)
        assert app.engine_status == ""
        assert s.current is None


async def test_cancel_keeps_what_was_trained(runs_root: Path) -> None:
    engine = FakeEngine((training_events("run-c", epochs=3, pause_after=1), 0, []))
    app = CnnLabApp(engine=engine, runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        s = screen(app)
        s.query_one("#monitor").focus()
        await pilot.press("x")
        await settle(pilot, lambda: engine.jobs[0].returncode == 130)
        assert engine.jobs[0].cancel_requested
        assert engine.jobs[0].returncode == 130
        assert s.query_one(RunMonitor).state.status == "cancelled"
        assert "cancelled" in log_text(app)
        assert "keeps" in notes(app)
        assert s.done[-1][1] == "cancelled"


async def test_queue_of_two_runs_runs_them_in_order(runs_root: Path) -> None:
    engine = FakeEngine(
        (training_events("run-a", pause_after=1), 0, []),
        (training_events("run-b", experiment="mlp", pause_after=1), 0, []),
    )
    app = CnnLabApp(engine=engine, runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = screen(app)
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        s.select_experiment("mlp")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert [r.experiment for r in engine.requests] == ["simple-cnn"]
        assert [r.experiment for r in s.pending] == ["mlp"]
        queue_ids = [
            s.queue_list.get_option_at_index(i).id for i in range(s.queue_list.option_count)
        ]
        assert queue_ids == ["current", "pending-0"]
        assert "Queued mlp" in notes(app)
        engine.jobs[0].resume()
        await settle(
            pilot,
            lambda: len(engine.requests) == 2 and s.query_one(RunMonitor).state.run_id == "run-b",
        )
        assert [r.experiment for r in engine.requests] == ["simple-cnn", "mlp"]
        assert s.query_one(RunMonitor).state.run_id == "run-b"
        engine.jobs[1].resume()
        await settle(pilot, lambda: len(s.done) == 2)
        assert [label for label, _ in s.done] == [
            "✓ simple-cnn · synthetic · 10 ep",
            "✓ mlp · synthetic · 10 ep",
        ]
        assert s.current is None and not s.pending


async def test_queued_run_can_be_removed(runs_root: Path) -> None:
    engine = FakeEngine((training_events("run-a", pause_after=1), 0, []))
    app = CnnLabApp(engine=engine, runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = screen(app)
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert len(s.pending) == 1
        s.queue_list.focus()
        s.queue_list.highlighted = 1
        await pilot.press("delete")
        await pilot.pause()
        assert s.pending == []
        engine.jobs[0].resume()
        await pilot.pause(0.2)
        assert len(engine.requests) == 1


async def test_engine_crash_mid_run_shows_its_log_and_the_app_keeps_working(
    runs_root: Path,
) -> None:
    crash = training_events("run-x", epochs=3)[:8]  # dies during epoch 1
    tail = [
        "2026-01-01 W tensorflow noise",
        "Traceback (most recent call last):",
        "RuntimeError: CUDA error: out of memory",
    ]
    engine = FakeEngine((crash, -9, tail), (training_events("run-y"), 0, []))
    app = CnnLabApp(engine=engine, runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = screen(app)
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: "the engine stopped" in log_text(app))
        text = log_text(app)
        assert "the engine stopped" in text
        assert "RuntimeError: CUDA error: out of memory" in text
        assert "RuntimeError: CUDA error: out of memory" in notes(app)
        assert s.query_one(RunMonitor).state.status == "failed"
        assert s.done[-1][0].startswith("✗")
        # Still working: the next run starts and finishes.
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: s.query_one(RunMonitor).state.status == "finished" and s.done)
        assert s.query_one(RunMonitor).state.status == "finished"
        assert s.done[-1][0].startswith("✓")


async def test_engine_refusing_the_settings_says_why(runs_root: Path) -> None:
    refused = [ErrorEvent(time=1.0, run_id=None, kind="usage", message="backbone: unknown 'X'")]
    engine = FakeEngine((refused, 2, ["engine: error: backbone: unknown 'X'"]))
    app = CnnLabApp(engine=engine, runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(
            pilot, lambda: "error (usage)" in log_text(app) and "refused the settings" in notes(app)
        )
        assert "refused the settings: backbone: unknown 'X'" in notes(app)
        assert "error (usage): backbone: unknown 'X'" in log_text(app)


async def test_compare_run_counts_its_children(runs_root: Path) -> None:
    parent = RunStarted(
        time=0.0,
        run_id="p",
        run_dir="runs/p",
        experiment="compare",
        config={"backbones": ["ResNet50", "VGG16"], "weights": "none", "model": "transfer"},
        plan=[
            ChildPlan(backbone=b, preprocessing="auto", title=f"{b} (own preprocessing)")
            for b in ("ResNet50", "VGG16")
        ],
    )
    child = training_events("c1", experiment="transfer")
    child[0] = dataclasses.replace(
        child[0],
        parent="p",
        config={"model": "transfer", "backbone": "ResNet50", "weights": "none"},
        model=ModelInfo(name="transfer", backbone="ResNet50", weights="none", random_init=True),
    )
    script = [parent, *child[:5], "pause", *child[5:]]
    engine = FakeEngine((script, 0, []))
    app = CnnLabApp(engine=engine, runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = screen(app)
        s.select_experiment("compare")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        state = s.query_one(RunMonitor).state
        assert (state.children_started, state.children_total) == (1, 2)
        assert state.model_label == "ResNet50" and state.random_init
        header = str(s.query_one("#live-header").render())
        assert "training 1 of 2" in header and "random init" in header
        engine.jobs[0].resume()
        await settle(pilot, lambda: bool(state.children_done))
        assert state.children_done == ["ResNet50: 61.00 %"]


async def test_escape_leaves_a_field_so_letter_keys_work(runs_root: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = screen(app)
        s.query_one("#edit-epochs").focus()
        await pilot.press("escape")
        await pilot.pause()
        assert s.focused is s.experiment_list
        await pilot.press("p")
        await pilot.pause()
        assert s.tabs.active == "tab-progress"
        assert isinstance(s.query_one("#setting-epochs"), SettingRow)


async def test_other_forms_are_built_after_the_first_frame(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ExperimentsScreen, "PREMOUNT_DELAY", 0.01)
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        s = screen(app)
        # One form per 0.1 s once the first frame is out: wait for them however slow the
        # machine is (a fixed pause failed under load), then check every one was built.
        for _ in range(100):
            await pilot.pause(0.1)
            if len(s._forms) == 6:
                break
        assert set(s._forms) == {
            "simple-cnn",
            "mlp",
            "transfer",
            "finetune",
            "compare",
            "preprocessing",
        }
        assert [f.id for f in s.query(SettingsForm) if f.display] == ["form-simple-cnn"]
        s.select_experiment("compare")
        await pilot.pause()
        assert [f.id for f in s.query(SettingsForm) if f.display] == ["form-compare"]
        assert s.form.values()["backbones"][0] == "MobileNetV2"


async def test_premounting_stops_once_the_app_quits(runs_root: Path) -> None:
    """The premount timer may fire during quit: it then mounts nothing (a form mounted into a
    closing app failed on its Select)."""
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        s = screen(app)
        await settle(pilot, lambda: s.ready)
        built = set(s._forms)
        s._premount_next_form()  # the app is running: one more form is built
        assert len(s._forms) == len(built) + 1
        built = set(s._forms)
        app.exit()
        s._premount_next_form()
        assert set(s._forms) == built
