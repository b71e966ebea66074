"""Model builders: the assignment's simple CNN, an MLP baseline, and transfer models.

Each is registered in MODELS by the name `config.model` takes, next to its builder, with what
training needs to know about it (`uses_backbone`); adding a model is adding one decorated
function. Transfer heads are registered in HEADS.

Every builder returns a Functional Keras model (tf2onnx cannot convert Keras 3 Sequential
models) whose input is named `image` and takes *preprocessed* float pixels at the data's size
(32×32 for CIFAR-10). Preprocessing happens outside the model so the same cached features and
the same ONNX file can be fed by `engine.preprocessing`. TensorFlow is imported lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.backbones import BackboneSpec, get_backbone
from engine.registry import Registry

if TYPE_CHECKING:
    from engine.config import ExperimentConfig

# A registered builder makes the model a config asks for, for images of `image_shape` and
# `num_classes` classes: a Keras model, or a TransferModel when the entry uses a backbone.
ModelBuilder = Callable[["ExperimentConfig", tuple[int, int, int], int], Any]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and what training needs to know about it."""

    name: str
    build: ModelBuilder
    description: str
    # A frozen Keras Applications backbone with a head: the builder returns a TransferModel,
    # training starts with a frozen phase, and the backbone's own preprocessing applies.
    uses_backbone: bool = False


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(
    name: str, *, description: str, uses_backbone: bool = False
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: register `fn(config, image_shape, num_classes)` as the builder of `name`."""

    def deco(fn: ModelBuilder) -> ModelBuilder:
        MODELS.add(name, ModelEntry(name, fn, description, uses_backbone))
        return fn

    return deco


def get_model(name: str) -> ModelEntry:
    return MODELS.get(name)


# Classifier heads on the pooled backbone features: the widths of the hidden Dense layers
# before the softmax layer.
HEADS: Registry[tuple[int, ...]] = Registry("head")
HEADS.add("gap-dense10", ())
HEADS.add("gap-dense256-dense10", (256,))


def build_simple_cnn(input_shape: tuple[int, int, int] = (32, 32, 3), num_classes: int = 10) -> Any:
    """Conv32 → pool → Conv64 → pool → Flatten → Dense512 → Dense10: 2,122,186 parameters at 32×32."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(512, activation="relu", name="dense1")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="simple_cnn")


@register_model("simple_cnn", description="the assignment's CNN trained from scratch on x/255")
def simple_cnn_from_config(
    config: ExperimentConfig, image_shape: tuple[int, int, int], num_classes: int
) -> Any:
    return build_simple_cnn(image_shape, num_classes)


def build_mlp(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    units: tuple[int, ...] | list[int] = (512, 256),
) -> Any:
    """Flatten → Dense(units…, relu) → Dense10: the dense baseline that ignores spatial structure."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    for i, width in enumerate(units, start=1):
        x = layers.Dense(width, activation="relu", name=f"dense{i}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="mlp")


@register_model("mlp", description="a dense baseline on x/255 pixels (widths from mlp_units)")
def mlp_from_config(
    config: ExperimentConfig, image_shape: tuple[int, int, int], num_classes: int
) -> Any:
    return build_mlp(image_shape, num_classes, tuple(config.mlp_units))


@dataclass
class TransferModel:
    """A transfer model and the pieces training needs.

    `model` is the whole network (image → probabilities). `features` maps an image to the pooled
    backbone features; `head` maps those features to probabilities. The head's layers are the
    same objects inside `model`, so training `head` on cached features trains `model` too.
    """

    model: Any
    features: Any
    head: Any
    base: Any
    spec: BackboneSpec


def build_transfer(
    backbone: str,
    *,
    image_size: int = 32,
    input_size: int = 32,
    weights: str = "none",
    head: str = "gap-dense10",
    num_classes: int = 10,
) -> TransferModel:
    """A frozen Keras Applications backbone with a small head.

    `weights` is "none" (random initialisation), "imagenet" (Keras' cache, failing clearly
    offline; see engine.weights) or a path to a weights file. Images of `image_size` are
    upscaled inside the model to `input_size` when larger.
    The base is called with training=False so its BatchNorm layers stay in inference mode even
    when they are unfrozen for fine-tuning (Keras' recommended practice).
    """
    import keras
    from keras import layers

    from engine.weights import build_backbone_checked

    spec = get_backbone(backbone)
    base = build_backbone_checked(spec, input_size, weights)
    base.trainable = False

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = inputs
    if input_size != image_size:
        x = layers.Resizing(input_size, input_size, interpolation="bilinear", name="upscale")(x)
    x = base(x, training=False)
    pooled = layers.GlobalAveragePooling2D(name="gap")(x)

    head_layers = [
        layers.Dense(width, activation="relu", name="head_dense" if i == 0 else f"head_dense{i}")
        for i, width in enumerate(HEADS.get(head))
    ]
    head_layers.append(layers.Dense(num_classes, activation="softmax", name="predictions"))

    def apply_head(t: Any) -> Any:
        for layer in head_layers:
            t = layer(t)
        return t

    model = keras.Model(inputs, apply_head(pooled), name=f"{spec.name.lower()}_transfer")
    features = keras.Model(inputs, pooled, name=f"{spec.name.lower()}_features")
    feature_input = keras.Input(shape=(int(pooled.shape[-1]),), name="features")
    head_model = keras.Model(feature_input, apply_head(feature_input), name="head")
    return TransferModel(model=model, features=features, head=head_model, base=base, spec=spec)


@register_model(
    "transfer",
    description="a frozen Keras Applications backbone with a small head",
    uses_backbone=True,
)
def transfer_from_config(
    config: ExperimentConfig, image_shape: tuple[int, int, int], num_classes: int
) -> TransferModel:
    return build_transfer(
        config.backbone,
        image_size=image_shape[0],
        input_size=config.input_size,
        weights=config.weights,
        head=config.head,
        num_classes=num_classes,
    )


def unfreeze_last(transfer: TransferModel, n_layers: int) -> list[str]:
    """Make the last `n_layers` layers of the backbone trainable; return their names."""
    base = transfer.base
    base.trainable = True
    names = []
    for layer in base.layers[:-n_layers]:
        layer.trainable = False
    for layer in base.layers[-n_layers:]:
        layer.trainable = True
        names.append(layer.name)
    return names


def count_params(model: Any) -> dict[str, int]:
    """Total, trainable and frozen parameter counts of a Keras model."""
    import numpy as np

    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    frozen = int(sum(int(np.prod(w.shape)) for w in model.non_trainable_weights))
    return {"total": trainable + frozen, "trainable": trainable, "frozen": frozen}


def trainable_layer_names(model: Any) -> list[str]:
    """Names of layers (recursing into nested models) that have trainable weights."""
    names: list[str] = []

    def walk(layer: Any) -> None:
        inner = getattr(layer, "layers", None)
        if inner:
            for sub in inner:
                walk(sub)
        elif layer.trainable_weights:
            names.append(layer.name)

    walk(model)
    return names


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


def calibrate_batchnorm(model: Any, x: Any) -> int:
    """Set every BatchNorm's moving mean/variance in `model` from one batch `x` (preprocessed,
    at the model's input size); return how many layers were set.

    With random initialisation, Keras Applications backbones keep BatchNorm's initial statistics
    (mean 0, variance 1); at 32×32 the signal then fades through the depth and MobileNetV2,
    MobileNetV3 and EfficientNet give the same near-zero features for every image. One forward
    pass in training mode with momentum 0 sets each layer's statistics to those of real inputs
    (data-dependent initialisation), layer after layer. Call it on the backbone itself: a model
    that calls its backbone with training=False would keep it in inference mode.
    """
    import numpy as np

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
