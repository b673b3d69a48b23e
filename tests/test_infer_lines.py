"""Exports with one row per invoice line and no invoice total: the lines' amounts are summed."""

from __future__ import annotations

from conftest import DATA
from infer_helpers import dry_run_written, init


def test_uci_online_retail_invoices_are_the_sum_of_unit_price_times_quantity(tmp_path, payor):
    source = DATA / "uci_online_retail_first70051.xlsx"
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields == {
        "customerNumber": "CustomerID",
        "invoiceNumber": "InvoiceNo",
        "invoiceDate": "InvoiceDate",  # the lines of an invoice differ in time only, not day
        "invoiceAmount": {"sum": "UnitPrice", "times": "Quantity", "scale": 100},
    }
    assert made.line("invoiceAmount").endswith(
        "# the sum over the invoice's lines of UnitPrice x Quantity: no column holds its total; "
        "amounts have decimals: sent in cents (x100)"
    )
    code, payloads, rejected = dry_run_written(payor, tmp_path, "invoices", source)
    assert code == 1  # the lines without a CustomerID
    assert {row["errors"] for row in rejected} == {
        'customerNumber (column "CustomerID"): is empty (required)'
    }
    assert payloads[:2] == [
        # 536365: 6 x 2.55 + 6 x 3.39 + 8 x 2.75 + 6 x 3.39 + 6 x 3.39 + 2 x 7.65 + 6 x 4.25
        {"customerNumber": "17850", "invoiceNumber": "536365", "invoiceDate": "2010-12-01",
         "invoiceAmount": 13912},
        {"customerNumber": "17850", "invoiceNumber": "536366", "invoiceDate": "2010-12-01",
         "invoiceAmount": 2220},
    ]  # fmt: skip
    assert len({p["invoiceNumber"] for p in payloads}) == len(payloads)


def test_a_random_sample_of_lines_says_why_they_cannot_be_summed(tmp_path, payor):
    source = DATA / "uci_online_retail_sample_semicolon.csv"
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 1
    assert "the lines of an invoice are not adjacent rows here" in made.text
    assert '# TODO invoiceAmount = "..."   (required: name the column that holds it)' in made.toml
