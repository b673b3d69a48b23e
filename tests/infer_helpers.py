"""`payor init -o` then `payor upload --dry-run` of what it wrote, with the real CLI."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from conftest import read_jsonl, read_rejected


@dataclass
class InitRun:
    code: int
    text: str
    """What `init` said (stderr and stdout)."""
    toml: str
    """The mapping file `init` wrote."""
    fields: dict
    """Its [KIND.fields] table."""
    section: dict
    """Its [KIND] table."""

    def line(self, field: str) -> str:
        """The written line of one field, comment included."""
        return next(line for line in self.toml.splitlines() if line.startswith(f"{field} = "))

    def section_comment(self, setting: str) -> str:
        """The comment on a section setting's line (key, date_format, ...)."""
        line = next(line for line in self.toml.splitlines() if line.startswith(f"{setting} = "))
        return line.partition("   # ")[2]


def init(payor, tmp_path: Path, kind: str, source: Path, *extra: str) -> InitRun:
    mapping = tmp_path / f"{kind}.toml"
    mapping.unlink(missing_ok=True)
    run = payor("init", kind, source, "-o", mapping, *extra)
    toml = mapping.read_text(encoding="utf-8") if mapping.exists() else ""
    section = tomllib.loads(toml).get(kind, {}) if toml else {}
    return InitRun(run.code, run.text, toml, section.get("fields", {}), section)


def dry_run_written(payor, tmp_path: Path, kind: str, source: Path) -> tuple[int, list, list]:
    """(exit code, payloads, rejected rows) of a dry run with the mapping `init` wrote."""
    payloads = tmp_path / f"{kind}-payloads.jsonl"
    rejected = tmp_path / f"{kind}-rejected.csv"
    run = payor(
        "upload", kind, source, "--mapping", tmp_path / f"{kind}.toml", "--dry-run",
        "--payloads", payloads, "--rejected", rejected,
    )  # fmt: skip
    assert run.code in (0, 1), run.text
    sent = read_jsonl(payloads) if payloads.exists() else []
    refused = read_rejected(rejected) if rejected.exists() else []
    return run.code, sent, refused
