"""`--parallel N`: a parent's children as N processes at once, one per GPU.

Each child is `python -m engine.scale.child` with `CUDA_VISIBLE_DEVICES` set to its GPU (slots
cycle over the GPUs when N is larger). A bounded pool of N threads (concurrent.futures) runs
them; each thread reads its child's JSON events and re-emits them through the parent's
Reporter, one line at a time, so interleaved children keep their own run ids. A cancel of the
parent sends one SIGINT to every running child (each stops at its next batch and saves what it
trained) and starts no new one. A child that fails or dies is recorded, with the reason, in its
own run.json and in the parent's `failures`; the other children carry on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.events import CancelToken
from engine.records import Event, event_from_json
from engine.scale.child import EXIT_CANCELLED, EXIT_OK, ChildJob, command

# How often a waiting thread looks at the cancel token.
POLL_SECONDS = 0.2


@dataclass
class ChildOutcome:
    """How a child process ended: its exit code and, when it failed, why (one line)."""

    returncode: int
    reason: str | None = None

    @property
    def failed(self) -> bool:
        return self.returncode not in (EXIT_OK, EXIT_CANCELLED)


def gpu_ids() -> list[str]:
    """The GPUs children can be given: `CUDA_VISIBLE_DEVICES` if set, else those TF sees."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    import tensorflow as tf

    return [str(i) for i in range(len(tf.config.list_physical_devices("GPU")))]


def resolve_parallel(text: str, gpus: int) -> int:
    """`auto` is one child per GPU (1 without a GPU); a number is taken as asked (≥ 1)."""
    if text == "auto":
        return max(1, gpus)
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--parallel: {text!r} is not a number of processes ≥ 1 or auto")
    return int(text)


def death_reason(returncode: int) -> str:
    """'killed by SIGKILL' for a signal, else 'exited with code N'."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


def stream_child(
    proc: subprocess.Popen[bytes],
    emit: Callable[[Event], None],
    cancel: CancelToken | Callable[[], bool],
) -> tuple[int, str | None]:
    """Re-emit `proc`'s event lines until it ends; SIGINT it once when `cancel` is set.

    Returns (exit code, the message of the last `error` event it sent, if any)."""
    cancelled = cancel if callable(cancel) else (lambda: cancel.cancelled)
    done = threading.Event()

    def forward_cancel() -> None:
        while not done.wait(POLL_SECONDS):
            if cancelled():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                return

    threading.Thread(target=forward_cancel, name="child-cancel", daemon=True).start()
    error: str | None = None
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            try:
                event = event_from_json(json.loads(raw))
            except Exception:  # not an event line (stdout is the child's, events only): skip
                continue
            if event.KIND == "error":
                error = getattr(event, "message", None)
            emit(event)
        returncode = proc.wait()
    finally:
        done.set()
    return returncode, error


def run_child_process(
    job: ChildJob,
    *,
    gpu: str | None,
    emit: Callable[[Event], None],
    cancel: CancelToken | Callable[[], bool],
) -> ChildOutcome:
    """Train `job` in a new process (on GPU `gpu`, if any) and wait for it."""
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    log_path = Path(job.run_dir) / "worker.log"  # the child's stderr: why it died, if it did
    with open(log_path, "wb") as log:
        # A session of its own: a Ctrl-C on the terminal reaches the parent only, which then
        # asks each child once (a second SIGINT would interrupt a child at once).
        proc = subprocess.Popen(
            command(job), stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
        )
        returncode, error = stream_child(proc, emit, cancel)
    if returncode in (EXIT_OK, EXIT_CANCELLED):
        return ChildOutcome(returncode)
    reason = error or f"child process {death_reason(returncode)}"
    if not error and (tail := _last_line(log_path)):
        reason += f": {tail}"
    return ChildOutcome(returncode, reason)


class Slots:
    """N numbered slots, each with the GPU its child gets (None on CPU): a bounded pool."""

    def __init__(self, count: int, gpus: list[str]) -> None:
        self._free: list[int] = list(range(count))
        self._gpus = gpus
        self._lock = threading.Condition()

    def take(self) -> int:
        with self._lock:
            while not self._free:
                self._lock.wait()
            return self._free.pop(0)

    def give_back(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)
            self._lock.notify()

    def gpu(self, slot: int) -> str | None:
        return self._gpus[slot % len(self._gpus)] if self._gpus else None


def wait_all(futures: Sequence[Future[Any]], timeout: float = 0.5) -> None:
    """Wait for concurrent futures in short steps, so the main thread still handles SIGINT."""
    pending = set(futures)
    while pending:
        _, pending = wait(pending, timeout=timeout)
