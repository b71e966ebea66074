"""Training steps per call into TensorFlow (Keras' `steps_per_execution`), chosen at run time.

With one step per call, every step makes a round trip from Python: the tf.function call, the
logs, the callbacks. On a busy machine the Python thread also has to wait for a core between
steps while TensorFlow's threads idle. Measured on the simple CNN, 2 cores shared with other
work (6,400 images an epoch, batch 64, the two settings in turn, 14 pairs, twice): 20 steps per
call took 0.86 and 0.85 of the time of 1 (median of the pairs; 5.03 s against 4.29 s), for the
same CPU time; 5 steps per call showed no gain above the noise (1.02). Several steps per call run
the same batches in the same order with the same updates (the weights come out bit-identical),
so only the speed changes, and where callbacks can act: progress, cancel and TensorBoard batch
points happen between calls.

So a call may last up to `CALL_SECONDS`, and takes at most `every` steps (TensorBoard's batch
cadence, so its points stay on the same steps). How long a step takes depends on the machine,
the model and its load, so it is measured (`measure_step_seconds`) rather than assumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# The longest a call may take: progress still moves about every second and a cancel lands within
# one (about the limit of a response that keeps a user's flow; 0.25 s calls, 5 steps of the simple
# CNN here, did not pay).
CALL_SECONDS = 1.0
# A training step costs about this many forward passes (the backward pass about two more). The
# estimate only sets how long a call lasts, never what it computes.
STEP_FORWARDS = 3
# Batches the forward pass is timed on, after one warm-up batch.
PROBE_BATCHES = 4


@dataclass(frozen=True)
class StepsPerCall:
    """Steps per call chosen for one training phase, and the measured figure behind it."""

    value: int
    step_seconds: float  # estimated time of one training step (0 when not measured)
    call_seconds: float  # the time a call may take
    reason: str

    def describe(self) -> str:
        steps = f"{self.value} step{'s' if self.value != 1 else ''} per call into TensorFlow"
        if not self.step_seconds:
            return f"{steps} ({self.reason})"
        return (
            f"{steps} (a step ≈ {self.step_seconds * 1000:.1f} ms measured, "
            f"calls of at most {self.call_seconds:g} s; {self.reason})"
        )


def choose_steps_per_call(step_seconds: float, call_seconds: float, steps: int, every: int) -> int:
    """The most steps per call that fit `call_seconds` at `step_seconds` a step, among the
    divisors of `every` (so points written every `every` steps land on the same steps as with one
    step per call), and no more than the `steps` of an epoch; at least 1."""
    if step_seconds <= 0 or call_seconds <= 0:
        return 1
    fit = min(int(call_seconds / step_seconds), steps)
    return max(d for d in range(1, every + 1) if every % d == 0 and (d <= fit or d == 1))


def measure_step_seconds(
    model: Any,
    x: np.ndarray,
    batch: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Estimated seconds of one training step of `model` at `batch` on this machine, from its
    forward pass timed batch by batch on real inputs (`predict_on_batch`: one compiled call per
    batch, as a training step is, without `predict`'s set-up per call). The faster of two tries
    counts: other load only adds time."""
    batches = [x[i : i + batch] for i in range(0, min(len(x), PROBE_BATCHES * batch), batch)]
    if not batches:
        return 0.0
    model.predict_on_batch(batches[0])  # warm-up: traces, allocates, picks kernels

    def timed() -> float:
        t0 = clock()
        for chunk in batches:
            model.predict_on_batch(chunk)
        return clock() - t0

    seconds = min(timed(), timed())
    return STEP_FORWARDS * seconds / len(batches)


def steps_per_call(
    model: Any, x: np.ndarray, *, batch: int, steps: int, call_seconds: float, every: int
) -> StepsPerCall:
    """Steps per call for training `model` on `x` (see the module docstring)."""
    import tensorflow as tf

    if tf.distribute.has_strategy():
        # Keras 3's multi-step loop over a distributed iterator fails ("You must feed a value
        # for placeholder"), so under a tf.distribute strategy every step is its own call.
        return StepsPerCall(
            1, 0.0, call_seconds, "one step per call under a tf.distribute strategy"
        )
    if call_seconds <= 0:
        return StepsPerCall(1, 0.0, call_seconds, "progress asked for every step")
    step = measure_step_seconds(model, x, batch)
    chosen = choose_steps_per_call(step, call_seconds, steps, every)
    return StepsPerCall(chosen, step, call_seconds, "measured at run time")
