"""ImageNet weights: Keras' cache first, a clear message when they cannot be had, paths, none."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.backbones import get_backbone
from engine.errors import WeightsError
from engine.weights import build_backbone_checked, is_cached, resolve_weights, weights_cache_path


def test_cache_file_names_follow_keras(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = get_backbone("MobileNetV2")
    assert (
        weights_cache_path(spec, 32)
        == tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    )
    assert weights_cache_path(spec, 160).name.endswith("_1.0_160_no_top.h5")
    assert (
        weights_cache_path(get_backbone("ResNet50"), 32).name
        == "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    assert not is_cached(spec, 32)
    (tmp_path / "models").mkdir()
    weights_cache_path(spec, 32).write_bytes(b"x")
    assert is_cached(spec, 32)


def test_offline_and_uncached_says_which_file_to_put_where(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = get_backbone("ResNet50")
    calls = []

    def offline_build(self: object, input_size: int, weights: str | None) -> None:
        calls.append(weights)
        raise Exception(
            "URL fetch failure on https://example.invalid/w.h5: None -- [Errno -3] Temporary failure in name resolution"
        )

    monkeypatch.setattr(type(spec), "build", offline_build)
    with pytest.raises(WeightsError) as err:
        build_backbone_checked(spec, 32, "imagenet")
    message = str(err.value)
    assert calls == ["imagenet"]
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path / "models") in message and "--weights none" in message
    assert "name resolution" in message and "\n" not in message


def test_weights_none_and_paths() -> None:
    assert resolve_weights("none") is None
    assert resolve_weights("imagenet") == "imagenet"
    with pytest.raises(WeightsError, match="does not exist"):
        resolve_weights("/nonexistent/w.weights.h5")


def test_weights_from_a_path_are_loaded(tmp_path: Path) -> None:
    import numpy as np

    spec = get_backbone("MobileNetV2")
    base = spec.build(32, None)
    path = tmp_path / "mnv2.weights.h5"
    base.save_weights(path)
    again = build_backbone_checked(spec, 32, str(path))
    np.testing.assert_array_equal(base.get_weights()[0], again.get_weights()[0])
