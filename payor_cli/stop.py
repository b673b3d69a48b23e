"""A request to end a run early, made from a signal handler and honoured by every stage.

The handler only sets it; the reading loop, the sender and the client's waits look at it, so a
stop never tears a batch or a journal write in half: what is in flight is answered and
journalled, nothing new goes out, and the reports are written.
"""

from __future__ import annotations

import threading

from payor_cli.errors import AbortedError


class Interrupted(AbortedError):
    """The run was asked to stop (SIGINT, SIGTERM): exit 3, like any other abort."""

    reason = "interrupted"


class StopRequest:
    """Set once, from any thread or a signal handler; waits end early when it is set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.why = ""

    def request(self, why: str) -> None:
        if not self._event.is_set():
            self.why = why
            self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self) -> None:
        """Block until a stop is asked for."""
        self._event.wait()

    def check(self) -> None:
        """Raise Interrupted when a stop was asked for."""
        if self._event.is_set():
            raise Interrupted(f"interrupted ({self.why})", "a re-run goes on from here")

    def sleep(self, seconds: float) -> None:
        """Sleep, but no longer than until a stop is asked for (then raise Interrupted)."""
        if self._event.wait(max(0.0, seconds)):
            self.check()
