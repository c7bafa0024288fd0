"""systemd journal entries (`journalctl -o json`, and `-o export` converted to it).

One input unit is one journal entry as ONE line of `journalctl -o json --all`: a JSON
object from journald field names to values. The journal JSON format (systemd's
JOURNAL_EXPORT_FORMATS.md) has these quirks, all handled here:

- every value is normally a string, numbers included (`__REALTIME_TIMESTAMP` and
  `_SOURCE_REALTIME_TIMESTAMP` in microseconds, `_PID`, `PRIORITY`, `SYSLOG_FACILITY`);
  `document()` turns the numeric fields of `INT_FIELDS` into ints;
- a value that is not valid UTF-8, or holds control characters (anything below U+0020
  but TAB and LF, DEL, U+0080-U+009F) or Unicode non-characters, comes as an array of
  byte values: it is decoded as UTF-8 with invalid bytes replaced by U+FFFD, and the
  field is named in `binary_fields`;
- a field with several values in one entry comes as an array of values (each a string,
  a byte array or null): it stays a list of strings;
- a value larger than journalctl's threshold (4096 bytes, unless `--all`) comes as null:
  the field is left out and named in `omitted_fields` (a null inside a list of values is
  dropped and the field named as well);
- unit names keep systemd's `\\x2d` escapes as journald stores them (the real unit name,
  what `systemctl` takes); `unescape_unit_name` gives the readable form;
- MESSAGE may span several lines (it is one JSON string).

What cannot be recovered: a value journalctl printed as null (its size exceeded the
threshold: run journalctl with `--all`, as `journalctl_command` does), and the exact bytes
of an invalid UTF-8 value once replaced in the document (the raw line keeps them).

File level: `entries_of_json_file` splits a file of `journalctl -o json` lines, a JSON
array of entries, or pretty-printed entries (`-o json-pretty`) into one compact JSON line
per entry. `export_entries` reads the binary-safe export format (`journalctl -o export`,
the input of `systemd-journal-remote`) and gives each entry as the line `journalctl -o
json --all` would print for it. `journalctl_command` gives the argv that reads a journal.

Document field names (`document()`): the journald field names themselves, e.g.
`MESSAGE`, `PRIORITY` (int), `SYSLOG_FACILITY` (int), `SYSLOG_IDENTIFIER`, `SYSLOG_PID`
(int), `_SYSTEMD_UNIT`, `_SYSTEMD_USER_UNIT`, `_SYSTEMD_CGROUP`, `_COMM`, `_EXE`,
`_CMDLINE`, `_PID` (int), `_UID` (int), `_GID` (int), `_HOSTNAME`, `_TRANSPORT`,
`_BOOT_ID`, `_MACHINE_ID`, `__CURSOR`, `__REALTIME_TIMESTAMP` (int, µs),
`__MONOTONIC_TIMESTAMP` (int, µs), `_SOURCE_REALTIME_TIMESTAMP` (int, µs), and any other
field the entry has; a repeated field is a list of strings (its values are not turned
into ints). Two lowercase names, which journald never uses, carry what decoding found:
`binary_fields` (fields that came as byte arrays) and `omitted_fields` (fields that came
as null), each present only when not empty.

Alert labels: `host` (`_HOSTNAME`) and `unit` (`_SYSTEMD_UNIT`); `_UID` is not a user
name and is not a label. Alert ids: (`__CURSOR`, None).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from logwarden.normalize.base import MalformedInput, checked_time_ns, no_derived

__all__ = [
    "FORMAT",
    "INT_FIELDS",
    "MAX_FIELD_BYTES",
    "SOURCE",
    "JournalEntry",
    "alert_ids",
    "alert_labels",
    "decode",
    "document",
    "entries_of_json_file",
    "entry_time_ns",
    "export_entries",
    "journalctl_command",
    "json_value_of",
    "read_cursor_file",
    "unescape_unit_name",
    "write_cursor_file",
]

#: The `Record.source` of journal entries.
SOURCE = "journald"

#: Fields whose single string value `document()` gives as an int (when it is digits, at
#: most 20: journald's numbers are 64-bit).
INT_FIELDS = frozenset(
    {
        "PRIORITY",
        "SYSLOG_FACILITY",
        "SYSLOG_PID",
        "ERRNO",
        "CODE_LINE",
        "_PID",
        "_UID",
        "_GID",
        "_AUDIT_SESSION",
        "_AUDIT_LOGINUID",
        "_SYSTEMD_OWNER_UID",
        "__REALTIME_TIMESTAMP",
        "__MONOTONIC_TIMESTAMP",
        "__SEQNUM",
        "_SOURCE_REALTIME_TIMESTAMP",
        "_SOURCE_MONOTONIC_TIMESTAMP",
    }
)
_INT_FIELDS = tuple(sorted(INT_FIELDS))

#: The largest field value the export format reader accepts (journald's own limit,
#: DATA_SIZE_MAX of systemd's journal importer).
MAX_FIELD_BYTES = 768 * 1024 * 1024


class JournalEntry(msgspec.Struct, gc=False):
    """One journal entry: its fields as text, and what decoding had to change.

    `fields` maps journald field names to a string, or a list of strings for a field with
    several values. `binary` names the fields that came as byte arrays (decoded as UTF-8,
    invalid bytes replaced), `omitted` the fields that came as null (too large).
    """

    fields: dict[str, str | list[str]]
    binary: list[str] | None = None
    omitted: list[str] | None = None


_decoder = msgspec.json.Decoder(dict[str, str | list[Any] | None])
_any_decoder = msgspec.json.Decoder()

# journald's field names: A-Z, 0-9 and "_", not starting with a digit, at most 64 bytes;
# entry metadata in journalctl's output starts with "__" (`__CURSOR`)
_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}\Z")
_NAME_BYTES = re.compile(rb"[A-Z_][A-Z0-9_]{0,63}\Z")
_known_names: set[str] = set()


def _check_name(name: str) -> None:
    if _NAME.match(name) is None:
        raise MalformedInput(
            f"not a journal entry: {name[:80]!r} is not a journal field name "
            "(A-Z, 0-9 and _, not starting with a digit, at most 64 characters)"
        )
    if len(_known_names) > 65536:
        _known_names.clear()
    _known_names.add(name)


def _text_of_bytes(name: str, value: list[Any]) -> str:
    try:
        return bytes(value).decode("utf-8", "replace")
    except (TypeError, ValueError):
        raise MalformedInput(
            f"field {name}: an array of values or of bytes (0-255) expected"
        ) from None


def _normalize(raw: dict[str, Any]) -> JournalEntry:
    binary: list[str] | None = None
    omitted: list[str] | None = None
    drop: list[str] | None = None
    for name, value in raw.items():
        if name not in _known_names:
            _check_name(name)
        if type(value) is str:
            continue
        if value is None:
            omitted = [name] if omitted is None else [*omitted, name]
            drop = [name] if drop is None else [*drop, name]
        elif not value or type(value[0]) is int:
            raw[name] = _text_of_bytes(name, value)
            binary = [name] if binary is None else [*binary, name]
        else:
            texts: list[str] = []
            for item in value:
                if type(item) is str:
                    texts.append(item)
                elif item is None:
                    if omitted is None or omitted[-1] != name:
                        omitted = [name] if omitted is None else [*omitted, name]
                elif type(item) is list:
                    texts.append(_text_of_bytes(name, item))
                    if binary is None or binary[-1] != name:
                        binary = [name] if binary is None else [*binary, name]
                else:
                    raise MalformedInput(
                        f"field {name}: a value is a JSON {type(item).__name__}, "
                        "expected a string, a byte array or null"
                    )
            raw[name] = texts
    if drop is not None:
        for name in drop:
            del raw[name]
    return JournalEntry(raw, binary, omitted)


def _validation_reason(data: bytes, exc: msgspec.ValidationError) -> str:
    """Name the field whose value has the wrong type (msgspec says only `$[...]`)."""
    try:
        doc = _any_decoder.decode(data)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        return f"not a journal entry: {exc}"
    if not isinstance(doc, dict):
        return f"not a journal entry: a JSON {type(doc).__name__}, expected an object"
    for name, value in doc.items():
        if not (value is None or isinstance(value, str | list)):
            return (
                f"field {name}: a JSON {type(value).__name__}, expected a string, an array or null"
            )
    return f"not a journal entry: {exc}"


def decode(data: bytes) -> JournalEntry:
    """The view of one entry: one line of `journalctl -o json`. Raises MalformedInput."""
    try:
        raw = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise MalformedInput(_validation_reason(data, exc)) from None
    except msgspec.DecodeError as exc:
        text = str(exc)
        raise MalformedInput(f"invalid JSON: {text}", truncated="truncated" in text) from None
    except UnicodeDecodeError:
        raise MalformedInput(
            "invalid UTF-8 in a JSON string: journalctl writes byte arrays instead"
        ) from None
    except RecursionError:
        raise MalformedInput("JSON nested too deeply to read") from None
    if not raw:
        raise MalformedInput("not a journal entry: an object without fields")
    return _normalize(raw)


def _micros(name: str, text: str | list[str] | None) -> int | None:
    if text is None:
        return None
    if type(text) is not str or not (text.isascii() and text.isdigit()):
        raise MalformedInput(f"field {name}: {text!r} is not a number of microseconds")
    what = f"field {name}: {text[:40]!r} microseconds"
    if len(text.lstrip("0")) > 19:  # past year 9999 anyway, and int() refuses 4,301 digits
        raise MalformedInput(f"{what} is out of range: years 1 to 9999 (UTC) only")
    return checked_time_ns(int(text) * 1000, what)


def entry_time_ns(entry: JournalEntry) -> int:
    """The entry's time: `__REALTIME_TIMESTAMP` (when journald received it), else
    `_SOURCE_REALTIME_TIMESTAMP`; both microseconds since the epoch."""
    fields = entry.fields
    ns = _micros("__REALTIME_TIMESTAMP", fields.get("__REALTIME_TIMESTAMP"))
    if ns is None:
        ns = _micros("_SOURCE_REALTIME_TIMESTAMP", fields.get("_SOURCE_REALTIME_TIMESTAMP"))
    if ns is None:
        raise MalformedInput(
            "journal entry without __REALTIME_TIMESTAMP and _SOURCE_REALTIME_TIMESTAMP"
        )
    return ns


def alert_ids(entry: JournalEntry) -> tuple[str | None, str | None]:
    """The entry's cursor (its position in the journal), and no stage."""
    cursor = entry.fields.get("__CURSOR")
    return (cursor if type(cursor) is str else None), None


def alert_labels(entry: JournalEntry) -> dict[str, str]:
    """`host` from `_HOSTNAME` and `unit` from `_SYSTEMD_UNIT` (single values only)."""
    fields = entry.fields
    labels = {}
    host = fields.get("_HOSTNAME")
    if type(host) is str and host:
        labels["host"] = host
    unit = fields.get("_SYSTEMD_UNIT")
    if type(unit) is str and unit:
        labels["unit"] = unit
    return labels


def document(_raw: bytes, entry: JournalEntry) -> dict[str, Any]:
    """The entry under journald's field names; see the module docstring."""
    doc: dict[str, Any] = dict(entry.fields)
    for name in _INT_FIELDS:
        value = doc.get(name)
        if type(value) is str and value.isdigit() and value.isascii() and len(value) <= 20:
            doc[name] = int(value)
    if entry.binary:
        doc["binary_fields"] = list(entry.binary)
    if entry.omitted:
        doc["omitted_fields"] = list(entry.omitted)
    return doc


_UNIT_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


def unescape_unit_name(name: str) -> str:
    """A unit name with systemd's `\\xNN` escapes decoded (`system-systemd\\x2dcoredump.slice`
    reads `system-systemd-coredump.slice`), for display; the escaped form is the real name."""
    if "\\x" not in name:
        return name
    return _UNIT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name)


# --- file level: journalctl -o json lines, JSON arrays, pretty-printed entries ---

_ENTRY_START = re.compile(r"^[ \t]*\{", re.MULTILINE)
#: Finds where each JSON value ends; numbers stay text (msgspec reads the entry after).
_json_scanner = json.JSONDecoder(parse_int=str, parse_float=str)


def _line_no(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def entries_of_json_file(data: bytes) -> list[bytes | MalformedInput]:
    """Split a file of journal entries into one compact JSON line per entry.

    Accepts `journalctl -o json` (one object a line: the lines are kept as they are), a
    JSON array of entries, and pretty-printed entries (`-o json-pretty`, one or more).
    What is not an entry becomes a MalformedInput naming its line; a file cut short ends
    with a MalformedInput marked `truncated`. Whether an object is a journal entry is for
    `decode` to say.
    """
    lines = [line.strip() for line in data.split(b"\n")]
    if all(not line or (line[:1] == b"{" and line[-1:] == b"}") for line in lines):
        return [line for line in lines if line]
    return _scan_json(data.decode("utf-8", "replace"))


def _skip(text: str, pos: int, seps: str) -> int:
    while pos < len(text) and text[pos] in seps:
        pos += 1
    return pos


def _scan_json(text: str) -> list[bytes | MalformedInput]:
    out: list[bytes | MalformedInput] = []
    pos = _skip(text, 0, " \t\r\n\ufeff")
    if text[pos : pos + 1] == "[":
        pos += 1
    while True:
        pos = _skip(text, pos, " \t\r\n,")
        if pos >= len(text) or (text[pos] == "]" and not text[pos + 1 :].strip()):
            return out
        try:
            value, end = _json_scanner.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            cut = not text[exc.pos :].strip() or "Unterminated" in exc.msg
            out.append(MalformedInput(f"line {exc.lineno}: invalid JSON: {exc.msg}", truncated=cut))
            nxt = _ENTRY_START.search(text, exc.pos + 1 if exc.pos > pos else pos + 1)
            if nxt is None:
                return out
            pos = nxt.start()
            continue
        except RecursionError:
            out.append(
                MalformedInput(f"line {_line_no(text, pos)}: JSON nested too deeply to read")
            )
            nxt = _ENTRY_START.search(text, pos + 1)
            if nxt is None:
                return out
            pos = nxt.start()
            continue
        if isinstance(value, dict):
            out.append(_compact(text[pos:end], _line_no(text, pos)))
        else:
            out.append(
                MalformedInput(
                    f"line {_line_no(text, pos)}: a JSON {type(value).__name__}, "
                    "not a journal entry object"
                )
            )
        pos = end


def _compact(text: str, line: int) -> bytes | MalformedInput:
    """One entry's JSON text as one compact line, read by msgspec as `decode` reads it
    (Python's scanner takes ``NaN`` and unpaired surrogates, which are not JSON)."""
    try:
        return msgspec.json.encode(_any_decoder.decode(text))
    except msgspec.ValidationError as exc:  # a number out of range
        return MalformedInput(f"line {line}: not a journal entry: {exc}")
    except msgspec.DecodeError as exc:
        return MalformedInput(f"line {line}: invalid JSON: {exc}")
    except RecursionError:
        return MalformedInput(f"line {line}: JSON nested too deeply to read")


# --- the export format (journalctl -o export, systemd-journal-remote's input) ---

# what journalctl's JSON output writes as a byte array rather than a string: systemd's
# utf8_is_printable() refuses C0 controls but TAB and LF, DEL, C1 controls and the
# Unicode non-characters (U+FDD0-U+FDEF and U+xFFFE, U+xFFFF of every plane)
_NOT_PRINTABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ufdd0-\ufdef"
    + "".join(f"{chr(p * 0x10000 + 0xFFFE)}{chr(p * 0x10000 + 0xFFFF)}" for p in range(17))
    + "]"
)
_ASCII_CONTROL = re.compile(b"[\x00-\x08\x0b-\x1f\x7f]")


def json_value_of(value: bytes) -> str | list[int]:
    """A field value as `journalctl -o json` writes it: a string, or the byte values when
    it is not valid UTF-8 or not printable."""
    if value.isascii():
        return list(value) if _ASCII_CONTROL.search(value) is not None else value.decode("ascii")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return list(value)
    if _NOT_PRINTABLE.search(text) is not None:
        return list(value)
    return text


def _json_line(fields: dict[str, list[bytes]]) -> bytes:
    obj: dict[str, Any] = {}
    for name, values in fields.items():
        if len(values) == 1:
            obj[name] = json_value_of(values[0])
        else:
            obj[name] = [json_value_of(v) for v in values]
    return msgspec.json.encode(obj)


class _ExportError(Exception):
    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    """`size` bytes (fewer at end of stream), read in pieces: a wrong length from a
    damaged stream must not allocate its size at once."""
    if size <= 1 << 20:
        return stream.read(size)
    parts = []
    left = size
    while left:
        part = stream.read(min(left, 1 << 20))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _binary_field(stream: IO[bytes], name: bytes) -> bytes:
    head = stream.read(8)
    if len(head) < 8:
        raise _ExportError(f"field {name!r}: stream ends inside the size", truncated=True)
    size = int.from_bytes(head, "little")
    if size > MAX_FIELD_BYTES:
        raise _ExportError(f"field {name!r}: size {size} is over {MAX_FIELD_BYTES} bytes")
    value = _read_exact(stream, size)
    if len(value) < size:
        raise _ExportError(f"field {name!r}: stream ends inside the value", truncated=True)
    end = stream.read(1)
    if end != b"\n":
        raise _ExportError(
            f"field {name!r}: binary value of {size} bytes not followed by a newline",
            truncated=not end,
        )
    return value


_export_names: dict[bytes, str] = {}


def _field(stream: IO[bytes], line: bytes) -> tuple[str, bytes]:
    if line[-1:] != b"\n":
        raise _ExportError(f"line {line[:40]!r}...: stream ends inside it", truncated=True)
    eq = line.find(b"=")
    if eq >= 0:
        name, value = line[:eq], line[eq + 1 : -1]
    else:
        name = line[:-1]
        if name not in _export_names and _NAME_BYTES.match(name) is None:
            raise _ExportError(f"line {line[:80]!r} is neither NAME=value nor a field name")
        value = _binary_field(stream, name)
    text = _export_names.get(name)
    if text is None:
        if _NAME_BYTES.match(name) is None:
            raise _ExportError(f"{name[:80]!r} is not a journal field name")
        if len(_export_names) > 65536:
            _export_names.clear()
        text = _export_names[name] = name.decode("ascii")
    return text, value


def export_entries(stream: IO[bytes]) -> Iterator[bytes | MalformedInput]:
    """The entries of a journal export stream, each as the line `journalctl -o json --all`
    would print for it (binary or non-printable values as byte arrays, repeated fields as
    arrays, in the order the fields first appear).

    Format (JOURNAL_EXPORT_FORMATS): entries are separated by an empty line; a field is
    `NAME=value\\n`, or `NAME\\n` + 64-bit little-endian size + value + `\\n` for values
    that hold a newline or other control characters. A damaged entry gives a
    MalformedInput (`truncated` when the stream ends inside it) and reading resumes at
    the next empty line.
    """
    fields: dict[str, list[bytes]] = {}
    error: MalformedInput | None = None
    number = 1
    while True:
        line = stream.readline()
        if line == b"\n" or not line:
            if error is not None:
                yield error
            elif fields:
                yield _json_line(fields)
            if not line:
                return
            if fields or error is not None:
                number += 1
            fields = {}
            error = None
            continue
        if error is not None:
            continue
        try:
            name, value = _field(stream, line)
        except _ExportError as exc:
            error = MalformedInput(f"export entry {number}: {exc}", truncated=exc.truncated)
            continue
        values = fields.get(name)
        if values is None:
            fields[name] = [value]
        else:
            values.append(value)


# --- reading a journal with journalctl ---


def read_cursor_file(path: Path) -> str | None:
    """The cursor a cursor file holds (as journalctl's `--cursor-file` writes it), or None
    when the file is absent or empty."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


def write_cursor_file(path: Path, cursor: str) -> None:
    """Store `cursor` (an entry's `__CURSOR`) atomically, the way journalctl does."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(cursor, encoding="utf-8")
    tmp.replace(path)


def journalctl_command(
    *, follow: bool, cursor_file: Path | None, file: Path | None, directory: Path | None
) -> list[str]:
    """The argv of journalctl printing entries as `-o json` lines, all fields in full
    (`--all`: no null for values over 4096 bytes).

    `file` (`--file`) or `directory` (`--directory`) choose the journal; neither reads
    the local system's. Without `follow`, `cursor_file` is journalctl's `--cursor-file`
    (systemd 242 and later): it starts after the cursor the file holds, and writes the
    cursor of the last entry it printed when it ends, so the next run neither repeats
    nor skips. With `follow`, journalctl (at least up to 252) does not write the cursor
    file when it is stopped by a signal, so the caller owns it: it stores the `__CURSOR`
    of the last entry it made durable (`write_cursor_file`), and the command starts
    `--after-cursor` that cursor, read now. `--no-tail` makes follow print every entry
    from there on (else only the last ten); on a first start (no cursor) that is the
    whole journal. `--follow` needs a directory, not a `--file`, in systemd 252.
    """
    if file is not None and directory is not None:
        raise ValueError("journalctl reads either a journal file or a directory, not both")
    argv = ["journalctl", "--output=json", "--all", "--no-pager"]
    if file is not None:
        argv.append(f"--file={file}")
    if directory is not None:
        argv.append(f"--directory={directory}")
    if follow:
        argv += ["--follow", "--no-tail"]
        cursor = read_cursor_file(cursor_file) if cursor_file is not None else None
        if cursor is not None:
            argv.append(f"--after-cursor={cursor}")
    elif cursor_file is not None:
        argv.append(f"--cursor-file={cursor_file}")
    return argv


class _JournaldFormat:
    source = SOURCE
    # the module functions themselves, so a call through FORMAT adds no frame
    decode = staticmethod(decode)
    time_ns = staticmethod(entry_time_ns)
    alert_ids = staticmethod(alert_ids)
    alert_labels = staticmethod(alert_labels)
    document = staticmethod(document)
    derived = staticmethod(no_derived)


#: The journal format as a `normalize.base.Format`.
FORMAT = _JournaldFormat()
