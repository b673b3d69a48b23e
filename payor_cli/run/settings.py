"""Settings from flags, environment, config file and defaults, in that order of precedence.

The config file is read and its values checked by config_file.py, the address and the way to it
by endpoint.py; the target is chosen by target_choice.py's one rule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from payor_cli.contract import Credentials
from payor_cli.errors import SECRETS, ConfigError
from payor_cli.run.config_file import (
    API_KEYS,
    APP,
    UPLOAD_KEYS,
    config_file,
    count,
    credential,
    number,
    read_config,
    readable_secret_warnings,
    table,
)
from payor_cli.run.endpoint import check_transport, normalize_base_url
from payor_cli.run.target_choice import TargetChoice, choose_target

DEFAULT_BATCH_SIZE = 500
DEFAULT_CONCURRENCY = 4
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 86400.0
"""A timeout longer than a day is a typo (and longer than a socket can wait)."""


@dataclass
class Settings:
    """Everything a run needs besides the mapping; secrets are kept out of repr."""

    config_path: Path | None = None
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    target: str | None = None
    """The target's name (None: the default, payorcrm)."""
    target_choice: TargetChoice = field(default_factory=lambda: TargetChoice(None, ""))
    """Where the target came from (see `choose_target`)."""
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    api_user: str | None = None
    api_password: str | None = field(default=None, repr=False)
    invoice_item: str | None = None
    """ONLYOFFICE: the invoice item of lines that name none."""
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    timeout: float = DEFAULT_TIMEOUT
    ca_bundle: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    """Requests in flight at once; 1 sends strictly one at a time."""
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    max_retries: int = 8
    retry_budget_s: float = 600.0
    warnings: list[str] = field(default_factory=list)

    @property
    def secrets(self) -> list[str]:
        """Values that must never be written anywhere."""
        return [s for s in (self.api_key, self.api_secret, self.api_password) if s]

    def mapping_section(self, kind: str) -> dict[str, Any] | None:
        section = self.config.get(kind)
        return section if isinstance(section, dict) else None

    def require_credentials(
        self, names: tuple[str, ...] = ("PAYOR_API_KEY", "PAYOR_API_SECRET")
    ) -> Credentials:
        """The credentials a target needs (`names`: its environment variables)."""
        values = {"PAYOR_API_KEY": self.api_key, "PAYOR_API_SECRET": self.api_secret}
        missing = [name for name in names if not values.get(name)]
        if missing:
            settings = "/".join(name.removeprefix("PAYOR_").lower() for name in names)
            raise ConfigError(
                f"no credentials: {' and '.join(missing)} not set",
                f"export {' and '.join(names)}, or set {settings} in the config's [api] "
                "section (a file only you can read); or try --sandbox",
            )
        return Credentials(
            self.api_key or "",
            self.api_secret if "PAYOR_API_SECRET" in names else None,
        )

    def require_base_url(self) -> str:
        if not self.base_url:
            raise ConfigError(
                "no API address: set --base-url, PAYOR_BASE_URL or [api].base_url in the config",
                "or try the local sandbox with --sandbox",
            )
        return normalize_base_url(self.base_url)


def default_state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP))


def resolve_target(
    flag: str | None = None,
    config: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> TargetChoice:
    """The target of a command that needs no other settings (init, schema, sandbox): by the
    same rule as an upload's, from the same config file."""
    env = os.environ if environ is None else environ
    config_path = config_file(config, env)
    api: dict[str, Any] = {}
    if config_path is not None and not flag and not env.get("PAYOR_TARGET"):
        api = table(read_config(config_path), "api", API_KEYS, config_path)
    return choose_target(flag, env, api, config_path)


def load_settings(
    config_path: Path | None = None,
    *,
    base_url: str | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
    state_dir: Path | None = None,
    target: str | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Flags (the keyword arguments) beat the environment, which beats the file, then defaults."""
    env = os.environ if environ is None else environ
    config_path = config_file(config_path, env)
    config = read_config(config_path) if config_path is not None else {}
    api = table(config, "api", API_KEYS, config_path)
    upload = table(config, "upload", UPLOAD_KEYS, config_path)
    warnings = readable_secret_warnings(config_path, api)
    settings = Settings(config_path=config_path, config=config, warnings=warnings)
    settings.target_choice = choose_target(target, env, api, config_path)
    settings.target = settings.target_choice.name
    _read_api(settings, api, env, base_url)
    _read_upload(settings, upload, env, batch_size, concurrency, state_dir)
    return settings


def _pick(
    flag: Any, env: Mapping[str, str], env_name: str | None, table: dict[str, Any], name: str
) -> Any:
    """The flag, else the environment's `env_name`, else the config table's `name`."""
    if flag is not None:
        return flag
    if env_name and env.get(env_name):
        return env[env_name]
    return table.get(name)


def _read_api(
    settings: Settings, api: dict[str, Any], env: Mapping[str, str], base_url: str | None
) -> None:
    """The [api] settings: the address, the credentials, the timeouts and the CA bundle; the
    address, and what the way to it takes, checked."""
    config_path = settings.config_path
    settings.base_url = _pick(base_url, env, "PAYOR_BASE_URL", api, "base_url")
    if settings.base_url is not None:
        if not isinstance(settings.base_url, str):
            raise ConfigError(f"{config_path}: [api] base_url must be text in quotes")
        settings.base_url = normalize_base_url(settings.base_url)
    settings.api_key = _pick(None, env, "PAYOR_API_KEY", api, "api_key")
    settings.api_secret = _pick(None, env, "PAYOR_API_SECRET", api, "api_secret")
    settings.api_user = _pick(None, env, "PAYOR_API_USER", api, "user")
    settings.api_password = _pick(None, env, "PAYOR_API_PASSWORD", api, "password")
    settings.invoice_item = api.get("invoice_item")
    for name in ("api_key", "api_secret", "api_user", "api_password"):
        setattr(settings, name, credential(getattr(settings, name), name, config_path))
    SECRETS.add(*settings.secrets)
    settings.connect_timeout = number(
        api, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, config_path, most=MAX_TIMEOUT
    )
    settings.timeout = number(api, "timeout", DEFAULT_TIMEOUT, config_path, most=MAX_TIMEOUT)
    settings.ca_bundle = check_transport(settings.base_url, api.get("ca_bundle"), config_path, env)


def _read_upload(
    settings: Settings,
    upload: dict[str, Any],
    env: Mapping[str, str],
    batch_size: int | None,
    concurrency: int | None,
    state_dir: Path | None,
) -> None:
    """The [upload] settings, the flags first: batch size, concurrency, state dir, retries."""
    config_path = settings.config_path
    settings.batch_size = count(batch_size, upload, "batch_size", settings.batch_size)
    settings.concurrency = count(concurrency, upload, "concurrency", settings.concurrency)
    chosen_state = _pick(state_dir, env, "PAYOR_STATE_DIR", upload, "state_dir")
    if chosen_state:
        settings.state_dir = Path(chosen_state).expanduser()
    settings.max_retries = int(number(upload, "max_retries", settings.max_retries, config_path))
    settings.retry_budget_s = number(upload, "retry_budget_s", settings.retry_budget_s, config_path)
