"""What a run is asked and its plan: each kind's source, mapping and outputs, before any
connection is made; and what the run reports to (`Observer`) and sends through (`Sink`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from payor_cli.check.binding import BoundMapping, bind
from payor_cli.check.keys import fold_email
from payor_cli.check.mapping import Mapping, load_mapping_file, parse_mapping, read_toml
from payor_cli.check.validate import ValidatedChunk
from payor_cli.contract import Target
from payor_cli.errors import (
    ExitCode,
    MappingError,
    PayorError,
)
from payor_cli.infer import header_row_hint, suggest_mapping
from payor_cli.read import InputOptions, Table, open_table, shown
from payor_cli.rows import RejectedRow
from payor_cli.run.outputs import PayloadWriter, RejectedWriter
from payor_cli.run.rejected import origin_of
from payor_cli.run.settings import Settings
from payor_cli.schema import FieldType, Kind
from payor_cli.send.undelivered import Undelivered
from payor_cli.summary import RunSummary
from payor_cli.targets import api_kinds


class Observer(Protocol):
    """Receives what happens, to show it; report.py has the terminal and plain-line versions."""

    def started(self, summary: RunSummary, table: Table, mapping: Mapping) -> None: ...

    def progress(self, summary: RunSummary) -> None: ...

    def notice(self, text: str) -> None: ...

    def warning(self, text: str) -> None: ...

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

    def warnings(self) -> list[str]:
        """What a person should know before trusting the run: what the reader saw, and a text
        field or key taken from a DataFrame's column of numbers (its leading zeros gone)."""
        found = list(self.table.notes)
        key = set(self.source.mapping.key)
        said: set[int] = set()
        for bound in [*self.bound.fields, *(self.bound.lines or [])]:
            position = bound.column_index
            dtype = self.table.number_columns.get(position if position is not None else -1)
            name = bound.spec.field
            if dtype is None or (bound.spec.type is not FieldType.STRING and name not in key):
                continue
            if position in said:  # once a column, for the first field it gives
                continue
            said.add(position)
            column = bound.column_header
            what = "the key" if name in key else "a text field"
            found.append(
                f"column {column!r} is a column of numbers ({dtype}) and gives {name} "
                f"({what}): a leading zero the export had (0000611365) is gone, and 611365 is "
                f"another {name} than 0000611365; read the file with dtype=str "
                f"(pd.read_csv(path, dtype=str)), or pad the column: "
                f"df[{column!r}] = df[{column!r}].astype(str).str.zfill(10)"
            )
        return found


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
        mapping = parse_mapping(section, kind, f"mapping [{kind.name}]", api_kinds())
    elif mapping_path is not None:
        mapping = load_mapping_file(mapping_path, kind, api_kinds())
        if mapping is None:
            raise MappingError(
                f"{mapping_path}: no [{kind.name}] section",
                f"add [{kind.name}] and [{kind.name}.fields], or write one with "
                f"`payor init {kind.name} {path} -o {mapping_path}`",
            )
    else:
        section = settings.mapping_section(kind.name)
        if section is not None:
            mapping = parse_mapping(
                section, kind, f"{settings.config_path} [{kind.name}]", api_kinds()
            )
    inferred = None
    if mapping is None:
        hint = f"write one with `payor init {kind.name} {path} -o payor.toml`"
        if not dry_run:
            raise MappingError(
                f"no mapping for {kind.name}: nothing tells payor which column is which", hint
            )
        suggestion = suggest_mapping(
            path,
            kind,
            InputOptions().overridden(**overrides),
            target=target,
            apis=api_kinds(),
        )
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
    return Planned(
        source, table, bind(source.mapping, table.headers, str(shown(source.path)), header_row_hint)
    )


@dataclass
class UploadRequest:
    """What is to be uploaded, before settings are resolved (see `api.upload_request`)."""

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


def per_kind(path: Path | None, kind: str, several: bool) -> Path | None:
    """With two sources (`upload all`) each kind gets its own file: rejected.customers.csv."""
    if path is None or not several:
        return path
    return path.with_name(f"{path.stem}.{kind}{path.suffix}")
