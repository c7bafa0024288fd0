"""Reading the schema's type annotations: what the validator, resolver and docs share."""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec

from logwarden.config.checks import Check

__all__ = [
    "Field",
    "Spec",
    "fields",
    "is_struct",
    "literal_values",
    "spec",
    "struct_members",
    "tag_of",
]


@dataclass(frozen=True)
class Spec:
    """A type with its annotations taken apart."""

    base: Any
    meta: msgspec.Meta | None = None
    check: Check | None = None
    optional: bool = False
    args: tuple[Any, ...] = field(default=())

    @property
    def origin(self) -> Any:
        return get_origin(self.base) or self.base

    @property
    def description(self) -> str:
        return (self.meta.description or "") if self.meta is not None else ""


@dataclass(frozen=True)
class Field:
    """One field of a schema struct: its name, type spec and default."""

    name: str
    spec: Spec
    required: bool
    default: Any
    #: the attribute's name in Python, where the file's name is a keyword (`continue`)
    attr: str = ""


def spec(tp: Any) -> Spec:
    """Take `Annotated[X | None, Meta(...), Check(...)]` apart."""
    meta, check = None, None
    if get_origin(tp) is Annotated:
        tp, *extras = get_args(tp)
        meta = next((e for e in extras if isinstance(e, msgspec.Meta)), None)
        check = next((e for e in extras if isinstance(e, Check)), None)
    optional = False
    if get_origin(tp) in (Union, types.UnionType):
        members = tuple(a for a in get_args(tp) if a is not type(None))
        optional = len(members) < len(get_args(tp))
        tp = members[0] if len(members) == 1 else Union[members]  # noqa: UP007
    return Spec(tp, meta, check, optional, get_args(tp))


def is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def struct_members(tp: Any) -> tuple[type[msgspec.Struct], ...]:
    """The structs of a tagged union (`A | B`), or () when `tp` is not one."""
    if get_origin(tp) not in (Union, types.UnionType):
        return ()
    members = get_args(tp)
    return members if all(is_struct(m) and tag_of(m) for m in members) else ()


def tag_of(cls: type[msgspec.Struct]) -> str:
    """The value of `type:` that selects this component struct ('' if it has none)."""
    tag = cls.__struct_config__.tag
    return tag if isinstance(tag, str) else ""


def fields(cls: type[msgspec.Struct]) -> list[Field]:
    """The fields of a struct, in declaration order, base class fields last."""
    out = []
    for info in sorted(msgspec.structs.fields(cls), key=lambda i: _depth(cls, i.name)):
        required = info.default is msgspec.NODEFAULT and info.default_factory is msgspec.NODEFAULT
        default = info.default
        if info.default_factory is not msgspec.NODEFAULT:
            default = info.default_factory()
        out.append(Field(info.encode_name, spec(info.type), required, default, info.name))
    return out


def _depth(cls: type, name: str) -> int:
    """How far up the class tree `name` is declared (0: in `cls` itself)."""
    for depth, klass in enumerate(cls.__mro__):
        if name in vars(klass).get("__annotations__", {}):
            return depth
    return len(cls.__mro__)


def literal_values(s: Spec) -> tuple[Any, ...]:
    return s.args if s.origin is Literal else ()
