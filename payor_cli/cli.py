"""The command line: options in, a settings object and a request out; results to output and exit."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import click
import typer

from payor_cli import api
from payor_cli.api import UploadOptions
from payor_cli.errors import AbortedError, ExitCode, PayorError
from payor_cli.hosts import is_loopback
from payor_cli.report import Reporter
from payor_cli.run.outputs import (
    STANDARD_STREAM,
    OutputConflict,
    check_outputs,
    open_log,
    write_mapping_section,
)
from payor_cli.run.settings import resolve_target
from payor_cli.stop import StopRequest
from payor_cli.targets import api_kinds, get_target
from payor_cli.version import VERSION

app = typer.Typer(
    help="Upload accounting exports (CSV, Excel) into a CRM: map, validate, send, report.\n\n"
    "Example: payor upload invoices --help",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion
    rich_markup_mode="rich",
)
upload_app = typer.Typer(
    help="Read, map, validate and send an export's rows.\n\n"
    "Example: payor upload invoices sample_data/invoices.xlsx --config config.example.toml "
    "--dry-run",
    no_args_is_help=True,
)
app.add_typer(upload_app, name="upload")


class KindName(StrEnum):
    customers = "customers"
    invoices = "invoices"


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Settings TOML (env PAYOR_CONFIG; default ./payor.toml, else the user config).",
    ),
]
MappingOpt = Annotated[
    Path | None, typer.Option("--mapping", help="Mapping TOML (default: the config's sections).")
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Read, map, validate and report; send nothing.")
]
BatchOpt = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Rows per request (default 500).")
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option("--concurrency", min=1, help="Requests in flight at once (default 4)."),
]
FullOpt = Annotated[
    bool, typer.Option("--full", help="Also send rows unchanged since their last upload.")
]
RejectedOpt = Annotated[
    Path | None, typer.Option("--rejected", help="Write rejected rows here (.csv or .xlsx).")
]
ReportOpt = Annotated[
    Path | None, typer.Option("--report-json", help="Write the run's summary as JSON.")
]
PayloadsOpt = Annotated[
    Path | None,
    typer.Option("--payloads", help="With --dry-run: write the objects to send, as JSON Lines."),
]
StateOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Journal and lock folder (env PAYOR_STATE_DIR)."),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        help="The API: payorcrm (default), business-suite or onlyoffice (env PAYOR_TARGET, "
        "config \\[api].target; else the mapping's target).",
    ),
]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="API root (env PAYOR_BASE_URL).")
]
SandboxOpt = Annotated[
    bool, typer.Option("--sandbox", help="Upload to an embedded local sandbox server.")
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress; errors and a one-line summary.")
]
SheetOpt = Annotated[
    str | None, typer.Option("--sheet", help="Sheet name or 0-based index (Excel files).")
]
HeaderRowOpt = Annotated[
    int | None, typer.Option("--header-row", min=1, help="1-based row of the header line.")
]
EncodingOpt = Annotated[str | None, typer.Option("--encoding", help="Text encoding.")]
DelimiterOpt = Annotated[
    str | None, typer.Option("--delimiter", help="Field delimiter: , ; | or tab.")
]
FileArg = Annotated[
    Path, typer.Argument(help="The export: CSV, TSV, TXT, XLSX, XLSM, XLS or ODS; - reads stdin.")
]
MemberOpt = Annotated[
    str | None,
    typer.Option("--member", help="The file inside a .zip export to read, when it holds several."),
]
LogFileOpt = Annotated[
    Path | None, typer.Option("--log-file", help="Append timestamped lines to this file too.")
]


def _fail(reporter: Reporter, exc: PayorError) -> NoReturn:
    reporter.error(str(exc))
    raise typer.Exit(int(exc.exit_code))


def _upload(files: dict[str, Path], options: UploadOptions) -> None:
    """Run one upload command: options in; the reports, the output and the exit code out."""
    with ExitStack() as stack:
        # the JSON report on standard output: everything else goes to standard error
        to_stdout = str(options.report_json) == STANDARD_STREAM
        reporter = Reporter(sys.stderr if to_stdout else None, quiet=options.quiet)
        try:
            request = options.request(files)
            # checked before the log is opened: no output may be an input, the log included
            settings, warnings = api.prepare(options, files)
            if options.log_file is not None:
                reporter.log = stack.enter_context(open_log(options.log_file))
            reporter.secrets = settings.secrets
            for warning in warnings:
                reporter.warning(warning)
            stop = stack.enter_context(_stop_on_signals(reporter, options.dry_run))
            result = api.execute(
                request, options, settings, reporter, show_inferred=reporter.show_mapping, stop=stop
            )
        except PayorError as exc:
            if options.log_file is not None and reporter.log is None:
                _log_failure(stack, reporter, options.log_file, exc)
            api.failed(options, files, exc)
            _fail(reporter, exc)
        except KeyboardInterrupt:
            reporter.error("interrupted; what was accepted stays recorded, a re-run goes on")
            raise typer.Exit(ExitCode.ABORTED) from None
        except Exception as exc:  # a bug: say so in one line, never a traceback
            reporter.error(f"unexpected {type(exc).__name__}: {exc} (please report this)")
            code = ExitCode.USAGE if options.dry_run else ExitCode.ABORTED
            api.failed(options, files, AbortedError(str(exc)), code)
            raise typer.Exit(code) from None
        raise typer.Exit(result.exit_code)


def _log_failure(stack: ExitStack, reporter: Reporter, path: Path, exc: PayorError) -> None:
    """A run that failed before its log was opened still leaves its error there, unless the
    log is a file the run must not write."""
    if isinstance(exc, OutputConflict):
        return
    with suppress(PayorError):
        reporter.log = stack.enter_context(open_log(path))


STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""What asks a run to stop cleanly: Ctrl-C, a kill, a closed terminal or ssh session."""


@contextmanager
def _stop_on_signals(reporter: Reporter, dry_run: bool) -> Iterator[StopRequest]:
    """SIGINT, SIGTERM and SIGHUP ask the run to stop cleanly; a second SIGINT stops at once.

    The handler only sets the request (printing there could re-enter a write it interrupted);
    a watcher thread says what happens.
    """
    stop = StopRequest()
    done = threading.Event()

    def on_signal(number: int, frame: object) -> None:
        if stop.requested:
            if number == signal.SIGINT:
                os.write(2, HARD_STOP.encode())
                os._exit(ExitCode.ABORTED)
            return
        stop.request(signal.Signals(number).name)

    def watch() -> None:
        stop.wait()
        if not done.is_set():
            pending = (
                "the rows read so far are reported"
                if dry_run
                else "the requests in flight are answered and journalled, the reports written"
            )
            reporter.warning(f"{stop.why}: stopping; {pending} (Ctrl-C again stops at once)")

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    threading.Thread(target=watch, name="payor-signals", daemon=True).start()
    try:
        yield stop
    finally:
        done.set()
        stop.request("done")  # ends the watcher
        for sig, handler in previous.items():
            signal.signal(sig, handler)


HARD_STOP = (
    "error: stopped at once (second Ctrl-C); the journal is consistent and a re-run sends "
    "again what was in flight\n"
)


# The help of every upload option, by its UploadOptions field: the one list of upload options,
# for `upload customers|invoices` and `upload all` alike (names and defaults: UploadOptions).
UPLOAD_OPTIONS: dict[str, object] = {
    "config": ConfigOpt,
    "mapping": MappingOpt,
    "dry_run": DryRunOpt,
    "batch_size": BatchOpt,
    "concurrency": ConcurrencyOpt,
    "full": FullOpt,
    "rejected": RejectedOpt,
    "report_json": ReportOpt,
    "payloads": PayloadsOpt,
    "state_dir": StateOpt,
    "target": TargetOpt,
    "base_url": BaseUrlOpt,
    "sandbox": SandboxOpt,
    "quiet": QuietOpt,
    "sheet": SheetOpt,
    "header_row": HeaderRowOpt,
    "encoding": EncodingOpt,
    "delimiter": DelimiterOpt,
    "member": MemberOpt,
    "log_file": LogFileOpt,
}


UPLOAD_EPILOG = (
    "Credentials: PAYOR_API_KEY and PAYOR_API_SECRET in the environment (onlyoffice: also "
    "PAYOR_API_USER and PAYOR_API_PASSWORD), or the config's \\[api] section; never a flag."
    "\n\n"
    "Settings: flags beat the environment (PAYOR_TARGET, PAYOR_BASE_URL, PAYOR_STATE_DIR), "
    "which beats the config file, which beats the defaults."
    "\n\n"
    "Exit codes: 0 every row delivered or unchanged; 1 some rows rejected, the rest delivered; "
    "2 usage, config, mapping or input error, nothing sent; 3 aborted or interrupted, a re-run "
    "goes on; 4 another run holds the lock."
)


def _upload_command(files: dict[str, inspect.Parameter], doc: str) -> Callable[..., None]:
    """A command taking the kinds' exports (`files`: kind -> its parameter), then every upload
    option.

    typer reads a command's options from its signature; this one is built from UploadOptions,
    so a new option is added in one place and every upload command has it.
    """

    def command(**given: object) -> None:
        exports = {kind: Path(given.pop(p.name)) for kind, p in files.items()}
        _upload(exports, UploadOptions(**given))

    options = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=UPLOAD_OPTIONS[f.name],
            default=f.default,
        )
        for f in dataclasses.fields(UploadOptions)
    ]
    command.__signature__ = inspect.Signature([*files.values(), *options])  # type: ignore[attr-defined]
    command.__doc__ = doc
    return command


def _file_parameter(name: str, annotation: object) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)


_EXAMPLES = {
    "customers": "payor upload customers sample_data/customers.csv --config config.example.toml "
    "--dry-run",
    "invoices": "payor upload invoices sample_data/invoices.xlsx --config config.example.toml "
    "--dry-run --rejected rejected.csv",
    "all": "payor upload all --customers sample_data/customers.csv --invoices "
    "sample_data/invoices.xlsx --config config.example.toml --sandbox",
}

for _kind in ("customers", "invoices"):
    upload_app.command(_kind, epilog=UPLOAD_EPILOG)(
        _upload_command(
            {_kind: _file_parameter("file", FileArg)},
            f"Upload {_kind} from FILE: read, map, check every row, send the valid ones.\n\n"
            f"Example: {_EXAMPLES[_kind]}",
        )
    )

upload_app.command("all", epilog=UPLOAD_EPILOG)(
    _upload_command(
        {
            kind: _file_parameter(
                kind,
                Annotated[Path, typer.Option(f"--{kind}", help=f"The {kind} export.")],
            )
            for kind in ("customers", "invoices")
        },
        "Upload customers, then invoices; invoices of rejected customers are held back.\n\n"
        f"Example: {_EXAMPLES['all']}",
    )
)


def _show_presets(value: bool) -> None:
    if value:
        from payor_cli.infer import list_presets  # noqa: PLC0415 - loaded by the command that needs it

        for name, description in list_presets():
            typer.echo(f"{name:<20} {description}")
        raise typer.Exit()


@app.command("init")
def init(
    kind: Annotated[
        KindName, typer.Argument(metavar="KIND", help="customers or invoices", show_default=False)
    ],
    file: Annotated[Path, typer.Argument(help="The export to look at.", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the mapping here (else print it).")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", help="Start from a vendor preset (see --list-presets)."),
    ] = None,
    list_presets: Annotated[
        bool,
        typer.Option(
            "--list-presets",
            callback=_show_presets,
            is_eager=True,  # before the arguments are asked for: it needs none
            help="Show the presets shipped with payor, and exit.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite OUTPUT even if it already has this section.")
    ] = False,
    target: TargetOpt = None,
    config: ConfigOpt = None,
    sheet: SheetOpt = None,
    header_row: HeaderRowOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    member: MemberOpt = None,
) -> None:
    """Write a mapping suggested from FILE: header, formats, separators, scale, skip rules.

    Example: payor init invoices sample_data/invoices.xlsx -o payor.toml
    """
    from payor_cli.infer import suggest_mapping  # noqa: PLC0415 - loaded by the command that needs it
    from payor_cli.read import InputOptions, shown  # noqa: PLC0415 - loaded by the command that needs it

    reporter = Reporter()
    reading = UploadOptions(
        sheet=sheet, header_row=header_row, encoding=encoding, delimiter=delimiter, member=member
    )
    try:
        given = InputOptions().overridden(**reading.input_overrides())
        chosen = get_target(resolve_target(target, config).resolved)
        if output is not None:
            check_outputs([("-o", output)], [("the export", file)])
        suggestion = suggest_mapping(
            file, chosen.kind(kind.value), given, preset, target=chosen, apis=api_kinds()
        )
        if output is not None:
            write_mapping_section(output, kind.value, suggestion.toml, force=force)
    except PayorError as exc:
        _fail(reporter, exc)
    reporter.line(f"{kind.value}: read {shown(file)} ({suggestion.source})", error=True)
    for note in suggestion.notes:
        reporter.line(f"note: {note}", error=True)
    if output is None:
        typer.echo(suggestion.toml, nl=False)
    else:
        reporter.line(f"{kind.value}: mapping written to {output}", error=True)
    if suggestion.todo:
        reporter.error(
            f"no column found for the required field{'s' if len(suggestion.todo) > 1 else ''} "
            f"{', '.join(suggestion.todo)}: name the column in the TODO line"
            f"{'s' if len(suggestion.todo) > 1 else ''} of the mapping"
        )
        raise typer.Exit(ExitCode.ROWS_REJECTED)
    if suggestion.problem:  # its own dry run rejects most rows: not one to try as it is
        reporter.error(suggestion.problem)
        raise typer.Exit(ExitCode.ROWS_REJECTED)
    if output is not None:
        reporter.line(
            # the mapping names its target: the upload takes it from there
            f"try it: payor upload {kind.value} {file} --mapping {output} --dry-run",
            error=True,
        )


@app.command("schema")
def schema(
    kind: Annotated[
        KindName | None,
        typer.Argument(metavar="[KIND]", help="customers or invoices; default both"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    target: TargetOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show a target's fields (default PayorCRM): name, type, required.

    Example: payor schema invoices --target business-suite
    """
    try:
        chosen = get_target(resolve_target(target, config).resolved)
    except PayorError as exc:
        _fail(Reporter(), exc)
    kinds = [chosen.kind(kind.value)] if kind else list(chosen.kinds.values())

    def described(fields: tuple) -> list[dict]:
        return [{"name": f.name, "type": f.type.value, "required": f.required} for f in fields]

    if as_json:
        data: dict = {k.name: described(k.fields) for k in kinds}
        data |= {f"{k.name}.lines": described(k.lines) for k in kinds if k.lines}
        typer.echo(json.dumps(data, indent=2))
        return
    for k in kinds:
        typer.echo(f"{k.name}  (POST {k.path}; key: {', '.join(k.key)})")
        parts = [("", k.fields)] + ([(f"[{k.name}.lines]", k.lines)] if k.lines else [])
        for title, fields in parts:
            if title:
                typer.echo(f"  {title}  (the fields of one line)")
            for f in fields:
                mark = "required" if f.required else ""
                typer.echo(f"  {f.name:<24} {f.type.value:<8} {mark}".rstrip())
        typer.echo("")


@app.command("sandbox")
def sandbox(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one).")
    ] = 8765,
    db: Annotated[
        Path | None, typer.Option("--db", help="SQLite file for the stored rows (default: memory).")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    fault_rate: Annotated[
        float, typer.Option("--fault-rate", min=0, max=1, help="Share of uploads that fail.")
    ] = 0.0,
    faults: Annotated[
        str, typer.Option("--faults", help="Faults to inject: 500,502,503,504,429,drop,soft.")
    ] = "500,502,503,429,drop",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fault dice.")] = 0,
    stall_rate: Annotated[
        float, typer.Option("--stall-rate", min=0, max=1, help="Share stored, then answered late.")
    ] = 0.0,
    stall_seconds: Annotated[
        float, typer.Option("--stall-seconds", min=0, help="How late a stalled answer comes.")
    ] = 0.0,
    latency: Annotated[
        float,
        typer.Option("--latency", min=0, help="Seconds each API request waits for its answer."),
    ] = 0.0,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", min=1, help="Requests allowed per window.")
    ] = None,
    rate_window: Annotated[
        float, typer.Option("--rate-window", min=0.01, help="Rate-limit window in seconds.")
    ] = 1.0,
    reset_style: Annotated[
        str, typer.Option("--reset-style", help="X-RateLimit-Reset as seconds or epoch.")
    ] = "seconds",
    max_batch: Annotated[
        int | None, typer.Option("--max-batch", min=1, help="Rows per request before 413.")
    ] = None,
    name_rows: Annotated[
        bool, typer.Option("--name-rows/--no-name-rows", help="Say which rows a 400 refuses.")
    ] = True,
    refuse_keys: Annotated[
        str | None, typer.Option("--refuse-keys", help="Regex of keys to refuse, for rehearsals.")
    ] = None,
    target: TargetOpt = None,
    config: ConfigOpt = None,
    items: Annotated[
        str | None, typer.Option("--items", help="onlyoffice: invoice items, comma-separated.")
    ] = None,
    taxes: Annotated[
        str | None, typer.Option("--taxes", help="onlyoffice: taxes as NAME:RATE, comma-separated.")
    ] = None,
    sent_invoices: Annotated[
        str | None,
        typer.Option("--sent-invoices", help="onlyoffice: regex of numbers that become Sent."),
    ] = None,
) -> None:
    """Run a local sandbox of a target's API, to try payor out and rehearse faults.

    Example: payor sandbox --port 8765 --fault-rate 0.2

    Credentials: PAYOR_API_KEY and PAYOR_API_SECRET when set, else the defaults it prints.
    """
    import errno  # noqa: PLC0415 - loaded by the command that needs it

    from payor_cli.sandbox.server import Sandbox, SandboxConfig  # noqa: PLC0415 - loaded by the command that needs it

    defaults = SandboxConfig()
    reporter = Reporter()
    try:
        chosen = get_target(resolve_target(target, config).resolved)
    except PayorError as exc:
        _fail(reporter, exc)
    own_credentials = bool(os.environ.get("PAYOR_API_KEY") and os.environ.get("PAYOR_API_SECRET"))
    if not is_loopback(host):
        if not own_credentials:
            reporter.error(
                f"sandbox: --host {host} is reachable from other machines, and the default "
                "credentials are public; set PAYOR_API_KEY and PAYOR_API_SECRET first, or "
                "listen on 127.0.0.1"
            )
            raise typer.Exit(ExitCode.USAGE)
        reporter.warning(f"sandbox: listening on {host}: other machines can reach this test server")
    try:
        config = SandboxConfig(
            api_key=os.environ.get("PAYOR_API_KEY") or defaults.api_key,
            api_secret=os.environ.get("PAYOR_API_SECRET")
            or os.environ.get("PAYOR_API_PASSWORD")
            or defaults.api_secret,
            api_user=os.environ.get("PAYOR_API_USER") or defaults.api_user,
            db_path=db,
            name_rows=name_rows,
            max_batch=max_batch,
            fault_rate=fault_rate,
            faults=tuple(f.strip() for f in faults.split(",") if f.strip()),
            seed=seed,
            stall_rate=stall_rate,
            stall_seconds=stall_seconds,
            latency=latency,
            rate_limit=rate_limit,
            rate_window=rate_window,
            reset_style=reset_style,
            refuse_keys=refuse_keys,
            items=_listed(items) if items is not None else defaults.items,
            taxes=_listed(taxes) if taxes is not None else defaults.taxes,
            sent_invoices=sent_invoices,
        )
        server = Sandbox(
            config, host=host, port=port, log=reporter.line, routes=chosen.sandbox_routes()
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reporter.error(
                f"sandbox: port {port} on {host} is in use by another program; choose "
                "another with --port (--port 0 picks a free one)"
            )
        else:
            reporter.error(f"sandbox: cannot listen on {host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(ExitCode.USAGE) from None
    except ValueError as exc:
        reporter.error(f"sandbox: {exc}")
        raise typer.Exit(ExitCode.USAGE) from None
    reporter.line(f"payor sandbox: a {chosen.title} API at {server.url}")
    if not (os.environ.get("PAYOR_API_KEY") or os.environ.get("PAYOR_API_SECRET")):
        reporter.line(
            f"credentials: api_key={config.api_key} api_secret={config.api_secret} "
            "(sandbox defaults; set PAYOR_API_KEY / PAYOR_API_SECRET to choose others)"
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()


def _listed(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _version(value: bool) -> None:
    if value:
        typer.echo(f"payor {VERSION}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """payor: bulk uploads of accounting exports into PayorCRM."""


def main(args: list[str] | None = None) -> NoReturn:
    """The `payor` command: option errors in the same one line as every other error."""
    try:
        code = app(args, prog_name="payor", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help())  # a bare `payor` or `payor upload`: its help
        sys.exit(ExitCode.USAGE)
    except click.ClickException as exc:
        where = f"; see `{exc.ctx.command_path} --help`" if getattr(exc, "ctx", None) else ""
        Reporter().error(f"{exc.format_message().rstrip('.')}{where}")
        sys.exit(exc.exit_code)
    except click.Abort:
        Reporter().error("interrupted")
        sys.exit(ExitCode.ABORTED)
    sys.exit(code or 0)
