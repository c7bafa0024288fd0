"""The SQLite oracle: pySigma's SQLite backend (the Zircolite approach) over the same events.

Each rule goes through the same processing pipeline logwarden applies, is converted to SQL
by `pysigma-backend-sqlite`, and runs against a table with one row per event and one
column per field the rules read (TEXT COLLATE NOCASE, as Zircolite does, which makes `=`
case-insensitive for ASCII like Sigma). A field whose path crosses an array cannot be a
column: rules reading one are reported as not evaluable (None).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule

from logwarden.detect.sigma.compiler import fields_used
from logwarden.detect.sigma.loader import DEFAULT_PIPELINES, _pipeline

_ARRAY = object()


def _value(event: Any, field: str) -> Any:
    """The column value of `field` for `event`: text, None, or _ARRAY if it crosses one."""
    if field.startswith("/"):
        node = event
        for token in field.split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or token not in node:
                return None
            node = node[token]
    else:
        node = event
        for step in field.split("."):
            if isinstance(node, list):
                return _ARRAY
            if not isinstance(node, dict) or step not in node:
                return None
            node = node[step]
    if isinstance(node, list):
        return _ARRAY
    if node is None or isinstance(node, str):
        return node
    return json.dumps(node, separators=(",", ":"))


def _regexp(pattern: str, value: Any) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


def sqlite_matches(
    rule_files: Sequence[Path], events: Sequence[dict[str, Any]]
) -> dict[str, set[int] | None]:
    """Rule title -> the indices of the events its SQL selects (None: not evaluable)."""
    rules = [
        r
        for path in rule_files
        for r in SigmaCollection.from_yaml(path.read_text()).rules
        if isinstance(r, SigmaRule)
    ]
    pipeline = _pipeline(DEFAULT_PIPELINES)
    backend = sqliteBackend(processing_pipeline=pipeline)
    queries = {r.title: backend.convert_rule(r)[0] for r in rules}
    for rule in rules:  # the field names after the pipeline, for the columns
        pipeline.apply(rule)
    fields = sorted({f for r in rules for f in fields_used(r)})
    crossing: set[str] = set()
    rows = []
    for i, event in enumerate(events):
        row: list[Any] = [i]
        for field in fields:
            value = _value(event, field)
            if value is _ARRAY:
                crossing.add(field)
                value = None
            row.append(value)
        rows.append(row)
    db = sqlite3.connect(":memory:")
    db.create_function("REGEXP", 2, _regexp, deterministic=True)
    columns = ", ".join(f'"{f}" TEXT COLLATE NOCASE' for f in fields)
    db.execute(f"CREATE TABLE logs (row_id INTEGER, {columns})")
    db.executemany(f"INSERT INTO logs VALUES ({', '.join('?' * (len(fields) + 1))})", rows)
    out: dict[str, set[int] | None] = {}
    for rule in rules:
        if crossing & set(fields_used(rule)):
            out[rule.title] = None
            continue
        sql = queries[rule.title].replace("SELECT *", "SELECT row_id", 1)
        out[rule.title] = {row[0] for row in db.execute(sql)}
    db.close()
    return out
