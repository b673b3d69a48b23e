"""One upload, start to end: plan -> read -> map -> validate -> (send -> journal) -> report.

This module wires the stages together; it neither prints nor exits. What the user sees goes
through an `Observer` (report.py), what is sent through a `Sink` (deliver.py, or nothing in a
dry run). Every file of the run is opened and its mapping bound before any connection is
made, and however the run ends, its counts, reports and rejected-rows files are written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

from payor_cli.check import records
from payor_cli.check.validate import ValidatedChunk, Validator
from payor_cli.contract import Target
from payor_cli.errors import (
    AbortedError,
    ExitCode,
    InputError,
    LockedError,
    PayorError,
)
from payor_cli.read import shown
from payor_cli.read.readahead import ReadAhead
from payor_cli.rows import Chunk, RejectedRow
from payor_cli.run.connection import open_delivery, quota_plan
from payor_cli.run.plan import (
    HeldBack,
    Kept,
    Observer,
    Outputs,
    Planned,
    RunOutputs,
    Sink,
    Source,
    UploadRequest,
    UploadResult,
    mapping_targets,
    per_kind,
    plan,
    resolve_mapping,
)
from payor_cli.run.settings import Settings
from payor_cli.run.target_choice import TargetChoice, with_mapping_target
from payor_cli.schema import FieldType
from payor_cli.stop import StopRequest
from payor_cli.summary import RunSummary, Span, Stopped, Totals, decimal_places
from payor_cli.targets import get_target


def new_summary(source: Source, dry_run: bool) -> RunSummary:
    summary = RunSummary(source.kind.name, shown(source.path), dry_run, target=source.target.name)
    summary.link = source.kind.parent[:2] if source.kind.parent else None
    amount_field = source.target.amount_field
    if source.kind.field(amount_field) is not None:
        amount = source.mapping.fields.get(amount_field)
        places = decimal_places(amount.scale) if amount is not None else 0
        if source.kind.field(amount_field).type is FieldType.MONEY:
            places = 2
        currency = source.target.currency_field
        named = source.mapping.currency_column is not None or (
            currency is not None and currency in source.mapping.fields
        )
        summary.totals = Totals(places, amount_field, currencies=named)
    return summary


def run_source(
    planned: Planned,
    summary: RunSummary,
    *,
    outputs: RunOutputs,
    observer: Observer,
    stop: StopRequest,
    sink: Sink | None = None,
    held_back: HeldBack | None = None,
    sent_before: bool = False,
) -> RunSummary:
    """Read, validate and (through `sink`) deliver one file; the summary says what happened,
    also when the run ends early: then nothing new is sent, the answers already given are
    booked, and `summary.stopped` says why and how far the file was read."""
    source, table = planned.source, planned.table
    started = time.monotonic()
    summary.source = table.describe()
    summary.mapping_source = source.mapping.source
    validator = Validator(planned.bound, source.target, held_back.reasons if held_back else None)
    observer.started(summary, table, source.mapping)
    for warning in planned.warnings():
        observer.warning(warning)
    outputs.open(table)
    one = _OneFile(planned, summary, outputs, observer, stop, sink, held_back)
    reader = ReadAhead(iter(table.chunks()))
    chunks = _whole_records(planned, reader)
    try:
        one.read_and_send(chunks, validator)
    except AbortedError as exc:
        summary.stopped = _stopped(exc, summary, sink, one.server_refused, table.header_row + 1)
    except PayorError as exc:
        if summary.rows_sent == 0 and not sent_before:
            raise
        # the file broke half way, after rows went out: an abort, and the counts stay true
        summary.stopped = _stopped(exc, summary, sink, one.server_refused, table.header_row + 1)
    finally:
        if sink is not None:
            sink.close()  # the sender never outlives the run, nor writes to a closed journal
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        reader.close()  # the reader's file and threads are released now, whatever happened
    summary.duration_s = time.monotonic() - started
    summary.exit_code = exit_code(summary)
    observer.finished(summary)
    return summary


def _whole_records(planned: Planned, reader: ReadAhead) -> Iterator[Chunk]:
    """The file's chunks; where a record spans rows, never one split between two chunks."""
    source = planned.source
    if not source.mapping.groups_rows:
        return reader
    key_columns = [
        b.column_index
        for b in planned.bound.fields
        if b.spec.field in source.mapping.key and b.column_index is not None
    ]
    return records.whole_records(reader, key_columns)


class _OneFile:
    """One file's way through validation to the sink: its counts, its refused rows."""

    def __init__(
        self,
        planned: Planned,
        summary: RunSummary,
        outputs: RunOutputs,
        observer: Observer,
        stop: StopRequest,
        sink: Sink | None,
        held_back: HeldBack | None,
    ) -> None:
        self.planned = planned
        self.summary = summary
        self.outputs = outputs
        self.observer = observer
        self.stop = stop
        self.sink = sink
        self.held_back = held_back

    def read_and_send(self, chunks: Iterator[Chunk], validator: Validator) -> None:
        """Every chunk validated, counted and handed to the sink; then the last answers."""
        source, summary, sink = self.planned.source, self.summary, self.sink
        for chunk in chunks:
            self.stop.check()
            part = validator(chunk)
            summary.rows_read += part.rows_read
            summary.rows_skipped += part.rows_skipped
            summary.rows_merged += part.rows_merged
            summary.rows_valid += part.rows_valid
            summary.last_row = chunk.first_row + chunk.num_rows - 1
            self.refused(part.rejected)
            _add_totals(summary, part)
            self.outputs.payloads(source.target.as_sent(source.kind, part.payloads))
            if sink is not None:
                self.server_refused(sink.take(part))
                if sink.failure is not None:
                    # was that the last chunk? A look ahead tells the truth about "how far"
                    summary.read_to_end = next(chunks, None) is None
                    raise sink.failure
            self.observer.progress(summary)
        summary.read_to_end = True
        self.stop.check()
        if summary.rows_read == 0:
            raise InputError(
                f"{shown(source.path)}: no data rows under the header on row "
                f"{self.planned.table.header_row}",
                "check the file, or --header-row if the header is further down",
            )
        self.delivered()

    def refused(self, rows: list[RejectedRow]) -> None:
        """Rows refused here: counted, written to the rejected-rows file, held back."""
        self.summary.rows_rejected += len(rows)
        for row in rows:
            for error in row.errors:
                self.summary.errors.add(error, row.cells)
        self.outputs.rejected(rows)
        if self.held_back is not None:
            self.held_back.add(rows)

    def server_refused(self, rows: list[RejectedRow]) -> None:
        """Rows the server refused."""
        # valid here, refused there: counted once, as rejected (read = valid + rejected + ...)
        self.summary.rows_valid -= len(rows)
        self.refused(rows)

    def delivered(self) -> None:
        """Book what the sender has heard; raise its failure, if any."""
        if self.sink is not None:
            self.server_refused(self.sink.finish())
            if self.sink.failure is not None:
                raise self.sink.failure
        self.stop.check()  # asked to stop while the last answers came: still a stop (exit 3)


def _stopped(
    exc: PayorError,
    summary: RunSummary,
    sink: Sink | None,
    server_refused: Callable[[list[RejectedRow]], None],
    first_row: int,
) -> Stopped:
    """Why and where the run stopped: the first row it did not deal with, and what was and
    was not delivered of the requests in flight."""
    rest: list[int] = []
    spans: list[Span] = []
    after = 0
    if sink is not None:
        if sink.failure is None:  # nothing new goes out after the run broke
            sink.failure = AbortedError(exc.message, exc.hint)
        server_refused(sink.finish())  # what the server answered counts, also now
        gaps = sink.undelivered()
        spans, after = gaps.spans, gaps.delivered_after
        if gaps.rest_from is not None:
            rest.append(gaps.rest_from)
    if not summary.read_to_end:
        rest.append(summary.last_row + 1 if summary.last_row else first_row)
    rest_from = min(rest, default=None)
    first = min([*rest, *(s.first for s in spans)], default=None)
    return Stopped(getattr(exc, "reason", "aborted"), str(exc), first, spans, rest_from, after)


def _add_totals(summary: RunSummary, part: ValidatedChunk) -> None:
    if summary.totals is None or part.read_amounts is None:
        return
    summary.totals.add("read", *part.read_amounts)
    summary.totals.add("rejected", *part.rejected_amounts)
    summary.totals.add("valid", part.amounts, part.currencies)
    for stage, amount, currency in part.amount_extras:
        summary.totals.add_value(stage, amount, currency)


def exit_code(summary: RunSummary) -> int:
    if summary.stopped:
        return ExitCode.ABORTED
    if summary.rows_rejected:
        return ExitCode.ROWS_REJECTED
    return ExitCode.OK


def run_upload(
    request: UploadRequest,
    settings: Settings,
    observer: Observer,
    show_inferred: Callable[[str, str, str], None] | None = None,
    stop: StopRequest | None = None,
) -> UploadResult:
    """Every kind of the request in order; invoices of rejected customers are held back."""
    chosen = settings.target_choice
    if chosen.name != settings.target:  # Settings made in code (the Python API, tests)
        chosen = TargetChoice(settings.target, "the settings")
    chosen = with_mapping_target(chosen, mapping_targets(request, settings))
    settings.target = chosen.name
    target = get_target(chosen.resolved)
    target.configure(settings)
    stop = stop or StopRequest()
    result = UploadResult([])
    if request.keep:
        result.kept = {name: Kept() for name in request.files}
    outputs = _outputs(request, result)
    try:
        sources = _sources(request, settings, target)
        planned = []
        for source in sources:  # every file checked before anything is sent
            stop.check()
            planned.append(plan(source))
        for source in sources:
            if source.inferred is not None:
                result.inferred[source.kind.name] = source.inferred
                if show_inferred is not None:
                    show_inferred(source.kind.name, source.inferred, str(shown(source.path)))
        result.summaries = [new_summary(source, request.dry_run) for source in sources]
        _run_planned(request, settings, observer, stop, planned, result.summaries, outputs)
    except LockedError:
        outputs.clear()  # the run holding the lock is writing these files
        raise
    finally:
        for kind_outputs in outputs.values():
            kind_outputs.close()
    return result


def _outputs(request: UploadRequest, result: UploadResult) -> dict[str, RunOutputs]:
    """Each kind's outputs: its rejected-rows file, its payloads (dry run), what is kept."""
    several = len(request.files) > 1
    return {
        name: RunOutputs(
            Outputs(
                per_kind(request.outputs.rejected, name, several),
                per_kind(request.outputs.payloads, name, several) if request.dry_run else None,
            ),
            result.kept.get(name),
        )
        for name in request.files
    }


def _sources(request: UploadRequest, settings: Settings, target: Target) -> list[Source]:
    """Each kind's file with its mapping (given, or inferred) and its opener."""
    sources = [
        resolve_mapping(
            target,
            target.kind(name),
            path,
            settings,
            request.mapping_path,
            dry_run=request.dry_run,
            overrides=request.overrides,
        )
        for name, path in request.files.items()
    ]
    for source in sources:
        source.opener = request.openers.get(source.kind.name)
    return sources


def _run_planned(
    request: UploadRequest,
    settings: Settings,
    observer: Observer,
    stop: StopRequest,
    planned: list[Planned],
    summaries: list[RunSummary],
    outputs: dict[str, RunOutputs],
) -> None:
    held_back = HeldBack() if len(planned) > 1 else None
    with ExitStack() as stack:
        deliveries = None
        if not request.dry_run:
            target = planned[0].source.target
            if (said := quota_plan(planned, target, settings.batch_size)) is not None:
                observer.notice(said)
            deliveries = stack.enter_context(
                open_delivery(request, settings, observer, stop, target, planned)
            )
        ended: RunSummary | None = None
        for item, summary in zip(planned, summaries, strict=True):
            name = item.source.kind.name
            if ended is not None and ended.stopped is not None:
                # customers stopped: invoices are not started, and say so
                summary.stopped = Stopped(
                    ended.stopped.reason, f"not started: {ended.kind} stopped first", None
                )
                summary.exit_code = exit_code(summary)
                continue
            ended = run_source(
                item,
                summary,
                outputs=outputs[name],
                observer=observer,
                stop=stop,
                sink=deliveries.for_kind(item.source.kind, summary) if deliveries else None,
                held_back=held_back,
                # after customers went out, a broken invoices file is an abort, not "nothing sent"
                sent_before=any(s.rows_sent for s in summaries),
            )
