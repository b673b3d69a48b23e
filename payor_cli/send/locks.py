"""One run at a time: an OS lock (flock) on the state dir, and one on the CRM account whatever
the state dir. The OS drops a lock with the process, so a killed run never blocks the next."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from payor_cli.errors import ConfigError, LockedError, PayorError
from payor_cli.send.state_dir import check_room, make_dir, state_dir_errors

LOCK_NAME = "payor.lock"


class StateLock:
    """An exclusive lock on the state dir for the length of a run."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> StateLock:
        make_dir(self.path.parent)
        with state_dir_errors(self.path.parent):
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
            with state_dir_errors(self.path.parent):
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
        with state_dir_errors(self.folder, "payor's lock folder"):
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
