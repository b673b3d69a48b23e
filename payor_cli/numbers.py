"""The one grammar of numbers in cells, exact: whole numbers (with scale), money and decimals.

Amounts never pass through a binary float: they are parsed as decimal text and scaled by
moving the decimal point (or with `decimal.Decimal`). Each function takes trimmed cells (null =
empty) and returns a `Converted`, the rows it refuses as faults.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc

from payor_cli.values import Converted, Fault, by_unique

# An ISO currency code set off by a space at either end ("EUR 1.234,56", "12.50 USD").
_CODE = r"^[A-Z]{3}[\p{Z}\s]+|[\p{Z}\s]+[A-Z]{3}$"
# Currency signs and any Unicode space (thousands groups such as "1 234,56").
_NOISE = r"[\p{Sc}\p{Z}\s]"
_SIGNED = r"^(?P<open>\()?(?P<sign>[-+])?(?P<num>[^()+-]*?)(?P<trail>-)?(?P<close>\))?$"
_MAX_DIGITS = 18  # int64 holds every 18-digit whole number
_LIMIT = 10**_MAX_DIGITS


def _number_pattern(decimal: str, thousands: str | None) -> str:
    """The regex of a well-formed number (sign and currency already taken off)."""
    d = re.escape(decimal)
    if thousands is None:
        # With no thousands separator set, the other of "," and "." is one only where it
        # groups digits in threes (1,234.56 or 1.234,56): there it cannot mean anything else.
        thousands = "," if decimal == "." else "." if decimal == "," else None
    if thousands is None:
        return rf"^(?:\d+(?:{d}\d*)?|{d}\d+)$"
    t = re.escape(thousands)
    return rf"^(?:(?:\d{{1,3}}(?:{t}\d{{3}})+|\d+)(?:{d}\d*)?|{d}\d+)$"


_PLAIN_NUMBER = r"^-?\d{1,18}(?:\.\d{1,9})?$"
_PLAIN_TYPE = pa.decimal128(27, 9)  # times a 10-digit scale still fits Arrow's 38 digits


def _plain_integers(cells: pa.Array, decimal: str, scale: Decimal) -> pa.Array | None:
    """The common case in Arrow's exact decimals: every cell a plain `-1234.5`, all whole
    after scale. None when any cell needs the general path (which explains each fault)."""
    if decimal != "." or scale != scale.to_integral_value() or not 0 < scale < 10**10:
        return None
    plain = pc.match_substring_regex(cells, _PLAIN_NUMBER)
    if not pc.all(pc.fill_null(plain, True)).as_py():
        return None
    try:
        exact = pc.cast(cells, _PLAIN_TYPE)
        scaled = pc.multiply(exact, pa.scalar(scale, pa.decimal128(10, 0)))
        whole = pc.cast(scaled, pa.int64())  # a safe cast: refuses a fraction or an overflow
        largest = pc.max(pc.abs_checked(whole)).as_py()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if largest is not None and largest >= _LIMIT:
        return None  # the general path's limit: a value never depends on the cells around it
    return whole


def integer(cells: pa.Array, decimal: str, thousands: str | None, scale: Decimal) -> Converted:
    """Whole numbers: separators, minus signs (leading, trailing, parentheses) and scale applied.

    A value with a fraction left after `scale` is refused, never rounded.
    """
    plain = _plain_integers(cells, decimal, scale)
    if plain is not None:
        return Converted(pc.cast(plain, pa.string()), [], plain)
    present = pc.is_valid(cells)
    canonical, negative, well_formed = _canonical(cells, decimal, thousands)

    exponent = _power_of_ten(scale)
    if exponent is not None:
        whole, fraction_left = _shift_point(canonical, exponent)
    else:
        whole, fraction_left = _scale_exactly(canonical, scale)
    digits = pc.utf8_ltrim(whole, "0")
    digits = pc.if_else(pc.equal(digits, ""), "0", digits)
    too_large = pc.fill_null(pc.greater(pc.utf8_length(digits), _MAX_DIGITS), False)
    ok = pc.and_(pc.fill_null(pc.invert(fraction_left), False), pc.invert(too_large))
    magnitude = pc.cast(pc.if_else(ok, digits, pa.scalar(None, pa.string())), pa.int64())
    values = pc.if_else(negative, pc.negate(magnitude), magnitude)
    not_number = pc.and_kleene(present, pc.invert(well_formed))
    shown_scale = f" × {scale.normalize():f}" if scale != 1 else ""
    faults = [
        Fault(not_number, "not_a_number", "is not a number"),
        Fault(
            pc.fill_null(pc.and_(well_formed, fraction_left), False),
            "not_whole",
            f"is not a whole number{shown_scale} (nothing is rounded; check scale)",
        ),
        Fault(pc.and_(pc.fill_null(well_formed, False), too_large), "too_large", "is too large"),
    ]
    literal = pc.cast(values, pa.string())
    return Converted(literal, faults, values)


def exact_numbers(cells: pa.Array, decimal: str, thousands: str | None) -> list[Decimal | None]:
    """Each cell as the exact number it states, by the integer rules but with any number of
    decimals and digits (None: not a number). For the few cells the fast paths refuse."""
    canonical, negative, _ = _canonical(cells, decimal, thousands)
    found: list[Decimal | None] = []
    for text, minus in zip(canonical.to_pylist(), negative.to_pylist(), strict=True):
        number = Decimal(text) if text not in (None, "", ".") else None
        found.append(-number if number is not None and minus else number)
    return found


def _canonical(
    cells: pa.Array, decimal: str, thousands: str | None
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """A number's text as plain digits with "." for its point (null: not a number), whether it
    is negative, and whether it is well formed: the one grammar of amounts."""
    cells = pc.replace_substring(cells, "\u2212", "-")  # the typographic minus of some locales
    cleaned = pc.replace_substring_regex(pc.replace_substring_regex(cells, _CODE, ""), _NOISE, "")
    parts = pc.extract_regex(cleaned, _SIGNED)
    opened = pc.equal(pc.struct_field(parts, "open"), "(")
    closed = pc.equal(pc.struct_field(parts, "close"), ")")
    sign = pc.struct_field(parts, "sign")
    trailing = pc.equal(pc.struct_field(parts, "trail"), "-")
    number = pc.struct_field(parts, "num")
    minuses = pc.add(
        pc.add(pc.cast(opened, pa.int8()), pc.cast(trailing, pa.int8())),
        pc.cast(pc.equal(sign, "-"), pa.int8()),
    )
    sign_ok = pc.and_(
        pc.equal(opened, closed),
        pc.and_(pc.less_equal(minuses, 1), pc.invert(pc.and_(pc.equal(sign, "+"), trailing))),
    )
    well_formed = pc.and_(
        pc.fill_null(sign_ok, False),
        pc.fill_null(pc.match_substring_regex(number, _number_pattern(decimal, thousands)), False),
    )
    separator = thousands or ("," if decimal == "." else "." if decimal == "," else None)
    canonical = number
    if separator:
        canonical = pc.replace_substring(canonical, separator, "")
    if decimal != ".":
        canonical = pc.replace_substring(canonical, decimal, ".")
    canonical = pc.if_else(well_formed, canonical, pa.scalar(None, pa.string()))
    return canonical, pc.greater(minuses, 0), well_formed


def money(cells: pa.Array, decimal: str, thousands: str | None) -> Converted:
    """Exact amounts with at most 2 decimals, as JSON numbers with exactly 2 (`1234.5` ->
    `1234.50`); the integers are the cents. Read by the integer rules, never through a float."""
    cents = integer(cells, decimal, thousands, Decimal(100))
    for fault in cents.faults:
        if fault.kind == "not_whole":
            fault.kind, fault.text = "too_many_decimals", "has more than 2 decimals"
    return Converted(_with_point(cents.integers, 2), cents.faults, cents.integers)


def exact_decimal(cells: pa.Array, decimal: str, thousands: str | None) -> Converted:
    """Exact decimals (quantities, rates) as JSON numbers with at least 2 decimals."""
    places = DECIMAL_PLACES
    scaled = integer(cells, decimal, thousands, Decimal(10) ** places)
    for fault in scaled.faults:
        if fault.kind == "not_whole":
            fault.kind, fault.text = "too_many_decimals", f"has more than {places} decimals"
    literal = _with_point(scaled.integers, places)
    # drop the zeros past the second decimal: 1.500000 -> 1.50, 2.125000 -> 2.125
    literal = pc.replace_substring_regex(literal, r"(\.\d\d\d*?)0+$", r"\1")
    return Converted(literal, scaled.faults, scaled.integers)


DECIMAL_PLACES = 6


def _with_point(values: pa.Array, places: int) -> pa.Array:
    """Integers of 10**-places units as decimal text: 123450 (2 places) -> "1234.50"."""
    negative = pc.less(values, 0)
    digits = pc.cast(pc.abs(values), pa.string())
    digits = pc.utf8_lpad(digits, places + 1, "0")
    whole = pc.utf8_slice_codeunits(digits, 0, -places)
    fraction = pc.utf8_slice_codeunits(digits, -places)
    text = pc.binary_join_element_wise(whole, fraction, ".")
    return pc.if_else(negative, pc.binary_join_element_wise("-", text, ""), text)


def _power_of_ten(scale: Decimal) -> int | None:
    """n where scale is 10**n (the point is then moved, not multiplied); else None."""
    exponent = 0
    value = scale
    while value >= 10 and value % 10 == 0:
        value /= 10
        exponent += 1
    return exponent if value == 1 else None


def _shift_point(canonical: pa.Array, exponent: int) -> tuple[pa.Array, pa.Array]:
    """Multiply decimal text by 10**exponent: digits before the point, and whether any non-zero
    digit is left after it."""
    split = pc.extract_regex(canonical, r"^(?P<i>\d*)(?:\.(?P<f>\d*))?$")
    integral = pc.struct_field(split, "i")
    fraction = pc.fill_null(pc.struct_field(split, "f"), "")
    if exponent:
        moved = pc.utf8_rpad(pc.utf8_slice_codeunits(fraction, 0, exponent), exponent, "0")
        integral = pc.binary_join_element_wise(integral, moved, "")
        fraction = pc.utf8_slice_codeunits(fraction, exponent)
    left = pc.invert(pc.match_substring_regex(fraction, r"^0*$"))
    return integral, left


def _scale_exactly(canonical: pa.Array, scale: Decimal) -> tuple[pa.Array, pa.Array]:
    """Like _shift_point, for a scale that is no power of ten: multiplied with Decimal."""

    def scaled(value: str) -> str | None:
        try:
            product = Decimal(value) * scale
        except InvalidOperation:
            return None
        return f"{product:f}"

    return _shift_point(by_unique(canonical, scaled), 0)


def ones(rows: int) -> Converted:
    """A quantity of 1 on each of `rows` rows (an invoice's one line, mapped without lines):
    the JSON literal 1, and the exact value for the totals."""
    return Converted(
        pa.repeat(pa.scalar("1", pa.string()), rows),
        [],
        pa.repeat(pa.scalar(10**DECIMAL_PLACES, pa.int64()), rows),
    )
