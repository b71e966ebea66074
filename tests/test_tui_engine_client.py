"""The engine client against real child processes: a small stand-in script that speaks the
protocol (docs/protocol.md) — JSON lines, SIGINT → cancelled + 130, a crash with a traceback
on stderr, and one that ignores signals — so process handling is tested without TensorFlow."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FakeEngine  # noqa: F401 - keeps the conftest import style uniform

from engine.records import BatchProgress, Log, ModelInfo, RunFinished, RunStarted
from tui.engine_client import (
    EngineClient,
    EngineCommandError,
    RunRequest,
    describe_exit,
    error_line,
    setting_flag,
)

STAND_IN = textwrap.dedent(
    """
    import json, os, signal, sys, time

    def emit(**event):
        event.setdefault("time", time.time())
        sys.stdout.write(json.dumps(event) + "\\n")
        sys.stdout.flush()

    mode = os.environ.get("STAND_IN_MODE", "ok")
    args = sys.argv[1:]
    if args[0] == "data":
        if args[1] == "nope":
            print("engine: error: unknown data source 'nope'", file=sys.stderr)
            sys.exit(2)
        import numpy as np
        path = args[args.index("--samples-file") + 1]
        n = int(args[args.index("--samples") + 1])
        np.savez(path, images=np.zeros((2 * n, 32, 32, 3), np.uint8), labels=np.repeat(np.arange(2), n))
        print(json.dumps({"source": args[1], "classes": ["a", "b"], "train": 8, "val": 2, "test": 2,
                          "image_shape": [32, 32, 3], "counts": {"train": {"a": 4, "b": 4}}}))
        sys.exit(0)

    print("W tensorflow: some log noise", file=sys.stderr, flush=True)
    with open(os.environ["STAND_IN_PIDFILE"], "w") as fh:
        fh.write(str(os.getpid()))
    emit(event="run_started", run_id="r1", run_dir="runs/r1", experiment=args[1], parent=None,
         config={"argv": args}, model={"name": "simple_cnn"}, data=None)
    print("not json: a stray print", flush=True)
    if mode == "crash":
        print("Traceback (most recent call last):", file=sys.stderr)
        print("RuntimeError: CUDA error: an illegal memory access", file=sys.stderr, flush=True)
        os.abort()
    cancelled = []
    if mode == "stubborn":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, lambda *_: cancelled.append(1))
    emit(event="phase_started", run_id="r1", phase="train", epochs=1, steps=100)
    steps = 100 if mode == "ok" else 500
    for step in range(1, steps + 1):
        if cancelled:
            emit(event="run_finished", run_id="r1", status="cancelled", metrics={}, wall_time=0.1)
            sys.exit(130)
        emit(event="batch_progress", run_id="r1", phase="train", epoch=1, epochs=1, step=step, steps=500,
             metrics={"loss": 1.0, "accuracy": 0.5})
        time.sleep(0.005 if mode == "ok" else 0.05)
    emit(event="run_finished", run_id="r1", status="finished", metrics={"test_accuracy": 0.5}, wall_time=1.0)
    """
)


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[EngineClient, Path]:
    script = tmp_path / "stand_in_engine.py"
    script.write_text(STAND_IN, encoding="utf-8")
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("STAND_IN_PIDFILE", str(pidfile))
    return EngineClient(command=[sys.executable, str(script)]), pidfile


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_settings_become_the_engines_flags() -> None:
    assert setting_flag("learning_rate", 0.001) == ["--learning-rate", "0.001"]
    assert setting_flag("early_stopping", False) == ["--early-stopping", "no"]
    assert setting_flag("backbones", ["ResNet50", "VGG16"]) == ["--backbones", "ResNet50,VGG16"]
    assert setting_flag("mlp_units", [512, 256]) == ["--mlp-units", "512,256"]
    assert setting_flag("subset", None) == []
    request = RunRequest("transfer", {"weights": "none", "input_size": 32}, Path("/r"))
    assert request.args() == [
        "run", "transfer", "--events", "jsonl", "--runs-dir", "/r", "--weights", "none", "--input-size", "32",
    ]  # fmt: skip


def test_exit_words_and_error_lines() -> None:
    assert describe_exit(0) == "finished" and describe_exit(130) == "cancelled"
    assert describe_exit(-9) == "killed by SIGKILL"
    assert (
        error_line(["noise", "engine: error: weights file x.h5 does not exist"], 1)
        == "weights file x.h5 does not exist"
    )
    assert error_line(
        ["Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: bad"], 1
    ) == ("ValueError: bad")
    assert error_line([], -11) == "the engine was killed by SIGSEGV"


async def test_events_are_read_line_by_line(
    stand_in: tuple[EngineClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = stand_in
    monkeypatch.setenv("STAND_IN_MODE", "ok")
    job = await client.start(RunRequest("simple-cnn", {"epochs": 1}, Path("runs")))
    events = [event async for event in job.events()]
    kinds = [event.KIND for event in events]
    assert await job.wait() == 0
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("batch_progress") == 100
    # the stray non-JSON line became a warning, not a crash
    assert [e.message for e in events if isinstance(e, Log)] == ["not json: a stray print"]
    started = events[0]
    assert isinstance(started, RunStarted) and started.model == ModelInfo(name="simple_cnn")
    assert client.running() == []


async def test_cancel_is_sigint_and_the_engine_exits_130(
    stand_in: tuple[EngineClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = stand_in
    monkeypatch.setenv("STAND_IN_MODE", "slow")
    job = await client.start(RunRequest("simple-cnn", {}, Path("runs")))
    events = []
    async for event in job.events():
        events.append(event)
        if isinstance(event, BatchProgress) and event.step == 3:
            job.cancel()
    assert await job.wait() == 130
    last = events[-1]
    assert isinstance(last, RunFinished) and last.status == "cancelled"


async def test_a_crash_keeps_the_last_lines_of_stderr(
    stand_in: tuple[EngineClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = stand_in
    monkeypatch.setenv("STAND_IN_MODE", "crash")
    job = await client.start(RunRequest("simple-cnn", {}, Path("runs")))
    [event async for event in job.events()]
    code = await job.wait()
    assert code < 0  # SIGABRT
    tail = job.stderr_tail()
    assert tail[0] == "W tensorflow: some log noise"
    assert error_line(tail, code) == "RuntimeError: CUDA error: an illegal memory access"


async def test_stop_escalates_to_kill(
    stand_in: tuple[EngineClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, pidfile = stand_in
    monkeypatch.setenv("STAND_IN_MODE", "stubborn")
    job = await client.start(RunRequest("simple-cnn", {}, Path("runs")))
    events = job.events()
    await events.__anext__()
    pid = int(pidfile.read_text())
    assert alive(pid)
    await client.stop_all(timeout=0.3)
    assert job.returncode is not None and job.returncode < 0
    assert not alive(pid)


async def test_data_summary(stand_in: tuple[EngineClient, Path], tmp_path: Path) -> None:
    client, _ = stand_in
    info = await client.data_summary("synthetic", 3, tmp_path / "s.npz")
    assert info["classes"] == ["a", "b"] and (tmp_path / "s.npz").is_file()
    with pytest.raises(EngineCommandError, match="unknown data source 'nope'"):
        await client.data_summary("nope", 3, tmp_path / "t.npz")


async def test_quitting_the_app_leaves_no_engine_behind(
    stand_in: tuple[EngineClient, Path], runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.app import CnnLabApp

    client, pidfile = stand_in
    client.stop_timeout = 0.3
    monkeypatch.setenv("STAND_IN_MODE", "stubborn")  # ignores SIGINT and SIGTERM: needs SIGKILL
    app = CnnLabApp(engine=client, runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        for _ in range(100):
            await pilot.pause(0.05)
            if pidfile.exists() and pidfile.read_text():
                break
        pid = int(pidfile.read_text())
        assert alive(pid)
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause(0.2)
    await asyncio.sleep(0)
    assert not alive(pid)


async def test_the_app_survives_a_real_engine_crash(
    stand_in: tuple[EngineClient, Path], runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.widgets import RichLog

    from tui.app import CnnLabApp
    from tui.screens.experiments import ExperimentsScreen

    client, _ = stand_in
    monkeypatch.setenv("STAND_IN_MODE", "crash")  # prints a traceback on stderr, then aborts
    app = CnnLabApp(engine=client, runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        await pilot.press("ctrl+s")
        for _ in range(200):
            await pilot.pause(0.05)
            if screen.done:
                break
        assert screen.done and screen.done[-1][0].startswith("✗")
        log = screen.query_one("#live-log", RichLog)
        text = "\n".join("".join(seg.text for seg in strip) for strip in log.lines)
        assert "the engine stopped: RuntimeError: CUDA error: an illegal memory access" in text
        assert "W tensorflow: some log noise" in text  # the last lines of its stderr
        assert any("SIGABRT" in (n.title or "") for n in app._notifications)
        await pilot.press("2")  # and the app keeps working
        await pilot.pause()
        assert type(app.screen).__name__ == "RunsScreen"
