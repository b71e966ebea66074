"""What the Inspect screen asks of each of its panes, with do-nothing defaults."""

from __future__ import annotations

from typing import Any

from textual.containers import Vertical

from tui.screens.inspect_target import LoadedTarget, Samples


class InspectPane(Vertical):
    """A pane of the Inspect screen. It gets the loaded target (`set_target`), may follow the
    layer selected in the layer table (`follow_layer`), page with `[`/`]` (`page`), step with
    `,`/`.` (`step`) and use the screen's test images (`samples_ready`). Heavy work runs in
    thread workers that post the pane's own messages; widgets change only in the handlers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target: LoadedTarget | None = None

    def set_target(self, target: LoadedTarget) -> None:
        """A run or file was loaded."""
        self.target = target

    def follow_layer(self, row: dict[str, Any]) -> None:
        """The layer table's selection moved to `row` (panes that care override this)."""

    def samples_ready(self, samples: Samples) -> None:
        """The screen's test images arrived (panes that use them override this)."""

    def page(self, delta: int) -> None:
        """`[` / `]`: previous or next page."""

    def step(self, delta: int) -> None:
        """`,` / `.`: previous or next item (channel, image...)."""
