"""What the package says of itself: its licence, its version."""

from __future__ import annotations

from importlib.metadata import metadata
from pathlib import Path

from payor_cli.version import VERSION

ROOT = Path(__file__).resolve().parents[1]


def test_the_licence_is_mit_in_the_metadata_and_beside_the_code():
    meta = metadata("payor")
    assert meta["License-Expression"] == "MIT"
    assert "LICENSE" in meta.get_all("License-File")
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_the_version_is_the_one_pyproject_gives():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'\nversion = "{VERSION}"\n' in text
