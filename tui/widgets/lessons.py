"""Lessons: the assignment's questions answered with the numbers of the model on screen.

The lessons themselves are the report's (`engine.report.model_lessons`, with the sentences that
point at the TUI's panes), in the app's language; this pane turns their emphasis spans into Rich
text. Each lesson takes its figures from the layer table (summary.json or the ONNX node table)
and the run record, so the explanation changes with the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from engine.records import RunRecord
    from engine.report.model_lessons import Lesson


def render_lessons(lessons: list[Lesson]) -> Text:
    """Numbered lessons, titles underlined, each span in its own style."""
    out = Text()
    for i, lesson in enumerate(lessons):
        if i:
            out.append("\n\n")
        out.append(f"{i + 1}. {lesson.title}\n", style="bold underline")
        for span in lesson.spans:
            out.append(span.text, style=span.style or "")
    return out


class LessonsView(Static):
    """The lessons for the model on screen."""

    DEFAULT_CSS = """
    LessonsView { padding: 0 2; height: auto; }
    """

    def show(
        self,
        summary: dict[str, Any],
        run: RunRecord | None = None,
        results: dict[str, Any] | None = None,
    ) -> None:
        # Imported when the pane is first shown: the report's lessons module and its catalog.
        from engine.report.model_lessons import model_lessons
        from tui.i18n import current

        lessons = model_lessons(summary, run, results, current(), for_tui=True)
        self.update(render_lessons(lessons))
