"""Weights without TensorFlow: model.keras is a zip of config.json + model.weights.h5.

One layer's arrays are read with h5py straight from the archive (no extraction, no Keras), so
the Filters pane and `engine filters` open a ResNet's kernel in a blink.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import CnnlabError, first_line

if TYPE_CHECKING:
    import numpy as np


def _snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case, restated so that reading needs no Keras."""
    import re

    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def read_keras_config(model_path: Path) -> dict[str, Any]:
    """The model's config.json from a .keras archive."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(model_path) as archive:
            return dict(json.loads(archive.read("config.json")))
    except FileNotFoundError:
        raise CnnlabError(f"{model_path}: no such file") from None
    except IsADirectoryError:
        raise CnnlabError(f"{model_path}: is a folder, not a .keras file") from None
    except zipfile.BadZipFile:  # Keras itself calls this "File not found", which misleads
        raise CnnlabError(
            f"{model_path}: not a valid Keras file (a .keras file is a zip archive; this is not one)"
        ) from None
    except KeyError:
        raise CnnlabError(
            f"{model_path}: not a valid Keras file (the archive has no config.json)"
        ) from None
    except (OSError, ValueError, RecursionError) as exc:
        raise CnnlabError(f"{model_path}: not a valid Keras file ({first_line(exc)})") from None


def keras_weight_groups(config: dict[str, Any]) -> dict[str, str]:
    """Layer name → its group in model.weights.h5, the way Keras' saving_lib names them.

    Keras stores weights by position, not by layer name: the n-th Conv2D of a container is
    `layers/conv2d_<n>` (the first has no suffix), and a nested model is `layers/functional`.
    """
    groups: dict[str, str] = {}

    def walk(model_config: dict[str, Any], prefix: str) -> None:
        used: dict[str, int] = {}
        for layer in model_config.get("config", {}).get("layers", []):
            key = _snake_case(str(layer.get("class_name", "layer")))
            if key in used:
                used[key] += 1
                key = f"{key}_{used[key]}"
            else:
                used[key] = 0
            path = f"{prefix}layers/{key}"
            name = str(layer.get("config", {}).get("name", key))
            if "layers" in layer.get("config", {}):
                walk(layer, f"{path}/")
            else:
                groups[name] = path

    walk(config, "")
    return groups


class _Window:
    """A read-only file object over bytes [start, start + size) of a file (a stored zip member).

    h5py reads through it with seek/read, so one layer's kernel is read without loading the
    whole weights file (a ResNet152 has ~230 MB of them).
    """

    def __init__(self, fh: Any, start: int, size: int) -> None:
        self.fh, self.start, self.size, self.pos = fh, start, size, 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        if n < 0 or self.pos + n > self.size:
            n = max(0, self.size - self.pos)
        self.fh.seek(self.start + self.pos)
        data: bytes = self.fh.read(n)
        self.pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def _open_weights_h5(model_path: Path) -> Iterator[Any]:
    """model.weights.h5 inside a .keras zip, opened with h5py without extracting it."""
    import io
    import struct
    import zipfile

    import h5py

    try:
        with zipfile.ZipFile(model_path) as archive:
            info = archive.getinfo("model.weights.h5")
            data = None if info.compress_type == zipfile.ZIP_STORED else archive.read(info)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise CnnlabError(f"{model_path}: no readable model.weights.h5 ({exc})") from None
    if data is not None:  # a compressed member: no random access, read it whole
        with h5py.File(io.BytesIO(data), "r") as h5:
            yield h5
        return
    with open(model_path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        with h5py.File(_Window(fh, start, info.file_size), "r") as h5:
            yield h5


def load_keras_weights(model_path: Path, layer: str) -> list[np.ndarray]:
    """The weight arrays of one layer of a .keras file (kernel first), read with h5py."""
    import numpy as np

    groups = keras_weight_groups(read_keras_config(model_path))
    if layer not in groups:
        raise CnnlabError(f"no layer {layer!r} with weights in {model_path}")
    with _open_weights_h5(model_path) as h5:
        group = h5.get(groups[layer] + "/vars")
        if group is None:
            return []
        return [np.asarray(group[k]) for k in sorted(group.keys(), key=int)]


def load_kernel(source: Path, layer: str) -> np.ndarray:
    """A Keras convolution's kernel as K×K×Cin×Cout from a run folder or .keras file.

    DepthwiseConv2D kernels (K×K×C×multiplier) come back as K×K×1×(C·multiplier): each
    filter sees one channel. (ONNX files: `export.onnx_layers.load_kernel`.)
    """
    import numpy as np

    source = Path(source)
    if source.is_dir():
        source = source / "model.keras"
    weights = load_keras_weights(source, layer)
    if not weights or np.asarray(weights[0]).ndim != 4:
        raise CnnlabError(f"{layer} has no 2-D convolution kernel")
    kernel = np.asarray(weights[0], dtype=np.float32)
    config = read_keras_config(source)
    if _layer_class(config, layer) == "DepthwiseConv2D":
        kh, kw, c, m = kernel.shape
        kernel = kernel.reshape(kh, kw, 1, c * m)
    return kernel


def _layer_class(config: dict[str, Any], name: str) -> str | None:
    stack = [config]
    while stack:
        cfg = stack.pop()
        for layer in cfg.get("config", {}).get("layers", []):
            if layer.get("config", {}).get("name") == name:
                return str(layer.get("class_name"))
            if "layers" in layer.get("config", {}):
                stack.append(layer)
    return None
