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

import orjson

from pipeline.models import TrialRecord


class RecordDecodeError(ValueError):
    """Stored JSON that cannot be turned back into a TrialRecord."""


def record_to_dict(record: TrialRecord) -> dict[str, Any]:
    return _encoder(TrialRecord)(record)


def record_from_dict(data: dict[str, Any]) -> TrialRecord:
    return _decode(data, TrialRecord)


def record_to_json(record: TrialRecord) -> str:
    # orjson walks the dataclasses itself, in field order, ~10x faster than building a dict
    # for json.dumps; the text is the same but for tiny floats' exponents ("1.9e-6", not "1.9e-06").
    try:
        return orjson.dumps(record).decode()
    except TypeError:  # an integer past 64 bits (a hostile page's enrollment): json copes
        return json.dumps(record_to_dict(record), ensure_ascii=False, separators=(",", ":"))


def record_from_json(text: str) -> TrialRecord:
    try:
        return _record_from_data(orjson.loads(text))
    except (orjson.JSONDecodeError, RecordDecodeError):
        # orjson reads integers past 64 bits as floats; json reads them exactly, and gives
        # the error message for text that is not a record at all.
        return _record_from_data(_json_loads(text))


def _json_loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordDecodeError(f"not JSON: {exc}") from exc


def _record_from_data(data: Any) -> TrialRecord:
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
# Every page is written once and read back at least once (staging, linking), so encoding is
# compiled, per dataclass and per field, into small closures chosen from the type hints; they
# produce exactly what `_encode` produces.  Decoding is compiled the same way by `_decoder`.

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


def _inline_check(hint: Any) -> str | None:
    """A test of `v` (not None) that is true when the value decodes as itself, for the simple
    hints (text, integers, literals), or None."""
    hint = _optional_arm(hint)
    if hint is str:
        return "type(v) is str"
    if hint is int:  # (type(v) is int: not a bool)
        return "type(v) is int"
    if typing.get_origin(hint) is typing.Literal:
        return f"v in {typing.get_args(hint)!r}"
    return None


def _compiled_record(cls: type, fields: list[tuple[str, Any]], general: Any) -> Any:
    """`general` (the dataclass decoder above) with a fast path, compiled once per dataclass,
    for the JSON this version writes: a dict with exactly the dataclass's keys.  It builds
    the instance in one call, checking text, integer and literal fields inline (a record
    holds ~200 locations and criteria, so a function call per field was most of the
    loader's decoding time).  Anything else -- a missing key, a wrong type -- takes the
    general path, which gives the same result or the same error."""
    hints = _hints(cls)
    env: dict[str, Any] = {"cls": cls, "general": general}
    args = []
    for i, (name, dec) in enumerate(fields):
        env[f"d{i}"] = dec
        check = _inline_check(hints[name])
        if check is not None:
            args.append(f"{name}=v if (v := value[{name!r}]) is None or {check} else d{i}(v)")
        else:
            args.append(f"{name}=d{i}(value[{name!r}])")
    source = (
        "def record(value):\n"
        f"    if type(value) is dict and len(value) == {len(fields)}:\n"
        "        try:\n"
        f"            return cls({', '.join(args)})\n"
        "        except KeyError:  # not this dataclass's keys after all\n"
        "            pass\n"
        "    return general(value)\n"
    )
    exec(compile(source, f"<decoder {cls.__name__}>", "exec"), env)  # noqa: S102 - built from field names
    return env["record"]


def _decode(value: Any, hint: Any) -> Any:
    return _decoder(hint)(value)


@cache
def _decoder(hint: Any) -> Any:
    """A decoding function for `hint`, built once per type: reading the type hints for
    every value made decoding the slow part of reading records back."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(arms) != 1:
            def bad_union(value: Any) -> Any:
                if value is None:
                    return None
                raise RecordDecodeError(f"unsupported union {hint}")
            return bad_union
        inner = _decoder(arms[0])
        return lambda value: None if value is None else inner(value)
    if origin is tuple:
        item = _decoder(typing.get_args(hint)[0])

        def tuple_of(value: Any) -> Any:
            if value is None:
                return None
            if not isinstance(value, list):
                raise RecordDecodeError(f"expected a list, got {value!r}")
            return tuple([item(v) for v in value])
        return tuple_of
    if origin is typing.Literal:
        allowed = typing.get_args(hint)

        def literal(value: Any) -> Any:
            if value is None:
                return None
            if value not in allowed:
                raise RecordDecodeError(f"{value!r} is not one of {allowed}")
            return value
        return literal
    if dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(hint)]

        def record(value: Any) -> Any:
            if value is None:
                return None
            if not isinstance(value, dict):
                raise RecordDecodeError(f"expected an object for {hint.__name__}, got {value!r}")
            kwargs = {name: dec(value[name]) for name, dec in fields if name in value}
            try:
                return hint(**kwargs)
            except TypeError as exc:  # a required field is missing
                raise RecordDecodeError(f"{hint.__name__}: {exc}") from exc
        return _compiled_record(hint, fields, record)
    if hint is dt.datetime:
        return lambda value: None if value is None else dt.datetime.fromisoformat(value)
    if hint is dt.date:
        return lambda value: None if value is None else dt.date.fromisoformat(value)
    if hint in (str, int, float, bool):
        def scalar(value: Any) -> Any:
            if value is None:
                return None
            if hint is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
                raise RecordDecodeError(f"expected {hint.__name__}, got {value!r}")
            return value
        return scalar

    def unsupported(value: Any) -> Any:
        if value is None:
            return None
        raise RecordDecodeError(f"unsupported type {hint}")
    return unsupported
