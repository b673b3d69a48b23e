"""What a run found and did, as plain records: row errors, error tallies, control totals, counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from .values import DECIMAL_PLACES

FIRST_ROWS = 10
NO_CURRENCY_COLUMN = "no currency column"
"""The totals' heading where the file names no currency (amounts of any currency added)."""
NO_CURRENCY = "currency empty"
"""The totals' heading for rows whose currency cell is empty."""


@dataclass(frozen=True)
class RowError:
    """One reason a row was refused, with its coordinates."""

    row: int
    field: str | None
    column: str | None
    kind: str
    text: str
    value: str | None = None

    def message(self) -> str:
        where = self.field or "row"
        if self.column:
            where += f' (column "{self.column}")'
        shown = f'"{self.value}" ' if self.value not in (None, "") else ""
        return f"{where}: {shown}{self.text}"

    @property
    def reason(self) -> str:
        """The row-independent part, for grouping: 'invoiceAmount is not a number'."""
        text = GROUP_TEXTS.get(self.kind, self.text)
        return f"{self.field} {text}" if self.field else text


# Kinds whose row text names another row: the group says what they share.
GROUP_TEXTS = {
    "duplicate_key": "repeats the key of an earlier row",
    "customer_rejected": "belongs to a customer that was rejected",
    "record_rejected": "belongs to a record refused whole for another of its rows",
    "record_differs": "differs between the rows of one record",
}


@dataclass
class RejectedRow:
    row: int
    errors: list[RowError]
    cells: list[str]
    link: str | None = None
    """The value that rows of a child kind point to (a customer's customerno)."""
    extra: list[str] = field(default_factory=list)
    """Cells beyond the header's width, kept so that fixing the row loses nothing."""

    @property
    def message(self) -> str:
        return "; ".join(e.message() for e in self.errors)


@dataclass
class ErrorGroup:
    field: str | None
    kind: str
    reason: str
    count: int = 0
    first_rows: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "kind": self.kind,
            "reason": self.reason,
            "count": self.count,
            "first_rows": self.first_rows,
        }


class ErrorTally:
    """Rejections grouped by (field, kind of fault), with counts and the first row numbers."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str | None, str], ErrorGroup] = {}

    def add(self, error: RowError) -> None:
        group = self.groups.get((error.field, error.kind))
        if group is None:
            group = self.groups[(error.field, error.kind)] = ErrorGroup(
                error.field, error.kind, error.reason
            )
        group.count += 1
        if len(group.first_rows) < FIRST_ROWS:
            group.first_rows.append(error.row)

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

    def __init__(
        self, places: int | None = 2, field: str = "invoiceAmount", *, currencies: bool = True
    ) -> None:
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


@dataclass
class Stopped:
    """Why a run ended early, and how far it had read."""

    reason: str
    """interrupted | aborted"""
    message: str
    row: int | None = None
    """The first source row not dealt with: from it on, nothing was sent (None: none left)."""

    def as_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "row": self.row, "message": self.message}


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
    target: str = "payorcrm"
    last_row: int | None = None
    """The source row number of the last row read."""
    read_to_end: bool = False
    stopped: Stopped | None = None
    error: str | None = None
    """Why the run stopped before counting (exit 2 or 4)."""

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "target": self.target,
            "file": str(self.file),
            "dry_run": self.dry_run,
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "rows_rejected": self.rows_rejected,
            "rows_skipped": self.rows_skipped,
            "rows_merged": self.rows_merged,
            "rows_unchanged": self.rows_unchanged,
            "rows_sent": self.rows_sent,
            "rows_accepted": self.rows_accepted,
            "requests": self.requests,
            "retries": self.retries,
            "duration_s": round(self.duration_s, 3),
            "exit_code": self.exit_code,
            "stopped": self.stopped.as_json() if self.stopped else None,
            "errors": [g.as_json() for g in self.errors.ranked()],
        }
        if self.source:
            data["source"] = self.source
        if self.totals is not None:
            data["totals"] = self.totals.as_json()
        if self.error:
            data["error"] = self.error
        return data
