"""One upload command run: the reporter, the log and the signals around the api's upload;
its result to the output and the exit code. Loaded only when an upload command runs."""

from __future__ import annotations

import sys
from contextlib import ExitStack, suppress
from pathlib import Path

import typer

from payor_cli import api
from payor_cli.cli.process import fail, stop_on_signals
from payor_cli.errors import AbortedError, ExitCode, PayorError
from payor_cli.options import UploadOptions
from payor_cli.report import Reporter
from payor_cli.run.outputs import STANDARD_STREAM, OutputConflict, open_log


def run_upload(files: dict[str, Path], options: UploadOptions) -> None:
    """Run one upload command: options in; the reports, the output and the exit code out."""
    with ExitStack() as stack:
        # the JSON report on standard output: everything else goes to standard error
        to_stdout = str(options.report_json) == STANDARD_STREAM
        reporter = Reporter(sys.stderr if to_stdout else None, quiet=options.quiet)
        try:
            request = api.upload_request(options, files)
            # checked before the log is opened: no output may be an input, the log included
            settings, warnings = api.prepare(options, files)
            if options.log_file is not None:
                reporter.log = stack.enter_context(open_log(options.log_file))
            reporter.secrets = settings.secrets
            for warning in warnings:
                reporter.warning(warning)
            stop = stack.enter_context(stop_on_signals(reporter, options.dry_run))
            result = api.execute(
                request, options, settings, reporter, show_inferred=reporter.show_mapping, stop=stop
            )
        except PayorError as exc:
            if options.log_file is not None and reporter.log is None:
                _log_failure(stack, reporter, options.log_file, exc)
            api.failed(options, files, exc)
            fail(reporter, exc)
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
