"""`--executor ray`: a tiny compare through a local Ray instance (2 CPUs), folders shipped back
or written on shared storage, live events, a worker that dies, an unreachable cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.events import ListSink, Reporter
from engine.experiments import get_experiment
from engine.runs import RunStore
from engine.scale.ray_executor import SHIP_BACK_ENV
from engine.training import run_experiment

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]


def test_unreachable_address_is_one_line_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "run", "compare", "--data", "synthetic:easy"]
        + ["--executor", "ray", "--address", "127.0.0.1:9", "--runs-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot reach the Ray cluster at 127.0.0.1:9" in lines[0]
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray instance with 2 CPUs; workers inherit the feature cache set here."""
    cache = tmp_path_factory.mktemp("ray-cache")
    saved = os.environ.get("CNNLAB_CACHE")
    os.environ["CNNLAB_CACHE"] = str(cache)
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield cache
    ray.shutdown()
    if saved is None:
        os.environ.pop("CNNLAB_CACHE", None)
    else:
        os.environ["CNNLAB_CACHE"] = saved


def _compare(runs: Path, sink: ListSink) -> object:
    cfg = get_experiment("compare").config(
        data="synthetic:easy",
        subset=200,
        epochs=1,
        weights="none",
        # VGG16: at 32×32 the quickest second backbone to build and trace (EfficientNetB0 took
        # about 1.6× as long, the longer of the two children).
        backbones=["MobileNetV2", "VGG16"],
        executor="ray",
    )
    return run_experiment(
        "compare", cfg, store=RunStore(runs), reporter=Reporter(sink, batch_interval=0.0)
    )


@pytest.mark.slow
def test_tiny_compare_through_ray_ships_run_folders_back(
    local_ray: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHIP_BACK_ENV, "1")  # as if the workers could not see this runs folder
    sink = ListSink()
    parent = _compare(tmp_path / "runs", sink)
    record = json.loads((parent.path / "run.json").read_text())  # type: ignore[attr-defined]
    assert record["status"] == "finished" and record["failures"] == []
    assert [row["backbone"] for row in record["table"]] != []
    assert sorted(row["backbone"] for row in record["table"]) == ["MobileNetV2", "VGG16"]
    for child_id in record["children"]:
        folder = tmp_path / "runs" / child_id
        child = json.loads((folder / "run.json").read_text())
        assert child["status"] == "finished" and child["parent"] == record["id"]
        assert child["placement"]["executor"] == "ray"
        assert child["placement"]["shared_storage"] is False
        assert (folder / "model.keras").is_file() and (folder / "summary.json").is_file()
    # the children's events reached the client, with head paths
    finished = {e.run_id for e in sink.events if e.KIND == "run_finished"}
    assert finished == {*record["children"], record["id"]}
    epochs = {e.run_id for e in sink.events if e.KIND == "epoch_end"}
    assert epochs == set(record["children"])
    for e in sink.events:
        if e.KIND == "artifact" and getattr(e, "kind", "") == "model":
            assert str(tmp_path / "runs") in getattr(e, "path", "")


@pytest.mark.slow
def test_a_worker_that_dies_mid_child_is_recorded(local_ray: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    sink = ListSink()
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(_compare(runs, sink)))
    thread.start()
    victim = None
    deadline = time.monotonic() + 240
    while victim is None and thread.is_alive():
        assert time.monotonic() < deadline
        time.sleep(0.2)
        for path in runs.glob("*transfer*/run.json"):
            try:
                placement = json.loads(path.read_text()).get("placement") or {}
            except ValueError:
                continue
            if "worker_pid" in placement:
                victim = (path.parent.name, placement["worker_pid"])
                os.kill(placement["worker_pid"], signal.SIGKILL)
                break
    thread.join(timeout=300)
    assert victim is not None and result
    record = json.loads((runs / result[0].id / "run.json").read_text())  # type: ignore[attr-defined]
    (failure,) = record["failures"]
    assert failure["run_id"] == victim[0] and failure["reason"]
    dead = json.loads((runs / victim[0] / "run.json").read_text())
    assert dead["status"] == "failed" and dead["error"] == failure["reason"]
    others = [c for c in record["children"] if c != victim[0]]
    (other,) = others
    survivor = json.loads((runs / other / "run.json").read_text())
    assert survivor["status"] == "finished"
    assert survivor["placement"]["shared_storage"] is True  # same machine: the folder is shared
    assert any(e.KIND == "error" and e.run_id == victim[0] for e in sink.events)
