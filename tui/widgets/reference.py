"""The reference check on the Lessons tab: the model's params and MACs beside its backbone's
published figures, and why they differ (engine.inspect.reference computes it; no TensorFlow)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from tui.i18n import _, integer


def render_reference(check: dict[str, Any] | None) -> Text:
    """The comparison as a few lines of text (a note when there is nothing to compare with)."""
    if check is None:
        return Text(
            _("Reference check: not one of the nine backbones (nothing published to compare)."),
            style="dim",
        )
    pub, own = check["published"], check["model"]
    size = pub["input_size"]
    text = Text()
    text.append(
        _("Reference check: {backbone}").format(backbone=check["backbone"]) + "\n", style="bold"
    )
    text.append(
        _(
            "params   published {keras} (Keras, with the ImageNet top, {size})"
            " · without the top {headless} · this model {own}"
        ).format(
            keras=integer(pub["keras_params"]),
            size=f"{size}×{size}",
            headless=integer(pub["keras_params"] - pub["top_params"]),
            own=integer(own["params"]),
        )
        + "\n"
    )
    text.append(
        _("MACs     published {macs} at {size} · this model {own}").format(
            macs=integer(pub["macs"]), size=f"{size}×{size}", own=integer(own["macs"])
        )
    )
    if own.get("input_size"):
        text.append(" " + _("at {size}").format(size=f"{own['input_size']}×{own['input_size']}"))
    text.append("\n")
    for reason in check["differences"]:
        text.append(f"• {reason['cause']}: ", style="bold cyan")
        text.append(f"{reason['text']}\n")
    text.append(
        _("sources:")
        + f" {pub['keras_source_text']}; {pub['params_source_text']}; {pub['macs_source_text']}",
        style="dim",
    )
    return text


class ReferenceView(Static):
    """Shows `render_reference` of the loaded model."""

    DEFAULT_CSS = "ReferenceView { height: auto; padding: 1 1 0 1; }"

    def show(self, check: dict[str, Any] | None) -> None:
        self.update(render_reference(check))
