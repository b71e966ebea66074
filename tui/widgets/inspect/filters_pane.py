"""The Filters pane: a convolution's kernels as colour patches, a page at a time, with
per-filter statistics (kernels read in a thread worker)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Select, Static

from tui.i18n import N_, _, integer
from tui.screens.inspect_target import LoadedTarget
from tui.widgets.filters import FilterGrid, render_colour_scale, render_filter_stats, scale_for
from tui.widgets.layer_table import display_name

if TYPE_CHECKING:
    import numpy as np


from tui.widgets.inspect.base import InspectPane

GRID_ROWS = 3  # rows of filter patches per page


class FiltersPane(InspectPane):
    """A convolution's kernels as colour patches, a page at a time, with per-filter statistics."""

    DEFAULT_CSS = """
    FiltersPane { height: 1fr; }
    FiltersPane .pane-controls { height: auto; }
    FiltersPane #filters-layer { width: 60; }
    FiltersPane #filters-info { width: 1fr; padding: 1 1 0 1; }
    FiltersPane #filters-scroll { height: 1fr; padding: 0 1; }
    FiltersPane #filters-scale { margin: 1 0 0 0; }
    FiltersPane #filters-stats { margin: 1 0 0 0; }
    """

    class KernelLoaded(Message):
        """A kernel was read (K×K×Cin×Cout)."""

        def __init__(self, layer: str, kernel: np.ndarray) -> None:
            super().__init__()
            self.layer = layer
            self.kernel = kernel

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target: LoadedTarget | None = None
        self.kernel: np.ndarray | None = None
        self.layer_name: str | None = None
        self.page_index = 0
        self.channel = 0
        self.report: dict[str, Any] | None = None
        self._conv_names: list[str] = []

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-controls"):
            yield Select[str]([], prompt=_("convolution"), id="filters-layer", type_to_search=False)
            yield Static("", id="filters-info")
        with VerticalScroll(id="filters-scroll"):
            yield FilterGrid(id="filter-grid")
            yield Static("", id="filters-scale")
            yield Static("", id="filters-stats")

    @property
    def grid(self) -> FilterGrid:
        return self.query_one("#filter-grid", FilterGrid)

    @property
    def layer_select(self) -> Select[str]:
        return self.query_one("#filters-layer", Select)

    def set_target(self, target: LoadedTarget) -> None:
        from engine.inspect import conv_layers

        self.target = target
        self.kernel = None
        self._conv_names = conv_layers(target.summary)
        if not self._conv_names:
            self.layer_select.set_options([])
            self._info(_("This model has no convolutions (an MLP sees pixels, not patches)."))
            self.grid.show(None)
            return
        onnx = target.summary.get("format") == "onnx"
        self.layer_select.set_options(
            [
                (display_name({"name": n, "format": "onnx"}) if onnx else n, n)
                for n in self._conv_names
            ]
        )
        self.layer_select.value = self._conv_names[0]

    def follow_layer(self, row: dict[str, Any]) -> None:
        name = str(row.get("name"))
        if name in self._conv_names and self.layer_select.value != name:
            self.layer_select.value = name

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "filters-layer" or event.value is Select.NULL:
            return
        event.stop()
        self._info(_("reading {name} …").format(name=event.value))
        self._load_kernel(str(event.value))

    def _source(self) -> Path | None:
        if self.target is None:
            return None
        if self.target.summary.get("format") == "onnx":
            return self.target.onnx_path
        return self.target.keras_path

    @work(
        thread=True,
        exclusive=True,
        group="inspect-filters",
        description=N_("read the kernel"),
        exit_on_error=False,
    )
    def _load_kernel(self, layer: str) -> None:
        from export.onnx_layers import load_kernel

        source = self._source()
        if source is None:
            raise ValueError(_("no model file to read kernels from (this run has no model.keras)"))
        self.post_message(self.KernelLoaded(layer, load_kernel(source, layer)))

    def on_filters_pane_kernel_loaded(self, message: KernelLoaded) -> None:
        self.layer_name, self.kernel = message.layer, message.kernel
        self.page_index, self.channel = 0, 0
        self.redraw()

    def per_page(self) -> int:
        if self.kernel is None:
            return 1
        kh, kw = self.kernel.shape[:2]
        s = scale_for(max(kh, kw))
        cell_w = max(kw * s, 5) + 1
        width = self.grid.size.width or 100
        return max(1, width // cell_w) * GRID_ROWS

    def redraw(self) -> None:
        from engine.inspect import filter_report

        if self.kernel is None:
            return
        kh, kw, cin, cout = self.kernel.shape
        per_page = self.per_page()
        pages = max(1, -(-cout // per_page))
        self.page_index = max(0, min(self.page_index, pages - 1))
        self.channel = max(0, min(self.channel, cin - 1))
        report = filter_report(
            self.kernel,
            layer=self.layer_name or "",
            start=self.page_index * per_page,
            count=per_page,
            channel=self.channel if cin != 3 else 0,
        )
        self.report = report
        self.grid.show(report)
        self.query_one("#filters-scale", Static).update(render_colour_scale(report))
        self.query_one("#filters-stats", Static).update(render_filter_stats(report))
        lo, hi = report["range"]
        if report["mode"] == "rgb":
            what = _("RGB patches")
        else:
            what = _("input channel {n}/{total} (, .)").format(n=self.channel + 1, total=cin)
        self._info(
            _(
                "{filters} filters of {kernel} = {weights} weights · showing {first}–{last} "
                "· page {page}/{pages} ([ ]) · {what}"
            ).format(
                filters=cout,
                kernel=f"{kh}×{kw}×{cin}",
                weights=integer(kh * kw * cin),
                first=lo,
                last=hi - 1,
                page=self.page_index + 1,
                pages=pages,
                what=what,
            )
        )

    def page(self, delta: int) -> None:
        self.page_index += delta
        self.redraw()

    def step(self, delta: int) -> None:
        if self.kernel is not None and self.kernel.shape[2] != 3:
            self.channel = (self.channel + delta) % self.kernel.shape[2]
            self.redraw()

    def on_resize(self) -> None:
        if self.kernel is not None:
            self.redraw()

    def _info(self, text: str) -> None:
        self.query_one("#filters-info", Static).update(text)
