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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from . import records
from .connection import connection, quota_plan
from .deliver import Undelivered
from .errors import (
    AbortedError,
    ExitCode,
    InputError,
    LockedError,
    MappingError,
    PayorError,
)
from .keys import fold_email
from .mapping import BoundMapping, Mapping, bind, load_mapping_file, parse_mapping, read_toml
from .outputs import PayloadWriter, RejectedWriter
from .readahead import ReadAhead
from .readers import Chunk, InputOptions, Table, open_table, shown
from .rejected import origin_of
from .schema import FieldType, Kind
from .settings import Settings, TargetChoice, with_mapping_target
from .stop import StopRequest
from .summary import RejectedRow, RunSummary, Span, Stopped, Totals, decimal_places
from .targets import Target
from .validate import ValidatedChunk, Validator


class Observer(Protocol):
    """Receives what happens, to show it; report.py has the terminal and plain-line versions."""

    def started(self, summary: RunSummary, table: Table, mapping: Mapping) -> None: ...

    def progress(self, summary: RunSummary) -> None: ...

    def notice(self, text: str) -> None: ...

    def finished(self, summary: RunSummary) -> None: ...


class Sink(Protocol):
    """Where valid rows go; returns the rows the server refused, with its reasons.

    `failure` is set when delivery must end early (an abort, or a stop asked for); `finish`
    then sends nothing new but still returns what the server refused.
    """

    failure: PayorError | None

    def take(self, part: ValidatedChunk) -> list[RejectedRow]: ...

    def finish(self) -> list[RejectedRow]: ...

    def undelivered(self) -> Undelivered: ...

    def close(self) -> None: ...


@dataclass
class Source:
    """One kind's input: the file and the mapping that reads it."""

    kind: Kind
    path: Path
    mapping: Mapping
    target: Target
    inferred: str | None = None
    """The TOML text of a mapping `init` would write, when no mapping was given anywhere."""
    opener: Callable[[InputOptions], Table] | None = None
    """Opens a source that is no file (a DataFrame, see frame.py); None: open `path`."""


@dataclass
class Outputs:
    rejected: Path | None = None
    payloads: Path | None = None


@dataclass
class Kept:
    """A kind's rejected rows and dry-run payloads, kept for the Python API (api.py)."""

    rejected: list[dict[str, object]] = field(default_factory=list)
    payloads: list[str] = field(default_factory=list)


@dataclass
class Planned:
    """A source whose file is open, its header found and its mapping bound: ready to stream."""

    source: Source
    table: Table
    bound: BoundMapping


class RunOutputs:
    """One kind's rejected-rows and payload files.

    Opened with the kind's table; on `close` a kind that never got that far (the run failed
    or stopped first) still gets an empty rejected-rows file, so an old file never passes
    for a new one.
    """

    def __init__(self, outputs: Outputs, kept: Kept | None = None) -> None:
        self.paths = outputs
        self.kept = kept
        self._headers: list[str] = []
        self._table: Table | None = None
        self._rejected: RejectedWriter | None = None
        self._payloads: PayloadWriter | None = None

    def open(self, table: Table) -> None:
        self._headers = table.headers
        self._table = table
        if self.paths.rejected is not None:
            self._rejected = RejectedWriter(self.paths.rejected, table)
        if self.paths.payloads is not None:
            self._payloads = PayloadWriter(self.paths.payloads)

    def rejected(self, rows: list[RejectedRow]) -> None:
        if self._rejected is not None:
            self._rejected.write(rows)
        if self.kept is not None:
            for row in rows:
                cells = dict(zip(self._headers, row.cells, strict=False))
                lead = {"source_row": row.row, "errors": row.message}
                lead["origin"] = origin_of(self._table, row.row)
                self.kept.rejected.append(lead | cells)

    def payloads(self, payloads: pa.Array) -> None:
        if self._payloads is not None:
            self._payloads.write(payloads)
        if self.kept is not None:
            self.kept.payloads.extend(payloads.to_pylist())

    def close(self) -> None:
        if self._rejected is None and self.paths.rejected is not None:
            self._rejected = RejectedWriter(self.paths.rejected)
        for writer in (self._rejected, self._payloads):
            if writer is not None:
                writer.close()
        self._rejected = self._payloads = None


@dataclass
class HeldBack:
    """Rejected parents (customers) by their link value, so their children are held back."""

    reasons: dict[str, str] = field(default_factory=dict)

    def add(self, rows: list[RejectedRow]) -> None:
        for row in rows:
            if not row.link or all(e.kind == "duplicate_key" for e in row.errors):
                continue  # a refused repeat: the row that keeps the key speaks for the customer
            first = row.errors[0].message() if row.errors else "rejected"
            reason = f"its customer {row.link} was rejected (row {row.row}: {first})"
            self.reasons.setdefault(row.link, reason)
            self.reasons.setdefault(fold_email(row.link), reason)  # e-mail links: any case


def resolve_mapping(
    target: Target,
    kind: Kind,
    path: Path,
    settings: Settings,
    mapping_path: Path | dict[str, Any] | None,
    *,
    dry_run: bool,
    overrides: dict[str, object],
) -> Source:
    """--mapping over the config's section; with neither, the mapping `init` would write."""
    mapping: Mapping | None = None
    if isinstance(mapping_path, dict):  # the Python API's mapping, in the TOML's shape
        section = mapping_path.get(kind.name)
        if section is None and "fields" in mapping_path:
            section = mapping_path
        if section is None:
            raise MappingError(f"the mapping has no {kind.name!r} section")
        mapping = parse_mapping(section, kind, f"mapping [{kind.name}]")
    elif mapping_path is not None:
        mapping = load_mapping_file(mapping_path, kind)
        if mapping is None:
            raise MappingError(
                f"{mapping_path}: no [{kind.name}] section",
                f"add [{kind.name}] and [{kind.name}.fields], or write one with "
                f"`payor init {kind.name} {path} -o {mapping_path}`",
            )
    else:
        section = settings.mapping_section(kind.name)
        if section is not None:
            mapping = parse_mapping(section, kind, f"{settings.config_path} [{kind.name}]")
    inferred = None
    if mapping is None:
        hint = f"write one with `payor init {kind.name} {path} -o payor.toml`"
        if not dry_run:
            raise MappingError(
                f"no mapping for {kind.name}: nothing tells payor which column is which", hint
            )
        from .infer import suggest_mapping

        suggestion = suggest_mapping(path, kind, InputOptions().overridden(**overrides))
        if suggestion.mapping is None:
            raise MappingError(
                f"no mapping for {kind.name}, and the file lacks columns for "
                f"{', '.join(suggestion.todo)}",
                hint + ", then name those columns in it",
            )
        mapping, inferred = suggestion.mapping, suggestion.toml
    return Source(kind, Path(path), mapping.with_input(**overrides), target, inferred)


def mapping_targets(request: UploadRequest, settings: Settings) -> list[tuple[str, str]]:
    """(target, where) for each mapping section of the run that names the target it was
    written for (`target = "onlyoffice"`)."""
    found = []
    for kind in request.files:
        given = request.mapping_path
        if isinstance(given, dict):
            section, where = given.get(kind), f"mapping [{kind}]"
            if section is None and "fields" in given:
                section = given
        elif given is not None:
            data = read_toml(given)
            section, where = data.get(kind), f"{given} [{kind}]"
            if section is None and "fields" in data:
                section = data
        else:
            section = settings.mapping_section(kind)
            where = f"{settings.config_path} [{kind}]"
        if isinstance(section, dict) and "target" in section:
            found.append((section["target"], where))
    return found


def plan(source: Source) -> Planned:
    """Open the file and bind the mapping to its header (exit 2 on any problem)."""
    if source.opener is not None:
        table = source.opener(source.mapping.input)
    else:
        table = open_table(source.path, source.mapping.input)
    return Planned(source, table, bind(source.mapping, table.headers, str(shown(source.path))))


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
    validator = Validator(planned.bound, held_back.reasons if held_back else None, source.target)
    observer.started(summary, table, source.mapping)
    outputs.open(table)

    def refused(rows: list[RejectedRow]) -> None:
        summary.rows_rejected += len(rows)
        for row in rows:
            for error in row.errors:
                summary.errors.add(error, row.cells)
        outputs.rejected(rows)
        if held_back is not None:
            held_back.add(rows)

    def server_refused(rows: list[RejectedRow]) -> None:
        # valid here, refused there: counted once, as rejected (read = valid + rejected + ...)
        summary.rows_valid -= len(rows)
        refused(rows)

    def delivered() -> None:
        """Book what the sender has heard; raise its failure, if any."""
        if sink is not None:
            server_refused(sink.finish())
            if sink.failure is not None:
                raise sink.failure
        stop.check()  # asked to stop while the last answers came: still a stop (exit 3)

    reader = ReadAhead(iter(table.chunks()))
    chunks: Iterator[Chunk] = reader
    if source.mapping.groups_rows:  # a record's rows never straddle two chunks
        key_columns = [
            b.column_index
            for b in planned.bound.fields
            if b.spec.field in source.mapping.key and b.column_index is not None
        ]
        chunks = records.whole_records(chunks, key_columns)
    try:
        for chunk in chunks:
            stop.check()
            part = validator(chunk)
            summary.rows_read += part.rows_read
            summary.rows_skipped += part.rows_skipped
            summary.rows_merged += part.rows_merged
            summary.rows_valid += part.rows_valid
            summary.last_row = chunk.first_row + chunk.num_rows - 1
            refused(part.rejected)
            _add_totals(summary, part)
            outputs.payloads(source.target.as_sent(source.kind, part.payloads))
            if sink is not None:
                server_refused(sink.take(part))
                if sink.failure is not None:
                    # was that the last chunk? A look ahead tells the truth about "how far"
                    summary.read_to_end = next(chunks, None) is None
                    raise sink.failure
            observer.progress(summary)
        summary.read_to_end = True
        stop.check()
        if summary.rows_read == 0:
            raise InputError(
                f"{shown(source.path)}: no data rows under the header on row {table.header_row}",
                "check the file, or --header-row if the header is further down",
            )
        delivered()
    except AbortedError as exc:
        summary.stopped = _stopped(exc, summary, sink, server_refused, table.header_row + 1)
    except PayorError as exc:
        if summary.rows_sent == 0 and not sent_before:
            raise
        # the file broke half way, after rows went out: an abort, and the counts stay true
        summary.stopped = _stopped(exc, summary, sink, server_refused, table.header_row + 1)
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


@dataclass
class UploadRequest:
    """What is to be uploaded, before settings are resolved (see `api.UploadOptions.request`)."""

    files: dict[str, Path]
    """kind name -> file, in upload order (customers before invoices)."""
    dry_run: bool = False
    mapping_path: Path | dict[str, Any] | None = None
    """A mapping TOML, or (Python API) a dict in its shape."""
    full: bool = False
    outputs: Outputs = field(default_factory=Outputs)
    sandbox: bool = False
    overrides: dict[str, object] = field(default_factory=dict)
    openers: dict[str, Callable[[InputOptions], Table]] = field(default_factory=dict)
    """kind name -> how to open its source when it is no file (a DataFrame)."""
    keep: bool = False
    """Keep the rejected rows and payloads in the result (the Python API's Run)."""


@dataclass
class UploadResult:
    summaries: list[RunSummary]
    inferred: dict[str, str] = field(default_factory=dict)
    kept: dict[str, Kept] = field(default_factory=dict)
    """With `UploadRequest.keep`: each kind's rejected rows and payloads."""

    @property
    def exit_code(self) -> int:
        return max((s.exit_code for s in self.summaries), default=ExitCode.OK)

    def as_json(self) -> dict[str, object]:
        if len(self.summaries) == 1:
            return self.summaries[0].as_json()
        data: dict[str, object] = {s.kind: s.as_json() for s in self.summaries}
        data["exit_code"] = self.exit_code
        return data


def run_upload(
    request: UploadRequest,
    settings: Settings,
    observer: Observer,
    show_inferred: Callable[[str, str, str], None] | None = None,
    stop: StopRequest | None = None,
) -> UploadResult:
    """Every kind of the request in order; invoices of rejected customers are held back."""
    from .targets import get_target

    chosen = settings.target_choice
    if chosen.name != settings.target:  # Settings made in code (the Python API, tests)
        chosen = TargetChoice(settings.target, "the settings")
    chosen = with_mapping_target(chosen, mapping_targets(request, settings))
    settings.target = chosen.name
    target = get_target(settings.target)
    target.configure(settings)
    stop = stop or StopRequest()
    several = len(request.files) > 1
    result = UploadResult([])
    if request.keep:
        result.kept = {name: Kept() for name in request.files}
    outputs = {
        name: RunOutputs(
            Outputs(
                per_kind(request.outputs.rejected, name, several),
                per_kind(request.outputs.payloads, name, several) if request.dry_run else None,
            ),
            result.kept.get(name),
        )
        for name in request.files
    }
    try:
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
        delivery = None
        if not request.dry_run:
            target = planned[0].source.target
            if (said := quota_plan(planned, target, settings.batch_size)) is not None:
                observer.notice(said)
            delivery = stack.enter_context(
                connection(request, settings, observer, stop, target, planned)
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
                sink=delivery(item.source.kind, summary) if delivery else None,
                held_back=held_back,
                # after customers went out, a broken invoices file is an abort, not "nothing sent"
                sent_before=any(s.rows_sent for s in summaries),
            )


def per_kind(path: Path | None, kind: str, several: bool) -> Path | None:
    """With two sources (`upload all`) each kind gets its own file: rejected.customers.csv."""
    if path is None or not several:
        return path
    return path.with_name(f"{path.stem}.{kind}{path.suffix}")
