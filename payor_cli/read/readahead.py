"""The next chunks read while this one is validated: the file's parsing (Arrow's, which lets go
of the interpreter) runs on the second core beside the validation."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()
POLL_S = 0.1


class ReadAhead(Generic[T]):
    """Iterate `source` in a thread of its own, `depth` items ahead of the consumer.

    What the source raises is raised to the consumer, in order, after the items before it.
    `close` stops the thread and closes the source there (a generator can only be closed by
    the thread that runs it), also half way through.
    """

    def __init__(self, source: Iterator[T], depth: int = 2) -> None:
        self._source = source
        self._items: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(depth)
        self._closing = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="payor-reader", daemon=True)
        self._thread.start()

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item, error = self._items.get()
        if error is not None:
            self._done = True
            raise error
        if item is _END:
            self._done = True
            raise StopIteration
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._closing.set()
        while self._thread.is_alive():
            # make room, so a reader waiting to hand over an item sees the close
            with contextlib.suppress(queue.Empty):
                self._items.get(timeout=POLL_S)
        self._done = True

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put((item, None)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # handed to the consumer, never lost in this thread
            self._put((None, exc))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

    def _put(self, entry: tuple[object, BaseException | None]) -> bool:
        while not self._closing.is_set():
            try:
                self._items.put(entry, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False
