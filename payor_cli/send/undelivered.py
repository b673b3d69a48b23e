"""What a delivery that ended early did not deliver: the gaps among the batches in flight, the
row from which nothing went out, and how much was delivered after the first gap."""

from __future__ import annotations

from dataclasses import dataclass

from payor_cli.contract import Pending
from payor_cli.summary import Span


@dataclass
class Undelivered:
    """What a delivery that ended early did not deliver (see `Delivery.undelivered`)."""

    spans: list[Span]
    rest_from: int | None
    delivered_after: int


def undelivered(
    unsettled: dict[int, list[Pending]],
    submitted: int,
    accepted_in: dict[int, int],
    rest: list[int],
) -> Undelivered:
    """The gaps of the batches the server has not finished with (`unsettled`, by batch
    number, of the `submitted` so far) as spans of rows, where rows after them were delivered;
    `accepted_in`: the rows accepted of each batch; `rest`: the first rows of what never went
    out (the earliest is where delivery ended)."""
    spans: list[tuple[Span, int]] = []  # with the batch number of the span's last record
    run: list[Pending] = []

    def close_run() -> None:
        if run:
            span = Span(run[0].row, run[-1].row, sum(p.size for p in run))
            spans.append((span, run[-1].batch))
            run.clear()

    for number in range(min(unsettled, default=submitted), submitted):
        for pending in unsettled.get(number, ()):
            if pending.settled:
                close_run()
            else:
                run.append(pending)
        if number not in unsettled:
            close_run()  # a batch answered in between
    close_run()
    rest = list(rest)
    # a gap after which nothing was delivered is where delivery ended, not a gap
    while spans and _accepted_after(unsettled, accepted_in, *spans[-1]) == 0:
        rest.append(spans.pop()[0].first)
    after = _accepted_after(unsettled, accepted_in, *spans[0]) if spans else 0
    return Undelivered([span for span, _ in spans], min(rest, default=None), after)


def _accepted_after(
    unsettled: dict[int, list[Pending]], accepted_in: dict[int, int], span: Span, batch: int
) -> int:
    """Rows accepted after the span: of the batches in flight, and of those answered."""
    found = 0
    for batch_rows in unsettled.values():
        found += sum(p.size for p in batch_rows if p.accepted and p.row > span.last)
    found += sum(
        rows for number, rows in accepted_in.items() if number > batch and number not in unsettled
    )
    return found
