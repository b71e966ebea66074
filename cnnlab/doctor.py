"""`engine doctor`: composed from the engine's part (TensorFlow, caches, weights) and the export
part (onnxruntime providers), so neither layer has to know about the other."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from engine.output import console, print_json

Part = Callable[[], dict[str, Any]]


def _parts() -> list[Part]:
    from engine.doctor import diagnose as engine_part
    from export.doctor import diagnose as export_part

    return [engine_part, export_part]


def compose(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One report: each part's keys in order, their `missing_for_gpu` lists joined at the end."""
    report: dict[str, Any] = {}
    missing: list[str] = []
    for part in parts:
        for key, value in part.items():
            if key == "missing_for_gpu":
                missing.extend(value)
            else:
                report[key] = value
    report["missing_for_gpu"] = missing
    return report


def cmd_doctor(args: argparse.Namespace) -> int:
    report = compose([part() for part in _parts()])
    if args.json:
        print_json(report)
        return 0
    from rich.table import Table
    from rich.text import Text

    def fmt(v: Any) -> str:
        if isinstance(v, list):
            return ", ".join(fmt(x) for x in v) or "–"
        if isinstance(v, dict):
            return "\n".join(f"{a}: {fmt(b)}" for a, b in v.items())
        return str(v)

    t = Table(title="cnnlab doctor", show_header=False)
    for k, v in report.items():
        t.add_row(k, Text(fmt(v)))  # Text: no Rich markup in values ("cnnlab[gpu]")
    console.print(t)
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("doctor", help="versions, devices, providers, caches, what GPU use lacks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_doctor)
