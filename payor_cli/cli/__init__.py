"""The command line: options in, a typed options object to the api, its result to output and
an exit code.

`import payor_cli.cli` loads typer and light modules only: `payor --version` and each Tab
completion import no pyarrow, requests or rich. A command imports what it needs when it runs
(the imports marked `# noqa: PLC0415 - start-up`).
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

from payor_cli.cli import init_command, sandbox_command, schema_command
from payor_cli.cli.upload_commands import add_upload_commands
from payor_cli.errors import ExitCode
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
add_upload_commands(upload_app)
app.command("init")(init_command.init)
app.command("schema")(schema_command.schema)
app.command("sandbox")(sandbox_command.sandbox)


def _version(value: bool) -> None:
    """--version: print it and exit, before anything else."""
    if value:
        typer.echo(f"payor {VERSION}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, metavar="", help="Show the version."
        ),
    ] = False,
) -> None:
    """payor: bulk uploads of accounting exports into PayorCRM."""


_CLICK = sys.modules[typer.BadParameter.__module__]
"""The exceptions of the click typer runs on: click's own, or (typer 0.25 and later) the copy
typer carries. Named through typer, so that what typer raises is what is caught."""
_NO_ARGS = getattr(_CLICK, "NoArgsIsHelpError", ())  # click 8.2 and later


def main(args: list[str] | None = None) -> NoReturn:
    """The `payor` command: option errors in the same one line as every other error."""
    try:
        code = app(args, prog_name="payor", standalone_mode=False)
    except _NO_ARGS as exc:
        typer.echo(exc.ctx.get_help())  # a bare `payor` or `payor upload`: its help
        sys.exit(ExitCode.USAGE)
    except _CLICK.ClickException as exc:
        where = f"; see `{exc.ctx.command_path} --help`" if getattr(exc, "ctx", None) else ""
        _error(f"{exc.format_message().rstrip('.')}{where}")
        sys.exit(exc.exit_code)
    except (getattr(_CLICK, "Abort", typer.Abort), typer.Abort):
        _error("interrupted")
        sys.exit(ExitCode.ABORTED)
    sys.exit(code or 0)


def _error(text: str) -> None:
    """An error line, as every command writes one."""
    from payor_cli.report import Reporter  # noqa: PLC0415 - start-up: only an error loads the reporter (rich)

    Reporter().error(text)
