"""Where the images of a folder source are: train/<class>/*, test/<class>/*, val/ optional.

The same layout code serves a folder on disk and the members of a tar archive."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data.dataset import RawData
from engine.data.notices import LinkLoop, LinkOutsideRoot, Notices, SkippedLink, SpecialFile
from engine.errors import DataError

_IGNORED_FILES = {"thumbs.db", "desktop.ini"}


@dataclass
class Layout:
    """split → class → [(path relative to the layout root, file key)], and every class folder."""

    files: dict[str, dict[str, list[tuple[str, int]]]] = field(default_factory=dict)
    class_dirs: dict[str, set[str]] = field(default_factory=dict)


def is_hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX" or part.lower() in _IGNORED_FILES


def _split_name(part: str) -> str | None:
    low = part.lower()
    if low in ("train", "test"):
        return low
    if low in ("val", "valid", "validation"):
        return "val"
    return None


def build_layout(
    files: list[tuple[tuple[str, ...], int]], dirs: set[tuple[str, ...]], where: str
) -> Layout:
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
    layout = Layout()
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


def check_layout(layout: Layout, where: str) -> list[str]:
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


def assemble(
    layout: Layout, classes: list[str], results: dict[int, np.ndarray | str], where: str
) -> RawData:
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
    return RawData(
        classes,
        *arrays["train"],
        *arrays["test"],
        x_val=val[0] if val else None,
        y_val=val[1] if val else None,
    )


def walk_folder(
    root: Path, notices: Notices
) -> tuple[list[tuple[tuple[str, ...], str]], set[tuple[str, ...]], str]:
    """Every non-hidden file (parts relative to root, path) and folder under root, sorted, and
    a fingerprint of the files' names, sizes and mtimes (the cache key of a folder).

    Links are followed (datasets are often links into a pool of images), except broken ones and
    folder links back to a parent (a loop); FIFOs, sockets and devices are never opened, since
    reading one can block. Each is noted in `notices`. Plain strings and `os.scandir`
    throughout: `Path` objects cost ~30 µs each, which is most of a warm load for 60,000 files."""
    files: list[tuple[tuple[str, ...], str]] = []
    dirs: set[tuple[str, ...]] = set()
    fingerprint = hashlib.sha256()
    top = os.path.realpath(root)

    def inside(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

    def walk(folder: str, real: str, rel: tuple[str, ...]) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted((e for e in it if not is_hidden(e.name)), key=lambda e: e.name)
        except OSError as exc:
            where = "/".join(rel) or str(root)
            raise DataError(
                f"{notices.where}: cannot list {where}/ ({exc.strerror or exc})"
            ) from None
        for entry in entries:
            parts = (*rel, entry.name)
            shown = "/".join(parts)
            target = ""
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not os.path.exists(target):
                    notices.add(SkippedLink, "skipped broken links", shown)
                    continue
                if not inside(target, top):
                    notices.add(LinkOutsideRoot, "followed links to outside the folder", shown)
            if entry.is_dir():
                if target and inside(real, target):
                    notices.add(LinkLoop, "skipped folder links that loop back", shown)
                    continue
                dirs.add(parts)
                walk(entry.path, target or os.path.join(real, entry.name), parts)
            elif entry.is_file():
                try:
                    st = entry.stat()
                except OSError as exc:
                    raise DataError(
                        f"{notices.where}: {shown} cannot be read ({exc.strerror or exc})"
                    ) from None
                files.append((parts, entry.path))
                fingerprint.update(f"{shown}:{st.st_size}:{st.st_mtime_ns}\n".encode())
            else:
                notices.add(SpecialFile, "skipped special files (FIFO, socket, device)", shown)

    walk(str(root), top, ())
    return files, dirs, fingerprint.hexdigest()
