"""`payor upload customers|invoices|all`: one option per UploadOptions field, the same for all.

The commands only collect their arguments; `upload_run` (loaded when one runs) does the rest.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from payor_cli.cli.params import UPLOAD_OPTIONS, FileArg, options_command
from payor_cli.options import UploadOptions

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

_EXAMPLES = {
    "customers": "payor upload customers sample_data/customers.csv --config config.example.toml "
    "--dry-run",
    "invoices": "payor upload invoices sample_data/invoices.xlsx --config config.example.toml "
    "--dry-run --rejected rejected.csv",
    "all": "payor upload all --customers sample_data/customers.csv --invoices "
    "sample_data/invoices.xlsx --config config.example.toml --sandbox",
}

KINDS = ("customers", "invoices")


def _upload_command(files: dict[str, inspect.Parameter], doc: str) -> Callable[..., None]:
    """A command taking the kinds' exports (`files`: kind -> its parameter), then every upload
    option."""

    def run(options: UploadOptions, **given: object) -> None:
        from payor_cli.cli.upload_run import run_upload  # noqa: PLC0415 - start-up: --version and completion load no pyarrow

        run_upload({kind: Path(given[p.name]) for kind, p in files.items()}, options)

    return options_command(UploadOptions, UPLOAD_OPTIONS, run, doc, list(files.values()))


def _file_parameter(name: str, annotation: object) -> inspect.Parameter:
    """A command's parameter for an export, by its name and typer annotation."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)


def add_upload_commands(upload_app: typer.Typer) -> None:
    """Register `upload customers`, `upload invoices` and `upload all` on `upload_app`."""
    for kind in KINDS:
        upload_app.command(kind, epilog=UPLOAD_EPILOG)(
            _upload_command(
                {kind: _file_parameter("file", FileArg)},
                f"Upload {kind} from FILE: read, map, check every row, send the valid ones.\n\n"
                f"Example: {_EXAMPLES[kind]}",
            )
        )
    upload_app.command("all", epilog=UPLOAD_EPILOG)(
        _upload_command(
            {
                kind: _file_parameter(
                    kind,
                    Annotated[Path, typer.Option(f"--{kind}", help=f"The {kind} export.")],
                )
                for kind in KINDS
            },
            "Upload customers, then invoices; invoices of rejected customers are held back.\n\n"
            f"Example: {_EXAMPLES['all']}",
        )
    )
