"""What every target's schema is made of: field types, fields, kinds (one upload endpoint each).

The targets themselves (their kinds, fields, auth and answers) live in `targets/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property


class FieldType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DATE = "date"
    JSON = "json"
    EMAIL = "email"
    """A string that must look like an e-mail address (x@y, no spaces)."""
    MONEY = "money"
    """An exact decimal amount with at most 2 places, sent as a JSON number with exactly 2."""
    DECIMAL = "decimal"
    """An exact decimal (a quantity, a rate), sent as a JSON number with at least 2 places."""


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = False


@dataclass(frozen=True)
class Kind:
    """One upload endpoint: its fields in the API's order and the default identity of a row."""

    name: str
    path: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]
    target: str
    """The name of the API whose kind it is."""
    parent: tuple[str, str, str] | None = None
    """(parent kind, this kind's field, the parent's field) that links a row to its parent."""
    lines: tuple[Field, ...] = ()
    """The fields of one line, for an API whose invoices have lines (`[invoices.lines]`)."""
    lines_member: str = ""
    """The payload member that holds the lines ("items")."""
    amount_without_lines: str | None = None
    """The record field that gives the one line of an invoice mapped without lines."""
    date_suffix: str = ""
    """What the API wants after YYYY-MM-DD ("T00:00:00")."""

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    @cached_property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]


def fields_of(spec: str) -> tuple[Field, ...]:
    """Parse 'name:type!' words (type defaults to string, ! marks required)."""
    fields = []
    for word in spec.split():
        name, _, rest = word.partition(":")
        required = word.endswith("!")
        type_name = rest.rstrip("!") or "string"
        fields.append(Field(name.rstrip("!"), FieldType(type_name), required))
    return tuple(fields)


Apis = Mapping[str, Mapping[str, Kind]]
"""Every API's kinds, by API name then kind name: what the top hands down of the registry to a
stage that must name other APIs (a mapping written for another one)."""
