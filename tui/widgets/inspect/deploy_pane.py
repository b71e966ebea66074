"""The Deploy pane: a model's fp32/fp16/int8 variants side by side, and where int8 loses accuracy.

It shows what run.json's `onnx.variants` holds (or the last `engine deploy` result): the variants
table, a bar chart of accuracy, latency and size, and the per-layer error list (Enter on a node
keeps it in float on the next run: `--exclude`). `R` runs
`engine deploy ... --json --layer-error` as a child process in a thread worker; its stderr
lines are the progress, and `C` cancels it (SIGINT, then SIGKILL): deploy is all-or-nothing,
so a cancelled run leaves the run folder as it was.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Static

from engine.records import OnnxVariant
from tui.i18n import N_, _, integer, number, significant
from tui.widgets.charts import PALETTE, Bar, BarChart
from tui.widgets.inspect.base import InspectPane

CANCEL_GRACE_S = 5.0  # after SIGINT, how long deploy may take to stop before SIGKILL


@dataclass(frozen=True)
class VariantRow:
    """One row of the variants table: a variant measured on one provider."""

    variant: str
    provider: str
    size_mb: float
    accuracy: float | None = None
    agreement: float | None = None
    max_dprob: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    images_per_s: float | None = None
    error: str | None = None


def read_variants(entries: list[dict[str, Any]]) -> list[OnnxVariant]:
    """run.json `onnx.variants` (or `engine deploy --json`'s `variants`) as typed records."""
    return [OnnxVariant.from_json(entry, "variant") for entry in entries]


def variant_rows(variants: list[OnnxVariant]) -> list[VariantRow]:
    """One table row per variant and provider."""
    rows = []
    for entry in variants:
        size = float(entry.size_bytes or 0) / 1e6
        for result in entry.results:
            provider = result.get("provider") or {}
            name = str(provider.get("primary") or provider.get("requested") or "?")
            if result.get("error"):
                rows.append(VariantRow(entry.variant, name, size, error=result["error"]))
                continue
            latency = result.get("latency_ms") or {}
            timed = bool(latency.get("runs"))
            rows.append(
                VariantRow(
                    variant=entry.variant,
                    provider=name,
                    size_mb=size,
                    accuracy=result.get("accuracy"),
                    agreement=result.get("agreement"),
                    max_dprob=result.get("max_abs_dprob"),
                    p50_ms=latency.get("p50") if timed else None,
                    p99_ms=latency.get("p99") if timed else None,
                    images_per_s=(result.get("throughput") or {}).get("images_per_s"),
                )
            )
    return rows


def _cell(value: float | None, show: Callable[[float], str]) -> str:
    return _("n/a") if value is None else show(value)


def _one_decimal(value: float) -> str:
    return number(value, 1)


def _three_figures(value: float) -> str:
    return significant(value, 3)


# The variants table's columns (translated when shown); MB, ms and op names stay as they are.
VARIANT_COLUMNS = (
    N_("variant"),
    N_("provider"),
    "MB",
    N_("acc %"),
    N_("agree %"),
    N_("max Δp"),
    "p50 ms",
    "p99 ms",
    N_("img/s"),
)
LAYER_COLUMNS = (N_("node"), "op", "SQNR dB", N_("rel L2"), N_("max |Δ|"))


def chart_bars(rows: list[VariantRow]) -> list[Bar]:
    """Accuracy (%), latency p50 (ms) and size (MB), one group each, a colour per variant."""
    colours: dict[str, str] = {}
    bars: list[Bar] = []
    groups = (
        (_("acc %"), lambda r: None if r.accuracy is None else r.accuracy * 100),
        ("p50 ms", lambda r: r.p50_ms),
        ("MB", lambda r: r.size_mb),
    )
    for title, value_of in groups:
        for row in rows:
            value = value_of(row)
            if row.error or value is None:
                continue
            colour = colours.setdefault(row.variant, PALETTE[len(colours) % len(PALETTE)])
            bars.append(Bar(f"{title} {row.variant}/{row.provider}", float(value), colour))
    return bars


class DeployPane(InspectPane):
    """Variants table, chart and per-layer error; `engine deploy` in a cancellable worker."""

    DEFAULT_CSS = """
    DeployPane { height: 1fr; padding: 0 1; }
    DeployPane .pane-controls { height: auto; margin: 1 0 0 0; }
    DeployPane #deploy-status { height: auto; }
    DeployPane #deploy-variants { height: auto; max-height: 12; }
    DeployPane #deploy-layers { height: auto; max-height: 12; }
    DeployPane #deploy-scroll { height: 1fr; }
    """

    # What R runs besides the target: every variant, the per-layer error, a short latency run.
    options: list[str] = ["--layer-error", "--latency-runs", "20"]

    class Progress(Message):
        """A progress line from the deploy child's stderr."""

        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

    class Done(Message):
        """`engine deploy --json` finished: its result, or why not (cancelled/failed)."""

        def __init__(self, result: dict[str, Any] | None, failure: str | None) -> None:
            super().__init__()
            self.result = result
            self.failure = failure

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result: dict[str, Any] | None = None
        self.rows: list[VariantRow] = []
        self.excluded: list[str] = []  # nodes `--exclude` keeps in float (Enter on the layer list)
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._cancelled = False

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-controls"):
            yield Button(_("Run deploy  R"), id="deploy-run", variant="primary")
            yield Button(_("Cancel  C"), id="deploy-cancel", disabled=True)
        yield Static("", id="deploy-status")
        with VerticalScroll(id="deploy-scroll"):
            yield DataTable(id="deploy-variants", zebra_stripes=True, cursor_type="row")
            yield BarChart(id="deploy-chart", value_format=_three_figures)
            yield Static("", id="deploy-layer-title")
            yield DataTable(id="deploy-layers", cursor_type="row")

    # -- typed accessors
    @property
    def variants_table(self) -> DataTable[str]:
        return self.query_one("#deploy-variants", DataTable)

    @property
    def layers_table(self) -> DataTable[str]:
        return self.query_one("#deploy-layers", DataTable)

    @property
    def running(self) -> bool:
        return self._proc is not None

    def _status(self, text: str, style: str = "dim") -> None:
        self.query_one("#deploy-status", Static).update(Text(text, style=style))

    # -- showing results
    def set_target(self, target: Any) -> None:
        super().set_target(target)
        self.excluded = []
        onnx = (target.run or {}).get("onnx") or {}
        stored = read_variants(onnx.get("variants") or [])
        self.query_one("#deploy-run", Button).disabled = target.onnx_path is None
        if stored:
            # run.json keeps the per-layer error on the int8 entry.
            layers: list[dict[str, Any]] = next(
                (v.extra["layer_error"] for v in stored if v.extra.get("layer_error")), []
            )
            self._show(stored, layers)
            self._status(
                _("{n} variant(s) stored in run.json; R runs deploy again").format(n=len(stored))
            )
        else:
            self._show([], [])
            self._status(
                _(
                    "No variants yet: press R to build fp32/fp16/int8 variants and measure them "
                    "(engine deploy)."
                )
                if target.onnx_path is not None
                else _("No ONNX file yet: export the model first (engine export).")
            )

    def show(self, result: dict[str, Any]) -> None:
        """Fill the table, chart and layer list from an `engine deploy --json` result."""
        self.result = result
        self._show(read_variants(result.get("variants") or []), result.get("layer_error") or [])

    def _show(self, variants: list[OnnxVariant], layers: list[dict[str, Any]]) -> None:
        self.rows = variant_rows(variants)
        table = self.variants_table
        table.clear(columns=True)
        table.add_columns(*(_(name) for name in VARIANT_COLUMNS))
        for row in self.rows:
            size = number(row.size_mb, 2)
            if row.error:
                table.add_row(row.variant, row.provider, size, row.error[:60])
                continue
            table.add_row(
                row.variant,
                row.provider,
                size,
                _cell(None if row.accuracy is None else row.accuracy * 100, _one_decimal),
                _cell(None if row.agreement is None else row.agreement * 100, _one_decimal),
                _cell(row.max_dprob, lambda v: significant(v, 2)),
                _cell(row.p50_ms, _three_figures),
                _cell(row.p99_ms, _three_figures),
                _cell(row.images_per_s, lambda v: integer(round(v))),
            )
        self.query_one("#deploy-chart", BarChart).bars = chart_bars(self.rows)
        self._show_layers(layers)

    def _show_layers(self, layers: list[dict[str, Any]]) -> None:
        table = self.layers_table
        table.clear(columns=True)
        title = self.query_one("#deploy-layer-title", Static)
        if not layers:
            title.update("")
            table.display = False
            return
        table.display = True
        title.update(
            Text(
                _("int8 vs fp32 per node output, worst first ({n} nodes)").format(n=len(layers)),
                style="bold",
            )
        )
        table.add_columns(*(_(name) for name in LAYER_COLUMNS))
        for row in layers:
            sqnr = row.get("sqnr_db")
            if sqnr is None:
                sqnr_text = _("exact")
            else:
                sqnr_text = "-inf" if math.isinf(sqnr) else number(sqnr, 1)
            table.add_row(
                str(row.get("node")),
                str(row.get("op")),
                sqnr_text,
                _cell(row.get("rel_l2"), _three_figures),
                _cell(row.get("max_abs"), _three_figures),
            )

    # -- running engine deploy
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "deploy-run":
            event.stop()
            self.start()
        elif event.button.id == "deploy-cancel":
            event.stop()
            self.cancel()

    def deploy_args(self) -> list[str]:
        """The `engine deploy` command line for the loaded target."""
        assert self.target is not None
        target = self.target
        args = ["deploy", str(target.path if target.kind == "run" else target.onnx_path)]
        if target.kind == "run":
            args += ["--runs-dir", str(target.path.parent)]
        if self.excluded:
            args += ["--exclude", ",".join(self.excluded)]
        return [*args, *self.options, "--json"]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a layer-error row keeps that node in float on the next run (or no longer)."""
        if event.data_table.id != "deploy-layers":
            return
        event.stop()
        node = str(event.data_table.get_row_at(event.cursor_row)[0])
        if node in self.excluded:
            self.excluded.remove(node)
        else:
            self.excluded.append(node)
        kept = ", ".join(self.excluded) or _("none")
        self._status(
            _("kept in float on the next run (R): {nodes}").format(nodes=kept), style="yellow"
        )

    def start(self) -> None:
        if self.target is None or self.target.onnx_path is None or self.running:
            return
        from tui.screens.inspect_target import engine_command

        self._cancelled = False
        self.query_one("#deploy-run", Button).disabled = True
        self.query_one("#deploy-cancel", Button).disabled = False
        self._status(_("starting engine deploy …"))
        self._deploy_worker([*engine_command(self.app), *self.deploy_args()])

    def cancel(self) -> None:
        """SIGINT the deploy child (it stops and leaves nothing behind); SIGKILL if it lingers."""
        with self._lock:
            proc = self._proc
        if proc is None:
            return
        self._cancelled = True
        self._status(_("cancelling …"))
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except (ProcessLookupError, PermissionError):
            return
        timer = threading.Timer(CANCEL_GRACE_S, _kill_group, args=(proc,))
        timer.daemon = True
        timer.start()

    @work(
        thread=True,
        exclusive=True,
        group="inspect-deploy",
        description=N_("engine deploy"),
        exit_on_error=False,
    )
    def _deploy_worker(self, command: list[str]) -> None:
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # the terminal's Ctrl-C is the app's; C cancels
            )
        except OSError as exc:
            self.post_message(
                self.Done(None, _("cannot start the engine: {error}").format(error=exc))
            )
            return
        with self._lock:
            self._proc = proc
        out_chunks: list[bytes] = []
        reader = threading.Thread(
            target=lambda: out_chunks.append(proc.stdout.read() if proc.stdout else b""),
            daemon=True,
        )
        reader.start()
        last = ""
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                last = line
                self.post_message(self.Progress(line))
        code = proc.wait()
        reader.join()
        with self._lock:
            self._proc = None
        if self._cancelled:
            self.post_message(self.Done(None, _("cancelled: nothing was written")))
        elif code != 0:
            reason = last.replace("engine: error:", "").strip()
            self.post_message(self.Done(None, reason or _("exit code {code}").format(code=code)))
        else:
            try:
                self.post_message(self.Done(json.loads(b"".join(out_chunks)), None))
            except ValueError:
                self.post_message(
                    self.Done(None, _("engine deploy printed something that is not JSON"))
                )

    def on_deploy_pane_progress(self, message: Progress) -> None:
        self._status(_("engine deploy: {line}").format(line=message.line))

    def on_deploy_pane_done(self, message: Done) -> None:
        self.query_one("#deploy-run", Button).disabled = False
        self.query_one("#deploy-cancel", Button).disabled = True
        if message.result is None:
            self._status(
                _("deploy: {reason}").format(reason=message.failure),
                style="bold red" if not self._cancelled else "yellow",
            )
            return
        self.show(message.result)
        if message.result.get("stored"):
            done = _("deploy finished: {n} row(s) (stored in run.json)")
        else:
            done = _("deploy finished: {n} row(s)")
        self._status(done.format(n=len(self.rows)), style="green")

    def on_unmount(self) -> None:
        with self._lock:
            proc = self._proc
        if proc is not None:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
