"""payor on a system without fcntl (Windows, or any other): a real upload runs, its locks taken
and released by filelock's portable lock. Process-level: fcntl is hidden from a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from payor_cli.cli.process import STOP_SIGNALS

WITHOUT_FCNTL = (
    "import sys; sys.modules['fcntl'] = None; sys.argv[0] = 'payor';"
    "from payor_cli.cli import main; main(sys.argv[1:])"
)


def run_without_fcntl(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_FCNTL, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_upload_runs_and_locks_without_fcntl(tmp_path, files):
    customers, invoices, mapping = files(30)
    args = ("upload", "all", "--customers", customers, "--invoices", invoices)
    args += ("--mapping", mapping, "--sandbox", "--state-dir", tmp_path / "state")
    first = run_without_fcntl(*args, "--report-json", tmp_path / "first.json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    report = json.loads((tmp_path / "first.json").read_text(encoding="utf-8"))
    assert report["invoices"]["rows_accepted"] == 30
    # the locks were released: the next run takes them, and finds everything unchanged
    second = run_without_fcntl(*args, "--report-json", tmp_path / "second.json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    report = json.loads((tmp_path / "second.json").read_text(encoding="utf-8"))
    assert report["invoices"]["rows_unchanged"] == 30
    assert report["invoices"]["rows_sent"] == 0


def test_each_system_stops_on_its_own_signals():
    import signal

    names = {signal.Signals(s).name for s in STOP_SIGNALS}
    assert {"SIGINT", "SIGTERM"} <= names
    if sys.platform == "win32":
        assert "SIGBREAK" in names  # Ctrl-Break
    else:
        assert "SIGHUP" in names  # a closed terminal or ssh session
