"""The sandbox API server over real loopback HTTP: auth, validation, upserts, faults, rate limits."""

from __future__ import annotations

import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from payor_cli.contract import Credentials
from payor_cli.sandbox import server as sandbox_module
from payor_cli.sandbox.server import Sandbox, SandboxConfig
from payor_cli.send.client import ApiClient
from payor_cli.send.retry import Clock
from payor_cli.targets.payorcrm.adapter import PayorCrm
from payor_cli.targets.payorcrm.sandbox import PayorCrmRoutes
from payor_cli.targets.payorcrm.spec import CUSTOMERS as CUSTOMERS_KIND
from payor_cli.targets.payorcrm.spec import INVOICES as INVOICES_KIND

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "k-test-1", "s3cret-never-logged"
AUTH = {"api_key": KEY, "api_secret": SECRET}
CUSTOMERS, INVOICES = CUSTOMERS_KIND.path, INVOICES_KIND.path


def customer(no: str, **extra) -> dict:
    return {"customerno": no, "emailaddress1": f"{no.lower()}@example.com", **extra}


def invoice(no: str, customer_no: str = "C1", amount: int = 100, **extra) -> dict:
    return {"customerNumber": customer_no, "invoiceNumber": no, "invoiceAmount": amount, **extra}


@pytest.fixture
def start():
    """Start a real sandbox on a free loopback port; every one is stopped after the test."""
    servers: list[Sandbox] = []

    def make(log=None, **options) -> Sandbox:
        server = Sandbox(
            SandboxConfig(api_key=KEY, api_secret=SECRET, **options), PayorCrmRoutes(), log=log
        )
        servers.append(server.start())
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(start) -> Sandbox:
    return start()


def post(server: Sandbox, path: str, rows, headers=None, timeout=5.0) -> requests.Response:
    """POST the rows as a JSON array (or raw bytes) with the test credentials by default."""
    body = rows if isinstance(rows, bytes) else json.dumps(rows).encode()
    sent = {"Content-Type": "application/json", **(AUTH if headers is None else headers)}
    return requests.post(server.url + path, data=body, headers=sent, timeout=timeout)


def get(server: Sandbox, path: str):
    answer = requests.get(server.url + path, timeout=5)
    assert answer.status_code == 200
    return answer.json()


def stored_with_customer(server: Sandbox, *numbers: str) -> None:
    rows = [customer(n) for n in numbers or ("C1",)]
    assert post(server, CUSTOMERS, rows).status_code == 200


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"api_key": "wrong", "api_secret": SECRET},
        {"api_key": KEY, "api_secret": "wrong"},
        {"api_key": KEY},
        {},
    ],
    ids=["wrong-key", "wrong-secret", "no-secret", "no-headers"],
)
def test_bad_or_missing_credentials_get_401_and_store_nothing(server, headers):
    answer = post(server, CUSTOMERS, [customer("C1")], headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"success": False, "message": "invalid api_key or api_secret"}
    assert server.records("customers") == []


# --- storing ------------------------------------------------------------------------------------


def test_valid_batch_is_stored_and_listed_as_received_in_order(server):
    rows = [customer("C2", companyname="Zeta Ltd"), customer("C1"), customer("C3", cocode="XY")]
    answer = post(server, CUSTOMERS, rows)
    assert answer.status_code == 200
    assert answer.json() == {"success": True, "stored": 3}
    assert get(server, "/sandbox/records/customers") == rows
    assert server.records("customers") == rows
    assert get(server, "/sandbox/records/invoices") == []


def test_every_field_type_accepts_its_valid_values(server):
    stored_with_customer(server)
    row = invoice(
        "I1",
        amount=-12345,
        localAmount=0,
        postDate="2024-02-29",
        dueDate="2024-12-31",
        billAddr={"street": "Main 1", "zip": "10115"},
        shipAddr={},
        currency="EUR",
        balanceAmount="123.45",
    )
    answer = post(server, INVOICES, [row])
    assert answer.status_code == 200, answer.text
    assert server.records("invoices") == [row]


def test_second_write_of_a_key_replaces_it_and_counts_two_writes(start, tmp_path):
    db = tmp_path / "sandbox.sqlite"
    server = start(db_path=db)
    assert post(server, CUSTOMERS, [customer("C1"), customer("C2")]).status_code == 200
    assert post(server, CUSTOMERS, [customer("C1", companyname="Renamed")]).status_code == 200
    assert server.records("customers") == [customer("C1", companyname="Renamed"), customer("C2")]
    assert server.stats()["writes"] == {"customers": 3, "invoices": 0}
    with sqlite3.connect(db) as conn:
        writes = dict(conn.execute("SELECT key, writes FROM records WHERE kind = 'customers'"))
    assert writes == {"C1": 2, "C2": 1}


def test_file_store_survives_a_restart(start, tmp_path):
    db = tmp_path / "sandbox.sqlite"
    first = start(db_path=db)
    stored_with_customer(first, "C7")
    first.stop()
    second = start(db_path=db)
    assert second.records("customers") == [customer("C7")]
    assert post(second, INVOICES, [invoice("I1", "C7")]).status_code == 200


# --- validation ---------------------------------------------------------------------------------

BAD_INVOICES = {
    "amount-as-string": (invoice("I2", amount="100"), "invoiceAmount", "integer"),
    "amount-as-float": (invoice("I2", amount=100.0), "invoiceAmount", "integer"),
    "amount-as-bool": (invoice("I2", amount=True), "invoiceAmount", "integer"),
    "impossible-date": (invoice("I2", postDate="2024-02-31"), "postDate", "real date"),
    "date-not-iso": (invoice("I2", dueDate="31.12.2024"), "dueDate", "YYYY-MM-DD"),
    "compact-date": (invoice("I2", dueDate="20241231"), "dueDate", "YYYY-MM-DD"),
    "json-as-string": (invoice("I2", billAddr="Main 1"), "billAddr", "JSON object"),
    "json-as-array": (invoice("I2", shipAddr=["Main 1"]), "shipAddr", "JSON object"),
    "unknown-field": (invoice("I2", amount_eur=5), "amount_eur", "unknown field"),
    "missing-required": (
        {"customerNumber": "C1", "invoiceAmount": 1},
        "invoiceNumber",
        "required",
    ),
    "empty-required": (invoice(" "), "invoiceNumber", "required"),
    "string-as-number": (invoice("I2", currency=978), "currency", "string"),
    "null-value": (invoice("I2", status=None), "status", "string"),
}


@pytest.mark.parametrize(("row", "field", "fragment"), BAD_INVOICES.values(), ids=BAD_INVOICES)
def test_each_type_rule_refuses_the_whole_batch_naming_row_and_field(server, row, field, fragment):
    stored_with_customer(server)
    answer = post(server, INVOICES, [invoice("I1"), row, invoice("I3")])
    assert answer.status_code == 400
    body = answer.json()
    assert body["success"] is False
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, field)]
    assert fragment in body["errors"][0]["message"]
    assert server.records("invoices") == []


@pytest.mark.parametrize("email", ["john at example.com", "john @example.com", "john", "@x", 7])
def test_bad_email_is_refused(server, email):
    answer = post(server, CUSTOMERS, [customer("C1"), {"customerno": "C2", "emailaddress1": email}])
    assert answer.status_code == 400
    assert [(e["index"], e["field"]) for e in answer.json()["errors"]] == [(1, "emailaddress1")]
    assert server.records("customers") == []


def test_row_that_is_not_an_object_is_refused(server):
    answer = post(server, CUSTOMERS, [customer("C1"), ["C2", "c2@x.example"]])
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"index": 1, "field": None, "message": "row must be a JSON object, got array"}
    ]


def test_every_problem_of_every_row_is_named(server):
    rows = [{"customerno": "C1"}, customer("C2"), {"emailaddress1": "bad", "x": 1}]
    errors = post(server, CUSTOMERS, rows).json()["errors"]
    assert sorted((e["index"], e["field"]) for e in errors) == [
        (0, "emailaddress1"),
        (2, "customerno"),
        (2, "emailaddress1"),
        (2, "x"),
    ]


def test_invoice_of_unknown_customer_is_refused(server):
    stored_with_customer(server, "C1")
    answer = post(server, INVOICES, [invoice("I1", "C1"), invoice("I2", "C9")])
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"index": 1, "field": "customerNumber", "message": "customer C9 does not exist"}
    ]
    assert server.records("invoices") == []


def test_without_name_rows_a_refusal_names_no_row(start):
    server = start(name_rows=False)
    answer = post(server, CUSTOMERS, [customer("C1"), customer("C2", emailaddress1="nope")])
    assert answer.status_code == 400
    assert answer.json() == {"success": False, "message": "validation failed"}
    assert server.records("customers") == []


def test_refuse_keys_refuses_only_the_matching_row(start):
    server = start(refuse_keys="^C0321$")
    rows = [customer(f"C{i:04d}") for i in range(500)]
    answer = post(server, CUSTOMERS, rows)
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"index": 321, "field": "customerno", "message": "refused by sandbox rule"}
    ]
    assert post(server, CUSTOMERS, rows[:321] + rows[322:]).status_code == 200
    assert len(server.records("customers")) == 499


@pytest.mark.parametrize(
    ("body", "fragment"),
    [(b"[{", "malformed JSON"), (b'{"customerno": "C1"}', "JSON array"), (b"\xff[]", "malformed")],
)
def test_malformed_body_is_refused_naming_nothing(server, body, fragment):
    answer = post(server, CUSTOMERS, body)
    assert answer.status_code == 400
    assert set(answer.json()) == {"success", "message"}
    assert fragment in answer.json()["message"]


def test_body_that_is_not_json_content_type_gets_415(server):
    answer = requests.post(
        server.url + CUSTOMERS, data=json.dumps([customer("C1")]), headers=AUTH, timeout=5
    )
    assert answer.status_code == 415
    assert server.records("customers") == []


def test_unknown_path_is_404(server):
    assert post(server, "/jsonApi/upload/contacts", [customer("C1")]).status_code == 404
    assert requests.get(server.url + "/sandbox/records/contacts", timeout=5).status_code == 404


def test_batch_above_max_batch_gets_413_and_at_max_is_stored(start):
    server = start(max_batch=3)
    too_many = post(server, CUSTOMERS, [customer(f"C{i}") for i in range(4)])
    assert too_many.status_code == 413
    assert too_many.json() == {"success": False, "message": "batch too large, max 3 rows"}
    assert server.records("customers") == []
    assert post(server, CUSTOMERS, [customer(f"C{i}") for i in range(3)]).status_code == 200


# --- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["500", "502", "503", "504", "429"])
def test_injected_status_fault_stores_nothing(start, fault):
    server = start(fault_rate=1.0, faults=(fault,))
    answer = post(server, CUSTOMERS, [customer("C1")])
    assert answer.status_code == int(fault)
    if fault in ("429", "503"):
        assert answer.headers["Retry-After"] in ("0", "1")
    assert server.records("customers") == []
    stats = server.stats()
    assert stats["injected"] == {fault: 1}
    assert stats["by_status"] == {fault: 1}
    assert stats["writes"]["customers"] == 0


def test_injected_drop_closes_the_connection_without_an_answer(start):
    server = start(fault_rate=1.0, faults=("drop",))
    with pytest.raises(requests.ConnectionError):
        post(server, CUSTOMERS, [customer("C1")])
    assert server.records("customers") == []
    assert server.stats()["injected"] == {"drop": 1}
    assert server.stats()["requests"] == 1


def test_injected_soft_failure_is_200_with_success_false_and_stores_nothing(start):
    server = start(fault_rate=1.0, faults=("soft",))
    answer = post(server, CUSTOMERS, [customer("C1")])
    assert answer.status_code == 200
    assert answer.json() == {"success": False, "message": "temporarily unavailable"}
    assert server.records("customers") == []


def test_faults_repeat_exactly_with_the_same_seed(start):
    def statuses(seed: int) -> list[int]:
        server = start(fault_rate=0.5, faults=("500", "503", "soft"), seed=seed)
        return [post(server, CUSTOMERS, [customer(f"C{i}")]).status_code for i in range(30)]

    first = statuses(7)
    assert first == statuses(7)
    assert 200 in first
    assert {500, 503} & set(first)  # some injected faults came, as chosen


def test_stalled_answer_comes_after_the_rows_were_stored(start):
    server = start(stall_rate=1.0, stall_seconds=0.6)
    with pytest.raises(requests.Timeout):
        post(server, CUSTOMERS, [customer("C1")], timeout=0.2)
    assert server.records("customers") == [customer("C1")]
    assert server.stats()["stalled"] == 1


# --- rate limits --------------------------------------------------------------------------------


def test_rate_limit_headers_and_429_beyond_the_quota(start):
    server = start(rate_limit=2, rate_window=30)
    first, second, third = (post(server, CUSTOMERS, [customer(f"C{i}")]) for i in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert [a.headers["X-RateLimit-Remaining"] for a in (first, second, third)] == ["1", "0", "0"]
    for answer in (first, second, third):
        assert 0 < float(answer.headers["X-RateLimit-Reset"]) <= 30
    assert 1 <= int(third.headers["Retry-After"]) <= 30
    assert len(server.records("customers")) == 2
    stats = server.stats()
    assert stats["by_status"] == {"200": 2, "429": 1}
    assert stats["rate_limited"] == 1 and stats["injected"] == {
        "500": 0,
        "502": 0,
        "503": 0,
        "429": 0,
        "drop": 0,
    }


class SharedClock:
    """One fake time for the sandbox's quota windows and payor's client: it moves only when the
    client waits, and every wait is recorded, so a window turns exactly when the client waited
    for it (never between two requests by chance) and no assertion reads the wall clock."""

    WALL = 1_800_000_000.0

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        # the sandbox reads its windows from its module's `time`; it must see this clock from
        # its construction on (its first window starts then)
        fake_time = SimpleNamespace(
            monotonic=lambda: self.now, time=lambda: self.WALL + self.now, sleep=time.sleep
        )
        monkeypatch.setattr(sandbox_module, "time", fake_time)
        self.client = Clock(
            monotonic=lambda: self.now,
            wall=lambda: self.WALL + self.now,
            sleep=self._sleep,
            random=lambda: 0.0,  # no jitter: a wait is exactly what the server asked for
        )

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_limit_reset_as_epoch(start, monkeypatch):
    clock = SharedClock(monkeypatch)
    server = start(rate_limit=5, rate_window=30, reset_style="epoch")
    answer = post(server, CUSTOMERS, [customer("C1")])
    # the window's end as a Unix time: 30 s after the window began, rounded up to a second
    assert answer.headers["X-RateLimit-Reset"] == str(int(SharedClock.WALL + clock.now + 30))
    assert answer.headers["X-RateLimit-Remaining"] == "4"


def test_a_429_is_honoured_and_the_quota_comes_back_in_the_next_window(start, monkeypatch):
    clock = SharedClock(monkeypatch)
    server = start(rate_limit=1, rate_window=30)
    # another client of the same key spends the window's one request: payor meets a 429
    assert post(server, CUSTOMERS, [customer("C1")]).status_code == 200
    client = ApiClient(
        server.url, Credentials(KEY, SECRET), target=PayorCrm(), clock=clock.client, timeout=5
    )
    answer = client.post(CUSTOMERS, json.dumps([customer("C2")]).encode(), "1 customer")
    assert answer.outcome == "accepted"
    stats = server.stats()
    assert stats["rate_limited"] == 1  # the sandbox did answer 429 ...
    assert stats["by_status"] == {"200": 2, "429": 1}
    assert clock.sleeps == [30.0]  # ... payor waited its Retry-After, to the window's end ...
    assert (client.requests, client.retries) == (2, 1)
    # ... and its one retry, in the next window, was stored
    assert server.records("customers") == [customer("C1"), customer("C2")]


# --- stats, reset, logs, transport ------------------------------------------------------------


def test_stats_count_requests_statuses_rows_and_writes(server):
    post(server, CUSTOMERS, [customer("C1"), customer("C2")])
    post(server, CUSTOMERS, [customer("C1")])
    post(server, INVOICES, [invoice("I1", "C1"), invoice("I2", "C0")])
    post(server, CUSTOMERS, [customer("C3")], headers={})
    stats = get(server, "/sandbox/stats")
    first, last = stats.pop("write_spans")["customers"]
    assert 0 < first < last  # seconds since start of the first and the last write
    assert stats == {
        "requests": 4,
        "by_status": {"200": 2, "400": 1, "401": 1},
        "rows_received": 6,
        "writes": {"customers": 3, "invoices": 0},
        "injected": {"500": 0, "502": 0, "503": 0, "429": 0, "drop": 0},
        "rate_limited": 0,
        "stalled": 0,
        "in_flight_max": 1,
    }


def test_reset_clears_records_and_stats(server):
    stored_with_customer(server, "C1")
    assert requests.post(server.url + "/sandbox/reset", timeout=5).json() == {"success": True}
    assert server.records("customers") == []
    assert server.stats()["requests"] == 0 and server.stats()["writes"]["customers"] == 0


def test_log_gets_request_lines_but_never_a_credential(start):
    lines: list[str] = []
    server = start(log=lines.append)
    post(server, CUSTOMERS, [customer("C1")])
    post(server, CUSTOMERS, [customer("C1")], headers={"api_key": KEY, "api_secret": "x"})
    assert any("POST /jsonApi/upload/customers -> 200" in line for line in lines)
    assert any("-> 401" in line for line in lines)
    assert not any(SECRET in line or KEY in line for line in lines)


def test_keep_alive_connection_serves_several_requests(server):
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = {"Content-Type": "application/json", **AUTH}
    try:
        for i in range(3):
            conn.request("POST", CUSTOMERS, json.dumps([customer(f"C{i}")]), headers)
            answer = conn.getresponse()
            assert answer.status == 200 and json.loads(answer.read())["stored"] == 1
            assert answer.getheader("Connection", "keep-alive").lower() != "close"
    finally:
        conn.close()
    assert len(server.records("customers")) == 3


def test_bad_config_is_refused_before_serving():
    with pytest.raises(ValueError, match="unknown fault"):
        SandboxConfig(faults=("418",))
    with pytest.raises(ValueError, match="reset_style"):
        SandboxConfig(reset_style="minutes")
    with pytest.raises(ValueError, match="regex"):
        SandboxConfig(refuse_keys="(")


def test_sandbox_runs_as_its_own_process(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = textwrap.dedent(
        f"""
        from payor_cli.sandbox.server import Sandbox, SandboxConfig
        from payor_cli.targets.payorcrm.sandbox import PayorCrmRoutes
        config = SandboxConfig(api_key={KEY!r}, api_secret={SECRET!r})
        Sandbox(config, PayorCrmRoutes(), port={port}, log=lambda line: print(line, flush=True)).serve_forever()
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "sandbox.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(url + "/sandbox/stats", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, (tmp_path / "sandbox.log").read_text()
                assert time.monotonic() < deadline, "the sandbox did not come up"
                time.sleep(0.05)
        answer = requests.post(url + CUSTOMERS, json=[customer("C1")], headers=AUTH, timeout=5)
        assert answer.json() == {"success": True, "stored": 1}
        records = requests.get(url + "/sandbox/records/customers", timeout=5).json()
        assert records == [customer("C1")]
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    assert "POST /jsonApi/upload/customers -> 200" in (tmp_path / "sandbox.log").read_text()
