"""`payor init`: a commented mapping suggested from a file's layout, column labels and values."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import tomllib
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa

from . import readers, values
from .errors import MappingError
from .mapping import Mapping, bind, parse_mapping
from .readers import InputOptions, Table
from .schema import FieldType, Kind
from .targets import DEFAULT_TARGET, Target, get_target, target_names
from .validate import Validator

HEADER_SEARCH_ROWS = 50
"""Rows searched for the header line (report exports put title lines above it)."""
SAMPLE_ROWS = 5000
"""Data rows whose values decide formats, separators, scale and furniture rules."""
_DISTINCT = 2000
"""Distinct values per column that format guessing looks at."""


@dataclass
class Suggestion:
    """What `payor init` suggests for one file: the TOML to write and what to tell the user."""

    kind: Kind
    toml: str
    """The commented mapping TOML text, a [customers] or [invoices] section, ready to write."""
    mapping: Mapping | None
    """`parse_mapping` of that TOML when complete (None if required fields are TODO)."""
    todo: list[str]
    """Required fields that no column was found for."""
    notes: list[str]
    """Things the user should confirm (ambiguous date order, duplicate keys, ...)."""
    source: str
    """What was detected: sheet, header row, encoding, delimiter."""


# --- presets ------------------------------------------------------------------------------------


def _preset_files() -> dict[str, Any]:
    folder = resources.files("payor_cli") / "presets"
    if not folder.is_dir():
        return {}
    return {
        entry.name.removesuffix(".toml"): entry
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }


def list_presets() -> list[tuple[str, str]]:
    """The presets shipped with payor: (name, one-line description), by name."""
    found = []
    for name, entry in sorted(_preset_files().items()):
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        found.append((name, str(data.get("description", "")).strip()))
    return found


def load_preset(name: str) -> dict:
    """A preset's TOML as a dict: a shipped preset by name, or a preset file by its path."""
    files = _preset_files()
    entry = files.get(name.strip().casefold())
    if entry is not None:
        return tomllib.loads(entry.read_text(encoding="utf-8"))
    if name.endswith(".toml") and Path(name).is_file():
        try:
            return tomllib.loads(Path(name).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise MappingError(f"{name}: not valid TOML: {exc}") from None
    raise MappingError(
        f"there is no preset {name!r}",
        f"the presets are: {', '.join(sorted(files))} (see `payor init --list-presets`)",
    )


def _preset_section(name: str, kind: Kind) -> dict[str, Any]:
    data = load_preset(name)
    section = data.get(kind.name)
    if not isinstance(section, dict):
        having = [n for n, _ in list_presets() if kind.name in load_preset(n)]
        raise MappingError(
            f"preset {name!r} has no [{kind.name}] section",
            f"presets for {kind.name}: {', '.join(having) or 'none'}; or leave out --preset",
        )
    return section


# --- labels -------------------------------------------------------------------------------------


def normalise(label: str) -> str:
    """A header as compared with known labels: case, accents, spaces and punctuation dropped."""
    text = unicodedata.normalize("NFKD", label.casefold())
    return "".join(ch for ch in text if ch.isalnum() and not unicodedata.combining(ch))


# Labels per field, as `field: labels that name it || labels of columns that can serve when
# nothing names it` (a customer's name where the export has no customer number). English,
# German (SAP) and the vendors' own labels: SAP FBL5N, QuickBooks, Xero, NetSuite.
_CUSTOMER_NUMBER = (
    "Customer No; Customer Number; Customer ID; Customer Nr; Customer Code; Customer Account; "
    "Account; Account Number; Account No; Account ID; Client ID; Client Number; Client No; "
    "Debtor; Debtor Number; Debtor No; Kunde; Kundennummer; Kundennr; Kunden-ID; Debitor; "
    "Debitornummer; Debitorennummer; Konto; Kontonummer; Kd-Nr; Kunden-Nr || Customer; "
    "Customer full name; "
    "Customer Name; Name; Contact Name; Display Name; Company; Company Name"
)
_COMPANY_CODE = "Company Code; CoCode; Co Code; CoCd; Buchungskreis; BuKr; BUKRS || Subsidiary"
_LABEL_TABLE = {
    "customers": f"""
customerno: {_CUSTOMER_NUMBER}
companyname: Company Name; Company; Customer Name; Customer full name; Business Name;
    Organisation; Organization; Account Name; Name 1; Firma; Firmenname; Kundenname; Name
    || Customer; Contact Name; Display Name
firstname: First Name; Given Name; Forename; Vorname
lastname: Last Name; Surname; Family Name; Nachname
phoneno: Phone; Phone No; Phone Number; Phone numbers; Telephone; Telephone 1; Tel; Telefon;
    Telefonnummer; Phone 1 || Mobile; Mobile Number; Mobile Phone
emailaddress1: Email; Email Address; E-Mail-Adresse; Email Adresse; Mail; Primary Email;
    Contact Email; Billing Email; Email 1; Mail Address
cocode: {_COMPANY_CODE}
address: Street; Address; Street Address; Address Line 1; Address 1; Billing Address;
    Straße; Strasse; Anschrift; Adresse
city: City; Town; Billing City; Ort; Stadt; Wohnort
state: State; Region; Province; County; State/Province; Billing State; Bundesland
zip: Zip; Zip Code; Postal Code; Postcode; Post Code; Billing Zip; PLZ; Postleitzahl
country: Country; Country Code; Billing Country; Land; Länderschlüssel
""",
    "invoices": f"""
companyCode: {_COMPANY_CODE}
profitCenter: Profit Center; Profit Centre; PrCtr
customerName: Customer Name; Customer full name; Name 1; Kundenname; Debtor Name; Account Name;
    Company Name || Name; Customer; Contact Name; Company; Display Name
customerNumber: {_CUSTOMER_NUMBER}
accountingDocNumber: Accounting Document; Accounting Document Number; Accounting Doc No;
    FI Document; Journal Number; Journal No
invoiceNumber: Invoice Number; Invoice No; Invoice Nr; Invoice ID; Invoice; Inv No;
    Rechnungsnummer; Rechnungsnr; Rechnungs-Nr; Re-Nr; Rg-Nr; Rechnung; Billing Document;
    Faktura; Num; Ref Number;
    Transaction Number || Document Number; Document No; DocumentNo; Doc Number; Doc No; Number;
    Belegnummer; Belegnr; Beleg; Document
postDate: Posting Date; Post Date; Pstng Date; GL Date; Buchungsdatum; Buch.datum
dueDate: Due Date; Net due date; Net Due Dt; Net Due; Due; Due Date/Receive By;
    Payment Due Date; Nettofälligkeit; Nettofälligk; Fälligkeit; Fälligkeitsdatum; Fällig am
paymentTerms: Payment Terms; Terms; Terms of Payment; Payt Terms; Zahlungsbedingung;
    Zahlungsbedingungen; ZBd
documentType: Document Type; Doc Type; Doc. Type; Transaction type; Belegart || Type; Typ
postingKey: Posting Key; PK; PstKy; Buchungsschlüssel; BSchl; BS
debitCreditIndicator: Debit/Credit ind; Debit/Credit Indicator; Debit/Credit; D/C; Dr/Cr; S/H;
    Soll/Haben-Kennz.; Soll/Haben-Kennzeichen; Soll/Haben
balanceAmount: Balance Amount; Balance; Open Balance; Amount Remaining; Amount Due;
    InvoiceAmountDue; Balance Due; Open Amount; Outstanding; Outstanding Amount;
    Remaining Amount; Offener Betrag; Restbetrag; Saldo
currency: Currency; Currency Code; Curr; Crcy; Ccy; Cur; Local Currency; LCurr;
    Document Currency; Währung; Hauswährung; Belegwährung
invoiceAmount: Invoice Amount; Amount; Total; Total Amount; Invoice Total; Gross Amount;
    Amount in local currency; Amount in LC; Amt in loc.cur.; Amount in doc. curr.;
    Amount in document currency; Betrag in Hauswährung; Betrag in HW; Betrag in Belegwährung;
    Betrag; Rechnungsbetrag; Bruttobetrag; Gesamtbetrag || Line Amount; Line Total; Value
reasonCode: Reason Code; Dispute Code; Reason
reasonCodeDescription: Reason Code Description; Reason Description; Dispute Reason
fiscalYear: Fiscal Year; FY; Geschäftsjahr; GJahr || Year; Jahr
invoiceDate: Invoice Date; Date; Document Date; Doc. Date; Doc Date; Invoice Dt; Billing Date;
    Transaction Date; Txn Date; Belegdatum; Rechnungsdatum || Datum
reference1: Reference; Reference 1; Referenz; Ref; Your Reference; Customer Reference;
    PO Number
reference2: Reference 2; Assignment; Zuordnung; Reference Key
localAmount: Local Amount; Amount Local Currency; Betrag Hauswährung
itemText: Item Text; Text; Description; Line Description; Memo; Memo/Description;
    Buchungstext; Positionstext; Line Text
fiscalPeriod: Fiscal Period; Period; Posting Period; Periode; Buchungsperiode
issueDate: Issue Date; Issued; Ausstellungsdatum
soldTo: Sold To; Sold-to; Sold-to Party; Auftraggeber
lineItem: Line Item; Line; Line No; Line Number; Itm; Item No; Position; Pos; BUZEI
    || Item; Posten
referenceDocNo: Reference Doc No; Reference Document; Ref Doc; Ref. Doc No; Referenzbeleg
status: Status; Invoice Status; State; Stat
""",
}
# Labels of a column that holds the invoice's total, most specific first: in an export with one
# row per invoice line it repeats on every line, where a bare "Amount" may be the line's own.
_INVOICE_TOTALS = [
    normalise(label)
    for label in (
        "Invoice Total", "Invoice Amount", "Total Invoice Amount", "Total Amount", "Total",
        "Gross Total", "Gross Amount", "Rechnungsbetrag", "Rechnungssumme", "Gesamtbetrag",
        "Bruttobetrag", "Gesamtsumme",
    )
]  # fmt: skip
_EXTRA_LABELS = (
    "Transaction type; Open balance; Full name; Bill address; Ship address; Phone numbers; "
    "Quantity; Unit Price; UnitAmount; Tax; TaxAmount; TaxTotal; Country; Address; City; "
    "Postal Code; Zip; Street; Clearing; Clearing Document; Dunning Level; Mahnstufe; "
    "Days Late; Aging; Past Due"
)


def _parse_labels(table: str) -> dict[str, tuple[list[str], list[str]]]:
    """`field: a; b || c` lines (indented lines continue) -> field: (strong, weak), normalised."""
    entries: dict[str, str] = {}
    name = None
    for line in table.splitlines():
        if not line.strip():
            continue
        if line[0].isspace() and name:
            entries[name] += " " + line.strip()
            continue
        name, _, rest = line.partition(":")
        entries[name] = rest.strip()
    parsed = {}
    for name, text in entries.items():
        strong, _, weak = text.partition("||")
        parsed[name] = tuple(
            list(dict.fromkeys(normalise(s) for s in part.split(";") if s.strip()))
            for part in (strong, weak)
        )
    return parsed


_NORMALISED = {kind_name: _parse_labels(table) for kind_name, table in _LABEL_TABLE.items()}
_BY_FIELD = {name: labels for fields in _NORMALISED.values() for name, labels in fields.items()}
assert len(_BY_FIELD) == sum(map(len, _NORMALISED.values())), "a field name in two kinds"

# Fields of other targets (business-suite) that use the labels of PayorCRM fields: field name ->
# the PayorCRM fields whose labels serve, by preference. The first one's labels name the field
# (and so does the field's own name, the last of them); the others' can serve when nothing names
# it. No target shares a field name with PayorCRM, so a kind's field name says which labels it
# takes. business-suite's address, city, state, zip and country have labels of their own above.
_LABELS_OF: dict[str, tuple[str, ...]] = {
    "account": ("companyname",),
    "email": ("emailaddress1",),
    "phone": ("phoneno",),
    "invoice_number": ("invoiceNumber",),
    # business-suite finds an invoice's customer by the customer's e-mail or account name, not
    # by a number: an e-mail column if the invoices file has one, else the customer's name; a
    # customer number column only when there is neither
    "customer": ("emailaddress1", "customerName", "customerNumber"),
    "date": ("invoiceDate",),
    "due_date": ("dueDate",),
    "amount": ("invoiceAmount",),
    "notes": ("itemText",),
    # onlyoffice
    "companyName": ("companyname",),
    "number": ("invoiceNumber",),
    "contact": ("emailaddress1", "customerName", "customerNumber"),
    "issueDate": ("invoiceDate",),
    "terms": ("paymentTerms",),
    "purchaseOrderNumber": ("reference1",),
    "description": ("itemText",),
}
_ALIAS_COMMENTS = {
    "customer": "business-suite finds the invoice's customer by its e-mail or account name",
    "contact": "ONLYOFFICE finds the invoice's company by its e-mail or name",
}
"""A comment on the line of a field from _LABELS_OF, for what its label does not say."""


def _labels(kind: Kind, name: str) -> tuple[list[str], list[str]]:
    """The (strong, weak) normalised labels of one of the kind's fields."""
    # PayorCRM's own fields keep their labels (its issueDate is no other target's issueDate)
    own = get_target(None).kinds.get(kind.name) is kind
    sources = None if own else _LABELS_OF.get(name)
    if sources is None or kind.field(name) is None:
        return _NORMALISED.get(kind.name, {}).get(name, ([], []))
    first_strong, first_weak = _BY_FIELD[sources[0]]
    strong = list(dict.fromkeys([*first_strong, normalise(name)]))
    weak = [*first_weak]
    for other in sources[1:]:
        weak.extend(_BY_FIELD[other][0] + _BY_FIELD[other][1])
    return strong, [label for label in dict.fromkeys(weak) if label not in strong]


def _own_field(kind: Kind, payorcrm_name: str) -> str | None:
    """The kind's field that takes a PayorCRM field's place (itself in a PayorCRM kind)."""
    if kind.field(payorcrm_name) is not None:
        return payorcrm_name
    for name, sources in _LABELS_OF.items():
        if sources[0] == payorcrm_name and kind.field(name) is not None:
            return name
    return None


def _target_of(kind: Kind) -> Target:
    """The target whose kind it is (the default target for a kind of none)."""
    for name in target_names():
        target = get_target(name)
        if target.kinds.get(kind.name) is kind:
            return target
    return get_target(None)


_FIELD_NAME_SCORE = 4.0
_STRONG_SCORE = 3.0
_WEAK_SCORE = 2.0
_FUZZY_CUTOFF = 0.88


def _known_labels() -> set[str]:
    known = {normalise(label) for label in _EXTRA_LABELS.split(";")}
    for fields in _NORMALISED.values():
        for name, (strong, weak) in fields.items():
            known.add(normalise(name))
            known.update(strong, weak)
    for _, entry in _preset_files().items():
        try:
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        for section in data.values():
            if isinstance(section, dict):
                for spec in (section.get("fields") or {}).values():
                    for label in _alternatives(
                        spec.get("column") if isinstance(spec, dict) else spec
                    ):
                        known.add(normalise(label))
    known.discard("")
    return known


def _alternatives(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


# --- reading the sample ---------------------------------------------------------------------------


@dataclass
class _Located:
    options: InputOptions
    state_encoding: str | None
    comment_encoding: str | None
    delimiter: str | None
    sheet: str | None
    sheet_is_first: bool


def _non_empty(row: list[str]) -> list[str]:
    return [c.strip() for c in row if c and c.strip()]


_NUMERIC = re.compile(r"^[\d\s.,:/'()+\-%$€£¥*]+$")


def _header_index(rows: list[list[str]], known: set[str]) -> tuple[int, int]:
    """(index of the best header row in `rows`, how many known labels it holds)."""
    best, best_score = -1, 0
    for index, row in enumerate(rows):
        cells = _non_empty(row)
        if len(cells) < 2:
            continue
        score = sum(1 for c in cells if normalise(c) in known)
        if score > best_score:
            best, best_score = index, score
    if best >= 0 and best_score >= 2:
        return best, best_score
    widest = max((len(_non_empty(row)) for row in rows), default=0)
    for index, row in enumerate(rows):
        cells = _non_empty(row)
        if len(cells) < max(2, widest / 2):
            continue
        texty = sum(1 for c in cells if not _NUMERIC.match(c))
        if texty >= 0.7 * len(cells):
            return index, 0
    return 0, 0


def _locate(path: Path, options: InputOptions, preset: dict[str, Any] | None) -> _Located:
    """Sheet, header row, encoding and delimiter: given, from the preset, or detected."""
    preset = preset or {}
    known = _known_labels()
    sheet = options.sheet if options.sheet is not None else preset.get("sheet")
    encoding = options.encoding or preset.get("encoding")
    delimiter = options.delimiter or preset.get("delimiter")
    header_row = options.header_row if options.header_row != 1 else preset.get("header_row", 1)
    names = readers.sheet_names(path)
    base = InputOptions(sheet=sheet, encoding=encoding, delimiter=delimiter)

    def search(opts: InputOptions) -> tuple[int, int, list[list[str]], dict[str, Any]]:
        rows, detected = readers.read_sample_rows(path, opts, HEADER_SEARCH_ROWS)
        if header_row != 1:
            numbers = detected["row_numbers"]
            at = numbers.index(header_row) if header_row in numbers else -1
            cells = rows[at] if at >= 0 else []
            return at, sum(1 for c in _non_empty(cells) if normalise(c) in known), rows, detected
        at, score = _header_index(rows, known)
        return at, score, rows, detected

    if names is not None and sheet is None and len(names) > 1:
        scored = []
        for position, name in enumerate(names):
            at, score, rows, detected = search(InputOptions(sheet=name))
            filled = len(_non_empty(rows[at])) if 0 <= at < len(rows) else 0
            scored.append((score, filled, -position, name))
        sheet = max(scored)[3]
        base = InputOptions(sheet=sheet, encoding=encoding, delimiter=delimiter)
    at, score, rows, detected = search(base)
    if detected["format"] == "csv" and delimiter is None:
        # A sniffer is fooled by title lines above the header and by amounts such as 1,234.56
        # in a ;-separated file: the delimiter under which a header of known labels appears,
        # with rows below it as wide as it is, wins.
        def rank(found: tuple[int, int, list[list[str]], dict[str, Any]]) -> tuple:
            at, score, rows, _ = found
            if at < 0:
                return (score, 0, 0)
            width = len(rows[at])
            agreeing = sum(1 for row in rows[at + 1 :] if len(row) == width)
            return (score, agreeing if width >= 2 else 0, len(_non_empty(rows[at])))

        best = (at, score, rows, detected)
        for candidate in readers.DELIMITERS:
            if candidate == detected["delimiter"]:
                continue
            found = search(InputOptions(sheet=sheet, encoding=encoding, delimiter=candidate))
            if rank(found) > rank(best):
                best = found
        at, score, rows, detected = best
    if header_row != 1:
        found_row = header_row
    else:
        found_row = detected["row_numbers"][at] if 0 <= at < len(rows) else 1
    is_text = detected["format"] == "csv"
    used_encoding = detected.get("encoding") if is_text else None
    state_encoding = encoding if is_text and encoding else None
    comment_encoding = None
    if is_text and not encoding and used_encoding:
        if str(used_encoding).startswith(("utf-16", "utf-32")):
            state_encoding = used_encoding
        else:
            comment_encoding = used_encoding
    sheet_name = detected.get("sheet")
    return _Located(
        InputOptions(
            sheet=sheet_name if sheet_name is not None else None,
            header_row=found_row,
            encoding=state_encoding or encoding,
            delimiter=detected.get("delimiter") if is_text else None,
        ),
        state_encoding,
        comment_encoding,
        detected.get("delimiter") if is_text else None,
        sheet_name,
        bool(
            sheet_name is not None
            and options.sheet is None
            and detected.get("sheets", [None])[0] == sheet_name
        ),
    )


@dataclass
class _Sample:
    """The first data rows below the header: trimmed texts (None = empty) per column."""

    table: Table
    columns: list[list[str | None]]
    date_cells: list[list[bool] | None]
    first_row: int
    chunk: readers.Chunk | None

    @property
    def rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    @classmethod
    def read(cls, table: Table, limit: int) -> _Sample:
        width = len(table.headers)
        chunks = table.chunks()
        chunk = None
        try:
            chunk = next(chunks, None)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        if chunk is None:
            return cls(
                table, [[] for _ in range(width)], [None] * width, table.header_row + 1, None
            )
        n = min(chunk.num_rows, limit)
        chunk = readers.Chunk(
            [c.slice(0, n) for c in chunk.columns],
            chunk.first_row,
            [d.slice(0, n) if d is not None else None for d in chunk.date_cells],
            {k: v for k, v in chunk.malformed.items() if k < n},
        )
        columns = []
        for column in chunk.columns:
            columns.append(
                [(v.strip() or None) if v is not None else None for v in column.to_pylist()]
            )
        dates: list[list[bool] | None] = []
        for index in range(width):
            mask = chunk.date_cells[index] if index < len(chunk.date_cells) else None
            dates.append([bool(x) for x in mask.to_pylist()] if mask is not None else None)
        return cls(table, columns, dates, chunk.first_row, chunk)

    def texts(self, index: int, rows: list[int]) -> list[str]:
        """The non-empty text cells (not real date cells) of a column in the given rows."""
        column = self.columns[index]
        mask = self.date_cells[index]
        return [
            column[r] for r in rows if column[r] is not None and not (mask is not None and mask[r])
        ]


# --- values: dates --------------------------------------------------------------------------------

_DATE_BASES = (
    "%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%y", "%d/%m/%y", "%Y/%m/%d",
    "%d-%m-%Y", "%m-%d-%Y", "%d.%m.%y", "%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%d-%b-%y",
    "%Y%m%d",
)  # fmt: skip
DATE_FORMATS = tuple(
    base + time
    for base in _DATE_BASES
    for time in ("", " %H:%M", " %H:%M:%S")
    if not (base == "%Y%m%d" and time)
)
_CONFIRM_ORDER = "confirm: day/month order could not be decided from the data"


_DIRECTIVES = {
    "d": r"\s?\d{1,2}",
    "m": r"\d{1,2}",
    "Y": r"\d{4}",
    "y": r"\d\d",
    "H": r"\d{1,2}",
    "M": r"\d{1,2}",
    "S": r"\d{1,2}",
    "b": r"[^\W\d_]{3}",
}


def _shape(fmt: str) -> re.Pattern[str]:
    """A regex that every text strptime reads with `fmt` matches (a cheap first test)."""
    parts = re.split(r"(%.)", fmt)
    pattern = "".join(
        _DIRECTIVES[p[1]] if p.startswith("%") else r"\s+".join(map(re.escape, p.split(" ")))
        for p in parts
    )
    return re.compile(pattern, re.IGNORECASE)


_SHAPES: dict[str, re.Pattern[str]] = {}


def _parses(value: str, fmt: str) -> bool:
    shape = _SHAPES.get(fmt)
    if shape is None:
        shape = _SHAPES[fmt] = _shape(fmt)
    if not shape.fullmatch(value):
        return False
    try:
        dt.datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _order(fmt: str) -> str | None:
    """'dm' or 'md' for a format with a numeric day and month, else None."""
    d, m = fmt.find("%d"), fmt.find("%m")
    if d < 0 or m < 0 or fmt.startswith("%Y"):
        return None
    return "dm" if d < m else "md"


def _swapped(fmt: str) -> str:
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def _separator(fmt: str) -> str:
    return next((ch for ch in fmt.split(" ")[0].replace("%", "") if not ch.isalpha()), "")


@dataclass
class _DateGuess:
    formats: tuple[str, ...] | None
    """None: no format needed (ISO text, real date cells or nothing)."""
    coverage: float = 1.0
    ambiguous: bool = False
    bad: list[str] = field(default_factory=list)


def _guess_dates(texts: list[str]) -> _DateGuess:
    distinct = list(dict.fromkeys(texts))[:_DISTINCT]
    if not distinct:
        return _DateGuess(None)
    if all(values.iso_date(v) for v in distinct):
        return _DateGuess(None)
    full = [f for f in DATE_FORMATS if all(_parses(v, f) for v in distinct)]
    if full:
        chosen = full[0]
        ambiguous = False
        if _order(chosen) and all(_parses(v, _swapped(chosen)) for v in distinct):
            ambiguous = True
            preferred = "md" if _separator(chosen) == "/" else "dm"
            if _order(chosen) != preferred:
                chosen = _swapped(chosen)
        return _DateGuess((chosen,), 1.0, ambiguous)
    # several styles in one column (an export merged from two sources): cover them in turn
    hits = {f: {v for v in distinct if _parses(v, f)} for f in DATE_FORMATS}
    left = set(distinct)
    chosen_formats: list[str] = []
    order = None
    while left and len(chosen_formats) < 3:
        counts = [
            (len(hits[f] & left), -DATE_FORMATS.index(f), f)
            for f in DATE_FORMATS
            if f not in chosen_formats and not (order and _order(f) and _order(f) != order)
        ]
        best_hits, _, best = max(counts)
        if not best_hits:
            break
        chosen_formats.append(best)
        order = order or _order(best)
        left -= hits[best]
    left = [v for v in distinct if v in left]
    left = [v for v in left if not values.iso_date(v)]
    coverage = 1 - len(left) / len(distinct)
    return _DateGuess(tuple(chosen_formats) or None, coverage, False, left[:3])


def _date_ok(texts: list[str], formats: tuple[str, ...] | None) -> list[str]:
    """The values (distinct, up to 3) that the formats (None: ISO) do not read."""
    parse = values.date_with_formats(formats) if formats else values.iso_date
    bad = [v for v in dict.fromkeys(texts) if parse(v) is None]
    return bad[:3]


# --- values: amounts ------------------------------------------------------------------------------

_NUMBERS = (FieldType.INTEGER, FieldType.MONEY, FieldType.DECIMAL)
"""Field types read as amounts: decimal and thousands apply; only INTEGER has a scale."""
_PLACES = {FieldType.MONEY: 2, FieldType.DECIMAL: values.DECIMAL_PLACES}
"""The decimals that values.money and values.exact_decimal take (no mapping sets a scale)."""

_CODE = re.compile(r"^[A-Z]{3}\s+|\s+[A-Z]{3}$")
_AMOUNT = re.compile(
    r"(?P<open>\()?(?P<sign>[-+])?(?P<num>[\d.,'’]*\d[\d.,'’]*)(?P<trail>-)?(?P<close>\))?"
)


def _amount_match(text: str) -> re.Match[str] | None:
    cleaned = _CODE.sub("", text)
    cleaned = "".join(
        ch for ch in cleaned if not (ch.isspace() or unicodedata.category(ch) in ("Sc", "Zs"))
    )
    return _AMOUNT.fullmatch(cleaned)


@dataclass
class _AmountGuess:
    decimal: str | None = None
    thousands: str | None = None
    scale: int | None = None
    negatives: dict[str, str] = field(default_factory=dict)
    """How negative amounts are written -> an example value."""
    coverage: float = 1.0
    bad: list[str] = field(default_factory=list)
    note: str | None = None
    """What to check about the separators."""
    scale_note: str | None = None
    """What to check about the scale (more than 2 decimals)."""


def _guess_amounts(texts: list[str]) -> _AmountGuess:
    distinct = list(dict.fromkeys(texts))[: _DISTINCT * 2]
    if not distinct:
        return _AmountGuess()
    decimal_votes: Counter[str] = Counter()
    thousands_seen: Counter[str] = Counter()
    three_after: Counter[str] = Counter()
    negatives: dict[str, str] = {}
    cores: list[str] = []
    bad = []
    for value in distinct:
        match = _amount_match(value)
        if match is None or bool(match["open"]) != bool(match["close"]):
            bad.append(value)
            continue
        if match["open"]:
            negatives.setdefault("parentheses", value)
        if match["trail"]:
            negatives.setdefault("a trailing minus", value)
        core = match["num"]
        cores.append(core)
        seps = [ch for ch in core if not ch.isdigit()]
        if not seps:
            continue
        kinds = set(seps)
        if len(kinds) >= 2:
            last = seps[-1]
            if last in ".,":
                decimal_votes[last] += 1
            for other in kinds - {last}:
                thousands_seen[other] += 1
        elif len(seps) >= 2 or seps[0] in "'’":
            thousands_seen[seps[0]] += 1
        else:
            sep = seps[0]
            before, _, after = core.partition(sep)
            if len(after) != 3 or len(before) > 3 or not before or before == "0":
                decimal_votes[sep] += 1
            else:
                three_after[sep] += 1
    guess = _AmountGuess(negatives=negatives)
    if decimal_votes:
        guess.decimal = decimal_votes.most_common(1)[0][0]
        if len(decimal_votes) > 1:
            guess.note = "both , and . look like the decimal separator; check decimal"
    elif thousands_seen.get(",") or three_after.get(","):
        guess.decimal = "."
    elif thousands_seen.get(".") or three_after.get("."):
        guess.decimal = ","
    if not decimal_votes and not thousands_seen and three_after:
        sep = three_after.most_common(1)[0][0]
        shown = next(v for v in distinct if sep in v)
        guess.note = f"amounts such as {shown!r} were read with {sep!r} grouping thousands"
    other = {".": ",", ",": "."}.get(guess.decimal or ".", ",")
    for candidate in (other, "'", "’"):
        if thousands_seen.get(candidate) or (
            candidate == other and three_after.get(candidate) and not decimal_votes.get(candidate)
        ):
            guess.thousands = candidate
            break
    decimal = guess.decimal or "."
    needed = written = 0
    for core in cores:
        if decimal in core:
            fraction = core.rpartition(decimal)[2]
            if fraction.isdigit():
                written = max(written, len(fraction))
                needed = max(needed, len(fraction.rstrip("0")))
    if written:
        if needed <= 2:
            guess.scale = 100
        elif needed <= 6:
            guess.scale = 10**needed
            guess.scale_note = f"amounts have {needed} decimals: sent ×{guess.scale}; check scale"
    checked = _amount_bad(distinct, decimal, guess.thousands, guess.scale or 1)
    guess.bad = checked[:3]
    guess.coverage = 1 - len(checked) / len(distinct)
    return guess


def _amount_bad(texts: list[str], decimal: str, thousands: str | None, scale: Any) -> list[str]:
    """The values that `values.integer` refuses with these settings (distinct)."""
    if not texts:
        return []
    distinct = list(dict.fromkeys(texts))
    scale = Decimal(str(scale))
    converted = values.integer(pa.array(distinct, pa.string()), decimal, thousands, scale)
    refused = [False] * len(distinct)
    for fault in converted.faults:
        for i, hit in enumerate(fault.mask.to_pylist()):
            refused[i] = refused[i] or bool(hit)
    return [v for v, r in zip(distinct, refused, strict=True) if r]


def _is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _names(texts: list[str]) -> bool:
    """Whether most values read as names, not codes."""
    # "Bright Dental", "1042 Bright Dental" read as names; "0379-NEVHP", "010001" do not
    names = sum(1 for t in texts if " " in t or any(ch.islower() for ch in t))
    return bool(texts) and names >= 0.5 * len(texts)


# --- the plan: field -> source ------------------------------------------------------------------


@dataclass
class _Choice:
    field: str
    type: FieldType
    column: int | None = None
    columns: dict[str, int] | None = None
    value: str | None = None
    how: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    fixed: set[str] = field(default_factory=set)
    comments: list[str] = field(default_factory=list)


@dataclass
class _SkipRule:
    column: int | None
    pattern: str
    comment: str


_TOTAL_ROWS = r"(?i)^(grand |sub-?)?totals?\b"
_TOTAL_CELLS = r"(?i)^(grand |sub-?)?totals?( for .*)?$"
_FURNITURE = (
    (r"^\*+$", r"^\*+$", "total rows (*, **)"),
    (_TOTAL_ROWS, _TOTAL_CELLS, "total rows"),
    (
        r"(?i)^(gesamtsumme|gesamt|summe|zwischensumme|ergebnis|insgesamt)\b",
        r"(?i)^(gesamtsumme|gesamt|summe|zwischensumme|ergebnis|insgesamt)$",
        "total rows",
    ),
    (
        r"(?i)^(monday|tuesday|wednesday|thursday|friday|saturday|sunday),",
        r"(?i)^(monday|tuesday|wednesday|thursday|friday|saturday|sunday), .*\d:\d\d",
        "the report's timestamp footer",
    ),
    (r"(?i)^(accrual|cash) basis\b", r"(?i)^(accrual|cash) basis\b", "the report's footer"),
)


class _Plan:
    """The choices for one kind and one file, built up step by step."""

    def __init__(self, kind: Kind, headers: list[str], sample: _Sample) -> None:
        self.kind = kind
        self.headers = headers
        self.sample = sample
        self.choices: dict[str, _Choice] = {}
        self.used: set[int] = set()
        self.skip: list[_SkipRule] = []
        self.key: list[str] | None = None
        self.key_comment: str | None = None
        self.notes: list[str] = []
        self.preset_missing: list[str] = []
        self.duplicates_noted = False
        self.left_out: dict[str, _Choice] = {}
        """Fields matched to a column but left out: they differ between the lines of an invoice."""
        self.normal = [normalise(h) for h in headers]
        first: dict[str, int] = {}
        for i, h in enumerate(headers):
            if h.strip():
                first.setdefault(h.strip().casefold(), i)
        self.addressable = set(first.values())
        """Columns a mapping can name: `bind` finds the first of equal headers, no empty one."""
        self._compatible: dict[tuple[FieldType, int], bool] = {}
        self.unfit: dict[str, tuple[int, str]] = {}
        self.data_rows = self._dense_rows()
        self.value_rows = self.data_rows
        self.required = list(kind.required)
        """The fields a mapping without lines must map: the kind's required ones and, for
        invoices with lines, the amount that gives each invoice its one line."""
        if (
            kind.lines
            and kind.amount_without_lines
            and kind.amount_without_lines not in kind.required
        ):
            self.required.append(kind.amount_without_lines)

    # -- helpers

    def _dense_rows(self) -> list[int]:
        """Rows that look like data: most of the cells a full row has are filled."""
        sample = self.sample
        counts = [
            sum(1 for column in sample.columns if column[r] is not None) for r in range(sample.rows)
        ]
        if not counts:
            return []
        ordered = sorted(counts)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        return [r for r, c in enumerate(counts) if c > p90 / 2]

    def header(self, index: int) -> str:
        return self.headers[index]

    def find_header(self, alternatives: list[str]) -> int | None:
        """The first alternative the file has (compared as normalised labels)."""
        for label in alternatives:
            wanted = label.strip().casefold()
            for i, h in enumerate(self.headers):
                if i in self.addressable and h.strip().casefold() == wanted:
                    return i
            target = normalise(label)
            for i, n in enumerate(self.normal):
                if i in self.addressable and n and n == target:
                    return i
        return None

    def compatible(self, name: str, index: int) -> bool:
        """Whether the column's values fit the field's type (dates, amounts, e-mails, JSON)."""
        ftype = self.kind.field(name).type
        if (ftype, index) not in self._compatible:
            self._compatible[ftype, index] = self._fits(ftype, index)
        return self._compatible[ftype, index]

    def _fits(self, ftype: FieldType, index: int) -> bool:
        texts = self.sample.texts(index, self.data_rows)
        if not texts:
            return ftype is not FieldType.JSON
        if ftype is FieldType.DATE:
            return _guess_dates(texts).coverage >= 0.75
        if ftype in _NUMBERS:
            return _guess_amounts(texts).coverage >= 0.75
        if ftype is FieldType.EMAIL:
            return sum("@" in t for t in texts) >= 0.5 * len(texts)
        if ftype is FieldType.JSON:
            return sum(_is_object(t) for t in texts) >= 0.9 * len(texts)
        return True

    def fill(self, index: int) -> float:
        rows = self.data_rows
        if not rows:
            return 0.0
        column = self.sample.columns[index]
        return sum(1 for r in rows if column[r] is not None) / len(rows)

    def assign(self, choice: _Choice) -> None:
        self.choices[choice.field] = choice
        if choice.column is not None:
            self.used.add(choice.column)
        for index in (choice.columns or {}).values():
            self.used.add(index)

    # -- preset

    def apply_preset(self, section: dict[str, Any]) -> None:
        defaults = {
            "format": section.get("date_format"),
            "decimal": section.get("decimal"),
            "thousands": section.get("thousands"),
        }
        for given, raw in (section.get("fields") or {}).items():
            # a preset names PayorCRM's fields: another target's kind takes those it has
            name = _own_field(self.kind, given)
            if name is None and self._other_targets_field(given):
                continue
            schema_field = self.kind.field(name) if name else None
            if schema_field is None:
                raise MappingError(f"preset: {given!r} is not a {self.kind.name} field")
            spec = raw if isinstance(raw, dict) else {"column": raw}
            choice = _Choice(name, schema_field.type, how="preset")
            if "value" in spec:
                choice.value = str(spec["value"])
            elif "columns" in spec:
                found = {k: self.find_header(_alternatives(v)) for k, v in spec["columns"].items()}
                if any(i is None for i in found.values()):
                    self._preset_lacks(name)
                    continue
                choice.columns = {k: i for k, i in found.items() if i is not None}
            else:
                index = self.find_header(_alternatives(spec.get("column")))
                if index is None:
                    self._preset_lacks(name)
                    continue
                choice.column = index
            for option in ("default", "map", "scale"):
                if option == "scale" and schema_field.type is not FieldType.INTEGER:
                    continue  # money and decimals have no scale
                if option in spec:
                    choice.options[option] = spec[option]
                    choice.fixed.add(option)
            if schema_field.type is FieldType.DATE:
                given = spec.get("format", defaults["format"])
                if given:
                    choice.options["format"] = tuple(_alternatives(given))
                    choice.fixed.add("format")
            if schema_field.type in _NUMBERS:
                for option in ("decimal", "thousands"):
                    given = spec.get(option, defaults[option])
                    if given:
                        choice.options[option] = given
                        choice.fixed.add(option)
            self.assign(choice)
        for rule in section.get("skip", []):
            if not isinstance(rule, dict) or "pattern" not in rule:
                continue
            if rule.get("column"):
                index = self.find_header(_alternatives(rule["column"]))
                if index is None:
                    continue
                self.skip.append(_SkipRule(index, rule["pattern"], "from the preset"))
            else:
                self.skip.append(_SkipRule(None, rule["pattern"], "from the preset"))
        key = [_own_field(self.kind, k) or k for k in _alternatives(section.get("key"))]
        if key:
            self.key = key

    def _other_targets_field(self, name: str) -> bool:
        """Whether `name` is a field of the default target's kind, where this kind is another's."""
        default = get_target(None).kinds.get(self.kind.name)
        return default is not None and default is not self.kind and default.field(name) is not None

    def _preset_lacks(self, name: str) -> None:
        # a preset covers several layouts of its vendor: only a missing required field is news
        if name in self.required:
            self.preset_missing.append(name)

    # -- labels

    def _label_score(self, name: str, index: int) -> tuple[float, str] | None:
        header = self.normal[index]
        if not header:
            return None
        strong, weak = _labels(self.kind, name)
        field_name = normalise(name)
        if header == field_name and name not in _LABELS_OF:
            # a field of _LABELS_OF is scored by the labels it takes, its own name the last of
            # them: a "Customer" column must not beat an e-mail one, nor "Account" a company
            return _FIELD_NAME_SCORE, "name"
        if header in strong:
            return _STRONG_SCORE - strong.index(header) / 1000, "label"
        if header in weak:
            return _WEAK_SCORE - weak.index(header) / 1000, "label"
        if self.kind.field(name).type is FieldType.JSON:
            return None
        best = None
        for label in [field_name, *strong]:
            if len(label) >= 6 and label in header and len(label) / len(header) >= 0.5:
                score = 1 + len(label) / len(header) / 2
                best = max(best or (0, ""), (score, "similar"))
        if best:
            return best
        for label in [field_name, *strong]:
            if len(label) < 5:
                continue
            matcher = difflib.SequenceMatcher(None, label, header)
            if matcher.real_quick_ratio() < _FUZZY_CUTOFF or matcher.quick_ratio() < _FUZZY_CUTOFF:
                continue
            ratio = matcher.ratio()
            if ratio >= _FUZZY_CUTOFF:
                best = max(best or (0, ""), (ratio, "similar"))
        return best

    def match_labels(self) -> None:
        """Fields to columns by label: required fields first, each column and field once."""
        free = [i for i in sorted(self.addressable) if i not in self.used]
        for required in (True, False):
            pairs = []
            for f in self.kind.fields:
                if f.name in self.choices or (f.name in self.required) != required:
                    continue
                for index in free:
                    scored = self._label_score(f.name, index)
                    if scored is None:
                        continue
                    if not self.compatible(f.name, index):
                        if scored[0] >= _WEAK_SCORE:
                            self.unfit.setdefault(f.name, (index, f.type.value))
                        continue
                    score, how = scored
                    fill = self.fill(index)
                    rank = (fill >= 0.99, score, fill) if required else (score, fill)
                    pairs.append((rank, -index, f.name, index, how))
            for _, _, name, index, how in sorted(pairs, reverse=True):
                if name in self.choices or index in self.used:
                    continue
                choice = _Choice(name, self.kind.field(name).type, column=index, how=how)
                if how == "similar":
                    choice.comments.append("matched by a similar label: check")
                if name in _ALIAS_COMMENTS:
                    choice.comments.append(_ALIAS_COMMENTS[name])
                    texts = self.sample.texts(index, self.data_rows)
                    codes = texts and not any("@" in t for t in texts) and not _names(texts)
                    if self.kind.parent and name == self.kind.parent[1] and codes:
                        choice.comments.insert(0, "check: these look like customer numbers")
                if required:
                    chosen_score = self._label_score(name, index)[0]
                    passed = [
                        i
                        for rank, _, other, i, _ in pairs
                        if other == name and not rank[0] and rank[1] > chosen_score
                    ]
                    if passed:
                        choice.comments.append(
                            f"not {self.header(passed[0])!r}: it is empty in some rows"
                        )
                self.assign(choice)
        for name, (index, type_name) in self.unfit.items():
            if name not in self.choices:
                example = next(iter(self.sample.texts(index, self.data_rows)), "")
                self.notes.append(
                    f"column {self.header(index)!r} is named like {name}, but its values are "
                    f"not {type_name}s (e.g. {example!r}): not mapped"
                )

    def share_names(self) -> None:
        """Where a customer's name is its identity, send it as the name too."""
        pairs = {
            "invoices": ("customerNumber", "customerName"),
            "customers": ("customerno", "companyname"),
        }
        number, name = pairs.get(self.kind.name, (None, None))
        if not number or name in self.choices or number not in self.choices:
            return
        source = self.choices[number]
        if source.column is None or self.kind.field(name) is None:
            return
        _, weak = _NORMALISED[self.kind.name].get(number, ([], []))
        texts = self.sample.texts(source.column, self.data_rows)
        if self.normal[source.column] in weak and _names(texts):
            self.choices[name] = _Choice(
                name,
                FieldType.STRING,
                column=source.column,
                how="shared",
                comments=["the same column: this export names customers by their name"],
            )

    # -- rows

    def _required_columns(self) -> list[int]:
        columns = []
        for name in self.required:
            choice = self.choices.get(name)
            if choice and choice.column is not None:
                columns.append(choice.column)
            elif choice and choice.columns:
                columns.extend(choice.columns.values())
        return sorted(set(columns))

    def _rule_hits(self, rule: _SkipRule, rows: list[int]) -> list[int]:
        compiled = re.compile(rule.pattern)
        targets = [rule.column] if rule.column is not None else range(len(self.headers))
        hits = []
        for r in rows:
            for index in targets:
                cell = self.sample.columns[index][r]
                if cell is not None and compiled.search(cell):
                    hits.append(r)
                    break
        return hits

    def find_furniture(self) -> None:
        """Skip rules for report rows a dry run would otherwise reject (totals, footers)."""
        required = self._required_columns()
        sample = self.sample
        every = range(sample.rows)
        if not required:
            return
        columns = sample.columns
        active = [r for r in every if any(columns[i][r] is not None for i in required)]
        complete = [r for r in active if all(columns[i][r] is not None for i in required)]
        for rule in list(self.skip):
            if self._rule_hits(rule, complete):
                self.skip.remove(rule)
                self.notes.append(
                    f"left out the preset's skip rule {rule.pattern!r}: it would drop rows "
                    f"such as row {sample.first_row + self._rule_hits(rule, complete)[0]}"
                )
        skipped = set()
        for rule in self.skip:
            skipped.update(self._rule_hits(rule, active))
        whole = set(complete)
        partial = [r for r in active if r not in skipped and r not in whole]
        proposals: dict[tuple[int | None, str], list[_SkipRule]] = {}
        tokens: Counter[tuple[int, str]] = Counter()
        token_rows: dict[tuple[int, str], list[int]] = {}
        for r in partial:
            cells = [(i, columns[i][r]) for i in range(len(self.headers)) if columns[i][r]]
            if not cells:
                continue
            stars = next(((i, c) for i, c in cells if re.fullmatch(r"\*+", c)), None)
            index, text = stars or cells[0]
            named = index in self.addressable
            for column_pattern, cell_pattern, why in _FURNITURE:
                if re.search(column_pattern, text):
                    # the broad pattern for the column, else the exact one (a customer may be
                    # called "Total Wine"); a column a mapping cannot name: every column, exact
                    patterns = [column_pattern, cell_pattern] if named else [cell_pattern]
                    rule_options = [
                        _SkipRule(index if named else None, pattern, why) for pattern in patterns
                    ]
                    proposals.setdefault((rule_options[0].column, column_pattern), rule_options)
                    break
            else:
                word = re.match(r"([^\W\d_]{3,})(\s|$)", text)
                if word and named:
                    key = (index, word.group(1))
                    tokens[key] += 1
                    token_rows.setdefault(key, []).append(r)
        for (index, word), count in tokens.items():
            if count >= 2:
                pattern = rf"^{re.escape(word)}\b"
                proposals.setdefault(
                    (index, pattern), [_SkipRule(index, pattern, f'group headings ("{word} ...")')]
                )
        for rule_options in proposals.values():
            for rule in rule_options:
                if self._rule_hits(rule, complete):
                    continue  # it would drop real rows
                if self._rule_hits(rule, partial):
                    self.skip.append(rule)
                break
        rows_skipped = set()
        for rule in self.skip:
            rows_skipped.update(self._rule_hits(rule, active))
        self.value_rows = [r for r in active if r not in rows_skipped] or self.data_rows

    # -- values

    def infer_values(self) -> None:
        dates: list[tuple[_Choice, _DateGuess]] = []
        for choice in self.choices.values():
            if choice.column is None or choice.how == "shared":
                continue
            texts = self.sample.texts(choice.column, self.value_rows)
            if choice.type is FieldType.DATE:
                dates.append((choice, self._infer_date(choice, texts)))
            elif choice.type in _NUMBERS:
                self._infer_amount(choice, texts)
            elif choice.type is FieldType.EMAIL:
                bad = [t for t in texts if not re.fullmatch(r"[^@\s]+@[^@\s]+", t)]
                if bad:
                    self.notes.append(
                        f"{choice.field} (column {self.header(choice.column)!r}): "
                        f"{len(bad)} value(s) are not e-mail addresses, e.g. {bad[0]!r}"
                    )
        # one file, one habit: a column whose order is clear settles the undecided ones
        decided: dict[str, set[str]] = {}
        for choice, guess in dates:
            formats = choice.options.get("format") or ()
            if guess.formats and not guess.ambiguous and "format" not in choice.fixed:
                for f in formats:
                    if _order(f):
                        decided.setdefault(_separator(f), set()).add(_order(f))
        for choice, guess in dates:
            if not guess.ambiguous or "format" in choice.fixed:
                continue
            fmt = choice.options["format"][0]
            orders = decided.get(_separator(fmt), set())
            if len(orders) == 1:
                order = next(iter(orders))
                if _order(fmt) != order:
                    choice.options["format"] = (_swapped(fmt),)
                continue
            choice.comments.append(_CONFIRM_ORDER)
            self.notes.append(
                f"{choice.field} (column {self.header(choice.column)!r}): the day/month order "
                f"could not be decided from the data (no day above 12); guessed "
                f"{choice.options['format'][0]}: confirm"
            )

    def _infer_date(self, choice: _Choice, texts: list[str]) -> _DateGuess:
        where = f"{choice.field} (column {self.header(choice.column)!r})"
        if "format" in choice.fixed:
            if not texts or not _date_ok(texts, choice.options["format"]):
                return _DateGuess(choice.options["format"])
            guess = _guess_dates(texts)
            if guess.coverage > 0.99:
                self.notes.append(
                    f"{where}: the preset's format {choice.options['format'][0]} does not read "
                    f"values such as {_date_ok(texts, choice.options['format'])[0]!r}; "
                    f"used {guess.formats[0] if guess.formats else 'ISO (YYYY-MM-DD)'}"
                )
                choice.fixed.discard("format")
                choice.options.pop("format")
            else:
                self.notes.append(
                    f"{where}: values such as {_date_ok(texts, choice.options['format'])[0]!r} "
                    f"are not dates in the preset's format {choice.options['format'][0]}; "
                    "those rows will be rejected"
                )
                return _DateGuess(choice.options["format"])
        else:
            guess = _guess_dates(texts)
        if guess.formats:
            choice.options["format"] = guess.formats
            if len(guess.formats) > 1:
                choice.comments.append("several date styles in this column")
        if guess.coverage < 1 and guess.bad:
            self.notes.append(
                f"{where}: some values are not dates in a known format, e.g. {guess.bad[0]!r}; "
                "those rows will be rejected"
            )
        return guess

    def _infer_amount(self, choice: _Choice, texts: list[str]) -> None:
        """decimal, thousands and (integers only) scale; money and decimals have no scale."""
        where = f"{choice.field} (column {self.header(choice.column)!r})"
        guess = _guess_amounts(texts)
        places = _PLACES.get(choice.type)
        own_scale = 10**places if places is not None else None
        fixed = choice.fixed & {"decimal", "thousands"}
        if fixed:
            decimal = choice.options.get("decimal", ".")
            thousands = choice.options.get("thousands")
            scale = own_scale or choice.options.get("scale", guess.scale or 1)
            if _amount_bad(texts, decimal, thousands, scale) and guess.coverage == 1:
                self.notes.append(
                    f"{where}: the preset's decimal {decimal!r} does not read these amounts; "
                    f"used decimal {guess.decimal or '.'!r}"
                )
                choice.fixed -= {"decimal", "thousands"}
                choice.options.pop("decimal", None)
                choice.options.pop("thousands", None)
        if not choice.fixed & {"decimal", "thousands"}:
            if guess.decimal and (guess.decimal != "." or guess.thousands):
                choice.options["decimal"] = guess.decimal
            if guess.thousands:
                choice.options["thousands"] = guess.thousands
                choice.options.setdefault("decimal", guess.decimal or ".")
        comments = []
        if own_scale:
            choice.options.pop("scale", None)
            if guess.note:
                self.notes.append(f"{where}: {guess.note}")
        elif "scale" not in choice.fixed:
            if guess.scale:
                choice.options["scale"] = guess.scale
                if guess.scale == 100:
                    comments.append("amounts have decimals: sent in cents (x100)")
            if guess.scale_note or guess.note:
                self.notes.append(f"{where}: {guess.scale_note or guess.note}")
        elif Decimal(str(choice.options["scale"])) == 100:
            comments.append("sent in cents (x100)")
        decimal = choice.options.get("decimal", ".")
        thousands = choice.options.get("thousands")
        scale = own_scale or choice.options.get("scale", 1)
        left = _amount_bad(texts, decimal, thousands, scale)
        if left:
            settings = (
                f"at most {places} decimals and these separators" if own_scale else "these settings"
            )
            self.notes.append(
                f"{where}: {len(left)} distinct value(s) are not amounts with {settings}, "
                f"e.g. {left[0]!r}; those rows will be rejected"
            )
        if guess.negatives:
            shown = " and ".join(f"{how} ({example})" for how, example in guess.negatives.items())
            comments.append(f"{shown}: read as negative")
        choice.comments.extend(comments)

    # -- key

    def choose_key(self) -> None:
        default = list(self.kind.key)
        if self.key is not None:
            missing = [k for k in self.key if k not in self.choices]
            if missing:
                self.notes.append(
                    f"the preset's key {' + '.join(self.key)} needs {', '.join(missing)}, which "
                    f"this file lacks; used {' + '.join(default)}"
                )
                self.key = None
        # a preset's own key (invoice + line, say) is its author's choice: left as it is
        if self.kind.name == "invoices" and (self.key or default) == default:
            self._line_level()
        key = self.key or default
        if not all(k in self.choices for k in key) or self.duplicates_noted:
            return
        groups = self._groups(key)
        if not groups:
            return
        repeats = sum(len(rows) - 1 for rows in groups)
        differing = self._differing_repeats(groups)
        said = []
        if repeats > differing:
            said.append(f"{repeats - differing} with the same values merge into it (sent once)")
        if differing:
            said.append(f"{differing} with other values will be rejected as duplicate_key")
        self.notes.append(
            f"{repeats} row(s) in the first {self.sample.rows} repeat the {' + '.join(key)} "
            f"of an earlier row: {'; '.join(said)}"
        )

    def _key_values(self, key: list[str]) -> list[tuple[str | None, ...]]:
        columns = []
        for name in key:
            choice = self.choices[name]
            if choice.column is None:
                columns.append([choice.value] * self.sample.rows)
            else:
                columns.append(self.sample.columns[choice.column])
        return [tuple(c[r] for c in columns) for r in self.value_rows]

    def _groups(self, key: list[str]) -> list[list[int]]:
        """The rows of each key value that more than one row of the sample has, in file order."""
        rows: dict[tuple[str | None, ...], list[int]] = {}
        for row, value in zip(self.value_rows, self._key_values(key), strict=True):
            if None not in value:
                rows.setdefault(value, []).append(row)
        return [found for found in rows.values() if len(found) > 1]

    def _sources(self, choice: _Choice) -> list[int]:
        """The columns a field's value is made of (none for a fixed value)."""
        if choice.column is not None:
            return [choice.column]
        return list((choice.columns or {}).values())

    def _column_varies(self, index: int, groups: list[list[int]]) -> bool:
        # an empty cell counts: a field left out of one payload makes the payloads differ
        column = self.sample.columns[index]
        return any(len({column[r] for r in rows}) > 1 for rows in groups)

    def _varies(self, choice: _Choice, groups: list[list[int]]) -> bool:
        return any(self._column_varies(i, groups) for i in self._sources(choice))

    def _differing_repeats(self, groups: list[list[int]]) -> int:
        """Repeated rows whose mapped cells differ from the first row of their key."""
        columns = sorted({i for c in self.choices.values() for i in self._sources(c)})
        cells = self.sample.columns
        return sum(
            1
            for rows in groups
            for r in rows[1:]
            if any(cells[i][r] != cells[i][rows[0]] for i in columns)
        )

    def _line_level(self) -> None:
        """An export with one row per invoice line: the lines of an invoice make one record.

        PayorCRM knows an invoice by its number alone. Rows that repeat a key with the same
        payload are one record, sent once; a field that differs from line to line would make
        every line after the first a duplicate_key rejection. So the invoice's total is its
        amount, and the line's own fields (text, line number, quantity) are left out.
        """
        number = _own_field(self.kind, "invoiceNumber")
        invoice = self.choices.get(number) if number else None
        if invoice is None or invoice.column is None:
            return
        invoices = self._groups([invoice.field])
        if not invoices:
            return
        self.duplicates_noted = True
        self.key_comment = (
            f"one row per invoice line ({self.header(invoice.column)!r} repeats): the lines of "
            "an invoice are one record, sent once"
        )
        self._invoice_total(invoices)
        self._leave_out_line_fields(invoices)

    def _invoice_total(self, invoices: list[list[int]]) -> None:
        """invoiceAmount from a column the same on every line of an invoice: its total."""
        name = _own_field(self.kind, "invoiceAmount")
        if name is None:
            return
        amount = self.choices.get(name)
        if amount is not None and not self._varies(amount, invoices):
            amount.comments.insert(0, "the invoice's total: the same on each of its lines")
            return
        total = self._total_column(invoices, name, amount)
        if total is None:
            if amount is not None:
                self._line_amount_kept(amount)
            return
        previous = self.header(amount.column) if amount and amount.column is not None else None
        if previous is not None:
            self.used.discard(amount.column)
        replacement = _Choice(name, self.kind.field(name).type, column=total, how="label")
        self.assign(replacement)
        self._infer_amount(replacement, self.sample.texts(total, self.value_rows))
        replacement.comments.insert(
            0,
            "the invoice's total, the same on each of its lines"
            + (f" (not {previous!r}, which differs from line to line)" if previous else ""),
        )

    def _total_column(
        self, invoices: list[list[int]], name: str, amount: _Choice | None
    ) -> int | None:
        """A free column labelled like an invoice total, with amounts, equal within an invoice."""
        taken = self.used - set(self._sources(amount) if amount else [])
        for label in _INVOICE_TOTALS:
            for index, normal in enumerate(self.normal):
                if (
                    normal == label
                    and index in self.addressable
                    and index not in taken
                    and self.compatible(name, index)
                    and not self._column_varies(index, invoices)
                ):
                    return index
        return None

    def _line_amount_kept(self, amount: _Choice) -> None:
        # no total to take instead: the line's amount is the best there is, but it cannot merge
        amount.comments.insert(0, "differs from line to line: see the note above")
        self.notes.append(
            f"{self._described(amount)} differs between the lines of an invoice and no column "
            "holds the invoice's total: every line after an invoice's first will be rejected as "
            "duplicate_key unless the amounts are summed per invoice"
        )

    def _leave_out_line_fields(self, invoices: list[list[int]]) -> None:
        """Drop the optional fields that differ between the lines of an invoice, with a note."""
        kept = (_own_field(self.kind, "invoiceNumber"), _own_field(self.kind, "invoiceAmount"))
        for name, choice in list(self.choices.items()):
            if name in kept or not self._varies(choice, invoices):
                continue
            if name in self.kind.required:
                # a required field cannot be left out: its differing lines will be refused
                self.notes.append(
                    f"{self._described(choice)} differs between the lines of an invoice: a line "
                    "that differs from its invoice's first will be rejected as duplicate_key"
                )
                continue
            del self.choices[name]
            self.left_out[name] = choice
        if self.left_out:
            shown = ", ".join(self._described(c) for c in self.left_out.values())
            self.notes.append(
                "left out what differs between the lines of an invoice (its lines are sent as "
                f"one record): {shown}"
            )

    def _described(self, choice: _Choice) -> str:
        """A field with its columns, as notes name it: itemText ('Description')."""
        return f"{choice.field} ({', '.join(repr(self.header(i)) for i in self._sources(choice))})"


# --- TOML -----------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; DEL must be escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


def _comment(text: str) -> str:
    return " ".join(text.split())


def _with_comment(line: str, comments: list[str]) -> str:
    if not comments:
        return line
    return f"{line}   # {_comment('; '.join(comments))}"


def _render(
    plan: _Plan,
    located: _Located,
    path: Path,
    table: Table,
    preset: str | None,
    todo: list[str],
) -> str:
    kind = plan.kind
    out = [
        f"# Mapping for `payor upload {kind.name}`, suggested by `payor init` from {path.name}",
        f"# ({table.describe()}).",
        "# Check it, then try it with `--dry-run` before a real upload.",
    ]
    if preset:
        out.append(f"# Preset: {preset}")
    for note in plan.notes:
        out.append(f"# Note: {_comment(note)}")
    out.append("")
    out.append(f"[{kind.name}]")
    target = _target_of(kind).name
    if target != DEFAULT_TARGET:
        out.append(f"# for --target {target}")
    if located.sheet is not None:
        line = f"sheet = {toml_string(located.sheet)}"
        out.append(
            line if not located.sheet_is_first else f"# {line}   # the first sheet: the default"
        )
    if table.header_row != 1:
        out.append(f"header_row = {table.header_row}")
    if located.state_encoding:
        out.append(f"encoding = {toml_string(located.state_encoding)}")
    elif located.comment_encoding:
        out.append(
            f"# encoding = {toml_string(located.comment_encoding)}   "
            "# detected; set it only if detection ever fails"
        )
    if located.delimiter:
        out.append(f"delimiter = {toml_string(located.delimiter)}")

    # settings shared by every field of a type go to the section
    date_choices = [
        c for c in plan.choices.values() if c.type is FieldType.DATE and c.column is not None
    ]
    shared_format = None
    formats = {tuple(c.options["format"]) for c in date_choices if c.options.get("format")}
    if len(formats) == 1:
        candidate = next(iter(formats))
        fits = True
        for c in date_choices:
            if c.options.get("format"):
                continue
            texts = plan.sample.texts(c.column, plan.value_rows)
            if texts and _date_ok(texts, candidate):
                fits = False
        if fits:
            shared_format = candidate
    if shared_format:
        value = shared_format[0] if len(shared_format) == 1 else list(shared_format)
        out.append(f"date_format = {toml_value(value)}")
    amount_choices = [c for c in plan.choices.values() if c.type in _NUMBERS]
    separators = {(c.options.get("decimal"), c.options.get("thousands")) for c in amount_choices}
    shared_separators = None
    if len(separators) == 1 and next(iter(separators)) != (None, None):
        shared_separators = next(iter(separators))
        decimal, thousands = shared_separators
        out.append(f"decimal = {toml_string(decimal or '.')}")
        if thousands:
            out.append(f"thousands = {toml_string(thousands)}")
    key = plan.key or list(kind.key)
    key_line = f"key = {toml_value(key)}"
    if plan.key is not None and preset and not plan.key_comment:
        out.append(_with_comment(key_line, [f"from the preset {preset}"]))
    elif plan.key_comment:
        out.append(_with_comment(key_line, [plan.key_comment]))
    elif list(key) == list(kind.key):
        out.append(_with_comment(key_line, ["the default: a repeated key rejects the row"]))
    else:
        out.append(key_line)
    if plan.skip:
        out.append("skip = [")
        for rule in plan.skip:
            entry: dict[str, str] = {}
            if rule.column is not None:
                entry["column"] = plan.header(rule.column)
            entry["pattern"] = rule.pattern
            out.append(_with_comment(f"    {toml_value(entry)},", [rule.comment]))
        out.append("]")
    out.append("")
    out.append(f"[{kind.name}.fields]")
    for f in kind.fields:
        choice = plan.choices.get(f.name)
        if choice is not None:
            line = _field_line(plan, choice, shared_format, shared_separators)
            out.append(_with_comment(line, choice.comments))
        elif f.name in plan.left_out:
            # written out, commented: the user sees what was dropped and can take it back
            line = _field_line(plan, plan.left_out[f.name], shared_format, shared_separators)
            why = "left out: it differs between the lines of one invoice, which are one record"
            out.append(f"# {_with_comment(line, [why])}")
        elif f.name in todo:
            out.append(f'# TODO {f.name} = "..."   (required: name the column that holds it)')
    unmapped = [
        h
        for i, h in enumerate(plan.headers)
        if h.strip()
        and i not in plan.used
        and not any(c.column == i for c in plan.choices.values())
    ]
    if unmapped:
        out.append("")
        out.append(f"# Columns not mapped (`payor schema {kind.name}` lists the fields):")
        line = "#"
        for label in (toml_string(h) for h in unmapped):
            if len(line) + len(label) > 98 and line != "#":
                out.append(line.rstrip(","))
                line = "#"
            line += f" {label},"
        out.append(line.rstrip(","))
    return "\n".join(out) + "\n"


def _field_line(
    plan: _Plan,
    choice: _Choice,
    shared_format: tuple[str, ...] | None,
    shared_separators: tuple[str | None, str | None] | None,
) -> str:
    """`field = ...` for one choice, without the settings its section already states."""
    spec: dict[str, Any] = {}
    if choice.value is not None:
        spec["value"] = choice.value
    elif choice.columns:
        spec["columns"] = {k: plan.header(i) for k, i in choice.columns.items()}
    else:
        spec["column"] = plan.header(choice.column)
    options = dict(choice.options)
    if choice.type is FieldType.DATE:
        fmt = options.pop("format", None)
        if fmt and tuple(fmt) != shared_format:
            spec["format"] = fmt[0] if len(fmt) == 1 else list(fmt)
    if choice.type in _NUMBERS:
        decimal = options.pop("decimal", None)
        thousands = options.pop("thousands", None)
        if (decimal, thousands) != shared_separators:
            if decimal or thousands:
                spec["decimal"] = decimal or "."
            if thousands:
                spec["thousands"] = thousands
        if "scale" in options and choice.type is FieldType.INTEGER:
            spec["scale"] = options.pop("scale")
    for option in ("default", "map"):
        if option in options:
            spec[option] = options.pop(option)
    if list(spec) == ["column"]:
        return f"{choice.field} = {toml_string(spec['column'])}"
    return f"{choice.field} = {toml_value(spec)}"


# --- the whole thing ------------------------------------------------------------------------------


def suggest_mapping(
    path: Path, kind: Kind, options: InputOptions | None = None, preset: str | None = None
) -> Suggestion:
    """The mapping `payor init` suggests for a file: layout detected, columns and formats inferred.

    Raises InputError when the file cannot be read and MappingError for an unknown preset.
    """
    path = Path(path)
    options = options or InputOptions()
    section = _preset_section(preset, kind) if preset else None
    located = _locate(path, options, section)
    table = readers.open_table(path, located.options, chunk_rows=SAMPLE_ROWS)
    sample = _Sample.read(table, SAMPLE_ROWS)
    plan = _Plan(kind, table.headers, sample)
    if section is not None:
        plan.apply_preset(section)
    plan.match_labels()
    plan.share_names()
    plan.find_furniture()
    plan.infer_values()
    plan.choose_key()
    todo = [name for name in plan.required if name not in plan.choices]
    if plan.preset_missing:
        plan.notes.append(
            "the preset's columns for "
            + ", ".join(plan.preset_missing)
            + " are not in this file"
            + (": matched them by their labels instead" if not todo else "")
        )
    for name in todo:
        plan.notes.append(f"no column found for {name} (required): name it in the mapping")
    toml = _render(plan, located, path, table, preset, todo)
    mapping = None
    if not todo:
        data = tomllib.loads(toml)
        mapping = parse_mapping(data[kind.name], kind, f"suggested mapping for {path.name}")
        extra = _verify(mapping, table, sample)
        if extra:
            plan.notes.extend(extra)
            toml = _render(plan, located, path, table, preset, todo)
    return Suggestion(kind, toml, mapping, todo, plan.notes, table.describe())


def _verify(mapping: Mapping, table: Table, sample: _Sample) -> list[str]:
    """A dry run over the sample: what it would reject, as notes."""
    if sample.chunk is None or not sample.rows:
        return []
    bound = bind(mapping, table.headers, str(table.path))
    result = Validator(bound, target=_target_of(mapping.kind))(sample.chunk)
    if not result.rejected:
        return []
    reasons: Counter[str] = Counter()
    first: dict[str, int] = {}
    for row in result.rejected:
        for error in row.errors:
            reasons[error.reason] += 1
            first.setdefault(error.reason, row.row)
    shown = "; ".join(
        f"{reason} ({count}x, first row {first[reason]})"
        for reason, count in reasons.most_common(3)
    )
    return [f"a dry run of the first {sample.rows} rows rejects {len(result.rejected)}: {shown}"]
