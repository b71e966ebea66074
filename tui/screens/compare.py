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
from textual.widgets import Footer, Select, Static
from textual.worker import Worker, WorkerState

from engine.inspect.run_queries import ASSIGNMENT_PREPROCESSING as _ASSIGNMENT
from engine.inspect.run_queries import assignment_percent
from tui.screens.runs import read_run_rows
from tui.widgets.charts import PALETTE, Bar, BarChart
from tui.widgets.nav import NavBar
from tui.widgets.run_info import RANDOM_MARK, RunRow, created_label, is_random_init, metrics_of, pct

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
# before (x/255) → after (own preprocess_input), in %, from the one table in engine.inspect.
ASSIGNMENT_PREPROCESSING: dict[str, tuple[str, str]] = {
    name: pair for name in _ASSIGNMENT if (pair := assignment_percent(name)) is not None
}
TRANSFER_SOURCE = "transfer-runs"


@dataclass
class RankRow:
    backbone: str
    test_accuracy: float | None
    params: float | None  # millions
    efficiency: float | None
    random_init: bool
    run_id: str
    status: str = "finished"


@dataclass
class CompareData:
    """What the screen shows, gathered from disk in a worker."""

    compare_runs: list[RunRow] = field(default_factory=list)
    preprocessing_runs: list[RunRow] = field(default_factory=list)
    transfer_rows: list[RankRow] = field(default_factory=list)


def gather(root: Path) -> CompareData:
    """Read every run folder once; keep parents with tables and the newest transfer run per backbone."""
    data = CompareData()
    newest_transfer: dict[str, RankRow] = {}
    for row in read_run_rows(root):
        r = row.record
        exp = r.get("experiment")
        if exp == "compare" and r.get("table"):
            data.compare_runs.append(row)
        elif exp == "preprocessing" and r.get("table"):
            data.preprocessing_runs.append(row)
        elif exp == "transfer" and row.status == "finished" and not r.get("parent"):
            model = r.get("model") or {}
            backbone = model.get("backbone") or (r.get("config") or {}).get("backbone")
            m = metrics_of(r)
            if not backbone or backbone in newest_transfer or m.get("test_accuracy") is None:
                continue  # rows come newest first: keep the first per backbone
            total = (r.get("params") or {}).get("total")
            params_m = total / 1e6 if isinstance(total, (int, float)) else None
            acc = m.get("test_accuracy")
            newest_transfer[backbone] = RankRow(
                backbone=str(backbone),
                test_accuracy=acc,
                params=params_m,
                efficiency=(acc / params_m) if acc is not None and params_m else None,
                random_init=is_random_init(r),
                run_id=row.id,
            )
    data.transfer_rows = list(newest_transfer.values())
    return data


def rank_rows_from_table(record: dict[str, Any]) -> list[RankRow]:
    rows = []
    for t in record.get("table") or []:
        params_m = t.get("params_m")
        if params_m is None and isinstance(t.get("params"), (int, float)):
            params_m = t["params"] / 1e6
        rows.append(
            RankRow(
                backbone=str(t.get("backbone", "?")),
                test_accuracy=t.get("test_accuracy"),
                params=params_m,
                efficiency=t.get("efficiency"),
                random_init=bool(t.get("random_init")),
                run_id=str(t.get("run_id", "")),
                status=str(t.get("status", "finished")),
            )
        )
    return rows


def ranked(rows: list[RankRow]) -> list[RankRow]:
    return sorted(rows, key=lambda r: (r.test_accuracy is None, -(r.test_accuracy or 0.0)))


def ranking_table(rows: list[RankRow]) -> Table:
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("backbone", no_wrap=True)
    table.add_column("test acc", justify="right")
    table.add_column("params", justify="right")
    table.add_column("effic.", justify="right")
    table.add_column("assignment", justify="right", style="dim", no_wrap=True)
    for i, row in enumerate(ranked(rows), start=1):
        name = Text(row.backbone)
        if row.random_init:
            name.append(" ⚠", style="bold yellow")
        ref = ASSIGNMENT_RANKING.get(row.backbone)
        table.add_row(
            str(i),
            name,
            pct(row.test_accuracy)
            if row.status in ("finished", "")
            else Text(row.status, style="red"),
            f"{row.params:.1f} M" if row.params is not None else "–",
            f"{row.efficiency:.3f}" if row.efficiency is not None else "–",
            f"{ref[0]:.2f} % · {ref[2]:.3f}" if ref else "–",
        )
    return table


def ranking_bars(rows: list[RankRow]) -> list[Bar]:
    return [
        Bar(
            row.backbone,
            row.test_accuracy or 0.0,
            PALETTE[3] if row.random_init else PALETTE[0],
            note="⚠" if row.random_init else "",
        )
        for row in ranked(rows)
    ]


def preprocessing_table(record: dict[str, Any]) -> Table:
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    table.add_column("backbone", no_wrap=True)
    table.add_column("own preprocessing", no_wrap=True)
    table.add_column("x/255", justify="right")
    table.add_column("own", justify="right")
    table.add_column("Δ", justify="right")
    table.add_column("assignment", justify="right", style="dim", no_wrap=True)
    for row in record.get("table") or []:
        before, after = row.get("before"), row.get("after")
        name = Text(str(row.get("backbone", "?")))
        if row.get("random_init"):
            name.append(" ⚠", style="bold yellow")
        delta = None
        if isinstance(before, (int, float)) and isinstance(after, (int, float)):
            delta = (after - before) * 100
        ref = ASSIGNMENT_PREPROCESSING.get(str(row.get("backbone")))
        table.add_row(
            name,
            str(row.get("preprocessing", "")),
            pct(before),
            Text(pct(after), style="bold"),
            Text(f"{delta:+.1f}", style="green" if delta and delta > 0 else "red")
            if delta is not None
            else "–",
            f"{ref[0]} → {ref[1]} %" if ref else "–",
        )
    return table


def preprocessing_bars(record: dict[str, Any]) -> list[Bar]:
    bars: list[Bar] = []
    for row in record.get("table") or []:
        name = str(row.get("backbone", "?"))
        mark = "⚠" if row.get("random_init") else ""
        bars.append(Bar(f"{name} x/255", float(row.get("before") or 0.0), PALETTE[3], note=mark))
        bars.append(Bar(f"{name} own", float(row.get("after") or 0.0), PALETTE[2], note=mark))
    return bars


def with_legend(table: Table, random_init: bool) -> Any:
    """The table, plus a line saying what ⚠ means when a row has it."""
    if not random_init:
        return table
    from rich.console import Group

    note = Text(
        f"⚠ {RANDOM_MARK[2:]}: backbone trained from random weights (--weights none), not ImageNet — "
        "not comparable with the assignment's column.",
        style="yellow",
    )
    return Group(table, Text(""), note)


def source_label(row: RunRow) -> str:
    n = len(row.record.get("table") or [])
    mark = f"  {RANDOM_MARK}" if is_random_init(row.record) else ""
    return f"{row.record.get('experiment')} run {created_label(row.record)} · {n} rows · {row.status}{mark}"


class CompareScreen(Screen[None]):
    """The assignment's comparison figures, built from the runs on disk."""

    AUTO_FOCUS = "#compare-scroll"
    BINDINGS = [Binding("r", "reload", "Reload")]

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
                Text("Nine backbones: ranking by test accuracy", style="bold"),
                classes="section-title",
            )
            yield Select[str](
                [],
                prompt="source of the ranking",
                id="ranking-source",
                compact=True,
                allow_blank=True,
            )
            with Horizontal(classes="detail-row", id="ranking-row"):
                with Vertical(classes="detail-box", id="ranking-box") as box:
                    box.border_title = "ranking (efficiency = test accuracy / M params)"
                    yield Static("", id="ranking-table")
                with Vertical(classes="detail-box", id="ranking-bars-box") as box:
                    box.border_title = "test accuracy"
                    yield BarChart(
                        [],
                        max_value=1.0,
                        value_format=lambda v: f"{v * 100:.1f} %",
                        id="ranking-bars",
                    )
            yield Static(
                Text("Preprocessing: x/255 for every model vs each model's own", style="bold"),
                classes="section-title",
            )
            yield Select[str](
                [], prompt="preprocessing run", id="prep-source", compact=True, allow_blank=True
            )
            with Horizontal(classes="detail-row", id="prep-row"):
                with Vertical(classes="detail-box", id="prep-box") as box:
                    box.border_title = "before / after"
                    yield Static("", id="prep-table")
                with Vertical(classes="detail-box", id="prep-bars-box") as box:
                    box.border_title = "test accuracy"
                    yield BarChart(
                        [], max_value=1.0, value_format=lambda v: f"{v * 100:.1f} %", id="prep-bars"
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
        self.query_one("#ranking-table", Static).update(Text("reading runs…", style="dim"))
        self.gather_runs(Path(self.app.runs_root))  # type: ignore[attr-defined]

    @work(
        thread=True,
        exclusive=True,
        group="compare-load",
        exit_on_error=False,
        description="read runs to compare",
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
                    f"transfer runs on disk (newest per backbone: {len(self.gathered.transfer_rows)})",
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
        rows: list[RankRow] = []
        if value == TRANSFER_SOURCE:
            rows = self.gathered.transfer_rows
        else:
            for run in self.gathered.compare_runs:
                if run.id == value:
                    rows = rank_rows_from_table(run.record)
        table = self.query_one("#ranking-table", Static)
        bars = self.query_one("#ranking-bars", BarChart)
        if not rows:
            table.update(
                Text(
                    "No compare run or transfer run on disk yet. Run the 'compare' experiment (key 1, pick "
                    "compare, ctrl+s). Offline, choose weights none: the backbones then train from random "
                    "init and are marked ⚠ here.\n\nThe assignment's ranking, for reference:\n"
                    + "\n".join(
                        f"  {i}. {name:<17} {acc:6.2f} %  {p:5.1f} M  {e:.3f}"
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
        record = next((r.record for r in self.gathered.preprocessing_runs if r.id == value), None)
        table = self.query_one("#prep-table", Static)
        bars = self.query_one("#prep-bars", BarChart)
        if record is None:
            table.update(
                Text(
                    "No preprocessing run on disk yet: run the 'preprocessing' experiment. It trains each "
                    "backbone twice, on x/255 and on its own preprocess_input.\n\nThe assignment's figures:\n"
                    + "\n".join(
                        f"  {name:<15} {b:>6} % → {a} %"
                        for name, (b, a) in ASSIGNMENT_PREPROCESSING.items()
                    ),
                    style="dim",
                )
            )
            bars.bars = []
            return
        table.update(with_legend(preprocessing_table(record), is_random_init(record)))
        bars.bars = preprocessing_bars(record)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed says so (workers never take the app down: exit_on_error=False)."""
        if event.state == WorkerState.ERROR:
            event.stop()
            self.notify(
                f"{event.worker.description}: {event.worker.error}", severity="error", timeout=8
            )
