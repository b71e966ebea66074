"""Input preprocessing, registered by name, with the range each one produces.

Every backbone family in Keras Applications expects its own `preprocess_input`. The numpy
implementations here are exact re-statements of Keras' functions (a test compares them), so
the TUI can show ranges and the ONNX exporter can bake preprocessing into a graph without
importing TensorFlow. Training uses the Keras function itself (`keras_function`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.i18n import N_
from engine.registry import Registry

if TYPE_CHECKING:  # numpy is imported where it is used: the TUI reads this module at start-up
    import numpy as np

# ImageNet channel means in BGR order, as Keras' "caffe" mode subtracts them.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class PreprocessSpec:
    """What a preprocessing does to uint8 RGB pixels in [0, 255]."""

    name: str
    mode: str  # "unit", "tf", "caffe", "raw"
    description: str  # English, marked with N_: the TUI translates it where shown
    output_range: tuple[float, float]  # for inputs in [0, 255]
    keras_module: str | None  # module whose preprocess_input this is, if any
    formula: str  # English too; formulas with words or decimals are marked with N_

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Preprocess pixels (any float or uint8 array, channels last) as float32."""
        import numpy as np

        return _MODES[self.mode](np.asarray(x, dtype=np.float32))

    def keras_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """Keras' own preprocess_input for this family (imports keras), or `apply` for ours."""
        if self.keras_module is None:
            return self.apply
        import importlib

        module = importlib.import_module(self.keras_module)
        fn: Callable[[np.ndarray], np.ndarray] = module.preprocess_input
        import numpy as np

        return lambda x: fn(np.array(x, dtype=np.float32, copy=True))

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "mode": self.mode,
            "description": self.description,
            "output_range": list(self.output_range),
            "formula": self.formula,
            "keras_module": self.keras_module,
        }


def _unit(x: np.ndarray) -> np.ndarray:
    return x / 255.0


def _tf(x: np.ndarray) -> np.ndarray:
    return x / 127.5 - 1.0


def _caffe(x: np.ndarray) -> np.ndarray:
    import numpy as np

    bgr = x[..., ::-1]
    return bgr - np.asarray(CAFFE_MEAN_BGR, dtype=np.float32)


def _raw(x: np.ndarray) -> np.ndarray:
    return x.copy()


_MODES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "unit": _unit,
    "tf": _tf,
    "caffe": _caffe,
    "raw": _raw,
}

PREPROCESSING: Registry[PreprocessSpec] = Registry("preprocessing")

PREPROCESSING.add(
    "unit",
    PreprocessSpec(
        name="unit",
        mode="unit",
        description=N_(
            "scale pixels to [0, 1] (x/255): what the simple CNN and MLP use, "
            "and the classic mistake when fed to a pretrained backbone"
        ),
        output_range=(0.0, 1.0),
        keras_module=None,
        formula="x / 255",
    ),
)
PREPROCESSING.add(
    "mobilenet_v2",
    PreprocessSpec(
        name="mobilenet_v2",
        mode="tf",
        description=N_("'tf' mode: scale to [-1, 1]"),
        output_range=(-1.0, 1.0),
        keras_module="keras.applications.mobilenet_v2",
        formula=N_("x / 127.5 - 1"),
    ),
)
_CAFFE_FORMULA = N_("RGB→BGR, then subtract the ImageNet mean (B 103.939, G 116.779, R 123.68)")
_CAFFE_RANGE = (-CAFFE_MEAN_BGR[2], 255.0 - CAFFE_MEAN_BGR[0])  # -123.68 .. 151.061
for _family in ("resnet", "vgg16", "vgg19"):
    PREPROCESSING.add(
        _family,
        PreprocessSpec(
            name=_family,
            mode="caffe",
            description=N_("'caffe' mode: BGR, zero-centred by the ImageNet mean, not scaled"),
            output_range=_CAFFE_RANGE,
            keras_module=f"keras.applications.{_family}",
            formula=_CAFFE_FORMULA,
        ),
    )
for _family in ("efficientnet", "mobilenet_v3"):
    PREPROCESSING.add(
        _family,
        PreprocessSpec(
            name=_family,
            mode="raw",
            description=N_("raw pixels in [0, 255]: rescaling is a layer inside the model"),
            output_range=(0.0, 255.0),
            keras_module=f"keras.applications.{_family}",
            formula=N_("x (unchanged; the model rescales inside)"),
        ),
    )


def get_preprocessing(name: str) -> PreprocessSpec:
    return PREPROCESSING.get(name)


def list_preprocessing() -> list[str]:
    return PREPROCESSING.names()
