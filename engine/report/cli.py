"""Command-line glue: `engine report` and the `engine runs export` action."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.output import info


def _add_runs_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runs-dir", type=Path, default=None, help="runs root (default: $CNNLAB_RUNS, else ./runs)"
    )


def add_commands(sub: Any) -> None:
    """Register `engine report`."""
    from engine.i18n import available_languages

    p = sub.add_parser(
        "report",
        help="write the report of runs: tables, curves, confusion matrices, filters, lessons",
        description="Rebuild the write-up from run folders: experiment table, backbone ranking, "
        "preprocessing before/after, figures per run and the lessons with your numbers.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="run ids, unique prefixes or folders")
    p.add_argument("--all", action="store_true", help="every run under the runs root")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="report folder")
    p.add_argument("--format", choices=("md", "html"), default="md", help="md (default) or html")
    p.add_argument(
        "--lang",
        default=None,
        metavar="LANG",
        help=f"{' | '.join(available_languages())} (default: from LANG/LC_ALL, else en)",
    )
    _add_runs_dir(p)
    p.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from engine.i18n import language
    from engine.report.assemble import collect_report
    from engine.report.build import write_report

    lang = language(args.lang)  # an unknown language fails before any run is read
    if bool(args.runs) == bool(args.all):
        raise UsageError("name the runs to report on, or pass --all (not both)")
    data = collect_report(args.runs_dir, args.runs or None)
    for corrupt in data.corrupt:
        info(f"unreadable run {corrupt.path.name}: {corrupt.reason}")
    path = write_report(data, args.output, args.format, lang)
    info(f"report written to {path}")
    return 0


def add_runs_export(actions: Any) -> None:
    """Register `engine runs export` on the `runs` command's sub-parsers."""
    p = actions.add_parser("export", help="one row per run as CSV or JSON (for spreadsheets)")
    p.add_argument("--csv", metavar="FILE", help="write CSV to FILE (- for stdout)")
    p.add_argument(
        "--json", dest="json_file", metavar="FILE", help="write JSON to FILE (- for stdout)"
    )
    _add_runs_dir(p)
    p.set_defaults(handler=cmd_runs_export)


def cmd_runs_export(args: argparse.Namespace) -> int:
    from engine.report.table_export import export_rows, to_csv, to_json, write_text

    if not args.csv and not args.json_file:
        raise UsageError("say where: --csv FILE and/or --json FILE")
    rows = export_rows(args.runs_dir)
    if args.csv:
        write_text(args.csv, to_csv(rows))
    if args.json_file:
        write_text(args.json_file, to_json(rows))
    targets = [t for t in (args.csv, args.json_file) if t and t != "-"]
    if targets:
        info(f"{len(rows)} runs exported to {', '.join(targets)}")
    return 0
