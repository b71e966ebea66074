"""The Inspect screen: see inside a run's model or any .onnx file.

Panes (tabs): Layers (table, freeze map, arithmetic of the selected layer), Filters,
Activations, Preprocessing, ONNX, Deploy (variants; `engine deploy`), Lessons. Ctrl+D diffs
the model against a second run or file (`engine diff`). Everything heavy happens in thread workers (json,
h5py, onnx, onnxruntime, numpy, imported lazily) or in `python -m engine ... --json` child
processes; this process never imports TensorFlow or Keras.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from tui.i18n import N_, _, integer
from tui.screens.inspect_target import (
    LoadedTarget,
    Samples,
    engine_command,
    kill_children,
    list_inspectable,
    load_samples,
    read_target,
)
from tui.widgets.footer import Footer
from tui.widgets.inspect import ActivationsPane, DeployPane, FiltersPane, PreprocessingPane
from tui.widgets.layer_table import ArithmeticView, FreezeMap, LayerTable
from tui.widgets.lessons import LessonsView
from tui.widgets.onnx_pane import OnnxPane
from tui.widgets.reference import ReferenceView

TABS = (
    "tab-layers",
    "tab-filters",
    "tab-activations",
    "tab-preprocessing",
    "tab-onnx",
    "tab-deploy",
    "tab-lessons",
)
SAMPLES_PER_CLASS = 10
NARROW = 100  # below this many columns the Layers pane stacks instead of splitting


class InspectScreen(Screen[None]):
    """Inspect a run folder or an .onnx file (None: pick one from the runs root or type a path)."""

    DEFAULT_CSS = """
    InspectScreen { overflow: hidden; }
    InspectScreen #inspect-title { height: 1; padding: 0 1; background: $panel; }
    InspectScreen #inspect-picker { height: auto; max-height: 20; padding: 0 1; display: none; }
    InspectScreen.picking #inspect-picker { display: block; }
    InspectScreen #picker-list { height: auto; max-height: 14; }
    InspectScreen #inspect-tabs { height: 1fr; }
    InspectScreen #inspect-tabs > ContentSwitcher { height: 1fr; }
    InspectScreen TabPane { height: 1fr; padding: 0; }
    InspectScreen #layers-left { width: 1fr; }
    InspectScreen #layers-right { width: 38; border-left: solid $panel; }
    /* Narrow terminals (80×24): the arithmetic goes under the table. */
    InspectScreen.-narrow #layers-split { layout: vertical; }
    InspectScreen.-narrow #layers-left { height: 1fr; width: 1fr; }
    InspectScreen.-narrow #layers-right { height: 9; width: 1fr; border-left: none; border-top: solid $panel; }
    InspectScreen #lessons-scroll { height: 1fr; }
    """

    AUTO_FOCUS = "#layer-table"

    BINDINGS = [
        Binding("l", "show_tab('tab-layers')", "Layers"),
        Binding("f", "show_tab('tab-filters')", "Filters"),
        Binding("a", "show_tab('tab-activations')", "Activations"),
        Binding("p", "show_tab('tab-preprocessing')", "Preproc"),
        Binding("o", "show_tab('tab-onnx')", "ONNX"),
        Binding("d", "show_tab('tab-deploy')", "Deploy"),
        Binding("R", "deploy", "Run deploy", show=False),
        Binding("C", "cancel_deploy", "Cancel deploy", show=False),
        Binding("ctrl+d", "diff", "Diff…", show=False),
        Binding("e", "show_tab('tab-lessons')", "Lessons"),
        Binding("left_square_bracket", "page(-1)", "Page", show=False),
        Binding("right_square_bracket", "page(1)", "Page ±", key_display="[ ]"),
        Binding("comma", "step(-1)", "Prev", show=False),
        Binding("full_stop", "step(1)", "Step ±", key_display=", ."),
        Binding("x", "export", "Export ONNX", show=False),
        Binding("v", "evaluate", "Evaluate ONNX", show=False),
        Binding("ctrl+o", "pick", "Open…"),
        Binding("escape", "back", "Back"),
    ]

    class Loaded(Message):
        """The target was read (posted by the loading worker)."""

        def __init__(self, target: LoadedTarget) -> None:
            super().__init__()
            self.target = target

    class SamplesReady(Message):
        """Test images of a data source arrived from `engine data --samples`."""

        def __init__(self, samples: Samples) -> None:
            super().__init__()
            self.samples = samples

    class PickerItems(Message):
        """Runs and ONNX files found under the runs root, for the picker."""

        def __init__(self, items: list[tuple[str, Path]]) -> None:
            super().__init__()
            self.items = items

    def __init__(
        self,
        target: Path | None = None,
        runs_root: Path | None = None,
        *,
        tab: str | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.target_path = Path(target) if target is not None else None
        self.runs_root = Path(runs_root) if runs_root is not None else None
        self.initial_tab = tab if tab in TABS else None
        if self.initial_tab not in (None, "tab-layers"):
            # Focusing the layer table would switch TabbedContent back to Layers.
            self.AUTO_FOCUS = None  # type: ignore[misc,assignment]  # per screen: Textual reads self.AUTO_FOCUS
        self.loaded: LoadedTarget | None = None
        self.samples: dict[str, Samples] = {}
        self._samples_pending: set[str] = set()
        self._picker_paths: list[Path] = []

    def compose(self) -> ComposeResult:
        try:  # part 1's nav bar, when the app has it
            from tui.widgets.nav import NavBar

            yield NavBar("inspect")
        except ImportError:
            pass
        yield Static(_("Inspect"), id="inspect-title")
        with Vertical(id="inspect-picker"):
            yield Static(_("Open a run or an ONNX file (Enter), or type a path:"))
            yield OptionList(id="picker-list")
            yield Input(
                placeholder=_("path to a run folder, .onnx or .keras file"), id="picker-path"
            )
        with TabbedContent(id="inspect-tabs", initial=self.initial_tab or "tab-layers"):
            with TabPane(_("Layers"), id="tab-layers"):
                with Horizontal(id="layers-split"):
                    with Vertical(id="layers-left"):
                        yield LayerTable(id="layer-table")
                    with VerticalScroll(id="layers-right"):
                        yield ArithmeticView(id="arithmetic")
                        yield FreezeMap(id="freeze-map")
            with TabPane(_("Filters"), id="tab-filters"):
                yield FiltersPane(id="filters-pane")
            with TabPane(_("Activations"), id="tab-activations"):
                yield ActivationsPane(id="activations-pane")
            with TabPane(_("Preprocessing"), id="tab-preprocessing"):
                yield PreprocessingPane(id="preprocessing-pane")
            with TabPane("ONNX", id="tab-onnx"):
                yield OnnxPane(id="onnx-pane")
            with TabPane(_("Deploy"), id="tab-deploy"):
                yield DeployPane(id="deploy-pane")
            with TabPane(_("Lessons"), id="tab-lessons"):
                with VerticalScroll(id="lessons-scroll"):
                    yield LessonsView(id="lessons")
                    yield ReferenceView(id="reference-check")
        yield Footer()

    # -- typed accessors
    @property
    def layer_table(self) -> LayerTable:
        return self.query_one("#layer-table", LayerTable)

    @property
    def arithmetic(self) -> ArithmeticView:
        return self.query_one("#arithmetic", ArithmeticView)

    @property
    def freeze_map(self) -> FreezeMap:
        return self.query_one("#freeze-map", FreezeMap)

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#inspect-tabs", TabbedContent)

    @property
    def panes(self) -> list[Any]:
        return [
            self.query_one("#filters-pane", FiltersPane),
            self.query_one("#activations-pane", ActivationsPane),
            self.query_one("#preprocessing-pane", PreprocessingPane),
            self.query_one("#onnx-pane", OnnxPane),
            self.deploy_pane,
        ]

    @property
    def deploy_pane(self) -> DeployPane:
        return self.query_one("#deploy-pane", DeployPane)

    def _title(self, text: str) -> None:
        self.query_one("#inspect-title", Static).update(text)

    # -- loading
    def on_mount(self) -> None:
        if self.target_path is not None:
            self.load(self.target_path)
        else:
            self.action_pick()

    def on_unmount(self) -> None:
        kill_children()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")

    def load(self, path: Path) -> None:
        """Read a run folder or model file in a worker; the panes fill in when it arrives."""
        self.target_path = Path(path)
        self.remove_class("picking")
        self._title(_("Inspect · loading {path} …").format(path=path))
        self._load_worker(Path(path), engine_command(self.app), self.runs_root)

    def reload(self) -> None:
        if self.target_path is not None:
            self.load(self.target_path)

    @work(
        thread=True,
        exclusive=True,
        group="inspect-load",
        description=N_("read the model"),
        exit_on_error=False,
    )
    def _load_worker(self, path: Path, prefix: list[str], runs_root: Path | None) -> None:
        self.post_message(self.Loaded(read_target(path, prefix, runs_root)))

    def on_inspect_screen_loaded(self, message: Loaded) -> None:
        target = self.loaded = message.target
        totals = target.summary.get("totals", {})
        fmt = target.summary.get("format", "keras")
        bits = [_("Inspect") + f" · {target.path.name}", str(target.summary.get("model", "?"))]
        if totals.get("total") is not None:
            bits.append(_("{count} params").format(count=integer(int(totals["total"]))))
        if totals.get("trainable") is not None:
            bits.append(_("{count} trainable").format(count=integer(int(totals["trainable"]))))
        bits.append(
            f"{len(target.summary.get('layers', []))} "
            + (_("nodes") if fmt == "onnx" else _("layers"))
        )
        if fmt == "onnx":  # the same figure and convention as the ONNX pane
            from tui.widgets.onnx_pane import macs_text

            bits.append(macs_text(totals))
        if (target.run or {}).get("model", {}) and (target.run or {}).get("model", {}).get(
            "random_init"
        ):
            bits.append(_("random init (not ImageNet)"))
        self._title(" · ".join(bits))
        phases = (target.run or {}).get("phases")
        self.layer_table.show(target.summary, phases)
        self.freeze_map.show(target.summary, phases)
        self.freeze_map.display = fmt != "onnx"
        for pane in self.panes:
            pane.set_target(target)
        self._lessons_worker(target)
        if self.tabs.active == "tab-layers":
            self.layer_table.focus()

    @work(
        thread=True,
        exclusive=True,
        group="inspect-lessons",
        description=N_("gather results for the lessons"),
        exit_on_error=False,
    )
    def _lessons_worker(self, target: LoadedTarget) -> None:
        from engine.inspect import preprocessing_results
        from engine.inspect.reference import reference_check

        self.app.call_from_thread(
            self.query_one("#reference-check", ReferenceView).show, reference_check(target.summary)
        )
        results = preprocessing_results(target.runs_root)
        self.app.call_from_thread(
            self.query_one("#lessons", LessonsView).show, target.summary, target.record, results
        )

    # -- samples shared by the Activations and Preprocessing panes
    def request_samples(self, source: str) -> None:
        """Test images of `source` for the panes (cached; loaded once by `engine data`)."""
        if source in self.samples:
            self._deliver(self.samples[source])
            return
        if source in self._samples_pending:
            return
        self._samples_pending.add(source)
        self._samples_worker(source, engine_command(self.app))

    @work(
        thread=True,
        group="inspect-samples",
        description=N_("load test images (engine data)"),
        exit_on_error=False,
    )
    def _samples_worker(self, source: str, prefix: list[str]) -> None:
        try:
            samples = load_samples(prefix, source, SAMPLES_PER_CLASS)
        finally:
            self._samples_pending.discard(source)
        self.post_message(self.SamplesReady(samples))

    def on_inspect_screen_samples_ready(self, message: SamplesReady) -> None:
        self.samples[message.samples.source] = message.samples
        self._deliver(message.samples)

    def _deliver(self, samples: Samples) -> None:
        for pane in self.panes:
            ready = getattr(pane, "samples_ready", None)
            if ready is not None:
                ready(samples)

    # -- picker
    def action_pick(self) -> None:
        self.add_class("picking")
        self._title(_("Inspect · choose what to open"))
        self._picker_worker(self.runs_root)
        self.query_one("#picker-path", Input).focus()

    @work(
        thread=True,
        exclusive=True,
        group="inspect-picker",
        description=N_("list runs"),
        exit_on_error=False,
    )
    def _picker_worker(self, runs_root: Path | None) -> None:
        from engine.paths import default_runs_root

        self.post_message(self.PickerItems(list_inspectable(runs_root or default_runs_root())))

    def on_inspect_screen_picker_items(self, message: PickerItems) -> None:
        options = self.query_one("#picker-list", OptionList)
        options.clear_options()
        self._picker_paths = [path for _, path in message.items]
        if message.items:
            options.add_options([Option(label) for label, _ in message.items])
            options.highlighted = 0
            options.focus()
        else:
            options.add_option(
                Option(_("no runs with a model here — type a path below"), disabled=True)
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id != "picker-list":
            return
        event.stop()
        if 0 <= event.option_index < len(self._picker_paths):
            self.load(self._picker_paths[event.option_index])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "picker-path":
            return
        event.stop()
        text = event.value.strip()
        if text:
            self.load(Path(text).expanduser())

    # -- cross-pane coordination
    def on_layer_table_layer_selected(self, message: LayerTable.LayerSelected) -> None:
        self.arithmetic.show(message.row)
        for pane in self.panes:
            follow = getattr(pane, "follow_layer", None)
            if follow is not None:
                follow(message.row)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        reason = str(error) or type(error).__name__
        self.notify(f"{_(event.worker.description)}: {reason}", severity="error", timeout=10)
        if event.worker.group == "inspect-export":
            self.query_one("#act-export").disabled = False
        if event.worker.group == "inspect-load":
            self._title(_("Inspect · could not open: {reason}").format(reason=reason))
            if self.loaded is None:
                self.add_class("picking")
                self.query_one("#picker-list", OptionList).focus()

    # -- actions
    def action_show_tab(self, tab: str) -> None:
        self.tabs.active = tab
        if tab == "tab-layers":
            self.layer_table.focus()
        elif self.focused is not None and not isinstance(self.focused, Input):
            # Leave nothing focused in a hidden pane: the keys belong to the screen again.
            self.set_focus(None)

    def _active_pane(self) -> Any:
        mapping = {
            "tab-filters": "#filters-pane",
            "tab-activations": "#activations-pane",
            "tab-preprocessing": "#preprocessing-pane",
        }
        selector = mapping.get(self.tabs.active)
        return self.query_one(selector) if selector else None

    def action_page(self, delta: int) -> None:
        pane = self._active_pane()
        if pane is not None and hasattr(pane, "page"):
            pane.page(delta)

    def action_step(self, delta: int) -> None:
        pane = self._active_pane()
        if pane is not None and hasattr(pane, "step"):
            pane.step(delta)

    def action_evaluate(self) -> None:
        self.action_show_tab("tab-onnx")
        self.query_one("#onnx-pane", OnnxPane).evaluate()

    def action_deploy(self) -> None:
        self.action_show_tab("tab-deploy")
        self.deploy_pane.start()

    def action_cancel_deploy(self) -> None:
        self.deploy_pane.cancel()

    def action_diff(self) -> None:
        """Diff the loaded model against a second run or file (picked on the Diff screen)."""
        if self.loaded is None:
            return
        from tui.screens.diff import DiffScreen

        self.app.push_screen(DiffScreen(self.loaded.path, None, runs_root=self.runs_root))

    def action_export(self) -> None:
        self.query_one("#activations-pane", ActivationsPane).export()

    def action_back(self) -> None:
        if self.has_class("picking") and self.loaded is not None:
            self.remove_class("picking")
            self.layer_table.focus()
            return
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
