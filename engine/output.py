"""Printing for the CLI: Rich for people, JSON for machines. Shared by every command module."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

# stdout carries results (and JSON); messages and errors go to stderr.
console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    """One JSON document on stdout (numpy values converted)."""

    def default(obj: Any) -> Any:
        if hasattr(obj, "tolist"):
            return obj.tolist()
        return str(obj)

    sys.stdout.write(json.dumps(data, indent=2, default=default) + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    """The one-line error a person sees (`engine: error: ...`)."""
    from rich.text import Text

    # Text, not markup: a message may contain brackets ("cnnlab[gpu]", "[Errno 2]").
    err_console.print(Text.assemble(("engine: error: ", "bold red"), message), soft_wrap=True)


def info(message: str) -> None:
    err_console.print(message, highlight=False, soft_wrap=True)


@contextmanager
def capture_fd2() -> Iterator[list[str]]:
    """Send file descriptor 2 to a temp file for the block; the captured text lands in the
    yielded list when the block ends (even by an exception).

    Native libraries (TensorFlow's C++ logging, onnxruntime's logger) write to fd 2 directly, so
    Python-level redirection cannot keep them off the user's screen.
    """
    out: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))
