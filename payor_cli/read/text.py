"""Text tables (CSV/TSV/TXT) -> chunks: encoding, delimiter, header record, Arrow's fast reader."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from payor_cli.errors import InputError
from payor_cli.read.compressed import Source
from payor_cli.read.encoding import Guess, guess_encoding, has_nul
from payor_cli.read.table import (
    REJECTED_LEAD,
    SAMPLE_BYTES,
    InputOptions,
    Table,
    own_rejected,
)
from payor_cli.rows import Chunk, MalformedRow

DELIMITERS = (",", ";", "\t", "|")
_BLOCK_BYTES = 1 << 20  # Arrow reads ahead many blocks: small ones keep memory flat
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


@dataclass(frozen=True)
class Layout:
    """Where the data of a text file starts and how its records are cut."""

    encoding: str
    delimiter: str
    headers: list[str]
    data_line: int
    """The physical line (1-based) of the first data record, below a header of one or more."""
    initial_space: bool
    """Spaces after a delimiter come before a quoted field (`1, "2.3"`): skip them."""
    nul: bool
    """The file may hold NUL bytes: cells are checked for them."""


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


def choose_encoding(source: Source, options: InputOptions) -> Guess:
    """The mapping's encoding (checked), or the detected one."""
    if not options.encoding:
        return guess_encoding(source.path, source.head, source.open)
    try:
        codecs.lookup(options.encoding)
    except LookupError:
        raise InputError(
            f"unknown encoding {options.encoding!r}", "use e.g. utf-8, utf-16, cp1252, cp1251"
        ) from None
    wide = codecs.lookup(options.encoding).name.startswith(("utf-16", "utf-32"))
    # in a wide encoding zero bytes are everywhere: its cells are checked one by one
    return Guess(options.encoding, nul=wide or has_nul(source.open))


def open_text(source: Source, options: InputOptions, chunk_rows: int) -> Table:
    """Open a text table: its header is the CSV record that starts on line `header_row`."""
    path, head = source.path, source.head
    guess = choose_encoding(source, options)
    encoding = guess.encoding
    try:
        sample = head.decode(encoding, errors="strict" if options.encoding else "replace")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: the file is not {encoding} (byte {exc.start}: {exc.reason})",
            "drop the encoding setting to let payor detect it, or name the right one",
        ) from None
    sample = sample.lstrip("\ufeff")
    lines = split_lines(sample)
    if len(head) == SAMPLE_BYTES and lines:
        lines = lines[:-1]  # the last line of a cut sample is incomplete
        if not lines:
            raise InputError(
                f"{path}: read as {encoding}, its first {SAMPLE_BYTES // 1024} KB hold no line "
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
    initial_space = re.search(re.escape(delimiter) + r' +"', sample) is not None
    headers, header_lines = _header_record(lines[header_at:], delimiter, initial_space)
    if not any(headers):
        raise InputError(
            f"{path}: row {options.header_row} is empty, so it holds no column names",
            "set header_row to the row that holds the column names",
        )
    layout = Layout(
        encoding, delimiter, headers, options.header_row + header_lines, initial_space, guess.nul
    )
    table = Table(path, "csv", headers, options.header_row, encoding, delimiter)
    table.encoding_note = guess.note
    table.member = source.member
    table.rows_expected = _estimated_rows(source, len(split_lines(sample)), layout.data_line - 1)
    table._chunks = lambda: _checked(_text_chunks(source, layout, chunk_rows), layout)
    return own_rejected(table) if own_delimiter is not None else table


def _header_record(lines: list[str], delimiter: str, initial_space: bool) -> tuple[list[str], int]:
    """The header's cells, read as a CSV record (a quoted cell may hold a line break), and
    how many physical lines it spans."""
    reader = csv.reader(iter(lines), delimiter=delimiter, skipinitialspace=initial_space)
    try:
        cells = next(reader, [])
    except csv.Error:
        cells = next(csv.reader(lines[:1], delimiter=delimiter), [])
        return [c.strip() for c in cells], 1
    return [cell.strip() for cell in cells], max(1, reader.line_num)


def _estimated_rows(source: Source, lines_in_head: int, above_data: int) -> int | None:
    """The data rows of a text file, from its size and the lines of its first bytes."""
    if len(source.head) < SAMPLE_BYTES:
        return max(0, lines_in_head - above_data)  # the whole file was read
    if source.size is None:
        return None
    bytes_per_line = len(source.head) / max(1, lines_in_head)
    return max(0, round(source.size / bytes_per_line) - above_data)


def _rejected_file_delimiter(first_line: list[str], delimiter: str | None) -> str | None:
    """The delimiter of payor's own rejected-rows file, or None when this is not one."""
    if not first_line or not first_line[0].startswith(REJECTED_LEAD[0]):
        return None
    for candidate in [delimiter] if delimiter else DELIMITERS:
        cells = next(csv.reader(first_line, delimiter=candidate), [])
        if tuple(c.strip() for c in cells[:2]) == REJECTED_LEAD:
            return candidate
    return None


def _checked(chunks: Iterator[Chunk], layout: Layout) -> Iterator[Chunk]:
    """Rows with a NUL byte in a cell are refused, naming the column (csvkit reads such
    files; a NUL is never part of a real value)."""
    for chunk in chunks:
        if layout.nul:
            for index, column in enumerate(chunk.columns):
                hits = pc.indices_nonzero(pc.match_substring(column, "\x00")).to_pylist()
                name = layout.headers[index] or f"column {index + 1}"
                for offset in hits:
                    reason = f"column {name!r} contains a NUL byte (remove it from the cell)"
                    known = chunk.malformed.get(offset)
                    chunk.malformed[offset] = (
                        MalformedRow(f"{known}; {reason}", getattr(known, "extra", []))
                        if known
                        else MalformedRow(reason)
                    )
        yield chunk


def _text_chunks(source: Source, layout: Layout, chunk_rows: int) -> Iterator[Chunk]:
    """Stream with Arrow's parallel CSV reader; fall back to the csv module for ragged rows.

    Arrow drops a row whose cell count differs from the header's without saying where it
    stood, which would shift every later row number. So at the first such row the rest of the
    file is read again with the csv module, from the first record not yet handed out. Arrow
    cannot skip spaces before a quoted field: such files go to the csv module whole.
    """
    if _nothing_below_header(source, layout):
        return
    if layout.initial_space:
        yield from _csv_module_chunks(source, layout, 0, chunk_rows)
        return
    ragged: list[pa_csv.InvalidRow] = []
    emitted = 0
    reader = None
    try:
        reader = _arrow_reader(source, layout, ragged)
        for columns, rows in _arrow_blocks(reader, chunk_rows, ragged):
            yield Chunk(columns, layout.data_line + emitted)
            emitted += rows
        if not ragged:
            return
    except StopIteration:
        return
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if emitted == 0 and "Empty CSV file" in str(exc):
            return
        if not isinstance(exc, pa.ArrowInvalid) or "invalid UTF8" in str(exc):
            raise InputError(f"{source.path}: the file is not {layout.encoding}: {exc}") from None
    finally:
        if reader is not None:
            reader.close()  # Arrow's read-ahead threads end here, not at interpreter exit
    yield from _csv_module_chunks(source, layout, emitted, chunk_rows)


def _arrow_reader(
    source: Source, layout: Layout, ragged: list[pa_csv.InvalidRow]
) -> pa_csv.CSVStreamingReader:
    """Arrow's streaming reader of the data below the header, every cell text; a row of
    another width than the header's is put in `ragged` and skipped."""
    names = [f"c{i}" for i in range(len(layout.headers))]

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        ragged.append(row)
        return "skip"

    encoding = layout.encoding
    return pa_csv.open_csv(
        source.path if not source.compressed else source.open(),
        read_options=pa_csv.ReadOptions(
            skip_rows=layout.data_line - 1,  # physical lines, as Arrow counts them
            column_names=names,
            block_size=_BLOCK_BYTES,
            encoding="utf8" if encoding in ("utf-8", "utf-8-sig") else encoding,
        ),
        parse_options=pa_csv.ParseOptions(
            delimiter=layout.delimiter,
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


def _arrow_blocks(
    reader: pa_csv.CSVStreamingReader, chunk_rows: int, ragged: list[pa_csv.InvalidRow]
) -> Iterator[tuple[list[pa.Array], int]]:
    """The reader's batches gathered into blocks of about `chunk_rows` rows (the columns and
    the row count), until the first ragged row."""
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
            yield [column.chunk(0) for column in columns], waiting_rows
            waiting, waiting_rows = [], 0


def _nothing_below_header(source: Source, layout: Layout) -> bool:
    """The whole file was sampled and has not a line below its header. Arrow's reader is then
    never started: on a stream with no data it now and then ends the process as it exits
    ("terminate called without an active exception", exit 134)."""
    if source.size is None or len(source.head) < source.size:
        return False
    lines = split_lines(source.head.decode(layout.encoding, errors="replace"))
    return len(lines) < layout.data_line


def _csv_module_chunks(
    source: Source, layout: Layout, skip_records: int, chunk_rows: int
) -> Iterator[Chunk]:
    width = len(layout.headers)
    raw = source.open()
    with io.TextIOWrapper(raw, encoding=layout.encoding, newline="", errors="strict") as handle:
        records = csv.reader(
            handle, delimiter=layout.delimiter, skipinitialspace=layout.initial_space
        )
        try:
            for _ in range(layout.data_line - 1):
                handle.readline()  # physical lines above the data, the header's included
            for _ in itertools.islice(records, skip_records):
                pass
            row_number = layout.data_line + skip_records
            while batch := list(itertools.islice(records, chunk_rows)):
                malformed: dict[int, str] = {}
                for offset, record in enumerate(batch):
                    if len(record) < width:
                        record.extend([""] * (width - len(record)))
                    elif len(record) > width:
                        extra = record[width:]
                        if any(cell.strip() for cell in extra):
                            while not extra[-1].strip():
                                extra.pop()
                            malformed[offset] = MalformedRow(
                                f"the row has {len(record)} cells but the header has {width}",
                                extra,
                            )
                        del record[width:]
                columns = [pa.array(cells, pa.string()) for cells in zip(*batch, strict=True)]
                yield Chunk(columns, row_number, malformed=malformed)
                row_number += len(batch)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{source.path}: the file is not {layout.encoding} ({exc.reason})"
            ) from None
        except csv.Error as exc:
            raise InputError(
                f"{source.path}: not a readable CSV near record {records.line_num}: {exc}"
            ) from None


def split_lines(text: str) -> list[str]:
    """Lines with their ends, split at CR, LF and CRLF only (csv's idea of a line)."""
    return _LINE.findall(text)
