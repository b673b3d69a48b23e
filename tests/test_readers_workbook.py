"""Workbooks read through Arrow as a person sees them in Excel; passwords, chart sheets and
the file's real type named."""

from __future__ import annotations

import datetime as dt
import tomllib
import zipfile

import msoffcrypto.format.ooxml
import openpyxl
import pytest
from conftest import INVOICE_MAPPING, write_xlsx

from payor_cli import read as readers
from payor_cli.check import binding, mapping, validate
from payor_cli.read.workbook import workbook_format
from payor_cli.targets.payorcrm.adapter import PayorCrm

PAYORCRM = PayorCrm()

INVOICES = PAYORCRM.kind("invoices")

ITEM_MAPPING = INVOICE_MAPPING + 'itemText = "Text"\npostDate = "Date"\n'
HEADER = ["Customer", "Invoice", "Amount", "Text", "Date"]


def test_a_column_mixing_text_numbers_dates_and_booleans_reads_as_excel_shows_it(tmp_path, dry_run):
    texts = ["000123", 100234.0, dt.datetime(2024, 1, 31), True, 1234.5599999999999, 1e-07]
    rows = [HEADER] + [["C", f"I{i}", 1, text, None] for i, text in enumerate(texts)]
    source = write_xlsx(tmp_path / "mixed.xlsx", rows)
    run, payloads, _, _ = dry_run("invoices", source, ITEM_MAPPING)
    assert run.code == 0, run.text
    assert [p["itemText"] for p in payloads] == [
        "000123", "100234", "2024-01-31", "TRUE", "1234.56", "0.0000001"
    ]  # fmt: skip


def test_typed_columns_keep_every_rule_of_cell_text(tmp_path, dry_run):
    rows = [
        HEADER,
        ["000123", 100234, 1.0, 0.1 + 0.2, dt.datetime(2024, 12, 31)],
        ["000124", 123456789012345678, 2.0, 1.5e20, dt.datetime(2024, 1, 2, 3, 4, 5)],
    ]
    mapping = ITEM_MAPPING.replace('postDate = "Date"', 'reference1 = "Date"')
    source = write_xlsx(tmp_path / "typed.xlsx", rows)
    run, payloads, _, _ = dry_run("invoices", source, mapping)
    assert run.code == 0, run.text
    assert payloads == [
        {"customerNumber": "000123", "invoiceNumber": "100234", "invoiceAmount": 1,
         "itemText": "0.3", "reference1": "2024-12-31"},
        {"customerNumber": "000124", "invoiceNumber": "123456789012346000", "invoiceAmount": 2,
         "itemText": "150000000000000000000", "reference1": "2024-01-02 03:04:05"},
    ]  # fmt: skip


def test_date_cells_need_no_format_and_row_numbers_count_from_the_sheet_top(tmp_path, dry_run):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["C3"], sheet["D3"], sheet["E3"], sheet["F3"] = "Customer", "Invoice", "Amount", "Date"
    sheet["C4"], sheet["D4"], sheet["E4"], sheet["F4"] = "K1", "I1", 5, dt.datetime(2024, 3, 1)
    sheet["C5"], sheet["D5"], sheet["E5"], sheet["F5"] = "K2", "I2", "x", dt.datetime(2024, 3, 2)
    book.save(tmp_path / "offset.xlsx")
    mapping = INVOICE_MAPPING + 'postDate = "Date"\n'
    run, payloads, rejected, _ = dry_run(
        "invoices", tmp_path / "offset.xlsx", mapping, "--header-row", "3"
    )
    assert run.code == 1, run.text
    assert payloads == [
        {
            "customerNumber": "K1",
            "invoiceNumber": "I1",
            "invoiceAmount": 5,
            "postDate": "2024-03-01",
        }
    ]
    assert [r["source_row"] for r in rejected] == ["5"]


def test_a_password_protected_workbook_is_one_clear_line(tmp_path, payor):
    plain = write_xlsx(tmp_path / "plain.xlsx", [HEADER, ["C", "I", 1, "t", None]])
    locked = tmp_path / "locked.xlsx"
    with plain.open("rb") as source, locked.open("wb") as target:
        msoffcrypto.format.ooxml.OOXMLFile(source).encrypt("s3cret", target)
    (tmp_path / "m.toml").write_text(INVOICE_MAPPING)
    run = payor("upload", "invoices", locked, "--mapping", tmp_path / "m.toml", "--dry-run")
    assert run.code == 2, run.text
    assert "locked.xlsx: the workbook is password protected" in run.err
    assert "remove the password" in run.err
    assert "Traceback" not in run.text


@pytest.mark.parametrize("command", ["init", "upload"])
def test_chart_sheets_are_skipped(tmp_path, payor, command):
    book = openpyxl.Workbook()
    book.create_chartsheet("Chart", 0)  # the first sheet, as a chart over the data often is
    data = book["Sheet"]
    for row in [HEADER[:3], ["C1", "I1", 1], ["C2", "I2", 2]]:
        data.append(row)
    book.save(tmp_path / "charted.xlsx")
    (tmp_path / "m.toml").write_text(INVOICE_MAPPING)
    if command == "init":
        run = payor("init", "invoices", tmp_path / "charted.xlsx", "-o", tmp_path / "out.toml")
        assert run.code == 0, run.text
        assert 'invoiceNumber = "Invoice"' in (tmp_path / "out.toml").read_text()
    else:
        run = payor(
            "upload", "invoices", tmp_path / "charted.xlsx", "--mapping", tmp_path / "m.toml",
            "--dry-run",
        )  # fmt: skip
        assert run.code == 0, run.text
        assert "(xlsx, sheet 'Sheet'," in run.text


def test_the_summary_names_the_real_type_of_a_macro_workbook(tmp_path, dry_run):
    source = write_xlsx(tmp_path / "book.xlsm", [HEADER[:3], ["C", "I", 2]])
    # openpyxl writes an .xlsm as a plain workbook; a real one declares its macro part
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(tmp_path / "macro.xlsm", "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == "[Content_Types].xml":
                data = data.replace(b"spreadsheetml.sheet.main+xml", b"sheet.macroEnabled.main+xml")
            new.writestr(item, data)
    run, _, _, report = dry_run("invoices", tmp_path / "macro.xlsm", INVOICE_MAPPING)
    assert run.code == 0, run.text
    assert "(xlsm, sheet 'Sheet1'," in run.text
    assert report["source"] == "xlsm, sheet 'Sheet1', header on row 1"


def test_an_xlsb_is_named_for_what_it_is(tmp_path):
    # no Python library writes .xlsb; its zip is told apart by its binary workbook part
    source = tmp_path / "report.xlsx"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.bin", b"\x83\x01\x00")
    assert workbook_format(source) == "xlsb"


def test_date_and_number_headers_read_as_excel_shows_them(tmp_path, dry_run):
    rows = [["Customer", "Invoice", "Amount", dt.datetime(2024, 1, 31), 2024], ["C", "I", 1, 5, 6]]
    source = write_xlsx(tmp_path / "aging.xlsx", rows)
    mapping = INVOICE_MAPPING + 'reference1 = "2024-01-31"\nreference2 = "2024"\n'
    run, payloads, _, _ = dry_run("invoices", source, mapping)
    assert run.code == 0, run.text
    assert payloads[0]["reference1"] == "5"
    assert payloads[0]["reference2"] == "6"


def test_cells_right_of_the_last_header_reach_the_rejected_row(tmp_path):
    rows = [HEADER[:3], ["C1", "I1", 1], ["C2", "I2", 2, None, "left over", 7]]
    source = write_xlsx(tmp_path / "wide.xlsx", rows)
    parsed = mapping.parse_mapping(tomllib.loads(INVOICE_MAPPING)["invoices"], INVOICES)
    table = readers.open_table(source, parsed.input)
    validator = validate.Validator(binding.bind(parsed, table.headers, str(source)), PAYORCRM)
    rejected = [row for chunk in table.chunks() for row in validator(chunk).rejected]
    assert [(row.row, row.extra) for row in rejected] == [(3, ["", "left over", "7"])]
