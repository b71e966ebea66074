"""`export.evaluate` on hand-built ONNX files (no TensorFlow): metrics, class order from the
metadata, preprocessing from the metadata or the caller, provider errors, latency figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.errors import DataError, UsageError
from export.evaluate import classification_metrics, evaluate, percentiles_ms
from export.providers import ProviderError

CPU_ONLY = ["CPUExecutionProvider"]
W = np.array([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]], np.float32)


def colour_model(path: Path, metadata: dict[str, str] | None = None, uint8: bool = False) -> Path:
    """image [batch, 4, 4, 3] → mean colour → ×W → softmax: predicts the dominant channel."""
    nodes = []
    source = "image"
    if uint8:
        nodes.append(helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT))
        source = "image_f"
    nodes += [
        helper.make_node("ReduceMean", [source, "axes"], ["mean"], keepdims=0),
        helper.make_node("MatMul", ["mean", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "colour",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.UINT8 if uint8 else TensorProto.FLOAT, ["batch", 4, 4, 3]
            )
        ],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])],
        initializer=[
            numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
            numpy_helper.from_array(W, "w"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.save(model, path)
    return path


def colour_images(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 images, each dominated by channel label (0 red, 1 green, 2 blue)."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 3
    x = rng.integers(0, 60, (n, 4, 4, 3), dtype=np.uint8)
    x[np.arange(n), :, :, labels] += 180
    return x, labels


CLASSES = ["red", "green", "blue"]


def meta(
    classes: list[str] = CLASSES, preprocessing: str = "unit", baked: bool = False
) -> dict[str, str]:
    return {
        "cnnlab.classes": json.dumps(classes),
        "cnnlab.preprocessing": preprocessing,
        "cnnlab.preprocessing_baked": "true" if baked else "false",
    }


def test_metrics_from_metadata(tmp_path: Path) -> None:
    path = colour_model(tmp_path / "m.onnx", meta())
    x, y = colour_images()
    result = evaluate(path, images=x, labels=y, classes=CLASSES, available=CPU_ONLY, latency_runs=7)
    assert result["accuracy"] == 1.0 and result["n"] == 30
    assert result["per_class_accuracy"] == {"red": 1.0, "green": 1.0, "blue": 1.0}
    assert result["confusion_matrix"] == [[10, 0, 0], [0, 10, 0], [0, 0, 10]]
    assert result["preprocessing"] == {"name": "unit", "baked": False}
    assert result["provider"]["used"] == ["cpu"] and result["provider"]["requested"] == "auto"
    lat = result["latency_ms"]
    assert lat["runs"] == 7 and 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]
    # 30 images are less than one timing call's work: they run as one batch of 30, untimed.
    assert result["throughput"]["batch"] == 30 and result["throughput"]["images_per_s"] > 0
    assert result["run_id"] is None and result["stored"] is False
    json.dumps(result)
    given = evaluate(path, images=x, labels=y, classes=CLASSES, available=CPU_ONLY, batch_size=7)
    assert given["throughput"]["batch"] == 7 and given["accuracy"] == 1.0


def test_class_order_is_mapped_and_foreign_classes_refused(tmp_path: Path) -> None:
    # The file's outputs are red, green, blue; the data lists its classes as green, blue, red.
    path = colour_model(tmp_path / "m.onnx", meta(classes=["red", "green", "blue"]))
    x, y = colour_images()
    data_classes = ["green", "blue", "red"]
    y_data = np.array([data_classes.index(CLASSES[i]) for i in y])
    result = evaluate(
        path, images=x, labels=y_data, classes=data_classes, available=CPU_ONLY, latency_runs=0
    )
    assert result["accuracy"] == 1.0
    assert result["confusion_matrix"][0] == [10, 0, 0]  # rows follow the data's order
    with pytest.raises(DataError, match="not the data's"):
        evaluate(
            path,
            images=x,
            labels=y,
            classes=["cat", "dog", "frog"],
            available=CPU_ONLY,
            latency_runs=0,
        )


def test_a_file_without_metadata_needs_preprocessing(tmp_path: Path) -> None:
    path = colour_model(tmp_path / "foreign.onnx")
    x, y = colour_images()
    with pytest.raises(UsageError, match="--preprocessing"):
        evaluate(path, images=x, labels=y, classes=CLASSES, available=CPU_ONLY)
    result = evaluate(
        path,
        images=x,
        labels=y,
        classes=CLASSES,
        preprocessing="mobilenet_v2",
        available=CPU_ONLY,
        latency_runs=0,
    )
    assert result["accuracy"] == 1.0 and result["preprocessing"]["name"] == "mobilenet_v2"


def test_baked_file_gets_raw_pixels(tmp_path: Path) -> None:
    path = colour_model(tmp_path / "m.uint8.onnx", meta(baked=True), uint8=True)
    x, y = colour_images()
    result = evaluate(path, images=x, labels=y, classes=CLASSES, available=CPU_ONLY, latency_runs=0)
    assert result["accuracy"] == 1.0 and result["preprocessing"]["baked"] is True
    assert result["throughput"]["includes_preprocessing"] is True


def test_provider_errors(tmp_path: Path) -> None:
    path = colour_model(tmp_path / "m.onnx", meta())
    x, y = colour_images()
    with pytest.raises(ProviderError, match="cuda"):
        evaluate(path, images=x, labels=y, classes=CLASSES, provider="cuda", available=CPU_ONLY)


def test_wrong_image_size_and_bad_files(tmp_path: Path) -> None:
    path = colour_model(tmp_path / "m.onnx", meta())
    x = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(DataError, match=r"takes \[4, 4, 3\] images"):
        evaluate(path, images=x, labels=np.zeros(4, int), classes=CLASSES, available=CPU_ONLY)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    from export.info import OnnxFileError

    with pytest.raises(OnnxFileError):
        evaluate(bad, images=x, labels=np.zeros(4, int))


def test_helpers() -> None:
    assert percentiles_ms([0.001] * 10)["p50"] == pytest.approx(1.0)
    m = classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]), ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(2 / 3) and m["per_class_accuracy"]["c"] is None
