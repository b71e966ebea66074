"""Pooled backbone features for frozen-base training, extracted once and cached on disk.

A frozen backbone gives the same features every epoch, so the head trains on them instead of on
images. The cache key covers the backbone, its weights, the preprocessing, the input size and the
data, so a change in any of them recomputes.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.preprocessing import PreprocessSpec
from engine.runs import atomic_path
from engine.training.trainer import Cancelled, Trainer, inference_batch


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


def cached_features(
    trainer: Trainer, transfer: Any, prep: PreprocessSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled backbone features of train/val/test, computed once per backbone, weights,
    preprocessing, input size and data, then read from the cache."""
    d, rep, run = trainer.data, trainer.rep, trainer.run
    weights_digest = _digest(*[np.asarray(w) for w in transfer.base.get_weights()])
    key = _digest(
        d.x_train,
        d.x_val,
        d.x_test,
        extra=f"{transfer.spec.name}|{prep.name}|{trainer.config.input_size}|{weights_digest}",
    )
    path = features_cache_dir() / f"{transfer.spec.name}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                feats = (z["train"], z["val"], z["test"])
            rep.log(f"features of {transfer.spec.name} read from the cache ({path.name})", run.id)
            trainer.timings["features"] = 0.0
            return feats
        except (OSError, ValueError, KeyError):
            rep.log(
                f"feature cache {path.name} is unreadable; recomputing", run.id, level="warning"
            )
    t0 = time.perf_counter()
    batch = inference_batch(trainer.config.input_size)
    total_steps = sum(-(-len(a) // batch) for a in (d.x_train, d.x_val, d.x_test))
    rep("phase_started", run.id, phase="features", epochs=1, steps=total_steps)
    keras_prep = prep.keras_function()
    parts = []
    done = 0
    for x in (d.x_train, d.x_val, d.x_test):
        parts.append(
            trainer.predict(
                transfer.features,
                keras_prep(x),
                phase="features",
                offset=done,
                total=total_steps,
            ).astype(np.float32)
        )
        done += -(-len(x) // batch)
        if rep.cancel.cancelled:
            raise Cancelled()
    trainer.timings["features"] = round(time.perf_counter() - t0, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, train=parts[0], val=parts[1], test=parts[2])
    rep("artifact", run.id, kind="features", path=str(path))
    return parts[0], parts[1], parts[2]
