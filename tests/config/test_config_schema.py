"""The schema itself: documented, closed to unknown keys, in step with the code it feeds."""

from __future__ import annotations

from typing import Any, get_args

import msgspec
import pytest

from logwarden.config import Config, LedgerConfig, ReceiverConfig, SourceConfig
from logwarden.config._types import fields, is_struct, spec, struct_members, tag_of
from logwarden.config.checks import RULE_SETS
from logwarden.config.schema import DetectConfig, Severity
from logwarden.detect.engine import MATCH_MODES
from logwarden.detect.rulesets import BUILTIN
from logwarden.ledger.writer import FSYNC_POLICIES
from logwarden.records import SEVERITIES


def structs(
    cls: type[msgspec.Struct], seen: list[type[msgspec.Struct]] | None = None
) -> list[type[msgspec.Struct]]:
    """`cls` and every struct reachable from its fields (through lists and mappings)."""
    found = seen if seen is not None else []
    found.append(cls)
    for f in fields(cls):
        s = spec(f.spec.args[-1]) if f.spec.origin in (dict, list) and f.spec.args else f.spec
        for member in struct_members(s.base) or ((s.base,) if is_struct(s.base) else ()):
            if member not in found:
                structs(member, found)
    return found


ALL = structs(Config)


def test_every_field_of_every_section_says_what_it_means() -> None:
    assert len(ALL) == 28
    for cls in ALL:
        assert cls.__doc__, cls
        for f in fields(cls):
            assert f.spec.description.strip(), f"{cls.__name__}.{f.name}"


#: a good value of each required field that is not a string
REQUIRED: dict[str, Any] = {
    "levels": [{"receivers": ["r"]}],
    "format": "nginx_access",
    "region": "eu-west-1",
    "subscription": "projects/p/subscriptions/s",
    "receivers": ["r"],
    "source_matchers": [],
    "target_matchers": [],
    "to": ["a@example.com"],
}


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_msgspec_also_rejects_unknown_fields(cls: type[msgspec.Struct]) -> None:
    data: dict[str, Any] = {
        f.name: REQUIRED.get(f.name, "https://x") if f.required else msgspec.to_builtins(f.default)
        for f in fields(cls)
    }
    if tag_of(cls):
        data["type"] = tag_of(cls)
    msgspec.convert(data, cls)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({**data, "surprise": 1}, cls)


def test_sources_and_receivers_are_tagged_unions_one_struct_per_type() -> None:
    assert [tag_of(m) for m in get_args(SourceConfig)] == [
        "k8s_audit_webhook",
        "k8s_audit_file",
        "log_file",
        "container_logs",
        "k8s_events",
        "journald",
        "eks_cloudwatch",
        "gke_pubsub",
    ]
    assert [tag_of(m) for m in get_args(ReceiverConfig)] == [
        "stdout",
        "file",
        "webhook",
        "alertmanager",
        "pagerduty",
        "slack",
        "cloudevents",
        "email",
    ]
    for member in (*get_args(SourceConfig), *get_args(ReceiverConfig)):
        assert member.__struct_config__.tag_field == "type"
        assert "silence_after_secs" in member.__struct_fields__ or (
            "rate_limit_per_sec" in member.__struct_fields__
        )


def test_choices_match_the_code_that_uses_them() -> None:
    assert get_args(Severity) == SEVERITIES
    fsync = next(f for f in fields(LedgerConfig) if f.name == "fsync")
    assert fsync.spec.args == FSYNC_POLICIES
    match = next(f for f in fields(DetectConfig) if f.name == "match")
    assert match.spec.args == MATCH_MODES
    assert set(RULE_SETS) == set(BUILTIN)
