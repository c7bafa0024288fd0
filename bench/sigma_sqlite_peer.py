"""The SQLite approach to Sigma (how Zircolite detects), as a peer for bench/detect.py.

    python bench/sigma_sqlite_peer.py EVENTS.jsonl RULE_FILE_OR_DIR...

Every event is flattened (nested keys joined with '.', arrays kept as JSON text) into a row
of one SQLite table whose columns are all the keys seen (first pass: the keys; second: the
rows), as Zircolite does; the Sigma rules, through logwarden's field-mapping pipeline, are
converted to SQL by pySigma's SQLite backend and run against it. It prints the number of
events and, per rule, of matches, so a run can be checked against logwarden's.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule

from logwarden.detect.sigma.loader import DEFAULT_PIPELINES, _pipeline

decode = msgspec.json.Decoder().decode
encode = msgspec.json.encode


def flatten(node: Any, prefix: str, out: dict[str, Any]) -> None:
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flatten(value, name + ".", out)
        elif isinstance(value, list):
            out[name] = encode(value).decode()
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = value


def rule_files(specs: list[str]) -> list[Path]:
    files: list[Path] = []
    for spec in specs:
        path = Path(spec)
        files.extend(sorted(path.rglob("*.yml")) if path.is_dir() else [path])
    return [f for f in files if "tests" not in f.parts]


def main() -> None:
    events_file, specs = sys.argv[1], sys.argv[2:]
    rules = [
        r
        for path in rule_files(specs)
        for r in SigmaCollection.from_yaml(path.read_text(), resolve_references=False).rules
        if isinstance(r, SigmaRule)
    ]
    backend = sqliteBackend(processing_pipeline=_pipeline(DEFAULT_PIPELINES))
    queries = {r.title: backend.convert_rule(r)[0] for r in rules}

    columns: dict[str, None] = {}
    with open(events_file, "rb") as fh:  # pass 1: every key becomes a column
        for line in fh:
            row: dict[str, Any] = {}
            flatten(decode(line), "", row)
            columns.update(dict.fromkeys(row))
    names = list(columns)
    fd, db_path = tempfile.mkstemp(suffix=".db")
    os.close(fd)
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.create_function("REGEXP", 2, lambda p, v: v is not None and re.search(p, str(v)) is not None)
    db.execute(
        "CREATE TABLE logs (row_id INTEGER, "
        + ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in names)
        + ")"
    )
    insert = f"INSERT INTO logs VALUES ({', '.join('?' * (len(names) + 1))})"
    batch: list[list[Any]] = []
    n = 0
    with open(events_file, "rb") as fh:  # pass 2: the rows
        for line in fh:
            row = {}
            flatten(decode(line), "", row)
            batch.append([n, *(row.get(c) for c in names)])
            n += 1
            if len(batch) == 10_000:
                db.executemany(insert, batch)
                batch.clear()
    db.executemany(insert, batch)
    db.commit()
    print(f"events {n} columns {len(names)}")
    for title, sql in queries.items():
        try:
            count = db.execute(sql.replace("SELECT *", "SELECT count(*)", 1)).fetchone()[0]
        except sqlite3.OperationalError as exc:  # a field no event has: as Zircolite, skip
            print(f"n/a\t{title}\t({exc})")
            continue
        print(f"{count}\t{title}")
    db.close()
    os.unlink(db_path)


if __name__ == "__main__":
    main()
