"""Data sources for cnnlab: CIFAR-10, image folders (or a .tar.gz of one), .npz files, synthetic.

Every source is registered by name in `SOURCES` and selected with a string such as
`"synthetic"`, `"synthetic:600"`, `"cifar10"`, `"folder:PATH"` or `"npz:PATH"`.
`load_dataset` turns one into a `Dataset`: uint8 NHWC RGB images and int64 labels, shuffled,
with a stratified validation split whatever order the files came in.

Only numpy and Pillow are imported here; Keras (and so TensorFlow) is imported inside the
CIFAR-10 loader, and only when the files are not already in Keras' cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import socket
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DataError, UsageError
from engine.registry import Registry, UnknownName

Progress = Callable[[str, int, int], None]

CACHE_ENV = "CNNLAB_CACHE"
SPLITS = ("train", "val", "test")
# Bump when the decoded-cache layout or the decoding itself changes: old files are rebuilt.
_CACHE_VERSION = 1

SYNTHETIC_CLASSES = [
    "disc",
    "ring",
    "square",
    "frame",
    "cross",
    "h-stripes",
    "v-stripes",
    "checker",
    "triangle",
    "diagonal",
]
SYNTHETIC_TRAIN = 5000
SYNTHETIC_SIZE = 32

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
# The exact names Keras 3's `keras.datasets.cifar10.load_data()` uses, so we share its cache.
_CIFAR10_ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR10_FNAME = "cifar-10-batches-py-target"
_CIFAR10_ARCHIVE = f"{_CIFAR10_FNAME}_archive"
_CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
_CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
_DOWNLOAD_TIMEOUT = 15.0


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


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
class _Raw:
    """What a source loader returns: full splits, before subset, shuffling and validation split."""

    classes: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    from_cache: bool = False


@dataclass
class _Options:
    """Everything a source loader may need besides its argument."""

    source: str
    arg: str | None
    resize: int | None
    seed: int
    cache_dir: Path
    progress: _Throttle


class _Throttle:
    """Calls `progress(stage, done, total)` at most every `interval` s, plus stage changes and ends."""

    def __init__(self, progress: Progress | None, interval: float = 0.2) -> None:
        self._progress = progress
        self._interval = interval
        self._last = 0.0
        self._stage = ""

    def due(self) -> bool:
        """Whether a call now would report (lets callers skip computing costly figures)."""
        return self._progress is not None and time.monotonic() - self._last >= self._interval

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if stage != self._stage or done >= total or now - self._last >= self._interval:
            self._stage = stage
            self._last = now
            self._progress(stage, int(done), int(total))


# --------------------------------------------------------------------------------------------
# Registry of sources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSource:
    """A registered data source: how to name it, what it is, how to load it."""

    name: str
    usage: str  # how to write it, e.g. "folder:PATH"
    description: str
    load: Callable[[_Options], _Raw]
    arg: str = "none"  # "none": takes no argument; "optional"; "required"
    status: Callable[[], dict[str, Any]] = field(default=lambda: {})


SOURCES: Registry[DataSource] = Registry("data source")


def cache_root() -> Path:
    """cnnlab's cache folder: `$CNNLAB_CACHE`, else `~/.cache/cnnlab`."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cnnlab"


def _usages() -> str:
    return ", ".join(entry.usage for _, entry in SOURCES.items())


def _resolve(source: str) -> tuple[DataSource, str | None]:
    """Split `"name:arg"` and find the registered source; DataError (listing them) if unknown."""
    name, sep, arg = source.strip().partition(":")
    try:
        entry = SOURCES.get(name)
    except UnknownName:
        raise DataError(f"unknown data source {source!r}; choose one of: {_usages()}") from None
    value: str | None = arg.strip() if sep else None
    if entry.arg == "required" and not value:
        raise DataError(f"data source {name} needs an argument: {entry.usage}")
    if entry.arg == "none" and sep:
        raise DataError(f"data source {name} takes no argument: write just {name!r}")
    return entry, value


def check_source(source: str) -> None:
    """Raise DataError if `source` does not name a registered source correctly (nothing is loaded)."""
    _resolve(source)


def list_sources() -> list[dict[str, Any]]:
    """Every registered source: name, usage, description, and what is cached where."""
    out = []
    for name, entry in SOURCES.items():
        row: dict[str, Any] = {
            "name": name,
            "usage": entry.usage,
            "description": entry.description,
            "available": True,
            "cached": None,
            "location": None,
            "note": "",
        }
        row.update(entry.status())
        out.append(row)
    return out


def load_dataset(
    source: str,
    *,
    subset: int | None = None,
    val_split: float = 0.2,
    seed: int = 0,
    resize: int | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Load a data source by name, then subset, shuffle and split it (stratified, seeded).

    `subset=N` keeps a stratified N of the training images (before the validation split) and a
    stratified N//5 (at least one per class) of the test images. `resize=N` resizes every image
    to N×N (needed for folders of mixed sizes). `cache_dir` holds decoded folders (default
    `cache_root()/data`). `progress(stage, done, total)` is called at most every ~0.2 s and at
    the end of each stage: "reading" (bytes of an archive), "decoding" (images), "writing
    cache" (0/1, 1/1), "downloading" (cifar10: 0/1, 1/1). Errors are one-line `DataError`s
    (bad options: `UsageError`).
    """
    if subset is not None and subset < 1:
        raise UsageError(f"subset must be at least 1 (got {subset})")
    if not 0.0 <= val_split < 1.0:
        raise UsageError(f"val_split must be in [0, 1) (got {val_split})")
    if resize is not None and resize < 1:
        raise UsageError(f"resize must be at least 1 pixel (got {resize})")
    entry, arg = _resolve(source)
    options = _Options(
        source=source,
        arg=arg,
        resize=resize,
        seed=seed,
        cache_dir=Path(cache_dir) if cache_dir is not None else cache_root() / "data",
        progress=_Throttle(progress),
    )
    raw = entry.load(options)
    _check_raw(raw, source)
    if resize is not None:
        raw = _resize_raw(raw, resize)
    return _finish(raw, source, subset=subset, val_split=val_split, seed=seed)


# --------------------------------------------------------------------------------------------
# Subset, shuffle, stratified split
# --------------------------------------------------------------------------------------------


def _stratified_pick(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of n labels in the classes' proportions (largest remainders), at least one per
    class present when n allows it. All indices (shuffled) when n is not smaller than the pool."""
    total = len(labels)
    if n >= total:
        return rng.permutation(total)
    present, per_class = np.unique(labels, return_counts=True)
    exact = n * per_class / total
    quota = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: n - int(quota.sum())]] += 1
    if n >= len(present):
        # Give empty classes one image, taken from the classes with the most.
        for i in np.flatnonzero(quota == 0):
            quota[int(np.argmax(quota))] -= 1
            quota[i] = 1
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=int(k), replace=False)
        for c, k in zip(present, quota, strict=True)
        if k > 0
    ]
    return rng.permutation(np.concatenate(chosen))


def _stratified_split(
    labels: np.ndarray, val_split: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: each class split in the same proportion, both shuffled.

    Every class with two or more images gets at least one in each part, so no class is missing
    from validation and none is learnt from validation alone."""
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(idx) * val_split))
        if val_split > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        val.append(idx[:k])
        train.append(idx[k:])
    if val_split > 0 and len(labels) >= 2 and not sum(len(v) for v in val):
        # One image per class (subset=10): validation still needs something to measure.
        biggest = max(range(len(train)), key=lambda i: len(train[i]))
        val[biggest], train[biggest] = train[biggest][:1], train[biggest][1:]
    empty = np.zeros(0, np.int64)
    return (
        rng.permutation(np.concatenate(train)) if train else empty,
        rng.permutation(np.concatenate(val)) if val else empty,
    )


def _finish(raw: _Raw, source: str, *, subset: int | None, val_split: float, seed: int) -> Dataset:
    """Apply subset, shuffle and the stratified validation split (seeded, class-order-proof)."""
    rng = np.random.default_rng(seed)
    classes = len(raw.classes)
    pool = _stratified_pick(raw.y_train, subset or len(raw.y_train), rng)
    small = max(subset // 5, classes) if subset else None
    test = _stratified_pick(raw.y_test, small or len(raw.y_test), rng)
    if raw.x_val is not None and raw.y_val is not None:
        train_idx = pool
        val_idx = _stratified_pick(raw.y_val, small or len(raw.y_val), rng)
        x_val, y_val = raw.x_val[val_idx], raw.y_val[val_idx]
    else:
        part_train, part_val = _stratified_split(raw.y_train[pool], val_split, rng)
        train_idx, val_idx = pool[part_train], pool[part_val]
        x_val, y_val = raw.x_train[val_idx], raw.y_train[val_idx]
    return Dataset(
        source=source,
        classes=list(raw.classes),
        x_train=raw.x_train[train_idx],
        y_train=raw.y_train[train_idx].astype(np.int64),
        x_val=x_val,
        y_val=y_val.astype(np.int64),
        x_test=raw.x_test[test],
        y_test=raw.y_test[test].astype(np.int64),
        from_cache=raw.from_cache,
    )


def _check_raw(raw: _Raw, source: str) -> None:
    """Last line of defence for every source: shapes, dtypes, label range, class count."""
    if len(raw.classes) < 2:
        raise DataError(f"{source}: needs at least two classes, found {len(raw.classes)}")
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


def _resize_images(x: np.ndarray, size: int) -> np.ndarray:
    """Every image resized to size×size (bilinear), uint8 RGB."""
    from PIL import Image

    if x.shape[1:3] == (size, size):
        return x
    out = np.empty((len(x), size, size, 3), np.uint8)
    for i, image in enumerate(x):
        out[i] = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    return out


def _resize_raw(raw: _Raw, size: int) -> _Raw:
    raw.x_train = _resize_images(raw.x_train, size)
    raw.x_test = _resize_images(raw.x_test, size)
    if raw.x_val is not None:
        raw.x_val = _resize_images(raw.x_val, size)
    return raw


# --------------------------------------------------------------------------------------------
# synthetic
# --------------------------------------------------------------------------------------------


def synthetic_images(
    labels: np.ndarray, rng: np.random.Generator, size: int = SYNTHETIC_SIZE
) -> np.ndarray:
    """One image per label: the class's shape or texture with random colours, place, scale, noise.

    Vectorised per class so that 6,000 images take a fraction of a second."""
    n = len(labels)
    coords = np.arange(size, dtype=np.float32) + 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    centre = size / 2
    cx = rng.uniform(centre - size * 0.1, centre + size * 0.1, n).astype(np.float32)
    cy = rng.uniform(centre - size * 0.1, centre + size * 0.1, n).astype(np.float32)
    scale = rng.uniform(size * 0.25, size * 0.38, n).astype(np.float32)  # "radius" of the shape
    period = rng.uniform(size * 0.13, size * 0.22, n).astype(np.float32)  # of the textures
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    flip = rng.choice(np.array([-1.0, 1.0], np.float32), n)

    masks = np.zeros((n, size, size), bool)
    for label in range(len(SYNTHETIC_CLASSES)):
        idx = np.flatnonzero(labels == label)
        if not len(idx):
            continue
        dx = xx[None] - cx[idx, None, None]
        dy = yy[None] - cy[idx, None, None]
        s = scale[idx, None, None]
        p = period[idx, None, None]
        ph = phase[idx, None, None]
        f = flip[idx, None, None]
        radius = np.sqrt(dx * dx + dy * dy)
        box = np.maximum(np.abs(dx), np.abs(dy))
        patch = box <= s * 1.15  # textures fill a square patch around the centre
        name = SYNTHETIC_CLASSES[label]
        if name == "disc":
            m = radius <= s
        elif name == "ring":
            m = (radius <= s) & (radius >= s * 0.55)
        elif name == "square":
            m = box <= s * 0.85
        elif name == "frame":
            m = (box <= s * 0.9) & (box >= s * 0.5)
        elif name == "cross":
            arm = np.maximum(s * 0.28, 1.2)
            m = ((np.abs(dx) <= arm) & (np.abs(dy) <= s)) | (
                (np.abs(dy) <= arm) & (np.abs(dx) <= s)
            )
        elif name == "h-stripes":
            m = patch & (np.sin(2 * np.pi * dy / p + ph) > 0)
        elif name == "v-stripes":
            m = patch & (np.sin(2 * np.pi * dx / p + ph) > 0)
        elif name == "checker":
            q = p / 2
            m = patch & ((np.floor((dx + ph) / q) + np.floor((dy + ph) / q)) % 2 == 0)
        elif name == "triangle":
            # Apex up or down; the half-width grows linearly from the apex to the base.
            t = (f * dy + s * 0.9) / (s * 1.8)
            m = (t >= 0) & (t <= 1) & (np.abs(dx) <= t * s)
        else:  # diagonal stripes, either direction
            m = patch & (np.sin(2 * np.pi * (dx + f * dy) / (p * 1.41) + ph) > 0)
        masks[idx] = m

    # A light shape on a dark ground, both of random colour: clear contrast whatever the hues.
    # (Random polarity as well made it markedly slower to learn from a few hundred images.)
    bg = rng.uniform(0, 110, (n, 3)).astype(np.float32)
    fg = rng.uniform(145, 255, (n, 3)).astype(np.float32)
    images = np.where(masks[..., None], fg[:, None, None, :], bg[:, None, None, :])
    images += rng.standard_normal(images.shape, dtype=np.float32) * 12
    return np.clip(images, 0, 255).astype(np.uint8)


def _synthetic_split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.arange(n, dtype=np.int64) % len(SYNTHETIC_CLASSES))
    return synthetic_images(labels, rng), labels


def _load_synthetic(options: _Options) -> _Raw:
    n_train = SYNTHETIC_TRAIN
    if options.arg:
        try:
            n_train = int(options.arg)
        except ValueError:
            raise DataError(
                f"{options.source}: expected synthetic:N with N a number of images"
            ) from None
        if n_train < len(SYNTHETIC_CLASSES):
            raise DataError(
                f"{options.source}: needs at least {len(SYNTHETIC_CLASSES)} images (one per class)"
            )
    n_test = max(n_train // 5, len(SYNTHETIC_CLASSES))
    x_train, y_train = _synthetic_split(n_train, np.random.default_rng([options.seed, 1]))
    x_test, y_test = _synthetic_split(n_test, np.random.default_rng([options.seed, 2]))
    return _Raw(list(SYNTHETIC_CLASSES), x_train, y_train, x_test, y_test)


SOURCES.add(
    "synthetic",
    DataSource(
        name="synthetic",
        usage="synthetic[:N]",
        description=f"generated offline: 10 shape/texture classes, 32×32 RGB, "
        f"{SYNTHETIC_TRAIN:,} train / {SYNTHETIC_TRAIN // 5:,} test (or N train), deterministic per seed",
        load=_load_synthetic,
        arg="optional",
        status=lambda: {"note": "generated on the fly, nothing to download"},
    ),
)


# --------------------------------------------------------------------------------------------
# cifar10 (Keras' downloader and cache)
# --------------------------------------------------------------------------------------------


def keras_datasets_dir() -> Path:
    """Where Keras keeps datasets: `$KERAS_HOME/datasets`, else `~/.keras/datasets`."""
    home = os.environ.get("KERAS_HOME")
    if home:
        return Path(home).expanduser() / "datasets"
    base = Path.home()
    if not os.access(base, os.W_OK):  # Keras' own fallback
        base = Path(tempfile.gettempdir())
    return base / ".keras" / "datasets"


def _cifar10_batches(datasets: Path) -> Path | None:
    """The folder holding CIFAR-10's python batches, if Keras 3 (or Keras 2) extracted them."""
    for folder in (
        datasets / _CIFAR10_FNAME / "cifar-10-batches-py",
        datasets / "cifar-10-batches-py",
    ):
        if all((folder / name).is_file() for name in _CIFAR10_BATCHES):
            return folder
    return None


class _BatchUnpickler(pickle.Unpickler):
    """Reads CIFAR-10's pickled batches but refuses any global other than numpy's array parts.

    The batches are pickles (the dataset's own format); this keeps a tampered cache file from
    running code."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
            "_reconstruct",
            "scalar",
        ):
            try:
                from numpy._core import multiarray
            except ImportError:  # numpy < 2
                from numpy.core import multiarray  # type: ignore[no-redef]
            return getattr(multiarray, name)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "_codecs" and name == "encode":  # how protocol 2 stores bytes
            import _codecs

            return _codecs.encode
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a CIFAR-10 batch")


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as fh:
            batch = _BatchUnpickler(fh, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64).reshape(-1)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except (OSError, EOFError, KeyError, ValueError, TypeError, pickle.UnpicklingError) as exc:
        raise DataError(
            f"cifar10: {path} is unreadable ({exc}); delete it to download again"
        ) from None
    return np.ascontiguousarray(images), labels


def _download_cifar10(datasets: Path) -> None:
    """Fetch CIFAR-10 with Keras' own `get_file` (same file names, hash and cache as
    `keras.datasets.cifar10.load_data()`); DataError naming the file to put where on failure."""
    archive = datasets / _CIFAR10_ARCHIVE
    previous = socket.getdefaulttimeout()
    try:
        from keras.utils import get_file  # imports TensorFlow: only when not cached

        # A silent network must not hang the run; Keras' progress bar would corrupt a JSON
        # event stream on stdout, so it goes to stderr.
        socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT)
        with contextlib.redirect_stdout(sys.stderr):
            get_file(
                fname=_CIFAR10_FNAME,
                origin=_CIFAR10_ORIGIN,
                extract=True,
                file_hash=_CIFAR10_SHA256,
                cache_dir=str(datasets.parent),
            )
    except Exception as exc:  # Keras raises a bare Exception("URL fetch failure ...")
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise DataError(
            f"cifar10 is not in Keras' cache folder {datasets} and could not be downloaded "
            f"({reason}); download {_CIFAR10_ORIGIN} and save it as {archive} "
            f"(or use --data synthetic or folder:PATH)"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def _load_cifar10(options: _Options) -> _Raw:
    datasets = keras_datasets_dir()
    folder = _cifar10_batches(datasets)
    if folder is None:
        options.progress("downloading", 0, 1)
        _download_cifar10(datasets)
        folder = _cifar10_batches(datasets)
        if folder is None:
            raise DataError(
                f"cifar10: Keras' download finished but {datasets / _CIFAR10_FNAME} holds no "
                f"cifar-10-batches-py/ folder; delete it and {datasets / _CIFAR10_ARCHIVE} and retry"
            )
        options.progress("downloading", 1, 1)
    parts = [_read_cifar10_batch(folder / name) for name in _CIFAR10_BATCHES]
    x_train = np.concatenate([x for x, _ in parts[:-1]])
    y_train = np.concatenate([y for _, y in parts[:-1]])
    x_test, y_test = parts[-1]
    return _Raw(list(CIFAR10_CLASSES), x_train, y_train, x_test, y_test)


def _cifar10_status() -> dict[str, Any]:
    datasets = keras_datasets_dir()
    cached = _cifar10_batches(datasets) is not None
    archive = (datasets / _CIFAR10_ARCHIVE).is_file()
    if cached:
        note = "in Keras' cache"
    elif archive:
        note = "archive in Keras' cache, extracted on first use"
    else:
        note = f"downloaded on first use ({_CIFAR10_ORIGIN}, 163 MB)"
    # "available" means usable right now, offline; otherwise the first load downloads it.
    return {
        "available": cached or archive,
        "cached": cached or archive,
        "location": str(datasets),
        "note": note,
    }


SOURCES.add(
    "cifar10",
    DataSource(
        name="cifar10",
        usage="cifar10",
        description="CIFAR-10, 50,000 train / 10,000 test, 32×32 RGB, through Keras' downloader and cache",
        load=_load_cifar10,
        status=_cifar10_status,
    ),
)


# --------------------------------------------------------------------------------------------
# folder:PATH — train/<class>/*, test/<class>/* in a folder or a .tar(.gz)
# --------------------------------------------------------------------------------------------

_JPEG_SOF = (0xC0, 0xC1, 0xC2)  # baseline, extended, progressive Huffman
_IGNORED_FILES = {"thumbs.db", "desktop.ini"}
_DECODE_CHUNK = 256


def _decode_workers() -> int:
    # Pillow releases the GIL while libjpeg/zlib decode, so a few threads overlap with the
    # Python-level work; more than four buys nothing for 32×32 images.
    return max(1, min(4, os.cpu_count() or 1))


def _jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from a JPEG's frame header, skipping Pillow's Python parser."""
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in _JPEG_SOF:
            return (data[i + 7] << 8 | data[i + 8], data[i + 5] << 8 | data[i + 6], data[i + 9])
        if marker in (0xD9, 0xDA) or 0xC3 <= marker <= 0xCF:
            return None  # no frame before the scan, or a kind we leave to Pillow's full path
        i += 2 + (data[i + 2] << 8 | data[i + 3])
    return None


def decode_image(data: bytes, resize: int | None = None) -> np.ndarray:
    """Decode one image file's bytes to uint8 (H, W, 3) RGB (grey, palette, RGBA converted).

    JPEGs of one or three components go straight to Pillow's libjpeg decoder: that skips
    Pillow's marker parsing in Python and roughly halves the time per 32×32 image."""
    from PIL import Image

    image = None
    if data[:3] == b"\xff\xd8\xff":
        header = _jpeg_header(data)
        if header is not None and header[2] in (1, 3) and header[0] > 0 and header[1] > 0:
            try:
                image = Image.frombytes("RGB", header[:2], data, "jpeg", "RGB", "")
            except (OSError, ValueError):
                image = None  # let the full path decode it or say what is wrong
    if image is None:
        image = Image.open(io.BytesIO(data))
        image.load()
        if image.mode != "RGB":
            try:
                image = image.convert("RGB")
            except ValueError:  # e.g. 16-bit greyscale: via 8-bit grey
                image = image.convert("L").convert("RGB")
    if resize is not None and image.size != (resize, resize):
        image = image.resize((resize, resize), Image.Resampling.BILINEAR)
    return np.asarray(image)


def _error_text(exc: BaseException) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "is not an image file Pillow can read"
    return f"is unreadable ({' '.join(str(exc).split()) or type(exc).__name__})"


def _decode_mosaic(datas: list[bytes], size: tuple[int, int]) -> list[np.ndarray | None]:
    """Decode same-size JPEGs straight into one tall image, with no per-image Python objects.

    Per 32×32 image this costs about half of `decode_image` and, as libjpeg runs without the
    GIL, it scales with threads. Uses Pillow's decoder interface (what `ImageFile.load` does);
    an image it cannot do comes back as None, for the general path to decode or explain."""
    from PIL import Image

    w, h = size
    mosaic = Image.new("RGB", (w, h * len(datas)))
    ok: list[bool] = []
    for k, data in enumerate(datas):
        try:
            decoder = Image._getdecoder("RGB", "jpeg", ("RGB", ""))
            decoder.setimage(mosaic.im, (0, k * h, w, (k + 1) * h))
            consumed, err = decoder.decode(data)
            decoder.cleanup()
            ok.append(consumed < 0 and err == 0)
        except Exception:  # a Pillow without this interface, or a bad file: general path
            ok.append(False)
    pixels = np.asarray(mosaic).reshape(len(datas), h, w, 3)
    return [pixels[k] if good else None for k, good in enumerate(ok)]


def _decode_chunk(payloads: list[bytes | str], resize: int | None) -> list[np.ndarray | str]:
    """Decode a chunk of files (bytes, or paths read here); failures come back as text."""
    out: list[np.ndarray | str | None] = [None] * len(payloads)
    datas: list[bytes] = []
    fast: list[int] = []  # JPEGs of the chunk's common size (the usual case: a whole dataset)
    cell: tuple[int, int] | None = None
    for i, payload in enumerate(payloads):
        try:
            if isinstance(payload, str):  # a path: read here, on the pool
                with open(payload, "rb") as fh:
                    data = fh.read()
            else:
                data = payload
        except OSError as exc:
            out[i] = f"cannot be read ({exc.strerror or exc})"
            datas.append(b"")
            continue
        datas.append(data)
        header = _jpeg_header(data) if data[:3] == b"\xff\xd8\xff" else None
        if header is None or header[2] not in (1, 3) or not 0 < header[0] * header[1] <= 128 * 128:
            continue
        if cell is None:
            cell = header[:2]
        if header[:2] == cell and (resize is None or cell == (resize, resize)):
            fast.append(i)
    if cell is not None and fast:
        for i, image in zip(fast, _decode_mosaic([datas[i] for i in fast], cell), strict=True):
            out[i] = image
    for i, data in enumerate(datas):
        if out[i] is None:
            try:
                out[i] = decode_image(data, resize)
            except Exception as exc:  # truncated, corrupt, unsupported mode...
                out[i] = _error_text(exc)
    return out  # type: ignore[return-value]


class _Decoder:
    """Decodes files on a thread pool in chunks while the caller goes on reading the next ones."""

    def __init__(self, resize: int | None) -> None:
        self.resize = resize
        self._pool = ThreadPoolExecutor(
            max_workers=_decode_workers(), thread_name_prefix="cnnlab-decode"
        )
        self._futures: list[Future[list[np.ndarray | str]]] = []
        self._keys: list[list[int]] = []
        self._pending: list[bytes | str] = []
        self._pending_keys: list[int] = []
        self.count = 0

    def add(self, key: int, payload: bytes | str) -> None:
        """Queue one file (its bytes, or a path to read) under the caller's key."""
        self._pending.append(payload)
        self._pending_keys.append(key)
        self.count += 1
        if len(self._pending) >= _DECODE_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._futures.append(self._pool.submit(_decode_chunk, self._pending, self.resize))
            self._keys.append(self._pending_keys)
            self._pending, self._pending_keys = [], []

    def results(self, progress: _Throttle) -> dict[int, np.ndarray | str]:
        """key → image, or the reason it could not be decoded."""
        self._flush()
        out: dict[int, np.ndarray | str] = {}
        for keys, future in zip(self._keys, self._futures, strict=True):
            out.update(zip(keys, future.result(), strict=True))
            progress("decoding", len(out), self.count)
        progress("decoding", self.count, self.count)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Layout:
    """split → class → [(path relative to the layout root, file key)], and every class folder."""

    files: dict[str, dict[str, list[tuple[str, int]]]] = field(default_factory=dict)
    class_dirs: dict[str, set[str]] = field(default_factory=dict)


def _is_hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX" or part.lower() in _IGNORED_FILES


def _split_name(part: str) -> str | None:
    low = part.lower()
    if low in ("train", "test"):
        return low
    if low in ("val", "valid", "validation"):
        return "val"
    return None


def _build_layout(
    files: list[tuple[tuple[str, ...], int]], dirs: set[tuple[str, ...]], where: str
) -> _Layout:
    """Find train/ and test/ at the top or under one top-level folder; group files by class.

    Files are given as (path parts, key); folders as path parts (so empty ones are seen too)."""
    tops = {parts[0] for parts in dirs}
    depth = 0
    if not any(_split_name(t) for t in tops):
        inner = {parts[1] for parts in dirs if len(parts) > 1}
        if len(tops) == 1 and any(_split_name(t) for t in inner):
            depth = 1  # one folder wrapping train/ and test/, as archives often have
        else:
            found = ", ".join(sorted(f"{t}/" for t in tops)[:8]) or "nothing"
            raise DataError(
                f"{where}: no train/ and test/ folders (found {found}); "
                f"expected train/<class>/* and test/<class>/*"
            )
    layout = _Layout()
    for parts in dirs:
        rel = parts[depth:]
        if rel and (split := _split_name(rel[0])):
            classes = layout.class_dirs.setdefault(split, set())
            if len(rel) >= 2:
                classes.add(rel[1])
    for parts, key in files:
        rel = parts[depth:]
        if len(rel) < 3 or not (split := _split_name(rel[0])):
            continue  # a file beside the class folders (a README, a CSV): not ours to read
        layout.files.setdefault(split, {}).setdefault(rel[1], []).append(("/".join(rel), key))
    for per_class in layout.files.values():
        for entries in per_class.values():
            entries.sort()
    return layout


def _check_layout(layout: _Layout, where: str) -> list[str]:
    """The classes (sorted), or DataError for missing splits, classes, empty folders, mismatches."""
    for split in ("train", "test"):
        if split not in layout.class_dirs:
            raise DataError(
                f"{where}: no {split}/ folder; expected {split}/<class>/ with images in each"
            )
        if not layout.class_dirs[split]:
            raise DataError(
                f"{where}: {split}/ has no class folders; expected {split}/<class>/ with images in each"
            )
    for split in ("train", "test", "val"):
        for name in sorted(layout.class_dirs.get(split, ())):
            if not layout.files.get(split, {}).get(name):
                raise DataError(f"{where}: class folder {split}/{name}/ is empty (no image files)")
    classes = sorted(layout.class_dirs["train"])
    for split in ("test", "val"):
        if split not in layout.class_dirs:
            continue
        other = layout.class_dirs[split]
        only_train = sorted(set(classes) - other)
        only_other = sorted(other - set(classes))
        if only_train or only_other:
            bits = []
            if only_train:
                bits.append(f"only in train/: {', '.join(only_train)}")
            if only_other:
                bits.append(f"only in {split}/: {', '.join(only_other)}")
            raise DataError(
                f"{where}: train/ and {split}/ have different classes ({'; '.join(bits)})"
            )
    return classes


def _assemble(
    layout: _Layout, classes: list[str], results: dict[int, np.ndarray | str], where: str
) -> _Raw:
    """Stack the decoded images per split (sorted by class, then file name), checking each one."""
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ref_shape: tuple[int, ...] | None = None
    ref_rel = ""
    for split in ("train", "test", "val"):
        if split not in layout.files:
            continue
        entries = [
            (label, rel, key)
            for label, c in enumerate(classes)
            for rel, key in layout.files[split][c]
        ]
        for _, rel, key in entries:
            image = results[key]
            if isinstance(image, str):
                raise DataError(f"{where}: {rel} {image}")
            if ref_shape is None:
                ref_shape, ref_rel = image.shape, rel
            elif image.shape != ref_shape:
                h, w = image.shape[:2]
                rh, rw = ref_shape[:2]
                raise DataError(
                    f"{where}: images of different sizes: {rel} is {w}×{h} but {ref_rel} is "
                    f"{rw}×{rh} (width×height); load with resize=N to resize every image to N×N"
                )
        assert ref_shape is not None
        x = np.empty((len(entries), *ref_shape), np.uint8)
        for i, (_, _, key) in enumerate(entries):
            x[i] = results[key]
        y = np.fromiter((label for label, _, _ in entries), np.int64, len(entries))
        arrays[split] = (x, y)
    val = arrays.get("val")
    return _Raw(
        classes,
        *arrays["train"],
        *arrays["test"],
        x_val=val[0] if val else None,
        y_val=val[1] if val else None,
    )


def _walk_folder(
    root: Path,
) -> tuple[list[tuple[tuple[str, ...], str]], set[tuple[str, ...]], str]:
    """Every non-hidden file (parts relative to root, path) and folder under root, sorted, and
    a fingerprint of the files' names, sizes and mtimes (the cache key of a folder).

    Plain strings and `os.scandir` throughout: `Path` objects cost ~30 µs each, which is most
    of a warm load for 60,000 files."""
    files: list[tuple[tuple[str, ...], str]] = []
    dirs: set[tuple[str, ...]] = set()
    fingerprint = hashlib.sha256()

    def walk(folder: str, rel: tuple[str, ...]) -> None:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not _is_hidden(e.name)), key=lambda e: e.name)
        for entry in entries:
            parts = (*rel, entry.name)
            if entry.is_dir():
                dirs.add(parts)
                walk(entry.path, parts)
            elif entry.is_file():
                st = entry.stat()
                files.append((parts, entry.path))
                fingerprint.update(f"{'/'.join(parts)}:{st.st_size}:{st.st_mtime_ns}\n".encode())

    walk(str(root), ())
    return files, dirs, fingerprint.hexdigest()


def _folder_key(path: Path, resize: int | None, fingerprint: str | None) -> str:
    """Cache key: resolved path + resize + size and mtime (of the archive, or of every file)."""
    if fingerprint is None:
        st = path.stat()
        fingerprint = f"{st.st_size}:{st.st_mtime_ns}"
    return hashlib.sha256(f"v{_CACHE_VERSION}|{path}|{resize}|{fingerprint}".encode()).hexdigest()


def _cache_file(cache_dir: Path, path: Path, resize: int | None, key: str) -> Path:
    """`folder-<name>-<hash of path>-r<resize>-<key>.npz`: readable, one per (path, resize)."""
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in path.name)[:60] or "root"
    where = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return cache_dir / f"folder-{slug}-{where}-r{resize or 0}-{key[:16]}.npz"


_CACHE_KEYS = ("x_train", "y_train", "x_test", "y_test", "classes", "meta")


def _read_cache(file: Path, key: str) -> _Raw | None:
    """The cached decoded arrays, or None when absent, stale or corrupt (then it is rebuilt)."""
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as npz:
            if not all(k in npz.files for k in _CACHE_KEYS):
                return None
            meta = json.loads(str(npz["meta"]))
            if meta.get("key") != key or meta.get("version") != _CACHE_VERSION:
                return None
            has_val = "x_val" in npz.files
            raw = _Raw(
                classes=[str(c) for c in npz["classes"]],
                x_train=npz["x_train"],
                y_train=npz["y_train"],
                x_test=npz["x_test"],
                y_test=npz["y_test"],
                x_val=npz["x_val"] if has_val else None,
                y_val=npz["y_val"] if has_val else None,
                from_cache=True,
            )
        _check_raw(raw, str(file))
        return raw
    except Exception:  # truncated, not a zip, wrong shapes...: decode again and overwrite it
        return None


def _write_cache(file: Path, key: str, raw: _Raw, source_path: Path) -> None:
    """Write the decoded arrays atomically (temp + rename) and drop older versions of them.

    Uncompressed on purpose: reading 180 MB back is far faster than inflating it."""
    arrays: dict[str, Any] = {
        "x_train": raw.x_train,
        "y_train": raw.y_train,
        "x_test": raw.x_test,
        "y_test": raw.y_test,
        "classes": np.array(raw.classes, dtype=str),
        "meta": np.array(
            json.dumps({"version": _CACHE_VERSION, "key": key, "source": str(source_path)})
        ),
    }
    if raw.x_val is not None:
        arrays["x_val"], arrays["y_val"] = raw.x_val, raw.y_val
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, file)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        stem = file.name.rsplit("-", 1)[0] + "-"
        for old in file.parent.glob(f"{stem}*.npz"):
            if old != file:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # the cache only saves time; a read-only or full disk must not fail the run


class _UnusualTar(Exception):
    """The fast tar reader met something it leaves to `tarfile` (which then reads it all)."""


def _open_decompressed(raw: io.BufferedReader) -> io.BufferedReader:
    """The archive's tar stream, whatever the compression, behind a 1 MB read buffer."""
    import bz2
    import gzip
    import lzma

    magic = raw.peek(6)[:6]
    stream: Any
    if magic[:2] == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=raw)
    elif magic[:3] == b"BZh":
        stream = bz2.BZ2File(raw)
    elif magic == b"\xfd7zXZ\x00":
        stream = lzma.LZMAFile(raw)
    else:
        stream = raw
    return io.BufferedReader(stream, 1 << 20)


def _fast_tar_members(raw: io.BufferedReader) -> Iterator[tuple[str, bool, bytes | None]]:
    """(name, is_folder, data) per member of a ustar/GNU/pax archive, read front to back.

    `tarfile` spends ~35 µs of Python per member; for 60,000 small JPEGs that is most of the
    read time. This reads the headers it needs (checksum-verified) at ~8 µs a member and raises
    `_UnusualTar` for anything else (sparse files, base-256 sizes, a bad header...)."""
    stream = _open_decompressed(raw)
    read = stream.read
    long_name: str | None = None
    while True:
        header = read(512)
        if len(header) < 512:
            raise _UnusualTar("archive ends inside a header")
        if header == _ZERO_BLOCK:
            return
        try:
            checksum = int(header[148:156].split(b"\0", 1)[0].strip() or b"0", 8)
            if header[124] & 0x80:
                raise _UnusualTar("base-256 size")
            size = int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
        except ValueError:
            raise _UnusualTar("bad header") from None
        if checksum != sum(header) - sum(header[148:156]) + 8 * 32:
            raise _UnusualTar("header checksum mismatch")
        kind = header[156:157]
        data = read(size) if size else b""
        if len(data) < size:
            raise _UnusualTar("archive ends inside a member")
        if size % 512:
            read(512 - size % 512)
        if kind == b"L":  # GNU long name of the next member
            long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            continue
        if kind == b"x":  # pax extended header: only its path matters here
            for record in data.decode("utf-8", "surrogateescape").split("\n"):
                key, _, value = record.partition(" ")[2].partition("=")
                if key == "path":
                    long_name = value
            continue
        if kind in (b"g", b"K"):  # pax global header, GNU long link name
            continue
        if kind not in (b"0", b"\0", b"7", b"5", b"1", b"2", b"3", b"4", b"6"):
            raise _UnusualTar(f"member type {kind!r}")
        if long_name is not None:
            name, long_name = long_name, None
        else:
            name_bytes = header[:100].split(b"\0", 1)[0]
            if header[257:262] == b"ustar" and header[345] != 0:
                name_bytes = header[345:500].split(b"\0", 1)[0] + b"/" + name_bytes
            name = name_bytes.decode("utf-8", "surrogateescape")
        if kind == b"5":
            yield name, True, None
        elif kind in (b"0", b"\0", b"7"):
            yield name, False, data
        # links and devices are skipped, like everything that is not a file or a folder


_ZERO_BLOCK = b"\0" * 512


def _tarfile_members(raw: io.BufferedReader) -> Iterator[tuple[str, bool, bytes | None]]:
    """(name, is_folder, data) per member, by the standard library (any tar it can read)."""
    with tarfile.open(fileobj=raw, mode="r|*") as tar:
        for member in tar:
            if member.isdir():
                yield member.name, True, None
            elif member.isfile():
                handle = tar.extractfile(member)
                yield member.name, False, handle.read() if handle is not None else b""


def _read_tar(
    archive: Path,
    members: Callable[[io.BufferedReader], Iterator[tuple[str, bool, bytes | None]]],
    decoder: _Decoder,
    progress: _Throttle,
) -> tuple[list[tuple[tuple[str, ...], int]], set[tuple[str, ...]]]:
    """Read the archive once, handing each file's bytes to the decoder as soon as it is read.

    The layout is only known at the end, so every file deep enough to sit in a class folder is
    decoded on the way (decoding overlaps reading)."""
    files: list[tuple[tuple[str, ...], int]] = []
    dirs: set[tuple[str, ...]] = set()
    size = archive.stat().st_size
    with open(archive, "rb") as raw:
        for name, is_dir, data in members(raw):
            while name.startswith("./"):
                name = name[2:]
            parts = tuple(p for p in name.split("/") if p)
            if not parts or any(_is_hidden(p) for p in parts):
                continue
            if is_dir:
                dirs.add(parts)
                continue
            dirs.update(parts[:k] for k in range(1, len(parts)))
            if len(parts) >= 3:
                key = len(files)
                decoder.add(key, data or b"")
                files.append((parts, key))
            if progress.due():  # tell() is a system call: not once per member
                progress("reading", raw.tell(), size)
    progress("reading", size, size)
    return files, dirs


def _decode_tar(
    archive: Path, options: _Options
) -> tuple[_Layout, list[str], dict[int, np.ndarray | str]]:
    """Read and decode an archive: the fast reader first, `tarfile` if the archive is unusual."""
    where = options.source
    for members in (_fast_tar_members, _tarfile_members):
        decoder = _Decoder(options.resize)
        try:
            files, dirs = _read_tar(archive, members, decoder, options.progress)
            layout = _build_layout(files, dirs, where)
            classes = _check_layout(layout, where)
            return layout, classes, decoder.results(options.progress)
        except _UnusualTar:
            continue  # read it again with tarfile
        except DataError:
            raise
        except Exception as exc:  # gzip/tar corruption, I/O errors
            if members is _fast_tar_members:
                continue  # let tarfile confirm it and word the error
            raise DataError(
                f"{where}: cannot read the archive ({' '.join(str(exc).split())})"
            ) from None
        finally:
            decoder.close()
    raise AssertionError("unreachable")  # pragma: no cover


def _is_tar(path: Path, where: str) -> bool:
    """Whether `path` is a (compressed) tar; DataError for a damaged one."""
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, tarfile.TarError) as exc:  # a truncated .tar.gz
        raise DataError(
            f"{where}: cannot read the archive ({' '.join(str(exc).split())})"
        ) from None


def _load_folder(options: _Options) -> _Raw:
    where = options.source
    path = Path(options.arg or "").expanduser()
    if not path.exists():
        raise DataError(f"{where}: no such file or folder: {path}")
    path = path.resolve()
    is_dir = path.is_dir()
    if is_dir:
        listing, dirs, fingerprint = _walk_folder(path)
        layout = _build_layout([(parts, i) for i, (parts, _) in enumerate(listing)], dirs, where)
        classes = _check_layout(layout, where)
        key = _folder_key(path, options.resize, fingerprint)
    elif _is_tar(path, where):
        key = _folder_key(path, options.resize, None)
    else:
        raise DataError(
            f"{where}: {path} is neither a folder nor a .tar/.tar.gz archive of train/ and test/"
        )

    cache = _cache_file(options.cache_dir, path, options.resize, key)
    cached = _read_cache(cache, key)
    if cached is not None:
        return cached

    if is_dir:
        decoder = _Decoder(options.resize)
        try:
            for per_class in layout.files.values():
                for entries in per_class.values():
                    for _, i in entries:
                        decoder.add(i, listing[i][1])
            results = decoder.results(options.progress)
        finally:
            decoder.close()
    else:
        layout, classes, results = _decode_tar(path, options)
    raw = _assemble(layout, classes, results, where)
    _check_raw(raw, where)
    options.progress("writing cache", 0, 1)
    _write_cache(cache, key, raw, path)
    options.progress("writing cache", 1, 1)
    return raw


def _folder_status() -> dict[str, Any]:
    root = cache_root() / "data"
    files = sorted(root.glob("folder-*.npz")) if root.is_dir() else []
    size = sum(f.stat().st_size for f in files)
    note = (
        f"{len(files)} decoded folder(s) cached, {size / 1e6:.0f} MB"
        if files
        else "nothing cached yet"
    )
    return {"cached": bool(files), "location": str(root), "note": note}


SOURCES.add(
    "folder",
    DataSource(
        name="folder",
        usage="folder:PATH",
        description="PATH/train/<class>/*.jpg|png and PATH/test/<class>/..., or a .tar.gz of that "
        "layout; decoded once, then read from cnnlab's cache",
        load=_load_folder,
        arg="required",
        status=_folder_status,
    ),
)


# --------------------------------------------------------------------------------------------
# npz:PATH
# --------------------------------------------------------------------------------------------


def _npz_images(x: np.ndarray, name: str, where: str) -> np.ndarray:
    """uint8 (N, H, W, 3) from (N, H, W), (N, H, W, 1|3|4) or channels-first, 0..255 or 0..1."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{where}: {name} has shape {x.shape}; expected (N, H, W, 3) images")
    if x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3, 4):
        x = x.transpose(0, 2, 3, 1)  # channels-first
    if x.shape[-1] not in (1, 3, 4):
        raise DataError(f"{where}: {name} has shape {x.shape}; expected (N, H, W, 3) images")
    if x.dtype != np.uint8:
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{where}: {name} has dtype {x.dtype}; expected uint8 pixels")
        if x.size and (not np.isfinite(x).all() or x.min() < 0 or x.max() > 255):
            raise DataError(f"{where}: {name} has pixel values outside 0..255")
        if np.issubdtype(x.dtype, np.floating) and x.size and x.max() <= 1.0:
            x = x * 255.0
        x = np.rint(x).astype(np.uint8)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    elif x.shape[-1] == 4:
        x = x[..., :3]
    return np.ascontiguousarray(x)


def _npz_labels(y: np.ndarray, name: str, n: int, where: str) -> np.ndarray:
    """int64 (N,) from (N,), (N, 1) or one-hot (N, C)."""
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)  # one-hot
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1:
        raise DataError(f"{where}: {name} has shape {y.shape}; expected (N,) class indices")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"{where}: {name} has dtype {y.dtype}; expected integer class indices")
    if np.issubdtype(y.dtype, np.floating) and (
        not np.isfinite(y).all() or (y != np.round(y)).any()
    ):
        raise DataError(f"{where}: {name} holds non-integer labels")
    if len(y) != n:
        raise DataError(f"{where}: {name} has {len(y)} labels for {n} images")
    if len(y) and y.min() < 0:
        raise DataError(f"{where}: {name} has a negative label ({int(y.min())})")
    return y.astype(np.int64)


def _load_npz(options: _Options) -> _Raw:
    where = options.source
    path = Path(options.arg or "").expanduser()
    if not path.is_file():
        raise DataError(f"{where}: no such file: {path}")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(
            f"{where}: cannot read {path} as .npz ({' '.join(str(exc).split())})"
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(
            f"{where}: {path} is a single .npy array, not an .npz archive with x_train, y_train, x_test, y_test"
        )
    with npz:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in npz.files]
        if missing:
            raise DataError(
                f"{where}: missing {', '.join(missing)} (it has: {', '.join(npz.files) or 'nothing'})"
            )
        if ("x_val" in npz.files) != ("y_val" in npz.files):
            raise DataError(f"{where}: has one of x_val / y_val without the other")
        arrays: dict[str, np.ndarray] = {}
        for key in npz.files:
            try:
                arrays[key] = npz[key]
            except ValueError as exc:
                if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                    raise DataError(
                        f"{where}: array {key!r} holds Python objects (a pickle); cnnlab refuses "
                        f"pickles — save plain numeric arrays and a string array of class names"
                    ) from None
                raise DataError(f"{where}: cannot read array {key!r} ({exc})") from None
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DataError(f"{where}: cannot read array {key!r} ({exc})") from None
    x_train = _npz_images(arrays["x_train"], "x_train", where)
    x_test = _npz_images(arrays["x_test"], "x_test", where)
    y_train = _npz_labels(arrays["y_train"], "y_train", len(x_train), where)
    y_test = _npz_labels(arrays["y_test"], "y_test", len(x_test), where)
    x_val = y_val = None
    if "x_val" in arrays:
        x_val = _npz_images(arrays["x_val"], "x_val", where)
        y_val = _npz_labels(arrays["y_val"], "y_val", len(x_val), where)
    if "classes" in arrays:
        names = arrays["classes"]
        if names.dtype.kind == "S":
            names = np.char.decode(names, "utf-8")
        if names.dtype.kind != "U" or names.ndim != 1:
            raise DataError(
                f"{where}: classes must be a 1-D array of strings, got {names.dtype} {names.shape}"
            )
        classes = [str(c) for c in names]
    else:
        top = max(int(y.max()) for y in (y_train, y_test, y_val) if y is not None and len(y))
        classes = [str(i) for i in range(top + 1)]
    return _Raw(classes, x_train, y_train, x_test, y_test, x_val=x_val, y_val=y_val)


SOURCES.add(
    "npz",
    DataSource(
        name="npz",
        usage="npz:PATH",
        description="a NumPy .npz with x_train, y_train, x_test, y_test (optional classes, x_val, "
        "y_val); pickles refused",
        load=_load_npz,
        arg="required",
    ),
)
