"""`payor init --target business-suite` through the real CLI: PayorCRM's label knowledge serves
business-suite's field names, money gets decimal and thousands but never a scale, and the
mapping it writes dry-runs with no rejection. A PayorCRM init of the same files is as before."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from conftest import read_jsonl, write_csv

from payor_cli.check.mapping import load_mapping_file
from payor_cli.infer import suggest_mapping
from payor_cli.schema import Kind, fields_of
from payor_cli.targets import api_kinds, get_target
from payor_cli.targets.business_suite import spec as business_suite


def suggest(source, kind, *args, **kwargs):
    """`payor init`'s suggestion for `source`, for the target whose kind `kind` is."""
    return suggest_mapping(
        source, kind, *args, target=get_target(kind.target), apis=api_kinds(), **kwargs
    )


BS = ("--target", "business-suite")

CUSTOMERS = [
    ["Customer No", "Company", "E-mail", "Phone", "City"],
    ["10001", "Acme GmbH", "ar@acme.example", "+49 30 1234567", "Berlin"],
    ["10002", "Müller Metallbau GmbH", "buchhaltung@mueller.example", "+49 89 7654321", "München"],
    ["10003", "Beta AG", "billing@beta.example", "", "Köln"],
]

INVOICES = [
    ["Invoice No", "Customer", "E-mail", "Invoice Date", "Due Date", "Amount"],
    ["RE-1001", "Acme GmbH", "ar@acme.example", "15.01.2024", "14.02.2024", "1.234,56"],
    ["RE-1002", "Müller Metallbau GmbH", "buchhaltung@mueller.example", "20.01.2024",
     "19.02.2024", "99,00"],
    ["RE-1003", "Beta AG", "billing@beta.example", "31.01.2024", "", "12.345.678,9"],
]  # fmt: skip


def dry_run(payor, tmp_path: Path, kind: str, source: Path, mapping: Path, *target: str):
    """Dry-run with a mapping: (payload objects, payload lines as written, the report)."""
    payloads = tmp_path / f"{kind}-payloads.jsonl"
    report = tmp_path / f"{kind}-report.json"
    run = payor(
        "upload", kind, source, "--mapping", mapping, *target, "--dry-run",
        "--payloads", payloads, "--report-json", report,
    )  # fmt: skip
    assert run.code == 0, run.text
    lines = payloads.read_text(encoding="utf-8").splitlines()
    return read_jsonl(payloads), lines, json.loads(report.read_text())


def section_lines(toml: str, kind: str) -> list[str]:
    lines = toml.splitlines()
    start = lines.index(f"[{kind}]")
    return lines[start + 1 :]


def test_customers_init_then_dry_run(tmp_path, payor):
    source = write_csv(tmp_path / "customers.csv", CUSTOMERS)
    mapping = tmp_path / "m.toml"
    run = payor("init", "customers", source, *BS, "-o", mapping)
    assert run.code == 0, run.text
    text = mapping.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert list(data) == ["customers"]  # the kind's section only: no [api]
    assert section_lines(text, "customers")[0] == 'target = "business-suite"'
    assert "`payor schema --target business-suite customers` lists the fields" in text
    assert data["customers"]["fields"] == {
        "account": "Company",
        "email": "E-mail",
        "phone": "Phone",
        "city": "City",
    }
    assert data["customers"]["key"] == ["email"]
    loaded = load_mapping_file(mapping, business_suite.CUSTOMERS)
    assert loaded is not None
    assert [spec.field for spec in loaded.fields.values()] == ["account", "email", "phone", "city"]

    payloads, _, report = dry_run(payor, tmp_path, "customers", source, mapping, *BS)
    assert report["rows_rejected"] == 0
    assert report["rows_valid"] == 3
    assert payloads == [
        {"account": "Acme GmbH", "email": "ar@acme.example", "phone": "+49 30 1234567",
         "city": "Berlin"},
        {"account": "Müller Metallbau GmbH", "email": "buchhaltung@mueller.example",
         "phone": "+49 89 7654321", "city": "München"},
        {"account": "Beta AG", "email": "billing@beta.example", "city": "Köln"},
    ]  # fmt: skip


def test_invoices_init_then_dry_run_german_amounts_and_dates(tmp_path, payor):
    source = write_csv(tmp_path / "invoices.csv", INVOICES)
    mapping = tmp_path / "m.toml"
    run = payor("init", "invoices", source, *BS, "-o", mapping)
    assert run.code == 0, run.text
    text = mapping.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert list(data) == ["invoices"]
    assert section_lines(text, "invoices")[0] == 'target = "business-suite"'
    section = data["invoices"]
    assert section["date_format"] == "%d.%m.%Y"
    assert section["decimal"] == ","
    assert section["thousands"] == "."
    assert section["key"] == ["invoice_number"]
    # the customer by its e-mail, as business-suite finds it; money has no scale
    assert section["fields"] == {
        "invoice_number": "Invoice No",
        "customer": "E-mail",
        "date": "Invoice Date",
        "due_date": "Due Date",
        "amount": "Amount",
    }
    assert "scale" not in text
    assert "[invoices.lines]" not in text
    customer_line = next(line for line in text.splitlines() if line.startswith("customer ="))
    assert "e-mail or account name" in customer_line
    assert load_mapping_file(mapping, business_suite.INVOICES) is not None

    payloads, lines, report = dry_run(payor, tmp_path, "invoices", source, mapping, *BS)
    assert report["rows_rejected"] == 0
    assert report["rows_valid"] == 3
    assert payloads == [
        {"invoice_number": "RE-1001", "customer": "ar@acme.example", "date": "2024-01-15",
         "due_date": "2024-02-14",
         "items": [{"description": "RE-1001", "amount": 1234.56, "qty": 1}]},
        {"invoice_number": "RE-1002", "customer": "buchhaltung@mueller.example",
         "date": "2024-01-20", "due_date": "2024-02-19",
         "items": [{"description": "RE-1002", "amount": 99.0, "qty": 1}]},
        {"invoice_number": "RE-1003", "customer": "billing@beta.example", "date": "2024-01-31",
         "items": [{"description": "RE-1003", "amount": 12345678.9, "qty": 1}]},
    ]  # fmt: skip
    assert '"amount":99.00' in lines[1]  # money as written: exactly 2 decimals
    assert '"amount":12345678.90' in lines[2]


def test_invoices_without_an_email_column_take_the_customer_name_not_its_number(tmp_path, payor):
    source = write_csv(
        tmp_path / "invoices.csv",
        [
            ["Invoice No", "Customer No", "Customer", "Invoice Date", "Amount"],
            ["RE-1", "10001", "Acme GmbH", "15.01.2024", "1.234,56"],
            ["RE-2", "10002", "Beta AG", "16.01.2024", "7,50"],
        ],
    )
    mapping = tmp_path / "m.toml"
    assert payor("init", "invoices", source, *BS, "-o", mapping).code == 0
    fields = tomllib.loads(mapping.read_text(encoding="utf-8"))["invoices"]["fields"]
    assert fields == {
        "invoice_number": "Invoice No",
        "customer": "Customer",
        "date": "Invoice Date",
        "amount": "Amount",
    }
    payloads, _, report = dry_run(payor, tmp_path, "invoices", source, mapping, *BS)
    assert report["rows_rejected"] == 0
    assert [p["customer"] for p in payloads] == ["Acme GmbH", "Beta AG"]
    assert [p["items"][0]["amount"] for p in payloads] == [1234.56, 7.5]


def test_a_customer_number_is_the_last_resort_and_flagged(tmp_path, payor):
    source = write_csv(
        tmp_path / "invoices.csv",
        [
            ["Invoice No", "Customer No", "Invoice Date", "Amount"],
            ["RE-1", "10001", "15.01.2024", "5"],
        ],
    )
    run = payor("init", "invoices", source, *BS)
    assert run.code == 0, run.text
    line = next(line for line in run.out.splitlines() if line.startswith("customer ="))
    assert line.startswith('customer = "Customer No"   # check: these look like customer numbers')


def test_money_with_more_than_two_decimals_is_a_note_not_a_scale(tmp_path, payor):
    source = write_csv(
        tmp_path / "invoices.csv",
        [
            ["Invoice No", "E-mail", "Invoice Date", "Amount"],
            ["RE-1", "a@x.example", "2024-01-15", "10.125"],
            ["RE-2", "b@x.example", "2024-01-16", "3.5"],
        ],
    )
    run = payor("init", "invoices", source, *BS)
    assert run.code == 0, run.text
    assert "scale" not in run.out
    assert 'amount = "Amount"' in run.out
    assert "not amounts with at most 2 decimals" in run.err
    assert "'10.125'" in run.err


def test_a_preset_names_payorcrm_fields_and_business_suite_takes_them(tmp_path, payor):
    # netsuite's preset: invoiceAmount with scale = 100, US dates, 1,234.56
    source = write_csv(
        tmp_path / "netsuite.csv",
        [
            ["Document Number", "Name", "Date", "Due Date/Receive By", "Amount", "Status"],
            ["INV-7", "Acme Inc", "1/5/2024", "2/4/2024", "1,234.56", "Open"],
            ["INV-8", "Beta LLC", "1/15/2024", "2/14/2024", "20.00", "Open"],
        ],
    )
    mapping = tmp_path / "m.toml"
    run = payor("init", "invoices", source, *BS, "--preset", "netsuite", "-o", mapping)
    assert run.code == 0, run.text
    section = tomllib.loads(mapping.read_text(encoding="utf-8"))["invoices"]
    assert section["fields"] == {
        "invoice_number": "Document Number",
        "customer": "Name",
        "date": "Date",
        "due_date": "Due Date/Receive By",
        "amount": "Amount",
    }
    assert section["date_format"] == "%m/%d/%Y"
    payloads, _, report = dry_run(payor, tmp_path, "invoices", source, mapping, *BS)
    assert report["rows_rejected"] == 0
    assert [p["items"][0]["amount"] for p in payloads] == [1234.56, 20.0]
    assert [p["date"] for p in payloads] == ["2024-01-05", "2024-01-15"]


def test_payorcrm_init_of_the_same_files_is_unchanged(tmp_path, payor):
    customers = write_csv(tmp_path / "customers.csv", CUSTOMERS)
    invoices = write_csv(tmp_path / "invoices.csv", INVOICES)
    mapping = tmp_path / "crm.toml"
    assert payor("init", "customers", customers, "-o", mapping).code == 0
    assert payor("init", "invoices", invoices, "-o", mapping).code == 0
    text = mapping.read_text(encoding="utf-8")
    # the footer names the target even for the default one: the mapping is PayorCRM's only
    assert "`payor schema --target payorcrm customers` lists the fields" in text
    data = tomllib.loads(text)
    assert list(data) == ["customers", "invoices"]
    assert data["customers"]["fields"] == {
        "companyname": "Company",
        "phoneno": "Phone",
        "emailaddress1": "E-mail",
        "customerno": "Customer No",
    }
    assert data["customers"]["key"] == ["customerno"]
    assert data["invoices"]["fields"] == {
        "customerName": "Customer",
        "customerNumber": "Customer",
        "invoiceNumber": "Invoice No",
        "dueDate": "Due Date",
        "invoiceAmount": {"column": "Amount", "scale": 100},
        "invoiceDate": "Invoice Date",
    }
    assert data["invoices"]["decimal"] == ","
    assert data["invoices"]["thousands"] == "."

    payloads, _, report = dry_run(payor, tmp_path, "customers", customers, mapping)
    assert report["rows_rejected"] == 0
    assert payloads[0] == {
        "companyname": "Acme GmbH",
        "phoneno": "+49 30 1234567",
        "emailaddress1": "ar@acme.example",
        "customerno": "10001",
    }
    payloads, _, report = dry_run(payor, tmp_path, "invoices", invoices, mapping)
    assert report["rows_rejected"] == 0
    assert payloads[0] == {
        "customerName": "Acme GmbH",
        "customerNumber": "Acme GmbH",
        "invoiceNumber": "RE-1001",
        "dueDate": "2024-02-14",
        "invoiceAmount": 123456,
        "invoiceDate": "2024-01-15",
    }


def test_a_decimal_field_gets_separators_and_no_scale(tmp_path):
    kind = Kind(
        name="stock",
        path="/stock",
        fields=fields_of("sku! qty:decimal!"),
        key=("sku",),
        target="payorcrm",
    )
    source = write_csv(
        tmp_path / "stock.csv",
        [["sku", "qty"], ["A-1", "1.234,5"], ["A-2", "0,125"], ["A-3", "2.000,75"]],
    )
    suggestion = suggest(source, kind)
    assert suggestion.todo == []
    section = tomllib.loads(suggestion.toml)["stock"]
    assert section["decimal"] == ","
    assert section["thousands"] == "."
    assert section["fields"] == {"sku": "sku", "qty": "qty"}
    assert "scale" not in suggestion.toml
    assert suggestion.mapping is not None
    assert not [n for n in suggestion.notes if "rejects" in n]


def test_onlyoffice_init_names_its_fields_and_dry_runs_clean(payor, tmp_path):
    rows = [
        ["Invoice No", "Company", "E-mail", "Invoice Date", "Due Date", "Currency", "Terms", "Amount"],
        ["RE-1", "Acme GmbH", "ar@acme.example", "15.01.2024", "14.02.2024", "EUR", "30 days", "1.234,56"],
        ["RE-2", "Beta AG", "billing@beta.example", "20.01.2024", "19.02.2024", "USD", "14 days", "99,00"],
    ]  # fmt: skip
    source = write_csv(tmp_path / "oo.csv", rows)
    mapping = tmp_path / "oo.toml"
    run = payor("init", "invoices", source, "--target", "onlyoffice", "-o", mapping)
    assert run.code == 0, run.text
    section = tomllib.loads(mapping.read_text())["invoices"]
    fields = section["fields"]
    assert (section["decimal"], section["thousands"]) == (",", ".")
    assert fields["number"] == "Invoice No"
    assert fields["contact"] == "E-mail"
    assert fields["issueDate"] == "Invoice Date" and fields["dueDate"] == "Due Date"
    assert fields["terms"] == "Terms" and fields["currency"] == "Currency"
    assert fields["amount"] == "Amount"  # money: no scale
    payloads = tmp_path / "p.jsonl"
    run = payor("upload", "invoices", source, "--mapping", mapping, "--target", "onlyoffice",
                "--dry-run", "--payloads", payloads)  # fmt: skip
    assert run.code == 0, run.text
    first = read_jsonl(payloads)[0]
    assert first["issueDate"] == "2024-01-15T00:00:00"
    assert first["invoiceLines"] == [  # as the sender sends it, the defaults filled in
        {"invoiceTax1ID": 0, "invoiceTax2ID": 0, "description": "RE-1", "quantity": 1,
         "price": 1234.56, "discount": 0}
    ]  # fmt: skip
    assert first["contact"] == "ar@acme.example"
