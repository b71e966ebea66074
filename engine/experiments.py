"""The assignment's experiments, registered by name with their settings, runner and table.

A spec carries its behaviour: the runner that trains it, the phases it trains, and for a parent
experiment the children it plans and the result table it writes. Defining an experiment imports
nothing heavy: the runner is named as "module:function" and imported when the experiment runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.backbones import list_backbones
from engine.comparisons import (
    ChildPlanner,
    TableBuilder,
    compare_children,
    compare_table,
    preprocessing_children,
    preprocessing_table,
)
from engine.config import ExperimentConfig
from engine.i18n import N_
from engine.registry import Registry

if TYPE_CHECKING:
    from engine.events import Reporter
    from engine.runs import Run, RunStore

# One run that trains one model; and a parent run whose children each train one.
SINGLE_RUNNER = "engine.training.runners:run_single"
PARENT_RUNNER = "engine.training.parents:run_parent"


@dataclass(frozen=True)
class ExperimentSpec:
    """A named experiment: what it does, the settings it starts from and how it runs."""

    name: str
    title: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    # Settings the experiment actually reads (the TUI form shows these).
    uses: tuple[str, ...] = ()
    # "module:function" of the runner, called as runner(spec, config, store=, reporter=, on_run=).
    runner: str = SINGLE_RUNNER
    # A second phase for a backbone model: the end of the backbone unfrozen and trained on.
    finetune: bool = False
    # A parent experiment: the child runs it plans from its config, and the table it writes.
    children: ChildPlanner | None = None
    table: TableBuilder | None = None

    @property
    def is_parent(self) -> bool:
        return self.children is not None

    def config(self, **overrides: Any) -> ExperimentConfig:
        return ExperimentConfig().replace(**{**self.defaults, **overrides})

    def run(
        self,
        config: ExperimentConfig,
        *,
        store: RunStore,
        reporter: Reporter,
        on_run: Callable[[Run], None] | None = None,
    ) -> Run:
        """Run this experiment with its runner (imported now: it may bring TensorFlow)."""
        module, _, function = self.runner.partition(":")
        runner = getattr(importlib.import_module(module), function)
        run: Run = runner(self, config, store=store, reporter=reporter, on_run=on_run)
        return run


EXPERIMENTS: Registry[ExperimentSpec] = Registry("experiment")

_COMMON = (
    "data",
    "subset",
    "val_split",
    "seed",
    "epochs",
    "batch_size",
    "learning_rate",
    "optimizer",
    "early_stopping",
    "patience",
)
# How a parent spreads its children (engine.scale); `strategy` applies to every experiment.
_SCALE = ("parallel", "executor", "address")
_TRANSFER = (
    "backbone",
    "weights",
    "input_size",
    "preprocessing",
    "head",
    "feature_cache",
    "feature_backend",
)

EXPERIMENTS.add(
    "simple-cnn",
    ExperimentSpec(
        name="simple-cnn",
        title=N_("Simple CNN from scratch"),
        description=N_(
            "Conv32 → pool → Conv64 → pool → Dense512 → Dense10 on x/255 pixels: "
            "2,122,186 parameters, 10 epochs with EarlyStopping (assignment: 69.37 % test)."
        ),
        defaults={"model": "simple_cnn"},
        uses=_COMMON,
    ),
)
EXPERIMENTS.add(
    "mlp",
    ExperimentSpec(
        name="mlp",
        title=N_("MLP baseline"),
        description=N_(
            "Flatten → Dense 512 → Dense 256 → Dense 10 on x/255 pixels: the dense "
            "baseline the CNN beats (best MLP of the previous assignment: 56.2 %)."
        ),
        defaults={"model": "mlp"},
        uses=_COMMON + ("mlp_units",),
    ),
)
EXPERIMENTS.add(
    "transfer",
    ExperimentSpec(
        name="transfer",
        title=N_("Transfer learning, frozen base"),
        description=N_(
            "MobileNetV2 (ImageNet) frozen, global average pooling → Dense 10 trained "
            "on its own preprocessing: 12,810 trainable of 2,270,794 (assignment: 55.5 % test)."
        ),
        defaults={"model": "transfer", "backbone": "MobileNetV2", "head": "gap-dense10"},
        uses=_COMMON + _TRANSFER,
    ),
)
EXPERIMENTS.add(
    "finetune",
    ExperimentSpec(
        name="finetune",
        title=N_("Fine-tuning"),
        description=N_(
            "The frozen-base model, then the last 10 backbone layers unfrozen at "
            "lr 1e-4 for 20 epochs: 745,290 trainable parameters."
        ),
        defaults={"model": "transfer", "backbone": "MobileNetV2", "head": "gap-dense10"},
        uses=_COMMON + _TRANSFER + ("finetune_layers", "finetune_lr", "finetune_epochs"),
        finetune=True,
    ),
)
EXPERIMENTS.add(
    "compare",
    ExperimentSpec(
        name="compare",
        title=N_("Nine backbones compared"),
        description=N_(
            "Each backbone frozen with its own preprocessing and a GAP → Dense 256 → "
            "Dense 10 head, ranked by test accuracy with parameters and efficiency "
            "(accuracy / millions of parameters)."
        ),
        defaults={
            "model": "transfer",
            "head": "gap-dense256-dense10",
            "backbones": list_backbones(),
        },
        uses=_COMMON
        + ("backbones", "weights", "input_size", "head", "feature_cache", "feature_backend")
        + _SCALE,
        runner=PARENT_RUNNER,
        children=compare_children,
        table=compare_table,
    ),
)
EXPERIMENTS.add(
    "preprocessing",
    ExperimentSpec(
        name="preprocessing",
        title=N_("Wrong vs right preprocessing"),
        description=N_(
            "Each chosen backbone trained twice: x/255 for every model, then its own "
            "preprocess_input. Before/after table (assignment: ResNet50 27.02 % → 66.01 %)."
        ),
        defaults={
            "model": "transfer",
            "head": "gap-dense256-dense10",
            "backbones": ["ResNet50", "VGG16", "EfficientNetB0", "MobileNetV2"],
        },
        uses=_COMMON
        + ("backbones", "weights", "input_size", "head", "feature_cache", "feature_backend")
        + _SCALE,
        runner=PARENT_RUNNER,
        children=preprocessing_children,
        table=preprocessing_table,
    ),
)


def get_experiment(name: str) -> ExperimentSpec:
    return EXPERIMENTS.get(name)


def list_experiments() -> list[ExperimentSpec]:
    return [spec for _, spec in EXPERIMENTS.items()]
