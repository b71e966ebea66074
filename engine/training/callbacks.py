"""Keras callbacks that carry progress out of the training loop as engine events.

They report through a `Reporter` (UI-agnostic) and stop cooperatively when the run is cancelled.
"""

from __future__ import annotations

import time
from typing import Any

from engine.events import Reporter
from engine.runs import Run


def make_progress_callback(
    reporter: Reporter,
    run: Run,
    *,
    phase: str,
    epochs: int,
    steps: int,
    epoch_offset: int,
    steps_per_call: int = 1,
) -> Any:
    """A Keras callback: throttled batch events, epoch events + run.json history, cooperative cancel."""
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        # Safe to run on Keras' callback thread: it only reads floats, emits lines and sets a flag.
        # That keeps Keras' asynchronous batch dispatch, so progress costs no sync per batch.
        async_safe = True

        def __init__(self) -> None:
            super().__init__()
            self.epoch_start = time.perf_counter()
            self.epoch = 0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch = epoch + 1
            self.epoch_start = time.perf_counter()
            if reporter.cancel.cancelled:
                self.model.stop_training = True

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if reporter.cancel.cancelled:
                self.model.stop_training = True
            logs = logs or {}
            step = min((batch + 1) * steps_per_call, steps) if steps_per_call > 1 else batch + 1
            reporter.batch(
                run.id,
                phase=phase,
                epoch=self.epoch,
                epochs=epochs,
                step=step,
                steps=steps,
                metrics={k: float(v) for k, v in logs.items() if k in ("loss", "accuracy")},
            )

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            elapsed = time.perf_counter() - self.epoch_start
            metrics = {
                k: round(float(v), 6)
                for k, v in logs.items()
                if k in ("loss", "accuracy", "val_loss", "val_accuracy")
            }
            entry = {
                "epoch": epoch_offset + epoch + 1,
                "phase": phase,
                "phase_epoch": epoch + 1,
                **metrics,
                "time": round(elapsed, 3),
                "complete": not reporter.cancel.cancelled,
            }
            run.record["history"].append(entry)
            run.save()
            reporter(
                "epoch_end",
                run.id,
                phase=phase,
                epoch=epoch + 1,
                epochs=epochs,
                metrics=metrics,
                epoch_time=round(elapsed, 3),
            )

    return ProgressCallback()


def make_predict_callback(
    reporter: Reporter, run: Run, *, phase: str, offset: int, total: int
) -> Any:
    """Progress (and cancel) for a predict pass, e.g. the one-off feature extraction."""
    import keras

    class PredictProgress(keras.callbacks.Callback):
        async_safe = True

        def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if reporter.cancel.cancelled:
                self.model.stop_predicting = True
            reporter.batch(
                run.id,
                phase=phase,
                epoch=1,
                epochs=1,
                step=offset + batch + 1,
                steps=total,
                metrics={},
            )

    return PredictProgress()
