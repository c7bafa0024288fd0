"""Log files read once: JSON lines, gzip, rotated directories, pretty-printed documents,
stdin; bad input reported as file:line with its bytes kept, never dropped or fatal.

Every file is built in tmp_path from real captured audit events (audit2rbac's demo logs,
Falco's traces)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from calendar import timegm
from pathlib import Path

import pytest

from conftest import FIXTURES, TRACES
from logwarden.normalize import FORMATS, k8s_audit
from logwarden.normalize.k8s_audit import AuditEvent, parse_rfc3339_ns
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources.files import STDIN, FileSource, ordered_files

DEMO_V1 = FIXTURES / "audit" / "demo.log"
DEMO_V1BETA1 = FIXTURES / "audit" / "demo-full-v1beta1-2017.log"


def lines_of(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


V1 = lines_of(DEMO_V1)
V1BETA1 = lines_of(DEMO_V1BETA1)
KIND_ZERO = lines_of(TRACES / "fal_01_003.json")[0]  # {"kind": 0}


def audit_id(line: bytes) -> str:
    value = json.loads(line)["auditID"]
    assert isinstance(value, str)
    return value


def write(path: Path, lines: list[bytes], *, end: bytes = b"\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + end for line in lines))
    return path


def read(
    *paths: str | Path, rejects: Rejects | None = None
) -> tuple[FileSource, list[Record], Rejects]:
    rejects = Rejects() if rejects is None else rejects
    source = FileSource([str(p) for p in paths], k8s_audit.FORMAT, rejects)
    records: list[Record] = []
    source.run(records.append)
    return source, records, rejects


def utc(text: str) -> float:
    """Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS` in UTC, for os.utime."""
    return float(timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S")))


def event_list(items: list[bytes]) -> bytes:
    return (
        b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + b",".join(items) + b"]}"
    )


# --- JSON lines -----------------------------------------------------------------------------


def test_json_lines_file_becomes_records(tmp_path: Path) -> None:
    path = write(tmp_path / "audit.log", V1[:5])
    before = time.time_ns()
    source, records, rejects = read(path)
    after = time.time_ns()
    assert rejects.count == 0
    assert source.unreadable == []
    assert [(r.seq, r.line) for r in records] == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    for record, line in zip(records, V1[:5], strict=True):
        assert record.source == "k8s_audit"
        assert record.instance == str(path)
        assert record.raw == line
        assert isinstance(record.view, AuditEvent)
        assert record.view.auditID == audit_id(line)
        assert record.time_ns == parse_rfc3339_ns(json.loads(line)["timestamp"])
        assert before <= record.received_ns <= after
        assert record.cache is None
    assert source.events == 5
    assert source.bytes_read == source.total_bytes == path.stat().st_size


def test_whole_v1beta1_fixture_is_read() -> None:
    source, records, rejects = read(DEMO_V1BETA1)
    assert rejects.count == 0
    assert source.events == len(records) == 757
    assert [r.seq for r in records] == list(range(1, 758))
    assert [r.line for r in records] == list(range(1, 758))
    assert [r.raw for r in records] == V1BETA1


def test_blank_lines_are_skipped_but_counted_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(
        b"\n" + V1[0] + b"\r\n" + b"   \n\t\n" + V1[1] + b"\n\r\n\n" + V1[2]  # no final newline
    )
    source, records, rejects = read(path)
    assert rejects.count == 0
    assert [(r.seq, r.line) for r in records] == [(1, 2), (2, 5), (3, 8)]
    assert [r.raw for r in records] == V1[:3]  # line endings stripped
    assert source.events == 3


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["empty", "only-blank-lines"])
def test_file_without_events(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(content)
    source, records, rejects = read(path)
    assert records == []
    assert rejects.count == 0
    assert source.unreadable == []
    assert source.events == 0


def test_seq_counts_per_file(tmp_path: Path) -> None:
    a = write(tmp_path / "a.log", V1[:3])
    b = write(tmp_path / "b.log", V1BETA1[:2])
    source, records, _ = read(a, b)  # merged by event time: per file, in file order
    assert sorted((r.instance, r.seq, r.line) for r in records) == [
        (str(a), 1, 1),
        (str(a), 2, 2),
        (str(a), 3, 3),
        (str(b), 1, 1),
        (str(b), 2, 2),
    ]
    assert source.events == 5


def test_event_list_and_array_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "audit.log",
        [
            V1[0],
            event_list([V1[1], V1[2]]),
            b"[" + V1[3] + b"," + V1[4] + b"]",
            V1[5],
        ],
    )
    source, records, rejects = read(path)
    assert rejects.count == 0
    assert [(r.seq, r.line) for r in records] == [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4)]
    assert [r.raw for r in records] == V1[:6]  # each record holds its own event's bytes
    assert source.events == 6


# --- malformed input ------------------------------------------------------------------------


def test_malformed_lines_are_reported_counted_and_kept(tmp_path: Path) -> None:
    bad_time = json.loads(V1[3])
    bad_time["timestamp"] = "last tuesday"
    lines = [
        V1[0],  # 1
        KIND_ZERO,  # 2
        V1[1],  # 3
        b"E0517 08:00:00.000000 1 audit.go:42] not json",  # 4
        b"",  # 5
        V1[2].replace(b'"kind":"Event"', b'"kind":"Pod"', 1),  # 6
        json.dumps(bad_time).encode(),  # 7
        b"\xff\xfe\x00garbage",  # 8, not UTF-8
        event_list([V1[4], KIND_ZERO, V1[5]]),  # 9
        V1[6][: V1[6].index(b'"auditID"')],  # 10, a partial write, cut after a comma
        V1[7],  # 11
    ]
    path = write(tmp_path / "audit.log", lines)
    kept = tmp_path / "rejects.jsonl"
    log = io.StringIO()
    with kept.open("wb") as keep:
        source, records, rejects = read(path, rejects=Rejects(log=log, keep=keep))

    # good input still flows, with per-file seq and the line it came from
    assert [(r.seq, r.line, r.raw) for r in records] == [
        (1, 1, V1[0]),
        (2, 3, V1[1]),
        (3, 9, V1[4]),
        (4, 9, V1[5]),
        (5, 11, V1[7]),
    ]
    assert source.events == 5
    assert source.unreadable == []

    kind_reason = "not a Kubernetes audit event: Expected `str | null`, got `int` - at `$.kind`"
    expected = [
        (2, kind_reason, KIND_ZERO),
        (4, "invalid JSON: JSON is malformed: invalid character (byte 0)", lines[3]),
        (6, 'not a Kubernetes audit event: kind is "Pod", expected "Event"', lines[5]),
        (7, "timestamp 'last tuesday' is not RFC 3339", lines[6]),
        (8, "invalid JSON: JSON is malformed: invalid character (byte 0)", lines[7]),
        (9, f"items[1]: {kind_reason}", KIND_ZERO),
        (10, "invalid JSON: Input data was truncated", lines[9]),
    ]
    assert rejects.count == len(expected)
    assert log.getvalue().splitlines() == [f"{path}:{n}: {reason}" for n, reason, _ in expected]

    rows = [json.loads(row) for row in kept.read_bytes().splitlines()]
    assert len(rows) == len(expected)
    for row, (n, reason, raw) in zip(rows, expected, strict=True):
        assert row["where"] == f"{path}:{n}"
        assert row["reason"] == reason
        if row["raw"] is not None:
            assert row["raw"].encode() == raw
            assert row["raw_b64"] is None
        else:
            assert base64.b64decode(row["raw_b64"]) == raw
    # the non-UTF-8 line is kept byte for byte
    assert rows[4]["raw"] is None
    assert base64.b64decode(rows[4]["raw_b64"]) == b"\xff\xfe\x00garbage"


def test_invalid_utf8_inside_an_event_is_reported_not_fatal(tmp_path: Path) -> None:
    bad = V1[1].replace(b'"username":"bob"', b'"username":"b\xf6b"', 1)
    assert bad != V1[1]
    path = write(tmp_path / "audit.log", [V1[0], bad, V1[2]])
    source, records, rejects = read(path)
    assert [r.line for r in records] == [1, 3]
    assert source.events == 2
    assert rejects.count == 1
    assert rejects.first[0].where == f"{path}:2"
    assert rejects.first[0].raw_b64 == base64.b64encode(bad).decode()


# --- gzip -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["audit.log", "audit.log.gz", "audit"])
def test_gzip_is_detected_by_its_magic_bytes(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"\n".join(V1[:4]) + b"\n"))
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    source, records, rejects = read(path)
    assert rejects.count == 0
    assert [(r.seq, r.line, r.raw) for r in records] == [(i + 1, i + 1, V1[i]) for i in range(4)]
    assert source.total_bytes == path.stat().st_size  # compressed size


def test_plain_file_named_gz_is_read_as_text(tmp_path: Path) -> None:
    path = write(tmp_path / "audit.log.gz", V1[:2])
    _, records, rejects = read(path)
    assert rejects.count == 0
    assert [r.raw for r in records] == V1[:2]


def truncated_gzip(path: Path, lines: list[bytes], keep: float) -> list[bytes]:
    """Write the gzip of `lines` cut after `keep` of its bytes; return the whole lines
    that can still be decompressed from what is left."""
    data = gzip.compress(b"".join(line + b"\n" for line in lines))
    cut = data[: int(len(data) * keep)]
    path.write_bytes(cut)
    readable = zlib.decompressobj(wbits=31).decompress(cut)
    complete = readable[: readable.rfind(b"\n") + 1].splitlines()
    assert 0 < len(complete) < len(lines)
    return complete


def test_truncated_gzip_is_a_read_failure_and_later_inputs_are_read(tmp_path: Path) -> None:
    cut = tmp_path / "audit-cut.log.gz"
    complete = truncated_gzip(cut, V1, 0.6)
    after = write(tmp_path / "after.log", V1[:2])
    source, records, rejects = read(cut, after)
    assert len(source.unreadable) == 1
    where, reason = source.unreadable[0]
    assert where == str(cut)
    # the line cut in half counts as read (and is rejected below with its bytes)
    assert (
        reason
        == f"read failed after line {len(complete) + 1}: compressed data ends early (cut off)"
    )
    assert rejects.count == 2
    partial, failure = rejects.first
    assert partial.where == f"{cut}:{len(complete) + 1}"
    assert partial.reason.startswith("invalid JSON")
    assert partial.raw and V1[len(complete)].startswith(partial.raw.encode())
    assert (failure.where, failure.reason) == (str(cut), f"cannot read: {reason}")
    # the next input is unaffected
    assert [(r.instance, r.seq) for r in records if r.instance == str(after)] == [
        (str(after), 1),
        (str(after), 2),
    ]


def test_truncated_gzip_keeps_the_records_read_before_the_cut(tmp_path: Path) -> None:
    cut = tmp_path / "audit.log.gz"
    complete = truncated_gzip(cut, V1, 0.6)
    source, records, _ = read(cut)
    assert [r.raw for r in records] == complete
    assert source.unreadable[0][1].startswith(f"read failed after line {len(complete) + 1}: ")


def test_multi_member_gzip_and_zero_padding_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "audit.log.gz"
    path.write_bytes(
        gzip.compress(V1[0] + b"\n") + gzip.compress(V1[1] + b"\n" + V1[2] + b"\n") + b"\0" * 512
    )
    source, records, rejects = read(path)
    assert [r.raw for r in records] == V1[:3]
    assert rejects.count == 0 and not source.unreadable


# --- directories ----------------------------------------------------------------------------


def rotated_directory(root: Path) -> list[Path]:
    """kube-apiserver's rotated logs plus the active one; return them oldest first."""
    first = write(root / "audit-2024-05-17T08-00-00.000.log", V1[0:2])
    second = write(root / "archive" / "other.log", V1[2:3])
    third = root / "audit-2024-05-17T09-00-00.000.log.gz"
    third.write_bytes(gzip.compress(V1[3] + b"\n" + V1[4] + b"\n"))
    fourth = write(root / "b-audit-2024-05-17T09-30-00.250.log", V1[5:6])
    active = write(root / "audit.log", V1[6:8])
    write(root / ".audit.log.swp", [V1[8]])
    write(root / ".snapshots" / "audit.log", [V1[9]])
    # rotated files count by the time in their name, whatever their mtime says
    os.utime(first, (utc("2024-05-17T12:00:00"),) * 2)
    os.utime(third, (utc("2024-05-17T11:00:00"),) * 2)
    os.utime(fourth, (utc("2024-05-17T07:00:00"),) * 2)
    # other files count by their mtime
    os.utime(second, (utc("2024-05-17T08:30:00"),) * 2)
    os.utime(active, (utc("2024-05-17T10:00:00"),) * 2)
    return [first, second, third, fourth, active]


def test_ordered_files_reads_rotated_logs_oldest_first(tmp_path: Path) -> None:
    expected = rotated_directory(tmp_path / "logs")
    assert ordered_files(str(tmp_path / "logs")) == [str(p) for p in expected]


def test_directory_is_read_in_time_order(tmp_path: Path) -> None:
    expected = rotated_directory(tmp_path / "logs")
    source, records, rejects = read(tmp_path / "logs")
    assert rejects.count == 0
    assert [i.path for i in source.inputs] == [str(p) for p in expected]
    assert [i.size for i in source.inputs] == [p.stat().st_size for p in expected]
    assert source.total_bytes == sum(p.stat().st_size for p in expected)
    # hidden files and directories are skipped: V1[8] and V1[9] never appear
    assert [r.raw for r in records] == V1[:8]
    assert [(Path(r.instance).name, r.seq) for r in records] == [
        ("audit-2024-05-17T08-00-00.000.log", 1),
        ("audit-2024-05-17T08-00-00.000.log", 2),
        ("other.log", 1),
        ("audit-2024-05-17T09-00-00.000.log.gz", 1),
        ("audit-2024-05-17T09-00-00.000.log.gz", 2),
        ("b-audit-2024-05-17T09-30-00.250.log", 1),
        ("audit.log", 1),
        ("audit.log", 2),
    ]
    assert source.events == 8


def test_rotation_time_keeps_its_fraction(tmp_path: Path) -> None:
    late = write(tmp_path / "a-2024-05-17T08-00-00.900.log", [V1[0]])
    early = write(tmp_path / "b-2024-05-17T08-00-00.100.log", [V1[1]])
    assert ordered_files(str(tmp_path)) == [str(early), str(late)]


def test_name_with_an_impossible_rotation_time_counts_by_mtime(tmp_path: Path) -> None:
    odd = write(tmp_path / "dump-2024-13-01T00-00-00.log", [V1[0]])
    active = write(tmp_path / "audit.log", [V1[1]])
    os.utime(odd, (utc("2024-05-17T08:00:00"),) * 2)
    os.utime(active, (utc("2024-05-17T09:00:00"),) * 2)
    assert ordered_files(str(tmp_path)) == [str(odd), str(active)]


def test_named_files_are_listed_in_the_order_given_and_read_in_event_time_order(
    tmp_path: Path,
) -> None:
    old = write(tmp_path / "audit-2024-05-17T08-00-00.000.log", [V1[0]])
    new = write(tmp_path / "audit.log", [V1[1]])
    assert k8s_audit.FORMAT.time_ns(k8s_audit.decode(V1[0])) < k8s_audit.FORMAT.time_ns(
        k8s_audit.decode(V1[1])
    )
    source, records, _ = read(new, old)
    assert [r.raw for r in records] == [V1[0], V1[1]]
    assert [i.path for i in source.inputs] == [str(new), str(old)]


# --- pretty-printed documents ---------------------------------------------------------------


def test_pretty_printed_event_list_is_one_document(tmp_path: Path) -> None:
    docs = [json.loads(line) for line in V1[:4]]
    del docs[2]["verb"]
    path = tmp_path / "eventlist.json"
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": docs}
    path.write_text("\n" + json.dumps(body, indent=2) + "\n")
    source, records, rejects = read(path)
    assert [(r.seq, r.line) for r in records] == [(1, 1), (2, 1), (3, 1)]
    assert [json.loads(r.raw) for r in records] == [docs[0], docs[1], docs[3]]
    assert [r.view.auditID for r in records] == [audit_id(V1[i]) for i in (0, 1, 3)]
    assert source.events == 3
    assert rejects.count == 1
    assert rejects.first[0].where == f"{path}:1"
    assert rejects.first[0].reason == "items[2]: not a Kubernetes audit event: missing verb"
    assert rejects.first[0].raw is not None
    assert json.loads(rejects.first[0].raw) == docs[2]


def test_pretty_printed_event_is_one_document(tmp_path: Path) -> None:
    (line,) = lines_of(TRACES / "create_configmap.json")
    path = tmp_path / "event.json"
    path.write_text(json.dumps(json.loads(line), indent=4) + "\n")
    source, records, rejects = read(path)
    assert rejects.count == 0
    assert len(records) == 1
    assert (records[0].seq, records[0].line) == (1, 1)
    assert records[0].raw == path.read_bytes().strip()
    assert records[0].view.auditID == audit_id(line)
    assert source.events == 1


def test_gzipped_pretty_printed_event_list(tmp_path: Path) -> None:
    path = tmp_path / "eventlist"
    body = {"kind": "EventList", "items": [json.loads(line) for line in V1BETA1[:5]]}
    path.write_bytes(gzip.compress(json.dumps(body, indent=1).encode()))
    _, records, rejects = read(path)
    assert rejects.count == 0
    assert [json.loads(r.raw) for r in records] == body["items"]


def test_pretty_printed_json_array_is_one_document(tmp_path: Path) -> None:
    docs = [json.loads(line) for line in V1[:3]]
    path = tmp_path / "events.json"
    path.write_text(json.dumps(docs, indent=2) + "\n")
    source, records, rejects = read(path)
    assert rejects.count == 0
    assert [json.loads(r.raw) for r in records] == docs
    assert [(r.seq, r.line) for r in records] == [(1, 1), (2, 1), (3, 1)]
    assert source.events == 3


def test_broken_pretty_printed_document_falls_back_to_lines(tmp_path: Path) -> None:
    body = {"kind": "EventList", "items": [json.loads(line) for line in V1[:2]]}
    text = json.dumps(body, indent=2).splitlines()
    kept = text[: len(text) - 5]  # the end of the document is missing
    path = tmp_path / "eventlist.json"
    path.write_text("\n".join(kept) + "\n")
    source, records, rejects = read(path)
    assert records == []
    assert source.events == 0
    # every line is reported on its own, with its number
    assert rejects.count == len(kept)
    assert [r.where for r in rejects.first] == [f"{path}:{n}" for n in range(1, 21)]
    assert rejects.first[0].reason == "invalid JSON: Input data was truncated"
    assert rejects.first[0].raw == "{"


def test_truncated_first_line_falls_back_to_lines(tmp_path: Path) -> None:
    # a partial write at the start looks like the start of a document, but is not one
    partial = V1[0][: V1[0].index(b'"auditID"')]  # cut after a comma
    lines = [partial, *V1[1:4]]
    path = write(tmp_path / "audit.log", lines)
    source, records, rejects = read(path)
    assert [(r.seq, r.line, r.raw) for r in records] == [
        (1, 2, V1[1]),
        (2, 3, V1[2]),
        (3, 4, V1[3]),
    ]
    assert rejects.count == 1
    assert rejects.first[0].where == f"{path}:1"
    assert rejects.first[0].reason == "invalid JSON: Input data was truncated"
    assert rejects.first[0].raw == partial.decode()
    assert source.events == 3


# --- unreadable input -----------------------------------------------------------------------


def test_missing_path_is_reported_unreadable_and_counted(tmp_path: Path) -> None:
    missing = tmp_path / "no-such.log"
    present = write(tmp_path / "audit.log", V1[:1])
    source, records, rejects = read(missing, present)
    assert source.unreadable == [(str(missing), "no such file or directory")]
    assert rejects.count == 1
    assert rejects.first[0].where == str(missing)
    assert rejects.first[0].reason == "cannot read: no such file or directory"
    assert rejects.first[0].raw is None
    assert [i.path for i in source.inputs] == [str(present)]
    assert [r.raw for r in records] == V1[:1]


def test_file_removed_before_reading_is_reported_unreadable(tmp_path: Path) -> None:
    gone = write(tmp_path / "audit-2024-05-17T08-00-00.000.log", V1[:2])
    present = write(tmp_path / "audit.log", V1[2:3])
    rejects = Rejects()
    source = FileSource([str(gone), str(present)], k8s_audit.FORMAT, rejects)
    gone.unlink()  # rotated away between listing and reading
    records: list[Record] = []
    source.run(records.append)
    assert source.unreadable == [(str(gone), "No such file or directory")]
    assert rejects.count == 1
    assert rejects.first[0].reason == "cannot read: No such file or directory"
    assert [r.raw for r in records] == V1[2:3]
    assert source.events == 1


# --- the emit callback, stop and progress ---------------------------------------------------


def pretty_event_list(path: Path, lines: list[bytes]) -> Path:
    body = {"kind": "EventList", "items": [json.loads(line) for line in lines]}
    path.write_text(json.dumps(body, indent=2))
    return path


@pytest.mark.parametrize("layout", ["lines", "gzip", "document"])
@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), RuntimeError("sink")])
def test_emit_errors_propagate_and_are_not_unreadable_input(
    tmp_path: Path, layout: str, error: Exception
) -> None:
    path = tmp_path / "audit.log"
    if layout == "document":
        pretty_event_list(path, V1[:3])
    elif layout == "gzip":
        path.write_bytes(gzip.compress(b"\n".join(V1[:3])))
    else:
        write(path, V1[:3])
    later = write(tmp_path / "later.log", V1[3:4])
    rejects = Rejects()
    source = FileSource([str(path), str(later)], k8s_audit.FORMAT, rejects)
    seen: list[Record] = []

    def emit(record: Record) -> None:
        seen.append(record)
        if len(seen) == 2:
            raise error

    with pytest.raises(type(error)) as info:
        source.run(emit)
    assert info.value is error
    assert len(seen) == 2
    assert all(r.instance == str(path) for r in seen)
    assert source.unreadable == []
    assert rejects.count == 0


def test_progress_is_reported_within_a_large_file(tmp_path: Path) -> None:
    big = write(tmp_path / "big.log", V1BETA1 * 6)  # several MiB: more than one read batch
    size = big.stat().st_size
    assert size > 2 << 20
    source = FileSource([str(big)], k8s_audit.FORMAT, Rejects())
    ticks: list[int] = []
    source.run(lambda record: None, progress=ticks.append)
    assert ticks == sorted(ticks)
    assert ticks[-1] == size
    assert any(0 < t < size for t in ticks)
    assert source.events == 6 * len(V1BETA1)


def test_stop_before_running_reads_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "audit.log", V1)
    stop = threading.Event()
    stop.set()
    source = FileSource([str(path)], k8s_audit.FORMAT, Rejects())
    records: list[Record] = []
    ticks: list[int] = []
    source.run(records.append, stop=stop, progress=ticks.append)
    assert records == []
    assert source.events == 0
    assert ticks == []


def at(line: bytes, second: int) -> bytes:
    """The event `line` with its times set to `second` seconds past 10:00:00."""
    event = json.loads(line)
    when = f"2024-05-17T10:{second // 60:02d}:{second % 60:02d}.000000Z"
    event.update(requestReceivedTimestamp=when, stageTimestamp=when, timestamp=when)
    return json.dumps(event).encode()


def test_overlapping_logs_are_merged_in_event_time_order(tmp_path: Path) -> None:
    one = write(tmp_path / "apiserver-1.log", [at(V1[0], s) for s in (0, 3, 4, 9)])
    two = write(tmp_path / "apiserver-2.log", [at(V1[1], s) for s in (1, 2, 5, 9)])
    stdin_like = write(tmp_path / "later.log", [at(V1[2], s) for s in (6, 7)])
    _, records, _ = read(stdin_like, two, one)
    times = [r.time_ns for r in records]
    assert times == sorted(times)
    # equal times: in the order the inputs were given
    assert [r.instance for r in records][-2:] == [str(two), str(one)]
    assert [(r.instance, r.seq) for r in records if r.instance == str(one)] == [
        (str(one), n) for n in range(1, 5)
    ]


def test_rotated_logs_are_read_one_after_another_with_one_open(tmp_path: Path) -> None:
    rotated = [
        write(
            tmp_path / f"audit-2024-05-17T10-{n:02d}-00.000.log",
            [at(V1[0], 60 * n + s) for s in range(5)],
        )
        for n in range(30)
    ]
    before = len(os.listdir("/proc/self/fd"))
    most = 0

    def emit(record: Record) -> None:
        nonlocal most
        most = max(most, len(os.listdir("/proc/self/fd")) - before)
        records.append(record)

    records: list[Record] = []
    FileSource([str(tmp_path)], k8s_audit.FORMAT, Rejects()).run(emit)
    assert len(records) == 150
    assert [r.instance for r in records[::5]] == [str(p) for p in rotated]
    assert most <= 2  # the log being read (and the next, opened at its first event)


def test_stop_ends_reading_early(tmp_path: Path) -> None:
    first = DEMO_V1BETA1
    second = write(tmp_path / "second.log", V1)
    stop = threading.Event()
    source = FileSource([str(first), str(second)], k8s_audit.FORMAT, Rejects())
    records: list[Record] = []

    def emit(record: Record) -> None:
        records.append(record)
        stop.set()

    source.run(emit, stop=stop)  # both are open (their events overlap): each ends its batch
    assert 1 <= len(records) < len(V1)
    assert source.events == len(records)


def test_progress_counts_bytes_up_to_the_total(tmp_path: Path) -> None:
    plain = write(tmp_path / "a.log", V1)
    packed = tmp_path / "b.log"
    packed.write_bytes(gzip.compress(DEMO_V1BETA1.read_bytes()))
    document = pretty_event_list(tmp_path / "c.json", V1[:3])
    source = FileSource([str(plain), str(packed), str(document)], k8s_audit.FORMAT, Rejects())
    ticks: list[int] = []
    source.run(lambda record: None, progress=ticks.append)
    total = sum(p.stat().st_size for p in (plain, packed, document))
    assert source.total_bytes == total
    assert len(ticks) >= 3
    assert ticks == sorted(ticks)
    assert all(0 <= t <= total for t in ticks)
    assert ticks[-1] == total == source.bytes_read
    assert source.events == len(V1) + len(V1BETA1) + 3


# --- stdin ----------------------------------------------------------------------------------


def stdin_input(packed: bool) -> bytes:
    data = b"".join(
        [
            lines_of(TRACES / "attach_pod.json")[0] + b"\n",
            KIND_ZERO + b"\n",
            b"\n",
            lines_of(TRACES / "anonymous_creates_namespace_foo.json")[0] + b"\n",
            V1[0] + b"\n",
        ]
    )
    return gzip.compress(data) if packed else data


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_detect_reads_stdin(packed: bool) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "logwarden", "detect", "-r", "falco", "--format", "jsonl", "-"],
        input=stdin_input(packed),
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr  # ran, but the input had a malformed line
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(a["rule"], a["origin"]) for a in alerts] == [
        ("Attach/Exec Pod", {"instance": "<stdin>", "seq": 1, "line": 1}),
        ("Anonymous Request Allowed", {"instance": "<stdin>", "seq": 2, "line": 4}),
    ]
    assert alerts[0]["audit_id"] == "14933b4e-7b09-4964-af09-b7987367e1ba"
    assert "<stdin>:2: not a Kubernetes audit event: Expected `str | null`" in stderr
    assert "3 events from 1 files, 1 rejected, 2 alerts" in stderr


_READ_STDIN = """
import json, sys
from logwarden.normalize import k8s_audit
from logwarden.rejects import Rejects
from logwarden.sources.files import FileSource
rejects = Rejects()
source = FileSource(["-"], k8s_audit.FORMAT, rejects)
out = []
source.run(lambda r: out.append([r.instance, r.seq, r.line, r.raw.decode()]))
print(json.dumps({"records": out, "rejected": [[x.where, x.reason] for x in rejects.first],
                  "events": source.events, "inputs": [i.path for i in source.inputs]}))
"""


def test_file_source_reads_stdin() -> None:
    assert STDIN == "-"
    done = subprocess.run(
        [sys.executable, "-c", _READ_STDIN],
        input=stdin_input(packed=False),
        capture_output=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["inputs"] == ["-"]
    assert [r[:3] for r in result["records"]] == [
        ["<stdin>", 1, 1],
        ["<stdin>", 2, 4],
        ["<stdin>", 3, 5],
    ]
    assert result["records"][2][3] == V1[0].decode()
    assert result["rejected"] == [
        [
            "<stdin>:2",
            "not a Kubernetes audit event: Expected `str | null`, got `int` - at `$.kind`",
        ]
    ]
    assert result["events"] == 3


# --- framed formats (container logs, journals, cloud deliveries) --------------------------

CRI = FIXTURES / "container_logs" / "kubelet-cri-design-doc-example.log"


def cri_lines(n: int) -> list[bytes]:
    return [b"2016-10-06T00:17:%02d.%09dZ stdout F message %d" % (i % 60, i, i) for i in range(n)]


def read_framed(*paths: str | Path) -> tuple[FileSource, list[Record], Rejects]:
    rejects = Rejects()
    source = FileSource([str(p) for p in paths], FORMATS["container_log"], rejects)
    records: list[Record] = []
    source.run(records.append)
    return source, records, rejects


def test_a_container_log_is_framed_as_it_is_read_not_whole(tmp_path: Path) -> None:
    """Through a FIFO: the first half of the log gives its records while the writer still
    waits to write the second (a framer that read the file whole would give none yet)."""
    fifo = tmp_path / "0.log"
    os.mkfifo(fifo)
    lines = cri_lines(2000)
    first_emitted = threading.Event()
    written_before_first: list[bool] = []

    def writer() -> None:
        with open(fifo, "wb") as out:
            out.write(b"".join(line + b"\n" for line in lines[:1000]))
            out.flush()
            written_before_first.append(first_emitted.wait(30))
            out.write(b"".join(line + b"\n" for line in lines[1000:]))

    thread = threading.Thread(target=writer)
    thread.start()
    rejects = Rejects()
    source = FileSource([str(fifo)], FORMATS["container_log"], rejects)
    records: list[Record] = []

    def emit(record: Record) -> None:
        records.append(record)
        first_emitted.set()

    source.run(emit)
    thread.join()
    assert written_before_first == [True]
    assert len(records) == 2000 and rejects.count == 0
    assert records[-1].view.log == "message 1999"


def test_a_lone_carriage_return_stays_in_its_message_and_crlf_ends_a_line(
    tmp_path: Path,
) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(
        b"2016-10-06T00:17:09.669794202Z stdout F progress 10%\rprogress 100%\n"
        b"2016-10-06T00:17:10.669794202Z stdout F done\r\n"
    )
    _, records, rejects = read_framed(log)
    assert rejects.count == 0
    assert [r.view.log for r in records] == ["progress 10%\rprogress 100%", "done"]


def test_a_cut_gzipped_container_log_keeps_its_records_and_says_how_far_it_got(
    tmp_path: Path,
) -> None:
    cut = tmp_path / "0.log.gz"
    complete = truncated_gzip(cut, cri_lines(3000), 0.5)
    source, records, _ = read_framed(cut)
    # every whole line before the cut is a record (the last may be cut in half)
    assert len(complete) - 1 <= len(records) <= len(complete)
    assert [r.view.log for r in records[:3]] == ["message 0", "message 1", "message 2"]
    ((where, reason),) = source.unreadable
    assert where == str(cut)
    assert reason.startswith(f"read failed after {len(records)} records: ")


def test_the_kubelet_design_doc_example_reads_the_same_through_the_stream() -> None:
    _, records, rejects = read_framed(CRI)
    assert rejects.count == 0
    # stdout's two partial lines never get their final line: flushed at the end, last
    assert [r.view.log for r in records] == [
        "The content of the log entry 1",
        "Last line of the log entry 2",
        "First line of log entry 2Second line of the log entry 2",
    ]
