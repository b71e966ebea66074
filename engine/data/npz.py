"""`npz:PATH`: a NumPy .npz with x_train, y_train, x_test, y_test (pickles refused)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from engine.data.dataset import MAX_CLASSES, RawData
from engine.data.sources import LoadOptions, register_source
from engine.errors import DataError


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
    if len(y) and y.max() >= MAX_CLASSES:
        raise DataError(
            f"{where}: {name} has label {int(y.max()):,}; labels are class indices 0..C-1 "
            f"and cnnlab takes at most {MAX_CLASSES:,} classes (renumber them)"
        )
    return y.astype(np.int64)


def _check_npz_magic(path: Path, where: str) -> None:
    """DataError saying what the file is when it is not a zip (an .npz) or an .npy.

    Left to itself, `np.load` takes any other file for a pickle and says so, which misleads
    for a text file or an image."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise DataError(f"{where}: cannot read {path} ({exc.strerror or exc})") from None
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06") or head[:6] == b"\x93NUMPY":
        return
    if not head:
        what = "it is empty"
    elif head[:1] == b"\x80":
        what = "it is a Python pickle, which cnnlab refuses"
    elif b"\0" not in head and _is_text(head):
        what = "it is a text file"
    else:
        what = "it is not a zip archive"
    raise DataError(
        f"{where}: cannot read {path} as .npz: {what} (an .npz is the zip of arrays numpy.savez writes)"
    )


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # cut inside a multi-byte character at the end
    return True


@register_source(
    "npz",
    usage="npz:PATH",
    description="a NumPy .npz with x_train, y_train, x_test, y_test (optional classes, x_val, "
    "y_val); pickles refused",
    arg="required",
)
def _load_npz(options: LoadOptions) -> RawData:
    where = options.source
    path = Path(options.arg or "").expanduser()
    if not path.exists():
        raise DataError(f"{where}: no such file: {path}")
    if not path.is_file():  # a folder, or a FIFO whose read would block
        raise DataError(f"{where}: {path} is not a regular file")
    _check_npz_magic(path, where)
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
    return RawData(classes, x_train, y_train, x_test, y_test, x_val=x_val, y_val=y_val)
