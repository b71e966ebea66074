"""The reference check on the Lessons tab: the model's params and MACs beside its backbone's
published figures, and why they differ (engine.inspect.reference computes it; no TensorFlow)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static


def render_reference(check: dict[str, Any] | None) -> Text:
    """The comparison as a few lines of text (a note when there is nothing to compare with)."""
    if check is None:
        return Text(
            "Reference check: not one of the nine backbones (nothing published to compare).",
            style="dim",
        )
    pub, own = check["published"], check["model"]
    size = pub["input_size"]
    text = Text()
    text.append(f"Reference check: {check['backbone']}\n", style="bold")
    text.append(
        f"params   published {pub['keras_params']:,} (Keras, with the ImageNet top, {size}×{size})"
        f" · without the top {pub['keras_params'] - pub['top_params']:,} · this model {own['params']:,}\n"
    )
    text.append(f"MACs     published {pub['macs']:,} at {size}×{size} · this model {own['macs']:,}")
    if own.get("input_size"):
        text.append(f" at {own['input_size']}×{own['input_size']}")
    text.append("\n")
    for reason in check["differences"]:
        text.append(f"• {reason['cause']}: ", style="bold cyan")
        text.append(f"{reason['text']}\n")
    text.append(
        f"sources: {pub['keras_source_text']}; {pub['params_source_text']}; {pub['macs_source_text']}",
        style="dim",
    )
    return text


class ReferenceView(Static):
    """Shows `render_reference` of the loaded model."""

    DEFAULT_CSS = "ReferenceView { height: auto; padding: 1 1 0 1; }"

    def show(self, check: dict[str, Any] | None) -> None:
        self.update(render_reference(check))
