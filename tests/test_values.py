"""Value rules of the contract, on the converters themselves (many cases, no process per case)."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from payor_cli import numbers, values


def convert_integer(text: str, decimal=".", thousands=None, scale="1"):
    cells = values.empty_to_null(pa.array([text], pa.string()))
    result = numbers.integer(cells, decimal, thousands, Decimal(scale))
    faults = [f.kind for f in result.faults if f.mask[0].as_py()]
    return result.literals()[0].as_py(), faults


@pytest.mark.parametrize(
    ("text", "decimal", "thousands", "scale", "expected"),
    [
        ("100234", ".", None, "1", "100234"),
        ("100234.0", ".", None, "1", "100234"),
        ("-5", ".", None, "1", "-5"),
        ("5-", ".", None, "1", "-5"),
        ("(5)", ".", None, "1", "-5"),
        ("$1,234", ".", None, "1", "1234"),
        ("€ 1.234,56", ",", ".", "100", "123456"),
        ("1.234,56-", ",", ".", "100", "-123456"),
        ("1 234,50", ",", None, "100", "123450"),
        ("EUR 99.5", ".", None, "100", "9950"),
        ("99.5 USD", ".", None, "100", "9950"),
        ("94", ".", None, "100", "9400"),
        ("65.7", ".", None, "100", "6570"),
        ("55.94", ".", None, "100", "5594"),
        ("0.1", ".", None, "10", "1"),
        ("1,234.56", ".", ",", "100", "123456"),
        ("(1,234.56)", ".", None, "100", "-123456"),
        ("0.30", ".", None, "100", "30"),
        ("12.5", ".", None, "2", "25"),
        ("999999999999999999", ".", None, "1", "999999999999999999"),
        ("+7", ".", None, "1", "7"),
        ("\u22125.00", ".", None, "100", "-500"),
    ],
)
def test_integer_values_are_exact(text, decimal, thousands, scale, expected):
    assert convert_integer(text, decimal, thousands, scale) == (expected, [])


@pytest.mark.parametrize(
    ("text", "scale", "fault"),
    [
        ("12.5", "1", "not_whole"),
        ("0.005", "100", "not_whole"),
        ("1.005", "100", "not_whole"),
        ("abc", "1", "not_a_number"),
        ("1,23", "1", "not_a_number"),  # a comma that does not group in threes is ambiguous
        ("--5", "1", "not_a_number"),
        ("(5", "1", "not_a_number"),
        ("-5-", "1", "not_a_number"),
        ("1e5", "1", "not_a_number"),
        ("12.3.4", "1", "not_a_number"),
        ("1234567890123456789", "1", "too_large"),
    ],
)
def test_integer_refuses_rather_than_rounds(text, scale, fault):
    literal, faults = convert_integer(text, scale=scale)
    assert literal is None
    assert faults == [fault]


def test_integer_never_goes_through_binary_float():
    # 0.1 + 0.2 style: values whose float form is inexact come out exact
    for text, cents in [("0.29", "29"), ("1.15", "115"), ("4.35", "435"), ("1234.56", "123456")]:
        assert convert_integer(text, scale="100") == (cents, [])


def convert_date(text: str, formats=()):
    cells = values.empty_to_null(pa.array([text], pa.string()))
    result = values.date(cells, tuple(formats), None)
    return result.literals()[0].as_py(), [f.kind for f in result.faults if f.mask[0].as_py()]


@pytest.mark.parametrize(
    ("text", "formats", "expected"),
    [
        ("2024-12-31", (), '"2024-12-31"'),
        ("31.12.2024", ("%d.%m.%Y",), '"2024-12-31"'),
        ("1/2/2013", ("%m/%d/%Y",), '"2013-01-02"'),
        ("12/06/2010 10:08", ("%m/%d/%Y %H:%M",), '"2010-12-06"'),
        ("2/20/11 11:39", ("%m/%d/%Y %H:%M", "%m/%d/%y %H:%M"), '"2011-02-20"'),
    ],
)
def test_dates_go_out_iso(text, formats, expected):
    assert convert_date(text, formats) == (expected, [])


@pytest.mark.parametrize(
    ("text", "formats"),
    [("31.02.2024", ("%d.%m.%Y",)), ("2024-02-30", ()), ("31.12.2024", ()), ("2024/12/31", ())],
)
def test_impossible_or_unformatted_dates_are_refused(text, formats):
    assert convert_date(text, formats) == (None, ["not_a_date"])


def test_strings_are_trimmed_and_escaped():
    cells = values.empty_to_null(pa.array(['  a "quoted" \\ text  ', "   ", "tab\there"]))
    literals = values.text(cells).literals().to_pylist()
    assert literals == ['"a \\"quoted\\" \\\\ text"', None, '"tab\\there"']


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("ar@acme.example", True),
        ("x@y", True),
        ("no-at-sign", False),
        ("a b@c.d", False),
        ("a@@b", False),
    ],
)
def test_email_must_look_like_an_address(text, ok):
    result = values.email(values.empty_to_null(pa.array([text])))
    assert (not any(f.mask[0].as_py() for f in result.faults)) is ok


def test_json_object_leaves_out_empty_members_and_rows():
    parts = {
        "street": values.empty_to_null(pa.array(["Main 1", "", ""])),
        "city": values.empty_to_null(pa.array(["Köln", "Bonn", ""])),
    }
    assert values.json_object(parts).json.to_pylist() == [
        '{"street":"Main 1","city":"Köln"}',
        '{"city":"Bonn"}',
        None,
    ]


def test_map_translates_exactly_then_ignoring_case():
    cells = values.empty_to_null(pa.array(["S", "h", "X", ""]))
    result, unknown = values.mapped(cells, {"S": "D", "H": "C"})
    assert result.to_pylist() == ["D", "C", None, None]
    assert unknown.to_pylist() == [False, False, True, False]


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [(0, 5, ["ab", 'c\\"d', "ef", None, "x\\ty"]), (2, 2, ["ef", None]), (1, 1, ['c\\"d'])],
)
def test_text_is_escaped_by_what_its_own_cells_hold(start, length, expected):
    # a slice shares its buffer with cells before and after it: only its own bytes decide
    cells = pa.array(["ab", 'c"d', "ef", None, "x\ty"]).slice(start, length)
    assert values.text(cells).json.to_pylist() == expected


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["a", "", "b", None, "  "], ["a", None, "b", None, None]),
        ([" a", "b\t"], ["a", "b"]),
        (["a\xa0", "\u2003b"], ["a", "b"]),  # Unicode white space, also at the edges
        (["é", "x"], ["é", "x"]),
    ],
)
def test_cells_are_trimmed_and_empty_ones_are_missing(cells, expected):
    column = pa.array(["pad", *cells], pa.string()).slice(1)  # a slice, as chunks are
    assert values.empty_to_null(column).to_pylist() == expected
