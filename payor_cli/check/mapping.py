"""The TOML mapping: parsed and checked against the schema, then bound to a file's headers."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from payor_cli.errors import MappingError
from payor_cli.read import InputOptions
from payor_cli.schema import Apis, Field, FieldType, Kind

SECTION_KEYS = {
    "sheet",
    "header_row",
    "encoding",
    "delimiter",
    "member",
    "date_format",
    "decimal",
    "thousands",
    "key",
    "skip",
    "missing",
    "fields",
    "lines",
    "currency_column",
    "target",
}
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
        if self.columns:
            return list(self.columns.values())
        return [c for c in (self.column, self.sum, self.times) if c]


@dataclass(frozen=True)
class SkipRule:
    column: str
    pattern: str


@dataclass(frozen=True)
class Mapping:
    """A kind's mapping: input settings, field sources, the key, and furniture rules."""

    kind: Kind
    fields: dict[str, FieldSpec]
    key: tuple[str, ...]
    skip: tuple[SkipRule, ...] = ()
    input: InputOptions = field(default_factory=InputOptions)
    source: str = "mapping"
    lines: dict[str, FieldSpec] | None = None
    """The fields of one invoice line (`[invoices.lines]`), for targets whose invoices have
    lines; None: each invoice gets one line from its amount."""
    currency_column: str | None = None
    """The column that names each row's currency, for the control totals of a target whose
    API takes no currency."""

    @property
    def required_fields(self) -> list[str]:
        """The record fields a row must fill: the kind's, and for an invoice mapped without
        lines the amount its one line is made of."""
        kind = self.kind
        without_lines = kind.lines and self.lines is None and kind.amount_without_lines
        return [*kind.required, *([kind.amount_without_lines] if without_lines else [])]

    @property
    def groups_rows(self) -> bool:
        """Adjacent rows of one key make one record (its lines, or a sum over them)."""
        return self.lines is not None or any(s.sum for s in self.fields.values())

    def with_input(self, **overrides: Any) -> Mapping:
        """The same mapping with input settings overridden (the CLI's --sheet etc.); None keeps."""
        return replace(self, input=self.input.overridden(**overrides))


@dataclass(frozen=True)
class BoundField:
    spec: FieldSpec
    column_index: int | None = None
    column_header: str | None = None
    object_columns: dict[str, tuple[int, str]] | None = None
    times_index: int | None = None
    """With `sum`: the column each row's value is multiplied by."""

    @property
    def columns(self) -> list[int]:
        """The columns the field's value comes from."""
        own = [self.column_index] if self.column_index is not None else []
        return own + [c for c, _ in (self.object_columns or {}).values()]


def required_of(
    mapping: Mapping, fields: list[BoundField], lines: list[BoundField] | None
) -> list[BoundField]:
    """The bound fields a row must fill: the record's required ones and its line's."""
    required = set(mapping.required_fields)
    line_required = {f.name for f in mapping.kind.lines if f.required}
    return [b for b in fields if b.spec.field in required] + [
        b for b in lines or [] if b.spec.field in line_required
    ]


@dataclass(frozen=True)
class BoundMapping:
    """A mapping whose column names have been found in a file's headers."""

    mapping: Mapping
    headers: list[str]
    fields: list[BoundField]
    skip: list[tuple[int, str, str]]
    required_columns: list[int]
    lines: list[BoundField] | None = None
    currency_index: int | None = None
    """The column of `currency_column`, where the mapping names one."""


def suggest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """The candidates closest to `name`, ignoring case."""
    folded = {c.casefold(): c for c in candidates}
    exact = folded.get(name.casefold())
    if exact:
        return [exact]
    close = difflib.get_close_matches(name.casefold(), list(folded), n=n, cutoff=0.5)
    return [folded[c] for c in close]


def _did_you_mean(name: str, candidates: list[str]) -> str | None:
    close = suggest(name, candidates)
    return f"did you mean {' or '.join(map(repr, close))}?" if close else None


def load_mapping_file(path: Path, kind: Kind, apis: Apis | None = None) -> Mapping | None:
    """The [kind] section of a mapping TOML (or the file itself if it has `fields` at the top)."""
    data = read_toml(path)
    section = data.get(kind.name)
    if section is None and "fields" in data:
        section = data
    if section is None:
        return None
    return parse_mapping(section, kind, f"{path} [{kind.name}]", apis)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise MappingError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise MappingError(f"{path}: cannot read: {exc.strerror}") from None


def parse_mapping(
    section: dict[str, Any], kind: Kind, source: str = "mapping", apis: Apis | None = None
) -> Mapping:
    """Check a mapping section against the schema; errors name the place and the nearest names
    (`apis`: every API's kinds, to name the one a mapping for another API was written for)."""
    if not isinstance(section, dict):
        raise MappingError(f"{source}: must be a table")
    for key in section:
        if key not in SECTION_KEYS:
            raise MappingError(
                f"{source}: unknown setting {key!r}",
                _did_you_mean(key, sorted(SECTION_KEYS))
                or f"known: {', '.join(sorted(SECTION_KEYS))}",
            )
    fields_table = section.get("fields")
    if not isinstance(fields_table, dict) or not fields_table:
        raise MappingError(
            f"{source}: no [{kind.name}.fields] table",
            f"map at least the required fields: {', '.join(kind.required)}, e.g. "
            f'{kind.required[0]} = "Column header"',
        )
    defaults = {
        "format": section.get("date_format"),
        "decimal": section.get("decimal"),
        "thousands": section.get("thousands"),
        "missing": _missing(section.get("missing", []), f"{source} missing"),
    }
    _check_target(section.get("target"), kind, source, apis)
    ordered = _parse_fields(fields_table, kind, "fields", defaults, source, apis)
    lines = _parse_lines(section, kind, defaults, source, apis)
    required = list(kind.required)
    if kind.lines and lines is None and kind.amount_without_lines:
        required.append(kind.amount_without_lines)  # it gives the invoice's one line
    missing = [name for name in required if name not in ordered]
    if missing:
        raise MappingError(
            f"{source}: required field{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} {'are' if len(missing) > 1 else 'is'} not mapped",
            f'add e.g. {missing[0]} = "Column header" under [{kind.name}.fields]',
        )
    key = section.get("key", list(kind.key))
    if isinstance(key, str):
        key = [key]
    if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
        raise MappingError(f"{source}: key must be a field name or a list of field names")
    for k in key:
        if k not in ordered:
            raise MappingError(
                f"{source}: the key field {k!r} is not mapped",
                _did_you_mean(k, list(ordered)) or "map it under fields, or change key",
            )
    skip = []
    for rule in section.get("skip", []):
        if not isinstance(rule, dict) or set(rule) - {"column", "pattern"} or "pattern" not in rule:
            raise MappingError(
                f'{source}: each skip rule is {{ column = "Header", pattern = "regex" }}'
            )
        try:
            re.compile(rule["pattern"])
        except re.error as exc:
            raise MappingError(
                f"{source}: skip pattern {rule['pattern']!r} is not a regex: {exc}"
            ) from None
        skip.append(SkipRule(str(rule.get("column", "")), rule["pattern"]))
    currency_column = section.get("currency_column")
    if currency_column is not None and not (isinstance(currency_column, str) and currency_column):
        raise MappingError(
            f"{source}: currency_column must be a column header",
            'e.g. currency_column = "Currency": the totals are then per currency',
        )
    return Mapping(
        kind,
        ordered,
        tuple(key),
        tuple(skip),
        _input_options(section, source),
        source,
        lines,
        currency_column,
    )


def _parse_fields(
    table: dict[str, Any],
    kind: Kind,
    part: str,
    defaults: dict[str, Any],
    source: str,
    apis: Apis | None,
) -> dict[str, FieldSpec]:
    """The field specs of a `fields` or `lines` table, in the API's order."""
    fields = _part_fields(kind, part)
    known = {f.name: f for f in fields}
    specs: dict[str, FieldSpec] = {}
    for name, raw in table.items():
        schema_field = known.get(name)
        if schema_field is None:
            raise _unknown_field(name, kind, part, source, apis)
        specs[name] = _parse_field(name, schema_field.type, raw, defaults, source)
        if specs[name].sum and part == "lines":
            raise MappingError(f"{source} line field {name}: sum is for record fields")
    return {f.name: specs[f.name] for f in fields if f.name in specs}


def _check_target(named: Any, kind: Kind, source: str, apis: Apis | None) -> None:
    """A section's `target` names the target it was written for: it must be the run's."""
    if named is None:
        return
    known = list(apis) if apis else [kind.target]
    if not isinstance(named, str) or named.strip().lower() not in known:
        raise MappingError(
            f"{source}: target {named!r} is not a target payor knows",
            f"write one of: {', '.join(known)}",
        )
    named = named.strip().lower()
    if named != kind.target:
        raise MappingError(
            f"{source}: written for {named}, but the target is {kind.target}",
            f"use --target {named}, or a mapping written for {kind.target}",
        )


def _unknown_field(
    name: str, kind: Kind, part: str, source: str, apis: Apis | None
) -> MappingError:
    """A field the target's schema lacks: the nearest names, or the target the mapping looks
    written for, and the command that lists this target's fields."""
    this = kind.target
    what = "line field" if part == "lines" else "field"
    message = f"{source}: {name!r} is not a {what} of {this}'s {kind.name}"
    schema = f"`payor schema --target {this} {kind.name}`"
    close = _did_you_mean(name, [f.name for f in _part_fields(kind, part)])
    if close:
        return MappingError(message, f"{close} ({schema} lists the fields)")
    others = [
        other
        for other, kinds in (apis or {}).items()
        if other != this and name in {f.name for f in _part_fields(kinds.get(kind.name), part)}
    ]
    if others:
        return MappingError(
            message,
            f"{name!r} is a field of {' and '.join(others)}'s {kind.name}: the mapping looks "
            f"written for {others[0]} (use --target {others[0]}, or write one for {this} with "
            f"`payor init {kind.name} FILE --target {this}`)",
        )
    return MappingError(message, f"{schema} lists the fields")


def _part_fields(kind: Kind | None, part: str) -> tuple[Field, ...]:
    if kind is None:
        return ()
    return kind.lines if part == "lines" else kind.fields


def _parse_lines(
    section: dict[str, Any],
    kind: Kind,
    defaults: dict[str, Any],
    source: str,
    apis: Apis | None,
) -> dict[str, FieldSpec] | None:
    table = section.get("lines")
    if table is None:
        return None
    if not kind.lines:
        raise MappingError(
            f"{source}: this target's {kind.name} have no lines, so [{kind.name}.lines] does "
            "not apply",
            "the rows of one invoice are one record: total their amounts with "
            '{ sum = "LineAmount" } (or sum and times)',
        )
    if not isinstance(table, dict) or not table:
        raise MappingError(f"{source}: [{kind.name}.lines] must be a table of line fields")
    lines = _parse_fields(table, kind, "lines", defaults, source, apis)
    missing = [f.name for f in kind.lines if f.required and f.name not in lines]
    if missing:
        raise MappingError(
            f"{source}: required line field{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} not mapped",
            f'add e.g. {missing[0]} = "Column header" under [{kind.name}.lines]',
        )
    return lines


def _input_options(section: dict[str, Any], source: str) -> InputOptions:
    header_row = section.get("header_row", 1)
    if not isinstance(header_row, int) or isinstance(header_row, bool) or header_row < 1:
        raise MappingError(f"{source}: header_row must be a whole number of 1 or more")
    sheet = section.get("sheet")
    if sheet is not None and not isinstance(sheet, str | int):
        raise MappingError(f"{source}: sheet must be a sheet name or a 0-based index")
    member = section.get("member")
    if member is not None and not isinstance(member, str):
        raise MappingError(f"{source}: member must be the name of a file in the .zip archive")
    return InputOptions(
        sheet=sheet,
        header_row=header_row,
        encoding=section.get("encoding"),
        delimiter=section.get("delimiter"),
        member=member,
    )


def _text(value: Any, what: str, source: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MappingError(f"{source}: {what} must be text or a number, not {value!r}")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _missing(raw: Any, where: str) -> tuple[str, ...]:
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise MappingError(f'{where}: give a list of cell texts, such as ["NA", "n/a"]')
    return tuple(t.strip() for t in texts)


def _parse_field(
    name: str, ftype: FieldType, raw: Any, defaults: dict[str, Any], source: str
) -> FieldSpec:
    where = f"{source} field {name}"
    if isinstance(raw, str):
        raw = {"column": raw}
    if not isinstance(raw, dict):
        raise MappingError(
            f'{where}: give a column header ("Header") or a table {{ column = ... }}'
        )
    for key in raw:
        if key not in FIELD_KEYS:
            raise MappingError(
                f"{where}: unknown option {key!r}",
                _did_you_mean(key, sorted(FIELD_KEYS)) or f"known: {', '.join(sorted(FIELD_KEYS))}",
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
    spec: dict[str, Any] = {"field": name, "type": ftype}
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
    if "default" in raw:
        spec["default"] = _text(raw["default"], "default", where)
    spec["missing"] = (
        _missing(raw["missing"], f"{where} missing") if "missing" in raw else defaults["missing"]
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
    if ftype is FieldType.DATE:
        formats = raw.get("format", defaults["format"])
        if isinstance(formats, str):
            formats = [formats]
        if formats is not None and (
            not isinstance(formats, list) or not all(isinstance(f, str) and f for f in formats)
        ):
            raise MappingError(f'{where}: format must be a strptime format such as "%d.%m.%Y"')
        spec["formats"] = tuple(formats or ())
    if ftype in (FieldType.INTEGER, FieldType.MONEY, FieldType.DECIMAL):
        decimal = raw.get("decimal", defaults["decimal"]) or "."
        thousands = raw.get("thousands", defaults["thousands"])
        for what, sep in (("decimal", decimal), ("thousands", thousands)):
            if sep is not None and (not isinstance(sep, str) or len(sep) != 1 or sep.isdigit()):
                raise MappingError(f'{where}: {what} must be one character such as "," or "."')
        if thousands == decimal:
            raise MappingError(f"{where}: decimal and thousands must differ")
        spec["decimal"], spec["thousands"] = decimal, thousands
        if "scale" in raw:
            try:
                scale = Decimal(str(raw["scale"]))
            except InvalidOperation:
                scale = Decimal(0)
            if isinstance(raw["scale"], bool) or not scale.is_finite() or scale <= 0:
                raise MappingError(f"{where}: scale must be a positive number such as 100")
            spec["scale"] = scale
    return FieldSpec(**spec)


LONG_HEADER = 80
LISTED_HEADERS = 20


def _listed(headers: list[str]) -> str:
    """Headers for a message: each cut to a readable length, at most LISTED_HEADERS of them."""
    cut = [repr(h if len(h) <= LONG_HEADER else h[:LONG_HEADER] + "…") for h in headers]
    more = len(cut) - LISTED_HEADERS
    return ", ".join(cut[:LISTED_HEADERS]) + (f" and {more} more" if more > 0 else "")


def _words(label: str) -> str:
    """A header or mapped column as they are compared: its words, one space apart, any case."""
    return " ".join(label.split()).casefold()


def bind(
    mapping: Mapping,
    headers: list[str],
    file_label: str,
    header_hint: Callable[[str, list[str]], str] | None = None,
) -> BoundMapping:
    """Find every mapped column in the headers (by its words, any case); exit-2 error if one is
    missing. A header cell broken over lines or padded with tabs ("start \t\n end") is
    matched by its words ("start end"), as csvkit and frictionless match it."""
    index: dict[str, int] = {}
    for i, header in enumerate(headers):
        index.setdefault(_words(header), i)
    shown = [h for h in headers if h.strip()]

    def find(column: str, what: str) -> int:
        found = index.get(_words(column))
        if found is None:
            close = suggest(column.strip(), [h for h in shown if len(h) <= LONG_HEADER])
            hint = (
                f"closest headers in the file: {', '.join(map(repr, close))}"
                if close
                else f"the file's headers are: {_listed(shown)}"
            )
            if any(len(h) > LONG_HEADER for h in shown):
                hint += (
                    "; a header cell that long is a sign of a wrong encoding or delimiter: "
                    "drop those settings to let payor detect them"
                )
            mapped = [c for s in mapping.fields.values() for c in s.source_columns]
            if not any(_words(c) in index for c in mapped):
                hint += header_hint(file_label, headers) if header_hint else ""
            raise MappingError(
                f"{file_label}: column {column!r} ({what}) is not in the header row", hint
            )
        return found

    def bound_field(spec: FieldSpec) -> BoundField:
        if spec.columns:
            cols = {
                k: (find(c, spec.field), headers[find(c, spec.field)])
                for k, c in spec.columns.items()
            }
            return BoundField(spec, object_columns=cols)
        column = spec.column or spec.sum
        if column is not None:
            i = find(column, spec.field)
            times = find(spec.times, spec.field) if spec.times else None
            return BoundField(spec, i, headers[i], times_index=times)
        return BoundField(spec)

    bound = [bound_field(spec) for spec in mapping.fields.values()]
    lines = [bound_field(s) for s in mapping.lines.values()] if mapping.lines is not None else None
    skip = [
        (find(rule.column, "skip rule") if rule.column else -1, rule.pattern, rule.column)
        for rule in mapping.skip
    ]
    # a row with none of these filled is furniture (skipped); one with some is a data row
    required_columns = sorted({i for b in required_of(mapping, bound, lines) for i in b.columns})
    currency_index = (
        find(mapping.currency_column, "currency_column") if mapping.currency_column else None
    )
    return BoundMapping(mapping, headers, bound, skip, required_columns, lines, currency_index)
