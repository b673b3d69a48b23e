"""A mapping bound to a file's headers: each mapped column found by its name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from payor_cli.check.fields import FieldSpec
from payor_cli.check.mapping import Mapping
from payor_cli.check.nearest import suggest
from payor_cli.errors import MappingError


@dataclass(frozen=True)
class BoundField:
    """A field spec with its columns found: their indexes and headers."""

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


LONG_HEADER = 80
LISTED_HEADERS = 20


def _listed(headers: list[str]) -> str:
    """Headers for a message: each cut to a readable length, at most LISTED_HEADERS of them."""
    cut = [repr(h if len(h) <= LONG_HEADER else h[:LONG_HEADER] + "…") for h in headers]
    more = len(cut) - LISTED_HEADERS
    return ", ".join(cut[:LISTED_HEADERS]) + (f" and {more} more" if more > 0 else "")


def _words(label: str) -> str:
    """A header or mapped column as they are compared: its words, one space apart, any case (a
    header cell broken over lines, "start \t\n end", is "start end", as csvkit and
    frictionless match it)."""
    return " ".join(label.split()).casefold()


def _not_found_hint(column: str, headers: list[str]) -> str:
    """The headers nearest a mapped column the file lacks, or all of them."""
    shown = [h for h in headers if h.strip()]
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
    return hint


def bind(
    mapping: Mapping,
    headers: list[str],
    file_label: str,
    header_hint: Callable[[str, list[str]], str] | None = None,
) -> BoundMapping:
    """Find every mapped column in the headers (by its words, any case); exit-2 error if one is
    missing."""
    index: dict[str, int] = {}
    for i, header in enumerate(headers):
        index.setdefault(_words(header), i)

    def find(column: str, what: str) -> int:
        found = index.get(_words(column))
        if found is None:
            mapped = [c for s in mapping.fields.values() for c in s.source_columns]
            hint = _not_found_hint(column, headers)
            if not any(_words(c) in index for c in mapped) and header_hint:
                hint += header_hint(file_label, headers)
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
