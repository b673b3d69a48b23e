"""What a workbook may hold before a reader opens it: its parts' unpacked sizes, and the cells
its sheet spans.

calamine (under fastexcel and python-calamine) makes a sheet one dense grid from its first to
its last cell: one stray cell at XFD1048576 is 17 billion cells, and the allocation aborts
the process (no exception to catch). Its XML parser also holds a text node whole, so a zip
bomb of blank space fills the memory. So before any reader sees the file, the zip's directory
is checked (unpacked sizes, compression ratio) and the sheet's XML is streamed once, in blocks,
for the cell references that span it (memory stays one block).
"""

from __future__ import annotations

import contextlib
import io
import queue
import re
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from payor_cli.errors import InputError

EXCEL_ROWS = 1_048_576
EXCEL_COLUMNS = 16_384  # XFD
MAX_CELLS = 50_000_000
"""The grid a sheet may span (first to last cell): calamine holds 32 bytes a cell, ~1.6 GB."""
MAX_PART_BYTES = 4 << 30
"""The unpacked size of any one part of a workbook."""
MAX_RATIO = 100
"""Unpacked / packed size of a large part: real sheets pack 5-20 to 1, blank space 1000."""
RATIO_FROM = 16 << 20  # smaller parts may pack as they like: they cannot fill the memory
_BLOCK = 1 << 20
_BLANK_SHARE = 0.9  # a block this blank is padding: Excel's cells hold at most 32,767 chars
_WHITE = bytes.maketrans(b"\t\r\n", b"   ")
_FIX = "open it in Excel and save it again, or export the sheet as CSV"


@dataclass
class _Extent:
    """The farthest column and row the references name so far, and the cells that name them."""

    column: int = 1
    row: int = 1
    column_ref: str = "A1"
    row_ref: str = "A1"
    letters: str = "A"
    digits: int = 1
    unnamed: int = 0
    """The most cells without a reference in one row (each takes the column after the one
    before it): they widen the grid past the farthest named column, at most by this many."""
    rows: int = 0
    """The <row> elements seen: rows without a reference are numbered one after another."""

    @property
    def width(self) -> int:
        return self.column + self.unnamed

    @property
    def height(self) -> int:
        return max(self.row, self.rows)


def check_parts(path: Path, source: bytes | None = None) -> None:
    """Refuse a workbook (a zip: xlsx, xlsm, xlsb, ods) whose parts would unpack past the
    limits; the zip's directory tells, nothing is unpacked."""
    try:
        with zipfile.ZipFile(_opened(path, source)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip (xls) or damaged: the reader says what is wrong with it
    for info in infos:
        size, packed = info.file_size, max(1, info.compress_size)
        if size > MAX_PART_BYTES or (size > RATIO_FROM and size > MAX_RATIO * packed):
            raise InputError(
                f"{path}: its part {info.filename!r} would unpack to {_mb(size)} from "
                f"{_mb(packed)} ({size // packed}:1); payor reads no part over "
                f"{_mb(MAX_PART_BYTES)} nor packed more than {MAX_RATIO}:1 (a zip bomb, or a "
                "damaged file)",
                _FIX,
            )


def check_sheet(path: Path, part: str | None, sheet: str, source: bytes | None = None) -> None:
    """Refuse an XLSX/XLSM sheet (its XML `part`) whose cell references leave Excel's grid, or
    whose first to last cell span more than MAX_CELLS, or that is padded with blank space."""
    if part is None:
        return
    try:
        with zipfile.ZipFile(_opened(path, source)) as archive, archive.open(part) as handle:
            extent = _scan(path, sheet, handle)
            cells = extent.width * extent.height
            if cells > MAX_CELLS:
                # the rows were bounded by their digit count (cheap): now count them exactly
                with archive.open(part) as again:
                    _exact_rows(again, extent)
                cells = extent.width * extent.height
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, RuntimeError):
        return  # damaged or encrypted: the reader says what is wrong with it
    if cells > MAX_CELLS:
        stray = _named(extent)
        raise InputError(
            f"{path}: sheet {sheet!r} spans A1:{_column_name(extent.width)}{extent.height} "
            f"({cells:,} cells), over payor's limit of {MAX_CELLS:,}: a stray cell far from "
            "the table?",
            f"delete {stray} (Ctrl+End shows the last cell in "
            "Excel) or save only the table's range, or export the sheet as CSV",
        )


def _scan(path: Path, sheet: str, handle: io.BufferedIOBase) -> _Extent:
    """One pass over the sheet's XML: every `r="..."` reference checked, the farthest column
    found exactly, the last row bounded by its digits.

    A regex finds only the references past the farthest seen so far (there are few: the
    column grows a few times, the row's digit count up to 7 times). A block whose every cell
    and row starts with `r="` (what Excel and every library write) needs nothing more; other
    blocks are brought to that form first, and their cells without a reference counted.
    """
    extent = _Extent()
    beyond = _beyond(extent)
    tail = b""
    with contextlib.closing(_unpacked(handle)) as blocks:
        for block in blocks:
            if len(block) == _BLOCK and _blank(block[::1024]) and _blank(block):
                raise InputError(
                    f"{path}: sheet {sheet!r} is padded with megabytes of blank space (a zip "
                    "bomb, or a damaged file)",
                    _FIX,
                )
            text, tail = _whole_tags(tail + block.translate(_WHITE))
            rows = text.count(b"<row")
            extent.rows += rows
            # every <c (cells, and <col> and the like before the sheet's data) starts r="
            if text.count(b"<c") != text.count(b'<c r="') or rows != text.count(b'<row r="'):
                text = _ODD_REF.sub(_canonical, text)
                extent.unnamed = max(extent.unnamed, _widest_row(text))
            start = 0
            while found := beyond.search(text, start):
                start = found.start() + 1
                _widen(path, sheet, extent, found.group(1).decode("ascii", "replace"))
                beyond = _beyond(extent)
    return extent


_REF = re.compile(r"([A-Z]{0,3})(\d{1,7})")
_ODD_REF = re.compile(rb""" r(?: *= *'([^']{0,40})'| +="([^"]{0,40})"| *= +"([^"]{0,40})")""")
"""A reference attribute written as XML allows (`r = 'A1'`), not as Excel writes it."""


def _canonical(found: re.Match[bytes]) -> bytes:
    return b' r="' + (found.group(1) or found.group(2) or found.group(3) or b"") + b'"'


def _widen(path: Path, sheet: str, extent: _Extent, ref: str) -> None:
    """Take a reference past the extent: refuse one outside Excel's grid, else widen."""
    parsed = _REF.fullmatch(ref)
    column = _column_index(parsed.group(1)) if parsed and parsed.group(1) else 1
    row = int(parsed.group(2)) if parsed else 0
    if parsed is None or not (1 <= column <= EXCEL_COLUMNS and 1 <= row <= EXCEL_ROWS):
        raise InputError(
            f"{path}: sheet {sheet!r} has a cell reference {ref[:20]!r} outside Excel's grid "
            f"(columns A to XFD, rows 1 to {EXCEL_ROWS:,}): the file is damaged, or no "
            "spreadsheet program wrote it",
            _FIX,
        )
    if column > extent.column:
        extent.column, extent.column_ref, extent.letters = column, ref, parsed.group(1)
    if len(parsed.group(2)) > extent.digits:
        extent.digits, extent.row_ref = len(parsed.group(2)), ref
    extent.row = min(10**extent.digits - 1, EXCEL_ROWS)


def _beyond(extent: _Extent) -> re.Pattern[bytes]:
    """A reference attribute (` r="..."`) that is not within the extent: a column after its
    farthest, a row of more digits, or no reference at all."""
    letters = extent.letters
    if len(letters) == 1:  # the usual sheet, of up to 26 columns: the quickest pattern
        within = f"[A-{letters}]?"
    else:
        within = f"[A-Z]{{0,{len(letters) - 1}}}|{_not_after(letters)}"
    return re.compile(rf' r="(?!(?:{within})\d{{1,{extent.digits}}}")([^"]{{0,40}})'.encode())


def _not_after(word: str) -> str:
    """A regex of the upper-case words of `word`'s length that sort at or before it."""
    options = []
    for i, letter in enumerate(word):
        if letter > "A":
            before = "A" if letter == "B" else f"A-{chr(ord(letter) - 1)}"
            options.append(word[:i] + f"[{before}]" + "[A-Z]" * (len(word) - i - 1))
    options.append(word)
    return "|".join(options)


def _exact_rows(handle: io.BufferedIOBase, extent: _Extent) -> None:
    """The last row any reference names, exactly (a second pass, for large sheets only)."""
    pattern = re.compile(rb""" r *= *['"]([A-Z]{0,3}(\d{%d}))['"]""" % extent.digits)
    last, last_ref = 0, extent.row_ref
    tail = b""
    with contextlib.closing(_unpacked(handle)) as blocks:
        for block in blocks:
            text, tail = _whole_tags(tail + block.translate(_WHITE))
            for found in pattern.finditer(text):
                row = int(found.group(2))
                if row > last:
                    last, last_ref = row, found.group(1).decode("ascii")
    if last:
        extent.row, extent.row_ref = last, last_ref


def _widest_row(text: bytes) -> int:
    """The most cells without a reference in any row of the text (each takes the column
    after the cell before it)."""
    widest = 0
    for row in text.split(b"<row"):
        cells = row.count(b"<c ") + row.count(b"<c>") + row.count(b"<c/>")
        named = row.count(b' r="') - row[: row.find(b">") + 1].count(b' r="')
        widest = max(widest, cells - named)
    return widest


def _named(extent: _Extent) -> str:
    """The cells that make the extent: the farthest column's, and the last row's."""
    if extent.unnamed > extent.column:
        return f"the stray cells (a row holds {extent.unnamed:,} cells that name no reference)"
    names = [extent.column_ref] if extent.column > 1 else []
    row_ref = extent.row_ref
    if row_ref.isdigit():  # a <row> element's number: its cells name the same row
        row_ref = f"row {row_ref}"
    if not names or _REF.fullmatch(extent.column_ref).group(2) != str(extent.row):
        names.append(row_ref)
    return "the stray cell at " + " and ".join(names)


def _blank(text: bytes) -> bool:
    return text.translate(_WHITE).count(b" ") > _BLANK_SHARE * len(text)


def _unpacked(handle: io.BufferedIOBase) -> Iterator[bytes]:
    """The part's blocks, unpacked by a thread of their own: zlib lets go of the GIL, so the
    unpacking runs beside the scan of the block before (two blocks wait at most)."""
    blocks: queue.Queue[bytes | BaseException] = queue.Queue(2)
    done = threading.Event()

    def unpack() -> None:
        try:
            while not done.is_set():
                block = handle.read(_BLOCK)
                blocks.put(block)
                if not block:
                    return
        except BaseException as exc:  # handed to the scan, which raises it
            blocks.put(exc)

    worker = threading.Thread(target=unpack, name="payor-unpack", daemon=True)
    worker.start()
    try:
        while True:
            block = blocks.get()
            if isinstance(block, BaseException):
                raise block
            if not block:
                return
            yield block
    finally:
        done.set()
        with contextlib.suppress(queue.Empty):
            blocks.get_nowait()  # a worker waiting to put sees `done` next
        worker.join()


def _whole_tags(text: bytes) -> tuple[bytes, bytes]:
    """The text up to its last tag's start, and the rest (kept for the next block, so no
    reference is cut in two); a block without a tag is taken whole."""
    cut = text.rfind(b"<")
    return (text[:cut], text[cut:]) if cut > 0 else (text, b"")


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - 64
    return index


def _column_name(index: int) -> str:
    name = ""
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _opened(path: Path, source: bytes | None):
    return io.BytesIO(source) if source is not None else path


def _mb(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MB" if size >= 1 << 20 else f"{size:,} bytes"
