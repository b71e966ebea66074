"""Feature extraction on Keras or onnxruntime: parity, fallbacks, the cached .onnx, auto's choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.events import ListSink, Reporter
from engine.experiments import get_experiment
from engine.records import Log, RunRecord
from engine.runs import RunStore
from engine.training import ort_features, run_experiment
from engine.training.features import choice_without_probe, choose_backend

CPU = ["CPU:0"]
GPU = ["CPU:0", "GPU:0"]
ORT_CPU = ["CPUExecutionProvider"]
ORT_CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]


# ---------------------------------------------------------------------------- auto's choice
def test_auto_takes_the_backend_measured_faster_on_the_cpu() -> None:
    backend, reason = choose_backend(CPU, ORT_CPU, {"keras": 2456.0, "onnxruntime": 4160.0})
    assert backend == "onnxruntime" and "4,160" in reason and "2,456" in reason
    backend, reason = choose_backend(CPU, ORT_CPU, {"keras": 3000.0, "onnxruntime": 1000.0})
    assert backend == "keras" and "faster" in reason


def test_auto_never_prefers_onnxruntime_on_the_cpu_over_tensorflow_on_a_gpu() -> None:
    # Even a probe that says otherwise (a tiny batch on a busy GPU) does not make it.
    backend, reason = choose_backend(GPU, ORT_CPU, {"keras": 100.0, "onnxruntime": 5000.0})
    assert backend == "keras" and "GPU" in reason
    assert choice_without_probe(GPU, ORT_CPU) is not None  # decided without exporting anything
    # Both on a GPU: the measurement decides, either way.
    assert choose_backend(GPU, ORT_CUDA, {"keras": 100.0, "onnxruntime": 5000.0})[0] == (
        "onnxruntime"
    )
    assert choose_backend(GPU, ORT_CUDA, {"keras": 9000.0, "onnxruntime": 5000.0})[0] == "keras"
    assert choice_without_probe(GPU, ORT_CUDA) is None


def test_with_tensorflow_on_a_gpu_onnxruntime_here_offers_the_cpu_only() -> None:
    # TensorFlow's CUDA libraries and onnxruntime's never share a process (DESIGN.md).
    listed = ort_features.available_providers(gpu=True)
    assert not set(ort_features.available_providers(gpu=False)) & set(ort_features.GPU_PROVIDERS)
    assert set(ort_features.available_providers(gpu=False)) <= set(listed)


def test_auto_without_onnxruntime_or_its_measurement_is_keras() -> None:
    assert choose_backend(CPU, [], {"onnxruntime": 1e9})[0] == "keras"
    assert choose_backend(CPU, ORT_CPU, {"keras": 10.0})[0] == "keras"


# ---------------------------------------------------------------------------- the cached .onnx
def _tiny_features_model() -> Any:
    """Conv → BatchNorm (non-trivial statistics) → ReLU → global average pooling."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    bn = keras.layers.BatchNormalization()
    x = keras.layers.ReLU()(bn(x))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma * 1.5, beta + 0.1, mean + 0.2, var * 3.0])
    return model


@pytest.fixture(scope="module")
def tiny() -> Any:
    return _tiny_features_model()


def _images(n: int = 20) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (n, 16, 16, 3)).astype(np.float32)


def test_onnxruntime_features_match_keras_within_tolerance(tiny: Any, tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    ort = ort_features.open_features(tiny, path)
    assert ort.exported and path.is_file() and not ort.notes
    x = _images()
    expected = tiny.predict(x, verbose=0)
    got = ort.run_pass(x, 8)
    assert got.shape == expected.shape == (20, 8)
    gap = ort_features.parity_gap(expected, got)
    assert 0 <= gap <= ort_features.PARITY_TOLERANCE
    # Opened again: the cached file is used, not converted again.
    again = ort_features.open_features(tiny, path)
    assert not again.exported and not again.notes
    assert ort_features.parity_gap(expected, again(x)) <= ort_features.PARITY_TOLERANCE
    assert ort_features.parity_gap(expected, got[:, :4]) == float("inf")


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated"),
        (lambda p: p.write_bytes(b"\0" * len(p.read_bytes())), "corrupted"),
        (lambda p: p.with_name(p.name + ".json").unlink(), "unfinished"),
        (lambda p: p.with_name(p.name + ".json").write_text("{half"), "unverifiable"),
    ],
)
def test_a_damaged_cache_is_detected_and_rebuilt(
    tiny: Any, tmp_path: Path, damage: Any, said: str
) -> None:
    path = tmp_path / "tiny.onnx"
    ort_features.open_features(tiny, path)
    damage(path)
    rebuilt = ort_features.open_features(tiny, path)
    assert rebuilt.exported
    assert len(rebuilt.notes) == 1 and said in rebuilt.notes[0] and "rebuilding" in rebuilt.notes[0]
    x = _images()
    assert ort_features.parity_gap(tiny.predict(x, verbose=0), rebuilt(x)) <= 1e-4
    # ... and the rebuilt file is trusted next time.
    assert not ort_features.open_features(tiny, path).notes


def test_a_file_onnxruntime_cannot_load_is_rebuilt(tiny: Any, tmp_path: Path) -> None:
    import hashlib
    import json

    path = tmp_path / "tiny.onnx"
    ort_features.open_features(tiny, path)
    junk = b"not an onnx file"
    path.write_bytes(junk)  # consistent with its sidecar, still not a model
    digest = hashlib.blake2b(junk, digest_size=16).hexdigest()
    path.with_name(path.name + ".json").write_text(json.dumps({"size": 16, "blake2b": digest}))
    rebuilt = ort_features.open_features(tiny, path)
    assert rebuilt.exported and "not loadable" in rebuilt.notes[0]


# ---------------------------------------------------------------------------- in a run
def _transfer(tmp_path: Path, **settings: Any) -> tuple[RunRecord, ListSink, Any]:
    sink = ListSink()
    settings = {"data": "synthetic:easy", "weights": "none", "epochs": 2, **settings}
    cfg = get_experiment("transfer").config(early_stopping=False, **settings)
    run = run_experiment(
        "transfer", cfg, store=RunStore(tmp_path / "runs"), reporter=Reporter(sink)
    )
    return run.info, sink, run


@pytest.mark.slow
def test_onnxruntime_trains_the_same_model_and_falls_back_to_keras_on_a_parity_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    # Separate caches: the second run would otherwise read the first one's features.
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "keras-cache"))
    keras_info, _, _ = _transfer(tmp_path, subset=150, feature_backend="keras")
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    # A randomly initialised MobileNetV2 with calibrated BatchNorm gives features up to 6.0, and
    # float32 rounding alone puts onnxruntime ~1.2e-4 away (Keras' own eager call and predict
    # differ by 5e-5): the run path is tested at 1e-3; parity at 1e-4 is tested above.
    monkeypatch.setattr(ort_features, "PARITY_TOLERANCE", 1e-3)
    ort_info, _, ort_run = _transfer(tmp_path, subset=150, feature_backend="onnxruntime")
    for info in (ort_info, keras_info):
        assert info.status == "finished" and info.features is not None
    feats = ort_info.features
    assert feats is not None and feats.backend == "onnxruntime" and feats.warning is None
    assert feats.parity_max_abs is not None and feats.parity_max_abs <= 1e-3
    assert feats.providers and feats.batch and feats.batch >= 1
    assert feats.onnx_cache and Path(feats.onnx_cache).is_file()
    assert keras_info.features is not None and keras_info.features.backend == "keras"
    # Same model, same shape of result: parameter counts, phases, metrics' keys.
    assert ort_info.params == keras_info.params and ort_info.params is not None
    assert ort_info.params.trainable == 12_810
    assert [p.name for p in ort_info.phases] == [p.name for p in keras_info.phases] == ["frozen"]
    assert ort_info.metrics is not None and keras_info.metrics is not None
    assert ort_info.metrics.to_json().keys() == keras_info.metrics.to_json().keys()
    # Features from both backends agree, so both heads learn alike.
    assert ort_info.metrics.test_accuracy == pytest.approx(
        keras_info.metrics.test_accuracy, abs=0.05
    )
    # model.keras carries the head trained on onnxruntime's features: its classifier applied to
    # the cached test features gives the saved model's own predictions on the images.
    model = keras.models.load_model(ort_run.path / "model.keras")
    (npz,) = (tmp_path / "cache" / "features").glob("MobileNetV2-*.npz")
    from engine.data import load_dataset
    from engine.preprocessing import get_preprocessing

    data = load_dataset("synthetic:easy", subset=150)
    images = get_preprocessing("mobilenet_v2").apply(data.x_test)
    with np.load(npz) as z:
        test_features = z["test"]
    via_head = model.get_layer("predictions")(test_features)
    np.testing.assert_allclose(model.predict(images, verbose=0), via_head, atol=1e-4)

    # A parity miss (tolerance 0) is a warning and a Keras run, never a failed run; the cached
    # .onnx of the same backbone is reused (the feature arrays are removed, so they are new).
    monkeypatch.setattr(ort_features, "PARITY_TOLERANCE", 0.0)
    npz.unlink()
    missed, sink, _ = _transfer(tmp_path, subset=150, feature_backend="onnxruntime")
    assert missed.status == "finished"
    assert missed.features is not None and missed.features.backend == "keras"
    assert missed.features.warning and "differ from Keras" in missed.features.warning
    assert missed.features.parity_max_abs is not None and missed.features.parity_max_abs > 0
    warnings = [e for e in sink.events if isinstance(e, Log) and e.level == "warning"]
    assert any("falling back to Keras" in e.message for e in warnings)
    assert "features_export" not in missed.timings  # the cached .onnx was reused


@pytest.mark.slow
def test_auto_on_a_short_pass_keeps_keras_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ort_features, "available_providers", lambda gpu=True: ORT_CPU)
    # 300 images: more than one batch's worth, so auto measures Keras before it decides.
    info, _, _ = _transfer(tmp_path, subset=300, feature_backend="auto", epochs=1)
    assert info.features is not None and info.features.requested == "auto"
    assert info.features.backend == "keras" and "exporting" in info.features.reason
    assert info.features.probe_img_s and info.features.probe_img_s["keras"] > 0
    assert not list((tmp_path / "cache" / "features").glob("*.onnx"))
