"""Shared helpers: run the real CLI (in this process, or as a real process where the process
matters), write real input files, start a sandbox server.

Running the CLI: `run_payor` and the `payor` fixture (and `dry_run`, `upload`,
`upload_one_export`, which use it) run `payor ARGS` as `payor_cli.cli.main(ARGS)` in this
process, through click's CliRunner isolation (typer's CliRunner is click's): standard output and
error apart, the environment the subprocess had (none of the developer's PAYOR_* variables, a
HOME and XDG folders in the test's folder, COLUMNS=200, then the test's `env`), the test's
folder as the working directory, `input=` as standard input. `main`, not `app`, is what the
`payor` command runs: it turns click's usage errors into payor's one-line errors.
As in a fresh process, a run starts with no secret in the scrubber (`payor_cli.errors.SECRETS`)
and no copy of standard input (`payor_cli.readers.spool`); its warnings, its log records and
what native code writes to file descriptors 1 and 2 are its output; its non-daemon threads are
waited for. Afterwards what the run changed for the process is put back (the SIGINT, SIGTERM
and SIGHUP handlers, the logging handlers, those registries), so no run shows in another.

Exit codes: the test asserts the code it expects (`assert run.code == 1, run.text`), as the
contract gives each code its own meaning. The helper fails the test when
- an exception escapes the CLI (not SystemExit): it is raised with its traceback, never read
  as an exit code; the same for an exception in a thread the run started;
- the CLI exits with something that is not one of the contract's exit codes (0-4), in this
  process or as a process (a crash, a signal);
- a run's `.code` was never looked at by the end of the test (every run's code is checked).

A real process (`python -m payor_cli`) where the process matters: `run_payor(..., process=True)`,
`payor(..., process=True)`, or `@pytest.mark.process("why")` on a test or a module, which makes
every run of its `payor`, `dry_run`, `upload` and `upload_one_export` a subprocess. For: signals
and kills, a lock held by another process, real pipes and terminals, the exit status a shell
sees, `python -m payor_cli` itself, what importing costs at start-up.
"""

from __future__ import annotations

import csv
import faulthandler
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"  # copies of ../shared/data, as they are, so CI needs no more
SAMPLES = ROOT / "sample_data"
EXIT_CODES = range(5)
"""The contract's exit codes: 0 ok, 1 rows rejected, 2 usage, 3 aborted, 4 locked."""
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "process(why): run the CLI of this test as a real process (see conftest)"
    )


class Run:
    """What one run of the CLI did: its exit code, standard output and standard error."""

    def __init__(self, code: int, out: str, err: str, args: tuple[str, ...] = ()) -> None:
        self._code = code
        self.out = out
        self.err = err
        self.args = args
        self.checked = False
        """Whether the test looked at the exit code."""

    @property
    def code(self) -> int:
        self.checked = True
        return self._code

    @property
    def text(self) -> str:
        return self.out + self.err

    def __repr__(self) -> str:
        return f"Run(payor {' '.join(self.args)} -> {self._code})"


def _environment(cwd: Path, env: dict[str, str] | None) -> dict[str, str]:
    """The variables a run gets besides the developer's (without their PAYOR_* ones). The
    runtime dir holds the per-account locks: a test's own, so that tests running side by side
    against the same (fake) account do not hold each other out."""
    runtime = cwd.with_name(cwd.name + "-run")  # beside the test's folder: not among its files
    runtime.mkdir(mode=0o700, exist_ok=True)
    given = {
        "HOME": str(cwd),
        "XDG_CONFIG_HOME": str(cwd / ".config"),
        "XDG_STATE_HOME": str(cwd / ".state"),
        "XDG_RUNTIME_DIR": str(runtime),
        "COLUMNS": "200",
    }
    return given | (env or {})


def run_payor(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    input: str | bytes | None = None,
    process: bool = False,
) -> Run:
    """Run `payor ARGS` in `cwd`, with a clean environment and no config around: in this
    process, or with `process=True` as `python -m payor_cli`."""
    argv = tuple(map(str, args))
    if process:
        return _run_process(argv, cwd, env, timeout, input)
    return _run_in_process(argv, cwd, env, timeout, input)


def _run_process(argv, cwd: Path, env, timeout: float, input) -> Run:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")}
    proc = subprocess.run(
        [sys.executable, "-m", "payor_cli", *argv],
        cwd=cwd,
        env=base | _environment(cwd, env),
        input=input.encode() if isinstance(input, str) else input,
        capture_output=True,
        timeout=timeout,
    )
    out, err = proc.stdout.decode(), proc.stderr.decode()
    if proc.returncode not in EXIT_CODES:  # a crash, a signal: never an outcome of the contract
        raise AssertionError(f"payor {' '.join(argv)} exited {proc.returncode}\n{err}")
    return Run(proc.returncode, out, err, argv)


PYTHON_WARNINGS = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)
"""The warning filters a Python process starts with (the warnings module's documentation)."""


def _warn_on_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextmanager
def as_a_process(cwd: Path, timeout: float) -> Iterator[list[threading.ExceptHookArgs]]:
    """What a fresh `payor` process would have, for one run in this process, and everything
    the run changes for the process put back afterwards. Yields the exceptions raised in the
    run's threads."""
    from payor_cli.errors import SECRETS
    from payor_cli.read import spool

    handlers = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    root = logging.getLogger()
    logged = (root.handlers[:], root.level)
    secrets = SECRETS.secrets
    spooled = dict(spool._SPOOLED)
    thread_errors: list[threading.ExceptHookArgs] = []
    hook = threading.excepthook
    here = os.getcwd()
    # a run that hangs ends the test run loudly, with every thread's stack, as the
    # subprocess's timeout did (on the standard error of before the run)
    shown_on = os.dup(2)
    faulthandler.dump_traceback_later(timeout, exit=True, file=shown_on)
    try:
        with warnings.catch_warnings():
            # warnings and log records reach the run's standard error, as in a process
            # (pytest would otherwise collect them, and a test could not see them)
            warnings.resetwarnings()
            for action, category, module in reversed(PYTHON_WARNINGS):
                warnings.filterwarnings(action, category=category, module=module)
            warnings.showwarning = _warn_on_stderr
            root.handlers[:], root.level = [], logging.WARNING  # logging's last resort: stderr
            threading.excepthook = thread_errors.append
            # a process starts with no secret to scrub and no copy of its standard input: what
            # an earlier run left must neither hide this run's leaks nor feed it old input
            SECRETS.__init__()  # the one object every module imported: emptied in place
            spool._SPOOLED.clear()
            os.chdir(cwd)
            yield thread_errors
    finally:
        faulthandler.cancel_dump_traceback_later()
        os.close(shown_on)
        os.chdir(here)
        threading.excepthook = hook
        for number, handler in handlers.items():
            signal.signal(number, handler)
        root.handlers[:], root.level = logged
        SECRETS.__init__(secrets)
        spool._SPOOLED.clear()
        spool._SPOOLED.update(spooled)


def fail_on_thread_errors(command: str, errors: list[threading.ExceptHookArgs]) -> None:
    """An exception that ended a thread of the run fails the test, with its traceback."""
    if errors:
        shown = "".join(
            line
            for error in errors
            for line in traceback.format_exception(
                error.exc_type, error.exc_value, error.exc_traceback
            )
        )
        raise AssertionError(f"{command}: an exception in one of its threads:\n{shown}")


@contextmanager
def _native_output() -> Iterator[list[str]]:
    """What native code (calamine, Arrow) writes straight to file descriptors 1 and 2 during a
    run: in a process it is the run's output too. Yields [stdout, stderr], filled at the end."""
    found = ["", ""]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.__stdout__.flush()
        sys.__stderr__.flush()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            yield found
        finally:
            for fd, (copy, file) in enumerate(zip(saved, (out, err), strict=True), start=1):
                os.dup2(copy, fd)
                os.close(copy)
                file.seek(0)
                found[fd - 1] = file.read().decode(errors="replace")


def _run_in_process(argv, cwd: Path, env, timeout: float, input) -> Run:
    from payor_cli import cli

    # the developer's PAYOR_* variables are taken away, as the subprocess never had them
    overrides = {k: None for k in os.environ if k.startswith("PAYOR_")}
    overrides |= _environment(cwd, env)
    before = set(threading.enumerate())
    with (
        as_a_process(cwd, timeout) as thread_errors,
        _native_output() as native,
        CliRunner().isolation(input=input, env=overrides) as (out, err, _),
    ):
        try:
            cli.main(list(argv))
        except SystemExit as ended:
            code = ended.code
        else:
            raise AssertionError("payor_cli.cli.main returned without exiting")
        finally:
            # what the interpreter does before a process ends: wait for its threads
            for thread in set(threading.enumerate()) - before:
                if not thread.daemon:
                    thread.join(timeout)
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    stdout, stderr = stdout + native[0], stderr + native[1]
    command = f"payor {' '.join(argv)}"
    fail_on_thread_errors(command, thread_errors)
    code = 0 if code is None else code
    if not isinstance(code, int) or code not in EXIT_CODES:
        raise AssertionError(f"{command} exited {code!r}, not an exit code of payor\n{stderr}")
    return Run(int(code), stdout, stderr, argv)  # a number, as a process's exit status is


@pytest.fixture
def payor(tmp_path: Path, request: pytest.FixtureRequest):
    """`payor ARGS` run in the test's folder; a real process in a test marked `process`."""
    as_process = request.node.get_closest_marker("process") is not None
    runs: list[Run] = []

    def run(
        *args: str | Path,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        input: str | bytes | None = None,
        process: bool | None = None,
    ) -> Run:
        result = run_payor(
            *args, cwd=tmp_path, env=env, timeout=timeout, input=input,
            process=as_process if process is None else process,
        )  # fmt: skip
        runs.append(result)
        return result

    yield run
    unchecked = [r for r in runs if not r.checked]
    if unchecked and getattr(request.node, "call_passed", False):
        pytest.fail(f"the test never checked the exit code of {unchecked}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.call_passed = report.passed
    return report


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


# --- a real sandbox server: in this process, or as its own -----------------------------------

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


def sandbox_in_process(directory: Path, *flags: str):
    """What `payor sandbox FLAGS` serves, in this process (a started Sandbox, with
    CREDENTIALS, on a free port): the flags read by the command's own parser, the server set up
    by what the command calls (run.serve.open_sandbox)."""
    from typer.main import get_command

    from payor_cli import cli
    from payor_cli.options import SandboxOptions
    from payor_cli.run.serve import open_sandbox

    with get_command(cli.app).commands["sandbox"].make_context("sandbox", list(flags)) as ctx:
        given = dict(ctx.params)
    given["port"] = 0
    given["db"] = given["db"] or directory / f"sandbox-{free_port()}.sqlite"
    kept = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(
            {k: v for k, v in kept.items() if not k.startswith("PAYOR_")} | CREDENTIALS
        )
        started = open_sandbox(SandboxOptions(**given), log=lambda line: None, warn=print)
    finally:
        os.environ.clear()
        os.environ.update(kept)
    return started.server.start()


@pytest.fixture
def sandbox_server(tmp_path: Path):
    """Start a sandbox as `payor sandbox FLAGS` would: in this process, or with process=True as
    that command in its own process (for a test that kills the server)."""
    started: list = []

    def start(*flags: str, process: bool = False):
        if process:
            server = SandboxProcess(tmp_path, *flags)
        else:
            server = sandbox_in_process(tmp_path, *flags)
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
