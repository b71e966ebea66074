"""`cnnlab [PATH] [--runs-dir DIR] [--data SOURCE] [--lang LANG]` (also `python -m tui`): open the TUI.

PATH, when given, is a run folder or an .onnx file to open in the model inspector.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()  # before the imports below, for the first-frame figure

import argparse  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402


def keras_home() -> Path:
    """Where Keras caches datasets and weights: $KERAS_HOME, else ~/.keras."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def default_data_source() -> tuple[str, str]:
    """`cifar10` when Keras' cache has it, else `synthetic`; and a sentence saying which and why."""
    cache = keras_home() / "datasets"
    if (cache / "cifar-10-batches-py").is_dir():
        return "cifar10", ""
    from tui.i18n import _

    return "synthetic", _(
        "CIFAR-10 is not in Keras' cache ({folder}), so experiments use the small offline "
        "'synthetic' set. Pass --data cifar10 once it is downloaded."
    ).format(folder=f"{cache}/cifar-10-batches-py")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Interactive terminal lab for CNNs and transfer learning on CIFAR-10.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="a run folder or an .onnx file to open in the model inspector",
    )
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="runs root (default: $CNNLAB_RUNS, else ./runs)",
    )
    parser.add_argument(
        "--data",
        default=None,
        help="data source for new experiments: cifar10, synthetic, folder:PATH, npz:PATH "
        "(default: cifar10 when Keras has it cached, else synthetic)",
    )
    parser.add_argument(
        "--lang",
        default=None,
        metavar="LANG",
        help="language of the app and its reports: en, es (default: from LC_ALL/LANG, else en)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Start-up makes a few hundred thousand objects that all live on; the cyclic collector
    # ran ~130 times over them before the first frame (~10 % of the start). It is held off
    # until the app has drawn its first frame (tui.app.resume_gc), and at the latest until
    # the app ends.
    gc.disable()
    try:
        return _run(args)
    finally:
        gc.enable()


def _run(args: argparse.Namespace) -> int:
    from engine.errors import UsageError
    from engine.i18n import resolve_language
    from engine.paths import default_runs_root
    from tui.app import CnnLabApp
    from tui.engine_client import EngineClient
    from tui.i18n import set_language

    if args.path is not None and not args.path.exists():
        print(f"cnnlab: error: {args.path}: no such file or folder", file=sys.stderr)
        return 2
    try:
        lang = resolve_language(args.lang)
    except UsageError as exc:
        print(f"cnnlab: error: {exc}", file=sys.stderr)
        return 2
    set_language(lang)  # the start-up note below is in the app's language too
    if args.data:
        data, note = args.data, ""
    else:
        data, note = default_data_source()
    runs_root = args.runs_dir if args.runs_dir is not None else default_runs_root()
    app = CnnLabApp(
        engine=EngineClient(),
        runs_root=runs_root,
        data_source=data,
        data_note=note,
        open_target=args.path,
        started=_STARTED,
        lang=lang,
    )
    app.run()
    timing = os.environ.get("CNNLAB_TIMING")
    if timing and app.first_frame_seconds is not None:
        line = f"cnnlab: first frame after {app.first_frame_seconds:.3f} s"
        if app.ready_seconds is not None:
            line += f", settings form ready after {app.ready_seconds:.3f} s"
        line += " (since the process started)\n"
        if timing in ("1", "yes"):
            sys.stdout.write(line)  # (stderr belongs to Textual while it runs)
        else:
            with open(timing, "a", encoding="utf-8") as fh:
                fh.write(line)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
