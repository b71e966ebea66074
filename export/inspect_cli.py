"""`engine inspect`, `engine filters` (here), `engine activations`, `engine preprocess-stats`
(handlers in `export.image_cli`).

These live in export/ because ONNX files are read through `export.onnx_layers` (one analysis
with `engine onnx-info`) and activations run with onnxruntime; Keras models through
`engine.inspect`.

Every figure the TUI's Inspect panes show is available here, as a Rich table for people and
as JSON (`--json`) for machines and CI. TensorFlow is imported only when a model has to be
loaded to be summarised (a run without summary.json, or a bare .keras file).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.errors import CnnlabError, UsageError
from engine.output import console, print_json
from export.image_cli import cmd_activations, cmd_preprocess_stats
from export.inspect_targets import load_summary, resolve


def add_commands(sub: Any) -> None:
    """Register the inspection commands on the `engine` parser."""
    p = sub.add_parser(
        "inspect",
        help="layer table of a run's model, a .keras or an .onnx file; --layer for its arithmetic",
        description="The layer table (name, type, output shape, parameters, MACs, trainable) "
        "with totals and, with --layer, that layer's arithmetic spelled out with its numbers.",
    )
    p.add_argument("target", metavar="MODEL_OR_RUN", help="run id or folder, .keras or .onnx file")
    p.add_argument("--layer", help="explain this layer (or ONNX node)")
    p.add_argument("--all", action="store_true", help="with --json: the arithmetic of every layer")
    p.add_argument(
        "--reference",
        action="store_true",
        help="params and MACs beside the backbone's published figures, and why they differ",
    )
    add_dim_flag(p)
    _common(p)
    p.set_defaults(handler=cmd_inspect)

    p = sub.add_parser(
        "filters",
        help="a convolution's kernels and per-filter statistics",
        description="Kernels of one convolution (from model.keras via h5py, or an ONNX file's "
        "initializers): per-filter min, max, mean, std and L2 norm, and the values. Without "
        "--layer, list the convolutions.",
    )
    p.add_argument("target", metavar="MODEL_OR_RUN", help="run id or folder, .keras or .onnx file")
    p.add_argument("--layer", help="the convolution (layer or ONNX node name)")
    p.add_argument("--start", type=int, default=0, help="first filter (default 0)")
    p.add_argument("--count", type=int, default=None, help="number of filters (default all)")
    p.add_argument("--channel", type=int, default=0, help="input channel to show (Cin > 3)")
    p.add_argument("--no-values", action="store_true", help="statistics only")
    _common(p)
    p.set_defaults(handler=cmd_filters)

    p = sub.add_parser(
        "activations",
        help="feature maps of one test image at one tensor of an ONNX model, and the top-5",
        description="Run one test image through an ONNX model with onnxruntime (CPU) and report "
        "the feature maps at a tensor (intermediate output) and the top-5 prediction. Without "
        "--layer, list the tensors that can be probed.",
    )
    p.add_argument("target", metavar="ONNX_OR_RUN", help=".onnx file, or a run with an export")
    p.add_argument("--layer", help="tensor, ONNX node or Keras layer name")
    p.add_argument("--data", help="data source for the image (default: the run's, else synthetic)")
    p.add_argument(
        "--image", type=int, default=0, help="index of the test image (class-major sample)"
    )
    p.add_argument("--per-class", type=int, default=5, help="test images sampled per class")
    p.add_argument(
        "--samples-file", type=Path, help=".npz from `engine data --samples` instead of --data"
    )
    p.add_argument("--channels", default="0:64", help="channel range START:STOP (default 0:64)")
    p.add_argument("--no-values", action="store_true", help="statistics only, no map values")
    _common(p)
    p.set_defaults(handler=cmd_activations)

    p = sub.add_parser(
        "preprocess-stats",
        help="per-channel histograms of a real batch before and after a backbone's preprocessing",
        description="A batch of test images before (uint8) and after the backbone's "
        "preprocess_input, per channel, with the range the backbone expects, the x/255 mistake "
        "beside it, and the accuracies of runs on disk that used each.",
    )
    p.add_argument("--data", default="synthetic", help="data source (default synthetic)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--backbone", help="backbone whose preprocessing to apply")
    group.add_argument(
        "--preprocessing", help="a preprocessing by name (unit, mobilenet_v2, resnet, ...)"
    )
    p.add_argument("--count", type=int, default=256, help="images in the batch (default 256)")
    p.add_argument("--bins", type=int, default=24, help="histogram bins (default 24)")
    p.add_argument(
        "--samples-file", type=Path, help=".npz from `engine data --samples` instead of --data"
    )
    _common(p)
    p.set_defaults(handler=cmd_preprocess_stats)


def add_dim_flag(p: argparse.ArgumentParser) -> None:
    """`--dim NAME=SIZE` (repeatable): fix a symbolic dim of an ONNX file before its shapes
    are inferred (e.g. `--dim N=1`, `--dim height=224`)."""
    p.add_argument(
        "--dim",
        action="append",
        metavar="NAME=SIZE",
        default=None,
        help="ONNX files: fix a named (symbolic) dimension, e.g. --dim N=1 (repeatable)",
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runs-dir", type=Path, default=None, help="runs root (default $CNNLAB_RUNS or ./runs)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


# --------------------------------------------------------------------------------- inspect
def cmd_inspect(args: argparse.Namespace) -> int:
    from engine import inspect
    from export.onnx_graph import parse_dims
    from export.onnx_layers import explain

    dims = parse_dims(args.dim)
    kind, path, record = resolve(args.target, args.runs_dir)
    if dims and kind != "onnx":
        raise UsageError("--dim applies to .onnx files only")
    summary = load_summary(kind, path, dims)
    phases = [
        {
            k: p.get(k)
            for k in ("name", "trainable", "trainable_layers", "epochs_run", "learning_rate")
        }
        for p in (record or {}).get("phases") or []
    ]
    result: dict[str, Any] = {"source": str(path), "kind": kind, **summary, "phases": phases}
    if args.layer:
        try:
            row = inspect.find_layer(summary, args.layer)
        except KeyError as exc:
            raise CnnlabError(str(exc.args[0])) from None
        result["layer"] = explain(row)
    if args.all:
        result["arithmetic"] = [explain(r) for r in summary.get("layers", [])]
    if args.reference:
        result["reference"] = _reference(summary)
    if args.json:
        print_json(result)
        return 0
    _print_summary(summary, phases)
    if args.reference:
        _print_reference(result["reference"])
    if args.layer:
        explained = result["layer"]
        console.print(f"\n[bold]{explained['layer']}[/] ({explained['type']})", highlight=False)
        for line in explained["lines"]:
            console.print("  " + line, highlight=False)
        for what, ok in explained["checks"].items():
            mark = "[green]✓[/]" if ok else "[red]✗[/]"
            console.print(
                f"  {mark} {what}: {'the same as' if ok else 'differs from'} the model's own count",
                highlight=False,
            )
    return 0


def _reference(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The reference check; the backbone is recognised by its Keras model name (a transfer
    model's nested backbone included)."""
    from engine.inspect.reference import reference_check

    return reference_check(summary)


def _print_reference(check: dict[str, Any] | None) -> None:
    from rich.table import Table

    if check is None:
        console.print("reference: not one of the nine backbones, nothing published to compare with")
        return
    pub, own = check["published"], check["model"]
    size = pub["input_size"]
    table = Table(title=f"{check['backbone']}: this model beside the published figures")
    for col in (
        "",
        f"published ({size}×{size})",
        f"this model ({own['input_size']}×{own['input_size']})",
    ):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row("params (Keras, include_top)", f"{pub['keras_params']:,}", f"{own['params']:,}")
    table.add_row(
        "params without the ImageNet top",
        f"{pub['keras_params'] - pub['top_params']:,}",
        f"{own['backbone_params']:,}",
    )
    table.add_row("MACs", f"{pub['macs']:,}", f"{own['macs']:,}")
    console.print(table)
    for reason in check["differences"]:
        console.print(f"- {reason['cause']}: {reason['text']}", highlight=False, markup=False)
    console.print(
        f"sources: {pub['keras_source_text']}; {pub['params_source_text']}; {pub['macs_source_text']}",
        highlight=False,
        markup=False,
    )


def _print_summary(summary: dict[str, Any], phases: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from engine.inspect import shape_text

    onnx = summary.get("format") == "onnx"
    mac_cell = {"not counted": "not counted", "shape unknown": "shape ?"}
    table = Table(title=f"{summary.get('model')} ({'ONNX nodes' if onnx else 'layers'})")
    for col, justify in (
        ("#", "right"),
        ("name", "left"),
        ("type", "left"),
        ("output shape", "left"),
        ("params", "right"),
        ("MACs", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    if not onnx:
        table.add_column("trainable", justify="center")
    for i, row in enumerate(summary.get("layers", [])):
        cells = [
            str(i),
            str(row.get("name")),
            str(row.get("type")),
            shape_text(row.get("output_shape")),
            f"{int(row.get('params') or 0):,}",
            f"{row['macs']:,}"
            if row.get("macs") is not None
            else mac_cell.get(str(row.get("mac_status")), ""),
        ]
        if not onnx:
            params = int(row.get("params") or 0)
            tp = int(row.get("trainable_params") or 0)
            cells.append(
                "" if params == 0 else ("yes" if tp == params else ("no" if tp == 0 else f"{tp:,}"))
            )
        table.add_row(*cells)
    console.print(table)
    t = summary.get("totals", {})
    if onnx:
        console.print(onnx_totals_line(t), highlight=False)
    else:
        console.print(
            f"total {int(t.get('total') or 0):,} · trainable {int(t.get('trainable') or 0):,} · "
            f"frozen {int(t.get('frozen') or 0):,} · MACs {int(t.get('macs') or 0):,}",
            highlight=False,
        )
    for phase in phases:
        layers = phase.get("trainable_layers") or []
        console.print(
            f"phase {phase.get('name')}: {int(phase.get('trainable') or 0):,} trainable parameters "
            f"in {len(layers)} layers" + (f" (last: {', '.join(layers[-3:])})" if layers else ""),
            highlight=False,
        )


def onnx_totals_line(t: dict[str, Any]) -> str:
    """The totals of an ONNX table: parameters stored/generated, MACs with their convention."""
    from export.onnx_analysis import macs_summary

    generated = int(t.get("generated") or 0)
    params = f"total parameters {int(t.get('total') or 0):,}" + (
        f" ({int(t.get('stored') or 0):,} stored, {generated:,} generated in the graph)"
        if generated
        else ""
    )
    return f"{params} · {macs_summary(t)}"


# --------------------------------------------------------------------------------- filters
def cmd_filters(args: argparse.Namespace) -> int:
    from engine import inspect

    kind, path, record = resolve(args.target, args.runs_dir)
    source = path / "model.keras" if kind == "run" else path
    if kind == "run" and not source.is_file():
        raise CnnlabError(f"run {path.name} has no model.keras")
    if not args.layer:
        summary = load_summary("onnx", path) if kind == "onnx" else _summary_quick(kind, path)
        names = inspect.conv_layers(summary)
        if args.json:
            print_json({"source": str(source), "convolutions": names})
        else:
            console.print("\n".join(names) or "no convolutions", highlight=False)
        return 0
    from export.onnx_layers import load_kernel

    kernel = load_kernel(source, args.layer)
    report = inspect.filter_report(
        kernel,
        layer=args.layer,
        start=args.start,
        count=args.count,
        channel=args.channel,
        values=not args.no_values,
    )
    report["source"] = str(source)
    if args.json:
        print_json(report)
        return 0
    from rich.table import Table

    kh, kw, cin, cout = report["kernel_shape"]
    console.print(
        f"[bold]{args.layer}[/]: {cout} filters of {kh}×{kw}×{cin} = {report['weights_per_filter']:,} "
        f"weights each; |w| ≤ {report['abs_max']:.4f}",
        highlight=False,
    )
    table = Table()
    for col in ("filter", "min", "max", "mean", "std", "L2"):
        table.add_column(col, justify="right")
    for f in report["filters"]:
        table.add_row(
            str(f["index"]),
            *(f"{f[k]:+.4f}" for k in ("min", "max", "mean", "std")),
            f"{f['l2']:.4f}",
        )
    console.print(table)
    return 0


def _summary_quick(kind: str, path: Path) -> dict[str, Any]:
    """A summary without TensorFlow when possible (summary.json), for listing layers."""
    if kind == "run" and (path / "summary.json").is_file():
        return load_summary(kind, path)
    from engine import inspect

    # Only names and types are needed: read them from the archive's config.json.
    config = inspect.read_keras_config(path / "model.keras" if kind == "run" else path)
    rows = []
    stack = [config]
    while stack:
        cfg = stack.pop(0)
        for layer in cfg.get("config", {}).get("layers", []):
            if "layers" in layer.get("config", {}):
                stack.append(layer)
            else:
                rows.append(
                    {
                        "name": layer["config"].get("name"),
                        "type": layer.get("class_name"),
                        "params": 1,
                    }
                )
    return {"layers": rows}
