"""Every problem of a config file at once, each with file:line and path; nothing coerced."""

from __future__ import annotations

from pathlib import Path

import pytest

from logwarden.config import ConfigError, K8sAuditWebhookSource, load, load_text
from logwarden.errors import LogwardenError


def problems(text: str) -> list[str]:
    """The problems `text` has, as printed, in file order."""
    with pytest.raises(ConfigError) as caught:
        load_text(text, "logwarden.yaml")
    return [str(p) for p in caught.value.problems]


def only(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def test_every_error_of_a_file_is_reported_at_once_with_line_and_path(tmp_path: Path) -> None:
    path = tmp_path / "logwarden.yaml"
    path.write_text(
        "service:\n"  # 1
        "  listen: 9095\n"  # 2
        "  log_format: xml\n"  # 3
        "sources:\n"  # 4
        "  audit:\n"  # 5
        "    type: k8s_audit_webhook\n"  # 6
        '    listen: "8443"\n'  # 7
        "    max_body_bytes: -1\n"  # 8
        "  tail:\n"  # 9
        "    type: k8s_audit_file\n"  # 10
        "ledger:\n"  # 11
        "  fsync: sometimes\n"  # 12
        "  segment_bytes: 1 MiB\n"  # 13
        "detect:\n"  # 14
        "  rules: builtin\n"  # 15
        "receivers:\n"  # 16
        "  hook: {type: webhook, url: 'http://siem.example.com/'}\n"  # 17
        "pipeline: {queue_events: 0, batch_events: 1}\n"  # 18
        "colour: blue\n"  # 19
    )
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    f = str(path)
    assert str(caught.value).splitlines() == [
        f"{f}:2: service.listen: expected host:port, got 9095",
        f'{f}:3: service.log_format: expected one of "text", "json", got "xml"',
        f'{f}:7: sources.audit.listen: expected host:port, got "8443"',
        f"{f}:8: sources.audit.max_body_bytes: expected an integer >= 1, got -1",
        f'{f}:9: sources.tail: missing required field "path"',
        f'{f}:12: ledger.fsync: expected one of "always", "checkpoint", got "sometimes"',
        f'{f}:13: ledger.segment_bytes: expected an integer, got "1 MiB"',
        f'{f}:15: detect.rules: expected a list, got "builtin"',
        f'{f}:17: receivers.hook.url: expected an https:// URL, got "http://siem.example.com/"',
        f"{f}:18: pipeline.queue_events: expected an integer >= 1, got 0",
        f"{f}:19: colour: unknown field; expected one of: data_dir, service, sources, redact, "
        "ledger, detect, receivers, alerts, pipeline",
    ]
    assert isinstance(caught.value, LogwardenError)
    first = caught.value.problems[0]
    assert (first.file, first.line, first.path) == (f, 2, ("service", "listen"))


def test_unknown_keys_are_rejected_at_every_level_with_a_suggestion() -> None:
    assert problems(
        "sorces: {}\n"
        "service: {listen: '127.0.0.1:1', bind: x}\n"
        "sources:\n"
        "  a: {type: k8s_audit_file, path: /x, poll_interval: 1}\n"
        "receivers:\n"
        "  s: {type: stdout, burst: 2, colour: true}\n"
    ) == [
        'logwarden.yaml:1: sorces: unknown field; did you mean "sources"?',
        "logwarden.yaml:2: service.bind: unknown field; expected one of: listen, log_format",
        "logwarden.yaml:4: sources.a.poll_interval: unknown field; "
        'did you mean "poll_interval_secs"?',
        "logwarden.yaml:6: receivers.s.colour: unknown field; expected one of: "
        "rate_limit_per_sec, burst",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data_dir: 7\n", "data_dir: expected a path, got 7"),
        ("service: [a]\n", "service: expected a mapping, got a list"),
        ("service:\n", "service: expected a mapping, got null (leave the key out for the default)"),
        (
            "ledger: {fsync: true}\n",
            'ledger.fsync: expected one of "always", "checkpoint", got true',
        ),
        (
            "ledger: {segment_bytes: 4096.0}\n",
            "ledger.segment_bytes: expected an integer, got 4096.0",
        ),
        ("ledger: {segment_bytes: true}\n", "ledger.segment_bytes: expected an integer, got true"),
        (
            "ledger: {checkpoint_interval_secs: '1'}\n",
            'ledger.checkpoint_interval_secs: expected a number, got "1"',
        ),
        (
            "ledger: {checkpoint_interval_secs: .nan}\n",
            "ledger.checkpoint_interval_secs: expected a finite number, got nan",
        ),
        (
            "detect: {rules: [builtin, 3]}\n",
            "detect.rules[1]: expected a rule set name or path, got 3",
        ),
        ("detect: {match: any}\n", 'detect.match: expected one of "first", "all", got "any"'),
        (
            "sources: {a: {type: k8s_audit_webhook, allow_unauthenticated: yes please}}\n",
            'sources.a.allow_unauthenticated: expected true or false, got "yes please"',
        ),
        (
            "sources: {a: {type: k8s_audit_webhook, allow_unauthenticated: 1}}\n",
            "sources.a.allow_unauthenticated: expected true or false, got 1",
        ),
        (
            "receivers: {s: {type: stdout, burst: 0}}\n",
            "receivers.s.burst: expected an integer >= 1, got 0",
        ),
        (
            "receivers: {s: {type: email, host: h, from_address: a@b, to: [c@d], tls: ssl}}\n",
            'receivers.s.tls: expected one of "starttls", "smtps", "none", got "ssl"',
        ),
        (
            "alerts: {route: {group_wait: 30 seconds}}\n",
            "alerts.route.group_wait: expected a duration like 30s, 5m, 4h or 1h30m, "
            'got "30 seconds"',
        ),
        (
            "alerts: {route: {routes: [{matchers: ['severity~high']}]}}\n",
            'alerts.route.routes[0].matchers[0]: expected a label matcher: name="value", '
            'name!="value", name=~"regex" or name!~"regex", got "severity~high"',
        ),
        (
            "alerts: {inhibit_rules: [{source_matchers: ['a=~\"(\"'], target_matchers: []}]}\n",
            "alerts.inhibit_rules[0].source_matchers[0]: expected a matcher with a valid "
            "regular expression (missing ), unterminated subpattern at position 0), "
            'got "a=~\\"(\\""',
        ),
        (
            "service: {log_format: JSON}\n",
            'service.log_format: expected one of "text", "json", got "JSON"',
        ),
        (
            "receivers: {s: {type: file, path: 2024-01-01}}\n",
            "receivers.s.path: expected a path, got 2024-01-01 (date)",
        ),
    ],
)
def test_bad_types_and_enum_values_are_refused_never_coerced(text: str, message: str) -> None:
    assert only(text) == f"logwarden.yaml:1: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("service: {listen: 'localhost:0'}", 'expected a port in 1-65535, got "localhost:0"'),
        (
            "service: {listen: 'localhost:65536'}",
            'expected a port in 1-65535, got "localhost:65536"',
        ),
        ("service: {listen: ':9095'}", 'expected host:port, got ":9095"'),
        ("service: {listen: 'localhost'}", 'expected host:port, got "localhost"'),
        (
            "service: {listen: '::1:9095'}",
            'expected host:port (an IPv6 host in brackets: [::1]:8443), got "::1:9095"',
        ),
        ("service: {listen: 'local host:1'}", 'expected host:port, got "local host:1"'),
    ],
)
def test_listen_addresses_are_host_and_port(text: str, message: str) -> None:
    assert only(text) == f"logwarden.yaml:1: service.listen: {message}"
    assert load_text("service: {listen: '[::1]:9095'}").service.listen == "[::1]:9095"
    assert load_text("service: {listen: '0.0.0.0:65535'}").service.listen == "0.0.0.0:65535"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sources: {a: {type: k8s_audit_file, path: /x, poll_interval_secs: 0}}",
            "sources.a.poll_interval_secs: expected a number > 0, got 0.0",
        ),
        (
            "sources: {a: {type: k8s_audit_file, path: /x, silence_after_secs: -1}}",
            "sources.a.silence_after_secs: expected a number >= 0, got -1.0",
        ),
        (
            "sources: {a: {type: k8s_audit_webhook, path: audit}}",
            'sources.a.path: expected a URL path starting with "/", got "audit"',
        ),
        (
            "ledger: {segment_bytes: 100}",
            "ledger.segment_bytes: expected an integer >= 4096, got 100",
        ),
        ("ledger: {path: ''}", 'ledger.path: expected a non-empty path, got ""'),
        ("detect: {lateness_secs: -5}", "detect.lateness_secs: expected a number >= 0, got -5.0"),
        (
            "receivers: {w: {type: webhook, url: 'https://x', timeout_secs: 0}}",
            "receivers.w.timeout_secs: expected a number > 0, got 0.0",
        ),
        (
            "receivers: {w: {type: webhook, url: 'https:///path'}}",
            'receivers.w.url: expected an https:// URL, got "https:///path"',
        ),
        (
            "receivers: {w: {type: webhook, url: 'https://x:99999/'}}",
            'receivers.w.url: expected an https:// URL with a port in 1-65535, got "https://x:99999/"',
        ),
        (
            "receivers: {w: {type: webhook, url: 'https://x', headers: {'A B': c}}}",
            'receivers.w.headers["A B"]: expected an HTTP header name, got "A B"',
        ),
        (
            "receivers: {w: {type: webhook, url: 'https://x', headers: {A: \"b\\nc\"}}}",
            "receivers.w.headers.A: expected an HTTP header value without control characters, "
            'got "b\\nc"',
        ),
        (
            "receivers: {w: {type: webhook, url: 'https://x', headers: {A: 1}}}",
            "receivers.w.headers.A: expected an HTTP header value, got 1",
        ),
        (
            "redact: {extra_paths: [requestObject..password]}",
            "redact.extra_paths[0]: expected a path of dot-separated non-empty names "
            '(requestObject.spec.password), got "requestObject..password"',
        ),
        (
            "redact: {extra_paths: ['.spec']}",
            "redact.extra_paths[0]: expected a path of dot-separated non-empty names "
            '(requestObject.spec.password), got ".spec"',
        ),
        ("sources: {}", "sources: expected at least 1 entry, got none"),
        (
            "receivers: {'a b': {type: stdout}}",
            'receivers["a b"]: expected an id of letters, digits, '
            """'_', '.' and '-', starting with a letter or digit, got "a b\"""",
        ),
        (
            "pipeline: {queue_events: 10, batch_events: 11}",
            "pipeline.batch_events: must not exceed queue_events (10)",
        ),
    ],
)
def test_value_ranges_and_syntax_are_checked(text: str, message: str) -> None:
    assert only(text + "\n") == f"logwarden.yaml:1: {message}"


def test_components_need_a_known_type_and_their_required_fields() -> None:
    assert problems(
        "sources:\n"
        "  a: {path: /x}\n"
        "  b: {type: syslog}\n"
        "receivers:\n"
        "  c:\n"
        "    type: webhook\n"
        "  d: {type: [file]}\n"
    ) == [
        'logwarden.yaml:2: sources.a: missing required field "type" (one of '
        '"k8s_audit_webhook", "k8s_audit_file", "log_file", "container_logs", "k8s_events", '
        '"journald", "eks_cloudwatch", "gke_pubsub")',
        'logwarden.yaml:3: sources.b.type: expected one of "k8s_audit_webhook", '
        '"k8s_audit_file", "log_file", "container_logs", "k8s_events", "journald", '
        '"eks_cloudwatch", "gke_pubsub", got "syslog"',
        'logwarden.yaml:5: receivers.c: missing required field "url"',
        'logwarden.yaml:7: receivers.d.type: expected one of "stdout", "file", "webhook", '
        '"alertmanager", "pagerduty", "slack", "cloudevents", "email", got a list',
    ]


OWN_CERT = "tls_cert_file: /tls/crt, tls_key_file: /tls/key"


def webhook(fields: str) -> str:
    return "sources: {audit: {type: k8s_audit_webhook, " + fields + "}}\n"


def test_a_webhook_with_its_own_certificate_needs_client_authentication() -> None:
    assert only(webhook(OWN_CERT)) == (
        "logwarden.yaml:1: sources.audit: no client authentication: set client_ca_file (mTLS) "
        "or bearer_token_file, or allow_unauthenticated: true to accept anyone who can reach "
        "listen"
    )
    for auth in ("client_ca_file: /ca", "bearer_token_file: /tok", "allow_unauthenticated: true"):
        source = load_text(webhook(f"{OWN_CERT}, {auth}")).sources["audit"]
        assert isinstance(source, K8sAuditWebhookSource) and not source.generates_tls
    assert "no client authentication" in only(webhook(f"{OWN_CERT}, allow_unauthenticated: false"))


def test_a_webhook_with_a_generated_certificate_uses_the_generated_ca() -> None:
    source = load_text(webhook("listen: '127.0.0.1:8443'")).sources["audit"]
    assert isinstance(source, K8sAuditWebhookSource) and source.generates_tls


def test_a_certificate_needs_its_key_and_a_key_its_certificate() -> None:
    assert only(webhook("tls_cert_file: /c, client_ca_file: /ca")) == (
        "logwarden.yaml:1: sources.audit.tls_cert_file: set tls_key_file too, or neither to "
        "use a certificate generated in data_dir"
    )
    assert only(webhook("tls_key_file: /k, client_ca_file: /ca")) == (
        "logwarden.yaml:1: sources.audit.tls_key_file: set tls_cert_file too, or neither to "
        "use a certificate generated in data_dir"
    )


def test_two_endpoints_cannot_listen_on_one_address() -> None:
    text = "service: {listen: '127.0.0.1:8443'}\nsources:\n  audit:\n    type: k8s_audit_webhook\n"
    message = "sources.audit.listen: 127.0.0.1:8443 is also service.listen"
    assert only(text) == f"logwarden.yaml:3: {message}"


def test_yaml_mistakes_are_problems_with_their_line() -> None:
    assert only("service:\n  listen: [a\n") == (
        "logwarden.yaml:3:1: invalid YAML: while parsing a flow sequence; expected ',' or ']', "
        "but got '<stream end>'"
    )
    assert problems("detect: {match: all}\nservice: {}\ndetect: {match: first}\n") == [
        "logwarden.yaml:3: detect: duplicate key (first at line 1)"
    ]
    assert only("- a\n- b\n") == "logwarden.yaml:1: expected a mapping, got a list"
    assert only("service: &s {log_format: json}\npipeline: {<<: *s}\n") == (
        "logwarden.yaml:2: pipeline: merge keys (<<) are not supported: write the keys out"
    )
    assert only("ledger: {segment_bytes: !!int abc}\n").startswith(
        "logwarden.yaml:1: ledger.segment_bytes: invalid value:"
    )
    assert problems("a: &a [*a]\n")[0] == "logwarden.yaml:1: a[0]: an alias refers to itself"
    assert only("--- {}\n--- {}\n").startswith(
        "logwarden.yaml:2:1: invalid YAML: expected a single"
    )


def test_a_file_that_cannot_be_read_is_one_problem(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read: No such file"):
        load(missing)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load(str(binary))


def test_routes_and_escalations_name_receivers_and_policies_that_exist() -> None:
    assert problems(
        "receivers: {a: {type: stdout}}\n"
        "alerts:\n"
        "  route:\n"
        "    receiver: pager\n"
        "    routes: [{escalation: oncall}]\n"
        "  escalations:\n"
        "    night: {levels: [{receivers: [a, sms]}]}\n"
    ) == [
        "logwarden.yaml:4: alerts.route.receiver: no receiver 'pager' (receivers: a)",
        "logwarden.yaml:5: alerts.route.routes[0].escalation: no escalation policy 'oncall' "
        "under alerts.escalations",
        "logwarden.yaml:7: alerts.escalations.night.levels[0].receivers[1]: no receiver 'sms' "
        "(receivers: a)",
    ]


def test_a_yaml_syntax_error_names_its_line_and_column() -> None:
    assert only("service:\n  listen: x\n\tlog_format: json\n") == (
        "logwarden.yaml:3:1: invalid YAML: while scanning for the next token; found "
        "character '\\t' that cannot start any token"
    )
    # a character YAML refuses: one line, with where it is (not "position 20" on two lines)
    assert only("service:\n  listen: a\x00b\n") == (
        "logwarden.yaml:2:12: invalid YAML: unacceptable character #x0000: "
        "special characters are not allowed"
    )


def test_an_unreadable_top_level_value_is_one_problem() -> None:
    assert only("!!python/object:os.system x\n") == (
        "logwarden.yaml:1: invalid value: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object:os.system'"
    )


def test_an_alias_bomb_is_one_problem_not_a_hang() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)
    ]  # 10**6 values
    found = only("\n".join(lines) + "\n")
    assert found.startswith("logwarden.yaml:") and "more than 100,000 values" in found
    # aliases as such are fine
    text = "detect: {rules: &r [builtin]}\nalerts:\n  route: {group_by: *r}\n"
    assert load_text(text).alerts.route.group_by == ["builtin"]


def test_infinite_numbers_are_refused_as_such() -> None:
    assert only("ledger: {checkpoint_interval_secs: .inf}\n") == (
        "logwarden.yaml:1: ledger.checkpoint_interval_secs: expected a finite number, got inf"
    )


def test_a_long_value_is_quoted_shortened() -> None:
    found = only(f"data_dir: {{a: {'x' * 5000}}}\n")
    assert found.startswith("logwarden.yaml:1: data_dir: expected a path, got a mapping")
    found = only("x" * 5000 + "\n")
    assert found == f'logwarden.yaml:1: expected a mapping, got "{"x" * 80}"... (5,000 characters)'


def test_a_directory_or_huge_file_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(str(tmp_path))
    assert str(caught.value) == f"{tmp_path}: a directory, not a config file"
    huge = tmp_path / "huge.yaml"
    huge.write_text("redact:\n  extra_paths:\n" + "    - a.b\n" * 200_000)
    with pytest.raises(ConfigError) as caught:
        load(str(huge))
    assert str(caught.value) == f"{huge}: larger than 1 MiB: not a config file"


def test_bytes_that_are_not_utf8_are_named_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"service:\n  log_format: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    assert str(caught.value) == f"{path}:2:18: not UTF-8 text (byte 0xe9)"
