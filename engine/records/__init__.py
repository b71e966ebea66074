"""Typed run records (run.json) and engine events, with their JSON readers and writers.

One home for what a run is: the engine writes these classes, `RunStore` reads them, the TUI and
the test fakes use the same classes. No TensorFlow and no textual here (stdlib only), so any
client can import it cheaply.

Every class reads itself with `from_json(dict)` and writes itself with `to_json()`. Readers are
strict about types (a wrong type raises `RecordError` naming the key and why) and lenient about
keys: an unknown key is kept in `extra` and written back, so a newer writer's fields survive a
rewrite by an older reader. run.json carries `schema`; files of schema 1 load as schema 2.
"""

from engine.records.base import (
    EVENT_SCHEMA,
    ONNX_SCHEMA,
    RUN_SCHEMA,
    R,
    Record,
    RecordError,
    optional,
    to_jsonable,
)
from engine.records.events import (
    EVENT_TYPES,
    Artifact,
    BatchProgress,
    EpochEnd,
    ErrorEvent,
    Event,
    Log,
    PhaseStarted,
    RunFinished,
    RunStarted,
    event_from_json,
)
from engine.records.run import (
    ChildFailure,
    ChildPlan,
    CompareRow,
    DataInfo,
    Distribution,
    FeaturesInfo,
    HistoryEntry,
    Metrics,
    ModelInfo,
    OnnxEval,
    OnnxExport,
    OnnxParity,
    OnnxRecord,
    OnnxVariant,
    Params,
    Phase,
    Placement,
    PreprocessingRow,
    ProviderInfo,
    RunRecord,
    ranked,
)

__all__ = [
    "Artifact",
    "BatchProgress",
    "ChildFailure",
    "ChildPlan",
    "CompareRow",
    "DataInfo",
    "Distribution",
    "EVENT_SCHEMA",
    "EVENT_TYPES",
    "EpochEnd",
    "ErrorEvent",
    "Event",
    "FeaturesInfo",
    "HistoryEntry",
    "Log",
    "Metrics",
    "ModelInfo",
    "ONNX_SCHEMA",
    "OnnxEval",
    "OnnxExport",
    "OnnxParity",
    "OnnxRecord",
    "OnnxVariant",
    "Params",
    "Phase",
    "PhaseStarted",
    "Placement",
    "PreprocessingRow",
    "ProviderInfo",
    "R",
    "RUN_SCHEMA",
    "Record",
    "RecordError",
    "RunFinished",
    "RunRecord",
    "RunStarted",
    "event_from_json",
    "optional",
    "ranked",
    "to_jsonable",
]
