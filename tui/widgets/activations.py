"""Feature maps and the top-5 bar, drawn in half-block cells.

Each map is coloured on the viridis ramp stretched to its own min..max (so a weak map still
shows its pattern; the numbers under it say how strong it is). A 1×1 map (after global
pooling, or a dense layer) is drawn as one coloured cell per channel instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from tui.i18n import _, number, significant
from tui.widgets.charts import Bar, render_bar_chart
from tui.widgets.pixels import UPPER_HALF, apply_colormap, resize

if TYPE_CHECKING:
    import numpy as np


def map_pixels(fmap: np.ndarray, size: int) -> np.ndarray:
    """One C-less H×W map → size×size RGB (viridis over its own range)."""
    import numpy as np

    h, w = fmap.shape
    if (h, w) != (size, size):
        scale = max(1, size // max(h, w))
        if scale > 1 and h * scale <= size:
            fmap = np.kron(fmap, np.ones((scale, scale), dtype=fmap.dtype))
        fmap = resize(fmap, size, size) if fmap.shape != (size, size) else fmap
    return apply_colormap(fmap, cmap="viridis")


def map_size(h: int, w: int) -> int:
    """Pixels per side a map is drawn at: small maps blown up, big ones shrunk to ≤ 32."""
    side = max(h, w)
    if side >= 32:
        return 32
    return side * max(1, 16 // side) if side < 16 else side


def render_maps(maps: np.ndarray, start: int, width: int) -> Text:
    """A grid of feature maps (C×H×W, channels `start`… of the layer) fitting `width` cells."""
    import numpy as np

    out = Text(no_wrap=True, overflow="crop")
    if maps.size == 0:
        out.append(_("no channels on this page"), style="dim")
        return out
    c, h, w = maps.shape
    if h == 1 and w == 1:
        return render_vector(maps.reshape(-1), start, width)
    size = map_size(h, w)
    cell_w = size + 1
    per_row = max(1, width // cell_w)
    styles: dict[tuple[int, ...], Style] = {}
    for row_start in range(0, c, per_row):
        chunk = [map_pixels(maps[i], size) for i in range(row_start, min(c, row_start + per_row))]
        for y in range(0, size, 2):
            for px in chunk:
                top_row = px[y].tolist()
                bottom_row = px[y + 1].tolist() if y + 1 < size else [None] * size
                for t, b in zip(top_row, bottom_row, strict=True):
                    key = (*t, *(b or ()))
                    style = styles.get(key)
                    if style is None:
                        spec = f"#{t[0]:02x}{t[1]:02x}{t[2]:02x}"
                        if b is not None:  # an odd height leaves the lower half to the background
                            spec += f" on #{b[0]:02x}{b[1]:02x}{b[2]:02x}"
                        style = styles[key] = Style.parse(spec)
                    out.append(UPPER_HALF, style)
                out.append(" ")
            out.append("\n")
        for i in range(row_start, min(c, row_start + per_row)):
            fmap = maps[i]
            label = f"{start + i}"
            peak = float(np.max(fmap))
            text = f"{label} ↑{significant(peak, 2)}"
            out.append(text.ljust(cell_w)[:cell_w], style="dim" if peak <= 0 else "")
        out.append("\n")
    return out


def render_vector(values: np.ndarray, start: int, width: int) -> Text:
    """A 1-D activation (one value per channel) as a strip of coloured cells, plus the top 8."""
    import numpy as np

    out = Text(no_wrap=True, overflow="crop")
    rgb = apply_colormap(values[None, :], cmap="viridis")[0]
    per_line = max(8, width - 8)
    for i in range(0, len(values), per_line):
        out.append(f"{start + i:>6} ", style="dim")
        for r, g, b in rgb[i : i + per_line].tolist():
            out.append("█", style=Style.parse(f"#{r:02x}{g:02x}{b:02x}"))
        out.append("\n")
    order = np.argsort(-values)[:8]
    out.append(_("strongest:") + " ", style="bold")
    out.append(
        ", ".join(f"{start + int(i)} ({significant(float(values[int(i)]), 3)})" for i in order)
    )
    zeros = float((values == 0).mean())
    if zeros:
        out.append(
            "\n"
            + _("{share} of these channels are exactly 0 (ReLU cut them)").format(
                share=f"{number(zeros * 100, 0)} %"
            ),
            style="dim",
        )
    return out


def render_top5(top5: list[dict[str, Any]], true_index: int | None, width: int = 48) -> Text:
    """The top-5 prediction as bars; the true class in green, a wrong first guess in red."""
    bars = []
    for k, entry in enumerate(top5):
        correct = true_index is not None and entry["index"] == true_index
        colour = "#5fd75f" if correct else ("#ff5f5f" if k == 0 else "#5fafff")
        bars.append(
            Bar(
                label=str(entry["class"]),
                value=float(entry["probability"]) * 100,
                color=colour,
                note=_("← true") if correct else "",
                note_style="bold green",
            )
        )
    return render_bar_chart(
        bars, width, max_value=100.0, value_format=lambda v: f"{number(v, 1):>5} %"
    )


class FeatureMaps(Widget):
    """Draws a page of feature maps; redraws to fit its width."""

    DEFAULT_CSS = """
    FeatureMaps { height: auto; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.maps: np.ndarray | None = None
        self.start = 0
        self.message = _("Pick an image and a layer.")

    def show(self, maps: np.ndarray | None, start: int = 0, message: str = "") -> None:
        self.maps = maps
        self.start = start
        self.message = message
        self.refresh(layout=True)

    def _text(self, width: int) -> Text:
        if self.maps is None:
            return Text(self.message, style="dim")
        return render_maps(self.maps, self.start, max(width, 10))

    def render(self) -> Text:
        return self._text(self.size.width)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return len(self._text(width).plain.splitlines()) or 1
