"""Pooled backbone features for frozen-base training, extracted once and cached on disk.

A frozen backbone gives the same features every epoch, so the head trains on them instead of on
images. The cache key covers the backbone, its weights, the preprocessing, the input size and the
data, so a change in any of them recomputes.

Extraction runs in Keras or in onnxruntime (`feature_backend`): `auto` takes the one measured
faster on this machine, and onnxruntime is used only after its features match Keras' on a
sample. Whatever happens to onnxruntime, the run goes on with Keras and run.json says why.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.batching import BatchChoice, activation_bytes, calibrate_batch, keras_inference_batch
from engine.preprocessing import PreprocessSpec
from engine.records import FeaturesInfo
from engine.runs import atomic_path
from engine.training import ort_features
from engine.training.trainer import Cancelled, Trainer

# auto exports the backbone only when the Keras pass would take longer than this: a conversion
# costs seconds, which a shorter pass cannot win back.
EXPORT_PAYOFF_SECONDS = 10.0
# Images used to measure batch sizes and backends, and to check parity.
SAMPLE_IMAGES = 512


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


# ---------------------------------------------------------------------------- auto's choice
def _has_gpu(tf_devices: Sequence[str]) -> bool:
    return any("GPU" in d.upper() for d in tf_devices)


def choice_without_probe(
    tf_devices: Sequence[str], ort_providers: Sequence[str]
) -> tuple[str, str] | None:
    """auto's choice when the devices alone decide it (no measurement needed), else None."""
    if not ort_providers:
        return "keras", "onnxruntime is not available here"
    ort_gpu = any(p in ort_features.GPU_PROVIDERS for p in ort_providers)
    if _has_gpu(tf_devices) and not ort_gpu:
        return "keras", "TensorFlow runs on the GPU while onnxruntime offers only the CPU here"
    return None


def choose_backend(
    tf_devices: Sequence[str], ort_providers: Sequence[str], probe: Mapping[str, float]
) -> tuple[str, str]:
    """auto's choice of feature backend and why, from TensorFlow's devices, onnxruntime's
    providers and the measured images/s of each backend (`probe`, either may be missing)."""
    fixed = choice_without_probe(tf_devices, ort_providers)
    if fixed is not None:
        return fixed
    keras_rate, ort_rate = probe.get("keras"), probe.get("onnxruntime")
    if ort_rate is None:
        return "keras", "onnxruntime was not measured"
    if keras_rate is None:
        return "onnxruntime", f"onnxruntime measured {ort_rate:,.0f} img/s; Keras was not measured"
    if ort_rate > keras_rate:
        return "onnxruntime", (
            f"measured faster here: {ort_rate:,.0f} img/s vs {keras_rate:,.0f} img/s in Keras"
        )
    return (
        "keras",
        f"measured faster here: {keras_rate:,.0f} img/s vs {ort_rate:,.0f} in onnxruntime",
    )


def tf_devices() -> list[str]:
    import tensorflow as tf

    return [d.name.replace("/physical_device:", "") for d in tf.config.list_physical_devices()]


# ---------------------------------------------------------------------------- extraction
def cached_features(
    trainer: Trainer, transfer: Any, prep: PreprocessSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled backbone features of train/val/test, computed once per backbone, weights,
    preprocessing, input size and data, then read from the cache."""
    d, rep, run = trainer.data, trainer.rep, trainer.run
    requested = trainer.config.feature_backend
    weights_digest = _digest(*[np.asarray(w) for w in transfer.base.get_weights()])
    model_key = f"{transfer.spec.name}|{prep.name}|{trainer.config.input_size}|{weights_digest}"
    key = _digest(d.x_train, d.x_val, d.x_test, extra=model_key)
    path = features_cache_dir() / f"{transfer.spec.name}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                feats = (z["train"], z["val"], z["test"])
            rep.log(f"features of {transfer.spec.name} read from the cache ({path.name})", run.id)
            trainer.timings["features"] = 0.0
            info = FeaturesInfo(
                requested=requested, backend="cache", reason=f"read from the cache ({path.name})"
            )
            _record(trainer, info)
            return feats
        except (OSError, ValueError, KeyError):
            rep.log(
                f"feature cache {path.name} is unreadable; recomputing", run.id, level="warning"
            )
    t0 = time.perf_counter()
    keras_prep = prep.keras_function()
    sample = keras_prep(d.x_train[:SAMPLE_IMAGES])
    n_total = len(d.x_train) + len(d.x_val) + len(d.x_test)
    onnx_path = features_cache_dir() / f"{transfer.spec.name}-{_digest(extra=model_key)}.onnx"
    extract, choice, info = _pick_backend(trainer, transfer, sample, n_total, onnx_path)
    batch = choice.batch
    info.batch = batch
    info.batches_tried = {str(b): round(rate, 1) for b, rate in choice.tried.items()}
    rep.log(f"features: {info.backend} ({info.reason}); {choice.describe()}", run.id)
    total_steps = sum(-(-len(a) // batch) for a in (d.x_train, d.x_val, d.x_test))
    rep("phase_started", run.id, phase="features", epochs=1, steps=total_steps)
    parts = []
    done = 0
    for x in (d.x_train, d.x_val, d.x_test):
        if extract is None:
            out = trainer.predict(
                transfer.features,
                keras_prep(x),
                phase="features",
                offset=done,
                total=total_steps,
                batch=batch,
            )
        else:
            out = _run_batches(trainer, extract, keras_prep(x), batch, done, total_steps)
        parts.append(np.asarray(out, dtype=np.float32))
        done += -(-len(x) // batch)
        if rep.cancel.cancelled:
            raise Cancelled()
    trainer.timings["features"] = round(time.perf_counter() - t0, 3)
    _record(trainer, info)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, train=parts[0], val=parts[1], test=parts[2])
    rep("artifact", run.id, kind="features", path=str(path))
    return parts[0], parts[1], parts[2]


def _pick_backend(
    trainer: Trainer, transfer: Any, sample: np.ndarray, n_total: int, onnx_path: Path
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, BatchChoice, FeaturesInfo]:
    """The extractor (None for Keras' predict), its measured batch and the record of the choice."""
    requested = trainer.config.feature_backend
    rep, run = trainer.rep, trainer.run
    info = FeaturesInfo(requested=requested, backend="keras", reason="")
    devices = tf_devices()
    # TensorFlow's CUDA libraries and onnxruntime's never share a process (DESIGN.md): with
    # TensorFlow on a GPU, onnxruntime here may use the CPU only, and auto then keeps Keras.
    gpu_free = not _has_gpu(devices)
    providers = ort_features.available_providers(gpu=gpu_free)

    def keras_choice() -> BatchChoice:
        return keras_inference_batch(transfer.features, sample, n_images=n_total)

    if requested == "keras":
        info.reason = "asked for (feature_backend keras)"
        return None, keras_choice(), info
    if requested == "auto":
        fixed = choice_without_probe(devices, providers)
        if fixed is not None:
            info.reason = fixed[1]
            return None, keras_choice(), info
        kc = keras_choice()
        if not kc.measured:
            info.reason = (
                f"the whole pass is one batch of {n_total} images: exporting the backbone to "
                "onnxruntime would cost more than it could save"
            )
            return None, kc, info
        keras_seconds = n_total / kc.img_per_s
        if not onnx_path.is_file() and keras_seconds < EXPORT_PAYOFF_SECONDS:
            info.reason = (
                f"the Keras pass takes about {keras_seconds:.1f} s here, less than exporting "
                "the backbone to onnxruntime would cost"
            )
            info.probe_img_s = {"keras": round(kc.img_per_s, 1)}
            return None, kc, info
    ort, note = _open_checked(trainer, transfer, sample, onnx_path, info, gpu=gpu_free)
    if ort is None:
        info.reason = "onnxruntime could not be used"
        info.warning = note
        rep.log(
            f"features: onnxruntime not used, falling back to Keras: {note}",
            run.id,
            level="warning",
        )
        return None, keras_choice(), info
    oc = calibrate_batch(
        ort.run_pass,
        sample,
        key=("onnxruntime", str(onnx_path), tuple(sample.shape[1:])),
        bytes_per_image=activation_bytes(transfer.features),
        n_images=n_total,
    )
    info.providers = ort.providers
    if requested == "onnxruntime":
        info.backend, info.reason = "onnxruntime", "asked for (feature_backend onnxruntime)"
        if oc.measured:
            info.probe_img_s = {"onnxruntime": round(oc.img_per_s, 1)}
        return ort, oc, info
    kc = keras_choice()
    probe = {"keras": round(kc.img_per_s, 1), "onnxruntime": round(oc.img_per_s, 1)}
    info.probe_img_s = probe
    # The providers the session runs on: a listed CUDA provider may have fallen back to the CPU.
    info.backend, info.reason = choose_backend(devices, ort.providers, probe)
    return (ort, oc, info) if info.backend == "onnxruntime" else (None, kc, info)


def _open_checked(
    trainer: Trainer,
    transfer: Any,
    sample: np.ndarray,
    onnx_path: Path,
    info: FeaturesInfo,
    *,
    gpu: bool,
) -> tuple[ort_features.OrtFeatures | None, str]:
    """The onnxruntime extractor when it converts, loads and matches Keras; else (None, why)."""
    rep, run = trainer.rep, trainer.run
    try:
        ort = ort_features.open_features(transfer.features, onnx_path, gpu=gpu)
    except ort_features.OrtFeaturesError as exc:
        return None, str(exc)
    except Exception as exc:  # e.g. the cache folder is not writable: Keras still works
        return None, f"{type(exc).__name__}: {exc}"
    for note in ort.notes:
        rep.log(f"features: {note}", run.id, level="warning")
    info.notes += ort.notes
    info.onnx_cache = str(onnx_path)
    if ort.exported:
        trainer.timings["features_export"] = round(ort.export_time, 3)
    check = sample[: ort_features.PARITY_IMAGES]
    expected = np.asarray(transfer.features.predict(check, batch_size=len(check), verbose=0))
    try:
        gap = ort_features.parity_gap(expected, ort(check))
    except Exception as exc:  # onnxruntime raises its own types when a session cannot run
        return None, f"onnxruntime failed on the parity sample: {type(exc).__name__}: {exc}"
    info.parity_max_abs = gap
    tolerance = ort_features.PARITY_TOLERANCE
    if not gap <= tolerance:
        return None, (
            f"onnxruntime's features differ from Keras' by up to {gap:.2e} on "
            f"{len(check)} images (tolerance {tolerance:.0e})"
        )
    return ort, ""


def _run_batches(
    trainer: Trainer,
    extract: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    batch: int,
    offset: int,
    total: int,
) -> np.ndarray:
    """`extract` over `x` in batches, with progress events and a cancel check per batch."""
    rep, run = trainer.rep, trainer.run
    out = []
    for step, start in enumerate(range(0, len(x), batch)):
        out.append(extract(x[start : start + batch]))
        rep.batch(
            run.id,
            phase="features",
            epoch=1,
            epochs=1,
            step=offset + step + 1,
            steps=total,
            metrics={},
        )
        if rep.cancel.cancelled:
            break
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _record(trainer: Trainer, info: FeaturesInfo) -> None:
    trainer.run.record["features"] = info.to_json()
    trainer.run.save()
