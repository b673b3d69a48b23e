"""An answer whole within the read timeout and at most MAX_ANSWER bytes: the watcher that shuts
the socket of a late request, the urllib3 connections that hand it their socket, the bounded read.

A read timeout alone bounds each wait for a byte, not the whole answer: a server trickling a
byte a second would hold a request forever. Here the read timeout bounds the whole answer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import urllib3

MAX_ANSWER = 8 * 1024 * 1024
"""Bytes read of an answer at most: the APIs' answers are small (a listing page of 100
customers is tens of kB); more is not the API's answer, and is never held in memory."""
READ_CHUNK = 64 * 1024


class Unclear(Exception):
    """The request reached the server but its answer is not one: late, cut off, too large."""

    def __init__(self, cause: str, headers: Any = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.headers = headers


def read_whole(raw: Any, headers: Any, deadline: Deadline) -> bytes:
    """The whole body of an answer (`raw`: urllib3's response), within the deadline and the
    size limit; else Unclear, saying why."""
    declared = headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > MAX_ANSWER:
        raise Unclear(too_large(int(declared)), headers)
    parts: list[bytes] = []
    size = 0
    try:
        # decoded as read, each read at most READ_CHUNK bytes: a gzip bomb is no bomb here
        while chunk := raw.read1(READ_CHUNK, decode_content=True):
            if deadline.expired:
                raise Unclear(deadline.late(), headers)
            size += len(chunk)
            if size > MAX_ANSWER:
                raise Unclear(too_large(), headers)
            parts.append(chunk)
    except urllib3.exceptions.DecodeError:
        raise Unclear(
            "an answer that cannot be decoded (its Content-Encoding is broken)", headers
        ) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if deadline.expired or isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            raise Unclear(deadline.late(), headers) from None
        raise Unclear(
            "the answer was cut off (the connection ended in the middle of it)", headers
        ) from None
    if deadline.expired:  # the socket was shut at the deadline: what came is not whole
        raise Unclear(deadline.late(), headers)
    return b"".join(parts)


def too_large(declared: int | None = None) -> str:
    """What an answer larger than MAX_ANSWER is (`declared`: its Content-Length)."""
    size = f"{declared:,} bytes, more" if declared is not None else "more"
    return (
        f"an answer of {size} than {MAX_ANSWER // (1024 * 1024)} MiB, which is not the API's "
        "(its answers are small): not read further"
    )


# -- the whole answer within the read timeout ---------------------------------------------------
_current = threading.local()
"""The deadline of the request the calling thread is making (for the connection to attach to)."""


class Deadline:
    """When a request must be answered whole; at that moment its socket is shut down, which
    ends any read that waits on it (a trickle of bytes never lets a read timeout fire)."""

    def __init__(
        self, at: float, answer_within: float, moved: Callable[[], None] = lambda: None
    ) -> None:
        self.at = at
        """By then the request is sent (connect + read timeout); once it is, its answer is due
        within `answer_within` seconds."""
        self.answer_within = answer_within
        self.expired = False
        self._moved = moved
        """Told when `at` moves (the watcher sleeps until the earliest deadline)."""
        self._shutdown: Callable[[int], None] | None = None
        self._lock = threading.Lock()

    def late(self) -> str:
        """What a request whose deadline passed got: no whole answer in time."""
        return f"no whole answer within {self.answer_within:g} s (read timeout)"

    def attach(self, shutdown: Callable[[int], None], *, answer: bool) -> None:
        """The socket to shut at the deadline; with `answer`, the request is sent and its
        answer is due within the read timeout from now."""
        with self._lock:
            if answer:
                self.at = time.monotonic() + self.answer_within
            self._shutdown = shutdown
            if self.expired:
                _shut(shutdown)
        if answer:  # outside the lock: the watcher takes its own, then this one to expire
            self._moved()

    def detach(self) -> None:
        """The request is over: its socket is no longer shut at the deadline."""
        with self._lock:
            self._shutdown = None

    def expire(self) -> None:
        """The deadline has come: shut the socket (now, or as soon as one is attached)."""
        with self._lock:
            self.expired = True
            if self._shutdown is not None:
                _shut(self._shutdown)


def _shut(shutdown: Callable[[int], None]) -> None:
    with contextlib.suppress(OSError):  # closed already
        shutdown(socket.SHUT_RDWR)


class Watcher:
    """One thread a client, that expires the deadlines of the requests in flight."""

    def __init__(self) -> None:
        self._active: set[Deadline] = set()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextlib.contextmanager
    def watching(self, connect: float, read: float) -> Iterator[Deadline]:
        """The deadline of the request the calling thread makes now (connect + read timeout
        to send it, then the read timeout for its whole answer), watched while it runs."""
        deadline = Deadline(time.monotonic() + connect + read, read, self._wake)
        self.add(deadline)
        _current.deadline = deadline
        try:
            yield deadline
        finally:
            _current.deadline = None
            deadline.detach()
            self.remove(deadline)

    def add(self, deadline: Deadline) -> None:
        """Watch this deadline (the thread starts with the first one)."""
        with self._condition:
            self._active.add(deadline)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="payor-deadlines")
                self._thread.daemon = True
                self._thread.start()
            self._condition.notify()

    def _wake(self) -> None:
        """A deadline moved (earlier, as its request went out): look at the deadlines again."""
        with self._condition:
            self._condition.notify()

    def remove(self, deadline: Deadline) -> None:
        """Stop watching this deadline (its request is over)."""
        with self._condition:
            self._active.discard(deadline)

    def close(self) -> None:
        """End the watching thread."""
        with self._condition:
            self._closed = True
            self._condition.notify()

    def _run(self) -> None:
        with self._condition:
            while not self._closed:
                now = time.monotonic()
                for deadline in [d for d in self._active if d.at <= now]:
                    self._active.discard(deadline)
                    deadline.expire()
                due = min((d.at for d in self._active), default=None)
                # a deadline that moves (its request was sent) wakes this wait (`_wake`)
                self._condition.wait(None if due is None else max(0.01, due - now))


def _watch(sock: Any, *, answer: bool) -> None:
    deadline = getattr(_current, "deadline", None)
    shutdown = getattr(sock, "shutdown", None)
    if deadline is not None and shutdown is not None:
        deadline.attach(shutdown, answer=answer)


class _Watched:
    """A connection whose socket the request's deadline can shut: from the moment it is
    connected (or reused) while the request is sent, then while its answer comes."""

    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _watch(self.sock, answer=False)

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection, reused
            _watch(self.sock, answer=False)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self):  # type: ignore[no-untyped-def]
        _watch(self.sock, answer=True)
        return super().getresponse()  # type: ignore[misc]


class _WatchedConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedTlsConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _TlsPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedTlsConnection


WATCHED_POOLS = {"http": _Pool, "https": _TlsPool}
"""urllib3's pool classes by scheme, whose connections give their socket to the deadline."""
