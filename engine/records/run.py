"""run.json: a run's record and its parts (docs/protocol.md)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.records.base import ONNX_SCHEMA, RUN_SCHEMA, Record, RecordError, optional


# ---------------------------------------------------------------------------- run.json parts
@dataclass(kw_only=True)
class ModelInfo(Record):
    """What was trained: run.json `model`, and `model` of `run_started`."""

    name: str  # simple_cnn | mlp | transfer
    backbone: str | None = None
    weights: str | None = None  # none | imagenet | PATH; None for models without a backbone
    random_init: bool = False
    input_size: int = 32
    preprocessing: str = "unit"
    preprocessing_range: list[float] = field(default_factory=lambda: [0.0, 1.0])
    head: str | None = None
    batchnorm_calibrated: int | None = optional()  # images used to set BatchNorm statistics

    @property
    def label(self) -> str:
        """'MobileNetV2' for a transfer model, else the model's name ('simple_cnn')."""
        return self.backbone or self.name


@dataclass(kw_only=True)
class DataInfo(Record):
    """The data a run used (`Dataset.summary()`)."""

    source: str
    classes: list[str] = field(default_factory=list)
    train: int | None = optional()  # images per split (always written by the engine)
    val: int | None = optional()
    test: int | None = optional()
    image_shape: list[int] = field(default_factory=list)

    def counts(self) -> str:
        """'400 train · 100 val · 100 test' ('?' for a count the record lacks)."""
        return " · ".join(
            f"{'?' if n is None else n} {name}"
            for n, name in ((self.train, "train"), (self.val, "val"), (self.test, "test"))
        )


@dataclass(kw_only=True)
class Params(Record):
    total: int
    trainable: int
    frozen: int


@dataclass(kw_only=True)
class Phase(Record):
    """One training phase (train, frozen, finetune)."""

    name: str
    epochs: int
    epochs_run: int
    best_epoch: int | None = optional()  # 1-based within the phase
    trainable: int
    learning_rate: float
    time: float
    trainable_layers: list[str] = field(default_factory=list)
    unfrozen_layers: list[str] | None = optional()  # finetune: backbone layers it unfroze
    test_accuracy: float | None = optional()  # frozen on cached features: before fine-tuning
    steps_per_execution: int | None = optional()  # training steps per call into TensorFlow
    step_time: float | None = optional()  # seconds a step was estimated at, to choose the above


@dataclass(kw_only=True)
class FeaturesInfo(Record):
    """How the frozen backbone's features were computed: run.json `features`.

    `backend` is keras, onnxruntime or cache (read from the feature cache, nothing ran);
    `reason` says why it was chosen, `warning` why onnxruntime was asked for and not used.
    """

    requested: str  # auto | keras | onnxruntime
    backend: str
    reason: str
    probe_img_s: dict[str, float] | None = optional()  # measured images/s per backend
    batch: int | None = optional()  # the measured inference batch size
    batches_tried: dict[str, float] | None = optional()  # batch size -> img/s measured
    parity_max_abs: float | None = optional()  # max |Δ| of pooled features, onnxruntime vs Keras
    providers: list[str] | None = optional()  # onnxruntime's providers, when it ran
    onnx_cache: str | None = optional()  # the cached .onnx of the backbone
    warning: str | None = optional()
    notes: list[str] = field(default_factory=list)  # e.g. a corrupted cache rebuilt


@dataclass(kw_only=True)
class HistoryEntry(Record):
    """One epoch of run.json `history`."""

    epoch: int  # counted across phases
    phase: str
    phase_epoch: int | None = optional()
    loss: float | None = optional()
    accuracy: float | None = optional()
    val_loss: float | None = optional()
    val_accuracy: float | None = optional()
    time: float
    complete: bool | None = optional()  # False when cancelled during the epoch


@dataclass(kw_only=True)
class Metrics(Record):
    """A run's results; train/val at the kept epoch, overfit_gap in percentage points."""

    train_accuracy: float | None = optional()
    train_loss: float | None = optional()
    val_accuracy: float | None = optional()
    val_loss: float | None = optional()
    test_accuracy: float | None = optional()
    test_loss: float | None = optional()
    overfit_gap: float | None = optional()
    epochs_run: int | None = optional()
    best_epoch: int | None = optional()
    per_class_accuracy: dict[str, float | None] | None = optional()
    confusion_matrix: list[list[int]] | None = optional()


@dataclass(kw_only=True)
class ChildPlan(Record):
    """One training a parent run (compare, preprocessing) plans to run as a child."""

    experiment: str = "transfer"  # the experiment the child is recorded as
    title: str
    backbone: str
    preprocessing: str  # "unit" (x/255), "auto" (the backbone's own), or a registered name
    model: str = "transfer"


@dataclass(kw_only=True)
class CompareRow(Record):
    """One row of a compare parent's `table` (efficiency = test accuracy / M params)."""

    rank: int | None = optional()
    backbone: str
    run_id: str
    test_accuracy: float | None
    params: int | None = None
    params_m: float | None = None
    efficiency: float | None = None
    random_init: bool = False
    status: str = "finished"

    @classmethod
    def of(cls, run_id: str, record: RunRecord, status: str) -> CompareRow:
        """The row for one trained model."""
        acc = record.metrics.test_accuracy if record.metrics else None
        total = record.params.total if record.params else None
        params_m = total / 1e6 if total else None
        return cls(
            backbone=record.model.label if record.model else str(record.config.get("backbone")),
            run_id=run_id,
            test_accuracy=acc,
            params=total,
            params_m=round(params_m, 2) if params_m else None,
            efficiency=round(acc / params_m, 6) if acc is not None and params_m else None,
            random_init=bool(record.model and record.model.random_init),
            status=status,
        )


def ranked(rows: list[CompareRow]) -> list[CompareRow]:
    """Rows best first by test accuracy (no accuracy last), `rank` set from 1."""
    out = sorted(rows, key=lambda r: -(r.test_accuracy if r.test_accuracy is not None else -1))
    for i, row in enumerate(out, start=1):
        row.rank = i
    return out


@dataclass(kw_only=True)
class PreprocessingRow(Record):
    """One row of a preprocessing parent's `table`: accuracy with x/255 and with its own."""

    backbone: str
    preprocessing: str
    wrong_run_id: str | None
    right_run_id: str | None
    before: float | None
    after: float | None
    random_init: bool = False

    @property
    def delta_points(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return (self.after - self.before) * 100


@dataclass(kw_only=True)
class OnnxParity(Record):
    max_abs_diff: float
    top1_agreement: float
    passed: bool
    mean_abs_diff: float | None = optional()
    n: int | None = optional()
    tolerance: float | None = optional()


@dataclass(kw_only=True)
class OnnxExport(Record):
    """One `engine export` of the run's model (docs/onnx.md)."""

    path: str  # relative to the run folder when inside it
    file: str | None = optional()
    created: str | None = optional()
    opset: int | None = optional()
    with_preprocessing: bool | None = optional()
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] | None = optional()
    preprocessing: str | None = optional()
    parity: OnnxParity | None = None
    export_time: float | None = optional()
    parity_time: float | None = optional()
    size_bytes: int | None = optional()
    sha256: str | None = optional()
    nodes: int | None = optional()
    converter: str | None = optional()
    notes: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class ProviderInfo(Record):
    """The onnxruntime providers asked for and actually used."""

    requested: str = "?"
    used: list[str] = field(default_factory=list)
    primary: str = "?"
    fell_back: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class OnnxEval(Record):
    """One `engine eval` of an ONNX file; metric keys beyond accuracy stay in `extra`."""

    file: str
    path: str | None = optional()
    created: str | None = optional()
    data: str | None = None
    n: int | None = optional()
    classes: list[str] | None = optional()
    provider: ProviderInfo = field(default_factory=ProviderInfo)
    preprocessing: dict[str, Any] | None = optional()
    accuracy: float | None = None
    latency_ms: dict[str, float | int | None] = field(default_factory=dict)
    throughput: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = optional()
    keras_test_accuracy: float | None = None

    def same_target(self, other: OnnxEval) -> bool:
        """Same file, data and requested provider: a new eval replaces the old one."""
        return (self.file, self.data, self.provider.requested) == (
            other.file,
            other.data,
            other.provider.requested,
        )


@dataclass(kw_only=True)
class OnnxVariant(Record):
    """One deployment variant from `engine deploy` (docs/onnx.md): the file, how it was built
    and its measurements per provider; keys beyond these stay in `extra`."""

    variant: str
    file: str
    description: str = ""
    source: str | None = None
    created: str | None = optional()
    data: str | None = None
    test_images: int | None = None
    size_bytes: int | None = None
    ops: dict[str, int] = field(default_factory=dict)
    build: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass(kw_only=True)
class OnnxRecord(Record):
    """run.json `onnx`: exports, evaluations and deployment variants of the run's model."""

    schema: int = ONNX_SCHEMA
    exports: list[OnnxExport] = field(default_factory=list)
    evals: list[OnnxEval] = field(default_factory=list)
    variants: list[OnnxVariant] | None = optional()  # absent until `engine deploy` writes one

    def with_variants(self, entries: list[OnnxVariant]) -> OnnxRecord:
        """A copy with `entries` added, replacing variants of the same name (newest last)."""
        new = {e.variant for e in entries}
        kept = [v for v in self.variants or [] if v.variant not in new]
        return dataclasses.replace(self, schema=ONNX_SCHEMA, variants=[*kept, *entries])

    def with_export(self, entry: OnnxExport) -> OnnxRecord:
        """A copy with `entry` added, replacing an export of the same path."""
        exports = [e for e in self.exports if e.path != entry.path] + [entry]
        return dataclasses.replace(self, schema=ONNX_SCHEMA, exports=exports)

    def with_eval(self, entry: OnnxEval) -> OnnxRecord:
        """A copy with `entry` added, replacing an eval of the same file, data and provider."""
        evals = [e for e in self.evals if not e.same_target(entry)] + [entry]
        return dataclasses.replace(self, schema=ONNX_SCHEMA, evals=evals)


@dataclass(kw_only=True)
class Distribution(Record):
    """How one run spread over devices (`--strategy`): batch_size is the global batch."""

    strategy: str  # none | mirrored (what ran; `auto` is resolved to one of these)
    replicas: int = 1
    devices: list[str] = field(default_factory=list)  # TensorFlow device names


@dataclass(kw_only=True)
class Placement(Record):
    """Where a child of a parallel or Ray parent ran."""

    executor: str  # process | ray
    host: str | None = optional()
    pid: int | None = optional()  # the child's process
    worker_pid: int | None = optional()  # ray: the worker process that ran the task
    cuda_visible_devices: str | None = optional()  # the GPU the child was given, if any
    shared_storage: bool | None = optional()  # ray: wrote the runs folder directly (else shipped)


@dataclass(kw_only=True)
class ChildFailure(Record):
    """A child of a parent that failed or died, and why (the parent's `failures`)."""

    run_id: str
    title: str = ""
    reason: str


@dataclass(kw_only=True)
class RunRecord(Record):
    """A run's run.json (docs/protocol.md)."""

    SCHEMA: ClassVar[int] = RUN_SCHEMA

    schema: int = RUN_SCHEMA
    id: str
    experiment: str
    title: str = ""
    parent: str | None = None
    children: list[str] = field(default_factory=list)
    plan: list[ChildPlan] = field(default_factory=list)
    status: str = "running"  # running | finished | cancelled | failed, as written
    error: str | None = None
    created: str = ""
    updated: str = ""
    pid: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    model: ModelInfo | None = None
    data: DataInfo | None = None
    params: Params | None = None
    phases: list[Phase] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    metrics: Metrics | None = None
    timings: dict[str, float | None] = field(default_factory=dict)
    features: FeaturesInfo | None = optional()  # frozen base on cached features only
    environment: dict[str, Any] | None = None
    table: list[CompareRow | PreprocessingRow] | None = None
    onnx: OnnxRecord | None = None
    distribution: Distribution | None = optional()  # the devices one run trained on
    placement: Placement | None = optional()  # a child run in its own process or Ray task
    failures: list[ChildFailure] | None = optional()  # a parent: children that failed, and why

    @classmethod
    def from_json(cls, data: Any, where: str | None = None) -> RunRecord:
        """Read run.json of schema 1 or 2 (schema 1 lacks `plan`; it reads as empty)."""
        where = where or "run.json"
        schema = data.get("schema", 1) if isinstance(data, dict) else None
        if isinstance(schema, int) and not isinstance(schema, bool) and schema > RUN_SCHEMA:
            raise RecordError(
                f"{where}: schema {schema} is newer than this cnnlab reads ({RUN_SCHEMA}); upgrade cnnlab"
            )
        record = super().from_json(data, where)
        record.schema = RUN_SCHEMA
        return record

    @property
    def is_parent(self) -> bool:
        """A run whose trainings are child runs (compare, preprocessing)."""
        return bool(self.plan or self.children or self.table is not None)

    @property
    def random_init(self) -> bool:
        """True when the model, or any model of a parent's table, was not pretrained."""
        if self.model is not None and self.model.random_init:
            return True
        return any(row.random_init for row in self.table or [])

    @property
    def compare_rows(self) -> list[CompareRow]:
        return [row for row in self.table or [] if isinstance(row, CompareRow)]

    @property
    def preprocessing_rows(self) -> list[PreprocessingRow]:
        return [row for row in self.table or [] if isinstance(row, PreprocessingRow)]
