"""Workbook cells as the text a person sees in Excel: typed Arrow columns or Python cells."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

# How fastexcel writes the non-text cells of a column that mixes text with them: its numbers
# have at most 9 decimals, its dates and times read "2024-01-31 00:00:00", its booleans
# "true"; a cell in a shape like these may need the cell's real value, which only the
# Python cells of python-calamine give.
DOUBTFUL_TEXT = r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|true|false|-0|-?\d+\.\d{9}|-?\d{16,})$"


def typed_texts(typed: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """One column of a sheet as Arrow gives it (one type) as text, and which were date cells.

    Arrow converts a column of one type at C speed (numbers to their shortest text, dates to
    ISO); the rules are those of `cell_text`.
    """
    kind = typed.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return pc.fill_null(typed.cast(pa.string()), ""), None
    if pa.types.is_boolean(kind):
        return pc.fill_null(pc.if_else(typed, "TRUE", "FALSE"), ""), None
    if pa.types.is_floating(kind) or pa.types.is_integer(kind):
        text = typed.cast(pa.string())
        if pa.types.is_floating(kind):
            # Arrow writes 1.2e+11, -0 and all 17 digits; a person (and cell_text) writes
            # 120000000000, 0 and Excel's 15 significant digits
            odd = pc.or_(pc.match_substring(text, "e"), pc.equal(text, "-0"))
            long = pc.greater(pc.utf8_length(text), 15)
            if values_any(long):  # only a text longer than 15 can hold 16 digits
                significant = pc.replace_substring_regex(text, r"^-?[0.]*|\.", "")
                odd = pc.or_(odd, pc.greater(pc.utf8_length(significant), 15))
            if values_any(odd):
                # only the odd cells (rare) go through Python
                fixed = pa.array(
                    [cell_text(float(v)) if v is not None else None for v in text.to_pylist()]
                )
                text = pc.if_else(odd, fixed, text)
        return pc.fill_null(text, ""), None
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return _date_texts(typed)
    return pc.fill_null(typed.cast(pa.string()), ""), None


def _date_texts(typed: pa.Array) -> tuple[pa.Array, pa.Array]:
    kind = typed.type
    days = typed.cast(pa.date32())
    text = days.cast(pa.string())
    dates = pc.is_valid(typed)
    if pa.types.is_timestamp(kind):
        # a time of day is kept (to the second), as cell_text writes it; strftime is slow, so
        # only a column that has times pays for it
        timed = pc.not_equal(days.cast(kind), typed)
        if values_any(timed):
            seconds = typed.cast(pa.timestamp("s"), safe=False)
            text = pc.if_else(timed, pc.strftime(seconds, "%Y-%m-%d %H:%M:%S"), text)
            # a time cell (no date) is a fraction of a day before 1900: Excel shows the time
            time_only = pc.less(typed, pa.scalar(dt.datetime(1900, 1, 1), kind))
            if values_any(time_only):
                text = pc.if_else(time_only, pc.strftime(seconds, "%H:%M:%S"), text)
                dates = pc.and_(dates, pc.invert(pc.fill_null(time_only, False)))
    return pc.fill_null(text, ""), dates


def column_array(cells: list) -> tuple[pa.Array, pa.Array | None]:
    """A column of Python workbook cells as text, and which were date cells (None when none).

    A column of one type goes through Arrow; a column of mixed types cell by cell.
    """
    typed = _typed_column(cells)
    if typed is not None and not (pa.types.is_boolean(typed.type) or pa.types.is_time(typed.type)):
        texts, dates = typed_texts(typed)
        if dates is not None:
            dates = pc.fill_null(dates, False)
        return texts, (dates if dates is not None and values_any(dates) else None)
    texts, date_list = column_texts(cells)
    return pa.array(texts, pa.string()), (pa.array(date_list) if date_list is not None else None)


def _typed_column(cells: list) -> pa.Array | None:
    """The cells as one Arrow type (empty cells as null), or None if they mix types."""
    try:
        return pa.array(cells)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    try:
        return pa.array([None if cell == "" else cell for cell in cells])
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def values_any(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def column_texts(cells: list) -> tuple[list[str], list[bool] | None]:
    """Cells of one column as text, and which were date cells (None when none were)."""
    if all(type(cell) is str for cell in cells):
        return cells, None
    texts = [cell if type(cell) is str else cell_text(cell) for cell in cells]
    dates = [isinstance(cell, dt.date) for cell in cells]
    return texts, dates if any(dates) else None


def cell_text(cell: object) -> str:
    """A workbook cell as the text a person sees: whole numbers without '.0', dates ISO."""
    if isinstance(cell, str):
        return cell
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "TRUE" if cell else "FALSE"
    if isinstance(cell, float):
        # Excel keeps 15 significant digits; any further ones are binary noise (1234.56, not
        # 1234.5599999999999)
        text = f"{cell:.15g}"
        if "e" in text:
            return format(Decimal(text), "f")
        return "0" if text == "-0" else text
    if isinstance(cell, dt.datetime):
        if cell.time() == dt.time(0):
            return cell.date().isoformat()
        return cell.isoformat(sep=" ")
    if isinstance(cell, dt.date | dt.time):
        return cell.isoformat()
    return str(cell)
