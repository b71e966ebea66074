"""engine.inspect: the layer table and its arithmetic equal Keras' own counts; the CLI's JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_inspect_support import HAND_META, hand_built_onnx, trained_run

from engine import inspect
from export import onnx_layers

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def simple_cnn() -> Any:
    from engine.models import build_simple_cnn

    return build_simple_cnn()


@pytest.fixture(scope="module")
def mobilenet_frozen() -> Any:
    from engine.models import build_transfer

    return build_transfer("MobileNetV2", input_size=32, weights="none").model


def test_simple_cnn_table_matches_keras(simple_cnn: Any) -> None:
    summary = inspect.summarize_keras_model(simple_cnn)
    json.dumps(summary)  # summary.json must be JSON-able
    assert summary["totals"]["total"] == simple_cnn.count_params() == 2_122_186
    assert summary["totals"]["trainable"] == 2_122_186
    assert sum(r["params"] for r in summary["layers"]) == 2_122_186
    for row in summary["layers"]:
        for key in (
            "name",
            "type",
            "output_shape",
            "params",
            "trainable",
            "macs",
            "config",
            "inbound",
        ):
            assert key in row
    by_name = {r["name"]: r for r in summary["layers"]}
    assert by_name["conv2"]["output_shape"] == [None, 16, 16, 64]
    assert by_name["conv2"]["inbound"] == ["pool1"]
    assert by_name["conv2"]["config"]["kernel_size"] == [3, 3]


def test_arithmetic_spells_out_the_assignment_numbers(simple_cnn: Any) -> None:
    summary = inspect.summarize_keras_model(simple_cnn)
    conv2 = inspect.explain(inspect.find_layer(summary, "conv2"))
    assert conv2["params"] == {"formula": "3·3·32·64 + 64", "value": 18_496, "reported": 18_496}
    assert conv2["computed_output_shape"] == [16, 16, 64]
    assert conv2["checks"] == {"params": True, "output_shape": True}
    assert any("(16 − 3 + 2·1)/1 + 1 = 16" in line for line in conv2["lines"])
    assert conv2["macs"]["value"] == 16 * 16 * 3 * 3 * 32 * 64
    dense = inspect.explain(inspect.find_layer(summary, "dense1"))
    assert dense["params"]["formula"] == "4,096·512 + 512"
    assert dense["params"]["value"] == 2_097_664
    flat = inspect.explain(inspect.find_layer(summary, "flatten"))
    assert "8·8·64 = 4,096" in flat["lines"][0]
    pool = inspect.explain(inspect.find_layer(summary, "pool1"))
    assert pool["computed_output_shape"] == [16, 16, 32]
    # Every layer's computed figures equal what Keras reports.
    for row in summary["layers"]:
        assert all(inspect.explain(row)["checks"].values()), row["name"]


def test_mobilenet_frozen_counts_and_every_layer(mobilenet_frozen: Any) -> None:
    summary = inspect.summarize_keras_model(mobilenet_frozen)
    totals = summary["totals"]
    assert (totals["trainable"], totals["total"], totals["frozen"]) == (
        12_810,
        2_270_794,
        2_257_984,
    )
    # Nested backbone flattened: its layers are rows, marked with their parent, frozen.
    conv1 = inspect.find_layer(summary, "Conv1")
    assert conv1["parent"].startswith("mobilenetv2")
    assert conv1["trainable"] is False and conv1["trainable_params"] == 0
    assert conv1["output_shape"] == [None, 16, 16, 32]
    predictions = inspect.find_layer(summary, "predictions")
    assert predictions["trainable_params"] == 1280 * 10 + 10
    # The head's input is the pooled output of the backbone's last layer, by name.
    gap = inspect.find_layer(summary, "gap")
    assert gap["inbound"] == ["out_relu"]
    checked = 0
    for row in summary["layers"]:
        explained = inspect.explain(row)
        assert all(explained["checks"].values()), (row["name"], explained)
        checked += bool(explained["checks"])
    assert checked > 100  # convolutions, depthwise, batch norms, dense
    dw = inspect.explain(inspect.find_layer(summary, "expanded_conv_depthwise"))
    assert dw["params"]["value"] == 3 * 3 * 32


def test_kernels_read_with_h5py_equal_keras(tmp_path: Path, mobilenet_frozen: Any) -> None:
    path = tmp_path / "model.keras"
    mobilenet_frozen.save(path)
    base = next(layer for layer in mobilenet_frozen.layers if hasattr(layer, "layers"))
    expected = base.get_layer("Conv1").get_weights()[0]
    assert np.array_equal(inspect.load_kernel(path, "Conv1"), expected)
    block = base.get_layer("block_16_project").get_weights()[0]
    assert np.array_equal(inspect.load_kernel(path, "block_16_project"), block)
    depthwise = inspect.load_kernel(path, "block_1_depthwise")
    assert depthwise.shape == (3, 3, 1, 96)  # one filter per channel
    head = inspect.load_keras_weights(path, "predictions")
    assert [w.shape for w in head] == [(1280, 10), (10,)]
    with pytest.raises(inspect.CnnlabError):
        inspect.load_kernel(path, "no_such_layer")


def test_onnx_table_by_hand(tmp_path: Path) -> None:
    path = hand_built_onnx(tmp_path / "hand.onnx", HAND_META)
    summary = onnx_layers.summarize_onnx(path)
    rows = {r["name"]: r for r in summary["layers"]}
    assert summary["totals"]["total"] == 56 + 27  # int64 shape constant is not a parameter
    conv = rows["conv"]
    assert conv["output_shape"] == [1, 2, 4, 4] and conv["params"] == 56
    assert conv["macs"] == 4 * 4 * 3 * 3 * 3 * 2
    assert rows["dense"]["macs"] == 8 * 3 and rows["dense"]["params"] == 27
    assert rows["pool"]["output_shape"] == [1, 2, 2, 2]
    assert rows["relu"]["inbound"] == ["conv"]
    explained = onnx_layers.explain(conv)
    assert explained["params"]["formula"] == "3·3·3·2 + 2"
    assert explained["checks"] == {"output_shape": True, "params": True}
    assert onnx_layers.explain(rows["dense"])["params"]["value"] == 27
    kernel = onnx_layers.load_kernel(path, "conv")
    assert kernel.shape == (3, 3, 3, 2)
    assert np.array_equal(kernel[..., 1], np.transpose(hand_weights()[1], (1, 2, 0)))
    assert inspect.conv_layers(summary) == ["conv"]


def hand_weights() -> np.ndarray:
    from test_inspect_support import CONV_W

    return CONV_W


def test_filter_report_and_preprocess_stats() -> None:
    kernel = np.arange(3 * 3 * 4 * 5, dtype=np.float32).reshape(3, 3, 4, 5) - 80
    report = inspect.filter_report(kernel, layer="c", start=1, count=2, channel=3)
    assert report["mode"] == "channel" and report["range"] == [1, 3]
    first = report["filters"][0]
    assert first["index"] == 1 and np.allclose(first["values"], kernel[:, :, 3, 1])
    assert first["std"] == pytest.approx(float(kernel[..., 1].std()), rel=1e-5)
    with pytest.raises(inspect.CnnlabError):
        inspect.filter_report(kernel, channel=4)
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    images[..., 0] = 255
    stats = inspect.preprocess_stats(images, "resnet", bins=4)
    assert stats["expected_range"] == pytest.approx([-123.68, 151.061])
    after = {c["name"]: c for c in stats["after"]["channels"]}
    assert list(after) == ["B", "G", "R"]  # caffe swaps to BGR
    assert after["R"]["max"] == pytest.approx(255 - 123.68, abs=1e-3)
    assert after["B"]["max"] == pytest.approx(-103.939, abs=1e-3)
    assert stats["mistake"]["range"] == [0.0, 1.0]
    assert sum(stats["before"]["channels"][0]["counts"]) == 2 * 4 * 4
    assert "mistake" not in inspect.preprocess_stats(images, "unit")


def test_preprocessing_results_from_runs(tmp_path: Path) -> None:
    from conftest import populate_runs

    root = populate_runs(tmp_path / "runs")
    results = inspect.preprocessing_results(root)
    assert results["ResNet50"]["before"] == 0.2702 and results["ResNet50"]["after"] == 0.6601
    assert results["ResNet50"]["random_init"] is True
    assert results["MobileNetV2"]["after"] == 0.555  # the single transfer run


# ------------------------------------------------------------------------------------ the CLI


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    from cnnlab.cli import main

    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_on_a_trained_run(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    run = trained_run(tmp_path_factory)
    out = cli_json(capsys, "inspect", str(run), "--layer", "conv2")
    assert out["kind"] == "run" and out["totals"]["total"] == 2_122_186
    assert out["layer"]["params"]["value"] == 18_496 and out["layer"]["checks"]["params"]
    assert out["phases"][0]["trainable_layers"] == ["conv1", "conv2", "dense1", "predictions"]
    filters = cli_json(capsys, "filters", str(run), "--layer", "conv1", "--count", "4")
    assert filters["kernel_shape"] == [3, 3, 3, 32] and filters["mode"] == "rgb"
    assert len(filters["filters"]) == 4 and len(filters["filters"][0]["values"]) == 3
    listed = cli_json(capsys, "filters", str(run))
    assert listed["convolutions"] == ["conv1", "conv2"]
    onnx_table = cli_json(capsys, "inspect", str(run / "model.onnx"))
    assert onnx_table["kind"] == "onnx" and onnx_table["totals"]["macs"] == out["totals"]["macs"]
    tensors = cli_json(capsys, "activations", str(run))["tensors"]
    assert any(t["op"] == "Conv" and t["layout"] == "NCHW" for t in tensors)


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnlab.cli import main

    assert main(["inspect", str(tmp_path / "nope"), "--runs-dir", str(tmp_path)]) == 1
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["inspect", str(bad)]) == 1
    assert main(["preprocess-stats", "--backbone", "NoSuchNet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "NoSuchNet" in err


def test_cli_activations_and_preprocess_stats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = hand_built_onnx(tmp_path / "hand.onnx", HAND_META)
    images = (np.random.default_rng(0).random((6, 4, 4, 3)) * 255).astype(np.uint8)
    samples = tmp_path / "samples.npz"
    np.savez(
        samples,
        images=images,
        labels=np.array([0, 1, 2, 0, 1, 2]),
        classes=np.array(["a", "b", "c"]),
    )
    out = cli_json(
        capsys,
        "activations",
        str(path),
        "--layer",
        "relu",
        "--image",
        "2",
        "--samples-file",
        str(samples),
    )
    assert out["maps_shape"] == [2, 4, 4] and out["image"]["class"] == "c"
    assert [t["class"] for t in out["prediction"]["top5"]][:3] and len(
        out["prediction"]["top5"]
    ) == 3
    assert np.array(out["maps"]).shape == (2, 4, 4)
    stats = cli_json(
        capsys, "preprocess-stats", "--backbone", "MobileNetV2", "--samples-file", str(samples),
        "--runs-dir", str(tmp_path),
    )  # fmt: skip
    assert stats["backbone"] == "MobileNetV2" and stats["count"] == 6
    assert stats["after"]["range"] == [-1.0, 1.0] and stats["assignment"]["after"] == 0.2994


def test_engine_inspect_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnlab.cli import main

    path = hand_built_onnx(tmp_path / "hand.onnx")
    assert main(["inspect", str(path), "--layer", "conv"]) == 0
    out = capsys.readouterr().out
    assert "3·3·3·2 + 2 = 56" in out and "Gemm" in out and "MACs" in out
