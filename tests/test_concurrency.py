"""Requests in flight: several batches out at once, in file order, each journalled when accepted;
customers settled before invoices; a quota shared by them and never overrun."""

from __future__ import annotations

import pytest
from conftest import read_rejected, write_mapping


def by_key(records: list[dict], key: str = "invoiceNumber") -> list[dict]:
    return sorted(records, key=lambda record: record[key])


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_is_the_most_requests_the_server_sees_at_once(
    concurrency, files, sandbox_server, upload
):
    customers, invoices, mapping = files(600)
    server = sandbox_server("--latency", "0.15")
    run, report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--batch-size", "50", "--concurrency", str(concurrency),
    )  # fmt: skip
    assert run.code == 0, run.text
    assert server.stats()["in_flight_max"] == concurrency
    invoices_report = report["invoices"]
    assert invoices_report["requests"] == 12 and invoices_report["rows_accepted"] == 600
    assert len(server.records("invoices")) == 600


def test_default_concurrency_is_4_and_the_config_sets_it(files, sandbox_server, upload):
    customers, invoices, mapping = files(400)
    server = sandbox_server("--latency", "0.15")
    args = ("all", "--customers", customers, "--invoices", invoices, "--mapping", mapping)
    args += ("--batch-size", "25")
    assert upload(server, *args)[0].code == 0
    assert server.stats()["in_flight_max"] == 4
    server = sandbox_server("--latency", "0.15")
    run, _ = upload(server, *args, config="[upload]\nconcurrency = 2\n")
    assert run.code == 0, run.text
    assert server.stats()["in_flight_max"] == 2


def test_every_customer_is_settled_before_the_first_invoice(files, sandbox_server, upload):
    customers, invoices, mapping = files(300, customers=200)
    server = sandbox_server("--latency", "0.05")
    run, report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--batch-size", "20",
    )  # fmt: skip
    assert run.code == 0, run.text
    stats = server.stats()
    assert stats["in_flight_max"] == 4
    spans = stats["write_spans"]
    assert spans["customers"][1] < spans["invoices"][0]
    assert report["customers"]["rows_accepted"] == 200
    assert report["invoices"]["rows_accepted"] == 300


def test_refusals_bisected_and_413_halved_with_batches_in_flight(
    tmp_path, files, sandbox_server, upload
):
    customers, invoices, mapping = files(1000)
    server = sandbox_server(
        "--max-batch", "60", "--no-name-rows", "--refuse-keys", "^I00(123|456|789)$",
        "--latency", "0.02",
    )  # fmt: skip
    run, report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--batch-size", "100", "--rejected", tmp_path / "rejected.csv",
    )  # fmt: skip
    assert run.code == 1, run.text
    stored = {r["invoiceNumber"] for r in server.records("invoices")}
    assert len(stored) == 997 and not stored & {"I00123", "I00456", "I00789"}
    report = report["invoices"]
    assert report["rows_accepted"] == 997 and report["rows_rejected"] == 3
    assert report["rows_sent"] == 1000
    refused = read_rejected(tmp_path / "rejected.invoices.csv")
    # with requests in flight, the server's refusals are written in the order they came
    assert sorted(r["Invoice"] for r in refused) == ["I00123", "I00456", "I00789"]
    assert "413" in server.stats()["by_status"]


def test_a_quota_is_shared_by_the_requests_in_flight(files, sandbox_server, upload):
    customers, invoices, mapping = files(1200)
    server = sandbox_server("--rate-limit", "5", "--rate-window", "0.4")
    run, report = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--batch-size", "50", "--concurrency", "4",
    )  # fmt: skip
    assert run.code == 0, run.text
    assert report["invoices"]["requests"] == 24 and report["invoices"]["retries"] == 0
    stats = server.stats()
    assert "first_quota_phase_s" in stats  # the quota was in force: 25 requests need 5 windows
    assert stats["by_status"] == {"200": 25}  # the customers' one and 24: no 429
    assert len(server.records("invoices")) == 1200


def test_one_request_alone_until_the_quota_is_known(files, sandbox_server, upload):
    customers, invoices, mapping = files(100)
    server = sandbox_server("--rate-limit", "2", "--rate-window", "1", "--latency", "0.1")
    run, _ = upload(
        server, "all", "--customers", customers, "--invoices", invoices, "--mapping", mapping,
        "--batch-size", "20",
    )  # fmt: skip
    assert run.code == 0, run.text
    assert server.stats()["by_status"] == {"200": 6}
    assert server.stats()["in_flight_max"] == 1  # two a window: never two out at once


def test_concurrency_must_be_a_whole_number_of_1_or_more(tmp_path, files, payor):
    _, invoices, mapping = files(5)
    config = write_mapping(tmp_path / "payor.toml", "[upload]\nconcurrency = 0\n")
    run = payor("upload", "invoices", invoices, "--mapping", mapping, "--config", config)
    assert run.code == 2
    assert "concurrency must be a whole number of 1 or more, not 0" in run.err


def test_one_by_one_targets_send_with_the_same_concurrency(tmp_path, sandbox_server, upload):
    source = tmp_path / "customers.csv"
    source.write_text(
        "account,email\n" + "".join(f"Firm {n},firm{n}@x.example\n" for n in range(40))
    )
    mapping = write_mapping(
        tmp_path / "bs.toml", '[customers.fields]\naccount = "account"\nemail = "email"\n'
    )
    server = sandbox_server("--target", "business-suite", "--latency", "0.1")
    # new customers go 5 a batch create: 8 creates, 3 of them out at once
    run, report = upload(
        server, "customers", source, "--mapping", mapping, "--target", "business-suite",
        "--batch-size", "5", "--concurrency", "3",
    )  # fmt: skip
    assert run.code == 0, run.text
    assert server.stats()["in_flight_max"] == 3
    assert report["rows_accepted"] == 40
    assert sorted(r["email"] for r in server.records("customers")) == sorted(
        f"firm{n}@x.example" for n in range(40)
    )
