"""One child run of a parent, trained in its own process: `python -m engine.scale.child JOB`.

The parent (engine.scale.parallel, or a Ray task) creates the child's run folder, then starts
this entry with a `ChildJob` as JSON. The child trains into that folder exactly as the
in-process parent would (`train_one`), writes its events as JSON lines on stdout for the parent
to re-emit, stops cleanly on SIGINT (saving what it trained), and exits at once if its parent
process disappears (the parent then records the child as failed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Exit codes, as `engine run`: finished, failed, cancelled.
EXIT_OK, EXIT_FAILED, EXIT_CANCELLED = 0, 1, 130


@dataclass
class ChildJob:
    """What a child process trains: its run folder (already created), experiment and settings."""

    run_dir: str
    experiment: str  # the registered experiment the child runs like (transfer)
    config: dict[str, Any]
    placement: dict[str, Any] = field(default_factory=dict)  # engine.records.Placement fields

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ChildJob:
        return cls(**json.loads(text))


def command(job: ChildJob) -> list[str]:
    """The command line that trains `job` in a new process of this Python."""
    return [sys.executable, "-m", "engine.scale.child", job.to_json()]


def _exit_with_parent(parent_pid: int) -> None:
    """Leave at once when the parent dies: nobody would re-emit our events or record our end."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(EXIT_FAILED)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def train_child(job: ChildJob) -> int:
    """Train `job` in this process, events as JSON lines on stdout; return the exit code."""
    from engine.config import ExperimentConfig
    from engine.events import JsonlSink, Reporter
    from engine.experiments import get_experiment
    from engine.records import Placement
    from engine.runs import Run
    from engine.tfquiet import load_tensorflow
    from engine.training.runners import train_in

    sink = JsonlSink()
    reporter = Reporter(sink)
    reporter.cancel.install_sigint()
    load_tensorflow()
    run = Run.load(Path(job.run_dir))
    placement = Placement.from_json(
        {**job.placement, "host": socket.gethostname(), "pid": os.getpid()}
    )
    run.update(pid=os.getpid(), placement=placement)
    config = ExperimentConfig.from_dict(job.config)
    spec = get_experiment(job.experiment)
    try:
        train_in(run, spec, config, reporter)
    except Exception:  # recorded in run.json (and error.log) and sent as an `error` event
        return EXIT_FAILED
    finally:
        sink.close()
    return EXIT_CANCELLED if reporter.cancel.cancelled else EXIT_OK


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m engine.scale.child JOB_JSON\n")
        return 2
    _exit_with_parent(os.getppid())
    return train_child(ChildJob.from_json(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
