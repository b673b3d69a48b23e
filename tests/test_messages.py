"""What a run says when something is off: one clear line, before any work, never a traceback."""

from __future__ import annotations

import json
import socket

import pytest
from conftest import (
    CREDENTIALS,
    CUSTOMER_MAPPING,
    INVOICE_MAPPING,
    free_port,
    write_csv,
    write_mapping,
)

HEADER = ["Customer", "Invoice", "Amount"]


@pytest.mark.parametrize("option", ["--rejected", "--payloads", "--report-json", "--log-file"])
def test_an_output_into_a_missing_folder_is_refused_before_any_work(tmp_path, payor, option):
    source = write_csv(tmp_path / "i.csv", [HEADER, ["C1", "I1", "1"]])
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    target = tmp_path / "missing" / "dir" / "out.csv"
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run", option, target)
    assert run.code == 2, run.text
    assert f"the folder {target.parent} does not exist" in run.err
    assert not (tmp_path / "missing").exists()
    assert "checking" not in run.out  # refused before the file was read


def test_upload_all_checks_both_files_before_sending_anything(tmp_path, payor, sandbox_server):
    people = write_csv(tmp_path / "c.csv", [["No", "Email", "Name"], ["C1", "c@x.example", "A"]])
    invoices = write_csv(tmp_path / "i.csv", [["Customer", "Invoice", "Total"], ["C1", "I1", "5"]])
    mapping = write_mapping(tmp_path / "m.toml", CUSTOMER_MAPPING + INVOICE_MAPPING)
    server = sandbox_server()
    report = tmp_path / "r.json"
    run = payor(
        "upload", "all", "--customers", people, "--invoices", invoices, "--mapping", mapping,
        "--base-url", server.url, "--state-dir", tmp_path / "s", "--report-json", report,
        env=CREDENTIALS,
    )  # fmt: skip
    assert run.code == 2, run.text
    assert "column 'Amount' (invoiceAmount) is not in the header row" in run.err
    assert server.stats()["requests"] == 0
    assert server.records("customers") == []
    data = json.loads(report.read_text())
    assert data["exit_code"] == 2
    assert data["customers"]["rows_accepted"] == 0 and data["customers"]["requests"] == 0


@pytest.mark.parametrize("rows", [3_000, 30_000])
def test_a_wrong_encoding_gives_a_short_line_and_says_why(tmp_path, payor, rows):
    table = [HEADER] + [[f"C{i}", f"I{i}", str(i)] for i in range(rows)]
    source = write_csv(tmp_path / "i.csv", table)
    if source.stat().st_size % 2:  # an even count of bytes decodes as UTF-16 without complaint
        source.write_bytes(source.read_bytes() + b"\n")
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run", "--encoding", "utf-16")  # fmt: skip
    assert run.code == 2, run.text
    assert len(run.err.splitlines()) == 1
    assert len(run.err) < 600
    assert "Traceback" not in run.text
    if rows == 3_000:  # the whole file is one "header" cell
        assert "a header cell that long is a sign of a wrong encoding or delimiter" in run.err
    else:
        assert "hold no line break, so it is no text table in that encoding" in run.err


def test_a_long_message_is_cut_on_screen_and_whole_in_the_log(tmp_path, payor):
    long_name = "X" * 900
    source = write_csv(tmp_path / "i.csv", [HEADER, ["C1", "I1", "1"]])
    mapping = write_mapping(
        tmp_path / "m.toml", INVOICE_MAPPING.replace('"Amount"', f'"{long_name}"')
    )
    log = tmp_path / "payor.log"
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run", "--log-file", log)
    assert run.code == 2, run.text
    assert len(run.err) < 600
    assert "more characters in the log file)" in run.err
    assert long_name in log.read_text()


def test_sandbox_port_in_use_is_one_clear_line(tmp_path, payor):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        run = payor("sandbox", "--port", str(port), timeout=20)
    assert run.code == 2, run.text
    assert run.err.strip().endswith(
        f"error: sandbox: port {port} on 127.0.0.1 is in use by another program; choose another "
        "with --port (--port 0 picks a free one)"
    )
    assert len(run.err.strip().splitlines()) == 1
    assert "Errno" not in run.text


def test_sandbox_beyond_loopback_refuses_the_default_credentials(tmp_path, payor):
    run = payor("sandbox", "--host", "0.0.0.0", "--port", "0", timeout=20)
    assert run.code == 2, run.text
    assert "the default credentials are public" in run.err
    assert "sandbox-secret" not in run.text
