"""Core `engine` commands: run, data, runs (doctor is composed in cnnlab/doctor.py).

Flags of `engine run` are generated from ExperimentConfig's fields (`--batch-size 64`), so the
CLI, the TUI forms and run.json always agree on names, defaults and validation.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from engine.config import ExperimentConfig, config_from_flags
from engine.errors import CnnlabError, DataError, RunError, UsageError
from engine.output import console, info, print_json


def _add_runs_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="runs root (default: $CNNLAB_RUNS, else ./runs)",
    )


def _store(args: argparse.Namespace) -> Any:
    from engine.runs import RunStore

    return RunStore(args.runs_dir)


# ------------------------------------------------------------------------------ run
def _add_run(sub: Any) -> None:
    from engine.experiments import list_experiments

    exps = list_experiments()
    p = sub.add_parser(
        "run",
        help="run an experiment (writes a run folder)",
        description="Run a registered experiment. Settings default to the assignment's values.",
        epilog="Experiments:\n" + "\n".join(f"  {e.name:14} {e.title}" for e in exps),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "experiment",
        choices=[e.name for e in exps],
        metavar="EXPERIMENT",
        help="one of: " + ", ".join(e.name for e in exps),
    )
    p.add_argument(
        "--events",
        choices=("jsonl", "rich", "none"),
        default="rich",
        help="progress: jsonl (one JSON event per line on stdout, see docs/protocol.md), rich (default) or none",
    )
    p.add_argument("--json", action="store_true", help="print the final run.json on stdout")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check the flags, print the resulting settings as JSON and stop (trains nothing)",
    )
    _add_runs_dir(p)
    for f in dataclasses.fields(ExperimentConfig):
        meta = f.metadata
        extra = ""
        if "choices" in meta:
            extra = f" ({'|'.join(meta['choices'])})"
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f"set_{f.name}",
            default=None,
            metavar="VALUE",
            help=f"{meta.get('help', '')}{extra}",
        )
    p.add_argument(
        "--no-tensorboard",
        dest="set_tensorboard",
        action="store_const",
        const="no",
        help="same as --tensorboard no: no TensorBoard event files",
    )
    p.set_defaults(handler=cmd_run)


def config_from_args(experiment: str, args: argparse.Namespace) -> ExperimentConfig:
    """The experiment's config with the flags given; UsageError (exit 2) naming every bad flag."""
    from engine.experiments import get_experiment

    given = {
        f.name: text
        for f in dataclasses.fields(ExperimentConfig)
        if (text := getattr(args, f"set_{f.name}", None)) is not None
    }
    return config_from_flags(get_experiment(experiment), given)


def _check_runs_root(args: argparse.Namespace) -> None:
    """Refuse a runs root that cannot hold run folders, before any training starts."""
    from engine.paths import default_runs_root

    root = args.runs_dir if args.runs_dir is not None else default_runs_root()
    if root.exists() and not root.is_dir():
        raise UsageError(f"runs root {root} is a file, not a folder (--runs-dir or $CNNLAB_RUNS)")


def cmd_run(args: argparse.Namespace) -> int:
    from engine.events import JsonlSink, ListSink, Reporter, RichSink

    sink: Any = (
        JsonlSink()
        if args.events == "jsonl"
        else RichSink()
        if args.events == "rich"
        else ListSink()
    )
    reporter = Reporter(sink)
    try:
        config = config_from_args(args.experiment, args)
        _check_runs_root(args)
    except CnnlabError as exc:
        if args.events == "jsonl":  # the client reads errors from the stream too
            reporter("error", None, message=str(exc), kind="usage")
        sink.close()
        raise
    if args.dry_run:
        sink.close()
        print_json(config.to_dict())
        return 0
    # Only now, with every flag checked, pay for TensorFlow's import (quietly).
    from engine.tfquiet import load_tensorflow

    load_tensorflow()
    reporter.cancel.install_sigint()
    from engine.training import run_experiment

    try:
        run = run_experiment(args.experiment, config, store=_store(args), reporter=reporter)
    except KeyboardInterrupt:
        return 130
    except CnnlabError:
        raise  # already recorded in run.json and sent as an `error` event; main() prints it
    except Exception as exc:  # recorded in the run folder (run.json, error.log); one line here
        from engine.output import error

        error(f"run failed: {type(exc).__name__}: {exc}".splitlines()[0])
        return 1
    finally:
        sink.close()
    if args.json:
        print_json(run.record)
    if run.status == "cancelled":
        return 130
    return 0 if run.status == "finished" else 1


# ------------------------------------------------------------------------------ data
def bounded(kind: type, low: float, high: float | None = None, *, below_high: bool = False) -> Any:
    """An argparse `type` reading a finite int or float in [low, high] (or [low, high) with
    `below_high`); argparse reports a refusal as `argument --flag: reason`, exit 2."""

    def read(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not {noun}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a finite number")
        too_high = high is not None and (value >= high if below_high else value > high)
        if value < low or too_high:
            upper = "∞)" if high is None else f"{high})" if below_high else f"{high}]"
            raise argparse.ArgumentTypeError(f"{value} is not in [{low}, {upper}")
        return value

    read.__name__ = kind.__name__  # argparse names the type in some messages
    return read


def _add_data(sub: Any) -> None:
    p = sub.add_parser(
        "data",
        help="show a data source: classes, counts, shapes",
        description="Load a data source and show its classes, split counts and image shape. Without SOURCE, list the sources.",
    )
    p.add_argument("source", nargs="?", help="cifar10, synthetic, folder:PATH or npz:PATH")
    p.add_argument(
        "--subset", type=bounded(int, 1), default=None, help="use only N training images"
    )
    p.add_argument(
        "--val-split",
        type=bounded(float, 0.0, 1.0, below_high=True),
        default=0.2,
        help="stratified validation fraction, in [0, 1)",
    )
    p.add_argument("--seed", type=bounded(int, 0, 2**32 - 1), default=0)
    p.add_argument(
        "--resize",
        type=bounded(int, 8, 512),
        default=None,
        help="resize every image to N×N (else mixed sizes are an error)",
    )
    p.add_argument(
        "--samples",
        type=bounded(int, 0, 10_000),
        default=0,
        help="also write N test images per class to --samples-file",
    )
    p.add_argument(
        "--samples-file", type=Path, default=None, help=".npz for --samples (arrays images, labels)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_data)


def cmd_data(args: argparse.Namespace) -> int:
    from engine import data as data_mod

    if not args.source:
        sources = data_mod.list_sources()
        if args.json:
            print_json(sources)
        else:
            from rich.table import Table

            t = Table(title="data sources")
            for col in ("name", "description", "available"):
                t.add_column(col)
            for s in sources:
                t.add_row(
                    str(s.get("name")),
                    str(s.get("description", "")),
                    str(s.get("available", s.get("cached", ""))),
                )
            console.print(t)
        return 0
    if args.samples and not args.samples_file:
        raise UsageError("--samples needs --samples-file PATH.npz")
    try:  # a source name that is not registered is bad usage (exit 2), not a failed load
        data_mod.check_source(args.source)
    except DataError as exc:
        raise UsageError(str(exc)) from None

    def progress(stage: str, done: int, total: int) -> None:
        if not args.json:
            info(f"{stage}: {done}/{total}")

    ds = data_mod.load_dataset(
        args.source,
        subset=args.subset,
        val_split=args.val_split,
        seed=args.seed,
        resize=args.resize,
        progress=progress,
    )
    summary = {**ds.summary(), "counts": ds.counts()}
    if args.samples:
        import numpy as np

        from engine.runs import atomic_path

        samples = ds.samples(args.samples, split="test")
        images, labels = [], []
        for i, c in enumerate(ds.classes):
            arr = samples.get(c)
            if arr is None or len(arr) == 0:
                continue
            images.append(arr)
            labels.append(np.full(len(arr), i, dtype=np.int64))
        if not images:
            raise DataError(f"{ds.source} has no test images to take samples from")
        try:
            with atomic_path(Path(args.samples_file)) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(
                        fh,
                        images=np.concatenate(images),
                        labels=np.concatenate(labels),
                        classes=np.array(ds.classes),
                    )
        except OSError as exc:
            raise CnnlabError(
                f"cannot write --samples-file {args.samples_file}: {exc.strerror or exc}"
            ) from None
        summary["samples_file"] = str(args.samples_file)
    if args.json:
        print_json(summary)
        return 0
    from rich.table import Table

    console.print(
        f"[bold]{ds.source}[/]: {len(ds.classes)} classes, images {'×'.join(map(str, ds.image_shape))}"
    )
    t = Table()
    t.add_column("class")
    for split in ("train", "val", "test"):
        t.add_column(split, justify="right")
    counts = summary["counts"]
    for c in ds.classes:
        t.add_row(c, *(str(counts[s].get(c, 0)) for s in ("train", "val", "test")))
    t.add_row("[bold]total", *(f"[bold]{summary[s]}" for s in ("train", "val", "test")))
    console.print(t)
    return 0


# ------------------------------------------------------------------------------ runs
def _add_runs(sub: Any) -> None:
    p = sub.add_parser(
        "runs",
        help="list, show or delete runs",
        description="Runs on disk. Without a sub-command: list.",
    )
    _add_runs_dir(p)
    p.add_argument("--json", action="store_true")
    rs = p.add_subparsers(dest="runs_command", metavar="ACTION")
    lp = rs.add_parser("list", help="every run, newest first")
    _add_runs_dir(lp)
    lp.add_argument("--json", action="store_true")
    lp.add_argument("--experiment", help="only runs of this experiment")
    lp.add_argument("--status", help="only runs with this status")
    sp = rs.add_parser("show", help="one run's record")
    sp.add_argument("run", help="run id, unique prefix, or folder")
    _add_runs_dir(sp)
    sp.add_argument("--json", action="store_true")
    dp = rs.add_parser("delete", help="delete a run folder")
    dp.add_argument("run")
    _add_runs_dir(dp)
    dp.add_argument("--yes", action="store_true", help="do not ask")
    p.set_defaults(handler=cmd_runs)
    from engine.report.cli import add_runs_export

    add_runs_export(rs)


def _pct(v: Any) -> str:
    return f"{v * 100:.2f} %" if isinstance(v, (int, float)) else "–"


def cmd_runs(args: argparse.Namespace) -> int:
    store = _store(args)
    action = args.runs_command or "list"
    if action == "list":
        exp = getattr(args, "experiment", None)
        status = getattr(args, "status", None)
        if store.root.exists() and not store.root.is_dir():
            raise RunError(f"{store.root}: not a folder (the runs root)")
        # Corrupt run folders are listed with their reason, never hidden (status "corrupt").
        runs = store.list(
            lambda r: exp is None or r.corrupt is not None or r.info.experiment == exp,
            with_corrupt=True,
        )
        rows = []
        labels = {r.id: r.status_label for r in runs}  # 'finished (model missing)': one home
        for r in runs:
            m = r.record.get("metrics") or {}
            model = r.record.get("model") or {}
            rows.append(
                {
                    "id": r.id,
                    "experiment": r.record.get("experiment"),
                    "title": r.record.get("title"),
                    "status": r.status,
                    "parent": r.record.get("parent"),
                    "test_accuracy": m.get("test_accuracy"),
                    "val_accuracy": m.get("val_accuracy"),
                    "backbone": model.get("backbone"),
                    "random_init": model.get("random_init"),
                    "created": r.record.get("created"),
                    "path": str(r.path),
                    "model_missing": r.model_missing,
                    "problem": r.problem,
                }
            )
        if status is not None:
            rows = [row for row in rows if row["status"] == status]
        if args.json:
            print_json(rows)
            return 0
        from rich.markup import escape
        from rich.table import Table

        t = Table(title=f"runs in {store.root}")
        for col in ("id", "experiment", "model", "status", "test acc", "val acc"):
            t.add_column(col)
        for row in rows:
            model_txt = escape(row["backbone"] or "") + (
                " [yellow](random init)[/]" if row["random_init"] else ""
            )
            status_txt = escape(labels[row["id"]])
            t.add_row(
                escape(row["id"]),
                escape(row["experiment"] or ""),
                model_txt,
                f"[red]{status_txt}[/]" if row["problem"] else status_txt,
                _pct(row["test_accuracy"]),
                _pct(row["val_accuracy"]),
            )
        console.print(t)
        for row in rows:  # the reasons, one line each, below the table (never cut by a column)
            if row["problem"]:
                console.print(f"{row['id']}: {row['status']}: {row['problem']}", markup=False)
        return 0
    if action == "show":
        run = store.open(args.run)
        record = {**run.record, "status": run.status}
        if run.problem:
            info(f"warning: {run.problem}")
        if args.json:
            print_json(record)
            return 0
        _show(record)
        return 0
    if action == "delete":
        run = store.open(args.run)
        if not args.yes:
            if not os.isatty(0):
                raise UsageError("refusing to delete without --yes when not on a terminal")
            answer = input(f"delete {run.path}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                info("kept")
                return 1
        try:
            store.delete(run.path)
        except OSError as exc:
            raise RunError(f"cannot delete {run.path}: {exc.strerror or exc}") from None
        info(f"deleted {run.path}")
        return 0
    raise UsageError(f"unknown runs action {action!r}")


def _show(record: dict[str, Any]) -> None:
    from rich.table import Table

    m = record.get("metrics") or {}
    model = record.get("model") or {}
    console.print(
        f"[bold]{record['id']}[/]  {record.get('title', '')}  status [bold]{record['status']}[/]"
    )
    if record.get("error"):
        console.print(f"[red]error:[/] {record['error']}")
    if model.get("random_init"):
        console.print("[yellow]backbone weights: random initialisation (not ImageNet)[/]")
    t = Table(show_header=False)
    for key in (
        "train_accuracy",
        "val_accuracy",
        "test_accuracy",
        "overfit_gap",
        "epochs_run",
        "best_epoch",
    ):
        if key in m:
            v = m[key]
            t.add_row(key, _pct(v) if key.endswith("accuracy") else str(v))
    p = record.get("params") or {}
    if p:
        t.add_row(
            "params",
            f"{p.get('total', 0):,} total, {p.get('trainable', 0):,} trainable, {p.get('frozen', 0):,} frozen",
        )
    console.print(t)
    if record.get("table"):
        tt = Table(title="results")
        keys = list(record["table"][0].keys())
        for k in keys:
            tt.add_column(k)
        for row in record["table"]:
            tt.add_row(
                *(
                    _pct(row[k]) if k in ("test_accuracy", "before", "after") else str(row[k])
                    for k in keys
                )
            )
        console.print(tt)


def add_commands(sub: Any) -> None:
    _add_run(sub)
    _add_data(sub)
    _add_runs(sub)
