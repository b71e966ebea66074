"""How a run (its run.json record) is described everywhere: labels, marks, metric tables.

One place decides how a random-init run is marked, how accuracies are printed and what a run
is called, so the Runs list, the detail view, Compare and the overlay all agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

RANDOM_MARK = "⚠ random init"
RANDOM_SHORT = "⚠rand"

STATUS_STYLES = {
    "finished": "green",
    "running": "bold cyan",
    "cancelled": "yellow",
    "failed": "bold red",
    "died": "red",
}


def pct(value: Any, digits: int = 2) -> str:
    """0.6937 → '69.37 %'; missing → '–'."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    return f"{value * 100:.{digits}f} %"


def num(value: Any, digits: int = 3) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def count(value: Any) -> str:
    """2122186 → '2,122,186'."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "–"
    return f"{int(value):,}"


def millions(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "–"
    return f"{value / 1e6:.1f} M"


def seconds(value: Any) -> str:
    """Durations as 4.2 s, 3m 05s, 1h 02m."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    value = max(float(value), 0.0)
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def is_random_init(record: dict[str, Any]) -> bool:
    model = record.get("model") or {}
    if isinstance(model, dict) and model.get("random_init"):
        return True
    table = record.get("table") or []
    return any(isinstance(row, dict) and row.get("random_init") for row in table)


def metrics_of(record: dict[str, Any]) -> dict[str, Any]:
    metrics = record.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def model_label(record: dict[str, Any]) -> str:
    """'simple_cnn', 'MobileNetV2', '9 backbones' …"""
    model = record.get("model") or {}
    if isinstance(model, dict):
        if model.get("backbone"):
            return str(model["backbone"])
        if model.get("name"):
            return str(model["name"])
    config = record.get("config") or {}
    if record.get("experiment") in ("compare", "preprocessing"):
        backbones = config.get("backbones") or []
        return f"{len(backbones)} backbones" if backbones else "backbones"
    if config.get("model") == "transfer" and config.get("backbone"):
        return str(config["backbone"])
    return str(config.get("model", "–"))


def created_label(record: dict[str, Any]) -> str:
    """When the run started, from its id (local time of the machine that ran it)."""
    run_id = str(record.get("id", ""))
    try:
        return datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(record.get("created", ""))[:16].replace("T", " ")


def run_title(record: dict[str, Any]) -> str:
    """A short human name: 'transfer · MobileNetV2 · 0420-1315'."""
    bits = [str(record.get("experiment", "?")), model_label(record)]
    if bits[1] in (bits[0], bits[0].replace("-", "_")):
        bits.pop()
    run_id = str(record.get("id", ""))
    stamp = run_id[4:8] + "-" + run_id[9:13] if len(run_id) >= 13 else run_id
    return " · ".join([*bits, stamp])


@dataclass
class RunRow:
    """What the Runs list needs from one run folder (the full record stays for details)."""

    path: Path
    record: dict[str, Any]
    status: str

    @property
    def id(self) -> str:
        return str(self.record.get("id", self.path.name))

    @property
    def random_init(self) -> bool:
        return is_random_init(self.record)

    def haystack(self) -> str:
        r = self.record
        config = r.get("config") or {}
        return " ".join(
            str(x)
            for x in (
                self.id,
                r.get("experiment"),
                r.get("title"),
                model_label(r),
                self.status,
                config.get("data"),
                "random" if self.random_init else "",
                "parent" if r.get("children") else "",
                "child" if r.get("parent") else "",
            )
        ).lower()


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def metrics_table(record: dict[str, Any]) -> Table:
    """Accuracies and losses of the kept epoch, the gap and the epochs run."""
    m = metrics_of(record)
    table = Table(box=None, show_header=True, padding=(0, 2, 0, 0), pad_edge=False)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("accuracy", justify="right", no_wrap=True)
    table.add_column("loss", justify="right", no_wrap=True)
    for label, key in (("train", "train"), ("validation", "val"), ("test", "test")):
        acc = m.get(f"{key}_accuracy")
        style = "bold green" if key == "test" else ""
        table.add_row(label, Text(pct(acc), style=style), num(m.get(f"{key}_loss")))
    gap = m.get("overfit_gap")
    gap_text = Text(f"{gap:.1f} points" if isinstance(gap, (int, float)) else "–")
    if isinstance(gap, (int, float)) and gap > 10:
        gap_text.stylize("bold yellow")
        gap_text.append("  (overfits)", style="yellow")
    table.add_row("gap (train − val)", gap_text, "")
    epochs = m.get("epochs_run")
    best = m.get("best_epoch")
    if epochs is not None:
        table.add_row("epochs run", f"{epochs}" + (f" (best {best})" if best else ""), "")
    return table


def params_table(record: dict[str, Any]) -> Any:
    """Total, trainable and frozen parameters, then one line per training phase."""
    from rich.console import Group

    params = record.get("params") or {}
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_row("total", count(params.get("total")))
    table.add_row("trainable", count(params.get("trainable")))
    table.add_row("frozen", count(params.get("frozen")))
    phases = [p for p in record.get("phases") or [] if isinstance(p, dict)]
    if not phases:
        return table
    per_phase = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, header_style="dim")
    for name in ("phase", "trainable", "lr", "epochs"):
        per_phase.add_column(name, justify="left" if name == "phase" else "right", no_wrap=True)
    for phase in phases:
        per_phase.add_row(
            str(phase.get("name", "?")),
            count(phase.get("trainable")),
            f"{phase.get('learning_rate', '–'):g}"
            if isinstance(phase.get("learning_rate"), (int, float))
            else "–",
            f"{phase.get('epochs_run', '–')}/{phase.get('epochs', '–')}",
        )
    return Group(table, Text(""), per_phase)


def timings_table(record: dict[str, Any]) -> Table:
    timings = record.get("timings") or {}
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for key in ("wall", "data", "features", "train", "evaluate", "epoch_mean"):
        if key in timings:
            table.add_row(key.replace("_", " "), seconds(timings.get(key)))
    return table


def model_lines(record: dict[str, Any]) -> Text:
    """Model, weights, preprocessing and data, one per line; random init in bold yellow."""
    model = record.get("model") or {}
    data = record.get("data") or {}
    text = Text()
    text.append("model  ", style="bold")
    text.append(model_label(record))
    if model.get("head"):
        text.append(f"  head {model['head']}")
    if model.get("input_size"):
        text.append(f"  input {model['input_size']}×{model['input_size']}")
    if model.get("weights") is not None:
        text.append("\nweights  ", style="bold")
        text.append(str(model.get("weights")))
    if is_random_init(record):
        text.append(
            f"  {RANDOM_MARK} (not pretrained: not the assignment's ImageNet numbers)",
            style="bold yellow",
        )
    if model.get("preprocessing"):
        text.append("\npreprocessing  ", style="bold")
        rng = model.get("preprocessing_range")
        text.append(str(model["preprocessing"]))
        if isinstance(rng, list) and len(rng) == 2:
            text.append(f"  → [{rng[0]:g}, {rng[1]:g}]")
    if data:
        text.append("\ndata  ", style="bold")
        text.append(
            f"{data.get('source', '?')}: {data.get('train', '?')} train · {data.get('val', '?')} val · "
            f"{data.get('test', '?')} test"
        )
    return text


def onnx_summary(record: dict[str, Any]) -> str:
    """One line for lists: 'ONNX model.onnx · parity ✓ · cpu 72.90 %' (empty when never exported)."""
    onnx = record.get("onnx") or {}
    exports = [e for e in onnx.get("exports") or [] if isinstance(e, dict)]
    evals = [e for e in onnx.get("evals") or [] if isinstance(e, dict)]
    if not exports and not evals:
        return ""
    bits = []
    if exports:
        latest = exports[-1]
        parity = latest.get("parity") or {}
        mark = "" if not parity else (" · parity ✓" if parity.get("passed") else " · parity ✗")
        bits.append(f"ONNX {latest.get('path', '?')}{mark}")
    if evals:
        latest = evals[-1]
        provider = (latest.get("provider") or {}).get("primary", "?")
        bits.append(f"{provider} {pct(latest.get('accuracy'))}")
    return " · ".join(bits)


def onnx_tables(record: dict[str, Any]) -> Any:
    """Exports (parity with Keras) and evaluations (provider actually used, accuracy beside
    Keras', latency, throughput) from run.json's `onnx` (docs/onnx.md); None when empty."""
    from rich.console import Group

    onnx = record.get("onnx") or {}
    exports = [e for e in onnx.get("exports") or [] if isinstance(e, dict)]
    evals = [e for e in onnx.get("evals") or [] if isinstance(e, dict)]
    if not exports and not evals:
        return None
    parts: list[Any] = []
    if exports:
        table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, header_style="bold")
        for name in ("file", "opset", "input", "parity (max |Δ|, top-1)", "size", "nodes"):
            table.add_column(
                name, no_wrap=True, justify="left" if name in ("file", "input") else "right"
            )
        for e in exports:
            parity = e.get("parity") or {}
            if parity:
                ok = "✓" if parity.get("passed") else "✗"
                parity_text = Text(
                    f"{ok} {parity.get('max_abs_diff', 0):.1e}, {pct(parity.get('top1_agreement'), 1)}",
                    style="green" if parity.get("passed") else "bold red",
                )
            else:
                parity_text = Text("not checked", style="dim")
            inp = e.get("input") or {}
            size = e.get("size_bytes")
            table.add_row(
                str(e.get("path", "?")),
                str(e.get("opset", "–")),
                f"{inp.get('dtype', '?')} {'×'.join(str(d) for d in inp.get('shape') or [])}",
                parity_text,
                f"{size / 1e6:.1f} MB" if isinstance(size, (int, float)) else "–",
                str(e.get("nodes", "–")),
            )
        parts.append(table)
    if evals:
        table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, header_style="bold")
        for name in ("file", "provider used", "ONNX acc", "Keras acc", "p50 latency", "images/s"):
            table.add_column(
                name, no_wrap=True, justify="left" if name in ("file", "provider used") else "right"
            )
        for e in evals:
            provider = e.get("provider") or {}
            used = ", ".join(provider.get("used") or []) or "?"
            if provider.get("fell_back"):
                used += f" (fell back from {provider.get('requested', '?')})"
            latency = (e.get("latency_ms") or {}).get("p50")
            throughput = (e.get("throughput") or {}).get("images_per_s")
            table.add_row(
                str(e.get("file", "?")),
                used,
                Text(pct(e.get("accuracy")), style="bold"),
                pct(e.get("keras_test_accuracy")),
                f"{latency:.2f} ms" if isinstance(latency, (int, float)) else "–",
                f"{throughput:,.0f}" if isinstance(throughput, (int, float)) else "–",
            )
        if parts:
            parts.append(Text(""))
        parts.append(table)
        notes = [n for e in evals[-1:] for n in ((e.get("provider") or {}).get("notes") or [])]
        if notes:
            parts.append(Text("\n".join(notes), style="dim"))
    return Group(*parts)
