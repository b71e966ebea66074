"""The numpy preprocessing equals Keras' own preprocess_input, and produces the stated range."""

from __future__ import annotations

import numpy as np
import pytest

from engine.backbones import get_backbone, list_backbones
from engine.preprocessing import get_preprocessing, list_preprocessing


@pytest.mark.parametrize("name", [n for n in list_preprocessing() if n != "unit"])
def test_numpy_matches_keras(name: str) -> None:
    spec = get_preprocessing(name)
    x = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3)).astype(np.uint8)
    np.testing.assert_allclose(spec.apply(x), spec.keras_function()(x), rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("name", list_preprocessing())
def test_output_range_is_what_extreme_pixels_give(name: str) -> None:
    spec = get_preprocessing(name)
    x = np.zeros((1, 2, 2, 3), np.uint8)
    x[0, 0, 0] = 255  # one white pixel, one black: min and max per channel are both reached
    out = spec.apply(x)
    lo, hi = spec.output_range
    assert out.min() == pytest.approx(lo, abs=1e-4)
    assert out.max() == pytest.approx(hi, abs=1e-4)


def test_each_backbone_has_its_familys_preprocessing() -> None:
    expected = {
        "MobileNetV2": (-1, 1),
        "ResNet50": (-123.68, 151.061),
        "VGG16": (-123.68, 151.061),
        "EfficientNetB0": (0, 255),
        "MobileNetV3Large": (0, 255),
    }
    for name, rng in expected.items():
        assert get_backbone(name).preprocess.output_range == pytest.approx(rng)
    assert all(get_backbone(b).preprocess.name != "unit" for b in list_backbones())
