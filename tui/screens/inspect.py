"""The Inspect screen: see inside a run's model or any .onnx file.

Panes (tabs): Layers (table, freeze map, arithmetic), Filters, Activations, Preprocessing,
ONNX, Lessons. Everything heavy happens in thread workers (json, h5py, onnx, onnxruntime,
numpy, imported lazily) or in `python -m engine ...` child processes; this process never
imports TensorFlow or Keras.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from tui.widgets.layer_table import ArithmeticView, FreezeMap, LayerTable


@dataclass
class LoadedTarget:
    """What the screen knows about the thing it inspects."""

    path: Path
    kind: str  # "run", "onnx", "keras"
    summary: dict[str, Any]
    run: dict[str, Any] | None = None
    onnx_path: Path | None = None
    keras_path: Path | None = None


class InspectScreen(Screen[None]):
    """Inspect a run folder or an .onnx file (None: pick one)."""

    DEFAULT_CSS = """
    InspectScreen { overflow: hidden; }
    InspectScreen #inspect-title { height: 1; padding: 0 1; background: $panel; }
    InspectScreen #inspect-tabs { height: 1fr; }
    InspectScreen #inspect-tabs > ContentSwitcher { height: 1fr; }
    InspectScreen TabPane { height: 1fr; padding: 0; }
    InspectScreen #layers-left { width: 3fr; }
    InspectScreen #layers-right { width: 2fr; border-left: solid $panel; }
    """

    BINDINGS = [
        Binding("l", "show_tab('tab-layers')", "Layers"),
        Binding("f", "show_tab('tab-filters')", "Filters"),
        Binding("a", "show_tab('tab-activations')", "Activations"),
        Binding("p", "show_tab('tab-preprocessing')", "Preprocessing"),
        Binding("o", "show_tab('tab-onnx')", "ONNX"),
        Binding("e", "show_tab('tab-lessons')", "Lessons"),
        Binding("escape", "back", "Back"),
    ]

    class Loaded(Message):
        """The target was read (posted by the loading worker)."""

        def __init__(self, target: LoadedTarget) -> None:
            super().__init__()
            self.target = target

    def __init__(
        self, target: Path | None = None, runs_root: Path | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.target_path = Path(target) if target is not None else None
        self.runs_root = Path(runs_root) if runs_root is not None else None
        self.loaded: LoadedTarget | None = None

    def compose(self) -> ComposeResult:
        yield Static("Inspect", id="inspect-title")
        with TabbedContent(id="inspect-tabs"):
            with TabPane("Layers", id="tab-layers"):
                with Horizontal():
                    with Vertical(id="layers-left"):
                        yield LayerTable(id="layer-table")
                    with VerticalScroll(id="layers-right"):
                        yield ArithmeticView(id="arithmetic")
                        yield FreezeMap(id="freeze-map")
            with TabPane("Filters", id="tab-filters"):
                yield Static("Filters: coming up.", id="filters-placeholder")
            with TabPane("Activations", id="tab-activations"):
                yield Static("Activations: coming up.", id="activations-placeholder")
            with TabPane("Preprocessing", id="tab-preprocessing"):
                yield Static("Preprocessing: coming up.", id="preprocessing-placeholder")
            with TabPane("ONNX", id="tab-onnx"):
                yield Static("ONNX: coming up.", id="onnx-placeholder")
            with TabPane("Lessons", id="tab-lessons"):
                yield Static("Lessons: coming up.", id="lessons-placeholder")
        yield Footer()

    @property
    def layer_table(self) -> LayerTable:
        return self.query_one("#layer-table", LayerTable)

    @property
    def arithmetic(self) -> ArithmeticView:
        return self.query_one("#arithmetic", ArithmeticView)

    @property
    def freeze_map(self) -> FreezeMap:
        return self.query_one("#freeze-map", FreezeMap)

    def on_mount(self) -> None:
        if self.target_path is not None:
            self.load(self.target_path)
        else:
            self.query_one("#inspect-title", Static).update(
                "Inspect: open a run (Runs screen, key i) or start with `cnnlab RUN_DIR|FILE.onnx`"
            )

    def load(self, path: Path) -> None:
        self.query_one("#inspect-title", Static).update(f"Inspect · loading {path} …")
        self._load_worker(path)

    @work(
        thread=True,
        exclusive=True,
        group="inspect-load",
        description="read the model",
        exit_on_error=False,
    )
    def _load_worker(self, path: Path) -> None:
        target = _read_target(path)
        self.post_message(self.Loaded(target))

    def on_worker_state_changed(self, event: Any) -> None:
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR:
            self.notify(
                f"{event.worker.description}: {event.worker.error}", severity="error", timeout=8
            )
            self.query_one("#inspect-title", Static).update(
                f"Inspect · could not open: {event.worker.error}"
            )

    def on_inspect_screen_loaded(self, message: Loaded) -> None:
        target = message.target
        self.loaded = target
        totals = target.summary.get("totals", {})
        self.query_one("#inspect-title", Static).update(
            f"Inspect · {target.path.name} · {target.summary.get('model', '?')} · "
            f"{totals.get('total', 0):,} params ({totals.get('trainable', 0):,} trainable)"
        )
        phases = (target.run or {}).get("phases")
        self.layer_table.show(target.summary, phases)
        self.freeze_map.show(target.summary, phases)
        self.layer_table.focus()

    def on_layer_table_layer_selected(self, message: LayerTable.LayerSelected) -> None:
        self.arithmetic.show(message.row)

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#inspect-tabs", TabbedContent).active = tab

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


def _read_target(path: Path) -> LoadedTarget:
    """Read a run folder's run.json and summary.json (thread worker; no TensorFlow)."""
    if path.is_dir():
        run = json.loads((path / "run.json").read_text(encoding="utf-8"))
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
        onnx_files = sorted(path.glob("*.onnx"))
        keras_path = path / "model.keras"
        return LoadedTarget(
            path=path,
            kind="run",
            summary=summary,
            run=run,
            onnx_path=onnx_files[0] if onnx_files else None,
            keras_path=keras_path if keras_path.is_file() else None,
        )
    raise ValueError(f"{path}: not a run folder (ONNX files come next)")
