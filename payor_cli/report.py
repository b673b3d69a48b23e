"""What the user sees: progress while running, then the closing summary, errors and totals.

A terminal gets a rich progress bar and tables; anything else (cron, a pipe, a log file) gets
plain timestamped lines. Every text passes through `redact`, so no secret is ever shown.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable
from rich.text import Text

from payor_cli.check.mapping import Mapping
from payor_cli.read import Table
from payor_cli.summary import ErrorGroup, RunSummary, Stopped

PLAIN_PROGRESS_EVERY_S = 5.0
SHOWN_GROUPS = 12


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:  # hiding a shorter "secret" would only garble the text
            text = text.replace(secret, "***")
    return text


def one_line(summary: RunSummary) -> str:
    mode = " (dry run: nothing sent)" if summary.dry_run else ""
    line = (
        f"{summary.kind}: {summary.rows_read} read, {summary.rows_valid} valid, "
        f"{summary.rows_rejected} rejected, {summary.rows_skipped} skipped"
    )
    if summary.rows_merged:
        line += f", {summary.rows_merged} merged"
    if not summary.dry_run:
        line += (
            f", {summary.rows_unchanged} unchanged, {summary.rows_sent} sent, "
            f"{summary.rows_accepted} accepted in {_count(summary.requests, 'request')} "
            f"({_count(summary.retries, 'retry', 'retries')})"
        )
    line += f"{mode}; {summary.duration_s:.1f} s; exit {summary.exit_code}"
    if summary.stopped:
        line += f"; STOPPED ({summary.stopped.reason}): {how_far(summary)}"
    return line


def _rate(rate: float) -> str:
    """Rows a second, with a decimal when there are few (one record a request): never a
    "0 rows/s" for a run that moves."""
    if rate >= 10 or rate == 0:
        return f"{rate:,.0f}"
    return f"{rate:.2g}" if rate < 0.1 else f"{rate:.1f}"


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def how_far(summary: RunSummary) -> str:
    """Where a stopped run got to, so nobody takes its counts for the whole file."""
    stopped = summary.stopped
    assert stopped is not None
    if summary.last_row is None and stopped.row is None:
        return f"{stopped.message}; {summary.file} was not read"
    parts = []
    if not summary.read_to_end:
        parts.append(
            f"{summary.file} was read to row {summary.last_row:,} only, not to its end"
            if summary.last_row
            else f"{summary.file} was not read"
        )
    if stopped.spans and stopped.delivered_after:
        parts.append(_not_delivered(stopped))
    elif stopped.row is not None:
        done = "checked" if summary.dry_run else "delivered"
        parts.append(f"nothing from row {stopped.row:,} on was {done}")
    if not summary.dry_run:
        parts.append(
            "a re-run sends what was not delivered"
            if stopped.spans and stopped.delivered_after
            else "a re-run goes on from the last accepted batch"
        )
    return "; ".join(parts)


def _not_delivered(stopped: Stopped) -> str:
    """Requests in flight when the run stopped: some answered, some not. What was and was not
    delivered, so nobody takes the rows after a gap for lost, nor the gap for delivered."""
    shown = [span.shown() for span in stopped.spans]
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    one = len(shown) == 1 and stopped.spans[0].first == stopped.spans[0].last
    after = stopped.delivered_after
    rows = f"{after:,} {'row' if after == 1 else 'rows'}"
    if stopped.rest_from is not None:
        return (
            f"{listed} {'was' if one else 'were'} not delivered, nor any row from "
            f"{stopped.rest_from:,} on; {rows} in between {'was' if after == 1 else 'were'}"
        )
    return (
        f"{listed} {'was' if one else 'were'} not delivered; {rows} after "
        f"{'it' if one else 'them'} {'was' if after == 1 else 'were'}"
    )


def group_line(group: ErrorGroup) -> str:
    rows = ", ".join(map(str, group.first_rows))
    more = ", ..." if group.count > len(group.first_rows) else ""
    noun = "row" if group.count == 1 else "rows"
    return f"{group.count} {noun}: {group.reason} ({noun} {rows}{more})"


MAX_SHOWN = 400
"""A line on the screen is cut here; the log file and the JSON report keep the whole text."""


def cut(text: str, rest_in: str) -> str:
    if len(text) <= MAX_SHOWN:
        return text
    return f"{text[:MAX_SHOWN]}… ({len(text) - MAX_SHOWN:,} more characters {rest_in})"


class Reporter:
    """An Observer (see upload.py) writing to a console; `live` chooses bars or plain lines."""

    def __init__(
        self,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        *,
        live: bool | None = None,
        quiet: bool = False,
        secrets: list[str] | None = None,
        log: IO[str] | None = None,
    ) -> None:
        self.out = Console(file=out, highlight=False, soft_wrap=True)
        self.err = Console(file=err, stderr=err is None, highlight=False, soft_wrap=True)
        self.live = self.err.is_terminal if live is None else live
        self.quiet = quiet
        self.secrets = secrets or []
        self.log = log
        self._bar: Progress | None = None
        self._task = None
        self._last_plain = 0.0
        self._started = 0.0
        self._expected: tuple[int, bool] | None = None
        self._plain_shown = False
        """A plain progress line was shown: the run ends with a final, true one."""
        self._gone: list[Console] = []

    # -- plain lines ------------------------------------------------------------------------
    def line(self, text: str, *, error: bool = False, show: bool = True) -> None:
        """A timestamped line (or a plain one on a terminal), also copied to the log file,
        which gets every line, also those --quiet keeps off the screen."""
        text = redact(text, self.secrets)
        stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        if self.log is not None:
            self.log.write(f"{stamp} {text}\n")
            self.log.flush()
        if not show:
            return
        text = cut(text, "in the log file" if self.log else "cut; --log-file FILE keeps them")
        console = self.err if error else self.out
        if console in self._gone:
            return
        try:
            if self.live:
                console.print(text, markup=False)
            else:  # plain lines need none of rich's layout work (the sandbox logs every request)
                console.file.write(f"{stamp} {text}\n")
                console.file.flush()
        except OSError:
            # a closed pipe (| head) or a full disk: the run goes on, and its files are written
            self._gone.append(console)

    def error(self, text: str) -> None:
        self.line(f"error: {text}", error=True)

    def warning(self, text: str) -> None:
        self.line(f"warning: {text}", error=True)

    # -- Observer ---------------------------------------------------------------------------
    def started(self, summary: RunSummary, table: Table, mapping: Mapping) -> None:
        what = "checking" if summary.dry_run else "uploading"
        shown = not self.quiet
        self.line(f"{summary.kind}: {what} {summary.file} ({table.describe()})", show=shown)
        self.line(f"{summary.kind}: mapping from {mapping.source}", show=shown)
        if self.live and not self.quiet:
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("[yellow]{task.fields[status]}"),
                console=self.err,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                summary.kind, total=table.rows_expected or None, counts="", status=""
            )
        self._expected = (table.rows_expected, table.rows_exact) if table.rows_expected else None
        self._started = self._last_plain = time.monotonic()
        self._plain_shown = False

    def progress(self, summary: RunSummary, *, final: bool = False) -> None:
        """The counts so far; `final`: the run is over, so the counts are complete, the
        total is what was read, and no time is left."""
        counts = f"{summary.rows_read:,}{self._of_total(summary, final)} read, "
        counts += f"{summary.rows_rejected:,} rejected"
        done = summary.rows_read
        if not summary.dry_run:
            counts += f", {summary.rows_accepted:,} accepted"
            if not final:
                # a row read is not done until the server has it (or it needs no sending)
                done -= summary.rows_valid - summary.rows_accepted - summary.rows_unchanged
        elapsed = time.monotonic() - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        counts += f", {_rate(rate)} rows/s"
        left = "" if final else self._time_left(done, rate)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, counts=counts, status="")
        elif final or time.monotonic() - self._last_plain >= PLAIN_PROGRESS_EVERY_S:
            self._last_plain = time.monotonic()
            self._plain_shown = True
            self.line(f"{summary.kind}: {counts}{left}", show=not self.quiet)

    def _of_total(self, summary: RunSummary, final: bool) -> str:
        if final and summary.read_to_end:
            return ""  # read to the end: the count is the total, whatever the estimate was
        if self._expected is None:
            return ""
        total, exact = self._expected
        return f" of {'' if exact else '~'}{total:,}"

    def _time_left(self, done: int, rate: float) -> str:
        if self._expected is None or rate <= 0:
            return ""
        seconds = max(0.0, (self._expected[0] - done) / rate)
        return f", about {seconds:,.0f} s left"

    def notice(self, text: str) -> None:
        """Something the run waits for or works around (retries, quotas): shown as it
        happens, also on the progress bar, so a wait never looks like a hang."""
        self.line(text, error=True, show=not self.quiet)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, status=cut(text, "")[:120])

    def finished(self, summary: RunSummary) -> None:
        if self._plain_shown:
            # the last progress line was taken mid-run: the final one is true
            self.progress(summary, final=True)
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if summary.stopped:
            self.error(f"{summary.kind}: stopped: {summary.stopped.message}")
        if self.live and not self.quiet:
            self._tables(summary)
            self._details(summary, show=False)  # the log file still gets them
        else:
            self.line(one_line(summary))
            self._details(summary, show=not self.quiet)
        if summary.note:
            self.line(f"{summary.kind}: {summary.note}", error=True)

    # -- closing summary --------------------------------------------------------------------
    def _details(self, summary: RunSummary, show: bool) -> None:
        for group in summary.errors.ranked()[:SHOWN_GROUPS]:
            self.line(f"{summary.kind}: {group_line(group)}", show=show)
        totals = summary.totals
        if totals is not None:
            for currency, stages in sorted(totals.sums.items()):
                parts = ", ".join(f"{k} {totals.shown(currency, k)}" for k in stages)
                heading = currency if totals.is_currency(currency) else f"({currency})"
                self.line(f"{summary.kind}: {totals.field} total {heading}: {parts}", show=show)

    def _tables(self, summary: RunSummary) -> None:
        counts = RichTable(title=Text(f"{summary.kind}: {summary.file}"), title_justify="left")
        counts.add_column("rows")
        counts.add_column("count", justify="right")
        shown = ["read", "valid", "rejected", "skipped", "merged"]
        if not summary.dry_run:
            shown += ["unchanged", "sent", "accepted"]
        for name in shown:
            counts.add_row(name, f"{getattr(summary, 'rows_' + name):,}")
        if not summary.dry_run:
            counts.add_row("requests", f"{summary.requests:,} ({summary.retries} retries)")
        self.out.print(counts)
        groups = summary.errors.ranked()
        if groups:
            errors = RichTable(title="rejected rows, by reason", title_justify="left")
            errors.add_column("rows", justify="right")
            errors.add_column("reason")
            errors.add_column("first rows")
            for group in groups[:SHOWN_GROUPS]:
                more = ", ..." if group.count > len(group.first_rows) else ""
                errors.add_row(
                    f"{group.count:,}",
                    Text(redact(group.reason, self.secrets)),  # a server's words: no markup
                    ", ".join(map(str, group.first_rows)) + more,
                )
            if len(groups) > SHOWN_GROUPS:
                errors.caption = f"and {len(groups) - SHOWN_GROUPS} more reasons: see --rejected"
            self.out.print(errors)
        sums = summary.totals
        if sums is not None and sums.sums:
            totals = RichTable(
                title=f"control totals of {sums.field}, in currency units", title_justify="left"
            )
            totals.add_column("currency")
            stages = ["read", "rejected", "valid"] + ([] if summary.dry_run else ["accepted"])
            for stage in stages:
                totals.add_column(stage, justify="right")
            for currency in sorted(sums.sums):
                totals.add_row(currency, *(sums.shown(currency, s) for s in stages))
            self.out.print(totals)
        self.line(one_line(summary))

    def show_mapping(self, kind: str, toml: str, path: str) -> None:
        """No mapping was given: show the one `init` would write, and how to keep it."""
        self.line(f"{kind}: no mapping given; using the one `payor init` suggests:", error=True)
        self.err.print(toml.rstrip(), markup=False, highlight=False)
        self.line(
            f"{kind}: to keep it: payor init {kind} {path} -o payor.toml (then edit as needed)",
            error=True,
        )
