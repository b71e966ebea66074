"""Named warnings for what a loader skips or follows in a folder or an archive.

Each kind is a `DataWarning` subclass, so callers (and tests) can filter or turn one into an
error. A loader collects them in `Notices` and emits one warning per kind, with a count and the
first few paths, so a dataset with thousands of links gives one line, not thousands.
"""

from __future__ import annotations

import warnings


class DataWarning(Warning):
    """Something in a data source was skipped or is unusual; the data still loaded."""


class UnsafeArchiveMember(DataWarning):
    """An archive member whose path or link leaves the archive (`..`, an absolute path)."""


class SkippedLink(DataWarning):
    """A link that was not followed: a link member of an archive, or a broken link on disk."""


class LinkLoop(DataWarning):
    """A folder link that points back to one of its own parent folders."""


class LinkOutsideRoot(DataWarning):
    """A link inside a data folder that points outside it (followed, but worth knowing)."""


class SpecialFile(DataWarning):
    """A FIFO, socket or device file among the images (never opened: reading one can block)."""


_EXAMPLES = 3


class Notices:
    """Collects skipped entries per warning kind and emits one warning per kind."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._seen: dict[type[DataWarning], tuple[str, list[str]]] = {}
        self._counts: dict[type[DataWarning], int] = {}
        self._recorded: list[tuple[type[DataWarning], str]] = []

    def add(self, kind: type[DataWarning], what: str, example: str) -> None:
        """Note one entry: `what` describes the kind ("skipped symbolic links"), `example` it."""
        _, examples = self._seen.setdefault(kind, (what, []))
        if len(examples) < _EXAMPLES:
            examples.append(example)
        self._counts[kind] = self._counts.get(kind, 0) + 1

    def replay(self, recorded: list[tuple[str, str]]) -> None:
        """Add messages `record()` gave earlier (kept in the decode cache with the images)."""
        for name, message in recorded:
            kind = _KINDS.get(name, DataWarning)
            self._recorded.append((kind, message))

    def record(self) -> list[tuple[str, str]]:
        """(kind name, message) pairs, JSON-able, for `replay`."""
        return [(kind.__name__, message) for kind, message in self.messages()]

    def messages(self) -> list[tuple[type[DataWarning], str]]:
        """(kind, one-line message) per kind noted, in the order first seen."""
        out = list(self._recorded)
        for kind, (what, examples) in self._seen.items():
            count = self._counts[kind]
            more = f", +{count - len(examples)} more" if count > len(examples) else ""
            out.append((kind, f"{self.where}: {what} ({count}): {', '.join(examples)}{more}"))
        return out

    def emit(self) -> None:
        for kind, message in self.messages():
            warnings.warn(message, kind, stacklevel=3)


_KINDS: dict[str, type[DataWarning]] = {
    kind.__name__: kind
    for kind in (UnsafeArchiveMember, SkippedLink, LinkLoop, LinkOutsideRoot, SpecialFile)
}
