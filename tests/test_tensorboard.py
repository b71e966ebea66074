"""TensorBoard event files written by every run: read back with TensorFlow's own summary_iterator."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from engine.events import ListSink, Reporter
from engine.experiments import get_experiment
from engine.runs import RunStore
from engine.training import run_experiment

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))


def _run(name: str, tmp_path: Path, **settings: Any) -> Any:
    cfg = get_experiment(name).config(**{"data": "synthetic:easy", "subset": 300, **settings})
    return run_experiment(
        name, cfg, store=RunStore(tmp_path / "runs"), reporter=Reporter(ListSink())
    )


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from every event file in `folder`, sorted by step."""
    import tensorflow as tf

    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                out[value.tag].append((event.step, float(tf.make_ndarray(value.tensor))))
    return {tag: sorted(points) for tag, points in out.items()}


def test_a_run_writes_epoch_and_batch_scalars(tmp_path: Path) -> None:
    run = _run("simple-cnn", tmp_path, epochs=2, early_stopping=False, batch_size=8)
    history = run.record["history"]
    train = scalars(run.path / "tensorboard" / "train" / "train")
    validation = scalars(run.path / "tensorboard" / "train" / "validation")
    assert [s for s, _ in train["epoch_loss"]] == [1, 2]
    assert [v for _, v in train["epoch_accuracy"]] == pytest.approx(
        [h["accuracy"] for h in history], abs=1e-5
    )
    assert [v for _, v in validation["epoch_loss"]] == pytest.approx(
        [h["val_loss"] for h in history], abs=1e-5
    )
    assert [v for _, v in validation["epoch_accuracy"]] == pytest.approx(
        [h["val_accuracy"] for h in history], abs=1e-5
    )
    assert [v for _, v in train["epoch_learning_rate"]] == pytest.approx([1e-3, 1e-3])
    # 240 training images in batches of 8: 30 steps an epoch, a batch point every 20 steps.
    assert [s for s, _ in train["batch_loss"]] == [20, 50]
    assert len(train["batch_accuracy"]) == 2


def test_cached_feature_head_training_writes_epoch_scalars(tmp_path: Path) -> None:
    run = _run("transfer", tmp_path, weights="none", epochs=2, early_stopping=False, subset=150)
    phase = run.record["phases"][0]["name"]
    assert run.record["config"]["feature_cache"] is True
    train = scalars(run.path / "tensorboard" / phase / "train")
    validation = scalars(run.path / "tensorboard" / phase / "validation")
    assert [s for s, _ in train["epoch_loss"]] == [1, 2]
    assert [s for s, _ in validation["epoch_accuracy"]] == [1, 2]


def test_tensorboard_no_writes_no_event_files(tmp_path: Path) -> None:
    run = _run("mlp", tmp_path, epochs=1, tensorboard=False)
    assert run.record["status"] == "finished"
    assert not (run.path / "tensorboard").exists()


def test_no_tensorboard_flag_is_tensorboard_no() -> None:
    from cnnlab.cli import build_parser
    from engine.commands import config_from_args

    args = build_parser().parse_args(["run", "mlp", "--no-tensorboard"])
    assert config_from_args("mlp", args).tensorboard is False
    args = build_parser().parse_args(["run", "mlp"])
    assert config_from_args("mlp", args).tensorboard is True
