"""Compare: the nine-backbone ranking and the preprocessing before/after table, from runs on disk.

Sources: `compare` and `preprocessing` parent runs (their run.json `table`), and plain
`transfer` runs (newest finished one per backbone). The assignment's own figures sit beside
ours for reference; a backbone trained from random init is marked wherever it appears.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Select, Static
from textual.worker import Worker, WorkerState

from engine.records import CompareRow, RunRecord
from engine.runs import Run, RunStore, transfer_ranking
from tui.i18n import N_, _, decimal_mark, number
from tui.widgets.charts import PALETTE, Bar, BarChart
from tui.widgets.footer import Footer
from tui.widgets.nav import NavBar
from tui.widgets.run_info import RANDOM_MARK, created_label, pct

# The assignment's results (ASSIGNMENT.md): test accuracy %, params (M), efficiency.
ASSIGNMENT_RANKING: dict[str, tuple[float, float, float]] = {
    "ResNet50": (66.01, 24.1, 0.027),
    "ResNet101": (65.41, 43.2, 0.015),
    "ResNet152": (64.77, 58.9, 0.011),
    "VGG16": (63.71, 14.8, 0.043),
    "VGG19": (62.03, 20.2, 0.031),
    "EfficientNetB0": (57.13, 4.4, 0.130),
    "EfficientNetB3": (49.19, 11.2, 0.044),
    "MobileNetV3Large": (46.78, 3.2, 0.146),
    "MobileNetV2": (29.94, 2.6, 0.115),
}
TRANSFER_SOURCE = "transfer-runs"


def assignment_preprocessing() -> dict[str, tuple[str, str]]:
    """The assignment's before (x/255) → after (own) test accuracies in %, "~" when approximate."""
    from engine.inspect.run_queries import ASSIGNMENT_PREPROCESSING, assignment_percent

    mark = decimal_mark()  # the engine writes "27.02": shown with the language's mark
    return {
        name: (pair[0].replace(".", mark), pair[1].replace(".", mark))
        for name in ASSIGNMENT_PREPROCESSING
        if (pair := assignment_percent(name))
    }


@dataclass
class CompareData:
    """What the screen shows, gathered from disk in a worker (the engine's records as written)."""

    compare_runs: list[Run] = field(default_factory=list)
    preprocessing_runs: list[Run] = field(default_factory=list)
    transfer_rows: list[CompareRow] = field(default_factory=list)


def gather(root: Path) -> CompareData:
    """Read every run folder once: parents with tables, and the transfer-runs ranking."""
    data = CompareData()
    runs = list(RunStore(root).scan())
    for run in runs:
        if run.info.compare_rows:
            data.compare_runs.append(run)
        elif run.info.preprocessing_rows:
            data.preprocessing_runs.append(run)
    data.transfer_rows = transfer_ranking(runs)
    return data


def ranking_table(rows: list[CompareRow]) -> Table:
    """A compare table as the engine ranked it."""
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column(_("backbone"), no_wrap=True)
    table.add_column(_("test acc"), justify="right")
    table.add_column(_("params"), justify="right")
    table.add_column(_("effic."), justify="right")
    table.add_column(_("assignment"), justify="right", style="dim", no_wrap=True)
    for row in rows:
        name = Text(row.backbone)
        if row.random_init:
            name.append(" ⚠", style="bold yellow")
        ref = ASSIGNMENT_RANKING.get(row.backbone)
        table.add_row(
            str(row.rank if row.rank is not None else "–"),
            name,
            pct(row.test_accuracy)
            if row.status in ("finished", "")
            else Text(_(row.status), style="red"),
            f"{number(row.params_m, 1)} M" if row.params_m is not None else "–",
            number(row.efficiency, 3) if row.efficiency is not None else "–",
            f"{number(ref[0], 2)} % · {number(ref[2], 3)}" if ref else "–",
        )
    return table


def ranking_bars(rows: list[CompareRow]) -> list[Bar]:
    return [
        Bar(
            row.backbone,
            row.test_accuracy or 0.0,
            PALETTE[3] if row.random_init else PALETTE[0],
            note="⚠" if row.random_init else "",
        )
        for row in rows
    ]


def preprocessing_table(record: RunRecord) -> Table:
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    table.add_column(_("backbone"), no_wrap=True)
    table.add_column(_("own preprocessing"), no_wrap=True)
    table.add_column("x/255", justify="right")
    table.add_column(_("own"), justify="right")
    table.add_column("Δ", justify="right")
    table.add_column(_("assignment"), justify="right", style="dim", no_wrap=True)
    reference = assignment_preprocessing()
    for row in record.preprocessing_rows:
        name = Text(row.backbone)
        if row.random_init:
            name.append(" ⚠", style="bold yellow")
        delta = row.delta_points
        ref = reference.get(row.backbone)
        table.add_row(
            name,
            row.preprocessing,
            pct(row.before),
            Text(pct(row.after), style="bold"),
            Text(number(delta, 1, signed=True), style="green" if delta and delta > 0 else "red")
            if delta is not None
            else "–",
            f"{ref[0]} → {ref[1]} %" if ref else "–",
        )
    return table


def preprocessing_bars(record: RunRecord) -> list[Bar]:
    bars: list[Bar] = []
    for row in record.preprocessing_rows:
        mark = "⚠" if row.random_init else ""
        bars.append(Bar(f"{row.backbone} x/255", row.before or 0.0, PALETTE[3], note=mark))
        own = _("{backbone} own").format(backbone=row.backbone)
        bars.append(Bar(own, row.after or 0.0, PALETTE[2], note=mark))
    return bars


def with_legend(table: Table, random_init: bool) -> Any:
    """The table, plus a line saying what ⚠ means when a row has it."""
    if not random_init:
        return table
    from rich.console import Group

    note = Text(
        f"{_(RANDOM_MARK)}: "
        + _(
            "backbone trained from random weights (--weights none), not ImageNet — "
            "not comparable with the assignment's column."
        ),
        style="yellow",
    )
    return Group(table, Text(""), note)


def source_label(run: Run) -> str:
    r = run.info
    mark = f"  {_(RANDOM_MARK)}" if r.random_init else ""
    line = _("{experiment} run {created} · {rows} rows · {status}").format(
        experiment=r.experiment,
        created=created_label(r),
        rows=len(r.table or []),
        status=run.status_label_in(_),
    )
    return line + mark


class CompareScreen(Screen[None]):
    """The assignment's comparison figures, built from the runs on disk."""

    AUTO_FOCUS = "#compare-scroll"
    BINDINGS = [
        Binding("r", "reload", "Reload"),
        Binding("w", "write_tables", "Write tables"),
    ]

    class Gathered(Message):
        def __init__(self, data: CompareData) -> None:
            super().__init__()
            self.data = data

    def __init__(self) -> None:
        super().__init__()
        self.gathered = CompareData()
        self._stale = True

    def compose(self) -> ComposeResult:
        yield NavBar("compare")
        with VerticalScroll(id="compare-scroll"):
            yield Static(
                Text(_("Nine backbones: ranking by test accuracy"), style="bold"),
                classes="section-title",
            )
            yield Select[str](
                [],
                prompt=_("source of the ranking"),
                id="ranking-source",
                compact=True,
                allow_blank=True,
            )
            with Horizontal(classes="detail-row", id="ranking-row"):
                with Vertical(classes="detail-box", id="ranking-box") as box:
                    box.border_title = _("ranking (efficiency = test accuracy / M params)")
                    yield Static("", id="ranking-table")
                with Vertical(classes="detail-box", id="ranking-bars-box") as box:
                    box.border_title = _("test accuracy")
                    yield BarChart(
                        [],
                        max_value=1.0,
                        value_format=lambda v: pct(v, 1),
                        id="ranking-bars",
                    )
            yield Static(
                Text(_("Preprocessing: x/255 for every model vs each model's own"), style="bold"),
                classes="section-title",
            )
            yield Select[str](
                [], prompt=_("preprocessing run"), id="prep-source", compact=True, allow_blank=True
            )
            with Horizontal(classes="detail-row", id="prep-row"):
                with Vertical(classes="detail-box", id="prep-box") as box:
                    box.border_title = _("before / after")
                    yield Static("", id="prep-table")
                with Vertical(classes="detail-box", id="prep-bars-box") as box:
                    box.border_title = _("test accuracy")
                    yield BarChart(
                        [], max_value=1.0, value_format=lambda v: pct(v, 1), id="prep-bars"
                    )
        yield Footer()

    def on_screen_resume(self) -> None:
        if self._stale:
            self.action_reload()

    def runs_changed(self) -> None:
        self._stale = True
        if self.app.screen is self:
            self.action_reload()

    def action_reload(self) -> None:
        self._stale = False
        self.query_one("#ranking-table", Static).update(Text(_("reading runs…"), style="dim"))
        self.gather_runs(Path(self.app.runs_root))  # type: ignore[attr-defined]

    @work(
        thread=True,
        exclusive=True,
        group="compare-load",
        exit_on_error=False,
        description=N_("read runs to compare"),
    )
    def gather_runs(self, root: Path) -> None:
        self.post_message(self.Gathered(gather(root)))

    def on_compare_screen_gathered(self, message: Gathered) -> None:
        self.gathered = message.data
        ranking = self.query_one("#ranking-source", Select)
        options = [(source_label(r), r.id) for r in self.gathered.compare_runs]
        if self.gathered.transfer_rows:
            options.append(
                (
                    _("transfer runs on disk (newest per backbone: {count})").format(
                        count=len(self.gathered.transfer_rows)
                    ),
                    TRANSFER_SOURCE,
                )
            )
        previous = ranking.value
        ranking.set_options(options)
        values = [v for _, v in options]
        if values:
            ranking.value = previous if previous in values else values[0]
        self._show_ranking()
        prep = self.query_one("#prep-source", Select)
        prep_options = [(source_label(r), r.id) for r in self.gathered.preprocessing_runs]
        previous = prep.value
        prep.set_options(prep_options)
        prep_values = [v for _, v in prep_options]
        if prep_values:
            prep.value = previous if previous in prep_values else prep_values[0]
        self._show_preprocessing()

    @on(Select.Changed, "#ranking-source")
    def _show_ranking(self) -> None:
        value = self.query_one("#ranking-source", Select).value
        rows: list[CompareRow] = []
        if value == TRANSFER_SOURCE:
            rows = self.gathered.transfer_rows
        else:
            for run in self.gathered.compare_runs:
                if run.id == value:
                    rows = run.info.compare_rows
        table = self.query_one("#ranking-table", Static)
        bars = self.query_one("#ranking-bars", BarChart)
        if not rows:
            table.update(
                Text(
                    _(
                        "No compare run or transfer run on disk yet. Run the 'compare' experiment "
                        "(key 1, pick compare, ctrl+s). Offline, choose weights none: the backbones "
                        "then train from random init and are marked ⚠ here."
                    )
                    + "\n\n"
                    + _("The assignment's ranking, for reference:")
                    + "\n"
                    + "\n".join(
                        f"  {i}. {name:<17} {number(acc, 2):>6} %  {number(p, 1):>5} M  {number(e, 3)}"
                        for i, (name, (acc, p, e)) in enumerate(ASSIGNMENT_RANKING.items(), start=1)
                    ),
                    style="dim",
                )
            )
            bars.bars = []
            return
        table.update(with_legend(ranking_table(rows), any(r.random_init for r in rows)))
        bars.bars = ranking_bars(rows)

    @on(Select.Changed, "#prep-source")
    def _show_preprocessing(self) -> None:
        value = self.query_one("#prep-source", Select).value
        record = next((r.info for r in self.gathered.preprocessing_runs if r.id == value), None)
        table = self.query_one("#prep-table", Static)
        bars = self.query_one("#prep-bars", BarChart)
        if record is None:
            table.update(
                Text(
                    _(
                        "No preprocessing run on disk yet: run the 'preprocessing' experiment. It "
                        "trains each backbone twice, on x/255 and on its own preprocess_input."
                    )
                    + "\n\n"
                    + _("The assignment's figures:")
                    + "\n"
                    + "\n".join(
                        f"  {name:<15} {b:>6} % → {a} %"
                        for name, (b, a) in assignment_preprocessing().items()
                    ),
                    style="dim",
                )
            )
            bars.bars = []
            return
        table.update(with_legend(preprocessing_table(record), record.random_init))
        bars.bars = preprocessing_bars(record)

    def action_write_tables(self) -> None:
        """The ranking and the before/after table shown, as Markdown + CSV in a new reports folder."""
        ranking = self.query_one("#ranking-source", Select).value
        prep = self.query_one("#prep-source", Select).value
        compare_run = ranking if isinstance(ranking, str) and ranking != TRANSFER_SOURCE else None
        transfer = self.gathered.transfer_rows if ranking == TRANSFER_SOURCE else []
        prep_run = prep if isinstance(prep, str) else None
        if compare_run is None and not transfer and prep_run is None:
            self.notify(
                _("No table to write yet: run the compare or preprocessing experiment first."),
                severity="warning",
            )
            return
        from tui.reports import new_report_folder

        output = new_report_folder(Path(self.app.runs_root), "compare")  # type: ignore[attr-defined]
        self.write_tables(compare_run, transfer, prep_run, output)

    @work(
        thread=True,
        exclusive=True,
        group="compare-write",
        exit_on_error=False,
        description=N_("write the comparison tables"),
    )
    def write_tables(
        self,
        compare_run: str | None,
        transfer: list[CompareRow],
        prep_run: str | None,
        output: Path,
    ) -> None:
        # engine.report's own table code, so the files read as in `engine report`; no TF, no
        # matplotlib is loaded for tables.
        from engine.report.assemble import collect_report
        from engine.report.compare_tables import compare_tables, write_tables
        from tui.i18n import current

        app: Any = self.app
        lang = current()
        selection = [i for i in (compare_run, prep_run) if i] + [r.run_id for r in transfer]
        root = Path(app.runs_root)
        selection = [i for i in selection if (root / i / "run.json").exists()]
        data = collect_report(root, selection)
        tables = compare_tables(
            data,
            lang,
            compare_run=compare_run,
            transfer_rows=transfer,
            preprocessing_run=prep_run,
        )
        files = write_tables(tables, output)
        names = ", ".join(f.name for f in files)
        message = _("Tables written to {path} ({files})").format(path=output, files=names)
        app.call_from_thread(self.notify, message, title=_("Compare"), timeout=15)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed says so (workers never take the app down: exit_on_error=False)."""
        if event.state == WorkerState.ERROR:
            event.stop()
            self.notify(
                f"{_(event.worker.description)}: {event.worker.error}", severity="error", timeout=8
            )
