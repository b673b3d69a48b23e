"""Dates and amounts are judged by the share of values that fit; the few misfits are rejected."""

from __future__ import annotations

import datetime as dt

from conftest import write_csv, write_xlsx
from infer_helpers import dry_run_written, init


def invoice_rows(count: int) -> list[list[object]]:
    return [
        [f"C-{n % 7}", f"INV-{n:04d}", dt.datetime(2024, 1 + n % 12, 1 + n % 28), f"{n}.50"]
        for n in range(1, count + 1)
    ]


def test_a_date_column_of_excel_dates_with_a_few_impossible_text_dates_is_mapped(tmp_path, payor):
    rows = invoice_rows(40)
    rows[4][2] = "31.02.2024"  # typed by hand into a date column: no such day
    rows[17][2] = "30.02.2024"
    source = write_xlsx(tmp_path / "open items.xlsx", [["Customer No", "Invoice No",
                        "Due Date", "Amount"], *rows])  # fmt: skip
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["dueDate"] == "Due Date"
    assert "dueDate (column 'Due Date'): 2 distinct value(s) are not dates" in made.text
    assert "e.g. '31.02.2024'; those rows will be rejected" in made.text
    code, payloads, rejected = dry_run_written(payor, tmp_path, "invoices", source)
    assert code == 1
    assert [row["source_row"] for row in rejected] == ["6", "19"]
    assert len(payloads) == 38
    assert payloads[0] == {
        "customerNumber": "C-1", "invoiceNumber": "INV-0001", "dueDate": "2024-02-02",
        "invoiceAmount": 150,
    }  # fmt: skip


def test_an_amount_column_with_a_few_na_cells_is_mapped_by_the_same_rule(tmp_path, payor):
    rows = [[r[0], r[1], r[2].strftime("%d.%m.%Y"), r[3]] for r in invoice_rows(20)]
    rows[3][3] = "n/a"
    rows[9][2] = "31.02.2024"
    source = write_csv(tmp_path / "open.csv", [["Customer No", "Invoice No", "Due Date",
                       "Amount"], *rows])  # fmt: skip
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["dueDate"] == "Due Date"
    assert made.section["date_format"] == "%d.%m.%Y"
    assert made.fields["invoiceAmount"] == {"column": "Amount", "scale": 100}
    assert "dueDate (column 'Due Date'): 1 distinct value(s) are not dates" in made.text
    assert "invoiceAmount (column 'Amount'): 1 distinct value(s) are not amounts" in made.text
    code, payloads, rejected = dry_run_written(payor, tmp_path, "invoices", source)
    assert code == 1
    assert [row["source_row"] for row in rejected] == ["5", "11"]
    assert len(payloads) == 18


def test_a_column_named_like_a_date_with_mostly_other_values_stays_unmapped(tmp_path, payor):
    rows = [[r[0], r[1], "soon" if n % 3 else "01.02.2024", r[3]]
            for n, r in enumerate(invoice_rows(12))]  # fmt: skip
    source = write_csv(tmp_path / "open.csv", [["Customer No", "Invoice No", "Due Date",
                       "Amount"], *rows])  # fmt: skip
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert "dueDate" not in made.fields
    assert "column 'Due Date' is named like dueDate, but its values are not dates" in made.text
