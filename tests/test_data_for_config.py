"""`dataset_for(config)`: one mapping from an experiment config to its data, so that export's
parity images and eval's test set come at the size the run was trained at (`--resize`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from engine.config import ExperimentConfig  # noqa: E402
from engine.data import config_of_run, dataset_for, load_dataset  # noqa: E402
from engine.runs import RunStore  # noqa: E402


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cnnlab-cache"))


def npz_40px(path: Path, n_train: int = 60, n_test: int = 20) -> Path:
    """Two classes of 40×40 images a tiny model tells apart (dark vs bright)."""
    rng = np.random.default_rng(0)
    y = np.arange(n_train) % 2
    yt = np.arange(n_test) % 2

    def images(labels: np.ndarray) -> np.ndarray:
        base = np.where(labels[:, None, None, None] == 1, 200, 40)
        noise = rng.integers(-30, 30, (len(labels), 40, 40, 3))
        return np.clip(base + noise, 0, 255).astype(np.uint8)

    np.savez(path, x_train=images(y), y_train=y, x_test=images(yt), y_test=yt)
    return path


def test_dataset_for_reads_every_data_setting_of_the_config() -> None:
    config = ExperimentConfig(data="synthetic:60", subset=40, resize=16, val_split=0.25, seed=3)
    got = dataset_for(config)
    want = load_dataset("synthetic:60", subset=40, resize=16, val_split=0.25, seed=3)
    assert got.image_shape == (16, 16, 3)
    for split in ("train", "val", "test"):
        assert np.array_equal(got.split(split)[0], want.split(split)[0])
        assert np.array_equal(got.split(split)[1], want.split(split)[1])
    other_seed = dataset_for(config.replace(seed=4))
    assert not np.array_equal(other_seed.y_train, got.y_train)


def test_config_of_run_keeps_the_trained_settings_and_applies_changes() -> None:
    record = {"config": {"data": "", "resize": 24, "seed": 5}, "data": {"source": "synthetic:30"}}
    config = config_of_run(record)
    assert (config.data, config.resize, config.seed, config.val_split) == (
        "synthetic:30",
        24,
        5,
        0.2,
    )
    changed = config_of_run(record, data="npz:/x.npz", subset=12)
    assert (changed.data, changed.resize, changed.subset) == ("npz:/x.npz", 24, 12)
    assert config_of_run({}).data == ExperimentConfig().data


@pytest.mark.slow
def test_a_run_trained_with_resize_exports_and_evaluates_at_the_trained_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cnnlab.cli import main
    from export.convert import load_run_images
    from export.evaluate import _load_test_data

    source = f"npz:{npz_40px(tmp_path / 'big.npz')}"
    assert load_dataset(source).image_shape == (40, 40, 3)
    root = tmp_path / "runs"
    args = ["run", "mlp", "--data", source, "--resize", "32", "--epochs", "1"]
    assert main([*args, "--mlp-units", "8", "--runs-dir", str(root)]) == 0
    (run,) = RunStore(root).list()
    assert run.record["data"]["image_shape"] == [32, 32, 3]

    images, classes = load_run_images(run)
    assert images.shape[1:] == (32, 32, 3) and classes == ["0", "1"]
    x, _, _ = _load_test_data(source, None, run)
    assert x.shape == (20, 32, 32, 3)

    capsys.readouterr()
    assert main(["export", run.id, "--runs-dir", str(root), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["parity"]["passed"] and printed["parity"]["n"] == 20
    onnx_path = run.path / printed["path"]
    assert main(["eval", str(onnx_path), "--runs-dir", str(root), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 20 and result["accuracy"] == result["keras_test_accuracy"]
