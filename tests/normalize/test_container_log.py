"""Container logs: CRI and Docker json-file lines in, reassembled entries, envelopes and
documents out. The samples in fixtures/container_logs are real kubelet/Docker lines (kind CI,
fluent-bit's captured Docker logs) or the reference cases of the kubelet design and vector
(SOURCES.md); the stack traces of the multi-line tests are written here in the exact shape
the JVM, CPython and the Go runtime print them."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.container_log import (
    FORMAT,
    ContainerLog,
    Entry,
    LineError,
    MultilineJoiner,
    PodRef,
    Reassembler,
    decode,
    document,
    envelope,
    envelopes,
    parse_path,
    parse_time_ns,
)

DATA = FIXTURES / "container_logs"
KUEUE = DATA / "kueue-issue-4140-kind-ci-cri.log"
DESIGN = DATA / "kubelet-cri-design-doc-example.log"
VECTOR = DATA / "vector-cri-partial-invalid-utf8.bin.log"
ISTIO = DATA / "fluentbit-dockerjson-socks_session-db-fdd649d68-cq5sp_istio-proxy.log"
REDIS = DATA / "fluentbit-dockerjson-socks_session-db-fdd649d68-cq5sp_session-db.log"
APACHE = DATA / "fluentbit-dockerjson-default_apache-logs_apache-logs.log"
NESTED = DATA / "fluentbit-dockerjson-core_unescaping_json.log"
INTERLEAVED = DATA / "fluentbit-dockerjson-stderr_stdout_text.log"

UID = "5a4bd6f1-4c5e-4b53-9a1b-1d1f8e4c2a10"
POD_PATH = f"/var/log/pods/kube-system_kube-apiserver-kind-control-plane_{UID}/kube-apiserver/0.log"
CID = "0f3c" * 16
LINK_PATH = f"/var/log/containers/session-db-fdd649d68-cq5sp_socks_istio-proxy-{CID}.log"


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def utc_ns(y: int, mo: int, d: int, h: int, mi: int, s: int, frac_ns: int = 0) -> int:
    """Nanoseconds since the epoch of a UTC date and time, computed independently."""
    return int(datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp()) * 1_000_000_000 + frac_ns


def feed_all(r: Reassembler, lines: list[bytes]) -> list[Entry | LineError]:
    return [item for line in lines if (item := r.feed(line)) is not None]


def entries_of(lines: list[bytes], **kw: int) -> list[Entry]:
    r = Reassembler(**kw)  # type: ignore[arg-type]
    out = feed_all(r, lines)
    assert not [i for i in out if isinstance(i, LineError)]
    return [i for i in out if isinstance(i, Entry)] + r.flush()


def record(entry: Entry, path: str = POD_PATH) -> tuple[bytes, ContainerLog, dict[str, object]]:
    raw = envelope(entry, parse_path(path), path)
    view = decode(raw)
    return raw, view, document(raw, view)


# --- paths -------------------------------------------------------------------------------


def test_pods_path() -> None:
    assert parse_path(POD_PATH) == PodRef(
        "kube-system", "kube-apiserver-kind-control-plane", "kube-apiserver", UID, 0
    )


def test_pods_path_of_a_static_pod_restart_and_rotation() -> None:
    # static pods have the 32-hex hash of their manifest as UID; the kueue sample was quoted
    # from a rotated file `0.log.20250203-155314`
    uid = "a5b4b8f3c9d0e1f2a3b4c5d6e7f80912"
    ref = parse_path(f"/var/log/pods/kube-system_etcd-kind.local_{uid}/etcd/12.log.20250203-155314")
    assert ref == PodRef(
        "kube-system", "etcd-kind.local", "etcd", uid, 12, rotated="20250203-155314"
    )
    # under a host mount
    assert parse_path(f"/host/var/log/pods/ns_p_{uid}/c/3.log") == PodRef("ns", "p", "c", uid, 3)


def test_containers_path() -> None:
    ref = parse_path(LINK_PATH)
    assert ref == PodRef("socks", "session-db-fdd649d68-cq5sp", "istio-proxy", container_id=CID)
    assert ref is not None and ref.pod_uid is None and ref.restart is None


@pytest.mark.parametrize(
    "path",
    [
        f"/var/log/pods/ns_pod_{UID}/c/0.log.20250203-155314.gz",  # compressed rotation
        f"/var/log/pods/ns_pod_{UID}/c/00.log",
        f"/var/log/pods/ns_pod_{UID}/c/x.log",
        f"/var/log/pods/ns_pod_{UID}/c/0.txt",
        f"/var/log/pods/NS_pod_{UID}/c/0.log",  # not a DNS label
        f"/var/log/pods/ns_pod_x_{UID}/c/0.log",
        f"/var/log/pods/ns_pod_{UID[:-1]}/c/0.log",  # not a UUID
        f"/var/log/pods/ns_pod_{UID}/c_d/0.log",
        f"/var/log/pods/ns_pod-_{UID}/c/0.log",
        f"/var/log/pods/{'n' * 64}_pod_{UID}/c/0.log",  # namespace too long
        f"/var/log/pods/ns_pod_{UID}/{'c' * 64}/0.log",
        f"/var/log/podz/ns_pod_{UID}/c/0.log",
        f"/var/log/pods/{UID}/c_0.log",  # dockershim's layout before 1.14
        "/var/log/containers/pod_ns_c-0f3c.log",  # short container id
        f"/var/log/containers/pod_ns_c_{CID}.log",
        f"/var/log/containers/pod_ns_c-{CID}.log.1",
        f"/var/log/containers/Pod_ns_c-{CID}.log",
        "/var/log/syslog",
        "",
        # fluent-bit's fixture names are not kubelet names
        ISTIO.name,
        APACHE.name,
    ],
)
def test_other_paths_are_not_pod_logs(path: str) -> None:
    assert parse_path(path) is None


def test_path_like() -> None:
    assert parse_path(Path(POD_PATH)) == parse_path(POD_PATH)


# --- time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2025-02-03T15:52:04.259430674Z", utc_ns(2025, 2, 3, 15, 52, 4, frac_ns=259430674)),
        # RFC3339Nano drops trailing zeros, down to no fraction at all
        ("2018-09-19T18:58:22.13487728Z", utc_ns(2018, 9, 19, 18, 58, 22, frac_ns=134877280)),
        ("2018-09-19T18:58:22.1Z", utc_ns(2018, 9, 19, 18, 58, 22, frac_ns=100000000)),
        ("2018-09-19T18:58:22Z", utc_ns(2018, 9, 19, 18, 58, 22)),
        # containerd formats in its local zone
        (
            "2018-09-19T20:58:22.5+02:00",
            int(datetime(2018, 9, 19, 20, 58, 22, tzinfo=timezone(timedelta(hours=2))).timestamp())
            * 1_000_000_000
            + 500_000_000,
        ),
    ],
)
def test_time(text: str, ns: int) -> None:
    assert parse_time_ns(text) == ns
    assert parse_time_ns(text) == ns  # again, from the cache of seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2025-02-03",
        "2025-13-03T15:52:04.1Z",
        # digits that are not ASCII, once the second is cached
        "2025-02-03T15:52:04.\u00b2Z",
        "2025-02-03T15:52:04.\u0661Z",
    ],
)
def test_bad_time(text: str) -> None:
    parse_time_ns("2025-02-03T15:52:04.5Z")
    with pytest.raises(MalformedInput):
        parse_time_ns(text)


# --- CRI reassembly ----------------------------------------------------------------------


def test_kueue_cri_lines() -> None:
    lines = lines_of(KUEUE)
    entries = entries_of(lines)
    assert len(entries) == 8
    for n, (entry, line) in enumerate(zip(entries, lines, strict=True), 1):
        assert entry.stream == "stderr"
        assert entry.message == line.split(b" ", 3)[3]
        assert (entry.first_line, entry.last_line) == (n, n)
        assert entry.time == line[:30].decode()
        assert not entry.truncated and not entry.partial
    assert entries[0].time_ns == utc_ns(2025, 2, 3, 15, 52, 4, frac_ns=259430674)
    # the 409s of the kueue issue are intact
    assert entries[6].message.endswith(b"resp=409")


def test_design_doc_example_keeps_streams_apart() -> None:
    # the design doc ends stdout's "log entry 2" with a *stderr* F line; the kubelet reads
    # partial lines per stream, so the stderr line is its own message and stdout's stays
    # pending until the file's end
    r = Reassembler()
    out = feed_all(r, lines_of(DESIGN))
    assert r.kind == "cri"
    assert [(e.stream, e.message) for e in out if isinstance(e, Entry)] == [
        ("stdout", b"The content of the log entry 1"),
        ("stderr", b"Last line of the log entry 2"),
    ]
    assert r.pending_since() == 2
    (rest,) = r.flush()
    assert rest.message == b"First line of log entry 2Second line of the log entry 2"
    assert (rest.first_line, rest.last_line, rest.partial) == (2, 3, True)
    assert rest.time == "2016-10-06T00:17:09.669794202Z"
    assert r.pending_since() is None
    assert r.flush() == []


def test_partial_chunks_join_and_take_the_first_time() -> None:
    lines = [*lines_of(DESIGN)[1:3], b"2016-10-06T00:17:11.000000001Z stdout F  and the end"]
    (entry,) = entries_of(lines)
    assert entry.message == (b"First line of log entry 2Second line of the log entry 2 and the end")
    assert entry.time_ns == utc_ns(2016, 10, 6, 0, 17, 9, frac_ns=669794202)
    assert (entry.first_line, entry.last_line, entry.partial) == (1, 3, False)


def test_interleaved_partial_streams() -> None:
    lines = [
        b"2024-05-17T08:00:00.1Z stdout P out-1 ",
        b"2024-05-17T08:00:00.2Z stderr P err-1 ",
        b"2024-05-17T08:00:00.3Z stdout P out-2 ",
        b"2024-05-17T08:00:00.4Z stderr F err-2",
        b"2024-05-17T08:00:00.5Z stdout F out-3",
    ]
    entries = entries_of(lines)
    assert [(e.stream, e.message, e.first_line, e.last_line) for e in entries] == [
        ("stderr", b"err-1 err-2", 2, 4),
        ("stdout", b"out-1 out-2 out-3", 1, 5),
    ]


def test_vector_invalid_utf8_partial_joins_on_bytes() -> None:
    (line,) = lines_of(VECTOR)
    assert line.endswith(b"\xd0\x9c\xd0\xb8\xd1")  # "Ми" and half of "р"
    # the file ends on the partial chunk: flushed, partial, its text flagged
    (alone,) = entries_of([line])
    _, view, doc = record(alone)
    assert alone.partial and view.partial is True
    assert view.log == "Hello World Привет Ми\ufffd"
    assert doc["invalid_utf8"] is True and doc["partial"] is True
    # the rest of the character comes in the next chunk: one valid message
    (joined,) = entries_of([line, b"2021-08-05T17:35:26.640507540Z stdout F \x80!"])
    assert joined.message.decode() == "Hello World Привет Мир!"
    raw, view, doc = record(joined)
    assert view.log == "Hello World Привет Мир!"
    assert b"invalid_utf8" not in raw and doc["invalid_utf8"] is False


def test_cap_truncates_partials_at_a_character_boundary() -> None:
    chunk = "é".encode() * 5  # 10 bytes
    lines = [b"2024-05-17T08:00:00.1Z stdout P " + chunk] * 5
    lines.append(b"2024-05-17T08:00:00.2Z stdout F end")
    r = Reassembler(max_bytes=25)
    out = feed_all(r, lines)
    (entry,) = out
    assert isinstance(entry, Entry)
    assert entry.truncated
    assert entry.message == chunk * 2 + "éé".encode()  # 24 bytes: "é" is not cut in half
    assert (entry.first_line, entry.last_line) == (1, 6)
    # the next message starts fresh
    more = r.feed(b"2024-05-17T08:00:00.3Z stdout F next")
    assert isinstance(more, Entry) and more.message == b"next" and not more.truncated


def test_cap_truncates_one_long_line() -> None:
    r = Reassembler(max_bytes=8)
    entry = r.feed(b"2024-05-17T08:00:00.1Z stdout F 0123456789")
    assert isinstance(entry, Entry)
    assert entry.message == b"01234567" and entry.truncated
    _, view, _ = record(entry)
    assert view.truncated is True


def test_default_cap_is_one_mib() -> None:
    big = b"x" * 40_000
    lines = [b"2024-05-17T08:00:00.1Z stdout P " + big] * 30 + [b"2024-05-17T08:00:00.1Z stdout F"]
    (entry,) = entries_of(lines)
    assert len(entry.message) == 1 << 20 and entry.truncated


def test_tags_are_forward_compatible_and_empty_chunks() -> None:
    lines = [
        b"2024-05-17T08:00:00.1Z stdout P:x first ",
        b"2024-05-17T08:00:00.2Z stdout F:future second",
        b"2024-05-17T08:00:00.3Z stdout F ",
        b"2024-05-17T08:00:00.4Z stdout F",
        b"2024-05-17T08:00:00.5Z stderr X other tag reads as full",
    ]
    entries = entries_of(lines)
    assert [e.message for e in entries] == [
        b"first second",
        b"",
        b"",
        b"other tag reads as full",
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "CRI log line has no stream"),
        (b"2024-05-17T08:00:00.1Z", "CRI log line has no stream"),
        (b"2024-05-17T08:00:00.1Z stdout", "CRI log line has no tag"),
        (b"yesterday stdout F x", "CRI log line: time 'yesterday' is not RFC 3339"),
        (b"\xff\xfe stdout F x", "CRI log line: time '\ufffd\ufffd' is not RFC 3339"),
        (b"2024-05-17T08:00:00.1Z stdin F x", "CRI log line: stream is 'stdin'"),
        (b"2024-05-17T08:00:00.1Z stdout :P x", "CRI log line: empty tag in ':P'"),
        (b"2024-05-17T08:00:00.1Z  stdout F x", "CRI log line: stream is ''"),
    ],
)
def test_malformed_cri_lines_are_reported_with_line_number(line: bytes, reason: str) -> None:
    r = Reassembler("cri")
    assert r.feed(b"2024-05-17T08:00:00.1Z stdout P kept ") is None
    err = r.feed(line)
    assert isinstance(err, LineError)
    assert err.line == 2 and err.data == line
    assert err.reason.startswith(reason)
    # the pending message survives the bad line
    entry = r.feed(b"2024-05-17T08:00:00.2Z stdout F going on")
    assert isinstance(entry, Entry)
    assert entry.message == b"kept going on" and (entry.first_line, entry.last_line) == (1, 3)


def test_first_line_and_line_counting() -> None:
    r = Reassembler(first_line=101)
    out = feed_all(r, lines_of(KUEUE)[:2])
    assert [e.first_line for e in out if isinstance(e, Entry)] == [101, 102]
    assert r.line == 102


def test_auto_detection_skips_empty_first_lines_and_can_be_told() -> None:
    r = Reassembler()
    first = r.feed(b"")
    assert isinstance(first, LineError) and first.reason == "empty line" and first.line == 1
    assert [r.kind] == [None]
    entry = r.feed(lines_of(REDIS)[0])
    assert r.kind == "docker" and isinstance(entry, Entry) and entry.first_line == 2
    # told CRI, a Docker line is a malformed CRI line
    err = Reassembler("cri").feed(lines_of(REDIS)[0])
    assert isinstance(err, LineError) and "time" in err.reason
    with pytest.raises(ValueError, match="max_bytes"):
        Reassembler(max_bytes=0)


# --- Docker json-file --------------------------------------------------------------------


@pytest.mark.parametrize("path", [ISTIO, REDIS, APACHE, NESTED])
def test_docker_samples(path: Path) -> None:
    (line,) = lines_of(path)
    doc = json.loads(line)
    (entry,) = entries_of([line])
    assert entry.stream == doc["stream"] and entry.time == doc["time"]
    assert doc["log"].endswith("\n")
    assert entry.message == doc["log"][:-1].encode()
    assert entry.time_ns == parse_time_ns(doc["time"])
    assert not entry.partial


def test_docker_partial_lines_join() -> None:
    # Docker splits at 16 KiB: a `log` without its final newline goes on in the next line
    head = {"log": "a" * 16384, "stream": "stdout", "time": "2024-05-17T08:00:00.1Z"}
    tail = {"log": "bc\n", "stream": "stdout", "time": "2024-05-17T08:00:00.2Z"}
    other = {"log": "err\n", "stream": "stderr", "time": "2024-05-17T08:00:00.15Z"}
    lines = [json.dumps(d).encode() for d in (head, other, tail)]
    entries = entries_of(lines)
    assert [(e.stream, e.message, e.first_line, e.last_line) for e in entries] == [
        ("stderr", b"err", 2, 2),
        ("stdout", b"a" * 16384 + b"bc", 1, 3),
    ]
    assert entries[1].time == "2024-05-17T08:00:00.1Z"


def test_docker_interleaved_streams_with_time_going_back() -> None:
    entries = entries_of(lines_of(INTERLEAVED))
    assert [(e.stream, e.time) for e in entries] == [
        ("stderr", "2019-04-01T17:58:33.698656444Z"),
        ("stdout", "2019-04-01T17:58:33.598656444Z"),
    ]
    # kept in file order, times as written
    assert entries[1].time_ns < entries[0].time_ns
    assert all(e.message == b"[2019-04-05T14:54:23.584269761] Simple text" for e in entries)


STDIN = b'{"log": "x\\n", "stream": "stdin", "time": "2024-05-17T08:00:00Z"}'
NOW = b'{"log": "x\\n", "stream": "stdout", "time": "now"}'
NOT_UTF8 = b'{"log": "\xff\\n", "stream": "stdout", "time": "2024-05-17T08:00:00Z"}'


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{", "Docker json-file line: invalid JSON"),
        (b'{"log": 1, "stream": "stdout", "time": "2024-05-17T08:00:00Z"}', "Docker json-file"),
        (b'{"stream": "stdout", "time": "2024-05-17T08:00:00Z"}', "Docker json-file line: Object"),
        (STDIN, "Docker json-file line: stream is 'stdin'"),
        (NOW, "Docker json-file line: time 'now'"),
        (NOT_UTF8, "Docker json-file line: invalid JSON"),
        (b"[" * 10000, "Docker json-file line"),
    ],
)  # fmt: skip
def test_malformed_docker_lines(line: bytes, reason: str) -> None:
    r = Reassembler("docker")
    err = r.feed(line)
    assert isinstance(err, LineError)
    assert err.line == 1 and err.reason.startswith(reason)


# --- the record --------------------------------------------------------------------------


def test_envelope_roundtrip_and_format() -> None:
    entry = entries_of(lines_of(KUEUE))[0]
    raw, view, doc = record(entry)
    assert json.loads(raw) == {
        "time": "2025-02-03T15:52:04.259430674Z",
        "stream": "stderr",
        "log": entry.message.decode(),
        "namespace": "kube-system",
        "pod": "kube-apiserver-kind-control-plane",
        "pod_uid": UID,
        "container": "kube-apiserver",
        "restart": 0,
        "file": POD_PATH,
        "truncated": False,
    }
    assert b" " not in raw.split(b'"log"')[0]  # compact
    assert FORMAT.source == "container_log"
    assert FORMAT.decode(raw) == view
    assert FORMAT.time_ns(view) == entry.time_ns
    assert FORMAT.alert_ids(view) == (None, None)
    assert FORMAT.alert_labels(view) == {
        "namespace": "kube-system",
        "resource": "pods",
        "pod": "kube-apiserver-kind-control-plane",
        "container": "kube-apiserver",
    }
    assert FORMAT.derived(raw, view) == []
    assert FORMAT.document(raw, view) == doc


def test_a_text_line_like_an_access_log_is_tried_at_once() -> None:
    """A line with "HTTP/" and '" ' is tried as an ingress-nginx, nginx and Envoy line; one
    of many " - x [" (an app logging what clients send) took 2.5 s at 10 kB, and ten times
    longer lines far more (nginx's lazy address and user fields, tried pair by pair)."""
    text = b"a - b [" * 20_000 + b' "GET / HTTP/1.1" x'
    raw, view, _ = record(
        Entry("2024-01-01T00:00:00Z", 1_704_067_200 * 10**9, "stdout", text, 1, 1)
    )
    start = time.perf_counter()
    assert FORMAT.derived(raw, view) == []
    assert time.perf_counter() - start < 10  # milliseconds now; minutes before
    line = b'10.0.0.1 - - [25/Oct/2016:14:49:33 +0200] "GET / HTTP/1.1" 200 612 "-" "curl"'
    raw, view, _ = record(
        Entry("2024-01-01T00:00:00Z", 1_704_067_200 * 10**9, "stdout", line, 1, 1)
    )
    assert FORMAT.derived(raw, view) == [("nginx_access", line)]


def test_klog_text_surfaces_level_and_message() -> None:
    entries = entries_of(lines_of(KUEUE))
    _, _, doc = record(entries[0])
    assert doc["level"] == "info"
    assert doc["msg"] == '"Add event for unscheduled pod" pod="e2e-tas-fmr5x/test-pod"'
    assert doc["json"] is None and doc["ts"] is None
    _, _, doc = record(entries[6])
    assert isinstance(doc["msg"], str) and doc["msg"].startswith('"HTTP" verb="PUT"')


def test_istio_json_inside_a_string_inside_json() -> None:
    (entry,) = entries_of(lines_of(ISTIO))
    raw, view, doc = record(entry, LINK_PATH)
    # the envelope keeps the log as a string; the document parses it
    assert isinstance(json.loads(raw)["log"], str)
    app = doc["json"]
    assert isinstance(app, dict)
    assert app["destinationName"] == "user-db-7dcc9649dc-b72rs"
    assert app["sourceWorkload"] == "user"
    assert app["receivedBytes"] == 432
    assert doc["level"] == "info"
    assert doc["ts"] == "2018-09-21T02:56:05.979833Z"
    assert doc["msg"] is None
    # a /var/log/containers name: the container id, no UID or restart count
    assert doc["container_id"] == CID and doc["pod_uid"] is None and doc["restart"] is None
    assert FORMAT.alert_labels(view) == {
        "namespace": "socks",
        "resource": "pods",
        "pod": "session-db-fdd649d68-cq5sp",
        "container": "istio-proxy",
    }


def test_nested_escaped_json_is_parsed_one_level() -> None:
    (entry,) = entries_of(lines_of(NESTED))
    _, _, doc = record(entry)
    app = doc["json"]
    assert isinstance(app, dict)
    inner = app["stringified-json"]
    assert inner == '{"stringified-json":"{\\"stringified-json\\":\\"\\"}"}'
    assert json.loads(json.loads(inner)["stringified-json"]) == {"stringified-json": ""}
    assert app["text"] == 'quoted "text with embedded quoted \\"text\\""'


@pytest.mark.parametrize("path", [APACHE, REDIS, INTERLEAVED])
def test_text_lines_stay_text(path: Path) -> None:
    for entry in entries_of(lines_of(path)):
        _, view, doc = record(entry)
        assert doc["log"] == view.log == entry.message.decode()
        assert doc["json"] is None and doc["level"] is None and doc["msg"] is None


@pytest.mark.parametrize(
    ("log", "level", "msg", "ts"),
    [
        ('{"level":"ERROR","msg":"boom","ts":1715932800.5}', "error", "boom", 1715932800.5),
        ('{"severity":"WARNING","message":"careful","time":"t"}', "warning", "careful", "t"),
        ('{"level":50,"msg":"pino","time":1}', "error", "pino", 1),
        ('{"levelname":"INFO","message":"py"}', "info", "py", None),
        ('{"log.level":"debug","@timestamp":"x"}', "debug", None, "x"),
        ('{"log":{"level":"warn"},"message":1}', "warn", None, None),
        ('  {"msg":"spaces"}  ', None, "spaces", None),
        ('{"level":true}', None, None, None),
        ("[1, 2]", None, None, None),
        ("{not json}", None, None, None),
        ("{" * 5000 + "}", None, None, None),
    ],
)
def test_structured_app_logs(log: str, level: str | None, msg: str | None, ts: object) -> None:
    entry = Entry("2024-05-17T08:00:00Z", 0, "stdout", log.encode(), 1, 1)
    _, _, doc = record(entry)
    assert (doc["level"], doc["msg"], doc["ts"]) == (level, msg, ts)


def test_envelope_of_an_unknown_file() -> None:
    entry = Entry("2024-05-17T08:00:00Z", 0, "stdout", b"hello", 1, 1)
    _, view, doc = record(entry, "/tmp/app.log")
    assert view.namespace is None and view.pod is None and view.file == "/tmp/app.log"
    assert doc["namespace"] is None and doc["container_id"] is None
    assert FORMAT.alert_labels(view) == {}


def test_envelopes_of_whole_files() -> None:
    out = list(envelopes(lines_of(DESIGN), POD_PATH))
    assert [item[0] for item in out if isinstance(item, tuple)] == [1, 4, 2]
    bad = list(envelopes([b"nonsense", *lines_of(KUEUE)], POD_PATH, kind="cri"))
    assert isinstance(bad[0], LineError) and bad[0].line == 1
    assert len(bad) == 9


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "invalid JSON"),
        (b"[]", "not a container log record: Expected `object`"),
        (b'{"time":"t","stream":"stdout"}', "not a container log record: Object missing"),
        (b'{"time":1,"stream":"stdout","log":""}', "not a container log record: Expected `str`"),
        (b'{"time":"t","stream":"x","log":""}', "container log record: stream is 'x'"),
        (b'{"time":"t","stream":"stdout","log":"\xff"}', "invalid UTF-8 at byte"),
        (b"[" * 100000, "not a container log record"),
        (b'{"x":' + b"[" * 100000, "invalid JSON"),
    ],
)
def test_decode_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput) as info:
        decode(data)
    assert str(info.value).startswith(reason)


def test_decode_truncated_envelope() -> None:
    raw = envelope(entries_of(lines_of(KUEUE))[0], parse_path(POD_PATH), POD_PATH)
    for cut in range(len(raw)):
        with pytest.raises(MalformedInput):
            decode(raw[:cut])
    with pytest.raises(MalformedInput) as info:
        decode(raw[:-5])
    assert info.value.truncated


def test_time_ns_of_a_bad_time() -> None:
    view = decode(b'{"time":"soon","stream":"stdout","log":""}')
    with pytest.raises(MalformedInput):
        FORMAT.time_ns(view)


# --- multi-line stack traces -------------------------------------------------------------

T0 = "2024-05-17T08:00:00."


def cri(lines: list[str], stream: str = "stderr", step_ms: int = 1) -> list[bytes]:
    return [
        f"{T0}{i * step_ms:03d}000000Z {stream} F {text}".encode() for i, text in enumerate(lines)
    ]


def joined(lines: list[bytes], joiner: MultilineJoiner | None = None) -> list[Entry]:
    j = joiner or MultilineJoiner()
    out: list[Entry] = []
    for entry in entries_of(lines):
        out.extend(j.push(entry))
    return out + j.flush()


JAVA = [
    'Exception in thread "main" java.lang.IllegalStateException: outer',
    "\tat com.example.App.run(App.java:21)",
    "\tat com.example.App.main(App.java:9)",
    "Caused by: java.io.FileNotFoundException: /etc/app.conf (No such file or directory)",
    "\tat java.base/java.io.FileInputStream.open0(Native Method)",
    "\t... 2 more",
    "\tSuppressed: java.lang.RuntimeException: close",
    "\t\tat com.example.App.close(App.java:30)",
]
PYTHON = [
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 3, in <module>',
    "    int('x')",
    "ValueError: invalid literal for int() with base 10: 'x'",
    "",
    "During handling of the above exception, another exception occurred:",
    "",
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 5, in <module>',
    '    raise RuntimeError("wrapped")',
    "RuntimeError: wrapped",
]
GO = [
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4553f2]",
    "",
    "goroutine 1 [running]:",
    "main.(*Server).handle(0x0, {0x4b6f20, 0xc00001c030})",
    "\t/app/main.go:17 +0x12",
    "main.main()",
    "\t/app/main.go:9 +0x1d",
    "created by main.start in goroutine 1",
    "exit status 2",
]


@pytest.mark.parametrize("trace", [JAVA, PYTHON, GO], ids=["java", "python", "go"])
def test_traces_join(trace: list[str]) -> None:
    lines = cri(["before", *trace, "after"])
    out = joined(lines)
    assert [e.message.decode() for e in out] == ["before", "\n".join(trace), "after"]
    assert (out[1].first_line, out[1].last_line) == (2, len(trace) + 1)
    assert out[1].time == f"{T0}001000000Z"
    # its record is one entry whose log holds the whole trace
    _, view, _ = record(out[1])
    assert view.log.splitlines() == trace


def test_trace_ends_at_the_next_plain_line_and_empty_lines_stay_apart() -> None:
    lines = cri([*PYTHON[:4], "", "next"])
    out = joined(lines)
    assert [e.message.decode() for e in out] == ["\n".join(PYTHON[:4]), "", "next"]


def test_traces_are_per_stream() -> None:
    lines = cri(JAVA[:2])
    lines.insert(1, f"{T0}000500000Z stdout F plain stdout line".encode())
    lines.append(f"{T0}009000000Z stdout F   at indented stdout".encode())
    out = joined(lines)
    assert [(e.stream, e.message.decode()) for e in out] == [
        ("stdout", "plain stdout line"),
        ("stdout", "  at indented stdout"),
        ("stderr", "\n".join(JAVA[:2])),
    ]


def test_window_and_expire() -> None:
    lines = cri(JAVA[:3], step_ms=600)  # 0.0, 0.6, 1.2 s
    j = MultilineJoiner(window_ns=500_000_000)
    out = joined(lines, j)
    assert [e.message.decode() for e in out] == JAVA[:3]
    j = MultilineJoiner()
    entries = entries_of(cri(JAVA[:2]))
    assert j.push(entries[0]) == [] and j.push(entries[1]) == []
    assert j.pending_since() == 1
    start = entries[1].time_ns
    assert j.expire(start + 1_000_000_000) == []
    (trace,) = j.expire(start + 1_000_000_001)
    assert trace.message.decode() == "\n".join(JAVA[:2])
    assert j.pending_since() is None


def test_joined_size_is_capped() -> None:
    out = joined(cri(JAVA[:3]), MultilineJoiner(max_bytes=len(JAVA[0]) + len(JAVA[1]) + 1))
    assert [e.message.decode() for e in out] == ["\n".join(JAVA[:2]), JAVA[2]]


def test_disabled_joiner_passes_entries_through() -> None:
    out = joined(cri(GO), MultilineJoiner(enabled=False))
    assert [e.message.decode() for e in out] == GO


def test_plain_lines_are_not_held() -> None:
    j = MultilineJoiner()
    for entry in entries_of(lines_of(KUEUE)):
        assert j.push(entry) == [entry]
    assert j.flush() == []


def test_envelopes_join_traces() -> None:
    out = list(envelopes(cri(["x", *GO]), POD_PATH, joiner=MultilineJoiner()))
    logs = [json.loads(item[1])["log"] for item in out if isinstance(item, tuple)]
    assert logs == ["x", "\n".join(GO)]


def test_joined_flags_carry_over() -> None:
    a = Entry(f"{T0}0Z", 0, "stderr", b"java.lang.Error: x", 1, 1, truncated=True)
    b = Entry(f"{T0}0Z", 1, "stderr", b"\tat a.b(C.java:1)", 2, 3, partial=True)
    j = MultilineJoiner()
    assert j.push(a) == [] and j.push(b) == []
    (out,) = j.flush()
    assert out.truncated and out.partial and (out.first_line, out.last_line) == (1, 3)


# --- properties --------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_decode_any_bytes(data: bytes) -> None:
    try:
        view = decode(data)
    except MalformedInput:
        return
    assert isinstance(view, ContainerLog)
    document(data, view)
    FORMAT.alert_labels(view)
    with contextlib.suppress(MalformedInput):
        FORMAT.time_ns(view)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from([*ContainerLog.__struct_fields__, "x"]), _json_values))
def test_decode_wrong_types(doc: dict[str, object]) -> None:
    data = msgspec.json.encode(doc)
    try:
        view = decode(data)
    except MalformedInput:
        return
    document(data, view)


_piece = st.binary(max_size=40) | st.sampled_from(
    [b"2024-05-17T08:00:00.1Z", b"stdout", b"stderr", b"P", b"F", b" ", b"{", b'"log":']
)


@settings(max_examples=300)
@given(
    st.lists(st.lists(_piece, max_size=6).map(b"".join), max_size=20),
    st.sampled_from([None, "cri", "docker"]),
)
def test_reassembler_takes_any_lines(lines: list[bytes], kind: str | None) -> None:
    r = Reassembler(kind, max_bytes=64)  # type: ignore[arg-type]
    j = MultilineJoiner()
    for n, line in enumerate(lines, 1):
        item = r.feed(line)
        assert item is None or isinstance(item, Entry | LineError)
        if isinstance(item, LineError):
            assert item.line == n
        elif isinstance(item, Entry):
            assert len(item.message) <= 64
            for entry in j.push(item):
                decode(envelope(entry, None, "f"))
    for entry in r.flush() + j.flush():
        decode(envelope(entry, None, "f"))


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), min_size=1, max_size=8))
def test_chunks_reassemble_to_the_same_bytes(chunks: list[bytes]) -> None:
    lines = [b"2024-05-17T08:00:00.1Z stdout P " + c for c in chunks[:-1]]
    lines.append(b"2024-05-17T08:00:00.2Z stdout F " + chunks[-1])
    (entry,) = entries_of(lines)
    message = b"".join(chunks)
    assert entry.message == message
    _, view, _ = record(entry)
    assert view.log == message.decode("utf-8", "replace")
    assert (view.invalid_utf8 is True) != _valid_utf8(message)


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
