"""When to try again: exponential backoff with full jitter, and what the server's headers say.

Pure arithmetic on headers and a clock; the clock, sleep and randomness are injectable so tests
run in no time and can assert every wait.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

TEMPORARY_STATUSES = frozenset({429, 500, 502, 503, 504})
EPOCH_THRESHOLD = 1_000_000_000  # a reset "in" more seconds than this is a Unix time


@dataclass
class Clock:
    """Time as the client sees it; tests swap in a fake."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = field(default_factory=lambda: random.SystemRandom().random)


@dataclass
class RetryPolicy:
    """Exponential backoff, full jitter, capped; bounded per request and over the whole run."""

    base_s: float = 0.5
    cap_s: float = 30.0
    max_retries: int = 8
    budget_s: float = 600.0

    def backoff(self, attempt: int, clock: Clock) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**attempt)]."""
        return clock.random() * min(self.cap_s, self.base_s * 2**attempt)


def server_wait(headers: Mapping[str, str], clock: Clock, status: int = 429) -> float | None:
    """Seconds the server asked us to wait before trying again, if it asked.

    `Retry-After` always asks. `X-RateLimit-Reset` is the end of the quota's window, and APIs
    send it on every answer, faults included: it is a wait only when the quota is spent
    (`X-RateLimit-Remaining` 0) or on a 429 that gives no `Retry-After`. A 5xx with quota left
    is retried on the backoff, not held until the window ends.
    """
    retry_after = headers.get("Retry-After")
    if retry_after:
        seconds = _seconds_or_date(retry_after, clock)
        if seconds is not None:
            return seconds
    if status == 429 or quota_spent(headers):
        return reset_wait(headers, clock)
    return None


def reset_wait(headers: Mapping[str, str], clock: Clock) -> float | None:
    """Seconds until X-RateLimit-Reset, given as seconds from now or as a Unix time."""
    reset = headers.get("X-RateLimit-Reset")
    if not reset:
        return None
    try:
        value = float(reset)
    except ValueError:
        return _seconds_or_date(reset, clock)
    if not math.isfinite(value):
        return None  # no time at all: ignored, the backoff decides
    if value > EPOCH_THRESHOLD:
        value -= clock.wall()
    return max(0.0, value)


def quota_spent(headers: Mapping[str, str]) -> bool:
    """X-RateLimit-Remaining says no request is left in this window."""
    remaining = headers.get("X-RateLimit-Remaining")
    try:
        return remaining is not None and float(remaining) <= 0
    except ValueError:
        return False


def _seconds_or_date(text: str, clock: Clock) -> float | None:
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - clock.wall())
