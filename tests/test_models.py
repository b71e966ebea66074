"""Parameter counts the assignment states, to the parameter."""

from __future__ import annotations

import pytest

from engine.models import build_mlp, build_simple_cnn, build_transfer, count_params, unfreeze_last


def test_simple_cnn_has_the_assignments_2122186_parameters() -> None:
    model = build_simple_cnn()
    assert count_params(model) == {"total": 2_122_186, "trainable": 2_122_186, "frozen": 0}
    assert [layer.name for layer in model.layers][1:] == [
        "conv1",
        "pool1",
        "conv2",
        "pool2",
        "flatten",
        "dense1",
        "predictions",
    ]
    assert model.get_layer("flatten").output.shape[-1] == 8 * 8 * 64


def test_mlp_is_dense_only() -> None:
    model = build_mlp(units=(512, 256))
    assert count_params(model)["total"] == 32 * 32 * 3 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10
    assert not any("Conv" in type(layer).__name__ for layer in model.layers)


def test_frozen_mobilenetv2_then_last_ten_layers_unfrozen() -> None:
    tm = build_transfer("MobileNetV2", weights="none", head="gap-dense10")
    assert count_params(tm.model) == {"total": 2_270_794, "trainable": 12_810, "frozen": 2_257_984}
    names = unfreeze_last(tm, 10)
    assert len(names) == 10 and names[-1] == "out_relu"
    assert count_params(tm.model)["trainable"] == 745_290


@pytest.mark.parametrize(
    ("backbone", "millions"),
    [("ResNet50", 24.1), ("VGG16", 14.8), ("EfficientNetB0", 4.4), ("MobileNetV2", 2.6)],
)
def test_comparison_head_reproduces_the_parameter_column(backbone: str, millions: float) -> None:
    tm = build_transfer(backbone, weights="none", head="gap-dense256-dense10")
    assert round(count_params(tm.model)["total"] / 1e6, 1) == millions


def test_head_shares_weights_with_the_full_model() -> None:
    import numpy as np

    tm = build_transfer("MobileNetV2", weights="none")
    x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    full = tm.model.predict(x, verbose=0)
    via_features = tm.head.predict(tm.features.predict(x, verbose=0), verbose=0)
    np.testing.assert_allclose(full, via_features, atol=1e-5)


def test_upscaling_inside_the_model() -> None:
    tm = build_transfer("MobileNetV2", weights="none", input_size=64)
    assert tm.model.input.shape[1:] == (32, 32, 3)
    assert tm.model.get_layer("upscale").output.shape[1:3] == (64, 64)


def test_registered_builders_make_the_same_models_from_a_config() -> None:
    from engine.config import ExperimentConfig
    from engine.models import MODELS, get_model

    assert MODELS.names() == ["simple_cnn", "mlp", "transfer"]
    assert [get_model(n).uses_backbone for n in MODELS.names()] == [False, False, True]
    config = ExperimentConfig(weights="none", mlp_units=[64])
    cnn = get_model("simple_cnn").build(config, (32, 32, 3), 10)
    assert count_params(cnn)["total"] == 2_122_186
    mlp = get_model("mlp").build(config, (32, 32, 3), 10)
    assert count_params(mlp)["total"] == 32 * 32 * 3 * 64 + 64 + 64 * 10 + 10
    tm = get_model("transfer").build(config.replace(backbone="MobileNetV2"), (32, 32, 3), 10)
    assert count_params(tm.model) == {"total": 2_270_794, "trainable": 12_810, "frozen": 2_257_984}


def test_optimizers_are_registered_builders() -> None:
    import keras

    from engine.optimizers import OPTIMIZERS, build_optimizer

    assert OPTIMIZERS.names() == ["adam", "sgd", "rmsprop"]
    sgd = build_optimizer("sgd", 0.01)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == pytest.approx(0.9)
    assert float(sgd.learning_rate) == pytest.approx(0.01)
    assert isinstance(build_optimizer("adam", 1e-3), keras.optimizers.Adam)
    assert isinstance(build_optimizer("rmsprop", 1e-3), keras.optimizers.RMSprop)
    with pytest.raises(KeyError, match="adam, sgd, rmsprop"):
        build_optimizer("lion", 1e-3)


def test_config_choices_come_from_the_registries_without_tensorflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys, engine.config as c, engine.experiments, engine.training; "
        "assert c.MODELS == ('simple_cnn', 'mlp', 'transfer'), c.MODELS; "
        "assert c.OPTIMIZERS == ('adam', 'sgd', 'rmsprop'), c.OPTIMIZERS; "
        "assert c.HEADS == ('gap-dense10', 'gap-dense256-dense10'), c.HEADS; "
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
