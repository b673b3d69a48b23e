"""`payor init`: a mapping suggested from an export, written to a file or printed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from payor_cli.cli.params import (
    ConfigOpt,
    DelimiterOpt,
    EncodingOpt,
    HeaderRowOpt,
    KindName,
    MemberOpt,
    SheetOpt,
    TargetOpt,
)
from payor_cli.cli.process import fail
from payor_cli.errors import ExitCode, PayorError
from payor_cli.options import UploadOptions

if TYPE_CHECKING:
    from payor_cli.api import MappingDraft
    from payor_cli.report import Reporter


def _show_presets(value: bool) -> None:
    """--list-presets: print the presets and exit, before any argument is asked for."""
    if value:
        from payor_cli.infer import list_presets  # noqa: PLC0415 - start-up: --version and completion load no pyarrow

        for name, description in list_presets():
            typer.echo(f"{name:<20} {description}")
        raise typer.Exit()


KindArg = Annotated[
    KindName, typer.Argument(metavar="KIND", help="customers or invoices", show_default=False)
]
ExportArg = Annotated[
    Path, typer.Argument(metavar="FILE", help="The export to look at.", show_default=False)
]
OutputOpt = Annotated[
    Path | None, typer.Option("-o", "--output", help="Write the mapping here (else print it).")
]
PresetOpt = Annotated[
    str | None,
    typer.Option("--preset", help="Start from a vendor preset (see --list-presets)."),
]
ListPresetsOpt = Annotated[
    bool,
    typer.Option(
        "--list-presets",
        callback=_show_presets,
        is_eager=True,  # before the arguments are asked for: it needs none
        metavar="",
        help="Show the presets shipped with payor, and exit.",
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force", metavar="", help="Overwrite OUTPUT even if it already has this section."
    ),
]


def init(
    kind: KindArg,
    file: ExportArg,
    output: OutputOpt = None,
    preset: PresetOpt = None,
    list_presets: ListPresetsOpt = False,
    force: ForceOpt = False,
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
    from payor_cli import api  # noqa: PLC0415 - start-up: --version and completion load no pyarrow
    from payor_cli.report import Reporter  # noqa: PLC0415 - start-up: --version and completion load no rich

    reporter = Reporter()
    reading = UploadOptions(
        target=target,
        config=config,
        sheet=sheet,
        header_row=header_row,
        encoding=encoding,
        delimiter=delimiter,
        member=member,
    )
    try:
        draft = api.draft_mapping(
            kind.value, file, reading, preset=preset, output=output, force=force
        )
    except PayorError as exc:
        fail(reporter, exc)
    _tell(reporter, kind.value, file, output, draft)


def _tell(
    reporter: Reporter, kind: str, file: Path, output: Path | None, draft: MappingDraft
) -> None:
    """Say what was read and noted, print the mapping (no OUTPUT) and what to do next; a
    required field without a column is exit 1."""
    suggestion = draft.suggestion
    reporter.line(f"{kind}: read {draft.read_from} ({suggestion.source})", error=True)
    for note in suggestion.notes:
        reporter.line(f"note: {note}", error=True)
    if output is None:
        typer.echo(suggestion.toml, nl=False)
    else:
        reporter.line(f"{kind}: mapping written to {output}", error=True)
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
            f"try it: payor upload {kind} {file} --mapping {output} --dry-run",
            error=True,
        )
