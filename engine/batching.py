"""Inference batch sizes measured at run time, within a memory bound.

The best inference batch depends on the machine (cores, caches, GPU, other load), the model and
the input size, so no constant carries over. `calibrate_batch` times a run function on
power-of-two batch sizes (walking up, then down, from one call's work) taken from the real inputs,
after one warm-up call per size, and keeps the fastest
(images per second) whose activations fit the memory budget. Results are cached in-process per
(model, input shape, backend) key, so the passes of one run measure once.

No TensorFlow here: the caller passes the function that runs one batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Share of the memory available now that one inference batch may use for its activations.
MEMORY_SHARE = 0.25
# Calibration stops once it has spent this share of the estimated pass time: it pays for itself.
TIME_SHARE = 0.1
# A size below this share of the best rate counts as slower; SLOWER_IN_A_ROW of them end the
# walk in one direction.
SLOWDOWN = 0.8
SLOWER_IN_A_ROW = 2
# Sizes within this share of the best rate count as ties (measurement noise).
TIE = 0.9
FIRST_BATCH = 8
# Images every size is timed on (sizes above it: one batch), so each pays a call's fixed cost
# over the same work.
FAIR_IMAGES = 256

_CHOICES: dict[Hashable, BatchChoice] = {}


@dataclass(frozen=True)
class BatchChoice:
    """The batch size chosen for one model on one machine, and what was measured."""

    batch: int
    img_per_s: float
    budget_bytes: int
    bytes_per_image: int
    tried: dict[int, float] = field(default_factory=dict)  # batch -> images per second

    @property
    def measured(self) -> bool:
        """False for a pass run as one batch without timing (see calibrate_batch)."""
        return bool(self.tried)

    def describe(self) -> str:
        if not self.measured:
            return f"batch {self.batch} (the whole pass in one call, within the memory bound)"
        tried = ", ".join(f"{b}: {r:,.0f}" for b, r in self.tried.items())
        return (
            f"batch {self.batch} ({self.img_per_s:,.0f} img/s; tried {tried} img/s; "
            f"memory bound {self.budget_bytes // self.bytes_per_image:,} images)"
        )


def available_memory() -> int | None:
    """Bytes of memory available now (MemAvailable, else free pages); None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> int:
    """Bytes one inference batch may use: a share of what is available now."""
    available = available_memory()
    if available is None:
        # Unknown memory (not Linux, no sysconf): assume a small machine.
        available = 2**31
    return int(available * MEMORY_SHARE)


def candidate_batches(n_images: int, bytes_per_image: int, budget_bytes: int) -> list[int]:
    """Doubling batch sizes from FIRST_BATCH that fit the budget and are not much larger than
    the pass itself; at least one size (1 if even FIRST_BATCH images do not fit)."""
    per_image = max(1, bytes_per_image)
    limit = max(1, budget_bytes // per_image)
    out: list[int] = []
    b = FIRST_BATCH
    while b <= limit:
        out.append(b)
        if b >= n_images:
            break
        b *= 2
    if not out:
        out = [max(1, min(limit, n_images, FIRST_BATCH))]
    return out


def calibrate_batch(
    run_pass: Callable[[np.ndarray, int], Any],
    x: np.ndarray,
    *,
    key: Hashable,
    bytes_per_image: int,
    n_images: int | None = None,
    budget_bytes: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> BatchChoice:
    """The fastest batch size for `run_pass(inputs, batch)` on inputs like `x` within the memory
    budget.

    `x` holds real inputs (repeated when a candidate needs more); `n_images` is the size of the
    pass the batch is for (default len(x)). Each size is warmed up on one batch, then timed
    (the faster of two tries) on the same number of images, at least `FAIR_IMAGES`: every size
    then pays the fixed cost of a call (Keras' predict spends milliseconds setting up) once over
    the same work, so sizes compare on their cost per image. Cached per `key` for this process.
    """
    cached = _CHOICES.get(key)
    if cached is not None:
        return cached
    n = max(1, n_images if n_images is not None else len(x))
    budget = memory_budget() if budget_bytes is None else budget_bytes
    per_image = max(1, bytes_per_image)
    if n <= FAIR_IMAGES and n * per_image <= budget:
        # The whole pass is no more than one timing call's work and fits the memory bound: it
        # runs as one batch. Timing sizes would cost a warm-up and two timed calls on as many
        # images (three passes, plus a trace per new size) to save a part of one. Not cached:
        # the key does not hold the pass size, and a larger pass of the same model calibrates.
        return BatchChoice(n, 0.0, budget, per_image)
    tried: dict[int, float] = {}
    spent = 0.0
    work = min(n, FAIR_IMAGES)

    def measure(b: int) -> float:
        images = max(b, work)
        chunk = _take(x, images)
        # The faster of two tries: a shared machine only ever adds time.
        return images / max(min(_timed(run_pass, chunk, b, clock) for _ in range(2)), 1e-9)

    candidates = candidate_batches(n, per_image, budget)
    # Start at the largest size of at most FAIR_IMAGES (one call's work either way), then walk
    # up while sizes keep up, then down: small sizes are the slow ones to time, so they are
    # timed only when the sizes above them were faster (measured: starting at 8 spent the
    # whole time share on 8..64 for MobileNetV2 and kept 64 at half of predict's 256 rate).
    start = max((i for i, b in enumerate(candidates) if b <= work), default=0)
    for direction in (candidates[start:], candidates[:start][::-1]):
        if tried and max(tried, key=lambda b: tried[b]) != candidates[start]:
            break  # a larger size won: smaller ones will not
        slower = 0
        for b in direction:
            if tried and spent > TIME_SHARE * n / max(tried.values()):
                break  # calibration pays for itself only within a share of the pass
            t0 = clock()
            run_pass(_take(x, b), b)  # warm-up: a new shape may trace, allocate or pick kernels
            tried[b] = measure(b)
            spent += clock() - t0
            best = max(tried.values())
            # Sizes clearly slower than the best, several in a row: further ones will not win
            # (one may be a busy moment of a shared machine).
            slower = slower + 1 if tried[b] < SLOWDOWN * best else 0
            if slower >= SLOWER_IN_A_ROW:
                break
    # The load of a shared machine changes while sizes are timed one after another: the two
    # runners-up are timed again and keep their better figure.
    for b in sorted(tried, key=lambda b: tried[b], reverse=True)[1:3]:
        tried[b] = max(tried[b], measure(b))
    best = max(tried.values())
    # Near-ties go to the larger batch: it pays the fixed cost per batch fewer times.
    batch = max(b for b, rate in tried.items() if rate >= TIE * best)
    choice = BatchChoice(batch, tried[batch], budget, per_image, tried)
    _CHOICES[key] = choice
    return choice


def _timed(
    run_pass: Callable[[np.ndarray, int], Any],
    x: np.ndarray,
    batch: int,
    clock: Callable[[], float],
) -> float:
    t0 = clock()
    run_pass(x, batch)
    return clock() - t0


def forget_choices() -> None:
    """Drop the in-process cache (tests; a machine whose load changed)."""
    _CHOICES.clear()


def _take(x: np.ndarray, n: int) -> np.ndarray:
    """The first `n` inputs of `x`, repeated when `x` has fewer."""
    if len(x) >= n:
        return x[:n]
    return np.resize(x, (n, *x.shape[1:])).astype(x.dtype, copy=False)


def keras_inference_batch(model: Any, x: np.ndarray, n_images: int | None = None) -> BatchChoice:
    """The batch size of Keras' predict for `model` on inputs like `x`, measured on this machine:
    inference results do not depend on it, only the speed does."""
    key = ("keras", model.name, model.count_params(), tuple(x.shape[1:]))
    return calibrate_batch(
        lambda chunk, batch: model.predict(chunk, batch_size=batch, verbose=0),
        x,
        key=key,
        bytes_per_image=activation_bytes(model),
        n_images=n_images,
    )


def onnx_inference_batch(
    session: Any, x: np.ndarray, *, key: Hashable, bytes_per_image: int, n_images: int | None = None
) -> BatchChoice:
    """The batch size of an onnxruntime session on inputs like `x`, measured on this machine."""
    name = session.get_inputs()[0].name

    def run_pass(chunk: np.ndarray, batch: int) -> None:
        for i in range(0, len(chunk), batch):
            session.run(None, {name: chunk[i : i + batch]})

    providers = tuple(session.get_providers())
    return calibrate_batch(
        run_pass,
        x,
        key=("onnxruntime", key, providers, tuple(x.shape[1:])),
        bytes_per_image=bytes_per_image,
        n_images=n_images,
    )


def onnx_activation_bytes(model: Any) -> int:
    """Bytes per image of every tensor an ONNX graph (ModelProto) computes, from onnx shape
    inference with the batch dimension at 1; unknown dimensions count as 1, so an unknown
    shape costs little rather than blocking inference. 4 bytes per element."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is best effort on foreign files
        inferred = model
    graph = inferred.graph
    total = 0
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = vi.type.tensor_type.shape.dim
        total += int(np.prod([d.dim_value or 1 for d in dims[1:]])) * 4 if dims else 4
    return max(total, 4)


def activation_bytes(model: Any) -> int:
    """Bytes per image of a Keras model's input plus every layer output (nested models included):
    an upper bound of what one image costs during inference (float32)."""
    total = 0

    def size(shape: Any) -> int:
        dims = [int(d) for d in tuple(shape)[1:] if d is not None]
        return int(np.prod(dims)) if dims else 1

    def walk(layer: Any) -> None:
        nonlocal total
        inner = getattr(layer, "layers", None)
        if inner:
            for sub in inner:
                walk(sub)
            return
        try:
            outputs = layer.output
        except (AttributeError, ValueError):  # a layer used twice has no single output
            return
        for out in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            total += size(out.shape) * 4

    for inp in getattr(model, "inputs", []) or []:
        total += size(inp.shape) * 4
    walk(model)
    return max(total, 4)
