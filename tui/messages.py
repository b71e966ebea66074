"""App-wide messages. Workers post these; handlers on the UI thread change widgets.

The engine's events (docs/protocol.md) arrive as `EngineEvent` carrying the typed event
(`engine.records`), except the high-rate `batch_progress`, which comes as `BatchProgress` so that
a newer one replaces a still-queued older one (Toolong's `can_replace`): a fast training loop
never floods the UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # annotations only: the records load with the first event
    from engine import records


@dataclass
class EngineEvent(Message):
    """One event from the engine's JSON-lines stream (any kind but batch_progress)."""

    job: int
    event: records.Event

    @property
    def kind(self) -> str:
        return self.event.KIND


@dataclass
class BatchProgress(Message):
    """A throttled `batch_progress` event; a newer one for the same job replaces it in the queue."""

    job: int
    event: records.BatchProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, BatchProgress) and message.job == self.job


@dataclass
class JobStarted(Message):
    """The engine process for a queued request started (or failed to start: `error`)."""

    job: int
    label: str
    command: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class JobEnded(Message):
    """The engine process exited. `tail` holds its last stderr lines when it failed."""

    job: int
    returncode: int | None
    cancelled: bool = False
    reason: str = ""
    tail: list[str] = field(default_factory=list)


@dataclass
class RunsChanged(Message):
    """Run folders were added, finished or deleted: lists of runs should reload."""

    run_id: str | None = None


@dataclass
class OpenInspector(Message):
    """Open the model inspector (part 2) on a run folder or an .onnx file (None: let it ask)."""

    target: Path | None = None
