"""Per-channel histograms and number lines for the Preprocessing pane.

Draws the dicts of `engine.inspect.preprocess_stats` ("before", "after", "mistake": channels
with counts and edges) as eighth-block column charts, one strip per channel, and a number line
showing the range a backbone expects against the range the batch actually has.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text

from tui.i18n import _, number, significant

_COLUMNS = " ▁▂▃▄▅▆▇█"
CHANNEL_COLOURS = {"R": "#ff5f5f", "G": "#5fd75f", "B": "#5f87ff"}


def _fmt(v: float) -> str:
    if abs(v) >= 100:
        return number(v, 0)
    if abs(v) >= 10:
        return number(v, 1)
    return significant(v, 2) if v else "0"


def render_histograms(part: dict[str, Any], title: str, *, rows: int = 3) -> Text:
    """One panel: a title, then each channel as a `rows`-high column chart over the bins."""
    out = Text(no_wrap=True, overflow="crop")
    channels = part.get("channels") or []
    bins = len(channels[0]["counts"]) if channels else 0
    width = bins + 2
    out.append(title[: width + 6] + "\n", style="bold")
    for ch in channels:
        counts = ch["counts"]
        top = max(counts) or 1
        colour = Style(color=CHANNEL_COLOURS.get(ch["name"], "white"))
        heights = [c / top * rows * 8 for c in counts]
        for r in range(rows - 1, -1, -1):
            out.append(f"{ch['name']} " if r == rows - 1 else "  ", style="bold")
            for h in heights:
                level = int(round(min(max(h - r * 8, 0), 8)))
                out.append(_COLUMNS[level], style=colour)
            out.append("\n")
        out.append(
            f"  μ {_fmt(ch['mean'])} σ {_fmt(ch['std'])}".ljust(width)[: width + 4] + "\n",
            style="dim",
        )
    lo, hi = part.get("range", [0, 1])
    left, right = _fmt(lo), _fmt(hi)
    out.append(
        "  " + left + " " * max(1, bins - len(left) - len(right)) + right + "\n", style="dim"
    )
    return out


def render_range_line(
    expected: tuple[float, float],
    actual: tuple[float, float],
    width: int = 60,
    *,
    label: str = "x/255",
) -> Text:
    """A number line over `expected`: where the batch's `actual` range falls inside it.

    For ResNet (expects −123.68..151.06), x/255's 0..1 is a sliver one cell wide: the picture
    of why the wrong preprocessing feeds the backbone what looks like a flat grey image.
    """
    lo = min(expected[0], actual[0])
    hi = max(expected[1], actual[1])
    span = (hi - lo) or 1.0

    def col(v: float) -> int:
        return min(width - 1, max(0, int(round((v - lo) / span * (width - 1)))))

    e0, e1 = col(expected[0]), col(expected[1])
    a0, a1 = col(actual[0]), col(actual[1])
    out = Text(no_wrap=True)
    expects = _("expects")
    out.append(f"{expects:>8} ")
    for i in range(width):
        out.append("━" if e0 <= i <= e1 else " ", style="green")
    out.append(f" {_fmt(expected[0])}..{_fmt(expected[1])}\n")
    out.append(f"{label[:8]:>8} ")
    for i in range(width):
        out.append("█" if a0 <= i <= a1 else "·", style="bold yellow" if a0 <= i <= a1 else "dim")
    covered = max(0.0, min(actual[1], expected[1]) - max(actual[0], expected[0]))
    share = covered / ((expected[1] - expected[0]) or 1.0) * 100
    out.append(f" {_fmt(actual[0])}..{_fmt(actual[1])} ")
    out.append(_("({share} of the expected range)").format(share=f"{number(share, 1)} %"))
    return out
