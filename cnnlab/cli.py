"""The `engine` command line: argparse front door for every headless command.

Commands live in modules that each expose `add_commands(subparsers)`; every handler takes the
parsed namespace and returns an exit code: 0 ok, 1 failed, 2 bad usage, 130 cancelled.
Errors the user can act on (`CnnlabError`) become one line on stderr, never a traceback.
TensorFlow is imported by the handlers that need it, after their flags are checked, so a
mistake is reported before TensorFlow's seconds-long import.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from engine import __version__
from engine.errors import CnnlabError, first_line
from engine.output import error

# Modules contributing subcommands, in the order `engine --help` lists them.
COMMAND_MODULES = (
    "engine.commands",
    "cnnlab.doctor",
    "export.cli",
    "export.inspect_cli",
    "engine.report.cli",
    "export.deploy.cli",
    "export.diff_cli",
)

# Commands whose handlers expect TensorFlow already imported (quietly) before they start.
TF_FIRST_COMMANDS = {"export"}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in our one-line style, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        error(message)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="engine",
        description="cnnlab's headless engine: data, experiments, runs, ONNX export and inspection.",
        epilog="Exit codes: 0 ok, 1 failed, 2 bad usage, 130 cancelled (SIGINT).",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab engine {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not os.environ.get("CNNLAB_DEBUG"):
        import warnings

        # Library UserWarnings (e.g. Keras on non-square ImageNet shapes) are not the user's problem;
        # what matters is reported by our own events and messages.
        warnings.simplefilter("ignore", UserWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        if args.command in TF_FIRST_COMMANDS:
            from engine.tfquiet import load_tensorflow

            load_tensorflow()
        code: int = args.handler(args)
    except CnnlabError as exc:
        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except MemoryError as exc:  # e.g. a data source asked for more images than memory holds
        first = str(exc).splitlines()[0] if str(exc) else "no details"
        error(f"not enough memory: {first}")
        return 1
    except OSError as exc:  # the filesystem said no: a missing folder, a file that is a folder,
        # permission denied, disk full. The user can act on it, so it is not an internal error.
        if os.environ.get("CNNLAB_DEBUG"):
            raise
        error(_os_error_line(exc))
        return 1
    except Exception as exc:  # a bug or an unforeseen failure: one line, traceback on request
        if os.environ.get("CNNLAB_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        error(
            f"internal error: {type(exc).__name__}: {first} (set CNNLAB_DEBUG=1 for the traceback)"
        )
        return 1
    return code


def _os_error_line(exc: OSError) -> str:
    """`/out/x.csv: No such file or directory` (the path the filesystem refused, and why)."""
    reason = exc.strerror or first_line(exc)
    target = exc.filename2 if exc.filename2 is not None else exc.filename
    # An atomic write fails on renaming its hidden temp file over the target: name the target.
    return f"{target}: {reason}" if target is not None else f"{type(exc).__name__}: {reason}"


if __name__ == "__main__":
    sys.exit(main())
