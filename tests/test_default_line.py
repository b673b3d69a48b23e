"""An invoice mapped without lines goes to an API whose invoices have lines as one line: its
number as the text, quantity 1, its amount (the twin tests map lines; this maps none)."""

from __future__ import annotations

import json

import pytest
from conftest import write_csv, write_mapping

MAPPINGS = {
    "business-suite": """
[invoices]
target = "business-suite"
[invoices.fields]
invoice_number = "Invoice"
customer = "E-mail"
date = "Date"
amount = "Amount"
""",
    "onlyoffice": """
[invoices]
target = "onlyoffice"
[invoices.fields]
number = "Invoice"
contact = "E-mail"
issueDate = "Date"
dueDate = "Date"
currency = { value = "EUR" }
terms = { value = "30 days" }
amount = "Amount"
""",
}
LINE = {
    "business-suite": ("items", {"description": "INV-1", "amount": 12.5, "qty": 1}),
    "onlyoffice": (
        "invoiceLines",
        {
            "invoiceTax1ID": 0,
            "invoiceTax2ID": 0,
            "description": "INV-1",
            "quantity": 1,
            "price": 12.5,
            "discount": 0,
        },
    ),
}


@pytest.mark.parametrize("target", sorted(MAPPINGS))
def test_an_invoice_mapped_without_lines_is_one_line_and_counts_in_the_totals(
    payor, tmp_path, target
):
    source = write_csv(
        tmp_path / "invoices.csv",
        [["Invoice", "E-mail", "Date", "Amount"], ["INV-1", "a@x.example", "2026-03-01", "12.50"]],
    )
    mapping = write_mapping(tmp_path / "payor.toml", MAPPINGS[target])
    payloads, report = tmp_path / "payloads.jsonl", tmp_path / "run.json"
    run = payor(
        "upload", "invoices", source, "--mapping", mapping, "--dry-run",
        "--payloads", payloads, "--report-json", report,
    )  # fmt: skip
    assert run.code == 0, run.text
    member, line = LINE[target]
    (sent,) = [json.loads(text) for text in payloads.read_text().splitlines()]
    assert sent[member] == [line]
    totals = json.loads(report.read_text())["totals"]
    assert [stages["valid"] for stages in totals.values()] == ["12.50"]


def test_a_sum_on_an_api_whose_invoices_have_lines_is_a_usage_error(payor, tmp_path):
    """Summing a column over an invoice's rows is for APIs without lines; for one with lines it
    once crashed, or refused every row with a total off by 10,000: now one line, exit 2."""
    source = write_csv(
        tmp_path / "invoices.csv",
        [
            ["Invoice", "E-mail", "Date", "Price", "Qty"],
            ["INV-1", "a@x.example", "2026-03-01", "10.00", "1"],
            ["INV-1", "a@x.example", "2026-03-01", "2.50", "1"],
        ],
    )
    mapping = write_mapping(
        tmp_path / "payor.toml",
        MAPPINGS["business-suite"]
        .replace('amount = "Amount"', 'amount = { sum = "Price", times = "Qty" }')
        .replace("[invoices.fields]", 'key = ["invoice_number"]\n[invoices.fields]'),
    )
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run")
    assert run.code == 2, run.text
    assert run.err.count("error:") == 1, run.err
    assert "business-suite's invoices have lines, so sum is not for them" in run.err
    assert "[invoices.lines] (description, amount, qty)" in run.err
