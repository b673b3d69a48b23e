"""The HTTP client against an in-process sandbox, on an injected clock: every wait asserted."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from payor_cli.contract import Credentials
from payor_cli.errors import AbortedError
from payor_cli.sandbox import server as sandbox_module
from payor_cli.sandbox.server import Sandbox, SandboxConfig
from payor_cli.send.client import ApiClient
from payor_cli.send.retry import Clock, RetryPolicy
from payor_cli.targets.payorcrm.adapter import PayorCrm
from payor_cli.targets.payorcrm.sandbox import PayorCrmRoutes

CUSTOMERS = "/jsonApi/upload/customers"


class FakeClock:
    """Time that moves only when the client sleeps; sleeps are recorded."""

    def __init__(self, random_value: float = 1.0) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.clock = Clock(
            monotonic=lambda: self.now,
            wall=lambda: 1_800_000_000 + self.now,
            sleep=self._sleep,
            random=lambda: random_value,
        )

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def body(*numbers: int) -> bytes:
    rows = [{"customerno": f"C{n}", "emailaddress1": f"c{n}@x.example"} for n in numbers]
    return json.dumps(rows).encode()


@pytest.fixture
def sandbox():
    servers = []

    def start(**options) -> Sandbox:
        server = Sandbox(
            SandboxConfig(api_key="key-1234", api_secret="secret-5678", **options),
            PayorCrmRoutes(),
        ).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def client_for(
    server: Sandbox, fake: FakeClock, secret: str = "secret-5678", **policy
) -> ApiClient:
    return ApiClient(
        server.url,
        Credentials("key-1234", secret),
        target=PayorCrm(),
        policy=RetryPolicy(**policy),
        clock=fake.clock,
        timeout=5,
    )


def test_accepted_batch(sandbox):
    server, fake = sandbox(), FakeClock()
    client = client_for(server, fake)
    answer = client.post(CUSTOMERS, body(1, 2), 2)
    assert answer.outcome == "accepted"
    assert [r["customerno"] for r in server.records("customers")] == ["C1", "C2"]
    assert (client.requests, client.retries, fake.sleeps) == (1, 0, [])


def test_backoff_is_exponential_with_full_jitter_then_gives_up(sandbox):
    server, fake = sandbox(fault_rate=1.0, faults=("500",)), FakeClock(random_value=1.0)
    client = client_for(server, fake, max_retries=4, base_s=0.5, cap_s=3)
    with pytest.raises(AbortedError, match=r"after 5 tries \(4 retries\): HTTP 500"):
        client.post(CUSTOMERS, body(1), 1)
    assert fake.sleeps == [0.5, 1.0, 2.0, 3.0]
    assert (client.requests, client.retries) == (5, 4)
    assert server.stats()["requests"] == 5


def test_jitter_draws_below_the_cap(sandbox):
    server, fake = sandbox(fault_rate=1.0, faults=("502",)), FakeClock(random_value=0.25)
    client = client_for(server, fake, max_retries=3, base_s=1)
    with pytest.raises(AbortedError):
        client.post(CUSTOMERS, body(1), 1)
    assert fake.sleeps == [0.25, 0.5, 1.0]


def test_retry_after_is_honoured(sandbox, monkeypatch):
    # the server's clock stands still: its window never turns, whatever the client waits
    frozen = SimpleNamespace(monotonic=lambda: 0.0, time=lambda: 1_800_000_000.0, sleep=time.sleep)
    monkeypatch.setattr(sandbox_module, "time", frozen)
    server, fake = sandbox(rate_limit=1, rate_window=30), FakeClock()
    client = client_for(server, fake, max_retries=1)
    assert client.post(CUSTOMERS, body(1), 1).outcome == "accepted"
    assert fake.sleeps == []
    with pytest.raises(AbortedError, match="HTTP 429"):
        # the first answer said Remaining 0: the client waits for the reset instead of a 429;
        # the server's window has not turned: it answers 429 with Retry-After
        client.post(CUSTOMERS, body(2), 1)
    assert fake.sleeps == [1.0] * 30 + [30.0]  # the reset, a second at a time; the Retry-After
    assert server.stats()["by_status"] == {"200": 1, "429": 2}  # the 429 and its one retry


def test_quota_wait_before_spending_a_429(sandbox):
    server = sandbox(rate_limit=2, rate_window=0.5)
    waits: list[float] = []  # real time (the server's windows are), every wait recorded

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    client = ApiClient(
        server.url,
        Credentials("key-1234", "secret-5678"),
        target=PayorCrm(),
        policy=RetryPolicy(max_retries=2),
        clock=Clock(sleep=sleep),
    )
    for n in range(8):
        assert client.post(CUSTOMERS, body(n), 1).outcome == "accepted"
    # 8 requests at 2 a window, each accepted at its first try: the client waited for the
    # window ends (its waits), and the server never had to say 429
    assert server.stats()["by_status"] == {"200": 8}
    assert (client.requests, client.retries) == (8, 0)
    assert waits
    assert len(server.records("customers")) == 8


def test_dropped_connection_is_retried(sandbox):
    server, fake = sandbox(fault_rate=0.5, faults=("drop",), seed=2), FakeClock()
    client = client_for(server, fake, max_retries=10)
    for n in range(10):
        assert client.post(CUSTOMERS, body(n), 1).outcome == "accepted"
    assert client.retries == server.stats()["injected"]["drop"] > 0
    assert len(server.records("customers")) == 10


def test_success_false_is_a_failure(sandbox):
    server, fake = sandbox(fault_rate=1.0, faults=("soft",)), FakeClock()
    client = client_for(server, fake, max_retries=1)
    with pytest.raises(AbortedError, match="success false"):
        client.post(CUSTOMERS, body(1), 1)
    assert server.records("customers") == []


def test_wrong_secret_aborts_after_one_request_without_showing_it(sandbox):
    server, fake = sandbox(), FakeClock()
    client = client_for(server, fake, secret="wrong-secret-value")
    with pytest.raises(AbortedError) as caught:
        client.post(CUSTOMERS, body(1), 1)
    assert "check PAYOR_API_KEY and PAYOR_API_SECRET" in str(caught.value)
    assert "wrong-secret-value" not in str(caught.value)
    assert server.stats()["requests"] == 1 and fake.sleeps == []


def test_refusal_names_rows(sandbox):
    server, fake = sandbox(), FakeClock()
    client = client_for(server, fake)
    rows = json.loads(body(1, 2, 3))
    rows[1]["emailaddress1"] = "no address"
    answer = client.post(CUSTOMERS, json.dumps(rows).encode(), 3)
    assert answer.outcome == "refused" and list(answer.row_errors) == [1]
    assert "emailaddress1" in answer.row_errors[1]


def test_budget_bounds_the_total_wait(sandbox):
    server, fake = sandbox(fault_rate=1.0, faults=("503",)), FakeClock()
    client = client_for(server, fake, max_retries=100, budget_s=3, base_s=1)
    with pytest.raises(AbortedError, match="retry budget"):
        client.post(CUSTOMERS, body(1), 1)
    assert sum(fake.sleeps) <= 3
