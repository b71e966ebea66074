"""How a run (its run.json record) is described everywhere: labels, marks, metric tables.

One place decides how a random-init run is marked, how accuracies are printed and what a run
is called, so the Runs list, the detail view, Compare and the overlay all agree.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from engine.records import DataInfo, Metrics, OnnxRecord, RunRecord
from engine.runs import Run
from tui.i18n import N_, _, formatted, integer, number, pgettext

# English marks, translated where they are shown: `_(RANDOM_MARK)`.
RANDOM_MARK = N_("⚠ random init")
RANDOM_SHORT = N_("⚠rand")

# Keys are the engine's status words (marked for translation: lists show them with `_`).
STATUS_STYLES = {
    N_("finished"): "green",
    N_("running"): "bold cyan",
    N_("cancelled"): "yellow",
    N_("failed"): "bold red",
    N_("died"): "red",
    N_("corrupt"): "bold red",
}


def phase_label(phase: str) -> str:
    """A training phase (the engine's name for it) in the app's language."""
    labels = {
        "data": pgettext("phase", "data"),
        "features": pgettext("phase", "features"),
        "train": pgettext("phase", "train"),
        "frozen": pgettext("phase", "frozen"),
        "finetune": pgettext("phase", "finetune"),
    }
    return labels.get(phase, phase)


def pct(value: Any, digits: int = 2) -> str:
    """0.6937 → '69.37 %' ('69,37 %' in Spanish); missing → '–'."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    return f"{number(value * 100, digits)} %"


def num(value: Any, digits: int = 3) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    return number(value, digits)


def count(value: Any) -> str:
    """2122186 → '2,122,186' ('2.122.186' in Spanish)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "–"
    return integer(int(value))


def millions(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "–"
    return f"{number(value / 1e6, 1)} M"


def seconds(value: Any) -> str:
    """Durations as 4.2 s, 3m 05s, 1h 02m."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    value = max(float(value), 0.0)
    if value < 60:
        return f"{number(value, 1)} s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def data_counts(data: DataInfo) -> str:
    """'400 train · 100 val · 100 test' in the app's language ('?' for a count the record lacks)."""

    def shown(n: int | None) -> str:
        return "?" if n is None else integer(n)

    return _("{train} train · {val} val · {test} test").format(
        train=shown(data.train), val=shown(data.val), test=shown(data.test)
    )


def model_label(record: RunRecord) -> str:
    """'simple_cnn', 'MobileNetV2', '9 backbones' …"""
    if record.model is not None:
        return record.model.label
    if record.is_parent:
        n = len({child.backbone for child in record.plan}) or len(
            record.config.get("backbones") or []
        )
        return _("{n} backbones").format(n=n) if n else _("backbones")
    config = record.config
    if config.get("backbone") and _uses_backbone(str(config.get("model"))):
        return str(config["backbone"])
    return str(config.get("model", "–"))


def _uses_backbone(model: str) -> bool:
    """Whether the registered model is built on a backbone (engine.models; no TensorFlow)."""
    from engine.models import MODELS

    return model in MODELS and MODELS.get(model).uses_backbone


def created_label(record: RunRecord) -> str:
    """When the run started, from its id (local time of the machine that ran it)."""
    try:
        return datetime.strptime(record.id[:15], "%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return record.created[:16].replace("T", " ")


def run_title(record: RunRecord) -> str:
    """A short human name: 'transfer · MobileNetV2 · 0420-1315'."""
    bits = [record.experiment, model_label(record)]
    if bits[1] in (bits[0], bits[0].replace("-", "_")):
        bits.pop()
    run_id = record.id
    stamp = run_id[4:8] + "-" + run_id[9:13] if len(run_id) >= 13 else run_id
    return " · ".join([*bits, stamp])


def haystack(run: Run) -> str:
    """Everything the Runs filter matches free words against, lower case."""
    r = run.info
    return " ".join(
        str(x)
        for x in (
            run.id,
            r.experiment,
            r.title,
            model_label(r),
            run.status,
            r.config.get("data"),
            "random" if r.random_init else "",
            "parent" if r.children else "",
            "child" if r.parent else "",
        )
    ).lower()


def status_text(status: str) -> Text:
    """A run status word in the app's language, coloured by the status."""
    return Text(_(status), style=STATUS_STYLES.get(status, ""))


def run_status_text(run: Run) -> Text:
    """A run's status as lists show it: 'finished (model missing)' and 'corrupt' in red."""
    if run.problem:
        return Text(run.status_label_in(_), style="bold red")
    return status_text(run.status)


def metrics_table(record: RunRecord) -> Table:
    """Accuracies and losses of the kept epoch, the gap and the epochs run."""
    m = record.metrics or Metrics()
    table = Table(box=None, show_header=True, padding=(0, 2, 0, 0), pad_edge=False)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column(_("accuracy"), justify="right", no_wrap=True)
    table.add_column(_("loss"), justify="right", no_wrap=True)
    for label, acc, loss, style in (
        (_("train"), m.train_accuracy, m.train_loss, ""),
        (_("validation"), m.val_accuracy, m.val_loss, ""),
        (_("test"), m.test_accuracy, m.test_loss, "bold green"),
    ):
        table.add_row(label, Text(pct(acc), style=style), num(loss))
    gap = m.overfit_gap
    gap_text = Text(_("{gap} points").format(gap=number(gap, 1)) if gap is not None else "–")
    if gap is not None and gap > 10:
        gap_text.stylize("bold yellow")
        gap_text.append("  " + _("(overfits)"), style="yellow")
    table.add_row(_("gap (train − val)"), gap_text, "")
    if m.epochs_run is not None:
        best = m.best_epoch
        epochs = f"{m.epochs_run}" + (" " + _("(best {epoch})").format(epoch=best) if best else "")
        table.add_row(_("epochs run"), epochs, "")
    return table


def params_table(record: RunRecord) -> Any:
    """Total, trainable and frozen parameters, then one line per training phase."""
    from rich.console import Group

    params = record.params
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_row(_("total"), count(params.total if params else None))
    table.add_row(_("trainable"), count(params.trainable if params else None))
    table.add_row(_("frozen"), count(params.frozen if params else None))
    if not record.phases:
        return table
    per_phase = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, header_style="dim")
    for i, name in enumerate((_("phase"), _("trainable"), "lr", _("epochs"))):
        per_phase.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for phase in record.phases:
        per_phase.add_row(
            phase_label(phase.name),
            count(phase.trainable),
            formatted(phase.learning_rate, "g"),
            f"{phase.epochs_run}/{phase.epochs}",
        )
    return Group(table, Text(""), per_phase)


def timings_table(record: RunRecord) -> Table:
    timings = record.timings
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    labels = {
        "wall": _("wall"),
        "data": _("data"),
        "features": _("features"),
        "train": _("train"),
        "evaluate": _("evaluate"),
        "epoch_mean": _("epoch mean"),
    }
    for key, label in labels.items():
        if key in timings:
            table.add_row(label, seconds(timings.get(key)))
    return table


def model_lines(record: RunRecord) -> Text:
    """Model, weights, preprocessing and data, one per line; random init in bold yellow."""
    model, data = record.model, record.data
    text = Text()
    text.append(_("model") + "  ", style="bold")
    text.append(model_label(record))
    if model is not None and model.head:
        text.append("  " + _("head {head}").format(head=model.head))
    if model is not None and model.input_size:
        text.append("  " + _("input {size}").format(size=f"{model.input_size}×{model.input_size}"))
    if model is not None and model.weights is not None:
        text.append("\n" + _("weights") + "  ", style="bold")
        text.append(model.weights)
    if record.random_init:
        text.append(
            f"  {_(RANDOM_MARK)} " + _("(not pretrained: not the assignment's ImageNet numbers)"),
            style="bold yellow",
        )
    if model is not None and model.preprocessing:
        text.append("\n" + _("preprocessing") + "  ", style="bold")
        rng = model.preprocessing_range
        text.append(model.preprocessing)
        if len(rng) == 2:
            text.append(f"  → [{formatted(rng[0], 'g')}, {formatted(rng[1], 'g')}]")
    if data is not None:
        text.append("\n" + _("data") + "  ", style="bold")
        text.append(f"{data.source}: {data_counts(data)}")
    return text


def onnx_summary(record: RunRecord) -> str:
    """One line for lists: 'ONNX model.onnx · parity ✓ · cpu 72.90 %' (empty when never exported)."""
    onnx = record.onnx or OnnxRecord()
    if not onnx.exports and not onnx.evals:
        return ""
    bits = []
    if onnx.exports:
        latest = onnx.exports[-1]
        parity = latest.parity
        mark = "" if parity is None else " · " + (_("parity ✓") if parity.passed else _("parity ✗"))
        bits.append(f"ONNX {latest.path}{mark}")
    if onnx.evals:
        last = onnx.evals[-1]
        bits.append(f"{last.provider.primary} {pct(last.accuracy)}")
    return " · ".join(bits)


def onnx_tables(record: RunRecord) -> Any:
    """Exports (parity with Keras) and evaluations (provider actually used, accuracy beside
    Keras', latency, throughput) from run.json's `onnx` (docs/onnx.md); None when empty."""
    from rich.console import Group

    onnx = record.onnx or OnnxRecord()
    exports, evals = onnx.exports, onnx.evals
    if not exports and not evals:
        return None
    parts: list[Any] = []
    if exports:
        table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, header_style="bold")
        columns = (
            N_("file"),
            "opset",
            N_("input"),
            N_("parity (max |Δ|, top-1)"),
            N_("size"),
            N_("nodes"),
        )
        for name in columns:
            table.add_column(
                _(name), no_wrap=True, justify="left" if name in ("file", "input") else "right"
            )
        for e in exports:
            parity = e.parity
            if parity is not None:
                ok = "✓" if parity.passed else "✗"
                parity_text = Text(
                    f"{ok} {formatted(parity.max_abs_diff, '.1e')}, {pct(parity.top1_agreement, 1)}",
                    style="green" if parity.passed else "bold red",
                )
            else:
                parity_text = Text(_("not checked"), style="dim")
            shape = e.input.get("shape") or []
            table.add_row(
                e.path,
                str(e.opset if e.opset is not None else "–"),
                f"{e.input.get('dtype', '?')} {'×'.join(str(d) for d in shape)}",
                parity_text,
                f"{number(e.size_bytes / 1e6, 1)} MB" if e.size_bytes is not None else "–",
                str(e.nodes if e.nodes is not None else "–"),
            )
        parts.append(table)
    if evals:
        table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, header_style="bold")
        columns = (
            N_("file"),
            N_("provider used"),
            N_("ONNX acc"),
            N_("Keras acc"),
            N_("p50 latency"),
            N_("images/s"),
        )
        for name in columns:
            table.add_column(
                _(name),
                no_wrap=True,
                justify="left" if name in ("file", "provider used") else "right",
            )
        for ev in evals:
            provider = ev.provider
            used = ", ".join(provider.used) or "?"
            if provider.fell_back:
                used += " " + _("(fell back from {provider})").format(provider=provider.requested)
            latency = ev.latency_ms.get("p50")
            throughput = ev.throughput.get("images_per_s")
            table.add_row(
                ev.file,
                used,
                Text(pct(ev.accuracy), style="bold"),
                pct(ev.keras_test_accuracy),
                f"{number(latency, 2)} ms" if isinstance(latency, (int, float)) else "–",
                formatted(throughput, ",.0f") if isinstance(throughput, (int, float)) else "–",
            )
        if parts:
            parts.append(Text(""))
        parts.append(table)
        notes = evals[-1].provider.notes
        if notes:
            parts.append(Text("\n".join(notes), style="dim"))
    return Group(*parts)
