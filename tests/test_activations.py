"""export.activations: feature maps from onnxruntime equal a numpy forward pass of a hand-built
ONNX model; layouts are tracked through Transpose; top-5 and metadata are honoured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_inspect_support import HAND_META, hand_built_onnx, reference_forward

from engine.errors import CnnlabError
from export.activations import (
    ActivationProbe,
    activation_report,
    feature_maps,
    map_stats,
    top_k,
)


@pytest.fixture
def probe(tmp_path: Path) -> ActivationProbe:
    return ActivationProbe.open(hand_built_onnx(tmp_path / "hand.onnx", HAND_META))


def image(seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((4, 4, 3)) * 255).astype(np.uint8)


def test_graph_analysis(probe: ActivationProbe) -> None:
    assert probe.input is not None
    assert (probe.input.layout, probe.input.size, probe.input.dtype) == ("NHWC", (4, 4), "float32")
    by_node = {t.node: t for t in probe.tensors}
    assert by_node["conv"].layout == "NCHW" and by_node["conv"].shape == [1, 2, 4, 4]
    assert by_node["pool"].shape == [1, 2, 2, 2]
    assert by_node["dense"].layout == "NC"
    assert "to_nchw" not in by_node  # a Transpose is plumbing, not a feature map
    assert probe.class_names() == ["a", "b", "c"]
    assert probe.preprocessing_name() == "unit"


def test_feature_maps_equal_numpy(probe: ActivationProbe) -> None:
    img = image(1)
    ref = reference_forward(img)
    outputs = probe.run(img)
    conv = feature_maps(outputs[probe.find("conv").name], "NCHW")
    assert conv.shape == (2, 4, 4)
    np.testing.assert_allclose(conv, ref["conv"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(feature_maps(outputs["pool"], "NCHW"), ref["pool"], atol=1e-5)
    np.testing.assert_allclose(probe.probabilities(outputs), ref["probs"], atol=1e-6)


def test_report_and_top5(probe: ActivationProbe) -> None:
    img = image(2)
    ref = reference_forward(img)
    report = activation_report(probe, img, "relu", label=1, channels=(1, 2))
    assert report["maps_shape"] == [2, 4, 4] and report["channels"] == [1, 2]
    np.testing.assert_allclose(report["maps"][0], ref["relu"][1], atol=1e-4)
    top = report["prediction"]["top5"]
    assert [t["index"] for t in top] == list(np.argsort(-ref["probs"]))
    assert report["prediction"]["correct"] == (top[0]["index"] == 1)
    assert report["image"]["class"] == "b"
    assert report["stats"][0]["channel"] == 1
    assert "maps" not in activation_report(probe, img, "relu", values=False)


def test_helpers() -> None:
    probs = np.array([0.1, 0.5, 0.05, 0.3, 0.02, 0.03])
    assert [t["class"] for t in top_k(probs, list("abcdef"))] == ["b", "d", "a", "c", "f"]
    nhwc = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    assert feature_maps(nhwc, "NHWC").shape == (4, 2, 3)
    assert feature_maps(np.ones((1, 7)), "NC").shape == (7, 1, 1)
    stats = map_stats(np.array([[[0.0, 1.0]], [[0.0, 0.0]]]))
    assert stats[1]["zeros"] == 1.0 and stats[0]["max"] == 1.0


def test_lookup_and_errors(tmp_path: Path, probe: ActivationProbe) -> None:
    assert probe.find("relu").op == "Relu"
    with pytest.raises(CnnlabError, match="no tensor"):
        probe.find("nope")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CnnlabError):
        ActivationProbe.open(bad)
    with pytest.raises(CnnlabError):
        ActivationProbe.open(tmp_path / "missing.onnx")


def test_exported_keras_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    """On a real tf2onnx export: Keras layer names find their tensors; maps are NCHW inside."""
    from test_inspect_support import trained_run

    run = trained_run(tmp_path_factory)
    probe = ActivationProbe.open(run / "model.onnx")
    assert probe.input is not None and probe.input.layout == "NHWC"
    assert probe.preprocessing_name() == "unit" and len(probe.class_names()) == 10
    report = activation_report(probe, image(3).repeat(8, 0).repeat(8, 1), "conv2", values=False)
    assert report["maps_shape"] == [64, 16, 16]
    assert sum(t["probability"] for t in report["prediction"]["top5"]) <= 1.0 + 1e-6
