"""What a reader hands on: the input options, an opened table, and its chunks of text cells."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from payor_cli.errors import InputError
from payor_cli.rows import Chunk

CHUNK_ROWS = 25_000
SAMPLE_BYTES = 256 * 1024
REJECTED_LEAD = ("source_row", "errors")
"""The columns payor puts before the source's own in a rejected-rows file (how it knows one)."""
ORIGIN = "origin"
"""The third of them: where the row came from in the export it was first read from."""


@dataclass(frozen=True)
class InputOptions:
    """How to read the file; None means detect."""

    sheet: str | int | None = None
    header_row: int = 1
    encoding: str | None = None
    delimiter: str | None = None
    member: str | None = None
    """The file inside a .zip archive that holds several."""

    def overridden(self, **overrides: object) -> InputOptions:
        """These options with the given ones (the CLI's --sheet etc.) put over; None keeps."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class Table:
    """An opened source: its headers and a way to stream its data rows."""

    path: Path
    format: str
    headers: list[str]
    header_row: int
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    rejected_file: bool = False
    """payor's own rejected-rows file: its source_row and errors columns are not data."""
    rows_expected: int | None = None
    """How many data rows the file holds: exact for a sheet, estimated for a text file."""
    rows_exact: bool = False
    encoding_note: str | None = None
    """How sure the encoding guess is, when it was a guess worth a word (low confidence)."""
    member: str | None = None
    """The file read inside a .zip or .gz archive."""
    origins: dict[int, str] | None = None
    """payor's own rejected-rows file: each row's origin in the first export (by row number
    here), filled as the rows are read."""
    number_columns: dict[int, str] = field(default_factory=dict)
    """A DataFrame's columns of numbers, by position: their dtype ("int64"). Read from a file,
    a leading zero is text; here it is already gone."""
    notes: list[str] = field(default_factory=list)
    """What the reader saw that a person should know before trusting the run (a warning)."""
    _chunks: Callable[[], Iterator[Chunk]] | None = None

    def chunks(self) -> Iterator[Chunk]:
        """The data rows below the header, in file order, a chunk at a time."""
        assert self._chunks is not None
        return self._chunks()

    def describe(self) -> str:
        parts = [self.format + (" (payor's rejected rows)" if self.rejected_file else "")]
        if self.member is not None:
            parts.append(f"member {self.member!r}")
        if self.sheet is not None:
            parts.append(f"sheet {self.sheet!r}")
        if self.encoding:
            parts.append(self.encoding + (f" ({self.encoding_note})" if self.encoding_note else ""))
        if self.delimiter:
            parts.append("delimiter " + {"\t": "tab"}.get(self.delimiter, repr(self.delimiter)))
        parts.append(f"header on row {self.header_row}")
        return ", ".join(parts)


def own_rejected(table: Table) -> Table:
    """A rejected-rows file read as its source: the lead columns leave the data, their
    `errors` cells stay with each row (a repeated key that comes back unchanged is refused),
    and each row's origin is kept (`origins`): an older file without the `origin` column
    gives its `source_row`, the row in the export it was written from."""
    with_origin = len(table.headers) > len(REJECTED_LEAD) and (
        table.headers[len(REJECTED_LEAD)].strip() == ORIGIN
    )
    lead = len(REJECTED_LEAD) + with_origin
    read = table._chunks
    assert read is not None
    origins: dict[int, str] = {}

    def chunks() -> Iterator[Chunk]:
        for chunk in read():
            chunk.prior_errors = chunk.columns[1]
            given = chunk.columns[2].to_pylist() if with_origin else [None] * chunk.num_rows
            for offset, (source_row, origin) in enumerate(
                zip(chunk.columns[0].to_pylist(), given, strict=True)
            ):
                if origin and origin.strip():
                    origins[chunk.first_row + offset] = origin.strip()
                elif not with_origin and source_row and source_row.strip():
                    where = f"the export behind {table.path.name}"
                    origins[chunk.first_row + offset] = f"row {source_row.strip()} of {where}"
            chunk.columns = chunk.columns[lead:]
            chunk.date_cells = chunk.date_cells[lead:]
            yield chunk

    return replace(
        table, headers=table.headers[lead:], rejected_file=True, origins=origins, _chunks=chunks
    )


def read_head(path: Path) -> bytes:
    """The first bytes of the file, which tell what it is; unreadable files end the run."""
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a file")
    try:
        with path.open("rb") as handle:
            head = handle.read(SAMPLE_BYTES)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    if not head:
        raise InputError(f"{path}: the file is empty", "export the data again; it has no rows")
    return head


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
