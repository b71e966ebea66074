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


def first_line(error: BaseException | str, limit: int | None = 200) -> str:
    """The first line of an error's message, at most `limit` characters (None: all of it).

    Libraries' messages (onnx, tf2onnx, Keras, onnxruntime) run over many lines and a person needs
    one. An empty message gives the exception's type name ("unknown problem" for empty text).
    """
    text = str(error).strip()
    if not text:
        return type(error).__name__ if isinstance(error, BaseException) else "unknown problem"
    first = text.splitlines()[0]
    return first if limit is None or len(first) <= limit else first[: limit - 1] + "…"
