"""The config file: found (--config, PAYOR_CONFIG, the default places), read, and its tables and
values checked, each fault a usage error naming the file and the setting."""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

from payor_cli.check.mapping import read_toml
from payor_cli.check.nearest import suggest
from payor_cli.errors import ConfigError

APP = "payor"
CONFIG_NAME = "payor.toml"
API_KEYS = {
    "target",
    "base_url",
    "api_key",
    "api_secret",
    "connect_timeout",
    "timeout",
    "ca_bundle",
    "user",
    "password",
    "invoice_item",
}
UPLOAD_KEYS = {"batch_size", "concurrency", "state_dir", "max_retries", "retry_budget_s"}


def default_config_path() -> Path | None:
    """./payor.toml if present, else the user config dir's payor/config.toml if present."""
    local = Path(CONFIG_NAME)
    if local.is_file():
        return local
    user = Path(platformdirs.user_config_dir(APP)) / "config.toml"
    return user if user.is_file() else None


def config_file(given: Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The settings file: --config, else PAYOR_CONFIG, else the default places (or none)."""
    env = os.environ if environ is None else environ
    if given is not None:
        if not Path(given).is_file():
            raise ConfigError(f"{given}: no such config file")
        return Path(given)
    named = env.get("PAYOR_CONFIG")
    if named:
        if not Path(named).is_file():
            raise ConfigError(
                f"{named}: no such config file (named by PAYOR_CONFIG)",
                "fix PAYOR_CONFIG, or unset it to use ./payor.toml or the user config",
            )
        return Path(named)
    return default_config_path()


def read_config(path: Path) -> dict[str, Any]:
    """The config file's TOML; a file that is not TOML is a config problem."""
    try:
        return read_toml(path)
    except Exception as exc:  # MappingError from read_toml: report as a config problem
        raise ConfigError(str(exc).replace("mapping", "config")) from None


def readable_secret_warnings(path: Path | None, api: dict[str, Any]) -> list[str]:
    """A warning when the config file holds a secret that others can read."""
    if path is not None and (api.get("api_key") or api.get("api_secret") or api.get("password")):
        mode = Path(path).stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            return [
                f"{path} holds an API secret and others can read it: "
                f"run `chmod 600 {path}` or move the secret to PAYOR_API_SECRET"
            ]
    return []


def table(config: dict[str, Any], name: str, known: set[str], path: Path | None) -> dict[str, Any]:
    """The config's [name] table, every key in it one of `known` (else a near one is named)."""
    found = config.get(name, {})
    if not isinstance(found, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    for key in found:
        if key not in known:
            close = suggest(key, sorted(known))
            raise ConfigError(
                f"{path}: unknown setting {key!r} in [{name}]",
                f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}",
            )
    return found


def number(
    table: dict[str, Any], name: str, default: float, path: Path | None, most: float | None = None
) -> float:
    """A positive, finite number (nan and inf are numbers to TOML, not to a timeout)."""
    value = table.get(name, default)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{path}: {name} must be a positive number, not {value!r}")
    if most is not None and value > most:
        raise ConfigError(f"{path}: {name} must be at most {most:g} (seconds), not {value!r}")
    return float(value)


def count(flag: int | None, table: dict[str, Any], name: str, default: int) -> int:
    """A whole number of 1 or more, from the flag, else the config's [upload] table."""
    chosen = flag if flag is not None else table.get(name, default)
    if not isinstance(chosen, int) or isinstance(chosen, bool) or chosen < 1:
        raise ConfigError(
            f"{name.replace('_', ' ')} must be a whole number of 1 or more, not {chosen!r}"
        )
    return chosen


def credential(value: Any, name: str, path: Path | None) -> str | None:
    """A credential as text, trimmed; anything else is a clear error (never shown)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(
            f"{path}: [api] {name.removeprefix('api_')} must be text in quotes",
            f'write it as {name.removeprefix("api_")} = "..."',
        )
    value = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(
            f"the {name.replace('_', ' ')} holds a control character (a line break?)",
            "set it again without one (PAYOR_API_KEY / PAYOR_API_SECRET or the config)",
        )
    if name in ("api_key", "api_secret") and not value.isascii():
        # it travels in an HTTP header, which carries no such character (the password goes
        # in a body and may hold any)
        raise ConfigError(
            f"the {name.replace('_', ' ')} holds a character an HTTP header cannot carry "
            "(only ASCII letters, digits and signs)",
            "check it was copied whole and right (PAYOR_API_KEY / PAYOR_API_SECRET or the config)",
        )
    return value
