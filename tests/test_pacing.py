"""The pacer on an injected clock: when each request may start, against a quota it learns."""

from __future__ import annotations

import pytest

from payor_cli.send.pacing import Halted, Pacer
from payor_cli.send.retry import Clock


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.clock = Clock(
            monotonic=lambda: self.now, wall=lambda: 1_800_000_000 + self.now, sleep=self._sleep
        )

    def _sleep(self, seconds: float) -> None:
        self.now += seconds


def quota(remaining: int, reset: float, limit: int = 10) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{reset:g}",
    }


def started_at(pacer: Pacer, fake: FakeClock, answers) -> list[float]:
    """Start requests one after another, each answered with the next of `answers`."""
    times = []
    for answer in answers:
        pacer.start()
        times.append(round(fake.now, 3))
        pacer.answered(answer(fake.now) if callable(answer) else answer)
    return times


def test_no_quota_said_nothing_is_paced():
    fake, notes = FakeClock(), []
    pacer = Pacer(fake.clock, notes.append, "api")
    pacer.expect(100)
    assert started_at(pacer, fake, [{}] * 5) == [0, 0, 0, 0, 0]
    assert notes == []


def test_what_fits_in_the_window_goes_at_once():
    fake = FakeClock()
    pacer = Pacer(fake.clock, lambda text: None, "api")
    pacer.expect(5)
    answers = [quota(9 - n, 1.0) for n in range(5)]
    assert started_at(pacer, fake, answers) == [0, 0, 0, 0, 0]


def test_more_than_the_window_holds_is_spread_over_it_then_waits_for_the_reset():
    fake, notes = FakeClock(), []
    pacer = Pacer(fake.clock, notes.append, "api")
    pacer.expect(30)

    def answer(now: float) -> dict[str, str]:
        window_end = (now // 1.0 + 1) * 1.0
        used = sum(1 for t in times if t // 1.0 == now // 1.0)  # this request's among them
        return quota(max(0, 4 - used), window_end - now, limit=4)

    times: list[float] = []
    for _ in range(12):
        pacer.start()
        times.append(round(fake.now, 3))
        pacer.answered(answer(fake.now))
    per_window = [sum(1 for t in times if int(t) == w) for w in range(3)]
    assert per_window == [4, 4, 4]  # never more than the window allows
    assert times[:4] == [0, 0, 0.333, 0.667]  # what was left, spread evenly
    assert notes == []  # 30 requests at 4 a second: under a minute, nothing to say


def test_the_plan_is_said_once_when_the_quota_makes_it_long():
    fake, notes = FakeClock(), []
    pacer = Pacer(fake.clock, notes.append, "https://crm.example")
    pacer.expect(2400)
    pacer.start()
    pacer.answered(quota(999, 3600, limit=1000))
    pacer.start()
    pacer.answered(quota(998, 3599, limit=1000))
    assert notes == [
        "https://crm.example: its quota is 1,000 requests a window; about 2,399 requests take "
        "at least 2 h 0 min, paced"
    ]


def test_a_spent_quota_waits_for_its_reset_and_the_new_window_starts_with_one_request():
    fake, notes = FakeClock(), []
    pacer = Pacer(fake.clock, notes.append, "api")
    pacer.expect(3)
    pacer.start()
    pacer.answered(quota(0, 30))
    pacer.start()
    assert fake.now == pytest.approx(30)
    assert notes == ["api: the rate limit's quota is spent; waiting 30.0 s for its reset"]


def test_a_429_holds_every_request():
    fake = FakeClock()
    pacer = Pacer(fake.clock, lambda text: None, "api")
    pacer.start()
    pacer.answered({})
    pacer.hold(5)
    pacer.start()
    assert fake.now == pytest.approx(5)


def test_after_a_halt_no_request_starts():
    fake = FakeClock()
    pacer = Pacer(fake.clock, lambda text: None, "api")
    pacer.halt("the credentials were refused")
    with pytest.raises(Halted, match="credentials"):
        pacer.start()
