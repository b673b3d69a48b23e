"""One run at a time: an OS lock on the state dir, and one on the CRM account whatever the state
dir. filelock takes the platform's own lock (flock on Linux and macOS, msvcrt on Windows) and,
on a system with neither, a marker file that names its process; the OS drops a lock with the
process, so a killed run never blocks the next."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import warnings
from pathlib import Path

from payor_cli.errors import ConfigError, LockedError, PayorError
from payor_cli.send.state_dir import check_room, make_dir, state_dir_errors

with warnings.catch_warnings():  # "only soft file lock is available": known, and taken
    warnings.simplefilter("ignore")
    from filelock import FileLock, Timeout

LOCK_NAME = "payor.lock"


class StateLock:
    """An exclusive lock on the state dir for the length of a run."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._lock: FileLock | None = None

    def __enter__(self) -> StateLock:
        make_dir(self.path.parent)
        with state_dir_errors(self.path.parent):
            lock = _taken(self.path)
        if lock is None:
            raise LockedError(
                f"another payor run holds the lock of {self.path.parent}",
                "wait for it to finish; a lock of a killed run is released by the system",
            )
        try:
            with state_dir_errors(self.path.parent):
                check_room(self.path.parent)
        except PayorError:
            lock.release()
            raise
        self._lock = lock
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


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
        self.holder = self.folder / f"scope-{digest}.holder"
        """Who holds the lock (pid, state dir), for the message of the run that waits: beside
        the lock, which on some systems cannot be read while it is held."""
        self.state_dir = state_dir
        self._lock: FileLock | None = None

    def __enter__(self) -> ScopeLock:
        with state_dir_errors(self.folder, "payor's lock folder"):
            _private_dir(self.folder)
            lock = _taken(self.path)
        if lock is None:
            holder = ""
            with contextlib.suppress(OSError):
                holder = self.holder.read_text(encoding="utf-8", errors="replace").strip()
            pid, _, state = holder.partition(" ")
            raise LockedError(
                f"another payor run (pid {pid or '?'}, state dir {state or '?'}) is uploading "
                f"to the same account of {self.scope}",
                "one run at a time per CRM account: wait for it to finish (two runs would "
                "create the same records twice)",
            )
        with contextlib.suppress(OSError):
            self.holder.write_text(f"{os.getpid()} {self.state_dir}\n", encoding="utf-8")
        self._lock = lock
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self.holder.unlink()
            self._lock.release()
            self._lock = None


def _taken(path: Path) -> FileLock | None:
    """The lock on `path`, taken now (0600), or None when another process holds it."""
    lock = FileLock(path, mode=0o600, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


def scope_lock_dir() -> Path:
    """The user's own folder for the scope locks: $XDG_RUNTIME_DIR/payor, else one in the
    temp dir named by the user id."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "payor"
    uid = getattr(os, "getuid", None)  # Windows: the temp dir is the user's own already
    return Path(tempfile.gettempdir()) / (f"payor-{uid()}" if uid else "payor")


def _private_dir(folder: Path) -> None:
    """Make the folder (0700), and refuse one that another user owns or that is a link: a
    lock there could be held or faked by them."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = os.lstat(folder)
    uid = getattr(os, "getuid", None)
    if not stat.S_ISDIR(found.st_mode) or (uid is not None and found.st_uid != uid()):
        raise ConfigError(
            f"{folder} (payor's lock folder) is not a folder of this user",
            "remove it, or set XDG_RUNTIME_DIR to a folder of your own",
        )
