"""The header row, found by the shape of the table: the first row the rows below it settle on."""

from __future__ import annotations

_WINDOW = 10
"""Rows below a candidate header that show whether the table settles under it."""
_SETTLED = 0.6
"""The share of those rows that must be rows of the candidate's table."""


def filled(row: list[str]) -> list[int]:
    """The positions of a row's non-empty cells."""
    return [i for i, cell in enumerate(row) if cell and cell.strip()]


def _table_width(rows: list[list[str]]) -> int:
    """How many cells a full row of the table has: the second widest row (one may be a stray)."""
    widths = sorted((len(filled(row)) for row in rows), reverse=True)
    return widths[1] if len(widths) > 1 else (widths[0] if widths else 0)


def _belongs(row: list[str], header: list[int]) -> bool:
    """Whether a row is one of the table's under this header: two of its columns filled (a
    total row fills few), and no cell far right of the header (a wider row is another table)."""
    cells = filled(row)
    columns = set(header)
    covered = sum(1 for i in cells if i in columns)
    return covered >= min(2, len(header)) and cells[-1] <= header[-1] + 1


def _settles(rows: list[list[str]], at: int) -> bool:
    """Whether most of the non-empty rows below `at` are rows of a table with that header."""
    header = filled(rows[at])
    below = [row for row in rows[at + 1 :] if filled(row)][:_WINDOW]
    if not below:
        return True
    return sum(1 for row in below if _belongs(row, header)) >= _SETTLED * len(below)


def header_index(rows: list[list[str]]) -> int | None:
    """The index of the header row in `rows`, or None when no row heads a table.

    The header is the first row of two cells or more that is about as wide as the table below
    it and under which the rows settle into its columns: title blocks, blank rows and merged
    titles above it are narrower. Its words do not matter: labels may be years, `#` or `%`,
    and a data row holding a field-like word ("Number") does not outrank it.
    """
    first = None
    for at, row in enumerate(rows):
        width = len(filled(row))
        if width < 2:
            continue
        first = at if first is None else first
        below = [r for r in rows[at + 1 :] if filled(r)][:_WINDOW]
        if below and width >= 0.8 * _table_width(below) and _settles(rows, at):
            return at
    return first  # a header with no rows below it, or rows that never settle


def holds_table(rows: list[list[str]]) -> bool:
    """Whether the rows hold a table: a header row with at least one row of data under it."""
    at = header_index(rows)
    return at is not None and any(filled(row) for row in rows[at + 1 :])
