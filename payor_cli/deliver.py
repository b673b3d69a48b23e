"""Plan and send: skip what the journal knows, batch the rest in file order, find refused rows.

A refused batch that names its rows loses just those rows; one that names none is split in
halves until the refused rows are found; 413 halves the batch size for the rest of the run.
Every accepted batch is journalled before the next one goes out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .client import Answer, ApiClient
from .journal import Journal, fingerprint
from .readers import Chunk
from .schema import Kind
from .summary import RejectedRow, RowError, RunSummary
from .validate import ValidatedChunk


@dataclass
class Pending:
    """A valid row waiting to be sent, with what is needed to report or journal it."""

    row: int
    payload: str
    key: str
    fingerprint: bytes
    chunk: Chunk
    offset: int
    link: str | None
    amount: int | None
    currency: str | None

    def rejected(self, reason: str) -> RejectedRow:
        cells = [column[self.offset].as_py() for column in self.chunk.columns]
        error = RowError(
            self.row, None, None, "server_rejected", f"refused by the server: {reason}"
        )
        return RejectedRow(self.row, [error], cells, self.link)


class Delivery:
    """The Sink of a real upload (see upload.py)."""

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
    ) -> None:
        self.kind = kind
        self.client = client
        self.journal = journal
        self.summary = summary
        self.batch_size = batch_size
        self.full = full
        self.progress = progress or (lambda summary: None)
        self.pending: list[Pending] = []
        self.refused: list[RejectedRow] = []

    # -- Sink -------------------------------------------------------------------------------
    def take(self, part: ValidatedChunk) -> list[RejectedRow]:
        payloads = part.payloads.to_pylist()
        prints = [fingerprint(p) for p in payloads]
        known = {} if self.full else self.journal.accepted(self.kind.name, part.keys)
        amounts = part.amounts.to_pylist() if part.amounts is not None else None
        currencies = part.currencies.to_pylist() if part.currencies is not None else None
        rows = part.rows.tolist()
        offsets = part.offsets.tolist()
        for i, payload in enumerate(payloads):
            key = part.keys[i]
            if known.get(key) == prints[i]:
                self.summary.rows_unchanged += 1
                if amounts is not None and amounts[i] is not None and self.summary.totals:
                    self.summary.totals.add_value("accepted", amounts[i], currencies[i])
                continue
            self.pending.append(
                Pending(
                    rows[i],
                    payload,
                    key,
                    prints[i],
                    part.chunk,
                    offsets[i],
                    part.links[i] if part.links is not None else None,
                    amounts[i] if amounts is not None else None,
                    currencies[i] if currencies is not None else None,
                )
            )
            if len(self.pending) >= self.batch_size:
                self._flush(self.batch_size)
        return self._take_refused()

    def finish(self) -> list[RejectedRow]:
        while self.pending:
            self._flush(len(self.pending))
        return self._take_refused()

    # -- sending ----------------------------------------------------------------------------
    def _take_refused(self) -> list[RejectedRow]:
        refused, self.refused = self.refused, []
        return refused

    def _flush(self, count: int) -> None:
        while self.pending and count > 0:
            size = min(count, self.batch_size, len(self.pending))
            batch, self.pending = self.pending[:size], self.pending[size:]
            count -= size
            self.summary.rows_sent += len(batch)
            self._send(batch)

    def _send(self, batch: list[Pending]) -> None:
        answer = self._post(batch)
        if answer.outcome == "accepted":
            self._accepted(batch)
        elif answer.outcome == "too_large":
            if len(batch) == 1:
                self._refuse(
                    batch[0], f"too large for the server (HTTP 413) {answer.message}".strip()
                )
                return
            self.batch_size = max(1, min(self.batch_size, len(batch)) // 2)
            self.client.notice(
                f"{self.kind.name}: the server found {len(batch)} rows too large (HTTP 413); "
                f"batch size now {self.batch_size}"
            )
            remaining = batch
            while remaining:  # cut afresh each time: a part may halve the size again
                part, remaining = remaining[: self.batch_size], remaining[self.batch_size :]
                self._send(part)
        elif answer.row_errors and all(0 <= i < len(batch) for i in answer.row_errors):
            for position, reason in sorted(answer.row_errors.items()):
                self._refuse(batch[position], reason)
            rest = [p for i, p in enumerate(batch) if i not in answer.row_errors]
            if rest:
                self._send(rest)
        elif len(batch) == 1:
            self._refuse(batch[0], answer.message or f"HTTP {answer.status}")
        else:
            middle = len(batch) // 2
            self._send(batch[:middle])
            self._send(batch[middle:])

    def _post(self, batch: list[Pending]) -> Answer:
        body = ("[" + ",".join(p.payload for p in batch) + "]").encode("utf-8")
        requests_before, retries_before = self.client.requests, self.client.retries
        try:
            return self.client.post(self.kind.path, body, len(batch))
        finally:
            self.summary.requests += self.client.requests - requests_before
            self.summary.retries += self.client.retries - retries_before

    def _accepted(self, batch: list[Pending]) -> None:
        self.journal.record(self.kind.name, ((p.key, p.fingerprint) for p in batch))
        self.summary.rows_accepted += len(batch)
        if self.summary.totals is not None:
            for p in batch:
                if p.amount is not None:
                    self.summary.totals.add_value("accepted", p.amount, p.currency)
        self.progress(self.summary)

    def _refuse(self, pending: Pending, reason: str) -> None:
        self.refused.append(pending.rejected(reason))
        if self.summary.totals is not None and pending.amount is not None:
            self.summary.totals.add_value("rejected", pending.amount, pending.currency)
            self.summary.totals.add_value("valid", -pending.amount, pending.currency)
