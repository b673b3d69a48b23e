"""One upload, start to end: read -> map -> validate -> (plan -> send -> journal) -> report.

This module wires the stages together; it neither prints nor exits. What the user sees goes
through an `Observer` (report.py), what is sent through a `Sink` (deliver.py, or nothing in a
dry run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .errors import AbortedError, ExitCode, InputError, MappingError
from .mapping import Mapping, bind, load_mapping_file, parse_mapping
from .outputs import PayloadWriter, RejectedWriter
from .readers import InputOptions, Table, open_table
from .schema import Kind
from .settings import Settings
from .summary import RejectedRow, RunSummary, Totals
from .validate import ValidatedChunk, Validator


class Observer(Protocol):
    """Receives what happens, to show it; report.py has the terminal and plain-line versions."""

    def started(self, summary: RunSummary, table: Table, mapping: Mapping) -> None: ...

    def progress(self, summary: RunSummary) -> None: ...

    def notice(self, text: str) -> None: ...

    def finished(self, summary: RunSummary) -> None: ...


class Sink(Protocol):
    """Where valid rows go; returns the rows the server refused, with its reasons."""

    def take(self, part: ValidatedChunk) -> list[RejectedRow]: ...

    def finish(self) -> list[RejectedRow]: ...


@dataclass
class Source:
    """One kind's input: the file and the mapping that reads it."""

    kind: Kind
    path: Path
    mapping: Mapping
    inferred: str | None = None
    """The TOML text of a mapping `init` would write, when no mapping was given anywhere."""


@dataclass
class Outputs:
    rejected: Path | None = None
    payloads: Path | None = None


@dataclass
class HeldBack:
    """Rejected parents (customers) by their link value, so their children are held back."""

    reasons: dict[str, str] = field(default_factory=dict)

    def add(self, rows: list[RejectedRow]) -> None:
        for row in rows:
            if row.link:
                first = row.errors[0].message() if row.errors else "rejected"
                self.reasons.setdefault(
                    row.link, f"its customer {row.link} was rejected (row {row.row}: {first})"
                )


def resolve_mapping(
    kind: Kind,
    path: Path,
    settings: Settings,
    mapping_path: Path | None,
    *,
    dry_run: bool,
    overrides: dict[str, object],
) -> Source:
    """--mapping over the config's section; with neither, the mapping `init` would write."""
    mapping: Mapping | None = None
    if mapping_path is not None:
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
    return Source(kind, Path(path), mapping.with_input(**overrides), inferred)


def run_source(
    source: Source,
    *,
    dry_run: bool,
    outputs: Outputs,
    observer: Observer,
    sink: Callable[[RunSummary], Sink] | None = None,
    held_back: HeldBack | None = None,
) -> RunSummary:
    """Read, validate and (through `sink`) deliver one file; the summary says what happened."""
    summary = RunSummary(source.kind.name, source.path, dry_run)
    if source.kind.field("invoiceAmount") is not None:
        summary.totals = Totals()
    started = time.monotonic()
    table = open_table(source.path, source.mapping.input)
    bound = bind(source.mapping, table.headers, str(source.path))
    summary.source = table.describe()
    summary.mapping_source = source.mapping.source
    validator = Validator(bound, held_back.reasons if held_back else None)
    observer.started(summary, table, source.mapping)
    rejected_file = RejectedWriter(outputs.rejected, table) if outputs.rejected else None
    payload_file = PayloadWriter(outputs.payloads) if outputs.payloads and dry_run else None
    sink = sink(summary) if sink is not None else None

    def refused(rows: list[RejectedRow]) -> None:
        summary.rows_rejected += len(rows)
        for row in rows:
            for error in row.errors:
                summary.errors.add(error)
        if rejected_file:
            rejected_file.write(rows)
        if held_back is not None:
            held_back.add(rows)

    def server_refused(rows: list[RejectedRow]) -> None:
        # valid here, refused there: counted once, as rejected (read = valid + rejected + skipped)
        summary.rows_valid -= len(rows)
        refused(rows)

    try:
        for chunk in table.chunks():
            part = validator(chunk)
            summary.rows_read += part.rows_read
            summary.rows_skipped += part.rows_skipped
            summary.rows_valid += len(part.payloads)
            refused(part.rejected)
            _add_totals(summary, part)
            if payload_file:
                payload_file.write(part.payloads)
            if sink is not None:
                server_refused(sink.take(part))
            observer.progress(summary)
        if summary.rows_read == 0:
            raise InputError(
                f"{source.path}: no data rows under the header on row {table.header_row}",
                "check the file, or --header-row if the header is further down",
            )
        if sink is not None:
            server_refused(sink.finish())
    except AbortedError as exc:
        summary.aborted = str(exc)
    finally:
        if rejected_file:
            rejected_file.close()
        if payload_file:
            payload_file.close()
    summary.duration_s = time.monotonic() - started
    summary.exit_code = exit_code(summary)
    observer.finished(summary)
    return summary


def _add_totals(summary: RunSummary, part: ValidatedChunk) -> None:
    if summary.totals is None or part.read_amounts is None:
        return
    summary.totals.add("read", *part.read_amounts)
    summary.totals.add("rejected", *part.rejected_amounts)
    summary.totals.add("valid", part.amounts, part.currencies)


def exit_code(summary: RunSummary) -> int:
    if summary.aborted:
        return ExitCode.ABORTED
    if summary.rows_rejected:
        return ExitCode.ROWS_REJECTED
    return ExitCode.OK


@dataclass
class UploadRequest:
    """What the user asked for on the command line, before settings are resolved."""

    files: dict[str, Path]
    """kind name -> file, in upload order (customers before invoices)."""
    dry_run: bool = False
    mapping_path: Path | None = None
    full: bool = False
    outputs: Outputs = field(default_factory=Outputs)
    sandbox: bool = False
    overrides: dict[str, object] = field(default_factory=dict)


@dataclass
class UploadResult:
    summaries: list[RunSummary]
    inferred: dict[str, str] = field(default_factory=dict)

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
) -> UploadResult:
    """Every kind of the request in order; invoices of rejected customers are held back."""
    from .schema import kind as kind_named

    sources = [
        resolve_mapping(
            kind_named(name),
            path,
            settings,
            request.mapping_path,
            dry_run=request.dry_run,
            overrides=request.overrides,
        )
        for name, path in request.files.items()
    ]
    result = UploadResult([])
    held_back = HeldBack() if len(sources) > 1 else None
    several = len(sources) > 1
    with ExitStack() as stack:
        delivery = None
        if not request.dry_run:
            delivery = stack.enter_context(_connection(request, settings, observer))
        for source in sources:
            if source.inferred is not None:
                result.inferred[source.kind.name] = source.inferred
                if show_inferred is not None:
                    show_inferred(source.kind.name, source.inferred, str(source.path))
            outputs = Outputs(
                per_kind(request.outputs.rejected, source.kind.name, several),
                per_kind(request.outputs.payloads, source.kind.name, several),
            )
            summary = run_source(
                source,
                dry_run=request.dry_run,
                outputs=outputs,
                observer=observer,
                sink=delivery(source.kind) if delivery else None,
                held_back=held_back,
            )
            result.summaries.append(summary)
            if summary.aborted:
                break
    return result


@contextmanager
def _connection(
    request: UploadRequest, settings: Settings, observer: Observer
) -> Iterator[Callable[[Kind], Callable[[RunSummary], Sink]]]:
    """Lock, journal and client for a real run; yields a maker of each kind's Delivery."""
    from .client import ApiClient, Credentials
    from .deliver import Delivery
    from .journal import Journal, StateLock, account_id
    from .retry import RetryPolicy

    with ExitStack() as stack:
        stack.enter_context(StateLock(settings.state_dir))
        if request.sandbox:
            from .sandbox import Sandbox, SandboxConfig

            db_path = settings.state_dir / "sandbox.sqlite"
            config = SandboxConfig(db_path=db_path)
            sandbox = stack.enter_context(Sandbox(config).start())
            base_url, api = sandbox.url, f"sandbox:{db_path}"
            credentials = Credentials(config.api_key, config.api_secret)
            observer.notice(f"sandbox: a local PayorCRM at {base_url}, data in {db_path}")
        else:
            base_url = settings.require_base_url()
            credentials = Credentials(*settings.require_credentials())
            api = base_url
        client = ApiClient(
            base_url,
            credentials,
            connect_timeout=settings.connect_timeout,
            timeout=settings.timeout,
            ca_bundle=settings.ca_bundle,
            policy=RetryPolicy(max_retries=settings.max_retries, budget_s=settings.retry_budget_s),
            notice=observer.notice,
        )
        stack.callback(client.close)
        journal = Journal(settings.state_dir, api, account_id(credentials.api_key))
        stack.callback(journal.close)

        def for_kind(kind: Kind) -> Callable[[RunSummary], Sink]:
            def make(summary: RunSummary) -> Sink:
                return Delivery(
                    kind,
                    client,
                    journal,
                    summary,
                    batch_size=settings.batch_size,
                    full=request.full,
                    progress=observer.progress,
                )

            return make

        yield for_kind


def per_kind(path: Path | None, kind: str, several: bool) -> Path | None:
    """With two sources (`upload all`) each kind gets its own file: rejected.customers.csv."""
    if path is None or not several:
        return path
    return path.with_name(f"{path.stem}.{kind}{path.suffix}")
