"""The nine Keras Applications backbones, registered with their preprocessing and weight files.

Importing this module does not import TensorFlow; `BackboneSpec.build` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.preprocessing import PreprocessSpec, get_preprocessing
from engine.registry import Registry


@dataclass(frozen=True)
class BackboneSpec:
    """A Keras Applications model usable as a feature extractor."""

    name: str
    keras_class: str  # attribute of keras.applications
    preprocessing: str  # name in engine.preprocessing.PREPROCESSING
    imagenet_file: str  # file name Keras caches under $KERAS_HOME/models
    family: str
    min_input: int = 32

    @property
    def preprocess(self) -> PreprocessSpec:
        return get_preprocessing(self.preprocessing)

    def weights_file(self, input_size: int) -> str:
        """The no-top ImageNet weight file Keras looks for at this input size."""
        if self.name == "MobileNetV2":
            rows = input_size if input_size in (96, 128, 160, 192, 224) else 224
            return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
        return self.imagenet_file

    def build(self, input_size: int, weights: str | None) -> Any:
        """The backbone without its classifier (include_top=False), as a Keras model."""
        import keras

        cls = getattr(keras.applications, self.keras_class)
        return cls(
            include_top=False,
            weights=weights,
            input_shape=(input_size, input_size, 3),
        )


BACKBONES: Registry[BackboneSpec] = Registry("backbone", loose=True)


def _add(name: str, preprocessing: str, imagenet_file: str, family: str) -> None:
    BACKBONES.add(
        name,
        BackboneSpec(
            name=name,
            keras_class=name,
            preprocessing=preprocessing,
            imagenet_file=imagenet_file,
            family=family,
        ),
    )


_add(
    "MobileNetV2",
    "mobilenet_v2",
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    "MobileNet",
)
_add("ResNet50", "resnet", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "ResNet")
_add("ResNet101", "resnet", "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5", "ResNet")
_add("ResNet152", "resnet", "resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5", "ResNet")
_add("VGG16", "vgg16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "VGG")
_add("VGG19", "vgg19", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "VGG")
_add("EfficientNetB0", "efficientnet", "efficientnetb0_notop.h5", "EfficientNet")
_add("EfficientNetB3", "efficientnet", "efficientnetb3_notop.h5", "EfficientNet")
_add(
    "MobileNetV3Large",
    "mobilenet_v3",
    "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
    "MobileNet",
)


def get_backbone(name: str) -> BackboneSpec:
    """Look a backbone up in any case and punctuation (`resnet50`, `mobilenet_v2` work too)."""
    return BACKBONES.get(name)


def canonical_backbone(name: str) -> str:
    """The registered name (`mobilenet_v2` → `MobileNetV2`); UnknownName lists the choices."""
    return BACKBONES.canonical(name)


def list_backbones() -> list[str]:
    return BACKBONES.names()
