"""Live view of the run the engine is training: progress with ETA, curves, the engine's log.

`LiveState` folds the engine's events (docs/protocol.md) into what is shown; it is pure, so
ETA and progress are tested without a terminal. Times come from the events' own `time`
field, not the UI clock, so a replayed stream always shows the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import RichLog

from engine.records import (
    Artifact,
    BatchProgress,
    DataInfo,
    EpochEnd,
    ErrorEvent,
    Event,
    Log,
    Metrics,
    ModelInfo,
    PhaseStarted,
    RunFinished,
    RunStarted,
)
from tui.i18n import N_, _, language_code, number, pgettext
from tui.widgets.charts import PALETTE, LineChart, Series
from tui.widgets.run_info import RANDOM_MARK, data_counts, pct, phase_label, seconds


def metric_label(key: str, *, short: bool = False) -> str:
    """A Keras metric key as shown: the key itself in English ("acc" when `short`), words elsewhere."""
    labels = {
        "loss": pgettext("metric", "loss"),
        "accuracy": pgettext("metric", "accuracy"),
        "val_loss": pgettext("metric", "val_loss"),
        "val_accuracy": pgettext("metric", "val_accuracy"),
    }
    label = labels.get(key, key)
    return label.replace("accuracy", "acc") if short and language_code() == "en" else label


def text_bar(fraction: float, width: int) -> str:
    """`██████▌░░░░` for a fraction in [0, 1]."""
    fraction = max(0.0, min(fraction, 1.0))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    return bar + "░" * (width - len(bar))


@dataclass
class LiveState:
    """The run being trained (for compare/preprocessing: the current child and the parent)."""

    run_id: str | None = None
    experiment: str = ""
    title: str = ""
    model: ModelInfo | None = None
    data: DataInfo | None = None
    parent_id: str | None = None
    parent_experiment: str = ""
    children_total: int = 0
    children_started: int = 0
    children_done: list[str] = field(default_factory=list)
    child_times: list[float] = field(default_factory=list)
    phase: str = ""
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    batch_metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # epoch_end metrics
    phase_offset: int = 0  # epochs of earlier phases, so curves continue on one axis
    epoch_started_at: float | None = None
    epoch_times: list[float] = field(default_factory=list)
    child_started_at: float | None = None
    last_time: float | None = None
    status: str = N_("idle")  # the words are shown translated (header_text)
    final_metrics: Metrics = field(default_factory=Metrics)
    error: str = ""

    def apply(self, event: Event) -> None:
        """Fold one engine event into the state."""
        if event.time is not None:
            self.last_time = event.time
        if isinstance(event, RunStarted):
            if event.is_parent:
                self.parent_id = event.run_id
                self.parent_experiment = event.experiment
                self.children_total = len(event.plan)
                self.run_id = self.parent_id
                self.experiment = self.parent_experiment
                self.status = "running"
                return
            if event.parent:
                self.children_started += 1
            self._reset_run()
            self.run_id = event.run_id
            self.experiment = event.experiment
            self.model = event.model
            self.data = event.data
            self.status = "running"
            self.child_started_at = self.last_time
        elif isinstance(event, PhaseStarted):
            if self.phase and self.phase != "features":
                self.phase_offset = len(self.history)
            self.phase = event.phase
            self.epochs = event.epochs
            self.steps = event.steps
            self.epoch, self.step = 0, 0
            self.epoch_times = []
            self.epoch_started_at = self.last_time
            self.batch_metrics = {}
        elif isinstance(event, BatchProgress):
            self.phase = event.phase
            self.epoch = event.epoch
            self.epochs = event.epochs
            self.step = event.step
            self.steps = event.steps
            self.batch_metrics = dict(event.metrics)
            if self.epoch_started_at is None:
                self.epoch_started_at = self.last_time
        elif isinstance(event, EpochEnd):
            self.history.append(dict(event.metrics))
            self.epoch = event.epoch
            self.epochs = event.epochs
            self.step = self.steps
            self.epoch_times.append(event.epoch_time)
            self.epoch_started_at = self.last_time
            self.batch_metrics = {}
        elif isinstance(event, RunFinished):
            self.final_metrics = event.metrics or Metrics()
            if event.run_id == self.parent_id and self.parent_id is not None:
                self.status = event.status
                self.run_id = self.parent_id
                self.experiment = self.parent_experiment
                return
            if self.parent_id is not None:
                acc = self.final_metrics.test_accuracy
                self.children_done.append(f"{self.model_label or self.experiment}: {pct(acc)}")
                if self.child_started_at is not None and self.last_time is not None:
                    self.child_times.append(self.last_time - self.child_started_at)
                self.status = "running" if event.status == "finished" else event.status
            else:
                self.status = event.status
        elif isinstance(event, ErrorEvent):
            self.error = event.message

    @property
    def model_label(self) -> str:
        return self.model.label if self.model is not None else ""

    @property
    def random_init(self) -> bool:
        return self.model is not None and self.model.random_init

    def _reset_run(self) -> None:
        self.phase, self.epoch, self.epochs, self.step, self.steps = "", 0, 0, 0, 0
        self.history, self.batch_metrics, self.epoch_times = [], {}, []
        self.phase_offset = 0
        self.final_metrics = Metrics()
        self.epoch_started_at = None

    # -- derived -------------------------------------------------------------------------

    def seconds_per_epoch(self) -> float | None:
        if self.epoch_times:
            return sum(self.epoch_times) / len(self.epoch_times)
        spb = self.seconds_per_step()
        return spb * self.steps if spb is not None and self.steps else None

    def seconds_per_step(self) -> float | None:
        if self.epoch_started_at is None or self.last_time is None or self.step <= 0:
            if self.epoch_times and self.steps:
                return self.epoch_times[-1] / self.steps
            return None
        if self.step >= self.steps and self.epoch_times and self.steps:
            return self.epoch_times[-1] / self.steps
        elapsed = self.last_time - self.epoch_started_at
        return elapsed / self.step if elapsed > 0 else None

    def eta(self) -> float | None:
        """Seconds left in this phase (an upper bound: EarlyStopping may end it sooner)."""
        if not self.epochs or not self.steps:
            return None
        spb = self.seconds_per_step()
        spe = self.seconds_per_epoch()
        if spb is None or spe is None:
            return None
        in_epoch = 0 if self.step >= self.steps else (self.steps - self.step) * spb
        current = self.epoch if self.step < self.steps else self.epoch + 1
        later = max(self.epochs - max(current, 1), 0) * spe
        if self.step >= self.steps:
            later = max(self.epochs - self.epoch, 0) * spe
        return in_epoch + later

    def series(self) -> tuple[list[Series], list[Series], tuple[float, float]]:
        """Accuracy and loss curves (train, validation) and the x range, live batch point included."""
        acc_t, acc_v, loss_t, loss_v = [], [], [], []
        for i, row in enumerate(self.history, start=1):
            if isinstance(row.get("accuracy"), (int, float)):
                acc_t.append((float(i), float(row["accuracy"])))
            if isinstance(row.get("val_accuracy"), (int, float)):
                acc_v.append((float(i), float(row["val_accuracy"])))
            if isinstance(row.get("loss"), (int, float)):
                loss_t.append((float(i), float(row["loss"])))
            if isinstance(row.get("val_loss"), (int, float)):
                loss_v.append((float(i), float(row["val_loss"])))
        if self.batch_metrics and self.steps and self.phase != "features":
            x = len(self.history) + self.step / self.steps
            if isinstance(self.batch_metrics.get("accuracy"), (int, float)):
                acc_t.append((x, float(self.batch_metrics["accuracy"])))
            if isinstance(self.batch_metrics.get("loss"), (int, float)):
                loss_t.append((x, float(self.batch_metrics["loss"])))
        planned = self.phase_offset + (self.epochs if self.phase != "features" else 0)
        x_max = float(max(len(self.history), planned, 2))
        acc = [
            Series(_("train acc"), acc_t, PALETTE[0]),
            Series(_("val acc"), acc_v, PALETTE[1]),
        ]
        loss = [
            Series(_("train loss"), loss_t, PALETTE[0]),
            Series(_("val loss"), loss_v, PALETTE[1]),
        ]
        return acc, loss, (1.0, x_max)


def header_text(label: str, state: LiveState) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    icon = {"running": "▶", "finished": "✓", "cancelled": "⏹", "failed": "✗", "starting": "…"}.get(
        state.status, "·"
    )
    style = {"finished": "bold green", "cancelled": "bold yellow", "failed": "bold red"}.get(
        state.status, "bold cyan"
    )
    text.append(f"{icon} {_(state.status)} ", style=style)
    text.append(label, style="bold")
    if state.parent_id:
        done = len(state.children_done)
        text.append(
            "  ·  "
            + _("{experiment}: training {n} of {total}, {done} done").format(
                experiment=state.parent_experiment,
                n=min(state.children_started, state.children_total),
                total=state.children_total,
                done=done,
            )
        )
    if state.run_id:
        text.append("\n" + _("run {id}").format(id=state.run_id), style="dim")
    text.append("\n")
    if state.model is not None:
        text.append(_("model {label}").format(label=state.model.label))
    if state.random_init:
        text.append(f"  {_(RANDOM_MARK)}", style="bold yellow")
    if state.data is not None:
        d = state.data
        text.append(
            "   " + _("data {source}: {counts}").format(source=d.source, counts=data_counts(d))
        )
    return text


def progress_text(state: LiveState, width: int) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    bar_w = max(min(width - 42, 40), 8)
    if not state.phase:
        text.append(
            _("waiting for the engine…") if state.status in ("starting", "running") else "",
            style="dim",
        )
        return text
    epoch_done = state.epoch - (0 if state.step >= state.steps and state.steps else 1)
    epoch_frac = (max(epoch_done, 0) + (state.step / state.steps if state.steps else 0)) / max(
        state.epochs, 1
    )
    if state.step >= state.steps and state.steps:
        epoch_frac = state.epoch / max(state.epochs, 1)
    label = _("images") if state.phase == "features" else _("epoch")
    phase = phase_label(state.phase)
    indent = max(len(phase), 8) + 1  # the bars of both lines start in one column
    text.append(f"{phase:<8} ", style="bold")
    text.append(f"{label} {state.epoch}/{state.epochs}".ljust(14))
    text.append(text_bar(epoch_frac, bar_w), style="cyan")
    text.append(f" {epoch_frac * 100:3.0f} %")
    eta = state.eta()
    if state.status == "running" and eta is not None:
        text.append("   " + _("ETA {time}").format(time=seconds(eta)), style="bold")
    text.append("\n")
    batch_frac = state.step / state.steps if state.steps else 0.0
    text.append(" " * indent)
    text.append(_("batch {step}/{steps}").format(step=state.step, steps=state.steps).ljust(14))
    text.append(text_bar(batch_frac, bar_w), style="magenta")
    text.append(f" {batch_frac * 100:3.0f} %")
    spb = state.seconds_per_step()
    if spb:
        text.append("   " + _("{ms} ms/batch").format(ms=number(spb * 1000, 0)), style="dim")
    text.append("\n")
    text.append(" " * indent)
    m = state.batch_metrics or (state.history[-1] if state.history else {})
    parts = []
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if isinstance(m.get(key), (int, float)):
            parts.append(f"{metric_label(key)} {number(m[key], 4)}")
    text.append("  ".join(parts))
    return text


class LiveText(Widget):
    """Fixed-size text that changes often: a repaint, never a relayout (Static.update relayouts)."""

    text: reactive[Text] = reactive(Text, layout=False)

    def __init__(self, text: Text | str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_reactive(LiveText.text, Text(text) if isinstance(text, str) else text)

    def update(self, text: Text | str) -> None:
        self.text = Text(text) if isinstance(text, str) else text

    def render(self) -> Text:
        return self.text


class RunMonitor(Vertical):
    """Header, progress bars with ETA, accuracy and loss curves, and the engine's log."""

    DEFAULT_CSS = """
    RunMonitor {
        height: 1fr;
    }
    RunMonitor > #live-header {
        height: 3;
        padding: 0 1;
    }
    RunMonitor > #live-progress {
        height: 3;
        padding: 0 1;
    }
    RunMonitor > #live-charts {
        height: 2fr;
        min-height: 7;
    }
    RunMonitor LineChart {
        height: 1fr;
        border: round $panel;
        border-title-color: $text-muted;
    }
    RunMonitor > #live-log {
        height: 1fr;
        min-height: 4;
        border: round $panel;
        border-title-color: $text-muted;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = LiveState()
        self.label = ""

    def compose(self) -> ComposeResult:
        yield LiveText(
            Text(
                _("Nothing is training. Pick an experiment, adjust its settings and press ctrl+s."),
                style="dim",
            ),
            id="live-header",
        )
        yield LiveText("", id="live-progress")
        with Horizontal(id="live-charts"):
            acc = LineChart(x_label=_("epoch"), y_range=(0.0, 1.0), id="acc-chart")
            acc.border_title = _("accuracy")
            yield acc
            loss = LineChart(x_label=_("epoch"), id="loss-chart")
            loss.border_title = _("loss")
            yield loss
        log = RichLog(id="live-log", max_lines=1000, wrap=True, markup=False, highlight=False)
        log.border_title = _("engine log")
        yield log

    @property
    def log_view(self) -> RichLog:
        return self.query_one("#live-log", RichLog)

    def start(self, label: str, command: list[str]) -> None:
        """A new engine process started for `label`."""
        self.state = LiveState(status=N_("starting"))
        self.label = label
        self.log_view.write(Text(f"── {label} ──", style="bold"))
        if command:
            # Shown as the equivalent `engine ...` command (the part after `python -m engine`).
            args = command[command.index("engine") + 1 :] if "engine" in command else command
            self.log_view.write(Text("$ engine " + " ".join(args), style="dim"))
        self._redraw(charts=True)

    def event(self, event: Event) -> None:
        """Show one engine event."""
        self.state.apply(event)
        log = self.log_view
        if isinstance(event, RunStarted):
            if event.parent:
                started = _("child run {id} started ({experiment})")
            else:
                started = _("run {id} started ({experiment})")
            log.write(Text(started.format(id=event.run_id, experiment=event.experiment)))
        elif isinstance(event, PhaseStarted):
            log.write(
                Text(
                    _("phase {phase}: {epochs} epoch(s) × {steps} batches").format(
                        phase=phase_label(event.phase), epochs=event.epochs, steps=event.steps
                    )
                )
            )
        elif isinstance(event, EpochEnd):
            metrics = "  ".join(
                f"{metric_label(k, short=True)} {number(v, 4)}" for k, v in event.metrics.items()
            )
            epoch = _("epoch {n}/{total}").format(n=event.epoch, total=event.epochs)
            log.write(Text(f"{epoch}  {metrics}  {seconds(event.epoch_time)}"))
        elif isinstance(event, Log):
            # The engine's own sentences are shown as they come.
            style = "yellow" if event.level == "warning" else "dim"
            log.write(Text(event.message, style=style))
        elif isinstance(event, Artifact):
            saved = _("saved {kind}: {path}").format(kind=event.kind, path=event.path)
            log.write(Text(saved, style="dim"))
        elif isinstance(event, RunFinished):
            m = event.metrics or Metrics()
            line = Text(
                f"{_(event.status)}: {event.run_id}",
                style="bold green" if event.status == "finished" else "bold yellow",
            )
            if m.test_accuracy is not None:
                line.append(
                    "  "
                    + _("test {test}  val {val}").format(
                        test=pct(m.test_accuracy), val=pct(m.val_accuracy)
                    )
                )
                if m.overfit_gap is not None:
                    line.append("  " + _("gap {gap} pts").format(gap=number(m.overfit_gap, 1)))
            line.append(f"  ({seconds(event.wall_time)})", style="dim")
            log.write(line)
        elif isinstance(event, ErrorEvent):
            error = _("error ({kind}): {message}").format(kind=event.kind, message=event.message)
            log.write(Text(error, style="bold red"))
        self._redraw(charts=isinstance(event, (RunStarted, PhaseStarted, EpochEnd, RunFinished)))

    def batch_progress(self, event: BatchProgress) -> None:
        """A (throttled) batch_progress event: progress bars and the live point of the curves."""
        self.state.apply(event)
        self._redraw(charts=True)

    def ended(self, status: str, reason: str = "", tail: list[str] | None = None) -> None:
        """The engine process exited (`status`: finished, cancelled, failed)."""
        self.state.status = status
        log = self.log_view
        if status == "failed":
            log.write(
                Text(_("✗ the engine stopped: {reason}").format(reason=reason), style="bold red")
            )
            if tail:
                log.write(Text(_("last lines of the engine's log:"), style="red"))
                for line in tail[-12:]:
                    log.write(Text("  " + line, style="red"))
        elif status == "cancelled":
            log.write(
                Text(
                    _("⏹ cancelled: the run keeps the epochs it finished (see Runs)"),
                    style="bold yellow",
                )
            )
        self._redraw(charts=False)

    def _redraw(self, charts: bool) -> None:
        self.query_one("#live-header", LiveText).update(header_text(self.label, self.state))
        self.query_one("#live-progress", LiveText).update(
            progress_text(self.state, self.size.width or 100)
        )
        if charts:
            acc, loss, x_range = self.state.series()
            self.query_one("#acc-chart", LineChart).update(acc, x_range=x_range)
            self.query_one("#loss-chart", LineChart).update(loss, x_range=x_range)
