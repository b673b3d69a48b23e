"""A slow, obvious reference ("twin") of what payor's dry run produces for a table and a mapping.

Written from the contract only (`payor-cli.md`: "The mapping", "Values", "Summary";
`targets.md`: "What is common" and each target's fields; `docs/mapping.md`, `docs/targets.md`),
never from payor's own converters, so that a fast vectorised builder has an independent twin to
be compared with (`test_payload_twin.py`). Loops, dicts and `decimal.Decimal`; no pyarrow.

Scope: text cells (a CSV), every field type of the three targets (string, email, date, integer,
money, decimal, json from `columns`), the mapping forms `column`, `value`, `columns`, `default`,
`map`, `pad`, `missing`, `format` (one or a list), `decimal`, `thousands`, `scale`, and the
section's `date_format`, `decimal`, `thousands`, `missing`, `skip`. Not covered: workbook cells,
`sum`/`times`, a custom `key`, `upload all`.

Where the contract is silent, the choice is written beside the code ("silent: ...").
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

# -- the targets' fields (`payor schema --target X`, and targets.md) ------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # string, email, date, integer, money, decimal, json
    required: bool = False


def _fields(spec: str) -> tuple[Field, ...]:
    """`name:type!` words: type defaults to string, `!` marks a required field."""
    out = []
    for word in spec.split():
        required = word.endswith("!")
        word = word.rstrip("!")
        name, _, kind = word.partition(":")
        out.append(Field(name, kind or "string", required))
    return tuple(out)


@dataclass(frozen=True)
class Schema:
    record: tuple[Field, ...]
    key: str
    lines: tuple[Field, ...] | None = None  # the fields of one line, for targets with lines
    lines_key: str | None = None  # where the lines go in the payload
    amount_field: str | None = None  # the invoice amount of the control totals

    def record_field(self, name: str) -> Field:
        return next(f for f in self.record if f.name == name)


SCHEMAS: dict[tuple[str, str], Schema] = {
    ("payorcrm", "customers"): Schema(
        _fields("companyname firstname lastname phoneno emailaddress1:email! customerno! cocode"),
        key="customerno",
    ),
    ("payorcrm", "invoices"): Schema(
        _fields(
            "companyCode profitCenter customerName customerNumber! accountingDocNumber "
            "invoiceNumber! postDate:date dueDate:date paymentTerms documentType postingKey "
            "debitCreditIndicator balanceAmount billAddr:json shipAddr:json currency "
            "invoiceAmount:integer! reasonCode reasonCodeDescription fiscalYear "
            "invoiceDate:date reference1 reference2 localAmount:integer itemText fiscalPeriod "
            "issueDate:date soldTo lineItem referenceDocNo status"
        ),
        key="invoiceNumber",
        amount_field="invoiceAmount",
    ),
    ("business-suite", "customers"): Schema(
        _fields("account! email:email! phone address city state zip country"), key="email"
    ),
    ("business-suite", "invoices"): Schema(
        _fields("invoice_number! customer! date:date! due_date:date notes amount:money"),
        key="invoice_number",
        lines=_fields("description! amount:money! qty:decimal"),
        lines_key="items",
        amount_field="amount",
    ),
    ("onlyoffice", "customers"): Schema(
        _fields("companyName! email:email! phone address city state zip country"), key="email"
    ),
    ("onlyoffice", "invoices"): Schema(
        _fields(
            "number! contact! issueDate:date! dueDate:date! currency! terms! "
            "exchangeRate:decimal language purchaseOrderNumber description amount:money"
        ),
        key="number",
        lines=_fields("description quantity:decimal price:money! discount:decimal item tax"),
        lines_key="invoiceLines",
        amount_field="amount",
    ),
}


# -- what the twin answers ------------------------------------------------------------------------


class Money(Decimal):
    """A money value: a JSON number with exactly 2 decimals."""


class Dec(Decimal):
    """A quantity, discount or rate: a JSON number with at least 2 decimals."""


@dataclass
class Row:
    number: int  # the row's number in its sheet (header on row 1: the first data row is 2)
    status: str  # valid, rejected, skipped, merged
    errors: set[tuple[str | None, str]] = field(default_factory=set)  # (field, kind)
    currency: str = "no currency column"
    amount: Decimal | None = None  # this row's part of the invoice amount, when a number
    facts: set[str] = field(default_factory=set)  # what the row is like, for the tests to ask


@dataclass
class Expected:
    rows: list[Row]
    payloads: list[dict]  # the records a real run would send, in order
    totals: dict[str, dict[str, Decimal]] | None  # invoices: currency -> read/rejected/valid

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row.status == status)

    def rejected(self) -> dict[int, set[tuple[str | None, str]]]:
        return {row.number: row.errors for row in self.rows if row.status == "rejected"}


# -- values ---------------------------------------------------------------------------------------


# The largest amounts: 18 digits (money with its 2 decimals); decimals (quantities, discounts,
# rates) have at most 12 whole digits and 6 decimals. Silent in the contract for decimals: these
# are payor's documented-by-behaviour limits (see the report of test_payload_twin.py).
MAX_DIGITS = 18
DECIMAL_WHOLE_DIGITS = 12
DECIMAL_PLACES = 6

CURRENCY_CODES = ("EUR", "USD", "GBP", "CHF", "JPY")
CURRENCY_SYMBOLS = "$€£¥"


class Fault(Exception):
    """A cell that rejects its row; `kinds` as the report names them (one or more)."""

    def __init__(self, *kinds: str) -> None:
        super().__init__(*kinds)
        self.kinds = kinds


def _limits(faults: list[str]) -> None:
    if faults:
        raise Fault(*faults)


def trim(text: str) -> str:
    return text.strip()  # Python's white space: Unicode's, and the separators \x1c-\x1f


def parse_number(text: str, decimal: str = ".", thousands: str | None = None) -> Decimal:
    """A number as the contract reads one: currency and spaces dropped, minus forms, grouping."""
    for code in CURRENCY_CODES:
        text = text.replace(code, "")
    text = "".join(c for c in text if c not in CURRENCY_SYMBOLS and not c.isspace())
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    elif text.startswith("-"):
        negative, text = True, text[1:]
    elif text.endswith("-"):
        negative, text = True, text[:-1]
    elif text.startswith("+"):
        text = text[1:]
    # the thousands separator (with no `thousands`, the other of `,`/`.`) only where it
    # groups digits in threes (silent for a given `thousands`: the same rule)
    group = thousands if thousands is not None else {".": ",", ",": "."}.get(decimal)
    if group is not None and group in text:
        whole, _, _ = text.partition(decimal)
        if not re.fullmatch(r"\d{1,3}(" + re.escape(group) + r"\d{3})+", whole):
            raise Fault("not_a_number")
        text = text.replace(group, "")
    if decimal != ".":
        text = text.replace(decimal, ".")
    if not re.fullmatch(r"\d+(\.\d*)?|\.\d+", text):
        raise Fault("not_a_number")
    value = Decimal(text)
    return -value if negative else value


def places(value: Decimal) -> int:
    """How many decimal places the value needs (trailing zeros do not count)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent)


def whole_digits(value: Decimal) -> int:
    return len(str(abs(value).to_integral_value(rounding="ROUND_DOWN")).lstrip("0"))


def to_integer(text: str, decimal: str, thousands: str | None, scale: Decimal) -> int:
    value = parse_number(text, decimal, thousands) * scale
    faults = []
    if value != value.to_integral_value():
        faults.append("not_whole")
    if whole_digits(value) > MAX_DIGITS:
        faults.append("too_large")
    _limits(faults)
    return int(value)


def to_money(text: str, decimal: str, thousands: str | None) -> Money:
    value = parse_number(text, decimal, thousands)
    faults = []
    if places(value) > 2:
        faults.append("too_many_decimals")
    if whole_digits(value) + 2 > MAX_DIGITS:
        faults.append("too_large")
    _limits(faults)
    return Money(value.quantize(Decimal("0.01")))


def to_decimal(text: str, decimal: str, thousands: str | None) -> Dec:
    value = parse_number(text, decimal, thousands)
    faults = []
    if places(value) > DECIMAL_PLACES:
        faults.append("too_many_decimals")
    if whole_digits(value) > DECIMAL_WHOLE_DIGITS:
        faults.append("too_large")
    _limits(faults)
    return Dec(value if places(value) >= 2 else value.quantize(Decimal("0.01")))


def to_date(text: str, formats: list[str] | None, onlyoffice: bool) -> str:
    day = None
    if formats:
        for fmt in formats:
            try:
                day = datetime.strptime(text, fmt).date()
                break
            except ValueError:
                continue
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            day = None
    if day is None:
        raise Fault("not_a_date")
    return day.isoformat() + ("T00:00:00" if onlyoffice else "")


def is_email(text: str) -> bool:
    """`x@y`, no spaces (one `@`, something on both sides)."""
    local, at, domain = text.partition("@")
    return bool(at and local and domain and "@" not in domain) and not any(
        c.isspace() for c in text
    )


# -- one row ---------------------------------------------------------------------------------------

MISSING = object()  # the field is left out of the payload


class Table:
    """The header and the rows of the file, cells found by header as payor finds them."""

    def __init__(self, header: list[str], rows: list[list[str]]) -> None:
        self.header = header
        self.rows = rows
        self.index: dict[str, int] = {}
        for i, name in enumerate(header):
            # headers match trimmed, without regard to case; the first of two names wins
            self.index.setdefault(trim(name).casefold(), i)

    def cell(self, row: list[str], column: str) -> str:
        i = self.index[trim(column).casefold()]
        return row[i] if i < len(row) else ""


class Reader:
    """Reads one field of one row by its mapping entry."""

    def __init__(self, target: str, section: dict, table: Table) -> None:
        self.target = target
        self.section = section
        self.table = table

    def _spec(self, spec: str | dict) -> dict:
        return {"column": spec} if isinstance(spec, str) else spec

    def _missing(self, spec: dict) -> list[str]:
        # silent: a field's own `missing` stands instead of the section's (as `format` does
        # for `date_format`); the generator never gives both, so either reading passes
        return spec.get("missing", self.section.get("missing", []))

    def text(self, row: list[str], spec: dict, column: str) -> str:
        """The cell, trimmed; "" when empty or a `missing` text."""
        value = trim(self.table.cell(row, column))
        return "" if value in self._missing(spec) else value

    def raw(self, row: list[str], spec: str | dict) -> str:
        """The text a one-column field starts from: its constant, or its cell trimmed."""
        spec = self._spec(spec)
        return str(spec["value"]) if "value" in spec else self.text(row, spec, spec["column"])

    def columns(self, spec: str | dict) -> list[str]:
        spec = self._spec(spec)
        if "column" in spec:
            return [spec["column"]]
        return list(spec.get("columns", {}).values())

    def read(self, row: list[str], fld: Field, spec: str | dict) -> object:
        """The field's value (MISSING when empty); raises Fault for a cell that rejects."""
        spec = self._spec(spec)
        if "value" in spec:
            return self.convert(fld, spec, str(spec["value"]))
        if "columns" in spec:  # a json object: its parts trimmed, empty parts left out
            parts = {}
            for part, column in spec["columns"].items():
                value = self.text(row, spec, column)
                if value:
                    parts[part] = value
            return parts or MISSING
        value = self.text(row, spec, spec["column"])
        if value == "":
            if "default" not in spec:
                return MISSING
            value = str(spec["default"])
        elif "map" in spec:
            value = self.mapped(spec["map"], value)
        if "pad" in spec and len(value) < spec["pad"]:
            value = "0" * (spec["pad"] - len(value)) + value
        return self.convert(fld, spec, value)

    def mapped(self, table: dict, value: str) -> str:
        if value in table:
            return str(table[value])
        for code, meaning in table.items():
            if code.casefold() == value.casefold():
                return str(meaning)
        raise Fault("not_in_map")

    def convert(self, fld: Field, spec: dict, value: str) -> object:
        decimal = spec.get("decimal", self.section.get("decimal", "."))
        thousands = spec.get("thousands", self.section.get("thousands"))
        if fld.type == "string":
            return value
        if fld.type == "email":
            if not is_email(value):
                raise Fault("not_an_email")
            return value
        if fld.type == "date":
            formats = spec.get("format", self.section.get("date_format"))
            if isinstance(formats, str):
                formats = [formats]
            return to_date(value, formats, self.target == "onlyoffice")
        if fld.type == "integer":
            return to_integer(value, decimal, thousands, Decimal(str(spec.get("scale", 1))))
        if fld.type == "money":
            return to_money(value, decimal, thousands)
        if fld.type == "decimal":
            return to_decimal(value, decimal, thousands)
        raise AssertionError(f"no such type {fld.type}")

    def number(self, row: list[str], spec: str | dict) -> Decimal | None:
        """The amount the control totals count: the cell's number, whatever the limits."""
        spec = self._spec(spec)
        if "columns" in spec:
            return None
        value = self.raw(row, spec)
        if value == "":
            return None
        decimal = spec.get("decimal", self.section.get("decimal", "."))
        thousands = spec.get("thousands", self.section.get("thousands"))
        try:
            return parse_number(value, decimal, thousands)
        except Fault:
            return None


@dataclass
class Built:
    """One row's record fields, line fields and faults."""

    record: dict
    line: dict
    errors: set[tuple[str | None, str]]
    required_empty: bool  # every required field's column is empty: the row is skipped
    facts: set[str]
    key: str | None
    amount: Decimal | None
    currency: str
    record_raw: dict  # record fields as compared between the rows of one invoice


def build_row(
    target: str, kind: str, section: dict, table: Table, row: list[str], with_lines: bool
) -> Built:
    schema = SCHEMAS[(target, kind)]
    reader = Reader(target, section, table)
    fields_map: dict = section.get("fields", {})
    lines_map: dict = section.get("lines", {}) if with_lines else {}
    record: dict = {}
    line: dict = {}
    errors: set[tuple[str | None, str]] = set()
    record_raw: dict = {}
    required_fields: dict[str, tuple[dict, bool]] = {}  # name -> (spec, a line's field)
    refused_key: list[str] = []

    def one(fld: Field, spec: object, into: dict, raw: dict | None) -> None:
        required = fld.required
        if not with_lines and fld.name == schema.amount_field and schema.lines is not None:
            required = True  # without lines, the record's amount makes the one line's price
        if required:
            required_fields[fld.name] = (reader._spec(spec), into is line)
        try:
            value = reader.read(row, fld, spec)
        except Fault as fault:
            errors.update((fld.name, kind) for kind in fault.kinds)
            if fld.name == schema.key:  # a refused key still is the row's key: its text
                refused_key.append(reader.raw(row, spec))
            return  # silent: an invalid value compares as an empty one between an invoice's rows
        if value is MISSING:
            if required:
                errors.add((fld.name, "required"))
            return
        into[fld.name] = value
        if raw is not None:
            raw[fld.name] = value

    for fld in schema.record:
        if fld.name in fields_map:  # (a required field the mapping lacks is a mapping error)
            one(fld, fields_map[fld.name], record, record_raw)
    if schema.lines is not None and with_lines:
        for fld in schema.lines:
            if fld.name in lines_map:
                one(fld, lines_map[fld.name], line, None)
    # onlyoffice's checks (targets.md / docs: an exchange rate above 0, a quantity above 0,
    # a discount from 0 to 100)
    if target == "onlyoffice" and kind == "invoices":
        if "exchangeRate" in record and record["exchangeRate"] <= 0:
            errors.add(("exchangeRate", "out_of_range"))
        if "quantity" in line and line["quantity"] <= 0:
            errors.add(("quantity", "out_of_range"))
        if "discount" in line and not 0 <= line["discount"] <= 100:
            errors.add(("discount", "out_of_range"))

    key = record.get(schema.key, refused_key[0] if refused_key else None)
    if key is not None and schema.record_field(schema.key).type == "email":
        key = key.casefold()  # e-mail addresses compare without regard to case

    def all_empty(names: list[str]) -> bool:
        """The columns of these required fields are all empty (a constant has none)."""
        cells = [
            reader.text(row, spec, column)
            for name in names
            for spec in [required_fields[name][0]]
            for column in reader.columns(spec)
        ]
        return bool(cells) and all(cell == "" for cell in cells)

    empty = all_empty(list(required_fields))
    facts = set()
    record_required = [n for n, (_, in_line) in required_fields.items() if not in_line]
    if not empty and all_empty(record_required):
        facts.add("only line fields required")  # its invoice's required fields all empty
    if not empty and schema.lines is not None and not with_lines and "amount" in required_fields:
        others = [n for n in record_required if n != "amount"]
        if all_empty(["amount"]):
            facts.add("amount empty")  # the one line's price
        elif all_empty(others):
            facts.add("only the amount required")
    quantity = {"business-suite": "qty", "onlyoffice": "quantity"}.get(target)
    price = {"business-suite": "amount", "onlyoffice": "price"}.get(target)
    if with_lines and quantity in lines_map and reader.raw(row, lines_map[quantity]) == "":
        facts.add("quantity empty")  # the line's quantity is the default, 1
    if with_lines and any(name in (quantity, price) for name, _ in errors):
        facts.add("price or quantity not valid")
    return Built(
        record,
        line,
        errors,
        empty,
        facts,
        key,
        amount_of(target, kind, section, reader, row, with_lines),
        currency_of(section, reader, row),
        record_raw,
    )


def amount_of(
    target: str, kind: str, section: dict, reader: Reader, row: list[str], with_lines: bool
) -> Decimal | None:
    """This row's part of the invoice amount (in the currency's units), when it is a number."""
    if kind != "invoices":
        return None
    fields_map = section.get("fields", {})
    lines_map = section.get("lines", {})
    if target == "payorcrm":
        spec = fields_map.get("invoiceAmount")
        return None if spec is None else reader.number(row, spec)
    if not with_lines:
        spec = fields_map.get("amount")
        return None if spec is None else reader.number(row, spec)
    price_name, quantity_name = (
        ("amount", "qty") if target == "business-suite" else ("price", "quantity")
    )
    price = reader.number(row, lines_map[price_name]) if price_name in lines_map else None
    if price is None:
        return None
    quantity = Decimal(1)
    if quantity_name in lines_map and reader.raw(row, lines_map[quantity_name]) != "":
        quantity = reader.number(row, lines_map[quantity_name])
        if quantity is None:
            return None
    return price * quantity


NO_CURRENCY_COLUMN = "no currency column"
"""payor-cli.md, Summary: without a currency in the file "the report says 'no currency column'"."""
EMPTY_CURRENCY = "currency empty"
"""silent: the heading of rows whose currency cell is empty (docs/files.md names it)."""


def currency_of(section: dict, reader: Reader, row: list[str]) -> str:
    """The currency the totals file a row under: the currency field's value (or the column the
    mapping names for the report), else one of the two headings above."""
    spec = section.get("fields", {}).get("currency") or section.get("currency_column")
    if spec is None:
        return NO_CURRENCY_COLUMN
    try:
        value = reader.read(row, Field("currency", "string"), spec)
    except Fault:  # a code the map lacks: the cell as it is
        value = reader.raw(row, spec)
    # silent: the case of a code; payor takes "eur" and "EUR" as one currency (ISO codes are
    # ASCII letters: only those are made upper case)
    if value is MISSING or value == "":
        return EMPTY_CURRENCY
    return "".join(c.upper() if c.isascii() else c for c in str(value))


# -- records --------------------------------------------------------------------------------------


def is_blank(row: list[str]) -> bool:
    return all(trim(cell) == "" for cell in row)


def skipped_by_rule(section: dict, table: Table, row: list[str]) -> bool:
    for rule in section.get("skip", []):
        cells = [table.cell(row, rule["column"])] if "column" in rule else list(row)
        # silent: whether the rule sees the cell trimmed; the generator's cells at a skip
        # rule's column carry no white space, so either reading passes
        if any(re.search(rule["pattern"], trim(cell)) for cell in cells):
            return True
    return False


def payload_of(schema: Schema, record: dict, lines: list[dict] | None, with_lines: bool) -> dict:
    """The object sent: record fields in schema order, the lines (or the one default line)."""
    out = {f.name: record[f.name] for f in schema.record if f.name in record}
    if schema.lines is None:
        return out
    amount = out.pop("amount", None)
    if with_lines:
        out[schema.lines_key] = lines
    elif schema.lines_key == "items":
        # business-suite: {"description": <invoice_number>, "amount": <amount>, "qty": 1}
        out["items"] = [{"description": out["invoice_number"], "amount": amount, "qty": 1}]
    else:
        # onlyoffice: one line, quantity 1, price = amount, described by the invoice number
        out["invoiceLines"] = [{"description": out["number"], "quantity": 1, "price": amount}]
    if schema.lines_key == "invoiceLines":
        return onlyoffice_as_sent(out)
    return out


ONLYOFFICE_INVOICE_ITEM = "Services"
"""The `[api].invoice_item` the property tests set for onlyoffice."""


def onlyoffice_as_sent(invoice: dict) -> dict:
    """targets.md: "payor sends templateType 0, exchangeRate 1, discount 0 and tax ids 0 where
    the mapping gives none"; a dry run names a line's item and tax by title, the item being
    `[api].invoice_item` where the line names none; the portal's currency codes are upper case
    (silent in the contract: what the sender does)."""
    out = {"templateType": 0, "exchangeRate": 1} | invoice
    if isinstance(out.get("currency"), str):
        out["currency"] = out["currency"].upper()
    lines = []
    for line in invoice["invoiceLines"]:
        tax = line.get("tax")
        sent = {"item": line.get("item") or ONLYOFFICE_INVOICE_ITEM}
        sent |= {"tax": tax} if tax else {"invoiceTax1ID": 0}
        sent |= {"invoiceTax2ID": 0}
        sent |= {k: v for k, v in line.items() if k not in ("item", "tax")}
        sent.setdefault("quantity", 1)
        sent.setdefault("discount", 0)
        lines.append(sent)
    out["invoiceLines"] = lines
    return out


def expect(
    target: str, kind: str, header: list[str], rows: list[list[str]], mapping: dict
) -> Expected:
    """What a dry run of `rows` under `header` (on row 1) with `mapping` gives."""
    section = mapping[kind]
    schema = SCHEMAS[(target, kind)]
    with_lines = schema.lines is not None and kind == "invoices" and "lines" in section
    table = Table(header, rows)
    out: list[Row] = []
    built: dict[int, Built] = {}
    for number, cells in enumerate(rows, start=2):
        b = build_row(target, kind, section, table, cells, with_lines)
        row = Row(number, "valid", currency=b.currency, amount=b.amount, facts=b.facts)
        if is_blank(cells) or skipped_by_rule(section, table, cells) or b.required_empty:
            row.status = "skipped"
            row.amount = None
        else:
            built[number] = b
        out.append(row)
    data = [row for row in out if row.status != "skipped"]
    payloads: list[tuple[int, dict]] = []  # (first row, payload)
    if with_lines:
        for before, after in itertools.pairwise(data):
            key = built[after.number].key
            parted = after.number - before.number > 1
            if parted and key is not None and key == built[before.number].key:
                after.facts.add("parted from its invoice's rows by a skipped row")
        _invoices_with_lines(schema, out, built, payloads)
    else:
        _one_row_records(schema, data, built, payloads)
    totals = _totals(out) if kind == "invoices" else None
    return Expected(out, [p for _, p in sorted(payloads, key=lambda x: x[0])], totals)


def _same(a: dict, b: dict) -> bool:
    """Payloads compare as the JSON they are written as."""
    return json.dumps(a, default=str, sort_keys=True) == json.dumps(b, default=str, sort_keys=True)


def _one_row_records(
    schema: Schema, data: list[Row], built: dict[int, Built], payloads: list
) -> None:
    """Each row a record; a repeated key merges an equal payload, else `duplicate_key`."""
    first: dict[str, tuple[int, dict | None]] = {}
    for row in data:
        b = built[row.number]
        payload = None if b.errors else payload_of(schema, b.record, None, False)
        if b.key is not None and b.key in first:
            _, earlier = first[b.key]
            if payload is not None and earlier is not None and _same(earlier, payload):
                row.status = "merged"
            else:  # a repeat of a rejected row is rejected too
                row.status = "rejected"
                row.errors = set(b.errors) | {(schema.key, "duplicate_key")}
            continue
        if b.key is not None:  # the first row keeps its key, rejected or not
            first[b.key] = (row.number, payload)
        if b.errors:
            row.status, row.errors = "rejected", set(b.errors)
        else:
            payloads.append((row.number, payload))


def _invoices_with_lines(
    schema: Schema, rows: list[Row], built: dict[int, Built], payloads: list
) -> None:
    """Adjacent rows of one key are one invoice, one line each (silent: a skipped row between
    two rows parts them, as "adjacent" says). A later invoice of a key already seen is merged
    when its payload is the same, else its rows are rejected as `duplicate_key`."""
    groups: list[list[Row]] = []
    previous: Row | None = None
    for row in rows:
        if row.status != "skipped":
            key = built[row.number].key
            if (
                previous is not None
                and previous.status != "skipped"
                and key is not None
                and built[previous.number].key == key
            ):
                groups[-1].append(row)
            else:
                groups.append([row])
        previous = row
    first: dict[str, dict | None] = {}  # key -> the payload of its first invoice (None: rejected)
    for group in groups:
        record_names = {f.name for f in schema.record}
        if len(group) > 1 and any(
            name in record_names for row in group for name, _ in built[row.number].errors
        ):
            # silent: whether a refused value differs from another row's (payor says yes for
            # a code the map lacks, no for an impossible date); the tests leave it open
            for row in group:
                row.facts.add("in an invoice with a refused record field")
        if len({row.currency for row in group}) > 1:
            for row in group:
                row.facts.add("in an invoice whose rows differ in currency")
        no_total = {"quantity empty", "price or quantity not valid"}
        if any(row.amount is None or no_total & row.facts for row in group):
            for row in group:
                row.facts.add("in an invoice with a line without its total")
        key = built[group[0].number].key
        differ = [
            f.name
            for f in schema.record
            if len({repr(built[r.number].record_raw.get(f.name)) for r in group}) > 1
        ]
        for row in group:
            row.errors = set(built[row.number].errors)
            if differ:
                row.errors.add((", ".join(differ), "record_differs"))
        payload = None
        if not any(row.errors for row in group):
            lines = [built[r.number].line for r in group]
            payload = payload_of(schema, built[group[0].number].record, lines, True)
        if key is not None and key in first:
            if payload is None:
                for row in group[1:]:
                    row.facts.add("later rows of a repeated faulty invoice")
            if payload is not None and first[key] is not None and _same(first[key], payload):
                for row in group:
                    row.status = "merged"
            else:
                for row in group:
                    row.status = "rejected"
                    row.errors.add((schema.key, "duplicate_key"))
            continue
        if key is not None:
            first[key] = payload
        if payload is None:
            for row in group:
                row.status = "rejected"
                if not row.errors:
                    row.errors = {(None, "record_rejected")}
        else:
            payloads.append((group[0].number, payload))


def _totals(rows: list[Row]) -> dict[str, dict[str, Decimal]]:
    """The invoice amount per currency over the rows read (merged rows are the same invoice
    again: silent in the contract, they are not counted twice), rejected and valid."""
    totals: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        if row.amount is None or row.status in ("skipped", "merged"):
            continue
        entry = totals.setdefault(
            row.currency, {"read": Decimal(0), "rejected": Decimal(0), "valid": Decimal(0)}
        )
        entry["read"] += row.amount
        entry[row.status] += row.amount
    return totals
