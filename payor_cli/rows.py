"""A row as every stage sees it: a chunk of text cells, why a row is refused, a refused row."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa


class MalformedRow(str):
    """Why a row's shape is wrong, carrying the row's cells beyond the header's width.

    A str, so that code which only moves the reasons around (splitting and joining chunks)
    carries the cells along without knowing of them.
    """

    extra: list[str]

    def __new__(cls, reason: str, extra: list[str] | None = None) -> MalformedRow:
        made = super().__new__(cls, reason)
        made.extra = list(extra or [])
        return made


@dataclass
class Chunk:
    """Consecutive data rows of the source: every cell as text, one array per source column."""

    columns: list[pa.Array]
    first_row: int
    """The sheet row number (1-based, header row counted) of the chunk's first row."""
    date_cells: list[pa.Array | None] = field(default_factory=list)
    """Per column, which cells were real date cells (Excel); None where there were none."""
    malformed: dict[int, str] = field(default_factory=dict)
    """Row offset in the chunk -> why the row's shape is wrong (more cells than headers); a
    MalformedRow, whose `extra` holds the cells beyond the header."""
    prior_errors: pa.Array | None = None
    """In payor's own rejected-rows file: each row's `errors` cell from the run that wrote it."""

    @property
    def num_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0


@dataclass(frozen=True)
class RowError:
    """One reason a row was refused, with its coordinates."""

    row: int
    field: str | None
    column: str | None
    kind: str
    text: str
    value: str | None = None

    def message(self) -> str:
        where = self.field or "row"
        if self.column:
            where += f' (column "{self.column}")'
        shown = f'"{self.value}" ' if self.value not in (None, "") else ""
        return f"{where}: {shown}{self.text}"

    @property
    def reason(self) -> str:
        """The row-independent part, for grouping: 'invoiceAmount is not a number'."""
        text = GROUP_TEXTS.get(self.kind, self.text)
        return f"{self.field} {text}" if self.field else text


# Kinds whose row text names another row: the group says what they share.
GROUP_TEXTS = {
    "duplicate_key": "repeats the key of an earlier row",
    "customer_rejected": "belongs to a customer that was rejected",
    "record_rejected": "belongs to a record refused whole for another of its rows",
    "record_differs": "differs between the rows of one record",
}


@dataclass
class RejectedRow:
    row: int
    errors: list[RowError]
    cells: list[str]
    link: str | None = None
    """The value that rows of a child kind point to (a customer's customerno)."""
    extra: list[str] = field(default_factory=list)
    """Cells beyond the header's width, kept so that fixing the row loses nothing."""

    @property
    def message(self) -> str:
        return "; ".join(e.message() for e in self.errors)
