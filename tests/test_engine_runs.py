"""Experiments end to end through the engine's Python API, on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.events import ListSink, Reporter
from engine.experiments import get_experiment
from engine.records import (
    Artifact,
    BatchProgress,
    Event,
    Log,
    PhaseStarted,
    RunFinished,
    RunStarted,
)
from engine.runs import RunStore
from engine.training import run_experiment

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))


def _run(name: str, tmp_path: Path, sink: Any = None, **settings: Any) -> tuple[Any, ListSink]:
    sink = sink or ListSink()
    # The easy synthetic variant: these tests check the engine, not how hard the data is.
    cfg = get_experiment(name).config(**{"data": "synthetic:easy", "subset": 300, **settings})
    run = run_experiment(
        name, cfg, store=RunStore(tmp_path / "runs"), reporter=Reporter(sink, batch_interval=0.0)
    )
    return run, sink


def test_simple_cnn_run_writes_a_complete_readable_folder(tmp_path: Path) -> None:
    run, sink = _run("simple-cnn", tmp_path, epochs=2, early_stopping=False)
    rec = json.loads((run.path / "run.json").read_text())
    assert rec["status"] == "finished" and rec["error"] is None
    assert rec["params"] == {"total": 2_122_186, "trainable": 2_122_186, "frozen": 0}
    m = rec["metrics"]
    for key in (
        "train_accuracy",
        "val_accuracy",
        "test_accuracy",
        "train_loss",
        "val_loss",
        "test_loss",
        "overfit_gap",
        "epochs_run",
    ):
        assert m[key] is not None, key
    assert m["epochs_run"] == 2 and len(rec["history"]) == 2
    assert m["overfit_gap"] == pytest.approx(
        (m["train_accuracy"] - m["val_accuracy"]) * 100, abs=0.01
    )
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == rec["data"]["test"]
    assert m["test_accuracy"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-6)
    assert set(m["per_class_accuracy"]) == set(rec["data"]["classes"])
    assert rec["environment"]["tensorflow"] and rec["timings"]["wall"] > 0
    assert rec["model"]["preprocessing"] == "unit" and rec["model"]["random_init"] is False
    summary = json.loads((run.path / "summary.json").read_text())
    assert {"conv1", "dense1", "predictions"} <= {layer["name"] for layer in summary["layers"]}
    import keras

    model = keras.models.load_model(run.path / "model.keras")
    assert model.count_params() == 2_122_186
    assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")]

    kinds = sink.kinds()
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("epoch_end") == 2 and "batch_progress" in kinds and "phase_started" in kinds
    assert {e.kind for e in sink.events if isinstance(e, Artifact)} >= {
        "model",
        "summary",
        "run",
    }
    assert all(e.run_id == run.id for e in sink.events)
    (started,) = [e for e in sink.events if isinstance(e, RunStarted)]
    assert started.model is not None and started.model.name == "simple_cnn"
    assert started.data is not None and started.data.test == rec["data"]["test"]
    assert run.info.model == started.model and run.info.schema == 2


def test_synthetic_data_is_learnable_by_the_simple_cnn(tmp_path: Path) -> None:
    run, _ = _run("simple-cnn", tmp_path, subset=600, epochs=4, early_stopping=False)
    assert run.record["metrics"]["test_accuracy"] > 0.3  # chance is 0.1


def test_cached_features_train_the_same_model_as_end_to_end(tmp_path: Path) -> None:
    common = dict(weights="none", epochs=3, early_stopping=False, backbone="MobileNetV2")
    cached, sink = _run("transfer", tmp_path, feature_cache=True, **common)
    e2e, _ = _run("transfer", tmp_path, feature_cache=False, **common)
    a, b = cached.record["metrics"]["test_accuracy"], e2e.record["metrics"]["test_accuracy"]
    assert abs(a - b) <= 0.08, (a, b)
    assert cached.record["params"]["trainable"] == 12_810
    assert cached.record["model"]["random_init"] is True
    assert any(isinstance(e, PhaseStarted) and e.phase == "features" for e in sink.events)
    # The saved full model carries the head trained on features: its own test accuracy matches.
    import keras

    from engine.data import load_dataset
    from engine.preprocessing import get_preprocessing

    data = load_dataset("synthetic:easy", subset=300)
    model = keras.models.load_model(cached.path / "model.keras")
    probs = model.predict(get_preprocessing("mobilenet_v2").apply(data.x_test), verbose=0)
    assert float((probs.argmax(1) == data.y_test).mean()) == pytest.approx(a, abs=1e-6)
    # A second run with the same backbone, weights, preprocessing and data reads the cache.
    again, sink2 = _run("transfer", tmp_path, feature_cache=True, **common)
    assert any(isinstance(e, Log) and "read from the cache" in e.message for e in sink2.events)
    assert again.record["metrics"]["test_accuracy"] == pytest.approx(a, abs=0.02)


def test_finetune_unfreezes_the_last_ten_layers(tmp_path: Path) -> None:
    run, sink = _run("finetune", tmp_path, weights="none", epochs=1, finetune_epochs=1, subset=150)
    phases = run.record["phases"]
    assert [p["name"] for p in phases] == ["frozen", "finetune"]
    assert phases[0]["trainable"] == 12_810 and phases[1]["trainable"] == 745_290
    assert len(phases[1]["unfrozen_layers"]) == 10
    assert "predictions" in phases[1]["trainable_layers"]  # the head trains on
    assert (
        "Conv_1" in phases[1]["trainable_layers"] and "Conv_1" not in phases[0]["trainable_layers"]
    )
    assert [h["phase"] for h in run.record["history"]] == ["frozen", "finetune"]
    assert run.record["status"] == "finished"


def test_compare_ranks_children_and_preprocessing_pairs_them(tmp_path: Path) -> None:
    parent, sink = _run(
        "compare",
        tmp_path,
        weights="none",
        epochs=1,
        subset=120,
        backbones=["MobileNetV2", "VGG16"],  # VGG16: the quickest second backbone at 32×32
    )
    rows = parent.record["table"]
    assert [r["rank"] for r in rows] == [1, 2]
    assert {r["backbone"] for r in rows} == {"MobileNetV2", "VGG16"}
    accs = [r["test_accuracy"] for r in rows]
    assert accs == sorted(accs, reverse=True)
    for r in rows:
        assert r["efficiency"] == pytest.approx(r["test_accuracy"] / (r["params"] / 1e6), rel=1e-3)
        assert r["random_init"] is True
    store = RunStore(tmp_path / "runs")
    children = [store.open(c) for c in parent.record["children"]]
    assert all(c.record["parent"] == parent.id and c.status == "finished" for c in children)
    started = next(e for e in sink.events if isinstance(e, RunStarted) and e.run_id == parent.id)
    assert [p.backbone for p in started.plan] == ["MobileNetV2", "VGG16"]
    assert started.model is None and started.data is None and started.is_parent
    assert parent.info.plan == started.plan and parent.info.is_parent
    assert [r.backbone for r in parent.info.compare_rows] == [r["backbone"] for r in rows]
    assert {e.run_id for e in sink.events if isinstance(e, RunStarted)} == {
        parent.id,
        *parent.record["children"],
    }

    pre, _ = _run(
        "preprocessing", tmp_path, weights="none", epochs=1, subset=120, backbones=["MobileNetV2"]
    )
    (row,) = pre.record["table"]
    assert (
        row["backbone"] == "MobileNetV2" and row["before"] is not None and row["after"] is not None
    )
    wrong = store.open(row["wrong_run_id"])
    right = store.open(row["right_run_id"])
    assert wrong.record["model"]["preprocessing"] == "unit"
    assert right.record["model"]["preprocessing"] == "mobilenet_v2"


class _CancelAfterFirstBatch(ListSink):
    def __init__(self) -> None:
        super().__init__()
        self.reporter: Reporter | None = None

    def emit(self, event: Event) -> None:
        super().emit(event)
        if isinstance(event, BatchProgress) and event.phase == "train" and self.reporter:
            self.reporter.cancel.cancel()


def test_cancel_stops_saves_and_marks_cancelled(tmp_path: Path) -> None:
    sink = _CancelAfterFirstBatch()
    cfg = get_experiment("simple-cnn").config(data="synthetic:easy", subset=2000, epochs=20)
    rep = Reporter(sink, batch_interval=0.0)
    sink.reporter = rep
    run = run_experiment("simple-cnn", cfg, store=RunStore(tmp_path / "runs"), reporter=rep)
    assert run.status == "cancelled"
    assert run.record["metrics"]["epochs_run"] == 1
    assert (run.path / "model.keras").is_file() and (run.path / "summary.json").is_file()
    last = sink.events[-1]
    assert isinstance(last, RunFinished) and last.status == "cancelled"


def test_bad_data_fails_the_run_with_a_readable_record(tmp_path: Path) -> None:
    from engine.errors import DataError

    with pytest.raises(DataError):
        _run("simple-cnn", tmp_path, data="folder:/nonexistent/cifar")
    (run,) = RunStore(tmp_path / "runs").list()
    assert run.status == "failed" and "/nonexistent/cifar" in run.record["error"]


def test_a_real_engine_run_speaks_the_record_classes(tmp_path: Path) -> None:
    """`engine run --events jsonl` in its own process: every line parses into its event class
    and run.json into RunRecord, agreeing with each other."""
    import os
    import subprocess
    import sys

    from engine.records import EpochEnd, RunRecord, event_from_json

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CNNLAB_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "engine", "run", "simple-cnn", "--data", "synthetic:easy"]
        + ["--subset", "200", "--epochs", "1", "--events", "jsonl"]
        + ["--runs-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    events = [event_from_json(json.loads(line)) for line in done.stdout.splitlines()]
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert sum(isinstance(e, EpochEnd) for e in events) == 1
    started, finished = events[0], events[-1]
    (run,) = RunStore(tmp_path / "runs").list()
    raw = json.loads((run.path / "run.json").read_text())
    record = RunRecord.from_json(raw)
    assert raw["schema"] == 2 and record.extra == {} and record.to_json() == raw
    assert started.run_id == record.id and started.model == record.model
    assert started.data == record.data and started.plan == [] and not record.is_parent
    assert finished.metrics == record.metrics and finished.status == record.status == "finished"
    assert record.metrics is not None and record.metrics.epochs_run == 1
    assert [h.phase for h in record.history] == ["train"] and record.phases[0].name == "train"
