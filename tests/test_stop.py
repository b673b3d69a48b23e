"""Runs that end early tell the truth: SIGINT, SIGTERM, a server that dies, a broken file.

Each test drives the real CLI as a process (it is signalled) against a real sandbox server (a
process where it dies), then compares the
run's report with what the server stored and what the journal holds.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CREDENTIALS, CUSTOMER_MAPPING, read_rejected, write_csv, write_mapping

CUSTOMERS = 2000


@pytest.fixture
def customers_file(tmp_path: Path) -> tuple[Path, Path]:
    rows = [["No", "Email", "Name"]] + [
        [f"C{c:05d}", f"c{c}@x.example", f"Customer {c}"] for c in range(CUSTOMERS)
    ]
    rows.insert(5, ["C99999", "not-an-address", "Broken"])  # one row rejected locally
    return write_csv(tmp_path / "customers.csv", rows), write_mapping(
        tmp_path / "mapping.toml", CUSTOMER_MAPPING
    )


def start_upload(tmp_path: Path, server, source: Path, mapping: Path, *extra: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")} | CREDENTIALS
    env["HOME"] = str(tmp_path)
    return subprocess.Popen(
        [sys.executable, "-m", "payor_cli", "upload", "customers", str(source), "--mapping",
         str(mapping), "--base-url", server.url, "--state-dir", str(tmp_path / "state"),
         "--batch-size", "50", "--report-json", str(tmp_path / "report.json"),
         "--rejected", str(tmp_path / "rejected.csv"), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip


def customer_row(key: str) -> int:
    """The source row of customer C00042 in `customers_file` (row 6 is the broken one)."""
    number = int(key[1:])
    return number + 2 if number < 4 else number + 3


def assert_says_what_was_delivered(report: dict, rows: set[int], out: str) -> None:
    """The report and the terminal say truly which rows were not delivered: a batch that went
    out while an earlier one was held back by the stop is delivered, the earlier one a gap."""
    stopped = report["stopped"]
    for gap in stopped["not_delivered"]:
        assert not rows & set(range(gap["first"], gap["last"] + 1))
    if stopped["not_delivered_from"] is not None:
        assert max(rows) < stopped["not_delivered_from"]
    if stopped["not_delivered"]:
        first = stopped["not_delivered"][0]["first"]
        assert stopped["delivered_after"] == len([row for row in rows if row > first])
        assert f"rows {first:,}-" in out
    else:
        assert not [row for row in rows if row >= stopped["row"]]  # the sentence is true
        assert f"nothing from row {stopped['row']:,} on was delivered" in out


def wait_for_answers(server, count: int, process) -> None:
    deadline = time.monotonic() + 30
    while server.stats()["by_status"].get("200", 0) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the upload did not get going"
        time.sleep(0.01)


def journalled(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "state" / "journal.sqlite") as db:
        return {key for (key,) in db.execute("SELECT key FROM accepted")}


def stored_keys(server) -> set[str]:
    return {record["customerno"] for record in server.records("customers")}


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_stops_cleanly_and_the_report_is_true(
    tmp_path, sandbox_server, customers_file, sent
):
    source, mapping = customers_file
    # answers come late (after the rows are stored), so a batch is in flight when we signal
    server = sandbox_server("--stall-rate", "1", "--stall-seconds", "0.2")
    process = start_upload(tmp_path, server, source, mapping)
    wait_for_answers(server, 3, process)
    process.send_signal(sent)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 3, out + err
    assert "Traceback" not in out + err
    assert f"{signal.Signals(sent).name}: stopping" in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped"]["reason"] == "interrupted"
    assert 2 < report["stopped"]["row"] <= CUSTOMERS + 2
    assert report["exit_code"] == 3
    # the answer in flight was awaited: every stored row is counted and journalled, no more
    stored = stored_keys(server)
    assert 0 < len(stored) < CUSTOMERS
    assert report["rows_accepted"] == len(stored)
    assert report["rows_sent"] == len(stored)  # what went out was answered, nothing more went
    assert journalled(tmp_path) == stored
    assert report["requests"] == server.stats()["requests"]
    assert_says_what_was_delivered(report, {customer_row(key) for key in stored}, out)
    # the rejected-rows file of this run is written, with the row it refused
    assert [r["source_row"] for r in read_rejected(tmp_path / "rejected.csv")] == ["6"]
    # and a re-run goes on from there, sending nothing twice
    again = start_upload(tmp_path, server, source, mapping)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 1, out + err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rows_unchanged"] == len(stored)
    assert len(server.records("customers")) == CUSTOMERS


def test_second_sigint_stops_at_once_and_the_journal_stays_consistent(
    tmp_path, sandbox_server, customers_file
):
    source, mapping = customers_file
    # every answer comes 3 s after its rows were stored: the first batch is in flight, alone
    # (the quota is not known yet), when both signals come
    server = sandbox_server("--stall-rate", "1", "--stall-seconds", "3")
    process = start_upload(tmp_path, server, source, mapping)
    wait_for_answers(server, 1, process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 3, out + err
    assert "stopped at once" in err
    assert "Traceback" not in out + err
    # it did not wait for the answer in flight: the server stored that batch, the journal
    # does not hold it (a run that waited would have journalled it)
    stored, held = stored_keys(server), journalled(tmp_path)
    assert held < stored
    assert server.stats()["requests"] == 1
    # what was in flight is sent again, and nothing the journal holds
    again = start_upload(tmp_path, server, source, mapping, "--batch-size", "1000")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 1, out + err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rows_unchanged"] == len(held)
    assert report["rows_sent"] == CUSTOMERS - len(held)
    assert len(server.records("customers")) == CUSTOMERS


def test_server_dying_mid_run_aborts_with_true_counts(tmp_path, sandbox_server, customers_file):
    source, mapping = customers_file
    # a quota of one request per 0.3 s paces the run; the server dies between two requests
    # the server is a process of its own, killed as a crashed server dies
    server = sandbox_server("--rate-limit", "1", "--rate-window", "0.3", process=True)
    config = write_mapping(tmp_path / "payor.toml", "[upload]\nmax_retries = 1\n")
    process = start_upload(tmp_path, server, source, mapping, "--config", str(config))
    wait_for_answers(server, 3, process)
    server.process.kill()
    server.process.wait()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 3, out + err
    assert "Traceback" not in out + err
    with sqlite3.connect(server.db) as db:
        stored = {key for (key,) in db.execute("SELECT key FROM records WHERE kind = 'customers'")}
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped"]["reason"] == "aborted"
    assert "connection refused" in report["stopped"]["message"]
    assert report["rows_accepted"] == len(stored) > 0
    assert report["rows_sent"] >= len(stored)
    assert journalled(tmp_path) == stored
    assert f"sending 50 customers to {server.url}/jsonApi/upload/customers" in err


def test_a_stop_before_the_invoices_still_reports_both_kinds(tmp_path, sandbox_server, payor):
    people = write_csv(tmp_path / "c.csv", [["No", "Email", "Name"], ["C1", "c@x.example", "A"]])
    invoices = write_csv(tmp_path / "i.csv", [["Customer", "Invoice", "Amount"], ["C1", "I1", "5"]])
    mapping = write_mapping(
        tmp_path / "m.toml",
        CUSTOMER_MAPPING + '[invoices]\n[invoices.fields]\ncustomerNumber = "Customer"\n'
        'invoiceNumber = "Invoice"\ninvoiceAmount = "Amount"\n',
    )
    server = sandbox_server("--fault-rate", "1", "--faults", "503")
    config = write_mapping(tmp_path / "payor.toml", "[upload]\nmax_retries = 1\n")
    run = payor(
        "upload", "all", "--customers", people, "--invoices", invoices, "--mapping", mapping,
        "--base-url", server.url, "--state-dir", tmp_path / "s", "--config", config,
        "--report-json", tmp_path / "r.json", "--rejected", tmp_path / "rej.csv", env=CREDENTIALS,
    )  # fmt: skip
    assert run.code == 3, run.text
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["exit_code"] == 3
    assert report["customers"]["stopped"]["reason"] == "aborted"
    assert report["customers"]["requests"] == 2 and report["customers"]["retries"] == 1
    assert report["invoices"]["stopped"] == {
        "reason": "aborted",
        "row": None,
        "message": "not started: customers stopped first",
        "not_delivered": [],
        "not_delivered_from": None,
        "delivered_after": 0,
    }
    assert server.stats()["requests"] == 2
    # both rejected-rows files are this run's, even the one of the kind never started
    assert (
        tmp_path / "rej.invoices.csv"
    ).read_bytes() == b"\xef\xbb\xbfsource_row,errors,origin\r\n"


def test_a_stop_in_a_long_file_says_it_was_not_read_to_the_end(tmp_path, sandbox_server):
    name = "Name " * 10  # wide rows: the 100,000 rows are several chunks
    rows = [["No", "Email", "Name"]] + [
        [f"C{c:06d}", f"c{c}@x.example", name] for c in range(100_000)
    ]
    source = write_csv(tmp_path / "customers.csv", rows)
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)
    server = sandbox_server("--stall-rate", "1", "--stall-seconds", "0.05")
    process = start_upload(tmp_path, server, source, mapping)
    wait_for_answers(server, 3, process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 3, out + err
    report = json.loads((tmp_path / "report.json").read_text())
    stored = stored_keys(server)
    assert 0 < report["rows_read"] < 100_000  # the first chunks; the rest was never read
    assert report["rows_accepted"] == len(stored)
    assert f"customers.csv was read to row {report['rows_read'] + 1:,} only, not to its end" in out
    rows = {int(key[1:]) + 2 for key in stored}
    assert_says_what_was_delivered(report, rows, out)
