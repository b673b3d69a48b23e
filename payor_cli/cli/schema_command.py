"""`payor schema`: a target's fields, as a table or as JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from payor_cli.cli.params import ConfigOpt, KindName, TargetOpt
from payor_cli.cli.process import fail
from payor_cli.errors import PayorError

if TYPE_CHECKING:
    from payor_cli.schema import Field, Kind


def schema(
    kind: Annotated[
        KindName | None,
        typer.Argument(metavar="KIND", help="customers or invoices; default both"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="Machine-readable output.")
    ] = False,
    target: TargetOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show a target's fields (default PayorCRM): name, type, required.

    Example: payor schema invoices --target business-suite
    """
    from payor_cli import api  # noqa: PLC0415 - start-up: --version and completion load no pyarrow
    from payor_cli.report import Reporter  # noqa: PLC0415 - start-up: --version and completion load no rich

    try:
        chosen = api.chosen_target(target, config)
    except PayorError as exc:
        fail(Reporter(), exc)
    kinds = [chosen.kind(kind.value)] if kind else list(chosen.kinds.values())
    if as_json:
        data: dict = {k.name: _described(k.fields) for k in kinds}
        data |= {f"{k.name}.lines": _described(k.lines) for k in kinds if k.lines}
        typer.echo(json.dumps(data, indent=2))
        return
    for k in kinds:
        _show(k)


def _described(fields: tuple[Field, ...]) -> list[dict]:
    """Fields as the JSON output gives them."""
    return [{"name": f.name, "type": f.type.value, "required": f.required} for f in fields]


def _show(kind: Kind) -> None:
    """One kind's fields (and its lines' fields) as a plain table."""
    typer.echo(f"{kind.name}  (POST {kind.path}; key: {', '.join(kind.key)})")
    parts = [("", kind.fields)] + ([(f"[{kind.name}.lines]", kind.lines)] if kind.lines else [])
    for title, fields in parts:
        if title:
            typer.echo(f"  {title}  (the fields of one line)")
        for f in fields:
            mark = "required" if f.required else ""
            typer.echo(f"  {f.name:<24} {f.type.value:<8} {mark}".rstrip())
    typer.echo("")
