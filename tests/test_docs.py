"""The docs stay true: every option of every command is documented under that command, and
nothing a user reads points outside the repository."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from conftest import ROOT

from payor_cli.cli import app

DOCS = ROOT / "docs"
COMMANDS_DOC = DOCS / "commands.md"
SECTIONS = {
    # the command -> the headings of commands.md that document its options
    "payor": ["`payor`"],
    "payor upload customers": ["`payor upload customers` and", "The upload options"],
    "payor upload invoices": ["`payor upload customers` and", "The upload options"],
    "payor upload all": ["`payor upload all`", "The upload options"],
    "payor init": ["`payor init`"],
    "payor schema": ["`payor schema`"],
    "payor sandbox": ["`payor sandbox`"],
}


def commands() -> list[tuple[str, Any]]:
    """Every command of the CLI, by its full name, found by walking the real command tree."""
    found = []

    # click's classes or those of the copy typer carries from 0.25 on: told apart by what they
    # have, not by their class
    def walk(name: str, command: Any) -> None:
        if hasattr(command, "commands"):
            if name == "payor":
                found.append((name, command))
            for sub_name, sub in command.commands.items():
                walk(f"{name} {sub_name}", sub)
        else:
            found.append((name, command))

    walk("payor", typer.main.get_command(app))
    return found


def section(heading: str) -> str:
    """The text of the `## ...` section of commands.md whose heading starts with `heading`."""
    text = COMMANDS_DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_command_has_its_sections():
    assert sorted(name for name, _ in commands()) == sorted(SECTIONS)


@pytest.mark.parametrize("name, command", commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_option_is_documented_under_its_command(name, command):
    documented = "".join(section(heading) for heading in SECTIONS[name])
    ctx = command.context_class(command, info_name=name)
    for param in command.get_params(ctx):
        if param.name == "help":
            continue
        if param.param_type_name == "argument":
            # click's name for it, or typer's own from 0.25 on
            shown = getattr(param, "human_readable_name", None) or param.display_name_raw
            assert f"`{shown.strip('[]')}`" in documented, (name, param.name)
            continue
        for opt in [*param.opts, *param.secondary_opts]:
            assert re.search(rf"`{re.escape(opt)}[ `]", documented), f"{name}: {opt} undocumented"


def test_the_docs_carry_the_rules_a_user_needs():
    text = "".join(path.read_text(encoding="utf-8") for path in DOCS.glob("*.md"))
    for rule in (
        "## Exit codes",
        "## The forms",  # mapping forms
        "## Value rules",
        "## Rejected rows",
        "## The summary",
        "## Running from cron",
        "## Security",
        "## Settings",
        "# Targets",
        "# payor from Python",
    ):
        assert rule in text, rule


def test_nothing_points_outside_the_repository():
    for path in [ROOT / "README.md", *DOCS.glob("*.md")]:
        text = path.read_text(encoding="utf-8")
        assert "](../" not in text, path
        assert "../shared" not in text, path
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if target.startswith("http"):
                continue
            assert (path.parent / target).exists(), f"{path.name}: {target} does not exist"
