"""The rejected-rows file: the refused rows as the source had them, ready to fix and upload again.

Both formats lead with `source_row` and `errors`, then the source's columns. In a workbook each cell that caused a
rejection is marked and carries its reasons as a comment.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .readers import REJECTED_LEAD, Table
from .summary import RejectedRow, RowError

REJECTED_SUFFIXES = (".csv", ".xlsx")
COMMENT_LIMIT = 5_000
"""Comments per workbook. openpyxl holds every comment until it saves (about 6 kB each), so
past this many the cells are still marked, and the `errors` column still says why."""
ERRORS_WIDTH = 60
"""The `errors` column's width in characters; its text wraps within it."""
SHEET_NAME = "Rejected rows"

Marks = dict[int, list[str]]
"""Line position -> the reasons that cell caused; position 1 (`errors`) is the row's own."""


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
    its first two columns, so the fixed file uploads with the very same mapping.
    """

    def __init__(self, path: Path, table: Table | None = None) -> None:
        check_rejected_path(path)
        self.path = path
        self.count = 0
        headers = list(table.headers) if table else []
        self._width = len(REJECTED_LEAD) + len(headers)
        # a header named twice: its first column is the one the mapping binds
        self._positions: dict[str, int] = {}
        for position, header in enumerate(headers, start=len(REJECTED_LEAD)):
            self._positions.setdefault(header, position)
        header = list(REJECTED_LEAD) + headers
        self._out: _CsvOut | _XlsxOut
        if path.suffix.lower() == ".xlsx":
            self._out = _XlsxOut(path, header, (table.sheet if table else None) or SHEET_NAME)
        else:
            encoding = (table.encoding if table else None) or "utf-8-sig"
            delimiter = (table.delimiter if table else None) or ","
            self._out = _CsvOut(path, header, encoding, delimiter)

    def write(self, rows: list[RejectedRow]) -> None:
        lines = []
        for row in rows:
            cells = list(row.cells) + [""] * (self._width - len(REJECTED_LEAD) - len(row.cells))
            lines.append(([row.row, row.message, *cells], self._marks(row)))
        self._out.write(lines)
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


def _reason(error: RowError) -> str:
    return f"{error.field} {error.text}" if error.field else error.text


class _CsvOut:
    def __init__(self, path: Path, header: list[str], encoding: str, delimiter: str) -> None:
        self._file = path.open("w", encoding=encoding, errors="replace", newline="")
        self._csv = csv.writer(self._file, delimiter=delimiter)
        self._csv.writerow(header)
        self._file.flush()  # even a run killed at once leaves a file that says it is new

    def write(self, lines: list[tuple[list[Any], Marks]]) -> None:
        self._csv.writerows(line for line, _ in lines)

    def close(self) -> None:
        self._file.close()


class _XlsxOut:
    """A workbook, its rows streamed by openpyxl (memory stays flat), saved at `close`."""

    def __init__(self, path: Path, header: list[str], sheet: str) -> None:
        import openpyxl

        self.path, self._width, self._rows = path, len(header), 0
        self._book = openpyxl.Workbook(write_only=True)
        self._sheet = self._book.create_sheet(sheet)
        # sheet views and column widths precede the rows in the file: set before any row
        self._sheet.freeze_panes = "A2"
        self._sheet.column_dimensions["B"].width = ERRORS_WIDTH
        self._sheet.append(header)
        self._style = _Style()

    def write(self, lines: list[tuple[list[Any], Marks]]) -> None:
        for line, marks in lines:
            self._sheet.append(self._style.cells(self._sheet, line, marks))
        self._rows += len(lines)

    def close(self) -> None:
        from openpyxl.utils import get_column_letter

        # the filter follows the rows in the file, so it can span them all
        self._sheet.auto_filter.ref = f"A1:{get_column_letter(self._width)}{self._rows + 1}"
        self._book.save(self.path)


class _Style:
    """How a workbook marks what to fix.

    A marked cell gets a solid light red fill (Excel's own "Bad" colour, which Excel and
    LibreOffice can filter and sort by) and a medium dark red border: a solid fill keeps
    the value easy to read where a hatch pattern would cross it, and the border is what
    still shows when the sheet is printed in black and white, where the fill fades to a
    pale grey. Its reasons are its comment.
    """

    def __init__(self) -> None:
        from openpyxl.styles import Alignment, Border, PatternFill, Side

        side = Side(style="medium", color="FF9C0006")
        self.fill = PatternFill(fill_type="solid", fgColor="FFFFC7CE", bgColor="FFFFC7CE")
        self.border = Border(left=side, right=side, top=side, bottom=side)
        self.wrap = Alignment(wrap_text=True, vertical="top")
        self.comments = 0

    def cells(self, sheet: Any, line: list[Any], marks: Marks) -> list[Any]:
        from openpyxl.cell import WriteOnlyCell

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
                cell.alignment = self.wrap
            if reasons is not None:
                cell.fill, cell.border = self.fill, self.border
                if position != 1:
                    self._comment(cell, reasons)
            cells.append(cell)
        return cells

    def _comment(self, cell: Any, reasons: list[str]) -> None:
        from openpyxl.comments import Comment

        if self.comments >= COMMENT_LIMIT:
            return
        self.comments += 1
        text = "\n".join(reasons)
        lines = sum(1 + len(reason) // 40 for reason in reasons)
        cell.comment = Comment(text, "payor", height=20 + 15 * lines, width=240)


def _is_formula_like(value: Any) -> bool:
    # openpyxl turns a text starting with "=" into a formula
    return isinstance(value, str) and value.startswith("=")
