"""What the API has accepted: per (target, API, account, kind, key) the fingerprint of the last
payload, and the record's id where the API gives one.

SQLite in WAL mode in the state dir, committed durably after every accepted batch, so a killed
run loses nothing and the next run goes on where it stopped. Its tables are journal_schema.py's;
the locks that keep a second run out are locks.py's.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np

from payor_cli.errors import AbortedError, ConfigError, PayorError
from payor_cli.send.journal_schema import LEGACY_PRINTS, PRINTS, SCHEMA_VERSION, migrate
from payor_cli.send.state_dir import make_dir, state_dir_error

JOURNAL_NAME = "journal.sqlite"


def account_id(api_key: str) -> str:
    """The account as the journal names it: a hash, so the key itself is never stored."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


_T = TypeVar("_T")


def _guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    """A journal method whose SQLite errors say what they mean for the run: before this run
    recorded anything, a usage error (exit 2, nothing sent); after, an abort (exit 3)."""

    @functools.wraps(method)
    def guarded(self: Journal, *args: object, **kwargs: object) -> _T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            kind = AbortedError if self._recorded else ConfigError
            raise journal_error(self.path, exc, kind) from None

    return guarded


class Journal:
    """Fingerprints (and remote ids) of accepted payloads, per scope: (target, API, account,
    kind)."""

    def __init__(self, state_dir: Path, api: str, account: str, target: str) -> None:
        make_dir(state_dir)
        self.path = state_dir / JOURNAL_NAME
        self.target = target
        self.api = api
        self.account = account
        self._scopes: dict[str, int] = {}
        self._recorded = False
        """Whether this run has recorded a batch: a failure after that is an abort (exit 3)."""
        _refuse_empty(self.path)
        _create_aside(self.path)
        try:
            # the sender thread records while the reading thread looks up: one lock for both
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.lock = threading.Lock()
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed at any point;
            # only a power cut could lose the last commits, and then those rows are sent
            # again (an upsert), never lost. FULL would fsync every batch and halve throughput.
            self.db.execute("PRAGMA synchronous=NORMAL")
            (version,) = self.db.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:  # never brought "up to date" backwards
                self.db.close()
                raise ConfigError(
                    f"the journal {self.path} was written by a newer payor (its schema "
                    f"{version}, this payor knows {SCHEMA_VERSION})",
                    "upgrade payor, or give this run another --state-dir",
                )
            with self.lock, self.db:
                self.db.execute("BEGIN IMMEDIATE")
                migrate(self.db)
        except sqlite3.Error as exc:
            raise journal_error(self.path, exc, ConfigError) from None

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

    @_guarded
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

    @_guarded
    def reprint(self, kind: str, rows: Iterable[tuple[str, int]]) -> None:
        """Give records that an old entry knows unchanged (key, today's fingerprint)."""
        scope = self._scope(kind)
        with self.lock, self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "UPDATE accepted SET fingerprint = ?, print_kind = ? WHERE scope = ? AND key = ?",
                ((fp, PRINTS, scope, key) for key, fp in rows),
            )

    @_guarded
    def record(self, kind: str, rows: Iterable[tuple[str, int, str | None]]) -> None:
        """Remember an accepted batch (key, fingerprint, remote id); committed before this
        returns."""
        self._recorded = True  # the batch was sent: whatever happens now is an abort
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

    @_guarded
    def entries(self, kind: str) -> dict[str, tuple[int, str | None]]:
        """Key -> (fingerprint, remote id) of every accepted record of `kind`."""
        scope = self._scope(kind)
        with self.lock:
            rows = self.db.execute(
                "SELECT key, fingerprint, remote_id FROM accepted WHERE scope = ?", (scope,)
            ).fetchall()
        return {key: (fp, remote_id) for key, fp, remote_id in rows}

    @_guarded
    def close(self) -> None:
        with self.lock:  # never under a query of another thread (SQLite would crash the process)
            self.db.close()


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


# -- what goes wrong with the journal, said so ----------------------------------------------------


def journal_error(path: Path, exc: sqlite3.Error, kind: type[PayorError]) -> PayorError:
    """What an SQLite error on the journal means, and what to do about it."""
    text = str(exc)
    if "full" in text or "readonly" in text or "disk I/O" in text or "unable to open" in text:
        return kind(
            f"cannot write the journal {path}: {text}",
            "free space there or make it writable (or choose another --state-dir), and run "
            "again; what was accepted stays recorded",
        )
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return kind(
            f"the journal {path} is damaged ({text})",
            "move it aside (with its -wal and -shm files) and run again: payor then forgets "
            "what it sent, and the next run looks records up or sends them again",
        )
    return kind(f"cannot use the journal {path}: {text}")


def _refuse_empty(path: Path) -> None:
    """A zero-byte journal is refused: payor never leaves one (see `_create_aside`), so
    something else emptied it, and taking it as new would send every row again."""
    if path.is_dir():
        raise ConfigError(f"the journal {path} is a folder", "move it out of the state dir")
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            raise ConfigError(
                f"the journal {path} is empty (0 bytes): something emptied it, and payor's "
                "memory of what was sent is gone",
                "restore it from a backup, or delete it: the next run then looks records up or "
                "sends them again",
            )


def _create_aside(path: Path) -> None:
    """A new journal is made under another name, its tables in place, then renamed: a run
    killed while it is made leaves no zero-byte journal behind."""
    if path.exists():
        return
    new = path.with_name(f".{path.name}.new-{os.getpid()}")
    try:
        db = sqlite3.connect(new, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                db.execute("BEGIN IMMEDIATE")
                migrate(db)
        finally:
            db.close()
        os.replace(new, path)
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(OSError):
            new.unlink()
        if isinstance(exc, sqlite3.Error):
            raise journal_error(path, exc, ConfigError) from None
        raise state_dir_error(path.parent, exc) from None
