"""Plain data (from YAML) checked against the schema, field by field, every problem kept.

`Validator.struct(Config, data)` walks the schema's types and the data together. Each
value is checked on its own (type, range, `Check`), then each struct's `problems()` relate
its fields; a bad value never stops the others from being checked. Nothing is coerced:
the only conversion is an integer where a number is expected.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any, Literal, TypeVar

import msgspec

from logwarden.config._types import Field, Spec, fields, is_struct, spec, struct_members, tag_of
from logwarden.config._yaml import INVALID, Lines
from logwarden.config.checks import show
from logwarden.config.errors import Key, Problem

__all__ = ["Validator"]

S = TypeVar("S", bound=msgspec.Struct)
_BAD: Any = object()

_LABELS: dict[Any, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _label(s: Spec) -> str:
    if s.check is not None:
        return s.check.expected
    if is_struct(s.base):
        return "a mapping"
    if struct_members(s.base):
        return "a mapping with a type"
    return _LABELS.get(s.origin, str(s.base))


class Validator:
    """Checks data against the schema; `problems` collects what is wrong, with lines."""

    def __init__(self, file: str | None = None, lines: Lines | None = None) -> None:
        self.file = file
        self.lines: Lines = lines or {}
        self.problems: list[Problem] = []

    def report(self, path: tuple[Key, ...], message: str) -> None:
        self.problems.append(Problem(message, path, self.file, self._line(path)))

    def _line(self, path: tuple[Key, ...]) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 0)

    def _mismatch(self, s: Spec, data: Any, path: tuple[Key, ...]) -> Any:
        self.report(path, f"expected {_label(s)}, got {show(data)}")
        return _BAD

    # ------------------------------------------------------------------ structs

    def struct(self, cls: type[S], data: Any, path: tuple[Key, ...] = ()) -> S | None:
        """The struct `data` describes, or None when a field of it is wrong."""
        if data is INVALID:  # unreadable, already reported
            return None
        if not isinstance(data, dict):
            self._mismatch(spec(cls), data, path)
            return None
        known = {f.name: f for f in fields(cls)}
        tag_field = cls.__struct_config__.tag_field if tag_of(cls) else None
        for key in data:
            if key not in known and key != tag_field:
                self.report((*path, key), _unknown(key, list(known)))
        values = {f.attr: self._field(f, data, path) for f in known.values()}
        if any(v is _BAD for v in values.values()):
            return None
        obj = cls(**{k: v for k, v in values.items() if v is not _MISSING})
        for where, message in obj.problems():  # type: ignore[attr-defined]
            self.report((*path, *where), message)
        return obj

    def _field(self, f: Field, data: dict[Any, Any], path: tuple[Key, ...]) -> Any:
        if f.name in data and data[f.name] is None and not f.spec.optional and not f.required:
            where = (*path, f.name)
            self.report(
                where, f"expected {_label(f.spec)}, got null (leave the key out for the default)"
            )
            return _BAD
        if f.name in data:
            return self.value(f.spec, data[f.name], (*path, f.name))
        if f.required:
            self.report(path, f"missing required field {json.dumps(f.name)}")
            return _BAD
        return _MISSING

    def _component(self, s: Spec, data: Any, path: tuple[Key, ...]) -> Any:
        if not isinstance(data, dict):
            return self._mismatch(s, data, path)
        members = {tag_of(m): m for m in struct_members(s.base)}
        tag_field = next(iter(members.values())).__struct_config__.tag_field or "type"
        names = ", ".join(json.dumps(t) for t in members)
        if tag_field not in data:
            self.report(path, f"missing required field {json.dumps(tag_field)} (one of {names})")
            return _BAD
        tag = data[tag_field]
        if not isinstance(tag, str) or tag not in members:
            self.report((*path, tag_field), f"expected one of {names}, got {show(tag)}")
            return _BAD
        obj = self.struct(members[tag], data, path)
        return _BAD if obj is None else obj

    # ------------------------------------------------------------------ values

    def value(self, s: Spec, data: Any, path: tuple[Key, ...]) -> Any:
        """`data` checked against the type spec `s` (problems reported), or `_BAD`."""
        if data is INVALID:
            return _BAD
        if data is None:
            return None if s.optional else self._mismatch(s, data, path)
        out = self._typed(s, data, path)
        if out is _BAD or not self._in_bounds(s, out, path):
            return _BAD
        wrong = s.check(out) if s.check is not None and isinstance(out, str) else None
        if wrong is not None:
            self.report(path, wrong)
            return _BAD
        return out

    def _typed(self, s: Spec, data: Any, path: tuple[Key, ...]) -> Any:
        if is_struct(s.base):
            obj = self.struct(s.base, data, path)
            return _BAD if obj is None else obj
        if struct_members(s.base):
            return self._component(s, data, path)
        if s.origin is Literal:
            return self._literal(s, data, path)
        if s.origin is list and isinstance(data, list):
            return self._list(s, data, path)
        if s.origin is dict and isinstance(data, dict):
            return self._dict(s, data, path)
        if s.origin in (list, dict):
            return self._mismatch(s, data, path)
        return self._scalar(s, data, path)

    def _scalar(self, s: Spec, data: Any, path: tuple[Key, ...]) -> Any:
        if s.base is bool:
            ok = isinstance(data, bool)
        elif s.base is int:
            ok = isinstance(data, int) and not isinstance(data, bool)
        elif s.base is float:
            ok = isinstance(data, int | float) and not isinstance(data, bool)
            if ok and not math.isfinite(data):
                self.report(path, f"expected a finite number, got {show(data)}")
                return _BAD
            data = float(data) if ok else data
        elif s.base is str:
            ok = isinstance(data, str)
        else:
            raise TypeError(f"the config schema uses an unsupported type: {s.base!r}")
        return data if ok else self._mismatch(s, data, path)

    def _literal(self, s: Spec, data: Any, path: tuple[Key, ...]) -> Any:
        if isinstance(data, str) and data in s.args:
            return data
        names = ", ".join(json.dumps(a) for a in s.args)
        wanted = f"one of {names}" if len(s.args) > 1 else names
        self.report(path, f"expected {wanted}, got {show(data)}")
        return _BAD

    def _list(self, s: Spec, data: list[Any], path: tuple[Key, ...]) -> Any:
        item = spec(s.args[0])
        out = [self.value(item, v, (*path, i)) for i, v in enumerate(data)]
        return _BAD if any(v is _BAD for v in out) else out

    def _dict(self, s: Spec, data: dict[Any, Any], path: tuple[Key, ...]) -> Any:
        key_spec, value_spec = spec(s.args[0]), spec(s.args[1])
        out = {}
        for key, v in data.items():
            where = (*path, key)
            if not isinstance(key, str):
                self.report(where, f"expected a string key, got {show(key)}")
                out[key] = _BAD
                continue
            if key_spec.check is not None and (wrong := key_spec.check(key)) is not None:
                self.report(where, wrong)
            out[key] = self.value(value_spec, v, where)
        return _BAD if any(v is _BAD for v in out.values()) else out

    def _in_bounds(self, s: Spec, value: Any, path: tuple[Key, ...]) -> bool:
        meta = s.meta
        if meta is None:
            return True
        if isinstance(value, dict | list) and meta.min_length and len(value) < meta.min_length:
            self.report(path, f"expected at least {meta.min_length} entry, got none")
            return False
        if not isinstance(value, int | float) or isinstance(value, bool):
            return True
        for attr, sign in _BOUNDS:
            bound = getattr(meta, attr)
            if bound is not None and not _holds(value, attr, bound):
                self.report(path, f"expected {_label(s)} {sign} {bound}, got {show(value)}")
                return False
        return True


_MISSING: Any = object()


def _holds(value: float, attr: str, bound: float) -> bool:
    if attr == "gt":
        return value > bound
    if attr == "ge":
        return value >= bound
    if attr == "lt":
        return value < bound
    return value <= bound


def _unknown(key: Any, known: list[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1)
    if close:
        return f"unknown field; did you mean {json.dumps(close[0])}?"
    return f"unknown field; expected one of: {', '.join(known)}"
