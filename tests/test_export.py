"""Keras → ONNX export on tiny models and synthetic data: graph promises, parity, metadata,
baked preprocessing, the all-or-nothing write, and the run.json record; then `engine eval`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from cnnlab.cli import main  # noqa: E402
from engine.errors import UsageError  # noqa: E402
from engine.preprocessing import get_preprocessing  # noqa: E402
from engine.runs import RunStore  # noqa: E402
from export import convert  # noqa: E402
from export.checks import ParityError
from export.convert import bake_preprocessing, export_keras_model, keras_to_onnx
from export.onnx_metadata import cnnlab_metadata, read_metadata
from export.providers import create_session  # noqa: E402

CLASSES = [f"c{i}" for i in range(10)]
ROOT = Path(__file__).resolve().parents[1]


def tiny_cnn(size: int = 32, resize: int | None = None) -> Any:
    """A small Functional CNN with non-zero biases (so every parameter survives conversion)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    init = keras.initializers.RandomNormal(stddev=0.1)
    inputs = keras.Input((size, size, 3), name="image")
    x = inputs
    if resize:
        x = layers.Resizing(resize, resize)(x)
    x = layers.Conv2D(4, 3, padding="same", activation="relu", bias_initializer=init)(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", bias_initializer=init)(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10, activation="softmax", bias_initializer=init)(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


def raw_images(n: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def model() -> Any:
    return tiny_cnn()


@pytest.fixture(scope="module")
def float_export(
    model: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, convert.ExportResult]:
    path = tmp_path_factory.mktemp("float") / "tiny.onnx"
    result = export_keras_model(
        model,
        path,
        spec=get_preprocessing("unit"),
        classes=CLASSES,
        images=raw_images(),
        source_run="20260101-000000-simple-cnn-abcd",
        model_info={"name": "simple_cnn", "input_size": 32},
    )
    return path, result


# ------------------------------------------------------------------------------ the graph
def test_export_keeps_its_promises(
    model: Any, float_export: tuple[Path, convert.ExportResult]
) -> None:
    path, result = float_export
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["image"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [32, 32, 3]
    assert [o.name for o in proto.graph.output] == ["probabilities"]
    assert result.parity is not None and result.parity.passed
    assert (
        result.parity.max_abs_diff < 1e-5
        and result.parity.top1_agreement == 1.0
        and result.parity.n == 24
    )
    assert result.size_bytes == path.stat().st_size
    # dynamic batch: any batch size runs and matches Keras
    session = create_session(path, "cpu").session
    x = get_preprocessing("unit").apply(raw_images(7, seed=3))
    for batch in (1, 7):
        got = session.run(None, {"image": x[:batch]})[0]
        want = model.predict(x[:batch], verbose=0)
        assert got.shape == (batch, 10)
        assert np.abs(got - want).max() < 1e-5


def test_every_parameter_survives(
    model: Any, float_export: tuple[Path, convert.ExportResult]
) -> None:
    from export.info import onnx_info

    info = onnx_info(float_export[0])
    assert info["totals"]["params"] == model.count_params()
    # conv1 3×3×3→4 at 32×32: 32·32·4 outputs × 27; conv2 at 16×16: 16·16·8 × 36; dense 8→10
    assert info["totals"]["macs"] == 32 * 32 * 4 * 27 + 16 * 16 * 8 * 36 + 8 * 10


def test_metadata_round_trip(float_export: tuple[Path, convert.ExportResult]) -> None:
    path, result = float_export
    meta = cnnlab_metadata(read_metadata(path))
    assert meta["classes"] == CLASSES and meta["num_classes"] == 10
    assert meta["input_shape"] == [32, 32, 3] and meta["input_size"] == "32"
    assert meta["input_layout"] == "NHWC" and meta["input_dtype"] == "float32"
    assert meta["preprocessing"] == "unit" and meta["preprocessing_mode"] == "unit"
    assert meta["preprocessing_range"] == [0.0, 1.0] and meta["input_range"] == [0.0, 1.0]
    assert meta["preprocessing_baked"] is False
    assert meta["source_run"] == "20260101-000000-simple-cnn-abcd"
    assert meta["model"] == "simple_cnn"
    from engine import __version__

    assert meta["version"] == __version__
    assert read_metadata(path) == result.metadata


def test_sequential_and_mlp_export(tmp_path: Path) -> None:
    import keras

    from engine.models import build_mlp

    seq = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(2, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    mlp = build_mlp(units=(16,))
    for name, m in (("seq", seq), ("mlp", mlp)):
        result = export_keras_model(
            m,
            tmp_path / f"{name}.onnx",
            spec=get_preprocessing("unit"),
            classes=CLASSES,
            images=raw_images(8),
        )
        assert result.parity is not None and result.parity.passed, name


def test_resizing_inside_the_model(tmp_path: Path) -> None:
    result = export_keras_model(
        tiny_cnn(resize=48),
        tmp_path / "up.onnx",
        spec=get_preprocessing("mobilenet_v2"),
        classes=CLASSES,
        images=raw_images(8),
    )
    assert result.parity is not None and result.parity.passed
    assert result.input["shape"] == ["batch", 32, 32, 3]


@pytest.mark.parametrize(
    "name", ["unit", "mobilenet_v2", "resnet", "vgg16", "efficientnet", "mobilenet_v3"]
)
def test_with_preprocessing_equals_preprocess_then_model(
    name: str, float_export: tuple[Path, convert.ExportResult], tmp_path: Path
) -> None:
    spec = get_preprocessing(name)
    plain = onnx.load(float_export[0])
    baked = bake_preprocessing(onnx.load(float_export[0]), spec)
    convert.check_exported(baked, image_shape=(32, 32, 3), baked=True, num_classes=10)
    onnx.save(baked, tmp_path / "baked.onnx")
    raw = raw_images(16, seed=5)
    a = create_session(tmp_path / "baked.onnx", "cpu").session.run(None, {"image": raw})[0]
    b = create_session(plain.SerializeToString(), "cpu").session.run(
        None, {"image": spec.apply(raw)}
    )[0]
    assert np.abs(a - b).max() <= 1e-6


def test_with_preprocessing_end_to_end(model: Any, tmp_path: Path) -> None:
    raw = raw_images(16)
    result = export_keras_model(
        model,
        tmp_path / "m.uint8.onnx",
        spec=get_preprocessing("resnet"),
        classes=CLASSES,
        images=raw,
        with_preprocessing=True,
    )
    assert result.parity is not None and result.parity.passed
    meta = cnnlab_metadata(read_metadata(result.path))
    assert meta["preprocessing_baked"] is True and meta["input_dtype"] == "uint8"
    assert meta["input_range"] == [0.0, 255.0] and meta["preprocessing"] == "resnet"
    session = create_session(result.path, "cpu").session
    assert session.get_inputs()[0].type == "tensor(uint8)"
    want = model.predict(get_preprocessing("resnet").apply(raw), verbose=0)
    assert np.abs(session.run(None, {"image": raw})[0] - want).max() < 1e-4


# ------------------------------------------------------------------------------ failures
def test_parity_failure_writes_nothing(
    model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = convert.keras_predict
    monkeypatch.setattr(convert, "keras_predict", lambda m, x, batch_size=64: real(m, x) * 0.9)
    target = tmp_path / "out" / "bad.onnx"
    with pytest.raises(ParityError, match="parity check failed.*nothing written"):
        export_keras_model(
            model, target, spec=get_preprocessing("unit"), classes=CLASSES, images=raw_images(8)
        )
    assert list(target.parent.iterdir()) == []  # neither the file nor a temp file
    # a looser tolerance, or no check, lets it through and says so
    result = export_keras_model(
        model,
        target,
        spec=get_preprocessing("unit"),
        classes=CLASSES,
        images=raw_images(8),
        tolerance=0.5,
    )
    assert result.parity is not None and result.parity.passed and result.parity.max_abs_diff > 1e-4
    result = export_keras_model(
        model,
        target,
        spec=get_preprocessing("unit"),
        classes=CLASSES,
        images=raw_images(8),
        parity_check=False,
    )
    assert result.parity is None and any("skipped" in n for n in result.notes)


def test_bad_opset(model: Any) -> None:
    with pytest.raises(UsageError, match="opset 30"):
        keras_to_onnx(model, opset=30)


# ------------------------------------------------------------------------------ runs and the CLI
@pytest.fixture
def run_dir(model: Any, tmp_path: Path) -> tuple[Path, str]:
    """A finished simple-CNN-like run on synthetic:200 (its test split: 40 images)."""
    from engine.data import load_dataset

    store = RunStore(tmp_path / "runs")
    config = {"data": "synthetic:200", "subset": None, "seed": 0, "val_split": 0.2}
    run = store.create("simple-cnn", title="tiny", config=config)
    data = load_dataset("synthetic:200")
    probs = model.predict(get_preprocessing("unit").apply(data.x_test), verbose=0)
    run.update(
        status="finished",
        model={
            "name": "simple_cnn",
            "backbone": None,
            "input_size": 32,
            "preprocessing": "unit",
            "weights": None,
            "random_init": False,
        },
        data={"source": "synthetic:200", "classes": data.classes, "image_shape": [32, 32, 3]},
        metrics={"test_accuracy": float((probs.argmax(1) == data.y_test).mean())},
    )
    model.save(run.model_path)
    return store.root, run.id


def test_cli_export_then_eval_fill_run_json(
    run_dir: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, run_id = run_dir
    assert main(["export", run_id, "--runs-dir", str(root), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (
        printed["path"] == "model.onnx"
        and printed["parity"]["passed"]
        and printed["parity"]["n"] == 40
    )
    assert main(["export", run_id, "--runs-dir", str(root), "--with-preprocessing"]) == 0
    capsys.readouterr()
    record = RunStore(root).open(run_id).record["onnx"]
    assert record["schema"] == 1
    assert [e["path"] for e in record["exports"]] == ["model.onnx", "model.uint8.onnx"]
    for entry in record["exports"]:
        assert {
            "opset",
            "with_preprocessing",
            "parity",
            "export_time",
            "size_bytes",
            "input",
            "output",
        } <= set(entry)
        assert entry["parity"]["top1_agreement"] == 1.0
    assert (root / run_id / "model.uint8.onnx").is_file()

    # eval: by run id (its latest export, the uint8 one), data from the run, stored in the run
    assert (
        main(
            [
                "eval",
                run_id,
                "--runs-dir",
                str(root),
                "--json",
                "--latency-runs",
                "5",
                "--provider",
                "cpu",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    run = RunStore(root).open(run_id)
    assert result["accuracy"] == pytest.approx(run.record["metrics"]["test_accuracy"])
    assert result["keras_test_accuracy"] == run.record["metrics"]["test_accuracy"]
    assert result["n"] == 40 and sum(map(sum, result["confusion_matrix"])) == 40
    assert result["provider"]["used"] == ["cpu"] and result["provider"]["requested"] == "cpu"
    assert result["latency_ms"]["runs"] == 5 and result["latency_ms"]["p50"] > 0
    assert result["throughput"]["images_per_s"] > 0
    (stored,) = run.record["onnx"]["evals"]
    assert stored["file"] == "model.uint8.onnx" and stored["accuracy"] == result["accuracy"]
    assert set(stored["per_class_accuracy"]) == set(run.record["data"]["classes"])
    # the float file, fed through the preprocessing named in its metadata, agrees
    assert (
        main(
            [
                "eval",
                str(root / run_id / "model.onnx"),
                "--runs-dir",
                str(root),
                "--json",
                "--latency-runs",
                "0",
            ]
        )
        == 0
    )
    again = json.loads(capsys.readouterr().out)
    assert again["accuracy"] == result["accuracy"] and again["preprocessing"] == {
        "name": "unit",
        "baked": False,
    }
    assert len(RunStore(root).open(run_id).record["onnx"]["evals"]) == 2


def test_cli_parity_failure_exit_1_and_run_untouched(
    run_dir: tuple[Path, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, run_id = run_dir
    real = convert.keras_predict
    monkeypatch.setattr(convert, "keras_predict", lambda m, x, batch_size=64: real(m, x) + 0.01)
    assert main(["export", run_id, "--runs-dir", str(root)]) == 1
    err = capsys.readouterr().err
    assert "parity check failed" in err and "Traceback" not in err
    assert not (root / run_id / "model.onnx").exists()
    assert RunStore(root).open(run_id).record["onnx"] is None


def test_cli_eval_unavailable_provider(
    run_dir: tuple[Path, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import export.providers as providers

    root, run_id = run_dir
    assert main(["export", run_id, "--runs-dir", str(root), "--no-parity-check"]) == 0
    monkeypatch.setattr(providers, "available_providers", lambda: ["CPUExecutionProvider"])
    assert main(["eval", run_id, "--runs-dir", str(root), "--provider", "tensorrt"]) == 1
    assert "tensorrt" in capsys.readouterr().err


def test_bare_keras_file(model: Any, tmp_path: Path) -> None:
    path = tmp_path / "bare.keras"
    model.save(path)
    with pytest.raises(UsageError, match="--data"):
        convert.export(path)
    result = convert.export(path, data="synthetic:200", preprocessing="mobilenet_v2")
    assert result.path == tmp_path / "bare.onnx" and result.run_id is None
    assert cnnlab_metadata(read_metadata(result.path))["classes"][0] == "disc"


def test_importing_export_is_light() -> None:
    code = (
        "import sys, export.cli, export.info, export.evaluate, export.convert, export.providers\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'tf2onnx', 'onnxruntime', 'textual', 'tui') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
