"""Text tables (CSV/TSV/TXT) -> chunks: encoding, delimiter, header record, Arrow's fast reader."""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from payor_cli.errors import InputError

from .encoding import detect_encoding
from .table import (
    REJECTED_LEAD,
    SAMPLE_BYTES,
    Chunk,
    InputOptions,
    Table,
    own_rejected,
)

DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_BYTES = SAMPLE_BYTES
_BLOCK_BYTES = 1 << 20  # Arrow reads ahead many blocks: small ones keep memory flat
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


# --- text files -------------------------------------------------------------------------------


def sniff_delimiter(lines: list[str]) -> str:
    """The candidate that splits the header and the lines under it into the most equal columns."""
    best, best_score = ",", (0, 0)
    for candidate in DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=candidate) if row]
        if not widths or widths[0] < 2:
            continue
        header_width = widths[0]
        agreeing = sum(1 for w in widths if w == header_width)
        score = (agreeing, header_width)
        if score > best_score:
            best, best_score = candidate, score
    return best


def open_text(path: Path, head: bytes, options: InputOptions, chunk_rows: int) -> Table:
    encoding = options.encoding or detect_encoding(path, head)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(
            f"unknown encoding {encoding!r}", "use e.g. utf-8, utf-16, cp1252"
        ) from None
    try:
        sample = head.decode(encoding, errors="strict" if options.encoding else "replace")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: the file is not {encoding} (byte {exc.start}: {exc.reason})",
            "drop the encoding setting to let payor detect it, or name the right one",
        ) from None
    sample = sample.lstrip("\ufeff")
    lines = split_lines(sample)
    if len(head) == _SAMPLE_BYTES and lines:
        lines = lines[:-1]  # the last line of a cut sample is incomplete
        if not lines:
            raise InputError(
                f"{path}: read as {encoding}, its first {_SAMPLE_BYTES // 1024} KB hold no line "
                "break, so it is no text table in that encoding",
                "drop the encoding setting to let payor detect it, or name the right one",
            )
    own_delimiter = _rejected_file_delimiter(lines[:1], options.delimiter)
    if own_delimiter is not None:
        # payor's own rejected-rows file: its header is on line 1, whatever the mapping says
        options = replace(options, header_row=1, delimiter=own_delimiter)
    header_at = options.header_row - 1
    if header_at >= len(lines):
        raise InputError(
            f"{path}: header_row = {options.header_row}, but the file has only {len(lines)} lines",
            "set header_row to the row that holds the column names",
        )
    delimiter = options.delimiter or sniff_delimiter(lines[header_at : header_at + 50])
    if len(delimiter) != 1:
        raise InputError(f"delimiter must be one character, not {delimiter!r}")
    header_cells = next(csv.reader([lines[header_at]], delimiter=delimiter), [])
    headers = [cell.strip() for cell in header_cells]
    if not any(headers):
        raise InputError(
            f"{path}: row {options.header_row} is empty, so it holds no column names",
            "set header_row to the row that holds the column names",
        )
    table = Table(path, "csv", headers, options.header_row, encoding, delimiter)
    table.rows_expected = _estimated_rows(path, head, len(split_lines(sample)), options.header_row)
    table._chunks = lambda: _text_chunks(
        path, encoding, delimiter, len(headers), options, chunk_rows
    )
    return own_rejected(table) if own_delimiter is not None else table


def _estimated_rows(path: Path, head: bytes, lines_in_head: int, header_row: int) -> int:
    """The data rows of a text file, from its size and the lines of its first bytes."""
    if len(head) < _SAMPLE_BYTES:
        return max(0, lines_in_head - header_row)  # the whole file was read
    bytes_per_line = len(head) / max(1, lines_in_head)
    return max(0, round(path.stat().st_size / bytes_per_line) - header_row)


def _rejected_file_delimiter(first_line: list[str], delimiter: str | None) -> str | None:
    """The delimiter of payor's own rejected-rows file, or None when this is not one."""
    if not first_line or not first_line[0].startswith(REJECTED_LEAD[0]):
        return None
    for candidate in [delimiter] if delimiter else DELIMITERS:
        cells = next(csv.reader(first_line, delimiter=candidate), [])
        if tuple(c.strip() for c in cells[:2]) == REJECTED_LEAD:
            return candidate
    return None


def _text_chunks(
    path: Path, encoding: str, delimiter: str, width: int, options: InputOptions, chunk_rows: int
) -> Iterator[Chunk]:
    """Stream with Arrow's parallel CSV reader; fall back to the csv module for ragged rows.

    Arrow drops a row whose cell count differs from the header's without saying where it
    stood, which would shift every later row number. So at the first such row the rest of the
    file is read again with the csv module, from the first record not yet handed out.
    """
    ragged = []
    names = [f"c{i}" for i in range(width)]

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        ragged.append(row)
        return "skip"

    arrow_encoding = "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding
    first_row = options.header_row + 1
    emitted = 0
    reader = None
    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(
                skip_rows=options.header_row,
                column_names=names,
                block_size=_BLOCK_BYTES,
                encoding=arrow_encoding,
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
        waiting: list[pa.RecordBatch] = []
        waiting_rows = 0
        for batch in itertools.chain(reader, [None]):
            if ragged:
                break
            if batch is not None:
                waiting.append(batch)
                waiting_rows += batch.num_rows
            if waiting_rows and (waiting_rows >= chunk_rows or batch is None):
                # small blocks keep Arrow's read-ahead small; chunks of many rows keep the
                # per-chunk cost of validation small
                columns = pa.Table.from_batches(waiting).combine_chunks().columns
                yield Chunk([column.chunk(0) for column in columns], first_row + emitted)
                emitted += waiting_rows
                waiting, waiting_rows = [], 0
        if not ragged:
            return
    except StopIteration:
        return
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if emitted == 0 and "Empty CSV file" in str(exc):
            return
        if not isinstance(exc, pa.ArrowInvalid) or "invalid UTF8" in str(exc):
            raise InputError(f"{path}: the file is not {encoding}: {exc}") from None
    finally:
        if reader is not None:
            reader.close()  # Arrow's read-ahead threads end here, not at interpreter exit
    yield from _csv_module_chunks(path, encoding, delimiter, width, options, emitted, chunk_rows)


def _csv_module_chunks(
    path: Path,
    encoding: str,
    delimiter: str,
    width: int,
    options: InputOptions,
    skip_records: int,
    chunk_rows: int,
) -> Iterator[Chunk]:
    with path.open(encoding=encoding, newline="", errors="strict") as handle:
        records = csv.reader(handle, delimiter=delimiter)
        try:
            for _ in itertools.islice(records, options.header_row + skip_records):
                pass
            row_number = options.header_row + 1 + skip_records
            while batch := list(itertools.islice(records, chunk_rows)):
                malformed = {}
                for offset, record in enumerate(batch):
                    if len(record) < width:
                        record.extend([""] * (width - len(record)))
                    elif len(record) > width:
                        extra = record[width:]
                        if any(cell.strip() for cell in extra):
                            malformed[offset] = (
                                f"the row has {len(record)} cells but the header has {width}"
                            )
                        del record[width:]
                columns = [pa.array(cells, pa.string()) for cells in zip(*batch, strict=True)]
                yield Chunk(columns, row_number, malformed=malformed)
                row_number += len(batch)
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: the file is not {encoding} ({exc.reason})") from None
        except csv.Error as exc:
            raise InputError(
                f"{path}: not a readable CSV near record {records.line_num}: {exc}"
            ) from None


def split_lines(text: str) -> list[str]:
    """Lines with their ends, split at CR, LF and CRLF only (csv's idea of a line)."""
    return _LINE.findall(text)
