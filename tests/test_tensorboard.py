"""TensorBoard event files written by every run: read back with TensorFlow's own summary_iterator."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.events import ListSink, Reporter
from engine.experiments import get_experiment
from engine.records import BatchProgress
from engine.runs import RunStore
from engine.training import run_experiment

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))


def _run(name: str, tmp_path: Path, **settings: Any) -> Any:
    cfg = get_experiment(name).config(**{"data": "synthetic:easy", "subset": 300, **settings})
    return run_experiment(
        name, cfg, store=RunStore(tmp_path / "runs"), reporter=Reporter(ListSink())
    )


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from every event file in `folder`, sorted by step."""
    import tensorflow as tf

    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                out[value.tag].append((event.step, float(tf.make_ndarray(value.tensor))))
    return {tag: sorted(points) for tag, points in out.items()}


def test_a_run_writes_epoch_and_batch_scalars(tmp_path: Path) -> None:
    run = _run("simple-cnn", tmp_path, epochs=2, early_stopping=False, batch_size=8)
    history = run.record["history"]
    train = scalars(run.path / "tensorboard" / "train" / "train")
    validation = scalars(run.path / "tensorboard" / "train" / "validation")
    assert [s for s, _ in train["epoch_loss"]] == [1, 2]
    assert [v for _, v in train["epoch_accuracy"]] == pytest.approx(
        [h["accuracy"] for h in history], abs=1e-5
    )
    assert [v for _, v in validation["epoch_loss"]] == pytest.approx(
        [h["val_loss"] for h in history], abs=1e-5
    )
    assert [v for _, v in validation["epoch_accuracy"]] == pytest.approx(
        [h["val_accuracy"] for h in history], abs=1e-5
    )
    assert [v for _, v in train["epoch_learning_rate"]] == pytest.approx([1e-3, 1e-3])
    # 240 training images in batches of 8: 30 steps an epoch, a batch point every 20 steps.
    assert [s for s, _ in train["batch_loss"]] == [20, 50]
    assert len(train["batch_accuracy"]) == 2


def _fit_with_callbacks(tmp_path: Path, steps_per_call: int) -> tuple[Any, ListSink, Any]:
    """A tiny model fitted 2 epochs of 30 steps, `steps_per_call` steps per call, through the
    engine's progress and TensorBoard callbacks."""
    import keras

    from engine.runs import RunStore
    from engine.training.callbacks import make_progress_callback, make_tensorboard_callback

    run = RunStore(tmp_path / "runs").create("mlp")
    sink = ListSink()
    rep = Reporter(sink, batch_interval=0.0)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy", steps_per_execution=steps_per_call)
    rng = np.random.default_rng(0)
    x = rng.random((240, 4, 4, 3), dtype=np.float32)
    y = rng.integers(0, 3, 240)
    model.fit(
        x,
        y,
        validation_data=(x[:16], y[:16]),
        batch_size=8,
        epochs=2,
        verbose=0,
        callbacks=[
            make_progress_callback(rep, run, phase="train", epochs=2, steps=30, epoch_offset=0),
            make_tensorboard_callback(
                run, phase="train", steps=30, epoch_offset=0, steps_per_call=steps_per_call
            ),
        ],
    )
    return run, sink, model


@pytest.mark.parametrize("steps_per_call", [1, 4, 20, 32])
def test_progress_and_tensorboard_steps_at_any_steps_per_call(
    tmp_path: Path, steps_per_call: int
) -> None:
    run, sink, _ = _fit_with_callbacks(tmp_path, steps_per_call)
    per_epoch = [s for s in range(steps_per_call, 30, steps_per_call)] + [30]
    progress = [(e.epoch, e.step) for e in sink.events if isinstance(e, BatchProgress)]
    assert progress == [(epoch, step) for epoch in (1, 2) for step in per_epoch]
    assert len(run.record["history"]) == 2
    points = [s for s, _ in scalars(run.path / "tensorboard" / "train" / "train")["batch_loss"]]
    # A point at the end of each call that passed a multiple of 20 steps: at steps 20 and 50
    # (step 20 of epoch 2) whenever the steps per call divide 20, as with one step per call;
    # else at the end of the call that passed it (32 steps per call: one call an epoch).
    assert points == ([20, 50] if 20 % steps_per_call == 0 else [30, 60])


def test_cached_feature_head_training_writes_epoch_scalars(tmp_path: Path) -> None:
    run = _run("transfer", tmp_path, weights="none", epochs=2, early_stopping=False, subset=150)
    phase = run.record["phases"][0]["name"]
    assert run.record["config"]["feature_cache"] is True
    train = scalars(run.path / "tensorboard" / phase / "train")
    validation = scalars(run.path / "tensorboard" / phase / "validation")
    assert [s for s, _ in train["epoch_loss"]] == [1, 2]
    assert [s for s, _ in validation["epoch_accuracy"]] == [1, 2]


def test_tensorboard_no_writes_no_event_files(tmp_path: Path) -> None:
    run = _run("mlp", tmp_path, epochs=1, tensorboard=False)
    assert run.record["status"] == "finished"
    assert not (run.path / "tensorboard").exists()


def test_no_tensorboard_flag_is_tensorboard_no() -> None:
    from cnnlab.cli import build_parser
    from engine.commands import config_from_args

    args = build_parser().parse_args(["run", "mlp", "--no-tensorboard"])
    assert config_from_args("mlp", args).tensorboard is False
    args = build_parser().parse_args(["run", "mlp"])
    assert config_from_args("mlp", args).tensorboard is True
