"""The onlyoffice target against its sandbox dialect on a real loopback server: exact invoices with
lines, nothing created twice whatever the network does, Draft invoices updated, Sent ones not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import CREDENTIALS, kill_upload_all_midway, read_rejected, write_csv, write_mapping

MAPPING = """
[api]
target = "onlyoffice"

[customers]
[customers.fields]
email = "Mail"
companyName = "Firma"
phone = "Telefon"
city = "Ort"

[invoices]
date_format = "%d.%m.%Y"
decimal = ","
thousands = "."
[invoices.fields]
number = "Rechnung"
contact = "Mail"
issueDate = "Datum"
dueDate = "Faellig"
currency = "Waehrung"
terms = { value = "30 Tage netto" }
[invoices.lines]
description = "Text"
quantity = "Menge"
price = "Preis"
discount = "Rabatt"
item = "Artikel"
tax = "Steuer"
"""
HEADER = ["Firma", "Mail", "Telefon", "Ort", "Rechnung", "Datum", "Faellig", "Waehrung",
          "Text", "Menge", "Preis", "Rabatt", "Artikel", "Steuer"]  # fmt: skip
ITEMS = ["Services", "Consulting", "Hardware"]


def export(invoices: int, customers: int = 5) -> list[list[str]]:
    rows = [HEADER]
    for i in range(invoices):
        c = i % customers
        for line in range(1 + i % 3):
            rows.append(
                [f"Firma {c} GmbH", f"Buchhaltung{c}@Firma.example", f"+49 30 {c:04d}", "Berlin",
                 f"RE-{i:04d}", f"{1 + i % 28:02d}.03.2026", f"{1 + i % 28:02d}.04.2026",
                 "EUR" if i % 2 else "USD", f"Position {line}", "1,5" if line else "2",
                 f"1.{i % 1000:03d},{line}0", "10" if line == 2 else "", ITEMS[(i + line) % 3],
                 "VAT 19%" if line == 0 else ""]
            )  # fmt: skip
    return rows


def expected(rows: list[list[str]]) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    for row in rows[1:]:
        price = Decimal(row[10].replace(".", "").replace(",", "."))
        qty = Decimal(row[9].replace(",", "."))
        discount = Decimal(row[11] or "0")
        item = 100 + ITEMS.index(row[12])
        tax = 200 if row[13] == "VAT 19%" else 0
        found.setdefault(row[4], []).append((row[8], qty, price, discount, item, tax))
    return found


def stored(server) -> dict[str, list[tuple]]:
    return {
        r["number"]: [
            (
                line["description"], Decimal(str(line["quantity"])), Decimal(str(line["price"])),
                Decimal(str(line["discount"])), line["invoiceItemID"], line["invoiceTax1ID"],
            )
            for line in r["invoiceLines"]
        ]
        for r in server.records("invoices")
    }  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path):
    def make(invoices: int = 30) -> tuple[Path, Path, list[list[str]]]:
        rows = export(invoices)
        return (
            write_csv(tmp_path / "export.csv", rows),
            write_mapping(tmp_path / "payor.toml", MAPPING),
            rows,
        )

    return make


@pytest.fixture
def upload(upload_one_export):
    token = {"PAYOR_API_KEY": CREDENTIALS["PAYOR_API_KEY"]}

    def run(server, source, config, *extra, env=None, state="state"):
        return upload_one_export(server, source, config, *extra, env=env or token, state=state)

    return run


def oo_server(sandbox_server, *flags):
    return sandbox_server("--target", "onlyoffice", *flags)


def test_invoices_arrive_exact_with_their_lines(setup, upload, sandbox_server):
    source, config, rows = setup()
    server = oo_server(sandbox_server)
    run, report = upload(server, source, config)
    assert run.code == 0, run.text
    assert stored(server) == expected(rows)
    first = next(r for r in server.records("invoices") if r["number"] == "RE-0001")
    companies = {c["id"]: c for c in server.records("customers")}
    assert companies[first["contactId"]]["companyName"] == "Firma 1 GmbH"
    assert companies[first["contactId"]]["commonData"] == [
        {"infoType": "Email", "data": "Buchhaltung1@Firma.example", "isPrimary": True},
        {"infoType": "Phone", "data": "+49 30 0001", "isPrimary": True},
    ]
    assert (first["issueDate"], first["dueDate"]) == ("2026-03-02T00:00:00", "2026-04-02T00:00:00")
    assert (first["currency"], first["terms"], first["templateType"]) == ("EUR", "30 Tage netto", 0)
    assert len(server.records("customers")) == 5
    assert report["invoices"]["rows_valid"] == len(rows) - 1
    # unchanged: zero requests
    requests = server.stats()["requests"]
    run, report = upload(server, source, config)
    assert run.code == 0, run.text
    assert server.stats()["requests"] == requests
    assert report["invoices"]["rows_unchanged"] == len(rows) - 1


def test_faults_and_stalls_never_create_twice(setup, upload, sandbox_server, tmp_path):
    source, config, rows = setup(40)
    server = oo_server(
        sandbox_server, "--fault-rate", "0.2", "--faults", "500,502,503,504,429,drop",
        "--stall-rate", "0.2", "--stall-seconds", "1.5", "--seed", "11",
    )  # fmt: skip
    settings = write_mapping(config, MAPPING.replace("[api]\n", "[api]\ntimeout = 0.5\n"))
    # records go one a request: batches of 20 rows keep the four senders busy side by side
    run, _ = upload(server, source, settings, "--batch-size", "20")
    assert run.code == 0, run.text
    assert stored(server) == expected(rows)
    stats = server.stats()
    assert stats["writes"]["invoices"] == 40 and stats["writes"]["customers"] == 5
    assert len(server.records("customers")) == 5
    assert stats["stalled"] > 0 and sum(stats["injected"].values()) > 0


def test_existing_contacts_and_invoices_are_adopted(setup, upload, sandbox_server, tmp_path):
    source, config, rows = setup(12)
    server = oo_server(sandbox_server)
    half = write_csv(
        tmp_path / "half.csv", [r for r in rows if r[4] == "Rechnung" or r[4] < "RE-0006"]
    )
    assert upload(server, half, config, state="elsewhere")[0].code == 0
    run, report = upload(server, source, config)  # a journal that knows nothing
    assert run.code == 0, run.text
    assert stored(server) == expected(rows)
    assert len(server.records("customers")) == 5
    assert server.stats()["writes"]["invoices"] == 12
    assert report["invoices"]["rows_accepted"] == len(rows) - 1


def test_a_draft_invoice_is_updated_and_a_sent_one_cannot_be(
    setup, upload, sandbox_server, tmp_path
):
    source, config, rows = setup(6)
    server = oo_server(sandbox_server, "--sent-invoices", "^RE-0003$")
    assert upload(server, source, config)[0].code == 0
    changed = [r[:] for r in rows]
    for row in changed[1:]:
        if row[4] in ("RE-0001", "RE-0003"):
            row[10] = "7,77"
    write_csv(source, changed)
    run, report = upload(server, source, config, "--rejected", tmp_path / "rej.csv")
    assert run.code == 1, run.text
    now = stored(server)
    assert {line[2] for line in now["RE-0001"]} == {Decimal("7.77")}  # the Draft was updated
    assert now["RE-0003"] == expected(rows)["RE-0003"]  # the Sent one was left alone
    refused = read_rejected(tmp_path / "rej.invoices.csv")
    assert {r["Rechnung"] for r in refused} == {"RE-0003"}
    assert all(
        "is no longer a Draft in ONLYOFFICE, so it cannot be changed" in r["errors"]
        for r in refused
    )
    assert [e["kind"] for e in report["invoices"]["errors"]] == ["cannot_update"]


def test_kill_and_resume_creates_nothing_twice(setup, sandbox_server, upload, tmp_path):
    source, config, rows = setup(60)
    server = oo_server(sandbox_server, "--stall-rate", "1", "--stall-seconds", "0.03")
    token = {"PAYOR_API_KEY": CREDENTIALS["PAYOR_API_KEY"]}
    kill_upload_all_midway(server, tmp_path, source, config, token, 15)
    assert 0 < server.stats()["writes"]["invoices"] < 60
    run, _ = upload(server, source, config)
    assert run.code == 0, run.text
    assert stored(server) == expected(rows)
    assert server.stats()["writes"]["invoices"] == 60


def test_a_wrong_token_exits_3_after_one_request(setup, upload, sandbox_server):
    source, config, _ = setup(3)
    server = oo_server(sandbox_server)
    run, _ = upload(server, source, config, env={"PAYOR_API_KEY": "wrong-token-42"})
    assert run.code == 3, run.text
    assert "refused the credentials (HTTP 401)" in run.err
    assert server.stats()["requests"] == 1
    assert "wrong-token-42" not in run.text


def test_user_and_password_are_exchanged_for_a_token_and_never_shown(
    setup, upload, sandbox_server, tmp_path
):
    source, config, rows = setup(4)
    server = oo_server(sandbox_server)
    env = {"PAYOR_API_USER": "sandbox-user", "PAYOR_API_PASSWORD": CREDENTIALS["PAYOR_API_SECRET"]}
    log = tmp_path / "payor.log"
    run, report = upload(server, source, config, "--log-file", log, env=env)
    assert run.code == 0, run.text
    assert stored(server) == expected(rows)
    for text in (run.text, log.read_text(), json.dumps(report)):
        assert CREDENTIALS["PAYOR_API_SECRET"] not in text
        assert CREDENTIALS["PAYOR_API_KEY"] not in text  # the token the sign-in gave
    journal = (tmp_path / "state" / "journal.sqlite").read_bytes()
    assert CREDENTIALS["PAYOR_API_SECRET"].encode() not in journal
    bad = {"PAYOR_API_USER": "sandbox-user", "PAYOR_API_PASSWORD": "not-it-999"}
    run, _ = upload(server, source, config, env=bad, state="other")
    assert run.code == 3, run.text  # authentication refused
    assert "the portal refused the sign-in of 'sandbox-user' (HTTP 401)" in run.err
    assert "not-it-999" not in run.text


def test_a_missing_invoice_item_is_exit_2_with_nothing_sent(setup, upload, sandbox_server):
    source, config, _ = setup(6)
    server = oo_server(sandbox_server, "--items", "Services,Consulting")  # no Hardware
    run, report = upload(server, source, config)
    assert run.code == 2, run.text
    assert "the portal has no invoice item 'Hardware'; nothing was sent" in run.err
    assert server.stats()["writes"] == {"customers": 0, "invoices": 0}
    assert report["exit_code"] == 2


def test_what_the_portal_refuses_unnamed_is_checked_first(tmp_path, payor, sandbox_server):
    rows = export(5)
    rows[1][9] = "0"  # RE-0000: quantity 0
    rows[2][11] = "150"  # RE-0001 line 0: discount 150
    rows[4][7] = "XYZ"  # RE-0002 line 0: a currency the portal lacks (all its lines)
    for row in rows[1:]:
        if row[4] == "RE-0002":
            row[7] = "XYZ"
    source = write_csv(tmp_path / "e.csv", rows)
    config = write_mapping(tmp_path / "payor.toml", MAPPING)
    server = oo_server(sandbox_server)
    run = payor(
        "upload", "all", "--customers", source, "--invoices", source, "--config", config,
        "--base-url", server.url, "--state-dir", tmp_path / "s", "--rejected", tmp_path / "r.csv",
        env={"PAYOR_API_KEY": CREDENTIALS["PAYOR_API_KEY"]},
    )  # fmt: skip
    assert run.code == 1, run.text
    refused = {r["source_row"]: r["errors"] for r in read_rejected(tmp_path / "r.invoices.csv")}
    assert 'quantity (column "Menge"): "0.00" must be above 0' in refused["2"]
    assert 'discount (column "Rabatt"): "150.00" must be a percentage from 0 to 100' in refused["3"]
    assert any("currency 'XYZ' is not one of the portal's" in e for e in refused.values())
    assert server.stats()["by_status"].get("400", 0) == 0  # nothing the portal had to refuse
    assert set(stored(server)) == {"RE-0003", "RE-0004"}


def test_readme_onlyoffice_command_works(payor, tmp_path):
    from conftest import SAMPLES

    command = (
        "upload", "all", "--customers", SAMPLES / "customers.csv", "--invoices",
        SAMPLES / "invoices.xlsx", "--config", SAMPLES / "onlyoffice.toml", "--sandbox",
        "--state-dir", tmp_path / "state",
    )  # fmt: skip
    run = payor(*command)
    assert run.code == 0, run.text
    assert "invoices: 40 read, 40 valid, 0 rejected" in run.out and "40 accepted" in run.out
    import sqlite3

    with sqlite3.connect(tmp_path / "state" / "sandbox-onlyoffice.sqlite") as db:
        first = json.loads(
            db.execute("SELECT payload FROM records WHERE key = 'INV-2026-00001'").fetchone()[0]
        )
    assert first["invoiceLines"] == [
        {"invoiceItemID": 100, "invoiceTax1ID": 0, "invoiceTax2ID": 0,
         "description": "INV-2026-00001", "quantity": 1, "price": 6337.07, "discount": 0}
    ]  # fmt: skip
    assert (first["currency"], first["issueDate"]) == ("USD", "2026-09-21T00:00:00")
    again = payor(*command)
    assert again.code == 0 and "40 unchanged, 0 sent" in again.out


def test_two_companies_of_one_name_stay_two_and_a_lowercase_currency_goes_upper(
    tmp_path, payor, sandbox_server
):
    rows = [
        HEADER,
        ["Beta AG", "bob@beta.example", "", "", "RE-1", "01.03.2026", "01.04.2026", "eur", "X", "1", "5,00", "", "Services", ""],
        ["Beta AG", "carol@beta.example", "", "", "RE-2", "01.03.2026", "01.04.2026", "usd", "Y", "1", "6,00", "", "Services", ""],
    ]  # fmt: skip
    source = write_csv(tmp_path / "two.csv", rows)
    config = write_mapping(tmp_path / "payor.toml", MAPPING)
    server = oo_server(sandbox_server)
    run = payor(
        "upload", "all", "--customers", source, "--invoices", source, "--config", config,
        "--base-url", server.url, "--state-dir", tmp_path / "s",
        env={"PAYOR_API_KEY": CREDENTIALS["PAYOR_API_KEY"]},
    )  # fmt: skip
    assert run.code == 0, run.text
    emails = sorted(d["data"] for c in server.records("customers") for d in c["commonData"])
    assert emails == ["bob@beta.example", "carol@beta.example"]
    assert len(server.records("customers")) == 2
    assert sorted(r["currency"] for r in server.records("invoices")) == ["EUR", "USD"]


def test_an_adopted_invoice_is_brought_to_the_files_content(
    setup, upload, sandbox_server, tmp_path
):
    source, config, rows = setup(4)
    server = oo_server(sandbox_server)
    assert upload(server, source, config, state="elsewhere")[0].code == 0
    changed = [r[:] for r in rows]
    for row in changed[1:]:
        if row[4] == "RE-0002":
            row[10] = "3,33"
    write_csv(source, changed)
    run, _ = upload(server, source, config)  # a journal that knows nothing: look-ups
    assert run.code == 0, run.text
    assert {line[2] for line in stored(server)["RE-0002"]} == {Decimal("3.33")}


def test_empty_first_line_field_and_empty_street_are_left_out(upload, sandbox_server, tmp_path):
    """An empty cell leaves its field out at every level: a line whose description (its first
    mapped field) is empty, an address whose street is empty. Every invoice still arrives."""
    mapping = MAPPING.replace('city = "Ort"', 'address = "Strasse"\ncity = "Ort"\nzip = "PLZ"')
    rows = [[*HEADER, "Strasse", "PLZ"]]
    for i, row in enumerate(export(12)[1:]):
        street = "" if row[0] in ("Firma 1 GmbH", "Firma 3 GmbH") else "Hauptstr. 1"
        row = [*row, street, "10115"]
        row[8] = "" if i % 3 == 0 else row[8]  # the line's description
        rows.append(row)
    source = write_csv(tmp_path / "export.csv", rows)
    config = write_mapping(tmp_path / "payor.toml", mapping)
    server = oo_server(sandbox_server, "--fault-rate", "0.2", "--faults", "500,503,drop")
    run, _ = upload(server, source, config)
    assert run.code == 0, run.text
    lines = [line for r in server.records("invoices") for line in r["invoiceLines"]]
    assert len(lines) == len(rows) - 1
    assert sum("description" not in line for line in lines) == sum(r[8] == "" for r in rows[1:])
    assert all(line.get("description") != "" for line in lines)
    addresses = [a for c in server.records("customers") for a in c["addresses"]]
    assert addresses, "every company has a city and zip"
    assert all(a.get("street") != "" for a in addresses)
    assert sum("street" not in a for a in addresses) == 2
    assert {a["zip"] for a in addresses} == {"10115"}


def test_a_new_company_costs_no_look_up_by_name(setup, payor, sandbox_server, tmp_path):
    """Per new company: its e-mail looked up, the create, its e-mail, phone and address; a
    look-up by name is only for a create an earlier run left without an answer."""
    source, config, _ = setup(10)
    server = oo_server(sandbox_server)
    run = payor(
        "upload", "customers", source, "--config", config, "--base-url", server.url,
        "--state-dir", tmp_path / "state", "--report-json", tmp_path / "report.json",
        env={"PAYOR_API_KEY": CREDENTIALS["PAYOR_API_KEY"]},
    )  # fmt: skip
    assert run.code == 0, run.text
    assert len(server.records("customers")) == 5
    assert server.stats()["requests"] == 5 * 5
    assert json.loads((tmp_path / "report.json").read_text())["requests"] == 5 * 5


def test_a_run_killed_among_its_creates_leaves_no_company_twice(
    setup, upload, sandbox_server, tmp_path
):
    """Killed between a company's create and its e-mail: the next run finds the create it
    journalled as open by the company's name, and gives it its e-mail."""
    source, config, rows = setup(10)  # the 5 companies, each with invoices
    server = oo_server(sandbox_server, "--latency", "0.15")
    victim = subprocess.Popen(
        [sys.executable, "-m", "payor_cli", "upload", "customers", source, "--config", config,
         "--base-url", server.url, "--state-dir", tmp_path / "state", "--concurrency", "1"],
        env={k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")}
        | {"PAYOR_API_KEY": CREDENTIALS["PAYOR_API_KEY"]},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while server.stats()["writes"]["customers"] < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    run, _ = upload(server, source, config)
    assert run.code == 0, run.text
    companies = server.records("customers")
    assert sorted(c["companyName"] for c in companies) == [f"Firma {c} GmbH" for c in range(5)]
    emails = [d["data"] for c in companies for d in c["commonData"] if d["infoType"] == "Email"]
    assert sorted(emails) == [f"Buchhaltung{c}@Firma.example" for c in range(5)]
    assert stored(server) == expected(rows)


def test_full_counts_invoices_known_unchanged_as_unchanged_not_accepted(
    setup, upload, sandbox_server
):
    source, config, rows = setup(8)
    server = oo_server(sandbox_server)
    assert upload(server, source, config)[0].code == 0
    run, report = upload(server, source, config, "--full")
    assert run.code == 0, run.text
    invoices = report["invoices"]
    assert (invoices["rows_sent"], invoices["rows_accepted"]) == (0, 0)
    assert invoices["rows_unchanged"] == len(rows) - 1
    assert server.stats()["writes"]["invoices"] == 8


def test_a_dry_runs_payloads_are_what_a_real_run_sends(
    setup, payor, upload, sandbox_server, tmp_path
):
    """--dry-run --payloads: the sender's defaults filled in, titles where ids go."""
    source, config, _ = setup(6)
    payloads = tmp_path / "p.jsonl"
    dry = payor(
        "upload", "invoices", source, "--config", config, "--dry-run", "--payloads", payloads
    )  # fmt: skip
    assert dry.code == 0, dry.text
    server = oo_server(sandbox_server)
    assert upload(server, source, config)[0].code == 0
    stored = {r["number"]: r for r in server.records("invoices")}
    companies = {c["id"]: c for c in server.records("customers")}
    ids = {"Services": 100, "Consulting": 101, "Hardware": 102}
    for line_text in payloads.read_text().splitlines():
        sent = json.loads(line_text, parse_float=Decimal)
        record = stored[sent["number"]]
        emails = [d["data"] for d in companies[record["contactId"]]["commonData"]]
        assert sent.pop("contact") in emails
        lines = sent.pop("invoiceLines")
        for name, value in sent.items():
            assert record[name] == (float(value) if isinstance(value, Decimal) else value), name
        assert len(lines) == len(record["invoiceLines"])
        for line, kept in zip(lines, record["invoiceLines"], strict=True):
            assert kept["invoiceItemID"] == ids[line.pop("item")]
            assert kept["invoiceTax1ID"] == (
                200 if line.pop("tax", None) else line.pop("invoiceTax1ID")
            )
            for name, value in line.items():
                assert (
                    Decimal(str(kept[name])) == value
                    if isinstance(value, Decimal)
                    else kept[name] == value
                )
