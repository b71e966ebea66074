"""Named warnings for what a loader skips or follows in a folder or an archive.

Each kind is a `DataWarning` subclass, so callers (and tests) can filter or turn one into an
error. A loader collects them in `Notices` and emits one warning per reason, with a count and the
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
    """Collects skipped entries per reason and emits one warning per reason."""

    def __init__(self, where: str) -> None:
        self.where = where
        # (kind, what) → (count, first examples): one line per reason, in the order first seen.
        self._seen: dict[tuple[type[DataWarning], str], tuple[int, list[str]]] = {}
        self._recorded: list[tuple[type[DataWarning], str]] = []

    def add(self, kind: type[DataWarning], what: str, example: str) -> None:
        """Note one entry: `what` says what was done ("skipped broken links"), `example` names it."""
        count, examples = self._seen.get((kind, what), (0, []))
        if len(examples) < _EXAMPLES:
            examples.append(example)
        self._seen[(kind, what)] = (count + 1, examples)

    def replay(self, recorded: list[tuple[str, str]]) -> None:
        """Add messages `record()` gave earlier (kept in the decode cache with the images)."""
        for name, message in recorded:
            self._recorded.append((_KINDS.get(name, DataWarning), message))

    def record(self) -> list[tuple[str, str]]:
        """(kind name, message) pairs, JSON-able, for `replay`."""
        return [(kind.__name__, message) for kind, message in self.messages()]

    def messages(self) -> list[tuple[type[DataWarning], str]]:
        """(kind, one-line message) per reason noted: recorded ones first, then in order seen."""
        out = list(self._recorded)
        for (kind, what), (count, examples) in self._seen.items():
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
