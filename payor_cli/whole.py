"""Files written whole or not at all, and which paths name the same file.

Every file payor writes for a person (reports, payloads, rejected rows, mappings) is written to
a temporary file beside it and renamed into place, so a reader never sees half a file and a
run that dies leaves the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def create_beside(path: Path) -> tuple[int, Path]:
    """A new temporary file beside `path`, open for writing: the mode a file made by open()
    would have (or that of the file it will replace), the umask applied by the system."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o666
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), temporary
        except FileExistsError:
            continue


@contextlib.contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed over `path` when the block ends
    without an error, removed when it raises."""
    handle, temporary = create_beside(path)
    os.close(handle)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def write_text_whole(path: Path, text: str, encoding: str = "utf-8") -> None:
    with written_whole(path) as temporary:
        temporary.write_text(text, encoding=encoding)


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: by the file itself where both exist (symlinks, hard
    links, a case-insensitive file system), else by their resolved paths."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return _normal(a) == _normal(b)


def _normal(path: Path) -> str:
    return os.path.normcase(os.path.realpath(os.path.expanduser(path)))
