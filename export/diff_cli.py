"""`engine diff A B`: two runs or .onnx files (any mix), node by node and output by output.

Importing this module is cheap: onnx and onnxruntime load inside the handler.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.markup import escape

from engine.output import console, info, print_json

DEFAULT_DIFF_IMAGES = 256  # mirrors export.diff.DEFAULT_DIFF_IMAGES (no heavy import here)
ROWS = 30


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def cmd_diff(args: argparse.Namespace) -> int:
    from engine.runs import default_runs_root
    from export.diff import diff_models

    result = diff_models(
        args.a,
        args.b,
        data=args.data,
        images=args.images,
        runs_root=args.runs_dir if args.runs_dir is not None else default_runs_root(),
        preprocessing=args.preprocessing,
        outputs=not args.no_outputs,
    )
    if args.json:
        print_json(result)
        return 0
    print_diff(result)
    return 0


def _count(n: Any) -> str:
    return "n/a" if n is None else f"{int(n):,}"


def print_diff(result: dict[str, Any]) -> None:
    """Totals side by side, then added/removed/changed, then the output divergence."""
    from rich.table import Table

    a, b = result["a"], result["b"]
    _say(f"A: {a['label']}")
    _say(f"B: {b['label']}")
    totals = Table(box=None, header_style="bold underline", title="totals (MACs per sample)")
    for col in ("", "A", "B"):
        totals.add_column(col, justify="left" if not col else "right", no_wrap=True)
    totals.add_row("params", _count(a["params"]), _count(b["params"]))
    totals.add_row("MACs", _count(a["macs"]), _count(b["macs"]))
    totals.add_row(result["unit"], _count(a["nodes"]), _count(b["nodes"]))
    quant = {
        k: (a["quantization_nodes"].get(k, 0), b["quantization_nodes"].get(k, 0))
        for k in {**a["quantization_nodes"], **b["quantization_nodes"]}
    }
    for op, (na, nb) in sorted(quant.items()):
        totals.add_row(f"quantization: {op}", str(na), str(nb))
    console.print(totals)
    for note in result["notes"]:
        info(escape(f"note: {note}"))
    layers = result["layers"]
    if layers is not None:
        _say(
            f"{result['unit']}: {layers['same']} same, {len(layers['changed'])} changed, "
            f"{len(layers['added'])} added (in B only), {len(layers['removed'])} removed (in A only)"
        )
        table = Table(show_edge=False)
        for col in ("", "A", "B", "what differs"):
            table.add_column(col, overflow="fold")
        rows = [("-", escape(r["name"]), "", f"{r['op']} {r['shape']}") for r in layers["removed"]]
        rows += [("+", "", escape(r["name"]), f"{r['op']} {r['shape']}") for r in layers["added"]]
        rows += [
            (
                "~",
                escape(c["a"]),
                escape(c["b"]),
                "; ".join(f"{k} {x} → {y}" for k, (x, y) in c["changes"].items())
                or f"renamed (matched by {c['matched_by']})",
            )
            for c in layers["changed"]
        ]
        for row in rows[:ROWS]:
            table.add_row(*row)
        if rows:
            console.print(table)
        if len(rows) > ROWS:
            _say(f"… {len(rows) - ROWS} more (--json lists them all)")
    out = result["outputs"]
    if out["available"]:
        _say(
            f"outputs on {out['images']} test images: top-1 agreement {out['agreement'] * 100:.1f}%, "
            f"max |Δprob| {out['max_abs_dprob']:.3g}"
        )
    else:
        _say(f"output divergence: n/a ({out['reason']})")


def add_commands(sub: Any) -> None:
    """Register `diff` on the engine's subparsers."""
    p = sub.add_parser(
        "diff",
        help="compare two models (runs or .onnx files): nodes, params, MACs, outputs",
        description="Nodes (or layers) added, removed and changed (op, shape, params), matched by "
        "name and then by op sequence; quantization nodes counted as a group; params and MACs per "
        "sample for both; max |Δprob| and top-1 agreement on the same test images (onnxruntime CPU).",
    )
    p.add_argument("a", metavar="A", help="a run or an .onnx file")
    p.add_argument("b", metavar="B", help="a run or an .onnx file")
    p.add_argument(
        "--data", default=None, metavar="SOURCE", help="test images (default: the run's)"
    )
    p.add_argument(
        "--images",
        type=int,
        default=DEFAULT_DIFF_IMAGES,
        metavar="N",
        help=f"test images spread over the test set (default {DEFAULT_DIFF_IMAGES})",
    )
    p.add_argument(
        "--preprocessing", default=None, metavar="NAME", help="override the files' preprocessing"
    )
    p.add_argument("--no-outputs", action="store_true", help="skip the output divergence")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--runs-dir", type=Path, default=None, help="runs root (default: $CNNLAB_RUNS, else ./runs)"
    )
    p.set_defaults(handler=cmd_diff)
