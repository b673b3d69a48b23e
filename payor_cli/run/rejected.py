"""The rejected-rows file: the refused rows as the source had them, ready to fix and upload again.

Both formats lead with `source_row`, `errors` and `origin`, then the source's columns, then the
cells a row had beyond the header in `extra_1`, `extra_2`, ... . `origin` names the row in the
export it first came from ("invoices.csv row 1433"), and is carried over when a fixed rejected
file is uploaded again, round after round (`source_row` is the row in the file read). In a
workbook each cell that caused a rejection is marked and carries its reasons as a comment.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from payor_cli.errors import SECRETS, ConfigError
from payor_cli.read import ORIGIN, REJECTED_LEAD, Table
from payor_cli.rows import RejectedRow, RowError
from payor_cli.whole import written_whole

LEAD = (*REJECTED_LEAD, ORIGIN)
"""payor's own columns before the source's: source_row, errors, origin."""

REJECTED_SUFFIXES = (".csv", ".xlsx")
EXTRA_PREFIX = "extra_"
COMMENT_LIMIT = 5_000
"""Comments per workbook. openpyxl holds every comment until it saves (about 6 kB each), so
past this many the cells are still marked, and the `errors` column still says why."""
ERRORS_WIDTH = 60
"""The `errors` column's width in characters; its text wraps within it."""
ORIGIN_WIDTH = 28
SHEET_NAME = "Rejected rows"
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
"""What a worksheet cell cannot hold (the characters openpyxl refuses)."""
REPLACEMENT = "\ufffd"
CONTROL_REASON = f"a control character a workbook cannot hold was replaced by {REPLACEMENT}"

Marks = dict[int, list[str]]
"""Line position -> the reasons that cell caused; position 1 (`errors`) is the row's own."""


def spool_path(path: Path) -> Path:
    """Where the rows wait until the file is whole: a rejected-rows CSV of its own, so a
    killed run leaves the rows found so far in a file that is fixed and uploaded like any."""
    return path.with_name(path.name + ".partial.csv")


def origin_of(table: Table | None, row: int) -> str:
    """Where a row of `table` came from: the row the export had, carried over from a rejected
    file that is read again ("invoices.csv row 1433")."""
    if table is None:
        return ""
    if table.origins is not None and row in table.origins:
        return table.origins[row]
    sheet = f", sheet {table.sheet!r}," if table.sheet is not None else ""
    return f"{table.path.name}{sheet} row {row}"


def check_rejected_path(path: Path) -> None:
    if path.suffix.lower() not in REJECTED_SUFFIXES:
        raise ConfigError(
            f"--rejected {path}: the file must end in .csv or .xlsx",
            "the suffix chooses the format, e.g. --rejected rejected.csv",
        )


class RejectedWriter:
    """Writes rejected rows as the source had them, led by source_row and errors.

    The header is on the first line, whatever row the source had it on, so any CSV reader
    finds it; a text source's delimiter and encoding are kept. payor knows the file again by
    its first two columns, so the fixed file uploads with the very same mapping (the
    `extra_N` columns are not in any mapping, so they are read and left alone).

    The file is whole at every moment: a header-only file replaces any old one at the start
    (an old file never passes for a new one), the rows wait in a spool beside it
    (`spool_path`), which is renamed into place at `close`.
    """

    def __init__(self, path: Path, table: Table | None = None) -> None:
        check_rejected_path(path)
        self.path = path
        self.count = 0
        self._table = table
        headers = list(table.headers) if table else []
        self._width = len(LEAD) + len(headers)
        # a header named twice: its first column is the one the mapping binds
        self._positions: dict[str, int] = {}
        for position, header in enumerate(headers, start=len(LEAD)):
            self._positions.setdefault(header, position)
        header = list(LEAD) + headers
        self._out: _CsvFile | _XlsxOut
        self._xlsx = path.suffix.lower() == ".xlsx"
        if self._xlsx:
            self._out = _XlsxOut(path, header, (table.sheet if table else None) or SHEET_NAME)
        else:
            encoding = (table.encoding if table else None) or "utf-8-sig"
            delimiter = (table.delimiter if table else None) or ","
            self._out = _CsvFile(path, header, encoding, delimiter)

    def write(self, rows: list[RejectedRow]) -> None:
        lines = []
        for row in rows:
            cells = list(row.cells) + [""] * (self._width - len(LEAD) - len(row.cells))
            marks = self._marks(row) if self._xlsx else {}  # a CSV has no place for them
            origin = origin_of(self._table, row.row)
            message = SECRETS(row.message)
            lines.append(([row.row, message, origin, *cells, *_kept(row.extra)], marks))
        self._out.write(lines, max((len(line) for line, _ in lines), default=0) - self._width)
        self.count += len(rows)

    def close(self) -> None:
        self._out.close()

    def _marks(self, row: RejectedRow) -> Marks:
        marks: Marks = {}
        for error in row.errors:
            positions = self._columns_of(error.column) or [1]
            for position in positions:
                marks.setdefault(position, []).append(_reason(error))
        return marks

    def _columns_of(self, column: str | None) -> list[int]:
        if column is None:
            return []
        if column in self._positions:
            return [self._positions[column]]
        # a field built from several columns names them all: "Street, City"
        return [self._positions[p] for p in column.split(", ") if p in self._positions]


def _kept(extra: list[str]) -> list[str]:
    """The cells beyond the header, less trailing blanks (a trailing delimiter holds nothing)."""
    end = len(extra)
    while end and not (extra[end - 1] or "").strip():
        end -= 1
    return extra[:end]


def _reason(error: RowError) -> str:
    return SECRETS(f"{error.field} {error.text}" if error.field else error.text)


def extra_names(headers: list[str], count: int) -> list[str]:
    """`extra_1`, `extra_2`, ..., past any the header already has (a re-read rejected file)."""
    taken, names, number = set(headers), [], 0
    while len(names) < count:
        number += 1
        if f"{EXTRA_PREFIX}{number}" not in taken:
            names.append(f"{EXTRA_PREFIX}{number}")
    return names


class _CsvFile:
    """A rejected-rows CSV: a header-only file at once, the rows spooled beside it (a CSV of
    its own, whole after every batch), renamed into place at the end."""

    def __init__(self, path: Path, header: list[str], encoding: str, delimiter: str) -> None:
        self.path = path
        with written_whole(path) as temporary:
            _CsvOut(temporary, header, encoding, delimiter).close()
        self.spool_path = spool_path(path)
        self._spool = _CsvOut(self.spool_path, header, encoding, delimiter)

    def write(self, lines: list[tuple[list[Any], Marks]], extras: int) -> None:
        self._spool.write(lines, extras)

    def close(self) -> None:
        self._spool.close()
        os.replace(self.spool_path, self.path)


class _CsvOut:
    """A CSV whose file on disk is a whole table after every batch.

    The header goes out (and is flushed) at once, so a run killed at any point leaves a
    file that is new and readable. A batch is written in one piece and flushed, so a killed
    run leaves whole rows. When a batch holds a row with more extra cells than the header
    names, the file is rewritten first with a wider header (its earlier rows padded) and
    renamed over the old one: a reader never meets a row longer than its header, and the
    cost, a copy of the rows so far, comes only on a batch that widens the table, which
    ragged rows make rare. A fixed cap would either lose cells or pad every file.
    """

    def __init__(self, path: Path, header: list[str], encoding: str, delimiter: str) -> None:
        self.path, self._header, self._encoding, self._delimiter = path, header, encoding, delimiter
        self._extras = 0
        self._file = self._open("w")
        self._writer().writerow(header)
        self._file.flush()  # even a run killed at once leaves a file that says it is new

    def _open(self, mode: str, path: Path | None = None) -> io.TextIOWrapper:
        return (path or self.path).open(mode, encoding=self._encoding, errors="replace", newline="")

    def _writer(self, handle: Any = None) -> Any:
        return csv.writer(handle or self._file, delimiter=self._delimiter)

    def write(self, lines: list[tuple[list[Any], Marks]], extras: int) -> None:
        if extras > self._extras:
            self._widen(extras)
        width = len(self._header) + self._extras
        batch = io.StringIO()
        self._writer(batch).writerows(line + [""] * (width - len(line)) for line, _ in lines)
        self._file.write(batch.getvalue())
        self._file.flush()

    def _widen(self, extras: int) -> None:
        header = self._header + extra_names(self._header, extras)
        self._file.close()
        with (
            written_whole(self.path) as partial,
            self._open("r") as old,
            self._open("w", partial) as new,
        ):
            rows = csv.reader(old, delimiter=self._delimiter)
            next(rows, None)
            out = self._writer(new)
            out.writerow(header)
            out.writerows(row + [""] * (len(header) - len(row)) for row in rows)
        self._extras = extras
        self._file = self._open("a")  # in append mode no second byte-order mark is written

    def close(self) -> None:
        self._file.close()


class _XlsxOut:
    """A workbook, built at `close` from its rows spooled to a CSV beside it.

    A workbook is one zip written at the end, and openpyxl streams rows in order, header
    first: the extra columns a later row needs could not be named. So the rows wait on disk
    (memory stays flat) and the sheet is written once its width is known. The spool is a
    rejected-rows CSV of its own (NAME.xlsx.partial.csv), so a killed run leaves the rows
    found so far in a file that is fixed and uploaded like any other; at the start a
    header-only workbook replaces any old NAME.xlsx, which never passes for a new one. The
    finished workbook is renamed into place whole, and only then is the spool removed.
    """

    def __init__(self, path: Path, header: list[str], sheet: str) -> None:
        self.path, self._sheet, self._rows = path, sheet, 0
        self.spool_path = spool_path(path)
        self._save(header, iter(()))
        self._spool = _CsvOut(self.spool_path, header, "utf-8-sig", ",")
        # a cell's reasons have no place in a CSV: they wait apart, a line per row
        self._marks = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed in close)

    def write(self, lines: list[tuple[list[Any], Marks]], extras: int) -> None:
        self._spool.write(lines, extras)
        for _, marks in lines:
            self._marks.write(json.dumps(list(marks.items()), ensure_ascii=False) + "\n")
        self._rows += len(lines)

    def close(self) -> None:
        self._spool.close()
        self._marks.seek(0)
        try:
            with self.spool_path.open(encoding="utf-8-sig", newline="") as spooled:
                rows = csv.reader(spooled)
                self._save(next(rows), _with_marks(rows, self._marks), self._rows)
        finally:
            self._marks.close()
        self.spool_path.unlink()

    def _save(
        self, header: list[str], lines: Iterator[tuple[list[Any], Marks]], rows: int = 0
    ) -> None:
        import openpyxl  # noqa: PLC0415 - openpyxl loads only for .xlsx output
        from openpyxl.utils import get_column_letter  # noqa: PLC0415 - openpyxl loads only for .xlsx output

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet(self._sheet)
        # sheet views and column widths precede the rows in the file: set before any row
        sheet.freeze_panes = "A2"
        sheet.column_dimensions["B"].width = ERRORS_WIDTH
        sheet.column_dimensions["C"].width = ORIGIN_WIDTH
        sheet.append(header)
        style = _Style(book)
        for line, marks in lines:
            sheet.append(style.cells(sheet, line, marks))
        # the filter follows the rows in the file, so it can span them all
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{rows + 1}"
        with written_whole(self.path) as partial:
            book.save(partial)


def _replace_control_characters(line: list[Any], marks: Marks) -> None:
    """A workbook cannot hold most control characters (openpyxl refuses the whole file):
    each becomes U+FFFD, and a data cell that lost one says so (a CSV keeps them)."""
    for position, value in enumerate(line):
        if isinstance(value, str) and CONTROL_CHARACTERS.search(value):
            line[position] = CONTROL_CHARACTERS.sub(REPLACEMENT, value)
            if position >= len(LEAD):
                marks.setdefault(position, []).append(CONTROL_REASON)


def _with_marks(rows: Iterator[list[str]], marks: Any) -> Iterator[tuple[list[Any], Marks]]:
    for row, text in zip(rows, marks, strict=True):
        line: list[Any] = [int(row[0]), *row[1:]]
        found = {int(position): reasons for position, reasons in json.loads(text)}
        _replace_control_characters(line, found)
        yield line, found


class _Style:
    """How a workbook marks what to fix.

    A marked cell gets a solid light red fill (Excel's own "Bad" colour; the autofilter of
    Excel and of LibreOffice can filter by it) and a medium dark red border: a solid fill keeps
    the value easy to read where a hatch pattern would cross it, and the border is what
    still shows when the sheet is printed in black and white, where the fill fades to a
    pale grey. Its reasons are its comment.
    """

    FIX, ERRORS, ERRORS_FIX = "payor: fix", "payor: errors", "payor: errors, fix"
    """Named styles, one per look: set by name, a cell costs one style lookup in openpyxl
    instead of one per attribute (measured: a fifth of the time of writing a large sheet)."""

    def __init__(self, book: Any) -> None:
        from openpyxl.styles import Alignment, Border, NamedStyle, PatternFill, Side  # noqa: PLC0415 - openpyxl loads only for .xlsx output

        side = Side(style="medium", color="FF9C0006")
        fill = PatternFill(fill_type="solid", fgColor="FFFFC7CE", bgColor="FFFFC7CE")
        border = Border(left=side, right=side, top=side, bottom=side)
        wrap = Alignment(wrap_text=True, vertical="top")
        book.add_named_style(NamedStyle(self.FIX, fill=fill, border=border))
        book.add_named_style(NamedStyle(self.ERRORS, alignment=wrap))
        book.add_named_style(NamedStyle(self.ERRORS_FIX, fill=fill, border=border, alignment=wrap))
        self.comments = 0

    def cells(self, sheet: Any, line: list[Any], marks: Marks) -> list[Any]:
        from openpyxl.cell import WriteOnlyCell  # noqa: PLC0415 - openpyxl loads only for .xlsx output

        cells = []
        for position, value in enumerate(line):
            reasons = marks.get(position)
            if position != 1 and reasons is None and not _is_formula_like(value):
                cells.append(value)  # a plain value costs less than a cell object
                continue
            cell = WriteOnlyCell(sheet, value)
            if _is_formula_like(value):
                cell.data_type = "s"  # a rejected cell stays the text it was, not a formula
            if position == 1:
                cell.style = self.ERRORS if reasons is None else self.ERRORS_FIX
            elif reasons is not None:
                cell.style = self.FIX
                self._comment(cell, reasons)
            cells.append(cell)
        return cells

    def _comment(self, cell: Any, reasons: list[str]) -> None:
        from openpyxl.comments import Comment  # noqa: PLC0415 - openpyxl loads only for .xlsx output

        if self.comments >= COMMENT_LIMIT:
            return
        self.comments += 1
        text = "\n".join(reasons)
        lines = sum(1 + len(reason) // 40 for reason in reasons)
        cell.comment = Comment(text, "payor", height=20 + 15 * lines, width=240)


def _is_formula_like(value: Any) -> bool:
    # openpyxl turns a text starting with "=" into a formula
    return isinstance(value, str) and value.startswith("=")
