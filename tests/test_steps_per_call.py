"""Training steps per call into TensorFlow: the choice, its measurement, and that callbacks and
results are the same at any number of steps per call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.events import ListSink, Reporter
from engine.records import Log
from engine.training.execution import (
    CALL_SECONDS,
    PROBE_BATCHES,
    STEP_FORWARDS,
    choose_steps_per_call,
    measure_step_seconds,
)


def test_choice_is_the_largest_divisor_of_the_cadence_that_fits_a_call() -> None:
    assert choose_steps_per_call(0.01, 1.0, steps=1000, every=20) == 20
    assert choose_steps_per_call(0.3, 1.0, steps=1000, every=20) == 2  # 3 fit: 2 divides 20
    assert choose_steps_per_call(0.15, 1.0, steps=1000, every=20) == 5  # 6 fit: 5 divides 20
    assert choose_steps_per_call(2.0, 1.0, steps=1000, every=20) == 1  # a step outlasts a call
    assert choose_steps_per_call(0.01, 1.0, steps=7, every=20) == 5  # no more than an epoch
    assert choose_steps_per_call(0.0, 1.0, steps=1000, every=20) == 1  # nothing measured
    assert choose_steps_per_call(0.01, 0.0, steps=1000, every=20) == 1  # every step asked


def _tiny_model() -> Any:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def test_step_time_is_the_faster_try_of_the_probe_batches_times_a_step_cost() -> None:
    model = _tiny_model()
    x = np.zeros((100, 4, 4, 3), np.float32)
    ticks = iter([0.0, 0.4, 10.0, 10.2])  # two tries of the probe batches: 0.4 s, then 0.2 s
    seconds = measure_step_seconds(model, x, 8, clock=lambda: next(ticks))
    assert seconds == pytest.approx(STEP_FORWARDS * 0.2 / PROBE_BATCHES)
    ticks = iter([0.0, 0.3, 1.0, 1.3])
    # Fewer images than one batch: one probe batch.
    assert measure_step_seconds(model, x[:5], 8, clock=lambda: next(ticks)) == pytest.approx(
        STEP_FORWARDS * 0.3
    )
    assert measure_step_seconds(model, x[:0], 8) == 0.0


@pytest.mark.slow
def test_a_run_trains_the_same_model_at_one_or_many_steps_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    from engine.experiments import get_experiment
    from engine.runs import RunStore
    from engine.training import run_experiment

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    cfg = get_experiment("mlp").config(
        data="synthetic:easy", subset=300, epochs=2, batch_size=8, early_stopping=False
    )
    runs = []
    for interval in (0.0, 0.25):  # 0: progress for every step, so one step per call
        sink = ListSink()
        rep = Reporter(sink, batch_interval=interval)
        run = run_experiment("mlp", cfg, store=RunStore(tmp_path / f"runs{interval}"), reporter=rep)
        assert run.status == "finished"
        runs.append((run, sink))
    (one, _), (many, sink) = runs
    assert one.info.phases[0].steps_per_execution == 1
    chosen = many.info.phases[0].steps_per_execution
    assert chosen is not None and chosen > 1 and 20 % chosen == 0
    step_time = many.info.phases[0].step_time
    assert step_time is not None and 0 < step_time * chosen <= CALL_SECONDS
    assert any(isinstance(e, Log) and "steps per call" in e.message for e in sink.events)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [h[key] for h in one.record["history"]] == [h[key] for h in many.record["history"]]
    a = keras.models.load_model(one.path / "model.keras").get_weights()
    b = keras.models.load_model(many.path / "model.keras").get_weights()
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
