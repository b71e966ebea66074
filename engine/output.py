"""Printing for the CLI: Rich for people, JSON for machines. Shared by every command module."""

from __future__ import annotations

import json
import sys
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
    err_console.print(f"[bold red]engine: error:[/] {message}", highlight=False, soft_wrap=True)


def info(message: str) -> None:
    err_console.print(message, highlight=False, soft_wrap=True)
