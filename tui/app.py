"""The cnnlab App: sections as modes, services injected, engine processes cleaned up on quit.

Sections (main nav, keys 1–5): Experiments, Runs, Compare, Data are Textual *modes* (each keeps
its own screen and state while you look elsewhere); Inspect (part 2) is pushed on top of the
current section. The App receives its services in `__init__` so tests inject a fake engine.
"""

from __future__ import annotations

import gc
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from tui import i18n
from tui.i18n import _
from tui.messages import OpenInspector, RunsChanged
from tui.screens.experiments import ExperimentsScreen

NARROW = 110  # columns below which the layout stacks (usable down to 80×24)


class CnnLabApp(App[None]):
    """Launch, watch and compare cnnlab experiments; inspect models (part 2)."""

    CSS_PATH = "app.tcss"
    TITLE = "cnnlab"
    ENABLE_COMMAND_PALETTE = False
    # The app starts in the Experiments mode (added in `__init__`) instead of switching to it
    # from Textual's empty default screen in `on_mount`: that switch re-parsed the whole
    # stylesheet once more and held the updates back for another 50 ms.
    DEFAULT_MODE = "experiments"

    # The first screen is imported with the app; the others when first shown (start-up time).
    MODES = {
        "runs": lambda: _screen("tui.screens.runs", "RunsScreen"),
        "compare": lambda: _screen("tui.screens.compare", "CompareScreen"),
        "data": lambda: _screen("tui.screens.data", "DataScreen"),
    }

    BINDINGS = [
        Binding("1", "nav('experiments')", "Experiments", show=False),
        Binding("2", "nav('runs')", "Runs", show=False),
        Binding("3", "nav('compare')", "Compare", show=False),
        Binding("4", "nav('data')", "Data", show=False),
        Binding("5", "nav('inspect')", "Inspect", show=False),
        # F-keys reach the nav even while typing in a form field.
        Binding("f1", "nav('experiments')", show=False, priority=True),
        Binding("f2", "nav('runs')", show=False, priority=True),
        Binding("f3", "nav('compare')", show=False, priority=True),
        Binding("f4", "nav('data')", show=False, priority=True),
        Binding("f5", "nav('inspect')", show=False, priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    # What the engine is doing, shown at the right of every screen's nav bar.
    engine_status: reactive[str] = reactive("")

    def __init__(
        self,
        engine: Any,
        runs_root: Path,
        *,
        data_source: str = "synthetic",
        data_note: str = "",
        open_target: Path | None = None,
        started: float | None = None,
        lang: str | None = None,
    ) -> None:
        super().__init__()
        # The language of the app's own strings and numbers ("en", "es"): `--lang`, else the
        # locale (LC_ALL/LC_MESSAGES/LANG), else English. An unknown one is a usage error.
        self.lang = i18n.set_language(lang)
        self.engine = engine
        self.runs_root = Path(runs_root)
        self.data_source = data_source
        self.data_note = data_note
        self.open_target = open_target
        self.started = started if started is not None else time.perf_counter()
        self.first_frame_seconds: float | None = None
        self.ready_seconds: float | None = None  # first form usable (mounted after the frame)
        self._last_inspect: Path | None = open_target
        self._after_first_frame: list[Callable[[], object]] = []
        self.add_mode("experiments", self._first_screen)

    # -- start-up ---------------------------------------------------------------------------

    def _first_screen(self) -> Screen[Any]:
        """The Experiments screen, the first one shown."""
        # The app mounts after its first screen: the layout class must be right before that.
        self.set_class(self.size.width < NARROW, "-narrow")
        return ExperimentsScreen()

    def on_mount(self) -> None:
        # Textual mounts the app and its first screen inside one batch and drops the frames
        # drawn meanwhile; the app's own messages are handled only once that batch is over.
        self.call_later(self._draw_first_frame)
        if self.data_note:
            self.notify(self.data_note, title=_("Data source"), timeout=6)
        if self.open_target is not None:
            self.call_after_refresh(self.open_inspector, self.open_target)

    def mark_ready(self) -> None:
        """The first screen finished its deferred part (the settings form): note when."""
        if self.ready_seconds is None:
            age = process_age()
            self.ready_seconds = age if age is not None else time.perf_counter() - self.started
            self.log.info(f"settings form ready after {self.ready_seconds:.3f} s")

    def on_resize(self, event: events.Resize) -> None:
        # Screens lay out side-by-side boxes vertically and drop help columns when narrow.
        self.set_class(event.size.width < NARROW, "-narrow")

    def call_after_first_frame(self, callback: Callable[[], object]) -> None:
        """Run `callback` once the first frame is on the terminal (at once if it already is).

        For start-up work that can wait: run after the first *refresh* instead, it may still
        come before the first frame, since frames drawn during Textual's start-up batch are
        never written.
        """
        if self.first_frame_seconds is None:
            self._after_first_frame.append(callback)
        else:
            self.call_later(callback)

    def _draw_first_frame(self) -> None:
        # The start-up batch is over: draw the screen again (now written), then note the time.
        self.screen.refresh()
        self.screen.call_after_refresh(self._first_frame)

    async def _first_frame(self) -> None:
        # Counted from the process start when Linux says when that was (interpreter start-up
        # included), else from when tui.__main__ was imported.
        age = process_age()
        self.first_frame_seconds = age if age is not None else time.perf_counter() - self.started
        self.log.info(f"first frame after {self.first_frame_seconds:.3f} s")
        resume_gc()
        callbacks, self._after_first_frame = self._after_first_frame, []
        for callback in callbacks:
            result = callback()
            if inspect.isawaitable(result):
                await result

    # -- navigation -------------------------------------------------------------------------

    def action_nav(self, section: str) -> None:
        """Show a section's main screen (closing detail screens pushed on the current one)."""
        if _is_modal(self.screen):  # answer the dialog first
            return
        if section == "inspect":
            if not self._is_inspecting():
                self.open_inspector(self._last_inspect)
            return
        while len(self.screen_stack) > 1:
            self.pop_screen()
        if section != self.current_mode:
            self.switch_mode(section)

    def _is_inspecting(self) -> bool:
        return type(self.screen).__name__ == "InspectScreen"

    def open_inspector(self, target: Path | None) -> None:
        """Push part 2's InspectScreen on a run folder / .onnx file (imported lazily)."""
        try:
            from tui.screens.inspect import InspectScreen
        except ImportError as exc:  # part 2 not there (yet): say so, keep working
            self.notify(
                _("The inspector is not available: {error}").format(error=exc), severity="warning"
            )
            return
        self._last_inspect = target
        try:
            screen: Screen[Any] = InspectScreen(target=target, runs_root=self.runs_root)
        except Exception as exc:  # a half-written part 2 must not take the app down
            self.notify(
                _("The inspector failed to open: {error}").format(error=exc), severity="error"
            )
            return
        self.push_screen(screen)

    def on_open_inspector(self, message: OpenInspector) -> None:
        self.open_inspector(message.target)

    def on_runs_changed(self, message: RunsChanged) -> None:
        """Tell section screens that exist to reload their runs (they do so when shown)."""
        for mode in ("runs", "compare"):
            for screen in self._screen_stacks.get(mode, []):
                if hasattr(screen, "runs_changed"):
                    screen.runs_changed()

    # -- quitting ---------------------------------------------------------------------------

    async def action_quit(self) -> None:
        from tui.screens.confirm import ConfirmScreen

        running = self.engine.running() if hasattr(self.engine, "running") else []
        if not running:
            await self._shutdown_engine()
            self.exit()
            return

        async def answer(yes: bool | None) -> None:
            if yes:
                await self._shutdown_engine()
                self.exit()

        self.push_screen(
            ConfirmScreen(
                _("Quit while the engine is training?"),
                _(
                    "The run is cancelled and keeps what it trained so far; queued runs are dropped."
                ),
                yes=_("Quit"),
                no=_("Stay"),
            ),
            answer,
        )

    async def _shutdown_engine(self) -> None:
        self.engine_status = _("stopping the engine…")
        await self.engine.stop_all()

    async def on_unmount(self) -> None:
        # Whatever way the app ends, no engine process outlives it.
        await self.engine.stop_all()


def _screen(module: str, name: str) -> Screen[Any]:
    import importlib

    screen: Screen[Any] = getattr(importlib.import_module(module), name)()
    return screen


def resume_gc() -> None:
    """Turn the cyclic GC back on if `tui.__main__` held it off for the start-up.

    What the start-up made (modules, classes, styles, widgets) is moved to the permanent
    generation first, so that later collections do not walk it again and again.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        import os

        ticks = os.sysconf("SC_CLK_TCK")
        return uptime - int(fields[19]) / ticks  # field 22 (starttime), after pid and comm
    except (OSError, ValueError, IndexError):
        return None


def _is_modal(screen: Screen[Any]) -> bool:
    from textual.screen import ModalScreen

    return isinstance(screen, ModalScreen)
