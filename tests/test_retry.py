"""Backoff and the server's timing headers, on a fake clock."""

from __future__ import annotations

import email.utils

import pytest

from payor_cli.send.retry import Clock, RetryPolicy, quota_spent, reset_wait, server_wait

NOW = 1_800_000_000.0


def fake_clock(random_value: float = 1.0) -> Clock:
    return Clock(
        monotonic=lambda: 0.0, wall=lambda: NOW, sleep=lambda s: None, random=lambda: random_value
    )


def test_retry_after_seconds():
    assert server_wait({"Retry-After": "7"}, fake_clock()) == 7.0


def test_retry_after_http_date():
    when = email.utils.formatdate(NOW + 12, usegmt=True)
    assert server_wait({"Retry-After": when}, fake_clock()) == pytest.approx(12, abs=1)


def test_retry_after_beats_rate_limit_reset():
    headers = {"Retry-After": "3", "X-RateLimit-Reset": "50"}
    assert server_wait(headers, fake_clock()) == 3.0


@pytest.mark.parametrize(("reset", "wait"), [("5", 5.0), (str(int(NOW + 9)), 9.0), ("0", 0.0)])
def test_rate_limit_reset_as_seconds_or_epoch(reset, wait):
    assert reset_wait({"X-RateLimit-Reset": reset}, fake_clock()) == pytest.approx(wait)


def test_reset_in_the_past_waits_nothing():
    assert reset_wait({"X-RateLimit-Reset": str(int(NOW - 100))}, fake_clock()) == 0.0


def test_no_headers_no_server_wait():
    assert server_wait({}, fake_clock()) is None


@pytest.mark.parametrize(
    ("remaining", "spent"), [("0", True), ("1", False), (None, False), ("x", False)]
)
def test_quota_spent(remaining, spent):
    headers = {} if remaining is None else {"X-RateLimit-Remaining": remaining}
    assert quota_spent(headers) is spent


def test_full_jitter_is_capped_exponential():
    policy = RetryPolicy(base_s=0.5, cap_s=30.0)
    top = fake_clock(1.0)
    assert [policy.backoff(n, top) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert policy.backoff(5, fake_clock(0.0)) == 0.0
    assert policy.backoff(3, fake_clock(0.25)) == 1.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_fault_with_quota_left_is_no_wait_for_the_reset(status):
    """A 5xx carries the window's X-RateLimit-Reset like every answer: with quota left it asks
    for no wait (the backoff decides)."""
    headers = {"X-RateLimit-Remaining": "412", "X-RateLimit-Reset": str(int(NOW + 991))}
    assert server_wait(headers, fake_clock(), status) is None


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_spent_quota_waits_for_the_reset(status):
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW + 40))}
    assert server_wait(headers, fake_clock(), status) == pytest.approx(40)


def test_a_429_without_retry_after_waits_for_the_reset():
    headers = {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": str(int(NOW + 25))}
    assert server_wait(headers, fake_clock(), 429) == pytest.approx(25)


def test_retry_after_on_a_503_is_a_wait():
    headers = {"Retry-After": "4", "X-RateLimit-Remaining": "9", "X-RateLimit-Reset": "900"}
    assert server_wait(headers, fake_clock(), 503) == 4.0
