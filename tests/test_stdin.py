"""Input that can be read only once: `-` (standard input), a FIFO, /dev/stdin on a pipe. Each is
read once into a private copy, so the readers may open it as often as they need; reports and
messages name standard input `<stdin>`. Real processes, real pipes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from conftest import (
    CREDENTIALS,
    CUSTOMER_MAPPING,
    INVOICE_MAPPING,
    read_jsonl,
    write_mapping,
    write_xlsx,
)

CSV = b"No,Email,Name\r\nC1,a@x.example,Alpha\r\nC2,b@x.example,Beta\r\n"


def piped(tmp_path: Path, data: bytes | None, *args: object, timeout: float = 60):
    """`payor ARGS` as a real process with `data` piped into its standard input."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")}
    env |= {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / ".state"), "COLUMNS": "200"}
    env |= CREDENTIALS
    return subprocess.run(
        [sys.executable, "-m", "payor_cli", *map(str, args)],
        input=data,
        stdin=None if data is not None else subprocess.DEVNULL,
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=timeout,
    )


def text(run: subprocess.CompletedProcess) -> str:
    return (run.stdout + run.stderr).decode("utf-8", "replace")


def test_a_csv_piped_into_dash_is_read_and_named_stdin(tmp_path):
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)
    run = piped(
        tmp_path, CSV, "upload", "customers", "-", "--mapping", mapping, "--dry-run",
        "--payloads", tmp_path / "payloads.jsonl", "--report-json", tmp_path / "report.json",
    )  # fmt: skip
    assert run.returncode == 0, text(run)
    assert [p["customerno"] for p in read_jsonl(tmp_path / "payloads.jsonl")] == ["C1", "C2"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["file"] == "<stdin>"
    assert report["rows_valid"] == 2
    assert "checking <stdin> (csv" in text(run)


def test_upload_all_reads_standard_input_once_for_both_kinds(tmp_path):
    data = (
        b"No,Email,Name,Invoice,Amount\n"
        b"C1,a@x.example,Alpha,I1,10\nC2,b@x.example,Beta,I2,20\nC2,b@x.example,Beta,I3,30\n"
    )
    mapping = write_mapping(
        tmp_path / "mapping.toml",
        CUSTOMER_MAPPING + INVOICE_MAPPING.replace('"Customer"', '"No"'),
    )
    run = piped(
        tmp_path, data, "upload", "all", "--customers", "-", "--invoices", "-", "--mapping",
        mapping, "--dry-run", "--report-json", tmp_path / "report.json",
    )  # fmt: skip
    assert run.returncode == 0, text(run)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["customers"]["file"] == report["invoices"]["file"] == "<stdin>"
    assert report["customers"]["rows_read"] == 3 and report["customers"]["rows_merged"] == 1
    assert report["invoices"]["rows_valid"] == 3


def test_a_real_upload_from_standard_input_stores_the_rows(tmp_path, sandbox_server):
    server = sandbox_server()
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)
    run = piped(
        tmp_path, CSV, "upload", "customers", "-", "--mapping", mapping, "--base-url",
        server.url, "--state-dir", tmp_path / "state",
    )  # fmt: skip
    assert run.returncode == 0, text(run)
    assert sorted(r["customerno"] for r in server.records("customers")) == ["C1", "C2"]


def test_a_workbook_piped_in_is_read(tmp_path):
    book = write_xlsx(
        tmp_path / "book.xlsx", [["No", "Email", "Name"], ["C7", "c@x.example", "Gamma"]]
    )
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)
    run = piped(
        tmp_path, book.read_bytes(), "upload", "customers", "-", "--mapping", mapping,
        "--dry-run", "--payloads", tmp_path / "payloads.jsonl",
    )  # fmt: skip
    assert run.returncode == 0, text(run)
    assert read_jsonl(tmp_path / "payloads.jsonl")[0]["customerno"] == "C7"


def test_a_fifo_is_read_once_not_waited_on_forever(tmp_path):
    fifo = tmp_path / "export.csv"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as writer:  # blocks until payor opens the FIFO
            writer.write(CSV)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)
    run = piped(
        tmp_path, None, "upload", "customers", fifo, "--mapping", mapping, "--dry-run",
        "--payloads", tmp_path / "payloads.jsonl", timeout=60,
    )  # fmt: skip
    writer.join(5)
    assert run.returncode == 0, text(run)
    assert len(read_jsonl(tmp_path / "payloads.jsonl")) == 2
    assert f"checking {fifo} (csv" in text(run)


def test_dev_stdin_on_a_pipe_is_read(tmp_path):
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)
    run = piped(
        tmp_path, CSV, "upload", "customers", "/dev/stdin", "--mapping", mapping, "--dry-run",
        "--payloads", tmp_path / "payloads.jsonl",
    )  # fmt: skip
    assert run.returncode == 0, text(run)
    assert "lseek" not in text(run)
    assert len(read_jsonl(tmp_path / "payloads.jsonl")) == 2


def test_nothing_piped_in_is_one_line_naming_stdin(tmp_path):
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)
    run = piped(tmp_path, None, "upload", "customers", "-", "--mapping", mapping, "--dry-run")
    assert run.returncode == 2, text(run)
    errors = [line for line in text(run).splitlines() if " error: " in line]
    assert len(errors) == 1 and "<stdin>: the file is empty" in errors[0], text(run)


def test_an_error_in_piped_input_names_stdin_not_a_temporary_file(tmp_path):
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)
    data = b"No;Mail;Name\nC1;a@x.example;Alpha\n"  # no column "Email"
    run = piped(tmp_path, data, "upload", "customers", "-", "--mapping", mapping, "--dry-run")
    assert run.returncode == 2, text(run)
    assert "<stdin>" in text(run) and "payor-input-" not in text(run)


def test_a_binary_stream_is_refused_at_its_first_block(tmp_path):
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)
    run = piped(
        tmp_path, None, "upload", "customers", "/dev/zero", "--mapping", mapping, "--dry-run",
        timeout=60,
    )  # fmt: skip
    assert run.returncode == 2, text(run)
    assert "/dev/zero: this is not a text table" in text(run)


def test_report_json_dash_writes_the_summary_to_stdout_and_the_rest_to_stderr(tmp_path):
    """`cat export.csv | payor upload customers - --dry-run --report-json - | jq .rows_valid`."""
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)
    run = piped(
        tmp_path, CSV, "upload", "customers", "-", "--mapping", mapping, "--dry-run",
        "--report-json", "-",
    )  # fmt: skip
    assert run.returncode == 0, text(run)
    assert json.loads(run.stdout)["rows_valid"] == 2
    assert b"checking <stdin> (csv" in run.stderr
    assert not (tmp_path / "-").exists()


def test_report_json_dash_of_a_failed_run_is_on_stdout_too(tmp_path):
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING.replace("Email", "Mail"))
    run = piped(
        tmp_path, CSV, "upload", "customers", "-", "--mapping", mapping, "--dry-run",
        "--report-json", "-",
    )  # fmt: skip
    assert run.returncode == 2, text(run)
    report = json.loads(run.stdout)
    assert report["exit_code"] == 2 and "'Mail'" in report["error"]
    assert b"'Mail'" in run.stderr
    assert not (tmp_path / "-").exists()


def test_each_run_in_one_process_reads_its_own_standard_input(tmp_path, monkeypatch):
    """A notebook (or any caller of payor twice in one process) that pipes two exports in turn
    gets each run its own: not the copy of the first."""
    import io

    import payor_cli

    mapping = {"customers": {"fields": {"customerno": "No", "emailaddress1": "E-mail"}}}
    seen = []
    for number in ("C1", "C2"):
        data = f"No,E-mail\n{number},{number.lower()}@x.example\n".encode()
        stdin = io.TextIOWrapper(io.BytesIO(data))
        stdin.isatty = lambda: False  # a pipe, as the shell gives one
        monkeypatch.setattr("sys.stdin", stdin)
        run = payor_cli.dry_run("-", "customers", mapping, state_dir=tmp_path / "state")
        assert run.exit_code == 0, run.summary
        seen += [p["customerno"] for p in run.payloads]
    assert seen == ["C1", "C2"]
