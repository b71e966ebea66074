"""Experiment specs carry their behaviour: runner, phases, child plans and result tables."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from engine.comparisons import ChildPlan, compare_table, preprocessing_table
from engine.experiments import get_experiment, list_experiments
from engine.records import ModelInfo, Params
from engine.runs import Run, RunStore


def test_every_runner_resolves_and_only_parents_plan_children() -> None:
    for spec in list_experiments():
        module, _, function = spec.runner.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), spec.name
        assert spec.is_parent == (spec.name in ("compare", "preprocessing")), spec.name
        assert (spec.table is not None) == spec.is_parent, spec.name
    assert [s.name for s in list_experiments() if s.finetune] == ["finetune"]


def test_compare_plans_one_child_per_backbone_with_its_own_preprocessing() -> None:
    spec = get_experiment("compare")
    config = spec.config(backbones=["mobilenetv2", "ResNet50"], head="gap-dense256-dense10")
    assert spec.children is not None
    plan = spec.children(config)
    assert [(p.backbone, p.preprocessing, p.experiment) for p in plan] == [
        ("MobileNetV2", "auto", "transfer"),
        ("ResNet50", "auto", "transfer"),
    ]
    assert plan[0].title == "MobileNetV2 (own preprocessing)"
    child = plan[1].config(config)
    assert (child.model, child.backbone, child.preprocessing, child.backbones) == (
        "transfer",
        "ResNet50",
        "auto",
        [],
    )
    assert child.head == "gap-dense256-dense10" and child.epochs == config.epochs


def test_preprocessing_plans_the_wrong_then_the_right_run_per_backbone() -> None:
    spec = get_experiment("preprocessing")
    assert spec.children is not None
    plan = spec.children(spec.config(backbones=["VGG16"]))
    assert [(p.backbone, p.preprocessing, p.title) for p in plan] == [
        ("VGG16", "unit", "VGG16 (x/255)"),
        ("VGG16", "auto", "VGG16 (own preprocessing)"),
    ]
    assert plan[0].to_dict()["experiment"] == "transfer"


def _child(store: RunStore, plan: ChildPlan, accuracy: float | None, params: int) -> Run:
    run = store.create(plan.experiment, title=plan.title)
    metrics: dict[str, Any] | None = None if accuracy is None else {"test_accuracy": accuracy}
    run.update(
        status="finished",
        metrics=metrics,
        params=Params(total=params, trainable=params, frozen=0),
        model=ModelInfo(name="transfer", backbone=plan.backbone, random_init=True),
    )
    return run


def test_compare_table_ranks_by_accuracy_with_efficiency(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    config = get_experiment("compare").config(backbones=["MobileNetV2", "ResNet50", "VGG16"])
    plan = get_experiment("compare").children(config)  # type: ignore[misc]
    runs = {
        plan[0]: _child(store, plan[0], 0.5, 2_000_000),
        plan[1]: _child(store, plan[1], 0.8, 4_000_000),
    }
    rows = compare_table(config, runs)
    assert [(r["rank"], r["backbone"]) for r in rows] == [(1, "ResNet50"), (2, "MobileNetV2")]
    assert rows[0]["efficiency"] == pytest.approx(0.2) and rows[1]["efficiency"] == 0.25
    assert rows[0]["params_m"] == 4.0 and rows[0]["run_id"] == runs[plan[1]].id
    assert rows[0]["random_init"] is True and rows[0]["status"] == "finished"


def test_preprocessing_table_pairs_before_and_after(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    spec = get_experiment("preprocessing")
    config = spec.config(backbones=["ResNet50", "VGG16"])
    plan = spec.children(config)  # type: ignore[misc]
    runs = {
        plan[0]: _child(store, plan[0], 0.27, 1),
        plan[1]: _child(store, plan[1], 0.66, 1),
        plan[2]: _child(store, plan[2], None, 1),  # VGG16 x/255 failed before testing
    }
    first, second = preprocessing_table(config, runs)
    assert (first["backbone"], first["before"], first["after"]) == ("ResNet50", 0.27, 0.66)
    assert first["preprocessing"] == "resnet"
    assert first["wrong_run_id"] == runs[plan[0]].id and first["right_run_id"] == runs[plan[1]].id
    assert (second["backbone"], second["before"], second["after"]) == ("VGG16", None, None)
    assert second["right_run_id"] is None
