"""One field of a mapping: where its value comes from (FieldSpec), read from the TOML and checked
against the field's type."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from payor_cli.check.nearest import did_you_mean
from payor_cli.errors import MappingError
from payor_cli.schema import FieldType

FIELD_KEYS = {
    "column",
    "columns",
    "value",
    "format",
    "decimal",
    "thousands",
    "scale",
    "default",
    "map",
    "pad",
    "missing",
    "sum",
    "times",
}
_TYPE_OPTIONS = {
    "format": {FieldType.DATE},
    "decimal": {FieldType.INTEGER, FieldType.MONEY, FieldType.DECIMAL},
    "thousands": {FieldType.INTEGER, FieldType.MONEY, FieldType.DECIMAL},
    "scale": {FieldType.INTEGER},
    "sum": {FieldType.INTEGER, FieldType.MONEY},
    "times": {FieldType.INTEGER, FieldType.MONEY},
    "columns": {FieldType.JSON},
    "pad": {FieldType.STRING},
}


@dataclass(frozen=True)
class FieldSpec:
    """Where one API field's value comes from and how to read it."""

    field: str
    type: FieldType
    column: str | None = None
    columns: dict[str, str] | None = None
    value: str | None = None
    formats: tuple[str, ...] = ()
    decimal: str = "."
    thousands: str | None = None
    scale: Decimal = Decimal(1)
    default: str | None = None
    map: dict[str, str] | None = None
    pad: int | None = None
    """Left-pad the text with zeros to this width (numbers an Excel round trip stripped)."""
    missing: tuple[str, ...] = ()
    """Cell texts that mean empty ("NA", "n/a"); nothing else is ever taken for missing."""
    sum: str | None = None
    """Add this column over the rows of one record (exports with a row per invoice line)."""
    times: str | None = None
    """With `sum`: each row's value is first multiplied by this column (a quantity)."""

    @property
    def source_columns(self) -> list[str]:
        """The column headers the field reads."""
        if self.columns:
            return list(self.columns.values())
        return [c for c in (self.column, self.sum, self.times) if c]


def parse_field(
    name: str, ftype: FieldType, raw: Any, defaults: dict[str, Any], source: str
) -> FieldSpec:
    """One field's TOML (a column header, or a table of options) checked against its type;
    `defaults` are the section's format, decimal, thousands and missing."""
    where = f"{source} field {name}"
    if isinstance(raw, str):
        raw = {"column": raw}
    if not isinstance(raw, dict):
        raise MappingError(
            f'{where}: give a column header ("Header") or a table {{ column = ... }}'
        )
    _check_options(raw, ftype, where)
    spec: dict[str, Any] = {"field": name, "type": ftype}
    spec |= _value_source(raw, where)
    spec |= _cell_rules(raw, defaults, where)
    if ftype is FieldType.DATE:
        spec["formats"] = _date_formats(raw, defaults, where)
    if ftype in (FieldType.INTEGER, FieldType.MONEY, FieldType.DECIMAL):
        spec |= _number_options(raw, defaults, where)
    return FieldSpec(**spec)


def missing_texts(raw: Any, where: str) -> tuple[str, ...]:
    """A `missing` setting (one text or a list) as the trimmed cell texts that mean empty."""
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise MappingError(f'{where}: give a list of cell texts, such as ["NA", "n/a"]')
    return tuple(t.strip() for t in texts)


def _check_options(raw: dict[str, Any], ftype: FieldType, where: str) -> None:
    """Every option known and fit for the field's type; exactly one source of the value."""
    for key in raw:
        if key not in FIELD_KEYS:
            raise MappingError(
                f"{where}: unknown option {key!r}",
                did_you_mean(key, sorted(FIELD_KEYS)) or f"known: {', '.join(sorted(FIELD_KEYS))}",
            )
        allowed = _TYPE_OPTIONS.get(key)
        if allowed and ftype not in allowed:
            raise MappingError(
                f"{where}: {key!r} does not apply to {_article(ftype.value)} {ftype.value} field",
                f"{key!r} is for {' and '.join(t.value for t in allowed)} fields",
            )
    sources = [k for k in ("column", "columns", "value", "sum") if k in raw]
    if len(sources) != 1:
        raise MappingError(f"{where}: give exactly one of column, columns, value or sum")
    if "times" in raw and "sum" not in raw:
        raise MappingError(
            f"{where}: times goes with sum", '{ sum = "UnitAmount", times = "Quantity" }'
        )


def _value_source(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Where the value comes from: column, sum (and times), columns or a fixed value."""
    spec: dict[str, Any] = {}
    if "column" in raw:
        spec["column"] = _text(raw["column"], "column", where)
    for option in ("sum", "times"):
        if option in raw:
            spec[option] = _text(raw[option], option, where)
    if "columns" in raw:
        columns = raw["columns"]
        if not isinstance(columns, dict) or not columns:
            raise MappingError(f'{where}: columns must be a table of key = "Header"')
        spec["columns"] = {str(k): _text(v, "a column", where) for k, v in columns.items()}
    if "value" in raw:
        spec["value"] = _text(raw["value"], "value", where)
    return spec


def _cell_rules(raw: dict[str, Any], defaults: dict[str, Any], where: str) -> dict[str, Any]:
    """The rules of any type: default, missing texts, zero padding and a map of values."""
    spec: dict[str, Any] = {}
    if "default" in raw:
        spec["default"] = _text(raw["default"], "default", where)
    spec["missing"] = (
        missing_texts(raw["missing"], f"{where} missing")
        if "missing" in raw
        else defaults["missing"]
    )
    if "pad" in raw:
        pad = raw["pad"]
        if isinstance(pad, bool) or not isinstance(pad, int) or not 1 <= pad <= 100:
            raise MappingError(f"{where}: pad must be a width such as 10, not {pad!r}")
        spec["pad"] = pad
    if "map" in raw:
        if not isinstance(raw["map"], dict):
            raise MappingError(f'{where}: map must be a table of "from" = "to"')
        spec["map"] = {
            str(k).strip(): _text(v, "a map value", where) for k, v in raw["map"].items()
        }
    return spec


def _date_formats(raw: dict[str, Any], defaults: dict[str, Any], where: str) -> tuple[str, ...]:
    """A date field's strptime formats (its own, else the section's date_format); () is ISO."""
    formats = raw.get("format", defaults["format"])
    if isinstance(formats, str):
        formats = [formats]
    if formats is not None and (
        not isinstance(formats, list) or not all(isinstance(f, str) and f for f in formats)
    ):
        raise MappingError(f'{where}: format must be a strptime format such as "%d.%m.%Y"')
    return tuple(formats or ())


def _number_options(raw: dict[str, Any], defaults: dict[str, Any], where: str) -> dict[str, Any]:
    """A number field's decimal and thousands separators (its own, else the section's) and scale."""
    decimal = raw.get("decimal", defaults["decimal"]) or "."
    thousands = raw.get("thousands", defaults["thousands"])
    for what, sep in (("decimal", decimal), ("thousands", thousands)):
        if sep is not None and (not isinstance(sep, str) or len(sep) != 1 or sep.isdigit()):
            raise MappingError(f'{where}: {what} must be one character such as "," or "."')
    if thousands == decimal:
        raise MappingError(f"{where}: decimal and thousands must differ")
    spec: dict[str, Any] = {"decimal": decimal, "thousands": thousands}
    if "scale" in raw:
        try:
            scale = Decimal(str(raw["scale"]))
        except InvalidOperation:
            scale = Decimal(0)
        if isinstance(raw["scale"], bool) or not scale.is_finite() or scale <= 0:
            raise MappingError(f"{where}: scale must be a positive number such as 100")
        spec["scale"] = scale
    return spec


def _text(value: Any, what: str, source: str) -> str:
    """A TOML value that must be text; a number or a boolean is taken as its text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MappingError(f"{source}: {what} must be text or a number, not {value!r}")


def _article(word: str) -> str:
    """The article before `word`: "a" or "an"."""
    return "an" if word[:1] in "aeiou" else "a"
