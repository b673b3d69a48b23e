"""Control totals are true: over every row read whatever became of it, per currency, and never
adding amounts of different currencies under a heading that reads as one."""

from __future__ import annotations

from conftest import write_csv

PAYORCRM = """
[invoices]
[invoices.fields]
invoiceNumber = "No"
customerNumber = "Customer"
invoiceAmount = { column = "Amount", scale = 100 }
currency = "Cur"
"""

BUSINESS_SUITE = """
[invoices]
{currency_column}
[invoices.fields]
invoice_number = "No"
customer = "Customer"
date = "Date"
amount = "Amount"
"""
BS = ("--target", "business-suite")


def test_an_amount_refused_for_its_decimals_still_counts_in_read(tmp_path, dry_run):
    rows = [
        ["No", "Customer", "Amount", "Cur"],
        ["1", "C1", "3.63768643142", "CHF"],
        ["2", "C1", "2.005", "EUR"],
        ["3", "C1", "10.50", "EUR"],
        ["4", "C1", "-0.0000001", "EUR"],
        ["5", "C1", "12345678901234567890.5", "USD"],
    ]
    run, _, rejected, report = dry_run("invoices", write_csv(tmp_path / "i.csv", rows), PAYORCRM)
    assert run.code == 1, run.text
    assert [r["source_row"] for r in rejected] == ["2", "3", "5", "6"]
    assert report["totals"] == {
        "CHF": {"read": "3.63768643142", "rejected": "3.63768643142", "valid": "0.00",
                "accepted": "0.00"},
        "EUR": {"read": "12.5049999", "rejected": "2.0049999", "valid": "10.50",
                "accepted": "0.00"},
        "USD": {"read": "12345678901234567890.50", "rejected": "12345678901234567890.50",
                "valid": "0.00", "accepted": "0.00"},
    }  # fmt: skip


def test_business_suite_totals_are_per_currency_when_the_mapping_names_its_column(
    tmp_path, dry_run
):
    rows = [
        ["No", "Customer", "Date", "Amount", "Cur"],
        ["1", "a@x.example", "2026-01-02", "100.00", "EUR"],
        ["2", "a@x.example", "2026-01-02", "20.25", "usd"],
        ["3", "a@x.example", "2026-01-02", "1.00", "EUR"],
        ["4", "a@x.example", "2026-01-02", "5.00", ""],
    ]
    source = write_csv(tmp_path / "i.csv", rows)
    mapping = BUSINESS_SUITE.format(currency_column='currency_column = "Cur"')
    run, _, _, report = dry_run("invoices", source, mapping, *BS)
    assert run.code == 0, run.text
    assert {c: t["read"] for c, t in report["totals"].items()} == {
        "EUR": "101.00",
        "USD": "20.25",
        "currency empty": "5.00",
    }
    assert "amount total EUR: read 101.00" in run.out


def test_without_a_currency_column_the_totals_say_so(tmp_path, dry_run):
    rows = [
        ["No", "Customer", "Date", "Amount"],
        ["1", "a@x.example", "2026-01-02", "100.00"],
        ["2", "a@x.example", "2026-01-02", "20.25"],
    ]
    source = write_csv(tmp_path / "i.csv", rows)
    run, _, _, report = dry_run("invoices", source, BUSINESS_SUITE.format(currency_column=""), *BS)
    assert run.code == 0, run.text
    assert list(report["totals"]) == ["no currency column"]
    assert report["totals"]["no currency column"]["read"] == "120.25"
    assert "amount total (no currency column): read 120.25" in run.out


def test_a_currency_column_missing_from_the_file_is_a_mapping_error(tmp_path, dry_run):
    rows = [["No", "Customer", "Date", "Amount"], ["1", "a@x.example", "2026-01-02", "1.00"]]
    source = write_csv(tmp_path / "i.csv", rows)
    mapping = BUSINESS_SUITE.format(currency_column='currency_column = "Währung"')
    run, _, _, _ = dry_run("invoices", source, mapping, *BS)
    assert run.code == 2
    assert "'Währung' (currency_column) is not in the header row" in run.err


def test_totals_beyond_int64_millionths_do_not_wrap_around(tmp_path, dry_run):
    """Each amount fits the API's integers; their sum in millionths is past int64's end."""
    rows = [["No", "Customer", "Amount", "Cur"]] + [
        [str(n), "C1", "9000000000000.00", "EUR"] for n in range(3)
    ]
    mapping = PAYORCRM.replace("scale = 100", "scale = 1")
    run, _, _, report = dry_run("invoices", write_csv(tmp_path / "i.csv", rows), mapping)
    assert run.code == 0, run.text
    assert report["totals"]["EUR"]["read"] == "27000000000000"
    assert report["totals"]["EUR"]["valid"] == "27000000000000"


def test_a_line_with_an_empty_quantity_counts_once_in_the_totals(tmp_path, dry_run):
    """An empty qty is the API's default, 1: the invoice's amount is still known."""
    rows = [
        ["No", "Customer", "Date", "Text", "Price", "Qty"],
        ["1", "a@x.example", "2026-01-02", "Work", "5.00", ""],
        ["1", "a@x.example", "2026-01-02", "More", "2.50", "2"],
    ]
    mapping = BUSINESS_SUITE.format(currency_column="").replace(
        'amount = "Amount"',
        '[invoices.lines]\ndescription = "Text"\namount = "Price"\nqty = "Qty"',
    )
    source = write_csv(tmp_path / "i.csv", rows)
    run, payloads, _, report = dry_run("invoices", source, mapping, *BS)
    assert run.code == 0, run.text
    assert report["totals"]["no currency column"]["read"] == "10.00"
    assert [i.get("qty") for i in payloads[0]["items"]] == [None, 2]


def test_a_currency_code_in_lower_case_is_the_same_currency(tmp_path, dry_run):
    rows = [
        ["No", "Customer", "Amount", "Cur"],
        ["1", "C1", "10.00", "EUR"],
        ["2", "C1", "5.00", "eur"],
    ]
    run, _, _, report = dry_run("invoices", write_csv(tmp_path / "i.csv", rows), PAYORCRM)
    assert run.code == 0, run.text
    assert list(report["totals"]) == ["EUR"]
    assert report["totals"]["EUR"]["read"] == "15.00"
