"""The typer options the commands share, and commands whose options are a dataclass's fields.

Loaded whenever `payor` starts (for `--version` and Tab completion too): only typer and light
modules here, nothing that loads pyarrow, requests or rich.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer


class KindName(StrEnum):
    """The kinds a command argument takes."""

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
    bool,
    typer.Option("--dry-run", metavar="", help="Read, map, validate and report; send nothing."),
]
BatchOpt = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Rows per request (default 500).")
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option("--concurrency", min=1, help="Requests in flight at once (default 4)."),
]
FullOpt = Annotated[
    bool,
    typer.Option("--full", metavar="", help="Also send rows unchanged since their last upload."),
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
    bool, typer.Option("--sandbox", metavar="", help="Upload to an embedded local sandbox server.")
]
QuietOpt = Annotated[
    bool,
    typer.Option("--quiet", "-q", metavar="", help="No progress; errors and a one-line summary."),
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
    Path,
    typer.Argument(
        metavar="FILE", help="The export: CSV, TSV, TXT, XLSX, XLSM, XLS or ODS; - reads stdin."
    ),
]
MemberOpt = Annotated[
    str | None,
    typer.Option("--member", help="The file inside a .zip export to read, when it holds several."),
]
LogFileOpt = Annotated[
    Path | None, typer.Option("--log-file", help="Append timestamped lines to this file too.")
]


# The help of every upload option, by its UploadOptions field (payor_cli.options): the one list of upload options,
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


def options_command(
    options_type: type,
    params: Mapping[str, object],
    run: Callable[..., None],
    doc: str,
    leading: Sequence[inspect.Parameter] = (),
) -> Callable[..., None]:
    """A command taking the `leading` parameters, then one option per field of the dataclass
    `options_type` (`params`: each field's typer annotation); it calls
    `run(options, **leading values)`.

    typer reads a command's options from its signature; this one is built from the dataclass,
    so a new option is added in one place and every command built from it has it.
    """

    def command(**given: Any) -> None:
        firsts = {p.name: given.pop(p.name) for p in leading}
        run(options_type(**given), **firsts)

    options = [
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, annotation=params[f.name], default=f.default
        )
        for f in dataclasses.fields(options_type)
    ]
    command.__signature__ = inspect.Signature([*leading, *options])  # type: ignore[attr-defined]
    command.__doc__ = doc
    return command
