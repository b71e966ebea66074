"""`--strategy`: device choice without TensorFlow, and the real MirroredStrategy path on a CPU
split into two logical devices (in a subprocess: the split must precede TensorFlow's start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import UsageError
from engine.scale.strategy import choose

CPU1 = {"GPU": [], "CPU": ["/device:CPU:0"]}
CPU2 = {"GPU": [], "CPU": ["/device:CPU:0", "/device:CPU:1"]}
GPU2 = {"GPU": ["/device:GPU:0", "/device:GPU:1"], "CPU": ["/device:CPU:0"]}


def test_choose_strategy() -> None:
    assert choose("auto", CPU1) == ("none", ["/device:CPU:0"])
    assert choose("auto", GPU2) == ("mirrored", GPU2["GPU"])
    assert choose("none", GPU2) == ("none", ["/device:GPU:0"])
    assert choose("mirrored", GPU2) == ("mirrored", GPU2["GPU"])
    assert choose("mirrored", CPU2) == ("mirrored", CPU2["CPU"])
    with pytest.raises(UsageError, match="no GPU"):
        choose("mirrored", CPU1)


def _engine(tmp_path: Path, *args: str, logical_cpus: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CNNLAB_CACHE": str(tmp_path / "cache"),
        "CNNLAB_LOGICAL_CPUS": logical_cpus,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    return subprocess.run(
        [sys.executable, "-m", "engine", "run", *args, "--runs-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_mirrored_without_devices_is_one_line_exit_2(tmp_path: Path) -> None:
    done = _engine(tmp_path, "mlp", "--data", "synthetic:easy", "--strategy", "mirrored")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--strategy mirrored: no GPU" in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_trains_and_records_two_replicas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = ["--data", "synthetic:easy", "--subset", "200", "--epochs", "1", "--weights", "none"]
    common += ["--backbone", "MobileNetV2", "--input-size", "32", "--events", "jsonl"]
    done = _engine(tmp_path, "transfer", *common, "--strategy", "mirrored", logical_cpus="2")
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    (run_dir,) = [e["run_dir"] for e in events if e["event"] == "run_started"]
    record = json.loads((Path(run_dir) / "run.json").read_text())
    assert record["status"] == "finished"
    assert record["distribution"] == {
        "strategy": "mirrored",
        "replicas": 2,
        "devices": ["/device:CPU:0", "/device:CPU:1"],
    }
    # the same model as on one device: MobileNetV2 + GAP → Dense 10
    assert record["params"] == {"total": 2_270_794, "trainable": 12_810, "frozen": 2_257_984}
    assert record["history"] and record["history"][0]["phase"] == "frozen"
    assert 0.0 <= record["metrics"]["test_accuracy"] <= 1.0
    assert any("over 2 replicas" in e.get("message", "") for e in events if e["event"] == "log")
    # The feature cache key does not depend on the replicas: a one-device run reads it. (In
    # this process: one device needs no split before TensorFlow starts, and it saves a start.)
    from engine.events import ListSink, Reporter
    from engine.experiments import get_experiment
    from engine.records import Log
    from engine.runs import RunStore
    from engine.training import run_experiment

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    cfg = get_experiment("transfer").config(
        data="synthetic:easy", subset=200, epochs=1, weights="none", backbone="MobileNetV2"
    )
    sink = ListSink()
    again = run_experiment(
        "transfer", cfg, store=RunStore(tmp_path / "runs"), reporter=Reporter(sink)
    )
    assert again.status == "finished" and again.record["distribution"]["replicas"] == 1
    assert any(isinstance(e, Log) and "read from the cache" in e.message for e in sink.events)
