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
) -> Any:
    """A Keras callback: throttled batch events, epoch events + run.json history, cooperative cancel.

    Works at any steps per call: Keras 3 passes each call's last step as `batch`."""
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
            # The last call of an epoch may run fewer steps than its `batch` index says.
            step = min(batch + 1, steps)
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


# Per-batch TensorBoard points are written every this many training steps: a point costs an
# eager op and a file append (measured about 1.5 ms for the two scalars, on Keras' callback
# thread), so not every step. Steps per call are kept to divisors of it (engine.training.execution)
# so the points land on the same steps at any steps per call.
TENSORBOARD_BATCH_EVERY = 20


def make_tensorboard_callback(
    run: Run, *, phase: str, steps: int, epoch_offset: int, steps_per_call: int = 1
) -> Any:
    """A Keras callback writing TensorBoard event files into `<run>/tensorboard/<phase>/`.

    The layout is Keras' own TensorBoard callback's (`train/` and `validation/` writers, tags
    `epoch_loss`, `epoch_accuracy`, `epoch_learning_rate`, `batch_loss`, `batch_accuracy`), so
    `tensorboard --logdir runs` overlays train and validation curves as people expect. Epoch
    steps count across phases (a fine-tuning phase continues the frozen one's x axis).
    """
    import keras
    import tensorflow as tf

    root = run.path / "tensorboard" / phase
    per_call = max(1, steps_per_call)
    # `tf.summary.scalar` lives in the tensorboard package (an optional extra here); this is what
    # it writes, with TensorFlow's core op: a float32 tensor tagged for the scalars plugin.
    scalar_metadata = tf.compat.v1.SummaryMetadata(
        plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars")
    )

    def scalar(tag: str, value: float, step: int) -> None:
        tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=scalar_metadata)

    class TensorBoardScalars(keras.callbacks.Callback):
        # Batch points are written on Keras' callback thread; the writer's file is locked inside
        # TensorFlow and every point names its own step, so no sync per batch is needed.
        async_safe = True

        def __init__(self) -> None:
            super().__init__()
            self.train = tf.summary.create_file_writer(str(root / "train"))
            self.validation = tf.summary.create_file_writer(str(root / "validation"))
            self.epoch = 0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if not logs:
                return
            # Keras 3 passes a call's last step as `batch`; the call ran the steps after `done`.
            last = min(batch + 1, steps)
            done = batch + 1 - per_call
            if last // TENSORBOARD_BATCH_EVERY <= done // TENSORBOARD_BATCH_EVERY:
                return  # this call passed no multiple of TENSORBOARD_BATCH_EVERY
            step = (epoch_offset + self.epoch) * steps + last
            with self.train.as_default():
                for name in ("loss", "accuracy"):
                    if name in logs:
                        scalar(f"batch_{name}", float(logs[name]), step)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            step = epoch_offset + epoch + 1
            with self.train.as_default():
                for name in ("loss", "accuracy"):
                    if name in logs:
                        scalar(f"epoch_{name}", float(logs[name]), step)
                lr = getattr(self.model.optimizer, "learning_rate", None)
                if lr is not None:
                    value = float(keras.ops.convert_to_numpy(lr))
                    scalar("epoch_learning_rate", value, step)
            with self.validation.as_default():
                for name in ("loss", "accuracy"):
                    if f"val_{name}" in logs:
                        scalar(f"epoch_{name}", float(logs[f"val_{name}"]), step)
            self.train.flush()
            self.validation.flush()

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            self.train.close()
            self.validation.close()

    return TensorBoardScalars()
