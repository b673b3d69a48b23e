"""A stop with several batches in flight says truly what was and was not delivered: a batch
that failed while later ones were accepted is a gap, not the end of what arrived."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import CREDENTIALS, INVOICE_MAPPING, write_csv, write_mapping


class FirstBatchFails(ThreadingHTTPServer):
    """A PayorCRM upload endpoint that answers the batch holding invoice I0000 with a slow 503,
    every time, and takes every other batch at once."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.stored: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FirstBatchFails

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        rows = json.loads(body)
        if any(row["invoiceNumber"] == "I0000" for row in rows):
            time.sleep(1.5)  # the other senders' batches are answered meanwhile
            self._answer(503, {"success": False, "message": "busy"})
            return
        with self.server.lock:
            self.server.stored.extend(row["invoiceNumber"] for row in rows)
        self._answer(200, {"success": True})

    def _answer(self, status: int, data: dict) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    started = FirstBatchFails()
    thread = threading.Thread(target=started.serve_forever, daemon=True)
    thread.start()
    yield started
    started.shutdown()
    started.server_close()


def test_a_failed_batch_among_accepted_ones_is_named_as_a_gap(tmp_path, payor, server):
    rows = [["Customer", "Invoice", "Amount"]] + [[f"C{i % 7}", f"I{i:04d}", "10"] for i in range(1000)]  # fmt: skip
    source = write_csv(tmp_path / "invoices.csv", rows)
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    config = write_mapping(tmp_path / "payor.toml", "[upload]\nmax_retries = 1\n")
    report_path = tmp_path / "report.json"
    run = payor(
        "upload", "invoices", source, "--mapping", mapping, "--config", config,
        "--base-url", server.url, "--state-dir", tmp_path / "state", "--batch-size", "100",
        "--concurrency", "4", "--report-json", report_path, env=CREDENTIALS,
    )  # fmt: skip
    assert run.code == 3, run.text
    report = json.loads(report_path.read_text())
    stopped = report["stopped"]
    stored = server.stored
    assert len(stored) >= 300  # three batches were in flight beside the failing one
    assert "I0000" not in stored and min(stored) == "I0100"
    assert report["rows_accepted"] == len(stored)
    assert stopped["row"] == 2
    assert stopped["not_delivered"] == [{"first": 2, "last": 101, "rows": 100}]
    assert stopped["delivered_after"] == len(stored)
    if len(stored) < 900:
        assert stopped["not_delivered_from"] == 2 + 100 + len(stored)  # batches go in order
    said = re.sub(r"\s+", " ", run.text)
    assert "nothing from row 2 on was delivered" not in said
    assert "rows 2-101" in said
    assert f"{len(stored):,} rows " in said
    assert ("after them were" in said) == (len(stored) == 900)
