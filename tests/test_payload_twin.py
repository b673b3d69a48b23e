"""payor's dry run against a slow, obvious twin (`tests/reference.py`), on generated exports.

For every target and kind (invoices with and without lines), hypothesis writes a CSV export and
a mapping with every field type and mapping form, empty cells in every position, white space,
quotes, backslashes, control characters, emoji, big and negative numbers, many decimals and
thousands separators; payor dry-runs it in-process. Then: every payload is JSON and equals the
twin's (money with exactly 2 decimals), the same rows are rejected for the same faults, the counts
add up and equal the twin's, and the control totals equal a plain recount.

Known bugs that are not fixed yet are kept out of the main properties by `KNOWN_BUGS` (each
excuses only the check it breaks) and each has its own strict xfail test with an explicit,
minimal example: when a fix lands that test passes, fails as XPASS, and its entry goes.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import reference
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reference import SCHEMAS, Dec, Expected, Money

import payor_cli
from payor_cli.fingerprint import payload_fingerprints

FAST = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays stable
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
THOROUGH = settings(FAST, max_examples=80)  # the main property, per target and kind

CONFIGS = [
    ("payorcrm", "customers", False),
    ("payorcrm", "invoices", False),
    ("business-suite", "customers", False),
    ("business-suite", "invoices", False),
    ("business-suite", "invoices", True),
    ("onlyoffice", "customers", False),
    ("onlyoffice", "invoices", False),
    ("onlyoffice", "invoices", True),
]
CONFIG_IDS = [f"{t}-{k}{'-lines' if lines else ''}" for t, k, lines in CONFIGS]


@pytest.fixture(autouse=True, scope="module")
def _no_ambient_settings():
    """payor reads PAYOR_* from the environment: the runs here must not."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("PAYOR_")]:
            patch.delenv(name)
        yield


# -- an export and its mapping ------------------------------------------------------------------


@dataclass
class Case:
    target: str
    kind: str
    lines: bool
    header: list[str]
    rows: list[list[str]]
    mapping: dict
    quoting: int = csv.QUOTE_MINIMAL

    def expected(self) -> Expected:
        return reference.expect(self.target, self.kind, self.header, self.rows, self.mapping)


PAD = st.sampled_from(["", "", "", " ", "  ", "\t", " \u00a0", "\n", "\u3000", "\x1f"])
"""White space around a cell (Unicode's, and \x1f which Python counts: trimmed as well)."""

TEXT_CHARS = [*"abcXYZ019 -_.,;:'\"\\/", "\t", "\n", "\x01", "é", "ß", "€", "😀", "𝄞"]
TEXT = st.text(st.sampled_from(TEXT_CHARS), min_size=1, max_size=8).filter(
    lambda s: reference.trim(s) != ""
)
EMPTY = st.sampled_from(["", "", " ", "\t", "  \u00a0"])


def padded(draw, text: str) -> str:
    return draw(PAD) + text + draw(PAD)


def sometimes(draw, one_in: int) -> bool:
    return draw(st.integers(0, one_in - 1)) == 0


@dataclass
class Column:
    """One mapped field's column and how to draw its cells: `draw_cell(draw, clean)` gives a
    valid value when `clean`, else now and then one that rejects the row."""

    header: str
    draw_cell: Callable[..., str]
    required: bool = False


def number_text(draw, value: Decimal, decimal: str, thousands: str | None) -> str:
    """`value` written as an export might: grouping, minus forms, currency, white space."""
    whole, _, fraction = f"{abs(value):f}".partition(".")
    group = None
    if thousands is not None and draw(st.booleans()):
        group = thousands
    elif thousands is None and decimal in ".," and sometimes(draw, 3):
        group = {".": ",", ",": "."}[decimal]
    elif sometimes(draw, 6):
        group = " "
    if group is not None and len(whole) > 3:
        parts = []
        while len(whole) > 3:
            parts.insert(0, whole[-3:])
            whole = whole[:-3]
        whole = group.join([whole, *parts])
    text = whole + (decimal + fraction if fraction else "")
    if value < 0:
        text = draw(st.sampled_from(["-{}", "{}-", "({})"])).format(text)
    elif sometimes(draw, 7):
        text = "+" + text
    decoration = draw(st.sampled_from(["", "", "", "$", "€", "EUR ", "£ "]))
    if decoration and draw(st.booleans()):
        text = decoration + text
    elif decoration:
        text = text + " " + decoration.strip()
    return padded(draw, text)


def decimal_value(draw, whole_digits: int, places: int, negative: bool = True) -> Decimal:
    whole = draw(st.integers(0, 10**whole_digits - 1)) if whole_digits else 0
    fraction = draw(st.integers(0, 10**places - 1)) if places else 0
    value = Decimal(whole) + Decimal(fraction).scaleb(-places)
    if negative and sometimes(draw, 4):
        value = -value
    return value


BAD_NUMBERS = ["abc", "12x", "--5", "1 2 x", "n/a", "1..2"]

# (whole digits, decimal places) of valid values, and of values past a limit
VALID_NUMBERS = {
    "integer": ([(1, 0), (3, 0), (6, 0), (9, 0), (16, 0)], [(22, 0), (2, 1)]),
    "money": ([(1, 2), (2, 1), (4, 2), (7, 0), (14, 2)], [(3, 3), (20, 2), (1, 7)]),
    "decimal": ([(1, 0), (1, 2), (2, 3), (3, 6), (11, 1)], [(14, 0), (1, 7), (1, 9)]),
}


def number_cell(kind: str, decimal: str, thousands: str | None, scale: int = 1):
    def draw_cell(draw, clean: bool) -> str:
        if not clean and sometimes(draw, 8):
            return padded(draw, draw(st.sampled_from(BAD_NUMBERS)))
        valid, invalid = VALID_NUMBERS[kind]
        if kind == "integer" and scale != 1:  # in the currency's units: cents are fine
            valid = [(w - 2, 2) for w, _ in valid if w > 2] + [(1, 2)]
        shapes = valid if clean or draw(st.booleans()) else invalid
        whole, places = draw(st.sampled_from(shapes))
        return number_text(draw, decimal_value(draw, whole, places), decimal, thousands)

    return draw_cell


def ranged_cell(name: str, decimal: str, thousands: str | None, base: Callable):
    """onlyoffice's quantity, discount and rate: within their range when clean."""

    def draw_cell(draw, clean: bool) -> str:
        if clean or draw(st.booleans()):
            places = draw(st.sampled_from([0, 1, 2]))
            value = decimal_value(draw, 2, places, negative=False)
            if value == 0 or (name == "discount" and value > 100):
                value = Decimal("12.5")
            return number_text(draw, value, decimal, thousands)
        return base(draw, clean)

    return draw_cell


DATE_FORMATS = ["%d.%m.%Y", "%m/%d/%Y", "%Y%m%d", "%d/%m/%Y %H:%M"]
BAD_DATES = ["31.02.2024", "2024-02-30", "2024-13-01", "tomorrow", "12/31/24x", "00.00.0000"]


def date_cell(formats: list[str] | None):
    def draw_cell(draw, clean: bool) -> str:
        if not clean and sometimes(draw, 6):
            return padded(draw, draw(st.sampled_from(BAD_DATES)))
        day = draw(st.dates(min_value=date(1990, 1, 1), max_value=date(2035, 12, 31)))
        fmt = draw(st.sampled_from(formats)) if formats else "%Y-%m-%d"
        return padded(draw, day.strftime(fmt))

    return draw_cell


EMAILS = ["anna@example.com", "Bob.K@mail.example", "c+d@x.example", "ü@例え.jp"]
BAD_EMAILS = ["anna.example.com", "a b@x.example", "a@b@c", "@x.example", "anna@"]


def email_cell(draw, clean: bool) -> str:
    if not clean and sometimes(draw, 6):
        return padded(draw, draw(st.sampled_from(BAD_EMAILS)))
    email = draw(st.sampled_from(EMAILS))
    if draw(st.booleans()):  # e-mail keys compare without regard to case
        email = "".join(c.upper() if draw(st.booleans()) else c for c in email)
    return padded(draw, email)


def key_cell(draw, clean: bool) -> str:
    return padded(draw, draw(st.sampled_from(["K1", "K2", "K3", "0042", "K 1"])))


def text_cell(draw, clean: bool) -> str:
    return padded(draw, draw(TEXT))


def digits_cell(draw, clean: bool) -> str:
    return padded(draw, draw(st.sampled_from(["7", "611365", "1234567", "0042", "x9"])))


MAP = {"a": "Alpha", "B": "Beta", "ü": "Umlaut"}


def map_cell(draw, clean: bool) -> str:
    codes = ["a", "A", "b", "B", "ü", "Ü"] + ([] if clean else ["zz"])
    return padded(draw, draw(st.sampled_from(codes)))


MISSING_TEXTS = ["NA", "n/a"]


def missing_cell(draw, clean: bool) -> str:
    if sometimes(draw, 4):
        return padded(draw, draw(st.sampled_from(MISSING_TEXTS)))
    return text_cell(draw, clean)


@st.composite
def section_options(draw) -> dict:
    options: dict = {}
    if sometimes(draw, 4):
        options["date_format"] = draw(st.sampled_from(DATE_FORMATS[:3]))
    numbers = draw(st.sampled_from(["", "", "comma", "comma-dot", "dot-comma"]))
    if numbers == "comma":
        options["decimal"] = ","
    elif numbers == "comma-dot":
        options["decimal"], options["thousands"] = ",", "."
    elif numbers == "dot-comma":
        options["decimal"], options["thousands"] = ".", ","
    if sometimes(draw, 5):
        options["missing"] = MISSING_TEXTS
    return options


def field_spec(draw, fld: reference.Field, header: str, section: dict, is_key: bool):
    """The mapping entry of one field and its columns ([] for a constant)."""
    kind = fld.type
    required = fld.required
    if kind == "json":
        parts = {part: f"{header} {part}" for part in ("street", "city", "zip")}
        return {"columns": parts}, [Column(h, text_cell) for h in parts.values()]
    named = draw(st.sampled_from([header, header.upper(), f" {header} "]))  # any case, spaces
    if kind == "string":
        forms = ["plain", "plain", "pad"]
        if not is_key:
            forms += ["default", "map", "value"] + ([] if "missing" in section else ["missing"])
        form = draw(st.sampled_from(forms))
        if form == "value":
            return {"value": draw(st.sampled_from(["EUR", "Net 30", "open ü"]))}, []
        cell = {"plain": key_cell if is_key else text_cell, "pad": digits_cell}.get(form)
        spec: dict = {"column": named}
        if form == "default":
            spec["default"], cell = "dflt", text_cell
        elif form == "map":
            spec["map"], cell = MAP, map_cell
        elif form == "pad":
            spec["pad"] = 6
        elif form == "missing":
            spec["missing"], cell = MISSING_TEXTS, missing_cell
        return (named if form == "plain" else spec), [Column(header, cell, required)]
    if kind == "email":
        return named, [Column(header, email_cell, required)]
    if kind == "date":
        form = draw(st.sampled_from(["plain", "plain", "format", "formats", "value"]))
        if form == "value":  # a constant: ISO, or in the field's format
            return draw(
                st.sampled_from(
                    [{"value": "2024-12-31"}, {"value": "31.12.2024", "format": "%d.%m.%Y"}]
                )
            ), []
        if form == "plain":
            fmt = section.get("date_format")
            return named, [Column(header, date_cell([fmt] if fmt else None), required)]
        count = 1 if form == "format" else 2
        fmts = draw(
            st.lists(st.sampled_from(DATE_FORMATS), min_size=count, max_size=count, unique=True)
        )
        spec = {"column": named, "format": fmts[0] if form == "format" else fmts}
        return spec, [Column(header, date_cell(fmts), required)]
    # numbers: the section's decimal and thousands, or the field's own; or a constant
    if not is_key and sometimes(draw, 8):
        return {"value": draw(st.sampled_from(["1", "12.50", "0.5"]))}, []
    spec = {"column": named}
    form = draw(st.sampled_from(["section", "section", "comma-dot", "dot-comma", "comma"]))
    if form == "comma-dot":
        spec |= {"decimal": ",", "thousands": "."}
    elif form == "dot-comma":
        spec |= {"decimal": ".", "thousands": ","}
    elif form == "comma":
        spec |= {"decimal": ","}
        if "thousands" in section:  # the section's thousands with a field's own decimal
            spec["thousands"] = " "
    decimal = spec.get("decimal", section.get("decimal", "."))
    thousands = spec.get("thousands", section.get("thousands") if "decimal" not in spec else None)
    scale = 1
    if kind == "integer":
        scale = draw(st.sampled_from([1, 100, 100, 1000]))
        if scale != 1:
            spec["scale"] = scale
    cell = number_cell(kind, decimal, thousands, scale)
    if fld.name in ("quantity", "exchangeRate", "discount"):
        cell = ranged_cell(fld.name, decimal, thousands, cell)
    return (named if spec == {"column": named} else spec), [Column(header, cell, required)]


@st.composite
def cases(draw, target: str, kind: str, lines: bool) -> Case:
    """An export of up to 10 rows and its mapping: clean rows and messy ones, repeats, blank
    rows, report rows (`skip`) and rows without any required field."""
    schema = SCHEMAS[(target, kind)]
    section = draw(section_options())
    record_fields = [f for f in schema.record if not (f.name == "amount" and lines)]
    if schema.lines is not None and not lines:  # the one line's price
        record_fields = [
            reference.Field(f.name, f.type, True) if f.name == "amount" else f
            for f in record_fields
        ]
    mapped = [f for f in record_fields if f.required or sometimes(draw, 3)]
    columns: list[Column] = []
    fields: dict = {}
    for i, fld in enumerate(mapped):
        spec, cols = field_spec(draw, fld, f"F{i} {fld.name}", section, fld.name == schema.key)
        fields[fld.name], columns = spec, columns + cols
    line_columns: list[Column] = []
    line_fields: dict = {}
    for i, fld in enumerate(schema.lines if lines else ()):
        # onlyoffice's items and taxes are looked up in the portal: none here
        if fld.name not in ("item", "tax") and (fld.required or not sometimes(draw, 3)):
            spec, cols = field_spec(draw, fld, f"L{i} {fld.name}", section, False)
            line_fields[fld.name], line_columns = spec, line_columns + cols
    mapping_section = dict(section, fields=fields)
    if lines:
        mapping_section["lines"] = line_fields
    skip = sometimes(draw, 4)
    if skip:
        mapping_section["skip"] = [{"column": "Flag", "pattern": "^Total"}]
    mapping = {kind: mapping_section}
    header = [c.header for c in columns + line_columns] + ["Note"] + (["Flag"] if skip else [])
    empty_rate = draw(st.sampled_from([0, 0, 5, 15, 30]))  # % of optional cells left empty

    def cells(cols: list[Column], clean: bool) -> dict[str, str]:
        out = {}
        for col in cols:
            rate = 15 if not clean else 0 if col.required else empty_rate
            if draw(st.integers(0, 99)) < rate:
                out[col.header] = draw(EMPTY)
            else:
                out[col.header] = col.draw_cell(draw, clean)
        return out

    rows: list[list[str]] = []
    records: list[dict[str, str]] = []
    shapes = ["clean"] * 6 + ["repeat", "changed", "blank", "skip", "bare"]
    shapes += ["messy"] * draw(st.sampled_from([0, 1, 3]))
    for _ in range(draw(st.integers(1, 6))):
        shape = draw(st.sampled_from(shapes))
        clean = shape != "messy"
        if shape in ("repeat", "changed") and records:
            values = dict(draw(st.sampled_from(records)))
            if shape == "changed" and columns:
                col = draw(st.sampled_from(columns))
                values[col.header] = col.draw_cell(draw, True)
        elif shape == "blank":
            rows.append([draw(EMPTY) for _ in header])
            continue
        elif shape == "bare":  # only the cells of fields that are not required
            values = {c.header: "" if c.required else c.draw_cell(draw, True) for c in columns}
            rows.append([values.get(h, "") for h in header])
            continue
        else:
            values = cells(columns, clean)
            if shape == "skip" and skip:
                values["Flag"] = draw(st.sampled_from(["Total", "Total EUR"]))
        values["Note"] = draw(st.sampled_from(["", "x", "note, with comma"]))
        records.append(values)
        for _ in range(draw(st.integers(1, 3)) if lines else 1):
            line = dict(values, **cells(line_columns, clean))
            if lines and columns and sometimes(draw, 10):  # a record field differs in one line
                col = draw(st.sampled_from(columns))
                line[col.header] = col.draw_cell(draw, True)
            rows.append([line.get(h, "") for h in header])
    rows = rows[:10]  # the report names the first 10 rows of each fault: all of them
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    # headers match trimmed, without regard to case (the mapping's names vary too)
    written = [draw(st.sampled_from([h, f" {h}", f"{h}  ", h.lower()])) for h in header]
    return Case(target, kind, lines, written, rows, mapping, quoting)


# -- payor's dry run ------------------------------------------------------------------------------


class Num(Decimal):
    """A JSON number from payor's payload, with the text it was written as."""

    text: str

    def __new__(cls, text: str) -> Num:
        number = super().__new__(cls, text)
        number.text = text
        return number


@dataclass
class Outcome:
    payload_texts: list[str]
    summary: dict
    rejected_rows: set[int]
    json_error: str | None = None
    faults: dict[int, set] = field(default_factory=dict)  # row -> {(field, kind)}


def dry_run(case: Case) -> Outcome:
    """payor's dry run of the case, in-process, as `upload --dry-run --payloads --report-json`."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        source = tmp_path / "export.csv"
        with source.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, quoting=case.quoting).writerows([case.header, *case.rows])
        config = tmp_path / "payor.toml"
        api = f'[api]\ntarget = "{case.target}"\n'
        if case.target == "onlyoffice":
            api += f'invoice_item = "{reference.ONLYOFFICE_INVOICE_ITEM}"\n'
        config.write_text(api, encoding="utf-8")
        payloads = tmp_path / "payloads.jsonl"
        report = tmp_path / "report.json"
        json_error = None
        try:
            run = payor_cli.dry_run(
                source,
                case.kind,
                case.mapping,
                config=config,
                target=case.target,
                state_dir=tmp_path / "state",
                payloads=payloads,
                report_json=report,
                delimiter=",",
                encoding="utf-8",
            )
            rejected = {int(r["source_row"]) for r in run.rejected}
        except json.JSONDecodeError as exc:  # the payloads were written; Run could not read them
            json_error = str(exc)
            rejected = None
        summary = json.loads(report.read_text(encoding="utf-8"))
        texts = payloads.read_text(encoding="utf-8").splitlines()
    faults: dict[int, set] = {}
    for group in summary["errors"]:
        assert group["count"] == len(group["first_rows"]), group  # tables are small: all named
        for row in group["first_rows"]:
            faults.setdefault(row, set()).add((group["field"], group["kind"]))
    if rejected is None:
        rejected = set(faults)
    return Outcome(texts, summary, rejected, json_error, faults)


# -- the checks -----------------------------------------------------------------------------------


def check_payloads(case: Case, got: Outcome, want: Expected) -> None:
    """Every payload parses as JSON and equals the twin's; money has exactly 2 decimals."""
    for text in got.payload_texts:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"payload is not JSON ({exc}): {text}") from None
    parsed = [json.loads(t, parse_float=Num) for t in got.payload_texts]
    assert parsed == want.payloads, f"\npayor: {got.payload_texts}\ntwin:  {want.payloads}"
    for mine, theirs in zip(want.payloads, parsed, strict=True):
        check_number_texts(mine, theirs)


def check_number_texts(mine: object, theirs: object) -> None:
    if isinstance(mine, dict):
        for name, value in mine.items():
            check_number_texts(value, theirs[name])
    elif isinstance(mine, list):
        for a, b in zip(mine, theirs, strict=True):
            check_number_texts(a, b)
    elif isinstance(mine, Money):
        assert isinstance(theirs, Num) and re.fullmatch(r"-?\d+\.\d\d", theirs.text), theirs
    elif isinstance(mine, Dec):
        assert isinstance(theirs, Num) and re.fullmatch(r"-?\d+\.\d{2,}", theirs.text), theirs


def check_rejections(case: Case, got: Outcome, want: Expected) -> None:
    """The same rows rejected, for the same faults (field and kind)."""
    assert got.rejected_rows == set(got.faults), (got.rejected_rows, got.faults)
    open_question = {
        r.number for r in want.rows if "in an invoice with a refused record field" in r.facts
    }

    def settled(faults: dict[int, set]) -> dict[int, set]:
        """Whether a refused value differs from another row's is left open (the row is
        rejected either way)."""
        group_kinds = {"record_differs", "record_rejected"}
        return {
            row: {f for f in found if row not in open_question or f[1] not in group_kinds}
            for row, found in faults.items()
        }

    theirs, mine = settled(got.faults), settled(want.rejected())
    assert theirs == mine, f"\npayor: {got.faults}\ntwin:  {want.rejected()}"


def check_counts(case: Case, got: Outcome, want: Expected) -> None:
    """rows_read = valid + rejected + skipped + merged, each as the twin counts it."""
    s = got.summary
    assert s["rows_read"] == len(case.rows)
    parts = s["rows_valid"] + s["rows_rejected"] + s["rows_skipped"] + s["rows_merged"]
    assert s["rows_read"] == parts, s
    counts = {k: s[f"rows_{k}"] for k in ("valid", "rejected", "skipped", "merged")}
    assert counts == {k: want.count(k) for k in counts}
    assert s["exit_code"] == (1 if want.count("rejected") else 0)


def check_totals(case: Case, got: Outcome, want: Expected) -> None:
    """The control totals per currency equal a plain recount, as exact decimal strings."""
    if case.kind != "invoices":
        assert "totals" not in got.summary or not got.summary["totals"]
        return
    theirs = {}
    for currency, entry in got.summary["totals"].items():
        for name, text in entry.items():
            assert re.fullmatch(r"-?\d+(\.\d+)?", text), (currency, name, text)
        assert Decimal(entry["accepted"]) == 0  # a dry run accepts nothing
        theirs[currency] = {k: Decimal(entry[k]) for k in ("read", "rejected", "valid")}
    nonzero = lambda totals: {c: e for c, e in totals.items() if any(e.values())}  # noqa: E731
    assert nonzero(theirs) == nonzero(want.totals), f"\npayor: {theirs}\ntwin:  {want.totals}"


CHECKS = {
    "payloads": check_payloads,
    "rejections": check_rejections,
    "counts": check_counts,
    "totals": check_totals,
}


# -- known bugs, each excusing only the check it breaks --------------------------------------------


def counted(want: Expected) -> list[reference.Row]:
    """The rows whose amount the control totals count."""
    return [r for r in want.rows if r.amount is not None and r.status in ("valid", "rejected")]


def line_without_number(case: Case, want: Expected) -> bool:
    """A line read leaves its quantity empty (the default, 1), or its price or quantity is
    not a valid value."""
    return any("in an invoice with a line without its total" in r.facts for r in counted(want))


def has_fact(fact: str) -> Callable[[Case, Expected], bool]:
    def trigger(case: Case, want: Expected) -> bool:
        return any(fact in r.facts for r in want.rows)

    trigger.__doc__ = f"A row is {fact!r}."
    return trigger


KNOWN_BUGS: dict[str, tuple[Callable[[Case, Expected], bool], set[str]]] = {
    # found here: an invoice with a line whose quantity is empty, or whose price or quantity
    # is refused (a number with too many decimals, too large) is missing from the totals
    "line-without-number-drops-invoice-from-totals": (line_without_number, {"totals"}),
    # found here: a skipped row between two rows of one key parts them or not depending on
    # whether any other row of the file is rejected
    "skipped-row-inside-an-invoice": (
        has_fact("parted from its invoice's rows by a skipped row"),
        {"payloads", "rejections", "counts", "totals"},
    ),
    # found here: the rows of an invoice that disagree on the currency (rejected as
    # record_differs) are all counted in the first row's currency
    "currencies-added-in-a-rejected-invoice": (
        has_fact("in an invoice whose rows differ in currency"),
        {"totals"},
    ),
    # found here (minor): of a repeated invoice with a fault, only its first row names the key
    "duplicate-key-on-first-row-only": (
        has_fact("later rows of a repeated faulty invoice"),
        {"rejections"},
    ),
}


def compare(case: Case, only: set[str] | None = None, excuse_all_but: str | None = None) -> None:
    """payor's dry run of `case` against the twin: the checks named in `only` (default all),
    less those a known bug breaks for this case (all known bugs but `excuse_all_but`)."""
    want = case.expected()
    got = dry_run(case)
    excused: set[str] = set()
    for bug, (trigger, checks) in KNOWN_BUGS.items():
        if bug != excuse_all_but and trigger(case, want):
            excused |= checks
    for name, check in CHECKS.items():
        if (only is None or name in only) and name not in excused:
            check(case, got, want)


@pytest.mark.parametrize(("target", "kind", "lines"), CONFIGS, ids=CONFIG_IDS)
@THOROUGH
@given(data=st.data())
def test_dry_run_agrees_with_the_twin(target, kind, lines, data):
    compare(data.draw(cases(target, kind, lines), label="case"))


# -- fingerprints -----------------------------------------------------------------------------------

MASK = (1 << 64) - 1


def fmix64(k: int) -> int:
    """MurmurHash3's 64-bit finalizer."""
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK
    k ^= k >> 33
    return k


# The docstring names no constants: these two were read off payload_fingerprints' answers
# (inverting fmix64 on one-, two- and three-word payloads); the known answers below pin them.
GOLDEN = 0x9E3779B97F4A7C15  # each position's constant: fmix64((position + 1) * GOLDEN)
START = 0x2545F4914F6CDD1D  # what the sum starts from


def plain_fingerprint(payload: str | None) -> int:
    """payload_fingerprints of one payload, as its docstring tells it, in plain Python."""
    if payload is None:
        return 0
    data = payload.encode("utf-8")
    length = len(data)
    data += b" " * (-length % 8)  # padded with spaces to a multiple of 8 bytes
    total = START + length
    for position in range(len(data) // 8):
        word = int.from_bytes(data[8 * position : 8 * position + 8], "little")
        constant = fmix64(((position + 1) * GOLDEN) & MASK)
        total += fmix64(word ^ constant)
    value = fmix64(total & MASK)
    return value - (1 << 64) if value >= 1 << 63 else value  # as int64


KNOWN_FINGERPRINTS = {
    '{"customerno":"C1","emailaddress1":"a@b.example"}': 7146426134026964976,
    '{"invoiceNumber":"I00001","invoiceAmount":123456}': 2494765921650108945,
    '{"number":"Ü-7","invoiceLines":[{"description":"😀","price":1.50}]}': 3780873425554390140,
    "": -5187938499138476537,
}


def test_fingerprints_of_known_payloads_stay_the_same():
    texts = list(KNOWN_FINGERPRINTS)
    prints = payload_fingerprints(pa.array([*texts, None], pa.string())).tolist()
    assert dict(zip(texts, prints[:-1], strict=True)) == KNOWN_FINGERPRINTS
    assert prints[-1] == 0


@FAST
@given(
    st.lists(
        st.one_of(st.none(), st.text(st.characters(exclude_categories=["Cs"]), max_size=200)),
        min_size=1,
        max_size=12,
    )
)
def test_fast_fingerprints_equal_the_plain_ones(payloads):
    fast = payload_fingerprints(pa.array(payloads, pa.string())).tolist()
    assert fast == [plain_fingerprint(p) for p in payloads]


# -- known bugs, each with its minimal example -----------------------------------------------------


def invoice(target, lines, header, rows, fields, line_fields=None, **section) -> Case:
    mapping = {"invoices": dict(section, fields=fields)}
    if line_fields is not None:
        mapping["invoices"]["lines"] = line_fields
    return Case(target, "invoices", lines, header, rows, mapping)


OO_HEADER = ["No", "Contact", "Date", "Currency", "Terms", "Text", "Price", "Qty"]
OO_FIELDS = {
    "number": "No",
    "contact": "Contact",
    "issueDate": "Date",
    "dueDate": "Date",
    "currency": "Currency",
    "terms": "Terms",
}
OO_LINE = ["I1", "a@b.example", "2024-01-31", "EUR", "Net 30"]
BS_HEADER = ["No", "Customer", "Date", "Text", "Amount", "Qty"]
BS_FIELDS = {"invoice_number": "No", "customer": "Customer", "date": "Date"}
PAYOR_HEADER = ["No", "Customer", "Amount", "Currency"]
PAYOR_FIELDS = {
    "invoiceNumber": "No",
    "customerNumber": "Customer",
    "invoiceAmount": {"column": "Amount", "scale": 100},
    "currency": "Currency",
}
OO_LINES = cases("onlyoffice", "invoices", True)
BS_LINES = cases("business-suite", "invoices", True)
WITH_LINES = st.one_of(OO_LINES, BS_LINES)
WITHOUT_LINES = st.one_of(
    cases("payorcrm", "invoices", False),
    cases("business-suite", "invoices", False),
    cases("onlyoffice", "invoices", False),
)


@FAST
@given(case=OO_LINES)
@example(
    case=invoice(
        "onlyoffice",
        True,
        OO_HEADER,
        [[*OO_LINE, "", "12.50", ""]],
        OO_FIELDS,
        {"description": "Text", "price": "Price"},
    )
)
def test_a_line_whose_first_field_is_empty_is_json(case):
    compare(case, only={"payloads"})


@FAST
@given(case=WITHOUT_LINES)
@example(
    case=invoice(
        "payorcrm", False, PAYOR_HEADER, [["I1", "C1", "3.63768643142", "EUR"]], PAYOR_FIELDS
    )
)
def test_an_amount_with_many_decimals_counts_in_read(case):
    compare(case, only={"totals"})


@FAST
@given(case=WITHOUT_LINES)
@example(
    case=invoice(
        "payorcrm", False, PAYOR_HEADER, [["I1", "C1", "12345678901234.50", "EUR"]], PAYOR_FIELDS
    )
)
@example(
    case=invoice(
        "payorcrm",
        False,
        PAYOR_HEADER,
        [["I1", "C1", "5000000000000", "EUR"], ["I2", "C1", "5000000000000", "EUR"]],
        PAYOR_FIELDS,
    )
)
@example(
    case=invoice(
        "onlyoffice",
        False,
        [*OO_HEADER, "Amount"],
        [[*OO_LINE, "", "", "", "1" * 17]],
        OO_FIELDS | {"amount": "Amount"},
    )
)
def test_a_big_amount_counts_in_the_totals(case):
    compare(case, only={"totals"})


@pytest.mark.xfail(
    strict=True,
    reason="found: an invoice with a line whose quantity is empty (the default, 1), or whose "
    "price or quantity is refused, is missing from the totals",
)
@FAST
@given(case=WITH_LINES)
@example(
    case=invoice(
        "business-suite",
        True,
        BS_HEADER,
        [["I1", "a@b.example", "2024-01-31", "Work", "5.00", ""]],
        BS_FIELDS,
        {"description": "Text", "amount": "Amount", "qty": "Qty"},
    )
)
@example(
    case=invoice(
        "onlyoffice",
        True,
        OO_HEADER,
        [[*OO_LINE, "Work", "3.637", "1"]],
        OO_FIELDS,
        {"description": "Text", "price": "Price", "quantity": "Qty"},
    )
)
def test_every_line_read_counts_in_the_totals(case):
    compare(case, only={"totals"}, excuse_all_but="line-without-number-drops-invoice-from-totals")


@FAST
@given(case=WITHOUT_LINES)
@example(
    case=invoice(
        "business-suite",
        False,
        BS_HEADER,
        [["I1", "a@b.example", "2024-01-31", "", "", ""]],
        BS_FIELDS | {"amount": "Amount"},
    )
)
@example(
    case=invoice(
        "onlyoffice",
        False,
        [*OO_HEADER, "Amount"],
        [[*OO_LINE, "", "", "", ""]],
        OO_FIELDS | {"amount": "Amount"},
    )
)
def test_without_lines_the_amount_is_required(case):
    compare(case)


@FAST
@given(case=WITH_LINES)
@example(
    case=invoice(
        "onlyoffice",
        True,
        OO_HEADER,
        [[*OO_LINE, "Work", "10.00", "1"], ["", "", "", "", "", "More work", "20.00", "1"]],
        OO_FIELDS,
        {"description": "Text", "price": "Price", "quantity": "Qty"},
    )
)
def test_a_row_with_only_line_fields_is_rejected(case):
    compare(case)


@pytest.mark.xfail(
    strict=True,
    reason="found: two rows of one key with a blank row between are one invoice of two lines "
    "when another row of the file is rejected, else the second is merged into the first",
)
@FAST
@given(case=WITH_LINES)
@example(
    case=invoice(
        "onlyoffice",
        True,
        OO_HEADER,
        [
            [*OO_LINE, "Work", "10.00", "1"],
            [""] * 8,
            [*OO_LINE, "Work", "10.00", "1"],
            ["I2", "a@b.example", "2024-01-31", "EUR", "", "Work", "10.00", "1"],
        ],
        OO_FIELDS,
        {"description": "Text", "price": "Price", "quantity": "Qty"},
    )
)
def test_a_skipped_row_parts_an_invoice_whatever_the_other_rows(case):
    compare(case, excuse_all_but="skipped-row-inside-an-invoice")


@pytest.mark.xfail(
    strict=True,
    reason="found: the rows of an invoice that disagree on the currency are all counted in the "
    "first row's currency: amounts of different currencies are added",
)
@FAST
@given(case=WITH_LINES)
@example(
    case=invoice(
        "onlyoffice",
        True,
        OO_HEADER,
        [
            [*OO_LINE, "Work", "10.00", "1"],
            ["I1", "a@b.example", "2024-01-31", "USD", "Net 30", "Work", "20.00", "1"],
        ],
        OO_FIELDS,
        {"description": "Text", "price": "Price", "quantity": "Qty"},
    )
)
def test_a_rejected_invoice_counts_each_row_in_its_currency(case):
    compare(case, only={"totals"}, excuse_all_but="currencies-added-in-a-rejected-invoice")


@pytest.mark.xfail(
    strict=True,
    reason="found (minor): of a later invoice repeating a key, when it has a fault, only its "
    "first row is rejected as duplicate_key",
)
@FAST
@given(case=WITH_LINES)
@example(
    case=invoice(
        "onlyoffice",
        True,
        OO_HEADER,
        [
            [*OO_LINE, "Work", "10.00", "1"],
            ["I2", "a@b.example", "2024-01-31", "EUR", "Net 30", "Work", "10.00", "1"],
            [*OO_LINE, "Work", "10.00", "1"],
            [*OO_LINE, "", "", "1"],
        ],
        OO_FIELDS,
        {"description": "Text", "price": "Price", "quantity": "Qty"},
    )
)
def test_every_row_of_a_repeated_invoice_names_the_key(case):
    compare(case, only={"rejections"}, excuse_all_but="duplicate-key-on-first-row-only")
