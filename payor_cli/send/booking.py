"""What the senders report, booked on the calling thread: the counts and totals of the run's
summary, the batches settled, the rows the server refused. The senders only put events on a
queue, so the summary is only ever changed by one thread."""

from __future__ import annotations

import queue
from collections.abc import Callable

from payor_cli.contract import Pending
from payor_cli.rows import RejectedRow
from payor_cli.summary import RunSummary


def book_events(
    events: queue.Queue[tuple],
    summary: RunSummary,
    unsettled: dict[int, list[Pending]],
    accepted_in: dict[int, int],
    progress: Callable[[RunSummary], None],
) -> list[RejectedRow]:
    """Apply the senders' events: counts, totals, the batches settled (taken out of
    `unsettled`), the rows accepted of each batch (`accepted_in`); the refused rows returned."""
    refused: list[RejectedRow] = []
    totals = summary.totals
    while True:
        try:
            event, *data = events.get_nowait()
        except queue.Empty:
            break
        if event == "settled":
            del unsettled[data[0]]
        elif event == "sent":
            summary.rows_sent += data[0]
        elif event == "requests":
            summary.requests += data[0]
            summary.retries += data[1]
        elif event in ("accepted", "unchanged"):
            batch, rows = data[0], 0
            for p in batch:  # unchanged: in the CRM as the file has it, sent nothing for
                p.settled = p.accepted = True
                rows += p.size
            if event == "accepted":
                summary.rows_accepted += rows
            else:
                summary.rows_unchanged += rows
            if batch:  # one sender's answer is of one batch
                number = batch[0].batch
                accepted_in[number] = accepted_in.get(number, 0) + rows
            if totals is not None:  # in the CRM as the file has it: counted as accepted
                for p in batch:
                    if p.amount is not None:
                        totals.add_value("accepted", p.amount, p.currency)
            progress(summary)
        elif event == "refused":
            pending, reason, why = data
            pending.settled = True
            refused.extend(pending.rejected(reason, why))
            if totals is not None and pending.amount is not None:
                totals.add_value("rejected", pending.amount, pending.currency)
                totals.add_value("valid", -pending.amount, pending.currency)
    return refused
