"""Experiment settings: one dataclass, the assignment's values as defaults.

Every field carries metadata (help text, choices, bounds) so that the CLI builds its flags and
the TUI builds its forms from the same source, and both refuse invalid values with the same
reason. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    subset: int | None = _f(
        None, "use only N training images (test: N/5) for quick runs", min=10, max=100_000_000
    )
    # Data loading reads `resize` for every experiment, so it applies to all of them even though
    # no ExperimentSpec.uses (the TUI form's rows) lists it.
    resize: int | None = _f(
        None,
        "resize every image to N×N (else images of mixed sizes are an error)",
        min=8,
        max=512,
        every_experiment=True,
    )
    val_split: float = _f(
        0.2, "stratified validation fraction of the training images", min=0.05, max=0.5
    )
    seed: int = _f(
        0, "random seed for the split, shuffling and initialisation", min=0, max=2**32 - 1
    )
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
    tensorboard: bool = _f(
        True,
        "write TensorBoard event files into the run folder (tensorboard --logdir runs)",
        every_experiment=True,
    )
    mlp_units: list[int] = _f(
        [512, 256], "hidden layer widths of the MLP (comma-separated)", min=1, max=65_536
    )
    feature_cache: bool = _f(True, "frozen base: extract features once and train the head on them")
    feature_backend: str = _f(
        "auto",
        "feature extraction: auto (the faster here, measured), keras or onnxruntime",
        choices=FEATURE_BACKENDS,
    )
    finetune_layers: int = _f(
        10, "fine-tuning: unfreeze this many layers at the end of the backbone", min=1, max=10_000
    )
    finetune_lr: float = _f(1e-4, "fine-tuning learning rate", min=1e-8, max=1.0)
    finetune_epochs: int = _f(20, "fine-tuning epochs (after the frozen phase)", min=1, max=1000)
    # Scale (docs/scale.md). Every run trains through a strategy, so it applies to every
    # experiment; the children of a parent inherit it.
    strategy: str = _f(
        "auto",
        "devices of one run: mirrored = tf.distribute.MirroredStrategy over all visible GPUs, "
        "none = one device, auto = mirrored on 2+ GPUs; batch_size is the global batch, "
        "split across the replicas",
        choices=("auto", "none", "mirrored"),
        every_experiment=True,
    )
    parallel: str = _f(
        "1",
        "compare/preprocessing: children at the same time, N processes (one per GPU via "
        "CUDA_VISIBLE_DEVICES) or auto (one per GPU; 1 on CPU)",
    )
    executor: str = _f(
        "local",
        "compare/preprocessing: where children run: local, or ray (tasks on a Ray cluster)",
        choices=("local", "ray"),
    )
    address: str | None = _f(
        None, "executor ray: the cluster address (host:port or ray://host:10001; default auto)"
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: Any) -> ExperimentConfig:
        return dataclasses.replace(self, **changes)


def _shown(text: str, limit: int = 40) -> str:
    """repr() of a user's text, cut short: messages stay one readable line."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _brief(value: Any, limit: int = 40) -> str:
    """repr() of any value, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _number(text: str, kind: type) -> Any:
    """int or float from text; ValueError with a short reason. Floats must be finite."""
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


class SettingError(UsageError):
    """A setting's text cannot be read; `setting` and `reason` let the CLI name its flag."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting
        self.reason = reason


def parse_value(name: str, text: str) -> Any:
    """Parse a setting from text (a CLI flag or a TUI input); raise UsageError with the reason."""
    fields = {f.name: f for f in dataclasses.fields(ExperimentConfig)}
    if name not in fields:
        raise UsageError(f"unknown setting {_shown(name)}")
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
            return None if text.lower() in ("", "none", "all") else _number(text, int)
        if ftype.startswith("int"):
            return _number(text, int)
        if ftype.startswith("float"):
            return _number(text, float)
        if ftype.startswith("list[int]"):
            return [_number(t, int) for t in text.replace(" ", "").split(",") if t]
        if ftype.startswith("list[str]"):
            return [t.strip() for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise SettingError(name, f"cannot read {_shown(text)} ({exc})") from None
    return text


def _type_problem(ftype: str, value: Any) -> str | None:
    """Why `value` is not of the field's type (a run.json or a form may hold anything)."""
    if ftype.startswith("bool"):
        return None if isinstance(value, bool) else f"{_brief(value)} is not yes or no"
    if ftype.startswith("int"):
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return f"{_brief(value)} is not a whole number"
    if ftype.startswith("float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{_brief(value)} is not a number"
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if ftype.startswith("list[int]"):
        ok = isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
        return None if ok else f"{_brief(value)} is not a list of whole numbers"
    if ftype.startswith("list[str]"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else f"{_brief(value)} is not a list of names"
    return None if isinstance(value, str) else f"{_brief(value)} is not text"


def _range_problem(meta: Any, value: int | float) -> str | None:
    if "min" in meta and value < meta["min"]:
        return f"{value} is below the minimum {meta['min']}"
    if "max" in meta and value > meta["max"]:
        return f"{value} is above the maximum {meta['max']}"
    return None


def field_problems(config: ExperimentConfig) -> list[tuple[str, str]]:
    """Every problem with the settings as (setting, reason) pairs (empty when valid).

    Checks types, finiteness, bounds and choices first; names (backbones, preprocessing, data
    source, weights) only for settings of the right type. Imports nothing heavy."""
    from engine.backbones import BACKBONES, list_backbones
    from engine.preprocessing import list_preprocessing

    problems: list[tuple[str, str]] = []
    typed: set[str] = set()
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        meta = f.metadata
        ftype = str(f.type)
        if value is None:
            if "None" not in ftype:
                problems.append((f.name, "a value is required"))
            continue
        problem = _type_problem(ftype, value)
        if problem is None and "choices" in meta and value not in meta["choices"]:
            problem = f"{_shown(value)} is not one of {', '.join(meta['choices'])}"
        if problem is None and isinstance(value, (int, float)) and not isinstance(value, bool):
            problem = _range_problem(meta, value)
        if problem is None and isinstance(value, list) and ftype.startswith("list[int]"):
            problem = next(filter(None, (_range_problem(meta, v) for v in value)), None)
        if problem is None:
            typed.add(f.name)
        else:
            problems.append((f.name, problem))
    choices = ", ".join(list_backbones())
    if "backbone" in typed and config.backbone not in BACKBONES:
        problems.append(("backbone", f"unknown {_shown(config.backbone)}; choose one of {choices}"))
    for b in config.backbones if "backbones" in typed else []:
        if b not in BACKBONES:
            problems.append(("backbones", f"unknown {_shown(b)}; choose from {choices}"))
    if "preprocessing" in typed and config.preprocessing != "auto":
        if config.preprocessing not in list_preprocessing():
            problems.append(
                (
                    "preprocessing",
                    f"unknown {_shown(config.preprocessing)}; choose auto or one of "
                    f"{', '.join(list_preprocessing())}",
                )
            )
    if "parallel" in typed and config.parallel != "auto":
        if not (config.parallel.isdigit() and int(config.parallel) >= 1):
            problems.append(("parallel", f"{_shown(config.parallel)} is not a number ≥ 1 or auto"))
    if config.address and config.executor != "ray":  # a form's empty field is no address
        problems.append(("address", "only with --executor ray"))
    if "data" in typed:
        from engine.data import check_source
        from engine.errors import DataError

        try:
            check_source(config.data)
        except DataError as exc:
            problems.append(("data", " ".join(str(exc).split())))
    weights = config.weights
    if "weights" in typed and weights not in ("imagenet", "none"):
        if not weights.endswith((".h5", ".keras", ".weights.h5")):
            problems.append(
                ("weights", f"{_shown(weights)} is not imagenet, none or a .h5/.keras file")
            )
    return problems


def validate(config: ExperimentConfig) -> list[str]:
    """Every problem with the settings, one `setting: reason` line each (empty when valid)."""
    return [f"{name}: {reason}" for name, reason in field_problems(config)]


def canonical(config: ExperimentConfig) -> ExperimentConfig:
    """The config with backbone names in their registered spelling (`mobilenet_v2` → `MobileNetV2`),
    as run.json stores them. Call on a valid config."""
    from engine.backbones import canonical_backbone

    return config.replace(
        backbone=canonical_backbone(config.backbone),
        backbones=[canonical_backbone(b) for b in config.backbones],
    )


def check(config: ExperimentConfig) -> ExperimentConfig:
    """The config with canonical backbone names if valid, else UsageError naming every problem."""
    problems = validate(config)
    if problems:
        raise UsageError("; ".join(problems))
    return canonical(config)


def flag(name: str) -> str:
    """The command-line flag of a setting: `batch_size` → `--batch-size`."""
    return "--" + name.replace("_", "-")


class ExperimentLike(Protocol):
    """What flag checking needs of an ExperimentSpec (engine.experiments imports this module)."""

    @property
    def name(self) -> str: ...

    @property
    def defaults(self) -> dict[str, Any]: ...

    @property
    def uses(self) -> tuple[str, ...]: ...

    def config(self, **overrides: Any) -> ExperimentConfig: ...


def _not_applicable(spec: ExperimentLike, given: list[str]) -> list[str]:
    """Why given settings do not fit the experiment: one it fixes (`--model`) would change what
    it is; one it does not read would be silently ignored."""
    fields = {f.name: f for f in dataclasses.fields(ExperimentConfig)}
    reasons, unread = [], []
    for name in given:
        if name in spec.uses or fields[name].metadata.get("every_experiment"):
            continue
        if name in spec.defaults:
            reasons.append(
                f"{flag(name)}: experiment {spec.name} always uses {name} "
                f"{spec.defaults[name]!r}; it cannot be changed"
            )
        else:
            unread.append(flag(name))
    if unread:
        verb = "does" if len(unread) == 1 else "do"
        every = [n for n, f in fields.items() if f.metadata.get("every_experiment")]
        takes = ", ".join(flag(u) for u in (*spec.uses, *every))
        reasons.append(
            f"{', '.join(unread)} {verb} not apply to experiment {spec.name} (it takes {takes})"
        )
    return reasons


def config_from_flags(spec: ExperimentLike, given: dict[str, str]) -> ExperimentConfig:
    """The experiment's config with settings given as text (command-line flags), checked without
    importing anything heavy: UsageError naming every flag that is unreadable, non-finite, out of
    range, or not one the experiment takes. Backbone names come back canonical."""
    problems = _not_applicable(spec, list(given))
    overrides: dict[str, Any] = {}
    for name, text in given.items():
        try:
            overrides[name] = parse_value(name, text)
        except SettingError as exc:
            problems.append(f"{flag(exc.setting)}: {exc.reason}")
    if not problems:
        config = spec.config(**overrides)
        problems = [
            f"{flag(name) if name in given else name}: {reason}"
            for name, reason in field_problems(config)
        ]
    if problems:
        raise UsageError("; ".join(problems))
    return canonical(config)
