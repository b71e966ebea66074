"""The trainer: compiles, fits and predicts one model in one run folder, reporting as it goes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.batching import keras_inference_batch
from engine.config import ExperimentConfig
from engine.events import Reporter
from engine.optimizers import build_optimizer
from engine.runs import Run
from engine.training.callbacks import (
    TENSORBOARD_BATCH_EVERY,
    make_predict_callback,
    make_progress_callback,
    make_tensorboard_callback,
)
from engine.training.execution import CALL_SECONDS, StepsPerCall, steps_per_call

# Head training on cached features runs this many batches per call into TensorFlow: the
# batches and the maths are the same as steps_per_execution=1, without ~1 ms of Python per step.
HEAD_STEPS_PER_EXECUTION = 32


def _compile(model: Any, config: ExperimentConfig, lr: float, steps_per_execution: int = 1) -> None:
    model.compile(
        optimizer=build_optimizer(config.optimizer, lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )


@dataclass
class PhaseResult:
    name: str
    epochs: int
    epochs_run: int
    best_epoch: int  # 1-based within the phase
    trainable: int
    learning_rate: float
    time: float
    trainable_layers: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "epochs": self.epochs,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "trainable": self.trainable,
            "learning_rate": self.learning_rate,
            "time": round(self.time, 3),
            "trainable_layers": self.trainable_layers,
            **self.extra,
        }


class Trainer:
    """Trains one model in one run folder."""

    def __init__(self, run: Run, config: ExperimentConfig, data: Any, reporter: Reporter) -> None:
        self.run = run
        self.config = config
        self.data = data
        self.rep = reporter
        self.timings: dict[str, float] = {}
        self._images: tuple[np.ndarray, np.ndarray] | None = None

    # -- fitting
    def fit(
        self,
        model: Any,
        x: Any,
        y: Any,
        xv: Any,
        yv: Any,
        *,
        phase: str,
        epochs: int,
        lr: float,
        steps_per_execution: int | None = None,
    ) -> PhaseResult:
        """Fit `model` for one phase. `steps_per_execution` None: measured on this machine
        (engine.training.execution); the maths are the same at any value."""
        import keras

        from engine.models import count_params, trainable_layer_names

        cfg = self.config
        steps = int(np.ceil(len(x) / cfg.batch_size))
        t0 = time.perf_counter()
        calls = self._steps_per_call(model, x, steps, steps_per_execution)
        self.rep.log(f"{phase}: {calls.describe()}", self.run.id)
        _compile(model, cfg, lr, calls.value)
        self.rep("phase_started", self.run.id, phase=phase, epochs=epochs, steps=steps)
        offset = len(self.run.record["history"])
        callbacks = [
            make_progress_callback(
                self.rep,
                self.run,
                phase=phase,
                epochs=epochs,
                steps=steps,
                epoch_offset=offset,
            )
        ]
        if cfg.tensorboard:
            callbacks.append(
                make_tensorboard_callback(
                    self.run,
                    phase=phase,
                    steps=steps,
                    epoch_offset=offset,
                    steps_per_call=calls.value,
                )
            )
        stopper = None
        if cfg.early_stopping:
            stopper = keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=cfg.patience, restore_best_weights=True
            )
            callbacks.append(stopper)
        history = model.fit(
            x,
            y,
            validation_data=(xv, yv),
            epochs=epochs,
            batch_size=cfg.batch_size,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
        elapsed = time.perf_counter() - t0
        epochs_run = len(history.history.get("loss", []))
        best = epochs_run
        if stopper is not None and stopper.best_weights is not None:
            best = int(stopper.best_epoch) + 1
        extra: dict[str, Any] = {"steps_per_execution": calls.value}
        if calls.step_seconds:
            extra["step_time"] = round(calls.step_seconds, 6)
        return PhaseResult(
            name=phase,
            epochs=epochs,
            epochs_run=epochs_run,
            best_epoch=best,
            trainable=count_params(model)["trainable"],
            learning_rate=lr,
            time=elapsed,
            trainable_layers=trainable_layer_names(model),
            extra=extra,
        )

    def _steps_per_call(self, model: Any, x: Any, steps: int, asked: int | None) -> StepsPerCall:
        """Steps per call into TensorFlow: `asked`, else measured so that a call lasts at most
        CALL_SECONDS; one when the reporter asks for every step (a batch_interval of 0). The
        phase's time includes the measurement."""
        if asked is not None:
            return StepsPerCall(asked, 0.0, 0.0, "set for this phase")
        every_step = self.rep.batch_interval <= 0
        return steps_per_call(
            model,
            x,
            batch=self.config.batch_size,
            steps=steps,
            call_seconds=0.0 if every_step else CALL_SECONDS,
            every=TENSORBOARD_BATCH_EVERY,
        )

    def fit_images(
        self,
        model: Any,
        prep: Callable[[np.ndarray], np.ndarray],
        *,
        phase: str,
        epochs: int,
        lr: float,
    ) -> PhaseResult:
        """Fit `model` end to end on the training images, preprocessed once per run by `prep`."""
        if self._images is None:
            self._images = (prep(self.data.x_train), prep(self.data.x_val))
        x, xv = self._images
        return self.fit(
            model, x, self.data.y_train, xv, self.data.y_val, phase=phase, epochs=epochs, lr=lr
        )

    def predict(
        self,
        model: Any,
        x: np.ndarray,
        *,
        phase: str | None = None,
        offset: int = 0,
        total: int = 0,
        batch: int | None = None,
    ) -> np.ndarray:
        """Inference at `batch`, or at the batch size measured for this model (see
        keras_inference_batch)."""
        if batch is None:
            batch = keras_inference_batch(model, x).batch
        callbacks = []
        if phase is not None:
            callbacks.append(
                make_predict_callback(self.rep, self.run, phase=phase, offset=offset, total=total)
            )
        out: np.ndarray = model.predict(
            x,
            batch_size=batch,
            verbose=0,
            callbacks=callbacks,
        )
        return out


class Cancelled(Exception):
    """Raised where a cancel must skip the rest of a run (before any training happened)."""
