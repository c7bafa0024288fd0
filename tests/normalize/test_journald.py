"""The systemd journal format: real `journalctl -o json` and `-o export` samples in, views
or precise reasons out; and real journal files written by Debian's systemd-journal-remote
and read back with journalctl."""

from __future__ import annotations

import contextlib
import io
import json
import os
import selectors
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.journald import (
    FORMAT,
    JournalEntry,
    decode,
    document,
    entries_of_json_file,
    entry_time_ns,
    export_entries,
    journalctl_command,
    json_value_of,
    read_cursor_file,
    unescape_unit_name,
    write_cursor_file,
)

DATA = FIXTURES / "journald"
PRETTY = DATA / "beats-journalctl-sample-journal-event.json"
CORNER = DATA / "beats-journalctl-corner-cases.EXCERPT.json"
SPEC_JSON = DATA / "systemd-docs-JOURNAL_JSON-example.json"
BEATS_EXPORT = DATA / "beats-journal1.EXCERPT.export"
SPEC_EXPORT = DATA / "systemd-docs-JOURNAL_EXPORT_FORMATS-examples.export"

JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
#: fields systemd-journal-remote assigns anew when it stores an entry
REWRITTEN = {"__CURSOR", "__SEQNUM", "__SEQNUM_ID"}


def entries(path: Path) -> list[bytes]:
    out = entries_of_json_file(path.read_bytes())
    assert all(isinstance(e, bytes) for e in out), out
    return [e for e in out if isinstance(e, bytes)]


def exported(data: bytes) -> list[bytes | MalformedInput]:
    return list(export_entries(io.BytesIO(data)))


def export_lines(data: bytes) -> list[bytes]:
    out = exported(data)
    assert all(isinstance(e, bytes) for e in out), out
    return [e for e in out if isinstance(e, bytes)]


def doc_of(line: bytes) -> dict[str, Any]:
    doc = FORMAT.document(line, FORMAT.decode(line))
    assert isinstance(doc, dict)
    return doc


# --- an export-format writer of its own, straight from JOURNAL_EXPORT_FORMATS ---


def field(name: str, value: str | bytes) -> bytes:
    """`NAME=value\\n` when the value is printable UTF-8 without a newline, else the
    binary-safe form: `NAME\\n`, 64-bit little-endian size, the bytes, `\\n`."""
    data = value.encode() if isinstance(value, str) else value
    try:
        text = data.decode()
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c == "\t" or (ord(c) >= 32 and c != "\x7f") for c in text):
        return name.encode() + b"=" + data + b"\n"
    return name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"


def entry(*fields: tuple[str, str | bytes]) -> bytes:
    return b"".join(field(n, v) for n, v in fields) + b"\n"


BOOT = "6c7c6013a26343b29e964691ff25d04c"


def generated_export(start_us: int = 1_716_000_000_000_000) -> bytes:
    """Entries as sshd, sudo and the kubelet write them, and the awkward values."""
    common = [("_BOOT_ID", BOOT), ("_HOSTNAME", "node-1"), ("_TRANSPORT", "syslog")]
    out = []
    for i in range(3):
        out.append(
            entry(
                ("__REALTIME_TIMESTAMP", str(start_us + i)),
                *common,
                ("PRIORITY", "6"),
                ("SYSLOG_FACILITY", "4"),
                ("SYSLOG_IDENTIFIER", "sshd"),
                ("_COMM", "sshd"),
                ("_EXE", "/usr/sbin/sshd"),
                ("_PID", str(4100 + i)),
                ("_UID", "0"),
                ("_SYSTEMD_UNIT", "ssh.service"),
                (
                    "MESSAGE",
                    f"Failed password for invalid user admin from 203.0.113.{i} "
                    f"port {50000 + i} ssh2",
                ),
            )
        )
    out.append(
        entry(
            ("__REALTIME_TIMESTAMP", str(start_us + 10)),
            *common,
            ("PRIORITY", "2"),
            ("SYSLOG_FACILITY", "10"),
            ("SYSLOG_IDENTIFIER", "sudo"),
            ("_COMM", "sudo"),
            ("_PID", "5200"),
            ("_UID", "1000"),
            (
                "MESSAGE",
                "    alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ;"
                " USER=root ; COMMAND=/bin/bash",
            ),
        )
    )
    out.append(
        entry(
            ("__REALTIME_TIMESTAMP", str(start_us + 20)),
            ("_BOOT_ID", BOOT),
            ("_HOSTNAME", "node-1"),
            ("_TRANSPORT", "stdout"),
            ("PRIORITY", "3"),
            ("SYSLOG_IDENTIFIER", "kubelet"),
            ("_COMM", "kubelet"),
            ("_EXE", "/usr/bin/kubelet"),
            ("_PID", "812"),
            ("_SYSTEMD_UNIT", "kubelet.service"),
            ("_SYSTEMD_SLICE", "system-kubelet\\x2dextra.slice"),
            (
                "MESSAGE",
                'E0517 08:00:00.123456     812 pod_workers.go:1298] "Error syncing pod, '
                'skipping" err="failed to \\"StartContainer\\" for \\"app\\" with '
                'CrashLoopBackOff" pod="default/app-7d4b9c"',
            ),
            ("_UDEV_DEVLINK", "/dev/alias1"),
            ("_UDEV_DEVLINK", "/dev/alias2"),
            ("_UDEV_DEVLINK", b"/dev/\xffbad"),
        )
    )
    awkward: list[tuple[str, str | bytes]] = [
        ("__REALTIME_TIMESTAMP", str(start_us + 30)),
        ("_BOOT_ID", BOOT),
        ("SYSLOG_IDENTIFIER", "awkward"),
        ("MESSAGE", "line one\nline two"),
        ("CR", b"a\rb"),
        ("TAB", "a\tb"),
        ("DEL", b"a\x7fb"),
        ("C1", "a\u0085b"),
        ("NONCHAR", "a\ufffeb"),
        ("NONCHAR_PLANE1", "a\U0001ffffb"),
        ("NONCHAR_FDD0", "a\ufdd0b"),
        ("INVALID", b"\xc3("),
        ("NUL", b"a\x00b"),
        ("UNICODE", "gr\u00fc\u00dfe \u2603"),
        ("LARGE", "x" * 5000),
        ("EMPTY", ""),
    ]
    out.append(entry(*awkward))
    return b"".join(out)


# --- the samples ---


def test_pretty_printed_entry_all_strings() -> None:
    [line] = entries(PRETTY)
    assert b"\n" not in line
    source = json.loads(PRETTY.read_bytes())
    view = decode(line)
    assert view.fields == source
    assert view.binary is None and view.omitted is None
    doc = document(line, view)
    assert doc["MESSAGE"] == "Count: 0000000001"
    assert doc["PRIORITY"] == 6
    assert doc["_PID"] == 235728
    assert doc["_UID"] == 1000
    assert doc["__REALTIME_TIMESTAMP"] == 1724080855230058
    assert doc["_SYSTEMD_UNIT"] == "session-2.scope"
    assert doc["__CURSOR"] == source["__CURSOR"]
    assert "binary_fields" not in doc and "omitted_fields" not in doc
    assert FORMAT.time_ns(view) == 1724080855230058000
    assert FORMAT.alert_ids(view) == (source["__CURSOR"], None)
    assert FORMAT.alert_labels(view) == {"host": "millennium-falcon", "unit": "session-2.scope"}
    assert FORMAT.derived(line, view) == []
    assert FORMAT.source == "journald"


def test_corner_cases_json_array_file() -> None:
    coredump, pulse = entries(CORNER)
    source = json.loads(CORNER.read_bytes())
    assert json.loads(coredump) == source[0] and json.loads(pulse) == source[1]


def test_byte_array_field_decoded_and_flagged() -> None:
    coredump, _ = entries(CORNER)
    auxv = json.loads(CORNER.read_bytes())[0]["COREDUMP_PROC_AUXV"]
    view = decode(coredump)
    assert view.fields["COREDUMP_PROC_AUXV"] == bytes(auxv).decode("utf-8", "replace")
    assert "\ufffd" in view.fields["COREDUMP_PROC_AUXV"]  # 0xf5 0x91 ... is not UTF-8
    assert view.binary == ["COREDUMP_PROC_AUXV"]
    assert document(coredump, view)["binary_fields"] == ["COREDUMP_PROC_AUXV"]


def test_message_as_byte_array_with_carriage_return() -> None:
    _, pulse = entries(CORNER)
    view = decode(pulse)
    message = view.fields["MESSAGE"]
    assert message == ("Unable to parse indicator of AT+BIA command: AT+BIA=1,1,0,0,0\rAT+BCS=2")
    assert view.binary == ["MESSAGE"]
    doc = document(pulse, view)
    assert doc["MESSAGE"] == message and doc["PRIORITY"] == 3
    # no __REALTIME_TIMESTAMP problem: both timestamps are there, the journal's wins
    assert FORMAT.time_ns(view) == 1719859366807141000


def test_null_field_too_large_is_missing_and_flagged() -> None:
    coredump, _ = entries(CORNER)
    view = decode(coredump)
    assert "COREDUMP_PROC_MOUNTINFO" not in view.fields
    assert view.omitted == ["COREDUMP_PROC_MOUNTINFO"]
    assert document(coredump, view)["omitted_fields"] == ["COREDUMP_PROC_MOUNTINFO"]


def test_multiline_message() -> None:
    coredump, _ = entries(CORNER)
    message = document(coredump, decode(coredump))["MESSAGE"]
    assert message.startswith("Process 3717 (kdeconnectd) of user 1000 dumped core.\n\n")
    assert message.count("\n") == 7


def test_unit_escapes_kept_as_journald_names_them() -> None:
    coredump, _ = entries(CORNER)
    doc = document(coredump, decode(coredump))
    assert doc["_SYSTEMD_SLICE"] == "system-systemd\\x2dcoredump.slice"
    assert doc["_SYSTEMD_CGROUP"].startswith("/system.slice/system-systemd\\x2dcoredump.slice/")
    assert unescape_unit_name(doc["_SYSTEMD_SLICE"]) == "system-systemd-coredump.slice"
    assert unescape_unit_name("ssh.service") == "ssh.service"
    assert FORMAT.alert_labels(decode(coredump))["unit"] == "systemd-coredump@0-3732-0.service"


def test_spec_json_example() -> None:
    [line] = entries(SPEC_JSON)
    view = decode(line)
    assert view.fields == {
        "MESSAGE": "Hello World",
        "_UDEV_DEVNODE": "/dev/waldo",
        "_UDEV_DEVLINK": ["/dev/alias1", "/dev/alias2"],
        "BINARY": "this is a binary value \a",
    }
    assert view.binary == ["BINARY"] and view.omitted == ["LARGE"]
    with pytest.raises(MalformedInput, match="without __REALTIME_TIMESTAMP"):
        FORMAT.time_ns(view)
    assert FORMAT.alert_ids(view) == (None, None)
    assert FORMAT.alert_labels(view) == {}


def test_numeric_fields_are_strings_and_become_ints() -> None:
    coredump, _ = entries(CORNER)
    doc = document(coredump, decode(coredump))
    assert doc["PRIORITY"] == 2
    assert doc["_PID"] == 3740 and doc["_UID"] == 1000 and doc["_GID"] == 1000
    assert doc["__REALTIME_TIMESTAMP"] == 1719834246841951
    assert doc["_SOURCE_REALTIME_TIMESTAMP"] == 1719834246841938
    assert doc["__MONOTONIC_TIMESTAMP"] == 69204993
    assert doc["CODE_LINE"] == 927
    assert doc["COREDUMP_PID"] == "3717"  # not a field of INT_FIELDS: stays as journald has it
    spec = export_lines(SPEC_EXPORT.read_bytes())[0]
    assert doc_of(spec)["SYSLOG_FACILITY"] == 3


def test_repeated_numeric_field_stays_a_list_of_strings() -> None:
    line = b'{"__REALTIME_TIMESTAMP":"1","_PID":["1","2"],"PRIORITY":"x"}'
    doc = doc_of(line)
    assert doc["_PID"] == ["1", "2"] and doc["PRIORITY"] == "x"


# --- entry time ---


def test_time_falls_back_to_source_realtime() -> None:
    view = decode(b'{"_SOURCE_REALTIME_TIMESTAMP":"1719834246841938","MESSAGE":"m"}')
    assert entry_time_ns(view) == 1719834246841938000


@pytest.mark.parametrize(
    "line",
    [
        b'{"__REALTIME_TIMESTAMP":"soon"}',
        b'{"__REALTIME_TIMESTAMP":"-5"}',
        b'{"__REALTIME_TIMESTAMP":"\xc2\xb2"}',
        b'{"__REALTIME_TIMESTAMP":["1","2"]}',
        b'{"_SOURCE_REALTIME_TIMESTAMP":"1e6"}',
    ],
)
def test_bad_time_is_malformed(line: bytes) -> None:
    with pytest.raises(MalformedInput, match="not a number of microseconds"):
        entry_time_ns(decode(line))


# --- malformed entries ---


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"MESSAGE": 1}', "field MESSAGE: a JSON int"),
        (b'{"MESSAGE": {"a": "b"}}', "field MESSAGE: a JSON dict"),
        (b'{"MESSAGE": [1, 256]}', "field MESSAGE: an array of values or of bytes"),
        (b'{"MESSAGE": ["a", 5.5]}', "field MESSAGE: a value is a JSON float"),
        (b'{"MESSAGE": ["a", ["x"]]}', "field MESSAGE: an array of values or of bytes"),
        (b'{"message": "x"}', "'message' is not a journal field name"),
        (b'{"1ST": "x"}', "'1ST' is not a journal field name"),
        (b"{}", "an object without fields"),
        (b'["MESSAGE"]', "a JSON list, expected an object"),
        (b'{"MESSAGE": "cut', "invalid JSON"),
        (b'{"MESSAGE": "\xff"}', "invalid UTF-8 in a JSON string"),
        (b"", "invalid JSON"),
    ],
)
def test_malformed_entries_say_why(line: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason.replace("[", r"\[")):
        decode(line)


def test_truncated_entry_is_marked() -> None:
    line = PRETTY.read_bytes()
    with pytest.raises(MalformedInput) as info:
        decode(line[: len(line) // 2])
    assert info.value.truncated


def test_empty_array_is_an_empty_binary_value() -> None:
    view = decode(b'{"MESSAGE":[],"X":["a",null,[104,105]]}')
    assert view.fields == {"MESSAGE": "", "X": ["a", "hi"]}
    assert view.binary == ["MESSAGE", "X"] and view.omitted == ["X"]


# --- file level ---


def test_json_lines_kept_byte_for_byte() -> None:
    lines = [e + b"\n" for e in entries(CORNER)] + [b"\n"]
    data = b"".join(lines) + b"\r\n"
    assert entries_of_json_file(data) == [line.rstrip(b"\n") for line in lines if line.strip()]


def test_pretty_printed_entries_one_after_another() -> None:
    one = PRETTY.read_bytes()
    out = entries_of_json_file(one + one + b"\n")
    assert [json.loads(e) for e in out if isinstance(e, bytes)] == [json.loads(one)] * 2
    assert len(out) == 2


def test_damaged_object_in_a_file_is_reported_and_the_rest_kept() -> None:
    good = PRETTY.read_bytes()
    data = good + b'\n{\n  "MESSAGE" : oops\n}\n' + good + b"\n[1]\n" + good[:200]
    out = entries_of_json_file(data)
    assert [type(e) for e in out] == [bytes, MalformedInput, bytes, MalformedInput, MalformedInput]
    bad, not_object, cut = out[1], out[3], out[4]
    assert isinstance(bad, MalformedInput) and isinstance(cut, MalformedInput)
    assert "line 35: invalid JSON" in str(bad) and not bad.truncated
    assert "a JSON list, not a journal entry" in str(not_object)
    assert cut.truncated


def test_truncated_json_array_keeps_complete_entries() -> None:
    data = CORNER.read_bytes()
    out = entries_of_json_file(data[: len(data) - 300])
    assert isinstance(out[0], bytes) and json.loads(out[0])["_PID"] == "3740"
    assert isinstance(out[1], MalformedInput) and out[1].truncated


# --- the export format ---


def test_export_sample_entries_match_their_text_fields() -> None:
    data = BEATS_EXPORT.read_bytes()
    lines = export_lines(data)
    assert len(lines) == 4
    for line, block in zip(lines, data.split(b"\n\n"), strict=False):
        expect = dict(x.decode().split("=", 1) for x in block.split(b"\n") if x)
        assert json.loads(line) == expect
    doc = doc_of(lines[3])
    assert doc["MESSAGE"] == "[ 4] log entry" and doc["_SYSTEMD_UNIT"] == "session-3.scope"
    assert doc["__SEQNUM"] == 845018


def test_export_spec_binary_safe_field() -> None:
    raw = SPEC_EXPORT.read_bytes()
    assert b"MESSAGE\n\x07\x00\x00\x00\x00\x00\x00\x00foo\nbar\n" in raw
    lines = export_lines(raw)
    assert len(lines) == 3
    third = json.loads(lines[2])
    assert third["MESSAGE"] == "foo\nbar"  # a newline is printable for journalctl's JSON
    assert third["CODE_FILE"] == "<string>" and third["_PID"] == "16853"
    assert doc_of(lines[2])["_SYSTEMD_UNIT"] == "session-35898.scope"
    assert json.loads(lines[0])["SYSLOG_IDENTIFIER"] == "gdm-password]"


def test_export_repeated_and_binary_values() -> None:
    data = entry(
        ("MESSAGE", "m"),
        ("DEV", "/a"),
        ("DEV", b"/\xffb"),
        ("DEV", "/c"),
        ("CR", b"x\ry"),
    )
    [line] = export_lines(data)
    assert json.loads(line) == {
        "MESSAGE": "m",
        "DEV": ["/a", [47, 255, 98], "/c"],
        "CR": [120, 13, 121],
    }
    view = decode(line)
    assert view.fields["DEV"] == ["/a", "/\ufffdb", "/c"]
    assert view.binary == ["DEV", "CR"]


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        (b"plain", "plain"),
        (b"tab\there", "tab\there"),
        (b"new\nline", "new\nline"),
        (b"", ""),
        ("gr\u00fc\u00df".encode(), "gr\u00fc\u00df"),
        (b"cr\r", [99, 114, 13]),
        (b"\x1b[31m", [27, 91, 51, 49, 109]),
        (b"\x7f", [127]),
        ("\u0085".encode(), [194, 133]),
        ("\ufffe".encode(), [239, 191, 190]),
        ("\ufdd0".encode(), [239, 183, 144]),
        (b"\xc3(", [195, 40]),
        (b"\xed\xa0\x80", [237, 160, 128]),  # an encoded surrogate is not UTF-8
    ],
)
def test_json_value_is_journalctls_choice(value: bytes, expect: str | list[int]) -> None:
    assert json_value_of(value) == expect


@pytest.mark.parametrize(
    ("data", "reason", "truncated"),
    [
        (b"MESSAGE\n\x07\x00\x00", "stream ends inside the size", True),
        (b"MESSAGE\n\x07\x00\x00\x00\x00\x00\x00\x00foo", "stream ends inside the value", True),
        (b"MESSAGE\n\x03\x00\x00\x00\x00\x00\x00\x00fooX\n\n", "not followed by a newline", False),
        (b"MESSAGE\n\xff\xff\xff\xff\xff\xff\xff\xff\n\n", "is over", False),
        (b"MESSAGE=cut", "stream ends inside it", True),
        (b"message=x\n\n", "is not a journal field name", False),
        (b"not a field\n\n", "neither NAME=value nor a field name", False),
    ],
)
def test_damaged_export_entry(data: bytes, reason: str, truncated: bool) -> None:
    [out] = exported(data)
    assert isinstance(out, MalformedInput)
    assert reason in str(out) and "export entry 1" in str(out)
    assert out.truncated is truncated


def test_export_resumes_after_a_damaged_entry() -> None:
    good = entry(("MESSAGE", "ok"))
    out = exported(good + b"bad line\nMESSAGE=skipped\n\n\n\n" + good + b"MESSAGE=no end")
    assert [type(x) for x in out] == [bytes, MalformedInput, bytes, MalformedInput]
    assert "export entry 2" in str(out[1]) and "export entry 4" in str(out[3])


def test_export_last_entry_without_blank_line() -> None:
    assert export_lines(b"MESSAGE=a\nPRIORITY=6\n") == [b'{"MESSAGE":"a","PRIORITY":"6"}']


# --- never another exception ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-300, 300) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
names = st.sampled_from(
    [
        "MESSAGE",
        "_PID",
        "PRIORITY",
        "__REALTIME_TIMESTAMP",
        "_HOSTNAME",
        "_SYSTEMD_UNIT",
        "__CURSOR",
        "bad name",
        "",
    ]
)


def exercise(data: bytes) -> None:
    try:
        view = FORMAT.decode(data)
    except MalformedInput:
        return
    assert isinstance(view, JournalEntry)
    msgspec.json.encode(FORMAT.document(data, view))
    FORMAT.alert_ids(view)
    FORMAT.alert_labels(view)
    with contextlib.suppress(MalformedInput):
        FORMAT.time_ns(view)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_view_or_malformed(data: bytes) -> None:
    exercise(data)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(names, json_values, max_size=5))
def test_any_json_object_gives_a_view_or_malformed(obj: dict[str, Any]) -> None:
    exercise(json.dumps(obj).encode())


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 4000))
def test_every_truncation_of_a_sample(cut: int) -> None:
    data = b"".join(entries(CORNER))
    exercise(data[: cut % (len(data) + 1)])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_file_and_export_readers_never_raise(data: bytes) -> None:
    for item in entries_of_json_file(data):
        if isinstance(item, bytes):
            exercise(item)
    for item in export_entries(io.BytesIO(data)):
        if isinstance(item, bytes):
            FORMAT.decode(item)  # what the export reader makes always decodes


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 3000))
def test_export_truncations(cut: int) -> None:
    data = SPEC_EXPORT.read_bytes()
    for item in export_entries(io.BytesIO(data[: cut % (len(data) + 1)])):
        if isinstance(item, bytes):
            FORMAT.decode(item)


# --- real journal files: systemd-journal-remote writes, journalctl reads ---

needs_journal_tools = pytest.mark.skipif(
    not JOURNAL_REMOTE.exists() or shutil.which("journalctl") is None,
    reason="needs Debian packages systemd-journal-remote "
    "(/lib/systemd/systemd-journal-remote) and systemd (journalctl)",
)


def write_journal(path: Path, export: bytes) -> None:
    subprocess.run(
        [str(JOURNAL_REMOTE), f"--output={path}", "-"],
        input=export,
        check=True,
        capture_output=True,
    )


def journalctl(argv: list[str]) -> list[bytes]:
    done = subprocess.run(argv, check=True, capture_output=True)
    return done.stdout.splitlines()


def comparable(line: bytes, given_fields: set[str]) -> dict[str, Any]:
    """The entry without what journal-remote assigns anew (and journalctl adds)."""
    obj = json.loads(line)
    return {k: v for k, v in obj.items() if k in given_fields and k not in REWRITTEN}


@needs_journal_tools
@pytest.mark.parametrize("how", ["file", "directory"])
def test_round_trip_through_a_real_journal(tmp_path: Path, how: str) -> None:
    export = BEATS_EXPORT.read_bytes() + SPEC_EXPORT.read_bytes() + generated_export()
    ours = export_lines(export)
    assert len(ours) == 4 + 3 + 6
    write_journal(tmp_path / "x.journal", export)
    argv = journalctl_command(
        follow=False,
        cursor_file=None,
        file=tmp_path / "x.journal" if how == "file" else None,
        directory=tmp_path if how == "directory" else None,
    )
    theirs = journalctl(argv)
    assert len(theirs) == len(ours)
    for mine, real in zip(ours, theirs, strict=True):
        given_fields = set(json.loads(mine))
        # journalctl's JSON line and ours agree on every field, byte arrays included
        assert comparable(real, given_fields) == comparable(mine, given_fields)
        assert set(json.loads(real)) >= given_fields - REWRITTEN
        real_doc, my_doc = doc_of(real), doc_of(mine)
        for name in given_fields - REWRITTEN:
            assert real_doc[name] == my_doc[name]
        assert sorted(real_doc.get("binary_fields", [])) == sorted(my_doc.get("binary_fields", []))
        view = FORMAT.decode(real)
        assert FORMAT.alert_ids(view)[0] == json.loads(real)["__CURSOR"]
    docs = [doc_of(line) for line in theirs]
    assert docs[0]["__REALTIME_TIMESTAMP"] == 1758137056706827
    assert docs[6]["MESSAGE"] == "foo\nbar"
    sshd = [d for d in docs if d.get("SYSLOG_IDENTIFIER") == "sshd"]
    assert [d["MESSAGE"].split(" from ")[0] for d in sshd] == [
        "Failed password for invalid user admin"
    ] * 3
    assert sshd[0]["_PID"] == 4100 and sshd[0]["PRIORITY"] == 6
    labels = FORMAT.alert_labels(FORMAT.decode(theirs[7]))
    assert labels == {"host": "node-1", "unit": "ssh.service"}
    [sudo] = [d for d in docs if d.get("SYSLOG_IDENTIFIER") == "sudo"]
    assert "3 incorrect password attempts" in sudo["MESSAGE"] and sudo["PRIORITY"] == 2
    [kubelet] = [d for d in docs if d.get("SYSLOG_IDENTIFIER") == "kubelet"]
    assert kubelet["_UDEV_DEVLINK"] == ["/dev/alias1", "/dev/alias2", "/dev/\ufffdbad"]
    assert kubelet["binary_fields"] == ["_UDEV_DEVLINK"]
    assert kubelet["_SYSTEMD_SLICE"] == "system-kubelet\\x2dextra.slice"
    assert kubelet["MESSAGE"].startswith("E0517 08:00:00.123456     812 pod_workers.go")
    awkward = docs[-1]
    assert awkward["MESSAGE"] == "line one\nline two"
    assert awkward["LARGE"] == "x" * 5000  # --all: not null
    assert awkward["INVALID"] == "\ufffd("
    assert awkward["NUL"] == "a\x00b"
    assert sorted(awkward["binary_fields"]) == sorted(
        ["CR", "DEL", "C1", "NONCHAR", "NONCHAR_PLANE1", "NONCHAR_FDD0", "INVALID", "NUL"]
    )


@needs_journal_tools
def test_without_all_journalctl_gives_null_for_large_values(tmp_path: Path) -> None:
    write_journal(tmp_path / "x.journal", generated_export())
    argv = journalctl_command(
        follow=False, cursor_file=None, file=tmp_path / "x.journal", directory=None
    )
    argv.remove("--all")
    last = journalctl(argv)[-1]
    view = FORMAT.decode(last)
    assert "LARGE" not in view.fields and view.omitted == ["LARGE"]


def batch(first: int, count: int) -> bytes:
    return b"".join(
        entry(
            ("__REALTIME_TIMESTAMP", str(1_716_000_000_000_000 + n)),
            # a real journal's entries of one boot have distinct monotonic times: journalctl
            # seeks a cursor in the other files of a directory by (boot ID, monotonic time)
            ("__MONOTONIC_TIMESTAMP", str(5_000_000 + n)),
            ("_BOOT_ID", BOOT),
            ("SYSLOG_IDENTIFIER", "sshd"),
            ("MESSAGE", f"Failed password for root from 198.51.100.7 port {n} ssh2 #{n}"),
        )
        for n in range(first, first + count)
    )


def numbers(lines: list[bytes]) -> list[int]:
    return [int(doc_of(line)["MESSAGE"].rsplit("#", 1)[1]) for line in lines]


def test_journalctl_command_argv(tmp_path: Path) -> None:
    cursor = tmp_path / "cursor"
    assert journalctl_command(follow=False, cursor_file=None, file=None, directory=None) == [
        "journalctl",
        "--output=json",
        "--all",
        "--no-pager",
    ]
    assert journalctl_command(
        follow=False, cursor_file=cursor, file=Path("/j/x.journal"), directory=None
    )[-2:] == ["--file=/j/x.journal", f"--cursor-file={cursor}"]
    argv = journalctl_command(follow=True, cursor_file=cursor, file=None, directory=Path("/d"))
    assert argv[-3:] == ["--directory=/d", "--follow", "--no-tail"]
    write_cursor_file(cursor, "s=1;i=2")
    assert read_cursor_file(cursor) == "s=1;i=2"
    argv = journalctl_command(follow=True, cursor_file=cursor, file=None, directory=None)
    assert argv[-1] == "--after-cursor=s=1;i=2"
    with pytest.raises(ValueError, match="not both"):
        journalctl_command(follow=False, cursor_file=None, file=cursor, directory=cursor)
    assert read_cursor_file(tmp_path / "absent") is None


@needs_journal_tools
def test_cursor_file_resume_neither_repeats_nor_skips(tmp_path: Path) -> None:
    journal, cursor = tmp_path / "x.journal", tmp_path / "cursor"
    argv = journalctl_command(follow=False, cursor_file=cursor, file=journal, directory=None)
    write_journal(journal, batch(0, 7))
    assert numbers(journalctl(argv)) == list(range(7))
    assert read_cursor_file(cursor) is not None
    assert journalctl(argv) == []
    write_journal(journal, batch(7, 5))  # journal-remote appends to the file
    assert numbers(journalctl(argv)) == list(range(7, 12))
    write_journal(journal, batch(12, 1))
    assert numbers(journalctl(argv)) == [12]
    assert journalctl(argv) == []


def read_lines(proc: subprocess.Popen[bytes], count: int, timeout: float = 10.0) -> list[bytes]:
    """Exactly `count` lines of a running journalctl (it must print no more meanwhile)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while data.count(b"\n") < count:
            left = deadline - time.monotonic()
            assert left > 0, f"journalctl printed {data!r}, expected {count} entries"
            if sel.select(left):
                chunk = os.read(fd, 1 << 16)
                assert chunk, "journalctl ended"
                data += chunk
    lines = data.split(b"\n")
    assert lines[count:] == [b""], "journalctl printed more entries than expected"
    return lines[:count]


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)
    assert proc.stdout is not None
    proc.stdout.close()


@needs_journal_tools
def test_follow_resumes_after_the_cursor_the_caller_stored(tmp_path: Path) -> None:
    journals, cursor = tmp_path / "journal", tmp_path / "cursor"
    journals.mkdir()
    write_journal(journals / "a.journal", batch(0, 4))

    def follow() -> subprocess.Popen[bytes]:
        argv = journalctl_command(follow=True, cursor_file=cursor, file=None, directory=journals)
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    proc = follow()
    try:
        first = read_lines(proc, 4)
        assert numbers(first) == [0, 1, 2, 3]  # --no-tail: not only the last ten
        write_journal(journals / "b.journal", batch(4, 20))
        more = read_lines(proc, 20)
        assert numbers(more) == list(range(4, 24))
        # the caller made entries up to #13 durable, then stopped
        write_cursor_file(cursor, str(doc_of(more[9])["__CURSOR"]))
    finally:
        stop(proc)
    proc = follow()
    try:
        assert numbers(read_lines(proc, 10)) == list(range(14, 24))
        write_journal(journals / "c.journal", batch(24, 2))
        assert numbers(read_lines(proc, 2)) == [24, 25]
    finally:
        stop(proc)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        # Python's JSON reader takes NaN (it became null: the field was dropped as too
        # large) and unpaired surrogates (UnicodeEncodeError when written back)
        ("NaN", "invalid JSON: JSON is malformed: invalid character"),
        ('"\\ud800"', "invalid JSON: "),
        # int() refuses 4,301 digits: ValueError
        ("9" * 5000, "not a journal entry: Integer value out of range"),
    ],
)
def test_a_pretty_printed_entry_that_is_not_json_is_malformed_in_place(
    value: str, reason: str
) -> None:
    good = PRETTY.read_bytes()
    bad = f'{{\n  "MESSAGE" : "x",\n  "FIELD" : {value}\n}}\n'.encode()
    out = entries_of_json_file(good + b"\n" + bad + good)
    assert [type(e) for e in out] == [bytes, MalformedInput, bytes]
    line = len(good.splitlines()) + 2  # after the entry and the empty line
    assert str(out[1]).startswith(f"line {line}: {reason}"), out[1]


def test_a_pretty_printed_entry_nested_too_deeply_is_malformed_in_place() -> None:
    good = PRETTY.read_bytes()
    bad = b'{\n  "FIELD" : ' + b"[" * 5000 + b"]" * 5000 + b"\n}\n"
    out = entries_of_json_file(good + b"\n" + bad + good)
    assert isinstance(out[0], bytes) and isinstance(out[-1], bytes)
    assert any(isinstance(e, MalformedInput) and "nested too deeply" in str(e) for e in out)


def test_a_numeric_field_too_long_for_an_int_stays_text() -> None:
    """int() refuses 4,301 digits: document() raised ValueError on `_PID`."""
    view = decode(b'{"__REALTIME_TIMESTAMP": "1", "_PID": "' + b"9" * 5000 + b'", "PRIORITY": "6"}')
    doc = document(b"", view)
    assert doc["_PID"] == "9" * 5000
    assert doc["PRIORITY"] == 6
    assert doc["__REALTIME_TIMESTAMP"] == 1


def test_a_realtime_timestamp_with_leading_zeros_is_read() -> None:
    view = decode(b'{"__REALTIME_TIMESTAMP": "' + b"0" * 30 + b'1700000000000001"}')
    assert entry_time_ns(view) == 1_700_000_000_000_001_000
