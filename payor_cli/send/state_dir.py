"""The state dir, where the journal and the run's lock live: made private, checked for room,
and what goes wrong with it said so (what to do, and that nothing was sent)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from payor_cli.errors import ConfigError

MIN_FREE_BYTES = 1 << 20
"""A state dir with less room than this is refused before anything is sent."""


def make_dir(path: Path) -> None:
    """Make the state dir (0700) if it is not there; a file in its place is a usage error."""
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


@contextlib.contextmanager
def state_dir_errors(folder: Path, what: str = "the state dir") -> Iterator[None]:
    """An OS error within is a usage error naming the folder (`what` it is)."""
    try:
        yield
    except OSError as exc:
        raise state_dir_error(folder, exc, what) from None


def state_dir_error(folder: Path, exc: OSError, what: str = "the state dir") -> ConfigError:
    """The usage error of an OS error on the folder (`what` it is)."""
    return ConfigError(
        f"cannot write {what} {folder}: {exc.strerror or exc}",
        "free space there or make it writable, or set --state-dir (PAYOR_STATE_DIR) to a "
        "folder you can write; nothing was sent",
    )


def check_room(folder: Path) -> None:
    """Refuse a state dir whose filesystem is (nearly) full or read-only before anything is
    sent: the journal must record every accepted batch."""
    statvfs = getattr(os, "statvfs", None)  # not on Windows: a read-only dir fails at its write
    try:
        if statvfs is not None and statvfs(folder).f_flag & os.ST_RDONLY:
            raise state_dir_error(folder, OSError(30, "Read-only file system"))
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < MIN_FREE_BYTES:
        raise ConfigError(
            f"the state dir {folder} has only {free // 1024} KB free; the journal needs room "
            "to record what is sent",
            "free space there, or set --state-dir (PAYOR_STATE_DIR) to a folder with room; "
            "nothing was sent",
        )
