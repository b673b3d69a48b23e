"""What a command does to its process: an error's line and exit code, and signals that stop.

Loaded whenever `payor` starts: nothing here imports pyarrow, requests or rich (the reporter
is only a type here; the command that runs creates it).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer

from payor_cli.errors import ExitCode, PayorError
from payor_cli.stop import StopRequest

if TYPE_CHECKING:
    from payor_cli.report import Reporter


def fail(reporter: Reporter, exc: PayorError) -> NoReturn:
    """Say the error in one line and exit with its code."""
    reporter.error(str(exc))
    raise typer.Exit(int(exc.exit_code))


STOP_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
    if hasattr(signal, name)
)
"""What asks a run to stop cleanly, as each system has it: Ctrl-C, a kill, a closed terminal
or ssh session (Unix), Ctrl-Break (Windows)."""


@contextmanager
def stop_on_signals(reporter: Reporter, dry_run: bool) -> Iterator[StopRequest]:
    """The STOP_SIGNALS ask the run to stop cleanly; a second Ctrl-C stops at once.

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
