"""The schema itself: documented, closed to unknown keys, in step with the code it feeds."""

from __future__ import annotations

from typing import Any, get_args

import msgspec
import pytest

from logwarden.config import Config, LedgerConfig, SinkConfig, SourceConfig
from logwarden.config._types import fields, is_struct, spec, struct_members, tag_of
from logwarden.config.checks import RULE_SETS
from logwarden.config.schema import DetectConfig, Severity
from logwarden.detect.engine import MATCH_MODES
from logwarden.detect.rulesets import BUILTIN
from logwarden.ledger.writer import FSYNC_POLICIES
from logwarden.records import SEVERITIES


def structs(cls: type[msgspec.Struct]) -> list[type[msgspec.Struct]]:
    """`cls` and every struct reachable from its fields."""
    found = [cls]
    for f in fields(cls):
        s = spec(f.spec.args[1]) if f.spec.origin is dict else f.spec
        for member in struct_members(s.base) or ((s.base,) if is_struct(s.base) else ()):
            found += structs(member)
    return found


ALL = structs(Config)


def test_every_field_of_every_section_says_what_it_means() -> None:
    assert len(ALL) == 11
    for cls in ALL:
        assert cls.__doc__, cls
        for f in fields(cls):
            assert f.spec.description.strip(), f"{cls.__name__}.{f.name}"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_msgspec_also_rejects_unknown_fields(cls: type[msgspec.Struct]) -> None:
    data: dict[str, Any] = {
        f.name: "https://x" if f.required else msgspec.to_builtins(f.default) for f in fields(cls)
    }
    if tag_of(cls):
        data["type"] = tag_of(cls)
    msgspec.convert(data, cls)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({**data, "surprise": 1}, cls)


def test_sources_and_sinks_are_tagged_unions_one_struct_per_type() -> None:
    assert [tag_of(m) for m in get_args(SourceConfig)] == ["k8s_audit_webhook", "k8s_audit_file"]
    assert [tag_of(m) for m in get_args(SinkConfig)] == ["stdout", "file", "webhook"]
    for member in (*get_args(SourceConfig), *get_args(SinkConfig)):
        assert member.__struct_config__.tag_field == "type"
        assert "silence_after_secs" in member.__struct_fields__ or (
            "min_severity" in member.__struct_fields__
        )


def test_choices_match_the_code_that_uses_them() -> None:
    assert get_args(Severity) == SEVERITIES
    fsync = next(f for f in fields(LedgerConfig) if f.name == "fsync")
    assert fsync.spec.args == FSYNC_POLICIES
    match = next(f for f in fields(DetectConfig) if f.name == "match")
    assert match.spec.args == MATCH_MODES
    assert set(RULE_SETS) == set(BUILTIN)
