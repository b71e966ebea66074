"""The run queue: requests waiting, jobs training (one per GPU) and the last ones done, as a list.

Async workers drain it, one per GPU (one on a machine without GPU): each starts the engine
process for a request (`EngineClient.start`, with its GPU in `CUDA_VISIBLE_DEVICES`), turns the
JSON events into messages (`JobStarted`, `EngineEvent`, `BatchProgress`, `JobEnded`) that bubble
up to the screen, and waits for the exit code. The screen hands each message back here
(`job_started`, `note_event`, `job_ended`) so the queue keeps its own books, and shows the monitor
and the notifications itself. A dead engine is reported with the last lines of its stderr; the
queue goes on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.widgets import OptionList
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from tui.engine_client import (
    EXIT_CANCELLED,
    EXIT_OK,
    EXIT_USAGE,
    EngineCommandError,
    RunRequest,
    describe_exit,
    error_line,
)
from tui.i18n import N_, _
from tui.messages import BatchProgress, EngineEvent, JobEnded, JobStarted, RunsChanged

if TYPE_CHECKING:  # the records load with the first event
    from engine import records

# How many finished jobs the list keeps on show, newest first.
DONE_SHOWN = 6


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended, as the queue recorded it; the screen tells the user."""

    label: str
    status: str  # finished | cancelled | failed
    note: str = ""  # finished: the test accuracy, if the engine sent it
    reason: str = ""  # failed: why, in one line


class RunQueue(OptionList):
    """The queue of experiment runs and the workers that drain it through the engine client."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pending: list[RunRequest] = []
        # Jobs training now, oldest first: job number → (request, EngineJob once started).
        self.running: dict[int, tuple[RunRequest, Any]] = {}
        self.done: list[tuple[str, str]] = []  # (icon + label, note), newest last
        self.gpus: list[str] = []  # from the engine client on mount: N GPUs, N jobs at once
        self._workers: list[str | None] = []  # the GPU of each draining worker
        self._job_counter = 0
        self._labels: dict[int, str] = {}
        self._errors: dict[int, str] = {}
        self._finished_metrics: dict[int, records.Metrics] = {}
        self._top_runs: dict[int, str] = {}

    def on_mount(self) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        self.gpus = engine.gpu_ids() if hasattr(engine, "gpu_ids") else []
        self.refresh_options()

    @property
    def slots(self) -> int:
        """How many jobs run at once: one per GPU, one without a GPU."""
        return max(1, len(self.gpus))

    @property
    def current(self) -> RunRequest | None:
        """The newest job training (None when the queue is idle)."""
        return next(reversed(self.running.values()))[0] if self.running else None

    @property
    def busy(self) -> bool:
        """Every slot has a job: a new request waits in the queue."""
        return len(self.running) >= self.slots

    # -- requests ------------------------------------------------------------------------------

    def enqueue(self, request: RunRequest) -> bool:
        """Queue `request`; True when a new worker starts draining (a slot was free)."""
        self.pending.append(request)
        if self.busy:
            self.notify(
                _("Queued {label} (#{position} in line)").format(
                    label=request.label, position=len(self.pending)
                ),
                timeout=3,
            )
        self.refresh_options()
        if len(self._workers) >= self.slots:
            return False
        gpu = next((g for g in self.gpus if g not in self._workers), None)
        self._workers.append(gpu)
        self.drain(gpu)
        return True

    def remove_highlighted(self) -> None:
        """Take the highlighted waiting request out of the queue (running and done stay)."""
        option = self.highlighted_option
        if option is None or not (option.id or "").startswith("pending-"):
            return
        index = int((option.id or "pending-0").split("-")[1])
        if 0 <= index < len(self.pending):
            removed = self.pending.pop(index)
            self.notify(_("Removed {label} from the queue").format(label=removed.label), timeout=3)
            self.refresh_options()

    def cancel(self) -> int:
        """SIGINT every running engine (each stops at the next batch); how many were asked."""
        jobs = [job for _request, job in self.running.values() if job is not None]
        for job in jobs:
            job.cancel()
        return len(jobs)

    # -- the jobs' books, fed by the screen's message handlers ---------------------------------

    def job_started(self, message: JobStarted) -> None:
        self._labels[message.job] = message.label
        if not message.error:  # a job that could not start ends at once: JobEnded redraws
            self.refresh_options()

    def note_event(self, job: int, event: records.Event) -> None:
        """Keep what the end of `job` needs (its error, its top run's metrics); lists of runs
        reload when a run starts or finishes."""
        from engine import records

        if isinstance(event, records.ErrorEvent):
            self._errors[job] = event.message
        elif isinstance(event, records.RunStarted):
            if not event.parent:
                self._top_runs[job] = str(event.run_id)
            self.app.post_message(RunsChanged(event.run_id))  # lists show it as running
        elif isinstance(event, records.RunFinished):
            if event.run_id == self._top_runs.get(job):
                self._finished_metrics[job] = event.metrics or records.Metrics()
            self.app.post_message(RunsChanged(event.run_id))

    def job_ended(self, message: JobEnded) -> JobOutcome:
        """Record how the job ended among the done ones; lists of runs reload."""
        from engine import records
        from tui.widgets.run_info import pct

        code = message.returncode
        label = self._labels.pop(message.job, _("run"))
        error = self._errors.pop(message.job, "")
        metrics = self._finished_metrics.pop(message.job, records.Metrics())
        self._top_runs.pop(message.job, None)
        if code == EXIT_OK:
            note = ""
            if metrics.test_accuracy is not None:
                note = _("test {accuracy}").format(accuracy=pct(metrics.test_accuracy))
            outcome = JobOutcome(label, "finished", note=note)
            self.done.append((f"✓ {label}", note))
        elif message.cancelled:
            outcome = JobOutcome(label, "cancelled")
            self.done.append((f"⏹ {label}", _("cancelled")))
        else:
            reason = error or message.reason or describe_exit(code)
            if code == EXIT_USAGE and error:
                reason = _("the engine refused the settings: {error}").format(error=error)
            outcome = JobOutcome(label, "failed", reason=reason)
            self.done.append((f"✗ {label}", _("failed") if code != EXIT_USAGE else _("refused")))
        self.app.post_message(RunsChanged(None))
        self.refresh_options()
        return outcome

    # -- the list ------------------------------------------------------------------------------

    def refresh_options(self) -> None:
        """Redraw: running jobs, then waiting requests, then the last ones done."""
        options: list[Option] = []
        for i, (request, _job) in enumerate(self.running.values()):
            gpu = f"  GPU {request.gpu}" if request.gpu is not None else ""
            options.append(
                Option(
                    Text.assemble(("▶ ", "bold cyan"), request.label, (gpu, "dim")),
                    id="current" if i == 0 else f"current-{i}",
                )
            )
        for i, request in enumerate(self.pending):
            options.append(
                Option(Text.assemble((f"{i + 1}. ", "bold"), request.label), id=f"pending-{i}")
            )
        for i, (label, note) in enumerate(reversed(self.done[-DONE_SHOWN:])):
            options.append(
                Option(Text.assemble(label, (f"  {note}" if note else "", "dim")), id=f"done-{i}")
            )
        if not options:
            empty = Text(_("empty (ctrl+s)"), style="dim")
            options.append(Option(empty, id="empty", disabled=True))
        highlighted = self.highlighted
        self.set_options(options)
        if highlighted is not None and highlighted < len(options):
            self.highlighted = highlighted

    # -- the worker ----------------------------------------------------------------------------

    @work(group="engine", exit_on_error=False, description=N_("run the queued experiments"))
    async def drain(self, gpu: str | None = None) -> None:
        """Run queued requests one after another (on `gpu`, if given), posting their events as
        messages; other workers drain the same queue on the other GPUs."""
        from engine import records

        engine = self.app.engine  # type: ignore[attr-defined]
        try:
            while self.pending:
                request = self.pending.pop(0)
                if gpu is not None:
                    request = dataclasses.replace(request, gpu=gpu)
                self._job_counter += 1
                job_no = self._job_counter
                self.running[job_no] = (request, None)
                try:
                    try:
                        job = await engine.start(request)
                    except EngineCommandError as exc:
                        self.post_message(JobStarted(job_no, request.label, error=str(exc)))
                        self.post_message(JobEnded(job_no, None, reason=str(exc)))
                        continue
                    self.running[job_no] = (request, job)
                    command = engine.command(request.args()) if hasattr(engine, "command") else []
                    self.post_message(JobStarted(job_no, request.label, command=command))
                    async for event in job.events():
                        if isinstance(event, records.BatchProgress):
                            self.post_message(BatchProgress(job_no, event))
                        else:
                            self.post_message(EngineEvent(job_no, event))
                    code = await job.wait()
                finally:
                    self.running.pop(job_no, None)
                tail = job.stderr_tail()
                cancelled = code == EXIT_CANCELLED or bool(
                    getattr(job, "cancel_requested", False) and code != EXIT_OK
                )
                reason = "" if code in (EXIT_OK, EXIT_CANCELLED) else error_line(tail, code)
                self.post_message(
                    JobEnded(job_no, code, cancelled=cancelled, reason=reason, tail=tail)
                )
        finally:
            self._workers.remove(gpu)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed says so (workers never take the app down: exit_on_error=False)."""
        if event.state == WorkerState.ERROR:
            event.stop()
            self.notify(
                f"{_(event.worker.description)}: {event.worker.error}", severity="error", timeout=8
            )
