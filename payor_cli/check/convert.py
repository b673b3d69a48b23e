"""One mapped field's cells -> its API values and the rows it refuses (map, default, pad, type,
required), and those refusals as row errors."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from payor_cli import numbers, values
from payor_cli.check.binding import BoundField, BoundMapping
from payor_cli.check.fields import FieldSpec
from payor_cli.rows import Chunk, RowError
from payor_cli.schema import FieldType

Cells = Callable[[int], pa.Array]
"""A chunk's column by index, trimmed, empty cells null (made once per chunk and column)."""


class FieldConverter:
    """Converts the mapped fields of a file's chunks; keeps each `sum` field's `times` factors
    of the last chunk, for its records' totals."""

    def __init__(self, bound: BoundMapping) -> None:
        self.kind = bound.mapping.kind
        self.record_required = set(bound.mapping.required_fields)
        self.line_required = {f.name for f in self.kind.lines if f.required}
        self.factors: dict[str, list[Decimal | None]] = {}
        self.date_cells: list | None = None
        """Which cells of each column were real dates (Excel), for the chunk being converted."""

    def convert(
        self, bound_field: BoundField, column: Cells, n: int, *, line: bool = False
    ) -> tuple[values.Converted, pa.Array]:
        """A field's values and faults, and the text each row's value was made from."""
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
                source = _unmapped_shown(source, unknown, bound_field, column)
            if spec.default is not None:
                source = pc.fill_null(source, spec.default)
            if spec.pad is not None:
                source = pc.utf8_lpad(source, spec.pad, "0")
            if spec.sum:
                converted = self._sum_terms(bound_field, source, column)
            else:
                converted = self._typed(spec, source, bound_field)
            converted.faults = extra + converted.faults
        required = self.line_required if line else self.record_required
        if spec.field in required:
            missing = pc.is_null(converted.json)
            for other in converted.faults:  # a value that failed conversion is not also empty
                missing = pc.and_(missing, pc.invert(pc.fill_null(other.mask, False)))
            converted.faults.insert(0, values.Fault(missing, "required", "is empty (required)"))
        return converted, source

    def _sum_terms(
        self, bound_field: BoundField, source: pa.Array, column: Cells
    ) -> values.Converted:
        """A `sum` field's value of each row, exact; with `times`, the factor is kept aside.
        The record's total is made from them (see Payloads.of_records)."""
        spec = bound_field.spec
        terms = numbers.exact_decimal(source, spec.decimal, spec.thousands)
        if bound_field.times_index is not None:
            cells = values.blank_missing(column(bound_field.times_index), spec.missing)
            factors = numbers.exact_decimal(cells, spec.decimal, spec.thousands)
            self.factors[spec.field] = decimals(factors)
            for fault in factors.faults:
                fault.text = f"(times column {spec.times!r}) {fault.text}"
            terms.faults += factors.faults
            # a row with a price but no quantity cannot be summed: said, not guessed
            no_factor = pc.and_(pc.is_valid(source), pc.is_null(cells))
            terms.faults.append(
                values.Fault(no_factor, "required", f"has no {spec.times!r} to multiply by")
            )
        return terms

    def _typed(
        self, spec: FieldSpec, source: pa.Array, bound_field: BoundField
    ) -> values.Converted:
        """The cells read by the field's type."""
        if spec.type is FieldType.INTEGER:
            return numbers.integer(source, spec.decimal, spec.thousands, spec.scale)
        if spec.type is FieldType.MONEY:
            return numbers.money(source, spec.decimal, spec.thousands)
        if spec.type is FieldType.DECIMAL:
            return numbers.exact_decimal(source, spec.decimal, spec.thousands)
        if spec.type is FieldType.DATE:
            date_cells = None
            if bound_field.column_index is not None and self.date_cells is not None:
                date_cells = self.date_cells[bound_field.column_index]
            dates = values.date(source, spec.formats, date_cells)
            if self.kind.date_suffix:
                dates.json = pc.binary_join_element_wise(dates.json, self.kind.date_suffix, "")
            return dates
        if spec.type is FieldType.EMAIL:
            return values.email(source)
        if spec.type is FieldType.JSON:
            return values.json_text(source)
        return values.text(source)


def _unmapped_shown(
    source: pa.Array, unknown: pa.Array, bound_field: BoundField, column: Cells
) -> pa.Array:
    """The mapped values, with the original text where the map has none."""
    # keep the unmapped original text, so the error can quote it; the fault refuses the row
    if bound_field.column_index is None:
        return source
    return pc.if_else(unknown, column(bound_field.column_index), source)


def field_errors(
    chunk: Chunk,
    bound_field: BoundField,
    converted: values.Converted,
    source: pa.Array,
    active_np: np.ndarray,
    errors: dict[int, list[RowError]],
) -> None:
    """Add a row error for each fault of the field in a row that counts (not skipped)."""
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


def decimals(converted: values.Converted) -> list[Decimal | None]:
    """Exact decimals (numbers.exact_decimal) back as Decimal, per row."""
    assert converted.integers is not None
    return [
        Decimal(v).scaleb(-numbers.DECIMAL_PLACES) if v is not None else None
        for v in converted.integers.to_pylist()
    ]
