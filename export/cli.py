"""`engine export`, `engine eval` and `engine onnx-info`.

Importing this module is cheap: TensorFlow, tf2onnx, onnx and onnxruntime are imported inside
the handlers, so `engine --help` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.markup import escape

from engine.errors import UsageError
from engine.output import console, info, print_json
from export.providers import add_tensorrt_arguments


def _say(text: str) -> None:
    """One line of results on stdout, printed literally (shapes like [batch, 32] are not markup)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


# Mirrors of export.* constants, kept here so that building the parser imports nothing heavy.
DEFAULT_OPSET = 17
DEFAULT_TOLERANCE = 1e-4
DEFAULT_PARITY_SAMPLES = 512
PROVIDER_CHOICES = ("auto", "tensorrt", "cuda", "cpu")


def _add_runs_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runs-dir", type=Path, default=None, help="runs root (default: $CNNLAB_RUNS, else ./runs)"
    )


def _runs_root(args: argparse.Namespace) -> Path:
    from engine.runs import default_runs_root

    return args.runs_dir if args.runs_dir is not None else default_runs_root()


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _fmt_int(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


# ------------------------------------------------------------------------------ export
def cmd_export(args: argparse.Namespace) -> int:
    from export.convert import export

    if args.tolerance < 0:
        raise UsageError("--tolerance must be zero or more")
    result = export(
        args.target,
        runs_root=_runs_root(args),
        output=args.output,
        opset=args.opset,
        with_preprocessing=args.with_preprocessing,
        parity_check=not args.no_parity_check,
        tolerance=args.tolerance,
        parity_samples=args.parity_samples,
        data=args.data,
        preprocessing=args.preprocessing,
    )
    record = result.to_record()
    record["run_id"] = result.run_id
    if args.json:
        print_json(record)
        return 0
    what = f"run {result.run_id}" if result.run_id else str(args.target)
    _say(
        f"exported {what} → {result.path} ({_mb(result.size_bytes)}, opset {result.opset}, "
        f"{result.nodes} nodes) in {result.export_time:.1f} s"
    )
    _say(
        f"input {result.input['name']} {result.input['dtype']} {result.input['shape']} NHWC "
        + (
            "(raw RGB pixels, preprocessing baked in)"
            if result.with_preprocessing
            else f"(preprocess with {result.preprocessing})"
        )
    )
    if result.parity:
        p = result.parity
        _say(
            f"parity vs Keras on {p.n} test images: max abs diff {p.max_abs_diff:.3g} "
            f"(tolerance {p.tolerance:g}), mean {p.mean_abs_diff:.3g}, top-1 agreement {p.top1_agreement:.2%}"
        )
    for note in result.notes:
        info(escape(f"note: {note}"))
    return 0


def _add_export(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="convert a run's Keras model to ONNX (with a parity check)",
        description="Convert a trained model to ONNX with tf2onnx: one input 'image' (NHWC, dynamic batch), "
        "one output 'probabilities', metadata describing classes and preprocessing. Parity with Keras "
        "is checked on the run's test images; beyond the tolerance nothing is written (exit 1).",
    )
    p.add_argument(
        "target",
        metavar="RUN_OR_MODEL",
        help="run id (or unique prefix), run folder, or .keras file",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="ONNX file to write (default: <run>/model.onnx, or model.uint8.onnx)",
    )
    p.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        help=f"ONNX opset, 13..18 (default {DEFAULT_OPSET})",
    )
    p.add_argument(
        "--with-preprocessing",
        action="store_true",
        help="bake the model's preprocessing into the graph: the file takes raw uint8 RGB pixels",
    )
    p.add_argument(
        "--no-parity-check", action="store_true", help="skip comparing ONNX and Keras outputs"
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"max abs difference of probabilities allowed (default {DEFAULT_TOLERANCE:g})",
    )
    p.add_argument(
        "--parity-samples",
        type=int,
        default=DEFAULT_PARITY_SAMPLES,
        help=f"test images compared (default {DEFAULT_PARITY_SAMPLES}; 0 = all)",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="SOURCE",
        help="parity images from this source instead of the run's data",
    )
    p.add_argument(
        "--preprocessing",
        default=None,
        metavar="NAME",
        help="override the preprocessing (needed for a bare .keras file; default unit)",
    )
    p.add_argument("--json", action="store_true", help="print the export record as JSON")
    _add_runs_dir(p)
    p.set_defaults(handler=cmd_export)


# ------------------------------------------------------------------------------ eval
def _resolve_onnx(target: str, runs_root: Path) -> Path:
    """A .onnx path as given, or the latest export of a run."""
    from engine.errors import RunError
    from engine.records import RecordError
    from engine.runs import RunStore

    path = Path(target)
    if path.is_file():
        return path
    if path.suffix == ".onnx":
        if path.is_dir():
            raise RunError(f"{path}: is a folder, not an .onnx file")
        raise UsageError(f"{path}: no such file")
    try:
        run = RunStore(runs_root).open(target)
    except RecordError:  # a run, but a corrupt one: say why
        raise
    except RunError:
        raise UsageError(f"{target}: neither an .onnx file nor a run") from None
    exports = ((run.record.get("onnx") or {}).get("exports")) or []
    if not exports:
        raise UsageError(f"run {run.id} has no ONNX export yet; run `engine export {run.id}` first")
    latest = exports[-1]
    candidate = Path(latest.get("file") or run.path / latest["path"])
    return candidate if candidate.is_file() else run.path / latest["path"]


def cmd_eval(args: argparse.Namespace) -> int:
    from export.evaluate import evaluate
    from export.providers import configure_tensorrt, session_options, tensorrt_from_args

    configure_tensorrt(tensorrt_from_args(args))
    runs_root = _runs_root(args)
    path = _resolve_onnx(args.file, runs_root)
    options = session_options(
        graph_optimization=args.graph_optimization, intra_op_threads=args.threads
    )
    result = evaluate(
        path,
        data=args.data,
        provider=args.provider,
        batch_size=args.batch_size,
        latency_runs=args.latency_runs,
        subset=args.subset,
        preprocessing=args.preprocessing,
        runs_root=runs_root,
        store=not args.no_store,
        options=options,
    )
    if args.json:
        print_json(result)
        return 0
    _print_eval(result)
    return 0


def _print_eval(r: dict[str, Any]) -> None:
    from rich.table import Table

    prov = r["provider"]
    _say(f"{r['path']} on {r['data']} ({r['n']} test images)")
    _say(
        f"providers: requested {prov['requested']}, running on {', '.join(prov['used'])}"
        + (" (fell back)" if prov["fell_back"] else "")
    )
    for note in prov["notes"]:
        info(escape(f"note: {note}"))
    keras_acc = r.get("keras_test_accuracy")
    _say(
        f"accuracy {r['accuracy']:.2%}"
        + (f"   (Keras, same run: {keras_acc:.2%})" if keras_acc is not None else "")
    )
    lat, thr = r["latency_ms"], r["throughput"]
    if lat["runs"]:
        _say(
            f"latency at batch 1 over {lat['runs']} runs: p50 {lat['p50']:.3f} ms, p90 {lat['p90']:.3f} ms, p99 {lat['p99']:.3f} ms"
        )
    _say(f"throughput at batch {thr['batch']}: {thr['images_per_s']:,.0f} images/s")
    table = Table(title="per class", show_edge=False)
    table.add_column("class")
    table.add_column("accuracy", justify="right")
    for cls, acc in r["per_class_accuracy"].items():
        table.add_row(escape(cls), "—" if acc is None else f"{acc:.1%}")
    console.print(table)
    if r.get("stored"):
        info(f"stored in run {r['run_id']}")


def _add_eval(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate an ONNX file with onnxruntime (accuracy, latency, providers)",
        description="Test accuracy, per-class accuracy, confusion matrix, latency p50/p90/p99 at batch 1 and "
        "throughput at a large batch, with the providers the session really runs on. Preprocessing comes "
        "from the file's metadata. Stored in the source run when there is one.",
    )
    p.add_argument(
        "file", metavar="FILE_OR_RUN", help="an .onnx file, or a run (its latest export)"
    )
    p.add_argument(
        "--data", default=None, metavar="SOURCE", help="data source (default: the source run's)"
    )
    p.add_argument(
        "--provider",
        choices=PROVIDER_CHOICES,
        default="auto",
        help="auto prefers tensorrt, then cuda, then cpu",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="batch for accuracy and throughput (default: the fastest measured here)",
    )
    p.add_argument(
        "--latency-runs",
        type=int,
        default=100,
        help="batch-1 runs timed for latency (default 100; 0 skips)",
    )
    p.add_argument(
        "--subset",
        type=int,
        default=None,
        metavar="N",
        help="load only a subset of the data (as `engine run --subset`)",
    )
    p.add_argument(
        "--preprocessing",
        default=None,
        metavar="NAME",
        help="override the preprocessing named in the file",
    )
    p.add_argument(
        "--graph-optimization",
        choices=("disable", "basic", "extended", "all"),
        default="all",
        help="onnxruntime graph optimisation level (default all)",
    )
    p.add_argument(
        "--threads", type=int, default=0, help="intra-op threads (default 0 = onnxruntime's choice)"
    )
    p.add_argument(
        "--no-store", action="store_true", help="do not write the result into the source run"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_tensorrt_arguments(p)
    _add_runs_dir(p)
    p.set_defaults(handler=cmd_eval)


# ------------------------------------------------------------------------------ onnx-info
def cmd_onnx_info(args: argparse.Namespace) -> int:
    from export.info import onnx_info
    from export.onnx_graph import parse_dims

    data = onnx_info(args.file, nodes=not args.no_nodes, dims=parse_dims(args.dim))
    if args.json:
        print_json(data)
        return 0
    _print_info(data, show_nodes=not args.no_nodes)
    return 0


def _shape(shape: list[Any] | None) -> str:
    return "?" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def _print_info(d: dict[str, Any], *, show_nodes: bool) -> None:
    from rich.table import Table

    from export.onnx_analysis import macs_summary

    t = d["totals"]
    opsets = ", ".join(f"{k} {v}" for k, v in d["opset"].items())
    _say(f"{d['file']}  {_mb(d['size_bytes'])}, IR {d['ir_version']}, opset {opsets}")
    producer = (
        " ".join(x for x in (d["producer"]["name"], d["producer"]["version"]) if x) or "unknown"
    )
    _say(f"producer: {producer}")
    for kind in ("inputs", "outputs"):
        for io in d[kind]:
            _say(f"{kind[:-1]:6} {io['name']}: {io['dtype']} {_shape(io['shape'])}")
    generated = (
        f" ({t['params_stored']:,} stored, {t['params_generated']:,} generated in the graph)"
        if t["params_generated"]
        else ""
    )
    _say(
        f"nodes {t['nodes']:,}   params {t['params']:,}{generated}   {macs_summary(t)}"
        f"   initializers {t['initializers']} ({_mb(t['initializer_bytes'])})"
    )
    hist = ", ".join(f"{op} {n}" for op, n in d["op_histogram"].items())
    _say(f"ops: {hist}")
    s = d["initializer_stats"]
    if s["count"]:
        _say(
            f"weights: {s['count']:,} values, min {s['min']:.4g}, max {s['max']:.4g}, mean {s['mean']:.4g}, "
            f"std {s['std']:.4g}, zeros {s['zeros']:,}"
        )
    if show_nodes and d["nodes"]:
        table = Table(show_edge=False, title="nodes")
        for col, justify in (
            ("#", "right"),
            ("name", "left"),
            ("op", "left"),
            ("output shape", "left"),
            ("params", "right"),
            ("MACs", "right"),
        ):
            # Shapes and numbers never wrap; long tf2onnx node names are cut with an ellipsis.
            table.add_column(col, justify=justify, no_wrap=col != "name", overflow="ellipsis")  # type: ignore[arg-type]
        for n in d["nodes"]:
            table.add_row(
                str(n["index"]),
                escape(n["name"]),
                escape(n["op_type"]),
                escape(", ".join(_shape(s) for s in n["output_shapes"])),
                _fmt_int(n["params"]) if n["params"] else "",
                _fmt_int(n["macs"])
                if n["macs"] is not None
                else {"not counted": "not counted", "shape unknown": "shape ?"}.get(
                    n["mac_status"], ""
                ),
            )
        console.print(table)
    if d["metadata"]:
        _say("metadata:")
        for k, v in d["metadata"].items():
            _say(f"  {k} = {v}")
    for w in d["warnings"]:
        info(escape(f"warning: {w}"))


def _add_onnx_info(sub: Any) -> None:
    p = sub.add_parser(
        "onnx-info",
        help="inspect any .onnx file: I/O, nodes and shapes, params, MACs, metadata",
        description="Opset, producer, inputs/outputs, every node with inferred output shapes, parameters "
        "and MACs per sample (Conv/ConvTranspose/Gemm/MatMul; other ops listed as not counted), totals, op histogram, initializer statistics and metadata. "
        "Works on files cnnlab did not make.",
    )
    p.add_argument("file", metavar="FILE", help="an .onnx file")
    p.add_argument("--no-nodes", action="store_true", help="omit the per-node table")
    p.add_argument(
        "--dim",
        action="append",
        metavar="NAME=SIZE",
        default=None,
        help="fix a named (symbolic) dimension before shape inference, e.g. --dim N=1 (repeatable)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print everything as JSON (the same dict as export.info.onnx_info)",
    )
    p.set_defaults(handler=cmd_onnx_info)


def add_commands(sub: Any) -> None:
    """Register `export`, `eval` and `onnx-info` on the engine's subparsers."""
    _add_export(sub)
    _add_eval(sub)
    _add_onnx_info(sub)
