"""Run folders: creation, listing, atomic writes, stale detection."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.errors import RunError
from engine.runs import RunStore, atomic_path, write_json_atomic


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
