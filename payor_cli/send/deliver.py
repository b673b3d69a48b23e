"""Send: skip what the journal knows, batch the rest in file order, book what comes back.

How a batch goes to the API is the target's (targets/): it reports each accepted batch and
each refused row to this module, which journals each accepted batch as soon as it is accepted.
What comes back is booked by booking.py; what a run that ended early left is undelivered.py's.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from payor_cli.check.validate import ValidatedChunk
from payor_cli.contract import Pending
from payor_cli.errors import AbortedError, PayorError
from payor_cli.fingerprint import legacy_fingerprints
from payor_cli.rows import RejectedRow
from payor_cli.schema import Kind
from payor_cli.send.booking import book_events
from payor_cli.send.client import ApiClient
from payor_cli.send.journal import Journal, contains
from payor_cli.send.undelivered import Undelivered, undelivered
from payor_cli.stop import StopRequest
from payor_cli.summary import RunSummary

EARLY_PARTS = 8
"""Chunks validated ahead while the journal's fingerprints load (a few MB each)."""


class Delivery:
    """The Sink of a real upload (see upload.py).

    Batches go to `concurrency` sender threads, which take them in file order, while the next
    chunk is read and validated: the network waits overlap each other and the work. The
    senders only talk to the server and write the journal (each accepted batch at once);
    what happened comes back as events that the calling thread books, so the summary is only
    ever changed by one thread. When the run must end early (`failure`: an abort, or a stop
    that was asked for), nothing new goes out, the requests in flight are answered, and
    `finish` still books everything the server answered, so the counts are what the server saw.
    """

    def __init__(
        self,
        kind: Kind,
        client: ApiClient,
        journal: Journal,
        summary: RunSummary,
        *,
        batch_size: int,
        full: bool,
        progress: Callable[[RunSummary], None] | None = None,
        stop: StopRequest | None = None,
        concurrency: int = 1,
        requests_after: int = 0,
    ) -> None:
        self.kind = kind
        self.target = client.target
        self.requests_after = requests_after
        """About how many requests the kinds sent after this one will make (for pacing)."""
        self.client = client
        self.journal = journal
        self.summary = summary
        self.batch_size = batch_size
        self.full = full
        self.progress = progress or (lambda summary: None)
        self.stop = stop or StopRequest()
        self.pending: list[Pending] = []
        self.known = np.empty(0, np.int64)
        self.legacy = np.empty(0, np.int64)
        """Fingerprints an older payor wrote (BLAKE2b): rows they know are given today's."""

        self._journal_error: BaseException | None = None
        self._early: list[ValidatedChunk] = []
        """Parts validated while the journal loaded (at most EARLY_PARTS)."""
        self._entries: dict[str, dict[str, tuple[int, str | None]]] = {}
        self._init_batches(concurrency)
        self.failure: PayorError | None = None
        """Why delivery ended early; the caller stops the run."""
        self._journal_lock = threading.Lock()
        self._failure_lock = threading.Lock()
        self._kind_sender = self.target.sender(kind, client, self)
        # a million fingerprints load while the first chunk is read and validated (started
        # once nothing above can fail: a thread left reading would outlive the journal)
        self._journal_loaded = threading.Thread(target=self._load_journal, name="payor-journal")
        self._journal_loaded.start()
        self._threads = self._start_senders(concurrency)

    def _init_batches(self, concurrency: int) -> None:
        """The batches on their way, and what came back of them."""
        # as many batches wait as are in flight: enough to keep every sender busy, and a
        # bound on the memory they hold
        self._outbox: queue.Queue[tuple[int, list[Pending]] | None] = queue.Queue(concurrency)
        self._unsettled: dict[int, list[Pending]] = {}
        """Batch number -> its records, for batches the server has not finished with."""
        self._accepted_in: dict[int, int] = {}
        """Batch number -> the rows accepted of it (to say what came after a gap)."""
        self._submitted = 0
        self._refused: list[RejectedRow] = []
        self._not_taken: int | None = None
        """The first row of the rows that came after the run began to end."""
        self._events: queue.Queue[tuple] = queue.Queue()

    def _load_journal(self) -> None:
        """The fingerprints the journal knows of this kind (in the journal thread)."""
        try:
            if not self.full:
                self.known = self.journal.accepted(self.kind.name)
            self.legacy = self.journal.accepted(self.kind.name, legacy=True)
        except BaseException as exc:  # raised by take(): never "nothing known", silently
            self._journal_error = exc

    def _start_senders(self, concurrency: int) -> list[threading.Thread]:
        """The sender threads, started: they take batches from the outbox in file order."""
        threads = [
            threading.Thread(target=self._send_loop, name=f"payor-sender-{n}", daemon=True)
            for n in range(max(1, concurrency))
        ]
        for thread in threads:
            thread.start()
        return threads

    # -- Sink -------------------------------------------------------------------------------
    def take(self, part: ValidatedChunk) -> list[RejectedRow]:
        if self._journal_loaded.is_alive() and len(self._early) < EARLY_PARTS:
            # the journal is still loading: the next chunks are validated meanwhile
            self._early.append(part)
            return self._book()
        return self._take_early() + self._take(part)

    def _take_early(self) -> list[RejectedRow]:
        """The parts that came while the journal loaded, now that it has."""
        self._journal_loaded.join()
        if self._journal_error is not None:
            raise self._journal_error
        refused: list[RejectedRow] = []
        while self._early:
            refused += self._take(self._early.pop(0))
        return refused

    def _take(self, part: ValidatedChunk) -> list[RejectedRow]:
        if self.failure is not None or self.stop.requested:
            if len(part.offsets) and self._not_taken is None:
                self._not_taken = int(part.rows[0])
            return self._book()  # nothing more goes out
        prints = part.fingerprints
        keys = part.keys
        if self.full:
            if len(self.legacy):  # sent anyway; a sender still sees today's fingerprints
                self._reprinted(part, prints, np.arange(len(prints)))
            fresh = list(range(len(prints)))
        else:
            same = contains(self.known, prints)
            if len(self.legacy):
                same |= self._reprinted(part, prints, np.flatnonzero(~same))
            fresh = np.flatnonzero(~same).tolist()
            unchanged = len(prints) - len(fresh)
            if part.sizes is not None:
                unchanged = int(part.sizes[same].sum())
            self.summary.rows_unchanged += unchanged
            if (
                self.summary.totals is not None
                and part.amounts is not None
                and len(fresh) < len(same)
            ):
                # already in the CRM: counted as accepted, in one vectorised step
                amounts, currencies = part.amounts, part.currencies
                if fresh:  # some changed: the unchanged ones only (a re-run: all of them)
                    mask = pa.array(same)
                    amounts, currencies = pc.filter(amounts, mask), pc.filter(currencies, mask)
                self.summary.totals.add("accepted", amounts, currencies)
        if not fresh:
            return self._book()
        # bytes, only of the rows that go out: an unchanged re-run makes no Python object a row
        chosen = part.payloads if len(fresh) == len(prints) else part.payloads.take(fresh)
        sent = iter(chosen.cast(pa.binary()).to_pylist())
        amounts = part.amounts.to_pylist() if part.amounts is not None else None
        currencies = part.currencies.to_pylist() if part.currencies is not None else None
        rows = part.rows.tolist()
        offsets = part.offsets.tolist()
        links = part.links
        prints = prints.tolist()
        for i in fresh:
            self.pending.append(
                Pending(
                    rows[i],
                    next(sent),
                    keys[i],
                    prints[i],
                    part.chunk,
                    offsets[i],
                    links[i] if links is not None else None,
                    amounts[i] if amounts is not None else None,
                    currencies[i] if currencies is not None else None,
                    part.members[i] if part.members is not None else None,
                )
            )
            if len(self.pending) >= self.batch_size:
                self._submit(self.batch_size)
        return self._book()

    def finish(self) -> list[RejectedRow]:
        """Send what is left (unless the run is ending early), wait for the answers, book them."""
        refused = self._take_early()
        # the file is read: what is left to send is known now, not estimated (a quota's last
        # window goes at once when the rest fits in it)
        with self._outbox.mutex:
            queued = sum(len(item[1]) for item in self._outbox.queue if item is not None)
        left = self.target.requests_for(self.kind, queued + len(self.pending), self.batch_size)
        self.client.pacer.expect(left + self.requests_after)
        while self.pending and self.failure is None and not self.stop.requested:
            self._submit(len(self.pending))
        self.close()
        return refused + self._book()

    def undelivered(self) -> Undelivered:
        """What the server has not settled, once the senders are done: the records of the
        batches in flight that got no answer where rows after them were delivered (as spans
        of rows), the row from which nothing was delivered, and how many rows after the
        first gap were delivered all the same (other batches in flight were answered while
        one failed, or went out while an earlier one waited)."""
        rest = [int(part.rows[0]) for part in self._early if len(part.offsets)]
        if self.pending:
            rest.append(self.pending[0].row)
        if self._not_taken is not None:
            rest.append(self._not_taken)
        return undelivered(self._unsettled, self._submitted, self._accepted_in, rest)

    def close(self) -> None:
        """Let the senders finish what is queued (or skip it, after a failure) and stop."""
        self._journal_loaded.join()
        running = [thread for thread in self._threads if thread.is_alive()]
        for _ in running:
            self._outbox.put(None)
        for thread in running:
            thread.join()

    # -- the calling thread -----------------------------------------------------------------
    def _submit(self, count: int) -> None:
        size = min(count, self.batch_size)
        batch, self.pending = self.pending[:size], self.pending[size:]
        number = self._submitted
        self._submitted += 1
        for pending in batch:
            pending.batch = number
        self._unsettled[number] = batch
        while self.failure is None and not self.stop.requested:
            try:
                self._outbox.put((number, batch), timeout=0.2)
                return
            except queue.Full:
                # the sender is busy: book its answers meanwhile, so progress stays live
                self._refused.extend(self._take_events())

    def _reprinted(
        self, part: ValidatedChunk, prints: np.ndarray, candidates: np.ndarray
    ) -> np.ndarray:
        """Which rows (of the `candidates`) an entry of an older journal knows unchanged: their
        BLAKE2b matches. The entry gets today's fingerprint, so a row costs that hash once."""
        texts = part.payloads if len(candidates) == len(prints) else part.payloads.take(candidates)
        old = legacy_fingerprints(texts.cast(pa.binary()).to_pylist())
        hits = candidates[contains(self.legacy, old)]
        keys = [part.keys[i] for i in hits.tolist()]
        with self._journal_lock:
            self.journal.reprint(self.kind.name, zip(keys, prints[hits].tolist(), strict=True))
            entries = self._entries.get(self.kind.name)
            if entries is not None:  # a sender looks at these: it sees today's fingerprints
                for key, fingerprint in zip(keys, prints[hits].tolist(), strict=True):
                    entries[key] = (fingerprint, entries.get(key, (0, None))[1])
        found = np.zeros(len(prints), bool)
        found[hits] = True
        return found

    def _book(self) -> list[RejectedRow]:
        """Apply what the sender reported; the refused rows since the last call."""
        refused, self._refused = self._refused + self._take_events(), []
        return refused

    def _take_events(self) -> list[RejectedRow]:
        """Apply the sender's events: counts, totals, refused rows (returned)."""
        return book_events(
            self._events, self.summary, self._unsettled, self._accepted_in, self.progress
        )

    # -- the sender thread ------------------------------------------------------------------
    def _send_loop(self) -> None:
        while (item := self._outbox.get()) is not None:
            if self.failure is not None:
                continue  # stopped: let the queue drain without sending
            number, batch = item
            try:
                self.stop.check()
                self._send(batch)
                self._events.put(("settled", number))
            except PayorError as exc:  # an abort; or a usage error found before sending (exit 2)
                self._fail(exc)
            except Exception as exc:  # a bug or a broken journal: end the run, never a traceback
                self._fail(
                    AbortedError(
                        self.client.clean(
                            f"{self.kind.name}: delivery failed: {type(exc).__name__}: {exc}"
                        ),
                        "what was accepted before stays recorded; a re-run goes on from there",
                    )
                )

    def _fail(self, error: PayorError) -> None:
        """The first failure ends the run; the others are its echoes (a request not started)."""
        with self._failure_lock:
            if self.failure is None:
                self.failure = error
                self.client.pacer.halt(str(error))

    def _send(self, batch: list[Pending]) -> None:
        """The target's sender does the talking; the requests it cost are counted here."""
        requests_before, retries_before = self.client.thread_counts()
        try:
            self._kind_sender.send(batch)
        finally:
            requests_after, retries_after = self.client.thread_counts()
            self._events.put(
                ("requests", requests_after - requests_before, retries_after - retries_before)
            )

    # -- the Outlet the target's sender reports to (targets.Outlet) ----------------------------
    def accepted(self, batch: list[Pending], ids: list[str | None] | None = None) -> None:
        # durable before the next batch goes out: a kill loses at most the batch in flight
        remote = ids or [None] * len(batch)
        with self._journal_lock:  # one SQLite connection, several senders
            self.journal.record(
                self.kind.name,
                ((p.key, p.fingerprint, i) for p, i in zip(batch, remote, strict=True)),
            )
        self._events.put(("accepted", batch))

    def refused(self, pending: Pending, reason: str, kind: str = "server_rejected") -> None:
        self._events.put(("refused", pending, reason, kind))

    def unchanged(self, batch: list[Pending]) -> None:
        """Records the sender found as the journal knows them, so sent nothing for (--full on
        an API that cannot resend them): unchanged, not accepted in this run."""
        self._events.put(("unchanged", batch))

    def journalled(self, kind: str) -> dict[str, tuple[int, str | None]]:
        """Key -> (fingerprint, remote id) of what the journal holds for `kind`."""
        if kind not in self._entries:
            with self._journal_lock:
                self._entries[kind] = self.journal.entries(kind)
        return self._entries[kind]

    def intend(self, key: str) -> None:
        """A create of `key` goes out now (journalled first; see Journal.intend)."""
        with self._journal_lock:
            self.journal.intend(self.kind.name, key)

    def open_intents(self) -> set[str]:
        """Keys of this kind whose create an earlier run sent without learning how it went."""
        with self._journal_lock:
            return self.journal.open_intents(self.kind.name)

    def check_stop(self) -> None:
        self.stop.check()

    def sending(self, batch: list[Pending]) -> None:
        """The batch goes on the wire now: its rows count as sent (once)."""
        fresh = [p for p in batch if not p.sent]
        for pending in fresh:
            pending.sent = True
        if fresh:
            self._events.put(("sent", sum(p.size for p in fresh)))

    def notice(self, text: str) -> None:
        self.client.notice(text)
