"""The PayorCRM API's kinds, fields, types and required marks: the one place that knows PayorCRM."""

from __future__ import annotations

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
    parent: tuple[str, str, str] | None = None
    """(parent kind, this kind's field, the parent's field) that links a row to its parent."""

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @cached_property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]


@dataclass(frozen=True)
class Target:
    """An API that payor can upload to."""

    name: str
    title: str
    kinds: dict[str, Kind]
    key_headers: tuple[str, str] = ("api_key", "api_secret")


def _fields(spec: str) -> tuple[Field, ...]:
    """Parse 'name:type!' words (type defaults to string, ! marks required)."""
    fields = []
    for word in spec.split():
        name, _, rest = word.partition(":")
        required = word.endswith("!")
        type_name = rest.rstrip("!") or "string"
        fields.append(Field(name.rstrip("!"), FieldType(type_name), required))
    return tuple(fields)


# Field lists and types as PayorCRM's "API integration" page documents them (seed 000).
CUSTOMERS = Kind(
    name="customers",
    path="/jsonApi/upload/customers",
    fields=_fields(
        "companyname firstname lastname phoneno emailaddress1:email! customerno! cocode"
    ),
    key=("customerno",),
)

INVOICES = Kind(
    name="invoices",
    path="/jsonApi/upload/invoices",
    fields=_fields(
        "companyCode profitCenter customerName customerNumber! accountingDocNumber "
        "invoiceNumber! postDate:date dueDate:date paymentTerms documentType postingKey "
        "debitCreditIndicator balanceAmount billAddr:json shipAddr:json currency "
        "invoiceAmount:integer! reasonCode reasonCodeDescription fiscalYear invoiceDate:date "
        "reference1 reference2 localAmount:integer itemText fiscalPeriod issueDate:date soldTo "
        "lineItem referenceDocNo status"
    ),
    key=("invoiceNumber",),
    parent=("customers", "customerNumber", "customerno"),
)

PAYORCRM = Target(
    name="payorcrm",
    title="PayorCRM",
    kinds={k.name: k for k in (CUSTOMERS, INVOICES)},
)

KIND_NAMES = tuple(PAYORCRM.kinds)


def linked_field(target: Kind) -> str | None:
    """The field of `target` that rows of another kind point to (customers: customerno)."""
    for other in PAYORCRM.kinds.values():
        if other.parent and other.parent[0] == target.name:
            return other.parent[2]
    return None


def kind(name: str) -> Kind:
    """The PayorCRM kind called `name` (customers or invoices)."""
    return PAYORCRM.kinds[name]
