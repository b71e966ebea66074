"""Running experiments: build, train, evaluate and save, reporting events as it goes.

TensorFlow is imported inside the functions. The entry point is `run_experiment`; it returns
the top-level `Run` (a parent run for `compare` and `preprocessing`).
"""

from __future__ import annotations

import functools
import hashlib
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import __version__
from engine.backbones import get_backbone
from engine.config import ExperimentConfig, check
from engine.errors import CnnlabError, UsageError
from engine.events import Reporter
from engine.experiments import get_experiment
from engine.preprocessing import PreprocessSpec, get_preprocessing
from engine.runs import Run, RunStore, atomic_path, write_json_atomic

# Head training on cached features runs this many batches per call into TensorFlow: the
# batches and the maths are the same as steps_per_execution=1, without ~1 ms of Python per step.
HEAD_STEPS_PER_EXECUTION = 32
# Inference passes (feature extraction, evaluation) use large batches: Keras' predict costs far
# less per image at 1,024 than at 64 on the CPU (MobileNetV2 at 32×32: 2.3 s vs 5.3 s per 10,000
# images here), and inference results do not depend on the batch size. Scaled down for upscaled
# inputs so a batch of activations stays around the same size in memory.
INFERENCE_PIXELS = 1024 * 32 * 32
# Images used to set BatchNorm statistics of a randomly initialised backbone.
CALIBRATION_IMAGES = 256


def inference_batch(image_size: int) -> int:
    return max(16, INFERENCE_PIXELS // (image_size * image_size))


# ---------------------------------------------------------------------------- environment
def environment_info() -> dict[str, Any]:
    """Versions and devices, recorded with every run."""
    import keras
    import tensorflow as tf

    info: dict[str, Any] = {
        "cnnlab": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "devices": [
            d.name.replace("/physical_device:", "") for d in tf.config.list_physical_devices()
        ],
        "gpu": bool(tf.config.list_physical_devices("GPU")),
    }
    return info


# ---------------------------------------------------------------------------- callbacks
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


# ---------------------------------------------------------------------------- helpers
def _optimizer(name: str, lr: float) -> Any:
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    return keras.optimizers.Adam(learning_rate=lr)


def _compile(model: Any, config: ExperimentConfig, lr: float, steps_per_execution: int = 1) -> None:
    model.compile(
        optimizer=_optimizer(config.optimizer, lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )


def _digest(*arrays: np.ndarray, extra: str = "") -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(extra.encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode() + str(a.dtype).encode())
        h.update(memoryview(a).cast("B"))  # type: ignore[arg-type]
    return h.hexdigest()


def features_cache_dir() -> Path:
    from engine.data import cache_root

    return cache_root() / "features"


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
        steps_per_execution: int = 1,
    ) -> PhaseResult:
        import keras

        from engine.models import count_params, trainable_layer_names

        cfg = self.config
        _compile(model, cfg, lr, steps_per_execution)
        steps = int(np.ceil(len(x) / cfg.batch_size))
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
                steps_per_call=steps_per_execution,
            )
        ]
        stopper = None
        if cfg.early_stopping:
            stopper = keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=cfg.patience, restore_best_weights=True
            )
            callbacks.append(stopper)
        t0 = time.perf_counter()
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
        return PhaseResult(
            name=phase,
            epochs=epochs,
            epochs_run=epochs_run,
            best_epoch=best,
            trainable=count_params(model)["trainable"],
            learning_rate=lr,
            time=elapsed,
            trainable_layers=trainable_layer_names(model),
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
    ) -> np.ndarray:
        """Inference in large batches (see INFERENCE_PIXELS)."""
        callbacks = []
        if phase is not None:
            callbacks.append(
                make_predict_callback(self.rep, self.run, phase=phase, offset=offset, total=total)
            )
        out: np.ndarray = model.predict(
            x,
            batch_size=inference_batch(self.config.input_size),
            verbose=0,
            callbacks=callbacks,
        )
        return out

    # -- features
    def cached_features(
        self, transfer: Any, prep: PreprocessSpec
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pooled backbone features of train/val/test, computed once per backbone, weights,
        preprocessing, input size and data, then read from the cache."""
        d = self.data
        weights_digest = _digest(*[np.asarray(w) for w in transfer.base.get_weights()])
        key = _digest(
            d.x_train,
            d.x_val,
            d.x_test,
            extra=f"{transfer.spec.name}|{prep.name}|{self.config.input_size}|{weights_digest}",
        )
        path = features_cache_dir() / f"{transfer.spec.name}-{key}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    feats = (z["train"], z["val"], z["test"])
                self.rep.log(
                    f"features of {transfer.spec.name} read from the cache ({path.name})",
                    self.run.id,
                )
                self.timings["features"] = 0.0
                return feats
            except (OSError, ValueError, KeyError):
                self.rep.log(
                    f"feature cache {path.name} is unreadable; recomputing",
                    self.run.id,
                    level="warning",
                )
        t0 = time.perf_counter()
        batch = inference_batch(self.config.input_size)
        total_steps = sum(-(-len(a) // batch) for a in (d.x_train, d.x_val, d.x_test))
        self.rep("phase_started", self.run.id, phase="features", epochs=1, steps=total_steps)
        keras_prep = prep.keras_function()
        parts = []
        done = 0
        for x in (d.x_train, d.x_val, d.x_test):
            parts.append(
                self.predict(
                    transfer.features,
                    keras_prep(x),
                    phase="features",
                    offset=done,
                    total=total_steps,
                ).astype(np.float32)
            )
            done += -(-len(x) // batch)
            if self.rep.cancel.cancelled:
                raise Cancelled()
        self.timings["features"] = round(time.perf_counter() - t0, 3)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, train=parts[0], val=parts[1], test=parts[2])
        self.rep("artifact", self.run.id, kind="features", path=str(path))
        return parts[0], parts[1], parts[2]


class Cancelled(Exception):
    """Raised where a cancel must skip the rest of a run (before any training happened)."""


# ---------------------------------------------------------------------------- one training run
def _metrics(probs: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, Any]:
    pred = probs.argmax(axis=1)
    n = len(classes)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    per_class = {
        c: round(float(cm[i, i] / cm[i].sum()), 6) if cm[i].sum() else None
        for i, c in enumerate(classes)
    }
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], eps, 1.0))))
    return {
        "test_accuracy": round(float((pred == y).mean()), 6),
        "test_loss": round(loss, 6),
        "per_class_accuracy": per_class,
        "confusion_matrix": cm.tolist(),
    }


def model_info(config: ExperimentConfig, prep: PreprocessSpec) -> dict[str, Any]:
    transfer = config.model == "transfer"
    return {
        "name": config.model,
        "backbone": get_backbone(config.backbone).name if transfer else None,
        "weights": config.weights if transfer else None,
        "random_init": transfer and config.weights == "none",
        "input_size": config.input_size if transfer else 32,
        "preprocessing": prep.name,
        "preprocessing_range": list(prep.output_range),
        "head": config.head if transfer else None,
    }


def resolve_preprocessing(config: ExperimentConfig) -> PreprocessSpec:
    if config.model != "transfer":
        return get_preprocessing("unit" if config.preprocessing == "auto" else config.preprocessing)
    if config.preprocessing == "auto":
        return get_backbone(config.backbone).preprocess
    return get_preprocessing(config.preprocessing)


def train_one(
    run: Run,
    config: ExperimentConfig,
    data: Any,
    rep: Reporter,
    *,
    finetune: bool,
    env: dict[str, Any],
) -> None:
    """Build, train, evaluate and save one model in `run` (status set by the caller on error)."""
    import keras

    from engine.models import (
        build_mlp,
        build_simple_cnn,
        build_transfer,
        count_params,
        unfreeze_last,
    )

    wall0 = time.perf_counter()
    prep = resolve_preprocessing(config)
    info = model_info(config, prep)
    run.update(model=info, data=data.summary(), environment=env)
    rep(
        "run_started",
        run.id,
        run_dir=str(run.path),
        experiment=run.record["experiment"],
        parent=run.record.get("parent"),
        config=config.to_dict(),
        model=info["backbone"] or info["name"],
        data=data.summary(),
    )
    if info["random_init"]:
        rep.log(
            "backbone weights: none — random initialisation, not ImageNet", run.id, level="warning"
        )
    keras.utils.set_random_seed(config.seed)
    trainer = Trainer(run, config, data, rep)
    phases: list[PhaseResult] = []
    shape = data.image_shape
    n_classes = len(data.classes)
    cancelled = False

    if config.model in ("simple_cnn", "mlp"):
        model = (
            build_simple_cnn(shape, n_classes)
            if config.model == "simple_cnn"
            else build_mlp(shape, n_classes, tuple(config.mlp_units))
        )
        run.update(params=count_params(model))
        fn = prep.keras_function()
        phases.append(
            trainer.fit_images(
                model, fn, phase="train", epochs=config.epochs, lr=config.learning_rate
            )
        )
        cancelled = rep.cancel.cancelled
        t0 = time.perf_counter()
        probs = trainer.predict(model, fn(data.x_test))
    else:
        tm = build_transfer(
            config.backbone,
            image_size=shape[0],
            input_size=config.input_size,
            weights=config.weights,
            head=config.head,
            num_classes=n_classes,
        )
        model = tm.model
        run.update(params=count_params(model))
        fn = prep.keras_function()
        if info["random_init"]:
            _calibrate_random_backbone(tm, fn(data.x_train[:CALIBRATION_IMAGES]), config, run, rep)
        if config.feature_cache:
            feats: tuple[np.ndarray, np.ndarray, np.ndarray] | None
            try:
                feats = trainer.cached_features(tm, prep)
            except Cancelled:
                feats, cancelled = None, True
            if feats is not None:
                ftr, fva, fte = feats
                phase = trainer.fit(
                    tm.head,
                    ftr,
                    data.y_train,
                    fva,
                    data.y_val,
                    phase="frozen",
                    epochs=config.epochs,
                    lr=config.learning_rate,
                    steps_per_execution=HEAD_STEPS_PER_EXECUTION,
                )
                phase.trainable = count_params(model)["trainable"]
                frozen_probs = trainer.predict(tm.head, fte)
                phase.extra["test_accuracy"] = _metrics(frozen_probs, data.y_test, data.classes)[
                    "test_accuracy"
                ]
                phases.append(phase)
        else:
            phases.append(
                trainer.fit_images(
                    model, fn, phase="frozen", epochs=config.epochs, lr=config.learning_rate
                )
            )
        cancelled = cancelled or rep.cancel.cancelled
        xt = fn(data.x_test)
        if finetune and not cancelled:
            names = unfreeze_last(tm, config.finetune_layers)
            rep.log(f"fine-tuning: unfroze {', '.join(names)}", run.id)
            ft = trainer.fit_images(
                model, fn, phase="finetune", epochs=config.finetune_epochs, lr=config.finetune_lr
            )
            ft.extra["unfrozen_layers"] = names  # trainable_layers (from fit) adds the head
            phases.append(ft)
            cancelled = rep.cancel.cancelled
        t0 = time.perf_counter()
        probs = trainer.predict(model, xt)

    metrics = _metrics(probs, data.y_test, data.classes)
    trainer.timings["evaluate"] = round(time.perf_counter() - t0, 3)
    metrics.update(_fit_metrics(run.record["history"], phases))
    _save_model(run, model, rep)
    timings: dict[str, float | None] = {
        "wall": round(time.perf_counter() - wall0, 3),
        "train": round(sum(p.time for p in phases), 3),
        **trainer.timings,
    }
    epoch_times = [h["time"] for h in run.record["history"] if h.get("complete")]
    timings["epoch_mean"] = round(float(np.mean(epoch_times)), 3) if epoch_times else None
    status = "cancelled" if cancelled else "finished"
    run.update(
        status=status,
        metrics=metrics,
        phases=[p.to_dict() for p in phases],
        timings=timings,
        params=count_params(model),
        pid=None,
    )
    rep("artifact", run.id, kind="run", path=str(run.run_json))
    rep("run_finished", run.id, status=status, metrics=metrics, wall_time=timings["wall"])


def _calibrate_random_backbone(
    tm: Any, x: np.ndarray, config: ExperimentConfig, run: Run, rep: Reporter
) -> None:
    """Give a randomly initialised backbone BatchNorm statistics from real training images."""
    import keras

    from engine.models import calibrate_batchnorm

    if config.input_size != x.shape[1]:
        x = np.asarray(keras.layers.Resizing(config.input_size, config.input_size)(x))
    n = calibrate_batchnorm(tm.base, x)
    if n:
        run.record["model"]["batchnorm_calibrated"] = len(x)
        run.save()
        rep.log(
            f"random initialisation: BatchNorm statistics of {n} layers set from {len(x)} "
            "training images (data-dependent init), so the frozen features vary with the image",
            run.id,
        )


def _fit_metrics(history: list[dict[str, Any]], phases: list[PhaseResult]) -> dict[str, Any]:
    """Train/validation figures at the epoch whose weights were kept, and the overfitting gap."""
    out: dict[str, Any] = {"epochs_run": sum(p.epochs_run for p in phases)}
    if not phases or not history:
        return out
    last = phases[-1]
    phase_hist = [h for h in history if h["phase"] == last.name]
    if not phase_hist:
        return out
    kept = phase_hist[min(last.best_epoch, len(phase_hist)) - 1]
    for key in ("accuracy", "loss", "val_accuracy", "val_loss"):
        if key in kept:
            out[key if key.startswith("val_") else f"train_{key}"] = kept[key]
    out["best_epoch"] = kept["epoch"]
    if "train_accuracy" in out and "val_accuracy" in out:
        out["overfit_gap"] = round((out["train_accuracy"] - out["val_accuracy"]) * 100, 2)
    return out


def _save_model(run: Run, model: Any, rep: Reporter) -> None:
    with atomic_path(run.model_path) as tmp:
        model.save(tmp)
    rep("artifact", run.id, kind="model", path=str(run.model_path))
    from engine.inspect import summarize_keras_model

    summary = summarize_keras_model(model)
    write_json_atomic(run.summary_path, summary)
    rep("artifact", run.id, kind="summary", path=str(run.summary_path))


# ---------------------------------------------------------------------------- experiments
def load_data(config: ExperimentConfig, rep: Reporter, run_id: str | None = None) -> Any:
    from engine.data import dataset_for

    def progress(stage: str, done: int, total: int) -> None:
        rep.batch(run_id or "", step=done, steps=total, phase="data", epoch=1, epochs=1, metrics={})

    return dataset_for(config, progress=progress)


def run_experiment(
    name: str,
    config: ExperimentConfig,
    *,
    store: RunStore,
    reporter: Reporter,
    on_run: Callable[[Run], None] | None = None,
) -> Run:
    """Run a registered experiment; return its (top-level) run. Failures are recorded in run.json."""
    spec = get_experiment(name)
    check(config)
    if name in ("compare", "preprocessing"):
        return _run_parent(name, spec.title, config, store, reporter, on_run)
    run = store.create(name, title=spec.title, config=config.to_dict())
    if on_run:
        on_run(run)
    _guarded(
        run,
        reporter,
        lambda: train_one(
            run,
            config,
            _load_for(run, config, reporter),
            reporter,
            finetune=name == "finetune",
            env=environment_info(),
        ),
    )
    return run


def _load_for(run: Run, config: ExperimentConfig, rep: Reporter) -> Any:
    t0 = time.perf_counter()
    data = load_data(config, rep, run.id)
    run.record["timings"]["data"] = round(time.perf_counter() - t0, 3)
    return data


def _guarded(run: Run, rep: Reporter, body: Callable[[], None]) -> None:
    """Run `body`; on any failure mark the run failed (keeping what was saved) and re-raise."""
    try:
        body()
    except Cancelled:
        run.update(status="cancelled", pid=None)
        rep(
            "run_finished",
            run.id,
            status="cancelled",
            metrics=run.record.get("metrics"),
            wall_time=0.0,
        )
    except CnnlabError as exc:
        run.update(status="failed", error=str(exc), pid=None)
        rep(
            "error",
            run.id,
            message=str(exc),
            kind=type(exc).__name__.replace("Error", "").lower() or "error",
        )
        raise
    except BaseException as exc:
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        (run.path / "error.log").write_text(traceback.format_exc())
        run.update(status="failed", error=message, pid=None)
        rep("error", run.id, message=message, kind="internal")
        raise


def _run_parent(
    name: str,
    title: str,
    config: ExperimentConfig,
    store: RunStore,
    rep: Reporter,
    on_run: Callable[[Run], None] | None,
) -> Run:
    backbones = [get_backbone(b).name for b in (config.backbones or [config.backbone])]
    if not backbones:
        raise UsageError("name at least one backbone")
    parent = store.create(name, title=title, config=config.to_dict())
    if on_run:
        on_run(parent)
    wall0 = time.perf_counter()
    rep(
        "run_started",
        parent.id,
        run_dir=str(parent.path),
        experiment=name,
        parent=None,
        config=config.to_dict(),
        model=None,
        data=None,
    )

    def body() -> None:
        env = environment_info()
        data = _load_for(parent, config, rep)
        parent.update(data=data.summary(), environment=env, table=[])
        plan: list[tuple[str, str]] = []
        for b in backbones:
            if name == "preprocessing":
                plan += [(b, "unit"), (b, "auto")]
            else:
                plan.append((b, "auto"))
        results: dict[tuple[str, str], Run] = {}
        for backbone, prep in plan:
            if rep.cancel.cancelled:
                break
            child_cfg = config.replace(
                model="transfer", backbone=backbone, preprocessing=prep, backbones=[]
            )
            label = "x/255" if prep == "unit" else "own preprocessing"
            child = store.create(
                "transfer",
                title=f"{backbone} ({label})",
                config=child_cfg.to_dict(),
                parent=parent.id,
            )
            parent.record["children"].append(child.id)
            parent.save()
            _guarded_child(
                child,
                rep,
                functools.partial(train_one, child, child_cfg, data, rep, finetune=False, env=env),
            )
            results[(backbone, prep)] = child
            parent.update(table=_table(name, results, backbones))
        status = "cancelled" if rep.cancel.cancelled else "finished"
        parent.update(
            status=status,
            pid=None,
            timings={**parent.record["timings"], "wall": round(time.perf_counter() - wall0, 3)},
        )
        rep(
            "run_finished",
            parent.id,
            status=status,
            metrics=None,
            wall_time=round(time.perf_counter() - wall0, 3),
        )

    _guarded(parent, rep, body)
    return parent


def _guarded_child(child: Run, rep: Reporter, body: Callable[[], None]) -> None:
    """A failed backbone fails its own run, not the whole comparison."""
    try:
        _guarded(child, rep, body)
    except Exception:  # recorded in the child's run.json (and error.log) by _guarded
        pass


def _table(
    name: str, results: dict[tuple[str, str], Run], order: list[str]
) -> list[dict[str, Any]]:
    def acc(r: Run | None) -> float | None:
        if r is None or not r.record.get("metrics"):
            return None
        v = r.record["metrics"].get("test_accuracy")
        return float(v) if v is not None else None

    rows: list[dict[str, Any]] = []
    if name == "compare":
        for b in order:
            r = results.get((b, "auto"))
            if r is None:
                continue
            params = (r.record.get("params") or {}).get("total")
            a = acc(r)
            pm = params / 1e6 if params else None
            rows.append(
                {
                    "backbone": b,
                    "run_id": r.id,
                    "test_accuracy": a,
                    "params": params,
                    "params_m": round(pm, 2) if pm else None,
                    "efficiency": round(a / pm, 6) if a is not None and pm else None,
                    "random_init": bool((r.record.get("model") or {}).get("random_init")),
                    "status": r.status,
                }
            )
        rows.sort(
            key=lambda row: -(row["test_accuracy"] if row["test_accuracy"] is not None else -1)
        )
        for i, row in enumerate(rows, start=1):
            row["rank"] = i
    else:
        for b in order:
            wrong, right = results.get((b, "unit")), results.get((b, "auto"))
            if wrong is None and right is None:
                continue
            some = right or wrong
            assert some is not None
            rows.append(
                {
                    "backbone": b,
                    "preprocessing": get_backbone(b).preprocessing,
                    "wrong_run_id": wrong.id if wrong else None,
                    "right_run_id": right.id if right else None,
                    "before": acc(wrong),
                    "after": acc(right),
                    "random_init": bool((some.record.get("model") or {}).get("random_init")),
                }
            )
    return rows
