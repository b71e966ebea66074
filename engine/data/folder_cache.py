"""cnnlab's cache of decoded folder sources: one uncompressed .npz per (path, resize)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.dataset import RawData, check_raw

# Bump when the decoded-cache layout or the decoding itself changes: old files are rebuilt.
_CACHE_VERSION = 1


def folder_key(path: Path, resize: int | None, fingerprint: str | None) -> str:
    """Cache key: resolved path + resize + size and mtime (of the archive, or of every file)."""
    if fingerprint is None:
        st = path.stat()
        fingerprint = f"{st.st_size}:{st.st_mtime_ns}"
    return hashlib.sha256(f"v{_CACHE_VERSION}|{path}|{resize}|{fingerprint}".encode()).hexdigest()


def cache_file(cache_dir: Path, path: Path, resize: int | None, key: str) -> Path:
    """`folder-<name>-<hash of path>-r<resize>-<key>.npz`: readable, one per (path, resize)."""
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in path.name)[:60] or "root"
    where = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return cache_dir / f"folder-{slug}-{where}-r{resize or 0}-{key[:16]}.npz"


_CACHE_KEYS = ("x_train", "y_train", "x_test", "y_test", "classes", "meta")


def read_cache(file: Path, key: str) -> RawData | None:
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
            raw = RawData(
                classes=[str(c) for c in npz["classes"]],
                x_train=npz["x_train"],
                y_train=npz["y_train"],
                x_test=npz["x_test"],
                y_test=npz["y_test"],
                x_val=npz["x_val"] if has_val else None,
                y_val=npz["y_val"] if has_val else None,
                from_cache=True,
                notices=[(str(k), str(m)) for k, m in meta.get("notices", [])],
            )
        check_raw(raw, str(file))
        return raw
    except Exception:  # truncated, not a zip, wrong shapes...: decode again and overwrite it
        return None


def write_cache(file: Path, key: str, raw: RawData, source_path: Path) -> None:
    """Write the decoded arrays atomically (temp + rename) and drop older versions of them.

    Uncompressed on purpose: reading 180 MB back is far faster than inflating it."""
    arrays: dict[str, Any] = {
        "x_train": raw.x_train,
        "y_train": raw.y_train,
        "x_test": raw.x_test,
        "y_test": raw.y_test,
        "classes": np.array(raw.classes, dtype=str),
        "meta": np.array(
            json.dumps(
                {
                    "version": _CACHE_VERSION,
                    "key": key,
                    "source": str(source_path),
                    "notices": raw.notices,
                }
            )
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
