"""payor's version, as the installed package's metadata gives it (one place: pyproject.toml)."""

from importlib.metadata import version

VERSION = version("payor")
