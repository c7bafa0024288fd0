"""The outbox: every rendered notification on disk until its receiver has it.

One SQLite file (stdlib `sqlite3`, WAL, ``synchronous=FULL``: a `put` that returned is on
disk and survives a crash or a power loss). One row per (receiver, notification id), in
the order they were put; the pair is unique, so putting a notification again (the manager
re-made it after a crash) keeps the one row: delivery stays exactly-once per id as long as
the row is kept.

    state       what it means                                  what happens to it
    pending     waiting for its receiver (maybe backing off)   sent, then `sent`
    sent        delivered; body emptied                        pruned after `keep_sent_secs`
    dead        the receiver refused it (`retry=False`)        kept, listed; `requeue` retries
    unrendered  the notifier could not render it; body is the  kept, listed; never sent
                notification's JSON

A receiver's pending rows leave in order: only the oldest (the head) is ever backing off,
and `due` stops at the first row not due yet, so a later row never overtakes it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import msgspec

from logwarden.errors import InputError

__all__ = ["Item", "Outbox", "State"]

State = Literal["pending", "sent", "dead", "unrendered"]

_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver TEXT NOT NULL,
    key TEXT NOT NULL,
    body BLOB NOT NULL,
    created_ns INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_ns INTEGER NOT NULL,
    last_error TEXT,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sent', 'dead', 'unrendered')),
    done_ns INTEGER,
    UNIQUE (receiver, key)
);
CREATE INDEX IF NOT EXISTS items_by_state ON items (receiver, state, id);
CREATE INDEX IF NOT EXISTS items_sent ON items (done_ns) WHERE state = 'sent';
"""
_COLUMNS = "id, receiver, key, body, created_ns, attempts, next_ns, last_error, state"


class Item(msgspec.Struct, frozen=True):
    """One row of the outbox: a rendered notification for one receiver."""

    id: int
    receiver: str
    #: the notification's id (the idempotency key)
    key: str
    body: bytes
    created_ns: int
    #: failed sends so far
    attempts: int
    #: not sent before this time (nanoseconds since the epoch)
    next_ns: int
    last_error: str | None
    state: State


class Outbox:
    """The outbox in the SQLite file `path` (made if missing); safe to share between threads."""

    def __init__(self, path: str | Path, *, keep_sent_secs: float = 86_400.0) -> None:
        self.path = Path(path)
        self._keep_sent_ns = int(keep_sent_secs * 1e9)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"outbox {str(self.path)!r} cannot be opened: {exc}") from exc
        try:
            self._open()
        except sqlite3.Error as exc:
            self._db.close()
            raise InputError(f"outbox {str(self.path)!r} cannot be used: {exc}") from exc

    def _open(self) -> None:
        db = self._db
        db.execute("PRAGMA busy_timeout = 5000")
        if db.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            raise sqlite3.OperationalError("the file system does not support WAL")
        db.execute("PRAGMA synchronous = FULL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _VERSION):
            raise sqlite3.DatabaseError(f"outbox format {version}, this logwarden reads {_VERSION}")
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("the file is damaged (PRAGMA quick_check)")
        db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = {_VERSION}; COMMIT;")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(
        self,
        items: Sequence[tuple[str, str, bytes]],
        now_ns: int,
        *,
        unrendered: Sequence[tuple[str, str, bytes, str]] = (),
    ) -> int:
        """Add (receiver, key, body) rows as pending and (receiver, key, body, error) rows
        as unrendered, in one transaction, durable when this returns. A (receiver, key)
        already in the outbox is left as it is. Returns how many rows are new."""
        rows: list[tuple[str, str, bytes, int, int, str | None, State]]
        rows = [(r, k, b, now_ns, now_ns, None, "pending") for r, k, b in items]
        rows += [(r, k, b, now_ns, now_ns, e, "unrendered") for r, k, b, e in unrendered]
        sql = (
            "INSERT OR IGNORE INTO items (receiver, key, body, created_ns, next_ns,"
            " last_error, state) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(sql, rows)
            return db.total_changes - before

    def due(self, receiver: str, now_ns: int, limit: int) -> list[Item]:
        """The receiver's oldest pending rows (at most `limit`), up to the first one not
        due at `now_ns`: empty while the oldest is backing off."""
        rows = self._select(
            "state = 'pending' AND receiver = ? ORDER BY id LIMIT ?", (receiver, limit)
        )
        due: list[Item] = []
        for item in rows:
            if item.next_ns > now_ns:
                break
            due.append(item)
        return due

    def head(self, receiver: str) -> Item | None:
        """The receiver's oldest pending row: when it was made is how long the receiver's
        backlog is, its `next_ns` when the receiver may be tried again."""
        rows = self._select("state = 'pending' AND receiver = ? ORDER BY id LIMIT 1", (receiver,))
        return rows[0] if rows else None

    def done(self, ids: Iterable[int], now_ns: int) -> None:
        """Mark rows sent (their body is dropped) and prune sent rows older than
        `keep_sent_secs` (kept until then so a re-put of the same key is ignored)."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE items SET state = 'sent', body = x'', done_ns = ? WHERE id = ?",
                [(now_ns, i) for i in ids],
            )
            db.execute(
                "DELETE FROM items WHERE state = 'sent' AND done_ns < ?",
                (now_ns - self._keep_sent_ns,),
            )

    def retry(self, ids: Iterable[int], next_ns: int, error: str) -> None:
        """Count a failed attempt on rows and leave them pending until `next_ns`."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE items SET attempts = attempts + 1, next_ns = ?, last_error = ?"
                " WHERE id = ?",
                [(next_ns, error, i) for i in ids],
            )

    def dead(self, ids: Iterable[int], error: str) -> None:
        """Mark rows refused by their receiver: kept and listed, not sent again."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE items SET attempts = attempts + 1, state = 'dead', last_error = ?"
                " WHERE id = ?",
                [(error, i) for i in ids],
            )

    def requeue(self, receiver: str, now_ns: int) -> int:
        """Make the receiver's dead rows pending again (due now); returns how many."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE items SET state = 'pending', attempts = 0, next_ns = ?"
                " WHERE receiver = ? AND state = 'dead'",
                (now_ns, receiver),
            )
            return cursor.rowcount

    def count(self, receiver: str, state: State = "pending") -> int:
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT count(*) FROM items WHERE receiver = ? AND state = ?",
                    (receiver, state),
                ).fetchone()
            except sqlite3.Error as exc:
                raise InputError(f"outbox {str(self.path)!r} cannot be read: {exc}") from exc
        return int(row[0])

    def failed(self, receiver: str | None = None) -> list[Item]:
        """The dead and unrendered rows (of one receiver, or all), oldest first."""
        where = "state IN ('dead', 'unrendered')"
        if receiver is None:
            return self._select(f"{where} ORDER BY id", ())
        return self._select(f"{where} AND receiver = ? ORDER BY id", (receiver,))

    def _select(self, where: str, args: tuple[object, ...]) -> list[Item]:
        with self._lock:
            try:
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM items WHERE {where}", args)
                return [Item(*row) for row in rows.fetchall()]
            except sqlite3.Error as exc:
                raise InputError(f"outbox {str(self.path)!r} cannot be read: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The lock held, BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an exception)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise InputError(f"outbox {str(self.path)!r} cannot be written: {exc}") from exc
