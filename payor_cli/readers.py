"""Files -> chunks of cells as text: file type, encoding, delimiter, sheet and header row."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import python_calamine

from .errors import InputError

CHUNK_ROWS = 25_000
DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_BYTES = 256 * 1024
_BLOCK_BYTES = 1 << 20  # Arrow reads ahead many blocks: small ones keep memory flat
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
REJECTED_LEAD = ("source_row", "errors")
"""The columns payor puts before the source's own in a rejected-rows file."""


@dataclass(frozen=True)
class InputOptions:
    """How to read the file; None means detect."""

    sheet: str | int | None = None
    header_row: int = 1
    encoding: str | None = None
    delimiter: str | None = None
    member: str | None = None

    def overridden(self, **overrides: object) -> InputOptions:
        """These options with the given ones (the CLI's --sheet etc.) put over; None keeps."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class Chunk:
    """Consecutive data rows of the source: every cell as text, one array per source column."""

    columns: list[pa.Array]
    first_row: int
    """The sheet row number (1-based, header row counted) of the chunk's first row."""
    date_cells: list[pa.Array | None] = field(default_factory=list)
    """Per column, which cells were real date cells (Excel); None where there were none."""
    malformed: dict[int, str] = field(default_factory=dict)
    """Row offset in the chunk -> why the row's shape is wrong (more cells than headers)."""
    prior_errors: pa.Array | None = None
    """In payor's own rejected-rows file: each row's `errors` cell from the run that wrote it."""

    @property
    def num_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0


@dataclass
class Table:
    """An opened source: its headers and a way to stream its data rows."""

    path: Path
    format: str
    headers: list[str]
    header_row: int
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    rejected_file: bool = False
    """payor's own rejected-rows file: its source_row and errors columns are not data."""
    rows_expected: int | None = None
    """How many data rows the file holds: exact for a sheet, estimated for a text file."""
    rows_exact: bool = False
    _chunks: Callable[[], Iterator[Chunk]] | None = None

    def chunks(self) -> Iterator[Chunk]:
        """The data rows below the header, in file order, a chunk at a time."""
        assert self._chunks is not None
        return self._chunks()

    def describe(self) -> str:
        parts = [self.format + (" (payor's rejected rows)" if self.rejected_file else "")]
        if self.sheet is not None:
            parts.append(f"sheet {self.sheet!r}")
        if self.encoding:
            parts.append(self.encoding)
        if self.delimiter:
            parts.append("delimiter " + {"\t": "tab"}.get(self.delimiter, repr(self.delimiter)))
        parts.append(f"header on row {self.header_row}")
        return ", ".join(parts)


def open_table(path: Path, options: InputOptions, chunk_rows: int = CHUNK_ROWS) -> Table:
    """Open a CSV/TSV/TXT or XLSX/XLSM/XLS/ODS file for what its bytes are, not its extension."""
    path = Path(path)
    if options.header_row < 1:
        raise InputError(f"header_row must be 1 or more, not {options.header_row}")
    head = _read_head(path)
    if is_workbook(head):
        return _open_workbook(path, options, chunk_rows)
    return _open_text(path, head, options, chunk_rows)


def _read_head(path: Path) -> bytes:
    """The first bytes of the file, which tell what it is; unreadable files end the run."""
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a file")
    try:
        with path.open("rb") as handle:
            head = handle.read(_SAMPLE_BYTES)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    if not head:
        raise InputError(f"{path}: the file is empty", "export the data again; it has no rows")
    return head


def is_workbook(head: bytes) -> bool:
    """ZIP (xlsx, xlsm, ods) or OLE (xls) container: a workbook, whatever the extension says."""
    return head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0"))


# --- text files -------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(path: Path, head: bytes) -> str:
    """BOM, then UTF-16 without BOM by its zero bytes, then UTF-8 if the whole file is, else cp1252.

    Accounting exports come in few encodings: SAP writes UTF-16LE with a BOM, Excel's
    "CSV UTF-8" writes a UTF-8 BOM, older Windows tools write cp1252 (a superset of the printable
    latin-1 range). A statistical guesser adds nothing for these and is wrong on short files.
    """
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    sample = head[:4096]
    if len(sample) >= 4:
        even_zeros = sample[0::2].count(0) / len(sample[0::2])
        odd_zeros = sample[1::2].count(0) / len(sample[1::2])
        if odd_zeros > 0.3 and even_zeros < 0.05:
            return "utf-16-le"
        if even_zeros > 0.3 and odd_zeros < 0.05:
            return "utf-16-be"
    if b"\x00" in head or _looks_binary(head):
        raise InputError(
            f"{path}: this is not a text table (CSV/TSV) nor an Excel/ODS workbook",
            "export the data as CSV or XLSX and try again",
        )
    if _is_utf8(path):
        return "utf-8"
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _looks_binary(head: bytes) -> bool:
    controls = sum(head.count(bytes([c])) for c in (*range(0, 9), *range(14, 27), *range(28, 32)))
    return controls > max(8, len(head) // 100)


def _is_utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while block := handle.read(_BLOCK_BYTES):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def sniff_delimiter(lines: list[str]) -> str:
    """The candidate that splits the header and the lines under it into the most equal columns."""
    best, best_score = ",", (0, 0)
    for candidate in DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=candidate) if row]
        if not widths or widths[0] < 2:
            continue
        header_width = widths[0]
        agreeing = sum(1 for w in widths if w == header_width)
        score = (agreeing, header_width)
        if score > best_score:
            best, best_score = candidate, score
    return best


def _open_text(path: Path, head: bytes, options: InputOptions, chunk_rows: int) -> Table:
    encoding = options.encoding or detect_encoding(path, head)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(
            f"unknown encoding {encoding!r}", "use e.g. utf-8, utf-16, cp1252"
        ) from None
    try:
        sample = head.decode(encoding, errors="strict" if options.encoding else "replace")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: the file is not {encoding} (byte {exc.start}: {exc.reason})",
            "drop the encoding setting to let payor detect it, or name the right one",
        ) from None
    sample = sample.lstrip("\ufeff")
    lines = split_lines(sample)
    if len(head) == _SAMPLE_BYTES and lines:
        lines = lines[:-1]  # the last line of a cut sample is incomplete
        if not lines:
            raise InputError(
                f"{path}: read as {encoding}, its first {_SAMPLE_BYTES // 1024} KB hold no line "
                "break, so it is no text table in that encoding",
                "drop the encoding setting to let payor detect it, or name the right one",
            )
    own_delimiter = _rejected_file_delimiter(lines[:1], options.delimiter)
    if own_delimiter is not None:
        # payor's own rejected-rows file: its header is on line 1, whatever the mapping says
        options = replace(options, header_row=1, delimiter=own_delimiter)
    header_at = options.header_row - 1
    if header_at >= len(lines):
        raise InputError(
            f"{path}: header_row = {options.header_row}, but the file has only {len(lines)} lines",
            "set header_row to the row that holds the column names",
        )
    delimiter = options.delimiter or sniff_delimiter(lines[header_at : header_at + 50])
    if len(delimiter) != 1:
        raise InputError(f"delimiter must be one character, not {delimiter!r}")
    header_cells = next(csv.reader([lines[header_at]], delimiter=delimiter), [])
    headers = [cell.strip() for cell in header_cells]
    if not any(headers):
        raise InputError(
            f"{path}: row {options.header_row} is empty, so it holds no column names",
            "set header_row to the row that holds the column names",
        )
    table = Table(path, "csv", headers, options.header_row, encoding, delimiter)
    table.rows_expected = _estimated_rows(path, head, len(split_lines(sample)), options.header_row)
    table._chunks = lambda: _text_chunks(
        path, encoding, delimiter, len(headers), options, chunk_rows
    )
    return _own_rejected(table) if own_delimiter is not None else table


def _estimated_rows(path: Path, head: bytes, lines_in_head: int, header_row: int) -> int:
    """The data rows of a text file, from its size and the lines of its first bytes."""
    if len(head) < _SAMPLE_BYTES:
        return max(0, lines_in_head - header_row)  # the whole file was read
    bytes_per_line = len(head) / max(1, lines_in_head)
    return max(0, round(path.stat().st_size / bytes_per_line) - header_row)


def _rejected_file_delimiter(first_line: list[str], delimiter: str | None) -> str | None:
    """The delimiter of payor's own rejected-rows file, or None when this is not one."""
    if not first_line or not first_line[0].startswith(REJECTED_LEAD[0]):
        return None
    for candidate in [delimiter] if delimiter else DELIMITERS:
        cells = next(csv.reader(first_line, delimiter=candidate), [])
        if tuple(c.strip() for c in cells[:2]) == REJECTED_LEAD:
            return candidate
    return None


def _own_rejected(table: Table) -> Table:
    """A rejected-rows file read as its source: the lead columns leave the data, their
    `errors` cells stay with each row (a repeated key that comes back unchanged is refused)."""
    lead = len(REJECTED_LEAD)
    read = table._chunks
    assert read is not None

    def chunks() -> Iterator[Chunk]:
        for chunk in read():
            chunk.prior_errors = chunk.columns[1]
            chunk.columns = chunk.columns[lead:]
            chunk.date_cells = chunk.date_cells[lead:]
            yield chunk

    return replace(table, headers=table.headers[lead:], rejected_file=True, _chunks=chunks)


def _text_chunks(
    path: Path, encoding: str, delimiter: str, width: int, options: InputOptions, chunk_rows: int
) -> Iterator[Chunk]:
    """Stream with Arrow's parallel CSV reader; fall back to the csv module for ragged rows.

    Arrow drops a row whose cell count differs from the header's without saying where it
    stood, which would shift every later row number. So at the first such row the rest of the
    file is read again with the csv module, from the first record not yet handed out.
    """
    ragged = []
    names = [f"c{i}" for i in range(width)]

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        ragged.append(row)
        return "skip"

    arrow_encoding = "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding
    first_row = options.header_row + 1
    emitted = 0
    reader = None
    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(
                skip_rows=options.header_row,
                column_names=names,
                block_size=_BLOCK_BYTES,
                encoding=arrow_encoding,
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
        waiting: list[pa.RecordBatch] = []
        waiting_rows = 0
        for batch in itertools.chain(reader, [None]):
            if ragged:
                break
            if batch is not None:
                waiting.append(batch)
                waiting_rows += batch.num_rows
            if waiting_rows and (waiting_rows >= chunk_rows or batch is None):
                # small blocks keep Arrow's read-ahead small; chunks of many rows keep the
                # per-chunk cost of validation small
                columns = pa.Table.from_batches(waiting).combine_chunks().columns
                yield Chunk([column.chunk(0) for column in columns], first_row + emitted)
                emitted += waiting_rows
                waiting, waiting_rows = [], 0
        if not ragged:
            return
    except StopIteration:
        return
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if emitted == 0 and "Empty CSV file" in str(exc):
            return
        if not isinstance(exc, pa.ArrowInvalid) or "invalid UTF8" in str(exc):
            raise InputError(f"{path}: the file is not {encoding}: {exc}") from None
    finally:
        if reader is not None:
            reader.close()  # Arrow's read-ahead threads end here, not at interpreter exit
    yield from _csv_module_chunks(path, encoding, delimiter, width, options, emitted, chunk_rows)


def _csv_module_chunks(
    path: Path,
    encoding: str,
    delimiter: str,
    width: int,
    options: InputOptions,
    skip_records: int,
    chunk_rows: int,
) -> Iterator[Chunk]:
    with path.open(encoding=encoding, newline="", errors="strict") as handle:
        records = csv.reader(handle, delimiter=delimiter)
        try:
            for _ in itertools.islice(records, options.header_row + skip_records):
                pass
            row_number = options.header_row + 1 + skip_records
            while batch := list(itertools.islice(records, chunk_rows)):
                malformed = {}
                for offset, record in enumerate(batch):
                    if len(record) < width:
                        record.extend([""] * (width - len(record)))
                    elif len(record) > width:
                        extra = record[width:]
                        if any(cell.strip() for cell in extra):
                            malformed[offset] = (
                                f"the row has {len(record)} cells but the header has {width}"
                            )
                        del record[width:]
                columns = [pa.array(cells, pa.string()) for cells in zip(*batch, strict=True)]
                yield Chunk(columns, row_number, malformed=malformed)
                row_number += len(batch)
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: the file is not {encoding} ({exc.reason})") from None
        except csv.Error as exc:
            raise InputError(
                f"{path}: not a readable CSV near record {records.line_num}: {exc}"
            ) from None


# --- workbooks --------------------------------------------------------------------------------


def _open_workbook(path: Path, options: InputOptions, chunk_rows: int) -> Table:
    try:
        with path.open("rb") as handle:
            workbook = python_calamine.CalamineWorkbook.from_filelike(handle)
    except Exception as exc:  # calamine raises several types for damaged files
        raise InputError(
            f"{path}: cannot read the workbook ({_first_line(exc)})",
            "open it in Excel and save it again as .xlsx, or export as CSV",
        ) from None
    names = workbook.sheet_names
    try:
        sheet_name = _pick_sheet(path, names, options.sheet)
    except InputError:
        if len(names) != 1 or not _is_own_rejected_sheet(workbook, names[0]):
            raise
        sheet_name = names[0]  # payor's rejected rows: the mapping's sheet was the source's
    try:
        rows = workbook.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)
    except Exception as exc:
        raise InputError(f"{path}: cannot read sheet {sheet_name!r} ({_first_line(exc)})") from None
    own = bool(rows) and tuple(cell_text(c).strip() for c in rows[0][:2]) == REJECTED_LEAD
    if own:
        options = replace(options, header_row=1)
    header_at = options.header_row - 1
    if header_at >= len(rows):
        raise InputError(
            f"{path}: header_row = {options.header_row}, but sheet {sheet_name!r} has only "
            f"{len(rows)} rows",
            "set header_row to the row that holds the column names",
        )
    headers = [cell_text(cell).strip() for cell in rows[header_at]]
    while headers and not headers[-1]:
        headers.pop()
    if not headers:
        raise InputError(
            f"{path}: row {options.header_row} of sheet {sheet_name!r} is empty, "
            "so it holds no column names",
            "set header_row to the row that holds the column names",
        )
    fmt = _workbook_format(path)
    table = Table(path, fmt, headers, options.header_row, sheet=sheet_name)
    table.rows_expected, table.rows_exact = max(0, len(rows) - options.header_row), True
    table._chunks = lambda: _workbook_chunks(rows, len(headers), options.header_row, chunk_rows)
    return _own_rejected(table) if own else table


def _is_own_rejected_sheet(workbook: python_calamine.CalamineWorkbook, name: str) -> bool:
    try:
        first = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False, nrows=1)
    except Exception:  # a damaged sheet is reported when it is read for real
        return False
    return bool(first) and tuple(cell_text(c).strip() for c in first[0][:2]) == REJECTED_LEAD


def _workbook_format(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(200)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    return "ods" if b"application/vnd.oasis.opendocument" in head else "xlsx"


def split_lines(text: str) -> list[str]:
    """Lines with their ends, split at CR, LF and CRLF only (csv's idea of a line)."""
    return _LINE.findall(text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _pick_sheet(path: Path, names: list[str], wanted: str | int | None) -> str:
    if not names:
        raise InputError(f"{path}: the workbook has no sheets")
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


def _workbook_chunks(
    rows: list[list], width: int, header_row: int, chunk_rows: int
) -> Iterator[Chunk]:
    for start in range(header_row, len(rows), chunk_rows):
        block = rows[start : start + chunk_rows]
        columns, date_masks = [], []
        if all(len(row) >= width for row in block):
            by_column = list(zip(*block, strict=False))[
                :width
            ]  # calamine's rows are as wide as the sheet
        else:
            by_column = [[row[i] if i < len(row) else "" for row in block] for i in range(width)]
        for cells in by_column:
            texts, dates = column_array(list(cells))
            columns.append(texts)
            date_masks.append(dates)
        malformed = {}
        for offset, row in enumerate(block):
            if len(row) > width and any(cell_text(c).strip() for c in row[width:]):
                malformed[offset] = f"the row has cells right of the last header (column {width})"
        yield Chunk(columns, start + 1, date_masks, malformed)


def column_array(cells: list) -> tuple[pa.Array, pa.Array | None]:
    """A column of workbook cells as text, and which were date cells (None when none were).

    Arrow converts a column of one type at C speed (numbers to their shortest text, dates to
    ISO); a column of mixed types (text and numbers) goes cell by cell.
    """
    typed = _typed_column(cells)
    if typed is None:
        texts, dates = column_texts(cells)
        return pa.array(texts, pa.string()), (pa.array(dates) if dates is not None else None)
    kind = typed.type
    if pa.types.is_string(kind) or pa.types.is_null(kind):
        return pc.fill_null(typed.cast(pa.string()), ""), None
    if pa.types.is_floating(kind) or pa.types.is_integer(kind):
        text = typed.cast(pa.string())
        if pa.types.is_floating(kind):
            # Arrow writes 1.2e+11, -0 and all 17 digits; a person (and cell_text) writes
            # 120000000000, 0 and Excel's 15 significant digits
            significant = pc.replace_substring_regex(text, r"^-?[0.]*|\.", "")
            odd = pc.or_(
                pc.or_(pc.match_substring(text, "e"), pc.equal(text, "-0")),
                pc.greater(pc.utf8_length(significant), 15),
            )
            if values_any(odd):
                fixed = pa.array(
                    [cell_text(float(v)) if v is not None else None for v in text.to_pylist()]
                )
                text = pc.if_else(odd, fixed, text)
        return pc.fill_null(text, ""), None
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        days = typed.cast(pa.date32())
        text = days.cast(pa.string())
        if pa.types.is_timestamp(kind):
            # a time of day is kept (to the second), as cell_text writes it
            seconds = typed.cast(pa.timestamp("s"), safe=False)
            timed = pc.strftime(seconds, "%Y-%m-%d %H:%M:%S")
            text = pc.if_else(pc.equal(days.cast(kind), typed), text, timed)
        return pc.fill_null(text, ""), pc.is_valid(typed)
    texts, dates = column_texts(cells)
    return pa.array(texts, pa.string()), (pa.array(dates) if dates is not None else None)


def _typed_column(cells: list) -> pa.Array | None:
    """The cells as one Arrow type (empty cells as null), or None if they mix types."""
    try:
        return pa.array(cells)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    try:
        return pa.array([None if cell == "" else cell for cell in cells])
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def values_any(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def column_texts(cells: list) -> tuple[list[str], list[bool] | None]:
    """Cells of one column as text, and which were date cells (None when none were)."""
    if all(type(cell) is str for cell in cells):
        return cells, None
    texts = [cell if type(cell) is str else cell_text(cell) for cell in cells]
    dates = [isinstance(cell, dt.date) for cell in cells]
    return texts, dates if any(dates) else None


def cell_text(cell: object) -> str:
    """A workbook cell as the text a person sees: whole numbers without '.0', dates ISO."""
    if isinstance(cell, str):
        return cell
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "TRUE" if cell else "FALSE"
    if isinstance(cell, float):
        # Excel keeps 15 significant digits; any further ones are binary noise (1234.56, not
        # 1234.5599999999999)
        text = f"{cell:.15g}"
        if "e" in text:
            return format(Decimal(text), "f")
        return "0" if text == "-0" else text
    if isinstance(cell, dt.datetime):
        if cell.time() == dt.time(0):
            return cell.date().isoformat()
        return cell.isoformat(sep=" ")
    if isinstance(cell, dt.date | dt.time):
        return cell.isoformat()
    return str(cell)


def sheet_names(path: Path) -> list[str] | None:
    """The sheet names of a workbook, or None for a text file."""
    path = Path(path)
    if not is_workbook(_read_head(path)):
        return None
    try:
        with path.open("rb") as handle:
            return list(python_calamine.CalamineWorkbook.from_filelike(handle).sheet_names)
    except Exception as exc:  # calamine raises several types for damaged files
        raise InputError(f"{path}: cannot read the workbook ({_first_line(exc)})") from None


def read_sample_rows(
    path: Path, options: InputOptions, rows: int = 50
) -> tuple[list[list[str]], dict[str, object]]:
    """The first `rows` rows of a file as text cells, and what was detected (for `payor init`).

    The header row is not known yet, so `options.header_row` is ignored. `detected` holds
    `format`, `encoding`, `delimiter` and `lines` (text files: the decoded lines, for sniffing
    again below a header), `sheet` and `sheets` (workbooks), and `row_numbers`: each row's
    1-based number as `header_row` counts it (text: the physical line the record starts on).
    """
    path = Path(path)
    head = _read_head(path)
    if is_workbook(head):
        try:
            with path.open("rb") as handle:
                workbook = python_calamine.CalamineWorkbook.from_filelike(handle)
            names = list(workbook.sheet_names)
            sheet = _pick_sheet(path, names, options.sheet)
            data = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False, nrows=rows)
        except InputError:
            raise
        except Exception as exc:  # calamine raises several types for damaged files
            raise InputError(f"{path}: cannot read the workbook ({_first_line(exc)})") from None
        cells = [[cell_text(cell) for cell in row] for row in data]
        detected: dict[str, object] = {
            "format": _workbook_format(path),
            "sheet": sheet,
            "sheets": names,
            "row_numbers": list(range(1, len(cells) + 1)),
        }
        return cells, detected
    encoding = options.encoding or detect_encoding(path, head)
    try:
        text = head.decode(encoding, errors="replace")
    except LookupError:
        raise InputError(
            f"unknown encoding {encoding!r}", "use e.g. utf-8, utf-16, cp1252"
        ) from None
    lines = split_lines(text.lstrip("\ufeff"))
    if len(head) == _SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample is incomplete
    delimiter = options.delimiter or sniff_report_delimiter(lines[: rows * 2])
    records: list[list[str]] = []
    numbers: list[int] = []
    reader = csv.reader(iter(lines), delimiter=delimiter)
    try:
        while len(records) < rows:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            records.append(record)
            numbers.append(start)
    except csv.Error:
        pass  # a damaged line: the rows so far are sample enough
    detected = {
        "format": "csv",
        "encoding": encoding,
        "delimiter": delimiter,
        "lines": lines,
        "row_numbers": numbers,
    }
    return records, detected


def sniff_report_delimiter(lines: list[str]) -> str:
    """The candidate under which most lines share one width of 2 or more cells.

    Unlike `sniff_delimiter` this does not trust the first line: report exports put title
    lines (one cell, or a comma in a sentence) above the header.
    """
    best, best_score = ",", (0, 0)
    for candidate in DELIMITERS:
        try:
            widths = [
                len(row)
                for row in csv.reader(lines, delimiter=candidate)
                if any(cell.strip() for cell in row)
            ]
        except csv.Error:
            continue
        counts: dict[int, int] = {}
        for width in widths:
            if width >= 2:
                counts[width] = counts.get(width, 0) + 1
        if not counts:
            continue
        width, agreeing = max(counts.items(), key=lambda item: (item[1], item[0]))
        score = (agreeing, width)
        if score > best_score:
            best, best_score = candidate, score
    return best
