"""`payor init` on exports shaped like those of other invoicing tools (Invoice Ninja, Akaunting,
Invoice2go, Zoho Books, Wave, Frappe Books): the columns their own importers take, found
from the file alone; then a dry run of what it wrote. Every file here is made by the test."""

from __future__ import annotations

import pytest
from conftest import write_csv
from infer_helpers import dry_run_written, init


def test_client_name_and_emailid_of_a_client_list(tmp_path, payor):
    source = write_csv(
        tmp_path / "clients.csv",
        [
            ["Client Name", "Contact First Name", "Contact Last Name", "EmailID", "Phone"],
            ["Acme Corp", "Wile", "Coyote", "wile@acme.test", "555-0100"],
            ["Globex Ltd", "Hank", "Scorpio", "hank@globex.test", "555-0101"],
        ],
    )
    made = init(payor, tmp_path, "customers", source)
    assert made.code == 0, made.text
    assert made.fields["emailaddress1"] == "EmailID"
    assert made.fields["companyname"] == "Client Name"
    assert made.fields["customerno"] == "Client Name"
    code, sent, refused = dry_run_written(payor, tmp_path, "customers", source)
    assert (code, refused) == (0, [])
    assert sent[0]["customerno"] == "Acme Corp" and sent[0]["emailaddress1"] == "wile@acme.test"
    bs = init(payor, tmp_path, "customers", source, "--target", "business-suite")
    assert bs.code == 0, bs.text
    assert bs.fields["account"] == "Client Name" and bs.fields["email"] == "EmailID"


def test_client_name_on_an_invoice_export_is_its_customer(tmp_path, payor):
    source = write_csv(
        tmp_path / "invoices.csv",
        [
            ["Invoice Number", "Client Name", "Invoice Date", "Amount"],
            ["INV-0001", "Acme Corp", "2021-01-28", "450.00"],
            ["INV-0002", "Globex Ltd", "2021-02-03", "990.00"],
        ],
    )
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["customerName"] == "Client Name"
    assert made.fields["customerNumber"] == "Client Name"
    code, sent, refused = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, refused) == (0, [])
    assert sent[1]["customerNumber"] == "Globex Ltd" and sent[1]["customerName"] == "Globex Ltd"


AKAUNTING = [
    ["document_number", "contact_name", "contact_email", "invoiced_at", "due_at", "amount"],
    ["INV-00001", "Acme Corp", "wile@acme.test", "2021-01-28", "2021-02-27", "450.00"],
    ["INV-00002", "Globex Ltd", "hank@globex.test", "2021-02-03", "2021-03-05", "450.00"],
]


def test_snake_case_erp_columns_are_read_by_their_words(tmp_path, payor):
    source = write_csv(tmp_path / "akaunting.csv", AKAUNTING)
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["invoiceNumber"] == "document_number"
    assert made.fields["invoiceDate"] == "invoiced_at"
    assert made.fields["dueDate"] == "due_at"
    assert "similar" not in made.line("dueDate")
    code, sent, refused = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, refused) == (0, [])
    assert sent[0]["dueDate"] == "2021-02-27" and sent[0]["invoiceDate"] == "2021-01-28"
    bs = init(payor, tmp_path, "invoices", source, "--target", "business-suite")
    assert bs.code == 0, bs.text
    assert bs.fields["customer"] == "contact_email"
    assert (bs.fields["date"], bs.fields["due_date"]) == ("invoiced_at", "due_at")


def test_an_issued_at_column_is_the_date_a_target_requires(tmp_path, payor):
    rows = [[c.replace("invoiced_at", "issued_at") for c in row] for row in AKAUNTING]
    source = write_csv(tmp_path / "akaunting.csv", rows)
    bs = init(payor, tmp_path, "invoices", source, "--target", "business-suite")
    assert bs.code == 0, bs.text
    assert bs.fields["date"] == "issued_at"
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["issueDate"] == "issued_at" and "similar" not in made.line("issueDate")


def test_a_details_column_of_invoice_numbers_is_the_invoice_number(tmp_path, payor):
    source = write_csv(
        tmp_path / "invoice2go.csv",
        [
            ["Client", "Details", "Date", "Due", "Total", "Paid", "Balance"],
            ["Acme Corp", "INV-1", "28-Jan-2021", "27-Feb-2021", "450.00", "0.00", "450.00"],
            ["Globex Ltd", "INV-2", "03-Feb-2021", "05-Mar-2021", "450.00", "450.00", "0.00"],
            ["Initech", "INV-3", "11-Feb-2021", "13-Mar-2021", "990.00", "0.00", "990.00"],
        ],
    )
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["invoiceNumber"] == "Details"
    assert "invoice numbers" in made.line("invoiceNumber")
    code, sent, refused = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, refused) == (0, [])
    assert [p["invoiceNumber"] for p in sent] == ["INV-1", "INV-2", "INV-3"]
    assert sent[0]["customerNumber"] == "Acme Corp" and sent[0]["customerName"] == "Acme Corp"


@pytest.mark.parametrize(
    ("dates", "fmt"),
    [
        (["Jan 28 2021", "Feb 03 2021", "Mar 13 2021"], "%b %d %Y"),
        (["28-Jan-2021", "03-Feb-2021", "13-Mar-2021"], "%d-%b-%Y"),
        (["January 28, 2021", "February 3, 2021", "March 13, 2021"], "%B %d, %Y"),
        (["28. Januar 2021", "3. Februar 2021", "13. März 2021"], "%d. %B %Y"),
    ],
)
def test_dates_with_month_names_get_their_format_from_the_values(tmp_path, payor, dates, fmt):
    rows = [["Invoice Date", "Invoice Number", "Customer Name", "Total"]]
    rows += [
        [d, f"INV-{i}", name, "10.00"] for i, (d, name) in enumerate(zip(dates, "ABC", strict=True))
    ]
    source = write_csv(tmp_path / "zoho.csv", rows)
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["invoiceDate"] == "Invoice Date"
    assert made.section["date_format"] == fmt
    code, sent, refused = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, refused) == (0, [])
    assert [p["invoiceDate"] for p in sent] == ["2021-01-28", "2021-02-03", "2021-03-13"]


WAVE = [
    ["AccountId", "Invoice Number", "Customer", "Invoice Date", "Account Name", "Line Amount",
     "Grand Total"],
    ["77001", "1001", "Acme Corp", "2021-01-28", "Sales", "300.00", "450.00"],
    ["77001", "1001", "Acme Corp", "2021-01-28", "Services", "150.00", "450.00"],
    ["77001", "1002", "Globex Ltd", "2021-02-03", "Sales", "450.00", "450.00"],
    ["77001", "1003", "Initech", "2021-02-11", "Accounts Receivable", "990.00", "990.00"],
    ["77001", "1004", "Umbrella", "2021-02-12", "Sales", "100.00", "100.00"],
]  # fmt: skip


def test_the_customer_varies_with_the_customer_and_not_within_an_invoice(tmp_path, payor):
    source = write_csv(tmp_path / "wave.csv", WAVE)
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["customerNumber"] == "Customer"
    assert made.fields["customerName"] == "Customer"
    assert "not 'AccountId' (one value on all 4 invoices)" in made.line("customerNumber")
    assert "not 'Account Name' (it differs between an invoice's lines)" in made.line(
        "customerNumber"
    )
    code, sent, refused = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, refused) == (0, [])
    assert [(p["customerNumber"], p["invoiceAmount"]) for p in sent] == [
        ("Acme Corp", 45000), ("Globex Ltd", 45000), ("Initech", 99000), ("Umbrella", 10000)
    ]  # fmt: skip
    bs = init(payor, tmp_path, "invoices", source, "--target", "business-suite")
    assert bs.code == 0, bs.text
    assert bs.fields["customer"] == "Customer"


def test_a_stated_grand_total_over_a_sum_of_a_mostly_empty_column(tmp_path, payor):
    source = write_csv(
        tmp_path / "lines.csv",
        [
            ["Invoice Number", "Customer", "Invoice Date", "Item", "Amount", "Grand Total"],
            ["INV-100", "Acme Corp", "2021-01-28", "Consulting", "", "450.00"],
            ["INV-100", "Acme Corp", "2021-01-28", "Support", "", "450.00"],
            ["INV-100", "Acme Corp", "2021-01-28", "Discount", "-50.00", "450.00"],
            ["INV-101", "Globex Ltd", "2021-02-03", "Consulting", "", "300.00"],
            ["INV-101", "Globex Ltd", "2021-02-03", "Travel", "", "300.00"],
            ["INV-102", "Initech", "2021-02-11", "Licence", "", "990.00"],
        ],
    )
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["invoiceAmount"] == {"column": "Grand Total", "scale": 100}
    code, sent, refused = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, refused) == (0, [])
    assert [p["invoiceAmount"] for p in sent] == [45000, 30000, 99000]


FRAPPE = [
    ["Customer", "Invoice No", "Posting Date", "Due Date", "Grand Total", "Currency"],
    ["customer", "name", "posting_date", "due_date", "grand_total", "currency"],
    ["Acme Corp", "ACC-SINV-2021-00001", "2021-01-28", "2021-02-27", "450.00", "USD"],
    ["Globex Ltd", "ACC-SINV-2021-00002", "2021-02-03", "2021-03-05", "450.00", "USD"],
    ["Initech", "ACC-SINV-2021-00003", "2021-02-11", "2021-03-13", "990.00", "USD"],
]


def test_a_row_of_labels_above_a_row_of_keys_takes_the_keys_as_the_header(tmp_path, payor):
    source = write_csv(tmp_path / "frappe.csv", FRAPPE)
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.section["header_row"] == 2
    assert made.fields["invoiceNumber"] == "name"
    assert made.fields["customerNumber"] == "customer"
    assert made.fields["invoiceAmount"] == {"column": "grand_total", "scale": 100}
    code, sent, refused = dry_run_written(payor, tmp_path, "invoices", source)
    assert (code, refused) == (0, [])
    assert [p["invoiceNumber"] for p in sent] == [f"ACC-SINV-2021-0000{i}" for i in (1, 2, 3)]
    assert sent[0]["dueDate"] == "2021-02-27"


def test_an_init_whose_own_dry_run_rejects_most_rows_says_so_and_exits_1(tmp_path, payor):
    # one customer number on every row, with other names: every row after the first repeats it
    rows = [["Customer No", "Name", "Email"]]
    rows += [["C-1", f"Name {i}", f"n{i}@example.test"] for i in range(6)]
    source = write_csv(tmp_path / "one_key.csv", rows)
    made = init(payor, tmp_path, "customers", source)
    assert made.code == 1, made.text
    assert "own dry run rejects 5 of the first 6 rows" in made.text
    assert "try it" not in made.text
    assert made.fields["customerno"] == "Customer No"  # the mapping is written all the same


def test_one_name_column_feeds_number_and_name_in_invoices_as_in_customers(tmp_path, payor):
    invoices = write_csv(
        tmp_path / "factures.csv",
        [["Nom du client", "Facture", "Montant"], ["Acme SARL", "F1", "10.00"],
         ["Globex SA", "F2", "12.00"]],
    )  # fmt: skip
    made = init(payor, tmp_path, "invoices", invoices)
    assert made.code == 0, made.text
    assert made.fields["customerName"] == made.fields["customerNumber"] == "Nom du client"
    code, sent, refused = dry_run_written(payor, tmp_path, "invoices", invoices)
    assert (code, refused) == (0, [])
    assert sent[0]["customerNumber"] == sent[0]["customerName"] == "Acme SARL"
    customers = write_csv(
        tmp_path / "clients.csv",
        [["Business Name", "Email"], ["Acme SARL", "a@acme.test"], ["Globex SA", "g@globex.test"]],
    )
    made = init(payor, tmp_path, "customers", customers)
    assert made.code == 0, made.text
    assert made.fields["customerno"] == made.fields["companyname"] == "Business Name"


def test_a_column_empty_in_every_row_is_not_said_to_be_empty_in_some(tmp_path, payor):
    source = write_csv(
        tmp_path / "invoices.csv",
        [
            ["Customer No", "Customer", "Invoice Number", "Amount"],
            ["", "C-100", "INV-1", "10.00"],
            ["", "C-200", "INV-2", "12.00"],
        ],
    )
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["customerNumber"] == "Customer"
    assert "not 'Customer No': it is empty in every row" in made.line("customerNumber")


def test_a_column_of_numbers_is_not_a_country(tmp_path, payor):
    source = write_csv(
        tmp_path / "customers.csv",
        [
            ["Company", "Email", "countryCode", "Country"],
            ["Acme Corp", "wile@acme.test", "391", "US"],
            ["Globex Ltd", "hank@globex.test", "406", "DE"],
        ],
    )
    for target in ("business-suite", "onlyoffice"):
        made = init(payor, tmp_path, "customers", source, "--target", target)
        assert made.code == 0, made.text
        assert made.fields["country"] == "Country"
    only_codes = write_csv(
        tmp_path / "codes.csv",
        [["Company", "Email", "countryCode"], ["Acme Corp", "wile@acme.test", "391"]],
    )
    made = init(payor, tmp_path, "customers", only_codes, "--target", "business-suite")
    assert made.code == 0, made.text
    assert "country" not in made.fields
    assert "'countryCode' is named like country, but its values are not words" in made.text


def test_the_labels_above_the_keys_name_their_columns_too(tmp_path, payor):
    rows = [FRAPPE[0], FRAPPE[1]] + [
        [r[0], r[1].rsplit("-", 1)[1], *r[2:]] for r in FRAPPE[2:]
    ]  # plain numbers: nothing in the values says which column holds the invoice's
    source = write_csv(tmp_path / "frappe.csv", rows)
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text
    assert made.fields["invoiceNumber"] == "name"
    assert "labelled 'Invoice No' in the row above" in made.line("invoiceNumber")
    assert made.fields["customerNumber"] == "customer"


def test_a_row_of_units_under_the_labels_is_not_taken_for_a_header(tmp_path, payor):
    source = write_csv(
        tmp_path / "units.csv",
        [
            ["Invoice", "Customer", "Amount", "Date"],
            ["number", "who", "EUR", "day"],
            *[[f"I{i}", f"C{i}", f"1{i}.00", f"2021-01-0{i}"] for i in range(1, 6)],
        ],
    )
    made = init(payor, tmp_path, "invoices", source)
    assert made.code == 0, made.text  # the row of units is one to reject, the header stays
    assert "header_row" not in made.section
    assert made.fields["invoiceNumber"] == "Invoice"
