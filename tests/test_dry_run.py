"""The dry run through the real CLI: mapping forms, values, rejected rows, summary, exit codes."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import zipfile

import openpyxl
import pytest
from conftest import (
    CUSTOMER_MAPPING,
    DATA,
    INVOICE_MAPPING,
    read_jsonl,
    write_csv,
    write_mapping,
    write_xlsx,
)

HEADER = ["Customer", "Invoice", "Amount"]


def test_clean_file_exit_0_and_payloads_in_file_order(tmp_path, dry_run):
    source = write_csv(tmp_path / "in.csv", [HEADER, ["C1", "I1", "10"], ["C2", "I2", "20"]])
    run, payloads, rejected, report = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 0, run.text
    assert payloads == [
        {"customerNumber": "C1", "invoiceNumber": "I1", "invoiceAmount": 10},
        {"customerNumber": "C2", "invoiceNumber": "I2", "invoiceAmount": 20},
    ]
    assert rejected == []
    assert report["rows_read"] == 2 and report["rows_valid"] == 2 and report["exit_code"] == 0


def test_rejected_rows_exit_1_with_source_row_errors_and_cells(tmp_path, dry_run):
    rows = [HEADER, ["C1", "I1", "10"], ["C2", "", "abc"], ["C3", "I3", "7.5"]]
    source = write_csv(tmp_path / "in.csv", rows)
    run, payloads, rejected, report = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 1
    assert [p["invoiceNumber"] for p in payloads] == ["I1"]
    assert [r["source_row"] for r in rejected] == ["3", "4"]
    assert list(rejected[0]) == ["source_row", "errors", "origin", *HEADER]
    assert [r["origin"] for r in rejected] == ["in.csv row 3", "in.csv row 4"]
    assert rejected[0]["Amount"] == "abc" and rejected[0]["Invoice"] == ""
    assert rejected[0]["errors"] == (
        'invoiceNumber (column "Invoice"): is empty (required); '
        'invoiceAmount (column "Amount"): "abc" is not a number'
    )
    assert 'invoiceAmount (column "Amount"): "7.5" is not a whole number' in rejected[1]["errors"]
    assert report["rows_rejected"] == 2 and report["rows_valid"] == 1


def test_rejected_xlsx_keeps_source_cells(tmp_path, payor):
    source = write_csv(tmp_path / "in.csv", [HEADER, ["C1", "0012", "=1+1"]])
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    out = tmp_path / "rejected.xlsx"
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run", "--rejected", out)
    assert run.code == 1
    rows = list(openpyxl.load_workbook(out).active.values)
    assert rows[0] == ("source_row", "errors", "origin", *HEADER)
    assert rows[1][0] == 2 and rows[1][2:] == ("in.csv row 2", "C1", "0012", "=1+1")


def test_rejected_file_reuploads_with_the_same_mapping(tmp_path, payor):
    """Title lines above the header: the rejected file keeps the header on the same row."""
    rows = [["Open items"], [], HEADER, ["C1", "I1", "x"], ["C2", "I2", "5"]]
    source = write_csv(tmp_path / "in.csv", rows, delimiter=";")
    mapping = write_mapping(
        tmp_path / "m.toml", INVOICE_MAPPING.replace("[invoices]\n", "[invoices]\nheader_row = 3\n")
    )
    rejected = tmp_path / "rejected.csv"
    run = payor(
        "upload", "invoices", source, "--mapping", mapping, "--dry-run", "--rejected", rejected
    )
    assert run.code == 1
    text = rejected.read_text()
    fixed = text.replace(";x\n", ";12\n").replace(";x\r\n", ";12\r\n")
    rejected.write_text(fixed)
    payloads = tmp_path / "p.jsonl"
    again = payor(
        "upload", "invoices", rejected, "--mapping", mapping, "--dry-run", "--payloads", payloads
    )
    assert again.code == 0, again.text
    assert read_jsonl(payloads) == [
        {"customerNumber": "C1", "invoiceNumber": "I1", "invoiceAmount": 12}
    ]


def test_mapping_forms(tmp_path, dry_run):
    rows = [
        ["Kunde", "Referenz", "Buchungsdatum", "Betrag", "S/H", "Status", "Street", "City", "Zip"],
        ["  K1 ", "R1", "31.12.2024", "1.234,56-", "S", "", "Main 1", "Köln", "50667"],
        ["K2", "R2", "01.02.2024", "(7,00)", "h", "paid", "", "Bonn", ""],
    ]
    source = write_csv(tmp_path / "in.csv", rows, delimiter=";")
    mapping = """
[invoices]
date_format = "%d.%m.%Y"
decimal = ","
thousands = "."
[invoices.fields]
customerNumber = "kunde"
invoiceNumber = " REFERENZ "
postDate = "Buchungsdatum"
invoiceAmount = { column = "Betrag", scale = 100 }
currency = { value = "EUR" }
status = { column = "Status", default = "open" }
debitCreditIndicator = { column = "S/H", map = { S = "D", H = "C" } }
billAddr = { columns = { street = "Street", city = "City", zip = "Zip" } }
"""
    run, payloads, _, _ = dry_run("invoices", source, mapping)
    assert run.code == 0, run.text
    assert payloads == [
        {
            "customerNumber": "K1", "invoiceNumber": "R1", "postDate": "2024-12-31",
            "debitCreditIndicator": "D",
            "billAddr": {"street": "Main 1", "city": "Köln", "zip": "50667"},
            "currency": "EUR", "invoiceAmount": -123456, "status": "open",
        },
        {
            "customerNumber": "K2", "invoiceNumber": "R2", "postDate": "2024-02-01",
            "debitCreditIndicator": "C", "billAddr": {"city": "Bonn"},
            "currency": "EUR", "invoiceAmount": -700, "status": "paid",
        },
    ]  # fmt: skip


def test_field_format_overrides_section_default_and_list_of_formats(tmp_path, dry_run):
    rows = [[*HEADER, "Due"], ["C", "I1", "1", "2024-01-31"], ["C", "I2", "1", "31/01/2024"]]
    source = write_csv(tmp_path / "in.csv", rows)
    mapping = INVOICE_MAPPING.replace("[invoices]\n", '[invoices]\ndate_format = "%d.%m.%Y"\n')
    mapping += 'dueDate = { column = "Due", format = ["%Y-%m-%d", "%d/%m/%Y"] }\n'
    run, payloads, _, _ = dry_run("invoices", source, mapping)
    assert run.code == 0, run.text
    assert [p["dueDate"] for p in payloads] == ["2024-01-31", "2024-01-31"]


def test_unmapped_map_value_rejects_the_row(tmp_path, dry_run):
    source = write_csv(tmp_path / "in.csv", [[*HEADER, "DC"], ["C", "I", "1", "X"]])
    mapping = INVOICE_MAPPING + 'debitCreditIndicator = { column = "DC", map = { S = "D" } }\n'
    run, _, rejected, _ = dry_run("invoices", source, mapping)
    assert run.code == 1
    assert '"X" is not in the map' in rejected[0]["errors"]


def test_dates_iso_impossible_and_unformatted(tmp_path, dry_run):
    rows = [
        [*HEADER, "Date"],
        ["C", "1", "1", "2024-12-31"],
        ["C", "2", "1", "2024-02-30"],
        ["C", "3", "1", "31.12.2024"],
    ]
    source = write_csv(tmp_path / "in.csv", rows)
    run, payloads, rejected, _ = dry_run(
        "invoices", source, INVOICE_MAPPING + 'invoiceDate = "Date"\n'
    )
    assert run.code == 1
    assert payloads[0]["invoiceDate"] == "2024-12-31"
    assert [r["source_row"] for r in rejected] == ["3", "4"]
    assert "is not a date in the format YYYY-MM-DD" in rejected[1]["errors"]


def test_format_given_impossible_date_rejected(tmp_path, dry_run):
    rows = [[*HEADER, "Date"], ["C", "1", "1", "31.02.2024"]]
    source = write_csv(tmp_path / "in.csv", rows)
    mapping = INVOICE_MAPPING + 'invoiceDate = { column = "Date", format = "%d.%m.%Y" }\n'
    run, payloads, rejected, _ = dry_run("invoices", source, mapping)
    assert run.code == 1 and payloads == []
    assert '"31.02.2024" is not a date in the format %d.%m.%Y' in rejected[0]["errors"]


def test_empty_cell_leaves_field_out_and_leading_zeros_stay(tmp_path, dry_run):
    rows = [[*HEADER, "Ref"], ["000123", "007", "5", ""], ["C", "I2", "5", "NA"]]
    source = write_csv(tmp_path / "in.csv", rows)
    run, payloads, _, _ = dry_run("invoices", source, INVOICE_MAPPING + 'reference1 = "Ref"\n')
    assert run.code == 0
    assert payloads[0] == {"customerNumber": "000123", "invoiceNumber": "007", "invoiceAmount": 5}
    assert payloads[1]["reference1"] == "NA"


@pytest.mark.parametrize("word", ["NA", "None", "null", "N/A", "nan", "#N/A"])
def test_no_na_guessing(tmp_path, dry_run, word):
    source = write_csv(tmp_path / "in.csv", [HEADER, [word, word, "1"]])
    run, payloads, _, _ = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 0
    assert payloads[0]["customerNumber"] == word


def test_duplicate_keys_rejected_naming_first_row(tmp_path, dry_run):
    rows = [HEADER, ["C", "I1", "1"], ["C", "I2", "1"], ["C", "I1", "2"], ["C", "I1", "3"]]
    source = write_csv(tmp_path / "in.csv", rows)
    run, payloads, rejected, _report = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 1
    assert [p["invoiceAmount"] for p in payloads] == [1, 1]
    assert [r["source_row"] for r in rejected] == ["4", "5"]
    assert all("repeats the key of row 2" in r["errors"] for r in rejected)


def test_composite_key(tmp_path, dry_run):
    rows = [[*HEADER, "Line"], ["C", "I1", "1", "1"], ["C", "I1", "1", "2"], ["C", "I1", "2", "1"]]
    source = write_csv(tmp_path / "in.csv", rows)
    mapping = INVOICE_MAPPING.replace(
        "[invoices]\n", '[invoices]\nkey = ["invoiceNumber", "lineItem"]\n'
    )
    run, payloads, rejected, _ = dry_run("invoices", source, mapping + 'lineItem = "Line"\n')
    assert run.code == 1
    assert [(p["lineItem"], p["invoiceAmount"]) for p in payloads] == [("1", 1), ("2", 1)]
    assert rejected[0]["source_row"] == "4"
    assert 'invoiceNumber + lineItem: "I1 / 1" repeats the key of row 2' in rejected[0]["errors"]


def test_report_furniture_is_skipped_and_counted(tmp_path, dry_run):
    rows = [
        ["AR report"], [], [*HEADER, "Note"],
        ["", "", "", "Group: North"],
        ["C1", "I1", "10", ""],
        [],
        ["Total", "", "10", ""],
        ["C2", "", "5", ""],
        ["", "", "", "printed 2026-11-20"],
    ]  # fmt: skip
    source = write_csv(tmp_path / "in.csv", rows)
    mapping = INVOICE_MAPPING.replace(
        "[invoices]\n",
        '[invoices]\nheader_row = 3\nskip = [{ column = "Customer", pattern = "^Total" }]\n',
    )
    run, payloads, _, report = dry_run("invoices", source, mapping)
    assert run.code == 1  # C2 has some but not all required fields: a data row with an error
    assert len(payloads) == 1
    assert report["rows_skipped"] == 4 and report["rows_rejected"] == 1 and report["rows_read"] == 6


def test_customers_email_rule(tmp_path, dry_run):
    rows = [
        ["No", "Email", "Name"],
        ["1", "a@b.example", "A"],
        ["2", "not an email", "B"],
        ["3", "", "C"],
    ]
    source = write_csv(tmp_path / "in.csv", rows)
    run, payloads, rejected, _ = dry_run("customers", source, CUSTOMER_MAPPING)
    assert run.code == 1
    assert payloads == [{"companyname": "A", "emailaddress1": "a@b.example", "customerno": "1"}]
    assert [(r["source_row"], r["errors"]) for r in rejected] == [
        ("3", 'emailaddress1 (column "Email"): "not an email" is not an e-mail address'),
        ("4", 'emailaddress1 (column "Email"): is empty (required)'),
    ]


def test_summary_json_has_contract_keys_and_totals(tmp_path, dry_run):
    rows = [
        [*HEADER, "Cur"],
        ["C", "1", "10", "EUR"],
        ["C", "2", "x", "EUR"],
        ["C", "3", "5", "USD"],
        ["C", "4", "2", ""],
    ]
    source = write_csv(tmp_path / "in.csv", rows)
    run, _, _, report = dry_run("invoices", source, INVOICE_MAPPING + 'currency = "Cur"\n')
    assert run.code == 1
    for key in [
        "kind",
        "file",
        "dry_run",
        "rows_read",
        "rows_valid",
        "rows_rejected",
        "rows_skipped",
        "rows_merged",
        "rows_unchanged",
        "rows_sent",
        "rows_accepted",
        "requests",
        "retries",
        "duration_s",
        "exit_code",
        "stopped",
        "target",
        "totals",
        "errors",
    ]:
        assert key in report
    assert report["dry_run"] is True and report["rows_sent"] == 0 and report["requests"] == 0
    assert report["stopped"] is None and report["target"] == "payorcrm"
    assert report["totals"]["EUR"] == {
        "read": "10",
        "rejected": "0",
        "valid": "10",
        "accepted": "0",
    }
    assert report["totals"]["USD"]["valid"] == "5"
    assert report["errors"] == [
        {
            "field": "invoiceAmount",
            "kind": "not_a_number",
            "reason": "invoiceAmount is not a number",
            "count": 1,
            "first_rows": [3],
        }
    ]


def test_plain_output_is_timestamped_with_grouped_errors(tmp_path, payor):
    rows = [HEADER] + [["C", f"I{n}", "x" if n % 3 == 0 else "1"] for n in range(40)]
    source = write_csv(tmp_path / "in.csv", rows)
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run")
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines and all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line) for line in lines)
    assert (
        "14 rows: invoiceAmount is not a number (rows 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, ...)"
        in run.out
    )
    assert "\x1b[" not in run.out + run.err  # no colours or bars when not a terminal


def test_quiet_prints_one_line(tmp_path, payor):
    source = write_csv(tmp_path / "in.csv", [HEADER, ["C", "I", "1"]])
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run", "--quiet")
    assert run.code == 0
    assert len(run.out.splitlines()) == 1 and "1 read, 1 valid, 0 rejected" in run.out
    assert run.err == ""


def test_mapping_from_config_section_and_mapping_flag_wins(tmp_path, payor):
    source = write_csv(tmp_path / "in.csv", [["A", "B", "C"], ["c1", "i1", "5"]])
    (tmp_path / "payor.toml").write_text(
        '[invoices.fields]\ncustomerNumber = "A"\ninvoiceNumber = "B"\ninvoiceAmount = "C"\n'
    )
    payloads = tmp_path / "p.jsonl"
    run = payor("upload", "invoices", source, "--dry-run", "--payloads", payloads)
    assert run.code == 0, run.text
    assert read_jsonl(payloads)[0]["customerNumber"] == "c1"
    other = write_mapping(
        tmp_path / "m.toml",
        '[invoices.fields]\ncustomerNumber = "B"\ninvoiceNumber = "A"\ninvoiceAmount = "C"\n',
    )
    run = payor(
        "upload", "invoices", source, "--dry-run", "--payloads", payloads, "--mapping", other
    )
    assert run.code == 0
    assert read_jsonl(payloads)[0]["customerNumber"] == "i1"


def test_xlsx_cells_numbers_and_dates(tmp_path, dry_run):
    rows = [
        [*HEADER, "Posted", "Ref"],
        ["C1", 536365, 1234.56, dt.datetime(2024, 12, 31), 100234.0],
        ["C2", "C536379", 0.1, dt.datetime(2024, 1, 2, 13, 5), "000123"],
    ]
    source = write_xlsx(tmp_path / "in.xlsx", rows, sheet="Open Items", extra=[("Other", [["x"]])])
    mapping = INVOICE_MAPPING.replace("[invoices]\n", '[invoices]\nsheet = "open items"\n')
    mapping = mapping.replace(
        'invoiceAmount = "Amount"', 'invoiceAmount = { column = "Amount", scale = 100 }'
    )
    mapping += 'postDate = { column = "Posted", format = "%d.%m.%Y" }\nreference1 = "Ref"\n'
    run, payloads, _, _ = dry_run("invoices", source, mapping)
    assert run.code == 0, run.text
    assert payloads[0]["invoiceNumber"] == "536365" and payloads[0]["invoiceAmount"] == 123456
    assert payloads[0]["postDate"] == "2024-12-31" and payloads[0]["reference1"] == "100234"
    assert payloads[1]["invoiceAmount"] == 10 and payloads[1]["postDate"] == "2024-01-02"
    assert payloads[1]["reference1"] == "000123"


def test_sheet_by_index_and_cli_override(tmp_path, dry_run):
    source = write_xlsx(
        tmp_path / "in.xlsx", [["x"]], sheet="Cover", extra=[("Data", [HEADER, ["C", "I", 3]])]
    )
    run, payloads, _, _ = dry_run("invoices", source, INVOICE_MAPPING, "--sheet", "1")
    assert run.code == 0, run.text
    assert payloads == [{"customerNumber": "C", "invoiceNumber": "I", "invoiceAmount": 3}]


# --- the real exports (tests/data, copied from ../shared/data) -------------------------------------------------------

IBM_MAPPING = """
[invoices]
date_format = "%m/%d/%Y"
[invoices.fields]
customerNumber = "customerID"
invoiceNumber = "invoiceNumber"
invoiceDate = "InvoiceDate"
dueDate = "DueDate"
invoiceAmount = { column = "InvoiceAmount", scale = 100 }
"""


def test_ibm_file_keeps_leading_zeros_and_exact_cents(dry_run):
    run, payloads, rejected, report = dry_run(
        "invoices", DATA / "ibm_accounts_receivable.csv", IBM_MAPPING
    )
    assert run.code == 0, run.text
    assert report["rows_read"] == 2466 and len(payloads) == 2466 and rejected == []
    assert payloads[0] == {
        "customerNumber": "0379-NEVHP", "invoiceNumber": "0000611365", "dueDate": "2013-02-01",
        "invoiceAmount": 5594, "invoiceDate": "2013-01-02",
    }  # fmt: skip
    source = (DATA / "ibm_accounts_receivable.csv").read_text().splitlines()[1:]
    raw = {line.split(",")[3]: line.split(",")[6] for line in source}
    assert raw["0000611365"] == "55.94"
    by_number = {p["invoiceNumber"]: p["invoiceAmount"] for p in payloads}
    whole = next(k for k, v in raw.items() if "." not in v)
    one_decimal = next(k for k, v in raw.items() if re.fullmatch(r"\d+\.\d", v))
    assert by_number[whole] == int(raw[whole]) * 100
    assert by_number[one_decimal] == int(raw[one_decimal].replace(".", "")) * 10
    assert sum(by_number.values()) == sum(round(float(v) * 100) for v in raw.values())


def test_ibm_file_with_missing_cells(dry_run):
    mapping = IBM_MAPPING + 'reference1 = "PaperlessBill"\n'
    run, payloads, _, report = dry_run(
        "invoices", DATA / "ibm_accounts_receivable_with_missing.csv", mapping
    )
    assert run.code == 0
    assert report["rows_read"] == 2586
    assert sum("reference1" not in p for p in payloads) == 120


def test_uci_semicolon_mixed_dates_rejected_with_row_numbers(dry_run):
    mapping = """
[invoices]
key = ["invoiceNumber", "lineItem", "soldTo"]
[invoices.fields]
customerNumber = "CustomerID"
invoiceNumber = "InvoiceNo"
lineItem = "StockCode"
soldTo = "X"
itemText = "Description"
invoiceDate = { column = "InvoiceDate", format = "%m/%d/%Y %H:%M" }
invoiceAmount = { column = "UnitPrice", scale = 100 }
"""
    source = DATA / "uci_online_retail_sample_semicolon.csv"
    run, payloads, rejected, report = dry_run("invoices", source, mapping)
    assert run.code == 1
    lines = source.read_text().splitlines()
    short_year = {n for n, line in enumerate(lines, 1) if re.search(r";\d+/\d+/\d\d \d", line)}
    assert {int(r["source_row"]) for r in rejected} == short_year
    assert report["rows_read"] == 5000 and report["rows_valid"] + report["rows_rejected"] == 5000
    assert all("is not a date in the format %m/%d/%Y %H:%M" in r["errors"] for r in rejected)
    assert any('""' in line for line in lines)  # the doubled quotes came through as one
    with source.open(encoding="utf-8", newline="") as handle:
        quoted = {r["Description"] for r in csv.DictReader(handle, delimiter=";")}
    quoted = {text for text in quoted if '"' in text}
    assert quoted  # the file has descriptions with doubled quotes, read back as one quote each
    arrived = {p["itemText"] for p in payloads if '"' in p.get("itemText", "")}
    arrived |= {r["Description"] for r in rejected if '"' in r["Description"]}
    assert arrived == quoted
    na = [p for p in payloads if p["customerNumber"] == "NA"]
    assert na, "NA is a value (Namibia), not a missing cell"


def test_uci_workbook_numeric_invoice_numbers_as_text(dry_run):
    mapping = """
[invoices]
key = ["invoiceNumber", "lineItem", "reference1"]
[invoices.fields]
customerNumber = "CustomerID"
invoiceNumber = "InvoiceNo"
lineItem = "StockCode"
reference1 = "Quantity"
invoiceDate = "InvoiceDate"
invoiceAmount = { column = "UnitPrice", scale = 1000 }
"""
    run, payloads, _rejected, report = dry_run(
        "invoices", DATA / "uci_online_retail_first70051.xlsx", mapping
    )
    assert run.code == 1, run.text  # the rows without a CustomerID
    assert report["rows_read"] == 70051
    assert payloads[0]["invoiceNumber"] == "536365" and payloads[0]["customerNumber"] == "17850"
    assert payloads[0]["invoiceDate"] == "2010-12-01" and payloads[0]["invoiceAmount"] == 2550
    assert any(p["invoiceNumber"].startswith("C") for p in payloads)
    reasons = {e["kind"] for e in report["errors"]}
    assert "required" in reasons  # the blank CustomerID cells
    assert json.dumps(payloads).count('.0"') == 0


def test_xlsx_number_cells_as_a_person_reads_them(tmp_path, dry_run):
    rows = [[*HEADER, "Ref", "When"]]
    numbers = [123456789012.0, 1e-7, -0.0, 777.25, None, 1e21]
    for n, value in enumerate(numbers):
        when = dt.datetime(2024, 5, 6, 7, 8, 9) if n == 0 else None
        rows.append(["C", f"I{n}", 1, value, when])
    written = write_xlsx(tmp_path / "written.xlsx", rows)
    # Excel stores some numbers with all 17 digits of their binary form: a person sees 15
    source = tmp_path / "in.xlsx"
    with zipfile.ZipFile(written) as original, zipfile.ZipFile(source, "w") as patched:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<v>777.25</v>", b"<v>1234.5599999999999</v>")
            patched.writestr(item, data)
    mapping = INVOICE_MAPPING + 'reference1 = "Ref"\nreference2 = "When"\n'
    run, payloads, _, _ = dry_run("invoices", source, mapping)
    assert run.code == 0, run.text
    assert [p.get("reference1") for p in payloads] == [
        "123456789012", "0.0000001", "0", "1234.56", None, "1000000000000000000000",
    ]  # fmt: skip
    assert payloads[0]["reference2"] == "2024-05-06 07:08:09"
