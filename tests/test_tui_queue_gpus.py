"""The TUI queue runs one job per GPU at once (one without a GPU), each given its GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import FakeEngine, settle, training_events

from tui.app import CnnLabApp
from tui.engine_client import EngineClient, RunRequest
from tui.screens.experiments import ExperimentsScreen


class TwoGpuEngine(FakeEngine):
    def gpu_ids(self) -> list[str]:
        return ["0", "1"]


def _screen(app: CnnLabApp) -> ExperimentsScreen:
    screen = app.screen
    assert isinstance(screen, ExperimentsScreen)
    return screen


async def test_two_gpus_run_two_jobs_at_once_then_the_third(runs_root: Path) -> None:
    engine = TwoGpuEngine(
        (training_events("run-a", pause_after=1), 0, []),
        (training_events("run-b", experiment="mlp", pause_after=1), 0, []),
        (training_events("run-c", pause_after=1), 0, []),
    )
    app = CnnLabApp(engine=engine, runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = _screen(app)
        assert s.slots == 2
        for name in ("simple-cnn", "mlp", "simple-cnn"):
            s.select_experiment(name)
            await pilot.pause()
            await pilot.press("ctrl+s")
            await pilot.pause(0.1)
        await settle(pilot, lambda: len(engine.requests) == 2)
        assert sorted(r.gpu for r in engine.requests) == ["0", "1"]  # one job per GPU
        assert [r.experiment for r in s.pending] == ["simple-cnn"]  # the third waits
        ids = [s.queue_list.get_option_at_index(i).id for i in range(s.queue_list.option_count)]
        assert ids[:3] == ["current", "current-1", "pending-0"]
        engine.jobs[0].resume()
        await settle(pilot, lambda: len(engine.requests) == 3)
        assert engine.requests[2].gpu == engine.requests[0].gpu  # the freed GPU
        s.action_cancel()  # cancels every running job
        await settle(pilot, lambda: all(j.returncode is not None for j in engine.jobs))
        assert all(j.cancel_requested for j in engine.jobs[1:])
        await settle(pilot, lambda: len(s.done) == 3 and not s.running)
        assert s.current is None


def test_gpu_ids_from_the_setting_or_cuda_visible_devices() -> None:
    assert EngineClient(env={"CNNLAB_GPUS": "3"}).gpu_ids() == ["0", "1", "2"]
    assert EngineClient(env={"CNNLAB_GPUS": "2,5"}).gpu_ids() == ["2", "5"]
    assert EngineClient(env={"CUDA_VISIBLE_DEVICES": "1,3"}).gpu_ids() == ["1", "3"]
    assert EngineClient(env={"CUDA_VISIBLE_DEVICES": ""}).gpu_ids() == []
    env: dict[str, Any] = EngineClient()._env("1")
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert RunRequest(experiment="mlp").gpu is None
