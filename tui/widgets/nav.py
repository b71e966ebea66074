"""The main navigation bar: one clickable entry per section, plus the engine's status."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.reactive import reactive
from textual.widget import Widget

from tui.i18n import N_, _

# (mode, key, label). "inspect" is part 2's screen, pushed rather than a mode.
NAV_ENTRIES: tuple[tuple[str, str, str], ...] = (
    ("experiments", "1", N_("Experiments")),
    ("runs", "2", N_("Runs")),
    ("compare", "3", N_("Compare")),
    ("data", "4", N_("Data")),
    ("inspect", "5", N_("Inspect")),
)


class NavBar(Widget):
    """`1 Experiments  2 Runs  3 Compare  4 Data  5 Inspect` with the current one highlighted.

    The right side shows the app's `engine_status` (what is training now) on every screen.
    """

    DEFAULT_CSS = """
    NavBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text;
    }
    """

    status: reactive[str] = reactive("")

    def __init__(self, current: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.current = current
        self._spans: list[tuple[int, int, str]] = []

    def on_mount(self) -> None:
        if hasattr(self.app, "engine_status"):
            self.watch(self.app, "engine_status", self._on_status, init=True)

    def _on_status(self, status: str) -> None:
        self.status = status

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        self._spans = []
        text.append(" cnnlab ", style="bold reverse")
        text.append(" ")
        for mode, key, english in NAV_ENTRIES:
            label = _(english)
            start = text.cell_len
            if mode == self.current:
                text.append(f" {key} {label} ", style="bold reverse")
            else:
                text.append(f" {key}", style="bold")
                text.append(f" {label} ")
            self._spans.append((start, text.cell_len, mode))
        if self.status:
            room = self.size.width - text.cell_len - 2
            if room > 8:
                status = self.status if len(self.status) <= room else self.status[: room - 1] + "…"
                text.append(" " * (room - len(status) + 1))
                text.append(status, style="bold")
        return text

    async def on_click(self, event: events.Click) -> None:
        for start, end, mode in self._spans:
            if start <= event.x < end:
                await self.app.run_action(f"nav('{mode}')")
                return
