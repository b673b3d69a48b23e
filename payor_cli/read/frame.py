"""A pandas DataFrame as a source: its columns as text cells, through the same Table as a file.

A DataFrame's cells go through the same value rules as a file's. Every column becomes an Arrow
array of strings, as a workbook's cells do: missing values (None, NaN, NA, NaT) are empty
cells, a float is its shortest decimal form (`repr` semantics, never an exponent: the amount
path never sees a binary float), a Decimal its own digits, a date or datetime ISO text (and,
like an Excel date cell, needs no `format`). Row numbers are as if the frame were written to a
file with its header on row 1: the frame's first row (position 0) is row 2.

pandas is an optional extra (`pip install 'payor[pandas]'`); this module imports it only to
recognise a DataFrame, and only when one is given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from payor_cli.errors import InputError
from payor_cli.read import CHUNK_ROWS, InputOptions, Table
from payor_cli.rows import Chunk

FRAME_LABEL = "<DataFrame>"
"""What reports name as the file of a DataFrame run."""


def is_dataframe(source: object) -> bool:
    """True for a pandas DataFrame, without importing pandas when it is not in use."""
    module = type(source).__module__
    return module.startswith("pandas") and type(source).__name__ == "DataFrame"


def open_frame(frame: Any, options: InputOptions, chunk_rows: int = CHUNK_ROWS) -> Table:
    """The DataFrame as a Table: headers from its column labels, chunks of text cells."""
    headers = [str(label).strip() for label in frame.columns]
    if not headers:
        raise InputError(f"{FRAME_LABEL}: the DataFrame has no columns")
    if options.sheet is not None or options.header_row != 1 or options.member is not None:
        raise InputError(
            f"{FRAME_LABEL}: sheet, header_row and member are for files",
            "a DataFrame's header is its column labels",
        )

    def chunks() -> Iterator[Chunk]:
        for start in range(0, len(frame), chunk_rows):
            part = frame.iloc[start : start + chunk_rows]
            columns, dates = [], []
            for position in range(part.shape[1]):
                texts, date_cells = column_text(part.iloc[:, position])
                columns.append(texts)
                dates.append(date_cells)
            yield Chunk(columns, start + 2, dates)

    return Table(
        path=Path(FRAME_LABEL),
        format="DataFrame",
        headers=headers,
        header_row=1,
        rows_expected=len(frame),
        rows_exact=True,
        number_columns={
            position: str(dtype)
            for position, dtype in enumerate(frame.dtypes)
            if dtype.kind in "iuf"
        },
        notes=_decimals_from_floats(frame, headers),
        _chunks=chunks,
    )


DIGITS_OF_A_FLOAT = 17
"""A binary float's shortest decimal form has at most 17 significant digits; its exact value,
as `Decimal(19.99)` gives it, has many more."""
LOOKED_AT = 10_000
"""The cells of each text column looked at for Decimals made from floats (a warning's worth)."""


def _decimals_from_floats(frame: Any, headers: list[str]) -> list[str]:
    """Columns holding a Decimal made from a binary float (`Decimal(19.99)` is
    19.989999999999998436805981327779591083526611328125): said once each, with the cure."""
    found = []
    for position, dtype in enumerate(frame.dtypes):
        if dtype.kind != "O":
            continue
        for value in frame.iloc[:LOOKED_AT, position].tolist():
            if _from_a_float(value):
                found.append(
                    f"column {headers[position]!r} holds a Decimal made from a binary float "
                    f"({value}, not {float(value)!r}): it is rejected, not rounded; make the "
                    "Decimals from text (Decimal(str(x)), or read the file with dtype=str)"
                )
                break
    return found


def _from_a_float(value: object) -> bool:
    """Whether a Decimal is the exact value of a binary float, with more digits than one has."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return False
    if len(value.as_tuple().digits) <= DIGITS_OF_A_FLOAT:
        return False
    return Decimal(float(value)) == value


def column_text(series: Any) -> tuple[pa.Array, pa.Array | None]:
    """One column as text cells, and which were dates (None when none were)."""
    kind = series.dtype.kind
    if kind in "fiub":
        array = pa.Array.from_pandas(series)  # NaN and NA become null
        if kind == "f":
            return pc.fill_null(_float_text(array), ""), None
        if kind == "b":
            array = pc.if_else(array, "true", "false")
        return pc.fill_null(array.cast(pa.string()), ""), None
    if kind == "M":  # datetime64, also with a time zone: the wall-clock date and time
        return _datetime_text(pa.Array.from_pandas(series))
    if type(series.dtype).__name__ == "StringDtype":  # text columns, at Arrow's speed
        return pc.fill_null(pa.Array.from_pandas(series).cast(pa.string()), ""), None
    cells = [cell_text(value) for value in series.tolist()]
    texts = pa.array([text for text, _ in cells], pa.string())
    date_flags = [is_date for _, is_date in cells]
    return texts, pa.array(date_flags) if any(date_flags) else None


def _float_text(array: pa.Array) -> pa.Array:
    """Shortest decimal form; Arrow's own cast is that, except exponents and `-0`."""
    text = array.cast(pa.string())
    odd = pc.or_(pc.match_substring(text, "e"), pc.equal(text, "-0"))
    if not pc.any(odd).as_py():
        return text
    fixed = pa.array([_float(v) if v is not None else None for v in array.to_pylist()])
    return pc.if_else(odd, fixed, text)


def _float(value: float) -> str:
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _datetime_text(array: pa.Array) -> tuple[pa.Array, pa.Array]:
    if getattr(array.type, "tz", None):
        array = pc.local_timestamp(array)
    days = array.cast(pa.date32())
    text = days.cast(pa.string())
    seconds = array.cast(pa.timestamp("s"), safe=False)
    timed = pc.strftime(seconds, "%Y-%m-%d %H:%M:%S")
    text = pc.if_else(pc.equal(days.cast(array.type), array), text, timed)
    return pc.fill_null(text, ""), pc.is_valid(array)


def cell_text(value: object) -> tuple[str, bool]:
    """A cell of an object column as text, and whether it was a date."""
    if value is None or _is_missing(value) or (isinstance(value, float) and value != value):
        return "", False
    if isinstance(value, str):
        return value, False
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    if isinstance(value, float):
        return _float(value), False
    if isinstance(value, Decimal):
        return (format(value, "f") if value.is_finite() else ""), False
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat(), True
        return value.strftime("%Y-%m-%d %H:%M:%S"), True
    if isinstance(value, dt.date):
        return value.isoformat(), True
    return str(value), False


def _is_missing(value: object) -> bool:
    """pandas' NA and NaT, recognised without importing pandas."""
    return type(value).__name__ in ("NAType", "NaTType")
