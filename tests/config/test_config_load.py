"""`load`: the embedded defaults, a full file, path resolution, and `dump` round trips."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from logwarden.config import (
    Config,
    K8sAuditFileSource,
    K8sAuditWebhookSource,
    dump,
    load,
    load_text,
)
from logwarden.config.docs import EXAMPLE
from logwarden.config.receivers import (
    FileReceiver,
    PagerDutyReceiver,
    SlackReceiver,
    StdoutReceiver,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_no_file_is_the_embedded_default_on_localhost(home: Path) -> None:
    config = load(None)
    state = home / ".local" / "state" / "logwarden"
    assert config.data_dir == str(state)
    assert config.service.listen == "127.0.0.1:9095" and config.service.log_format == "text"
    assert config.sources == {"audit": K8sAuditWebhookSource()}
    audit = config.sources["audit"]
    assert isinstance(audit, K8sAuditWebhookSource)
    assert audit.listen == "127.0.0.1:8443" and audit.path == "/audit"
    assert audit.generates_tls and not audit.allow_unauthenticated
    assert audit.max_body_bytes == 10 * 1024 * 1024 and audit.silence_after_secs == 300
    assert config.receivers == {"stdout": StdoutReceiver()}
    assert config.alerts.route.receiver is None and config.alerts.escalations == {}
    assert config.alerts.api.token_file == str(state / "api.token")
    assert config.ledger.path == str(state / "ledger")
    assert config.ledger.key_file == str(state / "ledger.key")
    assert config.ledger.fsync == "always" and config.ledger.anchor is None
    assert config.ledger.segment_bytes == 64 << 20 and config.ledger.checkpoint_interval_secs == 1
    assert config.detect.rules == ["builtin"] and config.detect.match == "first"
    assert config.detect.lateness_secs == 5 and config.detect.suppress_secs == 0
    assert config.redact.extra_paths == []
    assert (config.pipeline.queue_events, config.pipeline.batch_events) == (100_000, 1024)


def test_an_empty_file_and_an_empty_mapping_are_the_defaults(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set\n")
    assert load(str(empty)) == load(None)
    assert load_text("{}\n") == load(None)


def test_the_documented_example_is_a_full_valid_file(tmp_path: Path) -> None:
    (tmp_path / "logwarden.yaml").write_text(EXAMPLE)
    config = load(str(tmp_path / "logwarden.yaml"))
    assert config.data_dir == "/var/lib/logwarden"
    assert config.service.listen == "0.0.0.0:9095" and config.service.log_format == "json"
    audit, tail = config.sources["audit"], config.sources["audit-log"]
    assert isinstance(audit, K8sAuditWebhookSource) and not audit.generates_tls
    assert audit.client_ca_file == "/etc/logwarden/tls/apiserver-client-ca.crt"
    assert isinstance(tail, K8sAuditFileSource)
    assert tail.path == "/var/log/kubernetes/audit/audit.log"
    assert (tail.silence_after_secs, tail.poll_interval_secs) == (600, 0.25)
    assert config.redact.extra_paths == ["requestObject.spec.password"]
    assert config.ledger.path == "/var/lib/logwarden/ledger"
    assert config.ledger.anchor == "/mnt/worm/logwarden"
    assert config.detect.rules == ["builtin", "falco", "sigma", str(tmp_path / "rules" / "local")]
    assert config.detect.match == "all" and config.detect.suppress_secs == 300
    console, archive, chat, oncall = (
        config.receivers[k] for k in ("console", "archive", "chat", "oncall")
    )
    assert console == StdoutReceiver()
    assert archive == FileReceiver(path="/var/log/logwarden/alerts.jsonl")
    assert isinstance(chat, SlackReceiver) and chat.url_file == "/etc/logwarden/slack.url"
    assert isinstance(oncall, PagerDutyReceiver)
    route = config.alerts.route
    assert (route.receiver, route.group_by, route.group_wait) == (
        "archive",
        ["alertname", "namespace"],
        "30s",
    )
    assert route.routes[0].continue_ and route.routes[1].escalation == "oncall"
    policy = config.alerts.escalations["oncall"]
    assert [lv.receivers for lv in policy.levels] == [["chat"], ["oncall"]]
    assert policy.repeat == 1
    assert config.alerts.inhibit_rules[0].equal == ["source"]


def test_relative_paths_are_relative_to_the_config_file_and_tilde_is_expanded(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "etc" / "logwarden"
    here.mkdir(parents=True)
    (here / "logwarden.yaml").write_text(
        "data_dir: state\n"
        "sources:\n"
        "  audit:\n"
        "    type: k8s_audit_webhook\n"
        "    tls_cert_file: tls/server.crt\n"
        "    tls_key_file: ./tls/../tls/server.key\n"
        "    bearer_token_file: ~/token\n"
        "  log: {type: k8s_audit_file, path: /var/log/audit.log}\n"
        "ledger: {anchor: ../anchor}\n"
        "detect: {rules: [builtin, falco, my-rules, /opt/rules]}\n"
        "receivers: {out: {type: file, path: alerts.jsonl}}\n"
    )
    monkeypatch.chdir(tmp_path)  # the working directory plays no part
    config = load("etc/logwarden/logwarden.yaml")
    audit = config.sources["audit"]
    assert isinstance(audit, K8sAuditWebhookSource)
    assert config.data_dir == str(here / "state")
    assert audit.tls_cert_file == str(here / "tls" / "server.crt")
    assert audit.tls_key_file == str(here / "tls" / "server.key")
    assert audit.bearer_token_file == str(home / "token")
    assert config.sources["log"] == K8sAuditFileSource(path="/var/log/audit.log")
    assert config.ledger.path == str(here / "state" / "ledger")
    assert config.ledger.key_file == str(here / "state" / "ledger.key")
    assert config.ledger.anchor == str(tmp_path / "etc" / "anchor")
    assert config.detect.rules == ["builtin", "falco", str(here / "my-rules"), "/opt/rules"]
    assert config.receivers["out"] == FileReceiver(path=str(here / "alerts.jsonl"))


def test_load_text_resolves_against_its_base_dir(tmp_path: Path) -> None:
    config = load_text("data_dir: state\n", "inline.yaml", str(tmp_path))
    assert config.data_dir == str(tmp_path / "state")
    assert os.path.isabs(load_text("data_dir: state\n").data_dir)


def test_integers_are_numbers_but_nothing_else_is_converted() -> None:
    config = load_text("ledger: {checkpoint_interval_secs: 2}\n")
    assert config.ledger.checkpoint_interval_secs == 2.0
    assert isinstance(config.ledger.checkpoint_interval_secs, float)


def test_what_show_prints_loads_back_to_the_same_config(tmp_path: Path) -> None:
    (tmp_path / "logwarden.yaml").write_text(EXAMPLE)
    for config in (load(None), load(str(tmp_path / "logwarden.yaml"))):
        assert load_text(dump(config)) == config


def test_the_loaded_config_is_what_msgspec_itself_accepts(tmp_path: Path) -> None:
    """The field-by-field checks and msgspec's strict decoding agree on a good file."""
    (tmp_path / "logwarden.yaml").write_text(EXAMPLE)
    for config in (load(None), load(str(tmp_path / "logwarden.yaml"))):
        assert msgspec.convert(msgspec.to_builtins(config), Config, strict=True) == config


def test_data_dir_from_the_command_line_replaces_the_files(tmp_path: Path) -> None:
    config = load(None, data_dir=str(tmp_path / "d"))
    assert config.data_dir == str(tmp_path / "d")
    assert config.ledger.path == str(tmp_path / "d" / "ledger")
    path = tmp_path / "c.yaml"
    path.write_text("data_dir: /elsewhere\nledger: {fsync: checkpoint}\n")
    config = load(str(path), data_dir=str(tmp_path / "e"))
    assert config.ledger.path == str(tmp_path / "e" / "ledger")
    assert config.ledger.fsync == "checkpoint"
