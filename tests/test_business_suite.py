"""The business-suite target against its sandbox dialect on a real loopback server: what the server
stores is exactly what the export says, whatever the network does, and nothing is created twice.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import (
    CREDENTIALS,
    kill_upload_all_midway,
    read_jsonl,
    read_rejected,
    write_csv,
    write_mapping,
)

MAPPING = """
[api]
target = "business-suite"

[customers]
[customers.fields]
email = "Kunde"
account = "Firma"

[invoices]
date_format = "%d.%m.%Y"
decimal = ","
thousands = "."
[invoices.fields]
invoice_number = "Rechnung"
customer = "Kunde"
date = "Datum"
[invoices.lines]
description = "Text"
amount = "Preis"
qty = "Menge"
"""
HEADER = ["Kunde", "Firma", "Rechnung", "Datum", "Text", "Preis", "Menge"]


def export(invoices: int, customers: int = 7) -> list[list[str]]:
    """1 to 4 line rows per invoice, German amounts (1.234,5) and quantities (1,5)."""
    rows = [HEADER]
    for i in range(invoices):
        c = i % customers
        for line in range(1 + i % 4):
            price = f"{(i * 37 + line * 11) % 2000}.{(i + line) % 10}".replace(".", ",")
            if i % 5 == 0:
                price = f"1.{(i % 900) + 100:03d},{line}5"  # thousands separator
            rows.append(
                [f"Kunde{c}@X.example", f"Firma {c}", f"R-{i:04d}", f"{1 + i % 28:02d}.03.2026",
                 f"Leistung {line}", price, "1,5" if line == 1 else str(1 + line)]
            )  # fmt: skip
    return rows


def expected_invoices(rows: list[list[str]]) -> dict[str, list[tuple[str, Decimal, Decimal]]]:
    found: dict[str, list[tuple[str, Decimal, Decimal]]] = {}
    for row in rows[1:]:
        price = Decimal(row[5].replace(".", "").replace(",", "."))
        qty = Decimal(row[6].replace(",", "."))
        found.setdefault(row[2], []).append((row[4], price, qty))
    return found


def stored_invoices(server) -> dict[str, list[tuple[str, Decimal, Decimal]]]:
    return {
        r["invoice_number"]: [
            (item["description"], Decimal(str(item["amount"])), Decimal(str(item["qty"])))
            for item in r["items"]
        ]
        for r in server.records("invoices")
    }


@pytest.fixture
def setup(tmp_path: Path):
    def make(invoices: int = 40) -> tuple[Path, Path, list[list[str]]]:
        rows = export(invoices)
        return (
            write_csv(tmp_path / "export.csv", rows),
            write_mapping(tmp_path / "payor.toml", MAPPING),
            rows,
        )

    return make


@pytest.fixture
def upload(upload_one_export):
    def run(server, source: Path, config: Path, *extra: str, state: str = "state"):
        return upload_one_export(server, source, config, *extra, env=CREDENTIALS, state=state)

    return run


def bs_server(sandbox_server, *flags: str):
    return sandbox_server("--target", "business-suite", *flags)


def test_lines_and_german_amounts_arrive_exact(setup, upload, sandbox_server, payor, tmp_path):
    source, config, rows = setup()
    server = bs_server(sandbox_server)
    run, report = upload(server, source, config)
    assert run.code == 0, run.text
    assert stored_invoices(server) == expected_invoices(rows)
    customers = server.records("customers")
    assert sorted(c["email"] for c in customers) == [f"Kunde{c}@X.example" for c in range(7)]
    ids = {c["email"]: c["id"] for c in customers}
    by_number = {r["invoice_number"]: r for r in server.records("invoices")}
    assert by_number["R-0003"]["customer_id"] == ids["Kunde3@X.example"]
    assert by_number["R-0003"]["date"] == "2026-03-04"
    assert report["customers"]["rows_merged"] == len(rows) - 1 - 7
    assert report["invoices"]["rows_valid"] == len(rows) - 1  # the lines are valid rows
    # about one request per record: 1 customer list + 1 batch; per invoice its create, and one
    # invoice list per customer
    assert report["customers"]["requests"] == 2
    assert report["invoices"]["requests"] == 40 + 7
    total = sum(p * q for lines in expected_invoices(rows).values() for _, p, q in lines)
    assert report["invoices"]["totals"]["no currency column"]["accepted"] == f"{total:.2f}"
    # the dry run shows the reference, and money with exactly 2 decimals
    payloads = tmp_path / "p.jsonl"
    dry = payor(
        "upload", "invoices", source, "--config", config, "--dry-run", "--payloads", payloads
    )
    assert dry.code == 0, dry.text
    first = payloads.read_text().splitlines()[0]
    assert first.startswith('{"invoice_number":"R-0000","customer":"Kunde0@X.example"')
    assert '"amount":1100.05,"qty":1.00}' in first
    assert read_jsonl(payloads)[1]["items"][1]["qty"] == 1.5


def test_faults_and_stalls_never_create_twice(setup, upload, sandbox_server):
    source, config, rows = setup(60)
    server = bs_server(
        sandbox_server, "--fault-rate", "0.2", "--faults", "500,502,503,504,429,drop",
        "--stall-rate", "0.2", "--stall-seconds", "1.5", "--seed", "3",
    )  # fmt: skip
    settings = write_mapping(config, MAPPING.replace("[api]\n", "[api]\ntimeout = 0.5\n"))
    # invoices go one a request: batches of 40 rows keep the four senders busy side by side
    run, report = upload(server, source, settings, "--batch-size", "40")
    assert run.code == 0, run.text
    assert stored_invoices(server) == expected_invoices(rows)
    stats = server.stats()
    assert stats["writes"]["invoices"] == 60  # each invoice created once
    assert stats["writes"]["customers"] == 7
    assert stats["stalled"] > 0 and sum(stats["injected"].values()) > 0
    assert report["invoices"]["requests"] + report["customers"]["requests"] == stats["requests"]


def test_faults_under_an_hourly_quota_are_retried_not_held_for_the_window(
    setup, upload, sandbox_server
):
    """Every answer carries X-RateLimit-* (faults too), Reset the end of an hour's window: a
    5xx with quota left is retried on the backoff, not read as "wait an hour"."""
    source, config, rows = setup(30)
    server = bs_server(
        sandbox_server, "--fault-rate", "0.2", "--faults", "500,502,503", "--seed", "5",
        "--rate-limit", "1000", "--rate-window", "3600", "--reset-style", "epoch",
    )  # fmt: skip
    run, report = upload(server, source, config)
    assert run.code == 0, run.text
    assert stored_invoices(server) == expected_invoices(rows)
    stats = server.stats()
    assert sum(stats["injected"].values()) > 0
    assert stats["writes"]["invoices"] == 30
    assert report["invoices"]["retries"] + report["customers"]["retries"] > 0


def test_a_crm_that_holds_some_records_adopts_them(setup, upload, sandbox_server, tmp_path):
    source, config, rows = setup(20)
    server = bs_server(sandbox_server)
    first_half = write_csv(
        tmp_path / "half.csv", [r for r in rows if r[0] == "Kunde" or r[2] < "R-0010"]
    )
    assert upload(server, first_half, config, state="elsewhere")[0].code == 0
    # a new state dir: the journal knows nothing, the CRM holds half
    run, report = upload(server, source, config)
    assert run.code == 0, run.text
    assert report["invoices"]["rows_accepted"] == len(rows) - 1  # adopted ones included
    assert stored_invoices(server) == expected_invoices(rows)
    assert server.stats()["writes"]["invoices"] == 20
    assert server.stats()["by_status"].get("409", 0) == 0
    assert len(server.records("customers")) == 7


def test_unchanged_rerun_sends_nothing_and_a_changed_invoice_cannot_update(
    setup, upload, sandbox_server, tmp_path
):
    source, config, rows = setup(12)
    server = bs_server(sandbox_server)
    assert upload(server, source, config)[0].code == 0
    requests = server.stats()["requests"]
    run, report = upload(server, source, config)
    assert run.code == 0, run.text
    assert server.stats()["requests"] == requests
    assert report["invoices"]["rows_unchanged"] == len(rows) - 1
    changed = [r[:] for r in rows]
    changed[1][5] = "9,99"  # R-0000's price
    write_csv(source, changed)
    run, report = upload(server, source, config, "--rejected", tmp_path / "rej.csv")
    assert run.code == 1, run.text
    assert server.stats()["requests"] == requests  # nothing was sent
    errors = report["invoices"]["errors"]
    assert [(e["kind"], e["first_rows"]) for e in errors] == [("cannot_update", [2])]
    assert "cannot change an invoice" in errors[0]["reason"]
    assert stored_invoices(server) == expected_invoices(rows)


def test_kill_and_rerun_finishes_with_nothing_twice(setup, sandbox_server, upload, tmp_path):
    source, config, rows = setup(80)
    server = bs_server(sandbox_server, "--stall-rate", "1", "--stall-seconds", "0.05")
    kill_upload_all_midway(server, tmp_path, source, config, CREDENTIALS, 20)
    assert 0 < server.stats()["writes"]["invoices"] < 80
    run, _ = upload(server, source, config)
    assert run.code == 0, run.text
    assert stored_invoices(server) == expected_invoices(rows)
    assert server.stats()["writes"]["invoices"] == 80


def test_a_small_rate_limit_window_spends_no_429(setup, upload, sandbox_server):
    source, config, rows = setup(12)
    server = bs_server(
        sandbox_server, "--rate-limit", "5", "--rate-window", "0.5", "--reset-style", "epoch"
    )
    run, _ = upload(server, source, config)
    assert run.code == 0, run.text
    stats = server.stats()
    # the quota bound: the server counted every request against it, and the run made more
    # than one window allows; yet it never had to say 429
    assert "first_quota_phase_s" in stats and stats["requests"] > 5
    assert stats["rate_limited"] == 0 and "429" not in stats["by_status"]
    assert stored_invoices(server) == expected_invoices(rows)


def test_refused_customer_rows_are_named_and_their_invoices_held_back(
    setup, upload, sandbox_server
):
    source, config, rows = setup(14)
    server = bs_server(sandbox_server, "--refuse-keys", "^Kunde2@")
    run, report = upload(server, source, config)
    assert run.code == 1, run.text
    customers = report["customers"]
    assert [(e["kind"], e["reason"]) for e in customers["errors"]] == [
        ("server_rejected", "refused by the server: email: refused by sandbox rule")
    ]
    held = [e for e in report["invoices"]["errors"] if e["kind"] == "customer_rejected"]
    assert held and held[0]["count"] == sum(1 for r in rows[1:] if r[0] == "Kunde2@X.example")
    assert "R-0002" not in stored_invoices(server)


def test_wrong_key_exits_3_after_one_request(setup, payor, sandbox_server, tmp_path):
    source, config, _ = setup(3)
    server = bs_server(sandbox_server)
    run = payor(
        "upload", "customers", source, "--config", config, "--base-url", server.url,
        "--state-dir", tmp_path / "s", env={"PAYOR_API_KEY": "wrong-key-123"},
    )  # fmt: skip
    assert run.code == 3, run.text
    assert "refused the credentials (HTTP 401)" in run.err
    assert server.stats()["requests"] == 1
    assert "wrong-key-123" not in run.text


def test_more_than_two_decimals_and_differing_rows_reject_the_invoice_whole(tmp_path, payor):
    rows = [
        HEADER,
        ["a@x.example", "A", "R-1", "01.03.2026", "One", "1,005", "1"],
        ["a@x.example", "A", "R-1", "01.03.2026", "Two", "2,00", "1"],
        ["a@x.example", "A", "R-2", "01.03.2026", "One", "1,00", "1"],
        ["a@x.example", "A", "R-2", "02.03.2026", "Two", "2,00", "1"],
        ["a@x.example", "A", "R-3", "01.03.2026", "Fine", "3,00", "2"],
    ]
    source = write_csv(tmp_path / "e.csv", rows)
    config = write_mapping(tmp_path / "payor.toml", MAPPING)
    payloads = tmp_path / "p.jsonl"
    rejected = tmp_path / "r.csv"
    run = payor("upload", "invoices", source, "--config", config, "--dry-run", "--payloads", payloads, "--rejected", rejected)  # fmt: skip
    assert run.code == 1, run.text
    assert [p["invoice_number"] for p in read_jsonl(payloads)] == ["R-3"]
    errors = {r["source_row"]: r["errors"] for r in read_rejected(rejected)}
    text = "\n".join(errors.values())
    assert sorted(errors) == ["2", "3", "4", "5"]
    assert 'amount (column "Preis"): "1,005" has more than 2 decimals' in text
    assert "its record is refused whole: row 2 of it could not be sent" in text
    assert "the rows of one record (4, 5) differ in date" in text


def test_schema_and_sandbox_speak_the_target(payor):
    run = payor("schema", "invoices", "--target", "business-suite")
    assert run.code == 0, run.text
    assert "invoice_number" in run.out and "customer" in run.out
    run = payor("schema", "invoices", "--target", "onlyoffice", "--json")
    assert run.code == 0, run.text
    lines = {f["name"]: f for f in json.loads(run.out)["invoices.lines"]}
    assert lines["price"] == {"name": "price", "type": "money", "required": True}
    run = payor("schema", "--target", "nope")
    assert run.code == 2 and "unknown target 'nope'" in run.err


def test_the_quota_is_planned_and_said_before_the_run(setup, upload, sandbox_server):
    source, config, rows = setup(400)
    server = bs_server(sandbox_server)
    run, _ = upload(server, source, config)
    assert run.code == 0, run.text
    invoice_rows = len(rows) - 1
    requests = invoice_rows + -(-invoice_rows // 100)
    minutes = round(requests / 1000 * 60)
    assert (
        f"business-suite: up to about {requests:,} requests: {minutes // 60} h {minutes % 60} min "
        "at 1,000 an hour" in run.err
    )


def test_readme_business_suite_command_works(payor, tmp_path):
    from conftest import SAMPLES

    command = (
        "upload", "all", "--customers", SAMPLES / "customers.csv", "--invoices",
        SAMPLES / "invoices.xlsx", "--config", SAMPLES / "business-suite.toml", "--sandbox",
        "--state-dir", tmp_path / "state",
    )  # fmt: skip
    run = payor(*command)
    assert run.code == 0, run.text
    assert "customers: 8 read, 8 valid" in run.out
    assert "invoices: 40 read, 40 valid, 0 rejected" in run.out and "40 accepted" in run.out

    with sqlite3.connect(tmp_path / "state" / "sandbox-business-suite.sqlite") as db:
        stored = dict(db.execute("SELECT kind, count(*) FROM records GROUP BY kind").fetchall())
        first = json.loads(
            db.execute("SELECT payload FROM records WHERE key = 'INV-2026-00001'").fetchone()[0]
        )
    assert stored == {"customers": 8, "invoices": 40}
    assert first["items"] == [{"description": "INV-2026-00001", "amount": 6337.07, "qty": 1}]
    again = payor(*command)
    assert again.code == 0 and "40 unchanged, 0 sent" in again.out


def test_an_invoice_found_in_the_crm_with_other_content_cannot_update(
    setup, upload, sandbox_server, tmp_path
):
    source, config, rows = setup(6)
    server = bs_server(sandbox_server)
    assert upload(server, source, config, state="elsewhere")[0].code == 0
    changed = [r[:] for r in rows]
    changed[1][5] = "4,44"  # R-0000
    write_csv(source, changed)
    run, report = upload(server, source, config)  # a journal that knows nothing
    assert run.code == 1, run.text
    assert [(e["kind"], e["first_rows"]) for e in report["invoices"]["errors"]] == [
        ("cannot_update", [2])
    ]
    assert report["invoices"]["rows_accepted"] == len(rows) - 2
    assert stored_invoices(server) == expected_invoices(rows)


def test_a_key_with_a_line_break_is_a_clear_error_and_never_shown(setup, payor, tmp_path):
    source, config, _ = setup(2)
    log = tmp_path / "payor.log"
    run = payor(
        "upload", "customers", source, "--config", config, "--base-url", "http://127.0.0.1:9",
        "--state-dir", tmp_path / "s", "--log-file", log,
        env={"PAYOR_API_KEY": "Qz7x\nWv93k"},
    )  # fmt: skip
    assert run.code == 2, run.text
    assert "holds a control character" in run.err
    assert "Qz7x" not in run.text + log.read_text()
    assert "Wv93k" not in run.text + log.read_text()


def test_full_counts_invoices_it_cannot_resend_as_unchanged_not_accepted(
    setup, upload, sandbox_server
):
    """--full on an API that cannot update an invoice: the ones the journal knows unchanged
    are not sent, and rows_accepted counts only what the server accepted in this run."""
    source, config, rows = setup(10)
    server = bs_server(sandbox_server)
    assert upload(server, source, config)[0].code == 0
    run, report = upload(server, source, config, "--full")
    assert run.code == 0, run.text
    invoices = report["invoices"]
    assert (invoices["rows_sent"], invoices["rows_accepted"]) == (0, 0)
    assert invoices["rows_unchanged"] == len(rows) - 1
    assert (
        invoices["totals"]["no currency column"]["accepted"]
        == invoices["totals"]["no currency column"]["read"]
    )
    assert server.stats()["writes"]["invoices"] == 10


def test_a_journal_with_ids_that_are_no_numbers_is_looked_up_not_a_crash(
    setup, upload, payor, sandbox_server, tmp_path
):
    """Ids an odd answer once left in the journal ('a', '[1]') are as good as none: the
    customers are found in the CRM's list again, the run goes on."""
    source, config, rows = setup(8)
    server = bs_server(sandbox_server)
    first = payor(
        "upload", "customers", source, "--config", config, "--base-url", server.url,
        "--state-dir", tmp_path / "state", env=CREDENTIALS,
    )  # fmt: skip
    assert first.code == 0, first.text
    with sqlite3.connect(tmp_path / "state" / "journal.sqlite") as db:
        db.execute(
            "UPDATE accepted SET remote_id = CASE WHEN key < 'kunde3' THEN 'a' ELSE '[1]' END"
        )
    run, _ = upload(server, source, config)
    assert run.code == 0, run.text
    assert stored_invoices(server) == expected_invoices(rows)
    ids = {c["email"]: c["id"] for c in server.records("customers")}
    for invoice in server.records("invoices"):
        assert invoice["customer_id"] in ids.values()
    assert len(ids) == 7
