"""Delivery against a real sandbox server over loopback: every row stored once, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import (
    API_SECRET,
    CREDENTIALS,
    SAMPLES,
    read_jsonl,
    read_rejected,
    write_mapping,
)


def dry_payloads(payor, tmp_path, kind, source, mapping) -> list[dict]:
    out = tmp_path / f"expected-{kind}.jsonl"
    run = payor("upload", kind, source, "--mapping", mapping, "--dry-run", "--payloads", out)
    assert run.code == 0, run.text  # every file these tests upload is valid
    return read_jsonl(out)


def by_key(records: list[dict], key: str = "invoiceNumber") -> list[dict]:
    """Several requests in flight are stored in the order they arrive: compare by key."""
    return sorted(records, key=lambda record: record[key])


def test_upload_all_stores_exactly_the_dry_run_payloads_in_order(
    tmp_path, payor, files, sandbox_server, upload
):
    customers, invoices, mapping = files(1200)
    server = sandbox_server()
    run, report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--concurrency", "1",
    )  # fmt: skip
    assert run.code == 0, run.text
    assert server.records("customers") == dry_payloads(
        payor, tmp_path, "customers", customers, mapping
    )
    assert server.records("invoices") == dry_payloads(
        payor, tmp_path, "invoices", invoices, mapping
    )
    stats = server.stats()
    assert report["exit_code"] == 0
    inv = report["invoices"]
    assert inv["rows_sent"] == inv["rows_accepted"] == 1200 and inv["requests"] == 3
    assert report["customers"]["requests"] + inv["requests"] == stats["requests"]
    assert inv["totals"]["EUR"]["accepted"] == inv["totals"]["EUR"]["read"]


def test_rerun_of_unchanged_file_sends_nothing_and_full_sends_all(files, sandbox_server, upload):
    customers, invoices, mapping = files(300)
    server = sandbox_server()
    args = ("all", "--customers", customers, "--invoices", invoices, "--mapping", mapping)
    assert upload(server, *args)[0].code == 0
    before = server.stats()["requests"]
    run, report = upload(server, *args)
    assert run.code == 0, run.text
    assert server.stats()["requests"] == before
    assert report["invoices"]["rows_unchanged"] == 300 and report["invoices"]["requests"] == 0
    assert report["invoices"]["rows_sent"] == 0
    run, report = upload(server, *args, "--full")
    assert run.code == 0, run.text
    assert report["invoices"]["rows_sent"] == 300 and report["invoices"]["rows_unchanged"] == 0


def test_changed_rows_only_are_sent(tmp_path, files, sandbox_server, upload):
    customers, invoices, mapping = files(100)
    server = sandbox_server()
    args = ("all", "--customers", customers, "--invoices", invoices, "--mapping", mapping)
    assert upload(server, *args)[0].code == 0
    text = invoices.read_text().replace("I00007,7.07", "I00007,8.00")
    invoices.write_text(text)
    run, report = upload(server, *args)
    assert run.code == 0
    assert report["invoices"]["rows_sent"] == 1 and report["invoices"]["rows_unchanged"] == 99
    stored = {r["invoiceNumber"]: r for r in server.records("invoices")}
    assert stored["I00007"]["invoiceAmount"] == 800


def test_injected_faults_every_row_stored_exactly(tmp_path, payor, files, sandbox_server, upload):
    customers, invoices, mapping = files(2000)
    server = sandbox_server(
        "--fault-rate", "0.2", "--faults", "500,502,503,429,drop", "--seed", "3"
    )
    run, report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--batch-size", "50",
    )  # fmt: skip
    assert run.code == 0, run.text
    assert by_key(server.records("invoices")) == by_key(
        dry_payloads(payor, tmp_path, "invoices", invoices, mapping)
    )
    stats = server.stats()
    assert sum(stats["injected"].values()) > 0
    assert report["invoices"]["retries"] + report["customers"]["retries"] == sum(
        stats["injected"].values()
    )
    assert report["invoices"]["requests"] + report["customers"]["requests"] == stats["requests"]


def test_timeout_after_the_server_stored_the_batch_is_resent(files, sandbox_server, upload):
    customers, invoices, mapping = files(200)
    server = sandbox_server("--stall-rate", "0.3", "--stall-seconds", "1.5", "--seed", "1")
    run, report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--batch-size", "20", config="[api]\ntimeout = 0.5\n",
    )  # fmt: skip
    assert run.code == 0, run.text
    assert len(server.records("invoices")) == 200
    assert report["invoices"]["retries"] > 0
    assert server.stats()["writes"]["invoices"] > 200  # stored twice, harmlessly


def test_one_bad_row_in_500_refused_without_naming_it(tmp_path, files, sandbox_server, upload):
    customers, invoices, mapping = files(500)
    server = sandbox_server("--no-name-rows", "--refuse-keys", "^I00321$")
    rejected = tmp_path / "rejected.csv"
    run, report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--rejected", rejected,
    )  # fmt: skip
    assert run.code == 1, run.text
    stored = server.records("invoices")
    assert len(stored) == 499 and "I00321" not in {r["invoiceNumber"] for r in stored}
    rows = read_rejected(tmp_path / "rejected.invoices.csv")
    assert [r["Invoice"] for r in rows] == ["I00321"]
    assert rows[0]["source_row"] == "323" and "validation failed" in rows[0]["errors"]
    assert report["invoices"]["rows_rejected"] == 1 and report["invoices"]["rows_accepted"] == 499
    assert report["invoices"]["errors"][0]["kind"] == "server_rejected"


def test_named_rows_are_rejected_and_the_rest_resent(tmp_path, files, sandbox_server, upload):
    customers, invoices, mapping = files(100)
    server = sandbox_server("--refuse-keys", "^I0004[0-4]$")
    run, report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping
    )
    assert run.code == 1
    assert len(server.records("invoices")) == 95
    assert report["invoices"]["requests"] == 2 and report["invoices"]["rows_rejected"] == 5


def test_invoices_of_rejected_customers_are_held_back(tmp_path, files, sandbox_server, upload):
    customers, invoices, mapping = files(40, customers=4, bad_email=2)
    server = sandbox_server()
    run, report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--rejected", tmp_path / "rejected.csv",
    )  # fmt: skip
    assert run.code == 1
    assert len(server.records("customers")) == 3
    held = read_rejected(tmp_path / "rejected.invoices.csv")
    assert len(held) == 10 and {r["Customer"] for r in held} == {"C002"}
    assert "its customer C002 was rejected" in held[0]["errors"]
    assert len(server.records("invoices")) == 30
    assert report["invoices"]["errors"][0]["kind"] == "customer_rejected"


def test_413_halves_the_batch_size(files, sandbox_server, upload):
    customers, invoices, mapping = files(400)
    server = sandbox_server("--max-batch", "120")
    run, _report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping
    )
    assert run.code == 0, run.text
    assert len(server.records("invoices")) == 400
    assert server.stats()["by_status"]["413"] == 2  # 400 -> 200 -> 100, then the rest in hundreds


def test_wrong_key_exits_3_after_one_request(files, sandbox_server, upload):
    customers, _, mapping = files(10)
    server = sandbox_server()
    run, report = upload(
        server, "customers", customers, "--mapping", mapping, env={"PAYOR_API_SECRET": "wrong"}
    )
    assert run.code == 3, run.text
    assert server.stats()["requests"] == 1
    assert "check PAYOR_API_KEY and PAYOR_API_SECRET" in run.err
    assert report["exit_code"] == 3


def test_no_credentials_exit_2_nothing_sent(files, sandbox_server, payor, tmp_path):
    customers, _, mapping = files(10)
    server = sandbox_server()
    run = payor(
        "upload",
        "customers",
        customers,
        "--mapping",
        mapping,
        "--base-url",
        server.url,
        "--state-dir",
        tmp_path / "s",
    )
    assert run.code == 2 and "PAYOR_API_KEY" in run.err
    assert server.stats()["requests"] == 0


def test_plain_http_refused_except_loopback(files, payor, tmp_path):
    customers, _, mapping = files(3)
    run = payor(
        "upload", "customers", customers, "--mapping", mapping, "--base-url", "http://crm.example.com",
        "--state-dir", tmp_path / "s", env=CREDENTIALS,
    )  # fmt: skip
    assert run.code == 2 and "clear text" in run.err and API_SECRET not in run.text


def test_unreachable_server_exits_3(files, payor, tmp_path):
    customers, _, mapping = files(3)
    settings = write_mapping(tmp_path / "s.toml", "[upload]\nmax_retries = 2\n")
    run = payor(
        "upload", "customers", customers, "--mapping", mapping, "--base-url", "http://127.0.0.1:9",
        "--state-dir", tmp_path / "s", "--config", settings, env=CREDENTIALS,
    )  # fmt: skip
    assert run.code == 3, run.text
    assert (
        "gave up on http://127.0.0.1:9/jsonApi/upload/customers after 3 tries (2 retries)"
        in run.err
    )
    # the address and the cause once, then only the count
    retries = [line.split(" ", 1)[1] for line in run.err.splitlines() if "; retry " in line]
    assert retries == [
        "sending 20 customers to http://127.0.0.1:9/jsonApi/upload/customers: connection refused"
        f" (nothing listens there); retry 1 of 2 in {retries[0].rsplit(' in ', 1)[1]}",
        f"still connection refused; retry 2 of 2 in {retries[1].rsplit(' in ', 1)[1]}",
    ]


def test_second_run_on_the_same_state_dir_exits_4(tmp_path, files, sandbox_server, upload, payor):
    customers, invoices, mapping = files(300)
    server = sandbox_server("--rate-limit", "2", "--rate-window", "1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")} | CREDENTIALS
    first = subprocess.Popen(
        [sys.executable, "-m", "payor_cli", "upload", "invoices", invoices, "--mapping", mapping,
         "--base-url", server.url, "--state-dir", tmp_path / "state", "--batch-size", "10"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while server.stats()["requests"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        run, _ = upload(server, "customers", customers, "--mapping", mapping)
        assert run.code == 4, run.text
        assert "another payor run" in run.err
    finally:
        first.kill()
        first.wait()
    assert first.returncode == -signal.SIGKILL  # it held the lock until it was killed
    run, _ = upload(server, "customers", customers, "--mapping", mapping)
    assert run.code == 0, run.text  # the killed run's lock does not block


@pytest.mark.parametrize("kill_after", [1, 7, 19])
def test_sigkill_then_rerun_loses_nothing(
    tmp_path, payor, files, sandbox_server, upload, kill_after
):
    customers, invoices, mapping = files(1000)
    server = sandbox_server("--stall-rate", "1.0", "--stall-seconds", "0.05")
    assert upload(server, "customers", customers, "--mapping", mapping)[0].code == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")} | CREDENTIALS
    victim = subprocess.Popen(
        [sys.executable, "-m", "payor_cli", "upload", "invoices", invoices, "--mapping", mapping,
         "--base-url", server.url, "--state-dir", tmp_path / "state", "--batch-size", "20"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while (
        server.stats()["by_status"].get("200", 0) < kill_after + 1 and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL  # killed mid-run, not ended on its own
    partial = len(server.records("invoices"))
    assert 0 < partial < 1000
    run, report = upload(server, "invoices", invoices, "--mapping", mapping, "--batch-size", "20")
    assert run.code == 0, run.text
    assert by_key(server.records("invoices")) == by_key(
        dry_payloads(payor, tmp_path, "invoices", invoices, mapping)
    )
    # at most the batches in flight (4 of 20 rows, the default concurrency) are sent again
    assert report["rows_unchanged"] >= partial - 4 * 20


def test_secret_never_written_anywhere(tmp_path, files, sandbox_server, upload):
    customers, invoices, mapping = files(200, bad_email=3)
    server = sandbox_server("--fault-rate", "0.3", "--refuse-keys", "^I0001", "--seed", "5")
    log = tmp_path / "payor.log"
    run, _ = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--rejected", tmp_path / "rejected.xlsx", "--log-file", log, "--batch-size", "25",
    )  # fmt: skip
    assert run.code == 1, run.text
    wrong, _ = upload(
        server, "customers", customers, "--mapping", mapping, env={"PAYOR_API_KEY": "nope"}
    )
    assert wrong.code == 3
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith("sandbox-")]
    assert log in written and (tmp_path / "state" / "journal.sqlite") in written
    for output in [run.out, run.err, wrong.out, wrong.err] + [p.read_bytes() for p in written]:
        data = output.encode() if isinstance(output, str) else output
        assert API_SECRET.encode() not in data
        assert CREDENTIALS["PAYOR_API_KEY"].encode() not in data


def test_readme_sandbox_command_works(payor, tmp_path):
    run = payor(
        "upload", "all", "--customers", SAMPLES / "customers.csv", "--invoices", SAMPLES / "invoices.xlsx",
        "--config", SAMPLES.parent / "config.example.toml", "--sandbox", "--state-dir", tmp_path / "state",
    )  # fmt: skip
    assert run.code == 0, run.text
    assert "invoices: 40 read, 40 valid, 0 rejected" in run.out and "40 accepted" in run.out
    again = payor(
        "upload", "all", "--customers", SAMPLES / "customers.csv", "--invoices", SAMPLES / "invoices.xlsx",
        "--config", SAMPLES.parent / "config.example.toml", "--sandbox", "--state-dir", tmp_path / "state",
    )  # fmt: skip
    assert again.code == 0 and "40 unchanged, 0 sent" in again.out


def test_rate_limit_is_respected_without_spending_429s(files, sandbox_server, upload):
    customers, invoices, mapping = files(600)
    server = sandbox_server("--rate-limit", "4", "--rate-window", "0.5")
    run, report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--batch-size", "50",
    )  # fmt: skip
    assert run.code == 0, run.text
    requests = report["customers"]["requests"] + report["invoices"]["requests"]
    assert requests == 13
    stats = server.stats()
    assert "first_quota_phase_s" in stats  # the server counted every request against its quota
    # 13 requests, each accepted at the first try, at 4 a window: the server saw them spread
    # over at least 4 windows, so payor waited for the window ends instead of spending a 429
    assert stats["by_status"] == {"200": 13} and stats["rate_limited"] == 0


def test_log_file_gets_timestamped_lines(tmp_path, files, sandbox_server, upload):
    customers, _, mapping = files(5)
    server = sandbox_server()
    log = tmp_path / "cron.log"
    run, _ = upload(
        server, "customers", customers, "--mapping", mapping, "--quiet", "--log-file", log
    )
    assert run.code == 0
    lines = log.read_text().splitlines()
    assert lines and all(line[:4].isdigit() and "T" in line[:11] for line in lines)
    assert any("20 accepted" in line for line in lines)


def test_config_with_readable_secret_draws_a_warning(tmp_path, files, payor):
    customers, _, mapping = files(3)
    config = tmp_path / "payor.toml"
    config.write_text(f'[api]\napi_key = "k-123456"\napi_secret = "{API_SECRET}"\n')
    config.chmod(0o644)
    run = payor("upload", "customers", customers, "--mapping", mapping, "--dry-run")
    assert run.code == 0
    assert "others can read it" in run.err and "chmod 600" in run.err
    assert API_SECRET not in run.text
    config.chmod(0o600)
    quiet = payor("upload", "customers", customers, "--mapping", mapping, "--dry-run")
    assert quiet.code == 0, quiet.text
    assert "others can read it" not in quiet.err


def test_413_halves_once_for_batches_cut_before_it_came(files, sandbox_server, upload):
    """Batches cut at the old size, in flight or queued when the first 413 came, are cut again
    at the halved size, not halved once more each (which would fall to one row a request)."""
    customers, _, mapping = files(400, customers=400)
    server = sandbox_server("--max-batch", "7")
    run, _report = upload(
        server, "customers", customers, "--mapping", mapping, "--batch-size", "30",
        "--concurrency", "1",
    )  # fmt: skip
    assert run.code == 0, run.text
    assert len(server.records("customers")) == 400
    answered = server.stats()["by_status"]
    assert answered["413"] == 2  # 30 -> 15 -> 7, then every batch fits
    # about one request a 7 rows (a few shorter parts where a cut batch ends): not 358
    assert 400 // 7 < answered["200"] <= 400 // 7 + 5
