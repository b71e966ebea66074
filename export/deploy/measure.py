"""Measure one variant on one provider: accuracy, agreement with fp32, latency, throughput.

"Agreement" and "max |Δprob|" compare against the fp32 source model run on the CPU over the
same test images, so every variant (fp32 included, as a sanity check) has one common reference.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CnnlabError, UsageError
from export.providers import AUTO_ORDER, PROVIDERS, SessionFactory

DEFAULT_LATENCY_RUNS = 50
DEFAULT_THROUGHPUT_BATCH = 256
DEFAULT_THROUGHPUT_REPEATS = 3
ACCURACY_BATCH = 256
WARMUP_RUNS = 3


@dataclass
class Workload:
    """The inputs every measurement shares (already fed: preprocessed or uint8)."""

    test_feed: np.ndarray | None  # None: no data, accuracy and agreement are n/a
    test_labels: np.ndarray | None
    mapping: np.ndarray | None  # file output index → data label (None: identity)
    reference: np.ndarray | None  # fp32 probabilities on test_feed
    softmax: bool  # the model outputs logits: compare softmax(outputs)
    probe: np.ndarray  # one input image (fed) for latency/throughput when there is no data
    latency_runs: int = DEFAULT_LATENCY_RUNS
    throughput_batch: int = DEFAULT_THROUGHPUT_BATCH
    throughput_repeats: int = DEFAULT_THROUGHPUT_REPEATS


def parse_providers(text: str, available: Sequence[str] | None = None) -> tuple[list[str], bool]:
    """`all` (every provider this build lists), `auto`, or `cpu,cuda,...` → (names, strict).

    strict: the user named them, so one that does not load is an error rather than skipped.
    """
    from export.providers import available_providers

    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if names in (["all"], []):
        have = list(available) if available is not None else available_providers()
        return [n for n in AUTO_ORDER if PROVIDERS[n] in have], False
    unknown = [n for n in names if n not in (*AUTO_ORDER, "auto")]
    if unknown:
        raise UsageError(
            f"unknown provider {', '.join(map(repr, unknown))}; choose all, auto or from {', '.join(AUTO_ORDER)}"
        )
    return list(dict.fromkeys(names)), True


def open_session(
    model: Path | bytes,
    provider: str,
    *,
    available: Sequence[str] | None = None,
    factory: SessionFactory | None = None,
) -> Any:
    """A SessionInfo with all graph optimizations on (what a deployment would do)."""
    from export.providers import create_session, session_options

    return create_session(
        model, provider, options=session_options(), available=available, factory=factory
    )


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def outputs_logits(y: np.ndarray) -> bool:
    """True unless every row of the fp32 output is already a probability distribution."""
    return not (y.ndim == 2 and y.min() >= 0 and np.allclose(y.sum(axis=1), 1.0, atol=1e-3))


def run_batches(session: Any, x: np.ndarray, batch_size: int = ACCURACY_BATCH) -> np.ndarray:
    name = session.get_inputs()[0].name
    outs = [
        np.asarray(session.run(None, {name: x[i : i + batch_size]})[0], dtype=np.float32)
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(outs)


def compare_to_reference(probs: np.ndarray, work: Workload) -> dict[str, float | int | None]:
    """accuracy, top-1 agreement and max |Δprob| against the fp32 reference."""
    if work.test_labels is None or work.reference is None:
        return {"accuracy": None, "agreement": None, "max_abs_dprob": None, "n": 0}
    # Decided once from the fp32 outputs: an int8 softmax's rows need not sum to 1 exactly,
    # and must not be mistaken for logits.
    probs = softmax(probs) if work.softmax else probs
    pred = probs.argmax(axis=1)
    labels = work.mapping[pred] if work.mapping is not None else pred
    return {
        "accuracy": round(float((labels == work.test_labels).mean()), 6),
        "agreement": round(float((pred == work.reference.argmax(axis=1)).mean()), 6),
        "max_abs_dprob": float(np.abs(probs - work.reference).max()),
        "n": int(len(probs)),
    }


def time_latency(session: Any, one: np.ndarray, runs: int) -> dict[str, Any]:
    from export.evaluate import percentiles_ms

    name = session.get_inputs()[0].name
    for _ in range(WARMUP_RUNS if runs else 0):
        session.run(None, {name: one})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, {name: one})
        times.append(time.perf_counter() - t)
    return {"batch": 1, "runs": runs, **percentiles_ms(times)}


def time_throughput(session: Any, source: np.ndarray, batch: int, repeats: int) -> dict[str, Any]:
    """Images/s on full batches of `batch` (test images tiled when there are fewer)."""
    name = session.get_inputs()[0].name
    reps = -(-batch // len(source))
    full = np.concatenate([source] * reps)[:batch] if reps > 1 else source[:batch]
    session.run(None, {name: full})  # warm-up: first runs allocate and pick kernels
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        session.run(None, {name: full})
        times.append(time.perf_counter() - t)
    best = min(times) if times else 0.0
    median = float(np.median(times)) if times else 0.0
    return {
        "batch": batch,
        "repeats": repeats,
        "images_per_s": round(batch / median, 2) if median > 0 else None,
        "best_images_per_s": round(batch / best, 2) if best > 0 else None,
    }


def measure(
    path: Path,
    provider: str,
    work: Workload,
    *,
    available: Sequence[str] | None = None,
    factory: SessionFactory | None = None,
) -> dict[str, Any]:
    """One row of the table. A variant that does not run on this provider (fp16 kernels the CPU
    lacks, say) gets `error` instead of numbers; the other rows are still measured."""
    try:
        info = open_session(path, provider, available=available, factory=factory)
    except CnnlabError as exc:  # ProviderError too: it loaded the fp32 source, not this file
        return {"provider": {"requested": provider}, "error": str(exc)}
    session = info.session
    row: dict[str, Any] = {"provider": info.to_dict(), "error": None}
    try:
        if work.test_feed is not None:
            row.update(compare_to_reference(run_batches(session, work.test_feed), work))
        else:
            row.update(compare_to_reference(np.zeros((0, 1)), work))
        source = work.test_feed if work.test_feed is not None else work.probe
        row["latency_ms"] = time_latency(session, source[:1], work.latency_runs)
        row["throughput"] = time_throughput(
            session, source, work.throughput_batch, work.throughput_repeats
        )
    except Exception as exc:  # a kernel that fails at run time, not at load
        message = str(exc).strip().splitlines()
        row["error"] = f"failed on {provider}: {message[0] if message else type(exc).__name__}"
    return row
