"""Charts drawn with Unicode and Rich styles: braille line charts, block bar charts, heat maps.

Everything here renders to plain text cells with 256-colour-safe styles, so it works over SSH
in any terminal (no plotting library, no graphics protocol). The pure functions
(`render_line_chart`, `render_bar_chart`, `heatmap_table`) are usable from any widget; the
`LineChart` and `BarChart` widgets redraw them at their current size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

from engine.records import HistoryEntry
from tui.i18n import N_, _, number

# Colours from the xterm 256-colour palette, so they look the same with or without true colour.
PALETTE = (
    "#5fafff",
    "#ffaf00",
    "#5fd787",
    "#ff5f87",
    "#af87ff",
    "#00d7d7",
    "#d7d75f",
    "#ff875f",
    "#87afaf",
)

# Braille dot bits, indexed [x][y] inside one 2×4 cell.
_BRAILLE_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_EIGHTHS = " ▏▎▍▌▋▊▉█"


@dataclass
class Series:
    """One curve: a label, its (x, y) points and a colour."""

    label: str
    points: Sequence[tuple[float, float]]
    color: str = PALETTE[0]
    dashed: bool = False


def _nice_range(lo: float, hi: float) -> tuple[float, float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return 0.0, 1.0
    if hi - lo < 1e-9:
        pad = abs(hi) * 0.05 or 0.5
        return lo - pad, hi + pad
    return lo, hi


def _fmt_tick(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return number(value, 0)
    if abs(value) >= 10:
        return number(value, 1)
    return number(value, 2)


def render_line_chart(
    series: Sequence[Series],
    width: int,
    height: int,
    *,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    y_format: Callable[[float], str] = _fmt_tick,
    x_label: str = "",
    legend: bool = True,
    empty_message: str = N_("no data yet"),
) -> Text:
    """Draw `series` as braille curves in a `width`×`height` cell box (axes and legend included)."""
    width = max(width, 12)
    height = max(height, 4)
    points = [p for s in series for p in s.points if math.isfinite(p[0]) and math.isfinite(p[1])]
    out = Text(no_wrap=True, overflow="crop")
    legend_rows = 1 if legend and series else 0
    plot_h = height - 1 - legend_rows  # one row for the x axis
    if legend_rows:
        for i, s in enumerate(series):
            if i:
                out.append("  ")
            out.append("━━" if not s.dashed else "╍╍", Style(color=s.color, bold=True))
            out.append(f" {s.label}")
        out.truncate(width)
        out.append("\n")
    if not points:
        for row in range(plot_h):
            line = _(empty_message).center(width) if row == plot_h // 2 else ""
            out.append(line.ljust(width), Style(dim=True))
            out.append("\n")
        out.append(" " * width)
        return out

    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_lo, x_hi = x_range if x_range is not None else (min(xs), max(xs))
    if x_hi - x_lo < 1e-9:
        x_hi = x_lo + 1
    y_lo, y_hi = _nice_range(*(y_range if y_range is not None else (min(ys), max(ys))))

    labels = [y_format(y_hi), y_format((y_hi + y_lo) / 2), y_format(y_lo)]
    axis_w = max(len(label) for label in labels) + 1
    plot_w = max(width - axis_w - 1, 4)
    dots_w, dots_h = plot_w * 2, plot_h * 4
    cells = [[0] * plot_w for _ in range(plot_h)]
    colors: list[list[str | None]] = [[None] * plot_w for _ in range(plot_h)]

    def to_dot(x: float, y: float) -> tuple[int, int]:
        dx = round((x - x_lo) / (x_hi - x_lo) * (dots_w - 1))
        dy = round((y_hi - y) / (y_hi - y_lo) * (dots_h - 1))
        return min(max(dx, 0), dots_w - 1), min(max(dy, 0), dots_h - 1)

    def plot(dx: int, dy: int, color: str) -> None:
        cx, cy = dx // 2, dy // 4
        cells[cy][cx] |= _BRAILLE_BITS[dx % 2][dy % 4]
        colors[cy][cx] = color

    for s in series:
        pts = [to_dot(x, y) for x, y in s.points if math.isfinite(x) and math.isfinite(y)]
        if len(pts) == 1:
            dx, dy = pts[0]
            for ox, oy in ((0, 0), (1, 0), (0, 1), (1, 1)):
                plot(min(dx + ox, dots_w - 1), min(dy + oy, dots_h - 1), s.color)
        for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
            steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for k in range(steps + 1):
                if s.dashed and (k // 3) % 2:
                    continue
                plot(round(x0 + (x1 - x0) * k / steps), round(y0 + (y1 - y0) * k / steps), s.color)

    label_rows = {0: labels[0], plot_h // 2: labels[1], plot_h - 1: labels[2]}
    axis_style = Style(dim=True)
    for row in range(plot_h):
        out.append(label_rows.get(row, "").rjust(axis_w - 1) + " ", axis_style)
        out.append("┤" if row in label_rows else "│", axis_style)
        for col in range(plot_w):
            bits = cells[row][col]
            if bits:
                out.append(chr(0x2800 + bits), Style(color=colors[row][col]))
            else:
                out.append(" ")
        out.append("\n")
    left = _fmt_x(x_lo)
    right = _fmt_x(x_hi)
    middle = f" {x_label} " if x_label else ""
    fill = plot_w - len(left) - len(right) - len(middle)
    axis = "└" + left + "─" * max(fill // 2, 0) + middle + "─" * max(fill - fill // 2, 0) + right
    out.append(" " * axis_w + axis[: plot_w + 1], axis_style)
    return out


def _fmt_x(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else number(value, 1)


@dataclass
class Bar:
    """One bar: label, value, optional colour and a note printed after the value."""

    label: str
    value: float
    color: str = PALETTE[0]
    note: str = ""
    note_style: str = "bold yellow"


def render_bar_chart(
    bars: Sequence[Bar],
    width: int,
    *,
    max_value: float | None = None,
    value_format: Callable[[float], str] = lambda v: number(v, 2),
    label_width: int | None = None,
) -> Text:
    """Horizontal bars with eighth-block resolution, one per line: `label ███▌ value note`."""
    out = Text(no_wrap=True, overflow="crop")
    if not bars:
        out.append(_("no data"), Style(dim=True))
        return out
    lw = label_width if label_width is not None else min(max(len(b.label) for b in bars), 24)
    values = [v for b in bars if math.isfinite(v := b.value)]
    top = max_value if max_value is not None else (max(values) if values else 1.0)
    top = top if top > 0 else 1.0
    texts = [value_format(b.value) if math.isfinite(b.value) else "–" for b in bars]
    vw = max(len(t) for t in texts)
    nw = max((len(b.note) for b in bars), default=0)
    bar_w = max(width - lw - vw - (nw + 1 if nw else 0) - 3, 4)
    for i, (b, vtext) in enumerate(zip(bars, texts, strict=True)):
        if i:
            out.append("\n")
        out.append(b.label[:lw].ljust(lw) + " ")
        frac = max(0.0, min(b.value / top, 1.0)) if math.isfinite(b.value) else 0.0
        eighths = round(frac * bar_w * 8)
        full, part = divmod(eighths, 8)
        bar = "█" * full + (_EIGHTHS[part] if part else "")
        out.append(bar, Style(color=b.color))
        out.append(" " * (bar_w - len(bar)) + " " + vtext.rjust(vw))
        if b.note:
            out.append(" " + b.note, b.note_style)
    return out


# A sequential ramp (dark blue → teal → yellow) from the xterm 256-colour cube.
HEAT_RAMP = (
    "#1c1c1c",
    "#00005f",
    "#005f87",
    "#00875f",
    "#5f875f",
    "#87af5f",
    "#afaf00",
    "#d7af00",
    "#ffd700",
)


def heat_color(fraction: float) -> str:
    """The ramp colour for a value in [0, 1]."""
    if not math.isfinite(fraction):
        return HEAT_RAMP[0]
    idx = round(max(0.0, min(fraction, 1.0)) * (len(HEAT_RAMP) - 1))
    return HEAT_RAMP[idx]


def heatmap_table(
    matrix: Sequence[Sequence[float]],
    labels: Sequence[str],
    *,
    row_title: str = N_("true \\ predicted"),
    short: int = 5,
) -> Table:
    """A confusion matrix as a Rich table whose cell backgrounds are row-normalised heat."""
    table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False)
    table.add_column(_(row_title), justify="right", style="bold", no_wrap=True)
    for label in labels:
        table.add_column(label[:short], justify="right", no_wrap=True)
    table.add_column(_("acc"), justify="right", no_wrap=True)
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        cells: list[Text] = []
        for j, value in enumerate(row):
            frac = value / total
            bg = heat_color(frac)
            fg = "black" if frac > 0.55 else "white"
            style = Style(color=fg, bgcolor=bg, bold=(i == j))
            cells.append(Text(_fmt_count(value), style=style))
        diag = row[i] / total if i < len(row) else 0.0
        name = labels[i] if i < len(labels) else str(i)
        cells.append(Text(f"{number(diag * 100, 0)}%", style=Style(bold=True)))
        table.add_row(name, *cells)
    return table


def _fmt_count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else number(value, 2)


class LineChart(Widget):
    """Braille line chart that redraws at its own size; set `series` to update it."""

    DEFAULT_CSS = """
    LineChart {
        height: 12;
        width: 1fr;
        padding: 0 1;
    }
    """

    series: reactive[list[Series]] = reactive(list, always_update=True, layout=False)

    def __init__(
        self,
        series: list[Series] | None = None,
        *,
        x_range: tuple[float, float] | None = None,
        y_range: tuple[float, float] | None = None,
        y_format: Callable[[float], str] = _fmt_tick,
        x_label: str = "",
        empty_message: str = N_("no data yet"),
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.x_range = x_range
        self.y_range = y_range
        self.y_format = y_format
        self.x_label = x_label
        self.empty_message = empty_message
        self.set_reactive(LineChart.series, list(series or []))

    def update(
        self,
        series: list[Series],
        *,
        x_range: tuple[float, float] | None = None,
        y_range: tuple[float, float] | None = None,
    ) -> None:
        """Replace the curves (and optionally the axis ranges)."""
        if x_range is not None:
            self.x_range = x_range
        if y_range is not None:
            self.y_range = y_range
        self.series = list(series)

    def render(self) -> Text:
        size = self.content_size
        return render_line_chart(
            self.series,
            size.width,
            size.height,
            x_range=self.x_range,
            y_range=self.y_range,
            y_format=self.y_format,
            x_label=self.x_label,
            empty_message=self.empty_message,
        )


class BarChart(Widget):
    """Horizontal bar chart (one bar per line) that fits its width; set `bars` to update it."""

    DEFAULT_CSS = """
    BarChart {
        height: auto;
        width: 1fr;
        padding: 0 1;
    }
    """

    bars: reactive[list[Bar]] = reactive(list, always_update=True, layout=True)

    def __init__(
        self,
        bars: list[Bar] | None = None,
        *,
        max_value: float | None = None,
        value_format: Callable[[float], str] = lambda v: number(v, 2),
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.max_value = max_value
        self.value_format = value_format
        self.set_reactive(BarChart.bars, list(bars or []))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(len(self.bars), 1)

    def render(self) -> Text:
        return render_bar_chart(
            self.bars,
            self.content_size.width,
            max_value=self.max_value,
            value_format=self.value_format,
        )


@dataclass
class ChartData:
    """Accuracy and loss curves of one run's history, ready for two LineCharts."""

    accuracy: list[Series] = field(default_factory=list)
    loss: list[Series] = field(default_factory=list)
    x_max: float = 1.0


def history_series(history: Sequence[HistoryEntry | dict[str, object]]) -> ChartData:
    """Train/validation accuracy and loss curves from run.json `history` (or live epoch_end events).

    Epochs are numbered across phases (frozen then fine-tuning continue one axis), as Keras
    would with `initial_epoch`.
    """
    acc_t: list[tuple[float, float]] = []
    acc_v: list[tuple[float, float]] = []
    loss_t: list[tuple[float, float]] = []
    loss_v: list[tuple[float, float]] = []
    for i, row in enumerate(history, start=1):
        for key, dest in (
            ("accuracy", acc_t),
            ("val_accuracy", acc_v),
            ("loss", loss_t),
            ("val_loss", loss_v),
        ):
            value = getattr(row, key) if isinstance(row, HistoryEntry) else row.get(key)
            if isinstance(value, (int, float)):
                dest.append((float(i), float(value)))
    data = ChartData(x_max=float(max(len(history), 1)))
    data.accuracy = [
        Series(_("train acc"), acc_t, PALETTE[0]),
        Series(_("val acc"), acc_v, PALETTE[1]),
    ]
    data.loss = [
        Series(_("train loss"), loss_t, PALETTE[0]),
        Series(_("val loss"), loss_v, PALETTE[1]),
    ]
    return data
