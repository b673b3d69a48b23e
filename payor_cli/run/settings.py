"""Settings from flags, environment, config file and defaults, in that order of precedence."""

from __future__ import annotations

import math
import os
import re
import ssl
import stat
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from payor_cli.check.mapping import read_toml
from payor_cli.check.nearest import suggest
from payor_cli.contract import Credentials
from payor_cli.errors import SECRETS, ConfigError
from payor_cli.hosts import is_loopback
from payor_cli.targets import DEFAULT_TARGET, get_target, target_names

APP = "payor"
CONFIG_NAME = "payor.toml"
DEFAULT_BATCH_SIZE = 500
DEFAULT_CONCURRENCY = 4
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 86400.0
"""A timeout longer than a day is a typo (and longer than a socket can wait)."""
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


@dataclass(frozen=True)
class TargetChoice:
    """The target a command works with, and where that choice came from."""

    name: str | None
    """The target's name as given (None: none was, so the default or the mapping's)."""
    origin: str
    """"--target", "PAYOR_TARGET", "CONFIG [api].target", or "" when nothing chose it."""

    @property
    def explicit(self) -> bool:
        return self.name is not None

    @property
    def resolved(self) -> str:
        """The target's canonical name (the default when none was chosen)."""
        return get_target(self.name or DEFAULT_TARGET).name

    def described(self) -> str:
        return f"{self.resolved} (from {self.origin})" if self.origin else self.resolved


def choose_target(
    flag: str | None,
    environ: Mapping[str, str],
    api_table: Mapping[str, Any],
    config_path: Path | None,
) -> TargetChoice:
    """The one rule for every command: --target, else PAYOR_TARGET, else the config's
    [api].target, else none (the mapping's, or the default)."""
    if flag:
        choice = TargetChoice(flag, "--target")
    elif environ.get("PAYOR_TARGET"):
        choice = TargetChoice(environ["PAYOR_TARGET"], "PAYOR_TARGET")
    elif (named := api_table.get("target")) is not None:
        if not isinstance(named, str):
            raise ConfigError(
                f'{config_path}: [api] target must be a name in quotes, e.g. target = "onlyoffice"'
            )
        choice = TargetChoice(named, f"{config_path} [api].target")
    else:
        return TargetChoice(None, "")
    if str(choice.name).strip().lower() not in target_names():
        raise ConfigError(
            f"unknown target {choice.name!r} (from {choice.origin})",
            f"choose one of: {', '.join(target_names())}",
        )
    return choice


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
        try:
            data = read_toml(config_path)
        except Exception as exc:  # MappingError from read_toml: report as a config problem
            raise ConfigError(str(exc).replace("mapping", "config")) from None
        api = _table(data, "api", API_KEYS, config_path)
    return choose_target(flag, env, api, config_path)


def with_mapping_target(choice: TargetChoice, named: list[tuple[str, str]]) -> TargetChoice:
    """The run's target once the mappings have spoken: `named` holds (target, where) for each
    mapping section that names the target it was written for. A target chosen by a flag, the
    environment or the config must agree with them; with none chosen, theirs is taken."""
    wanted: dict[str, str] = {}
    for name, where in named:
        if not isinstance(name, str) or name.strip().lower() not in target_names():
            raise ConfigError(
                f"{where}: target {name!r} is not a target payor knows",
                f"write one of: {', '.join(target_names())}",
            )
        wanted.setdefault(get_target(name).name, where)
    if len(wanted) > 1:
        (first, at_first), (second, at_second) = list(wanted.items())[:2]
        raise ConfigError(
            f"the mappings were written for different targets: {at_first} for {first}, "
            f"{at_second} for {second}",
            "upload each kind with the mapping written for the target it goes to",
        )
    if not wanted:
        return choice
    ((mapped, where),) = wanted.items()
    if choice.explicit:
        if choice.resolved != mapped:
            raise ConfigError(
                f"the target is {choice.resolved} (from {choice.origin}), but {where} was "
                f"written for {mapped}",
                f"use --target {mapped}, or a mapping written for {choice.resolved} "
                f"(`payor init ... --target {choice.resolved}`)",
            )
        return choice
    return TargetChoice(mapped, where)


def normalize_base_url(url: str) -> str:
    """The API's address as every part of payor names it (requests, messages, the journal's
    scope): scheme and host in lower case, no default port, no trailing slash. An address
    payor cannot use safely is a usage error saying what to change: spaces around it, a port
    that is no port, a query or fragment (the API paths are appended to it), credentials in it,
    plain http:// to anything but this machine."""
    shown = _without_credentials(url)
    if url != url.strip() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ConfigError(
            f"base URL {shown!r} has spaces or control characters in it",
            "write the address alone, e.g. https://crm.example.com",
        )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base URL {shown!r} is not an http(s) address", "e.g. https://crm.example.com"
        )
    if "@" in parts.netloc:
        raise ConfigError(
            f"base URL {shown!r} holds credentials (user:password@): they would be shown and "
            "stored with the address",
            "remove them from the URL; credentials go in PAYOR_API_KEY and PAYOR_API_SECRET (or "
            "PAYOR_API_USER and PAYOR_API_PASSWORD), or the config's [api] section",
        )
    if "?" in url or "#" in url:
        raise ConfigError(
            f"base URL {shown!r} has a query or fragment (? or #): the API's paths are "
            "appended to the base URL",
            "give the API root only, e.g. https://crm.example.com",
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ConfigError(
            f"base URL {shown!r}: the port is not a number from 1 to 65535",
            "e.g. https://crm.example.com:8443, or no port for the default",
        )
    host = parts.hostname.lower()
    if scheme == "http" and not is_loopback(host):
        raise ConfigError(
            f"refusing plain http:// to {host}: the API secret would travel in clear text",
            "use https://, or http:// only for a server on this machine (localhost)",
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def _without_credentials(url: str) -> str:
    """The URL with anything before an @ in its host part hidden (shown in errors)."""
    return re.sub(r"(?<=://)[^/?#]*@", "***@", url)


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
    config: dict[str, Any] = {}
    warnings: list[str] = []
    if config_path is not None:
        try:
            config = read_toml(config_path)
        except Exception as exc:  # MappingError from read_toml: report as a config problem
            raise ConfigError(str(exc).replace("mapping", "config")) from None
    api = _table(config, "api", API_KEYS, config_path)
    upload = _table(config, "upload", UPLOAD_KEYS, config_path)
    if config_path is not None and (
        api.get("api_key") or api.get("api_secret") or api.get("password")
    ):
        mode = Path(config_path).stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(
                f"{config_path} holds an API secret and others can read it: "
                f"run `chmod 600 {config_path}` or move the secret to PAYOR_API_SECRET"
            )

    def pick(flag: Any, env_name: str | None, table: dict[str, Any], name: str) -> Any:
        if flag is not None:
            return flag
        if env_name and env.get(env_name):
            return env[env_name]
        return table.get(name)

    settings = Settings(config_path=config_path, config=config, warnings=warnings)
    settings.target_choice = choose_target(target, env, api, config_path)
    settings.target = settings.target_choice.name
    settings.base_url = pick(base_url, "PAYOR_BASE_URL", api, "base_url")
    if settings.base_url is not None:
        if not isinstance(settings.base_url, str):
            raise ConfigError(f"{config_path}: [api] base_url must be text in quotes")
        settings.base_url = normalize_base_url(settings.base_url)
    settings.api_key = pick(None, "PAYOR_API_KEY", api, "api_key")
    settings.api_secret = pick(None, "PAYOR_API_SECRET", api, "api_secret")
    settings.api_user = pick(None, "PAYOR_API_USER", api, "user")
    settings.api_password = pick(None, "PAYOR_API_PASSWORD", api, "password")
    settings.invoice_item = api.get("invoice_item")
    for name in ("api_key", "api_secret", "api_user", "api_password"):
        setattr(settings, name, _credential(getattr(settings, name), name, config_path))
    SECRETS.add(*settings.secrets)
    settings.connect_timeout = _number(
        api, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, config_path, most=MAX_TIMEOUT
    )
    settings.timeout = _number(api, "timeout", DEFAULT_TIMEOUT, config_path, most=MAX_TIMEOUT)
    settings.ca_bundle = _ca_bundle(api.get("ca_bundle"), config_path)
    if settings.ca_bundle is None and _remote_https(settings.base_url):
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # what requests would use
            if env.get(name):
                _ca_bundle(env[name], f"the environment's {name}")
                break
    if _remote_https(settings.base_url):
        _check_proxy(settings.base_url or "", env)
    settings.batch_size = _count(batch_size, upload, "batch_size", settings.batch_size)
    settings.concurrency = _count(concurrency, upload, "concurrency", settings.concurrency)
    chosen_state = pick(state_dir, "PAYOR_STATE_DIR", upload, "state_dir")
    if chosen_state:
        settings.state_dir = Path(chosen_state).expanduser()
    settings.max_retries = int(_number(upload, "max_retries", settings.max_retries, config_path))
    settings.retry_budget_s = _number(
        upload, "retry_budget_s", settings.retry_budget_s, config_path
    )
    return settings


def _count(flag: int | None, table: dict[str, Any], name: str, default: int) -> int:
    """A whole number of 1 or more, from the flag, else the config's [upload] table."""
    chosen = flag if flag is not None else table.get(name, default)
    if not isinstance(chosen, int) or isinstance(chosen, bool) or chosen < 1:
        raise ConfigError(
            f"{name.replace('_', ' ')} must be a whole number of 1 or more, not {chosen!r}"
        )
    return chosen


def _credential(value: Any, name: str, path: Path | None) -> str | None:
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


def _table(config: dict[str, Any], name: str, known: set[str], path: Path | None) -> dict[str, Any]:
    table = config.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    for key in table:
        if key not in known:
            close = suggest(key, sorted(known))
            raise ConfigError(
                f"{path}: unknown setting {key!r} in [{name}]",
                f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}",
            )
    return table


def _number(
    table: dict[str, Any], name: str, default: float, path: Path | None, most: float | None = None
) -> float:
    """A positive, finite number (nan and inf are numbers to TOML, not to a timeout)."""
    value = table.get(name, default)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{path}: {name} must be a positive number, not {value!r}")
    if most is not None and value > most:
        raise ConfigError(f"{path}: {name} must be at most {most:g} (seconds), not {value!r}")
    return float(value)


def _check_proxy(url: str, env: Any) -> None:
    """The proxy the environment names for this https address, if any, is an address payor
    can use: an http(s) proxy with a host and a port (a SOCKS proxy needs a library payor does
    not install)."""
    host = urlsplit(url).hostname or ""
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
    if no_proxy and urllib.request.proxy_bypass_environment(host, {"no": no_proxy}):
        return
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        proxy = env.get(name)
        if not proxy:
            continue
        shown = re.sub(r"(?<=://)[^/?#]*@", "***@", proxy)
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise ConfigError(
                f"the environment's {name} {shown!r} is not a proxy payor can use",
                "give http://host:port (SOCKS proxies are not supported), or unset it",
            )
        return


def _remote_https(url: str | None) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme == "https" and not is_loopback(parts.hostname or "")


def _ca_bundle(value: Any, path: Path | str | None) -> str | None:
    """The CA bundle's path, checked now: a file (or folder) of certificates that loads."""
    if value is None:
        return None
    where = path if isinstance(path, str) else f"{path}: [api] ca_bundle"
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a file name in quotes")
    bundle = Path(value).expanduser()
    if not bundle.exists():
        raise ConfigError(
            f"{where} {str(bundle)!r}: no such file",
            "name the PEM file of the CA certificates your proxy or server uses",
        )
    try:
        ssl.create_default_context(
            cafile=str(bundle) if bundle.is_file() else None,
            capath=str(bundle) if bundle.is_dir() else None,
        )
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"{where} {str(bundle)!r} holds no certificate payor can read "
            f"({getattr(exc, 'strerror', None) or exc})",
            "give a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)",
        ) from None
    return str(bundle.resolve())
