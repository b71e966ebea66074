"""A convolution's kernels drawn as coloured cell grids (half-block pixels), with a colour scale.

First-layer filters (3 input channels) are drawn as RGB patches, each stretched to its own
min..max; deeper filters show one input channel at a time on a diverging scale shared by
the whole layer (blue negative, white zero, red positive), so filters can be compared.
The widget draws a `filter_report` dict (engine.inspect.filter_report, values included).
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from tui.i18n import _, number
from tui.widgets.pixels import COLORMAPS, UPPER_HALF


def _lerp_colour(t: float, cmap: str = "diverging") -> tuple[int, int, int]:
    anchors = COLORMAPS[cmap]
    t = min(max(t, 0.0), 1.0) * (len(anchors) - 1)
    i = min(int(t), len(anchors) - 2)
    f = t - i
    a, b = anchors[i], anchors[i + 1]
    return (
        round(a[0] + (b[0] - a[0]) * f),
        round(a[1] + (b[1] - a[1]) * f),
        round(a[2] + (b[2] - a[2]) * f),
    )


def _hex(rgb: tuple[int, int, int]) -> str:
    return f"#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}"


def patch_pixels(
    entry: dict[str, Any], mode: str, abs_max: float
) -> list[list[tuple[int, int, int]]]:
    """The K×K colours of one filter: RGB patch or one channel on the layer's diverging scale."""
    values = entry["values"]
    if mode == "rgb":
        flat = [v for row in values for px in row for v in px]
        lo, hi = min(flat), max(flat)
        span = (hi - lo) or 1.0
        return [
            [tuple(round((v - lo) / span * 255) for v in px) for px in row]  # type: ignore[misc]
            for row in values
        ]
    limit = abs_max or 1.0
    return [[_lerp_colour(0.5 + v / (2 * limit)) for v in row] for row in values]


def scale_for(kernel: int) -> int:
    """Pixels per kernel weight: small kernels are blown up (3×3 → 6×6, 5×5 → 10×10, 1×1 → 6×6)."""
    return max(1, -(-6 // max(kernel, 1)))


def render_filter_grid(report: dict[str, Any], width: int) -> Text:
    """The page of filters in `report`, as many per row as fit in `width` cells."""
    out = Text(no_wrap=True, overflow="crop")
    filters = report.get("filters") or []
    if not filters or "values" not in filters[0]:
        out.append(_("no filters to draw"), style="dim")
        return out
    kh, kw = report["kernel_shape"][:2]
    mode = report["mode"]
    s = scale_for(max(kh, kw))
    pw, ph = kw * s, kh * s
    cell_w = max(pw, 5) + 1
    per_row = max(1, width // cell_w)
    styles: dict[tuple[int, ...], Style] = {}
    for start in range(0, len(filters), per_row):
        chunk = filters[start : start + per_row]
        pixels = [patch_pixels(f, mode, float(report.get("abs_max") or 1.0)) for f in chunk]
        for y in range(0, ph, 2):
            for px in pixels:
                for x in range(pw):
                    top = px[y // s][x // s]
                    # An odd pixel height leaves the last cell's lower half to the background.
                    bottom = px[(y + 1) // s][x // s] if y + 1 < ph else None
                    key = (*top, *(bottom or ()))
                    style = styles.get(key)
                    if style is None:
                        spec = _hex(top) + (f" on {_hex(bottom)}" if bottom else "")
                        style = styles[key] = Style.parse(spec)
                    out.append(UPPER_HALF, style)
                out.append(" " * (cell_w - pw))
            out.append("\n")
        for f in chunk:
            out.append(f"#{f['index']}".ljust(cell_w)[:cell_w], style="bold")
        out.append("\n")
        for f in chunk:
            out.append(f"σ{number(f['std'], 2)}".ljust(cell_w)[:cell_w], style="dim")
        out.append("\n")
    return out


def render_colour_scale(report: dict[str, Any], width: int = 40) -> Text:
    """The legend: the diverging scale with the layer's ±max, or the RGB note."""
    out = Text(no_wrap=True)
    if report.get("mode") == "rgb":
        out.append(
            _("colour = the filter's R, G, B weights, each patch stretched to its own min..max")
        )
        return out
    limit = float(report.get("abs_max") or 0.0)
    out.append(number(-limit, 3, signed=True) + " ")
    for i in range(width):
        rgb = _lerp_colour(i / max(width - 1, 1))
        out.append("█", style=Style.parse(_hex(rgb)))
    out.append(f" {number(limit, 3, signed=True)}   ")
    out.append(_("(0 = white; one scale for the whole layer)"))
    return out


# Column widths of the statistics table: filter, min, max, mean, std, L2.
STAT_WIDTHS = (6, 8, 8, 8, 7, 7)


def render_filter_stats(report: dict[str, Any], limit: int = 12) -> Text:
    """Per-filter statistics of the page: min, max, mean, std, L2 norm."""
    out = Text(no_wrap=True, overflow="crop")
    names = (_("filter"), _("min"), _("max"), _("mean"), _("std"), "L2")
    header = " ".join(n.rjust(w) for n, w in zip(names, STAT_WIDTHS, strict=True))
    out.append(header + "\n", style="bold")
    for f in (report.get("filters") or [])[:limit]:
        cells = [
            str(f["index"]),
            *(number(f[key], 4, signed=True) for key in ("min", "max", "mean")),
            *(number(f[key], 4) for key in ("std", "l2")),
        ]
        out.append(" ".join(c.rjust(w) for c, w in zip(cells, STAT_WIDTHS, strict=True)) + "\n")
    extra = len(report.get("filters") or []) - limit
    if extra > 0:
        out.append(
            "  "
            + _("… {n} more on this page (engine filters --json has them all)").format(n=extra),
            style="dim",
        )
    return out


class FilterGrid(Widget):
    """Draws a filter report; redraws itself to fit its width."""

    DEFAULT_CSS = """
    FilterGrid { height: auto; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.report: dict[str, Any] | None = None

    def show(self, report: dict[str, Any] | None) -> None:
        self.report = report
        self.refresh(layout=True)

    def render(self) -> Text:
        if self.report is None:
            return Text(_("Select a convolution to see its filters."), style="dim")
        return render_filter_grid(self.report, max(self.size.width, 10))

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        if self.report is None:
            return 1
        return len(render_filter_grid(self.report, max(width, 10)).plain.splitlines())


def filters_per_page(report_kernel: list[int], width: int, rows: int) -> int:
    """How many filters fit `rows` grid rows at `width` cells."""
    kh, kw = report_kernel[0], report_kernel[1]
    s = scale_for(max(kh, kw))
    cell_w = max(kw * s, 5) + 1
    return max(1, width // cell_w) * max(1, rows)
