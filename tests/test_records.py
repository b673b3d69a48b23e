"""Records, not rows: repeated keys merged or refused, rejected files that come back, totals.

Every test runs the real CLI (dry runs, or uploads to a real sandbox server) and reads the
files and the report it wrote.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import openpyxl
import pyarrow as pa
import pytest
from conftest import (
    CREDENTIALS,
    DATA,
    INVOICE_MAPPING,
    SAMPLES,
    read_jsonl,
    read_rejected,
    write_csv,
    write_mapping,
)

from payor_cli import numbers

HEADER = ["Customer", "Invoice", "Amount"]


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8-sig").splitlines()


# --- repeated keys ---------------------------------------------------------------------------


def test_identical_rows_far_apart_are_one_record_and_counted(tmp_path, dry_run):
    # 30,000 rows: more than one chunk, so the repeat is found across chunks
    rows = [HEADER] + [["C1", f"I{i:05d}", "1"] for i in range(30_000)]
    rows.append(["C1", "I00003", "1"])  # equal to row 5: merged
    rows.append(["C1", "I00004", "2"])  # same key as row 6, other amount: refused
    run, payloads, rejected, report = dry_run(
        "invoices", write_csv(tmp_path / "i.csv", rows), INVOICE_MAPPING
    )
    assert run.code == 1, run.text
    assert len(payloads) == 30_000
    assert [r["source_row"] for r in rejected] == ["30003"]
    assert rejected[0]["errors"] == 'invoiceNumber: "I00004" repeats the key of row 6'
    assert (report["rows_read"], report["rows_valid"], report["rows_merged"]) == (30_002, 30_000, 1)
    assert report["rows_read"] == (
        report["rows_valid"]
        + report["rows_rejected"]
        + report["rows_skipped"]
        + report["rows_merged"]
    )
    assert report["errors"][0]["reason"] == ("invoiceNumber repeats the key of an earlier row")


def test_a_repeat_of_a_rejected_row_is_refused_not_merged(tmp_path, dry_run):
    rows = [HEADER, ["C1", "I1", "x"], ["C1", "I1", "x"]]
    run, payloads, rejected, report = dry_run(
        "invoices", write_csv(tmp_path / "i.csv", rows), INVOICE_MAPPING
    )
    assert run.code == 1
    assert payloads == [] and report["rows_merged"] == 0
    assert "repeats the key of row 2" in rejected[1]["errors"]


XERO_HEADER = ["ContactName", "EmailAddress", "InvoiceNumber", "InvoiceDate", "Total", "Description", "LineAmount", "Currency"]  # fmt: skip
XERO_LINES = [
    XERO_HEADER,
    ["Bright Dental", "office@bright.example", "INV-1", "05/11/2024", "1380.00", "Consulting", "1000.00", "GBP"],
    ["Bright Dental", "office@bright.example", "INV-1", "05/11/2024", "1380.00", "Travel", "380.00", "GBP"],
    ["Cole Farms", "ap@cole.example", "INV-2", "20/11/2024", "90.60", "Seeds", "90.60", "GBP"],
    ["Bright Dental", "office@bright.example", "INV-3", "21/11/2024", "10.00", "Fee", "10.00", "GBP"],
]  # fmt: skip
XERO_MAPPING = """
[customers]
[customers.fields]
customerno = "ContactName"
companyname = "ContactName"
emailaddress1 = "EmailAddress"

[invoices]
date_format = "%d/%m/%Y"
[invoices.fields]
customerNumber = "ContactName"
invoiceNumber = "InvoiceNumber"
invoiceDate = "InvoiceDate"
invoiceAmount = { column = "Total", scale = 100 }
currency = "Currency"
"""


def test_upload_all_from_one_xero_export_stores_each_customer_once_and_invoices_whole(
    tmp_path, payor, sandbox_server
):
    source = write_csv(tmp_path / "SalesInvoices.csv", XERO_LINES)
    mapping = write_mapping(tmp_path / "m.toml", XERO_MAPPING)
    server = sandbox_server()
    report = tmp_path / "r.json"
    run = payor(
        "upload", "all", "--customers", source, "--invoices", source, "--mapping", mapping,
        "--base-url", server.url, "--state-dir", tmp_path / "s", "--report-json", report,
        env=CREDENTIALS,
    )  # fmt: skip
    assert run.code == 0, run.text
    assert server.records("customers") == [
        {"customerno": "Bright Dental", "companyname": "Bright Dental", "emailaddress1": "office@bright.example"},
        {"customerno": "Cole Farms", "companyname": "Cole Farms", "emailaddress1": "ap@cole.example"},
    ]  # fmt: skip
    assert [(r["invoiceNumber"], r["invoiceAmount"]) for r in server.records("invoices")] == [
        ("INV-1", 138000),
        ("INV-2", 9060),
        ("INV-3", 1000),
    ]
    data = json.loads(report.read_text())
    assert data["customers"]["rows_merged"] == 2 and data["customers"]["rows_accepted"] == 2
    assert data["invoices"]["rows_merged"] == 1 and data["invoices"]["rows_accepted"] == 3
    # the merged line repeats its invoice: it adds nothing to the control totals
    assert data["invoices"]["totals"]["GBP"]["read"] == "1480.60"
    assert data["invoices"]["totals"]["GBP"]["accepted"] == "1480.60"


# --- the rejected-rows file --------------------------------------------------------------------


def test_rejected_file_of_a_report_has_its_header_on_line_1_and_uploads_again(tmp_path, payor):
    report = SAMPLES / "open_items_report.csv"
    broken = tmp_path / "report.csv"
    text = report.read_bytes().replace(b";6,337.07;", b";6,337.0x;", 1)
    broken.write_bytes(text)
    config = SAMPLES.parent / "config.example.toml"
    rejected = tmp_path / "rejected.csv"
    run = payor("upload", "invoices", broken, "--config", config, "--header-row", "4", "--dry-run", "--rejected", rejected)  # fmt: skip
    assert run.code == 1, run.text
    raw = rejected.read_bytes().decode("cp1252")
    header = raw.splitlines()[0].split(";")
    assert header[:5] == ["source_row", "errors", "origin", "Customer No", "Customer"]
    rows = list(csv.reader(raw.splitlines()[1:], delimiter=";"))
    assert [r[0] for r in rows] == ["6"]
    # fixed by a person, then uploaded with the same mapping and the same --header-row 4
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(rejected.read_bytes().replace(b"6,337.0x", b"6,337.07"))
    again = tmp_path / "again.csv"
    payloads = tmp_path / "p.jsonl"
    run = payor("upload", "invoices", fixed, "--config", config, "--header-row", "4", "--dry-run", "--rejected", again, "--payloads", payloads)  # fmt: skip
    assert run.code == 0, run.text
    assert "payor's rejected rows" in run.out
    assert [(p["invoiceNumber"], p["invoiceAmount"]) for p in read_jsonl(payloads)] == [
        ("INV-2026-00001", 633707)
    ]
    # the lead columns never stack up
    assert again.read_bytes().decode("cp1252").splitlines()[0].split(";")[:4] == ["source_row", "errors", "origin", "Customer No"]  # fmt: skip


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_repeated_key_that_comes_back_unchanged_is_refused_again(
    tmp_path, payor, sandbox_server, suffix
):
    source = write_csv(
        tmp_path / "i.csv", [HEADER, ["C1", "I1", "10"], ["C1", "I2", "5"], ["C1", "I1", "99"]]
    )
    people = write_csv(tmp_path / "c.csv", [["No", "Email", "Name"], ["C1", "c@x.example", "A"]])
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    server = sandbox_server()
    customers_mapping = write_mapping(tmp_path / "cm.toml", '[customers]\n[customers.fields]\ncustomerno = "No"\nemailaddress1 = "Email"\n')  # fmt: skip
    base = ["--base-url", server.url, "--state-dir", tmp_path / "s"]
    assert payor("upload", "customers", people, "--mapping", customers_mapping, *base, env=CREDENTIALS).code == 0  # fmt: skip
    first = tmp_path / f"rejected{suffix}"
    run = payor("upload", "invoices", source, "--mapping", mapping, "--rejected", first, *base, env=CREDENTIALS)  # fmt: skip
    assert run.code == 1, run.text
    # the clerk changes the amount but not the key, and uploads the file again, twice
    second, third = tmp_path / f"second{suffix}", tmp_path / f"third{suffix}"
    for before, after in ((first, second), (second, third)):
        run = payor("upload", "invoices", before, "--mapping", mapping, "--rejected", after, *base, env=CREDENTIALS)  # fmt: skip
        assert run.code == 1, run.text
        rows = read_back(after)
        assert [r["source_row"] for r in rows] == ["2"]
        assert rows[0]["errors"].startswith(
            'invoiceNumber: "I1" repeats the key of row 2 of the first upload'
        )
        assert list(rows[0]) == ["source_row", "errors", "origin", "Customer", "Invoice", "Amount"]
        assert rows[0]["origin"] == "i.csv row 4"  # the first upload's row, every round
    assert [(r["invoiceNumber"], r["invoiceAmount"]) for r in server.records("invoices")] == [
        ("I1", 10),
        ("I2", 5),
    ]
    # with its own key it goes through
    renamed = tmp_path / "renamed.csv"
    write_csv(renamed, [["source_row", "errors", *HEADER], ["2", "old reason", "C1", "I1-B", "99"]])
    assert payor("upload", "invoices", renamed, "--mapping", mapping, *base, env=CREDENTIALS).code == 0  # fmt: skip
    assert ("I1-B", 99) in [
        (r["invoiceNumber"], r["invoiceAmount"]) for r in server.records("invoices")
    ]


def read_back(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".csv":
        return read_rejected(path)
    sheet = openpyxl.load_workbook(path).active
    header, *rows = [
        [str(c) if c is not None else "" for c in row] for row in sheet.iter_rows(values_only=True)
    ]
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_a_failed_run_replaces_last_nights_rejected_file(tmp_path, payor):
    rejected = tmp_path / "rejected.csv"
    rejected.write_text("source_row,errors,Customer\n7,old,C9\n", encoding="utf-8")
    source = write_csv(tmp_path / "i.csv", [["Wrong", "Header"], ["1", "2"]])
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run", "--rejected", rejected)  # fmt: skip
    assert run.code == 2, run.text
    assert lines_of(rejected) == ["source_row,errors,origin"]


# --- control totals --------------------------------------------------------------------------


def test_totals_are_exact_currency_units_in_the_report_and_on_screen(tmp_path, dry_run):
    source = DATA / "ibm_accounts_receivable.csv"
    with source.open(newline="") as handle:
        expected = sum(Decimal(r["InvoiceAmount"]) for r in csv.DictReader(handle))
    mapping = """
[invoices]
[invoices.fields]
customerNumber = "customerID"
invoiceNumber = "invoiceNumber"
invoiceAmount = { column = "InvoiceAmount", scale = 100 }
"""
    run, _, _, report = dry_run("invoices", source, mapping)
    assert run.code == 0, run.text
    shown = f"{expected:.2f}"
    assert report["totals"] == {
        "no currency column": {
            "read": shown,
            "rejected": "0.00",
            "valid": shown,
            "accepted": "0.00",
        }
    }
    assert (
        f"invoiceAmount total (no currency column): read {expected:,.2f}, rejected 0.00" in run.out
    )


# --- pad and missing -----------------------------------------------------------------------------


def test_pad_restores_leading_zeros_and_missing_names_empty_cells(tmp_path, dry_run):
    source = DATA / "ibm_accounts_receivable_unpadded.csv"
    mapping = """
[invoices]
missing = ["n/a"]
[invoices.fields]
customerNumber = "customerID"
invoiceNumber = { column = "invoiceNumber", pad = 10 }
invoiceAmount = { column = "InvoiceAmount", scale = 100 }
reference1 = { column = "Disputed", missing = ["No"] }
"""
    run, payloads, _, _ = dry_run("invoices", source, mapping)
    assert run.code == 0, run.text
    with (DATA / "ibm_accounts_receivable.csv").open(newline="") as handle:
        padded = [r["invoiceNumber"] for r in csv.DictReader(handle)]
    assert sorted(p["invoiceNumber"] for p in payloads) == sorted(padded)  # rows reordered
    assert padded[0] == "0000611365"
    assert {p.get("reference1") for p in payloads} == {None, "Yes"}


def test_missing_texts_make_a_required_field_empty(tmp_path, dry_run):
    rows = [HEADER, ["NA", "I1", "1"], ["NA", "", "NA"], ["C2", "I2", "n/a"]]
    mapping = INVOICE_MAPPING.replace("[invoices]\n", '[invoices]\nmissing = ["NA", "n/a"]\n')
    run, payloads, rejected, report = dry_run(
        "invoices", write_csv(tmp_path / "i.csv", rows), mapping
    )
    assert run.code == 1
    assert payloads == []
    assert report["rows_skipped"] == 1  # every required cell empty: report furniture
    assert [r["source_row"] for r in rejected] == ["2", "4"]
    assert (
        "customerNumber" in rejected[0]["errors"] and "is empty (required)" in rejected[0]["errors"]
    )
    assert (
        "invoiceAmount" in rejected[1]["errors"] and "is empty (required)" in rejected[1]["errors"]
    )


@pytest.mark.parametrize(
    "option, error",
    [
        ("pad = 0", "pad must be a width"),
        ('missing = "x"', None),
        ("missing = [1]", "list of cell texts"),
    ],
)
def test_pad_and_missing_are_checked(tmp_path, dry_run, option, error):
    source = write_csv(tmp_path / "i.csv", [HEADER, ["C1", "I1", "1"]])
    mapping = INVOICE_MAPPING.replace(
        'customerNumber = "Customer"', f'customerNumber = {{ column = "Customer", {option} }}'
    )
    run, *_ = dry_run("invoices", source, mapping)
    if error is None:
        assert run.code == 0, run.text
    else:
        assert run.code == 2 and error in run.err, run.text


def test_pad_is_for_text_fields_only(tmp_path, dry_run):
    source = write_csv(tmp_path / "i.csv", [HEADER, ["C1", "I1", "1"]])
    mapping = INVOICE_MAPPING.replace(
        'invoiceAmount = "Amount"', 'invoiceAmount = { column = "Amount", pad = 4 }'
    )
    run, *_ = dry_run("invoices", source, mapping)
    assert run.code == 2 and "'pad' does not apply to an integer field" in run.err


# --- one amount grammar ----------------------------------------------------------------------

AMOUNTS = [
    "1", "-1", "0", "-0", "007", "1.5", "1.50", "1.005", "123456789012345678",
    "1234567890123456789", "99999999999999999.99", "9999999999999999.99", "-9999999999999999.99",
    "12345678901234567.89", "-12345678901234567.89", "1.", ".5", "1e5", "12345678901234567890", "0.000000001", "5-", "(5)",
]  # fmt: skip


@pytest.mark.parametrize("scale", [Decimal(1), Decimal(100)])
def test_an_amount_is_read_the_same_alone_and_beside_any_other_cell(scale):
    def read(cells: list[str]) -> list[tuple[int | None, list[str]]]:
        converted = numbers.integer(pa.array(cells, pa.string()), ".", None, scale)
        kinds = [[f.kind for f in converted.faults if f.mask[i].as_py()] for i in range(len(cells))]
        return list(zip(converted.integers.to_pylist(), kinds, strict=True))

    for amount in AMOUNTS:
        alone = read([amount])[0]
        beside_plain = read([amount, "1"])[0]
        beside_symbol = read([amount, "$1"])[0]  # a cell that needs the general path
        assert alone == beside_plain == beside_symbol, amount
    assert read(["1234567890123456789"])[0] == (None, ["too_large"])
    assert read(["123456789012345678"])[0][1] == ([] if scale == 1 else ["too_large"])


def test_a_row_refused_for_its_amount_still_counts_in_the_totals(tmp_path, dry_run):
    rows = [[*HEADER, "Cur"], ["C", "I1", "1", "EUR"], ["C", "I2", "2", "EUR"], ["C", "I3", "0.5", "EUR"], ["C", "I4", "x", "EUR"]]  # fmt: skip
    source = write_csv(tmp_path / "i.csv", rows)
    run, _, rejected, report = dry_run("invoices", source, INVOICE_MAPPING + 'currency = "Cur"\n')
    assert run.code == 1
    assert [r["source_row"] for r in rejected] == ["4", "5"]
    # 0.5 is not whole (scale 1) but is money read; "x" is no amount at all
    assert report["totals"]["EUR"] == {
        "read": "3.5",
        "rejected": "0.5",
        "valid": "3",
        "accepted": "0",
    }


# --- sum: an invoice total made from its line rows (PayorCRM has no lines) -----------------------

SUM_MAPPING = """
[invoices]
[invoices.fields]
customerNumber = "CustomerID"
invoiceNumber = "InvoiceNo"
invoiceAmount = { sum = "UnitPrice", times = "Quantity", scale = 100 }
"""


def test_sum_totals_the_lines_of_the_uci_workbook(dry_run):
    source = DATA / "uci_online_retail_first70051.xlsx"
    run, payloads, _, report = dry_run("invoices", source, SUM_MAPPING)
    assert run.code == 1  # rows without a CustomerID
    import python_calamine

    rows = (
        python_calamine.CalamineWorkbook.from_path(str(source))
        .get_sheet_by_name("Online Retail")
        .to_python()
    )
    header, body = rows[0], rows[1:]
    col = {
        name: header.index(name) for name in ("InvoiceNo", "Quantity", "UnitPrice", "CustomerID")
    }
    expected: dict[str, Decimal] = {}
    for row in body:
        if row[col["CustomerID"]] == "":
            continue
        number = str(row[col["InvoiceNo"]]).removesuffix(".0")
        price = Decimal(repr(row[col["UnitPrice"]]))
        expected[number] = expected.get(number, Decimal(0)) + price * int(row[col["Quantity"]])
    sent = {p["invoiceNumber"]: p["invoiceAmount"] for p in payloads}
    assert sent["536365"] == 13912  # 7 lines: 6 x 2.55 + 6 x 3.39 + ...
    assert sent == {n: int(v * 100) for n, v in expected.items()}
    assert report["rows_valid"] == sum(1 for r in body if r[col["CustomerID"]] != "")
    assert report["rows_read"] == len(body)


def test_sum_over_xero_import_template_rows_with_asterisk_headers(tmp_path, dry_run):
    rows = [
        ["*ContactName", "*InvoiceNumber", "*InvoiceDate", "Description", "*Quantity", "*UnitAmount"],
        ["Bright Dental", "INV-1", "05/11/2024", "Consulting", "5", "200.00"],
        ["Bright Dental", "INV-1", "05/11/2024", "Travel", "1", "150.00"],
        ["Cole Farms", "INV-2", "20/11/2024", "Seeds", "3", "25.17"],
        ["Cole Farms", "INV-3", "21/11/2024", "Seeds", "0.5", "0.01"],
    ]  # fmt: skip
    mapping = """
[invoices]
date_format = "%d/%m/%Y"
[invoices.fields]
customerNumber = "*ContactName"
invoiceNumber = "*InvoiceNumber"
invoiceDate = "*InvoiceDate"
invoiceAmount = { sum = "*UnitAmount", times = "*Quantity", scale = 100 }
"""
    run, payloads, rejected, report = dry_run(
        "invoices", write_csv(tmp_path / "x.csv", rows), mapping
    )
    assert run.code == 1
    assert payloads == [
        {"customerNumber": "Bright Dental", "invoiceNumber": "INV-1", "invoiceDate": "2024-11-05", "invoiceAmount": 115000},
        {"customerNumber": "Cole Farms", "invoiceNumber": "INV-2", "invoiceDate": "2024-11-20", "invoiceAmount": 7551},
    ]  # fmt: skip
    assert [r["source_row"] for r in rejected] == ["5"]
    assert "sums to 0.005, not a whole number × 100" in rejected[0]["errors"]
    assert (report["rows_valid"], report["rows_rejected"]) == (3, 1)


def test_rows_of_one_invoice_that_disagree_reject_it_whole(tmp_path, dry_run):
    rows = [
        ["CustomerID", "InvoiceNo", "Quantity", "UnitPrice"],
        ["C1", "I1", "1", "1.00"],
        ["C2", "I1", "1", "2.00"],
        ["C1", "I2", "2", "1.50"],
    ]
    run, payloads, rejected, _ = dry_run(
        "invoices", write_csv(tmp_path / "d.csv", rows), SUM_MAPPING
    )
    assert run.code == 1
    assert payloads == [{"customerNumber": "C1", "invoiceNumber": "I2", "invoiceAmount": 300}]
    assert [r["source_row"] for r in rejected] == ["2", "3"]
    assert all(
        "the rows of one record (2, 3) differ in customerNumber" in r["errors"] for r in rejected
    )


def test_an_invoice_straddling_two_chunks_is_summed_whole(tmp_path, dry_run):
    rows = [["CustomerID", "InvoiceNo", "Quantity", "UnitPrice"]]
    for i in range(12_000):  # 36,000 rows: more than a chunk of 25,000
        rows += [
            ["C", f"I{i:05d}", "1", "1.00"],
            ["C", f"I{i:05d}", "2", "0.50"],
            ["C", f"I{i:05d}", "1", "0.25"],
        ]
    run, payloads, _, report = dry_run(
        "invoices", write_csv(tmp_path / "big.csv", rows), SUM_MAPPING
    )
    assert run.code == 0, run.text
    assert len(payloads) == 12_000
    assert {p["invoiceAmount"] for p in payloads} == {225}
    assert report["rows_valid"] == 36_000


def test_a_rejected_workbook_uploads_again_with_a_mapping_that_names_a_sheet(tmp_path, payor):
    broken = tmp_path / "report.csv"
    broken.write_bytes(
        (SAMPLES / "open_items_report.csv").read_bytes().replace(b";6,337.07;", b";6,337.0x;", 1)
    )
    config = SAMPLES.parent / "config.example.toml"  # [invoices] sheet = "Open Items"
    rejected = tmp_path / "rejected.xlsx"
    run = payor("upload", "invoices", broken, "--config", config, "--header-row", "4", "--dry-run", "--rejected", rejected)  # fmt: skip
    assert run.code == 1, run.text
    sheet = openpyxl.load_workbook(rejected).active
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["source_row", "errors", "origin", "Customer No"]
    sheet.cell(2, header.index("Amount") + 1).value = "6,337.07"  # the clerk fixes the amount
    fixed = tmp_path / "fixed.xlsx"
    sheet.parent.save(fixed)
    payloads = tmp_path / "p.jsonl"
    run = payor(
        "upload", "invoices", fixed, "--config", config, "--dry-run", "--payloads", payloads
    )
    assert run.code == 0, run.text
    assert [p["invoiceAmount"] for p in read_jsonl(payloads)] == [633707]
