"""Inference batch calibration (engine.batching): measured, within the memory bound, cached."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from engine.batching import (
    activation_bytes,
    calibrate_batch,
    candidate_batches,
    forget_choices,
    memory_budget,
)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    forget_choices()
    yield
    forget_choices()


class FakeMachine:
    """A run function and a clock: a batch of b images costs `overhead` per call plus
    `per_batch(b)` per batch, so throughput is known exactly."""

    def __init__(self, per_batch: dict[int, float], overhead: float = 0.05) -> None:
        self.per_batch = per_batch
        self.overhead = overhead
        self.now = 0.0
        self.calls: list[tuple[int, int]] = []

    def clock(self) -> float:
        return self.now

    def run_pass(self, x: np.ndarray, batch: int) -> None:
        self.calls.append((len(x), batch))
        steps = -(-len(x) // batch)
        self.now += self.overhead + steps * self.per_batch[batch]


def test_candidates_double_within_the_bound_and_stop_at_the_pass_size() -> None:
    assert candidate_batches(10_000, bytes_per_image=100, budget_bytes=100 * 70) == [8, 16, 32, 64]
    assert candidate_batches(20, bytes_per_image=1, budget_bytes=10**9) == [8, 16, 32]
    # Not even 8 images fit: the largest that does, never 0.
    assert candidate_batches(10_000, bytes_per_image=100, budget_bytes=350) == [3]
    assert candidate_batches(10_000, bytes_per_image=100, budget_bytes=10) == [1]


def test_the_fastest_batch_is_chosen_with_the_fixed_cost_of_a_call_shared_alike() -> None:
    # Per image: 1 ms at 8, 0.5 ms at 16 … fastest at 64, slower beyond; 10 ms per call.
    per_image = {8: 1.0, 16: 0.5, 32: 0.3, 64: 0.2, 128: 0.4, 256: 0.6, 512: 0.8, 1024: 1.0}
    m = FakeMachine({b: b * ms / 1000 for b, ms in per_image.items()}, overhead=0.01)
    choice = calibrate_batch(
        m.run_pass,
        np.zeros((40, 4), np.float32),
        key="fake",
        bytes_per_image=4,
        n_images=10**7,
        budget_bytes=10**9,
        clock=m.clock,
    )
    assert choice.batch == 64
    # 256 images (FAIR_IMAGES) in 4 batches of 12.8 ms plus one call's 10 ms.
    assert choice.img_per_s == pytest.approx(256 / (0.01 + 4 * 0.0128))
    # The walk starts at 256 (a call's work), goes up until two sizes in a row are clearly
    # slower, then down, again until two are: 8 is never timed.
    assert sorted(choice.tried) == [16, 32, 64, 128, 256, 512, 1024]
    # Every size is timed on the same real inputs (repeated from the 40 given).
    assert {n for n, b in m.calls if n != b} == {256}


def test_calibration_respects_the_memory_bound_and_is_cached() -> None:
    m = FakeMachine({b: 0.001 for b in (8, 16, 32, 64, 128)})  # bigger is always faster
    kwargs = dict(key="bounded", bytes_per_image=1000, n_images=10**7, clock=m.clock)
    choice = calibrate_batch(m.run_pass, np.zeros((8, 2)), budget_bytes=50_000, **kwargs)
    assert choice.batch == 32  # 64 images would need 64,000 bytes
    assert choice.batch * choice.bytes_per_image <= choice.budget_bytes
    calls = len(m.calls)
    again = calibrate_batch(m.run_pass, np.zeros((8, 2)), budget_bytes=50_000, **kwargs)
    assert again is choice and len(m.calls) == calls  # measured once per key


def test_calibration_stays_short_against_the_pass_it_serves() -> None:
    m = FakeMachine({b: b * 0.001 for b in (8, 16, 32, 64, 128, 256, 512, 1024)}, overhead=0.0)
    choice = calibrate_batch(
        m.run_pass,
        np.zeros((8, 2)),
        key="short",
        bytes_per_image=1,
        n_images=1000,  # a 1 s pass at 1,000 img/s: one size measured is enough
        budget_bytes=10**9,
        clock=m.clock,
    )
    assert list(choice.tried) == [256]  # the largest size within one timing call's work


def test_a_pass_of_one_call_s_work_runs_as_one_batch_untimed_and_uncached() -> None:
    m = FakeMachine({b: b * 0.001 for b in (8, 16, 32, 64, 128, 256, 512)}, overhead=0.0)
    kwargs = dict(key="one-call", bytes_per_image=10, budget_bytes=10**9, clock=m.clock)
    choice = calibrate_batch(m.run_pass, np.zeros((8, 2)), n_images=100, **kwargs)
    assert (choice.batch, choice.measured, m.calls) == (100, False, [])
    assert "one call" in choice.describe()
    # Not kept for the key: a larger pass of the same model is measured.
    bigger = calibrate_batch(m.run_pass, np.zeros((8, 2)), n_images=10_000, **kwargs)
    assert bigger.measured and m.calls
    # A pass that does not fit the memory bound in one batch is measured as well.
    tight = dict(kwargs, key="tight", budget_bytes=500)
    bounded = calibrate_batch(m.run_pass, np.zeros((8, 2)), n_images=100, **tight)
    assert bounded.measured and bounded.batch * 10 <= 500


def test_memory_budget_is_a_share_of_available_memory() -> None:
    assert 0 < memory_budget()


def test_activation_bytes_counts_every_layer_output() -> None:
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    out = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, out)
    # input twice (the Input layer and the model's input), the conv output, the pooled vector.
    assert activation_bytes(model) == 4 * (2 * 8 * 8 * 3 + 8 * 8 * 4 + 4)


def test_near_ties_go_to_the_larger_batch() -> None:
    # 16 is 5 % faster than 32 per image: noise on a shared machine; 32 pays fewer calls.
    per_batch = {
        8: 0.016,
        16: 0.0160,
        32: 0.0336,
        64: 0.2,
        128: 0.4,
        256: 0.8,
        512: 4.0,
        1024: 10.0,
    }
    m = FakeMachine(per_batch, overhead=0.0)
    choice = calibrate_batch(
        m.run_pass,
        np.zeros((8, 2)),
        key="ties",
        bytes_per_image=1,
        n_images=10**7,
        budget_bytes=10**9,
        clock=m.clock,
    )
    assert choice.tried[16] > choice.tried[32] >= 0.9 * choice.tried[16]
    assert choice.batch == 32
