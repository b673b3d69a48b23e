"""The first rows of a file as text cells, before its header row is known (for `payor init`)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from payor_cli.read.cells import cell_text
from payor_cli.read.compressed import resolve
from payor_cli.read.spool import named_as, readable
from payor_cli.read.table import SAMPLE_BYTES, InputOptions
from payor_cli.read.text import DELIMITERS, choose_encoding, split_lines
from payor_cli.read.workbook import pick_sheet, sheet_rows, workbook_format, worksheet_names

_SAMPLE_BYTES = SAMPLE_BYTES


def read_sample_rows(
    path: Path, options: InputOptions, rows: int = 50
) -> tuple[list[list[str]], dict[str, object]]:
    """The first `rows` rows of a file as text cells, and what was detected (for `payor init`).

    The header row is not known yet, so `options.header_row` is ignored. `detected` holds
    `format`, `encoding`, `delimiter` and `lines` (text files: the decoded lines, for sniffing
    again below a header), `sheet` and `sheets` (workbooks), and `row_numbers`: each row's
    1-based number as `header_row` counts it (text: the physical line the record starts on).
    """
    path = Path(path)
    copy = readable(path)
    with named_as(copy, path):
        return _sample_rows(copy, options, rows)


def _sample_rows(
    path: Path, options: InputOptions, rows: int
) -> tuple[list[list[str]], dict[str, object]]:
    source = resolve(path, options)
    head = source.head
    if source.workbook:
        data = source.data() if source.compressed else None
        names = worksheet_names(path, data)
        sheet = pick_sheet(path, names, options.sheet)
        fmt = workbook_format(path, data)
        # python-calamine's cells, which know date cells by their number format (the rows
        # are few); a chart sheet is never among the names, so never read
        cells = [[cell_text(c) for c in row] for row in sheet_rows(path, sheet, rows, data)]
        detected: dict[str, object] = {
            "format": fmt,
            "sheet": sheet,
            "sheets": names,
            "row_numbers": list(range(1, len(cells) + 1)),
        }
        return cells, detected
    encoding = choose_encoding(source, options).encoding
    text = head.decode(encoding, errors="replace")
    lines = split_lines(text.lstrip("\ufeff"))
    if len(head) == _SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample is incomplete
    delimiter = options.delimiter or sniff_report_delimiter(lines[: rows * 2])
    records: list[list[str]] = []
    numbers: list[int] = []
    initial_space = re.search(re.escape(delimiter) + r' +"', text) is not None
    reader = csv.reader(iter(lines), delimiter=delimiter, skipinitialspace=initial_space)
    try:
        while len(records) < rows:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            records.append(record)
            numbers.append(start)
    except csv.Error:
        pass  # a damaged line: the rows so far are sample enough
    detected = {
        "format": "csv",
        "encoding": encoding,
        "delimiter": delimiter,
        "lines": lines,
        "row_numbers": numbers,
    }
    return records, detected


def sniff_report_delimiter(lines: list[str]) -> str:
    """The candidate under which most lines share one width of 2 or more cells.

    Unlike `sniff_delimiter` this does not trust the first line: report exports put title
    lines (one cell, or a comma in a sentence) above the header.
    """
    best, best_score = ",", (0, 0)
    for candidate in DELIMITERS:
        try:
            widths = [
                len(row)
                for row in csv.reader(lines, delimiter=candidate)
                if any(cell.strip() for cell in row)
            ]
        except csv.Error:
            continue
        counts: dict[int, int] = {}
        for width in widths:
            if width >= 2:
                counts[width] = counts.get(width, 0) + 1
        if not counts:
            continue
        width, agreeing = max(counts.items(), key=lambda item: (item[1], item[0]))
        score = (agreeing, width)
        if score > best_score:
            best, best_score = candidate, score
    return best
