"""A chunk of cells -> the payloads of its valid rows, its rejected rows with reasons, its skips."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from payor_cli import numbers, values
from payor_cli.check import records
from payor_cli.check.binding import BoundField, BoundMapping, required_of
from payor_cli.check.keys import KEY_SEPARATOR, KeyChecks, email_keys, fold_email
from payor_cli.contract import Target
from payor_cli.fingerprint import payload_fingerprints
from payor_cli.rows import Chunk, RejectedRow, RowError
from payor_cli.schema import FieldType
from payor_cli.summary import Totals


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
        self._factors: dict[str, list[Decimal | None]] = {}
        self.kind = bound.mapping.kind
        self.keys = KeyChecks(" + ".join(bound.mapping.key))
        self.held_back = held_back or {}
        self.parent_field = self.kind.parent[1] if self.kind.parent else None
        self.link_field = target.linked_field(self.kind)
        self.amount_field = target.amount_field
        self.currency_field = target.currency_field
        self._extras: dict[int, Decimal] = {}
        self.missing_of = {
            index: b.spec.missing
            for b in required_of(bound.mapping, bound.fields, bound.lines)
            if b.spec.missing
            for index in b.columns
        }

    def validate(self, chunk: Chunk) -> ValidatedChunk:
        n = chunk.num_rows
        cells: dict[int, pa.Array] = {}

        def column(index: int) -> pa.Array:
            if index not in cells:
                cells[index] = values.empty_to_null(chunk.columns[index])
            return cells[index]

        active = pc.invert(self._skipped(chunk, column, n))
        active_np = active.to_numpy(zero_copy_only=False)
        literals: dict[str, values.Converted] = {}
        plain: dict[str, pa.Array] = {}
        errors: dict[int, list[RowError]] = {}
        for bound_field in self.bound.fields:
            converted, source = self._convert(bound_field, column, n)
            literals[bound_field.spec.field] = converted
            plain[bound_field.spec.field] = source
            self._field_errors(chunk, bound_field, converted, source, active_np, errors)
        lines: dict[str, values.Converted] = {}
        for bound_field in self.bound.lines or []:
            converted, source = self._convert(bound_field, column, n, line=True)
            lines[bound_field.spec.field] = converted
            self._field_errors(chunk, bound_field, converted, source, active_np, errors)
        for field_name, fault in self.target.rules(self.kind, literals, lines):
            bound_field = self._bound_by_name.get(field_name) or next(
                b for b in self.bound.lines or [] if b.spec.field == field_name
            )
            source = (literals | lines)[field_name].json
            holder = values.Converted(source, [fault])
            self._field_errors(chunk, bound_field, holder, source, active_np, errors)
        for offset, problem in chunk.malformed.items():
            if active_np[offset]:
                errors.setdefault(offset, []).append(
                    RowError(chunk.first_row + offset, None, None, "malformed_row", problem)
                )
        # e-mail addresses are one key whatever their case and Unicode form, as the server
        # compares them (targets that key by e-mail)
        key_plain = self._key_text(
            [
                email_keys(plain[k]) if self.kind.field(k).type is FieldType.EMAIL else plain[k]
                for k in self.bound.mapping.key
            ]
        )
        groups = None
        amounts, self._extras = self._amounts_read(plain, literals)
        if self.bound.mapping.groups_rows:
            self._extras = {}  # a record's amount is made from its rows (see _records)
            groups = records.adjacent(key_plain.to_pylist(), active_np)
            payloads, amounts = self._records(chunk, groups, literals, lines, errors)
            heads = groups.heads
        else:
            payloads = self._payloads(literals)
            heads = active_np
        merged, row_prints = self.keys.check(chunk, heads, key_plain, payloads, errors)
        parents = plain.get(self.parent_field) if self.parent_field else None
        if self.held_back and parents is not None:
            self._held_back_errors(chunk, heads & ~merged, parents, errors)
        sizes = None
        if groups is not None:
            records.spread(groups, chunk.first_row, errors)
            sizes = groups.sizes()
            merged_rows = int(sizes[merged].sum())
        else:
            merged_rows = int(merged.sum())

        rejected_np = np.zeros(n, dtype=bool)
        rejected_np[list(errors)] = True
        valid_np = heads & ~rejected_np & ~merged
        offsets = np.flatnonzero(valid_np)
        every_row = len(offsets) == n

        def take(values: pa.Array) -> pa.Array:
            # the usual chunk has no refused or skipped row: then there is nothing to pick
            return values if every_row else pc.take(values, pa.array(offsets))

        valid_payloads = take(payloads)
        links = plain.get(self.link_field) if self.link_field else None
        refused = sorted(errors)
        link_values = (
            pc.take(links, pa.array(refused, pa.int64())).to_pylist()
            if links is not None
            else [None] * len(refused)
        )
        rejected = [
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
        result = ValidatedChunk(
            chunk,
            n,
            int(n - active_np.sum()),
            offsets,
            valid_payloads,
            take(key_plain).to_pylist(),
            take(parents).to_pylist() if parents is not None else None,
            rejected,
            merged_rows,
        )
        result.fingerprints = row_prints[offsets]  # a valid row's print is the key check's
        if groups is not None and sizes is not None:
            result.sizes = sizes[offsets]
            result.members = [groups.members[int(groups.of_row[o])] for o in offsets.tolist()]
        if links is not None:
            result.links = take(links).to_pylist()
        if amounts is not None:
            currencies = self._currencies(plain, column)
            counted = heads & ~merged
            refused = rejected_np & heads if groups is not None else rejected_np
            self._amounts(result, amounts, currencies, counted, refused, self._extras)
        return result

    def _currencies(self, plain: dict[str, pa.Array], column) -> pa.Array | None:
        """Each row's currency for the totals: the mapped currency field, else the column the
        mapping names for the report (`currency_column`); None: the file names none."""
        # "eur" and "EUR" are one currency (onlyoffice sends codes upper case)
        if self.currency_field and self.currency_field in plain:
            return pc.ascii_upper(plain[self.currency_field])
        if self.bound.currency_index is not None:
            return pc.ascii_upper(column(self.bound.currency_index))
        return None

    def _amounts_read(
        self, plain: dict[str, pa.Array], literals: dict[str, values.Converted]
    ) -> tuple[pa.Array | None, dict[int, Decimal]]:
        """The amount of each row as the file states it, exact (10**-6 units), for the control
        totals: also where the API's value could not be made (not whole after scale); an amount
        those units cannot hold (more decimals) is given apart, by row offset."""
        units = self._amount_units(plain, literals)
        if units is None or units.null_count == plain[self.amount_field].null_count:
            return units, {}
        spec = self._bound_by_name[self.amount_field].spec
        lost = pc.and_(pc.is_valid(plain[self.amount_field]), pc.is_null(units))
        offsets = np.flatnonzero(lost.to_numpy(zero_copy_only=False))
        cells = pc.take(plain[self.amount_field], pa.array(offsets, pa.int64()))
        stated = numbers.exact_numbers(cells, spec.decimal, spec.thousands)
        extras = {
            int(o): n * Totals.UNIT
            for o, n in zip(offsets.tolist(), stated, strict=True)
            if n is not None
        }
        return units, extras

    def _amount_units(
        self, plain: dict[str, pa.Array], literals: dict[str, values.Converted]
    ) -> pa.Array | None:
        bound_field = self._bound_by_name.get(self.amount_field)
        if bound_field is None or bound_field.spec.sum:
            return None  # a sum's amount is the record's, made in _records
        spec = bound_field.spec
        converted = literals[self.amount_field].integers
        scale = Decimal(100) if spec.type is FieldType.MONEY else spec.scale
        factor = Totals.UNIT / scale
        if converted is not None and factor == factor.to_integral_value():
            # the usual case: the API's integers, times a whole factor (cheap and exact)
            try:
                units = pc.multiply_checked(converted, pa.scalar(int(factor), pa.int64()))
            except pa.ArrowInvalid:  # beyond int64 millionths: the same product in decimals
                units = pc.multiply(
                    converted.cast(pa.decimal128(19, 0)),
                    pa.scalar(Decimal(int(factor)), pa.decimal128(7, 0)),
                )
            if (
                units is not None
                and units.null_count == converted.null_count == plain[self.amount_field].null_count
            ):
                return units
        return numbers.exact_decimal(
            plain[self.amount_field], spec.decimal, spec.thousands
        ).integers

    def _records(
        self,
        chunk: Chunk,
        groups: records.Groups,
        literals: dict[str, values.Converted],
        lines: dict[str, values.Converted],
        errors: dict[int, list[RowError]],
    ) -> tuple[pa.Array, pa.Array | None]:
        """Each record's payload at its first row, from its rows: the record fields (which
        must agree), and its lines or its sums; and each record's amount, for the totals."""
        kind = self.kind
        summed = {n: c for n, c in literals.items() if self._bound_by_name[n].spec.sum}
        kept = {
            n: c for n, c in literals.items() if n not in summed and n != kind.amount_without_lines
        }
        record_json = self._payloads(kept).to_pylist()
        field_literals = {n: c.literals().to_pylist() for n, c in kept.items()}
        records.differing(groups, record_json, field_literals, chunk.first_row, errors)
        extra: list[str] = ["" for _ in groups.members]
        amounts: list[Decimal | None] | None = None
        for name, converted in summed.items():
            bound_field = self._bound_by_name[name]
            scale = bound_field.spec.scale
            totals = records.summed(groups, _decimals(converted), self._factors.get(name))
            for number, total in enumerate(totals):
                whole = None if total is None else total * scale
                if whole is None or whole != whole.to_integral_value():
                    head = groups.starts[number]
                    if head not in errors and total is not None:
                        errors[head] = [
                            RowError(
                                chunk.first_row + head,
                                name,
                                bound_field.column_header,
                                "not_whole",
                                f"sums to {total.normalize():f}, not a whole number × {scale.normalize():f} "
                                "(nothing is rounded; check scale)",
                            )
                        ]
                    continue
                extra[number] += f',"{name}":{int(whole)}'
            if name == self.amount_field:
                amounts = [t * Totals.UNIT if t is not None else None for t in totals]
        if kind.lines:
            items, amounts = self._lines_of(groups, literals, lines)
            for number, line_json in enumerate(items):
                extra[number] += f',"{kind.lines_member}":[{line_json}]'
        payloads: list[str | None] = [None] * chunk.num_rows
        for number, head in enumerate(groups.starts):
            body = record_json[head]
            if body is not None:
                payloads[head] = body[:-1] + extra[number] + "}"
        head_amounts = None
        if amounts is not None:
            by_row: list[Decimal | None] = [None] * chunk.num_rows
            for number, head in enumerate(groups.starts):
                by_row[head] = amounts[number]
            head_amounts = pa.array(by_row, pa.decimal128(38, 8))
        return pa.array(payloads, pa.string()), head_amounts

    def _lines_of(
        self,
        groups: records.Groups,
        literals: dict[str, values.Converted],
        lines: dict[str, values.Converted],
    ) -> tuple[list[str], list[Decimal | None]]:
        """Each record's lines as JSON, and its total (sum of price x quantity), in cents."""
        if not lines:  # mapped without lines: each record gets one, from its amount
            lines = self.target.default_line(literals)
        line_json = values.json_objects(lines, next(iter(lines))).to_pylist()
        price, quantity = self.target.line_amount_fields
        prices = _cents(lines[price]) if price in lines else None
        quantities = _decimals(lines[quantity]) if quantity in lines else None
        if quantities is not None:  # an empty quantity is the API's default, 1
            refused = _refused(lines[quantity])
            quantities = [
                Decimal(1) if q is None and not refused[i] else q for i, q in enumerate(quantities)
            ]
        items = [",".join(line_json[m] or "" for m in members) for members in groups.members]
        if prices is None:
            return items, [None] * len(items)
        cents = records.summed(groups, prices, quantities)
        in_units = Totals.UNIT / 100
        return items, [c * in_units if c is not None else None for c in cents]

    def _field_errors(
        self,
        chunk: Chunk,
        bound_field: BoundField,
        converted: values.Converted,
        source: pa.Array,
        active_np: np.ndarray,
        errors: dict[int, list[RowError]],
    ) -> None:
        spec = bound_field.spec
        header = bound_field.column_header or (
            ", ".join(h for _, h in bound_field.object_columns.values())
            if bound_field.object_columns
            else None
        )
        for fault in converted.faults:
            mask = pc.fill_null(fault.mask, False).to_numpy(zero_copy_only=False) & active_np
            for offset in np.flatnonzero(mask).tolist():
                value = source[offset].as_py() if fault.kind != "required" else None
                errors.setdefault(offset, []).append(
                    RowError(
                        chunk.first_row + offset, spec.field, header, fault.kind, fault.text, value
                    )
                )

    def _held_back_errors(
        self,
        chunk: Chunk,
        candidates: np.ndarray,
        parents: pa.Array,
        errors: dict[int, list[RowError]],
    ) -> None:
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

    @staticmethod
    def _amounts(
        result: ValidatedChunk,
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
        every_row = len(result.offsets) == len(amounts)
        where = pa.array(result.offsets)
        result.amounts = amounts if every_row else pc.take(amounts, where)
        result.currencies = currencies if every_row else pc.take(currencies, where)
        counted = pa.array(counted_np)
        result.read_amounts = (pc.filter(amounts, counted), pc.filter(currencies, counted))
        refused = pa.array(rejected_np)
        result.rejected_amounts = (pc.filter(amounts, refused), pc.filter(currencies, refused))
        for offset, amount in extras.items():
            currency = currencies[offset].as_py()
            if counted_np[offset]:
                result.amount_extras.append(("read", amount, currency))
            if rejected_np[offset]:
                result.amount_extras.append(("rejected", amount, currency))

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

    def _convert(
        self, bound_field: BoundField, column, n: int, *, line: bool = False
    ) -> tuple[values.Converted, pa.Array]:
        spec = bound_field.spec
        if bound_field.object_columns:
            parts = {
                k: values.blank_missing(column(i), spec.missing)
                for k, (i, _) in bound_field.object_columns.items()
            }
            converted = values.json_object(parts)
            source = converted.json
        else:
            if spec.value is not None:
                source = pa.repeat(pa.scalar(spec.value, pa.string()), n)
            else:
                source = values.blank_missing(column(bound_field.column_index), spec.missing)
            extra: list[values.Fault] = []
            if spec.map is not None:
                source, unknown = values.mapped(source, spec.map)
                known = ", ".join(repr(k) for k in list(spec.map)[:8])
                extra.append(values.Fault(unknown, "not_in_map", f"is not in the map ({known})"))
                source = self._unmapped_shown(source, unknown, bound_field, column)
            if spec.default is not None:
                source = pc.fill_null(source, spec.default)
            if spec.pad is not None:
                source = pc.utf8_lpad(source, spec.pad, "0")
            if spec.sum:
                converted = self._sum_terms(bound_field, source, column)
            else:
                converted = self._typed(spec, source, bound_field, column)
            converted.faults = extra + converted.faults
        required = (
            {f.name for f in self.kind.lines if f.required}
            if line
            else set(self.bound.mapping.required_fields)
        )
        if spec.field in required:
            missing = pc.is_null(converted.json)
            for other in converted.faults:  # a value that failed conversion is not also empty
                missing = pc.and_(missing, pc.invert(pc.fill_null(other.mask, False)))
            converted.faults.insert(0, values.Fault(missing, "required", "is empty (required)"))
        return converted, source

    @staticmethod
    def _unmapped_shown(source, unknown, bound_field, column) -> pa.Array:
        # keep the unmapped original text, so the error can quote it; the fault refuses the row
        if bound_field.column_index is None:
            return source
        return pc.if_else(unknown, column(bound_field.column_index), source)

    def _sum_terms(self, bound_field: BoundField, source: pa.Array, column) -> values.Converted:
        """A `sum` field's value of each row, exact; with `times`, the factor is kept aside.
        The record's total is made from them (see _records)."""
        spec = bound_field.spec
        terms = numbers.exact_decimal(source, spec.decimal, spec.thousands)
        if bound_field.times_index is not None:
            cells = values.blank_missing(column(bound_field.times_index), spec.missing)
            factors = numbers.exact_decimal(cells, spec.decimal, spec.thousands)
            self._factors[spec.field] = _decimals(factors)
            for fault in factors.faults:
                fault.text = f"(times column {spec.times!r}) {fault.text}"
            terms.faults += factors.faults
            # a row with a price but no quantity cannot be summed: said, not guessed
            no_factor = pc.and_(pc.is_valid(source), pc.is_null(cells))
            terms.faults.append(
                values.Fault(no_factor, "required", f"has no {spec.times!r} to multiply by")
            )
        return terms

    def _typed(self, spec, source: pa.Array, bound_field: BoundField, column) -> values.Converted:
        if spec.type is FieldType.INTEGER:
            return numbers.integer(source, spec.decimal, spec.thousands, spec.scale)
        if spec.type is FieldType.MONEY:
            return numbers.money(source, spec.decimal, spec.thousands)
        if spec.type is FieldType.DECIMAL:
            return numbers.exact_decimal(source, spec.decimal, spec.thousands)
        if spec.type is FieldType.DATE:
            date_cells = None
            if bound_field.column_index is not None and self._chunk_dates is not None:
                date_cells = self._chunk_dates[bound_field.column_index]
            dates = values.date(source, spec.formats, date_cells)
            if self.kind.date_suffix:
                dates.json = pc.binary_join_element_wise(dates.json, self.kind.date_suffix, "")
            return dates
        if spec.type is FieldType.EMAIL:
            return values.email(source)
        if spec.type is FieldType.JSON:
            return values.json_text(source)
        return values.text(source)

    _chunk_dates: list | None = None

    def __call__(self, chunk: Chunk) -> ValidatedChunk:
        self._chunk_dates = chunk.date_cells or None
        return self.validate(chunk)

    @staticmethod
    def _key_text(parts: list[pa.Array]) -> pa.Array:
        if len(parts) == 1:
            return parts[0]
        return pc.binary_join_element_wise(*parts, KEY_SEPARATOR, null_handling="emit_null")

    def _payloads(self, literals: dict[str, values.Converted]) -> pa.Array:
        anchor = next(name for name in literals if name in self.kind.required)
        if self.kind.lines and not self.bound.mapping.groups_rows:
            # an invoice mapped without lines: one line from its amount, in the API's member
            record = {n: c for n, c in literals.items() if n != self.kind.amount_without_lines}
            line = self.target.default_line(literals)
            items = values.json_objects(line, next(iter(line)))
            body = values.json_objects(record, anchor)
            return pc.binary_join_element_wise(
                pc.utf8_slice_codeunits(body, 0, -1),
                f',"{self.kind.lines_member}":[',
                items,
                "]}",
                "",
            )
        return values.json_objects(literals, anchor)


def _decimals(converted: values.Converted) -> list[Decimal | None]:
    """Exact decimals (numbers.exact_decimal) back as Decimal, per row."""
    assert converted.integers is not None
    return [
        Decimal(v).scaleb(-numbers.DECIMAL_PLACES) if v is not None else None
        for v in converted.integers.to_pylist()
    ]


def _refused(converted: values.Converted) -> list[bool]:
    """Which rows a conversion refused (any of its faults)."""
    found = np.zeros(len(converted.json), dtype=bool)
    for fault in converted.faults:
        found |= pc.fill_null(fault.mask, False).to_numpy(zero_copy_only=False)
    return found.tolist()


def _cents(converted: values.Converted) -> list[Decimal | None]:
    """Money (numbers.money) as Decimal cents, per row."""
    assert converted.integers is not None
    return [Decimal(v) if v is not None else None for v in converted.integers.to_pylist()]


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
