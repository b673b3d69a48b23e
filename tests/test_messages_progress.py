"""The progress a run leaves on the screen is true at its end: counts complete, no time left,
and a rate that is not "0 rows/s" for a run that moved (one record a request is slow)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from payor_cli import report as report_module
from payor_cli.check.mapping import parse_mapping
from payor_cli.read import Table
from payor_cli.report import Reporter
from payor_cli.summary import RunSummary
from payor_cli.targets.payorcrm.spec import INVOICES


@pytest.fixture
def reporter(monkeypatch):
    monkeypatch.setattr(report_module, "PLAIN_PROGRESS_EVERY_S", 0.0)  # a line every call
    out = io.StringIO()
    return Reporter(out=out, err=io.StringIO(), live=False), out


def start(reporter: Reporter) -> RunSummary:
    invoices = INVOICES
    mapping = parse_mapping(
        {"fields": {"customerNumber": "C", "invoiceNumber": "I", "invoiceAmount": "A"}},
        invoices,
    )
    table = Table(Path("export.csv"), "csv", ["C", "I", "A"], 1, rows_expected=200)
    summary = RunSummary("invoices", Path("export.csv"), dry_run=False, target="payorcrm")
    reporter.started(summary, table, mapping)
    return summary


def progress_lines(out: io.StringIO) -> list[str]:
    return [line for line in out.getvalue().splitlines() if " read, " in line and "rows/s" in line]


def test_the_last_progress_line_is_the_final_state(reporter):
    shown, out = reporter
    summary = start(shown)
    summary.rows_read, summary.rows_valid, summary.rows_rejected = 200, 195, 5
    summary.rows_accepted = 1
    shown.progress(summary)  # mid-run: the file read, one record accepted
    assert "s left" in progress_lines(out)[-1]
    summary.rows_accepted, summary.read_to_end = 195, True
    shown.finished(summary)
    last = progress_lines(out)[-1]
    assert "invoices: 200 read, 5 rejected, 195 accepted, " in last
    assert "left" not in last
    assert "~200" not in last  # read to the end: the count is the total
    assert ", 0 rows/s" not in last


def test_a_slow_rate_is_not_shown_as_zero():
    assert report_module._rate(0.86) == "0.9"
    assert report_module._rate(0.034) == "0.034"
    assert report_module._rate(3.21) == "3.2"
    assert report_module._rate(1234.4) == "1,234"
    assert report_module._rate(0.0) == "0"


def test_a_run_too_short_for_a_progress_line_gets_none_at_the_end(monkeypatch):
    out = io.StringIO()
    shown = Reporter(out=out, err=io.StringIO(), live=False)
    summary = start(shown)
    summary.rows_read = summary.rows_valid = summary.rows_accepted = 200
    summary.read_to_end = True
    shown.finished(summary)
    assert progress_lines(out) == []
