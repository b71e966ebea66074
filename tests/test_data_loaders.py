"""Loaders meet odd inputs: huge labels, files that are not .npz, unknown sources, unsafe or
unusual archive members, links, link loops, FIFOs, unreadable files and decompression bombs.

Each one gives a named `DataWarning` (the data still loads) or a clear one-line `DataError`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data import load_dataset
from engine.data.decode import MAX_PIXELS
from engine.data.notices import (
    DataWarning,
    LinkLoop,
    LinkOutsideRoot,
    SkippedLink,
    SpecialFile,
    UnsafeArchiveMember,
)
from engine.errors import CnnlabError, DataError, UsageError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cnnlab-cache"))


def png(value: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (value, value, value)).save(out, "PNG")
    return out.getvalue()


def make_folder(root: Path, per_class: int = 2) -> Path:
    """root/{train,test}/{a,b}/N.png: the smallest valid folder source."""
    for split in ("train", "test"):
        for label, name in enumerate(("a", "b")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                (folder / f"{i}.png").write_bytes(png(40 + 150 * label + i))
    return root


def error_of(source: str) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(source, cache_dir=None)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def warnings_of(source: str, **kwargs: object) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_dataset(source, **kwargs)  # type: ignore[arg-type]
    return [w for w in caught if issubclass(w.category, DataWarning)]


def only(caught: list[warnings.WarningMessage], kind: type[DataWarning]) -> str:
    """The one warning of `kind`, one line."""
    found = [str(w.message) for w in caught if w.category is kind]
    assert len(found) == 1, [str(w.message) for w in caught]
    assert "\n" not in found[0]
    return found[0]


# --------------------------------------------------------------------------------------- npz
def npz(path: Path, y_train: np.ndarray, **extra: np.ndarray) -> Path:
    x = np.zeros((len(y_train), 4, 4, 3), np.uint8)
    arrays = {"x_train": x, "y_train": y_train, "x_test": x[:2], "y_test": np.array([0, 1])}
    np.savez(path, **arrays, **extra)  # type: ignore[arg-type]
    return path


def test_npz_huge_label_is_a_clear_error_not_a_million_classes(tmp_path: Path) -> None:
    message = error_of(f"npz:{npz(tmp_path / 'ids.npz', np.array([0, 1, 1_000_000]))}")
    assert "y_train has label 1,000,000" in message and "at most 10,000 classes" in message
    floats = np.array([0.0, 1.0, 1e300])
    assert "label" in error_of(f"npz:{npz(tmp_path / 'f.npz', floats)}")


def test_npz_too_many_class_names_is_a_clear_error(tmp_path: Path) -> None:
    names = np.array([f"c{i}" for i in range(10_001)])
    message = error_of(f"npz:{npz(tmp_path / 'n.npz', np.array([0, 1]), classes=names)}")
    assert "10,001 classes" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"x_train,y_train\n1,2\n", "it is a text file"),
        ("caf\u00e9 ünïcode text".encode(), "it is a text file"),
        (b"", "it is empty"),
        (b"\x80\x04\x95 pickled", "Python pickle"),
        (b"\x89PNG\r\n\x1a\n\0\0binary", "not a zip archive"),
    ],
)
def test_a_file_that_is_not_an_npz_says_what_it_is(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    message = error_of(f"npz:{path}")
    assert expected in message and "cannot read" in message
    if expected != "Python pickle":
        assert "pickle" not in message


def test_npz_that_is_a_folder_or_a_fifo_is_not_a_regular_file(tmp_path: Path) -> None:
    assert "not a regular file" in error_of(f"npz:{tmp_path}")
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    assert "not a regular file" in error_of(f"npz:{fifo}")  # and no hang reading it


# ----------------------------------------------------------------------------- source names
def test_unknown_source_scheme_is_a_usage_error_exit_2(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown data source 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(UsageError, match="needs an argument"):
        load_dataset("npz")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CNNLAB_CACHE": str(tmp_path / "c")}
    out = subprocess.run(
        [sys.executable, "-m", "engine", "data", "mnist:train"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert "unknown data source 'mnist:train'" in out.stderr and "Traceback" not in out.stderr


# ---------------------------------------------------------------------------------- archives
def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_link(tar: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


def archive_with(tmp_path: Path, extra: list[tuple[str, str, str]], fmt: int) -> Path:
    """A valid tar.gz of make_folder plus `extra` members: (kind, name, target or "")."""
    root = make_folder(tmp_path / "src")
    archive = tmp_path / f"odd-{fmt}.tar.gz"
    with tarfile.open(archive, "w:gz", format=fmt) as tar:
        tar.add(root, arcname="data")
        for kind, name, target in extra:
            if kind == "file":
                add_bytes(tar, name, png(7))
            elif kind == "symlink":
                add_link(tar, name, target)
            elif kind == "hardlink":
                add_link(tar, name, target, tarfile.LNKTYPE)
            else:
                info = tarfile.TarInfo(name)
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
    return archive


ODD_MEMBERS = [
    ("file", "../evil/train/a/x.png", ""),
    ("file", "data/train/../../escape.png", ""),
    ("file", "/abs/train/a/y.png", ""),
    ("symlink", "data/train/a/passwd.png", "/etc/passwd"),
    ("symlink", "data/train/a/up.png", "../../../../outside.png"),
    ("hardlink", "data/train/a/hard.png", "../outside.png"),
    ("symlink", "data/train/a/same.png", "0.png"),
    ("fifo", "data/train/a/pipe.png", ""),
]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("reader", ["fast", "tarfile"])
def test_archive_members_that_escape_links_and_fifos_are_named_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: int, reader: str
) -> None:
    if reader == "tarfile":
        from engine.data import tar as tar_mod

        def unusual(raw: object) -> object:
            raise tar_mod._UnusualTar("pretend")
            yield  # pragma: no cover - a generator, like the real reader

        monkeypatch.setattr(tar_mod, "_fast_tar_members", unusual)
    archive = archive_with(tmp_path, ODD_MEMBERS, fmt)
    caught = warnings_of(f"folder:{archive}")
    unsafe = sorted(str(w.message) for w in caught if w.category is UnsafeArchiveMember)
    assert all("\n" not in m for m in unsafe) and len(unsafe) == 4, unsafe
    for reason in (
        "members with an absolute path (1): /abs/train/a/y.png",
        "links to an absolute path (1): data/train/a/passwd.png -> /etc/passwd",
        "links that point outside the archive (2): data/train/a/up.png -> "
        "../../../../outside.png, data/train/a/hard.png -> ../outside.png",
        "climbs out with .. (2): ../evil/train/a/x.png, data/train/../../escape.png",
    ):
        assert sum(reason in m for m in unsafe) == 1, (reason, unsafe)
    assert "data/train/a/same.png" in only(caught, SkippedLink)
    assert "data/train/a/pipe.png" in only(caught, SpecialFile)
    # The images themselves loaded, without any skipped member.
    ds = load_dataset(f"folder:{archive}", val_split=0.0)
    assert len(ds.y_train) == 4 and ds.from_cache
    # ... and a cached load repeats the warnings, since the archive is not read again.
    assert {w.category for w in warnings_of(f"folder:{archive}")} == {
        UnsafeArchiveMember,
        SkippedLink,
        SpecialFile,
    }


# ----------------------------------------------------------------------------------- folders
def test_folder_links_are_followed_and_loops_broken_links_and_fifos_are_warned(
    tmp_path: Path,
) -> None:
    root = make_folder(tmp_path / "ds")
    outside = tmp_path / "pool"
    outside.mkdir()
    (outside / "far.png").write_bytes(png(90))
    (root / "train" / "a" / "far.png").symlink_to(outside / "far.png")
    (root / "train" / "a" / "loop").symlink_to(root / "train")  # a loop
    (root / "train" / "b" / "self").symlink_to(".")  # another, relative
    (root / "train" / "a" / "gone.png").symlink_to(tmp_path / "missing.png")
    os.mkfifo(root / "train" / "b" / "pipe.png")
    caught = warnings_of(f"folder:{root}", val_split=0.0)
    assert "train/a/far.png" in only(caught, LinkOutsideRoot)
    loops = only(caught, LinkLoop)
    assert "train/a/loop" in loops and "train/b/self" in loops and "(2)" in loops
    assert "train/a/gone.png" in only(caught, SkippedLink)
    assert "train/b/pipe.png" in only(caught, SpecialFile)
    ds = load_dataset(f"folder:{root}", val_split=0.0)
    assert len(ds.y_train) == 5  # four images and the one reached through a link


def test_a_fifo_given_as_the_folder_is_an_error_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "data.tar"
    os.mkfifo(fifo)
    assert "special file" in error_of(f"folder:{fifo}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_files_and_folders_are_one_line_errors(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "ds")
    (root / "train" / "a" / "0.png").chmod(0)
    assert "train/a/0.png cannot be read" in error_of(f"folder:{root}")
    (root / "train" / "a" / "0.png").chmod(0o644)
    (root / "test" / "b").chmod(0)
    try:
        assert "cannot list test/b/" in error_of(f"folder:{root}")
    finally:
        (root / "test" / "b").chmod(0o755)


def test_a_dangling_image_path_is_a_one_line_error(tmp_path: Path) -> None:
    """What an unreadable file looks like when running as root: a file gone between the
    listing and the read (here, a file replaced by a folder of the same name)."""
    from engine.data.decode import _decode_chunk

    (tmp_path / "x.png").mkdir()
    (result,) = _decode_chunk([str(tmp_path / "x.png")], None)
    assert isinstance(result, str) and result.startswith("cannot be read (")


@pytest.mark.parametrize("where", ["folder", "archive"])
def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path, where: str) -> None:
    root = make_folder(tmp_path / "ds")
    side = int(MAX_PIXELS**0.5) + 64
    bomb = io.BytesIO()
    Image.new("1", (side, side)).save(bomb, "PNG")  # a few kB claiming ~40 megapixels
    assert len(bomb.getvalue()) < 200_000
    (root / "train" / "b" / "bomb.png").write_bytes(bomb.getvalue())
    source = root
    if where == "archive":
        source = tmp_path / "ds.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(root, arcname="ds")
    message = error_of(f"folder:{source}")
    assert f"train/b/bomb.png is {side}×{side} pixels" in message and "megapixels" in message


def test_every_odd_input_error_is_a_cnnlab_error(tmp_path: Path) -> None:
    """The one class the CLI turns into one line and an exit code, whatever the loader."""
    path = tmp_path / "t.npz"
    path.write_text("hello")
    for source in (f"npz:{path}", "nosuch", f"folder:{tmp_path / 'none'}"):
        with pytest.raises(CnnlabError):
            load_dataset(source)
