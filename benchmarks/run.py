"""payor benchmarks: one command, from a fresh clone.

    .venv/bin/python benchmarks/run.py                       # the full run (several minutes)
    .venv/bin/python benchmarks/run.py --rows 20000 --repeat 1   # a quick check
    .venv/bin/python benchmarks/run.py --only dry_run_1m naive --json bench.json

The inputs are generated deterministically (seeded; row i is the same in every file) and cached
in benchmarks/.data/ (gitignored); a missing file is generated again. Every subject runs as its
own subprocess: wall time is time.perf_counter() around the process, peak RSS is the child's
ru_maxrss from os.wait4(). Each subject runs --repeat times, round by round (A, B, C, A, B, C...),
so the subjects compared by a ratio share the same machine weather; the figures are medians.

payor runs from a venv of its own, installed as its users install it (no extras), made once
under benchmarks/.data/payor-venv. pandas (for the pyarrow_read reference) is not a dependency
of payor: it is listed in benchmarks/requirements.txt, which run.py installs once into another
venv (pyarrow would import pandas into payor's process if it were beside it).

The exit code is 0 when every subject ran (also when a target fails: this is a report), 1 when
a subject crashed or answered wrongly, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / ".data"
GENERATOR_VERSION = 1  # bump when the generated data changes: the cache lives in .data/v<N>/
SEED = 20_240_601
CHUNK = 10_000  # rows per RNG stream: row i depends on (SEED, i // CHUNK, i % CHUNK) only
CUSTOMERS = 5_000
BATCH = 500
XLSX_ROWS = 100_000
RATE_ROWS = 50_000
API_KEY, API_SECRET = "bench-key", "bench-secret"
RSS_NOISE = 0.10  # dry_run_2m may use 10 % more peak RSS than dry_run_1m and still pass

HEADER = (
    "CompanyCode",
    "ProfitCenter",
    "CustomerName",
    "CustomerNumber",
    "DocNumber",
    "InvoiceNumber",
    "PostDate",
    "DueDate",
    "Terms",
    "DocType",
    "PostingKey",
    "DC",
    "Balance",
    "Currency",
    "Amount",
    "InvoiceDate",
    "Text",
)
MAPPING_TOML = """\
# payor benchmark mapping: every column of the generated invoice files, and the customers file
[invoices.fields]
companyCode = "CompanyCode"
profitCenter = "ProfitCenter"
customerName = "CustomerName"
customerNumber = "CustomerNumber"
accountingDocNumber = "DocNumber"
invoiceNumber = "InvoiceNumber"
postDate = "PostDate"
dueDate = "DueDate"
paymentTerms = "Terms"
documentType = "DocType"
postingKey = "PostingKey"
debitCreditIndicator = "DC"
balanceAmount = "Balance"
currency = "Currency"
invoiceAmount = { column = "Amount", scale = 100 }
invoiceDate = "InvoiceDate"
itemText = "Text"

[customers.fields]
customerno = "customerno"
emailaddress1 = "emailaddress1"
companyname = "companyname"
cocode = "cocode"
"""

SUBJECTS = (
    "naive",
    "pyarrow_read",
    "dry_run_1m",
    "dry_run_2m",
    "calamine_read",
    "dry_run_xlsx",
    "upload_1m",
    "rerun_1m",
    "upload_50k",
    "upload_50k_latency",
    "rate_limited",
)
LATENCY_S = 0.05
"""The sandbox's answer delay per request in the upload_50k_latency case (a distant server)."""
PYARROW_READ = "import sys, pandas; pandas.read_csv(sys.argv[1], engine='pyarrow')"
CALAMINE_READ = (
    "import sys; from python_calamine import CalamineWorkbook; "
    "CalamineWorkbook.from_path(sys.argv[1]).get_sheet_by_index(0).to_python()"
)


class BenchError(Exception):
    """A subject crashed or answered wrongly: the run stops with exit 1."""


# --- inputs ------------------------------------------------------------------------------------

_BASE_DAY = dt.date(2023, 1, 1)
_DAYS = 800
_ISO_DAYS = [(_BASE_DAY + dt.timedelta(days=d)).isoformat() for d in range(_DAYS)]
_TERMS = (("NT14", 14), ("NT30", 30), ("NT30", 30), ("NT45", 45), ("NT60", 60))
_CURRENCIES = ("EUR", "EUR", "EUR", "USD", "GBP", "CHF")
_COMPANIES = ("1000", "1000", "2000", "3000")


def customer_number(k: int) -> str:
    return f"{k + 1:07d}"  # leading zeros, as SAP writes them


def customer_name(k: int) -> str:
    return f"Customer {k + 1:04d} GmbH"


def _cents_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def invoice_rows(start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    """Rows start..stop-1 as (cc, pc, customer, doc, invoice, post, due, terms, doctype, key,
    dc, balance cents, currency, amount cents, invoice day, text): the same for every file."""
    first_chunk, last_chunk = start // CHUNK, (stop - 1) // CHUNK
    for chunk in range(first_chunk, last_chunk + 1):
        rng = Random(SEED * 1_000_003 + chunk)
        rand, randrange = rng.random, rng.randrange
        base = chunk * CHUNK
        lo, hi = max(start, base), min(stop, base + CHUNK)
        for i in range(base, hi):
            customer = randrange(CUSTOMERS)
            day = randrange(_DAYS - 70)
            terms, term_days = _TERMS[randrange(len(_TERMS))]
            amount = randrange(100, 5_000_000)
            credit = rand() < 0.05
            if credit:
                amount = -amount
            balance = amount if rand() < 0.8 else amount // 2
            company = _COMPANIES[randrange(len(_COMPANIES))]
            currency = _CURRENCIES[randrange(len(_CURRENCIES))]
            post_lag = randrange(4)
            if i < lo:
                continue  # the stream still advances, so row i never depends on `start`
            yield (
                company,
                f"PC{customer % 40:03d}",
                customer,
                1_900_000_000 + i,
                i,
                day + post_lag,
                day + term_days,
                terms,
                "DG" if credit else "RV",
                "11" if credit else "01",
                "H" if credit else "S",
                balance,
                currency,
                amount,
                day,
                f"Order 45{i:08d} delivery {post_lag + 1}",
            )


def write_invoices_csv(path: Path, rows: int, prefix_from: Path | None = None) -> None:
    """The first `rows` rows as CSV; when `prefix_from` holds the first rows already, copy it."""
    tmp = path.with_suffix(".tmp")
    start = 0
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        if prefix_from is not None:
            with open(prefix_from, encoding="utf-8", newline="") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            start = _count_rows(prefix_from)
        else:
            out.write(",".join(HEADER) + "\n")
        lines: list[str] = []
        for r in invoice_rows(start, rows):
            cust = r[2]
            lines.append(
                f"{r[0]},{r[1]},{customer_name(cust)},{customer_number(cust)},{r[3]},"
                f"INV{r[4]:09d},{_ISO_DAYS[r[5]]},{_ISO_DAYS[r[6]]},{r[7]},{r[8]},{r[9]},{r[10]},"
                f"{_cents_text(r[11])},{r[12]},{_cents_text(r[13])},{_ISO_DAYS[r[14]]},{r[15]}\n"
            )
            if len(lines) >= CHUNK:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))
    tmp.replace(path)


def _count_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")) - 1


def write_invoices_xlsx(path: Path, rows: int) -> None:
    """The first `rows` rows as XLSX: real datetime cells for the dates, numbers for the amounts."""
    from openpyxl import Workbook

    days = [dt.datetime.combine(d, dt.time()) for d in map(dt.date.fromisoformat, _ISO_DAYS)]
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Open Items")
    ws.append(list(HEADER))
    for r in invoice_rows(0, rows):
        cust = r[2]
        ws.append(
            [
                r[0],
                r[1],
                customer_name(cust),
                customer_number(cust),
                str(r[3]),
                f"INV{r[4]:09d}",
                days[r[5]],
                days[r[6]],
                r[7],
                r[8],
                r[9],
                r[10],
                r[11] / 100,
                r[12],
                r[13] / 100,
                days[r[14]],
                r[15],
            ]
        )
    tmp = path.with_name(path.stem + ".tmp.xlsx")
    wb.save(tmp)
    tmp.replace(path)


def write_customers_csv(path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        out.write("customerno,emailaddress1,companyname,cocode\n")
        for k in range(CUSTOMERS):
            out.write(
                f"{customer_number(k)},ar{k + 1}@customer{k + 1}.example,{customer_name(k)},"
                f"{_COMPANIES[k % len(_COMPANIES)]}\n"
            )
    tmp.replace(path)


@dataclass
class Inputs:
    rows: int
    csv_1m: Path
    csv_2m: Path
    xlsx: Path
    xlsx_rows: int
    csv_rate: Path
    rate_rows: int
    customers: Path
    mapping: Path


def prepare_inputs(rows: int, needed: set[str], rate_rows: int) -> Inputs:
    """The input files the chosen subjects need, generated when missing (cached in .data/)."""
    folder = DATA / f"v{GENERATOR_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    xlsx_rows = min(XLSX_ROWS, rows)
    rate_rows = min(rate_rows, rows)
    inputs = Inputs(
        rows=rows,
        csv_1m=folder / f"invoices_{rows}.csv",
        csv_2m=folder / f"invoices_{2 * rows}.csv",
        xlsx=folder / f"invoices_{xlsx_rows}.xlsx",
        xlsx_rows=xlsx_rows,
        csv_rate=folder / f"invoices_{rate_rows}.csv",
        rate_rows=rate_rows,
        customers=folder / "customers.csv",
        mapping=folder / "mapping.toml",
    )
    if not inputs.mapping.exists() or inputs.mapping.read_text() != MAPPING_TOML:
        inputs.mapping.write_text(MAPPING_TOML)

    def make(path: Path, what: str, build: Callable[[], None]) -> None:
        if path.exists():
            return
        print(f"generating {path.relative_to(ROOT)} ({what}) ...", end=" ", flush=True)
        started = time.perf_counter()
        build()
        size = path.stat().st_size / 1e6
        print(f"{time.perf_counter() - started:.1f} s, {size:.0f} MB", flush=True)

    uses_1m = {"naive", "pyarrow_read", "dry_run_1m", "upload_1m", "rerun_1m", "dry_run_2m"}
    uploads_50k = {"rate_limited", "upload_50k", "upload_50k_latency"}
    if needed & ({"upload_1m", "rerun_1m"} | uploads_50k):
        make(
            inputs.customers,
            f"{CUSTOMERS:,} customers",
            lambda: write_customers_csv(inputs.customers),
        )
    if needed & uses_1m:
        make(inputs.csv_1m, f"{rows:,} rows", lambda: write_invoices_csv(inputs.csv_1m, rows))
    if "dry_run_2m" in needed:
        make(
            inputs.csv_2m,
            f"{2 * rows:,} rows",
            lambda: write_invoices_csv(inputs.csv_2m, 2 * rows, prefix_from=inputs.csv_1m),
        )
    if needed & {"calamine_read", "dry_run_xlsx"}:
        make(
            inputs.xlsx, f"{xlsx_rows:,} rows", lambda: write_invoices_xlsx(inputs.xlsx, xlsx_rows)
        )
    if needed & uploads_50k:
        make(
            inputs.csv_rate,
            f"the first {rate_rows:,} rows",
            lambda: write_invoices_csv(inputs.csv_rate, rate_rows),
        )
    return inputs


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    rss_kb: int
    cpu_s: float
    exit_code: int
    log: Path


@dataclass
class Figures:
    """What one subject measured over the repetitions."""

    seconds: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)

    def add(self, run: Run) -> None:
        self.seconds.append(run.seconds)
        self.rss_kb.append(run.rss_kb)
        self.cpu_s.append(run.cpu_s)

    def note(self, name: str, value: float) -> None:
        self.extra.setdefault(name, []).append(value)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_rss_mb(self) -> float:
        return statistics.median(self.rss_kb) / 1024

    def median(self, name: str) -> float:
        return statistics.median(self.extra[name])


def measure(argv: list[str], log: Path, env: dict[str, str], cwd: Path) -> Run:
    """Run argv as a child: wall time around it, its peak RSS and CPU time from os.wait4."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait
    return Run(
        seconds,
        usage.ru_maxrss,
        usage.ru_utime + usage.ru_stime,
        proc.returncode,
        log,
    )


def check(run: Run, what: str) -> Run:
    if run.exit_code != 0:
        tail = run.log.read_text(errors="replace").strip().splitlines()[-15:]
        raise BenchError(
            f"{what} exited with {run.exit_code} (log {run.log}):\n    " + "\n    ".join(tail)
        )
    return run


def clean_env(work: Path) -> dict[str, str]:
    """The environment of every child: no PAYOR_* settings or user config from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")}
    env["XDG_CONFIG_HOME"] = str(work / "xdg-config")
    env["XDG_STATE_HOME"] = str(work / "xdg-state")
    env["PAYOR_API_KEY"], env["PAYOR_API_SECRET"] = API_KEY, API_SECRET
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_ticks(pid: int) -> float:
    """utime + stime of a running process, in seconds (from /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SandboxProc:
    """`payor sandbox` as a child process, stopped with SIGINT (it stops serving cleanly)."""

    def __init__(self, payor: list[str], db: Path, log: Path, env: dict[str, str], *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        argv = [*payor, "sandbox", "--port", str(self.port), "--db", str(db), *extra]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT, env=env
        )
        self.rss_kb = 0
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                self._out.close()
                raise BenchError(f"the sandbox exited at start (log {log})")
            try:
                self.stats()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise BenchError(f"the sandbox did not answer in 30 s (log {log})") from None
                time.sleep(0.05)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/sandbox/stats", timeout=10) as answer:
            return json.loads(answer.read())

    def cpu_s(self) -> float:
        return _cpu_ticks(self.proc.pid)

    def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 15
            while True:
                pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
                if pid:
                    self.proc.returncode = os.waitstatus_to_exitcode(status)
                    self.rss_kb = usage.ru_maxrss
                    break
                if time.monotonic() > deadline:
                    self.proc.kill()
                    _, status, usage = os.wait4(self.proc.pid, 0)
                    self.proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                time.sleep(0.05)
        self._out.close()


class RequestWatch:
    """Polls a sandbox's /sandbox/stats while a child runs: when the first and last request came.

    Times are seconds after start(); `first` is when the request counter first moved, `last` when
    it last moved (both up to one poll interval late)."""

    def __init__(self, sandbox: SandboxProc, interval: float) -> None:
        self.sandbox, self.interval = sandbox, interval
        self.first: float | None = None
        self.last: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> RequestWatch:
        self._base = self.sandbox.stats()["requests"]
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def _poll(self) -> None:
        seen = self._base
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError, ValueError):
                count = self.sandbox.stats()["requests"]
                if count != seen:
                    now = time.perf_counter() - self._t0
                    if self.first is None:
                        self.first = now
                    self.last, seen = now, count

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Bench:
    inputs: Inputs
    work: Path
    selected: list[str]
    rate_limit: int
    rate_window: float
    keep: bool = False
    figures: dict[str, Figures] = field(default_factory=dict)
    sandbox_rss_kb: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = clean_env(self.work)
        self.python = payor_python()
        self.payor = [str(Path(self.python).with_name("payor"))]
        self.figures = {name: Figures() for name in self.selected}
        self._counter = 0

    def fresh_dir(self, name: str) -> Path:
        self._counter += 1
        path = self.work / f"{self._counter:03d}-{name}"
        path.mkdir(parents=True)
        return path

    def run(self, name: str, argv: list[str], cwd: Path) -> Run:
        return check(measure(argv, cwd / f"{name}.log", self.env, cwd), name)

    def dry_run(self, path: Path) -> list[str]:
        mapping = str(self.inputs.mapping)
        return [*self.payor, "upload", "invoices", str(path), "--mapping", mapping]

    # one repetition of each subject ------------------------------------------------------------
    def round(self) -> None:
        i = self.inputs
        simple = {
            "naive": [self.python, str(HERE / "naive_loop.py"), str(i.csv_1m)],
            "pyarrow_read": [pandas_python(), "-c", PYARROW_READ, str(i.csv_1m)],
            "dry_run_1m": [*self.dry_run(i.csv_1m), "--dry-run", "--quiet"],
            "dry_run_2m": [*self.dry_run(i.csv_2m), "--dry-run", "--quiet"],
            "calamine_read": [self.python, "-c", CALAMINE_READ, str(i.xlsx)],
            "dry_run_xlsx": [*self.dry_run(i.xlsx), "--dry-run", "--quiet"],
        }
        for name, argv in simple.items():
            if name in self.figures:
                self.figures[name].add(self.run(name, argv, self.fresh_dir(name)))
                self._progress(name)
        if "upload_1m" in self.figures or "rerun_1m" in self.figures:
            self.upload_round()
        for name, flags in (
            ("upload_50k", []),
            ("upload_50k_latency", ["--latency", f"{LATENCY_S:g}"]),
        ):
            if name in self.figures:
                self.upload_50k_round(name, flags)
        if "rate_limited" in self.figures:
            self.rate_limited_round()

    def _progress(self, name: str) -> None:
        f = self.figures[name]
        print(f"  {name:<14} {f.seconds[-1]:8.2f} s {f.rss_kb[-1] / 1024:8.1f} MB", flush=True)

    def upload(self, kind: str, path: Path, url: str, state: Path, report: Path) -> list[str]:
        return [
            *self.payor,
            "upload",
            kind,
            str(path),
            "--mapping",
            str(self.inputs.mapping),
            "--base-url",
            url,
            "--state-dir",
            str(state),
            "--quiet",
            "--report-json",
            str(report),
        ]

    def load_customers(self, sandbox: SandboxProc, where: Path) -> None:
        argv = self.upload(
            "customers", self.inputs.customers, sandbox.url, where / "state", where / "c.json"
        )
        check(measure(argv, where / "customers.log", self.env, where), "customers upload")
        stored = json.loads((where / "c.json").read_text())["rows_accepted"]
        if stored != CUSTOMERS:
            raise BenchError(f"customers upload accepted {stored} of {CUSTOMERS} rows")

    def upload_round(self) -> None:
        where = self.fresh_dir("upload")
        sandbox = SandboxProc(self.payor, where / "sandbox.sqlite", where / "sandbox.log", self.env)
        try:
            self.load_customers(sandbox, where)  # untimed; the same state dir as the invoices
            state, rows = where / "state", self.inputs.rows
            argv = self.upload(
                "invoices", self.inputs.csv_1m, sandbox.url, state, where / "r1.json"
            )
            before, cpu_before = sandbox.stats(), sandbox.cpu_s()
            watch = RequestWatch(sandbox, 0.1).start()
            try:
                run = self.run("upload_1m", argv, where)
            finally:
                watch.stop()
            after, cpu_after = sandbox.stats(), sandbox.cpu_s()
            report = json.loads((where / "r1.json").read_text())
            requests = after["requests"] - before["requests"]
            received = after["rows_received"] - before["rows_received"]
            if report["rows_accepted"] != rows or received < rows:
                raise BenchError(
                    f"upload_1m: {report['rows_accepted']} rows accepted, {received} received, "
                    f"of {rows} (log {run.log})"
                )
            if "upload_1m" in self.figures:
                f = self.figures["upload_1m"]
                f.add(run)
                f.note("requests", requests)
                f.note("sandbox_cpu_s", cpu_after - cpu_before)
                f.note("first_request_s", watch.first if watch.first is not None else math.nan)
                self._progress("upload_1m")

            argv = self.upload(
                "invoices", self.inputs.csv_1m, sandbox.url, state, where / "r2.json"
            )
            before = sandbox.stats()
            run = self.run("rerun_1m", argv, where)
            after = sandbox.stats()
            report = json.loads((where / "r2.json").read_text())
            if "rerun_1m" in self.figures:
                f = self.figures["rerun_1m"]
                f.add(run)
                f.note("requests_sandbox", after["requests"] - before["requests"])
                f.note("requests_report", report["requests"])
                f.note("rows_unchanged", report["rows_unchanged"])
                self._progress("rerun_1m")
        finally:
            sandbox.stop()
            self.sandbox_rss_kb.append(sandbox.rss_kb)
        self.discard(where)

    def discard(self, where: Path) -> None:
        """A finished round's databases are large (0.6 GB at 1M rows): gone unless --keep."""
        if not self.keep:
            shutil.rmtree(where, ignore_errors=True)

    def sandbox_with_customers(self, where: Path, *flags: str) -> SandboxProc:
        """A sandbox (with `flags`) whose database already holds the customers."""
        db = where / "sandbox.sqlite"
        loader = SandboxProc(self.payor, db, where / "sandbox-loader.log", self.env)
        try:
            self.load_customers(loader, where)  # untimed, on a sandbox without limits
        finally:
            loader.stop()
        return SandboxProc(self.payor, db, where / "sandbox.log", self.env, *flags)

    def upload_50k_round(self, name: str, flags: list[str]) -> None:
        where = self.fresh_dir(name)
        sandbox = self.sandbox_with_customers(where, *flags)
        try:
            argv = self.upload(
                "invoices", self.inputs.csv_rate, sandbox.url, where / "state-inv", where / "r.json"
            )
            run = self.run(name, argv, where)
            stats = sandbox.stats()
        finally:
            sandbox.stop()
        report = json.loads((where / "r.json").read_text())
        if report["rows_accepted"] != self.inputs.rate_rows:
            raise BenchError(f"{name}: {report['rows_accepted']} of {self.inputs.rate_rows} rows")
        f = self.figures[name]
        f.add(run)
        f.note("requests", report["requests"])
        f.note("in_flight_max", stats.get("in_flight_max", math.nan))
        self._progress(name)
        self.discard(where)

    def rate_limited_round(self) -> None:
        where = self.fresh_dir("rate")
        limits = ["--rate-limit", str(self.rate_limit), "--rate-window", f"{self.rate_window:g}"]
        sandbox = self.sandbox_with_customers(where, *limits)
        try:
            argv = self.upload(
                "invoices", self.inputs.csv_rate, sandbox.url, where / "state-inv", where / "r.json"
            )
            watch = RequestWatch(sandbox, 0.02).start()
            try:
                run = self.run("rate_limited", argv, where)
            finally:
                watch.stop()
            stats = sandbox.stats()
        finally:
            sandbox.stop()
        report = json.loads((where / "r.json").read_text())
        if report["rows_accepted"] != self.inputs.rate_rows:
            raise BenchError(
                f"rate_limited: {report['rows_accepted']} of {self.inputs.rate_rows} rows accepted"
            )
        f = self.figures["rate_limited"]
        f.add(run)
        f.note("requests", stats["requests"])
        f.note("accepted_requests", stats["by_status"].get("200", 0))
        f.note("status_429", stats["by_status"].get("429", 0))
        f.note("first_request_s", watch.first if watch.first is not None else math.nan)
        f.note("last_request_s", watch.last if watch.last is not None else math.nan)
        f.note("first_phase_s", stats.get("first_quota_phase_s", 0.0))
        self._progress("rate_limited")
        self.discard(where)


# --- report ------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    measured: float
    limit: float
    ok: bool
    note: str = ""


def targets(bench: Bench) -> list[Target]:
    fig = bench.figures
    out: list[Target] = []

    def ratio(a: str, b: str, limit: float, label: str) -> None:
        if a in fig and b in fig:
            value = fig[a].median_s / fig[b].median_s
            out.append(Target(label, value, limit, value <= limit))

    ratio("dry_run_1m", "naive", 0.5, "dry_run_1m time / naive")
    ratio("dry_run_1m", "pyarrow_read", 1.5, "dry_run_1m time / pyarrow_read")
    if "dry_run_1m" in fig:
        rss = fig["dry_run_1m"].median_rss_mb
        out.append(Target("dry_run_1m peak RSS MB", rss, 400, rss <= 400))
    if "dry_run_1m" in fig and "dry_run_2m" in fig:
        value = fig["dry_run_2m"].median_rss_mb / fig["dry_run_1m"].median_rss_mb
        limit = 1 + RSS_NOISE
        out.append(
            Target("dry_run_2m / dry_run_1m peak RSS", value, limit, value <= limit, "10% noise")
        )
    ratio("dry_run_xlsx", "calamine_read", 1.0, "dry_run_xlsx time / calamine_read")
    ratio("upload_1m", "dry_run_1m", 2.0, "upload_1m time / dry_run_1m")
    ratio(
        "upload_50k_latency",
        "upload_50k",
        1.25,
        f"upload_50k, {1000 * LATENCY_S:g} ms latency / none",
    )
    if "rerun_1m" in fig:
        f = fig["rerun_1m"]
        requests = max(max(f.extra["requests_sandbox"]), max(f.extra["requests_report"]))
        out.append(Target("rerun_1m requests", requests, 0, requests == 0))
    ratio("rerun_1m", "dry_run_1m", 1.15, "rerun_1m time / dry_run_1m")
    if "rate_limited" in fig:
        f = fig["rate_limited"]
        k = math.ceil(bench.inputs.rate_rows / BATCH)
        windows = math.ceil(k / bench.rate_limit)
        # the least time the quota allows the run: until its first request (start-up, as for
        # any run), then the rest of that window and the windows after it, until the last
        # window begins (its requests go at once)
        minima = [
            first + (windows - 1) * bench.rate_window - phase
            for first, phase in zip(
                f.extra["first_request_s"], f.extra["first_phase_s"], strict=True
            )
        ]
        if windows > 1:
            value = statistics.median(s / m for s, m in zip(f.seconds, minima, strict=True))
            note = f"{k} requests, minimum {statistics.median(minima):.2f} s"
            out.append(Target("rate_limited time / minimum", value, 1.1, value <= 1.1, note))
        per_window = max(f.extra["status_429"]) / windows
        note = f"{max(f.extra['status_429']):g} x 429 in {windows} windows"
        out.append(Target("rate_limited 429s per window", per_window, 1.0, per_window <= 1.0, note))
    return out


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        model = next((ln.split(":", 1)[1].strip() for ln in handle if "model name" in ln), "")
    mem_gb = 0.0
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as handle:
        mem_gb = int(handle.readline().split()[1]) / 1024 / 1024
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if changed:
            commit += " + uncommitted changes"
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
    }


def report(bench: Bench, args: argparse.Namespace, command: str, info: dict[str, Any]) -> None:
    i = bench.inputs
    print()
    print(f"reproduce: {command}")
    print(
        f"machine:   {info['cores']} cores ({info['usable_cores']} usable) {info['cpu']}, "
        f"{info['memory_gb']} GB, Python {info['python']}, {info['platform']}"
        + (f", commit {info['commit']}" if info["commit"] else "")
    )
    print(
        f"inputs:    {i.rows:,} rows (2M file: {2 * i.rows:,}; xlsx: {i.xlsx_rows:,}; "
        f"rate-limited: {i.rate_rows:,} at --rate-limit {bench.rate_limit} "
        f"--rate-window {bench.rate_window:g}); repeat {args.repeat}, medians"
    )
    print()
    print(f"{'subject':<16} {'median s':>9} {'peak RSS MB':>12} {'cpu s':>8}   runs s")
    for name, f in bench.figures.items():
        runs = " ".join(f"{s:.2f}" for s in f.seconds)
        cpu = statistics.median(f.cpu_s)
        print(f"{name:<16} {f.median_s:9.2f} {f.median_rss_mb:12.1f} {cpu:8.2f}   {runs}")
    print()
    print(f"{'target':<40} {'measured':>9} {'limit':>7}   ok")
    for t in targets(bench):
        note = f"   ({t.note})" if t.note else ""
        print(f"{t.name:<40} {t.measured:9.2f} {t.limit:7.2f}   {'PASS' if t.ok else 'FAIL'}{note}")
    details = details_lines(bench)
    if details:
        print()
        for line in details:
            print(line)


def details_lines(bench: Bench) -> list[str]:
    fig, lines = bench.figures, []
    if "upload_1m" in fig:
        f = fig["upload_1m"]
        requests = f.median("requests")
        wall, client, server = f.median_s, statistics.median(f.cpu_s), f.median("sandbox_cpu_s")
        lines.append(
            f"upload_1m: {requests:.0f} requests, {1000 * wall / requests:.1f} ms wall per request; "
            f"CPU client {client:.1f} s + sandbox {server:.1f} s"
            f" = {client + server:.1f} s on {os.cpu_count()} cores in {wall:.1f} s wall; "
            f"first request after {f.median('first_request_s'):.1f} s"
        )
    if bench.sandbox_rss_kb:
        lines.append(f"sandbox peak RSS: {statistics.median(bench.sandbox_rss_kb) / 1024:.1f} MB")
    if "rerun_1m" in fig:
        f = fig["rerun_1m"]
        lines.append(
            f"rerun_1m: rows_unchanged {f.median('rows_unchanged'):,.0f}, requests "
            f"(report / sandbox) {max(f.extra['requests_report']):g} / "
            f"{max(f.extra['requests_sandbox']):g}"
        )
    for name in ("upload_50k", "upload_50k_latency"):
        if name in fig:
            f = fig[name]
            lines.append(
                f"{name}: {f.median('requests'):.0f} requests, at most "
                f"{max(f.extra['in_flight_max']):g} in flight at once (the sandbox's count)"
            )
    if "rate_limited" in fig:
        f = fig["rate_limited"]
        first, last = f.median("first_request_s"), f.median("last_request_s")
        lines.append(
            f"rate_limited: requests {' '.join(f'{v:g}' for v in f.extra['requests'])}, "
            f"429s {' '.join(f'{v:g}' for v in f.extra['status_429'])}; first request after "
            f"{first:.2f} s, last after {last:.2f} s (span {last - first:.2f} s), "
            f"process exit after {f.median_s:.2f} s"
        )
    return lines


def write_json(
    path: Path, bench: Bench, args: argparse.Namespace, command: str, info: dict[str, Any]
) -> None:
    i = bench.inputs
    data = {
        "command": command,
        "machine": info,
        "rows": i.rows,
        "rows_2m": 2 * i.rows,
        "xlsx_rows": i.xlsx_rows,
        "rate_rows": i.rate_rows,
        "rate_limit": bench.rate_limit,
        "rate_window": bench.rate_window,
        "repeat": args.repeat,
        "subjects": {
            name: {
                "median_s": f.median_s,
                "median_peak_rss_mb": f.median_rss_mb,
                "seconds": f.seconds,
                "peak_rss_kb": f.rss_kb,
                "cpu_s": f.cpu_s,
                **f.extra,
            }
            for name, f in bench.figures.items()
        },
        "sandbox_peak_rss_kb": bench.sandbox_rss_kb,
        "targets": [t.__dict__ for t in targets(bench)],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


# --- main --------------------------------------------------------------------------------------


PANDAS_VENV = DATA / "pandas-venv"


PAYOR_VENV = DATA / "payor-venv"


def payor_python() -> str:
    """A Python with payor installed as its users install it (`pip install payor`, no extras),
    in a venv of its own, editable so it runs this very tree; made again when pyproject.toml
    changes. The development venv has pandas (for the Python API's tests), which pyarrow
    imports at its first array whenever it is installed beside it (0.16 s, 40 MB a run)."""
    python = PAYOR_VENV / "bin" / "python"
    marker = PAYOR_VENV / "pyproject.toml"
    wanted = (ROOT / "pyproject.toml").read_text()
    if not python.exists() or not marker.exists() or marker.read_text() != wanted:
        print(f"making {PAYOR_VENV} with payor, no extras (once)", flush=True)
        shutil.rmtree(PAYOR_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(PAYOR_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(ROOT)], check=True)
        marker.write_text(wanted)
    return str(python)


def pandas_python() -> str:
    """A Python with pandas for the pyarrow_read reference, in a venv of its own.

    payor does not depend on pandas, and pyarrow imports pandas (0.3 s) on its first
    pa.array() call whenever pandas is installed beside it: installing pandas into payor's
    venv would charge payor for a library its users do not have.
    """
    python = PANDAS_VENV / "bin" / "python"
    if not python.exists():
        requirements = HERE / "requirements.txt"
        print(f"making {PANDAS_VENV} with {requirements.relative_to(ROOT)} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PANDAS_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True
        )
    return str(python)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the 1M file")
    parser.add_argument("--repeat", type=int, default=3, help="runs per subject (medians)")
    parser.add_argument(
        "--only", nargs="+", choices=SUBJECTS, metavar="NAME", help=", ".join(SUBJECTS)
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--rate-rows", type=int, default=RATE_ROWS, help="rows of the rate-limited upload"
    )
    parser.add_argument("--rate-limit", type=int, default=10, help="sandbox requests per window")
    parser.add_argument("--rate-window", type=float, default=1.0, help="sandbox window, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, DBs)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1 or args.rate_rows < 1 or args.rate_limit < 1:
        parser.error("--rows, --repeat, --rate-rows and --rate-limit must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Children inherit an ignored SIGINT (a background job of a non-interactive shell), and the
    # sandboxes are stopped with SIGINT: a handled signal is reset to the default on exec.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    selected = [s for s in SUBJECTS if not args.only or s in args.only]
    shown = " ".join(sys.argv[1:] if argv is None else argv)
    command = f".venv/bin/python benchmarks/run.py{' ' + shown if shown else ''}"
    info = machine()
    inputs = prepare_inputs(args.rows, set(selected), args.rate_rows)
    work = Path(tempfile.mkdtemp(prefix="payor-bench-"))
    bench = Bench(inputs, work, selected, args.rate_limit, args.rate_window, args.keep)
    try:
        for n in range(args.repeat):
            print(f"round {n + 1} of {args.repeat}", flush=True)
            bench.round()
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        print(f"work dir kept: {work}", file=sys.stderr)
        return 1
    report(bench, args, command, info)
    if args.json:
        write_json(args.json, bench, args, command, info)
        print(f"\nfigures written to {args.json}")
    if args.keep:
        print(f"work dir kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
