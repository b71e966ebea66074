"""The Diff screen: two models (runs or .onnx files) compared by `engine diff --json`.

Opened from the Runs list (two runs marked) or from Inspect (Ctrl+D: the model being inspected
against a second run or file, picked here). The diff runs as a child process in a thread worker;
this process imports neither onnxruntime nor TensorFlow for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from tui.i18n import N_, _, integer, number, significant
from tui.screens.inspect_target import engine_command, list_inspectable, run_engine_json
from tui.widgets.footer import Footer


def _count(value: Any) -> str:
    return _("n/a") if value is None else integer(int(value))


def diff_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(mark, A, B, what differs) for every removed (-), added (+) and changed (~) item."""
    layers = result.get("layers") or {}
    rows = [("-", r["name"], "", f"{r['op']} {r['shape']}") for r in layers.get("removed", [])]
    rows += [("+", "", r["name"], f"{r['op']} {r['shape']}") for r in layers.get("added", [])]
    for change in layers.get("changed", []):
        what = "; ".join(f"{k} {a} → {b}" for k, (a, b) in change["changes"].items())
        renamed = _("renamed ({matched_by})").format(matched_by=change["matched_by"])
        rows.append(("~", change["a"], change["b"], what or renamed))
    return rows


def summary_text(result: dict[str, Any]) -> Text:
    """Totals of both sides, quantization nodes, notes and the output divergence."""
    a, b = result["a"], result["b"]
    text = Text()
    text.append(f"A  {a['label']}\nB  {b['label']}\n", style="bold")
    versus = _("{a}  vs  {b}")
    params = versus.format(a=_count(a["params"]), b=_count(b["params"]))
    text.append(_("params  {counts}").format(counts=params) + "\n")
    macs = versus.format(a=_count(a["macs"]), b=_count(b["macs"]))
    text.append(_("MACs per sample  {counts}").format(counts=macs) + "\n")
    quant = {**a["quantization_nodes"], **b["quantization_nodes"]}
    for op in sorted(quant):
        counts = versus.format(
            a=a["quantization_nodes"].get(op, 0), b=b["quantization_nodes"].get(op, 0)
        )
        text.append(
            _("quantization: {op}  {counts}").format(op=op, counts=counts) + "\n", style="cyan"
        )
    layers = result.get("layers")
    units = {"nodes": _("nodes"), "layers": _("layers")}
    if layers is not None:
        text.append(
            f"{units.get(result['unit'], result['unit'])}: "
            + _("{same} same, {changed} changed, {added} added, {removed} removed").format(
                same=layers["same"],
                changed=len(layers["changed"]),
                added=len(layers["added"]),
                removed=len(layers["removed"]),
            )
            + "\n"
        )
    for note in result.get("notes") or []:
        text.append(_("note: {note}").format(note=note) + "\n", style="dim")
    out = result["outputs"]
    if out["available"]:
        text.append(
            _(
                "outputs on {images} test images: top-1 agreement {agreement}%, max |Δprob| {dprob}"
            ).format(
                images=out["images"],
                agreement=number(out["agreement"] * 100, 1),
                dprob=significant(out["max_abs_dprob"], 3),
            ),
            style="bold green" if out["agreement"] == 1.0 else "bold yellow",
        )
    else:
        text.append(
            _("output divergence: n/a ({reason})").format(reason=out["reason"]), style="dim"
        )
    return text


class DiffScreen(Screen[None]):
    """`engine diff A B` as a table; with B None, pick B first (runs and .onnx files)."""

    DEFAULT_CSS = """
    DiffScreen #diff-title { height: 1; padding: 0 1; background: $panel; }
    DiffScreen #diff-picker { height: auto; max-height: 20; padding: 0 1; display: none; }
    DiffScreen.picking #diff-picker { display: block; }
    DiffScreen #diff-summary { height: auto; padding: 0 1; }
    DiffScreen #diff-table { height: 1fr; }
    """

    BINDINGS = [Binding("escape", "back", "Back")]

    class Done(Message):
        """`engine diff --json` returned."""

        def __init__(self, result: dict[str, Any]) -> None:
            super().__init__()
            self.result = result

    class PickerItems(Message):
        """Runs and ONNX files to pick B from."""

        def __init__(self, items: list[tuple[str, Path]]) -> None:
            super().__init__()
            self.items = items

    def __init__(
        self, a: Path | str, b: Path | str | None, *, runs_root: Path | None = None
    ) -> None:
        super().__init__()
        self.a = str(a)
        self.b = None if b is None else str(b)
        self.runs_root = runs_root
        self.result: dict[str, Any] | None = None
        self._picker_paths: list[Path] = []

    def compose(self) -> ComposeResult:
        yield Static(_("Diff"), id="diff-title")
        with Vertical(id="diff-picker"):
            yield Static(
                _("Diff {name} against (Enter), or type a path:").format(name=Path(self.a).name)
            )
            yield OptionList(id="diff-picker-list")
            yield Input(placeholder=_("a run folder or an .onnx file"), id="diff-picker-path")
        yield Static("", id="diff-summary")
        yield DataTable(id="diff-table", zebra_stripes=True, cursor_type="row")
        yield Footer()

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#diff-table", DataTable)

    def _title(self, text: str) -> None:
        self.query_one("#diff-title", Static).update(text)

    def on_mount(self) -> None:
        if self.b is None:
            self.add_class("picking")
            self._title(_("Diff · {name} against …").format(name=Path(self.a).name))
            self._picker_worker(self.runs_root)
        else:
            self.start(self.b)

    def start(self, b: str) -> None:
        self.b = b
        self.remove_class("picking")
        self._title(
            _("Diff · {a} vs {b} · running engine diff …").format(
                a=Path(self.a).name, b=Path(b).name
            )
        )
        args = ["diff", self.a, b, "--json"]
        if self.runs_root is not None:
            args += ["--runs-dir", str(self.runs_root)]
        self._diff_worker(engine_command(self.app), args)

    @work(
        thread=True,
        exclusive=True,
        group="diff",
        description=N_("engine diff"),
        exit_on_error=False,
    )
    def _diff_worker(self, prefix: list[str], args: list[str]) -> None:
        self.post_message(self.Done(run_engine_json(prefix, args, timeout=1800)))

    def on_diff_screen_done(self, message: Done) -> None:
        self.result = message.result
        self._title(_("Diff · {a} vs {b}").format(a=Path(self.a).name, b=Path(str(self.b)).name))
        self.query_one("#diff-summary", Static).update(summary_text(message.result))
        table = self.table
        table.clear(columns=True)
        table.add_columns("", "A", "B", _("what differs"))
        for row in diff_rows(message.result):
            table.add_row(*row)
        table.focus()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        reason = str(event.worker.error) or type(event.worker.error).__name__
        self._title(_("Diff · failed: {reason}").format(reason=reason))
        self.notify(reason, severity="error", timeout=10)

    # -- picking B
    @work(
        thread=True,
        exclusive=True,
        group="diff-picker",
        description=N_("list runs"),
        exit_on_error=False,
    )
    def _picker_worker(self, runs_root: Path | None) -> None:
        from engine.paths import default_runs_root

        self.post_message(self.PickerItems(list_inspectable(runs_root or default_runs_root())))

    def on_diff_screen_picker_items(self, message: PickerItems) -> None:
        options = self.query_one("#diff-picker-list", OptionList)
        options.clear_options()
        mine = Path(self.a).resolve()
        items = [(label, path) for label, path in message.items if path.resolve() != mine]
        self._picker_paths = [path for _, path in items]
        if items:
            options.add_options([Option(label) for label, _ in items])
            options.highlighted = 0
            options.focus()
        else:
            options.add_option(
                Option(_("nothing else to compare with — type a path below"), disabled=True)
            )
            self.query_one("#diff-picker-path", Input).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if 0 <= event.option_index < len(self._picker_paths):
            self.start(str(self._picker_paths[event.option_index]))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.start(str(Path(event.value.strip()).expanduser()))

    def action_back(self) -> None:
        self.app.pop_screen()
