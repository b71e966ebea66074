"""Pooled backbone features through onnxruntime, for frozen-base training.

The feature model (image → upscale → backbone → global average pooling) is converted once with
tf2onnx and cached in the features cache folder, keyed like the feature arrays (backbone, weights
digest, preprocessing, input size). A sidecar file records the size and digest of the .onnx:
a file that does not match it (half-written, truncated, overwritten) or that onnxruntime cannot
load is rebuilt, and the caller is told. The caller checks parity against Keras before it trusts
the session. This module converts by itself (tf2onnx, onnxruntime, imported lazily) because
engine/ does not import export/.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import first_line
from engine.runs import atomic_path, write_json_atomic

# Largest max |Δ| of pooled features between Keras and onnxruntime that counts as parity.
PARITY_TOLERANCE = 1e-4
# Images of the parity sample.
PARITY_IMAGES = 32
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
# TensorRT builds an engine per input shape (minutes), more than a one-off feature pass gains.
FEATURE_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


class OrtFeaturesError(Exception):
    """onnxruntime cannot give the features (conversion, loading or parity); says why."""


@dataclass
class OrtFeatures:
    """An onnxruntime session computing the pooled features of a Keras feature model."""

    session: Any
    path: Path
    providers: list[str]
    exported: bool  # False when the cached .onnx was used
    export_time: float = 0.0
    notes: list[str] = field(default_factory=list)  # cache problems found (and fixed)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Features of one batch."""
        name = self.session.get_inputs()[0].name
        out = self.session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32)

    def run_pass(self, x: np.ndarray, batch: int) -> np.ndarray:
        """Features of `x`, `batch` images at a time."""
        return np.concatenate([self(x[i : i + batch]) for i in range(0, len(x), batch)])


def available_providers(*, gpu: bool = True) -> list[str]:
    """onnxruntime's execution providers on this machine ([] when onnxruntime is missing);
    without `gpu`, the CPU's only."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return [p for p in ort.get_available_providers() if gpu or p not in GPU_PROVIDERS]


def open_features(features_model: Any, path: Path, *, gpu: bool = True) -> OrtFeatures:
    """A session for `features_model`, from the cached .onnx at `path` when it is intact, else
    converted now and cached there; on the CPU only unless `gpu`. Raises OrtFeaturesError with
    the reason it cannot."""
    notes: list[str] = []
    if path.is_file() or _sidecar(path).is_file():
        problem = _cache_problem(path)
        if problem is None:
            try:
                session, providers = _session(path, gpu)
                return OrtFeatures(session, path, providers, exported=False)
            except Exception as exc:  # onnxruntime raises its own types for a bad file
                problem = f"not loadable by onnxruntime ({first_line(exc)})"
        notes.append(f"cached ONNX backbone {path.name} is {problem}; rebuilding it")
        path.unlink(missing_ok=True)
        _sidecar(path).unlink(missing_ok=True)
    t0 = time.perf_counter()
    data = _convert(features_model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    # The sidecar is written last: a file without it was never finished.
    write_json_atomic(_sidecar(path), {"size": len(data), "blake2b": _digest(data)})
    export_time = time.perf_counter() - t0
    try:
        session, providers = _session(path, gpu)
    except Exception as exc:
        raise OrtFeaturesError(f"onnxruntime cannot load the converted backbone: {exc}") from None
    return OrtFeatures(
        session, path, providers, exported=True, export_time=export_time, notes=notes
    )


def parity_gap(keras_features: np.ndarray, ort_features: np.ndarray) -> float:
    """max |Δ| between two feature arrays (inf when their shapes differ)."""
    if keras_features.shape != ort_features.shape:
        return float("inf")
    return float(np.max(np.abs(keras_features.astype(np.float64) - ort_features)))


# ---------------------------------------------------------------------------- cache file
def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _cache_problem(path: Path) -> str | None:
    """Why the cached .onnx cannot be trusted, or None when it matches its sidecar."""
    if not path.is_file():
        return "missing (only its sidecar is there)"
    try:
        meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        size, digest = int(meta["size"]), str(meta["blake2b"])
    except FileNotFoundError:
        return "unfinished (no sidecar)"
    except (OSError, ValueError, KeyError, TypeError):
        return "unverifiable (unreadable sidecar)"
    data = path.read_bytes()
    if len(data) != size:
        return f"truncated or overwritten ({len(data)} bytes, expected {size})"
    if _digest(data) != digest:
        return "corrupted (digest mismatch)"
    return None


# ---------------------------------------------------------------------------- conversion, session
def _convert(features_model: Any) -> bytes:
    """The feature model as serialized ONNX (tf2onnx; input float32 NHWC, dynamic batch)."""
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise OrtFeaturesError(f"tf2onnx is not installed ({exc})") from None
    shape = tuple(features_model.inputs[0].shape[1:])
    spec = [tf.TensorSpec((None, *shape), tf.float32, name="image")]
    try:
        with _quiet("tf2onnx"):
            proto, _ = tf2onnx.convert.from_keras(features_model, input_signature=spec)
    except Exception as exc:  # tf2onnx raises anything from deep inside TensorFlow
        raise OrtFeaturesError(
            f"tf2onnx could not convert the backbone: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    data: bytes = proto.SerializeToString()
    return data


def _session(path: Path, gpu: bool) -> tuple[Any, list[str]]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise OrtFeaturesError(f"onnxruntime is not installed ({exc})") from None
    available = set(available_providers(gpu=gpu))
    providers = [p for p in FEATURE_PROVIDERS if p in available] or ["CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: warnings about unused initializers are noise
    # A listed CUDA provider whose libraries are missing logs an error and falls back to the CPU;
    # the providers the session reports say which one runs, so the log line is only noise.
    ort.set_default_logger_severity(4)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    finally:
        ort.set_default_logger_severity(2)
    return session, list(session.get_providers())


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """tf2onnx logs every conversion step at INFO; keep the run's output readable."""
    logger = logging.getLogger(logger_name)
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)
