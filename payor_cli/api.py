"""payor from Python: `dry_run` and `upload` of a file or a pandas DataFrame, returning a Run;
and the work behind `payor init` and `payor schema`, whose commands only translate.

The CLI's upload commands and these functions run the same pipeline with the same options
(`UploadOptions`, by the CLI's names: `--batch-size` is `batch_size=`). These functions print
nothing, install no signal handler and never exit: a failure raises payor's own exceptions
(`payor_cli.errors`: `PayorError` and its kinds, each with its `exit_code`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payor_cli.contract import Target
from payor_cli.errors import AbortedError, ConfigError, MappingError, PayorError
from payor_cli.infer import Suggestion, suggest_mapping
from payor_cli.options import UploadOptions
from payor_cli.read import InputOptions, shown
from payor_cli.read.frame import FRAME_LABEL, is_dataframe, open_frame
from payor_cli.read.spool import forget_spooled
from payor_cli.run.outputs import (
    STANDARD_STREAM,
    OutputConflict,
    check_outputs,
    check_rejected_path,
    check_writable,
    write_failure_report,
    write_json,
    write_mapping_section,
)
from payor_cli.run.plan import Observer, Outputs, UploadRequest, UploadResult, per_kind
from payor_cli.run.rejected import spool_path
from payor_cli.run.settings import Settings, load_settings, resolve_target
from payor_cli.run.upload import run_upload
from payor_cli.send.journal import JOURNAL_NAME
from payor_cli.send.locks import LOCK_NAME
from payor_cli.stop import StopRequest
from payor_cli.summary import RunSummary
from payor_cli.targets import DEFAULT_TARGET, api_kinds, get_target, target_names

KINDS = ("customers", "invoices")
_TERMINAL_ONLY = {"quiet", "log_file"}
"""CLI options about the terminal: the Python API shows nothing, so it has no use for them."""


@dataclass
class Run:
    """What a run did: the summary, the rejected rows and (dry run) the objects to send."""

    summary: dict[str, Any]
    """The object `--report-json` writes."""
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """Each rejected row: `source_row`, `errors`, then the source's cells by column."""
    payloads: list[dict[str, Any]] | None = None
    """Dry run: the objects a real run would send, in order; None for a real upload."""
    warnings: list[str] = field(default_factory=list)
    """What the CLI would have shown as warnings (a config file others can read, ...)."""

    @property
    def exit_code(self) -> int:
        """The CLI's exit code for the same run: 0 all valid, 1 rows rejected, 3 stopped."""
        return int(self.summary["exit_code"])

    def __str__(self) -> str:
        """The run in one line, as the command's summary line says it: what was read, valid,
        rejected, unchanged since the last upload, sent and accepted."""
        s = self.summary
        said = f"{s['kind']}: {s['rows_read']} read, {s['rows_valid']} valid, "
        said += f"{s['rows_rejected']} rejected"
        if s["dry_run"]:
            return said + f" (dry run: nothing sent); exit {s['exit_code']}"
        said += f", {s['rows_unchanged']} unchanged, {s['rows_sent']} sent, "
        return said + f"{s['rows_accepted']} accepted; exit {s['exit_code']}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """A notebook shows the run as its summary line, and its warnings."""
        printer.text(str(self) + "".join(f"\nwarning: {w}" for w in self.warnings))


def dry_run(source: Any, kind: str, mapping: Any = None, **options: Any) -> Run:
    """Read, map and validate `source` (a path or a DataFrame) as `kind`; send nothing."""
    return _run(source, kind, mapping, dict(options, dry_run=True))


def upload(source: Any, kind: str, mapping: Any = None, **options: Any) -> Run:
    """Upload `source` (a path or a DataFrame) as `kind` to the target (or `sandbox=True`)."""
    if options.get("dry_run"):
        return dry_run(source, kind, mapping, **options)
    return _run(source, kind, mapping, options)


class _Silent:
    """The observer of a Python run: it shows nothing (the Run returned says it all)."""

    def __init__(self) -> None:
        self.notices: list[str] = []
        self.warnings: list[str] = []

    def started(self, *_: object) -> None:
        pass

    def progress(self, summary: RunSummary) -> None:
        pass

    def notice(self, text: str) -> None:
        self.notices.append(text)

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    def finished(self, summary: RunSummary) -> None:
        pass


def prepare(
    options: UploadOptions, files: dict[str, Path], mapping: Path | dict[str, Any] | None = None
) -> tuple[Settings, list[str]]:
    """The settings of an upload and its warnings; every output checked before any work.

    The CLI and the functions above both start here: an output that cannot be written, or
    that is one of the run's inputs (`files`, the config, the mapping, the journal), a bad
    config or an unknown target is a usage error (exit 2) before anything is read or written.
    """
    forget_spooled()
    for path in (options.rejected, options.payloads, options.report_json, options.log_file):
        if path is not None and not _standard_stream(path):
            check_writable(path)
    settings = load_settings(
        options.config,
        base_url=options.base_url,
        batch_size=options.batch_size,
        concurrency=options.concurrency,
        state_dir=options.state_dir,
        target=options.target,
    )
    get_target(settings.target_choice.resolved)
    inputs = _inputs(files, settings, mapping if mapping is not None else options.mapping)
    check_outputs(_outputs(options, files), inputs)
    warnings = list(settings.warnings)
    if options.rejected is not None:
        check_rejected_path(options.rejected)
    if options.payloads is not None and not options.dry_run:
        warnings.append("--payloads is written only with --dry-run; ignored")
    return settings, warnings


def upload_request(options: UploadOptions, files: dict[str, Path]) -> UploadRequest:
    """What the options ask to upload of `files` (kind -> export), before settings."""
    return UploadRequest(
        files,
        dry_run=options.dry_run,
        mapping_path=options.mapping,
        full=options.full,
        outputs=Outputs(options.rejected, options.payloads),
        sandbox=options.sandbox,
        overrides=options.input_overrides(),
    )


def _standard_stream(path: Path) -> bool:
    return str(path) == STANDARD_STREAM


def _outputs(options: UploadOptions, files: dict[str, Path]) -> list[tuple[str, Path]]:
    """Every file the run may write, with the option that names it (`upload all` writes a
    file per kind), and the rejected rows' spool, which waits beside its file."""
    several = len(files) > 1
    found: list[tuple[str, Path]] = []
    for kind in files:
        rejected = per_kind(options.rejected, kind, several)
        if rejected is not None:
            label = f"--rejected ({rejected.name})" if several else "--rejected"
            found.append((label, rejected))
            found.append((f"{label}'s spool ({spool_path(rejected).name})", spool_path(rejected)))
        payloads = per_kind(options.payloads, kind, several) if options.dry_run else None
        if payloads is not None:
            found.append((f"--payloads ({payloads.name})" if several else "--payloads", payloads))
    for label, path in (("--report-json", options.report_json), ("--log-file", options.log_file)):
        if path is not None and not _standard_stream(path):
            found.append((label, path))
    return found


def _inputs(
    files: dict[str, Path], settings: Settings, mapping: Path | dict[str, Any] | None
) -> list[tuple[str, Path]]:
    """Every file the run reads or keeps: the exports, the config, the mapping, the journal."""
    found = [
        (f"the {kind} export" if len(files) > 1 else "the export", path)
        for kind, path in files.items()
        if not _standard_stream(path) and str(path) != FRAME_LABEL
    ]
    if settings.config_path is not None:
        found.append(("the config file", settings.config_path))
    if mapping is not None and not isinstance(mapping, MappingType):
        found.append(("the mapping (--mapping)", Path(mapping)))
    journal = settings.state_dir / JOURNAL_NAME
    for path in (journal, journal.with_name(journal.name + "-wal"), settings.state_dir / LOCK_NAME):
        found.append(("the journal", path))
    for name in target_names():  # --sandbox keeps its data beside the journal
        db = "sandbox.sqlite" if name == DEFAULT_TARGET else f"sandbox-{name}.sqlite"
        found.append(("the sandbox's data in the state dir", settings.state_dir / db))
    return found


def execute(
    request: UploadRequest,
    options: UploadOptions,
    settings: Settings,
    observer: Observer,
    *,
    show_inferred: Callable[[str, str, str], None] | None = None,
    stop: StopRequest | None = None,
) -> UploadResult:
    """Run the upload and write its JSON summary (on a failure the caller calls `failed`)."""
    result = run_upload(request, settings, observer, show_inferred, stop)
    if options.report_json is not None:
        try:
            write_json(options.report_json, result.as_json())
        except PayorError as exc:
            if not any(s.rows_sent for s in result.summaries):
                raise
            # rows went out: never "nothing sent" (exit 2), whatever filled the disk
            raise AbortedError(exc.message, "the run's counts are in the lines above") from None
    return result


def failed(
    options: UploadOptions, files: dict[str, Path], exc: PayorError, code: int | None = None
) -> None:
    """A run that failed still writes its report: tonight's says what went wrong, not last
    night's (unless the report's file is one the run must not write)."""
    if options.report_json is not None and not isinstance(exc, OutputConflict):
        named = {kind: shown(path) for kind, path in files.items()}  # `-`: <stdin>
        write_failure_report(
            options.report_json, named, options.dry_run, exc, code, _failed_target(options)
        )


def _failed_target(options: UploadOptions) -> str:
    """The target a failed run was for, as far as the options and the config say."""
    try:
        return resolve_target(options.target, options.config).resolved
    except PayorError:
        return DEFAULT_TARGET


def _run(source: Any, kind: str, mapping: Any, given: dict[str, Any]) -> Run:
    if kind not in KINDS:
        raise ConfigError(f"kind {kind!r}: give 'customers' or 'invoices'")
    unknown = set(given) - set(UploadOptions.__dataclass_fields__) | (set(given) & _TERMINAL_ONLY)
    if unknown:
        raise TypeError(f"unknown option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    frame = is_dataframe(source)
    if frame and mapping is None:
        raise MappingError(
            f"{FRAME_LABEL}: a DataFrame needs a mapping",
            "pass mapping= a mapping TOML's path or a dict in its shape",
        )
    options = UploadOptions(**{k: _path(k, v) for k, v in given.items()})
    request = upload_request(options, {kind: Path(FRAME_LABEL) if frame else Path(source)})
    request.mapping_path = _mapping(mapping)
    request.keep = True
    if frame:
        request.openers[kind] = lambda input_options: open_frame(source, input_options)
    try:
        settings, warnings = prepare(options, request.files, request.mapping_path)
        observer = _Silent()
        result = execute(request, options, settings, observer)
    except PayorError as exc:
        failed(options, request.files, exc)
        raise
    kept = result.kept[kind]
    return Run(
        summary=result.as_json(),
        rejected=kept.rejected,
        payloads=[json.loads(p) for p in kept.payloads] if options.dry_run else None,
        warnings=warnings + observer.warnings,
    )


def _path(name: str, value: Any) -> Any:
    """Paths may be given as text, as on the command line."""
    path_options = {"config", "rejected", "report_json", "payloads", "state_dir"}
    return Path(value) if name in path_options and isinstance(value, str) else value


def _mapping(mapping: Any) -> Path | dict[str, Any] | None:
    if mapping is None or isinstance(mapping, MappingType):
        return dict(mapping) if mapping is not None else None
    return Path(mapping)


def chosen_target(target: str | None, config: Path | None) -> Target:
    """The target of a command that needs no other settings (init, schema)."""
    return get_target(resolve_target(target, config).resolved)


@dataclass(frozen=True)
class MappingDraft:
    """What `payor init` suggests for a file, and the name its messages give that file."""

    suggestion: Suggestion
    read_from: Path
    """The export as messages name it: `<stdin>` for `-`."""


def draft_mapping(
    kind: str,
    file: Path,
    options: UploadOptions,
    *,
    preset: str | None = None,
    output: Path | None = None,
    force: bool = False,
) -> MappingDraft:
    """The mapping `payor init` suggests for `file` (read with the options' --sheet, ...,
    for the options' target), written to `output` when one is given."""
    given = InputOptions().overridden(**options.input_overrides())
    chosen = chosen_target(options.target, options.config)
    if output is not None:
        check_outputs([("-o", output)], [("the export", file)])
    suggestion = suggest_mapping(
        file, chosen.kind(kind), given, preset, target=chosen, apis=api_kinds()
    )
    if output is not None:
        write_mapping_section(output, kind, suggestion.toml, force=force)
    return MappingDraft(suggestion, shown(file))
