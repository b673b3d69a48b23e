"""Date columns: which strptime formats read a column's texts, and what they leave unread."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from payor_cli import values

DISTINCT = 2000
"""Distinct values per column that format guessing looks at."""

_DATE_BASES = (
    "%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%y", "%d/%m/%y", "%Y/%m/%d",
    "%d-%m-%Y", "%m-%d-%Y", "%d.%m.%y", "%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%d-%b-%y",
    "%Y%m%d",
    # month names: Zoho's "Jan 28 2021", "January 28, 2021", "28 January 2021", German
    # "28. Januar 2021" (the value rules read German month names), "28/Jan/2021"
    "%b %d %Y", "%B %d, %Y", "%B %d %Y", "%d %B %Y", "%d-%B-%Y", "%d. %B %Y", "%d. %b %Y",
    "%d.%b.%Y", "%d/%b/%Y", "%b-%d-%Y", "%Y-%b-%d", "%b %d, %y", "%d %b %y",
)  # fmt: skip
DATE_FORMATS = tuple(
    base + time
    for base in _DATE_BASES
    for time in ("", " %H:%M", " %H:%M:%S")
    if not (base == "%Y%m%d" and time)
)
CONFIRM_ORDER = "confirm: day/month order could not be decided from the data"


_DIRECTIVES = {
    "d": r"\s?\d{1,2}",
    "m": r"\d{1,2}",
    "Y": r"\d{4}",
    "y": r"\d\d",
    "H": r"\d{1,2}",
    "M": r"\d{1,2}",
    "S": r"\d{1,2}",
    "b": r"[^\W\d_]{3}",
    "B": r"[^\W\d_]{3,9}",
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
    texts = [value]
    if "%b" in fmt or "%B" in fmt:
        # as the value rules read them: German month names too
        texts.append(values.english_months(value))
    for text in texts:
        try:
            dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return True
    return False


def day_month_order(fmt: str) -> str | None:
    """'dm' or 'md' for a format with a numeric day and month, else None."""
    d, m = fmt.find("%d"), fmt.find("%m")
    if d < 0 or m < 0 or fmt.startswith("%Y"):
        return None
    return "dm" if d < m else "md"


def swapped_order(fmt: str) -> str:
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def date_separator(fmt: str) -> str:
    return next((ch for ch in fmt.split(" ")[0].replace("%", "") if not ch.isalpha()), "")


@dataclass
class DateGuess:
    formats: tuple[str, ...] | None
    """None: no format needed (ISO text, real date cells or nothing)."""
    coverage: float = 1.0
    ambiguous: bool = False
    bad: list[str] = field(default_factory=list)
    """Up to 3 distinct values no chosen format reads."""
    misfits: int = 0
    """How many distinct values no chosen format reads."""


def guess_dates(texts: list[str]) -> DateGuess:
    distinct = list(dict.fromkeys(texts))[:DISTINCT]
    if not distinct:
        return DateGuess(None)
    if all(values.iso_date(v) for v in distinct):
        return DateGuess(None)
    full = [f for f in DATE_FORMATS if all(_parses(v, f) for v in distinct)]
    if full:
        chosen = full[0]
        ambiguous = False
        if day_month_order(chosen) and all(_parses(v, swapped_order(chosen)) for v in distinct):
            ambiguous = True
            preferred = "md" if date_separator(chosen) == "/" else "dm"
            if day_month_order(chosen) != preferred:
                chosen = swapped_order(chosen)
        return DateGuess((chosen,), 1.0, ambiguous)
    # several styles in one column (an export merged from two sources): cover them in turn
    hits = {f: {v for v in distinct if _parses(v, f)} for f in DATE_FORMATS}
    left = set(distinct)
    chosen_formats: list[str] = []
    order = None
    while left and len(chosen_formats) < 3:
        counts = [
            (len(hits[f] & left), -DATE_FORMATS.index(f), f)
            for f in DATE_FORMATS
            if f not in chosen_formats
            and not (order and day_month_order(f) and day_month_order(f) != order)
        ]
        best_hits, _, best = max(counts)
        if not best_hits:
            break
        chosen_formats.append(best)
        order = order or day_month_order(best)
        left -= hits[best]
    left = [v for v in distinct if v in left]
    left = [v for v in left if not values.iso_date(v)]
    coverage = 1 - len(left) / len(distinct)
    return DateGuess(tuple(chosen_formats) or None, coverage, False, left[:3], len(left))


def date_ok(texts: list[str], formats: tuple[str, ...] | None) -> list[str]:
    """The values (distinct, up to 3) that the formats (None: ISO) do not read."""
    parse = values.date_with_formats(formats) if formats else values.iso_date
    bad = [v for v in dict.fromkeys(texts) if parse(v) is None]
    return bad[:3]
