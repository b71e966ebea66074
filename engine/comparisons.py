"""Parent experiments that compare backbones: the children they plan and the tables they write.

A parent experiment (`compare`, `preprocessing`) trains one child run per plan entry and, after
each child, rewrites its result table into the parent's run.json. The functions here are what
their `ExperimentSpec`s carry; they import nothing heavy, so the TUI can read the plan too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.backbones import get_backbone
from engine.errors import UsageError

if TYPE_CHECKING:
    from engine.config import ExperimentConfig
    from engine.runs import Run


@dataclass(frozen=True)
class ChildPlan:
    """One child run of a parent experiment: what it trains and how it is titled."""

    experiment: str  # the registered experiment the child is recorded as (and runs like)
    title: str
    backbone: str
    preprocessing: str  # "auto" (the backbone's own) or a registered preprocessing name
    model: str = "transfer"

    def config(self, parent: ExperimentConfig) -> ExperimentConfig:
        """The child's settings: the parent's, with this child's model, backbone and preprocessing
        (and none of the parent's ways of spreading children: a child is one run)."""
        return parent.replace(
            model=self.model,
            backbone=self.backbone,
            preprocessing=self.preprocessing,
            backbones=[],
            parallel="1",
            executor="local",
            address=None,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


ChildPlanner = Callable[["ExperimentConfig"], list[ChildPlan]]
TableBuilder = Callable[["ExperimentConfig", Mapping[ChildPlan, "Run"]], list[dict[str, Any]]]

# How a child's preprocessing reads in its title.
_LABELS = {"unit": "x/255", "auto": "own preprocessing"}


def chosen_backbones(config: ExperimentConfig) -> list[str]:
    """The parent's backbones by their registered names (`backbones`, else `backbone`)."""
    backbones = [get_backbone(b).name for b in (config.backbones or [config.backbone])]
    if not backbones:
        raise UsageError("name at least one backbone")
    return backbones


def _child(backbone: str, preprocessing: str) -> ChildPlan:
    return ChildPlan(
        experiment="transfer",
        title=f"{backbone} ({_LABELS[preprocessing]})",
        backbone=backbone,
        preprocessing=preprocessing,
    )


def compare_children(config: ExperimentConfig) -> list[ChildPlan]:
    """Each backbone once, frozen, with its own preprocessing."""
    return [_child(b, "auto") for b in chosen_backbones(config)]


def preprocessing_children(config: ExperimentConfig) -> list[ChildPlan]:
    """Each backbone twice: x/255 ("wrong"), then its own preprocessing ("right")."""
    return [_child(b, prep) for b in chosen_backbones(config) for prep in ("unit", "auto")]


def _by_key(results: Mapping[ChildPlan, Run]) -> dict[tuple[str, str], Run]:
    return {(plan.backbone, plan.preprocessing): run for plan, run in results.items()}


def _accuracy(run: Run | None) -> float | None:
    if run is None or not run.record.get("metrics"):
        return None
    value = run.record["metrics"].get("test_accuracy")
    return float(value) if value is not None else None


def _random_init(run: Run) -> bool:
    return bool((run.record.get("model") or {}).get("random_init"))


def compare_table(
    config: ExperimentConfig, results: Mapping[ChildPlan, Run]
) -> list[dict[str, Any]]:
    """Backbones ranked by test accuracy, with parameters and efficiency (accuracy per million)."""
    from engine.records import CompareRow, ranked

    runs = _by_key(results)
    rows = [
        dataclasses.replace(CompareRow.of(run.id, run.info, run.status), backbone=backbone)
        for backbone in chosen_backbones(config)
        if (run := runs.get((backbone, "auto"))) is not None
    ]
    return [row.to_json() for row in ranked(rows)]


def preprocessing_table(
    config: ExperimentConfig, results: Mapping[ChildPlan, Run]
) -> list[dict[str, Any]]:
    """One row per backbone: test accuracy with x/255 (before) and with its own (after)."""
    runs = _by_key(results)
    rows: list[dict[str, Any]] = []
    for backbone in chosen_backbones(config):
        wrong, right = runs.get((backbone, "unit")), runs.get((backbone, "auto"))
        some = right or wrong
        if some is None:
            continue
        rows.append(
            {
                "backbone": backbone,
                "preprocessing": get_backbone(backbone).preprocessing,
                "wrong_run_id": wrong.id if wrong else None,
                "right_run_id": right.id if right else None,
                "before": _accuracy(wrong),
                "after": _accuracy(right),
                "random_init": _random_init(some),
            }
        )
    return rows
