"""The wait before each retry: the backoff, or longer when the server asks, within the run's
retry budget (the time the run spends waiting, however many requests wait at once); the cause
said once, then only the count."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from payor_cli.errors import AbortedError
from payor_cli.send.answers import HttpAnswer
from payor_cli.send.pacing import Pacer
from payor_cli.send.retry import Clock, RetryPolicy, quota_spent, reset_wait, server_wait

MAX_QUOTA_WAIT_S = 24 * 3600.0
"""A quota reset further away than this is a broken header, not a quota."""


class RetryWaits:
    """The retries of one client, shared by the threads that send through it."""

    def __init__(
        self, policy: RetryPolicy, clock: Clock, pacer: Pacer, notice: Callable[[str], None]
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.pacer = pacer
        self.notice = notice
        self.retries = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._waited = 0.0
        self._waiting_until = 0.0
        self._last_cause: str | None = None

    def thread_retries(self) -> int:
        """Retries made by the calling thread so far."""
        return getattr(self._local, "retries", 0)

    def settled(self) -> None:
        """A final answer came: the next trouble is said in full again."""
        self._last_cause = None

    def wait(
        self,
        attempt: int,
        response: HttpAnswer | None,
        url: str,
        cause: str,
        what: str,
    ) -> int:
        """Wait before retry `attempt` + 1 (after `response`, when one came) and return its
        number; abort when the tries or the budget are spent, or the server asks for a wait
        beyond the budget."""
        tries = f"{attempt + 1} {'try' if attempt == 0 else 'tries'}"
        if attempt >= self.policy.max_retries:
            raise AbortedError(
                f"gave up on {url} after {tries} ({self.policy.max_retries} retries): {cause}",
                "the server or network is failing; a re-run goes on from the last accepted batch",
            )
        asked = (
            server_wait(response.headers, self.clock, response.status_code)
            if response is not None
            else None
        )
        # never sooner than the backoff: "Retry-After: 0" on every answer would spend all the
        # tries in a moment
        wait = max(asked or 0.0, self.policy.backoff(attempt, self.clock))
        if asked is not None and asked > self.policy.budget_s:
            raise AbortedError(
                f"gave up on {url}: the server asks to wait {_seconds(asked)} before trying "
                f"again, more than the retry budget of {self.policy.budget_s:.0f} s ({cause})",
                "try later, or raise retry_budget_s in [upload]",
            )
        if response is not None and response.status_code == 429 and asked:
            self.pacer.hold(asked)  # every request in flight waits, not only this one
        if self._waited + self._newly_waited(wait, commit=False) > self.policy.budget_s:
            raise AbortedError(
                f"gave up on {url}: the retry budget of {self.policy.budget_s:.0f} s is spent "
                f"({cause})",
                "a re-run goes on from the last accepted batch",
            )
        retry = f"retry {attempt + 1} of {self.policy.max_retries} in {wait:.1f} s"
        if cause != self._last_cause:  # the address and the cause once, then the count
            self.notice(f"sending {what} to {url}: {cause}; {retry}")
            self._last_cause = cause
        else:
            self.notice(f"still {_short(cause)}; {retry}")
        self._newly_waited(wait, commit=True)
        self.clock.sleep(wait)  # a stop asked for ends it (Interrupted): then no retry is made
        with self._lock:
            self.retries += 1
        self._local.retries = getattr(self._local, "retries", 0) + 1
        return attempt + 1

    def _newly_waited(self, wait: float, *, commit: bool) -> float:
        """The part of a wait from now that no other request is waiting through already: the
        retry budget is the run's time spent waiting, however many requests wait at once."""
        with self._lock:
            now = self.clock.monotonic()
            fresh = max(0.0, now + wait - max(now, self._waiting_until))
            if commit:
                self._waited += fresh
                self._waiting_until = max(self._waiting_until, now + wait)
            return fresh


def check_quota_reset(headers: Mapping[str, str], clock: Clock, api: str) -> None:
    """Abort on a spent quota whose reset is more than a day away (a broken header)."""
    if quota_spent(headers):
        wait = reset_wait(headers, clock)
        if wait and wait > MAX_QUOTA_WAIT_S:
            raise AbortedError(
                f"{api} says its quota resets in {_seconds(wait)}: more than a day",
                "check X-RateLimit-Reset with the API's provider; a re-run goes on from here",
            )


def _seconds(value: float) -> str:
    """A wait in whole seconds; "forever" for one no clock reaches."""
    return f"{value:,.0f} s" if value < 1e12 else "forever"


def _short(cause: str) -> str:
    """The cause without its explanation in parentheses: "connection refused"."""
    return cause.split(" (")[0]
