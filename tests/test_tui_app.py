"""Pilot tests: start-up, navigation between sections, narrow layout, quitting."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from conftest import FakeEngine, training_events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from tui.app import CnnLabApp
from tui.screens.compare import CompareScreen
from tui.screens.data import DataScreen
from tui.screens.experiments import ExperimentsScreen
from tui.screens.runs import RunsScreen


def make_app(runs_root: Path, engine: FakeEngine | None = None, **kwargs: object) -> CnnLabApp:
    return CnnLabApp(
        engine=engine or FakeEngine(), runs_root=runs_root, data_source="synthetic", **kwargs
    )


async def test_starts_on_experiments_and_navigates(runs_root: Path) -> None:
    app = make_app(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ExperimentsScreen)
        assert app.first_frame_seconds is not None
        for key, screen_type in (
            ("2", RunsScreen),
            ("3", CompareScreen),
            ("4", DataScreen),
            ("1", ExperimentsScreen),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, screen_type), key
        # F-keys reach the nav even while typing in a form field.
        app.screen.query_one("#edit-epochs").focus()
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


async def test_nav_bar_is_clickable(runs_root: Path) -> None:
    app = make_app(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        # " cnnlab   1 Experiments  2 Runs ..." — "Runs" sits around column 27.
        await pilot.click("NavBar", offset=(28, 0))
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


class StubInspectScreen(Screen[None]):
    """Stands in for part 2's InspectScreen, so these tests check the navigation only."""

    BINDINGS = [("escape", "app.pop_screen", "Back")]

    def __init__(self, target: Path | None = None, runs_root: Path | None = None) -> None:
        super().__init__()
        self.target = target
        self.runs_root = runs_root

    def compose(self) -> ComposeResult:
        yield Static(f"inspect {self.target}")


@pytest.fixture
def stub_inspector(monkeypatch: pytest.MonkeyPatch) -> type[Screen[None]]:
    module = types.ModuleType("tui.screens.inspect")
    module.InspectScreen = StubInspectScreen  # type: ignore[attr-defined]
    StubInspectScreen.__name__ = "InspectScreen"
    monkeypatch.setitem(sys.modules, "tui.screens.inspect", module)
    return StubInspectScreen


async def test_inspect_nav_pushes_the_inspector(runs_root: Path, stub_inspector: type) -> None:
    app = make_app(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("5")
        await pilot.pause()
        assert isinstance(app.screen, stub_inspector)
        assert app.screen.target is None and app.screen.runs_root == runs_root
        await pilot.press("5")  # already there: stays
        await pilot.pause()
        assert len(app.screen_stack) == 2
        await pilot.press("2")  # a section key closes it and goes there
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


async def test_inspector_missing_is_a_notification(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tui.screens.inspect", None)  # import raises ImportError
    app = make_app(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("5")
        await pilot.pause()
        assert isinstance(app.screen, ExperimentsScreen)
        assert any("inspector" in n.message.lower() for n in app._notifications)


async def test_open_target_launches_inspector(runs_root: Path, stub_inspector: type) -> None:
    target = runs_root / "20260101-100000-simple-cnn-aaaa"
    app = make_app(runs_root, open_target=target)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, stub_inspector)
        assert app.screen.target == target
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ExperimentsScreen)


async def test_narrow_terminal_gets_the_narrow_layout(runs_root: Path) -> None:
    app = make_app(runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.has_class("-narrow")
        help_widget = app.screen.query_one("#setting-epochs .setting-help")
        assert not help_widget.display or help_widget.size.width == 0


async def test_data_note_is_shown(runs_root: Path) -> None:
    app = make_app(runs_root, data_note="CIFAR-10 is not cached")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert any("CIFAR-10" in n.message for n in app._notifications)


async def test_quit_while_training_asks_then_stops_the_engine(runs_root: Path) -> None:
    engine = FakeEngine((training_events("r1", pause_after=1), 0, []))
    app = make_app(runs_root, engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert engine.running()
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")
        await pilot.pause()
        assert engine.running()
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert engine.jobs[0].stopped
    assert not engine.running()


async def test_the_footer_rebuilds_its_keys_only_when_they_change() -> None:
    from textual.app import App
    from textual.binding import Binding
    from textual.widgets._footer import FooterKey

    from tui.widgets.footer import Footer

    class Keys(App[None]):
        ENABLE_COMMAND_PALETTE = False
        BINDINGS = [Binding("a", "go", "Go"), Binding("b", "stay", "Stay")]
        go_enabled = True

        def compose(self) -> ComposeResult:
            yield Static("body")
            yield Footer()

        def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
            return None if action == "go" and not self.go_enabled else True  # None: shown disabled

    app = Keys()
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(Footer)
        rebuilt: list[int] = []
        recompose = footer.recompose

        async def counting() -> None:
            rebuilt.append(1)
            await recompose()

        footer.recompose = counting  # type: ignore[method-assign]

        def shown() -> list[tuple[str, bool]]:
            return [(k.description, k.has_class("-disabled")) for k in app.screen.query(FooterKey)]

        assert shown() == [("Go", False), ("Stay", False)]
        # The screen says its bindings may have changed, but the same keys are on show.
        app.screen.refresh_bindings()
        app.screen.refresh_bindings()
        await pilot.pause()
        assert rebuilt == [] and shown() == [("Go", False), ("Stay", False)]
        # A key that becomes disabled is a change: the footer shows it.
        app.go_enabled = False
        app.screen.refresh_bindings()
        await pilot.pause()
        await pilot.pause()  # the rebuild runs after a refresh, then mounts the keys
        assert rebuilt == [1] and shown() == [("Go", True), ("Stay", False)]
