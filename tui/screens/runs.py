"""Runs: every run folder on disk, newest first, filterable; open, overlay, delete, inspect.

run.json files are read in a thread worker, newest first, and posted in batches, so the first
frame never waits for the disk however many runs there are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from engine.records import Metrics
from engine.runs import Run, RunStore
from tui.i18n import N_, _, number
from tui.messages import OpenInspector, RunsChanged
from tui.widgets.footer import Footer
from tui.widgets.nav import NavBar
from tui.widgets.run_info import (
    RANDOM_MARK,
    created_label,
    haystack,
    model_label,
    onnx_summary,
    pct,
    run_status_text,
)

FIRST_BATCH = 40  # rows shown before the rest are read
BATCH = 250


def matches(run: Run, query: str) -> bool:
    """`resnet status:finished exp:compare random` — every term must match."""
    hay = haystack(run)
    for term in query.lower().split():
        if ":" in term:
            key, _, value = term.partition(":")
            field_value = {
                "status": run.status,
                "exp": run.info.experiment,
                "experiment": run.info.experiment,
                "model": model_label(run.info),
                "data": str(run.info.config.get("data", "")),
            }.get(key)
            if field_value is None:
                if term not in hay:
                    return False
            elif value not in field_value.lower():
                return False
        elif term not in hay:
            return False
    return True


class RunsTable(DataTable[Any]):
    """The runs table; `enter` shows in the footer as what it does here.

    Rows arrive in batches while the table is on screen. Textual's DataTable (8.x) measures new
    rows' column widths when idle, but rows it drew before that stay cached at the old widths
    (the cache key does not change): on a busy machine the list then showed its columns cut to
    their headers' width, except the highlighted row. Once new rows are measured, the cached
    rows are dropped (notify_style_update clears every render cache and redraws).
    """

    BINDINGS = [Binding("enter", "select_cursor", "Details", show=True)]

    async def _on_idle(self, event: events.Idle) -> None:
        # Textual calls this, then DataTable's own _on_idle (handlers run down the MRO), which
        # measures the new rows; the redraw asked for here comes after both.
        if self._new_rows or self._updated_cells:
            self.notify_style_update()


class RunsScreen(Screen[None]):
    """The run store as a table."""

    BINDINGS = [
        Binding("space", "toggle_select", "Select"),
        Binding("o", "overlay", "Overlay curves"),
        Binding("d", "delete", "Delete"),
        Binding("i", "inspect", "Inspect"),
        Binding("w", "report", "Write report"),
        Binding("equals_sign", "diff", "Diff two"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("r", "reload", "Reload"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    class RunsLoaded(Message):
        """A batch of rows read from disk (`done`: the last batch)."""

        def __init__(self, rows: list[Run], done: bool, generation: int) -> None:
            super().__init__()
            self.rows = rows
            self.done = done
            self.generation = generation

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Run] = []
        self.shown: list[Run] = []
        self.selected: set[str] = set()
        self.loaded = False
        self._stale = True
        self._generation = 0
        self._restore_id: str | None = None
        self._narrow = False

    def compose(self) -> ComposeResult:
        yield NavBar("runs")
        with Horizontal(id="runs-bar"):
            yield Input(
                placeholder=_("filter: words, status:finished, exp:compare, model:resnet, random"),
                id="runs-filter",
                compact=True,
            )
            yield Static("", id="runs-count")
        table = RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="run-preview")
        yield Footer()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#runs-table", DataTable)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#runs-filter", Input)

    @property
    def runs_root(self) -> Path:
        return Path(self.app.runs_root)  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        self._narrow = self.app.has_class("-narrow")
        self._add_columns()
        self.table.focus()

    def _add_columns(self) -> None:
        """The columns; when narrow (80 columns) the start time goes (the id says it too)."""
        t = self.table
        t.add_column(" ", key="mark", width=1)
        if not self._narrow:
            t.add_column(_("created"), key="created")
        t.add_column(_("experiment"), key="experiment")
        t.add_column(_("model"), key="model")
        t.add_column(_("status"), key="status")
        t.add_column(_("test"), key="test")
        t.add_column(_("val"), key="val")
        t.add_column(_("gap"), key="gap")
        t.add_column(_("ep"), key="epochs")
        t.add_column(_("id"), key="id")

    def on_resize(self) -> None:
        narrow = self.app.has_class("-narrow")
        if narrow != self._narrow:
            self._narrow = narrow
            self.table.clear(columns=True)
            self._add_columns()
            self._rebuild()

    def on_screen_resume(self) -> None:
        if self._stale:
            self.reload()

    def runs_changed(self) -> None:
        """Called by the app when runs were added/finished/deleted: reload now or when shown."""
        self._stale = True
        if self.app.screen is self:
            self.reload()

    # -- loading -----------------------------------------------------------------------------

    def reload(self) -> None:
        self._stale = False
        row = self.current_row()
        self._restore_id = row.id if row else self._restore_id
        self._generation += 1
        self.rows = []
        self.shown = []
        self.table.clear()
        self.query_one("#runs-count", Static).update(_("reading runs…"))
        self.load_runs(self.runs_root, self._generation)

    @work(
        thread=True,
        exclusive=True,
        group="runs-load",
        exit_on_error=False,
        description=N_("read run folders"),
    )
    def load_runs(self, root: Path, generation: int) -> None:
        worker = get_current_worker()
        batch: list[Run] = []
        limit = FIRST_BATCH
        for row in RunStore(root).scan(lambda: worker.is_cancelled, with_corrupt=True):
            batch.append(row)
            if len(batch) >= limit:
                self.post_message(self.RunsLoaded(batch, False, generation))
                batch, limit = [], BATCH
        self.post_message(self.RunsLoaded(batch, True, generation))

    def on_runs_screen_runs_loaded(self, message: RunsLoaded) -> None:
        if message.generation != self._generation:
            return
        self.rows.extend(message.rows)
        query = self.filter_input.value
        for row in message.rows:
            if matches(row, query):
                self._add_row(row)
        if message.done:
            self.loaded = True
            if self._restore_id is not None:
                self._move_to(self._restore_id)
                self._restore_id = None
        self._update_count()
        self._update_preview()

    def _add_row(self, row: Run) -> None:
        self.shown.append(row)
        r = row.info
        m = r.metrics or Metrics()
        model = Text(model_label(r))
        if r.random_init:
            model.append(" ⚠", style="bold yellow")
        gap = m.overfit_gap
        created = [] if self._narrow else [created_label(r)]
        self.table.add_row(
            Text("●" if row.id in self.selected else " ", style="bold magenta"),
            *created,
            r.experiment,
            model,
            run_status_text(row),
            Text(pct(m.test_accuracy, 1), justify="right"),
            Text(pct(m.val_accuracy, 1), justify="right"),
            Text(number(gap, 1) if gap is not None else "–", justify="right"),
            Text(str(m.epochs_run if m.epochs_run is not None else "–"), justify="right"),
            Text(row.id, style="dim"),
            key=row.id,
        )

    def _rebuild(self) -> None:
        current = self.current_row()
        self.table.clear()
        self.shown = []
        query = self.filter_input.value
        for row in self.rows:
            if matches(row, query):
                self._add_row(row)
        if current is not None:
            self._move_to(current.id)
        self._update_count()
        self._update_preview()

    def _move_to(self, run_id: str) -> None:
        for i, row in enumerate(self.shown):
            if row.id == run_id:
                self.table.move_cursor(row=i)
                return

    def _update_count(self) -> None:
        total, shown = len(self.rows), len(self.shown)
        noun = _("run") if total == 1 else _("runs")
        text = (
            _("{shown} of {total} {noun}").format(shown=shown, total=total, noun=noun)
            if shown != total
            else f"{total} {noun}"
        )
        if self.selected:
            text += " · " + _("{count} selected").format(count=len(self.selected))
        if not self.loaded:
            text += " …"
        self.query_one("#runs-count", Static).update(text)

    def current_row(self) -> Run | None:
        if not self.shown:
            return None
        index = self.table.cursor_row
        return self.shown[index] if 0 <= index < len(self.shown) else None

    def _update_preview(self) -> None:
        row = self.current_row()
        preview = self.query_one("#run-preview", Static)
        if row is None:
            if self.loaded and not self.rows:
                preview.update(
                    Text(
                        _(
                            "No runs under {root} yet. Start one on the Experiments screen (key 1)."
                        ).format(root=self.runs_root),
                        style="dim",
                    )
                )
            else:
                preview.update("")
            return
        r = row.info
        m = r.metrics
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(r.title or r.experiment, style="bold")
        text.append(f"  {model_label(r)}")
        if r.random_init:
            text.append(f"  {_(RANDOM_MARK)}", style="bold yellow")
        text.append("  " + _("data {source}").format(source=r.config.get("data", "?")))
        text.append("\n")
        if row.corrupt is not None:
            text.append(_("corrupt: {reason}").format(reason=row.corrupt), style="bold red")
        elif m is not None:
            text.append(
                _("train {train} · val {val} · test {test}").format(
                    train=pct(m.train_accuracy), val=pct(m.val_accuracy), test=pct(m.test_accuracy)
                )
            )
            if row.model_missing:
                text.append("  · " + _("model.keras is missing"), style="bold red")
        elif r.error:
            text.append(_("error: {error}").format(error=r.error), style="red")
        elif row.status == "died":
            text.append(
                _("the engine process that wrote this run is gone (killed or crashed)"), style="red"
            )
        onnx = onnx_summary(r)
        if onnx:
            text.append(f"  · {onnx}", style="dim")
        if r.children:
            parent = _("parent of {n} runs").format(n=len(r.children))
            text.append(f"  · {parent}", style="dim")
        if r.parent:
            text.append("  · " + _("child of {parent}").format(parent=r.parent), style="dim")
        preview.update(text)

    # -- events ------------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#runs-table")
    def _highlighted(self) -> None:
        self._update_preview()

    @on(DataTable.RowSelected, "#runs-table")
    def _selected(self) -> None:
        self.action_open()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self) -> None:
        self._rebuild()

    @on(Input.Submitted, "#runs-filter")
    def _filter_submitted(self) -> None:
        self.table.focus()

    # -- actions -----------------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.filter_input.focus()

    def action_clear_filter(self) -> None:
        if self.filter_input.value:
            self.filter_input.value = ""
        self.table.focus()

    def action_reload(self) -> None:
        self.reload()

    def action_toggle_select(self) -> None:
        row = self.current_row()
        if row is None:
            return
        if row.id in self.selected:
            self.selected.discard(row.id)
        else:
            self.selected.add(row.id)
        mark = Text("●" if row.id in self.selected else " ", style="bold magenta")
        self.table.update_cell(row.id, "mark", mark)
        if self.table.cursor_row < len(self.shown) - 1:
            self.table.move_cursor(row=self.table.cursor_row + 1)
        self._update_count()

    def selected_rows(self) -> list[Run]:
        return [row for row in self.rows if row.id in self.selected]

    def action_open(self) -> None:
        row = self.current_row()
        if row is None:
            return
        from tui.screens.run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(row))

    def action_overlay(self) -> None:
        rows = self.selected_rows()
        if len(rows) < 2:
            row = self.current_row()
            hint = _("Select two or more runs with space, then press o.")
            if len(rows) == 1 and row is not None and row.id not in self.selected:
                rows = [*rows, row]
            else:
                self.notify(hint, timeout=4)
                return
        from tui.screens.overlay import OverlayScreen

        self.app.push_screen(OverlayScreen(rows))

    def action_report(self) -> None:
        """The report of the selected runs (else the one under the cursor), via `engine report`."""
        rows = self.selected_rows()
        if not rows:
            row = self.current_row()
            rows = [row] if row is not None else []
        if not rows:
            return
        from tui.reports import start_report

        start_report(self, [str(row.path) for row in rows])

    def action_inspect(self) -> None:
        row = self.current_row()
        if row is None:
            return
        if row.corrupt is not None:
            self.notify(
                _("Run {id} is corrupt: {reason}").format(id=row.id, reason=row.corrupt),
                severity="error",
                timeout=6,
            )
            return
        if not (row.path / "summary.json").is_file() and not list(row.path.glob("*.onnx")):
            self.notify(
                _(
                    "This run has no model to inspect (no summary.json or .onnx): parent runs and "
                    "runs that stopped early have none."
                ),
                severity="warning",
                timeout=5,
            )
            return
        self.post_message(OpenInspector(row.path))

    def action_diff(self) -> None:
        """`engine diff` of the two selected runs (space marks them)."""
        rows = self.selected_rows()
        if len(rows) != 2:
            self.notify(_("Select exactly two runs with space, then press =."), timeout=4)
            return
        from tui.screens.diff import DiffScreen

        self.app.push_screen(DiffScreen(rows[0].path, rows[1].path, runs_root=self.runs_root))

    def action_delete(self) -> None:
        row = self.current_row()
        if row is None:
            return
        if row.status == "running":
            self.notify(
                _("That run is still training: cancel it first (Experiments, key x)."),
                severity="warning",
            )
            return
        from tui.screens.confirm import ConfirmScreen

        files = sorted(p.name for p in row.path.iterdir()) if row.path.is_dir() else []
        listing = ", ".join(files[:8]) + (" …" if len(files) > 8 else "")
        body = f"{row.path}\n{listing}\n" + _("This cannot be undone.")
        children = row.info.children
        if children:
            body += "\n" + _("Its {n} child runs stay (delete them separately).").format(
                n=len(children)
            )

        def answer(yes: bool | None) -> None:
            if yes:
                self.delete_run(row)

        self.app.push_screen(
            ConfirmScreen(_("Delete run {id}?").format(id=row.id), body, yes=_("Delete")), answer
        )

    def delete_run(self, row: Run) -> None:
        import shutil

        try:
            shutil.rmtree(row.path)
        except OSError as exc:
            self.notify(
                _("Could not delete {path}: {reason}").format(path=row.path, reason=exc),
                severity="error",
            )
            return
        self.rows = [r for r in self.rows if r.id != row.id]
        self.selected.discard(row.id)
        if row in self.shown:
            index = self.shown.index(row)
            self.shown.pop(index)
            self.table.remove_row(row.id)
        self._update_count()
        self._update_preview()
        self.notify(_("Deleted {run}").format(run=row.id), timeout=3)
        self.app.post_message(RunsChanged(row.id))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed says so (workers never take the app down: exit_on_error=False)."""
        if event.state == WorkerState.ERROR:
            event.stop()
            self.notify(
                f"{_(event.worker.description)}: {event.worker.error}", severity="error", timeout=8
            )
