"""The reference check: published figures beside the model's own, with the reasons they differ.
One real Keras model (MobileNetV2, weights none, 224×224); the rest on hand-written tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cnnlab.cli import main
from engine.inspect.reference import detect_backbone, published, reference_check


def test_every_backbone_has_figures_with_sources() -> None:
    from engine.backbones import list_backbones

    data = published()
    assert sorted(data["backbones"]) == sorted(list_backbones())
    for name, figures in data["backbones"].items():
        assert figures["input_size"] == (300 if name == "EfficientNetB3" else 224)
        assert (
            figures["params_source"] in data["sources"]
            and figures["macs_source"] in data["sources"]
        )
        assert (
            0 < figures["top_params"] < figures["keras_params"]
            and figures["macs"] > figures["top_macs"]
        )


def _table(rows: list[dict[str, Any]], size: int, model: str = "model") -> dict[str, Any]:
    total = sum(r["params"] for r in rows)
    return {
        "model": model,
        "inputs": [{"name": "x", "shape": [None, size, size, 3]}],
        "layers": rows,
        "totals": {"total": total, "macs": sum(r.get("macs", 0) for r in rows)},
    }


def test_transfer_model_head_and_input_size_are_explained() -> None:
    rows = [
        {
            "name": "conv1",
            "type": "Conv2D",
            "params": 23_587_712 - 212,
            "trainable_params": 23_587_712 - 212,
            "macs": 80_000_000,
            "parent": "resnet50",
        },
        {
            "name": "bn",
            "type": "BatchNormalization",
            "params": 212,
            "trainable_params": 106,
            "macs": 0,
            "parent": "resnet50",
        },
        {
            "name": "dense",
            "type": "Dense",
            "params": 20_490,
            "trainable_params": 20_490,
            "macs": 20_480,
        },
    ]
    check = reference_check(_table(rows, 32))
    assert check is not None and check["backbone"] == "ResNet50"
    text = {r["cause"]: r["text"] for r in check["differences"]}
    assert "106 here, in 1 layers" in text["batchnorm"]
    assert "ResNet v1" in text["resnet_version"] and "v1.5" in text["resnet_version"]
    assert "23,587,712 (the same)" in text["head"] and "(dense) adds 20,490" in text["head"]
    assert "32×32" in text["input_size"] and "0.0204× the pixels" in text["input_size"]
    assert reference_check(_table(rows[2:], 32, model="simple_cnn")) is None


def test_mobilenetv2_at_224_matches_keras(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """weights none, 224×224, no top: the Keras count exactly, BatchNorm named."""
    from engine.backbones import get_backbone
    from engine.inspect import summarize_keras_model

    model = get_backbone("MobileNetV2").build(224, None)
    summary = summarize_keras_model(model)
    assert detect_backbone(summary) == "MobileNetV2"
    check = reference_check(summary)
    assert check is not None
    figures = check["published"]
    assert model.count_params() == check["model"]["params"]
    assert model.count_params() == figures["keras_params"] - figures["top_params"] == 2_257_984
    bn = next(r for r in check["differences"] if r["cause"] == "batchnorm")
    assert "BatchNormalization's moving mean and variance" in bn["text"]
    assert (
        f"{check['model']['batchnorm_stats']:,}" in bn["text"]
        and check["model"]["batchnorm_stats"] > 0
    )
    head = next(r for r in check["differences"] if r["cause"] == "head")
    assert "2,257,984 (the same)" in head["text"]
    # The MAC count at the published size is within 1% of the paper's 300M.
    assert abs(check["model"]["macs"] - figures["macs"]) / figures["macs"] < 0.01

    model.save(tmp_path / "m.keras")
    assert main(["inspect", str(tmp_path / "m.keras"), "--reference", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reference"]["model"]["params"] == 2_257_984
    assert main(["inspect", str(tmp_path / "m.keras"), "--reference"]) == 0
    out = capsys.readouterr().out
    assert "published (224×224)" in out and "batchnorm:" in out and "Sandler" in out
