"""The first rows of an XLSX/XLSM sheet, streamed from its XML without reading the sheet whole.

fastexcel reads a sheet's data in one pass into typed Arrow columns, but a header in that pass
would turn every column into text; a second pass for the header alone would read the whole
sheet again. These few rows cost a few kilobytes of XML instead.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from xml.etree.ElementTree import iterparse

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_COLUMN = re.compile(r"[A-Z]+")
_TEXT_KINDS = {"s", "str", "inlineStr", "e", "b"}  # cells whose text needs no number format


def head_rows(path: Path, sheet: str, rows: int) -> list[list[str]] | None:
    """The sheet's first `rows` rows (1-based rows 1..rows, empty ones kept) as text cells,
    or None when the file is no XLSX that this can read (the caller reads it another way)."""
    try:
        with zipfile.ZipFile(path) as archive:
            part = sheet_part(archive, sheet)
            if part is None:
                return None
            cells = _raw_rows(archive, part, rows)
            strings = _shared_strings(archive, _needed_strings(cells))
    except (zipfile.BadZipFile, KeyError, OSError, SyntaxError, ValueError):
        return None
    if any(kind not in _TEXT_KINDS for _, _, kind, _ in cells):
        return None  # a number may be a date by its style: python-calamine knows which
    table: list[list[str]] = [[] for _ in range(rows)]
    for row, column, kind, value in cells:
        line = table[row]
        line.extend([""] * (column + 1 - len(line)))
        line[column] = _text(kind, value, strings)
    return table


def sheet_part(archive: zipfile.ZipFile, sheet: str) -> str | None:
    """The zip part that holds the worksheet named `sheet` (None when the workbook does not
    say)."""
    relation = None
    with archive.open("xl/workbook.xml") as handle:
        for _, element in iterparse(handle):
            if element.tag == _MAIN + "sheet" and element.get("name") == sheet:
                relation = element.get(_REL + "id")
                break
    if relation is None:
        return None
    with archive.open("xl/_rels/workbook.xml.rels") as handle:
        for _, element in iterparse(handle):
            if element.tag == _PKG_REL + "Relationship" and element.get("Id") == relation:
                target = element.get("Target", "")
                return (
                    target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
                )
    return None


def _raw_rows(archive: zipfile.ZipFile, part: str, rows: int) -> list[tuple[int, int, str, str]]:
    found: list[tuple[int, int, str, str]] = []
    row_number = 0
    with archive.open(part) as handle:
        for event, element in iterparse(handle, events=("start", "end")):
            if element.tag == _MAIN + "row" and event == "start":
                row_number = int(element.get("r") or row_number + 1)
                if row_number > rows:
                    break
            elif element.tag == _MAIN + "c" and event == "end":
                ref = element.get("r", "")
                column = _column_index(ref) if ref else len(found)
                kind = element.get("t", "n")
                if kind == "inlineStr":
                    value = "".join(t.text or "" for t in element.iter(_MAIN + "t"))
                else:
                    value_element = element.find(_MAIN + "v")
                    value = value_element.text or "" if value_element is not None else ""
                if value != "":
                    found.append((row_number - 1, column, kind, value))
                element.clear()
            elif element.tag == _MAIN + "sheetData" and event == "end":
                break
    return found


def _column_index(ref: str) -> int:
    letters = _COLUMN.match(ref)
    index = 0
    for letter in letters.group(0) if letters else "A":
        index = index * 26 + ord(letter) - 64
    return index - 1


def _needed_strings(cells: list[tuple[int, int, str, str]]) -> int:
    return max((int(value) for _, _, kind, value in cells if kind == "s"), default=-1)


def _shared_strings(archive: zipfile.ZipFile, last: int) -> list[str]:
    strings: list[str] = []
    if last < 0:
        return strings
    with archive.open("xl/sharedStrings.xml") as handle:
        for _, element in iterparse(handle):
            if element.tag == _MAIN + "si":
                # rich text is runs of <r><t>; phonetic guides (<rPh>) are not the text
                strings.append(
                    "".join(
                        t.text or ""
                        for t in element.iter(_MAIN + "t")
                        if t not in {x for r in element.iter(_MAIN + "rPh") for x in r}
                    )
                )
                element.clear()
                if len(strings) > last:
                    break
    return strings


def _text(kind: str, value: str, strings: list[str]) -> str:
    if kind == "s":
        return strings[int(value)]
    if kind in ("str", "inlineStr", "e"):
        return value
    return "TRUE" if value == "1" else "FALSE"  # kind "b"
