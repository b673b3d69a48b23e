"""Exact, vectorised conversions of cell text to API values: text, e-mail, dates, JSON.

Every function takes an Arrow string array (trimmed cells, null = empty) and returns the
value as a JSON literal per row (null = leave the field out) plus the rows it refuses, each
kind of fault as a boolean mask. Numbers (whole, money, decimals) are `numbers.py`'s.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_EMAIL = r"^[^@\s\p{Z}]+@[^@\s\p{Z}]+$"


@dataclass
class Fault:
    """Rows refused for one reason: `text` follows the value in a message ('is not a date')."""

    mask: pa.Array
    kind: str
    text: str


@dataclass
class Converted:
    """A column converted to JSON: `json` holds literals, or with `quote` the escaped text
    that goes between double quotes (quoting is left to the payload join, saving a pass)."""

    json: pa.Array
    faults: list[Fault]
    integers: pa.Array | None = None
    quote: bool = False

    def literals(self) -> pa.Array:
        if not self.quote:
            return self.json
        return pc.binary_join_element_wise('"', self.json, '"', "")


_BOM = "\ufeff"  # the zero-width no-break space, as a byte-order mark starts a file
_WHITE = " \t\r\n\v\f\u00a0\u2007\u202f\u3000"  # around a mark: trimmed with it


def empty_to_null(cells: pa.Array) -> pa.Array:
    """Trimmed cells (white space and byte-order marks) with empty text as null."""
    untrimmed = _lengths_if_trimmed(cells)
    if untrimmed is not None:  # the usual column: no cell starts or ends with a space
        if not (untrimmed == 0).any():
            return cells
        return pc.if_else(pa.array(untrimmed == 0), pa.scalar(None, pa.string()), cells)
    trimmed = pc.utf8_trim_whitespace(cells)
    if any_true(pc.match_substring(trimmed, _BOM)):
        # a byte-order mark inside a file (two exports joined) is no text: trimmed as a space
        trimmed = pc.utf8_trim_whitespace(pc.utf8_trim(trimmed, characters=_BOM + _WHITE))
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _string_bytes(cells: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """A string column's cell bounds (offsets into the bytes) and its bytes, without a copy;
    None for another type or no cells."""
    if not pa.types.is_string(cells.type) or len(cells) == 0:
        return None
    _, offsets, data = cells.buffers()
    bounds = np.frombuffer(offsets, np.int32, len(cells) + 1, cells.offset * 4)
    raw = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)
    return bounds, raw


def _lengths_if_trimmed(cells: pa.Array) -> np.ndarray | None:
    """The cells' lengths in bytes when no cell could start or end with white space (its first
    and last bytes are printable ASCII), found from the column's buffers; else None."""
    found = _string_bytes(cells)
    if found is None:
        return None
    bounds, raw = found
    lengths = np.diff(bounds)
    filled = lengths > 0
    edges = np.concatenate([raw[bounds[:-1][filled]], raw[bounds[1:][filled] - 1]])
    # a space or control byte, or a byte of a multi-byte character (maybe a no-break space)
    if ((edges <= 0x20) | (edges >= 0x7F)).any():
        return None
    return lengths


def blank_missing(cells: pa.Array, missing: tuple[str, ...]) -> pa.Array:
    """Cells whose text is one of `missing` ("NA", "n/a") as empty."""
    if not missing:
        return cells
    hit = pc.is_in(cells, value_set=pa.array(missing, pa.string()))
    return pc.if_else(hit, pa.scalar(None, pa.string()), cells)


def any_true(mask: pa.Array | None) -> bool:
    return mask is not None and bool(pc.any(mask).as_py())


def by_unique(cells: pa.Array, convert: Callable[[str], str | None]) -> pa.Array:
    """Apply a Python function once per distinct value (dates and codes repeat a lot)."""
    encoded = pc.dictionary_encode(cells)
    distinct = encoded.dictionary.to_pylist()
    converted = pa.array([convert(v) for v in distinct], pa.string())
    return pc.take(converted, encoded.indices)


_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def _may_need_escape(cells: pa.Array) -> bool:
    """Whether any byte of the cells' text is a quote, a backslash or a control character: one
    numpy pass over the column's bytes, far cheaper than a regex per cell."""
    found = _string_bytes(cells)
    if found is None:
        return True
    bounds, raw = found
    raw = raw[bounds[0] : bounds[-1]]
    return bool(((raw < 0x20) | (raw == 0x22) | (raw == 0x5C)).any())


def escaped_strings(cells: pa.Array) -> pa.Array:
    """The cells escaped for use between JSON double quotes (null stays null)."""
    if not _may_need_escape(cells):
        return cells
    special = pc.match_substring_regex(cells, _NEEDS_ESCAPE)
    if not any_true(special):
        return cells  # the usual case: nothing to escape, no copy
    escaped = by_unique(cells, lambda v: json.dumps(v, ensure_ascii=False)[1:-1])
    return pc.if_else(special, escaped, cells)


def text(cells: pa.Array) -> Converted:
    return Converted(escaped_strings(cells), [], quote=True)


def email(cells: pa.Array) -> Converted:
    valid = pc.match_substring_regex(cells, _EMAIL)
    bad = pc.and_kleene(pc.is_valid(cells), pc.invert(valid))
    fault = Fault(bad, "not_an_email", "is not an e-mail address")
    return Converted(escaped_strings(cells), [fault], quote=True)


@functools.lru_cache(maxsize=1 << 16)  # dates repeat from chunk to chunk: parsed once a run
def iso_date(value: str) -> str | None:
    """`YYYY-MM-DD` (a time after it is allowed and dropped) as an ISO date, or None."""
    match = _ISO.fullmatch(value)
    if not match:
        return None
    try:
        return dt.date(*map(int, match.groups())).isoformat()
    except ValueError:
        return None


# German month names as strptime's %B and %b read them (English): "28. Januar 2021", "3. Mrz"
_GERMAN_MONTHS = {
    "januar": "January", "jänner": "January", "februar": "February", "feber": "February",
    "märz": "March", "mär": "Mar", "mrz": "Mar", "mai": "May", "juni": "June", "juli": "July",
    "oktober": "October", "okt": "Oct", "dezember": "December", "dez": "Dec",
}  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+")


def english_months(value: str) -> str:
    """The text with German month names in English, for a format with %B or %b."""
    return _WORD.sub(lambda m: _GERMAN_MONTHS.get(m.group().casefold(), m.group()), value)


@functools.lru_cache(maxsize=64)
def date_with_formats(formats: tuple[str, ...]) -> Callable[[str], str | None]:
    named = any("%b" in fmt or "%B" in fmt for fmt in formats)

    @functools.lru_cache(maxsize=1 << 16)
    def parse(value: str) -> str | None:
        texts = [value]
        if named and (english := english_months(value)) != value:
            texts.append(english)
        for text in texts:
            for fmt in formats:
                try:
                    return dt.datetime.strptime(text, fmt).date().isoformat()
                except ValueError:
                    continue
        return None

    return parse


def date(cells: pa.Array, formats: tuple[str, ...], date_cells: pa.Array | None) -> Converted:
    """Dates as `"YYYY-MM-DD"`: real date cells as they are, text by the format (default ISO).

    Python's strptime is the format language users know (`%d.%m.%Y`); it runs once per
    distinct value, and it refuses impossible dates such as 31.02.2024.
    """
    iso = by_unique(cells, date_with_formats(formats) if formats else iso_date)
    if date_cells is not None and formats:
        iso = pc.if_else(pc.fill_null(date_cells, False), by_unique(cells, iso_date), iso)
    bad = pc.and_kleene(pc.is_valid(cells), pc.is_null(iso))
    wanted = " or ".join(formats) if formats else "YYYY-MM-DD"
    fault = Fault(bad, "not_a_date", f"is not a date in the format {wanted}")
    return Converted(iso, [fault], quote=True)


def object_members(columns: dict[str, Converted], opening: str = ",") -> list[pa.Array | str]:
    """Parts that joined give ',"name":literal,...' per row, null values left out.

    Arrow's own null_handling="skip" drops the rows where every part is null (pyarrow 26),
    which would shift every later row, so each member carries its own comma instead; a
    column without nulls goes in as it is, with no pass of its own.
    """
    parts: list[pa.Array | str] = []
    for position, (name, converted) in enumerate(columns.items()):
        prefix = (
            ("," if position or opening == "," else opening)
            + json.dumps(name, ensure_ascii=False)
            + ":"
        )
        pieces = (
            [prefix + '"', converted.json, '"'] if converted.quote else [prefix, converted.json]
        )
        if converted.json.null_count == 0:
            parts.extend(pieces)
        else:
            parts.append(pc.fill_null(pc.binary_join_element_wise(*pieces, ""), ""))
    return parts


def json_objects(columns: dict[str, Converted], anchor: str) -> pa.Array:
    """'{...}' per row, members in the order given but `anchor` first, empty values left out.

    When the anchor is never empty (a required field, in the usual chunk) it carries the
    opening brace and the join is one pass; otherwise every member brings its own comma and
    the first one is replaced by the brace, so an empty first member never loses it.
    """
    ordered = {anchor: columns[anchor]} | {k: v for k, v in columns.items() if k != anchor}
    if columns[anchor].json.null_count == 0:
        return pc.binary_join_element_wise(*_merged([*object_members(ordered, "{"), "}"]), "")
    body = pc.binary_join_element_wise(*_merged(object_members(ordered)), "")
    return pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(body, 1), "}", "")


def _merged(parts: list[pa.Array | str]) -> list[pa.Array | str]:
    """Adjacent literal parts as one (`'"' + ',"next":"'`): Arrow's join costs per part, and
    this halves the parts of a payload."""
    merged: list[pa.Array | str] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged


def json_object(parts: dict[str, pa.Array]) -> Converted:
    """A JSON object of string members from several columns; empty members are left out."""
    members = object_members({key: text(cells) for key, cells in parts.items()})
    body = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*members, ""), 1)
    body = pc.if_else(pc.equal(body, ""), pa.scalar(None, pa.string()), body)
    return Converted(pc.binary_join_element_wise("{", body, "}", ""), [])


def json_text(cells: pa.Array) -> Converted:
    """A column that holds JSON objects as text; anything else is refused."""

    def normalise(value: str) -> str | None:
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        if not isinstance(parsed, dict):
            return None
        return json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))

    literal = by_unique(cells, normalise)
    bad = pc.and_kleene(pc.is_valid(cells), pc.is_null(literal))
    return Converted(literal, [Fault(bad, "not_json", "is not a JSON object")])


def mapped(cells: pa.Array, table: dict[str, str]) -> tuple[pa.Array, pa.Array]:
    """Translate cells through a `map` (exact, then ignoring case); unknown values are faults."""
    folded = {k.casefold(): v for k, v in table.items()}
    missing = "\x00unmapped"

    def translate(value: str) -> str:
        if value in table:
            return table[value]
        return folded.get(value.casefold(), missing)

    result = by_unique(cells, translate)
    unknown = pc.fill_null(pc.equal(result, missing), False)
    return pc.if_else(unknown, pa.scalar(None, pa.string()), result), unknown


def fold_email(text: str) -> str:
    """An e-mail address as servers compare it: full Unicode case folding between canonical
    decomposition and composition, so `İnfo@`, `i̇nfo@` and `I\u0307NFO@` are one address, and
    so are an `é` typed as one character or two. Used for keys, look-ups and links alike."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())
