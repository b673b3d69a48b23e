"""`payor init` picks a field's column by what the label means in the vendor's export."""

from __future__ import annotations

import codecs
from pathlib import Path

from conftest import write_csv
from infer_helpers import dry_run_written, init

FBL5N_GERMAN = [
    "Debitoren Einzelpostenliste",
    "",
    "Buchungskreis\tKonto\tBelegnummer\tReferenz\tBelegart\tBuchungsdatum\tNettofälligkeit\t"
    "Betrag in Hauswährung\tHauswährung",
    "1000\t100017\t1800000012\t90004711\tRV\t15.11.2024\t15.12.2024\t1.234,56\tEUR",
    "1000\t100020\t1800000013\t90004712\tRV\t31.12.2024\t30.01.2025\t99,00-\tEUR",
]
FBL5N_ENGLISH = [
    "Customer Line Item Display",
    "",
    "\tCompany Code\tAccount\tDocument Number\tReference\tDocument Type\tPosting Date\t"
    "Net due date\tAmount in local currency\tLocal Currency",
    "\t1000\t100017\t1800000012\t90004711\tRV\t15.11.2024\t15.12.2024\t1.234,56\tEUR",
    "\t1000\t100020\t1800000013\t90004712\tRV\t31.12.2024\t30.01.2025\t99,00-\tEUR",
]
FBL5N_PAYLOADS = [
    {"companyCode": "1000", "customerNumber": "100017", "accountingDocNumber": "1800000012",
     "invoiceNumber": "90004711", "documentType": "RV", "postDate": "2024-11-15",
     "dueDate": "2024-12-15", "invoiceAmount": 123456, "currency": "EUR"},
    {"companyCode": "1000", "customerNumber": "100020", "accountingDocNumber": "1800000013",
     "invoiceNumber": "90004712", "documentType": "RV", "postDate": "2024-12-31",
     "dueDate": "2025-01-30", "invoiceAmount": -9900, "currency": "EUR"},
]  # fmt: skip


def write_fbl5n(path: Path, lines: list[str]) -> Path:
    path.write_bytes(codecs.BOM_UTF16_LE + "\r\n".join(lines).encode("utf-16-le"))
    return path


def test_fbl5n_german_reference_is_the_invoice_number_and_the_document_the_accounting_one(
    tmp_path, payor
):
    source = write_fbl5n(tmp_path / "FBL5N.txt", FBL5N_GERMAN)
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["invoiceNumber"] == "Referenz"
    assert made.fields["accountingDocNumber"] == "Belegnummer"
    assert made.fields["customerNumber"] == "Konto"
    assert "reference1" not in made.fields
    assert made.line("invoiceNumber").startswith(
        'invoiceNumber = "Referenz"   # Referenz: the billing document number'
    )
    assert made.line("invoiceNumber").endswith("; Belegnummer -> accountingDocNumber")
    code, payloads, rejected = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, rejected) == (0, [])
    assert payloads == FBL5N_PAYLOADS


def test_fbl5n_english_reference_is_the_invoice_number(tmp_path, payor):
    source = write_fbl5n(tmp_path / "FBL5N.xls", FBL5N_ENGLISH)
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["invoiceNumber"] == "Reference"
    assert made.fields["accountingDocNumber"] == "Document Number"
    assert made.line("invoiceNumber").endswith("; Document Number -> accountingDocNumber")
    code, payloads, rejected = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, rejected) == (0, [])
    assert payloads == FBL5N_PAYLOADS


def test_a_document_number_without_sap_marks_stays_the_invoice_number(tmp_path, payor):
    # NetSuite's Document Number is the invoice's own number: a Reference beside it is not
    source = write_csv(
        tmp_path / "open.csv",
        [
            ["Document Number", "Reference", "Name", "Date", "Amount"],
            ["INV10234", "PO-1", "Bright Dental", "01/05/2024", "1284.50"],
            ["INV10235", "PO-2", "Cole Farms", "03/15/2024", "750.00"],
        ],
    )
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["invoiceNumber"] == "Document Number"
    assert made.fields["reference1"] == "Reference"
    assert "accountingDocNumber" not in made.fields


XERO_WITH_CONTACT_NUMBER = [
    ["ContactName", "ContactNumber", "EmailAddress", "InvoiceNumber", "Reference", "InvoiceDate",
     "DueDate", "Total", "AccountCode", "Currency"],
    ["Bright Dental", "C-1042", "ap@bright.example", "INV-0001", "PO 77", "05/11/2024",
     "05/12/2024", "1380.00", "200", "GBP"],
    ["Cole Farms", "C-1043", "ap@cole.example", "INV-0002", "", "20/11/2024", "20/12/2024",
     "90.60", "200", "GBP"],
]  # fmt: skip


def test_xero_contact_number_is_the_customer_number_and_the_name_its_name(tmp_path, payor):
    source = write_csv(tmp_path / "SalesInvoices.csv", XERO_WITH_CONTACT_NUMBER)
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["customerNumber"] == "ContactNumber"
    assert made.fields["customerName"] == "ContactName"
    # the ledger's AccountCode is not the customer's account
    assert "AccountCode" not in made.fields.values()
    assert made.line("customerNumber") == (
        "customerNumber = \"ContactNumber\"   # ContactNumber: codes, where 'ContactName' holds "
        "names; ContactName -> customerName"
    )
    code, payloads, rejected = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, rejected) == (0, [])
    assert payloads == [
        {"customerName": "Bright Dental", "customerNumber": "C-1042", "invoiceNumber": "INV-0001",
         "reference1": "PO 77", "invoiceDate": "2024-11-05", "dueDate": "2024-12-05",
         "invoiceAmount": 138000, "currency": "GBP"},
        {"customerName": "Cole Farms", "customerNumber": "C-1043", "invoiceNumber": "INV-0002",
         "invoiceDate": "2024-11-20", "dueDate": "2024-12-20", "invoiceAmount": 9060,
         "currency": "GBP"},
    ]  # fmt: skip


def test_a_name_column_is_the_customer_number_only_as_the_last_resort(tmp_path, payor):
    source = write_csv(
        tmp_path / "invoices.csv",
        [
            ["Kundenname", "Rechnungsnummer", "Betrag"],
            ["Müller GmbH", "R-1", "10.00"],
            ["Schmidt KG", "R-2", "20.00"],
        ],
    )
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["customerName"] == "Kundenname"
    assert made.fields["customerNumber"] == "Kundenname"
    assert "names, the last resort" in made.line("customerNumber")


def test_a_code_column_beats_a_name_column_for_the_customer_number(tmp_path, payor):
    # both labels could serve as the customer's identity; the codes are its number
    source = write_csv(
        tmp_path / "invoices.csv",
        [
            ["Customer", "Konto", "Invoice No", "Amount"],
            ["Bright Dental", "100017", "1001", "10.00"],
            ["Cole Farms", "100020", "1002", "20.00"],
        ],
    )
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["customerNumber"] == "Konto"
    assert made.fields["customerName"] == "Customer"
    code, payloads, _ = dry_run_written(payor, tmp_path, "invoices", source)
    assert code == 0
    assert [(p["customerNumber"], p["customerName"]) for p in payloads] == [
        ("100017", "Bright Dental"),
        ("100020", "Cole Farms"),
    ]
