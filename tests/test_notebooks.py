"""payor in a notebook, as an analyst uses it: pandas' own habits (numbers where the export had
text, Decimals made from floats) are told, not sent silently; a Run says what it did."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

import payor_cli

CUSTOMERS = {
    "customers": {
        "fields": {"customerno": "No", "companyname": "Company", "emailaddress1": "E-mail"}
    }
}
INVOICES = {
    "invoices": {
        "fields": {
            "customerNumber": "Customer",
            "invoiceNumber": "Invoice",
            "invoiceAmount": {"column": "Amount", "scale": 100},
        }
    }
}


def plain_json(value: object) -> bool:
    """Whether a value is made of JSON's own types only (no enum, no numpy number)."""
    if isinstance(value, dict):
        return all(type(k) is str and plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain_json(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


def test_a_key_read_as_a_number_warns_once_naming_the_column_and_the_cure():
    # what pd.read_csv makes of "0000611365": the int 611365
    frame = pd.DataFrame(
        {"No": [611365, 611366], "Company": ["Acme", "Globex"], "E-mail": ["a@x.ex", "b@x.ex"]}
    )
    run = payor_cli.dry_run(frame, "customers", CUSTOMERS)
    assert run.exit_code == 0
    said = [w for w in run.warnings if "'No'" in w]
    assert len(said) == 1, run.warnings
    assert "column of numbers (int64)" in said[0]
    assert "dtype=str" in said[0] and ".str.zfill(" in said[0]
    assert [p["customerno"] for p in run.payloads] == ["611365", "611366"]


def test_text_columns_and_number_columns_mapped_to_amounts_say_nothing():
    frame = pd.DataFrame(
        {"Customer": ["0007", "0008"], "Invoice": ["A-1", "A-2"], "Amount": [12, 30]}
    )
    run = payor_cli.dry_run(frame, "invoices", INVOICES)
    assert run.exit_code == 0
    assert run.warnings == []


def test_a_decimal_made_from_a_binary_float_is_told_as_such():
    frame = pd.DataFrame(
        {"Customer": ["7", "8"], "Invoice": ["A-1", "A-2"], "Amount": [19.99, 5.0]}
    )
    frame["Amount"] = frame["Amount"].map(Decimal)  # Decimal(19.99): 19.98999999999999843...
    run = payor_cli.dry_run(frame, "invoices", INVOICES)
    assert run.exit_code == 1
    said = [w for w in run.warnings if "'Amount'" in w]
    assert len(said) == 1, run.warnings
    assert "Decimal made from a binary float" in said[0] and "Decimal(str(x))" in said[0]
    assert [r["source_row"] for r in run.rejected] == [2]
    # the cure the warning names reads the amount exactly
    frame["Amount"] = pd.Series([19.99, 5.0]).astype(str).map(Decimal)
    run = payor_cli.dry_run(frame, "invoices", INVOICES)
    assert run.exit_code == 0 and run.warnings == []
    assert [p["invoiceAmount"] for p in run.payloads] == [1999, 500]


def test_a_second_run_says_what_was_unchanged(tmp_path):
    frame = pd.DataFrame(
        {"No": ["010001", "010002"], "Company": ["Acme", "Globex"], "E-mail": ["a@x.ex", "b@x.ex"]}
    )
    options = {"sandbox": True, "state_dir": tmp_path / "state"}
    first = payor_cli.upload(frame, "customers", CUSTOMERS, **options)
    assert str(first) == (
        "customers: 2 read, 2 valid, 0 rejected, 0 unchanged, 2 sent, 2 accepted; exit 0"
    )
    second = payor_cli.upload(frame, "customers", CUSTOMERS, **options)
    assert str(second) == (
        "customers: 2 read, 2 valid, 0 rejected, 2 unchanged, 0 sent, 0 accepted; exit 0"
    )
    assert second.summary["rows_unchanged"] == 2


def test_the_summary_holds_plain_json_types():
    frame = pd.DataFrame({"Customer": ["7"], "Invoice": ["A-1"], "Amount": ["x"]})
    run = payor_cli.dry_run(frame, "invoices", INVOICES)
    assert run.exit_code == 1
    assert type(run.summary["exit_code"]) is int
    assert plain_json(run.summary), run.summary
