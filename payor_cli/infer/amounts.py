"""Amount columns: decimal and thousands separators, scale and negatives read from the texts."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from payor_cli import numbers
from payor_cli.infer.dates import DISTINCT
from payor_cli.schema import FieldType

NUMBER_TYPES = (FieldType.INTEGER, FieldType.MONEY, FieldType.DECIMAL)
"""Field types read as amounts: decimal and thousands apply; only INTEGER has a scale."""
PLACES = {FieldType.MONEY: 2, FieldType.DECIMAL: numbers.DECIMAL_PLACES}
"""The decimals that numbers.money and numbers.exact_decimal take (no mapping sets a scale)."""

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
class AmountGuess:
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


@dataclass
class _Votes:
    """What a column's amounts say about their separators."""

    decimal: Counter[str] = field(default_factory=Counter)
    thousands: Counter[str] = field(default_factory=Counter)
    three_after: Counter[str] = field(default_factory=Counter)
    """A lone separator with three digits after it: thousands (1,234) or decimals (1.234)."""
    negatives: dict[str, str] = field(default_factory=dict)
    cores: list[str] = field(default_factory=list)
    """The digits and separators of each amount read."""

    def count(self, value: str) -> bool:
        """Count one amount's separators; False if it does not read as an amount."""
        match = _amount_match(value)
        if match is None or bool(match["open"]) != bool(match["close"]):
            return False
        if match["open"]:
            self.negatives.setdefault("parentheses", value)
        if match["trail"]:
            self.negatives.setdefault("a trailing minus", value)
        core = match["num"]
        self.cores.append(core)
        seps = [ch for ch in core if not ch.isdigit()]
        if not seps:
            return True
        kinds = set(seps)
        if len(kinds) >= 2:
            last = seps[-1]
            if last in ".,":
                self.decimal[last] += 1
            for other in kinds - {last}:
                self.thousands[other] += 1
        elif len(seps) >= 2 or seps[0] in "'’":
            self.thousands[seps[0]] += 1
        else:
            sep = seps[0]
            before, _, after = core.partition(sep)
            if len(after) != 3 or len(before) > 3 or not before or before == "0":
                self.decimal[sep] += 1
            else:
                self.three_after[sep] += 1
        return True


def guess_amounts(texts: list[str]) -> AmountGuess:
    """Separators, scale and negatives of a column's amounts, and how many of them read."""
    distinct = list(dict.fromkeys(texts))[: DISTINCT * 2]
    if not distinct:
        return AmountGuess()
    votes = _Votes()
    for value in distinct:
        votes.count(value)
    guess = AmountGuess(negatives=votes.negatives)
    _separators(guess, votes, distinct)
    decimal = guess.decimal or "."
    needed = written = 0
    for core in votes.cores:
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
    checked = amount_bad(distinct, decimal, guess.thousands, guess.scale or 1)
    guess.bad = checked[:3]
    guess.coverage = 1 - len(checked) / len(distinct)
    return guess


def _separators(guess: AmountGuess, votes: _Votes, distinct: list[str]) -> None:
    """The decimal and thousands separators the votes elect, with a note where in doubt."""
    if votes.decimal:
        guess.decimal = votes.decimal.most_common(1)[0][0]
        if len(votes.decimal) > 1:
            guess.note = "both , and . look like the decimal separator; check decimal"
    elif votes.thousands.get(",") or votes.three_after.get(","):
        guess.decimal = "."
    elif votes.thousands.get(".") or votes.three_after.get("."):
        guess.decimal = ","
    if not votes.decimal and not votes.thousands and votes.three_after:
        sep = votes.three_after.most_common(1)[0][0]
        shown = next(v for v in distinct if sep in v)
        guess.note = f"amounts such as {shown!r} were read with {sep!r} grouping thousands"
    other = {".": ",", ",": "."}.get(guess.decimal or ".", ",")
    for candidate in (other, "'", "’"):
        if votes.thousands.get(candidate) or (
            candidate == other
            and votes.three_after.get(candidate)
            and not votes.decimal.get(candidate)
        ):
            guess.thousands = candidate
            break


def amount_bad(texts: list[str], decimal: str, thousands: str | None, scale: Any) -> list[str]:
    """The values that `numbers.integer` refuses with these settings (distinct)."""
    if not texts:
        return []
    distinct = list(dict.fromkeys(texts))
    scale = Decimal(str(scale))
    converted = numbers.integer(pa.array(distinct, pa.string()), decimal, thousands, scale)
    refused = [False] * len(distinct)
    for fault in converted.faults:
        for i, hit in enumerate(fault.mask.to_pylist()):
            refused[i] = refused[i] or bool(hit)
    return [v for v, r in zip(distinct, refused, strict=True) if r]
