"""Progress leaves the engine as events: JSON lines for programs, Rich progress for people.

Training code calls `report(kind, run_id, **fields)` (or `report.send(event)`) and never knows
who listens (the Keras-callback pattern). Events are the typed classes of `engine.records`: the
Reporter builds and checks them, the sinks serialize them. The JSONL sink owns stdout: on creation it moves the process's fd 1 to stderr so a
stray print from TensorFlow or a library can never corrupt the stream.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Protocol, TextIO

from engine.records import (
    EVENT_TYPES,
    Artifact,
    BatchProgress,
    EpochEnd,
    ErrorEvent,
    Event,
    Log,
    PhaseStarted,
    RunFinished,
    RunStarted,
    event_from_json,
    to_jsonable,
)

EVENT_KINDS = tuple(EVENT_TYPES)


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


class JsonlSink:
    """One JSON object per line on the real stdout; everything else printed goes to stderr."""

    def __init__(self, stream: TextIO | None = None) -> None:
        if stream is None:
            sys.stdout.flush()
            private_fd = os.dup(1)
            os.dup2(2, 1)  # fd 1 (C and Python prints) now lands on stderr
            stream = os.fdopen(private_fd, "w", buffering=1, encoding="utf-8")
            sys.stdout = sys.stderr
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        line = json.dumps(event.to_json(), default=_jsonable, separators=(",", ":"))
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except BrokenPipeError:  # the reader went away; keep training and saving
                pass

    def close(self) -> None:
        try:
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            pass


class ListSink:
    """Collects events in memory (tests, and the engine's own Python API)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass

    def kinds(self) -> list[str]:
        return [e.KIND for e in self.events]


class RichSink:
    """Human progress on stderr: a Rich progress bar per phase, one line per epoch."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.task: Any = None
        self.started = False

    def _ensure(self) -> None:
        if not self.started:
            self.progress.start()
            self.started = True

    def emit(self, event: Event) -> None:
        p = self.progress
        if isinstance(event, RunStarted):
            self.console.print(
                f"[bold cyan]run[/] {event.run_id} ({event.experiment}) → {event.run_dir}"
            )
        elif isinstance(event, PhaseStarted):
            self._ensure()
            if self.task is not None:
                p.remove_task(self.task)
            self.task = None
        elif isinstance(event, BatchProgress):
            self._ensure()
            desc = f"{event.phase} {event.epoch}/{event.epochs}"
            metrics = "  ".join(f"{k} {v:.4f}" for k, v in event.metrics.items())
            if self.task is None:
                self.task = p.add_task(desc, total=event.steps, metrics=metrics)
            p.update(
                self.task,
                description=desc,
                completed=event.step,
                total=event.steps,
                metrics=metrics,
            )
        elif isinstance(event, EpochEnd):
            m = event.metrics
            parts = [f"{event.phase} epoch {event.epoch}/{event.epochs}"]
            if "loss" in m:
                parts.append(f"loss {m['loss']:.3f} acc {m.get('accuracy', 0):.1%}")
            if "val_loss" in m:
                parts.append(f"val loss {m['val_loss']:.3f} acc {m.get('val_accuracy', 0):.1%}")
            parts.append(f"{event.epoch_time:.1f} s")
            self.console.print("  " + "   ".join(parts), highlight=False)
            if self.task is not None:
                p.reset(self.task)
        elif isinstance(event, Log):
            style = "yellow" if event.level == "warning" else "dim"
            self.console.print(f"[{style}]{event.message}[/]", highlight=False)
        elif isinstance(event, RunFinished):
            if self.task is not None:
                p.remove_task(self.task)
                self.task = None
            figures = []
            final = event.metrics
            if final is not None:
                for value, label in (
                    (final.train_accuracy, "train"),
                    (final.val_accuracy, "val"),
                    (final.test_accuracy, "test"),
                ):
                    if value is not None:
                        figures.append(f"{label} {value:.2%}")
                if final.overfit_gap is not None:
                    figures.append(f"gap {final.overfit_gap:.1f} pts")
            colour = "green" if event.status == "finished" else "yellow"
            self.console.print(
                f"[bold {colour}]{event.status}[/] {event.run_id} in {event.wall_time:.1f} s"
                + (f"\n  {'  '.join(figures)}" if figures else ""),
                highlight=False,
            )
        elif isinstance(event, (Artifact, ErrorEvent)):
            pass  # the CLI prints the one-line error itself; artifacts are in the run folder

    def close(self) -> None:
        if self.started:
            self.progress.stop()


class Reporter:
    """What training code talks to: stamps events, throttles batch progress, carries cancel."""

    def __init__(
        self, sink: EventSink, cancel: CancelToken | None = None, batch_interval: float = 0.25
    ) -> None:
        self.sink = sink
        self.cancel = cancel or CancelToken()
        self.batch_interval = batch_interval
        self._last_batch = 0.0

    def __call__(self, kind: str, run_id: str | None = None, /, **fields: Any) -> None:
        """Build the `kind` event from `fields` (records or JSON values), check it and send it.

        A field of the wrong type raises RecordError here, in the engine, not in a client."""
        assert kind in EVENT_TYPES, kind
        data = {"event": kind, "run_id": run_id, **to_jsonable(fields)}
        self.send(event_from_json(data))

    def send(self, event: Event) -> None:
        """Stamp `event` with the time now (unless it has one) and hand it to the sink."""
        if event.time is None:
            event.time = round(time.time(), 3)
        self.sink.emit(event)

    def batch(self, run_id: str, *, step: int, steps: int, **fields: Any) -> None:
        """Batch progress, at most every `batch_interval` seconds (and always the last step)."""
        now = time.monotonic()
        if step < steps and now - self._last_batch < self.batch_interval:
            return
        self._last_batch = now
        self("batch_progress", run_id, step=step, steps=steps, **fields)

    def log(self, message: str, run_id: str | None = None, level: str = "info") -> None:
        self("log", run_id, level=level, message=message)


class CancelToken:
    """Cooperative cancel: set by SIGINT, polled by training between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def install_sigint(self) -> None:
        """First SIGINT asks to stop at the next batch; a second one interrupts at once."""

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.cancelled:
                signal.default_int_handler(signum, frame)
            self.cancel()

        signal.signal(signal.SIGINT, handler)
