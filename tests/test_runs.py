"""Run folders: creation, listing, atomic writes, stale detection; typed records and events."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.errors import RunError
from engine.events import ListSink, Reporter
from engine.records import (
    EVENT_TYPES,
    Artifact,
    ChildPlan,
    Metrics,
    ModelInfo,
    Params,
    RecordError,
    RunFinished,
    RunRecord,
    RunStarted,
    event_from_json,
)
from engine.runs import RunStore, atomic_path, transfer_ranking, write_json_atomic


def test_create_open_list_delete(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    a = store.create("simple-cnn", title="A", config={"epochs": 1})
    b = store.create("mlp", title="B")
    assert (a.path / "run.json").is_file()
    assert store.open(a.id).record["title"] == "A"
    assert store.open(a.path).id == a.id
    assert {r.id for r in store.list()} == {a.id, b.id}
    assert store.list()[0].record["created"] >= store.list()[-1].record["created"]
    store.delete(b.id)
    assert [r.id for r in store.list()] == [a.id]
    with pytest.raises(RunError, match="no run"):
        store.open("nope")


def test_unreadable_run_json_is_skipped_in_lists_and_named_when_opened(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    good = store.create("mlp")
    bad = tmp_path / "20200101-000000-mlp-dead"
    bad.mkdir()
    (bad / "run.json").write_text("{ half a reco")
    assert [r.id for r in store.list()] == [good.id]
    with pytest.raises(RunError, match="not valid JSON"):
        store.open(bad)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    write_json_atomic(target, {"status": "finished"})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"status": object()})  # not JSON-able: fails mid-write
    assert json.loads(target.read_text()) == {"status": "finished"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temp file left behind


def test_atomic_path_keeps_the_suffix_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".keras" and tmp.parent == tmp_path
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_stale_running_run_is_detected(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.create("mlp")
    assert not run.is_stale()  # our own pid is alive
    run.update(pid=2**22 + 12345)  # no such process
    assert store.open(run.id).is_stale()
    run.update(status="finished")
    assert not run.is_stale()


def test_runs_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_RUNS", str(tmp_path / "r"))
    assert RunStore().root == tmp_path / "r"
    assert os.environ["CNNLAB_RUNS"].endswith("r")


# ---------------------------------------------------------------------------- typed records
FIXTURES = Path(__file__).parent / "fixtures" / "schema1"


@pytest.mark.parametrize("name", ["simple-cnn", "transfer-child", "preprocessing"])
def test_schema_1_run_json_written_by_the_previous_engine_still_loads(
    name: str, tmp_path: Path
) -> None:
    """Files written by cnnlab before schema 2 (frozen in tests/fixtures/schema1) load, read
    the same, and are rewritten as schema 2 with nothing lost."""
    raw = json.loads((FIXTURES / f"{name}.run.json").read_text())
    assert raw["schema"] == 1 and "plan" not in raw
    record = RunRecord.from_json(raw)
    assert record.schema == 2 and record.plan == [] and record.extra == {}
    assert {k: v for k, v in record.to_json().items() if k not in ("schema", "plan")} == {
        k: v for k, v in raw.items() if k != "schema"
    }
    assert record.status == "finished" and record.environment is not None
    if name == "preprocessing":
        assert record.is_parent and record.model is None and record.random_init
        (row,) = record.preprocessing_rows
        assert row.backbone == "MobileNetV2" and row.wrong_run_id in record.children
        assert record.compare_rows == []
    else:
        assert not record.is_parent and record.model is not None and record.data is not None
        assert record.metrics is not None and record.metrics.epochs_run == 1
        assert record.metrics.confusion_matrix is not None
        assert sum(map(sum, record.metrics.confusion_matrix)) == record.data.test
    if name == "simple-cnn":
        assert record.model is not None and record.model.label == "simple_cnn"
        onnx = record.onnx
        assert onnx is not None and onnx.exports[0].parity is not None
        assert onnx.exports[0].parity.passed and onnx.evals[0].provider.primary == "cpu"
        assert "per_class_accuracy" in onnx.evals[0].extra  # metric keys are kept as they are
    if name == "transfer-child":
        assert record.model is not None and record.model.label == "MobileNetV2"
        assert record.model.random_init and record.model.batchnorm_calibrated == 100
        assert record.parent is not None and record.phases[0].test_accuracy is not None
    # Through RunStore: the folder is read the same way, and saving writes schema 2.
    folder = tmp_path / raw["id"]
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(raw))
    run = RunStore(tmp_path).open(raw["id"])
    assert run.info == record and run.status == "finished"
    run.update(title="renamed")
    again = json.loads((folder / "run.json").read_text())
    assert again["schema"] == 2 and again["title"] == "renamed" and again["plan"] == []


def test_unknown_keys_are_kept_and_wrong_types_are_named() -> None:
    raw = json.loads((FIXTURES / "simple-cnn.run.json").read_text())
    newer = {**raw, "comment": "from a newer cnnlab", "model": {**raw["model"], "dropout": 0.5}}
    record = RunRecord.from_json(newer)
    assert record.extra == {"comment": "from a newer cnnlab"}
    assert record.model is not None and record.model.extra == {"dropout": 0.5}
    assert record.to_json()["model"]["dropout"] == 0.5 and record.to_json()["comment"]
    for bad, reason in (
        ({**raw, "metrics": {**raw["metrics"], "test_accuracy": "high"}}, "metrics.test_accuracy"),
        ({**raw, "history": {"epoch": 1}}, "history: expected a list"),
        ({**raw, "model": {**raw["model"], "random_init": "no"}}, "model.random_init"),
        ({**raw, "params": {**raw["params"], "total": True}}, "params.total: expected int"),
        ({k: v for k, v in raw.items() if k != "id"}, "missing id"),
        ({**raw, "schema": 9}, "schema 9 is newer"),
        ([raw], "expected an object"),
    ):
        with pytest.raises(RecordError, match=reason):
            RunRecord.from_json(bad)
    assert issubclass(RecordError, RunError)


def test_a_corrupt_run_is_skipped_in_lists_and_named_when_opened(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    good = store.create("mlp")
    bad = tmp_path / "20200101-000000-mlp-beef"
    bad.mkdir()
    (bad / "run.json").write_text(json.dumps({**good.record, "id": bad.name, "children": "x"}))
    assert [r.id for r in store.list()] == [good.id]
    with pytest.raises(RecordError, match="children: expected a list"):
        store.open(bad)


def test_events_round_trip_and_refuse_what_they_do_not_know() -> None:
    started = RunStarted(
        time=1.5,
        run_id="p",
        run_dir="runs/p",
        experiment="compare",
        plan=[ChildPlan(backbone="VGG16", preprocessing="auto", title="VGG16 (own preprocessing)")],
    )
    line = json.loads(json.dumps(started.to_json()))
    assert line["event"] == "run_started" and line["schema"] == 2
    assert event_from_json(line) == started and started.is_parent
    assert set(EVENT_TYPES) == {
        "run_started",
        "phase_started",
        "batch_progress",
        "epoch_end",
        "log",
        "artifact",
        "run_finished",
        "error",
    }
    with pytest.raises(RecordError, match="unknown kind 'hello'"):
        event_from_json({"event": "hello"})
    with pytest.raises(RecordError, match="run_started.model"):
        event_from_json({**line, "model": "simple_cnn"})  # schema 1 sent a string
    with pytest.raises(RecordError, match="epoch_end: missing"):
        event_from_json({"event": "epoch_end", "phase": "train"})


def test_the_reporter_checks_events_before_they_leave_the_engine() -> None:
    sink = ListSink()
    report = Reporter(sink)
    report("artifact", "r1", kind="model", path="runs/r1/model.keras")
    report("run_finished", "r1", status="finished", metrics={"test_accuracy": 0.5}, wall_time=1)
    (artifact, finished) = sink.events
    assert isinstance(artifact, Artifact) and artifact.kind == "model" and artifact.time
    assert isinstance(finished, RunFinished) and finished.metrics == Metrics(test_accuracy=0.5)
    with pytest.raises(RecordError, match="phase_started.epochs"):
        report("phase_started", "r1", phase="train", epochs="ten", steps=3)


def test_status_died_and_rankings_come_from_the_store(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    dead = store.create("mlp")
    dead.update(pid=2**22 + 12345)
    assert store.open(dead.id).status == "died" and store.open(dead.id).info.status == "running"
    rows = []
    for backbone, acc, total in (("VGG16", 0.5, 14_000_000), ("ResNet50", 0.7, 24_000_000)):
        run = store.create("transfer")
        run.update(
            status="finished",
            model=ModelInfo(name="transfer", backbone=backbone, weights="none", random_init=True),
            params=Params(total=total, trainable=5130, frozen=total - 5130),
            metrics=Metrics(test_accuracy=acc),
        )
        rows.append(run)
    ranking = transfer_ranking(store.scan())
    assert [(r.rank, r.backbone) for r in ranking] == [(1, "ResNet50"), (2, "VGG16")]
    assert ranking[0].efficiency == pytest.approx(0.7 / 24.0, abs=1e-6) and ranking[0].random_init
    parent = store.create("compare", plan=[])
    parent.update(children=[rows[0].id, "20200101-000000-transfer-gone"])
    assert [c.id for c in store.children(store.open(parent.id))] == [rows[0].id]
