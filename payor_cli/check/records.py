"""Rows -> records, where one record spans several rows: an invoice and its lines, or an
invoice whose amount is a sum over its line rows.

The rows of one record are adjacent rows with the same key. They must agree on every record
field; each gives one line (or one term of the sum). A record with any bad row is rejected
whole, every row of it named: an invoice never goes out without one of its lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from payor_cli.rows import Chunk, RowError


def whole_records(chunks: Iterator[Chunk], key_columns: list[int]) -> Iterator[Chunk]:
    """The chunks, cut again so that no record's rows are split between two chunks: the rows
    of a chunk's last key wait for the next chunk."""
    waiting: Chunk | None = None
    for chunk in chunks:
        if waiting is not None:
            chunk = _joined(waiting, chunk)
        cut = _last_record_start(chunk, key_columns)
        if cut == 0:
            waiting = chunk  # one record so far: it may go on in the next chunk
            continue
        head, waiting = _split(chunk, cut)
        yield head
    if waiting is not None:
        yield waiting


def _key_cells(chunk: Chunk, key_columns: list[int], start: int) -> list[tuple]:
    columns = [
        pc.utf8_trim_whitespace(chunk.columns[i].slice(start)).to_pylist() for i in key_columns
    ]
    return list(zip(*columns, strict=True)) if columns else []


def _last_record_start(chunk: Chunk, key_columns: list[int]) -> int:
    n = chunk.num_rows
    if n == 0 or not key_columns:
        return n
    look = max(0, n - 1000)  # the last record is short: look at the tail first
    while True:
        keys = _key_cells(chunk, key_columns, look)
        last = keys[-1]
        position = len(keys) - 1
        while position > 0 and keys[position - 1] == last:
            position -= 1
        if position > 0 or look == 0:
            return look + position
        look = max(0, look - 10_000)


def _split(chunk: Chunk, cut: int) -> tuple[Chunk, Chunk]:
    def part(start: int, stop: int | None) -> Chunk:
        length = (stop if stop is not None else chunk.num_rows) - start
        return Chunk(
            [c.slice(start, length) for c in chunk.columns],
            chunk.first_row + start,
            [d.slice(start, length) if d is not None else None for d in chunk.date_cells],
            {o - start: m for o, m in chunk.malformed.items() if start <= o < start + length},
            chunk.prior_errors.slice(start, length) if chunk.prior_errors is not None else None,
        )

    return part(0, cut), part(cut, None)


def _joined(first: Chunk, second: Chunk) -> Chunk:
    def both(a: pa.Array | None, b: pa.Array | None, n_a: int, n_b: int) -> pa.Array | None:
        if a is None and b is None:
            return None
        a = a if a is not None else pa.array([False] * n_a)
        b = b if b is not None else pa.array([False] * n_b)
        return pa.concat_arrays([a, b])

    n = first.num_rows
    dates = []
    width = max(len(first.date_cells), len(second.date_cells))
    for i in range(width):
        a = first.date_cells[i] if i < len(first.date_cells) else None
        b = second.date_cells[i] if i < len(second.date_cells) else None
        dates.append(both(a, b, n, second.num_rows))
    return Chunk(
        [pa.concat_arrays([a, b]) for a, b in zip(first.columns, second.columns, strict=True)],
        first.first_row,
        dates,
        first.malformed | {o + n: m for o, m in second.malformed.items()},
        both(first.prior_errors, second.prior_errors, n, second.num_rows)
        if first.prior_errors is not None or second.prior_errors is not None
        else None,
    )


@dataclass
class Groups:
    """The records of a chunk: for each active row its record's number (-1: none)."""

    of_row: np.ndarray
    starts: list[int] = field(default_factory=list)
    """Each record's first row (its offset in the chunk)."""
    members: list[list[int]] = field(default_factory=list)

    @property
    def heads(self) -> np.ndarray:
        mask = np.zeros(len(self.of_row), dtype=bool)
        mask[self.starts] = True
        return mask

    def sizes(self) -> np.ndarray:
        sizes = np.zeros(len(self.of_row), dtype=np.int64)
        sizes[self.starts] = [len(m) for m in self.members]
        return sizes


def adjacent(keys: list[str | None], active: np.ndarray) -> Groups:
    """Adjacent active rows with the same key form a record; skipped rows between them do
    not end it; a row without a key is a record of its own."""
    groups = Groups(np.full(len(keys), -1, np.int64))
    previous: str | None = None
    for offset in np.flatnonzero(active).tolist():
        key = keys[offset]
        if key is None or key != previous or not groups.members:
            groups.starts.append(offset)
            groups.members.append([offset])
        else:
            groups.members[-1].append(offset)
        groups.of_row[offset] = len(groups.members) - 1
        previous = key
    return groups


def differing(
    groups: Groups,
    record_json: list[str | None],
    field_literals: dict[str, list[str | None]],
    first_row: int,
    errors: dict[int, list[RowError]],
) -> None:
    """Records whose rows disagree on a record field: every row refused, naming rows and
    fields."""
    for members in groups.members:
        if len(members) < 2 or len({record_json[m] for m in members}) == 1:
            continue
        names = [
            name
            for name, literals in field_literals.items()
            if len({literals[m] for m in members}) > 1
        ]
        rows = ", ".join(str(first_row + m) for m in members)
        text = (
            f"the rows of one record ({rows}) differ in {', '.join(names)}: they must agree on "
            "every field but the lines'"
        )
        for m in members:
            errors.setdefault(m, []).append(
                RowError(first_row + m, ", ".join(names), None, "record_differs", text)
            )


RECORD_FAULTS = {"duplicate_key", "customer_rejected", "not_whole", "record_differs"}
"""Faults of the record, not of one row: every row of it carries them."""


def spread(groups: Groups, first_row: int, errors: dict[int, list[RowError]]) -> None:
    """A record with one bad row is refused whole: its other rows say why."""
    touched = {int(groups.of_row[o]) for o in errors if groups.of_row[o] >= 0}
    for number in touched:
        members = groups.members[number]
        bad = [first_row + m for m in members if m in errors]
        head = errors.get(members[0], [])
        of_record = [e for e in head if e.kind in RECORD_FAULTS]
        for m in members:
            if m not in errors and of_record and len(of_record) == len(head):
                errors[m] = [replace(e, row=first_row + m) for e in of_record]
            elif m not in errors:
                rows = ", ".join(map(str, bad[:10]))
                errors[m] = [
                    RowError(
                        first_row + m,
                        None,
                        None,
                        "record_rejected",
                        f"its record is refused whole: row{'s' if len(bad) > 1 else ''} {rows} "
                        "of it could not be sent",
                    )
                ]


def summed(
    groups: Groups,
    parts: list[Decimal | None],
    factors: list[Decimal | None] | None,
) -> list[Decimal | None]:
    """Per record, the exact sum of its rows' parts (times their factors), or None when a
    part is missing."""
    totals: list[Decimal | None] = []
    for members in groups.members:
        total = Decimal(0)
        for m in members:
            part = parts[m]
            factor = factors[m] if factors is not None else Decimal(1)
            if part is None or factor is None:
                total = None
                break
            total += part * factor
        totals.append(total)
    return totals
