"""The TOML mapping of a kind: its sections read and checked against the target's schema."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from payor_cli.check.fields import FieldSpec, missing_texts, parse_field
from payor_cli.check.nearest import did_you_mean
from payor_cli.errors import MappingError
from payor_cli.read import InputOptions
from payor_cli.schema import Apis, Field, Kind

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


@dataclass(frozen=True)
class SkipRule:
    """A row is furniture when `pattern` matches in `column` (any column: "")."""

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
    """A TOML file as a table; a missing, unreadable or malformed file is a MappingError."""
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
                did_you_mean(key, sorted(SECTION_KEYS))
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
        "missing": missing_texts(section.get("missing", []), f"{source} missing"),
    }
    _check_target(section.get("target"), kind, source, apis)
    ordered = _parse_fields(fields_table, kind, "fields", defaults, source, apis)
    lines = _parse_lines(section, kind, defaults, source, apis)
    _check_required(ordered, lines, kind, source)
    key = _parse_key(section, ordered, kind, source)
    skip = _parse_skip(section, source)
    currency_column = _parse_currency_column(section, source)
    return Mapping(
        kind,
        ordered,
        key,
        skip,
        _input_options(section, source),
        source,
        lines,
        currency_column,
    )


def _check_required(
    ordered: dict[str, FieldSpec], lines: dict[str, FieldSpec] | None, kind: Kind, source: str
) -> None:
    """Every required field mapped (an invoice without lines also needs its one line's amount)."""
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


def _parse_key(
    section: dict[str, Any], ordered: dict[str, FieldSpec], kind: Kind, source: str
) -> tuple[str, ...]:
    """The key's fields (the kind's own key unless the section names one), each mapped."""
    key = section.get("key", list(kind.key))
    if isinstance(key, str):
        key = [key]
    if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
        raise MappingError(f"{source}: key must be a field name or a list of field names")
    for k in key:
        if k not in ordered:
            raise MappingError(
                f"{source}: the key field {k!r} is not mapped",
                did_you_mean(k, list(ordered)) or "map it under fields, or change key",
            )
    return tuple(key)


def _parse_skip(section: dict[str, Any], source: str) -> tuple[SkipRule, ...]:
    """The skip rules: a column (or any) and a regex that marks a row as furniture."""
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
    return tuple(skip)


def _parse_currency_column(section: dict[str, Any], source: str) -> str | None:
    """The column naming each row's currency for the totals, where the section gives one."""
    currency_column = section.get("currency_column")
    if currency_column is not None and not (isinstance(currency_column, str) and currency_column):
        raise MappingError(
            f"{source}: currency_column must be a column header",
            'e.g. currency_column = "Currency": the totals are then per currency',
        )
    return currency_column


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
        specs[name] = parse_field(name, schema_field.type, raw, defaults, source)
        if specs[name].sum and part == "lines":
            raise MappingError(f"{source} line field {name}: sum is for record fields")
        if specs[name].sum and kind.lines:
            # the API's invoice is its lines: their amounts are sent as lines, not summed
            raise MappingError(
                f"{source} field {name}: {kind.target}'s {kind.name} have lines, so sum is not "
                "for them",
                f"map each row as a line in [{kind.name}.lines] "
                f"({', '.join(f.name for f in kind.lines)}); `payor schema --target "
                f"{kind.target} {kind.name}` lists them",
            )
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
    close = did_you_mean(name, [f.name for f in _part_fields(kind, part)])
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
    """The schema fields of a `fields` or `lines` table (none for a kind the API lacks)."""
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
    """The `[kind.lines]` table's field specs; None where the section has none."""
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
    """How to read the file: sheet, header row, encoding, delimiter, member of a .zip."""
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
