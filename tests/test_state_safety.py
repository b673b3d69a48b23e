"""The state dir as a careless operator or a full disk leaves it: a damaged or emptied journal,
a read-only or full filesystem, a disk that fills during the run, and two runs at once with two
state dirs against one CRM account. Each is one line naming what and where, before anything is
sent (exit 2, 4), or a clean stop (exit 3). The real CLI (two runs at once: processes) against
a real sandbox server; the filesystems are real tmpfs mounts (skipped only where this machine
cannot mount one).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CREDENTIALS, CUSTOMER_MAPPING, write_csv, write_mapping


def customers(path: Path, n: int) -> Path:
    rows = [["No", "Email", "Name"]] + [
        [f"C{i:05d}", f"c{i}@x.example", f"Name {i}"] for i in range(n)
    ]
    return write_csv(path, rows)


@pytest.fixture
def setup(tmp_path: Path, payor):
    """A customers file of `n` rows and its mapping; `run(server, state_dir)` uploads it."""
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)

    def make(n: int = 3000):
        source = customers(tmp_path / "customers.csv", n)

        def run(server, state: Path, *extra: object):
            return payor(
                "upload", "customers", source, "--mapping", mapping, "--base-url", server.url,
                "--state-dir", state, *extra, env=CREDENTIALS,
            )  # fmt: skip

        return run

    return make


def errors_of(run) -> list[str]:
    return [line for line in run.text.splitlines() if " error: " in line]


@pytest.fixture
def tmpfs(tmp_path: Path):
    """Mount a tmpfs of `size` (read-only with `ro`) under tmp_path; unmounted afterwards."""
    mounted: list[Path] = []

    def mount(name: str, size: str, *, ro: bool = False) -> Path:
        point = tmp_path / name
        point.mkdir()
        options = f"size={size}" + (",ro" if ro else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_journal_with_garbage_in_its_middle_is_named_and_nothing_is_sent(
    tmp_path, setup, sandbox_server
):
    server = sandbox_server()
    run = setup(3000)
    state = tmp_path / "state"
    assert run(server, state).code == 0
    journal = state / "journal.sqlite"
    size = journal.stat().st_size
    with journal.open("r+b") as handle:
        handle.seek(size // 2)
        handle.write(os.urandom(8192))
    before = server.stats()
    again = run(server, state)
    assert again.code == 2, again.text
    errors = errors_of(again)
    assert len(errors) == 1, again.text
    assert f"the journal {journal} is damaged" in errors[0]
    assert "move it aside (with its -wal and -shm files)" in errors[0]
    assert "looks records up or sends them again" in errors[0]
    assert server.stats()["requests"] == before["requests"]  # nothing sent


def test_a_zero_byte_journal_is_refused_not_taken_as_new(tmp_path, setup, sandbox_server):
    server = sandbox_server()
    run = setup(100)
    state = tmp_path / "state"
    assert run(server, state).code == 0
    (state / "journal.sqlite").write_bytes(b"")  # emptied by a careless copy or cleanup
    before = server.stats()
    again = run(server, state)
    assert again.code == 2, again.text
    assert "is empty (0 bytes)" in errors_of(again)[0]
    assert server.stats()["requests"] == before["requests"]


def test_a_journal_of_a_newer_payor_is_refused_not_downgraded(tmp_path, setup, sandbox_server):
    server = sandbox_server()
    run = setup(20)
    state = tmp_path / "state"
    assert run(server, state).code == 0
    with sqlite3.connect(state / "journal.sqlite") as db:
        db.execute("PRAGMA user_version = 99")
    before = server.stats()
    again = run(server, state)
    assert again.code == 2, again.text
    assert "was written by a newer payor (its schema 99" in errors_of(again)[0]
    assert server.stats()["requests"] == before["requests"]
    with sqlite3.connect(state / "journal.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (99,)


def test_a_new_journal_is_complete_when_it_first_appears(tmp_path, setup, sandbox_server):
    # made under another name and renamed: a run killed while making it leaves no empty file
    server = sandbox_server()
    state = tmp_path / "state"
    assert setup(10)(server, state).code == 0
    assert sorted(p.name for p in state.iterdir()) == ["journal.sqlite", "payor.lock"]
    assert (state / "journal.sqlite").read_bytes().startswith(b"SQLite format 3\x00")


def test_a_read_only_state_dir_is_one_line_before_anything_is_sent(setup, sandbox_server, tmpfs):
    server = sandbox_server()
    state = tmpfs("readonly", "1m", ro=True)
    run = setup(10)(server, state)
    assert run.code == 2, run.text
    errors = errors_of(run)
    assert len(errors) == 1, run.text
    assert f"the state dir {state}" in errors[0] and "Read-only file system" in errors[0]
    assert server.stats()["requests"] == 0


def test_a_full_state_dir_is_one_line_before_anything_is_sent(setup, sandbox_server, tmpfs):
    server = sandbox_server()
    state = tmpfs("full", "64k")
    (state / "filler").write_bytes(b"\0" * (64 * 1024))
    run = setup(10)(server, state)
    assert run.code == 2, run.text
    errors = errors_of(run)
    assert len(errors) == 1, run.text
    assert f"the state dir {state} has only 0 KB free" in errors[0]
    assert server.stats()["requests"] == 0


def test_a_state_dir_with_too_little_room_is_refused_before_anything_is_sent(
    setup, sandbox_server, tmpfs
):
    server = sandbox_server()
    state = tmpfs("tiny", "256k")
    run = setup(10)(server, state)
    assert run.code == 2, run.text
    assert f"the state dir {state} has only" in errors_of(run)[0]
    assert server.stats()["requests"] == 0


def test_a_disk_that_fills_during_the_run_stops_it_cleanly(tmp_path, setup, sandbox_server, tmpfs):
    server = sandbox_server()
    disk = tmpfs("filling", "1300k")
    report = tmp_path / "report.json"
    run = setup(60_000)(server, disk / "state", "--report-json", report)
    assert run.code == 3, run.text
    assert "cannot write the journal" in run.text and "disk is full" in run.text
    assert "Traceback" not in run.text and "unexpected" not in run.text
    summary = json.loads(report.read_text())
    assert summary["stopped"]["reason"] == "aborted"
    accepted = summary["rows_accepted"]
    assert 0 < accepted < 60_000
    assert server.stats()["writes"]["customers"] >= accepted


def test_a_report_the_full_disk_cannot_hold_leaves_the_exit_code_an_abort(
    setup, sandbox_server, tmpfs
):
    server = sandbox_server()
    disk = tmpfs("filling", "1300k")
    run = setup(60_000)(server, disk / "state", "--report-json", disk / "report.json")
    assert run.code == 3, run.text  # rows went out: never "nothing sent"
    assert f"cannot write {disk / 'report.json'}" in run.text


def test_two_runs_with_two_state_dirs_against_one_account_run_one_at_a_time(
    tmp_path, setup, sandbox_server
):
    server = sandbox_server("--latency", "0.3")  # the first run lasts ~6 s: 20 requests
    mapping = write_mapping(tmp_path / "mapping.toml", CUSTOMER_MAPPING)
    source = customers(tmp_path / "customers.csv", 1000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")} | CREDENTIALS
    env |= {"HOME": str(tmp_path)}
    first = subprocess.Popen(
        [sys.executable, "-m", "payor_cli", "upload", "customers", source, "--mapping", mapping,
         "--base-url", server.url, "--state-dir", tmp_path / "state-a", "--batch-size", "50",
         "--concurrency", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while server.stats()["requests"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.stats()["requests"] > 0, "the first run never started sending"
        # the same CRM written another way: HTTP, a trailing slash
        other_url = server.url.replace("http://", "HTTP://") + "/"
        second = subprocess.run(
            [sys.executable, "-m", "payor_cli", "upload", "customers", source, "--mapping",
             mapping, "--base-url", other_url, "--state-dir", tmp_path / "state-b"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert first.poll() is None, "the first run ended before the second began"
    finally:
        out, _ = first.communicate(timeout=120)
    assert second.returncode == 4, second.stdout + second.stderr
    assert f"another payor run (pid {first.pid}, state dir {tmp_path / 'state-a'})" in second.stderr
    assert first.returncode == 0, out
    stats = server.stats()
    assert stats["writes"]["customers"] == 1000  # every row once: the second run sent nothing
    assert not (tmp_path / "state-b" / "journal.sqlite").exists()
