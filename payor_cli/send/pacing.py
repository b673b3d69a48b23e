"""When the next request may start: the requests in flight share one view of the API's quota.

The server's `X-RateLimit-*` headers say how many requests are left in its window and when the
window ends. Until the first answer says whether there is a quota, one request goes alone, so
several in flight never burst into a limit they do not know. Once the quota is known:

- the requests the run still expects fit in what is left of the window: they go at once;
- they do not: what is left is spread evenly over the window (the most the quota allows,
  without a burst into the limit), and when it is spent every request waits for the reset.

A request that starts counts against the window at once, and the `Remaining` of an answer is
lowered by the requests still in flight (the server may not have counted them yet), so the
requests in flight never spend more than the window has: no 429 the run could have avoided.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from payor_cli.errors import AbortedError
from payor_cli.send.retry import Clock, reset_wait

QUOTA_NOTICE_EVERY_S = 60.0
QUOTA_WAIT_WORTH_SAYING_S = 2.0
POLL_S = 0.05
"""How often a waiting request looks again (for a stop, or a window that was learned)."""
HALT_SEEN_WITHIN_S = 1.0
NEW_WINDOW_S = 0.5
"""A reset this much later than the one known is a new window, not the same one said again."""


class Halted(AbortedError):
    """A request that was not made: the run ended while it waited for its turn."""


class Pacer:
    """Shared by the threads that send; every method is safe to call from any of them."""

    def __init__(
        self,
        clock: Clock,
        notice: Callable[[str], None],
        name: str,
    ) -> None:
        self.clock = clock
        self.notice = notice
        self.name = name
        self.expected: int | None = None
        """Requests the run still expects to make (an estimate, never below 0)."""
        self._lock = threading.Condition()
        self._known = False
        """An answer has said whether there is a quota (and what is left of it)."""
        self._in_flight = 0
        self._budget: int | None = None
        """Requests that may still start before `_reset_at`; None: no quota."""
        self._limit: int | None = None
        self._reset_at = 0.0
        self._next_start = 0.0
        self._hold_until = 0.0
        self._quota_said = -QUOTA_NOTICE_EVERY_S
        self._plan_said = False
        self._halted: str | None = None

    def expect(self, requests: int) -> None:
        """The run's estimate of the requests it will make from now on."""
        with self._lock:
            self.expected = max(0, requests)

    def hold(self, seconds: float) -> None:
        """The server asked everyone to wait (a 429's Retry-After): no request starts sooner."""
        with self._lock:
            self._hold_until = max(self._hold_until, self.clock.monotonic() + seconds)

    def halt(self, why: str) -> None:
        """The run is ending (another request failed): no request starts from now on."""
        with self._lock:
            self._halted = why
            self._lock.notify_all()

    def start(self) -> None:
        """Block until a request may start, then count it in flight."""
        while True:
            with self._lock:
                if self._halted is not None:
                    raise Halted(self._halted)
                wait = self._wait_needed()
                if wait is None:
                    self._in_flight += 1
                    if self._budget is not None:
                        self._budget -= 1
                    if self.expected:
                        self.expected -= 1
                    return
            # a stop asked for ends the sleep (Interrupted); a halt is seen within a second
            self.clock.sleep(min(wait, HALT_SEEN_WITHIN_S))

    def answered(self, headers: Mapping[str, str] | None) -> None:
        """A request in flight ended: with the answer's headers, or None (no answer came)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if headers is not None:
                self._learn(headers)
            self._lock.notify_all()

    # -- under the lock ----------------------------------------------------------------------
    def _wait_needed(self) -> float | None:
        """Seconds to wait before looking again; None when a request may start now."""
        now = self.clock.monotonic()
        if self._hold_until > now:
            return self._hold_until - now
        if not self._known:
            # one request alone until an answer says what the quota is
            return POLL_S if self._in_flight else None
        if self._budget is None:
            return None
        if now >= self._reset_at:
            self._known = False  # a new window: its first answer says what it holds
            self._next_start = 0.0
            return self._wait_needed()
        if self._budget <= 0:
            self._say_waiting(self._reset_at - now)
            return self._reset_at - now
        if self.expected is not None and self.expected <= self._budget:
            return None  # the rest of the run fits in this window
        if self._next_start > now:
            return self._next_start - now
        self._next_start = now + (self._reset_at - now) / self._budget
        return None

    def _learn(self, headers: Mapping[str, str]) -> None:
        try:
            remaining = int(float(headers["X-RateLimit-Remaining"]))
        except (KeyError, ValueError, OverflowError):
            remaining = None
        reset = reset_wait(headers, self.clock)
        if remaining is None or reset is None:
            if not self._known and self._budget is None:
                self._known = True  # no quota said: nothing to pace
            return
        now = self.clock.monotonic()
        reset_at = now + reset
        budget = remaining - self._in_flight
        if not self._known or self._budget is None or reset_at > self._reset_at + NEW_WINDOW_S:
            self._budget, self._reset_at = budget, reset_at
        else:
            self._budget = min(self._budget, budget)
        self._known = True
        try:
            self._limit = int(headers.get("X-RateLimit-Limit", ""))
        except ValueError:
            self._limit = None
        self._say_plan(reset)

    def _say_plan(self, window_left: float) -> None:
        """Once a run: how long the quota makes it take, when that is over a minute."""
        if self._plan_said or not self._limit or self.expected is None or not window_left:
            return
        self._plan_said = True
        assert self._budget is not None
        beyond = self.expected - max(self._budget, 0)
        if beyond <= 0:
            return
        # a window is at least as long as what was left of it when first seen
        windows = -(-beyond // self._limit)
        seconds = window_left * windows
        if seconds > 60:
            self.notice(
                f"{self.name}: its quota is {self._limit:,} requests a window; about "
                f"{self.expected:,} requests take at least {_duration(seconds)}, paced"
            )

    def _say_waiting(self, delay: float) -> None:
        now = self.clock.monotonic()
        if delay < QUOTA_WAIT_WORTH_SAYING_S:
            return  # a short window's end: the progress bar shows the pace
        if now - self._quota_said >= QUOTA_NOTICE_EVERY_S or delay >= QUOTA_NOTICE_EVERY_S:
            # a run paced by a quota waits at every window's end: said once a minute
            self._quota_said = now
            self.notice(
                f"{self.name}: the rate limit's quota is spent; waiting {delay:.1f} s for its reset"
            )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
