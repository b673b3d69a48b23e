"""The help teaches: a purpose and a runnable example per command, flags without value markers,
required arguments shown as required, the upload epilog; option errors in one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import typer
from conftest import ROOT, SAMPLES

from payor_cli import __version__

TYPER = tuple(int(part) for part in typer.__version__.split(".")[:2])
MARKS_REQUIRED = TYPER >= (0, 27)
"""typer 0.27 and later write a required argument {FILE} in the usage line, and a type marker
(`<bool>`) after each flag of its own (--help, the completion flags): typer's notation, which
payor keeps; payor's own flags carry none in any version."""
OWN_FLAGS = ["--dry-run", "--full", "--sandbox", "--quiet"]

COMMANDS = [
    [],
    ["upload"],
    ["upload", "customers"],
    ["upload", "invoices"],
    ["upload", "all"],
    ["init"],
    ["schema"],
    ["sandbox"],
]


def example_of(help_text: str) -> str:
    """The command on the help's `Example:` line."""
    found = re.search(r"Example:\s+(payor [^\n│]+)", help_text)
    assert found is not None, help_text
    return found.group(1).strip()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_a_purpose_and_an_example(payor, command):
    run = payor(*command, "--help")
    assert run.code == 0, run.text
    assert example_of(run.out).startswith(" ".join(["payor", *command]))
    usage = next(line for line in run.out.splitlines() if "Usage:" in line)
    takes_file = " ".join(command) in ("upload customers", "upload invoices", "init")
    assert ("{" in usage) is (MARKS_REQUIRED and takes_file), usage


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_flags_show_no_value_marker(payor, command):
    run = payor(*command, "--help")
    assert run.code == 0, run.text
    flags = [] if MARKS_REQUIRED else ["--help"]  # typer's own flag: typer's notation
    flags += OWN_FLAGS if command[1:] and command[0] == "upload" else []
    flags += {"init": ["--force"], "schema": ["--json"]}.get(" ".join(command), [])
    for flag in flags:
        line = next(line for line in run.out.splitlines() if f" {flag} " in line)
        # the column after a flag is its help text, never a type
        assert not re.search(rf"{flag}\s+(-\w\s+)?(BOOLEAN|TEXT|<bool>)", line), line


def test_required_arguments_are_shown_as_required(payor):
    init = payor("init", "--help")
    assert init.code == 0, init.text
    kind, file = ("{KIND}", "{FILE}") if MARKS_REQUIRED else ("KIND", "FILE")
    assert f"Usage: payor init [OPTIONS] {kind} {file}" in init.out
    upload = payor("upload", "invoices", "--help")
    assert upload.code == 0, upload.text
    assert f"Usage: payor upload invoices [OPTIONS] {file}" in upload.out


def test_init_without_its_arguments_is_a_one_line_usage_error(payor):
    run = payor("init", "invoices")
    assert run.code == 2
    assert run.err.count("\n") == 1, run.err
    assert "error: Missing argument 'FILE'" in run.err


def test_list_presets_needs_no_arguments(payor):
    run = payor("init", "--list-presets")
    assert run.code == 0, run.text
    assert "sap-fbl5n" in run.out


def test_upload_help_ends_with_credentials_precedence_and_exit_codes(payor):
    run = payor("upload", "invoices", "--help")
    assert run.code == 0, run.text
    text = run.out
    tail = text[text.index("--help") :]
    for needed in ("PAYOR_API_KEY", "PAYOR_API_SECRET", "flags beat the environment"):
        assert needed in tail, tail
    codes = re.findall(r"\b([0-4]) [a-z]", tail[tail.index("Exit codes") :])
    assert codes[:5] == ["0", "1", "2", "3", "4"], tail


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--batch-size", "0"],
            # the reason is click's words, or pydantic's from typer 0.27 on
            "error: Invalid value for '--batch-size': "
            + (
                "Input should be greater than or equal to 1"
                if MARKS_REQUIRED
                else "0 is not in the range x>=1"
            )
            + "; see `payor upload invoices --help`",
        ),
        (
            ["--no-such-flag"],
            "error: No such option: --no-such-flag; see `payor upload invoices --help`",
        ),
    ],
)
def test_option_errors_are_one_line_like_every_other_error(payor, tmp_path, args, message):
    source = shutil.copy(SAMPLES / "invoices.xlsx", tmp_path / "invoices.xlsx")
    run = payor("upload", "invoices", source, "--dry-run", *args)
    assert run.code == 2
    assert run.err.count("\n") == 1, run.err
    assert message in run.err
    assert "╭" not in run.err
    assert "payor upload invoices --help" in run.err


def test_version(payor):
    run = payor("--version")
    assert run.code == 0
    assert run.out == f"payor {__version__}\n"


def test_bash_completion_completes_commands_and_options(payor):
    env = {"_PAYOR_COMPLETE": "complete_bash", "COMP_WORDS": "payor upload inv", "COMP_CWORD": "2"}
    run = payor(env=env)
    assert run.code == 0, run.text
    assert run.out.split() == ["invoices"]
    env = {
        "_PAYOR_COMPLETE": "complete_bash",
        "COMP_WORDS": "payor upload all --dry",
        "COMP_CWORD": "3",
    }
    run = payor(env=env)
    assert run.code == 0, run.text
    assert run.out.split() == ["--dry-run"]


def test_the_examples_run(payor, tmp_path: Path):
    """Every example that ends (all but the sandbox server) runs as it stands in the help."""
    shutil.copytree(SAMPLES, tmp_path / "sample_data")
    shutil.copy(ROOT / "config.example.toml", tmp_path)
    for command in COMMANDS:
        if command == ["sandbox"]:
            continue
        help_run = payor(*command, "--help")
        assert help_run.code == 0, help_run.text
        example = example_of(help_run.out).split()[1:]
        run = payor(*example)
        assert run.code == 0, (example, run.text)
    assert (tmp_path / "payor.toml").is_file()  # init's example wrote its mapping
