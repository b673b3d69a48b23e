"""`payor --version` and Tab completion start light: the real process imports no pyarrow, no
requests and no rich (a command imports what it needs only when it runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from payor_cli import __version__

HEAVY = ("pyarrow", "requests", "rich")


def started(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, set]:
    """Run `payor ARGS` under `-X importtime`: its exit code, its output and every module it
    imported (the top-level package of each)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PAYOR_", "_PAYOR_"))}
    base.update(HOME=str(cwd), XDG_CONFIG_HOME=str(cwd / ".config"), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "payor_cli", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "payor_cli" in imported, proc.stderr  # the import list was read
    return proc.returncode, proc.stdout, imported


def test_version_imports_no_pyarrow_requests_or_rich(tmp_path):
    code, out, imported = started(["--version"], tmp_path)
    assert code == 0
    assert out == f"payor {__version__}\n"
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))


@pytest.mark.parametrize(
    "words, cword, expected",
    [("payor up", "1", "upload"), ("payor upload inv", "2", "invoices")],
)
def test_bash_completion_imports_no_pyarrow_requests_or_rich(tmp_path, words, cword, expected):
    env = {"_PAYOR_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
    code, out, imported = started([], tmp_path, env)
    assert code == 0
    assert out.split() == [expected]
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))


def test_zsh_completion_of_an_option_imports_no_pyarrow_or_requests(tmp_path):
    # typer renders the help shown beside a zsh candidate through rich: only rich may load
    env = {"_PAYOR_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "payor upload invoices --ta"}
    code, out, imported = started([], tmp_path, env)
    assert code == 0
    assert '"--target":"The API\\\\: payorcrm (default)' in out, out
    assert imported.isdisjoint({"pyarrow", "requests"}), sorted(imported & set(HEAVY))
