"""`payor init`'s engine: layouts, labels and values of vendor exports -> a mapping that uploads."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
import tomllib
from pathlib import Path

import pytest
from conftest import DATA, write_csv, write_xlsx

from payor_cli import read as readers
from payor_cli.check import binding, mapping, validate
from payor_cli.errors import MappingError
from payor_cli.infer import list_presets, load_preset, suggest_mapping
from payor_cli.targets import api_kinds, get_target
from payor_cli.targets.payorcrm.adapter import PayorCrm


def suggest(source, kind, *args, **kwargs):
    """`payor init`'s suggestion for `source`, for the target whose kind `kind` is."""
    return suggest_mapping(
        source, kind, *args, target=get_target(kind.target), apis=api_kinds(), **kwargs
    )


PAYORCRM = PayorCrm()

INVOICES = PAYORCRM.kind("invoices")
CUSTOMERS = PAYORCRM.kind("customers")


def validated(suggestion, path: Path) -> list[validate.ValidatedChunk]:
    """Every chunk of the file validated with the suggested mapping, as `--dry-run` does."""
    assert suggestion.mapping is not None, suggestion.toml
    table = readers.open_table(path, suggestion.mapping.input)
    bound = binding.bind(suggestion.mapping, table.headers, str(path))
    validator = validate.Validator(bound, PAYORCRM)
    return [validator(chunk) for chunk in table.chunks()]


def dry_run(suggestion, path: Path) -> tuple[list[dict], list[str], int]:
    """(payloads, rejected rows as `row N: message`, rows skipped) of a dry run of the file."""
    payloads, rejected, skipped = [], [], 0
    for result in validated(suggestion, path):
        payloads += [json.loads(p) for p in result.payloads.to_pylist()]
        rejected += [f"row {row.row}: {row.message}" for row in result.rejected]
        skipped += result.rows_skipped
    return payloads, rejected, skipped


def written(suggestion, tmp_path: Path) -> mapping.Mapping:
    """The TOML as `init -o` writes it, read back the way `upload --mapping` reads it."""
    target = tmp_path / "payor.toml"
    target.write_text(suggestion.toml, encoding="utf-8")
    loaded = mapping.load_mapping_file(target, suggestion.kind)
    assert loaded is not None
    return loaded


def project(payloads: list[dict], *fields: str) -> list[dict]:
    return [{f: p.get(f) for f in fields} for p in payloads]


def write_quoted_csv(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(rows)
    return path


# --- the IBM file: plain CSV, M/D/YYYY, amounts with 0-2 decimals ------------------------------


def test_ibm_file_is_matched_by_labels_and_uploads_in_cents(tmp_path):
    source = DATA / "ibm_accounts_receivable.csv"
    suggestion = suggest(source, INVOICES)
    assert suggestion.todo == []
    fields = suggestion.mapping.fields
    assert fields["customerNumber"].column == "customerID"
    assert fields["invoiceNumber"].column == "invoiceNumber"
    assert fields["invoiceDate"].column == "InvoiceDate"
    assert fields["dueDate"].column == "DueDate"
    assert fields["invoiceAmount"].column == "InvoiceAmount"
    assert fields["invoiceAmount"].scale == 100
    assert fields["invoiceDate"].formats == ("%m/%d/%Y",)
    assert "sent in cents (x100)" in suggestion.toml
    assert "companyCode" not in fields  # countryCode is not a company code
    assert written(suggestion, tmp_path).fields == suggestion.mapping.fields
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert len(payloads) == 2466
    assert payloads[0] == {
        "customerNumber": "0379-NEVHP",
        "invoiceNumber": "0000611365",
        "invoiceDate": "2013-01-02",
        "dueDate": "2013-02-01",
        "invoiceAmount": 5594,
    }
    assert payloads[5]["invoiceAmount"] == 9400  # "94"
    assert payloads[17]["invoiceAmount"] == 6880  # "68.8", not 688


# --- SAP FBL5N: UTF-16LE BOM tab text, title lines, `*` / `**` total rows ----------------------

SAP_ENGLISH = [
    "Customer Line Item Display",
    "",
    "Company Code\t1000",
    "",
    "\tCompany Code\tAccount\tDocument Number\tReference\tDocument Type\tPosting Key\t"
    "Posting Date\tNet due date\tAmount in local currency\tLocal Currency\tDebit/Credit ind\tText",
    "\t1000\t100017\t1800000012\tINV-4711\tRV\t01\t15.11.2024\t15.12.2024\t1.234,56\tEUR\tS\t"
    "Wartung",
    "\t1000\t100017\t1400000007\t\tDZ\t15\t20.11.2024\t20.11.2024\t500,00-\tEUR\tH\tZahlung",
    "*\t1000\t100017\t\t\t\t\t\t\t734,56\tEUR\t\t",
    "\t1000\t100020\t1800000013\tINV-4712\tRV\t01\t31.12.2024\t30.01.2025\t12.345.678,90\tEUR\tS\t",
    "\t1000\t100020\t1800000014\tINV-4713\tRV\t01\t02.01.2025\t01.02.2025\t7\tEUR\tS\t",
    "*\t1000\t100020\t\t\t\t\t\t\t12.345.685,90\tEUR\t\t",
    "**\t1000\t\t\t\t\t\t\t\t12.346.420,46\tEUR\t\t",
]
SAP_GERMAN = [
    "Debitoren Einzelpostenliste",
    "Buchungskreis 1000",
    "",
    "Buchungskreis\tKonto\tBelegnummer\tReferenz\tBelegart\tBuchungsschlüssel\tBuchungsdatum\t"
    "Nettofälligkeit\tBetrag in Hauswährung\tHauswährung\tSoll/Haben-Kennz.\tGeschäftsjahr\tText",
    "1000\t100017\t1800000012\tINV-4711\tRV\t01\t15.11.2024\t15.12.2024\t1.234,56\tEUR\tS\t2024\t"
    "Wartung Müller",
    "1000\t100017\t1400000007\t\tDZ\t15\t20.11.2024\t20.11.2024\t500,00-\tEUR\tH\t2024\tZahlung",
    "*\t100017\t\t\t\t\t\t\t734,56\tEUR\t\t\t",
    "1000\t100020\t1800000013\tINV-4712\tRV\t01\t31.12.2024\t30.01.2025\t12.345.678,90\tEUR\tS\t"
    "2024\t",
    "1000\t100020\t1800000014\tINV-4713\tRV\t01\t02.01.2025\t01.02.2025\t7\tEUR\tS\t2025\t",
    "*\t100020\t\t\t\t\t\t\t12.345.685,90\tEUR\t\t\t",
    "**\t\t\t\t\t\t\t\t12.346.420,46\tEUR\t\t\t",
]
SAP_EXPECTED = [
    {"customerNumber": "100017", "invoiceNumber": "INV-4711", "accountingDocNumber": "1800000012",
     "postDate": "2024-11-15", "dueDate": "2024-12-15", "invoiceAmount": 123456,
     "currency": "EUR"},
    {"customerNumber": "100020", "invoiceNumber": "INV-4712", "accountingDocNumber": "1800000013",
     "postDate": "2024-12-31", "dueDate": "2025-01-30", "invoiceAmount": 1234567890,
     "currency": "EUR"},
    {"customerNumber": "100020", "invoiceNumber": "INV-4713", "accountingDocNumber": "1800000014",
     "postDate": "2025-01-02", "dueDate": "2025-02-01", "invoiceAmount": 700, "currency": "EUR"},
]  # fmt: skip


def write_sap(path: Path, lines: list[str]) -> Path:
    path.write_bytes(codecs.BOM_UTF16_LE + "\r\n".join(lines).encode("utf-16-le") + b"\r\x00\n\x00")
    return path


@pytest.mark.parametrize("preset", [None, "sap-fbl5n"])
@pytest.mark.parametrize(
    ("lines", "name", "header_row"),
    [(SAP_ENGLISH, "FBL5N.xls", 5), (SAP_GERMAN, "FBL5N.txt", 4)],
    ids=["english-xls", "german-txt"],
)
def test_sap_fbl5n_export_uploads_without_edits(tmp_path, preset, lines, name, header_row):
    source = write_sap(tmp_path / name, lines)
    suggestion = suggest(source, INVOICES, preset=preset)
    assert suggestion.todo == [], suggestion.toml
    assert suggestion.mapping.input.header_row == header_row
    assert suggestion.mapping.input.delimiter == "\t"
    assert f"header_row = {header_row}" in suggestion.toml
    amount = suggestion.mapping.fields["invoiceAmount"]
    assert (amount.decimal, amount.thousands, amount.scale) == (",", ".", 100)
    assert suggestion.mapping.fields["postDate"].formats == ("%d.%m.%Y",)
    assert suggestion.mapping.skip, "the * total rows need a skip rule"
    written(suggestion, tmp_path)
    # FBL5N's reference (XBLNR) is the number printed on the invoice; the document number is
    # the accounting document. The payment (DZ) has no reference: no invoice, rejected.
    english = header_row == 5
    reference = "Reference" if english else "Referenz"
    document = "Document Number" if english else "Belegnummer"
    assert suggestion.mapping.fields["invoiceNumber"].column == reference
    assert suggestion.mapping.fields["accountingDocNumber"].column == document
    assert "reference1" not in suggestion.mapping.fields
    payloads, rejected, skipped = dry_run(suggestion, source)
    assert rejected == [
        f'row {header_row + 2}: invoiceNumber (column "{reference}"): is empty (required)'
    ]
    assert skipped == 3
    assert project(payloads, *SAP_EXPECTED[0]) == SAP_EXPECTED
    assert payloads[0]["debitCreditIndicator"] == "S"
    assert payloads[0]["documentType"] == "RV"
    assert payloads[0]["postingKey"] == "01"


# --- QuickBooks Online: preamble, group rows, "Total for" rows, timestamp footer ----------------

QBO_AGING = [
    ["Acme Widgets LLC"],
    ["A/R Aging Detail"],
    ["As of November 20, 2024"],
    [""],
    ["Date", "Transaction type", "Num", "Customer full name", "Due date", "Amount", "Open balance"],
    ["Current", "", "", "", "", "", ""],
    ["10/01/2024", "Invoice", "1001", "Bright Dental", "10/31/2024", "1,284.50", "1,284.50"],
    ["10/15/2024", "Invoice", "1002", "Cole Farms", "11/14/2024", "750.00", "750.00"],
    ["Total for Current", "", "", "", "", "$2,034.50", "$2,034.50"],
    ["1 - 30 days past due", "", "", "", "", "", ""],
    ["09/13/2024", "Invoice", "0998", "Bright Dental", "10/13/2024", "12,000.00", "8,000.00"],
    ["09/20/2024", "Credit Memo", "0999", "Total Wine & More", "09/20/2024", "-25.00", "-25.00"],
    ["Total for 1 - 30 days past due", "", "", "", "", "$11,975.00", "$7,975.00"],
    ["TOTAL", "", "", "", "", "$14,009.50", "$10,009.50"],
    [""],
    [""],
    ["Wednesday, November 20, 2024 09:15 AM GMT-08:00"],
]
QBO_INVOICE_LIST_OLD = [
    ["Acme Widgets LLC"],
    ["Invoice List"],
    ["All Dates"],
    [""],
    ["Date", "Num", "Customer", "Due Date", "Amount", "Open Balance"],
    ["10/01/2024", "1001", "Bright Dental", "10/31/2024", "1,284.50", "1,284.50"],
    ["10/15/2024", "1002", "Cole Farms", "11/14/2024", "750.00", "0.00"],
    ["09/13/2024", "0998", "Bright Dental", "10/13/2024", "12,000.00", "8,000.00"],
    ["09/20/2024", "0999", "Total Wine & More", "09/20/2024", "(25.00)", "(25.00)"],
    ["TOTAL", "", "", "", "$14,009.50", "$9,259.50"],
    [""],
    ["Accrual Basis Wednesday, November 20, 2024 09:15 AM GMT-08:00"],
]
QBO_EXPECTED = [
    {"invoiceNumber": "1001", "customerNumber": "Bright Dental", "customerName": "Bright Dental",
     "invoiceDate": "2024-10-01", "dueDate": "2024-10-31", "invoiceAmount": 128450},
    {"invoiceNumber": "1002", "customerNumber": "Cole Farms", "customerName": "Cole Farms",
     "invoiceDate": "2024-10-15", "dueDate": "2024-11-14", "invoiceAmount": 75000},
    {"invoiceNumber": "0998", "customerNumber": "Bright Dental", "customerName": "Bright Dental",
     "invoiceDate": "2024-09-13", "dueDate": "2024-10-13", "invoiceAmount": 1200000},
    {"invoiceNumber": "0999", "customerNumber": "Total Wine & More",
     "customerName": "Total Wine & More", "invoiceDate": "2024-09-20", "dueDate": "2024-09-20",
     "invoiceAmount": -2500},
]  # fmt: skip


@pytest.mark.parametrize("preset", [None, "quickbooks-online"])
@pytest.mark.parametrize("rows", [QBO_AGING, QBO_INVOICE_LIST_OLD], ids=["aging", "old-list"])
def test_quickbooks_report_uploads_without_edits(tmp_path, preset, rows):
    source = write_quoted_csv(tmp_path / "report.csv", rows)
    suggestion = suggest(source, INVOICES, preset=preset)
    assert suggestion.todo == [], suggestion.toml
    assert suggestion.mapping.input.header_row == 5
    assert suggestion.mapping.fields["invoiceDate"].formats == ("%m/%d/%Y",)
    written(suggestion, tmp_path)
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert project(payloads, *QBO_EXPECTED[0]) == QBO_EXPECTED


def test_quickbooks_contact_list_uploads_without_edits(tmp_path):
    source = write_quoted_csv(
        tmp_path / "contacts.csv",
        [
            ["Acme Widgets LLC"],
            ["Customer Contact List"],
            [""],
            ["Customer full name", "Phone numbers", "Email", "Full name", "Bill address"],
            ["Bright Dental", "Phone: (555) 010-2000", "office@brightdental.example", "Dana Bright",
             "12 Main St, Springfield"],
            ["Cole Farms", "", "ap@colefarms.example", "Sam Cole", ""],
            ["Total Wine & More", "", "ar@totalwine.example", "", ""],
            [""],
            [""],
            ["Wednesday, November 20, 2024 09:15 AM GMT-08:00"],
        ],
    )  # fmt: skip
    for preset in (None, "quickbooks-online"):
        suggestion = suggest(source, CUSTOMERS, preset=preset)
        payloads, rejected, _ = dry_run(suggestion, source)
        assert rejected == [], suggestion.toml
        assert payloads == [
            {"emailaddress1": "office@brightdental.example", "companyname": "Bright Dental",
             "phoneno": "Phone: (555) 010-2000", "customerno": "Bright Dental"},
            {"emailaddress1": "ap@colefarms.example", "companyname": "Cole Farms",
             "customerno": "Cole Farms"},
            {"emailaddress1": "ar@totalwine.example", "companyname": "Total Wine & More",
             "customerno": "Total Wine & More"},
        ]  # fmt: skip


# --- Xero: SalesInvoices.csv (one row per line), Contacts.csv, dd/mm/yyyy -----------------------

XERO_INVOICE_HEADER = [
    "ContactName", "EmailAddress", "POAddressLine1", "POCity", "POPostalCode", "InvoiceNumber",
    "Reference", "InvoiceDate", "DueDate", "Total", "TaxTotal", "InvoiceAmountPaid",
    "InvoiceAmountDue", "InventoryItemCode", "Description", "Quantity", "UnitAmount", "Discount",
    "LineAmount", "AccountCode", "TaxType", "TaxAmount", "Currency", "Type", "Sent", "Status",
]  # fmt: skip


def xero_line(contact, number, ref, date, due, total, due_amount, text, qty, unit, line, tax):
    return [
        contact, f"ap@{contact.split()[0].lower()}.example", "1 High St", "Leeds", "LS1 1AA",
        number, ref, date, due, total, "", "0.00", due_amount, "", text, qty, unit, "", line,
        "200", "20% (VAT on Income)", tax, "GBP", "Sales invoice", "Sent", "AUTHORISED",
    ]  # fmt: skip


XERO_INVOICES = [
    XERO_INVOICE_HEADER,
    xero_line("Bright Dental", "INV-0001", "PO 77", "05/11/2024", "05/12/2024", "1380.00",
              "1380.00", "Consulting", "5", "200.00", "1000.00", "200.00"),
    xero_line("Bright Dental", "INV-0001", "PO 77", "05/11/2024", "05/12/2024", "1380.00",
              "1380.00", "Travel", "1", "150.00", "150.00", "30.00"),
    xero_line("Cole Farms", "INV-0002", "", "20/11/2024", "20/12/2024", "90.60", "40.60",
              "Seeds", "3", "25.17", "75.50", "15.10"),
]  # fmt: skip
XERO_EXPECTED = [
    {"customerNumber": "Bright Dental", "customerName": "Bright Dental",
     "invoiceNumber": "INV-0001", "reference1": "PO 77", "invoiceDate": "2024-11-05",
     "dueDate": "2024-12-05", "invoiceAmount": 138000, "balanceAmount": "1380.00",
     "currency": "GBP", "status": "AUTHORISED", "documentType": "Sales invoice"},
    {"customerNumber": "Cole Farms", "customerName": "Cole Farms", "invoiceNumber": "INV-0002",
     "invoiceDate": "2024-11-20", "dueDate": "2024-12-20", "invoiceAmount": 9060,
     "balanceAmount": "40.60", "currency": "GBP", "status": "AUTHORISED",
     "documentType": "Sales invoice"},
]  # fmt: skip
XERO_LEFT_OUT = (
    "left out what differs between the lines of an invoice (its lines are sent as one record): "
    "itemText ('Description')"
)


def without_column(rows: list[list[str]], label: str) -> list[list[str]]:
    drop = rows[0].index(label)
    return [row[:drop] + row[drop + 1 :] for row in rows]


@pytest.mark.parametrize("preset", [None, "xero"])
def test_xero_sales_invoice_lines_collapse_into_one_invoice_with_its_total(tmp_path, preset):
    source = write_csv(tmp_path / "SalesInvoices.csv", XERO_INVOICES)
    suggestion = suggest(source, INVOICES, preset=preset)
    assert suggestion.todo == [], suggestion.toml
    fields = suggestion.mapping.fields
    assert suggestion.mapping.key == ("invoiceNumber",)
    assert fields["invoiceDate"].formats == ("%d/%m/%Y",)
    assert fields["invoiceAmount"].column == "Total"
    assert fields["invoiceAmount"].scale == 100
    assert "itemText" not in fields
    assert "lineItem" not in fields
    assert XERO_LEFT_OUT in suggestion.notes
    assert '\n# itemText = "Description"   # left out: it differs between the lines' in (
        suggestion.toml
    )
    assert written(suggestion, tmp_path).fields == fields
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert payloads == XERO_EXPECTED  # the second INV-0001 line is the same record: merged
    assert sum(result.rows_merged for result in validated(suggestion, source)) == 1


@pytest.mark.parametrize("preset", [None, "xero"])
def test_xero_lines_without_an_invoice_total_are_summed_per_invoice(tmp_path, preset):
    source = write_csv(tmp_path / "SalesInvoices.csv", without_column(XERO_INVOICES, "Total"))
    suggestion = suggest(source, INVOICES, preset=preset)
    assert suggestion.todo == [], suggestion.toml
    assert suggestion.mapping.key == ("invoiceNumber",)
    assert suggestion.mapping.fields["invoiceAmount"].sum == "LineAmount"
    assert "itemText" not in suggestion.mapping.fields
    assert XERO_LEFT_OUT in suggestion.notes
    payloads, rejected, _ = dry_run(suggestion, source)
    assert [(p["invoiceNumber"], p["invoiceAmount"]) for p in payloads] == [
        ("INV-0001", 115000),  # 1000.00 + 150.00
        ("INV-0002", 7550),
    ]
    assert rejected == []


@pytest.mark.parametrize("preset", [None, "xero"])
def test_xero_contacts_link_by_contact_name(tmp_path, preset):
    source = write_csv(
        tmp_path / "Contacts.csv",
        [
            ["*ContactName", "AccountNumber", "EmailAddress", "FirstName", "LastName",
             "POAddressLine1", "PhoneNumber", "MobileNumber"],
            ["Bright Dental", "", "office@brightdental.example", "Dana", "Bright", "1 High St",
             "0113 496 0000", ""],
            ["Cole Farms", "CF-01", "ap@colefarms.example", "Sam", "Cole", "", "", "07700 900123"],
        ],
    )  # fmt: skip
    suggestion = suggest(source, CUSTOMERS, preset=preset)
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == [], suggestion.toml
    assert project(payloads, "customerno", "companyname", "firstname", "lastname") == [
        {"customerno": "Bright Dental", "companyname": "Bright Dental", "firstname": "Dana",
         "lastname": "Bright"},
        {"customerno": "Cole Farms", "companyname": "Cole Farms", "firstname": "Sam",
         "lastname": "Cole"},
    ]  # fmt: skip
    assert payloads[0]["phoneno"] == "0113 496 0000"


# --- NetSuite: open-invoice saved search, M/D/YYYY unpadded ------------------------------------

NETSUITE_HEADER = [
    "Document Number", "Name", "Date", "Due Date/Receive By", "Amount", "Amount Remaining",
    "Currency", "Status", "Terms",
]  # fmt: skip
NETSUITE_EXPECTED = [
    {"invoiceNumber": "INV10234", "customerNumber": "1042 Bright Dental",
     "invoiceDate": "2024-01-05", "dueDate": "2024-02-04", "invoiceAmount": 128450,
     "currency": "USD", "status": "Open", "paymentTerms": "Net 30"},
    {"invoiceNumber": "INV10235", "customerNumber": "1043 Cole Farms",
     "invoiceDate": "2024-03-15", "dueDate": "2024-04-14", "invoiceAmount": 75000,
     "currency": "USD", "status": "Open", "paymentTerms": "Net 30"},
    {"invoiceNumber": "INV10236", "customerNumber": "1042 Bright Dental",
     "invoiceDate": "2024-11-02", "dueDate": "2024-12-02", "invoiceAmount": 1999,
     "currency": "USD", "status": "Open", "paymentTerms": "Net 30"},
]  # fmt: skip


@pytest.mark.parametrize("preset", [None, "netsuite"])
def test_netsuite_csv_with_unpadded_dates_uploads_without_edits(tmp_path, preset):
    source = write_csv(
        tmp_path / "OpenInvoices.csv",
        [
            NETSUITE_HEADER,
            ["INV10234", "1042 Bright Dental", "1/5/2024", "2/4/2024", "1,284.50", "1,284.50",
             "USD", "Open", "Net 30"],
            ["INV10235", "1043 Cole Farms", "3/15/2024", "4/14/2024", "750.00", "250.00", "USD",
             "Open", "Net 30"],
            ["INV10236", "1042 Bright Dental", "11/2/2024", "12/2/2024", "19.99", "19.99", "USD",
             "Open", "Net 30"],
        ],
    )  # fmt: skip
    suggestion = suggest(source, INVOICES, preset=preset)
    assert suggestion.mapping.fields["invoiceDate"].formats == ("%m/%d/%Y",)
    written(suggestion, tmp_path)
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert project(payloads, *NETSUITE_EXPECTED[0]) == NETSUITE_EXPECTED
    assert payloads[1]["balanceAmount"] == "250.00"


@pytest.mark.parametrize("preset", [None, "netsuite"])
def test_netsuite_xlsx_with_date_and_number_cells_uploads_without_edits(tmp_path, preset):
    source = write_xlsx(
        tmp_path / "OpenInvoices.xlsx",
        [
            ["Open Invoices"],
            [],
            NETSUITE_HEADER,
            ["INV10234", "1042 Bright Dental", dt.datetime(2024, 1, 5), dt.datetime(2024, 2, 4),
             1284.5, 1284.5, "USD", "Open", "Net 30"],
            ["INV10235", "1043 Cole Farms", dt.datetime(2024, 3, 15), dt.datetime(2024, 4, 14),
             750, 250, "USD", "Open", "Net 30"],
            ["INV10236", "1042 Bright Dental", dt.datetime(2024, 11, 2), dt.datetime(2024, 12, 2),
             19.99, 19.99, "USD", "Open", "Net 30"],
        ],
        sheet="Results",
    )  # fmt: skip
    suggestion = suggest(source, INVOICES, preset=preset)
    assert suggestion.mapping.input.header_row == 3
    assert suggestion.mapping.fields["invoiceAmount"].scale == 100
    written(suggestion, tmp_path)
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert project(payloads, *NETSUITE_EXPECTED[0]) == NETSUITE_EXPECTED


# --- inference in detail ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (["01/02/2024", "03/04/2024", "05/06/2024"], "%m/%d/%Y"),
        (["01.02.2024", "03.04.2024", "05.06.2024"], "%d.%m.%Y"),
        (["01-02-2024", "03-04-2024"], "%d-%m-%Y"),
    ],
)
def test_undecidable_day_month_order_is_guessed_and_flagged(tmp_path, dates, expected):
    rows = [["Customer", "Invoice", "Amount", "Invoice Date"]]
    rows += [["C1", f"I{i}", "10", d] for i, d in enumerate(dates)]
    source = write_csv(tmp_path / "in.csv", rows)
    suggestion = suggest(source, INVOICES)
    assert suggestion.mapping.fields["invoiceDate"].formats == (expected,)
    assert "# confirm: day/month order could not be decided from the data" in suggestion.toml
    assert any("day/month order" in note for note in suggestion.notes)
    assert dry_run(suggestion, source)[1] == []


def test_a_column_whose_order_is_clear_decides_the_others(tmp_path):
    source = write_csv(
        tmp_path / "in.csv",
        [
            ["Customer", "Invoice", "Amount", "Invoice Date", "Due Date"],
            ["C1", "I1", "10", "01/02/2024", "25/02/2024"],
            ["C1", "I2", "10", "03/04/2024", "03/05/2024"],
        ],
    )
    suggestion = suggest(source, INVOICES)
    assert suggestion.mapping.fields["invoiceDate"].formats == ("%d/%m/%Y",)
    assert suggestion.mapping.fields["dueDate"].formats == ("%d/%m/%Y",)
    assert "confirm" not in suggestion.toml
    assert suggestion.notes == []


def test_amount_separators_signs_and_scale_are_inferred(tmp_path):
    source = write_csv(
        tmp_path / "in.csv",
        [
            ["Kundennummer", "Rechnungsnummer", "Rechnungsbetrag", "Rechnungsdatum"],
            ["K1", "R1", "1.234,5", "31.12.2024"],
            ["K1", "R2", "(2.000,00)", "01.01.2025"],
            ["K2", "R3", "EUR 7,25-", "02.01.2025"],
        ],
        delimiter=";",
    )
    suggestion = suggest(source, INVOICES)
    amount = suggestion.mapping.fields["invoiceAmount"]
    assert (amount.decimal, amount.thousands, amount.scale) == (",", ".", 100)
    assert "read as negative" in suggestion.toml
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert [p["invoiceAmount"] for p in payloads] == [123450, -200000, -725]
    assert [p["invoiceDate"] for p in payloads] == ["2024-12-31", "2025-01-01", "2025-01-02"]


def test_whole_amounts_get_no_scale(tmp_path):
    source = write_csv(
        tmp_path / "in.csv",
        [["Customer", "Invoice", "Amount"], ["C", "1", "1,200"], ["C", "2", "35"]],
    )
    suggestion = suggest(source, INVOICES)
    assert suggestion.mapping.fields["invoiceAmount"].scale == 1
    assert "cents" not in suggestion.toml
    assert [p["invoiceAmount"] for p in dry_run(suggestion, source)[0]] == [1200, 35]


def test_three_decimals_scale_by_a_thousand_with_a_note(tmp_path):
    source = write_csv(
        tmp_path / "in.csv",
        [["Customer", "Invoice", "Amount"], ["C", "1", "12.345"], ["C", "2", "0.5"]],
    )
    suggestion = suggest(source, INVOICES)
    assert suggestion.mapping.fields["invoiceAmount"].scale == 1000
    assert any("3 decimals" in note for note in suggestion.notes)
    assert [p["invoiceAmount"] for p in dry_run(suggestion, source)[0]] == [12345, 500]


def test_missing_required_field_is_a_todo_line_and_no_mapping(tmp_path):
    source = write_csv(tmp_path / "in.csv", [["Customer", "Invoice"], ["C", "1"]])
    suggestion = suggest(source, INVOICES)
    assert suggestion.todo == ["invoiceAmount"]
    assert suggestion.mapping is None
    assert '# TODO invoiceAmount = "..."' in suggestion.toml
    section = tomllib.loads(suggestion.toml)["invoices"]
    assert section["fields"] == {"customerNumber": "Customer", "invoiceNumber": "Invoice"}


def test_odd_headers_round_trip_through_toml(tmp_path):
    header = 'Betrag "netto" \\ €'
    source = write_csv(
        tmp_path / "in.csv",
        [["Kunde", "Rechnung", header, "Text\x7f"], ["K", "R", "5", "x"]],
    )
    suggestion = suggest(source, INVOICES)
    fields = tomllib.loads(suggestion.toml)["invoices"]["fields"]
    assert fields["invoiceAmount"] == header
    assert fields["itemText"] == "Text\x7f"
    assert written(suggestion, tmp_path).fields == suggestion.mapping.fields
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert payloads == [
        {"customerNumber": "K", "invoiceNumber": "R", "invoiceAmount": 5, "itemText": "x"}
    ]


def test_header_is_found_below_title_rows_on_the_best_sheet(tmp_path):
    source = write_xlsx(
        tmp_path / "book.xlsx",
        [["Notes"], ["exported by hand"]],
        sheet="Cover",
        extra=[
            (
                "Open Items",
                [
                    ["Open items as of 2024-11-30"],
                    [],
                    ["Customer No", "Invoice No", "Invoice Date", "Amount"],
                    ["010001", "A-1", dt.datetime(2024, 11, 3), 10.5],
                    ["010002", "A-2", "2024-11-04", 3],
                ],
            )
        ],
    )
    suggestion = suggest(source, INVOICES)
    assert suggestion.mapping.input.sheet == "Open Items"
    assert suggestion.mapping.input.header_row == 3
    assert 'sheet = "Open Items"' in suggestion.toml
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert project(payloads, "customerNumber", "invoiceDate", "invoiceAmount") == [
        {"customerNumber": "010001", "invoiceDate": "2024-11-03", "invoiceAmount": 1050},
        {"customerNumber": "010002", "invoiceDate": "2024-11-04", "invoiceAmount": 300},
    ]


def test_a_preset_format_the_data_contradicts_gives_way_with_a_note(tmp_path):
    source = write_csv(
        tmp_path / "in.csv",
        [NETSUITE_HEADER, ["INV1", "Cole", "25/12/2024", "24/01/2025", "5.00", "5.00", "USD",
                           "Open", "Net 30"]],
    )  # fmt: skip
    suggestion = suggest(source, INVOICES, preset="netsuite")
    assert suggestion.mapping.fields["invoiceDate"].formats == ("%d/%m/%Y",)
    assert any("preset's format" in note for note in suggestion.notes)
    assert dry_run(suggestion, source)[1] == []


AMOUNT_PER_LINE = (
    "invoiceAmount ('Amount') differs between the lines of an invoice and no column holds the "
    "invoice's total: every line after an invoice's first will be rejected as duplicate_key "
    "unless the amounts are summed per invoice"
)


def test_adjacent_lines_of_an_invoice_without_a_total_are_summed(tmp_path):
    source = write_csv(
        tmp_path / "in.csv",
        [["Customer", "Invoice", "Amount"], ["C", "1", "5"], ["C", "1", "6"], ["C", "2", "7"]],
    )
    suggestion = suggest(source, INVOICES)
    assert suggestion.mapping.key == ("invoiceNumber",)
    assert suggestion.mapping.fields["invoiceAmount"].sum == "Amount"
    assert (
        'invoiceAmount = { sum = "Amount" }   # the sum of the invoice\'s lines: no column holds '
        "its total"
    ) in suggestion.toml
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert project(payloads, "invoiceNumber", "invoiceAmount") == [
        {"invoiceNumber": "1", "invoiceAmount": 11},
        {"invoiceNumber": "2", "invoiceAmount": 7},
    ]


def test_lines_of_an_invoice_apart_from_each_other_keep_the_line_amount_with_a_note(tmp_path):
    source = write_csv(
        tmp_path / "in.csv",
        [["Customer", "Invoice", "Amount"], ["C", "1", "5"], ["C", "2", "7"], ["C", "1", "6"]],
    )
    suggestion = suggest(source, INVOICES)
    assert suggestion.mapping.key == ("invoiceNumber",)
    assert AMOUNT_PER_LINE in suggestion.notes
    assert 'invoiceAmount = "Amount"   # differs from line to line' in suggestion.toml
    assert dry_run(suggestion, source)[1] == ['row 4: invoiceNumber: "1" repeats the key of row 2']


def test_a_line_number_column_is_left_out_and_the_key_stays_the_invoice(tmp_path):
    source = write_csv(
        tmp_path / "in.csv",
        [
            ["Customer", "Invoice", "Line", "Amount"],
            ["C", "1", "1", "5"],
            ["C", "1", "2", "6"],
            ["C", "2", "1", "7"],
        ],
    )
    suggestion = suggest(source, INVOICES)
    assert suggestion.mapping.key == ("invoiceNumber",)
    assert "lineItem" not in suggestion.mapping.fields
    assert (
        "left out what differs between the lines of an invoice (its lines are sent as one "
        "record): lineItem ('Line')"
    ) in suggestion.notes
    assert '\n# lineItem = "Line"   # left out' in suggestion.toml
    assert suggestion.mapping.fields["invoiceAmount"].sum == "Amount"


def test_an_invoice_total_is_preferred_to_the_line_amount_a_label_picked(tmp_path):
    source = write_csv(
        tmp_path / "in.csv",
        [
            ["Kunde", "Rechnungsnummer", "Betrag", "Rechnungsbetrag", "Positionstext"],
            ["K1", "R1", "10,00", "15,00", "Wartung"],
            ["K1", "R1", "5,00", "15,00", "Anfahrt"],
            ["K2", "R2", "7,50", "7,50", "Teile"],
        ],
        delimiter=";",
    )
    suggestion = suggest(source, INVOICES)
    amount = suggestion.mapping.fields["invoiceAmount"]
    assert amount.column == "Rechnungsbetrag"
    assert (amount.decimal, amount.scale) == (",", 100)
    assert "not 'Betrag', which differs from line to line" in suggestion.toml
    assert "itemText" not in suggestion.mapping.fields
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert payloads == [
        {"customerNumber": "K1", "invoiceNumber": "R1", "invoiceAmount": 1500},
        {"customerNumber": "K2", "invoiceNumber": "R2", "invoiceAmount": 750},
    ]


def test_repeated_customers_that_differ_are_told_apart_from_those_that_merge(tmp_path):
    source = write_csv(
        tmp_path / "customers.csv",
        [
            ["Customer Number", "Email", "Phone"],
            ["C1", "a@c1.example", "1"],
            ["C1", "a@c1.example", "1"],
            ["C1", "a@c1.example", "2"],
        ],
    )
    suggestion = suggest(source, CUSTOMERS)
    assert (
        "2 row(s) in the first 3 repeat the customerno of an earlier row: 1 with the same values "
        "merge into it (sent once); 1 with other values will be rejected as duplicate_key"
    ) in suggestion.notes


def test_presets_are_listed_and_unknown_ones_name_the_choices():
    names = dict(list_presets())
    assert set(names) >= {"sap-fbl5n", "quickbooks-online", "xero", "netsuite"}
    assert all(names.values())
    assert "invoices" in load_preset("sap-fbl5n")
    with pytest.raises(MappingError, match="sap-fbl5n"):
        load_preset("sap")
    with pytest.raises(MappingError, match="no \\[customers\\] section"):
        suggest(DATA / "ibm_accounts_receivable.csv", CUSTOMERS, preset="sap-fbl5n")


def test_every_preset_section_is_a_valid_mapping_once_columns_are_picked():
    for name, _ in list_presets():
        for kind_name, section in load_preset(name).items():
            if not isinstance(section, dict):
                continue
            kind = PAYORCRM.kind(kind_name)
            fields = {}
            for field_name, spec in section["fields"].items():
                if isinstance(spec, dict):
                    spec = dict(spec)
                    column = spec.get("column")
                    if isinstance(column, list):
                        spec["column"] = column[0]
                elif isinstance(spec, list):
                    spec = spec[0]
                fields[field_name] = spec
            skip = [
                {**r, "column": r["column"][0]} if isinstance(r.get("column"), list) else r
                for r in section.get("skip", [])
            ]
            mapping.parse_mapping({**section, "fields": fields, "skip": skip}, kind, name)


def test_total_rows_are_skipped_but_a_customer_called_total_is_not(tmp_path):
    source = write_csv(
        tmp_path / "balances.csv",
        [
            ["Customer", "Date", "Num", "Amount"],
            ["Total Wine & More", "10/01/2024", "1001", "5.00"],
            ["Total for Total Wine & More", "", "", "5.00"],
            ["Cole Farms", "10/02/2024", "1002", "6.00"],
            ["Total for Cole Farms", "", "", "6.00"],
            ["TOTAL", "", "", "11.00"],
        ],
    )
    suggestion = suggest(source, INVOICES)
    payloads, rejected, skipped = dry_run(suggestion, source)
    assert rejected == []
    assert skipped == 3
    assert [p["customerNumber"] for p in payloads] == ["Total Wine & More", "Cole Farms"]


def test_report_sample_gets_skip_rules_for_group_headings_and_totals(tmp_path):
    source = Path(__file__).resolve().parents[1] / "sample_data" / "open_items_report.csv"
    suggestion = suggest(source, INVOICES)
    assert suggestion.mapping.input.header_row == 4
    assert suggestion.mapping.input.delimiter == ";"  # not fooled by 6,337.07 or the title
    patterns = {rule.pattern for rule in suggestion.mapping.skip}
    assert r"^Customer\b" in patterns
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert len(payloads) == 24
    assert payloads[0]["invoiceAmount"] == 633707
    assert payloads[0]["customerName"] == "Müller Metallbau GmbH"


def test_a_column_named_like_a_date_whose_values_are_not_is_left_out_with_a_note(tmp_path):
    source = write_csv(
        tmp_path / "in.csv",
        [["Customer", "Invoice", "Amount", "Invoice Date"], ["C", "1", "5", "45292"]],
    )
    suggestion = suggest(source, INVOICES)
    assert "invoiceDate" not in suggestion.mapping.fields
    assert any("'Invoice Date'" in note and "not dates" in note for note in suggestion.notes)


def test_unknown_labels_below_a_title_still_give_the_header_row(tmp_path):
    source = write_csv(
        tmp_path / "in.csv",
        [["Export 2024"], ["Alpha", "Beta", "Gamma"], ["1", "2", "3"], ["4", "5", "6"]],
    )
    suggestion = suggest(source, INVOICES)
    assert "header_row = 2" in suggestion.toml
    assert suggestion.todo == ["customerNumber", "invoiceNumber", "invoiceAmount"]
    assert "# TODO customerNumber" in suggestion.toml
    assert '"Alpha", "Beta", "Gamma"' in suggestion.toml  # listed for the user to map


def test_given_input_options_are_used_and_written(tmp_path):
    source = tmp_path / "in.txt"
    source.write_bytes("Kunde|Rechnung|Betrag\nÄ;1|R1|5\n".encode("cp1252"))
    options = readers.InputOptions(encoding="cp1252", delimiter="|")
    suggestion = suggest(source, INVOICES, options)
    assert 'encoding = "cp1252"' in suggestion.toml
    assert 'delimiter = "|"' in suggestion.toml
    payloads, rejected, _ = dry_run(suggestion, source)
    assert rejected == []
    assert payloads[0]["customerNumber"] == "Ä;1"
