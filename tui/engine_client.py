"""Drive the headless engine as a child process and read its JSON-lines event stream.

The TUI never imports TensorFlow: every training runs as `python -m engine run ... --events
jsonl` in its own process session, so TF's C++ logging cannot draw over the screen, a crash in
TF or CUDA cannot take the UI down, the terminal's Ctrl-C does not reach the child, and cancel
is a real SIGINT (the engine saves what it has and exits with 130). See docs/protocol.md.

`EngineClient` is the service the App receives in `__init__`; tests pass a fake with the same
methods (`start`, `data_summary`, `report`, `stop_all`).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tui.i18n import _

if TYPE_CHECKING:  # the records load with the first event, not before the first frame
    from engine.records import Event


# How many lines of the engine's stderr (TF's log noise, tracebacks) are kept for the
# "engine died" message.
STDERR_TAIL = 60

# Exit codes of the engine CLI (docs/protocol.md).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


class EngineCommandError(Exception):
    """An engine command failed; `str()` is its one-line reason, `tail` its last stderr lines."""

    def __init__(self, message: str, tail: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.tail = list(tail)


def setting_flag(name: str, value: Any) -> list[str]:
    """The CLI flag(s) for one ExperimentConfig field: `--learning-rate 0.001`, `--early-stopping yes`."""
    if value is None:
        return []
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [flag, "yes" if value else "no"]
    if isinstance(value, (list, tuple)):
        return [flag, ",".join(str(v) for v in value)]
    return [flag, str(value)]


@dataclass(frozen=True)
class RunRequest:
    """One queued training: an experiment and the settings to pass as flags."""

    experiment: str
    settings: dict[str, Any] = field(default_factory=dict)
    runs_dir: Path = Path("runs")
    title: str = ""
    gpu: str | None = None  # the GPU the engine is given (CUDA_VISIBLE_DEVICES); None: all

    def args(self) -> list[str]:
        """Arguments after `python -m engine`."""
        argv = ["run", self.experiment, "--events", "jsonl", "--runs-dir", str(self.runs_dir)]
        for name, value in self.settings.items():
            argv += setting_flag(name, value)
        return argv

    @property
    def label(self) -> str:
        data = self.settings.get("data")
        epochs = self.settings.get("epochs")
        bits = [self.experiment]
        if self.settings.get("backbone") and "backbone" in _uses(self.experiment):
            bits.append(str(self.settings["backbone"]))
        if data:
            bits.append(str(data))
        if epochs:
            bits.append(f"{epochs} ep")
        return " · ".join(bits)


def _uses(experiment: str) -> tuple[str, ...]:
    """The settings an experiment reads (its registry entry), () for an unknown name."""
    from engine.experiments import EXPERIMENTS

    return EXPERIMENTS.get(experiment).uses if experiment in EXPERIMENTS else ()


class EngineJob(Protocol):
    """A running engine process, as the app sees it."""

    request: RunRequest

    def events(self) -> AsyncIterator[Event]:
        """The engine's events, typed, in order, until stdout closes."""
        ...

    def cancel(self) -> None:
        """Ask the engine to stop at the next batch and keep what it trained (SIGINT)."""
        ...

    async def wait(self) -> int:
        """Wait for the process to end; its exit code."""
        ...

    async def stop(self, timeout: float = 2.0) -> None:
        """Make sure the process is gone: SIGINT, then SIGTERM, then SIGKILL."""
        ...

    def stderr_tail(self) -> list[str]:
        """The last lines the process wrote to stderr."""
        ...

    @property
    def pid(self) -> int | None: ...


# Every live child, so an interpreter exit (even after an unexpected crash of the app) kills them.
_LIVE: set[asyncio.subprocess.Process] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class ProcessJob:
    """An `engine run` child process whose stdout is read as JSON lines."""

    def __init__(self, request: RunRequest, proc: asyncio.subprocess.Process) -> None:
        self.request = request
        self._proc = proc
        self._tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._stderr_task = asyncio.create_task(self._read_stderr())
        self.cancel_requested = False
        _LIVE.add(proc)

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        while True:
            line = await self._proc.stderr.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                self._tail.append(text)

    async def events(self) -> AsyncIterator[Event]:
        from engine.records import Log, RecordError, event_from_json

        assert self._proc.stdout is not None
        while True:
            try:
                line = await self._proc.stdout.readline()
            except ValueError:  # a line longer than the stream limit: skip it, keep reading
                continue
            if not line:
                return
            text = line.decode("utf-8", "replace").strip()
            if not text:
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                # The protocol says stdout is JSON only; show strays as log lines, never crash.
                yield Log(level="warning", message=text)
                continue
            try:
                yield event_from_json(data)
            except RecordError as exc:  # an engine of another version: say so, keep reading
                not_understood = _("engine event not understood: {error}").format(error=exc)
                yield Log(level="warning", message=not_understood)

    def _signal(self, sig: int) -> None:
        if self._proc.returncode is not None:
            return
        try:
            os.killpg(self._proc.pid, sig)  # the child leads its own session/process group
        except ProcessLookupError:
            pass
        except PermissionError:
            self._proc.send_signal(sig)

    def cancel(self) -> None:
        self.cancel_requested = True
        self._signal(signal.SIGINT)

    async def wait(self) -> int:
        code = await self._proc.wait()
        try:
            await asyncio.wait_for(self._stderr_task, timeout=1.0)
        except (TimeoutError, asyncio.CancelledError):
            pass
        _LIVE.discard(self._proc)
        return code

    async def stop(self, timeout: float = 2.0) -> None:
        for sig, wait_for in (
            (signal.SIGINT, timeout),
            (signal.SIGTERM, 1.0),
            (signal.SIGKILL, 1.0),
        ):
            if self._proc.returncode is not None:
                break
            self._signal(sig)
            try:
                await asyncio.wait_for(self._proc.wait(), timeout=wait_for)
            except TimeoutError:
                continue
        _LIVE.discard(self._proc)

    def stderr_tail(self) -> list[str]:
        return list(self._tail)


class EngineClient:
    """Starts engine commands as child processes (`python -m engine ...`).

    `command` is the prefix before the engine's arguments; tests point it at a stand-in script.
    """

    def __init__(
        self,
        command: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
        stop_timeout: float = 2.0,
    ) -> None:
        self.prefix = list(command) if command else [sys.executable, "-m", "engine"]
        self.env = env
        # On quit: seconds the engine gets after SIGINT to save what it trained, before SIGTERM.
        self.stop_timeout = stop_timeout
        self.jobs: list[ProcessJob] = []

    def command(self, args: list[str]) -> list[str]:
        return [*self.prefix, *args]

    def _env(self, gpu: str | None = None) -> dict[str, str]:
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["PYTHONUNBUFFERED"] = "1"
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        return env

    def gpu_ids(self) -> list[str]:
        """GPUs the queue can run jobs on, one job each: the `CNNLAB_GPUS` setting (ids, or a
        count), else `CUDA_VISIBLE_DEVICES`, else `nvidia-smi -L` — the GPUs `engine doctor`
        counts, found without starting TensorFlow. Empty on a machine without GPU."""
        env = os.environ if self.env is None else self.env
        setting = env.get("CNNLAB_GPUS", "").strip()
        if setting:
            if setting.isdigit():
                return [str(i) for i in range(int(setting))]
            return [g.strip() for g in setting.split(",") if g.strip()]
        visible = env.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
        import shutil
        import subprocess

        smi = shutil.which("nvidia-smi")
        if smi is None:
            return []
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]

    async def start(self, request: RunRequest) -> ProcessJob:
        """Start `engine run` for `request`; raise EngineCommandError if it cannot start."""
        argv = self.command(request.args())
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env(request.gpu),
                start_new_session=True,  # the terminal's Ctrl-C must not reach the engine
                limit=16 * 1024 * 1024,  # run_finished carries the whole metrics object
            )
        except OSError as exc:
            raise EngineCommandError(
                _("cannot start the engine ({program}): {error}").format(program=argv[0], error=exc)
            ) from None
        job = ProcessJob(request, proc)
        self.jobs = [j for j in self.jobs if j.returncode is None] + [job]
        return job

    async def _run_command(self, args: list[str]) -> tuple[str, list[str]]:
        """Run one short engine command to its end: (stdout, stderr lines); raise on failure."""
        argv = self.command(args)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env(),
                start_new_session=True,
            )
        except OSError as exc:
            raise EngineCommandError(
                _("cannot start the engine ({program}): {error}").format(program=argv[0], error=exc)
            ) from None
        _LIVE.add(proc)
        try:
            out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _LIVE.discard(proc)
        tail = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
        if proc.returncode != 0:
            raise EngineCommandError(error_line(tail, proc.returncode), tail[-STDERR_TAIL:])
        return out.decode("utf-8", "replace"), tail

    async def data_summary(self, source: str, samples: int, samples_file: Path) -> dict[str, Any]:
        """`engine data SOURCE --json --samples N --samples-file PATH`: counts, and samples in PATH."""
        out, tail = await self._run_command(
            [
                "data",
                source,
                "--json",
                "--samples",
                str(samples),
                "--samples-file",
                str(samples_file),
            ]
        )
        try:
            result: dict[str, Any] = json.loads(out)
        except json.JSONDecodeError:
            raise EngineCommandError(
                _("engine {command} printed something that is not JSON").format(command="data"),
                tail,
            ) from None
        return result

    async def report(
        self, runs: Sequence[str], output: Path, runs_dir: Path, lang: str | None = None
    ) -> Path:
        """`engine report RUN... -o DIR --runs-dir ROOT [--lang L]`: the report's file (or folder).

        The report draws with matplotlib and may read model files: a child process, like every
        engine command, so the TUI never loads either.
        """
        args = ["report", *runs, "-o", str(output), "--runs-dir", str(runs_dir)]
        if lang:
            args += ["--lang", lang]
        _, tail = await self._run_command(args)
        for line in reversed(tail):
            if "report written to " in line:
                return Path(line.split("report written to ", 1)[1].strip())
        return output

    async def stop_all(self, timeout: float | None = None) -> None:
        """Stop every engine process still running (the app calls this when it quits)."""
        grace = self.stop_timeout if timeout is None else timeout
        await asyncio.gather(*(job.stop(grace) for job in self.jobs if job.returncode is None))
        self.jobs = []

    def running(self) -> list[ProcessJob]:
        return [job for job in self.jobs if job.returncode is None]


def error_line(tail: list[str], returncode: int | None) -> str:
    """The most useful one-line reason from a failed engine's stderr."""
    for line in reversed(tail):
        if "engine: error:" in line:
            return line.split("engine: error:", 1)[1].strip()
    for line in reversed(tail):
        stripped = line.strip()
        if stripped and not stripped.startswith(("File ", "^", "~")):
            return stripped
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
            return _("the engine was killed by {signal}").format(signal=name)
        except ValueError:
            pass
    return _("the engine exited with code {code}").format(code=returncode)


def describe_exit(returncode: int | None) -> str:
    """Words for an engine exit code (docs/protocol.md)."""
    if returncode == EXIT_OK:
        return _("finished")
    if returncode == EXIT_CANCELLED:
        return _("cancelled")
    if returncode == EXIT_USAGE:
        return _("refused the settings")
    if returncode is not None and returncode < 0:
        try:
            return _("killed by {signal}").format(signal=signal.Signals(-returncode).name)
        except ValueError:
            return _("killed by signal {number}").format(number=-returncode)
    return _("failed (exit code {code})").format(code=returncode)
