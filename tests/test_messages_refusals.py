"""Server refusals are grouped by their kind, not under the first row's text, and a run that
delivered nothing says so and why. Real uploads to sandbox servers."""

from __future__ import annotations

from conftest import INVOICE_MAPPING, write_csv, write_mapping

from payor_cli.rows import RowError
from payor_cli.summary import ErrorTally

NOTE = (
    "no invoice was delivered: the CRM has none of their customers; upload the customers "
    "first, or `payor upload all`"
)


def invoices(n: int, customers: int) -> list[list[str]]:
    return [["Customer", "Invoice", "Amount"]] + [
        [f"K{i % customers:03d}", f"I{i:04d}", str(100 + i)] for i in range(n)
    ]


def test_refusals_for_missing_customers_are_one_group_that_says_how_many(
    tmp_path, upload, sandbox_server
):
    server = sandbox_server()
    source = write_csv(tmp_path / "invoices.csv", invoices(30, customers=10))
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    run, report = upload(server, "invoices", source, "--mapping", mapping)
    assert run.code == 1, run.text
    assert report["rows_accepted"] == 0 and report["rows_rejected"] == 30
    [group] = report["errors"]
    assert group["count"] == 30 and group["values"] == 10
    assert group["field"] == "customerNumber"
    assert group["reason"] == (
        "refused by the server: customerNumber: customer … does not exist "
        "(10 different values, e.g. K000)"
    )
    assert group["example"] == "refused by the server: customerNumber: customer K000 does not exist"
    assert server.records("invoices") == []


def test_a_run_that_delivered_nothing_says_why(tmp_path, upload, sandbox_server):
    server = sandbox_server()
    source = write_csv(tmp_path / "invoices.csv", invoices(12, customers=4))
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    run, report = upload(server, "invoices", source, "--mapping", mapping)
    assert run.code == 1, run.text
    assert report["note"] == NOTE
    assert f"invoices: {NOTE}" in run.err


def test_a_run_that_delivered_some_has_no_note(tmp_path, upload, sandbox_server, payor):
    server = sandbox_server()
    people = write_csv(tmp_path / "people.csv", [["No", "Email", "Name"], ["K000", "a@x.example", "A"]])  # fmt: skip
    mapping = write_mapping(
        tmp_path / "m.toml",
        INVOICE_MAPPING + '\n[customers]\n[customers.fields]\ncustomerno = "No"\n'
        'emailaddress1 = "Email"\ncompanyname = "Name"\n',
    )
    run, _ = upload(server, "customers", people, "--mapping", mapping)
    assert run.code == 0, run.text
    source = write_csv(tmp_path / "invoices.csv", invoices(8, customers=4))
    run, report = upload(server, "invoices", source, "--mapping", mapping)
    assert run.code == 1, run.text
    assert report["rows_accepted"] == 2
    assert report["note"] is None
    assert "was delivered" not in run.err


def test_refusals_of_different_kinds_are_different_groups(tmp_path, upload, sandbox_server):
    server = sandbox_server("--refuse-keys", "^I000[03]$")
    people = write_csv(tmp_path / "people.csv", [["No", "Email", "Name"], ["K000", "a@x.example", "A"]])  # fmt: skip
    mapping = write_mapping(
        tmp_path / "m.toml",
        INVOICE_MAPPING + '\n[customers]\n[customers.fields]\ncustomerno = "No"\n'
        'emailaddress1 = "Email"\ncompanyname = "Name"\n',
    )
    assert upload(server, "customers", people, "--mapping", mapping)[0].code == 0
    # I0000 and I0003 (of K000, who exists) refused by the rule; K001's and K002's for them
    source = write_csv(tmp_path / "invoices.csv", invoices(12, customers=3))
    run, report = upload(server, "invoices", source, "--mapping", mapping)
    assert run.code == 1, run.text
    reasons = {(g["field"], g["reason"]): g["count"] for g in report["errors"]}
    assert reasons == {
        ("customerNumber", "refused by the server: customerNumber: customer … does not exist "
         "(2 different values, e.g. K001)"): 8,
        ("invoiceNumber", "refused by the server: invoiceNumber: refused by sandbox rule"): 2,
    }  # fmt: skip
    stored = sorted(r["invoiceNumber"] for r in server.records("invoices"))
    assert stored == ["I0006", "I0009"]


def test_business_suite_customers_missing_are_one_group_and_a_note(
    tmp_path, upload, sandbox_server
):
    server = sandbox_server("--target", "business-suite")
    rows = [["Kunde", "Rechnung", "Datum", "Text", "Preis", "Menge"]] + [
        [f"k{i % 3}@x.example", f"R-{i}", "01.03.2026", "Leistung", "10,00", "1"] for i in range(6)
    ]
    source = write_csv(tmp_path / "export.csv", rows)
    mapping = write_mapping(
        tmp_path / "m.toml",
        '[invoices]\ntarget = "business-suite"\ndate_format = "%d.%m.%Y"\ndecimal = ","\n'
        '[invoices.fields]\ninvoice_number = "Rechnung"\ncustomer = "Kunde"\ndate = "Datum"\n'
        '[invoices.lines]\ndescription = "Text"\namount = "Preis"\nqty = "Menge"\n',
    )
    run, report = upload(server, "invoices", source, "--mapping", mapping)
    assert run.code == 1, run.text
    [group] = report["errors"]
    assert (group["kind"], group["count"], group["values"]) == ("customer_missing", 6, 3)
    assert group["reason"].startswith("customer … is not in business-suite: upload it first")
    assert group["reason"].endswith("(3 different values, e.g. k0@x.example)")
    assert report["note"] == NOTE


def test_a_text_that_names_no_value_stays_as_it_is():
    tally = ErrorTally()
    for row in (2, 3):
        tally.add(RowError(row, None, None, "server_rejected", "refused by the server: locked"))
    [group] = tally.ranked()
    assert (group.reason, group.count, group.as_json().get("values")) == (
        "refused by the server: locked",
        2,
        None,
    )
