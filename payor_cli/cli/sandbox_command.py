"""`payor sandbox`: a local server speaking a target's API, to try payor and rehearse faults.

One option per SandboxOptions field; `run.serve` sets the server up, this module says what it
returned and serves until Ctrl-C.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from payor_cli.cli.params import ConfigOpt, TargetOpt, options_command
from payor_cli.cli.process import fail
from payor_cli.errors import PayorError
from payor_cli.options import SandboxOptions

# The help of every sandbox option, by its SandboxOptions field (names and defaults there).
SANDBOX_OPTIONS: dict[str, object] = {
    "port": Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one).")
    ],
    "db": Annotated[
        Path | None, typer.Option("--db", help="SQLite file for the stored rows (default: memory).")
    ],
    "host": Annotated[str, typer.Option("--host", help="Address to listen on.")],
    "fault_rate": Annotated[
        float, typer.Option("--fault-rate", min=0, max=1, help="Share of uploads that fail.")
    ],
    "faults": Annotated[
        str, typer.Option("--faults", help="Faults to inject: 500,502,503,504,429,drop,soft.")
    ],
    "seed": Annotated[int, typer.Option("--seed", help="Seed of the fault dice.")],
    "stall_rate": Annotated[
        float, typer.Option("--stall-rate", min=0, max=1, help="Share stored, then answered late.")
    ],
    "stall_seconds": Annotated[
        float, typer.Option("--stall-seconds", min=0, help="How late a stalled answer comes.")
    ],
    "latency": Annotated[
        float,
        typer.Option("--latency", min=0, help="Seconds each API request waits for its answer."),
    ],
    "rate_limit": Annotated[
        int | None, typer.Option("--rate-limit", min=1, help="Requests allowed per window.")
    ],
    "rate_window": Annotated[
        float, typer.Option("--rate-window", min=0.01, help="Rate-limit window in seconds.")
    ],
    "reset_style": Annotated[
        str, typer.Option("--reset-style", help="X-RateLimit-Reset as seconds or epoch.")
    ],
    "max_batch": Annotated[
        int | None, typer.Option("--max-batch", min=1, help="Rows per request before 413.")
    ],
    "name_rows": Annotated[
        bool,
        typer.Option(
            "--name-rows/--no-name-rows", metavar="", help="Say which rows a 400 refuses."
        ),
    ],
    "refuse_keys": Annotated[
        str | None, typer.Option("--refuse-keys", help="Regex of keys to refuse, for rehearsals.")
    ],
    "target": TargetOpt,
    "config": ConfigOpt,
    "items": Annotated[
        str | None, typer.Option("--items", help="onlyoffice: invoice items, comma-separated.")
    ],
    "taxes": Annotated[
        str | None, typer.Option("--taxes", help="onlyoffice: taxes as NAME:RATE, comma-separated.")
    ],
    "sent_invoices": Annotated[
        str | None,
        typer.Option("--sent-invoices", help="onlyoffice: regex of numbers that become Sent."),
    ],
}


def _serve(options: SandboxOptions) -> None:
    """Set the sandbox up, say where it listens (and the default credentials), serve."""
    from payor_cli.report import Reporter  # noqa: PLC0415 - start-up: --version and completion load no rich
    from payor_cli.run.serve import open_sandbox  # noqa: PLC0415 - start-up: --version and completion load no pyarrow

    reporter = Reporter()
    try:
        started = open_sandbox(options, log=reporter.line, warn=reporter.warning)
    except PayorError as exc:
        fail(reporter, exc)
    server = started.server
    reporter.line(f"payor sandbox: a {started.title} API at {server.url}")
    if started.default_credentials is not None:
        api_key, api_secret = started.default_credentials
        reporter.line(
            f"credentials: api_key={api_key} api_secret={api_secret} "
            "(sandbox defaults; set PAYOR_API_KEY / PAYOR_API_SECRET to choose others)"
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()


sandbox = options_command(
    SandboxOptions,
    SANDBOX_OPTIONS,
    _serve,
    "Run a local sandbox of a target's API, to try payor out and rehearse faults.\n\n"
    "Example: payor sandbox --port 8765 --fault-rate 0.2\n\n"
    "Credentials: PAYOR_API_KEY and PAYOR_API_SECRET when set, else the defaults it prints.",
)
