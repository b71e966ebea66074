"""Data: class counts of a source (train/validation/test) and a grid of sample images per class.

The numbers and the pixels come from `engine data SOURCE --json --samples N --samples-file
F.npz`, run as a child process (loading cifar10 imports Keras, which the TUI never does).
Images are drawn with half-block cells, so they show in any terminal, over SSH too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static
from textual.worker import Worker, WorkerState

from tui.engine_client import EngineCommandError
from tui.i18n import N_, _, integer
from tui.widgets.footer import Footer
from tui.widgets.nav import NavBar
from tui.widgets.pixels import PixelImage


def _n(value: Any) -> str:
    return integer(value) if isinstance(value, int) else str(value if value is not None else "?")


def counts_table(info: dict[str, Any]) -> Table:
    """Class × split counts with totals."""
    counts = info.get("counts") or {}
    classes = list(info.get("classes") or [])
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    table.add_column(_("class"), no_wrap=True)
    splits = [s for s in ("train", "val", "test") if s in counts]
    for split in splits:
        table.add_column(_("validation") if split == "val" else _(split), justify="right")
    totals = dict.fromkeys(splits, 0)
    for name in classes:
        cells = []
        for split in splits:
            n = int((counts.get(split) or {}).get(name, 0))
            totals[split] += n
            cells.append(integer(n))
        table.add_row(name, *cells)
    table.add_row(
        Text(_("total"), style="bold"), *[Text(integer(totals[s]), style="bold") for s in splits]
    )
    return table


class DataScreen(Screen[None]):
    """Counts and sample images of the chosen data source."""

    AUTO_FOCUS = "#data-scroll"

    BINDINGS = [
        Binding("l", "load", "Load"),
        Binding("z", "zoom", "Zoom"),
        Binding("plus,equals_sign", "more", "More samples", show=False),
        Binding("minus", "fewer", "Fewer samples", show=False),
        Binding("escape", "leave_field", show=False),
    ]

    class Loaded(Message):
        def __init__(self, source: str, info: dict[str, Any], images: Any, labels: Any) -> None:
            super().__init__()
            self.source = source
            self.info = info
            self.images = images
            self.labels = labels

    class Failed(Message):
        def __init__(self, source: str, reason: str, tail: list[str]) -> None:
            super().__init__()
            self.source = source
            self.reason = reason
            self.tail = tail

    def __init__(self) -> None:
        super().__init__()
        self.samples = 6
        self.pixel_width = 16
        self.loaded_source: str | None = None
        self.info: dict[str, Any] = {}
        self.images: Any = None
        self.labels: Any = None

    def compose(self) -> ComposeResult:
        yield NavBar("data")
        with Horizontal(id="data-bar"):
            yield Label(_("source") + " ")
            yield Input(
                str(getattr(self.app, "data_source", "synthetic")),
                suggester=SuggestFromList(["cifar10", "synthetic", "folder:", "npz:"]),
                id="data-source",
                compact=True,
            )
            yield Button(_("Load  l"), id="data-load", compact=True)
            yield Static("", id="data-status")
        with VerticalScroll(id="data-scroll"):
            with Horizontal(classes="detail-row"):
                with Vertical(classes="detail-box", id="counts-box") as box:
                    box.border_title = _("images per class")
                    yield Static(Text(_("press l to load"), style="dim"), id="data-counts")
                with Vertical(classes="detail-box", id="data-about-box") as box:
                    box.border_title = _("source")
                    yield Static("", id="data-about")
            with Vertical(classes="detail-box", id="samples-box") as box:
                box.border_title = _("test images per class (z: zoom, +/-: more/fewer)")
                yield Vertical(id="samples-grid")
        yield Footer()

    @property
    def source_input(self) -> Input:
        return self.query_one("#data-source", Input)

    def on_screen_resume(self) -> None:
        if self.loaded_source is None:
            self.action_load()

    def action_leave_field(self) -> None:
        if self.focused is self.source_input:
            self.query_one("#data-scroll").focus()

    @on(Input.Submitted, "#data-source")
    @on(Button.Pressed, "#data-load")
    def action_load(self) -> None:
        source = self.source_input.value.strip() or "synthetic"
        loading = _("loading {source} …").format(source=source)
        self.query_one("#data-status", Static).update(Text(loading, style="dim"))
        self.load(source, self.samples)

    async def action_zoom(self) -> None:
        self.pixel_width = 32 if self.pixel_width == 16 else 16
        await self._draw_samples()

    def action_more(self) -> None:
        self.samples = min(self.samples + 2, 16)
        self.action_load()

    def action_fewer(self) -> None:
        self.samples = max(self.samples - 2, 1)
        self.action_load()

    @work(
        exclusive=True,
        group="data-load",
        exit_on_error=False,
        description=N_("load the data source"),
    )
    async def load(self, source: str, samples: int) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        with tempfile.TemporaryDirectory(prefix="cnnlab-samples-") as tmp:
            path = Path(tmp) / "samples.npz"
            try:
                info = await engine.data_summary(source, samples, path)
            except EngineCommandError as exc:
                self.post_message(self.Failed(source, str(exc), exc.tail))
                return
            images = labels = None
            if path.is_file():
                import numpy as np  # ~0.1 s, only once samples exist

                with np.load(path) as npz:
                    images, labels = npz["images"], npz["labels"]
        self.post_message(self.Loaded(source, info, images, labels))

    async def on_data_screen_loaded(self, message: Loaded) -> None:
        self.loaded_source = message.source
        self.info, self.images, self.labels = message.info, message.images, message.labels
        info = message.info
        self.query_one("#data-status", Static).update(Text(f"{message.source}", style="bold green"))
        self.query_one("#data-counts", Static).update(counts_table(info))
        shape = info.get("image_shape") or []
        about = Text()
        about.append(f"{info.get('source', message.source)}\n", style="bold")
        about.append(_("{count} classes").format(count=len(info.get("classes") or [])) + "\n")
        about.append(
            _("train {train} · validation {val} · test {test}").format(
                train=_n(info.get("train")), val=_n(info.get("val")), test=_n(info.get("test"))
            )
            + "\n"
        )
        if shape:
            about.append(_("images {shape}").format(shape="×".join(str(s) for s in shape)) + "\n")
        about.append(
            _(
                "validation is a stratified split of the training images (val_split); the class "
                "balance above is what the model sees."
            ),
            style="dim",
        )
        self.query_one("#data-about", Static).update(about)
        await self._draw_samples()

    def on_data_screen_failed(self, message: Failed) -> None:
        self.loaded_source = message.source
        self.query_one("#data-status", Static).update(Text(f"✗ {message.source}", style="bold red"))
        body = Text(
            _("Could not load {source}: {reason}").format(
                source=message.source, reason=message.reason
            ),
            style="red",
        )
        self.query_one("#data-counts", Static).update(body)
        self.notify(
            message.reason,
            title=_("Data source {source}").format(source=message.source),
            severity="error",
            timeout=8,
        )

    async def _draw_samples(self) -> None:
        grid = self.query_one("#samples-grid", Vertical)
        await grid.remove_children()
        if self.images is None or self.labels is None:
            await grid.mount(Static(Text(_("no sample images"), style="dim")))
            return
        classes = list(self.info.get("classes") or [])
        # As many images per row as fit: label (12) + images (pixel_width + 1 margin) + box (4).
        fit = max((self.size.width - 18) // (self.pixel_width + 1), 1)
        rows = []
        for class_index, name in enumerate(classes):
            picks = [i for i, label in enumerate(self.labels.tolist()) if label == class_index]
            picks = picks[: min(self.samples, fit)]
            row = Horizontal(classes="sample-row")
            rows.append((row, name, picks))
        await grid.mount_all([r for r, _, _ in rows])
        for row, name, picks in rows:
            await row.mount(Label(name, classes="sample-label"))
            await row.mount_all([PixelImage(self.images[i], width=self.pixel_width) for i in picks])

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed says so (workers never take the app down: exit_on_error=False)."""
        if event.state == WorkerState.ERROR:
            event.stop()
            self.notify(
                f"{_(event.worker.description)}: {event.worker.error}", severity="error", timeout=8
            )
