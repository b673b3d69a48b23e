"""A column cut out of a longer one (a chunk's slice, a record's lines) converts exactly as the
same cells on their own. pyarrow before 24 turned the text of a sliced column into NUL bytes in
`if_else`: quantities of an invoice's lines were refused as "not a number" (found by
scripts/check_floors.sh); pyproject.toml's floor keeps that version out, this test tells why."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from payor_cli import numbers, values

NUMBERS = [7.0, 1.5, 1.0, 1.5, None, 2.0, None, 3.0]


@pytest.mark.parametrize("start", range(1, len(NUMBERS)))
def test_a_sliced_column_is_read_as_the_same_cells_alone(start):
    # a workbook's number column as the reader makes it: shortest text, empty cells ""
    whole = pc.fill_null(pa.array(NUMBERS).cast(pa.string()), "")
    sliced = whole.slice(start)
    alone = pa.array(whole.to_pylist()[start:])
    assert values.empty_to_null(sliced).to_pylist() == values.empty_to_null(alone).to_pylist()
    converted = numbers.exact_decimal(values.empty_to_null(sliced), ".", None)
    expected = numbers.exact_decimal(values.empty_to_null(alone), ".", None)
    assert converted.json.to_pylist() == expected.json.to_pylist()
    assert not any(f.mask.to_pylist().count(True) for f in converted.faults)
