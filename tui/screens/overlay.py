"""Several runs on one chart: validation accuracy and loss per epoch, and final accuracy bars.

This is the assignment's "simple CNN vs transfer learning" plot, for any runs you select.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from engine.runs import Run
from tui.i18n import _
from tui.widgets.charts import PALETTE, Bar, BarChart, LineChart, Series
from tui.widgets.footer import Footer
from tui.widgets.nav import NavBar
from tui.widgets.run_info import RANDOM_SHORT, pct, run_title


def overlay_series(rows: list[Run], key: str) -> list[Series]:
    """One curve per run of `history[*].<key>` (val_accuracy, val_loss, ...), epochs numbered
    across phases."""
    series: list[Series] = []
    for i, row in enumerate(rows):
        values = [getattr(h, key) for h in row.info.history]
        points = [(float(n), float(v)) for n, v in enumerate(values, start=1) if v is not None]
        label = run_title(row.info) + (f" {_(RANDOM_SHORT)}" if row.info.random_init else "")
        series.append(Series(label, points, PALETTE[i % len(PALETTE)], dashed=i >= len(PALETTE)))
    return series


class OverlayScreen(Screen[None]):
    """Validation curves of the selected runs, overlaid."""

    BINDINGS = [Binding("escape,q", "back", "Back")]

    def __init__(self, rows: list[Run]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        yield NavBar("runs")
        acc = overlay_series(self.rows, "val_accuracy")
        loss = overlay_series(self.rows, "val_loss")
        x_max = max((len(r.info.history) for r in self.rows), default=2)
        with VerticalScroll(id="overlay-scroll"):
            yield Static(
                Text.assemble(
                    (_("Validation curves of {n} runs").format(n=len(self.rows)), "bold"),
                    (
                        "  " + _("(⚠rand = backbone not pretrained)")
                        if any(r.info.random_init for r in self.rows)
                        else "",
                        "yellow",
                    ),
                ),
                id="overlay-title",
            )
            with Vertical(classes="detail-box", id="overlay-legend") as box:
                box.border_title = _("runs")
                legend = Text()
                for i, (row, s) in enumerate(zip(self.rows, acc, strict=True)):
                    if i:
                        legend.append("\n")
                    legend.append("━━ ", style=s.color)
                    legend.append(s.label)
                    legend.append(f"   {row.id}", style="dim")
                yield Static(legend)
            with Horizontal(classes="detail-row", id="overlay-charts"):
                acc_chart = LineChart(
                    acc,
                    x_range=(1, max(x_max, 2)),
                    y_range=(0.0, 1.0),
                    x_label=_("epoch"),
                    id="overlay-acc",
                )
                acc_chart.border_title = _("validation accuracy")
                yield acc_chart
                loss_chart = LineChart(
                    loss, x_range=(1, max(x_max, 2)), x_label=_("epoch"), id="overlay-loss"
                )
                loss_chart.border_title = _("validation loss")
                yield loss_chart
            with Vertical(classes="detail-box", id="overlay-bars") as box:
                box.border_title = _("final test accuracy")
                bars = [
                    Bar(
                        run_title(row.info),
                        (row.info.metrics.test_accuracy or 0.0) if row.info.metrics else 0.0,
                        PALETTE[i % len(PALETTE)],
                        note=_(RANDOM_SHORT) if row.info.random_init else "",
                    )
                    for i, row in enumerate(self.rows)
                ]
                yield BarChart(bars, max_value=1.0, value_format=lambda v: pct(v))
        yield Footer()

    def action_back(self) -> None:
        self.app.pop_screen()
