"""Give a randomly initialised backbone real BatchNorm statistics, so its outputs mean something.

With `weights=None`, Keras Applications backbones keep BatchNorm's initial moving statistics
(mean 0, variance 1). At 32×32 the signal then fades through the depth: MobileNetV2, V3 and
EfficientNet give pooled features around 1e-13 to 1e-7 for any image, so every image gets the
same probabilities and an ONNX parity check compares constants. One forward pass in training
mode with momentum 0 sets each BatchNorm's statistics to those of real inputs (data-dependent
initialisation), layer after layer. Used by the export tests and the benchmark; imports Keras.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def batchnorm_layers(model: Any) -> list[Any]:
    """Every BatchNormalization layer in `model`, nested models included."""
    import keras

    found: list[Any] = []

    def walk(layer: Any) -> None:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        for sub in getattr(layer, "layers", []) or []:
            walk(sub)

    walk(model)
    return found


def calibrate_batchnorm(model: Any, x: np.ndarray) -> int:
    """Set the moving mean/variance of every BatchNorm in `model` from one batch `x` (already
    preprocessed, at the model's input size). Returns how many layers were set.

    Call it on the backbone itself (e.g. `build_transfer(...).base`): a model that calls its
    backbone with `training=False` would keep it in inference mode.
    """
    layers = batchnorm_layers(model)
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    was_trainable = model.trainable
    try:
        model.trainable = True  # frozen BatchNorm layers ignore training=True in Keras 3
        for layer in layers:
            layer.momentum = 0.0
        model(np.asarray(x, dtype=np.float32), training=True)
    finally:
        model.trainable = was_trainable
        for layer, (momentum, trainable) in zip(layers, saved, strict=True):
            layer.momentum = momentum
            layer.trainable = trainable
    return len(layers)
