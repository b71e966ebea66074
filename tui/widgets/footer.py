"""The key bar at the bottom of every screen, its key labels in the app's language."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey

from tui.i18n import _, language_code


class Footer(TextualFooter):
    """Textual's Footer; each binding's description is translated as it is shown, and the keys
    are rebuilt only when the keys to show have changed.

    Bindings are class attributes written in English (they exist before the language is
    chosen), so the translation happens here, when the footer lays out its keys.

    Textual's Footer rebuilds all its keys whenever the screen says its bindings *may* have
    changed: on every focus move, and eight times before cnnlab's first frame, where each
    rebuild mounts and styles every key again (about a tenth of the start-up's work,
    counted with cProfile). Most of those signals leave the same keys on show.
    """

    _shown: tuple[Any, ...] | None = None

    def _keys_on_show(self, screen: Screen[Any]) -> tuple[Any, ...]:
        """What the keys show: each key, label, action, whether it is enabled, its tooltip."""
        return (
            language_code(),
            self.compact,
            self.show_command_palette,
            tuple(
                (binding.key, binding.description, binding.action, enabled, tooltip)
                for (_node, binding, enabled, tooltip) in screen.active_bindings.values()
                if binding.show or binding.action == "command_palette"
            ),
        )

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if (
            self._shown is not None
            and self.is_attached
            and screen is self.screen
            and self._keys_on_show(screen) == self._shown
        ):
            return  # the same keys are on show: nothing to rebuild
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._shown = self._keys_on_show(self.screen)
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.description:
                widget.description = _(widget.description)
            yield widget
