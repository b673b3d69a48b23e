"""Exact, vectorised conversions of cell text to API values: text, dates, integer amounts, JSON.

Every function takes an Arrow string array (trimmed cells, null = empty) and returns the
value as a JSON literal per row (null = leave the field out) plus the rows it refuses, each
kind of fault as a boolean mask. Amounts never pass through a binary float: they are parsed
as decimal text and scaled by moving the decimal point (or with `decimal.Decimal`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc

_CONTROL = r"[\x00-\x1f]"
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_EMAIL = r"^[^@\s\p{Z}]+@[^@\s\p{Z}]+$"
# An ISO currency code set off by a space at either end ("EUR 1.234,56", "12.50 USD").
_CODE = r"^[A-Z]{3}[\p{Z}\s]+|[\p{Z}\s]+[A-Z]{3}$"
# Currency signs and any Unicode space (thousands groups such as "1 234,56").
_NOISE = r"[\p{Sc}\p{Z}\s]"
_SIGNED = r"^(?P<open>\()?(?P<sign>[-+])?(?P<num>[^()+-]*?)(?P<trail>-)?(?P<close>\))?$"
_MAX_DIGITS = 18  # int64 holds every 18-digit whole number


@dataclass
class Fault:
    """Rows refused for one reason: `text` follows the value in a message ('is not a date')."""

    mask: pa.Array
    kind: str
    text: str


@dataclass
class Converted:
    json: pa.Array
    faults: list[Fault]
    integers: pa.Array | None = None


def empty_to_null(cells: pa.Array) -> pa.Array:
    """Trimmed cells with empty text as null."""
    trimmed = pc.utf8_trim_whitespace(cells)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def any_true(mask: pa.Array | None) -> bool:
    return mask is not None and bool(pc.any(mask).as_py())


def by_unique(cells: pa.Array, convert: Callable[[str], str | None]) -> pa.Array:
    """Apply a Python function once per distinct value (dates and codes repeat a lot)."""
    encoded = pc.dictionary_encode(cells)
    distinct = encoded.dictionary.to_pylist()
    converted = pa.array([convert(v) for v in distinct], pa.string())
    return pc.take(converted, encoded.indices)


def json_strings(cells: pa.Array) -> pa.Array:
    """JSON string literals of the cells (null stays null)."""
    escaped = pc.replace_substring(cells, "\\", "\\\\")
    escaped = pc.replace_substring(escaped, '"', '\\"')
    literal = pc.binary_join_element_wise('"', escaped, '"', "")
    controls = pc.match_substring_regex(cells, _CONTROL)
    if any_true(controls):
        slow = by_unique(cells, lambda v: json.dumps(v, ensure_ascii=False))
        literal = pc.if_else(controls, slow, literal)
    return literal


def text(cells: pa.Array) -> Converted:
    return Converted(json_strings(cells), [])


def email(cells: pa.Array) -> Converted:
    valid = pc.match_substring_regex(cells, _EMAIL)
    bad = pc.and_kleene(pc.is_valid(cells), pc.invert(valid))
    return Converted(json_strings(cells), [Fault(bad, "not_an_email", "is not an e-mail address")])


def iso_date(value: str) -> str | None:
    """`YYYY-MM-DD` (a time after it is allowed and dropped) as an ISO date, or None."""
    match = _ISO.fullmatch(value)
    if not match:
        return None
    try:
        return dt.date(*map(int, match.groups())).isoformat()
    except ValueError:
        return None


def date_with_formats(formats: tuple[str, ...]) -> Callable[[str], str | None]:
    def parse(value: str) -> str | None:
        for fmt in formats:
            try:
                return dt.datetime.strptime(value, fmt).date().isoformat()
            except ValueError:
                continue
        return None

    return parse


def date(cells: pa.Array, formats: tuple[str, ...], date_cells: pa.Array | None) -> Converted:
    """Dates as `"YYYY-MM-DD"`: real date cells as they are, text by the format (default ISO).

    Python's strptime is the format language users know (`%d.%m.%Y`); it runs once per
    distinct value, and it refuses impossible dates such as 31.02.2024.
    """
    iso = by_unique(cells, date_with_formats(formats) if formats else iso_date)
    if date_cells is not None and formats:
        iso = pc.if_else(pc.fill_null(date_cells, False), by_unique(cells, iso_date), iso)
    bad = pc.and_kleene(pc.is_valid(cells), pc.is_null(iso))
    wanted = " or ".join(formats) if formats else "YYYY-MM-DD"
    fault = Fault(bad, "not_a_date", f"is not a date in the format {wanted}")
    return Converted(pc.binary_join_element_wise('"', iso, '"', ""), [fault])


def _number_pattern(decimal: str, thousands: str | None) -> str:
    d = re.escape(decimal)
    if thousands is None:
        # With no thousands separator set, the other of "," and "." is one only where it
        # groups digits in threes (1,234.56 or 1.234,56): there it cannot mean anything else.
        thousands = "," if decimal == "." else "." if decimal == "," else None
    if thousands is None:
        return rf"^(?:\d+(?:{d}\d*)?|{d}\d+)$"
    t = re.escape(thousands)
    return rf"^(?:(?:\d{{1,3}}(?:{t}\d{{3}})+|\d+)(?:{d}\d*)?|{d}\d+)$"


def integer(cells: pa.Array, decimal: str, thousands: str | None, scale: Decimal) -> Converted:
    """Whole numbers: separators, minus signs (leading, trailing, parentheses) and scale applied.

    A value with a fraction left after `scale` is refused, never rounded.
    """
    present = pc.is_valid(cells)
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
    negative = pc.greater(minuses, 0)

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


def _power_of_ten(scale: Decimal) -> int | None:
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
    def scaled(value: str) -> str | None:
        try:
            product = Decimal(value) * scale
        except InvalidOperation:
            return None
        return f"{product:f}"

    return _shift_point(by_unique(canonical, scaled), 0)


def object_members(literals: dict[str, pa.Array]) -> pa.Array:
    """'"name":literal,...' per row, leaving out null literals ("" when all are null).

    Arrow's own null_handling="skip" drops the rows where every part is null (pyarrow 26),
    which would shift every later row, so each member carries its own comma instead.
    """
    members = [
        pc.fill_null(
            pc.binary_join_element_wise(
                "," + json.dumps(name, ensure_ascii=False) + ":", literal, ""
            ),
            "",
        )
        for name, literal in literals.items()
    ]
    joined = pc.binary_join_element_wise(*members, "")
    return pc.utf8_slice_codeunits(joined, 1)


def json_object(parts: dict[str, pa.Array]) -> Converted:
    """A JSON object of string members from several columns; empty members are left out."""
    body = object_members({key: json_strings(cells) for key, cells in parts.items()})
    body = pc.if_else(pc.equal(body, ""), pa.scalar(None, pa.string()), body)
    return Converted(pc.binary_join_element_wise("{", body, "}", ""), [])


def json_text(cells: pa.Array) -> Converted:
    """A column that holds JSON objects as text; anything else is refused."""

    def normalise(value: str) -> str | None:
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        if not isinstance(parsed, dict):
            return None
        return json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))

    literal = by_unique(cells, normalise)
    bad = pc.and_kleene(pc.is_valid(cells), pc.is_null(literal))
    return Converted(literal, [Fault(bad, "not_json", "is not a JSON object")])


def mapped(cells: pa.Array, table: dict[str, str]) -> tuple[pa.Array, pa.Array]:
    """Translate cells through a `map` (exact, then ignoring case); unknown values are faults."""
    folded = {k.casefold(): v for k, v in table.items()}
    missing = "\x00unmapped"

    def translate(value: str) -> str:
        if value in table:
            return table[value]
        return folded.get(value.casefold(), missing)

    result = by_unique(cells, translate)
    unknown = pc.fill_null(pc.equal(result, missing), False)
    return pc.if_else(unknown, pa.scalar(None, pa.string()), result), unknown
