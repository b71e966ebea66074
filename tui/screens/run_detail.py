"""One run's results: accuracies, gap, per-class accuracy, confusion matrix, curves, params, timings."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Static

from engine.errors import RunError
from engine.records import Metrics, RunRecord
from engine.runs import Run, RunStore
from tui.i18n import N_, _, number
from tui.messages import OpenInspector
from tui.widgets.charts import PALETTE, Bar, BarChart, LineChart, heatmap_table, history_series
from tui.widgets.footer import Footer
from tui.widgets.nav import NavBar
from tui.widgets.run_info import (
    RANDOM_MARK,
    created_label,
    metrics_table,
    model_label,
    model_lines,
    onnx_tables,
    params_table,
    pct,
    seconds,
    status_text,
    timings_table,
)


def children_table(record: RunRecord) -> Table | None:
    """The parent run's `table` (compare ranking or preprocessing before/after)."""
    if not record.table:
        return None
    table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, header_style="bold")
    if record.preprocessing_rows:
        columns = (
            N_("backbone"),
            N_("preprocessing"),
            N_("before (x/255)"),
            N_("after (own)"),
            "Δ",
        )
        for col in columns:
            table.add_column(
                _(col), justify="left" if col in ("backbone", "preprocessing") else "right"
            )
        for prow in record.preprocessing_rows:
            delta = prow.delta_points
            name = Text(prow.backbone)
            if prow.random_init:
                name.append(" ⚠", style="bold yellow")
            table.add_row(
                name,
                prow.preprocessing,
                pct(prow.before),
                pct(prow.after),
                f"{number(delta, 1, signed=True)} pts" if delta is not None else "–",
            )
        return table
    ranking_columns = (
        N_("rank"),
        N_("backbone"),
        N_("test acc"),
        N_("params"),
        N_("efficiency"),
        N_("status"),
    )
    for col in ranking_columns:
        table.add_column(_(col), justify="left" if col in ("backbone", "status") else "right")
    for row in record.compare_rows:
        name = Text(row.backbone)
        if row.random_init:
            name.append(" ⚠", style="bold yellow")
        table.add_row(
            str(row.rank if row.rank is not None else ""),
            name,
            pct(row.test_accuracy),
            f"{number(row.params_m, 1)} M" if row.params_m is not None else "–",
            number(row.efficiency, 3) if row.efficiency is not None else "–",
            _(row.status),
        )
    return table


def per_class_bars(per_class: dict[str, Any]) -> list[Bar]:
    """Per-class accuracy bars; the best class green, the worst red (when there is only one)."""
    values = [v for v in per_class.values() if isinstance(v, (int, float))]
    best = max(values) if values and values.count(max(values)) == 1 else None
    worst = min(values) if values and values.count(min(values)) == 1 else None
    bars = []
    for name, value in per_class.items():
        if not isinstance(value, (int, float)):
            continue
        color, note = PALETTE[0], ""
        if value == best:
            color, note = PALETTE[2], _("best")
        elif value == worst:
            color, note = PALETTE[3], _("worst")
        bars.append(Bar(name, float(value), color, note=note, note_style="dim"))
    return bars


class RunDetailScreen(Screen[None]):
    """Everything run.json says about one run, laid out to read top to bottom."""

    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("i", "inspect", "Inspect"),
        Binding("w", "report", "Write report"),
        Binding("D", "deploy", "Deploy"),
    ]

    def __init__(self, row: Run) -> None:
        super().__init__()
        self.row = row
        self.record: RunRecord = row.info

    def compose(self) -> ComposeResult:
        r = self.record
        m = r.metrics or Metrics()
        yield NavBar("runs")
        with VerticalScroll(id="detail-scroll"):
            yield Static(self._title(), id="detail-title")
            if r.random_init:
                yield Static(
                    Text(
                        f"{_(RANDOM_MARK)}: "
                        + _(
                            "the backbone was NOT pretrained (--weights none); these numbers "
                            "are not the assignment's ImageNet transfer results."
                        ),
                        style="bold yellow",
                    ),
                    id="detail-random",
                )
            if r.error:
                yield Static(
                    Text(_("error: {error}").format(error=r.error), style="bold red"),
                    id="detail-error",
                )
            is_parent = r.is_parent
            with Horizontal(classes="detail-row"):
                if not is_parent:
                    with Vertical(classes="detail-box", id="box-metrics") as box:
                        box.border_title = _("accuracy")
                        yield Static(metrics_table(r))
                with Vertical(classes="detail-box", id="box-model") as box:
                    box.border_title = _("model & data")
                    yield Static(model_lines(r))
            history = r.history
            if history:
                data = history_series(history)
                x_range = (1.0, max(data.x_max, 2.0))
                with Horizontal(classes="detail-row", id="detail-curves"):
                    acc = LineChart(
                        data.accuracy,
                        x_range=x_range,
                        y_range=(0.0, 1.0),
                        x_label=_("epoch"),
                        id="detail-acc",
                    )
                    acc.border_title = _("accuracy per epoch")
                    yield acc
                    loss = LineChart(
                        data.loss, x_range=x_range, x_label=_("epoch"), id="detail-loss"
                    )
                    loss.border_title = _("loss per epoch")
                    yield loss
            table = children_table(r)
            if table is not None:
                with Vertical(classes="detail-box", id="box-children") as box:
                    box.border_title = _("results") + (
                        " " + _("(⚠ = random init)") if r.random_init else ""
                    )
                    yield Static(table)
            if r.children:
                with Vertical(classes="detail-box", id="box-children-list") as box:
                    box.border_title = _("child runs (enter opens one)")
                    child_table: DataTable[Any] = DataTable(id="children-table", cursor_type="row")
                    yield child_table
            per_class = m.per_class_accuracy or {}
            with Horizontal(classes="detail-row"):
                if per_class:
                    with Vertical(classes="detail-box", id="box-per-class") as box:
                        box.border_title = _("per-class test accuracy")
                        yield BarChart(
                            per_class_bars(per_class),
                            max_value=1.0,
                            value_format=lambda v: pct(v, 0),
                        )
                with Vertical(classes="detail-column"):
                    if not is_parent:
                        with Vertical(classes="detail-box", id="box-params") as box:
                            box.border_title = _("parameters")
                            yield Static(params_table(r))
                    with Vertical(classes="detail-box", id="box-timings") as box:
                        box.border_title = _("timings")
                        yield Static(timings_table(r))
            onnx = onnx_tables(r)
            if onnx is not None:
                with Vertical(classes="detail-box", id="box-onnx") as box:
                    box.border_title = _("ONNX (engine export / engine eval)")
                    yield Static(onnx)
            matrix = m.confusion_matrix or []
            if matrix:
                classes = (
                    (r.data.classes if r.data else None)
                    or list(per_class)
                    or [str(i) for i in range(len(matrix))]
                )
                with Vertical(classes="detail-box", id="box-confusion") as box:
                    box.border_title = _(
                        "confusion matrix (rows: true class · colour: share of the row)"
                    )
                    yield Static(heatmap_table(matrix, classes))
            env = r.environment or {}
            if env:
                yield Static(
                    Text(
                        _("environment:")
                        + " "
                        + "  ".join(
                            f"{k} {v}" for k, v in env.items() if not isinstance(v, (dict, list))
                        )
                        + (
                            "  " + _("devices {devices}").format(devices=", ".join(env["devices"]))
                            if env.get("devices")
                            else ""
                        ),
                        style="dim",
                    ),
                    id="detail-env",
                )
            yield Static(
                Text(_("folder {path}").format(path=self.row.path), style="dim"), id="detail-path"
            )
        yield Footer()

    def _title(self) -> Text:
        r = self.record
        text = Text()
        text.append(r.title or r.experiment, style="bold")
        text.append(f"  {model_label(r)}  ")
        text.append_text(status_text(self.row.status))
        text.append("  " + _("started {when}").format(when=created_label(r)), style="dim")
        wall = r.timings.get("wall")
        if wall is not None:
            text.append("  " + _("took {time}").format(time=seconds(wall)), style="dim")
        text.append("\n" + _("run {id}").format(id=r.id), style="dim")
        if r.parent:
            text.append("  " + _("(child of {parent})").format(parent=r.parent), style="dim")
        return text

    def on_mount(self) -> None:
        if not self.record.children:
            return
        table = self.query_one("#children-table", DataTable)
        table.add_columns(_("run"), _("status"), _("model"), _("test"))
        store = RunStore(self.row.path.parent)
        found = {child.id: child for child in store.children(self.row)}
        for child_id in self.record.children:
            child = found.get(child_id)
            if child is None:
                table.add_row(child_id, _("missing"), "", "", key=child_id)
                continue
            model = Text(model_label(child.info))
            if child.info.random_init:
                model.append(" ⚠", style="bold yellow")
            metrics = child.info.metrics
            table.add_row(
                child_id,
                status_text(child.status),
                model,
                pct(metrics.test_accuracy if metrics else None),
                key=child_id,
            )

    @on(DataTable.RowSelected, "#children-table")
    def _child_selected(self, event: DataTable.RowSelected) -> None:
        child_id = str(event.row_key.value)
        try:
            child = RunStore(self.row.path.parent).open(child_id)
        except RunError as exc:
            self.notify(str(exc), severity="error")
            return
        self.app.push_screen(RunDetailScreen(child))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_deploy(self) -> None:
        """The Inspect screen on this run, opened at its Deploy pane."""
        from tui.screens.inspect import InspectScreen

        runs_root = getattr(self.app, "runs_root", None)
        self.app.push_screen(
            InspectScreen(target=self.row.path, runs_root=runs_root, tab="tab-deploy")
        )

    def action_inspect(self) -> None:
        if not (self.row.path / "summary.json").is_file() and not list(
            self.row.path.glob("*.onnx")
        ):
            self.notify(_("This run has no model to inspect."), severity="warning")
            return
        self.post_message(OpenInspector(self.row.path))

    def action_report(self) -> None:
        """This run's report (a parent's includes its children), via `engine report`."""
        from tui.reports import start_report

        start_report(self, [str(self.row.path)])
