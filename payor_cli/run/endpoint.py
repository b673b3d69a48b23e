"""The API's address and the way to it, checked before anything is sent: the base URL, the CA
bundle that verifies, the proxy the environment names."""

from __future__ import annotations

import re
import ssl
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from payor_cli.errors import ConfigError
from payor_cli.hosts import is_loopback


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


def check_transport(
    base_url: str | None, bundle: Any, config_path: Path | None, env: Mapping[str, str]
) -> str | None:
    """The config's CA bundle (`bundle`), checked; for a remote https API, the environment's
    CA bundle (what requests would use without one) and its proxy are checked too."""
    found = _ca_bundle(bundle, config_path)
    if found is None and _remote_https(base_url):
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # what requests would use
            if env.get(name):
                _ca_bundle(env[name], f"the environment's {name}")
                break
    if _remote_https(base_url):
        _check_proxy(base_url or "", env)
    return found


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
        shown = _without_credentials(proxy)
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
