"""Evaluate an ONNX file with onnxruntime: accuracy, per-class, confusion, latency, throughput.

The file's own metadata says how to feed it (raw uint8 when the preprocessing is baked in, or
which PreprocessSpec to apply), so evaluating needs only the file and a data source. Results are
stored in the source run's run.json (`onnx.evals`) when the file came from a run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CnnlabError, DataError, UsageError, first_line
from engine.preprocessing import PreprocessSpec, get_preprocessing
from engine.records import OnnxEval, OnnxRecord
from engine.runs import Run, RunStore, now_iso
from export.onnx_metadata import cnnlab_metadata, read_metadata
from export.providers import SessionFactory, create_session

DEFAULT_LATENCY_RUNS = 100
WARMUP_RUNS = 5


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99, mean and min of per-call times, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if ms.size == 0:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "mean": 0.0, "min": 0.0}
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "p99": round(float(p99), 4),
        "mean": round(float(ms.mean()), 4),
        "min": round(float(ms.min()), 4),
    }


def classification_metrics(pred: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, per-class accuracy and the confusion matrix (rows: true class, columns: predicted)."""
    n = len(classes)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    per_class = {
        c: (round(float(cm[i, i] / cm[i].sum()), 6) if cm[i].sum() else None)
        for i, c in enumerate(classes)
    }
    return {
        "accuracy": round(float((pred == y).mean()), 6) if len(y) else 0.0,
        "per_class_accuracy": per_class,
        "confusion_matrix": cm.tolist(),
    }


def _input_feed(
    meta: dict[str, Any], preprocessing: str | None
) -> tuple[bool, PreprocessSpec | None]:
    """(baked, spec): how to turn uint8 images into this file's input."""
    baked = bool(meta.get("preprocessing_baked"))
    if baked and not preprocessing:
        return True, None
    name = preprocessing or meta.get("preprocessing")
    if not name:
        raise UsageError(
            "the file does not say which preprocessing it expects (not a cnnlab export?); pass --preprocessing NAME"
        )
    try:
        return False, get_preprocessing(str(name))
    except KeyError as exc:
        raise UsageError(str(exc)) from None


def image_input(model: Any, path: Path) -> Any:
    """The model's one graph input (initializers aside); OnnxFileError unless there is exactly
    one, since eval feeds a batch of images and nothing else."""
    from export.onnx_file import OnnxFileError

    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise OnnxFileError(
            f"{path}: the model takes {len(inputs)} inputs ({names}); engine eval feeds one image input"
        )
    return inputs[0]


def class_mapping(file_classes: list[str] | None, data_classes: list[str]) -> np.ndarray | None:
    """Index map from the file's output positions to the data's labels (None = identity)."""
    if not file_classes or list(file_classes) == list(data_classes):
        return None
    if sorted(file_classes) != sorted(data_classes):
        raise DataError(
            f"the model's classes ({', '.join(file_classes)}) are not the data's ({', '.join(data_classes)})"
        )
    return np.asarray([data_classes.index(c) for c in file_classes], dtype=np.int64)


def find_source_run(path: Path, meta: dict[str, Any], runs_root: Path | str | None) -> Run | None:
    """The run the file was exported from: its own folder, else its id under the runs root."""
    run_id = meta.get("source_run") or ""
    if not run_id:
        return None
    store = RunStore(runs_root)
    folder = path.resolve().parent
    if (folder / "run.json").is_file():
        try:
            run = store.open(folder)
            if run.id == run_id:
                return run
        except CnnlabError:
            pass
    try:
        return store.open(run_id)
    except CnnlabError:
        return None


def _load_test_data(
    source: str, subset: int | None, run: Run | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from engine.data import config_of_run, dataset_for

    # A run's model takes images at its trained size: its config (resize...) applies.
    data = dataset_for(config_of_run(run.record if run else {}, data=source, subset=subset))
    return np.asarray(data.x_test), np.asarray(data.y_test), list(data.classes)


def evaluate(
    path: str | Path,
    *,
    data: str | None = None,
    provider: str = "auto",
    batch_size: int | None = None,
    latency_runs: int = DEFAULT_LATENCY_RUNS,
    subset: int | None = None,
    preprocessing: str | None = None,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    classes: list[str] | None = None,
    runs_root: Path | str | None = None,
    store: bool = True,
    available: Sequence[str] | None = None,
    factory: SessionFactory | None = None,
    options: Any = None,
) -> dict[str, Any]:
    """Evaluate an ONNX file on a data source's test set; return (and store) the result.

    `images`/`labels`/`classes` bypass the data loader (tests); `available` and `factory` are
    passed to create_session so tests control the providers. Without `batch_size` the batch of
    the accuracy and throughput pass is measured on this machine (engine.batching).
    """
    from export.onnx_file import OnnxFileError, load_onnx

    path = Path(path)
    if (batch_size is not None and batch_size < 1) or latency_runs < 0:
        raise UsageError("batch size must be at least 1 and latency runs at least 0")
    # The file first: an empty, corrupt or unusable file is reported before any question about
    # how to feed it (--preprocessing), and before onnxruntime's C++ messages could be.
    header, _, _ = load_onnx(path)
    image_input(header, path)
    meta = cnnlab_metadata(read_metadata(header))
    baked, spec = _input_feed(meta, preprocessing)
    run = find_source_run(path, meta, runs_root)

    if images is None:
        source = data or ((run.record.get("config") or {}).get("data") if run else None)
        if not source:
            raise UsageError(
                "name the data to evaluate on with --data SOURCE (e.g. synthetic, folder:PATH)"
            )
        x, y, data_classes = _load_test_data(source, subset, run)
    else:
        if labels is None:
            raise UsageError("images given without labels")
        source = data or "given"
        x, y = np.asarray(images), np.asarray(labels)
        data_classes = list(
            classes or meta.get("classes") or [str(i) for i in range(int(y.max()) + 1)]
        )
    if len(x) == 0:
        raise DataError("the test set is empty")
    mapping = class_mapping(meta.get("classes"), data_classes)

    info = create_session(path, provider, options=options, available=available, factory=factory)
    session = info.session
    input_meta = session.get_inputs()[0]
    want = [d if isinstance(d, int) else None for d in input_meta.shape]
    if len(want) == 4 and want[1:] != [None, None, None] and list(x.shape[1:]) != want[1:]:
        raise DataError(f"the model takes {want[1:]} images, the data has {list(x.shape[1:])}")
    feed = x.astype(np.uint8) if baked else spec.apply(x)  # type: ignore[union-attr]
    if input_meta.type == "tensor(uint8)" and not baked:
        raise UsageError("the file takes uint8 pixels but --preprocessing was given; drop it")
    name = input_meta.name

    def run_batch(batch: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(session.run(None, {name: batch})[0])
        except Exception as exc:  # onnxruntime's own types (Fail, InvalidArgument, ...)
            raise OnnxFileError(
                f"{path}: onnxruntime could not run it on these images ({first_line(exc)})"
            ) from None

    if batch_size is None:
        from engine.batching import onnx_activation_bytes, onnx_inference_batch

        batch_size = onnx_inference_batch(
            session, feed, key=str(path.resolve()), bytes_per_image=onnx_activation_bytes(header)
        ).batch
    run_batch(feed[:batch_size])  # warm-up: first runs allocate and pick kernels
    t0 = time.perf_counter()
    outputs = [run_batch(feed[i : i + batch_size]) for i in range(0, len(feed), batch_size)]
    elapsed = time.perf_counter() - t0
    probs = np.concatenate(outputs)
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise OnnxFileError(
            f"{path}: its first output has shape {list(probs.shape)}, not [batch, classes]"
        )
    pred = probs.argmax(axis=1)
    if pred.size and int(pred.max()) >= len(data_classes) and mapping is None:
        raise DataError(
            f"{path}: the model predicts {probs.shape[1]} classes, the data has {len(data_classes)}"
        )
    if mapping is not None:
        pred = mapping[pred]
    metrics = classification_metrics(pred, y, data_classes)

    times: list[float] = []
    if latency_runs:
        for i in range(WARMUP_RUNS):
            run_batch(feed[i % len(feed) : i % len(feed) + 1])
        for i in range(latency_runs):
            one = feed[i % len(feed) : i % len(feed) + 1]
            t = time.perf_counter()
            run_batch(one)
            times.append(time.perf_counter() - t)

    result: dict[str, Any] = {
        "file": path.name,
        "path": str(path.resolve()),
        "created": now_iso(),
        "data": source,
        "n": int(len(y)),
        "classes": data_classes,
        "provider": info.to_dict(),
        "preprocessing": {"name": spec.name if spec else meta.get("preprocessing"), "baked": baked},
        **metrics,
        "latency_ms": {"batch": 1, "runs": len(times), **percentiles_ms(times)},
        "throughput": {
            "batch": batch_size,
            "images_per_s": round(len(feed) / elapsed, 2) if elapsed > 0 else None,
            "seconds": round(elapsed, 4),
            "includes_preprocessing": baked,
        },
        "run_id": run.id if run else None,
        "keras_test_accuracy": (
            (run.record.get("metrics") or {}).get("test_accuracy") if run else None
        ),
        "stored": False,
    }
    if run is not None and store:
        record_eval(run, result)
        result["stored"] = True
    return result


def record_eval(run: Run, result: dict[str, Any]) -> None:
    """Add this evaluation to run.json's `onnx.evals`, replacing one of the same file, data and
    requested provider; atomic."""
    fresh = RunStore(run.path.parent).open(run.path)
    entry = OnnxEval.from_json({k: v for k, v in result.items() if k != "stored"})
    try:
        entry.file = str(Path(result["path"]).relative_to(fresh.path.resolve()))
    except ValueError:
        entry.file = result["path"]
    fresh.update(onnx=(fresh.info.onnx or OnnxRecord()).with_eval(entry))
    run.record = fresh.record
