"""The JSON payload of each row, or of each record made of several rows (its fields, and its
lines or its sums), with the record's amount for the totals."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from payor_cli import values
from payor_cli.check import records
from payor_cli.check.binding import BoundMapping
from payor_cli.check.convert import decimals
from payor_cli.contract import Target
from payor_cli.rows import Chunk, RowError
from payor_cli.summary import Totals


class Payloads:
    """Joins one mapping's converted fields into payloads, a row's or a record's."""

    def __init__(
        self, bound: BoundMapping, target: Target, factors: dict[str, list[Decimal | None]]
    ) -> None:
        self.mapping = bound.mapping
        self.kind = bound.mapping.kind
        self.target = target
        self.amount_field = target.amount_field
        self._bound_by_name = {b.spec.field: b for b in bound.fields}
        self.factors = factors
        """Each `sum ... times` field's factors of the chunk (filled by the FieldConverter)."""

    def of_rows(self, literals: dict[str, values.Converted]) -> pa.Array:
        """Each row's payload: its fields (an invoice mapped without lines gets one line)."""
        anchor = next(name for name in literals if name in self.kind.required)
        if self.kind.lines and not self.mapping.groups_rows:
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

    def of_records(
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
        record_json = self.of_rows(kept).to_pylist()
        field_literals = {n: c.literals().to_pylist() for n, c in kept.items()}
        records.differing(groups, record_json, field_literals, chunk.first_row, errors)
        extra, amounts = self._sums(chunk, groups, summed, errors)
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

    def _sums(
        self,
        chunk: Chunk,
        groups: records.Groups,
        summed: dict[str, values.Converted],
        errors: dict[int, list[RowError]],
    ) -> tuple[list[str], list[Decimal | None] | None]:
        """Each record's `sum` members as JSON to add to its payload, and its amount where the
        amount is a sum; a sum not whole after scale refuses the record."""
        extra: list[str] = ["" for _ in groups.members]
        amounts: list[Decimal | None] | None = None
        for name, converted in summed.items():
            bound_field = self._bound_by_name[name]
            scale = bound_field.spec.scale
            totals = records.summed(groups, decimals(converted), self.factors.get(name))
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
        return extra, amounts

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
        quantities = decimals(lines[quantity]) if quantity in lines else None
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
