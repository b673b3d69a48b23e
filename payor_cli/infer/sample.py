"""The first data rows below the header, as trimmed texts per column, and their value shapes."""

from __future__ import annotations

import json
from dataclasses import dataclass

from payor_cli import read as readers
from payor_cli.read import Table

SAMPLE_ROWS = 5000
"""Data rows whose values decide formats, separators, scale and furniture rules."""


@dataclass
class Sample:
    """The first data rows below the header: trimmed texts (None = empty) per column."""

    table: Table
    columns: list[list[str | None]]
    date_cells: list[list[bool] | None]
    first_row: int
    chunk: readers.Chunk | None

    @property
    def rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    @classmethod
    def read(cls, table: Table, limit: int) -> Sample:
        width = len(table.headers)
        chunks = table.chunks()
        chunk = None
        try:
            chunk = next(chunks, None)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        if chunk is None:
            return cls(
                table, [[] for _ in range(width)], [None] * width, table.header_row + 1, None
            )
        n = min(chunk.num_rows, limit)
        chunk = readers.Chunk(
            [c.slice(0, n) for c in chunk.columns],
            chunk.first_row,
            [d.slice(0, n) if d is not None else None for d in chunk.date_cells],
            {k: v for k, v in chunk.malformed.items() if k < n},
        )
        columns = []
        for column in chunk.columns:
            columns.append(
                [(v.strip() or None) if v is not None else None for v in column.to_pylist()]
            )
        dates: list[list[bool] | None] = []
        for index in range(width):
            mask = chunk.date_cells[index] if index < len(chunk.date_cells) else None
            dates.append([bool(x) for x in mask.to_pylist()] if mask is not None else None)
        return cls(table, columns, dates, chunk.first_row, chunk)

    def texts(self, index: int, rows: list[int]) -> list[str]:
        """The non-empty text cells (not real date cells) of a column in the given rows."""
        column = self.columns[index]
        mask = self.date_cells[index]
        return [
            column[r] for r in rows if column[r] is not None and not (mask is not None and mask[r])
        ]

    def date_cell_count(self, index: int, rows: list[int]) -> int:
        """How many of the given rows hold a real date cell (a workbook's) in the column."""
        mask = self.date_cells[index]
        return 0 if mask is None else sum(1 for r in rows if mask[r])


def is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def are_names(texts: list[str]) -> bool:
    """Whether most values read as names, not codes."""
    # "Bright Dental", "1042 Bright Dental" read as names; "0379-NEVHP", "010001" do not
    names = sum(1 for t in texts if " " in t or any(ch.islower() for ch in t))
    return bool(texts) and names >= 0.5 * len(texts)
