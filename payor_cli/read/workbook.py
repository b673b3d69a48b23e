"""XLSX/XLSM/XLSB/XLS/ODS sheets -> chunks: fastexcel reads a sheet into typed Arrow columns.

fastexcel (calamine underneath) hands each column over in one Arrow type; the cells become
text in Arrow compute, never one Python object per cell. python-calamine stays for what
fastexcel does not tell: which sheets are worksheets (chart sheets are skipped), and the real
cells of the rare column in which text mixes with dates, booleans or long numbers.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import fastexcel
import pyarrow as pa
import pyarrow.compute as pc
import python_calamine

from payor_cli.errors import InputError
from payor_cli.read.cells import DOUBTFUL_TEXT, cell_text, column_array, typed_texts, values_any
from payor_cli.read.limits import check_parts, check_sheet
from payor_cli.read.table import (
    REJECTED_LEAD,
    InputOptions,
    Table,
    first_line,
    own_rejected,
)
from payor_cli.read.xlsx_head import head_rows, sheet_part
from payor_cli.rows import Chunk, MalformedRow

# fastexcel logs "Could not determine dtype ... falling back to string" for mixed columns:
# that is the case handled below, not news for the user
logging.getLogger("fastexcel").setLevel(logging.ERROR)

OLE = b"\xd0\xcf\x11\xe0"
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
# BIFF8's (and BIFF5's) BOF of the workbook globals, an optional WRITEPROTECT, then FILEPASS:
# a stream starts on a sector boundary, so the records stand whole in the file's bytes
_XLS_FILEPASS = re.compile(
    rb"(?:\x09\x08\x10\x00\x00\x06\x05\x00.{12}|\x09\x08\x08\x00\x00\x05\x05\x00.{4})"
    rb"(?:\x86\x00\x00\x00)?\x2f\x00",
    re.DOTALL,
)
_FIX = "open it in Excel and save it again as .xlsx, or export as CSV"
_PASSWORD_FIX = (
    "open it in Excel with its password, remove the password (File > Info > Protect Workbook > "
    "Encrypt with Password: clear it), save it and run again; or export the sheet as CSV"
)


_ODS_PASSWORD_FIX = (
    "open it in LibreOffice Calc with its password, save it again without one (File > Save As: "
    "clear 'Save with password') and run again; or export the sheet as CSV"
)


def is_workbook(head: bytes) -> bool:
    """ZIP (xlsx, xlsm, xlsb, ods) or OLE (xls) container: a workbook, whatever the extension."""
    return head.startswith((b"PK\x03\x04", OLE))


def workbook_error(path: Path, exc: BaseException, source: bytes | None = None) -> InputError:
    """What the reader's failure means for the user: a password, or a damaged file."""
    text = first_line(exc)
    if "password" in text.lower() or is_encrypted(path, source):
        fix = _ODS_PASSWORD_FIX if workbook_format(path, source) == "ods" else _PASSWORD_FIX
        return InputError(f"{path}: the workbook is password protected", fix)
    return InputError(f"{path}: cannot read the workbook ({text})", _FIX)


def is_encrypted(path: Path, source: bytes | None = None) -> bool:
    """Whether the workbook is locked with a password, which calamine cannot tell ("Cannot
    detect file format"): an encrypted OOXML workbook (xlsx, xlsm, xlsb) is an OLE file holding
    the real one in an "EncryptedPackage" stream (MS-OFFCRYPTO), whose name stands in the OLE
    directory; an encrypted .xls has a FILEPASS record right after the BOF that opens its
    Workbook stream (MS-XLS 2.4.117); an encrypted .ods declares `encryption-data` for its
    parts in META-INF/manifest.xml (ODF 1.2, part 3, 3.8)."""
    data = source if source is not None else path.read_bytes()
    if data.startswith(OLE):
        return _ENCRYPTED_STREAM in data or _XLS_FILEPASS.search(data) is not None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = archive.read("META-INF/manifest.xml")
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, ValueError, zlib.error):
        return False
    return b"encryption-data" in manifest


def workbook_format(path: Path, source: bytes | None = None) -> str:
    """The workbook's real type, from its bytes: xlsx, xlsm, xlsb, ods or xls."""
    head = source[:8] if source is not None else path.open("rb").read(8)
    if head.startswith(OLE):
        return "xls"
    try:
        with zipfile.ZipFile(_seekable(path, source)) as archive:
            names = set(archive.namelist())
            if "mimetype" in names and b"opendocument" in archive.read("mimetype"):
                return "ods"
            if "xl/workbook.bin" in names:
                return "xlsb"
            types = archive.read("[Content_Types].xml") if "[Content_Types].xml" in names else b""
            return "xlsm" if b"macroEnabled" in types else "xlsx"
    except (zipfile.BadZipFile, OSError):
        return "xlsx"


def _seekable(path: Path, source: bytes | None):
    return io.BytesIO(source) if source is not None else path


def worksheet_names(path: Path, source: bytes | None = None) -> list[str]:
    """The names of the workbook's worksheets, in order; chart and macro sheets left out."""
    check_parts(path, source)  # before calamine unpacks its first part
    try:
        book = python_calamine.CalamineWorkbook.from_filelike(_filelike(path, source))
        return [
            sheet.name
            for sheet in book.sheets_metadata
            if sheet.typ == python_calamine.SheetTypeEnum.WorkSheet
        ]
    except Exception as exc:  # calamine raises several types for damaged files
        raise workbook_error(path, exc, source) from None


def _filelike(path: Path, source: bytes | None):
    return io.BytesIO(source) if source is not None else path.open("rb")


def pick_sheet(path: Path, names: list[str], wanted: str | int | None) -> str:
    if not names:
        raise InputError(f"{path}: the workbook has no worksheets")
    if wanted is None:
        return names[0]
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.strip().isdigit()):
        index = int(wanted)
        if 0 <= index < len(names):
            return names[index]
        if not (isinstance(wanted, str) and wanted in names):
            raise InputError(
                f"{path}: there is no sheet with index {index} (0-based); "
                f"the workbook has {len(names)}: {', '.join(map(repr, names))}"
            )
    folded = {name.strip().casefold(): name for name in names}
    found = folded.get(str(wanted).strip().casefold())
    if found is None:
        raise InputError(
            f"{path}: there is no sheet {wanted!r}; the workbook has {', '.join(map(repr, names))}",
            "set sheet to one of those names or a 0-based index",
        )
    return found


_CHECKED: set[tuple[str, str, int, int]] = set()


def check_sheet_extent(path: Path, sheet: str, source: bytes | None = None) -> None:
    """Refuse an XLSX/XLSM sheet that calamine could not hold (see limits.py): before any
    reader reads it, once a file and sheet."""
    try:
        stat = path.stat() if source is None else None
    except OSError:
        return  # the reader says what is wrong with the file
    key = (
        str(path),
        sheet,
        stat.st_size if stat else len(source or b""),
        stat.st_mtime_ns if stat else id(source),
    )
    if key in _CHECKED:
        return
    if workbook_format(path, source) in ("xlsx", "xlsm"):
        try:
            with zipfile.ZipFile(_seekable(path, source)) as archive:
                part = sheet_part(archive, sheet)
        except (zipfile.BadZipFile, KeyError, OSError, SyntaxError, ValueError):
            part = None  # damaged: the reader says what is wrong with it
        check_sheet(path, part, sheet, source)
    _CHECKED.add(key)


def sheet_rows(path: Path, sheet: str, rows: int | None, source: bytes | None = None) -> list[list]:
    """A sheet's first `rows` rows (all with None) as python-calamine's Python cells."""
    check_sheet_extent(path, sheet, source)  # calamine reads the whole sheet, whatever `rows`
    try:
        book = python_calamine.CalamineWorkbook.from_filelike(_filelike(path, source))
        return book.get_sheet_by_name(sheet).to_python(skip_empty_area=False, nrows=rows)
    except Exception as exc:  # calamine raises several types for damaged files
        raise workbook_error(path, exc, source) from None


def first_rows(
    path: Path, fmt: str, sheet: str, rows: int, source: bytes | None = None
) -> list[list[str]]:
    """The sheet's rows 1..rows as text: streamed for XLSX, else read by python-calamine."""
    check_sheet_extent(path, sheet, source)
    if fmt in ("xlsx", "xlsm") and source is None:
        streamed = head_rows(path, sheet, rows)
        if streamed is not None:
            return streamed
    return [[cell_text(c) for c in row] for row in sheet_rows(path, sheet, rows, source)]


def open_workbook(
    path: Path, options: InputOptions, chunk_rows: int, source: bytes | None = None
) -> Table:
    """Open a sheet of a workbook; `source` holds the bytes when the file came out of a zip."""
    fmt = workbook_format(path, source)
    names = worksheet_names(path, source)
    try:
        sheet = pick_sheet(path, names, options.sheet)
    except InputError:
        top = first_rows(path, fmt, names[0], 1, source) if len(names) == 1 else [[]]
        if tuple(c.strip() for c in top[0][:2]) != REJECTED_LEAD:
            raise
        sheet = names[0]  # payor's rejected rows: the mapping's sheet was the source's
    top = first_rows(path, fmt, sheet, max(1, options.header_row), source)
    own = bool(top) and tuple(c.strip() for c in top[0][:2]) == REJECTED_LEAD
    if own:
        options = replace(options, header_row=1)
    headers = [cell.strip() for cell in top[options.header_row - 1]]
    while headers and not headers[-1]:
        headers.pop()
    if not headers:
        raise InputError(
            f"{path}: row {options.header_row} of sheet {sheet!r} is empty, "
            "so it holds no column names",
            "set header_row to the row that holds the column names",
        )
    columns, dates = _load_columns(path, sheet, options.header_row, len(headers), source)
    table = Table(path, fmt, headers, options.header_row, sheet=sheet)
    table.rows_expected, table.rows_exact = (len(columns[0]) if columns else 0), True
    table._chunks = lambda: _chunks(columns, dates, headers, options.header_row, chunk_rows)
    return own_rejected(table) if own else table


def _load_columns(
    path: Path, sheet: str, header_row: int, width: int, source: bytes | None
) -> tuple[list[pa.Array], list[pa.Array | None]]:
    """Every column of the sheet below the header as text (at least `width`), and date masks."""
    check_sheet_extent(path, sheet, source)
    try:
        reader = fastexcel.read_excel(source if source is not None else str(path))
        loaded = reader.load_sheet(
            sheet, header_row=None, skip_rows=header_row, schema_sample_rows=None
        )
        batch = loaded.to_arrow()
    except Exception as exc:  # fastexcel raises several types for damaged files
        raise workbook_error(path, exc, source) from None
    # fastexcel's columns start at the sheet's first used column; header cells count from A
    at = {info.absolute_index: i for i, info in enumerate(loaded.selected_columns)}
    rows = batch.num_rows
    total = max([width, *(index + 1 for index in at)])
    columns: list[pa.Array] = []
    dates: list[pa.Array | None] = []
    doubtful: list[int] = []
    for index in range(total):
        if index not in at:
            columns.append(pa.array([""] * rows, pa.string()))
            dates.append(None)
            continue
        typed = batch.column(at[index])
        texts, mask = typed_texts(typed)
        if pa.types.is_string(typed.type) and values_any(
            pc.match_substring_regex(texts, DOUBTFUL_TEXT)
        ):
            doubtful.append(index)
        columns.append(texts)
        dates.append(mask if mask is not None and values_any(mask) else None)
    if doubtful:
        _real_cells(path, sheet, header_row, doubtful, columns, dates, source)
    return columns, dates


def _real_cells(path, sheet, header_row, indexes, columns, dates, source) -> None:
    """Columns mixing text with dates, booleans or long numbers, from their real cells."""
    rows = sheet_rows(path, sheet, None, source)[header_row:]
    for index in indexes:
        cells = [row[index] if index < len(row) else "" for row in rows]
        cells.extend([""] * (len(columns[index]) - len(cells)))
        columns[index], dates[index] = column_array(cells[: len(columns[index])])


def _chunks(
    columns: list[pa.Array],
    dates: list[pa.Array | None],
    headers: list[str],
    header_row: int,
    chunk_rows: int,
) -> Iterator[Chunk]:
    rows = len(columns[0]) if columns else 0
    width = len(headers)
    beyond = columns[width:]
    for start in range(0, rows, chunk_rows):
        length = min(chunk_rows, rows - start)
        part = [c.slice(start, length) for c in columns[:width]]
        masks = [d.slice(start, length) if d is not None else None for d in dates[:width]]
        malformed = _beyond(beyond, start, length, width)
        _refuse_nul(part, headers, malformed)
        yield Chunk(part, header_row + 1 + start, masks, malformed)


def _refuse_nul(part: list[pa.Array], headers: list[str], malformed: dict[int, str]) -> None:
    """A cell holding a NUL character (Excel's `_x0000_`) refuses its row, naming the column,
    as a text file's does: a NUL is never part of a real value, and the API refuses it."""
    for index, column in enumerate(part):
        hits = pc.indices_nonzero(pc.match_substring(column, "\x00")).to_pylist()
        name = headers[index] or f"column {index + 1}"
        for offset in hits:
            reason = f"column {name!r} contains a NUL byte (remove it from the cell)"
            known = malformed.get(offset)
            malformed[offset] = (
                MalformedRow(f"{known}; {reason}", getattr(known, "extra", []))
                if known
                else MalformedRow(reason)
            )


def _beyond(beyond: list[pa.Array], start: int, length: int, width: int) -> dict[int, str]:
    """Rows with cells right of the last header, with those cells."""
    if not beyond:
        return {}
    parts = [c.slice(start, length) for c in beyond]
    filled = pc.not_equal(pc.utf8_trim_whitespace(parts[0]), "")
    for part in parts[1:]:
        filled = pc.or_(filled, pc.not_equal(pc.utf8_trim_whitespace(part), ""))
    offsets = pc.indices_nonzero(filled).to_pylist()
    if not offsets:
        return {}
    taken = [part.take(pa.array(offsets, pa.int64())).to_pylist() for part in parts]
    found = {}
    for offset, cells in zip(offsets, zip(*taken, strict=True), strict=True):
        extra = list(cells)
        while extra and not extra[-1].strip():
            extra.pop()
        reason = f"the row has cells right of the last header (column {width})"
        found[offset] = MalformedRow(reason, extra)
    return found
