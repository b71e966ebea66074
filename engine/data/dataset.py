"""The `Dataset` a loader ends with, the raw splits a source returns, and their checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import DataError, UsageError

SPLITS = ("train", "val", "test")
# A label far above this is almost always not a class index (an id, a file number...): a
# clear error beats building a model with a million outputs.
MAX_CLASSES = 10_000


@dataclass(eq=False)  # comparing arrays with == is ambiguous; compare fields explicitly
class Dataset:
    """Images ready to train on: uint8 NHWC RGB, int64 labels in 0..C-1, three splits."""

    source: str
    classes: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    # True when decoded images came from cnnlab's cache rather than being decoded again.
    from_cache: bool = False

    @property
    def image_shape(self) -> tuple[int, int, int]:
        h, w, c = self.x_train.shape[1:]
        return (int(h), int(w), int(c))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of `"train"`, `"val"` or `"test"`."""
        if name not in SPLITS:
            raise UsageError(f"unknown split {name!r}; choose one of: {', '.join(SPLITS)}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class in each split: {"train": {class: n}, "val": {...}, "test": {...}}."""
        out: dict[str, dict[str, int]] = {}
        for name in SPLITS:
            _, y = self.split(name)
            per = (
                np.bincount(y, minlength=len(self.classes))
                if len(y)
                else np.zeros(len(self.classes), int)
            )
            out[name] = {c: int(n) for c, n in zip(self.classes, per, strict=False)}
        return out

    def summary(self) -> dict[str, Any]:
        """The JSON-able description stored as run.json "data" and sent in `run_started`."""
        return {
            "source": self.source,
            "classes": list(self.classes),
            "train": int(len(self.y_train)),
            "val": int(len(self.y_val)),
            "test": int(len(self.y_test)),
            "image_shape": list(self.image_shape),
        }

    def samples(self, per_class: int, split: str = "test") -> dict[str, np.ndarray]:
        """Up to `per_class` images of each class from one split (for the TUI's image grid)."""
        x, y = self.split(split)
        return {c: x[np.flatnonzero(y == i)[:per_class]] for i, c in enumerate(self.classes)}


@dataclass
class RawData:
    """What a source loader returns: full splits, before subset, shuffling and validation split."""

    classes: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    from_cache: bool = False
    # Warnings met while reading an archive, as (kind, message): kept in the decode cache so a
    # cached load repeats them.
    notices: list[tuple[str, str]] = field(default_factory=list)


def check_raw(raw: RawData, source: str) -> None:
    """Last line of defence for every source: shapes, dtypes, label range, class count."""
    if len(raw.classes) < 2:
        raise DataError(f"{source}: needs at least two classes, found {len(raw.classes)}")
    if len(raw.classes) > MAX_CLASSES:
        raise DataError(
            f"{source}: {len(raw.classes):,} classes; cnnlab takes at most {MAX_CLASSES:,}"
        )
    shape = None
    for split in ("train", "val", "test"):
        x, y = getattr(raw, f"x_{split}"), getattr(raw, f"y_{split}")
        if x is None:
            continue
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
            raise DataError(
                f"{source}: x_{split} must be uint8 (N, H, W, 3), got {x.dtype} {x.shape}"
            )
        if len(x) != len(y):
            raise DataError(
                f"{source}: x_{split} has {len(x)} images but y_{split} {len(y)} labels"
            )
        if shape is None:
            shape = x.shape[1:]
        elif x.shape[1:] != shape:
            raise DataError(
                f"{source}: x_{split} images are {x.shape[1:]} but x_train's are {shape}"
            )
        bad = y[(y < 0) | (y >= len(raw.classes))]
        if len(bad):
            raise DataError(
                f"{source}: y_{split} has label {int(bad[0])} outside 0..{len(raw.classes) - 1} "
                f"({len(raw.classes)} classes)"
            )
    if len(raw.y_train) == 0:
        raise DataError(f"{source}: no training images")
    if len(raw.y_test) == 0:
        raise DataError(f"{source}: no test images")


def resize_images(x: np.ndarray, size: int) -> np.ndarray:
    """Every image resized to size×size (bilinear), uint8 RGB."""
    from PIL import Image

    if x.shape[1:3] == (size, size):
        return x
    out = np.empty((len(x), size, size, 3), np.uint8)
    for i, image in enumerate(x):
        out[i] = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    return out


def resize_raw(raw: RawData, size: int) -> RawData:
    raw.x_train = resize_images(raw.x_train, size)
    raw.x_test = resize_images(raw.x_test, size)
    if raw.x_val is not None:
        raw.x_val = resize_images(raw.x_val, size)
    return raw
