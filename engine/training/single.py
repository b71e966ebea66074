"""One training run: build the model, train its phases, evaluate on the test split and save.

`train_one` fills one run folder; the experiment runners (engine.training.runners) call it for a
single experiment and for every child of a parent experiment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.backbones import get_backbone
from engine.config import ExperimentConfig
from engine.events import Reporter
from engine.models import get_model
from engine.preprocessing import PreprocessSpec, get_preprocessing
from engine.records import Distribution
from engine.runs import Run, atomic_path, write_json_atomic
from engine.training.features import cached_features
from engine.training.trainer import HEAD_STEPS_PER_EXECUTION, Cancelled, PhaseResult, Trainer

# Images used to set BatchNorm statistics of a randomly initialised backbone.
CALIBRATION_IMAGES = 256


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
    transfer = get_model(config.model).uses_backbone
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
    """`auto` is the backbone's own preprocessing for a backbone model, x/255 otherwise."""
    if not get_model(config.model).uses_backbone:
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
    """Build, train, evaluate and save one model in `run` (status set by the caller on error).

    `finetune` adds a second phase to a backbone model: the end of the backbone unfrozen.
    Everything runs inside the `--strategy` scope (engine.scale.strategy): the model is built
    and compiled there, so under MirroredStrategy its variables are mirrored on every replica.
    """
    from engine.scale.strategy import distribution_scope

    with distribution_scope(config.strategy) as dist:
        run.update(distribution=dist)
        _train_in_scope(run, config, data, rep, dist, finetune=finetune, env=env)


def _train_in_scope(
    run: Run,
    config: ExperimentConfig,
    data: Any,
    rep: Reporter,
    dist: Distribution,
    *,
    finetune: bool,
    env: dict[str, Any],
) -> None:
    import keras

    from engine.models import count_params

    wall0 = time.perf_counter()
    entry = get_model(config.model)
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
        model=info,
        data=data.summary(),
    )
    if dist.replicas > 1:
        rep.log(
            f"{dist.strategy} over {dist.replicas} replicas ({', '.join(dist.devices)}): batch "
            f"{config.batch_size} is global, {config.batch_size / dist.replicas:g} per replica",
            run.id,
        )
    if info["random_init"]:
        rep.log(
            "backbone weights: none — random initialisation, not ImageNet", run.id, level="warning"
        )
    keras.utils.set_random_seed(config.seed)
    trainer = Trainer(run, config, data, rep)
    built = entry.build(config, data.image_shape, len(data.classes))
    model = built.model if entry.uses_backbone else built
    run.update(params=count_params(model))
    fn = prep.keras_function()
    if entry.uses_backbone:
        phases, cancelled = _train_transfer(trainer, built, prep, fn, finetune=finetune)
    else:
        phases = [
            trainer.fit_images(
                model, fn, phase="train", epochs=config.epochs, lr=config.learning_rate
            )
        ]
        cancelled = rep.cancel.cancelled
    xt = fn(data.x_test)
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


def _train_transfer(
    trainer: Trainer,
    tm: Any,
    prep: PreprocessSpec,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    finetune: bool,
) -> tuple[list[PhaseResult], bool]:
    """The frozen phase (on cached features, or end to end), then fine-tuning if asked.

    Returns the phases trained and whether a cancel cut the run short.
    """
    from engine.models import count_params, unfreeze_last

    run, config, data, rep = trainer.run, trainer.config, trainer.data, trainer.rep
    phases: list[PhaseResult] = []
    cancelled = False
    if config.weights == "none":
        _calibrate_random_backbone(tm, fn(data.x_train[:CALIBRATION_IMAGES]), config, run, rep)
    if config.feature_cache:
        feats: tuple[np.ndarray, np.ndarray, np.ndarray] | None
        try:
            feats = cached_features(trainer, tm, prep)
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
                steps_per_execution=_head_steps_per_execution(),
            )
            phase.trainable = count_params(tm.model)["trainable"]
            frozen_probs = trainer.predict(tm.head, fte)
            phase.extra["test_accuracy"] = _metrics(frozen_probs, data.y_test, data.classes)[
                "test_accuracy"
            ]
            phases.append(phase)
    else:
        phases.append(
            trainer.fit_images(
                tm.model, fn, phase="frozen", epochs=config.epochs, lr=config.learning_rate
            )
        )
    cancelled = cancelled or rep.cancel.cancelled
    if finetune and not cancelled:
        names = unfreeze_last(tm, config.finetune_layers)
        rep.log(f"fine-tuning: unfroze {', '.join(names)}", run.id)
        ft = trainer.fit_images(
            tm.model, fn, phase="finetune", epochs=config.finetune_epochs, lr=config.finetune_lr
        )
        ft.extra["unfrozen_layers"] = names  # trainable_layers (from fit) adds the head
        phases.append(ft)
        cancelled = rep.cancel.cancelled
    return phases, cancelled


def _head_steps_per_execution() -> int:
    """Several head steps per call, except under a tf.distribute strategy: Keras 3's multi-step
    loop over a distributed iterator fails there ("You must feed a value for placeholder")."""
    import tensorflow as tf

    return 1 if tf.distribute.has_strategy() else HEAD_STEPS_PER_EXECUTION


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
