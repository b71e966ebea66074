"""engine.data: every source, the stratified split, subsets, the decode cache and every error.

All data is made here (tiny PNG/JPEG files, tar.gz archives, .npz files, synthetic images):
never the network, never ../shared/data.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import socket
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import data as data_mod
from engine.data import CIFAR10_CLASSES, SYNTHETIC_CLASSES, Dataset, load_dataset
from engine.data import cifar10 as cifar10_mod
from engine.data import decode as decode_mod
from engine.data import tar as tar_mod
from engine.errors import DataError, UsageError

# ---------------------------------------------------------------------------------------------
# helpers: tiny image folders whose pixels say which class and which file they are
# ---------------------------------------------------------------------------------------------

CLASSES3 = ["cat", "dog", "emu"]


def image_bytes(
    label: int, index: int, *, size: tuple[int, int] = (8, 8), fmt: str = "PNG", mode: str = "RGB"
) -> bytes:
    """A flat image: red = 40 × label + 10 (so the label can be read back), green = index."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[..., 0] = 40 * label + 10
    pixels[..., 1] = index % 256
    pixels[..., 2] = 200
    image = Image.fromarray(pixels).convert(mode)
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def label_of(x: np.ndarray) -> np.ndarray:
    """Read back the label that `image_bytes` wrote into the red channel."""
    return (x[:, 0, 0, 0].astype(int) - 10 + 20) // 40


def make_folder(
    root: Path,
    classes: list[str] = CLASSES3,
    train: int = 10,
    test: int = 4,
    fmt: str = "PNG",
    val: int = 0,
) -> Path:
    """root/train/<class>/NNN.png (and test/, and val/ when asked), class-sorted like CIFAR's tar."""
    ext = "jpg" if fmt == "JPEG" else fmt.lower()
    for split, n in (("train", train), ("test", test), ("val", val)):
        if not n:
            continue
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                (folder / f"{i:03d}.{ext}").write_bytes(image_bytes(label, i, fmt=fmt))
    return root


def make_tar(
    folder: Path, archive: Path, top: str | None = "mydata", fmt: int = tarfile.PAX_FORMAT
) -> Path:
    """A .tar.gz of `folder`, inside one top-level folder `top` (or at the root when None)."""
    with tarfile.open(archive, "w:gz", format=fmt) as tar:
        if top:
            tar.add(folder, arcname=top)
        else:
            for child in sorted(folder.iterdir()):
                tar.add(child, arcname=child.name)
    return archive


def save_npz(path: Path, **arrays: object) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def sorted_npz(path: Path, per_class: int = 50, classes: int = 10, **extra: object) -> Path:
    """An .npz whose training images are sorted by class; pixel [0,0,0] = class, [0,0,1] = index."""
    n = per_class * classes
    y = np.repeat(np.arange(classes), per_class)
    x = np.zeros((n, 4, 4, 3), np.uint8)
    x[:, 0, 0, 0] = y
    x[:, 0, 0, 1] = np.arange(n) % 256
    x[:, 0, 0, 2] = np.arange(n) // 256
    yt = np.repeat(np.arange(classes), 5)
    xt = np.zeros((len(yt), 4, 4, 3), np.uint8)
    arrays = {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt, **extra}
    return save_npz(path, **arrays)


def ids(x: np.ndarray) -> set[int]:
    return set((x[:, 0, 0, 1].astype(int) + 256 * x[:, 0, 0, 2].astype(int)).tolist())


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cnnlab cache, so nothing leaks between tests or into ~/.cache."""
    cache = tmp_path / "cnnlab-cache"
    monkeypatch.setenv("CNNLAB_CACHE", str(cache))
    return cache


# ---------------------------------------------------------------------------------------------
# synthetic
# ---------------------------------------------------------------------------------------------


def test_synthetic_is_deterministic_with_the_expected_shapes() -> None:
    a = load_dataset("synthetic:300", seed=3)
    b = load_dataset("synthetic:300", seed=3)
    c = load_dataset("synthetic:300", seed=4)
    for split in ("train", "val", "test"):
        xa, ya = a.split(split)
        xb, yb = b.split(split)
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert not np.array_equal(a.x_train, c.x_train)
    assert a.classes == SYNTHETIC_CLASSES
    assert a.x_train.dtype == np.uint8 and a.y_train.dtype == np.int64
    assert a.image_shape == (32, 32, 3)
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == (240, 60, 60)
    counts = a.counts()
    assert set(counts["val"].values()) == {6} and set(counts["train"].values()) == {24}
    assert set(counts["test"].values()) == {6}


def test_synthetic_default_size_is_quick() -> None:
    # CPU seconds of this process, not wall time: other processes on a shared machine don't count.
    start = time.process_time()
    ds = load_dataset("synthetic")
    elapsed = time.process_time() - start
    assert ds.summary() == {
        "source": "synthetic",
        "classes": SYNTHETIC_CLASSES,
        "train": 4000,
        "val": 1000,
        "test": 1000,
        "image_shape": [32, 32, 3],
    }
    assert elapsed < 5  # about 1.5 s of CPU here
    # Images are not blank, and classes differ from each other on average.
    means = [ds.x_train[ds.y_train == k].mean(axis=(0, 3)) for k in range(10)]
    assert min(float(np.abs(means[0] - m).mean()) for m in means[1:]) > 1.0


@pytest.mark.slow
def test_synthetic_is_learnable_by_a_small_cnn() -> None:
    import keras

    keras.utils.set_random_seed(0)
    ds = load_dataset("synthetic:easy:600", seed=0)
    model = keras.Sequential(
        [
            keras.Input(ds.image_shape),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(ds.x_train, ds.y_train, epochs=3, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(ds.x_test, ds.y_test, verbose=0)
    assert accuracy > 0.3, f"synthetic data should be learnable: test accuracy {accuracy:.2f}"


# ---------------------------------------------------------------------------------------------
# split and subset
# ---------------------------------------------------------------------------------------------


def test_stratified_split_on_class_sorted_input(tmp_path: Path) -> None:
    ds = load_dataset(f"npz:{sorted_npz(tmp_path / 'sorted.npz')}", val_split=0.2, seed=1)
    counts = ds.counts()
    assert set(counts["val"].values()) == {10}  # 20 % of 50, for every class
    assert set(counts["train"].values()) == {40}
    # Shuffled, not class after class; no image in both parts; nothing lost.
    assert (np.diff(ds.y_train) != 0).sum() > 50
    assert ids(ds.x_train).isdisjoint(ids(ds.x_val))
    assert len(ids(ds.x_train) | ids(ds.x_val)) == 500
    # Labels travel with their images.
    assert np.array_equal(ds.x_train[:, 0, 0, 0], ds.y_train)
    assert np.array_equal(ds.x_val[:, 0, 0, 0], ds.y_val)
    other = load_dataset(f"npz:{tmp_path / 'sorted.npz'}", val_split=0.2, seed=2)
    assert ids(other.x_val) != ids(ds.x_val)


def test_subset_is_stratified_in_train_and_test() -> None:
    ds = load_dataset("synthetic:500", subset=100)
    total = {c: ds.counts()["train"][c] + ds.counts()["val"][c] for c in ds.classes}
    assert set(total.values()) == {10}
    assert len(ds.y_train) + len(ds.y_val) == 100 and len(ds.y_val) == 20
    assert set(ds.counts()["test"].values()) == {2}  # 100 // 5 = 20 test images


def test_tiny_subset_keeps_one_test_image_per_class_and_some_validation() -> None:
    ds = load_dataset("synthetic:100", subset=10)
    assert set(ds.counts()["test"].values()) == {1}
    assert len(ds.y_train) + len(ds.y_val) == 10
    assert len(ds.y_val) >= 1 and len(ds.y_train) >= 9


def test_subset_larger_than_the_data_uses_everything(tmp_path: Path) -> None:
    ds = load_dataset(f"npz:{sorted_npz(tmp_path / 's.npz', per_class=5)}", subset=10_000)
    assert len(ds.y_train) + len(ds.y_val) == 50


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"subset": 0}, "subset"), ({"val_split": 1.0}, "val_split"), ({"resize": 0}, "resize")],
)
def test_bad_options_are_usage_errors(kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(UsageError, match=word):
        load_dataset("synthetic:50", **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# folder:PATH and .tar.gz
# ---------------------------------------------------------------------------------------------


def test_folder_loads_with_labels_matching_images(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", train=10, test=4)
    ds = load_dataset(f"folder:{root}", val_split=0.2, seed=0)
    assert ds.classes == CLASSES3
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (24, 6, 12)
    assert ds.image_shape == (8, 8, 3)
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        assert np.array_equal(label_of(x), y)
    assert set(ds.counts()["val"].values()) == {2}


def test_folder_with_a_val_folder_uses_it(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", train=6, test=2, val=3)
    ds = load_dataset(f"folder:{root}")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (18, 9, 6)
    assert np.array_equal(label_of(ds.x_val), ds.y_val)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_gz_with_a_top_level_folder_matches_the_folder(tmp_path: Path, fmt: int) -> None:
    # A long class name forces the pax/GNU long-name records (ustar splits it into a prefix).
    classes = ["a" * 60 + "-long-class-name-" + "b" * 20, "dog"]
    root = make_folder(tmp_path / "imgs", classes=classes, train=5, test=2, fmt="JPEG")
    archive = make_tar(root, tmp_path / "imgs.tar.gz", top="cifar-like", fmt=fmt)
    from_tar = load_dataset(f"folder:{archive}", seed=5)
    from_dir = load_dataset(f"folder:{root}", seed=5)
    assert from_tar.classes == sorted(classes)
    for split in ("train", "val", "test"):
        assert np.array_equal(from_tar.split(split)[0], from_dir.split(split)[0])
        assert np.array_equal(from_tar.split(split)[1], from_dir.split(split)[1])


def test_tar_without_top_folder_and_the_tarfile_fallback_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_folder(tmp_path / "imgs", train=4, test=2)
    archive = make_tar(root, tmp_path / "flat.tar.gz", top=None)
    fast = load_dataset(f"folder:{archive}", cache_dir=tmp_path / "c1")

    def unusual(raw: object) -> object:
        raise tar_mod._UnusualTar("pretend")
        yield  # pragma: no cover - a generator, like the real reader

    monkeypatch.setattr(tar_mod, "_fast_tar_members", unusual)
    slow = load_dataset(f"folder:{archive}", cache_dir=tmp_path / "c2")
    assert np.array_equal(fast.x_train, slow.x_train) and np.array_equal(fast.y_test, slow.y_test)


def test_greyscale_rgba_and_palette_images_become_rgb(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", train=2, test=1)
    (root / "train" / "cat" / "grey.png").write_bytes(image_bytes(0, 7, mode="L"))
    (root / "train" / "cat" / "alpha.png").write_bytes(image_bytes(0, 8, mode="RGBA"))
    (root / "train" / "dog" / "palette.png").write_bytes(image_bytes(1, 9, mode="P"))
    (root / "train" / "dog" / "grey.jpg").write_bytes(image_bytes(1, 9, fmt="JPEG", mode="L"))
    ds = load_dataset(f"folder:{root}", val_split=0.0)
    assert ds.x_train.shape[1:] == (8, 8, 3) and len(ds.y_train) == 10
    grey = ds.x_train[
        (ds.x_train[:, 0, 0, 0] == ds.x_train[:, 0, 0, 1])
        & (ds.x_train[:, 0, 0, 1] == ds.x_train[:, 0, 0, 2])
    ]
    assert len(grey) == 2  # the two greyscale files, with R = G = B


def test_mixed_sizes_name_the_file_and_both_sizes_unless_resized(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", train=2, test=1)
    (root / "train" / "dog" / "big.png").write_bytes(image_bytes(1, 0, size=(12, 10)))
    with pytest.raises(DataError) as info:
        load_dataset(f"folder:{root}")
    message = str(info.value)
    assert "train/dog/big.png" in message and "12×10" in message and "8×8" in message
    assert "resize" in message and "\n" not in message
    ds = load_dataset(f"folder:{root}", resize=6)
    assert ds.image_shape == (6, 6, 3)
    assert len(ds.y_train) + len(ds.y_val) == 7


def test_resize_applies_to_every_source() -> None:
    assert load_dataset("synthetic:20", resize=16).image_shape == (16, 16, 3)


def folder_error(tmp_path: Path, setup: str) -> str:
    """Build a broken folder for `setup` and return the one-line DataError it gives."""
    root = tmp_path / "broken"
    if setup == "missing":
        return _error(f"folder:{tmp_path / 'nope'}")
    if setup == "no-splits":
        (root / "images" / "cat").mkdir(parents=True)
        (root / "other").mkdir()
    elif setup == "no-test":
        make_folder(root, train=2, test=0)
    elif setup == "no-classes":
        make_folder(root, train=2, test=1)
        for sub in (root / "test").iterdir():
            for f in sub.iterdir():
                f.unlink()
            sub.rmdir()
    elif setup == "empty-class":
        make_folder(root, train=2, test=1)
        (root / "train" / "fox").mkdir()
        (root / "test" / "fox").mkdir()
        (root / "test" / "fox" / "0.png").write_bytes(image_bytes(0, 0))
    elif setup == "mismatch":
        make_folder(root, train=2, test=1)
        (root / "test" / "emu").rename(root / "test" / "gnu")
    elif setup == "not-image":
        make_folder(root, train=2, test=1)
        (root / "train" / "dog" / "notes.txt").write_text("not a picture")
    elif setup == "truncated":
        make_folder(root, train=2, test=1, fmt="JPEG")
        data = image_bytes(1, 0, fmt="JPEG")
        (root / "test" / "dog" / "000.jpg").write_bytes(data[: len(data) // 2])
    elif setup == "plain-file":
        root.mkdir()
        root = root / "x.zip"
        root.write_bytes(b"PK\x03\x04 not a tar")
    return _error(f"folder:{root}")


def _error(source: str) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(source)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", ["no such file or folder", "nope"]),
        ("no-splits", ["no train/ and test/", "images/"]),
        ("no-test", ["no test/ folder"]),
        ("no-classes", ["test/ has no class folders"]),
        ("empty-class", ["train/fox/", "empty"]),
        ("mismatch", ["different classes", "only in train/: emu", "only in test/: gnu"]),
        ("not-image", ["train/dog/notes.txt", "not an image"]),
        ("truncated", ["test/dog/000.jpg", "unreadable"]),
        ("plain-file", ["neither a folder nor a .tar"]),
    ],
)
def test_folder_errors_say_what_and_where(tmp_path: Path, setup: str, expected: list[str]) -> None:
    message = folder_error(tmp_path, setup)
    for text in expected:
        assert text in message, message


def test_the_same_errors_come_from_a_tar(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", train=2, test=1)
    (root / "train" / "dog" / "notes.txt").write_text("not a picture")
    message = _error(f"folder:{make_tar(root, tmp_path / 'bad.tar.gz')}")
    assert "train/dog/notes.txt" in message
    root2 = make_folder(tmp_path / "imgs2", train=2, test=1)
    (root2 / "train" / "fox").mkdir()
    assert "train/fox/ is empty" in _error(f"folder:{make_tar(root2, tmp_path / 'empty.tar.gz')}")
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes((tmp_path / "empty.tar.gz").read_bytes()[:200])
    assert "cannot read the archive" in _error(f"folder:{corrupt}")


def test_hidden_files_and_readmes_are_ignored(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", train=2, test=1)
    (root / "README.txt").write_text("about")
    (root / "train" / "labels.csv").write_text("x")
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"\0\1")
    (root / "train" / ".cache").mkdir()
    ds = load_dataset(f"folder:{root}", val_split=0.0)
    assert len(ds.y_train) == 6


# ---------------------------------------------------------------------------------------------
# the decode cache
# ---------------------------------------------------------------------------------------------


def test_second_load_comes_from_the_cache_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_tar(make_folder(tmp_path / "imgs", train=4, test=2), tmp_path / "d.tar.gz")
    cache = tmp_path / "cache"
    first = load_dataset(f"folder:{archive}", cache_dir=cache)
    assert not first.from_cache
    assert len(list(cache.glob("*.npz"))) == 1

    def no_decoding(*args: object, **kwargs: object) -> object:
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(decode_mod, "_decode_chunk", no_decoding)
    second = load_dataset(f"folder:{archive}", cache_dir=cache)
    assert second.from_cache
    for split in ("train", "val", "test"):
        assert np.array_equal(first.split(split)[0], second.split(split)[0])
        assert np.array_equal(first.split(split)[1], second.split(split)[1])


def test_cache_is_rebuilt_when_the_archive_changes(tmp_path: Path) -> None:
    archive = make_tar(make_folder(tmp_path / "imgs", train=4, test=2), tmp_path / "d.tar.gz")
    cache = tmp_path / "cache"
    load_dataset(f"folder:{archive}", cache_dir=cache)
    make_tar(make_folder(tmp_path / "imgs", train=6, test=2), archive)
    os.utime(archive, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = load_dataset(f"folder:{archive}", cache_dir=cache, val_split=0.0)
    assert not changed.from_cache and len(changed.y_train) == 18
    assert len(list(cache.glob("*.npz"))) == 1  # the stale file was replaced, not kept


def test_folder_cache_notices_a_new_file(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", train=3, test=1)
    assert len(load_dataset(f"folder:{root}", val_split=0.0).y_train) == 9
    (root / "train" / "cat" / "new.png").write_bytes(image_bytes(0, 99))
    again = load_dataset(f"folder:{root}", val_split=0.0)
    assert not again.from_cache and len(again.y_train) == 10


def test_corrupt_cache_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    archive = make_tar(make_folder(tmp_path / "imgs", train=4, test=2), tmp_path / "d.tar.gz")
    cache = tmp_path / "cache"
    first = load_dataset(f"folder:{archive}", cache_dir=cache)
    (cached,) = cache.glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:300])  # truncated, as after a crash or a full disk
    rebuilt = load_dataset(f"folder:{archive}", cache_dir=cache)
    assert not rebuilt.from_cache and np.array_equal(first.x_train, rebuilt.x_train)
    assert load_dataset(f"folder:{archive}", cache_dir=cache).from_cache
    assert not list(cache.glob(".*.tmp"))  # no temp files left behind


def test_default_cache_location_follows_cnnlab_cache(tmp_path: Path, _private_cache: Path) -> None:
    assert data_mod.cache_root() == _private_cache
    load_dataset(f"folder:{make_folder(tmp_path / 'imgs', train=2, test=1)}")
    assert len(list((_private_cache / "data").glob("folder-imgs-*.npz"))) == 1


def test_progress_is_reported_and_throttled(tmp_path: Path) -> None:
    archive = make_tar(make_folder(tmp_path / "imgs", train=30, test=5), tmp_path / "d.tar.gz")
    calls: list[tuple[str, int, int]] = []
    load_dataset(f"folder:{archive}", progress=lambda *a: calls.append(a))
    stages = [c[0] for c in calls]
    assert "reading" in stages and "decoding" in stages
    assert ("decoding", 105, 105) in calls
    assert len(calls) < 20


# ---------------------------------------------------------------------------------------------
# npz:PATH
# ---------------------------------------------------------------------------------------------


def test_npz_with_classes_val_one_hot_and_float_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((20, 5, 5, 3)).astype(np.float32)  # 0..1 floats
    y = np.eye(2)[np.arange(20) % 2]  # one-hot
    path = save_npz(
        tmp_path / "d.npz",
        x_train=x,
        y_train=y,
        x_test=(x[:4, ..., 0] * 255).astype(np.uint8),  # greyscale (N, H, W)
        y_test=np.array([[0], [1], [0], [1]]),
        x_val=x[:6],
        y_val=np.arange(6) % 2,
        classes=np.array(["no", "yes"]),
    )
    ds = load_dataset(f"npz:{path}")
    assert ds.classes == ["no", "yes"]
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (20, 6, 4)
    assert ds.x_test.shape == (4, 5, 5, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_train.max() > 200


def test_npz_pickles_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    objects = np.empty(3, dtype=object)
    objects[:] = [np.zeros((2, 2, 3)), "evil", None]
    np.savez(path, x_train=objects, y_train=np.zeros(3), x_test=objects, y_test=np.zeros(3))
    message = _error(f"npz:{path}")
    assert "pickle" in message and "x_train" in message


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        (
            {"x_train": np.zeros((4, 4, 4, 3), np.uint8), "y_train": np.zeros(4)},
            "missing x_test, y_test",
        ),
        (
            {
                "x_train": np.zeros((4, 12)),
                "y_train": np.zeros(4),
                "x_test": np.zeros((2, 12)),
                "y_test": np.zeros(2),
            },
            "x_train has shape (4, 12)",
        ),
        (
            {
                "x_train": np.zeros((4, 4, 4, 3), np.uint8),
                "y_train": np.array([0, 1, 2, 5]),
                "x_test": np.zeros((2, 4, 4, 3), np.uint8),
                "y_test": np.array([0, 1]),
                "classes": np.array(["a", "b", "c"]),
            },
            "label 5 outside 0..2",
        ),
        (
            {
                "x_train": np.zeros((4, 4, 4, 3), np.uint8),
                "y_train": np.array([0, 1, 0]),
                "x_test": np.zeros((2, 4, 4, 3), np.uint8),
                "y_test": np.array([0, 1]),
            },
            "3 labels for 4 images",
        ),
        (
            {
                "x_train": np.full((4, 4, 4, 3), 300.0),
                "y_train": np.array([0, 1, 0, 1]),
                "x_test": np.zeros((2, 4, 4, 3), np.uint8),
                "y_test": np.array([0, 1]),
            },
            "outside 0..255",
        ),
        (
            {
                "x_train": np.zeros((4, 4, 4, 3), np.uint8),
                "y_train": np.array([0, 1, 0, 1]),
                "x_test": np.zeros((2, 6, 6, 3), np.uint8),
                "y_test": np.array([0, 1]),
            },
            "x_test images are (6, 6, 3)",
        ),
    ],
)
def test_npz_errors(tmp_path: Path, arrays: dict[str, np.ndarray], expected: str) -> None:
    message = _error(f"npz:{save_npz(tmp_path / 'bad.npz', **arrays)}")
    assert expected in message, message


def test_npz_missing_or_not_an_npz(tmp_path: Path) -> None:
    assert "no such file" in _error(f"npz:{tmp_path / 'none.npz'}")
    (tmp_path / "text.npz").write_text("hello")
    assert "cannot read" in _error(f"npz:{tmp_path / 'text.npz'}")
    np.save(tmp_path / "single.npy", np.zeros(3))
    assert "not an .npz" in _error(f"npz:{tmp_path / 'single.npy'}")


# ---------------------------------------------------------------------------------------------
# cifar10 (Keras' cache) — never the network
# ---------------------------------------------------------------------------------------------


def _write_fake_cifar_batches(folder: Path, per_batch: int = 20) -> None:
    """Batches in CIFAR-10's own pickled format (a dict of bytes keys), tiny."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in cifar10_mod._CIFAR10_BATCHES:
        labels = [i % 10 for i in range(per_batch)]
        pixels = rng.integers(0, 255, (per_batch, 3072), dtype=np.uint8)
        pixels[:, 0] = np.array(labels) * 20  # red of pixel (0, 0) says the label
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": pixels, b"labels": labels, b"batch_label": b"x"}, fh, protocol=2)


def test_cifar10_reads_keras_cache_without_keras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    _write_fake_cifar_batches(
        tmp_path / "keras" / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    )
    monkeypatch.setattr(
        cifar10_mod, "_download_cifar10", lambda d: pytest.fail("tried to download")
    )
    ds = load_dataset("cifar10", val_split=0.2)
    assert ds.classes == CIFAR10_CLASSES
    assert (len(ds.y_train) + len(ds.y_val), len(ds.y_test)) == (100, 20)
    assert ds.image_shape == (32, 32, 3) and ds.y_train.dtype == np.int64
    assert np.array_equal(ds.x_train[:, 0, 0, 0] // 20, ds.y_train)
    status = {s["name"]: s for s in data_mod.list_sources()}["cifar10"]
    assert status["cached"] is True and status["location"] == str(tmp_path / "keras" / "datasets")


def test_cifar10_cache_refuses_a_malicious_pickle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    folder = tmp_path / "keras" / "datasets" / "cifar-10-batches-py"  # the Keras 2 location
    _write_fake_cifar_batches(folder)
    (folder / "data_batch_3").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    message = _error("cifar10")
    assert "data_batch_3" in message and "unreadable" in message


def test_cifar10_offline_names_the_cache_folder_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def no_network(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    # Keras' real downloader runs, and fails at once on the name lookup.
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    before = socket.getdefaulttimeout()
    start = time.perf_counter()
    message = _error("cifar10")
    assert time.perf_counter() - start < 30
    datasets = tmp_path / "keras" / "datasets"
    assert str(datasets) in message
    assert "cifar-10-batches-py-target_archive" in message and "cifar-10-python.tar.gz" in message
    assert socket.getdefaulttimeout() == before
    status = {s["name"]: s for s in data_mod.list_sources()}["cifar10"]
    assert status["cached"] is False and status["available"] is False


# ---------------------------------------------------------------------------------------------
# naming sources, listing them, the Dataset API
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "imagenet",
            "unknown data source 'imagenet'; choose one of: synthetic[:easy][:N], cifar10, folder:PATH, npz:PATH",
        ),
        ("folder", "folder needs an argument: folder:PATH"),
        ("npz:", "npz needs an argument"),
        ("cifar10:x", "takes no argument"),
        ("synthetic:lots", "synthetic:N"),
        ("synthetic:3", "at least 10"),
    ],
)
def test_bad_source_names(source: str, expected: str) -> None:
    assert expected in _error(source)


def test_check_source_validates_without_loading() -> None:
    data_mod.check_source("folder:/does/not/matter")
    with pytest.raises(DataError, match="unknown data source"):
        data_mod.check_source("mnist")


def test_list_sources_is_json_able_and_complete() -> None:
    sources = data_mod.list_sources()
    assert [s["name"] for s in sources] == ["synthetic", "cifar10", "folder", "npz"]
    for s in sources:
        assert {"name", "usage", "description", "available", "cached", "location", "note"} <= set(s)
    json.dumps(sources)


def test_dataset_summary_counts_and_samples() -> None:
    ds = load_dataset("synthetic:50", subset=None)
    assert isinstance(ds, Dataset)
    json.dumps(ds.summary())
    json.dumps(ds.counts())
    samples = ds.samples(2)
    assert list(samples) == SYNTHETIC_CLASSES
    for k, (name, images) in enumerate(samples.items()):
        assert images.shape == (1, 32, 32, 3)  # synthetic:50 has 10 test images: one per class
        assert name == ds.classes[k]
    train_samples = ds.samples(3, split="train")
    assert all(len(v) == 3 for v in train_samples.values())
    with pytest.raises(UsageError):
        ds.samples(1, split="holdout")


def test_engine_data_imports_neither_tensorflow_nor_textual() -> None:
    import subprocess
    import sys

    code = (
        "import sys, engine.data as d; d.load_dataset('synthetic:20'); "
        "print(any(m in sys.modules for m in ('tensorflow', 'keras', 'textual')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_synthetic_variants_parse_and_differ() -> None:
    hard = load_dataset("synthetic:100", seed=1)
    assert np.array_equal(load_dataset("synthetic:hard:100", seed=1).x_train, hard.x_train)
    easy = load_dataset("synthetic:easy:100", seed=1)
    assert easy.summary() == {**hard.summary(), "source": "synthetic:easy:100"}
    assert np.array_equal(load_dataset("synthetic:easy:100", seed=1).x_test, easy.x_test)
    assert not np.array_equal(easy.x_train, hard.x_train)
    assert load_dataset("synthetic:easy").summary()["train"] == 4000
    for bad in ("synthetic:easy:x", "synthetic:3:4", "synthetic:medium"):
        with pytest.raises(DataError, match="synthetic:N or synthetic:easy:N"):
            load_dataset(bad)
