"""Typed run records (run.json) and engine events, with their JSON readers and writers.

One home for what a run is: the engine writes these classes, `RunStore` reads them, the TUI and
the test fakes use the same classes. No TensorFlow and no textual here (stdlib only), so any
client can import it cheaply.

Every class reads itself with `from_json(dict)` and writes itself with `to_json()`. Readers are
strict about types (a wrong type raises `RecordError` naming the key and why) and lenient about
keys: an unknown key is kept in `extra` and written back, so a newer writer's fields survive a
rewrite by an older reader. run.json carries `schema`; files of schema 1 load as schema 2.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

from engine.errors import RunError

RUN_SCHEMA = 2  # 2: parents record their `plan` of children; ModelInfo in run_started
ONNX_SCHEMA = 1
EVENT_SCHEMA = 2  # 2: run_started carries `model` as a ModelInfo object and the parent's plan

_OMIT_NONE = "omit_none"
R = TypeVar("R", bound="Record")


class RecordError(RunError):
    """A run.json or event that does not match its schema; the message says where and why."""


def optional(default: Any = None) -> Any:
    """A field that is left out of the JSON while it is None (keys older files never had)."""
    return field(default=default, metadata={_OMIT_NONE: True})


# ---------------------------------------------------------------------------- reading and writing
def _type_name(tp: Any) -> str:
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if get_origin(tp) is list:
        return "list"
    if get_origin(tp) is dict:
        return "object"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "object"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """`value` read as type `tp`; RecordError when it is not one."""
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None:
            if type(None) in options:
                return None
            raise RecordError(f"{where}: expected {_type_name(tp)}, got null")
        reasons = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except RecordError as exc:
                reasons.append(str(exc))
        raise RecordError(reasons[0] if len(reasons) == 1 else f"{where}: " + "; or ".join(reasons))
    if origin is list:
        if not isinstance(value, list):
            raise RecordError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = get_args(tp)
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
        _, item = get_args(tp)
        return {str(k): _convert(v, item, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_json(value, where)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, tp):
        return value
    raise RecordError(
        f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r:.40}"
    )


def to_jsonable(value: Any) -> Any:
    """Records (and lists/dicts of them) as plain JSON values; anything else unchanged."""
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


_FIELDS: dict[type, tuple[tuple[dataclasses.Field[Any], Any], ...]] = {}


def _fields(cls: type) -> tuple[tuple[dataclasses.Field[Any], Any], ...]:
    """A record class's fields with their resolved types (resolved once per class)."""
    if cls not in _FIELDS:
        hints = get_type_hints(cls)
        _FIELDS[cls] = tuple(
            (f, hints[f.name]) for f in dataclasses.fields(cls) if f.name != "extra"
        )
    return _FIELDS[cls]


@dataclass(kw_only=True)
class Record:
    """Base of every record and event: typed fields plus `extra`, the keys this version does not
    know (kept, and written back)."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls: type[R], data: Any, where: str | None = None) -> R:
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise RecordError(f"{where}: expected an object, got {type(data).__name__}")
        known = {f.name: (f, tp) for f, tp in _fields(cls)}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in known:
                values[key] = _convert(value, known[key][1], f"{where}.{key}")
            else:
                extra[key] = value
        missing = [
            name
            for name, (f, _) in known.items()
            if name not in values
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise RecordError(f"{where}: missing {', '.join(missing)}")
        return cls(**values, extra=extra)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f, _ in _fields(type(self)):
            value = getattr(self, f.name)
            if value is None and f.metadata.get(_OMIT_NONE):
                continue
            out[f.name] = to_jsonable(value)
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


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
    variants: list[OnnxVariant] = field(default_factory=list)

    def with_variants(self, entries: list[OnnxVariant]) -> OnnxRecord:
        """A copy with `entries` added, replacing variants of the same name (newest last)."""
        new = {e.variant for e in entries}
        kept = [v for v in self.variants if v.variant not in new]
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
    environment: dict[str, Any] | None = None
    table: list[CompareRow | PreprocessingRow] | None = None
    onnx: OnnxRecord | None = None

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


# ---------------------------------------------------------------------------- events
@dataclass(kw_only=True)
class Event(Record):
    """One line of `engine run --events jsonl` (docs/protocol.md)."""

    KIND: ClassVar[str] = ""

    time: float | None = None  # Unix time; the Reporter stamps it when sent
    run_id: str | None = None

    @classmethod
    def from_json(cls: type[R], data: Any, where: str | None = None) -> R:
        if isinstance(data, dict) and "event" in data:
            data = {k: v for k, v in data.items() if k != "event"}
        return super().from_json(data, where)  # type: ignore[misc]

    def to_json(self) -> dict[str, Any]:
        return {"event": self.KIND, **super().to_json()}


@dataclass(kw_only=True)
class RunStarted(Event):
    KIND: ClassVar[str] = "run_started"

    schema: int = EVENT_SCHEMA
    run_dir: str
    experiment: str
    parent: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    model: ModelInfo | None = None  # None for a parent run
    data: DataInfo | None = None  # None for a parent run
    plan: list[ChildPlan] = field(default_factory=list)  # a parent's children, in order

    @property
    def is_parent(self) -> bool:
        return bool(self.plan)


@dataclass(kw_only=True)
class PhaseStarted(Event):
    KIND: ClassVar[str] = "phase_started"

    phase: str
    epochs: int
    steps: int


@dataclass(kw_only=True)
class BatchProgress(Event):
    KIND: ClassVar[str] = "batch_progress"

    phase: str
    epoch: int
    epochs: int
    step: int
    steps: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(kw_only=True)
class EpochEnd(Event):
    KIND: ClassVar[str] = "epoch_end"

    phase: str
    epoch: int
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)
    epoch_time: float


@dataclass(kw_only=True)
class Log(Event):
    KIND: ClassVar[str] = "log"

    level: str = "info"
    message: str


@dataclass(kw_only=True)
class Artifact(Event):
    KIND: ClassVar[str] = "artifact"

    kind: str  # model | summary | run | onnx | features
    path: str


@dataclass(kw_only=True)
class RunFinished(Event):
    KIND: ClassVar[str] = "run_finished"

    status: str  # finished | cancelled
    metrics: Metrics | None = None
    wall_time: float


@dataclass(kw_only=True)
class ErrorEvent(Event):
    KIND: ClassVar[str] = "error"

    message: str
    kind: str = "error"  # usage | data | weights | internal | ...


EVENT_TYPES: dict[str, type[Event]] = {
    cls.KIND: cls
    for cls in (
        RunStarted,
        PhaseStarted,
        BatchProgress,
        EpochEnd,
        Log,
        Artifact,
        RunFinished,
        ErrorEvent,
    )
}


def event_from_json(data: Any) -> Event:
    """Read one event line (already JSON-decoded) into its class."""
    if not isinstance(data, dict):
        raise RecordError(f"event: expected an object, got {type(data).__name__}")
    kind = data.get("event")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise RecordError(f"event: unknown kind {kind!r}")
    return cls.from_json(data, kind)
