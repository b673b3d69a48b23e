"""What a run found and did, as plain records: row errors, error tallies, control totals, counts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from payor_cli.numbers import DECIMAL_PLACES
from payor_cli.rows import GROUP_TEXTS, RowError

FIRST_ROWS = 10
NO_CURRENCY_COLUMN = "no currency column"
"""The totals' heading where the file names no currency (amounts of any currency added)."""
NO_CURRENCY = "currency empty"
"""The totals' heading for rows whose currency cell is empty."""


SERVER_PREFIX = "refused by the server: "
VARIES = "…"
"""Stands for the part of a message that differs from row to row."""
DISTINCT_LIMIT = 1_000
"""Distinct values counted per group; past it the group says "1,000+"."""
_FIELD_PREFIX = re.compile(r"([A-Za-z_][\w.\[\]-]*): ")
_QUOTED = re.compile(r"""(?<!\w)(['"])(.*?)\1(?!\w)""")
_WITH_DIGIT = re.compile(r"(?<![\w])(?<!HTTP )[^\s'\"(),;]*\d[^\s'\"(),;]*?(?=[.:]?(?:\s|$|[,;)]))")
_MISSING = re.compile(r"not exist|n't exist|not found|no such|unknown|is not in |missing", re.I)


def message_shape(
    text: str, cells: list[str | None] | None = None
) -> tuple[str | None, str, tuple]:
    """The kind of a refusal whose text names a value (a server's "customer 0379-NEVHP does
    not exist"): the field it names, the text with each value as "…", and those values.

    A value is a cell of the row that the text quotes, a quoted part, or a word holding a
    digit; what is left is what the rows of one kind of refusal share.
    """
    body = text.removeprefix(SERVER_PREFIX)
    head = text[: len(text) - len(body)]
    field = None
    if (match := _FIELD_PREFIX.match(body)) is not None:
        field, body = match.group(1), body[match.end() :]
    values: list[tuple[int, str]] = []

    def cut(pattern: re.Pattern[str], body: str, group: int = 0) -> str:
        def keep(found: re.Match[str]) -> str:
            values.append((found.start(), found.group(group)))
            return VARIES

        return pattern.sub(keep, body)

    body = cut(_QUOTED, body, 2)
    for cell in sorted({c.strip() for c in cells or () if c and c.strip()}, key=len, reverse=True):
        if len(cell) > 1 or cell.isdigit():
            body = cut(re.compile(rf"(?<![\w-]){re.escape(cell)}(?![\w-])"), body)
    body = cut(_WITH_DIGIT, body)
    shown = head + (f"{field}: " if field else "") + body
    return field, shown, tuple(value for _, value in sorted(values))


@dataclass
class ErrorGroup:
    """One kind of rejection: its field, its kind of fault, and (for a text that names a
    value) the text with the value left out, so a hundred customers that do not exist are
    one group that says so, not the first customer's message."""

    field: str | None
    kind: str
    pattern: str
    example: str
    """The first row's own text."""
    count: int = 0
    first_rows: list[int] = field(default_factory=list)
    first_values: tuple = ()
    """The values the first row's text named."""
    values: set[tuple] = field(default_factory=set)
    """The distinct values the texts named (at most DISTINCT_LIMIT of them)."""

    @property
    def varies(self) -> bool:
        return len(self.values) > 1

    @property
    def reason(self) -> str:
        """What the group's rows share; a message that differs by row says how many values
        it names, with the first row's as an example, never as every row's."""
        if not self.varies:
            return self.example
        many = (
            f"{DISTINCT_LIMIT:,}+"
            if len(self.values) >= DISTINCT_LIMIT
            else f"{len(self.values):,}"
        )
        return f"{self.pattern} ({many} different values, e.g. {', '.join(self.first_values)})"

    def missing_parent(self, link: tuple[str, str] | None) -> bool:
        """Whether the rows were refused for a parent record (a customer) the CRM lacks:
        payor found it missing, or the server said so of the field that links to it.
        `link`: (the parent kind, this kind's field that names it)."""
        if self.kind == "customer_missing":
            return True
        if link is None or self.kind != "server_rejected":
            return False
        parent, link_field = link
        named = self.field == link_field or (
            self.field is None and parent.removesuffix("s") in self.pattern.lower()
        )
        return named and _MISSING.search(self.pattern) is not None

    def as_json(self) -> dict[str, Any]:
        data = {
            "field": self.field,
            "kind": self.kind,
            "reason": self.reason,
            "count": self.count,
            "first_rows": self.first_rows,
        }
        if self.varies:
            data["example"] = self.example
            data["values"] = len(self.values)
        return data


class ErrorTally:
    """Rejections grouped by (field, kind of fault, and the shape of a text that names a
    value), with counts and the first row numbers."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str | None, str, str], ErrorGroup] = {}

    def add(self, error: RowError, cells: list[str | None] | None = None) -> None:
        if error.field is None and error.kind not in GROUP_TEXTS:
            # a text of its own per row (the server's, a target's): grouped by its shape
            field, pattern, values = message_shape(error.text, cells)
            example = error.text
        else:
            field, pattern, values, example = error.field, error.reason, (), error.reason
        key = (field, error.kind, pattern)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = ErrorGroup(
                field, error.kind, pattern, example, first_values=values
            )
        group.count += 1
        if len(group.first_rows) < FIRST_ROWS:
            group.first_rows.append(error.row)
        if len(group.values) < DISTINCT_LIMIT:
            group.values.add(values)

    def ranked(self) -> list[ErrorGroup]:
        return sorted(self.groups.values(), key=lambda g: (-g.count, g.first_rows[:1]))


class Totals:
    """Control totals: sums of the amount field per currency, for each stage a row can reach.

    The sums are of the amounts as the file states them, in millionths of a currency unit
    (exact), so a row refused for its amount (not whole after `scale`, too large) still
    counts; they are shown in currency units with the decimals the mapping implies, which is
    what a clerk compares with the ledger: "391855.71".
    """

    STAGES = ("read", "rejected", "valid", "accepted")
    UNIT = Decimal(10) ** DECIMAL_PLACES
    """Amounts come in 10**-6 of a currency unit."""

    def __init__(self, places: int | None, field: str, *, currencies: bool = True) -> None:
        self.places = places
        self.field = field
        self.sums: dict[str, dict[str, int]] = {}
        self._unnamed = NO_CURRENCY if currencies else NO_CURRENCY_COLUMN
        """The heading of amounts with no currency: an empty cell, or no column at all."""

    def _bucket(self, currency: str | None) -> dict[str, int]:
        name = currency or self._unnamed
        bucket = self.sums.get(name)
        if bucket is None:
            bucket = self.sums[name] = dict.fromkeys(self.STAGES, 0)
        return bucket

    @staticmethod
    def is_currency(heading: str) -> bool:
        """Whether a heading of the sums is a currency (not "no currency column")."""
        return heading not in (NO_CURRENCY, NO_CURRENCY_COLUMN)

    def add(self, stage: str, amounts: pa.Array, currencies: pa.Array) -> None:
        if len(amounts) == 0:
            return
        if pa.types.is_integer(amounts.type):  # Arrow's integer sum wraps around past int64
            amounts = amounts.cast(pa.decimal128(38, 0))
        table = pa.table({"amount": amounts, "currency": currencies})
        grouped = table.group_by("currency").aggregate([("amount", "sum")])
        for currency, total in zip(
            grouped["currency"].to_pylist(), grouped["amount_sum"].to_pylist(), strict=True
        ):
            if total is not None:
                self._bucket(currency)[stage] += total

    def add_value(self, stage: str, amount: int, currency: str | None) -> None:
        self._bucket(currency)[stage] += amount

    def units(self, amount: int | Decimal) -> Decimal:
        """A sum in currency units, exact: with `places` decimals where that loses nothing."""
        value = Decimal(amount) / self.UNIT
        if self.places is not None:
            rounded = value.quantize(Decimal(1).scaleb(-self.places))
            if rounded == value:
                return rounded
        return value.normalize()

    def as_json(self) -> dict[str, dict[str, str]]:
        """Per currency and stage, exact decimal strings in currency units ("391855.71")."""
        return {
            currency: {stage: f"{self.units(total):f}" for stage, total in stages.items()}
            for currency, stages in sorted(self.sums.items())
        }

    def shown(self, currency: str, stage: str) -> str:
        """For people: "391,855.71"."""
        return f"{self.units(self.sums[currency][stage]):,f}"


def decimal_places(scale: Decimal) -> int | None:
    """100 -> 2, 1 -> 0; None when scale is no power of ten (then the exact quotient is shown)."""
    exponent = scale.normalize().as_tuple()
    if exponent.digits == (1,) and exponent.exponent >= 0:
        return exponent.exponent
    return None


@dataclass(frozen=True)
class Span:
    """Rows that were not delivered: the first and last row, and how many rows they hold
    (rows rejected or skipped between them are not counted)."""

    first: int
    last: int
    rows: int

    def shown(self) -> str:
        return (
            f"row {self.first:,}"
            if self.first == self.last
            else f"rows {self.first:,}-{self.last:,}"
        )


@dataclass
class Stopped:
    """Why a run ended early, and how far it had read and delivered."""

    reason: str
    """interrupted | aborted"""
    message: str
    row: int | None = None
    """The first source row not dealt with (None: none left)."""
    spans: list[Span] = field(default_factory=list)
    """Rows of the requests in flight that were not delivered, where rows after them were."""
    rest_from: int | None = None
    """From this row on nothing was delivered (None: no such row)."""
    delivered_after: int = 0
    """Rows delivered after `row` (by requests in flight when the run stopped)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "row": self.row,
            "message": self.message,
            "not_delivered": [
                {"first": s.first, "last": s.last, "rows": s.rows} for s in self.spans
            ],
            "not_delivered_from": self.rest_from,
            "delivered_after": self.delivered_after,
        }


def nothing_delivered(summary: RunSummary) -> str | None:
    """When a real run delivered none of its rows, why, in a line: every invoice's customer
    missing in the CRM is the common case, and says what to do."""
    if summary.dry_run or summary.stopped is not None or summary.error is not None:
        return None
    if summary.rows_accepted or summary.rows_unchanged or not summary.rows_rejected:
        return None
    noun = summary.kind.removesuffix("s")
    groups = summary.errors.ranked()
    missing = sum(g.count for g in groups if g.missing_parent(summary.link))
    held = sum(g.count for g in groups if g.kind == "customer_rejected")
    if missing and missing >= summary.rows_rejected:
        return (
            f"no {noun} was delivered: the CRM has none of their customers; upload the "
            "customers first, or `payor upload all`"
        )
    if missing:
        return (
            f"no {noun} was delivered: {missing:,} of the {summary.rows_rejected:,} rows "
            "rejected name a customer the CRM does not have; upload the customers first, or "
            "`payor upload all`"
        )
    if held and held >= summary.rows_rejected:
        return f"no {noun} was delivered: their customers were rejected in this run"
    return f"no {noun} was delivered: all {summary.rows_rejected:,} rows were rejected"


COUNTS = (
    "rows_read",
    "rows_valid",
    "rows_rejected",
    "rows_skipped",
    "rows_merged",
    "rows_unchanged",
    "rows_sent",
    "rows_accepted",
    "requests",
    "retries",
)
"""The counters of a run, in the order the JSON report gives them."""


@dataclass
class RunSummary:
    """The counts of one kind's run; `as_json` is the --report-json object."""

    kind: str
    file: Path
    dry_run: bool
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    rows_skipped: int = 0
    rows_merged: int = 0
    rows_unchanged: int = 0
    rows_sent: int = 0
    rows_accepted: int = 0
    requests: int = 0
    retries: int = 0
    duration_s: float = 0.0
    exit_code: int = 0
    source: str = ""
    """How the file was read: its real type (xlsb, xlsm, csv...), sheet, encoding, delimiter."""
    mapping_source: str = ""
    errors: ErrorTally = field(default_factory=ErrorTally)
    totals: Totals | None = None
    target: str = field(kw_only=True)
    """The API the run uploads to."""
    link: tuple[str, str] | None = None
    """The parent kind and the field that links a row to it (customers, customerNumber)."""
    last_row: int | None = None
    """The source row number of the last row read."""
    read_to_end: bool = False
    stopped: Stopped | None = None
    error: str | None = None
    """Why the run stopped before counting (exit 2 or 4)."""

    @property
    def note(self) -> str | None:
        """What the counts do not say at once (nothing delivered, and why)."""
        return nothing_delivered(self)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "target": self.target,
            "file": str(self.file),
            "dry_run": self.dry_run,
            # plain ints (a count may be numpy's, an exit code an IntEnum): JSON's own types
            **{name: int(getattr(self, name)) for name in COUNTS},
            "duration_s": round(float(self.duration_s), 3),
            "exit_code": int(self.exit_code),
            "stopped": self.stopped.as_json() if self.stopped else None,
            "errors": [g.as_json() for g in self.errors.ranked()],
            "note": self.note,
        }
        if self.source:
            data["source"] = self.source
        if self.totals is not None:
            data["totals"] = self.totals.as_json()
        if self.error:
            data["error"] = self.error
        return data
