"""What the API has accepted: per (target, API, account, kind, key) the fingerprint of the last
payload, and the record's id where the API gives one.

SQLite in WAL mode in the state dir, committed durably after every accepted batch, so a killed
run loses nothing and the next run goes on where it stopped. A lock file held with an OS lock
(flock) keeps a second run out; the OS drops it with the process, so a kill never blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from payor_cli.errors import AbortedError, ConfigError, LockedError, PayorError

JOURNAL_NAME = "journal.sqlite"
LOCK_NAME = "payor.lock"
V1_TARGET = "payorcrm"
"""The API of every scope of a version 1 journal: payor knew no other when it wrote them."""


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


class StateLock:
    """An exclusive lock on the state dir for the length of a run."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> StateLock:
        _make_dir(self.path.parent)
        with _state_dir_errors(self.path.parent):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(
                f"another payor run holds the lock of {self.path.parent}",
                "wait for it to finish; a lock of a killed run is released by the system",
            ) from None
        try:
            with _state_dir_errors(self.path.parent):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                check_room(self.path.parent)
        except PayorError:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class ScopeLock:
    """One run at a time for one CRM account on this machine, whatever its state dir: an OS
    lock on a file named by the hash of (target, API, account), in the user's runtime dir.

    Two runs with two state dirs know nothing of each other's journal: against a target
    that creates records (onlyoffice, business-suite) both would create the same ones.
    """

    def __init__(self, target: str, api: str, account: str, state_dir: Path) -> None:
        self.scope = f"{target} at {api}"
        digest = hashlib.sha256(f"{target}\n{api}\n{account}".encode()).hexdigest()[:24]
        self.folder = scope_lock_dir()
        self.path = self.folder / f"scope-{digest}.lock"
        self.state_dir = state_dir
        self._fd: int | None = None

    def __enter__(self) -> ScopeLock:
        with _state_dir_errors(self.folder, "payor's lock folder"):
            _private_dir(self.folder)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            pid, _, state = holder.partition(" ")
            raise LockedError(
                f"another payor run (pid {pid or '?'}, state dir {state or '?'}) is uploading "
                f"to the same account of {self.scope}",
                "one run at a time per CRM account: wait for it to finish (two runs would "
                "create the same records twice)",
            ) from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {self.state_dir}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays, empty of meaning
            self._fd = None


def scope_lock_dir() -> Path:
    """The user's own folder for the scope locks: $XDG_RUNTIME_DIR/payor, else one in the
    temp dir named by the user id."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "payor"
    return Path(tempfile.gettempdir()) / f"payor-{os.getuid()}"


def _private_dir(folder: Path) -> None:
    """Make the folder (0700), and refuse one that another user owns or that is a link: a
    lock there could be held or faked by them."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = os.lstat(folder)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
        raise ConfigError(
            f"{folder} (payor's lock folder) is not a folder of this user",
            "remove it, or set XDG_RUNTIME_DIR to a folder of your own",
        )


class Journal:
    """Fingerprints (and remote ids) of accepted payloads, per scope: (target, API, account,
    kind)."""

    def __init__(self, state_dir: Path, api: str, account: str, target: str) -> None:
        _make_dir(state_dir)
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
                _migrate(self.db)
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
            (V1_TARGET,),
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
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"the state dir {path} is a file, not a folder",
            "set --state-dir or PAYOR_STATE_DIR to a folder",
        )
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the state dir {path}: {exc.strerror}",
            "set --state-dir or PAYOR_STATE_DIR to a folder you can write",
        ) from None


# -- what goes wrong with the state dir and the journal, said so (kept apart from the schema) --

MIN_FREE_BYTES = 1 << 20
"""A state dir with less room than this is refused before anything is sent."""


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
                _migrate(db)
        finally:
            db.close()
        os.replace(new, path)
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(OSError):
            new.unlink()
        if isinstance(exc, sqlite3.Error):
            raise journal_error(path, exc, ConfigError) from None
        raise _state_dir_error(path.parent, exc) from None


@contextlib.contextmanager
def _state_dir_errors(folder: Path, what: str = "the state dir") -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _state_dir_error(folder, exc, what) from None


def _state_dir_error(folder: Path, exc: OSError, what: str = "the state dir") -> ConfigError:
    return ConfigError(
        f"cannot write {what} {folder}: {exc.strerror or exc}",
        "free space there or make it writable, or set --state-dir (PAYOR_STATE_DIR) to a "
        "folder you can write; nothing was sent",
    )


def check_room(folder: Path) -> None:
    """Refuse a state dir whose filesystem is (nearly) full or read-only before anything is
    sent: the journal must record every accepted batch."""
    try:
        found = os.statvfs(folder)
    except OSError:
        return
    if found.f_flag & os.ST_RDONLY:
        raise _state_dir_error(folder, OSError(30, "Read-only file system"))
    free = found.f_bavail * found.f_frsize
    if free < MIN_FREE_BYTES:
        raise ConfigError(
            f"the state dir {folder} has only {free // 1024} KB free; the journal needs room "
            "to record what is sent",
            "free space there, or set --state-dir (PAYOR_STATE_DIR) to a folder with room; "
            "nothing was sent",
        )
