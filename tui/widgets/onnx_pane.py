"""The ONNX pane: metadata, inputs/outputs, op histogram, initializer statistics, evaluation
with a provider of choice, and Keras-vs-ONNX parity and speed for files that came from a run.

The overview comes from `export.info.onnx_info` (onnx only, in a thread worker); evaluation
runs `engine eval FILE --json` as a child process, so onnxruntime's GPU providers (and their
native log noise) never load into the TUI process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Select, Static

from tui.i18n import N_, _, formatted, integer
from tui.widgets.charts import Bar, render_bar_chart
from tui.widgets.run_info import pct

PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")


def _num(value: Any, spec: str = ",") -> str:
    """`value` formatted with `spec` in the app's language; a dash when unknown."""
    if value is None:
        return "–"
    try:
        return formatted(value, spec)
    except (ValueError, TypeError):
        return str(value)


def macs_text(totals: dict[str, Any]) -> str:
    """`export.onnx_analysis.macs_summary` in the app's language (the same words in English):
    the MAC total with its convention (per sample, batch 1) and the ops it did not count."""
    batch = totals.get("batch")
    text = _("{macs} MACs per sample (batch 1; the file's batch: {batch})").format(
        macs=integer(int(totals.get("macs") or 0)), batch="?" if batch is None else batch
    )
    skipped = totals.get("not_counted") or {}
    if skipped:
        ops = ", ".join(f"{op} ×{n}" for op, n in skipped.items())
        text += _("; not counted: {ops}").format(ops=ops)
    return text


def onnx_overview(path: Path) -> dict[str, Any]:
    """`onnx_info` of the file (the ONNX engineer's API), without the per-node rows."""
    from export.info import onnx_info

    return onnx_info(path, nodes=False, initializer_stats=True)


def render_overview(info: dict[str, Any]) -> Group:
    """File facts, inputs/outputs, metadata, op histogram and initializer statistics."""
    size = int(info.get("size_bytes") or 0)
    producer = info.get("producer") or {}
    opset = info.get("opset") or {}
    totals = info.get("totals") or {}
    head = Text()
    head.append(f"{Path(str(info.get('file'))).name}", style="bold")
    head.append(
        "  "
        + _("{size} MB · IR {ir} · opset ").format(
            size=_num(size / 1e6, ".2f"), ir=info.get("ir_version")
        )
    )
    head.append(", ".join(f"{k} {v}" for k, v in opset.items()))
    head.append(
        " · "
        + _("producer {name} {version}").format(
            name=producer.get("name", "?"), version=producer.get("version", "")
        )
        + "\n"
    )
    generated = int(totals.get("params_generated") or 0)
    counts = _("{nodes} nodes · {params} parameters").format(
        nodes=_num(totals.get("nodes")), params=_num(totals.get("params"))
    )
    if generated:
        counts += " " + _("({n} generated in the graph)").format(n=_num(generated))
    counts += " · " + _("{n} initializers ({size} MB)").format(
        n=_num(totals.get("initializers")),
        size=_num(int(totals.get("initializer_bytes") or 0) / 1e6, ".2f"),
    )
    head.append(f"{counts} · {macs_text(totals)}\n")
    io = Table(box=None, padding=(0, 1), show_edge=False, title_justify="left")
    io.add_column("", style="bold")
    io.add_column(_("name"))
    io.add_column("dtype")
    io.add_column(_("shape"))
    for kind, label in (("inputs", _("input")), ("outputs", _("output"))):
        for entry in info.get(kind) or []:
            shape = entry.get("shape")
            io.add_row(label, str(entry.get("name")), str(entry.get("dtype")), str(shape))
    meta_table = Table(box=None, padding=(0, 1), show_edge=False)
    meta_table.add_column(_("metadata"), style="bold")
    meta_table.add_column(_("value"), overflow="fold")
    for key, value in (info.get("metadata") or {}).items():
        shown = value if len(value) <= 90 else value[:87] + "…"
        meta_table.add_row(key, shown)
    if not info.get("metadata"):
        meta_table.add_row(_("(none)"), _("this file carries no metadata_props"))
    hist = info.get("op_histogram") or {}
    bars = [Bar(op, float(n)) for op, n in list(hist.items())[:14]]
    ops = Text(_("op histogram") + "\n", style="bold")
    ops.append(render_bar_chart(bars, 60, value_format=lambda v: f"{int(v)}"))
    if len(hist) > 14:
        ops.append(
            "\n" + _("… and {n} more op types").format(n=len(hist) - 14),
            style="dim",
        )
    stats = info.get("initializer_stats") or {}
    init = Text("\n" + _("initializers (weights)") + "\n", style="bold")
    if stats.get("count"):
        init.append(
            _(
                "all {count} weights: min {min} · max {max} · mean {mean} · std {std} "
                "· exact zeros {zeros}"
            ).format(
                count=integer(stats["count"]),
                min=_num(stats.get("min"), ".4g"),
                max=_num(stats.get("max"), ".4g"),
                mean=_num(stats.get("mean"), ".3g"),
                std=_num(stats.get("std"), ".3g"),
                zeros=_num(stats.get("zeros")),
            )
            + "\n"
        )
    largest = sorted(info.get("initializers") or [], key=lambda e: -int(e.get("size") or 0))[:6]
    table = Table(box=None, padding=(0, 1), show_edge=False)
    columns = (_("largest"), _("shape"), _("size"), _("min"), _("max"), _("std"))
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i < 2 else "right")
    for e in largest:
        name = str(e.get("name"))
        table.add_row(
            name if len(name) <= 44 else "…" + name[-43:],
            str(e.get("shape")),
            _num(e.get("size")),
            _num(e.get("min"), ".3g"),
            _num(e.get("max"), ".3g"),
            _num(e.get("std"), ".3g"),
        )
    warnings = info.get("warnings") or []
    warn = Text("\n".join(f"⚠ {w}" for w in warnings), style="yellow") if warnings else Text("")
    return Group(head, io, Text(""), meta_table, Text(""), ops, init, table, warn)


def render_eval(result: dict[str, Any]) -> Text:
    """One `engine eval --json` result: accuracy, providers used, latency, throughput."""
    provider = result.get("provider") or {}
    text = Text()
    text.append(_("evaluation") + " ", style="bold")
    text.append(
        _("on {data} ({n} test images)").format(data=result.get("data"), n=_num(result.get("n")))
        + "\n"
    )
    text.append(_("provider: asked") + " ")
    text.append(str(provider.get("requested")), style="bold")
    text.append(" → " + _("running on") + " ")
    text.append(", ".join(provider.get("used") or []), style="bold green")
    if provider.get("fell_back"):
        text.append("  " + _("(fell back)"), style="yellow")
    text.append("\n")
    for note in provider.get("notes") or []:
        text.append(f"  {note}\n", style="dim")
    acc = result.get("accuracy")
    text.append(
        _("ONNX test accuracy {accuracy}").format(accuracy=pct(acc) if acc is not None else "– %")
    )
    keras_acc = result.get("keras_test_accuracy")
    if keras_acc is not None:
        text.append(f" · Keras {pct(keras_acc)}")
    text.append("\n")
    lat = result.get("latency_ms") or {}
    thr = result.get("throughput") or {}
    text.append(
        _("latency at batch 1: p50 {p50} ms · p90 {p90} ms · p99 {p99} ms").format(
            p50=_num(lat.get("p50"), ".3f"),
            p90=_num(lat.get("p90"), ".3f"),
            p99=_num(lat.get("p99"), ".3f"),
        )
        + "\n"
        + _("throughput at batch {batch}: {rate} images/s").format(
            batch=thr.get("batch"), rate=_num(thr.get("images_per_s"), ",.0f")
        )
    )
    return text


def render_parity(run: dict[str, Any] | None, onnx_path: Path | None) -> Text:
    """Keras vs ONNX for a file that came from a run: parity at export, accuracy, speed."""
    text = Text()
    if not run:
        text.append(_("Not from a run on disk: no Keras model to compare with."), style="dim")
        return text
    record = run.get("onnx") or {}
    exports = record.get("exports") or []
    evals = record.get("evals") or []
    name = onnx_path.name if onnx_path else None
    export = next((e for e in reversed(exports) if Path(str(e.get("path"))).name == name), None)
    text.append(_("Keras vs ONNX") + "\n", style="bold")
    metrics = run.get("metrics") or {}
    if export:
        parity = export.get("parity") or {}
        if parity:
            ok = parity.get("passed")
            text.append(_("parity at export: "))
            text.append(
                _("passed") if ok else _("FAILED"), style="bold green" if ok else "bold red"
            )
            text.append(
                " · "
                + _("max |Δp| {diff} (tolerance {tolerance})").format(
                    diff=_num(parity.get("max_abs_diff", 0), ".2e"),
                    tolerance=_num(parity.get("tolerance", 0), ".0e"),
                )
                + _(" · top-1 agreement {agreement} on {n} images").format(
                    agreement=pct(parity.get("top1_agreement", 0)), n=parity.get("n")
                )
                + "\n"
            )
        exported = _("exported with {converter}, opset {opset}, in {time} s").format(
            converter=export.get("converter", "?"),
            opset=export.get("opset"),
            time=_num(export.get("export_time", 0), ".1f"),
        )
        if export.get("with_preprocessing"):
            exported += " · " + _("preprocessing baked in (uint8 input)")
        text.append(exported + "\n")
    else:
        text.append(_("no export record for this file in run.json") + "\n", style="dim")
    keras_acc = metrics.get("test_accuracy")
    mine = [e for e in evals if Path(str(e.get("file") or e.get("path"))).name == name]
    if keras_acc is not None:
        text.append(_("Keras test accuracy {accuracy}").format(accuracy=pct(keras_acc)) + "\n")
    for e in mine[-4:]:
        provider = e.get("provider") or {}
        thr = (e.get("throughput") or {}).get("images_per_s")
        lat = (e.get("latency_ms") or {}).get("p50")
        text.append(
            _("ONNX on {providers} ({data}): {accuracy} · p50 {p50} ms · {rate} img/s").format(
                providers=",".join(provider.get("used") or []),
                data=e.get("data"),
                accuracy=pct(e.get("accuracy") or 0),
                p50=_num(lat, ".3f"),
                rate=_num(thr, ",.0f"),
            )
            + "\n"
        )
    if not mine:
        text.append(_("not evaluated yet: choose a provider and press Evaluate"), style="dim")
    return text


class OnnxPane(VerticalScroll):
    """Everything about the ONNX file, plus evaluation with a chosen provider."""

    DEFAULT_CSS = """
    OnnxPane { height: 1fr; padding: 0 1; }
    OnnxPane .pane-controls { height: auto; margin: 1 0 0 0; }
    OnnxPane #onnx-provider { width: 20; }
    OnnxPane #onnx-data { width: 28; }
    OnnxPane #onnx-eval-result, OnnxPane #onnx-parity { margin: 1 0 0 0; }
    """

    class InfoReady(Message):
        """`onnx_info` of the file."""

        def __init__(self, info: dict[str, Any]) -> None:
            super().__init__()
            self.info = info

    class EvalDone(Message):
        """An `engine eval` result."""

        def __init__(self, result: dict[str, Any]) -> None:
            super().__init__()
            self.result = result

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path: Path | None = None
        self.run: dict[str, Any] | None = None
        self.run_dir: Path | None = None
        self.info: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="onnx-parity")
        with Horizontal(classes="pane-controls"):
            yield Select[str](
                [(p, p) for p in PROVIDERS], allow_blank=False, value="auto", id="onnx-provider"
            )
            yield Input(value="synthetic", placeholder=_("data source"), id="onnx-data")
            yield Button(_("Evaluate  v"), id="onnx-eval", variant="primary")
        yield Static("", id="onnx-eval-result")
        yield Static("", id="onnx-overview")

    def set_target(self, target: Any) -> None:
        self.path = target.onnx_path
        self.run = target.run
        self.run_dir = target.path if target.kind == "run" else None
        self.query_one("#onnx-data", Input).value = target.data_source or "synthetic"
        self.query_one("#onnx-eval", Button).disabled = self.path is None
        self.query_one("#onnx-eval-result", Static).update("")
        if self.path is None:
            self.query_one("#onnx-parity", Static).update(
                Text(
                    _(
                        "No ONNX file yet. Export this run (Activations pane → Export, or "
                        "`engine export {path}`) to see its graph here."
                    ).format(path=target.path),
                    style="dim",
                )
            )
            self.query_one("#onnx-overview", Static).update("")
            return
        self.query_one("#onnx-parity", Static).update(render_parity(self.run, self.path))
        self.query_one("#onnx-overview", Static).update(
            Text(_("reading {name} …").format(name=self.path.name), style="dim")
        )
        self._read_info(self.path)

    @work(
        thread=True,
        exclusive=True,
        group="inspect-onnx-info",
        description=N_("read the ONNX file"),
        exit_on_error=False,
    )
    def _read_info(self, path: Path) -> None:
        self.post_message(self.InfoReady(onnx_overview(path)))

    def on_onnx_pane_info_ready(self, message: InfoReady) -> None:
        self.info = message.info
        self.query_one("#onnx-overview", Static).update(render_overview(message.info))
        self._update_parity()

    def _update_parity(self) -> None:
        """Keras vs ONNX, plus why their parameter counts differ when they do."""
        parity = render_parity(self.run, self.path)
        keras_total = ((self.run or {}).get("params") or {}).get("total")
        onnx_total = ((self.info or {}).get("totals") or {}).get("params")
        if keras_total and onnx_total is not None and int(keras_total) != int(onnx_total):
            parity.append(
                "\n"
                + _(
                    "parameters: Keras {keras}, ONNX {onnx} — the converter folds BatchNorm into "
                    "the convolutions before it and drops constants it can compute away (zero "
                    "biases), so the file holds fewer numbers for the same function."
                ).format(keras=integer(int(keras_total)), onnx=integer(int(onnx_total))),
                style="dim",
            )
        self.query_one("#onnx-parity", Static).update(parity)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "onnx-eval":
            return
        event.stop()
        self.evaluate()

    def evaluate(self) -> None:
        """Start `engine eval` with the chosen provider and data (a child process)."""
        button = self.query_one("#onnx-eval", Button)
        if self.path is None or button.disabled:
            return
        provider = str(self.query_one("#onnx-provider", Select).value)
        data = self.query_one("#onnx-data", Input).value.strip() or "synthetic"
        button.disabled = True
        self.query_one("#onnx-eval-result", Static).update(
            Text(
                _("evaluating with {provider} on {data} (engine eval) …").format(
                    provider=provider, data=data
                ),
                style="dim",
            )
        )
        self._evaluate(self.path, provider, data)

    @work(
        thread=True,
        exclusive=True,
        group="inspect-onnx-eval",
        description=N_("evaluate with onnxruntime"),
        exit_on_error=False,
    )
    def _evaluate(self, path: Path, provider: str, data: str) -> None:
        from tui.screens.inspect_target import engine_command, run_engine_json

        args = ["eval", str(path), "--data", data, "--provider", provider, "--json"]
        if self.run_dir is not None:
            args += ["--runs-dir", str(self.run_dir.parent)]
        try:
            result = run_engine_json(engine_command(self.app), args, timeout=1800)
        finally:
            self.app.call_from_thread(self._enable_eval)
        self.post_message(self.EvalDone(result))

    def _enable_eval(self) -> None:
        self.query_one("#onnx-eval", Button).disabled = self.path is None

    def on_onnx_pane_eval_done(self, message: EvalDone) -> None:
        self.query_one("#onnx-eval-result", Static).update(render_eval(message.result))
        if self.run_dir is not None:
            import json

            try:
                self.run = json.loads((self.run_dir / "run.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return
            self._update_parity()
