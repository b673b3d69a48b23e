"""Where the table is: the sheet, the header row, the encoding and the delimiter of a file."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from payor_cli import read as readers
from payor_cli.errors import PayorError
from payor_cli.infer.header import filled, header_index, holds_table
from payor_cli.infer.labels import all_field_labels, normalise
from payor_cli.infer.presets import alternatives, preset_files
from payor_cli.read import InputOptions

HEADER_SEARCH_ROWS = 50
"""Rows searched for the header line (report exports put title lines above it)."""


def known_labels() -> set[str]:
    """The labels of the vocabularies and of the shipped presets, normalised."""
    known = all_field_labels()
    for _, entry in preset_files().items():
        try:
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        for section in data.values():
            if isinstance(section, dict):
                for spec in (section.get("fields") or {}).values():
                    for label in alternatives(
                        spec.get("column") if isinstance(spec, dict) else spec
                    ):
                        known.add(normalise(label))
    known.discard("")
    return known


@dataclass
class Located:
    """Where the table of a file is, and the settings a mapping must state to find it again."""

    options: InputOptions
    state_encoding: str | None
    comment_encoding: str | None
    delimiter: str | None
    sheet: str | None
    sheet_is_first: bool
    header: list[str] = field(default_factory=list)
    """The cells of the header row found (trimmed; empty cells kept)."""
    labels_above: list[str] | None = None
    """A row of labels above a header of machine keys: they name the columns too."""


def _non_empty(row: list[str]) -> list[str]:
    return [c.strip() for c in row if c and c.strip()]


def _header_index(rows: list[list[str]], known: set[str]) -> tuple[int, int]:
    """(index of the header row in `rows` by the table's shape, how many known labels it holds).

    The count of known labels only ranks delimiters and sheets; it does not pick the row.
    """
    at = header_index(rows)
    if at is None:
        return 0, 0
    return at, sum(1 for c in _non_empty(rows[at]) if normalise(c) in known)


def _first_sheet_with_a_table(names: list[str], search: Any, base: InputOptions) -> str:
    """The first sheet that holds a table; where none does, the one whose header looks best."""
    scored = []
    for position, name in enumerate(names):
        at, score, rows, _ = search(replace(base, sheet=name, encoding=None, delimiter=None))
        if holds_table(rows):
            return name
        width = len(_non_empty(rows[at])) if 0 <= at < len(rows) else 0
        scored.append((score, width, -position, name))
    return max(scored)[3]


_Found = tuple[int, int, list[list[str]], dict[str, Any]]
"""A header search: (header index, known labels in it, the rows read, what was detected)."""


def _best_delimiter(found: _Found, search: Any, base: InputOptions) -> _Found:
    """A sniffer is fooled by title lines above the header and by amounts such as 1,234.56 in
    a ;-separated file: the delimiter under which a header of known labels appears, with rows
    below it as wide as it is, wins."""

    def rank(found: _Found) -> tuple:
        at, score, rows, _ = found
        if at < 0:
            return (score, 0, 0)
        width = len(rows[at])
        agreeing = sum(1 for row in rows[at + 1 :] if len(row) == width)
        return (score, agreeing if width >= 2 else 0, len(_non_empty(rows[at])))

    best = found
    for candidate in readers.DELIMITERS:
        if candidate == found[3]["delimiter"]:
            continue
        other = search(replace(base, delimiter=candidate))
        if rank(other) > rank(best):
            best = other
    return best


def _encodings(detected: dict[str, Any], given: str | None) -> tuple[str | None, str | None]:
    """(the encoding the mapping states, the one it names in a comment) of a text file.

    UTF-16 and UTF-32 are stated: a reader must not guess them; other detected ones are
    only named, for the user who ever needs to set them.
    """
    if detected["format"] != "csv":
        return None, None
    if given:
        return given, None
    used = detected.get("encoding")
    if not used:
        return None, None
    if str(used).startswith(("utf-16", "utf-32")):
        return str(used), None
    return None, str(used)


def locate(path: Path, options: InputOptions, preset: dict[str, Any] | None) -> Located:
    """Sheet, header row, encoding and delimiter: given, from the preset, or detected."""
    preset = preset or {}
    known = known_labels()
    sheet = options.sheet if options.sheet is not None else preset.get("sheet")
    encoding = options.encoding or preset.get("encoding")
    delimiter = options.delimiter or preset.get("delimiter")
    header_row = options.header_row if options.header_row != 1 else preset.get("header_row", 1)
    member = options.member or preset.get("member")
    names = readers.sheet_names(path, member)
    base = InputOptions(sheet=sheet, encoding=encoding, delimiter=delimiter, member=member)

    def search(opts: InputOptions) -> _Found:
        rows, detected = readers.read_sample_rows(path, opts, HEADER_SEARCH_ROWS)
        if header_row != 1:
            numbers = detected["row_numbers"]
            at = numbers.index(header_row) if header_row in numbers else -1
            cells = rows[at] if at >= 0 else []
            return at, sum(1 for c in _non_empty(cells) if normalise(c) in known), rows, detected
        at, score = _header_index(rows, known)
        return at, score, rows, detected

    if names is not None and sheet is None and len(names) > 1:
        sheet = _first_sheet_with_a_table(names, search, base)
        base = replace(base, sheet=sheet)
    found = search(base)
    if found[3]["format"] == "csv" and delimiter is None:
        found = _best_delimiter(found, search, base)
    at, _, rows, detected = found
    labels_above = None
    if header_row == 1 and at >= 0 and key_row_below(rows, at):
        labels_above = [c.strip() for c in rows[at]]
        at += 1  # the values fit the row of machine keys under the labels: it is the header
    if header_row != 1:
        found_row = header_row
    else:
        found_row = detected["row_numbers"][at] if 0 <= at < len(rows) else 1
    is_text = detected["format"] == "csv"
    state_encoding, comment_encoding = _encodings(detected, encoding)
    sheet_name = detected.get("sheet")
    return Located(
        InputOptions(
            sheet=sheet_name if sheet_name is not None else None,
            header_row=found_row,
            encoding=state_encoding or encoding,
            delimiter=detected.get("delimiter") if is_text else None,
            member=member,
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
        [c.strip() for c in rows[at]] if 0 <= at < len(rows) else [],
        labels_above,
    )


_DIGIT = re.compile(r"\d")


def key_row_below(rows: list[list[str]], at: int) -> bool:
    """Whether the row under the header found is a second header: a row of labels above a row
    of machine keys (`Posting Date` over `posting_date`), then the data. The values fit the
    lower one: where the rows below hold numbers or dates in a column, the key row holds none,
    in every such column that it fills (two at least), and it is as wide as the labels."""
    below = [row for row in rows[at + 1 :] if filled(row)]
    if len(below) < 2:
        return False
    keys, data = below[0], below[1:]
    labels = filled(rows[at])
    if len(filled(keys)) < 0.8 * len(labels) or keys == rows[at]:
        return False
    typed = []
    for index in labels:
        cells = [row[index].strip() for row in data if index < len(row) and row[index].strip()]
        if cells and sum(1 for c in cells if _DIGIT.search(c)) >= 0.9 * len(cells):
            typed.append(index)
    beside = [i for i in typed if i < len(keys) and keys[i].strip()]
    if not (len(beside) >= min(2, len(typed)) > 0) or any(_DIGIT.search(keys[i]) for i in beside):
        return False
    # keys name their columns as the labels do (posting_date under Posting Date), each its own:
    # not a row of units (EUR, EUR, days) or a second title
    cells = [keys[i].strip() for i in filled(keys)]
    if len(set(cells)) < len(cells):
        return False
    related = 0
    for i in filled(keys):
        key = normalise(keys[i])
        label = normalise(rows[at][i]) if i < len(rows[at]) else ""
        related += bool(key and label and (key in label or label in key)) or "_" in keys[i]
    return related >= 0.5 * len(cells)


def header_row_found(path: Path) -> tuple[int, str | None, list[str]] | None:
    """The header row `payor init` finds in a file: (1-based row, sheet, its cells), or None.

    For an upload's error that finds none of a mapping's columns where it looked.
    """
    located = locate(Path(path), InputOptions(), None)
    if not any(located.header):
        return None
    return located.options.header_row, located.sheet, located.header


def header_row_hint(file_label: str, headers: list[str]) -> str:
    """Where `payor init` finds the header, for a header row that holds no mapped column (added
    to an upload's error; empty when init finds none or the same)."""
    path = Path(file_label)
    try:
        found = header_row_found(path) if path.is_file() else None
    except PayorError:
        return ""
    if found is None or [h.strip() for h in headers] == found[2]:
        return ""
    row, sheet, _ = found
    where = f"row {row}" + (f" of sheet {sheet!r}" if sheet is not None else "")
    return (
        f"; `payor init` finds the header on {where}: set header_row = {row} in the mapping "
        f"or pass --header-row {row}"
    )
