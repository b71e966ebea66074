"""Experiments: pick one, edit its settings, start it or queue it, and watch it train.

The run queue (`tui.widgets.run_queue.RunQueue`) holds the requests and drains them through the
engine; its jobs' messages bubble up here, where handlers on the UI thread hand them to the queue
and update the monitor (it follows the newest job), the status line and the notifications.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    ContentSwitcher,
    OptionList,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option

from engine.experiments import ExperimentSpec, get_experiment, list_experiments
from tui.engine_client import EXIT_USAGE, RunRequest, describe_exit
from tui.i18n import _
from tui.messages import BatchProgress, EngineEvent, JobEnded, JobStarted
from tui.widgets.footer import Footer
from tui.widgets.nav import NavBar
from tui.widgets.run_queue import RunQueue

if TYPE_CHECKING:  # imported where used: the monitor and the forms mount after the first frame
    from textual.widget import AwaitMount

    from tui.widgets.monitor import RunMonitor
    from tui.widgets.settings_form import SettingsForm


def experiment_options(narrow: bool) -> list[Option]:
    """One option per registered experiment: name and title (name only when narrow)."""
    options = []
    for spec in list_experiments():
        prompt = Text(spec.name, style="bold")
        if not narrow:
            prompt.append("\n" + _(spec.title), style="not bold dim")
        options.append(Option(prompt, id=spec.name))
    return options


class ExperimentsScreen(Screen[None]):
    """Pick and configure an experiment; start/queue it; live progress of the current run."""

    BINDINGS = [
        Binding("ctrl+s", "start", "Start/queue", priority=True),
        Binding("x", "cancel", "Cancel run"),
        Binding("e", "show('tab-settings')", "Settings"),
        Binding("p", "show('tab-progress')", "Progress"),
        Binding("ctrl+r", "reset", "Defaults"),
        Binding("delete", "remove_queued", "Unqueue", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    # Seconds after mounting before the other experiments' forms are built (None: on demand).
    PREMOUNT_DELAY: float | None = 0.5

    def __init__(self) -> None:
        super().__init__()
        self.monitored: int | None = None  # the job the monitor shows (the newest started)
        self._forms: dict[str, SettingsForm] = {}
        self._narrow = False
        self.ready = False  # the form and the monitor are mounted just after the first frame
        self._start_when_ready = False  # ctrl+s came before the form: start once it is there
        self.spec: ExperimentSpec = list_experiments()[0]

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield NavBar("experiments")
        with Horizontal(id="exp-body"):
            with Vertical(id="exp-side"):
                yield Static(_("Experiments"), classes="section-title")
                yield OptionList(
                    *experiment_options(narrow=False),
                    id="experiment-list",
                )
                yield Static(_("Queue"), classes="section-title")
                yield RunQueue(id="queue-list")
            # The settings and progress tabs are mounted here after the first frame (see
            # _tabbed_area): the first paint shows the nav, the list and the keys at once.
            yield Vertical(id="exp-main")
        yield Footer()

    def _tabbed_area(self) -> TabbedContent:
        """The Settings and Progress tabs: the description, the form's place and its buttons; the
        monitor's place and the cancel button. Mounted after the first frame, with the form."""
        settings = TabPane(
            _("Settings"),
            VerticalScroll(
                Static("", id="exp-description"),
                ContentSwitcher(id="forms"),
                Horizontal(
                    Button(
                        _("Start ▶  ctrl+s"), id="start-button", variant="success", compact=True
                    ),
                    Button(_("Defaults  ctrl+r"), id="reset-button", compact=True),
                    id="form-buttons",
                ),
                id="settings-scroll",
            ),
            id="tab-settings",
        )
        progress = TabPane(
            _("Progress"),
            Vertical(id="monitor-slot"),
            Horizontal(
                Button(
                    _("Cancel run  x"),
                    id="cancel-button",
                    variant="error",
                    compact=True,
                    disabled=not self.queue_list.running,
                ),
                id="monitor-buttons",
            ),
            id="tab-progress",
        )
        tabs = TabbedContent(id="exp-tabs", initial="tab-settings")
        for pane in (settings, progress):  # what `with TabbedContent(): yield pane` does
            tabs.compose_add_child(pane)
        return tabs

    # Typed accessors.
    @property
    def monitor(self) -> RunMonitor:
        from tui.widgets.monitor import RunMonitor

        return self.query_one("#monitor", RunMonitor)

    @property
    def experiment_list(self) -> OptionList:
        return self.query_one("#experiment-list", OptionList)

    @property
    def queue_list(self) -> RunQueue:
        return self.query_one("#queue-list", RunQueue)

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#exp-tabs", TabbedContent)

    @property
    def form(self) -> SettingsForm:
        return self._forms[self.spec.name]

    # The queue's state, read through the screen (tests and the status line look here).
    @property
    def pending(self) -> list[RunRequest]:
        return self.queue_list.pending

    @property
    def running(self) -> dict[int, tuple[RunRequest, Any]]:
        return self.queue_list.running

    @property
    def done(self) -> list[tuple[str, str]]:
        return self.queue_list.done

    @property
    def slots(self) -> int:
        return self.queue_list.slots

    @property
    def current(self) -> RunRequest | None:
        return self.queue_list.current

    def on_resize(self) -> None:
        narrow = self.app.has_class("-narrow")
        if narrow != self._narrow:
            self._narrow = narrow
            highlighted = self.experiment_list.highlighted
            self.experiment_list.set_options(experiment_options(narrow))
            self.experiment_list.highlighted = highlighted

    def on_mount(self) -> None:
        self.experiment_list.highlighted = 0
        self._show_description()
        self.experiment_list.focus()
        # Once the first frame is on the terminal: the app knows when (a first refresh may be
        # drawn during Textual's start-up batch and never written).
        getattr(self.app, "call_after_first_frame", self.call_after_refresh)(
            self._build_after_first_frame
        )

    async def _build_after_first_frame(self) -> None:
        """The tabs, the current form and the live monitor, mounted once the first frame is on
        screen."""
        from tui.widgets.monitor import RunMonitor

        await self.query_one("#exp-main", Vertical).mount(self._tabbed_area())
        await self.query_one("#monitor-slot", Vertical).mount(RunMonitor(id="monitor"))
        mounting = self.select_experiment(self.spec.name)
        if mounting is not None:
            await mounting  # its rows exist once ready is set (an early ctrl+s reads them)
        self.ready = True
        if hasattr(self.app, "mark_ready"):
            self.call_after_refresh(self.app.mark_ready)
        if self._start_when_ready:
            self._start_when_ready = False
            self.call_after_refresh(self.action_start)
        # The other forms are built after that, one per tick, so that moving through the list
        # later shows each form at once.
        if self.PREMOUNT_DELAY is not None:
            self.set_timer(self.PREMOUNT_DELAY, self._premount_next_form)

    def _premount_next_form(self) -> None:
        # A timer: it may fire while the app quits (exit(): no longer attached; a shutdown
        # without exit(), as a test's teardown: no longer running) or once the screen is gone.
        if not (self.is_attached and self.is_mounted and self.app.is_running):
            return
        missing = [spec for spec in list_experiments() if spec.name not in self._forms]
        if not missing:
            return
        form = self._new_form(missing[0])
        form.display = False  # ContentSwitcher only hides the children it had when switching
        self.query_one("#forms", ContentSwitcher).mount(form)
        self.set_timer(0.1, self._premount_next_form)

    # -- choosing and editing ----------------------------------------------------------------

    def _show_description(self) -> None:
        for description in self.query("#exp-description").results(Static):  # once the tabs are
            description.update(
                Text.assemble((_(self.spec.title), "bold"), "\n", (_(self.spec.description), ""))
            )

    def select_experiment(self, name: str) -> AwaitMount | None:
        """Show `name`'s description and settings form (created the first time: then the
        awaitable of its mounting)."""
        self.spec = get_experiment(name)
        self._show_description()
        switcher = self.query_one("#forms", ContentSwitcher)
        mounting = None
        if name not in self._forms:
            mounting = switcher.mount(self._new_form(self.spec))
        switcher.current = f"form-{name}"
        return mounting

    def _new_form(self, spec: ExperimentSpec) -> SettingsForm:
        from tui.widgets.settings_form import SettingsForm

        form = SettingsForm(spec, self.app_data_source(), id=f"form-{spec.name}")
        self._forms[spec.name] = form
        return form

    def app_data_source(self) -> str:
        return str(getattr(self.app, "data_source", "synthetic"))

    @on(OptionList.OptionHighlighted, "#experiment-list")
    def _experiment_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if not event.option.id:
            return
        if not self.ready:  # before the first frame: the form comes with the deferred build
            self.spec = get_experiment(event.option.id)
            self._show_description()
            return
        self.select_experiment(event.option.id)

    @on(OptionList.OptionSelected, "#experiment-list")
    def _experiment_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.select_experiment(event.option.id)
            self.tabs.active = "tab-settings"
            rows = self.form.rows
            if rows:
                rows[0].editor.focus()

    def action_show(self, tab: str) -> None:
        if self.ready:  # the tabs are mounted after the first frame
            self.tabs.active = tab

    def action_reset(self) -> None:
        self.form.reset()
        self.notify(
            _("{name}: settings back to the assignment's defaults").format(name=self.spec.name),
            timeout=3,
        )

    def action_leave_field(self) -> None:
        from textual.widgets import Input, Select, SelectionList

        if self.focused is None or isinstance(self.focused, (Input, Select, SelectionList)):
            self.experiment_list.focus()

    @on(TabbedContent.TabActivated, "#exp-tabs")
    def _tab_activated(self) -> None:
        # Switching tabs must not leave the focus on a widget that is now hidden (or nowhere):
        # keys would then go nowhere or, worse, a typed digit would switch sections.
        focused = self.focused
        pane = self.tabs.active_pane
        if focused is None or (
            pane is not None
            and focused not in pane.walk_children()
            and focused not in self.query_one("#exp-side").walk_children()
        ):
            self.experiment_list.focus()

    @on(Button.Pressed, "#start-button")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#reset-button")
    def _reset_pressed(self) -> None:
        self.action_reset()

    @on(Button.Pressed, "#cancel-button")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    # -- queue -------------------------------------------------------------------------------

    def request_from_form(self) -> RunRequest | None:
        """The current form as a RunRequest, or None (and the reasons shown) if it is refused."""
        if not self.ready or self.spec.name not in self._forms:
            self.notify(_("The settings are still being drawn; press ctrl+s again."), timeout=3)
            return None
        problems = self.form.problems()
        if problems:
            self.form.show_problems(problems)
            self.tabs.active = "tab-settings"
            self.notify(
                "\n".join(problems[:4]), title=_("Settings refused"), severity="error", timeout=6
            )
            return None
        return RunRequest(
            experiment=self.spec.name,
            settings=self.form.values(),
            runs_dir=self.app.runs_root,  # type: ignore[attr-defined]
            title=self.spec.title,
        )

    def action_start(self) -> None:
        """Start the configured experiment, or queue it behind the current one."""
        if not self.ready:
            # ctrl+s pressed as the app opens: the form is a moment away; start once it is drawn.
            self._start_when_ready = True
            return
        request = self.request_from_form()
        if request is None:
            return
        self.enqueue(request)

    def enqueue(self, request: RunRequest) -> None:
        if self.queue_list.enqueue(request):  # a worker starts on it: watch it train
            self.tabs.active = "tab-progress"

    def action_remove_queued(self) -> None:
        if self.focused is self.queue_list:
            self.queue_list.remove_highlighted()

    def action_cancel(self) -> None:
        """SIGINT every running engine: each stops at the next batch, keeping what it trained."""
        if not self.queue_list.cancel():
            self.notify(_("Nothing is training."), timeout=3)
            return
        self.monitor.log_view.write(
            Text(_("cancel requested (SIGINT): stopping at the next batch…"), style="yellow")
        )
        self.app.engine_status = _("cancelling…")  # type: ignore[attr-defined]
        more = ""
        if self.pending:
            more = " " + _("{n} queued run(s) follow (Del removes them from the queue).").format(
                n=len(self.pending)
            )
        self.notify(_("Cancelling: the engine keeps the epochs it finished.") + more, timeout=4)

    def _update_cancel_button(self) -> None:
        for button in self.query("#cancel-button").results(Button):  # once the tabs are
            button.disabled = not self.running

    # -- message handlers (UI thread) ---------------------------------------------------------

    def on_job_started(self, message: JobStarted) -> None:
        self.queue_list.job_started(message)
        self.monitored = message.job  # the monitor follows the newest job
        if message.error:
            self.monitor.start(message.label, [])
            return
        self.monitor.start(message.label, message.command)
        self.app.engine_status = f"▶ {message.label}"  # type: ignore[attr-defined]
        self._update_cancel_button()

    def on_engine_event(self, message: EngineEvent) -> None:
        from engine import records

        event = message.event
        watched = message.job == self.monitored
        if watched:
            self.monitor.event(event)
        self.queue_list.note_event(message.job, event)
        if watched and isinstance(
            event, (records.RunStarted, records.PhaseStarted, records.EpochEnd)
        ):
            self._update_status()

    def on_batch_progress(self, message: BatchProgress) -> None:
        if message.job != self.monitored:
            return
        self.monitor.batch_progress(message.event)
        self._update_status()

    def _update_status(self) -> None:
        from tui.widgets.run_info import phase_label, seconds

        s = self.monitor.state
        if not s.phase:
            return
        eta = s.eta()
        bits = [
            f"▶ {s.model_label or s.experiment}",
            f"{phase_label(s.phase)} {s.epoch}/{s.epochs}",
        ]
        if s.parent_id:
            bits.insert(1, f"{min(s.children_started, s.children_total)}/{s.children_total}")
        if eta is not None:
            bits.append(_("ETA {time}").format(time=seconds(eta)))
        self.app.engine_status = "  ".join(bits)  # type: ignore[attr-defined]

    def on_job_ended(self, message: JobEnded) -> None:
        code = message.returncode
        watched = message.job == self.monitored
        outcome = self.queue_list.job_ended(message)
        label = outcome.label
        if outcome.status == "finished":
            self.notify(
                _("{label}: finished. {note}").format(label=label, note=outcome.note),
                title=_("Run finished"),
                timeout=6,
            )
        elif outcome.status == "cancelled":
            self.notify(
                _("{label}: cancelled; what it trained is kept (see Runs).").format(label=label),
                timeout=5,
            )
        else:
            if watched:
                tail = [] if code == EXIT_USAGE else message.tail
                self.monitor.ended("failed", outcome.reason, tail)
            self.notify(
                f"{label}: {outcome.reason}",
                title=_("Engine {outcome}").format(outcome=describe_exit(code)),
                severity="error",
                timeout=10,
            )
        if outcome.status != "failed" and watched:
            self.monitor.ended(outcome.status)
        if not self.running:
            self.app.engine_status = ""  # type: ignore[attr-defined]
        self._update_cancel_button()
