"""The key bar at the bottom of every screen, its key labels in the app's language."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey

from tui.i18n import _


class Footer(TextualFooter):
    """Textual's Footer; each binding's description is translated as it is shown.

    Bindings are class attributes written in English (they exist before the language is
    chosen), so the translation happens here, when the footer lays out its keys.
    """

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.description:
                widget.description = _(widget.description)
            yield widget
