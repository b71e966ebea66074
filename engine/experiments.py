"""The assignment's experiments, registered by name with its settings as defaults.

Defining an experiment imports nothing heavy; `run_experiment` (in engine.training) does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.backbones import list_backbones
from engine.config import ExperimentConfig
from engine.registry import Registry


@dataclass(frozen=True)
class ExperimentSpec:
    """A named experiment: what it does, and the settings it starts from."""

    name: str
    title: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    # Settings the experiment actually reads (the TUI form shows these).
    uses: tuple[str, ...] = ()

    def config(self, **overrides: Any) -> ExperimentConfig:
        return ExperimentConfig().replace(**{**self.defaults, **overrides})


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
_TRANSFER = ("backbone", "weights", "input_size", "preprocessing", "head", "feature_cache")

EXPERIMENTS.add(
    "simple-cnn",
    ExperimentSpec(
        name="simple-cnn",
        title="Simple CNN from scratch",
        description="Conv32 → pool → Conv64 → pool → Dense512 → Dense10 on x/255 pixels: "
        "2,122,186 parameters, 10 epochs with EarlyStopping (assignment: 69.37 % test).",
        defaults={"model": "simple_cnn"},
        uses=_COMMON,
    ),
)
EXPERIMENTS.add(
    "mlp",
    ExperimentSpec(
        name="mlp",
        title="MLP baseline",
        description="Flatten → Dense 512 → Dense 256 → Dense 10 on x/255 pixels: the dense "
        "baseline the CNN beats (best MLP of the previous assignment: 56.2 %).",
        defaults={"model": "mlp"},
        uses=_COMMON + ("mlp_units",),
    ),
)
EXPERIMENTS.add(
    "transfer",
    ExperimentSpec(
        name="transfer",
        title="Transfer learning, frozen base",
        description="MobileNetV2 (ImageNet) frozen, global average pooling → Dense 10 trained "
        "on its own preprocessing: 12,810 trainable of 2,270,794 (assignment: 55.5 % test).",
        defaults={"model": "transfer", "backbone": "MobileNetV2", "head": "gap-dense10"},
        uses=_COMMON + _TRANSFER,
    ),
)
EXPERIMENTS.add(
    "finetune",
    ExperimentSpec(
        name="finetune",
        title="Fine-tuning",
        description="The frozen-base model, then the last 10 backbone layers unfrozen at "
        "lr 1e-4 for 20 epochs: 745,290 trainable parameters.",
        defaults={"model": "transfer", "backbone": "MobileNetV2", "head": "gap-dense10"},
        uses=_COMMON + _TRANSFER + ("finetune_layers", "finetune_lr", "finetune_epochs"),
    ),
)
EXPERIMENTS.add(
    "compare",
    ExperimentSpec(
        name="compare",
        title="Nine backbones compared",
        description="Each backbone frozen with its own preprocessing and a GAP → Dense 256 → "
        "Dense 10 head, ranked by test accuracy with parameters and efficiency "
        "(accuracy / millions of parameters).",
        defaults={
            "model": "transfer",
            "head": "gap-dense256-dense10",
            "backbones": list_backbones(),
        },
        uses=_COMMON + ("backbones", "weights", "input_size", "head", "feature_cache"),
    ),
)
EXPERIMENTS.add(
    "preprocessing",
    ExperimentSpec(
        name="preprocessing",
        title="Wrong vs right preprocessing",
        description="Each chosen backbone trained twice: x/255 for every model, then its own "
        "preprocess_input. Before/after table (assignment: ResNet50 27.02 % → 66.01 %).",
        defaults={
            "model": "transfer",
            "head": "gap-dense256-dense10",
            "backbones": ["ResNet50", "VGG16", "EfficientNetB0", "MobileNetV2"],
        },
        uses=_COMMON + ("backbones", "weights", "input_size", "head", "feature_cache"),
    ),
)


def get_experiment(name: str) -> ExperimentSpec:
    return EXPERIMENTS.get(name)


def list_experiments() -> list[ExperimentSpec]:
    return [spec for _, spec in EXPERIMENTS.items()]
