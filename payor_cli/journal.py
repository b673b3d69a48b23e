"""What the API has accepted: per (API, account, kind, key) the fingerprint of the last payload.

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
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import ConfigError, LockedError

JOURNAL_NAME = "journal.sqlite"
LOCK_NAME = "payor.lock"
_LOOKUP_BATCH = 500  # keys per query: well below SQLite's limit of bound parameters


def fingerprint(payload: str) -> bytes:
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).digest()


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
    """Fingerprints of accepted payloads for one API and account."""

    def __init__(self, state_dir: Path, api: str, account: str) -> None:
        _make_dir(state_dir)
        self.path = state_dir / JOURNAL_NAME
        self.api = api
        self.account = account
        try:
            # the sender thread records while the reading thread looks up: one lock for both
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.lock = threading.Lock()
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed at any point;
            # only a power cut could lose the last commits, and then those rows are sent
            # again (an upsert), never lost. FULL would fsync every batch and halve throughput.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS accepted ("
                " api TEXT NOT NULL, account TEXT NOT NULL, kind TEXT NOT NULL,"
                " key TEXT NOT NULL, fingerprint BLOB NOT NULL,"
                " PRIMARY KEY (api, account, kind, key)) WITHOUT ROWID"
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the journal {self.path}: {exc}") from None

    def accepted(self, kind: str, keys: Sequence[str]) -> dict[str, bytes]:
        """Key -> fingerprint of what was last accepted, for the keys that have one."""
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), _LOOKUP_BATCH):
            part = keys[start : start + _LOOKUP_BATCH]
            marks = ",".join("?" * len(part))
            with self.lock:
                rows = self.db.execute(
                    f"SELECT key, fingerprint FROM accepted WHERE api = ? AND account = ? "
                    f"AND kind = ? AND key IN ({marks})",
                    (self.api, self.account, kind, *part),
                ).fetchall()
            found.update(rows)
        return found

    def record(self, kind: str, rows: Iterable[tuple[str, bytes]]) -> None:
        """Remember an accepted batch; committed (and synced) before this returns."""
        with self.lock, self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT OR REPLACE INTO accepted (api, account, kind, key, fingerprint) "
                "VALUES (?, ?, ?, ?, ?)",
                ((self.api, self.account, kind, key, fp) for key, fp in rows),
            )

    def close(self) -> None:
        self.db.close()


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the state dir {path}: {exc.strerror}",
            "set --state-dir or PAYOR_STATE_DIR to a folder you can write",
        ) from None
