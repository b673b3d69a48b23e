"""Each row's amount as the file states it, exact, and its currency: the control totals' inputs."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from payor_cli import numbers, values
from payor_cli.check.binding import BoundField
from payor_cli.check.convert import Cells
from payor_cli.schema import FieldType
from payor_cli.summary import Totals


def amounts_read(
    plain: dict[str, pa.Array],
    literals: dict[str, values.Converted],
    amount: BoundField | None,
) -> tuple[pa.Array | None, dict[int, Decimal]]:
    """The amount of each row as the file states it, exact (10**-6 units), for the control
    totals: also where the API's value could not be made (not whole after scale); an amount
    those units cannot hold (more decimals) is given apart, by row offset."""
    units = _amount_units(plain, literals, amount)
    if units is None or amount is None:
        return units, {}
    name = amount.spec.field
    if units.null_count == plain[name].null_count:
        return units, {}
    spec = amount.spec
    lost = pc.and_(pc.is_valid(plain[name]), pc.is_null(units))
    offsets = np.flatnonzero(lost.to_numpy(zero_copy_only=False))
    cells = pc.take(plain[name], pa.array(offsets, pa.int64()))
    stated = numbers.exact_numbers(cells, spec.decimal, spec.thousands)
    extras = {
        int(o): n * Totals.UNIT
        for o, n in zip(offsets.tolist(), stated, strict=True)
        if n is not None
    }
    return units, extras


def _amount_units(
    plain: dict[str, pa.Array],
    literals: dict[str, values.Converted],
    amount: BoundField | None,
) -> pa.Array | None:
    """The amount field's values in 10**-6 units (None: no amount, or a sum's)."""
    if amount is None or amount.spec.sum:
        return None  # a sum's amount is the record's, made with its payload (Payloads.of_records)
    spec = amount.spec
    name = spec.field
    converted = literals[name].integers
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
        if units is not None and units.null_count == converted.null_count == plain[name].null_count:
            return units
    return numbers.exact_decimal(plain[name], spec.decimal, spec.thousands).integers


def row_currencies(
    plain: dict[str, pa.Array],
    currency_field: str | None,
    column: Cells,
    currency_index: int | None,
) -> pa.Array | None:
    """Each row's currency for the totals: the mapped currency field, else the column the
    mapping names for the report (`currency_column`); None: the file names none."""
    # "eur" and "EUR" are one currency (onlyoffice sends codes upper case)
    if currency_field and currency_field in plain:
        return pc.ascii_upper(plain[currency_field])
    if currency_index is not None:
        return pc.ascii_upper(column(currency_index))
    return None
