"""`--parallel N`: children as processes at once; interleaved events, cancel, a child that dies."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.errors import UsageError
from engine.records import event_from_json
from engine.scale.parallel import Slots, death_reason, resolve_parallel

ROOT = Path(__file__).resolve().parents[1]


def test_resolve_parallel() -> None:
    assert resolve_parallel("auto", 0) == 1  # CPU: one at a time
    assert resolve_parallel("auto", 4) == 4  # one per GPU
    assert resolve_parallel("3", 0) == 3  # asked for explicitly: CPU processes
    for bad in ("0", "-1", "two"):
        with pytest.raises(UsageError, match="parallel"):
            resolve_parallel(bad, 2)


def test_slots_cycle_over_gpus_and_bound_the_pool() -> None:
    slots = Slots(3, ["0", "1"])
    taken = [slots.take() for _ in range(3)]
    assert [slots.gpu(s) for s in taken] == ["0", "1", "0"]
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(slots.take()))
    waiter.start()
    time.sleep(0.2)
    assert not got  # all three slots busy: the fourth child waits
    slots.give_back(taken[1])
    waiter.join(timeout=5)
    assert got == [taken[1]]
    assert Slots(2, []).gpu(1) is None
    assert death_reason(-signal.SIGKILL) == "killed by SIGKILL"
    assert death_reason(3) == "exited with code 3"


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CNNLAB_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}


def test_parallel_zero_is_one_line_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "run", "compare", "--data", "synthetic:easy"]
        + ["--parallel", "0", "--runs-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=120,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "parallel: '0'" in lines[0], done.stderr
    assert not (tmp_path / "runs").exists()


def _wait_for(events: queue.Queue[dict[str, Any]], seen: list[dict[str, Any]], test: Any) -> None:
    deadline = time.monotonic() + 240
    while not test(seen):
        assert time.monotonic() < deadline, [e["event"] for e in seen][-20:]
        try:
            seen.append(events.get(timeout=1))
        except queue.Empty:
            pass


@pytest.mark.slow
def test_children_in_parallel_one_dies_then_the_parent_is_cancelled(tmp_path: Path) -> None:
    """Two children at once; one is killed (recorded as failed, with why); then Ctrl-C on the
    parent cancels the other, which keeps what it trained."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "preprocessing", "--data", "synthetic:easy"]
        + ["--subset", "200", "--backbones", "MobileNetV2", "--weights", "none"]
        + ["--epochs", "1000", "--early-stopping", "no", "--parallel", "2", "--events", "jsonl"]
        + ["--runs-dir", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(tmp_path),
    )
    events: queue.Queue[dict[str, Any]] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.put(json.loads(line))  # every line is one whole event, even interleaved

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[dict[str, Any]] = []
    try:
        _wait_for(
            events, seen, lambda s: len({e["run_id"] for e in s if e["event"] == "epoch_end"}) == 2
        )
        parent_id = seen[0]["run_id"]
        children = {
            e["run_id"]: Path(e["run_dir"])
            for e in seen
            if e["event"] == "run_started" and e["run_id"] != parent_id
        }
        assert len(children) == 2
        victim, survivor = sorted(children)
        victim_pid = json.loads((children[victim] / "run.json").read_text())["placement"]["pid"]
        os.kill(victim_pid, signal.SIGKILL)
        _wait_for(
            events, seen, lambda s: any(e["event"] == "error" and e["run_id"] == victim for e in s)
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=240) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    while not events.empty():
        seen.append(events.get())
    for e in seen:
        event_from_json(e)  # the parent re-emitted whole, typed events
    parent = json.loads((tmp_path / "runs" / parent_id / "run.json").read_text())
    assert parent["status"] == "cancelled"
    assert sorted(parent["children"]) == sorted(children)
    (failure,) = parent["failures"]
    assert failure["run_id"] == victim and "killed by SIGKILL" in failure["reason"]
    dead = json.loads((children[victim] / "run.json").read_text())
    assert dead["status"] == "failed" and "killed by SIGKILL" in dead["error"]
    kept = json.loads((children[survivor] / "run.json").read_text())
    assert kept["status"] == "cancelled" and kept["history"]
    assert (children[survivor] / "model.keras").is_file()  # what it trained is kept
    assert kept["placement"]["executor"] == "process"
    finished = [e for e in seen if e["event"] == "run_finished"]
    assert {e["run_id"]: e["status"] for e in finished} == {
        survivor: "cancelled",
        parent_id: "cancelled",
    }
    # the table has the surviving child's row (and the dead one's, without accuracy)
    (row,) = parent["table"]
    assert {row["wrong_run_id"], row["right_run_id"]} == set(children)
