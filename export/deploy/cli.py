"""`engine deploy RUN|FILE`: variants side by side, and int8's error layer by layer.

Importing this module is cheap: onnx and onnxruntime load inside the handler.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.markup import escape

from engine.output import console, info, print_json
from export.providers import add_tensorrt_arguments

# Mirrors of export.deploy constants, so that building the parser imports nothing heavy.
VARIANT_NAMES = ("fp32", "fp16", "int8", "int8-dynamic")
CALIBRATE_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_CALIBRATION = 256
LAYER_ROWS = 15


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _exclude(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def cmd_deploy(args: argparse.Namespace) -> int:
    from engine.runs import default_runs_root
    from export.deploy.lab import deploy
    from export.providers import configure_tensorrt, tensorrt_from_args

    configure_tensorrt(tensorrt_from_args(args))
    result = deploy(
        args.target,
        variants=args.variants,
        providers=args.provider,
        calibration=args.calibration,
        calibrate_method=args.calibrate_method,
        exclude=_exclude(args.exclude),
        data=args.data,
        preprocessing=args.preprocessing,
        runs_root=args.runs_dir if args.runs_dir is not None else default_runs_root(),
        test_images=args.test_images,
        latency_runs=args.latency_runs,
        throughput_repeats=args.throughput_repeats,
        optimization=args.optimization,
        activation_type=args.activation_type,
        reduce_range=args.reduce_range,
        layer_error=args.layer_error,
        store=not args.no_store,
        progress=lambda line: info(escape(f"{line} …")),
    )
    if args.json:
        print_json(result)
        return 0
    print_deploy(result)
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}"


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def print_deploy(result: dict[str, Any]) -> None:
    """The variants table (one row per variant and provider), then the layer error list."""
    from rich.table import Table

    variants = result["variants"]
    first = variants[0] if variants else {}
    _say(
        f"{result['model']}: {len(variants)} variant(s) on {', '.join(result['providers'])}; "
        f"{first.get('test_images', 0)} test images of {first.get('data') or 'no data (accuracy n/a)'}"
    )
    for note in result["notes"]:
        info(escape(f"note: {note}"))
    # No column rules and one space between columns, so the ten columns fit 80 characters.
    table = Table(
        box=None,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        header_style="bold underline",
        title="variants: latency in ms at batch 1, img/s at batch 256",
    )
    for col in (
        "variant",
        "provider",
        "MB",
        "acc %",
        "agree %",
        "max Δp",
        "p50",
        "p90",
        "p99",
        "img/s",
    ):
        left = col in ("variant", "provider")
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
    for entry in variants:
        for row in entry["results"]:
            provider = (row.get("provider") or {}).get("primary") or row["provider"]["requested"]
            size = f"{entry['size_bytes'] / 1e6:.2f}"
            if row.get("error"):
                table.add_row(entry["variant"], provider, size, escape(row["error"]))
                continue
            lat, thr = row["latency_ms"], row["throughput"]
            timed = bool(lat["runs"])
            table.add_row(
                entry["variant"],
                provider,
                size,
                _pct(row["accuracy"]),
                _pct(row["agreement"]),
                _num(row["max_abs_dprob"], ".2g"),
                _num(lat["p50"] if timed else None, ".3g"),
                _num(lat["p90"] if timed else None, ".3g"),
                _num(lat["p99"] if timed else None, ".3g"),
                _num(thr["images_per_s"], ",.0f"),
            )
    console.print(table)
    for entry in variants:
        build = entry["build"]
        detail = ", ".join(
            f"{k} {v}"
            for k, v in build.items()
            if k not in ("calibration",) and v not in ([], None)
        )
        calib = build.get("calibration")
        if calib:
            detail += (
                f", calibrated on {calib['images']} {calib['split']} images of {calib['source']}"
            )
        _say(f"{entry['variant']:>12}: {entry['file']} ({detail})")
    if result.get("layer_error"):
        print_layer_error(result["layer_error"])
    if result.get("stored"):
        info(f"stored in run {result['run_id']} (onnx.variants)")


def print_layer_error(rows: list[dict[str, Any]], limit: int = LAYER_ROWS) -> None:
    from rich.table import Table

    table = Table(
        show_edge=False,
        title=f"int8 vs fp32, per node output (worst {min(limit, len(rows))} of {len(rows)})",
    )
    for col in ("node", "op", "SQNR dB", "rel L2", "max |Δ|"):
        # Node names are what --exclude takes: fold long ones, never cut them.
        table.add_column(
            col,
            justify="left" if col in ("node", "op") else "right",
            overflow="fold" if col == "node" else "ellipsis",
            no_wrap=col != "node",
        )
    for row in rows[:limit]:
        sqnr = row["sqnr_db"]
        table.add_row(
            escape(row["node"]),
            row["op"],
            "exact" if sqnr is None else ("-inf" if math.isinf(sqnr) else f"{sqnr:.1f}"),
            _num(row["rel_l2"], ".3g"),
            _num(row["max_abs"], ".3g"),
        )
    console.print(table)
    _say("keep a node in float with --exclude NODE[,NODE] and run again")


def add_commands(sub: Any) -> None:
    """Register `deploy` on the engine's subparsers."""
    p = sub.add_parser(
        "deploy",
        help="build fp32/fp16/int8 variants of an ONNX model and compare them per provider",
        description="Write variants beside the run (<run>/deploy/*.onnx): fp32 optimized offline by "
        "onnxruntime, fp16 (fp32 inputs/outputs; meant for GPUs), int8 static (QDQ, per-channel, "
        "calibrated on N training images of the run's own data) and int8 dynamic. Each is measured on "
        "every provider that loads: size, test accuracy, top-1 agreement and max |Δprob| against fp32, "
        "latency p50/p90/p99 at batch 1, throughput at batch 256. Stored in run.json (onnx.variants).",
    )
    p.add_argument("target", metavar="RUN|FILE", help="a run (its float export) or an .onnx file")
    p.add_argument(
        "--variants",
        default=",".join(VARIANT_NAMES),
        help=f"comma-separated, from {', '.join(VARIANT_NAMES)} (default all)",
    )
    p.add_argument(
        "--provider",
        default="all",
        help="all (every provider that loads; default), auto, or a list like cuda,cpu "
        "(a named provider that does not load is an error)",
    )
    p.add_argument(
        "--calibration",
        type=int,
        default=DEFAULT_CALIBRATION,
        metavar="N",
        help=f"training images used to calibrate int8 (default {DEFAULT_CALIBRATION})",
    )
    p.add_argument(
        "--calibrate-method",
        choices=CALIBRATE_METHODS,
        default="minmax",
        help="how int8 activation ranges are chosen (default minmax)",
    )
    p.add_argument(
        "--exclude",
        default=None,
        metavar="NODE[,NODE]",
        help="keep these nodes in float (names as --layer-error lists them)",
    )
    p.add_argument(
        "--layer-error",
        action="store_true",
        help="also compare int8 with fp32 node output by node output, worst first",
    )
    p.add_argument("--data", default=None, metavar="SOURCE", help="data (default: the run's)")
    p.add_argument(
        "--preprocessing", default=None, metavar="NAME", help="override the file's preprocessing"
    )
    p.add_argument(
        "--test-images",
        type=int,
        default=None,
        metavar="N",
        help="measure accuracy on N test images spread over the test set (default all)",
    )
    p.add_argument(
        "--latency-runs", type=int, default=50, help="batch-1 runs timed (default 50; 0 skips)"
    )
    p.add_argument(
        "--throughput-repeats",
        type=int,
        default=3,
        help="timed batches of 256 for throughput (default 3; the median is reported)",
    )
    p.add_argument(
        "--optimization",
        choices=("basic", "extended", "all"),
        default="basic",
        help="fp32 offline optimization level (default basic: the file still runs on any provider)",
    )
    p.add_argument(
        "--activation-type",
        choices=("uint8", "int8"),
        default="uint8",
        help="int8 static activations: uint8 (U8S8, default: the fast path on x86 CPUs) or "
        "int8 (S8S8: what TensorRT needs)",
    )
    p.add_argument(
        "--reduce-range",
        action="store_true",
        help="7-bit weights (can help accuracy on CPUs without VNNI)",
    )
    add_tensorrt_arguments(p)
    p.add_argument("--no-store", action="store_true", help="do not write the result into the run")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--runs-dir", type=Path, default=None, help="runs root (default: $CNNLAB_RUNS, else ./runs)"
    )
    p.set_defaults(handler=cmd_deploy)
