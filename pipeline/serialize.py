"""TrialRecord <-> JSON for the silver `page_records` table.

Driven by the dataclasses' type hints, so a field added to `pipeline.models` round-trips
without touching this module.  Dates are ISO strings, tuples are JSON arrays, field order
follows the dataclass (the output is deterministic).  Decoding tolerates JSON written by
older versions: missing fields take their defaults, fields no longer in the model are
ignored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import types
import typing
from functools import cache
from typing import Any

from pipeline.models import TrialRecord


class RecordDecodeError(ValueError):
    """Stored JSON that cannot be turned back into a TrialRecord."""


def record_to_dict(record: TrialRecord) -> dict[str, Any]:
    return _encode(record)


def record_from_dict(data: dict[str, Any]) -> TrialRecord:
    return _decode(data, TrialRecord)


def record_to_json(record: TrialRecord) -> str:
    return json.dumps(record_to_dict(record), ensure_ascii=False, separators=(",", ":"))


def record_from_json(text: str) -> TrialRecord:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordDecodeError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RecordDecodeError("a TrialRecord must be a JSON object")
    return record_from_dict(data)


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (dt.date, dt.datetime)):  # datetime is a date subclass
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(arms) != 1:
            raise RecordDecodeError(f"unsupported union {hint}")
        return _decode(value, arms[0])
    if value is None:
        return None
    if origin is tuple:
        item_hint = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise RecordDecodeError(f"expected a list, got {value!r}")
        return tuple(_decode(v, item_hint) for v in value)
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise RecordDecodeError(f"{value!r} is not one of {typing.get_args(hint)}")
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise RecordDecodeError(f"expected an object for {hint.__name__}, got {value!r}")
        hints = _hints(hint)
        kwargs = {
            f.name: _decode(value[f.name], hints[f.name])
            for f in dataclasses.fields(hint)
            if f.name in value
        }
        try:
            return hint(**kwargs)
        except TypeError as exc:  # a required field is missing
            raise RecordDecodeError(f"{hint.__name__}: {exc}") from exc
    if hint is dt.datetime:
        return dt.datetime.fromisoformat(value)
    if hint is dt.date:
        return dt.date.fromisoformat(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise RecordDecodeError(f"expected {hint.__name__}, got {value!r}")
        return value
    raise RecordDecodeError(f"unsupported type {hint}")
