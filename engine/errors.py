"""Errors the CLI turns into one clear line and a non-zero exit code (never a traceback)."""

from __future__ import annotations


class CnnlabError(Exception):
    """A problem the user can act on; `str()` is the one-line message shown to them."""

    exit_code = 1


class UsageError(CnnlabError):
    """Bad command-line usage or an invalid setting (exit code 2)."""

    exit_code = 2


class DataError(CnnlabError):
    """The data source is missing, malformed or unreadable."""


class WeightsError(CnnlabError):
    """Pretrained weights are missing and cannot be fetched."""


class RunError(CnnlabError):
    """A run folder is missing or unreadable."""
