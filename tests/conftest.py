"""Shared helpers: run the real CLI in a subprocess, write real input files."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"  # copies of ../shared/data, as they are, so CI needs no more
SAMPLES = ROOT / "sample_data"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_payor(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout=120) -> Run:
    """Run `payor ARGS` as a real process, with a clean environment and no config around."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")}
    base["HOME"] = str(cwd)
    base["XDG_CONFIG_HOME"] = str(cwd / ".config")
    base["XDG_STATE_HOME"] = str(cwd / ".state")
    base["COLUMNS"] = "200"
    base.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "payor_cli", *map(str, args)],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def payor(tmp_path: Path):
    def run(*args: str | Path, env: dict[str, str] | None = None, timeout=120) -> Run:
        return run_payor(*args, cwd=tmp_path, env=env, timeout=timeout)

    return run


def write_csv(path: Path, rows: list[list[object]], delimiter: str = ",", encoding="utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[object]], sheet: str = "Sheet1", extra=()) -> Path:
    book = openpyxl.Workbook()
    first = book.active
    first.title = sheet
    for row in rows:
        first.append(row)
    for name, extra_rows in extra:
        other = book.create_sheet(name)
        for row in extra_rows:
            other.append(row)
    book.save(path)
    return path


def write_mapping(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_rejected(path: Path) -> list[dict[str, str]]:
    """The rows of a rejected-rows CSV, found below its header in the source's own dialect."""
    raw = path.read_bytes()
    utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
    text = raw.decode("utf-16" if utf16 else "utf-8-sig")
    start = text.index("source_row")
    delimiter = text[start + len("source_row")]
    return list(csv.DictReader(io.StringIO(text[start:], newline=""), delimiter=delimiter))


INVOICE_MAPPING = """
[invoices]
[invoices.fields]
customerNumber = "Customer"
invoiceNumber = "Invoice"
invoiceAmount = "Amount"
"""

CUSTOMER_MAPPING = """
[customers]
[customers.fields]
customerno = "No"
emailaddress1 = "Email"
companyname = "Name"
"""


@pytest.fixture
def dry_run(tmp_path: Path, payor):
    """Dry-run a file with a mapping; returns (run, payloads, rejected rows, report)."""

    def go(kind: str, source: Path, mapping: str, *extra: str):
        mapping_path = write_mapping(tmp_path / "mapping.toml", mapping)
        payloads = tmp_path / "payloads.jsonl"
        rejected = tmp_path / "rejected.csv"
        report = tmp_path / "report.json"
        for stale in (payloads, rejected, report):
            stale.unlink(missing_ok=True)
        result = payor(
            "upload", kind, source, "--mapping", mapping_path, "--dry-run",
            "--payloads", payloads, "--rejected", rejected, "--report-json", report, *extra,
        )  # fmt: skip
        return (
            result,
            read_jsonl(payloads) if payloads.exists() else None,
            read_rejected(rejected) if rejected.exists() else None,
            json.loads(report.read_text()) if report.exists() else None,
        )

    return go


# --- a real sandbox server, as its own process ------------------------------------------------

API_KEY = "test-key-5f2c"
API_SECRET = "s3cr3t-Zq9-never-shown"
CREDENTIALS = {"PAYOR_API_KEY": API_KEY, "PAYOR_API_SECRET": API_SECRET}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SandboxProcess:
    """`payor sandbox` running as a subprocess, and what it stored."""

    def __init__(self, directory: Path, *flags: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = directory / f"sandbox-{self.port}.sqlite"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")}
        env.update(CREDENTIALS)
        self.log = (directory / f"sandbox-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "payor_cli", "sandbox", "--port", str(self.port),
             "--db", str(self.db), *flags],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                self.stats()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.05)

    def _get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return json.loads(answer.read())

    def stats(self) -> dict:
        return self._get("/sandbox/stats")

    def records(self, kind: str) -> list[dict]:
        return self._get(f"/sandbox/records/{kind}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


@pytest.fixture
def sandbox_server(tmp_path: Path):
    started: list[SandboxProcess] = []

    def start(*flags: str) -> SandboxProcess:
        server = SandboxProcess(tmp_path, *flags)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def kill_upload_all_midway(server, tmp_path: Path, source: Path, config: Path, env: dict,
                           invoices_written: int) -> None:  # fmt: skip
    """Run `upload all` on one export as a real process and SIGKILL it once the server has
    created `invoices_written` invoices (what a power cut or an OOM kill does)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")} | env
    victim = subprocess.Popen(
        [sys.executable, "-m", "payor_cli", "upload", "all", "--customers", source, "--invoices",
         source, "--config", config, "--base-url", server.url, "--state-dir", tmp_path / "state"],
        env=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while server.stats()["writes"]["invoices"] < invoices_written and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL  # killed mid-run, not ended on its own


@pytest.fixture
def upload_one_export(payor, tmp_path: Path):
    """`upload all` with one export for both kinds, against a server; (run, report)."""

    def run(server, source: Path, config: Path, *extra: str, env: dict, state: str = "state"):
        report = tmp_path / "report.json"
        report.unlink(missing_ok=True)
        result = payor(
            "upload", "all", "--customers", source, "--invoices", source, "--config", config,
            "--base-url", server.url, "--state-dir", tmp_path / state, "--report-json", report,
            *extra, env=env,
        )  # fmt: skip
        return result, (json.loads(report.read_text()) if report.exists() else None)

    return run


# -- a customers and an invoices export, uploaded to a sandbox server -----------------------
DELIVERY_MAPPING = CUSTOMER_MAPPING + INVOICE_MAPPING + 'currency = "Cur"\n'


@pytest.fixture
def files(tmp_path: Path):
    """A customers file and an invoices file of `n` rows, with their mapping."""

    def make(n: int, customers: int = 20, bad_email: int | None = None):
        people = [["No", "Email", "Name"]] + [
            [f"C{c:03d}", "broken" if c == bad_email else f"c{c}@x.example", f"Customer {c}"]
            for c in range(customers)
        ]
        invoices = [["Customer", "Invoice", "Amount", "Cur"]] + [
            [f"C{i % customers:03d}", f"I{i:05d}", f"{i}.{i % 100:02d}", "EUR" if i % 3 else "USD"]
            for i in range(n)
        ]
        mapping = DELIVERY_MAPPING.replace(
            'invoiceAmount = "Amount"', 'invoiceAmount = { column = "Amount", scale = 100 }'
        )
        return (
            write_csv(tmp_path / "customers.csv", people),
            write_csv(tmp_path / "invoices.csv", invoices),
            write_mapping(tmp_path / "mapping.toml", mapping),
        )

    return make


@pytest.fixture
def upload(payor, tmp_path: Path):
    def run(server, *args, env=None, config: str = ""):
        report = tmp_path / "report.json"
        report.unlink(missing_ok=True)
        settings = write_mapping(tmp_path / "payor.toml", config)
        result = payor(
            "upload", *args, "--base-url", server.url, "--state-dir", tmp_path / "state",
            "--report-json", report, "--config", settings,
            env={**CREDENTIALS, **(env or {})},
        )  # fmt: skip
        return result, (json.loads(report.read_text()) if report.exists() else None)

    return run
