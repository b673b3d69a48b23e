"""Input that can be read only once: standard input (`-`), a FIFO, a character device.

The readers open a file several times (its first bytes, an encoding scan, the table itself),
and seek in a workbook; a pipe allows neither. Such input is copied once, as it comes, to a
private temporary file (mode 0600, removed when the process ends), which the readers then read
like any file. `upload all --customers - --invoices -` reads standard input once for both.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from payor_cli.errors import InputError
from payor_cli.read.compressed import GZIP_MAGIC, OLE_MAGIC, ZIP_MAGIC
from payor_cli.read.encoding import guess_encoding
from payor_cli.read.table import SAMPLE_BYTES

STDIN = "-"
STDIN_LABEL = "<stdin>"
MAX_SPOOL_BYTES = 16 << 30
"""What payor copies of a pipe at most: past that, save the export to a file."""
_BLOCK = 1 << 20
_SPOOLED: dict[str, Path] = {}
"""What was spooled in this process: input path (`-`) -> its copy."""


def shown(path: Path | str) -> Path:
    """The name a report and a message give the input: `<stdin>` for `-`."""
    return Path(STDIN_LABEL) if str(path) == STDIN else Path(path)


def readable(path: Path) -> Path:
    """A regular file to read for `path`: itself, or the copy of what it streams."""
    key = str(path)
    if key in _SPOOLED:
        return _SPOOLED[key]
    if key == STDIN:
        stream = sys.stdin.buffer if sys.stdin is not None else None
        if stream is None or sys.stdin.isatty():
            raise InputError(
                "FILE is - (standard input), but nothing is piped in",
                "pipe the export in (payor upload customers - < export.csv), or name the file",
            )
        _SPOOLED[key] = _spool(STDIN_LABEL, stream)
        return _SPOOLED[key]
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return path  # the reader says what is wrong (no such file, permission)
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return path
    try:
        with open(path, "rb") as stream:
            if os.isatty(stream.fileno()):
                raise InputError(
                    f"{path} is a terminal, not an export",
                    "pipe the export in (payor upload customers - < export.csv), or name the file",
                )
            _SPOOLED[key] = _spool(key, stream)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    return _SPOOLED[key]


def forget_spooled() -> None:
    """Remove the copies of earlier runs: a run reads its own standard input, not the one a
    run before it in this process (a notebook's) was given."""
    for copy in _SPOOLED.values():
        _remove(copy)
    _SPOOLED.clear()


def _spool(label: str, stream: BinaryIO) -> Path:
    """Copy the stream to a private temporary file, removed at exit."""
    try:
        handle = tempfile.NamedTemporaryFile(prefix="payor-input-", delete=False)  # noqa: SIM115
    except OSError as exc:
        raise _cannot_copy(label, exc) from None
    copy = Path(handle.name)
    atexit.register(_remove, copy)
    with handle:
        copied = 0
        try:
            while block := stream.read(_BLOCK):
                copied += len(block)
                if copied > MAX_SPOOL_BYTES:
                    raise InputError(
                        f"{label}: more than {MAX_SPOOL_BYTES >> 30} GB came through it, more "
                        "than payor copies from a pipe or device",
                        "save the export to a file and name the file",
                    )
                if copied == len(block):
                    _check_head(label, block)
                handle.write(block)
        except OSError as exc:
            raise _cannot_copy(label, exc) from None
    return copy


def _cannot_copy(label: str, exc: OSError) -> InputError:
    return InputError(
        f"{label}: cannot copy it to a temporary file in {tempfile.gettempdir()} ({exc.strerror})",
        "set TMPDIR to a folder with room, or save the export to a file and name it",
    )


def _check_head(label: str, first: bytes) -> None:
    """Refuse binary data at its first block (/dev/urandom, /dev/zero), before it is copied
    until the disk is full; a workbook or a compressed export is recognised by its start."""
    if first.startswith((GZIP_MAGIC, OLE_MAGIC, ZIP_MAGIC)):
        return
    head = first[:SAMPLE_BYTES]
    guess_encoding(Path(label), head, lambda: io.BytesIO(head))  # raises for binary data


@contextlib.contextmanager
def named_as(copy: Path, path: Path) -> Iterator[None]:
    """Errors that name the copy name the input instead (`<stdin>`, the FIFO)."""
    if copy == path:
        yield
        return
    try:
        yield
    except InputError as exc:
        raise relabelled(exc, copy, path) from None


def relabelled(exc: InputError, copy: Path, path: Path) -> InputError:
    label = str(shown(path))

    def named(text: str | None) -> str | None:
        return text.replace(str(copy), label) if text is not None else None

    return type(exc)(named(exc.message) or "", named(exc.hint))


def _remove(copy: Path) -> None:
    with contextlib.suppress(OSError):
        copy.unlink()
