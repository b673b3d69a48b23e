"""`payor init` through the real CLI: the mapping it writes uploads with no edits."""

from __future__ import annotations

import codecs
import json
import tomllib

from conftest import DATA, read_jsonl, write_csv


def test_ibm_init_then_dry_run_rejects_nothing(tmp_path, payor):
    mapping = tmp_path / "payor.toml"
    run = payor("init", "invoices", DATA / "ibm_accounts_receivable.csv", "-o", mapping)
    assert run.code == 0, run.text
    fields = tomllib.loads(mapping.read_text())["invoices"]["fields"]
    assert fields["customerNumber"] == "customerID" and fields["invoiceNumber"] == "invoiceNumber"
    assert fields["invoiceDate"] == "InvoiceDate" and fields["dueDate"] == "DueDate"
    assert fields["invoiceAmount"] == {"column": "InvoiceAmount", "scale": 100}
    report = tmp_path / "r.json"
    dry = payor(
        "upload", "invoices", DATA / "ibm_accounts_receivable.csv", "--mapping", mapping,
        "--dry-run", "--report-json", report,
    )  # fmt: skip
    assert dry.code == 0, dry.text
    assert '"rows_rejected": 0' in report.read_text()


def test_missing_required_field_is_a_todo_and_exit_1(tmp_path, payor):
    source = write_csv(tmp_path / "in.csv", [["Invoice", "Amount"], ["I1", "5"]])
    run = payor("init", "invoices", source)
    assert run.code == 1
    assert "# TODO customerNumber" in run.out
    assert "customerNumber" in run.err


def test_list_presets(payor):
    run = payor("init", "--list-presets")
    assert run.code == 0
    for name in ("sap-fbl5n", "quickbooks-online", "xero", "netsuite"):
        assert name in run.out


def test_unknown_preset_names_the_known_ones(tmp_path, payor):
    run = payor("init", "invoices", DATA / "ibm_accounts_receivable.csv", "--preset", "sapp")
    assert run.code == 2 and "sap-fbl5n" in run.err and "Traceback" not in run.err


def test_output_appends_to_a_config_and_refuses_to_overwrite_a_section(tmp_path, payor):
    config = tmp_path / "payor.toml"
    config.write_text('[api]\nbase_url = "https://crm.example"\n')
    source = DATA / "ibm_accounts_receivable.csv"
    assert payor("init", "invoices", source, "-o", config).code == 0
    data = tomllib.loads(config.read_text())
    assert data["api"]["base_url"] == "https://crm.example" and "invoices" in data
    again = payor("init", "invoices", source, "-o", config)
    assert again.code == 2 and "already has a [invoices] section" in again.err
    forced = payor("init", "invoices", source, "-o", config, "--force")
    assert forced.code == 0 and "api" not in tomllib.loads(config.read_text())


def test_dry_run_without_any_mapping_uses_and_shows_the_suggestion(tmp_path, payor):
    run = payor("upload", "invoices", DATA / "ibm_accounts_receivable.csv", "--dry-run")
    assert run.code == 0, run.text
    assert "no mapping given" in run.err and 'customerNumber = "customerID"' in run.err
    assert "payor init invoices" in run.err and "2466 valid, 0 rejected" in run.out


def test_sap_preset_through_the_cli(tmp_path, payor):
    lines = [
        "Kundeneinzelposten",
        "",
        "\tKonto\tBelegnummer\tReferenz\tBuchungsdatum\tNettofälligkeit\tBetrag in Hauswährung\tHauswährung",
        "\t4711\t1800000001\tRE-1\t31.12.2024\t30.01.2025\t1.234,56\tEUR",
        "\t4711\t1800000002\tGS-2\t02.01.2025\t01.02.2025\t99,00-\tEUR",
        "*\t\t\t\t\t\t1.135,56\tEUR",
    ]
    source = tmp_path / "FBL5N.xls"
    source.write_bytes(codecs.BOM_UTF16_LE + "\r\n".join(lines).encode("utf-16-le"))
    mapping = tmp_path / "m.toml"
    run = payor("init", "invoices", source, "--preset", "sap-fbl5n", "-o", mapping)
    assert run.code == 0, run.text
    payloads = tmp_path / "p.jsonl"
    dry = payor(
        "upload", "invoices", source, "--mapping", mapping, "--dry-run", "--payloads", payloads
    )
    assert dry.code == 0, dry.text
    sent = [json.loads(line) for line in payloads.read_text().splitlines()]
    # the reference (XBLNR) is the number on the invoice; the document number the accounting one
    assert sent == [
        {"customerNumber": "4711", "accountingDocNumber": "1800000001", "invoiceNumber": "RE-1",
         "postDate": "2024-12-31", "dueDate": "2025-01-30", "currency": "EUR",
         "invoiceAmount": 123456},
        {"customerNumber": "4711", "accountingDocNumber": "1800000002", "invoiceNumber": "GS-2",
         "postDate": "2025-01-02", "dueDate": "2025-02-01", "currency": "EUR",
         "invoiceAmount": -9900},
    ]  # fmt: skip


def test_xero_preset_sends_the_lines_of_an_invoice_as_one_invoice(tmp_path, payor):
    header = ["ContactName", "InvoiceNumber", "InvoiceDate", "Total", "Description", "LineAmount"]
    source = write_csv(
        tmp_path / "SalesInvoices.csv",
        [
            header,
            ["Bright Dental", "INV-0001", "05/11/2024", "1380.00", "Consulting", "1000.00"],
            ["Bright Dental", "INV-0001", "05/11/2024", "1380.00", "Travel", "380.00"],
            ["Cole Farms", "INV-0002", "20/11/2024", "90.60", "Seeds", "90.60"],
        ],
    )
    mapping = tmp_path / "m.toml"
    run = payor("init", "invoices", source, "--preset", "xero", "-o", mapping)
    assert run.code == 0, run.text
    section = tomllib.loads(mapping.read_text())["invoices"]
    assert section["key"] == ["invoiceNumber"]
    assert section["fields"]["invoiceAmount"] == {"column": "Total", "scale": 100}
    assert "itemText" not in section["fields"]
    payloads = tmp_path / "p.jsonl"
    dry = payor(
        "upload", "invoices", source, "--mapping", mapping, "--dry-run", "--payloads", payloads
    )
    assert dry.code == 0, dry.text
    sent = [(p["invoiceNumber"], p["invoiceAmount"]) for p in read_jsonl(payloads)]
    assert sent == [("INV-0001", 138000), ("INV-0002", 9060)]
