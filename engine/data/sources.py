"""The registry of data sources and `load_dataset`, which turns a source string into a Dataset.

A source is a registered loader callable (`@register_source`) selected with a string such as
`"synthetic"`, `"synthetic:600"`, `"cifar10"`, `"folder:PATH"` or `"npz:PATH"`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.data.dataset import Dataset, RawData, check_raw, resize_raw
from engine.data.split import subset_and_split
from engine.errors import DataError, UsageError
from engine.registry import Registry, UnknownName

Progress = Callable[[str, int, int], None]


class SourceUsageError(UsageError, DataError):
    """A source string that names no registered source, or misuses one: a usage error (exit
    code 2) that is also a DataError, so config checks that collect data problems see it."""


CACHE_ENV = "CNNLAB_CACHE"


@dataclass
class LoadOptions:
    """Everything a source loader may need besides its argument."""

    source: str
    arg: str | None
    resize: int | None
    seed: int
    cache_dir: Path
    progress: Throttle


class Throttle:
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


# A source's loader: the registered callable that reads the data.
Loader = Callable[[LoadOptions], RawData]


@dataclass(frozen=True)
class DataSource:
    """A registered data source: how to name it, what it is, how to load it."""

    name: str
    usage: str  # how to write it, e.g. "folder:PATH"
    description: str
    load: Loader
    arg: str = "none"  # "none": takes no argument; "optional"; "required"
    status: Callable[[], dict[str, Any]] = field(default=lambda: {})


SOURCES: Registry[DataSource] = Registry("data source")


def register_source(
    name: str,
    *,
    usage: str,
    description: str,
    arg: str = "none",
    status: Callable[[], dict[str, Any]] | None = None,
) -> Callable[[Loader], Loader]:
    """Decorator registering a loader as data source `name`; adding a source is one function."""

    def deco(load: Loader) -> Loader:
        SOURCES.add(
            name,
            DataSource(name, usage, description, load, arg, status or (lambda: {})),
        )
        return load

    return deco


def cache_root() -> Path:
    """cnnlab's cache folder: `$CNNLAB_CACHE`, else `~/.cache/cnnlab`."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cnnlab"


def _usages() -> str:
    return ", ".join(entry.usage for _, entry in SOURCES.items())


def _resolve(source: str) -> tuple[DataSource, str | None]:
    """Split `"name:arg"` and find the registered source; SourceUsageError (listing them) if
    unknown or given a wrong argument."""
    name, sep, arg = source.strip().partition(":")
    try:
        entry = SOURCES.get(name)
    except UnknownName:
        raise SourceUsageError(
            f"unknown data source {source!r}; choose one of: {_usages()}"
        ) from None
    value: str | None = arg.strip() if sep else None
    if entry.arg == "required" and not value:
        raise SourceUsageError(f"data source {name} needs an argument: {entry.usage}")
    if entry.arg == "none" and sep:
        raise SourceUsageError(f"data source {name} takes no argument: write just {name!r}")
    return entry, value


def check_source(source: str) -> None:
    """Raise SourceUsageError (a DataError) if `source` does not name a registered source
    correctly; nothing is loaded."""
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
    options = LoadOptions(
        source=source,
        arg=arg,
        resize=resize,
        seed=seed,
        cache_dir=Path(cache_dir) if cache_dir is not None else cache_root() / "data",
        progress=Throttle(progress),
    )
    raw = entry.load(options)
    check_raw(raw, source)
    if resize is not None:
        raw = resize_raw(raw, resize)
    return subset_and_split(raw, source, subset=subset, val_split=val_split, seed=seed)
