"""Property tests of the npz and folder loaders on generated inputs (hypothesis).

Whatever the input, a load either succeeds with a well-formed Dataset or raises a CnnlabError
with a one-line message; it never hangs (an alarm guards every example) and never writes
outside its own temporary folder (tar members with `..` or absolute paths included)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import tarfile
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.data import Dataset, load_dataset
from engine.errors import CnnlabError

SETTINGS = settings(
    max_examples=30,
    deadline=10_000,  # ms; generous for a loaded 2-core machine, the alarm catches hangs
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples every run: a failure reproduces
)
ALARM_SECONDS = 20


class Hang(Exception):
    pass


@contextlib.contextmanager
def no_hang() -> Iterator[None]:
    def expired(signum: int, frame: Any) -> None:
        raise Hang(f"a load took more than {ALARM_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(ALARM_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def check_load(source: str, work: Path, **kwargs: Any) -> None:
    """Load `source`; assert the outcome is a sound Dataset or a one-line CnnlabError, and
    that nothing was written outside `work` (watched: its parent folder)."""
    before = set(os.listdir(work.parent))
    try:
        with no_hang(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = load_dataset(source, cache_dir=work / "cache", **kwargs)
    except CnnlabError as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        event(f"refused: {type(exc).__name__}")
    else:
        event("loaded")
        assert isinstance(ds, Dataset)
        assert ds.x_train.dtype == np.uint8 and ds.x_train.ndim == 4 and ds.image_shape[2] == 3
        for split in ("train", "val", "test"):
            x, y = ds.split(split)
            assert len(x) == len(y) and x.shape[1:] == ds.x_train.shape[1:]
            assert y.dtype == np.int64 and (
                len(y) == 0 or 0 <= y.min() <= y.max() < len(ds.classes)
            )
    assert set(os.listdir(work.parent)) == before


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A parent folder holding one work folder per example; HOME, caches and cwd inside it."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "home" / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home" / "keras"))
    (tmp_path / "examples").mkdir()
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path / "home")
    return tmp_path / "examples"


# --------------------------------------------------------------------------------------- npz
small = st.integers(min_value=0, max_value=4)
shapes = st.lists(small, min_size=0, max_size=5).map(tuple)
dtypes = st.sampled_from(["uint8", "int16", "int64", "float32", "float64", "bool", "U3", "S2"])
special_values = st.sampled_from([0, 1, 255, 256, -1, 1_000_000, 2**40, np.nan, np.inf, 0.5])


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    shape = draw(shapes)
    dtype = draw(dtypes)
    n = int(np.prod(shape)) if shape else 1
    values = draw(st.lists(special_values, min_size=n, max_size=n))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return np.array(values, dtype=np.float64).reshape(shape).astype(dtype)
        except (ValueError, OverflowError):
            return np.zeros(shape, dtype=dtype)


@st.composite
def npz_contents(draw: st.DrawFn) -> dict[str, np.ndarray]:
    keys = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val", "classes", "other")
    out: dict[str, np.ndarray] = {}
    for key in keys:
        required = key in ("x_train", "y_train", "x_test", "y_test")
        odds = ["valid"] * 6 + ["random", "missing"] if required else ["missing", "valid", "random"]
        choice = draw(st.sampled_from(odds))
        if choice == "missing":
            continue
        if choice == "random":
            out[key] = draw(arrays())
        elif key.startswith("x_"):
            out[key] = np.full((4, 3, 3, 3), 100, np.uint8)
        elif key.startswith("y_"):
            out[key] = np.array([0, 1, 0, 1])
        elif key == "classes":
            out[key] = np.array(["a", "b"])
    return out


@SETTINGS
@given(
    contents=npz_contents(),
    cut=st.one_of(st.none(), st.none(), st.integers(0, 4000)),
    subset=st.sampled_from([None, 2, 10]),
)
def test_npz_loader_on_generated_files(
    sandbox: Path, contents: dict[str, np.ndarray], cut: int | None, subset: int | None
) -> None:
    """Generated arrays, saved whole or cut short at `cut` bytes (a truncated download)."""
    work = Path(tempfile.mkdtemp(dir=sandbox))
    path = work / "data.npz"
    np.savez(path, **contents)  # type: ignore[arg-type]
    if cut is not None:
        path.write_bytes(path.read_bytes()[:cut])
    check_load(f"npz:{path}", work, subset=subset)


# ----------------------------------------------------------------------------------- folders
def png(value: int, size: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (value, 50, 200 - value)).save(out, "PNG")
    return out.getvalue()


def jpeg(value: int, size: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (value, value, 0)).save(out, "JPEG")
    return out.getvalue()


segment = st.sampled_from(
    ["train", "test", "val", "a", "b", "c", ".hidden", "x y", "Ünï", "..", "."]
)
paths = st.lists(segment, min_size=1, max_size=4)
kinds = st.sampled_from(
    ["png", "png", "jpeg", "garbage", "empty", "dir", "symlink", "abs-symlink", "fifo"]
)


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[list[str], str, int]]:
    """(path parts, kind, a number for pixel values and sizes) per entry; valid files first so
    that most trees get past the layout checks and reach decoding."""
    base = [
        ([split, cls, f"{i}.png"], "png", i)
        for split in ("train", "test")
        for cls in ("a", "b")
        for i in range(draw(st.integers(1, 2)))
    ]
    extra = draw(st.lists(st.tuples(paths, kinds, st.integers(0, 40)), max_size=6))
    return base + extra


def build(root: Path, tree: list[tuple[list[str], str, int]]) -> None:
    """Create the tree on disk, skipping entries that the file system refuses."""
    for parts, kind, number in tree:
        path = root.joinpath(*parts)
        # Keep every generated entry inside root: ".." and "." only reach tar member names.
        if any(p in ("..", ".") for p in parts):
            continue
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "png":
                path.write_bytes(png(number * 5, 5 if number % 8 == 7 else 4))
            elif kind == "jpeg":
                path.write_bytes(jpeg(number * 5, 8))
            elif kind == "garbage":
                path.write_bytes(bytes(range(number)) * 3)
            elif kind == "empty":
                path.write_bytes(b"")
            elif kind == "dir":
                path.mkdir(exist_ok=True)
            elif kind == "symlink":  # relative: to a sibling, a parent (loop) or nowhere
                path.symlink_to(["..", ".", "0.png", "missing", "../.."][number % 5])
            elif kind == "abs-symlink":
                path.symlink_to(root if number % 2 else root / "train")
            elif kind == "fifo":
                os.mkfifo(path)


def pack(root: Path, archive: Path, tree: list[tuple[list[str], str, int]]) -> None:
    """A tar.gz of root's regular files and folders, plus the raw member names of `tree` (so
    `..`, `.` and absolute names reach the reader as they would in a hostile archive)."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                continue
            tar.add(path, arcname="/".join(path.relative_to(root).parts), recursive=False)
        for parts, kind, number in tree:
            name = "/".join(parts)
            if kind == "abs-symlink":
                name = "/" + name
            info = tarfile.TarInfo(name)
            if kind in ("symlink", "abs-symlink"):
                info.type = tarfile.SYMTYPE
                info.linkname = ["../../x", "/etc/passwd", "0.png"][number % 3]
                tar.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = png(number, 4) if kind in ("png", "jpeg") else b"\x00" * number
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@SETTINGS
@given(tree=trees(), as_tar=st.booleans(), resize=st.sampled_from([None, 4]))
def test_folder_loader_on_generated_trees(
    sandbox: Path, tree: list[tuple[list[str], str, int]], as_tar: bool, resize: int | None
) -> None:
    work = Path(tempfile.mkdtemp(dir=sandbox))
    root = work / "ds"
    root.mkdir()
    build(root, tree)
    source = root
    if as_tar:
        source = work / "ds.tar.gz"
        pack(root, source, tree)
    before = listing(root)
    check_load(f"folder:{source}", work, resize=resize)
    assert listing(root) == before  # the source is only read
