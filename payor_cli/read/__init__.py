"""Files -> chunks of cells as text: file type, encoding, delimiter, sheet and header row.

One module a job: `compressed` (the table inside a .gz or .zip), `text` (CSV/TSV),
`encoding`, `workbook` (Excel/ODS through fastexcel), `xlsx_head` (an XLSX's first rows,
streamed), `cells` (a workbook cell as the text Excel shows), `sample` (the first rows, for
`init`), `table` (what they all hand on).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from payor_cli.errors import InputError
from payor_cli.read.cells import cell_text, column_array, column_texts
from payor_cli.read.compressed import Source, resolve
from payor_cli.read.encoding import detect_encoding
from payor_cli.read.sample import read_sample_rows, sniff_report_delimiter
from payor_cli.read.spool import STDIN, STDIN_LABEL, named_as, readable, shown
from payor_cli.read.table import (
    CHUNK_ROWS,
    ORIGIN,
    REJECTED_LEAD,
    InputOptions,
    Table,
)
from payor_cli.read.text import DELIMITERS, open_text, sniff_delimiter, split_lines
from payor_cli.read.workbook import is_workbook, open_workbook, worksheet_names
from payor_cli.rows import Chunk, MalformedRow

__all__ = [
    "CHUNK_ROWS",
    "DELIMITERS",
    "ORIGIN",
    "REJECTED_LEAD",
    "STDIN",
    "STDIN_LABEL",
    "Chunk",
    "InputOptions",
    "MalformedRow",
    "Source",
    "Table",
    "cell_text",
    "column_array",
    "column_texts",
    "detect_encoding",
    "is_workbook",
    "open_table",
    "read_sample_rows",
    "readable",
    "resolve",
    "sheet_names",
    "shown",
    "sniff_delimiter",
    "sniff_report_delimiter",
    "split_lines",
]


def open_table(path: Path, options: InputOptions, chunk_rows: int = CHUNK_ROWS) -> Table:
    """Open a CSV/TSV/TXT or XLSX/XLSM/XLSB/XLS/ODS file for what its bytes are, not its name
    (`-`: standard input; it, a FIFO or a device is read once, into a temporary copy)."""
    path = Path(path)
    if options.header_row < 1:
        raise InputError(f"header_row must be 1 or more, not {options.header_row}")
    copy = readable(path)
    with named_as(copy, path):
        table = _open_table(copy, options, chunk_rows)
    if copy == path:
        return table
    table.path = shown(path)
    read = table._chunks
    assert read is not None

    def chunks() -> Iterator[Chunk]:
        with named_as(copy, path):
            yield from read()

    table._chunks = chunks
    return table


def _open_table(path: Path, options: InputOptions, chunk_rows: int) -> Table:
    source = resolve(path, options)
    if not source.workbook:
        return open_text(source, options, chunk_rows)
    if not source.compressed:
        return open_workbook(path, options, chunk_rows)
    table = open_workbook(path, options, chunk_rows, source.data())
    table.member = source.member
    return table


def sheet_names(path: Path, member: str | None = None) -> list[str] | None:
    """The worksheet names of a workbook (chart sheets left out), or None for a text file
    (`member`: the file inside an archive)."""
    copy = readable(Path(path))
    with named_as(copy, Path(path)):
        source = resolve(copy, InputOptions(member=member))
        if not source.workbook:
            return None
        return worksheet_names(source.path, source.data() if source.compressed else None)
