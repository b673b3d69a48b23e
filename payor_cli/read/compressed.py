"""What a file holds: itself, or the one table inside a .gz or .zip, streamed, never unpacked."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from payor_cli.errors import InputError
from payor_cli.read.limits import MAX_RATIO, RATIO_FROM
from payor_cli.read.table import SAMPLE_BYTES, InputOptions, read_head

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"
MAX_HELD_BYTES = 1 << 30
"""A workbook inside a .zip or .gz is read into memory whole: at most this much of it."""
# what a workbook's zip holds at its root (OOXML, OpenDocument); any other zip is an archive
_WORKBOOK_PARTS = ("[Content_Types].xml", "mimetype")


@dataclass
class Source:
    """The bytes to read: a plain file, or one member of an archive (`member` names it)."""

    path: Path
    head: bytes
    open: Callable[[], BinaryIO]
    size: int | None
    """The bytes of the table itself (uncompressed), when known."""
    member: str | None = None
    compressed: bool = False

    @property
    def workbook(self) -> bool:
        return self.head.startswith(OLE_MAGIC) or (
            self.head.startswith(ZIP_MAGIC) and _is_workbook_zip(self)
        )

    def data(self) -> bytes:
        """The whole table's bytes (a workbook in an archive: the readers want them at once),
        up to MAX_HELD_BYTES: a bomb in the archive stops there."""
        data = b""
        if self.size is None or self.size <= MAX_HELD_BYTES:  # a zip's directory tells first
            with self.open() as handle:
                data = handle.read(MAX_HELD_BYTES + 1)
        if len(data) > MAX_HELD_BYTES or len(data) < len(self.head):
            raise InputError(
                f"{self.path}: the workbook {self.member!r} in the archive unpacks to more than "
                f"{MAX_HELD_BYTES >> 20:,} MB, more than payor holds in memory",
                "unpack the archive and read the workbook itself",
            )
        return data


def resolve(path: Path, options: InputOptions) -> Source:
    """The table that `path` holds: the file itself, or the one inside a .gz or .zip."""
    path = Path(path)
    head = read_head(path)
    plain = Source(path, head, lambda: path.open("rb"), _size(path))
    if head.startswith(GZIP_MAGIC):
        return _gzip_source(path)
    if head.startswith(ZIP_MAGIC) and not _is_workbook_zip(plain):
        return _zip_source(path, options.member)
    if options.member is not None:
        raise InputError(
            f"{path}: member = {options.member!r} was given, but the file is no .zip archive",
            "drop the member setting (--member) for a file that is not a .zip",
        )
    return plain


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _is_workbook_zip(source: Source) -> bool:
    try:
        with zipfile.ZipFile(source.open()) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return True  # a damaged zip: the workbook reader says what is wrong with it
    return any(part in names for part in _WORKBOOK_PARTS) or any(
        name.startswith("xl/") for name in names
    )


def _gzip_source(path: Path) -> Source:
    def opened() -> BinaryIO:
        return gzip.open(path, "rb")  # type: ignore[return-value]

    try:
        with opened() as handle:
            head = handle.read(SAMPLE_BYTES)
    except (OSError, EOFError) as exc:
        raise InputError(
            f"{path}: cannot unpack the .gz file ({exc})", "pack the export again, or unpack it"
        ) from None
    if not head:
        raise InputError(f"{path}: the file inside the .gz is empty", "export the data again")
    with path.open("rb") as raw:
        raw.seek(-4, io.SEEK_END)
        size = struct.unpack("<I", raw.read(4))[0]  # the last 4 bytes: length mod 2**32
    member = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    _refuse_bomb(path, member, size, _size(path) or 1)  # the size is mod 4 GB: a low bound
    return Source(path, head, opened, size, member=member, compressed=True)


def _zip_source(path: Path, wanted: str | None) -> Source:
    try:
        archive = zipfile.ZipFile(path)
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir()
            and not info.filename.startswith(("__MACOSX/", "."))
            and not info.filename.endswith("/.DS_Store")
        ]
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: cannot read the .zip file ({exc})") from None
    names = [info.filename for info in members]
    if wanted is not None:
        chosen = [info for info in members if info.filename == wanted] or [
            info for info in members if Path(info.filename).name == wanted
        ]
        if len(chosen) != 1:
            raise InputError(
                f"{path}: the archive holds no file {wanted!r}; it holds {_listed(names)}",
                "set member (--member) to one of those names",
            )
    elif len(members) == 1:
        chosen = members
    elif not members:
        raise InputError(f"{path}: the .zip archive holds no file", "export the data again")
    else:
        raise InputError(
            f"{path}: the .zip archive holds {len(members)} files: {_listed(names)}",
            f'say which to read with --member (or member = "..." in the mapping), e.g. '
            f"--member {names[0]!r}",
        )
    info = chosen[0]
    _refuse_bomb(path, info.filename, info.file_size, info.compress_size)

    def opened() -> BinaryIO:
        return zipfile.ZipFile(path).open(info)

    try:
        with opened() as handle:
            head = handle.read(SAMPLE_BYTES)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: a compression zipfile lacks
        raise InputError(
            f"{path}: cannot unpack {info.filename!r} ({exc})",
            "unpack the archive and read the file itself",
        ) from None
    if not head:
        raise InputError(f"{path}: {info.filename!r} in the archive is empty", "export again")
    return Source(path, head, opened, info.file_size, member=info.filename, compressed=True)


def _refuse_bomb(path: Path, member: str, size: int, packed: int) -> None:
    """An archived table that unpacks far more than exports pack (a zip bomb: megabytes of
    blank lines from kilobytes) is refused before it is read for minutes."""
    packed = max(1, packed)
    if size > RATIO_FROM and size > MAX_RATIO * packed:
        raise InputError(
            f"{path}: {member!r} would unpack to {size >> 20:,} MB from {packed:,} bytes "
            f"({size // packed}:1); exports pack at most about 20:1 (a zip bomb, or a damaged "
            "archive)",
            "unpack it and look at the file, or export the data again",
        )


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")
