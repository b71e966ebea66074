"""The reading and writing shared by every record and event: strict types, lenient keys.

Stdlib only (no TensorFlow, no textual).
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

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


def json_type(value: Any) -> str:
    """A JSON value's kind as a person reads it in an error ("a list", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


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
            raise RecordError(f"{where}: expected a list, got {json_type(value)}")
        (item,) = get_args(tp)
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object, got {json_type(value)}")
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
    raise RecordError(f"{where}: expected {_type_name(tp)}, got {json_type(value)} {_short(value)}")


def _short(value: Any) -> str:
    """The start of a value's JSON text, on one line (a record may hold anything)."""
    import json

    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:39] + "…"


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
            raise RecordError(f"{where}: expected an object, got {json_type(data)}")
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
