"""Where the alert manager's state lives across restarts: one SQLite file, `alerts.db`.

SQLite, because three kinds of process share it: the service's alert manager (the only
writer of tracked alerts, groups and escalations), and the alerts API and the `logwarden
alerts` command, which ask for changes. They never change a tracked alert themselves: they
add a *command* (`ack`, `resolve`) that the manager applies within a second, and that
waits for the next start while no service runs. Silences are written directly: each is
its own row, which the manager reads again every second. WAL mode lets readers list alerts
while the manager writes.

Tables: `alerts` (one row per fingerprint, the `AlertState` as JSON), `groups` and
`escalations` (the manager's timers, JSON), `silences`, `commands`, and `meta`
(`detected_through`: the last ledger entry whose alerts this state holds).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from logwarden.alerts.model import AlertState
from logwarden.errors import InputError

__all__ = ["AlertStore", "Command", "Silence", "StateError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY, status TEXT NOT NULL, last_ns INTEGER NOT NULL,
    body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS groups (key TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS escalations (key TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, ends_ns INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, target TEXT NOT NULL,
    by TEXT NOT NULL, comment TEXT NOT NULL, created_ns INTEGER NOT NULL,
    applied_ns INTEGER, result TEXT);
"""


class StateError(InputError):
    """The alert state file cannot be opened, read or written."""


class Silence(msgspec.Struct, kw_only=True):
    """Alerts matching every matcher are not notified between `starts_ns` and `ends_ns`."""

    id: str
    matchers: list[str]
    starts_ns: int
    ends_ns: int
    created_by: str
    comment: str
    created_ns: int

    def active(self, now_ns: int) -> bool:
        return self.starts_ns <= now_ns < self.ends_ns


class Command(msgspec.Struct, frozen=True):
    id: int
    kind: Literal["ack", "resolve"]
    target: str
    by: str
    comment: str
    created_ns: int


_json = msgspec.json.Encoder()


class AlertStore:
    """The state file; safe to use from several threads (one connection, one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, opened on first use (so a store made before a fork is opened
        in the process that uses it)."""
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
            except (sqlite3.Error, OSError) as exc:
                raise StateError(f"{self.path}: cannot open the alert state: {exc}") from exc
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _run(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._lock:
                db = self._db
                with db:
                    return db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {exc}") from exc

    # -- the manager's own state -----------------------------------------------------------

    def load(self, table: Literal["groups", "escalations"], kind: type[Any]) -> list[Any]:
        rows = self._run(f"SELECT body FROM {table}")
        return [msgspec.json.decode(body, type=kind) for (body,) in rows]

    def row(self, table: Literal["groups", "escalations"], key: str, kind: type[Any]) -> Any:
        """One group or escalation by its key (None if the file has none)."""
        rows = self._run(f"SELECT body FROM {table} WHERE key = ?", (key,))
        return msgspec.json.decode(rows[0][0], type=kind) if rows else None

    def pages(
        self, table: Literal["alerts", "groups"], kind: type[Any], size: int = 2000
    ) -> Iterator[list[Any]]:
        """Every row of `table`, decoded, `size` at a time (a table larger than memory can
        be read), in the order they were first written."""
        after = 0
        while True:
            rows = self._run(
                f"SELECT rowid, body FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (after, size),
            )
            if not rows:
                return
            after = rows[-1][0]
            yield [msgspec.json.decode(body, type=kind) for _, body in rows]

    def newest(self, limit: int) -> set[str]:
        """The fingerprints of the `limit` alerts whose newest occurrence is the latest."""
        rows = self._run("SELECT fingerprint FROM alerts ORDER BY last_ns DESC LIMIT ?", (limit,))
        return {fp for (fp,) in rows}

    def alerts(self, status: str | None = None) -> list[AlertState]:
        """Tracked alerts (those with `status`), newest occurrence first."""
        if status is None:
            rows = self._run("SELECT body FROM alerts ORDER BY last_ns DESC")
        else:
            rows = self._run(
                "SELECT body FROM alerts WHERE status = ? ORDER BY last_ns DESC", (status,)
            )
        return [msgspec.json.decode(body, type=AlertState) for (body,) in rows]

    def alert(self, fingerprint: str) -> AlertState | None:
        rows = self._run("SELECT body FROM alerts WHERE fingerprint = ?", (fingerprint,))
        return msgspec.json.decode(rows[0][0], type=AlertState) if rows else None

    def save(
        self,
        alerts: Iterable[AlertState],
        groups: Iterable[tuple[str, Any | None]],
        escalations: Iterable[tuple[str, Any | None]],
        forget: Iterable[str] = (),
    ) -> None:
        """Write changed state in one transaction (None deletes a group or escalation;
        `forget` deletes tracked alerts)."""
        try:
            with self._lock, self._db as db:
                db.executemany(
                    "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?)",
                    [(a.fingerprint, a.status, a.last_ns, _json.encode(a)) for a in alerts],
                )
                db.executemany("DELETE FROM alerts WHERE fingerprint = ?", [(f,) for f in forget])
                for table, rows in (("groups", groups), ("escalations", escalations)):
                    gone, kept = [], []
                    for key, body in rows:
                        if body is None:
                            gone.append((key,))
                        else:
                            kept.append((key, _json.encode(body)))
                    db.executemany(f"DELETE FROM {table} WHERE key = ?", gone)
                    db.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", kept)
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {exc}") from exc

    def detected_through(self) -> int | None:
        """The last ledger entry whose alerts the state holds (None before the first save)."""
        rows = self._run("SELECT value FROM meta WHERE name = 'detected_through'")
        return int(rows[0][0]) if rows else None

    def set_detected_through(self, index: int) -> None:
        self._run(
            "INSERT OR REPLACE INTO meta VALUES ('detected_through', ?)",
            (index,),
        )

    # -- commands ------------------------------------------------------------------------

    def command(self, kind: Literal["ack", "resolve"], target: str, by: str, comment: str) -> int:
        """Ask the manager to acknowledge or resolve the alert `target`; the command's id."""
        rows = self._run(
            "INSERT INTO commands (kind, target, by, comment, created_ns) VALUES (?, ?, ?, ?, ?) "
            "RETURNING id",
            (kind, target, by, comment, time.time_ns()),
        )
        return int(rows[0][0])

    def pending_commands(self) -> list[Command]:
        rows = self._run(
            "SELECT id, kind, target, by, comment, created_ns FROM commands "
            "WHERE applied_ns IS NULL ORDER BY id"
        )
        return [Command(*row) for row in rows]

    def applied(self, command_id: int, result: str) -> None:
        self._run(
            "UPDATE commands SET applied_ns = ?, result = ? WHERE id = ?",
            (time.time_ns(), result, command_id),
        )

    def result(self, command_id: int) -> str | None:
        """What applying the command did, or None while it waits."""
        rows = self._run("SELECT result FROM commands WHERE id = ?", (command_id,))
        return rows[0][0] if rows else None

    # -- silences ------------------------------------------------------------------------

    def add_silence(
        self, matchers: list[str], starts_ns: int, ends_ns: int, by: str, comment: str
    ) -> Silence:
        silence = Silence(
            id=str(uuid.uuid4()),
            matchers=matchers,
            starts_ns=starts_ns,
            ends_ns=ends_ns,
            created_by=by,
            comment=comment,
            created_ns=time.time_ns(),
        )
        self._run(
            "INSERT INTO silences VALUES (?, ?, ?)", (silence.id, ends_ns, _json.encode(silence))
        )
        return silence

    def expire_silence(self, silence_id: str, now_ns: int) -> bool:
        """End a silence now; False if there is no such silence or it had ended."""
        rows = self._run("SELECT body FROM silences WHERE id = ?", (silence_id,))
        if not rows:
            return False
        silence = msgspec.json.decode(rows[0][0], type=Silence)
        if silence.ends_ns <= now_ns:
            return False
        silence.ends_ns = now_ns
        self._run(
            "UPDATE silences SET ends_ns = ?, body = ? WHERE id = ?",
            (now_ns, _json.encode(silence), silence_id),
        )
        return True

    def silences(self, *, active_at: int | None = None) -> list[Silence]:
        """Every silence, or those not yet ended at `active_at`."""
        if active_at is None:
            rows = self._run("SELECT body FROM silences ORDER BY ends_ns DESC")
        else:
            rows = self._run(
                "SELECT body FROM silences WHERE ends_ns > ? ORDER BY ends_ns", (active_at,)
            )
        return [msgspec.json.decode(body, type=Silence) for (body,) in rows]
