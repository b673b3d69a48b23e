"""The sandbox's store: rows by (kind, key) in SQLite, public to every target's dialect."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from payor_cli.schema import Kind

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once: C speed


def row_key(kind: Kind, row: Mapping[str, Any]) -> str:
    """The identity a row is upserted by (customers: customerno, invoices: invoiceNumber)."""
    if len(kind.key) == 1:
        return str(row.get(kind.key[0]))
    return json.dumps([row.get(name) for name in kind.key], ensure_ascii=False)


class Store:
    """Rows by (kind, key) in SQLite; one connection shared by all handler threads, under a lock."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        with self.lock:
            self.connection()

    def connection(self) -> sqlite3.Connection:
        """The open connection (caller holds the lock); a file store reopens after close()."""
        if self._conn is None:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path) if self.path else ":memory:", check_same_thread=False, timeout=10
            )
            if self.path is not None:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            with conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS records ("
                    " id INTEGER PRIMARY KEY,"
                    " kind TEXT NOT NULL,"
                    " key TEXT NOT NULL,"
                    " payload TEXT NOT NULL,"
                    " writes INTEGER NOT NULL DEFAULT 1,"
                    " updated_at TEXT NOT NULL,"
                    " UNIQUE (kind, key))"
                )
            self._conn = conn
        return self._conn

    def existing(self, kind: Kind, field_name: str, values: set[Any]) -> set[Any]:
        """Which of `values` a stored row of `kind` has as `field_name` (caller holds the lock)."""
        if kind.key != (field_name,):
            return {v for v in values if self.exists(kind, field_name, v)}
        conn, wanted, found = self.connection(), [str(v) for v in values], set()
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            query = f"SELECT key FROM records WHERE kind = ? AND key IN ({marks})"
            found.update(key for (key,) in conn.execute(query, (kind.name, *part)))
        return {v for v in values if str(v) in found}

    def exists(self, kind: Kind, field_name: str, value: Any) -> bool:
        """A stored row of `kind` has `field_name` == value (caller holds the lock)."""
        conn = self.connection()
        if kind.key == (field_name,):
            query = "SELECT 1 FROM records WHERE kind = ? AND key = ? LIMIT 1"
            return conn.execute(query, (kind.name, str(value))).fetchone() is not None
        query = "SELECT 1 FROM records WHERE kind = ? AND json_extract(payload, ?) = ? LIMIT 1"
        path = "$." + json.dumps(field_name)
        return conn.execute(query, (kind.name, path, value)).fetchone() is not None

    def upsert(self, kind: Kind, rows: list[dict[str, Any]]) -> None:
        """Store the rows by key in one transaction (caller holds the lock)."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        values = [
            (
                kind.name,
                row_key(kind, row),
                _COMPACT.encode(row),
                now,
            )
            for row in rows
        ]
        conn = self.connection()
        with conn:
            conn.executemany(
                "INSERT INTO records (kind, key, payload, writes, updated_at) VALUES (?, ?, ?, 1, ?)"
                " ON CONFLICT (kind, key) DO UPDATE SET payload = excluded.payload,"
                " writes = records.writes + 1, updated_at = excluded.updated_at",
                values,
            )

    def insert(self, kind: str, key: str, make: Callable[[int], dict[str, Any]]) -> int | None:
        """Store a new record made with its id; None when the key is taken (lock held)."""
        conn = self.connection()
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        with conn:
            try:
                cursor = conn.execute(
                    "INSERT INTO records (kind, key, payload, updated_at) VALUES (?, ?, '{}', ?)",
                    (kind, key, now),
                )
            except sqlite3.IntegrityError:
                return None
            record_id = int(cursor.lastrowid or 0)
            conn.execute(
                "UPDATE records SET payload = ? WHERE id = ?",
                (_COMPACT.encode(make(record_id)), record_id),
            )
        return record_id

    def by_id(self, kind: str, record_id: int) -> dict[str, Any] | None:
        """A record of `kind` by its id (lock held)."""
        row = (
            self.connection()
            .execute("SELECT payload FROM records WHERE kind = ? AND id = ?", (kind, record_id))
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def find(self, kind: str, key: str) -> dict[str, Any] | None:
        """A record of `kind` by its key (lock held)."""
        row = (
            self.connection()
            .execute("SELECT payload FROM records WHERE kind = ? AND key = ?", (kind, key))
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def replace(self, kind: str, record_id: int, key: str, payload: dict[str, Any]) -> None:
        """Overwrite a record (lock held)."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        conn = self.connection()
        with conn:
            conn.execute(
                "UPDATE records SET key = ?, payload = ?, writes = writes + 1, updated_at = ?"
                " WHERE kind = ? AND id = ?",
                (key, _COMPACT.encode(payload), now, kind, record_id),
            )

    def every(self, kind: str) -> list[dict[str, Any]]:
        """The records of `kind` in the order of their ids (lock held)."""
        rows = self.connection().execute(
            "SELECT payload FROM records WHERE kind = ? ORDER BY id", (kind,)
        )
        return [json.loads(text) for (text,) in rows]

    def payloads(self, kind: str) -> list[str]:
        """The stored JSON texts of a kind, in the order their keys were first written."""
        with self.lock:
            cursor = self.connection().execute(
                "SELECT payload FROM records WHERE kind = ? ORDER BY id", (kind,)
            )
            return [text for (text,) in cursor]

    def clear(self) -> None:
        with self.lock:
            conn = self.connection()
            with conn:
                conn.execute("DELETE FROM records")

    def close(self) -> None:
        """Release a file store (it reopens on demand); an in-memory store must stay open."""
        with self.lock:
            if self.path is not None and self._conn is not None:
                self._conn.close()
                self._conn = None
