"""What the API has accepted: per (target, API, account, kind, key) the fingerprint of the last
payload, and the record's id where the API gives one.

SQLite in WAL mode in the state dir, committed durably after every accepted batch, so a killed
run loses nothing and the next run goes on where it stopped. A lock file held with an OS lock
(flock) keeps a second run out; the OS drops it with the process, so a kill never blocks.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import ConfigError, LockedError
from .targets import DEFAULT_TARGET

JOURNAL_NAME = "journal.sqlite"
LOCK_NAME = "payor.lock"


def account_id(api_key: str) -> str:
    """The account as the journal names it: a hash, so the key itself is never stored."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


class StateLock:
    """An exclusive lock on the state dir for the length of a run."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> StateLock:
        _make_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(
                f"another payor run holds the lock of {self.path.parent}",
                "wait for it to finish; a lock of a killed run is released by the system",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class Journal:
    """Fingerprints (and remote ids) of accepted payloads, per scope: (target, API, account,
    kind)."""

    def __init__(
        self, state_dir: Path, api: str, account: str, target: str = DEFAULT_TARGET
    ) -> None:
        _make_dir(state_dir)
        self.path = state_dir / JOURNAL_NAME
        self.target = target
        self.api = api
        self.account = account
        self._scopes: dict[str, int] = {}
        try:
            # the sender thread records while the reading thread looks up: one lock for both
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.lock = threading.Lock()
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed at any point;
            # only a power cut could lose the last commits, and then those rows are sent
            # again (an upsert), never lost. FULL would fsync every batch and halve throughput.
            self.db.execute("PRAGMA synchronous=NORMAL")
            with self.lock, self.db:
                self.db.execute("BEGIN IMMEDIATE")
                _migrate(self.db)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the journal {self.path}: {exc}") from None

    def _scope(self, kind: str) -> int:
        if kind not in self._scopes:
            with self.lock:
                where = (self.target, self.api, self.account, kind)
                self.db.execute(
                    "INSERT OR IGNORE INTO scopes (target, api, account, kind) VALUES (?, ?, ?, ?)",
                    where,
                )
                (scope,) = self.db.execute(
                    "SELECT id FROM scopes WHERE target = ? AND api = ? AND account = ?"
                    " AND kind = ?",
                    where,
                ).fetchone()
            self._scopes[kind] = scope
        return self._scopes[kind]

    def accepted(self, kind: str, *, legacy: bool = False) -> np.ndarray:
        """The fingerprints of every row of `kind` as last accepted, sorted (`legacy`: those
        that a payor before schema 3 wrote, BLAKE2b; see fingerprint.py).

        A payload holds its own key, so a row is unchanged exactly when its fingerprint is
        among these: one search in memory per row instead of one query per key.
        """
        scope = self._scope(kind)
        with self.lock:
            # one text of all numbers, parsed by numpy: twice as fast as a row at a time
            (text,) = self.db.execute(
                "SELECT group_concat(fingerprint, ' ') FROM accepted"
                " WHERE scope = ? AND print_kind = ?",
                (scope, LEGACY_PRINTS if legacy else PRINTS),
            ).fetchone()
        found = np.fromstring(text, dtype=np.int64, sep=" ") if text else np.empty(0, np.int64)
        found.sort()
        return found

    def reprint(self, kind: str, rows: Iterable[tuple[str, int]]) -> None:
        """Give records that an old entry knows unchanged (key, today's fingerprint)."""
        scope = self._scope(kind)
        with self.lock, self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "UPDATE accepted SET fingerprint = ?, print_kind = ? WHERE scope = ? AND key = ?",
                ((fp, PRINTS, scope, key) for key, fp in rows),
            )

    def record(self, kind: str, rows: Iterable[tuple[str, int, str | None]]) -> None:
        """Remember an accepted batch (key, fingerprint, remote id); committed before this
        returns."""
        scope = self._scope(kind)
        with self.lock, self.db:
            self.db.execute("BEGIN IMMEDIATE")
            rows = list(rows)
            self.db.executemany(
                "INSERT OR REPLACE INTO accepted (scope, key, fingerprint, remote_id, print_kind)"
                " VALUES (?, ?, ?, ?, ?)",
                ((scope, key, fp, remote_id, PRINTS) for key, fp, remote_id in rows),
            )
            self.db.executemany(  # an accepted create is settled
                "DELETE FROM intents WHERE scope = ? AND key = ?",
                ((scope, key) for key, _, _ in rows),
            )

    def intend(self, kind: str, key: str) -> None:
        """Note, durably, that a create of `key` goes out now: if no answer says how it went
        (a kill, a lost connection), the next run knows to look for it before creating it."""
        scope = self._scope(kind)
        with self.lock, self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR IGNORE INTO intents (scope, key) VALUES (?, ?)", (scope, key)
            )

    def open_intents(self, kind: str) -> set[str]:
        """The keys of `kind` whose create went out and was never settled (accepted)."""
        scope = self._scope(kind)
        with self.lock:
            rows = self.db.execute("SELECT key FROM intents WHERE scope = ?", (scope,)).fetchall()
        return {key for (key,) in rows}

    def entries(self, kind: str) -> dict[str, tuple[int, str | None]]:
        """Key -> (fingerprint, remote id) of every accepted record of `kind`."""
        scope = self._scope(kind)
        with self.lock:
            rows = self.db.execute(
                "SELECT key, fingerprint, remote_id FROM accepted WHERE scope = ?", (scope,)
            ).fetchall()
        return {key: (fp, remote_id) for key, fp, remote_id in rows}

    def remote_ids(self, kind: str) -> dict[str, str]:
        """Key -> the id the API gave the record, for the records of `kind` that have one."""
        scope = self._scope(kind)
        with self.lock:
            rows = self.db.execute(
                "SELECT key, remote_id FROM accepted WHERE scope = ? AND remote_id IS NOT NULL",
                (scope,),
            ).fetchall()
        return dict(rows)

    def close(self) -> None:
        self.db.close()


SCHEMA_VERSION = 3
LEGACY_PRINTS, PRINTS = 1, 2
"""print_kind: BLAKE2b (schemas 1 and 2), or fingerprint.payload_fingerprints."""


def _migrate(db: sqlite3.Connection) -> None:
    """Create the tables, or bring a journal of an older payor up to date (inside a write
    transaction): version 1 had no target (all its scopes are PayorCRM's) and no remote ids;
    before version 3 every fingerprint was BLAKE2b."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "scopes" in tables and version < 2:
        db.execute("ALTER TABLE scopes RENAME TO scopes_v1")
    db.execute(
        "CREATE TABLE IF NOT EXISTS scopes (id INTEGER PRIMARY KEY, target TEXT NOT NULL,"
        " api TEXT NOT NULL, account TEXT NOT NULL, kind TEXT NOT NULL,"
        " UNIQUE (target, api, account, kind))"
    )
    if "scopes" in tables and version < 2:
        db.execute(
            "INSERT INTO scopes (id, target, api, account, kind)"
            " SELECT id, ?, api, account, kind FROM scopes_v1",
            (DEFAULT_TARGET,),
        )
        db.execute("DROP TABLE scopes_v1")
    db.execute(
        "CREATE TABLE IF NOT EXISTS accepted (scope INTEGER NOT NULL,"
        " key TEXT NOT NULL, fingerprint INTEGER NOT NULL, remote_id TEXT,"
        f" print_kind INTEGER NOT NULL DEFAULT {PRINTS},"
        " PRIMARY KEY (scope, key)) WITHOUT ROWID"
    )
    if "accepted" in tables and version < 3:
        columns = {row[1] for row in db.execute("PRAGMA table_info(accepted)")}
        if "remote_id" not in columns:
            db.execute("ALTER TABLE accepted ADD COLUMN remote_id TEXT")
        if "print_kind" not in columns:  # the rows there are BLAKE2b's
            db.execute(
                f"ALTER TABLE accepted ADD COLUMN print_kind INTEGER NOT NULL DEFAULT {LEGACY_PRINTS}"
            )
    db.execute(
        "CREATE TABLE IF NOT EXISTS intents (scope INTEGER NOT NULL, key TEXT NOT NULL,"
        " PRIMARY KEY (scope, key)) WITHOUT ROWID"
    )
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def contains(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which of `values` are in `sorted_values`."""
    if not len(sorted_values):
        return np.zeros(len(values), bool)
    order = np.argsort(values)  # probes in order walk the big array once, cache-friendly
    probes = values[order]
    spot = np.minimum(np.searchsorted(sorted_values, probes), len(sorted_values) - 1)
    found = np.empty(len(values), bool)
    found[order] = sorted_values[spot] == probes
    return found


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the state dir {path}: {exc.strerror}",
            "set --state-dir or PAYOR_STATE_DIR to a folder you can write",
        ) from None
