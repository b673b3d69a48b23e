"""A chunk of cells -> the payloads of its valid rows, its rejected rows with reasons, its skips."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from payor_cli import values
from payor_cli.check import records, totals
from payor_cli.check.binding import BoundMapping, required_of
from payor_cli.check.convert import Cells, FieldConverter, field_errors
from payor_cli.check.keys import KEY_SEPARATOR, KeyChecks, email_keys, fold_email
from payor_cli.check.payloads import Payloads
from payor_cli.contract import Target
from payor_cli.fingerprint import payload_fingerprints
from payor_cli.rows import Chunk, RejectedRow, RowError
from payor_cli.schema import FieldType


@dataclass
class ValidatedChunk:
    """One chunk after validation; the arrays describe its valid rows in file order."""

    chunk: Chunk
    rows_read: int
    rows_skipped: int
    offsets: np.ndarray
    payloads: pa.Array
    keys: list[str]
    parents: list[str] | None
    rejected: list[RejectedRow]
    rows_merged: int = 0
    sizes: np.ndarray | None = None
    """Rows of each valid record, where records span rows (None: one row each)."""
    members: list[list[int]] | None = None
    """The row offsets of each valid record, where records span rows."""
    links: list[str] | None = None
    amounts: pa.Array | None = None
    currencies: pa.Array | None = None
    read_amounts: tuple[pa.Array, pa.Array] | None = None
    rejected_amounts: tuple[pa.Array, pa.Array] | None = None
    amount_extras: list[tuple[str, Decimal, str | None]] = field(default_factory=list)
    """(stage, amount in Totals units, currency) of rows whose amount the arrays cannot hold
    (more decimals or digits than they have): refused rows, still in the totals."""

    @property
    def rows(self) -> np.ndarray:
        return self.offsets + self.chunk.first_row

    @cached_property
    def fingerprints(self) -> np.ndarray:
        """The journal's 64-bit fingerprint of each payload: computed when a real run asks."""
        return payload_fingerprints(self.payloads)

    @property
    def rows_valid(self) -> int:
        """Valid rows: a record of several rows counts each of them."""
        return int(self.sizes.sum()) if self.sizes is not None else len(self.payloads)

    def add_amounts(
        self,
        amounts: pa.Array,
        currencies: pa.Array | None,
        counted_np: np.ndarray,
        rejected_np: np.ndarray,
        extras: dict[int, Decimal],
    ) -> None:
        """Control totals' inputs: a merged row repeats a record already counted, so it adds
        nothing to what was read."""
        if currencies is None:
            currencies = pa.nulls(len(amounts), pa.string())
        every_row = len(self.offsets) == len(amounts)
        where = pa.array(self.offsets)
        self.amounts = amounts if every_row else pc.take(amounts, where)
        self.currencies = currencies if every_row else pc.take(currencies, where)
        counted = pa.array(counted_np)
        self.read_amounts = (pc.filter(amounts, counted), pc.filter(currencies, counted))
        refused = pa.array(rejected_np)
        self.rejected_amounts = (pc.filter(amounts, refused), pc.filter(currencies, refused))
        for offset, amount in extras.items():
            currency = currencies[offset].as_py()
            if counted_np[offset]:
                self.amount_extras.append(("read", amount, currency))
            if rejected_np[offset]:
                self.amount_extras.append(("rejected", amount, currency))


class Validator:
    """Validates the chunks of one file in order (it remembers keys to find repeats)."""

    def __init__(
        self,
        bound: BoundMapping,
        target: Target,
        held_back: dict[str, str] | None = None,
    ) -> None:
        self.target = target
        self.bound = bound
        self._bound_by_name = {b.spec.field: b for b in bound.fields}
        self.kind = bound.mapping.kind
        self.keys = KeyChecks(" + ".join(bound.mapping.key))
        self.held_back = held_back or {}
        self.parent_field = self.kind.parent[1] if self.kind.parent else None
        self.link_field = target.linked_field(self.kind)
        self.amount_field = target.amount_field
        self.currency_field = target.currency_field
        self.missing_of = {
            index: b.spec.missing
            for b in required_of(bound.mapping, bound.fields, bound.lines)
            if b.spec.missing
            for index in b.columns
        }
        self.converter = FieldConverter(bound)
        self.payloads = Payloads(bound, target, self.converter.factors)
        self._amount = self._bound_by_name.get(self.amount_field)

    def __call__(self, chunk: Chunk) -> ValidatedChunk:
        """The next chunk of the file, validated (its real date cells are known first)."""
        self.converter.date_cells = chunk.date_cells or None
        return self.validate(chunk)

    def validate(self, chunk: Chunk) -> ValidatedChunk:
        """A chunk's rows -> the payloads of its valid rows or records, its refused rows with
        their reasons, its skips and the inputs of the control totals."""
        n = chunk.num_rows
        column = _trimmed_columns(chunk)
        active_np = pc.invert(self._skipped(chunk, column, n)).to_numpy(zero_copy_only=False)
        errors: dict[int, list[RowError]] = {}
        literals, plain, lines = self._converted(chunk, column, n, active_np, errors)
        key_plain = self._row_keys(plain)
        groups = None
        amounts, extras = totals.amounts_read(plain, literals, self._amount)
        if self.bound.mapping.groups_rows:
            extras = {}  # a record's amount is made from its rows (see Payloads.of_records)
            groups = records.adjacent(key_plain.to_pylist(), active_np)
            payloads, amounts = self.payloads.of_records(chunk, groups, literals, lines, errors)
            heads = groups.heads
        else:
            payloads = self.payloads.of_rows(literals)
            heads = active_np
        merged, row_prints = self.keys.check(chunk, heads, key_plain, payloads, errors)
        parents = plain.get(self.parent_field) if self.parent_field else None
        if self.held_back and parents is not None:
            self._held_back_errors(chunk, heads & ~merged, parents, errors)
        sizes = None
        if groups is not None:
            records.spread(groups, chunk.first_row, errors)
            sizes = groups.sizes()
        rejected_np = np.zeros(n, dtype=bool)
        rejected_np[list(errors)] = True
        offsets = np.flatnonzero(heads & ~rejected_np & ~merged)
        links = plain.get(self.link_field) if self.link_field else None
        take = _taker(offsets, n)
        result = ValidatedChunk(
            chunk,
            n,
            int(n - active_np.sum()),
            offsets,
            take(payloads),
            take(key_plain).to_pylist(),
            take(parents).to_pylist() if parents is not None else None,
            self._rejected_rows(chunk, errors, links),
            int(sizes[merged].sum()) if sizes is not None else int(merged.sum()),
        )
        result.fingerprints = row_prints[offsets]  # a valid row's print is the key check's
        if groups is not None and sizes is not None:
            result.sizes = sizes[offsets]
            result.members = [groups.members[int(groups.of_row[o])] for o in offsets.tolist()]
        if links is not None:
            result.links = take(links).to_pylist()
        if amounts is not None:
            currencies = totals.row_currencies(
                plain, self.currency_field, column, self.bound.currency_index
            )
            refused = rejected_np & heads if groups is not None else rejected_np
            result.add_amounts(amounts, currencies, heads & ~merged, refused, extras)
        return result

    def _converted(
        self,
        chunk: Chunk,
        column: Cells,
        n: int,
        active_np: np.ndarray,
        errors: dict[int, list[RowError]],
    ) -> tuple[dict[str, values.Converted], dict[str, pa.Array], dict[str, values.Converted]]:
        """Every mapped field converted (record fields, their plain texts, line fields), and
        the errors of the rows that count: faults, the target's own rules, malformed rows."""
        literals: dict[str, values.Converted] = {}
        plain: dict[str, pa.Array] = {}
        for bound_field in self.bound.fields:
            converted, source = self.converter.convert(bound_field, column, n)
            literals[bound_field.spec.field] = converted
            plain[bound_field.spec.field] = source
            field_errors(chunk, bound_field, converted, source, active_np, errors)
        lines: dict[str, values.Converted] = {}
        for bound_field in self.bound.lines or []:
            converted, source = self.converter.convert(bound_field, column, n, line=True)
            lines[bound_field.spec.field] = converted
            field_errors(chunk, bound_field, converted, source, active_np, errors)
        for field_name, fault in self.target.rules(self.kind, literals, lines):
            bound_field = self._bound_by_name.get(field_name) or next(
                b for b in self.bound.lines or [] if b.spec.field == field_name
            )
            source = (literals | lines)[field_name].json
            holder = values.Converted(source, [fault])
            field_errors(chunk, bound_field, holder, source, active_np, errors)
        for offset, problem in chunk.malformed.items():
            if active_np[offset]:
                errors.setdefault(offset, []).append(
                    RowError(chunk.first_row + offset, None, None, "malformed_row", problem)
                )
        return literals, plain, lines

    def _row_keys(self, plain: dict[str, pa.Array]) -> pa.Array:
        """Each row's key text: its key fields' texts joined."""
        # e-mail addresses are one key whatever their case and Unicode form, as the server
        # compares them (targets that key by e-mail)
        parts = [
            email_keys(plain[k]) if self.kind.field(k).type is FieldType.EMAIL else plain[k]
            for k in self.bound.mapping.key
        ]
        if len(parts) == 1:
            return parts[0]
        return pc.binary_join_element_wise(*parts, KEY_SEPARATOR, null_handling="emit_null")

    def _rejected_rows(
        self, chunk: Chunk, errors: dict[int, list[RowError]], links: pa.Array | None
    ) -> list[RejectedRow]:
        """The refused rows in file order, each with its errors, cells and link."""
        refused = sorted(errors)
        link_values = (
            pc.take(links, pa.array(refused, pa.int64())).to_pylist()
            if links is not None
            else [None] * len(refused)
        )
        return [
            RejectedRow(
                chunk.first_row + offset,
                errors[offset],
                cells,
                link,
                # the cells beyond the header go to the rejected-rows file: fixing loses nothing
                list(getattr(chunk.malformed.get(offset), "extra", [])),
            )
            for offset, cells, link in zip(
                refused, _rows_of(chunk, refused), link_values, strict=True
            )
        ]

    def _held_back_errors(
        self,
        chunk: Chunk,
        candidates: np.ndarray,
        parents: pa.Array,
        errors: dict[int, list[RowError]],
    ) -> None:
        """Refuse the rows whose parent (a customer) was rejected, with its reason."""
        for offset in np.flatnonzero(candidates).tolist():
            parent = parents[offset].as_py()
            reason = self.held_back.get(parent) or self.held_back.get(fold_email(str(parent)))
            if reason is not None:
                errors.setdefault(offset, []).append(
                    RowError(
                        chunk.first_row + offset,
                        self.parent_field,
                        None,
                        "customer_rejected",
                        reason,
                        parents[offset].as_py(),
                    )
                )

    def _skipped(self, chunk: Chunk, column, n: int) -> pa.Array:
        """Report furniture: rows with every required column empty (or blank), and skip rules."""
        required = self.bound.required_columns or list(range(len(chunk.columns)))
        skipped = pa.array(np.ones(n, dtype=bool))
        for index in required:
            cells = values.blank_missing(column(index), self.missing_of.get(index, ()))
            skipped = pc.and_(skipped, pc.is_null(cells))
        for index, pattern, _ in self.bound.skip:
            targets = [index] if index >= 0 else list(range(len(chunk.columns)))
            for target in targets:
                hit = _regex_match(column(target), pattern)
                skipped = pc.or_(skipped, pc.fill_null(hit, False))
        return skipped


def _trimmed_columns(chunk: Chunk) -> Cells:
    """The chunk's columns by index, trimmed and empty as null, each made once when asked."""
    cells: dict[int, pa.Array] = {}

    def column(index: int) -> pa.Array:
        if index not in cells:
            cells[index] = values.empty_to_null(chunk.columns[index])
        return cells[index]

    return column


def _taker(offsets: np.ndarray, n: int) -> Callable[[pa.Array], pa.Array]:
    """Picks the valid rows' values out of a chunk's array."""
    every_row = len(offsets) == n

    def take(values: pa.Array) -> pa.Array:
        # the usual chunk has no refused or skipped row: then there is nothing to pick
        return values if every_row else pc.take(values, pa.array(offsets))

    return take


def _rows_of(chunk: Chunk, offsets: list[int]) -> list[list[str]]:
    """The source cells of some rows, as lists (one take per column, not a lookup per cell)."""
    if not offsets:
        return []
    where = pa.array(offsets, pa.int64())
    columns = [column.take(where).to_pylist() for column in chunk.columns]
    return [list(cells) for cells in zip(*columns, strict=True)]


def _regex_match(cells: pa.Array, pattern: str) -> pa.Array:
    """re.search semantics; RE2 in Arrow when it knows the syntax, Python's re otherwise."""
    try:
        return pc.match_substring_regex(cells, pattern)
    except pa.ArrowInvalid:
        compiled = re.compile(pattern)
        hits = values.by_unique(cells, lambda v: "1" if compiled.search(v) else None)
        return pc.is_valid(hits)
