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
    return _encoder(TrialRecord)(record)


def record_from_dict(data: dict[str, Any]) -> TrialRecord:
    if not isinstance(data, dict):
        return _decode(data, TrialRecord)
    return _decoder(TrialRecord)(data)


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


# --- compiled paths ------------------------------------------------------------------------
# Every page is written once and read back at least once (staging, linking), so the generic
# walk above is compiled, per dataclass and per field, into small closures chosen from the
# type hints.  They produce exactly what `_encode` / `_decode` produce; any value that is not
# of the hinted type takes the generic path, which keeps its checks and error messages.

_PLAIN = (str, int, float, bool)


def _plain_hint(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return all(a is type(None) or _plain_hint(a) for a in typing.get_args(hint))
    return hint in _PLAIN or origin is typing.Literal


def _optional_arm(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        return arms[0] if len(arms) == 1 else hint
    return hint


@cache
def _encoder(cls: type) -> Any:
    hints = _hints(cls)
    steps: list[tuple[str, Any]] = []
    for f in dataclasses.fields(cls):
        hint = _optional_arm(hints[f.name])
        if _plain_hint(hints[f.name]):
            steps.append((f.name, None))
        elif typing.get_origin(hint) is tuple and _plain_hint(typing.get_args(hint)[0]):
            steps.append((f.name, list))
        elif typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            item = _encoder(typing.get_args(hint)[0])
            steps.append((f.name, lambda v, item=item: [item(x) for x in v]))
        else:
            steps.append((f.name, _encode))

    def encode(value: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, step in steps:
            v = getattr(value, name)
            if step is None or v is None:
                out[name] = v if type(v) in _PLAIN or v is None else _encode(v)
            elif step is list:
                out[name] = [x if type(x) in _PLAIN else _encode(x) for x in v] \
                    if isinstance(v, (tuple, list)) else _encode(v)
            else:
                out[name] = step(v) if isinstance(v, (tuple, list)) or step is _encode else _encode(v)
        return out

    return encode


def _field_decoder(hint: Any) -> Any:
    """A decoder for one hinted value: fast when the JSON value has the expected type."""
    arm = _optional_arm(hint)
    origin = typing.get_origin(arm)
    if arm is str or arm is bool:
        kind = arm
        return lambda v: v if v is None or type(v) is kind else _decode(v, hint)
    if arm is int:
        return lambda v: v if v is None or type(v) is int else _decode(v, hint)
    if arm is float:
        return lambda v: v if v is None or type(v) is float else _decode(v, hint)
    if origin is typing.Literal:
        allowed = frozenset(typing.get_args(arm))
        return lambda v: v if v is None or (type(v) is str and v in allowed) else _decode(v, hint)
    if arm is dt.date:
        return lambda v: v if v is None else (
            dt.date.fromisoformat(v) if type(v) is str else _decode(v, hint))
    if origin is tuple and len(typing.get_args(arm)) == 2 and typing.get_args(arm)[1] is Ellipsis:
        item = _field_decoder(typing.get_args(arm)[0])
        return lambda v: v if v is None else (
            tuple([item(x) for x in v]) if type(v) is list else _decode(v, hint))
    if dataclasses.is_dataclass(arm):
        inner = _decoder(arm)
        return lambda v: v if v is None else (inner(v) if type(v) is dict else _decode(v, hint))
    return lambda v: _decode(v, hint)


@cache
def _decoder(cls: type) -> Any:
    hints = _hints(cls)
    steps = tuple((f.name, _field_decoder(hints[f.name])) for f in dataclasses.fields(cls))

    def decode(value: dict[str, Any]) -> Any:
        kwargs = {name: dec(value[name]) for name, dec in steps if name in value}
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a required field is missing
            raise RecordDecodeError(f"{cls.__name__}: {exc}") from exc

    return decode


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
