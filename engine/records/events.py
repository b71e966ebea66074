"""The events of `engine run --events jsonl`, one class per kind (docs/protocol.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.records.base import EVENT_SCHEMA, R, Record, RecordError, json_type
from engine.records.run import ChildPlan, DataInfo, Metrics, ModelInfo


# ---------------------------------------------------------------------------- events
@dataclass(kw_only=True)
class Event(Record):
    """One line of `engine run --events jsonl` (docs/protocol.md)."""

    KIND: ClassVar[str] = ""

    time: float | None = None  # Unix time; the Reporter stamps it when sent
    run_id: str | None = None

    @classmethod
    def from_json(cls: type[R], data: Any, where: str | None = None) -> R:
        if isinstance(data, dict) and "event" in data:
            data = {k: v for k, v in data.items() if k != "event"}
        return super().from_json(data, where)  # type: ignore[misc]

    def to_json(self) -> dict[str, Any]:
        return {"event": self.KIND, **super().to_json()}


@dataclass(kw_only=True)
class RunStarted(Event):
    KIND: ClassVar[str] = "run_started"

    schema: int = EVENT_SCHEMA
    run_dir: str
    experiment: str
    parent: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    model: ModelInfo | None = None  # None for a parent run
    data: DataInfo | None = None  # None for a parent run
    plan: list[ChildPlan] = field(default_factory=list)  # a parent's children, in order

    @property
    def is_parent(self) -> bool:
        return bool(self.plan)


@dataclass(kw_only=True)
class PhaseStarted(Event):
    KIND: ClassVar[str] = "phase_started"

    phase: str
    epochs: int
    steps: int


@dataclass(kw_only=True)
class BatchProgress(Event):
    KIND: ClassVar[str] = "batch_progress"

    phase: str
    epoch: int
    epochs: int
    step: int
    steps: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(kw_only=True)
class EpochEnd(Event):
    KIND: ClassVar[str] = "epoch_end"

    phase: str
    epoch: int
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)
    epoch_time: float


@dataclass(kw_only=True)
class Log(Event):
    KIND: ClassVar[str] = "log"

    level: str = "info"
    message: str


@dataclass(kw_only=True)
class Artifact(Event):
    KIND: ClassVar[str] = "artifact"

    kind: str  # model | summary | run | onnx | features
    path: str


@dataclass(kw_only=True)
class RunFinished(Event):
    KIND: ClassVar[str] = "run_finished"

    status: str  # finished | cancelled
    metrics: Metrics | None = None
    wall_time: float


@dataclass(kw_only=True)
class ErrorEvent(Event):
    KIND: ClassVar[str] = "error"

    message: str
    kind: str = "error"  # usage | data | weights | internal | ...


EVENT_TYPES: dict[str, type[Event]] = {
    cls.KIND: cls
    for cls in (
        RunStarted,
        PhaseStarted,
        BatchProgress,
        EpochEnd,
        Log,
        Artifact,
        RunFinished,
        ErrorEvent,
    )
}


def event_from_json(data: Any) -> Event:
    """Read one event line (already JSON-decoded) into its class."""
    if not isinstance(data, dict):
        raise RecordError(f"event: expected an object, got {json_type(data)}")
    kind = data.get("event")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise RecordError(f"event: unknown kind {kind!r}")
    return cls.from_json(data, kind)
