"""The rejected-rows file: the refused rows as the source had them, ready to fix and upload again."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .readers import REJECTED_LEAD, Table
from .summary import RejectedRow

REJECTED_SUFFIXES = (".csv", ".xlsx")


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
        self._xlsx = path.suffix.lower() == ".xlsx"
        header = list(REJECTED_LEAD) + (list(table.headers) if table else [])
        if self._xlsx:
            import openpyxl

            self._book = openpyxl.Workbook(write_only=True)
            self._sheet = self._book.create_sheet(
                (table.sheet if table else None) or "Rejected rows"
            )
            self._sheet.append(header)
        else:
            encoding = (table.encoding if table else None) or "utf-8-sig"
            self._file = path.open("w", encoding=encoding, errors="replace", newline="")
            self._csv = csv.writer(
                self._file, delimiter=(table.delimiter if table else None) or ","
            )
            self._csv.writerow(header)
            self._file.flush()  # even a run killed at once leaves a file that says it is new

    def write(self, rows: list[RejectedRow]) -> None:
        for row in rows:
            line = [row.row, row.message, *row.cells]
            if self._xlsx:
                self._sheet.append([_xlsx_cell(self._sheet, v) for v in line])
            else:
                self._csv.writerow(line)
        self.count += len(rows)

    def close(self) -> None:
        if self._xlsx:
            self._book.save(self.path)
        else:
            self._file.close()


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    # openpyxl turns a text starting with "=" into a formula; a rejected cell stays the text it was
    if isinstance(value, str) and value.startswith("="):
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(sheet, value)
        cell.data_type = "s"
        return cell
    return value
