"""Experiment settings: one dataclass, the assignment's values as defaults.

Every field carries metadata (help text, choices, bounds) so that the CLI builds its flags and
the TUI builds its forms from the same source, and both refuse invalid values with the same
reason. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from engine.errors import UsageError
from engine.models import HEADS as HEAD_REGISTRY
from engine.models import MODELS as MODEL_REGISTRY
from engine.optimizers import OPTIMIZERS as OPTIMIZER_REGISTRY

# The choices come from the registries, which import no TensorFlow.
HEADS = tuple(HEAD_REGISTRY.names())
OPTIMIZERS = tuple(OPTIMIZER_REGISTRY.names())
MODELS = tuple(MODEL_REGISTRY.names())
FEATURE_BACKENDS = ("auto", "keras", "onnxruntime")


def _f(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with metadata for the CLI and the TUI forms."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class ExperimentConfig:
    """Settings of one experiment. Defaults are the assignment's (see ASSIGNMENT.md)."""

    data: str = _f("cifar10", "data source: cifar10, synthetic, folder:PATH, npz:PATH", kind="data")
    subset: int | None = _f(None, "use only N training images (test: N/5) for quick runs", min=10)
    resize: int | None = _f(
        None, "resize every image to N×N (else images of mixed sizes are an error)", min=8, max=512
    )
    val_split: float = _f(
        0.2, "stratified validation fraction of the training images", min=0.05, max=0.5
    )
    seed: int = _f(0, "random seed for the split, shuffling and initialisation", min=0)
    model: str = _f("simple_cnn", "model to train", choices=MODELS)
    backbone: str = _f("MobileNetV2", "backbone for transfer/finetune", kind="backbone")
    backbones: list[str] = _f(
        [], "backbones for compare/preprocessing (comma-separated)", kind="backbones"
    )
    weights: str = _f(
        "imagenet",
        "backbone weights: imagenet, none (random init) or a .h5/.keras PATH",
        kind="weights",
    )
    input_size: int = _f(32, "upscale images to this size before the backbone", min=32, max=512)
    preprocessing: str = _f(
        "auto",
        "auto = the backbone's own; or a registered name (unit = x/255)",
        kind="preprocessing",
    )
    head: str = _f("gap-dense10", "classifier head on the backbone", choices=HEADS)
    epochs: int = _f(10, "maximum training epochs", min=1, max=1000)
    batch_size: int = _f(64, "batch size", min=1, max=8192)
    learning_rate: float = _f(1e-3, "learning rate", min=1e-7, max=1.0)
    optimizer: str = _f("adam", "optimizer", choices=OPTIMIZERS)
    early_stopping: bool = _f(
        True, "stop when val_loss stops improving (restores the best weights)"
    )
    patience: int = _f(3, "EarlyStopping patience in epochs", min=1, max=100)
    mlp_units: list[int] = _f([512, 256], "hidden layer widths of the MLP (comma-separated)")
    feature_cache: bool = _f(True, "frozen base: extract features once and train the head on them")
    feature_backend: str = _f(
        "auto",
        "feature extraction: auto (the faster here, measured), keras or onnxruntime",
        choices=FEATURE_BACKENDS,
    )
    finetune_layers: int = _f(
        10, "fine-tuning: unfreeze this many layers at the end of the backbone", min=1
    )
    finetune_lr: float = _f(1e-4, "fine-tuning learning rate", min=1e-8, max=1.0)
    finetune_epochs: int = _f(20, "fine-tuning epochs (after the frozen phase)", min=1, max=1000)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: Any) -> ExperimentConfig:
        return dataclasses.replace(self, **changes)


def parse_value(name: str, text: str) -> Any:
    """Parse a setting from text (a CLI flag or a TUI input); raise UsageError with the reason."""
    fields = {f.name: f for f in dataclasses.fields(ExperimentConfig)}
    if name not in fields:
        raise UsageError(f"unknown setting {name!r}")
    ftype = str(fields[name].type)
    text = text.strip()
    try:
        if ftype.startswith("bool"):
            low = text.lower()
            if low in ("1", "true", "yes", "on", "y"):
                return True
            if low in ("0", "false", "no", "off", "n"):
                return False
            raise ValueError("expected yes or no")
        if ftype.startswith("int | None"):
            return None if text.lower() in ("", "none", "all") else int(text)
        if ftype.startswith("int"):
            return int(text)
        if ftype.startswith("float"):
            return float(text)
        if ftype.startswith("list[int]"):
            return [int(t) for t in text.replace(" ", "").split(",") if t]
        if ftype.startswith("list[str]"):
            return [t.strip() for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise UsageError(f"{name}: cannot read {text!r} ({exc})") from None
    return text


def validate(config: ExperimentConfig) -> list[str]:
    """Every problem with the settings, one reason per line (empty when valid)."""
    from engine.backbones import list_backbones
    from engine.preprocessing import list_preprocessing

    problems: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        meta = f.metadata
        if value is None:
            continue
        if "choices" in meta and value not in meta["choices"]:
            problems.append(f"{f.name}: {value!r} is not one of {', '.join(meta['choices'])}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "min" in meta and value < meta["min"]:
                problems.append(f"{f.name}: {value} is below the minimum {meta['min']}")
            if "max" in meta and value > meta["max"]:
                problems.append(f"{f.name}: {value} is above the maximum {meta['max']}")
    lowered = {b.lower(): b for b in list_backbones()}
    if config.backbone.lower() not in lowered:
        problems.append(
            f"backbone: unknown {config.backbone!r}; choose one of {', '.join(list_backbones())}"
        )
    for b in config.backbones:
        if b.lower() not in lowered:
            problems.append(f"backbones: unknown {b!r}; choose from {', '.join(list_backbones())}")
    if config.preprocessing != "auto" and config.preprocessing not in list_preprocessing():
        problems.append(
            f"preprocessing: unknown {config.preprocessing!r}; choose auto or one of "
            f"{', '.join(list_preprocessing())}"
        )
    if any(u < 1 for u in config.mlp_units):
        problems.append("mlp_units: every layer needs at least one unit")
    from engine.data import check_source
    from engine.errors import DataError

    try:
        check_source(config.data)
    except DataError as exc:
        problems.append(f"data: {exc}")
    weights = config.weights
    if weights not in ("imagenet", "none") and not weights.endswith(
        (".h5", ".keras", ".weights.h5")
    ):
        problems.append(f"weights: {weights!r} is not imagenet, none or a .h5/.keras file")
    return problems


def check(config: ExperimentConfig) -> ExperimentConfig:
    """Return the config if valid, else raise UsageError naming every problem."""
    problems = validate(config)
    if problems:
        raise UsageError("; ".join(problems))
    return config
