"""The header row is found by the shape of the table, under any title block, on the first sheet."""

from __future__ import annotations

import datetime as dt

import openpyxl
from conftest import write_csv, write_mapping, write_xlsx
from infer_helpers import dry_run_written, init


def test_a_workbook_header_on_row_12_under_a_title_block_with_year_and_symbol_labels(
    tmp_path, payor
):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Open Items"
    sheet["A1"] = "Open items by customer"
    sheet.merge_cells("A1:F1")  # a merged title: one cell with text
    sheet["A3"] = "Printed 2024-12-01"
    sheet.append([])
    for row in range(5, 12):
        sheet.cell(row=row, column=1, value=None)
    header = ["Customer No", "Invoice No", "Invoice Date", "Amount", "2024", "%"]
    for column, label in enumerate(header, start=1):
        sheet.cell(row=12, column=column, value=label)
    data = [
        ["C-1", "A-1", dt.datetime(2024, 11, 3), 10.5, 3, "20%"],
        ["C-2", "A-2", dt.datetime(2024, 11, 4), 3, 4, "10%"],
    ]
    for offset, values in enumerate(data):
        for column, value in enumerate(values, start=1):
            sheet.cell(row=13 + offset, column=column, value=value)
    source = tmp_path / "open items.xlsx"
    book.save(source)
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.section["header_row"] == 12
    assert made.fields == {
        "customerNumber": "Customer No",
        "invoiceNumber": "Invoice No",
        "invoiceDate": "Invoice Date",
        "invoiceAmount": {"column": "Amount", "scale": 100},
    }
    assert '# "2024", "%"' in made.toml  # the year and symbol labels, listed as not mapped
    code, payloads, rejected = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, rejected) == (0, [])
    assert payloads == [
        {"customerNumber": "C-1", "invoiceNumber": "A-1", "invoiceDate": "2024-11-03",
         "invoiceAmount": 1050},
        {"customerNumber": "C-2", "invoiceNumber": "A-2", "invoiceDate": "2024-11-04",
         "invoiceAmount": 300},
    ]  # fmt: skip


def test_open_data_header_with_years_beats_data_rows_of_field_like_words(tmp_path, payor):
    source = write_csv(
        tmp_path / "by region.csv",
        [
            ["Invoices by region, 2010-2011"],
            ["Region", "Measure", "2011", "2010", "#", "%"],
            ["North", "Number", "12", "10", "1", "20"],
            ["North", "Amount", "1200", "1000", "2", "20"],
            ["South", "Number", "7", "5", "3", "40"],
            ["South", "Amount", "700", "500", "4", "40"],
        ],
    )
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 1  # no invoice fields in it: TODO lines
    assert made.section["header_row"] == 2
    assert '# "Region", "Measure", "2011", "2010", "#", "%"' in made.toml


def test_the_first_sheet_that_holds_a_table_is_preferred(tmp_path, payor):
    source = write_xlsx(
        tmp_path / "book.xlsx",
        [["Customer No", "Invoice No", "Amount"], ["C-1", "A-1", 10.5], ["C-2", "A-2", 20.25]],
        sheet="Invoices",
        extra=[
            (
                "Lookup",
                [
                    ["Customer No", "Customer Name", "Invoice No", "Invoice Date", "Amount",
                     "Currency"],
                    ["X-9", "Other", "Z-9", dt.datetime(2020, 1, 1), 99, "EUR"],
                ],
            )
        ],
    )  # fmt: skip
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert '# sheet = "Invoices"   # the first sheet: the default' in made.toml
    code, payloads, rejected = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, rejected) == (0, [])
    assert payloads == [
        {"customerNumber": "C-1", "invoiceNumber": "A-1", "invoiceAmount": 1050},
        {"customerNumber": "C-2", "invoiceNumber": "A-2", "invoiceAmount": 2025},
    ]


def test_an_upload_of_a_report_csv_without_header_row_is_told_where_init_finds_it(tmp_path, payor):
    source = write_csv(
        tmp_path / "aging.csv",
        [
            ["Acme Widgets LLC"],
            ["A/R Aging Summary"],
            [""],
            ["Customer", "Invoice", "Amount"],
            ["C-1", "A-1", "10.00"],
            ["C-2", "A-2", "20.00"],
        ],
    )
    mapping = write_mapping(
        tmp_path / "m.toml",
        '[invoices]\n[invoices.fields]\ncustomerNumber = "Customer"\n'
        'invoiceNumber = "Invoice"\ninvoiceAmount = { column = "Amount", scale = 100 }\n',
    )
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run")
    assert run.code == 2, run.text
    assert "the file's headers are: 'Acme Widgets LLC'" in run.err
    assert (
        "`payor init` finds the header on row 4: set header_row = 4 in the mapping or pass "
        "--header-row 4"
    ) in run.err
    fixed = payor(
        "upload", "invoices", source, "--mapping", mapping, "--dry-run", "--header-row", "4"
    )
    assert fixed.code == 0, fixed.text


def test_an_upload_whose_header_holds_other_columns_gets_no_header_row_hint(tmp_path, payor):
    source = write_csv(tmp_path / "in.csv", [["Kunde", "Rechnung", "Betrag"], ["C", "R", "5"]])
    mapping = write_mapping(
        tmp_path / "m.toml",
        '[invoices]\n[invoices.fields]\ncustomerNumber = "Customer"\n'
        'invoiceNumber = "Invoice"\ninvoiceAmount = "Amount"\n',
    )
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run")
    assert run.code == 2, run.text
    assert "column 'Customer' (customerNumber) is not in the header row" in run.err
    assert "payor init` finds the header" not in run.err
