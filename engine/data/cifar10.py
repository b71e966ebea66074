"""`cifar10`: CIFAR-10 through Keras' downloader and cache (Keras is imported only to download)."""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.dataset import RawData
from engine.data.sources import LoadOptions, register_source
from engine.errors import DataError

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


@register_source(
    "cifar10",
    usage="cifar10",
    description="CIFAR-10, 50,000 train / 10,000 test, 32×32 RGB, through Keras' downloader and cache",
    status=_cifar10_status,
)
def _load_cifar10(options: LoadOptions) -> RawData:
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
    return RawData(list(CIFAR10_CLASSES), x_train, y_train, x_test, y_test)
