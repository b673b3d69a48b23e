"""`payor sandbox` set up from its options: the target's dialect, the credentials, the port.

The command only translates: it prints what `open_sandbox` returns and serves until stopped.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass

from payor_cli.errors import ConfigError
from payor_cli.hosts import is_loopback
from payor_cli.options import SandboxOptions
from payor_cli.run.settings import resolve_target
from payor_cli.sandbox.server import Sandbox, SandboxConfig
from payor_cli.targets import get_target


@dataclass(frozen=True)
class SandboxStart:
    """A sandbox bound to its port, ready to serve."""

    server: Sandbox
    title: str
    """The API it speaks, e.g. PayorCRM."""
    default_credentials: tuple[str, str] | None
    """(api_key, api_secret) when the environment chose neither: the public defaults."""


def open_sandbox(
    options: SandboxOptions, *, log: Callable[[str], None], warn: Callable[[str], None]
) -> SandboxStart:
    """A sandbox of the options' target on their host and port; `log` gets its request lines,
    `warn` what the user must know first. A public host without credentials of one's own, a
    port in use or a bad option is a ConfigError (exit 2)."""
    chosen = get_target(resolve_target(options.target, options.config).resolved)
    env = os.environ
    if not is_loopback(options.host):
        if not (env.get("PAYOR_API_KEY") and env.get("PAYOR_API_SECRET")):
            raise ConfigError(
                f"sandbox: --host {options.host} is reachable from other machines, and the "
                "default credentials are public; set PAYOR_API_KEY and PAYOR_API_SECRET first, "
                "or listen on 127.0.0.1"
            )
        warn(f"sandbox: listening on {options.host}: other machines can reach this test server")
    try:
        config = _sandbox_config(options)
        server = Sandbox(
            config, host=options.host, port=options.port, log=log, routes=chosen.sandbox_routes()
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"sandbox: port {options.port} on {options.host} is in use by another program; "
                "choose another with --port (--port 0 picks a free one)"
            ) from None
        raise ConfigError(
            f"sandbox: cannot listen on {options.host}:{options.port}: {exc.strerror or exc}"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"sandbox: {exc}") from None
    chosen_by_env = env.get("PAYOR_API_KEY") or env.get("PAYOR_API_SECRET")
    defaults = None if chosen_by_env else (config.api_key, config.api_secret)
    return SandboxStart(server, chosen.title, defaults)


def _sandbox_config(options: SandboxOptions) -> SandboxConfig:
    """The sandbox's behaviour: the options, and the credentials the environment gives."""
    defaults = SandboxConfig()
    env = os.environ
    return SandboxConfig(
        api_key=env.get("PAYOR_API_KEY") or defaults.api_key,
        api_secret=env.get("PAYOR_API_SECRET")
        or env.get("PAYOR_API_PASSWORD")
        or defaults.api_secret,
        api_user=env.get("PAYOR_API_USER") or defaults.api_user,
        db_path=options.db,
        name_rows=options.name_rows,
        max_batch=options.max_batch,
        fault_rate=options.fault_rate,
        faults=_listed(options.faults),
        seed=options.seed,
        stall_rate=options.stall_rate,
        stall_seconds=options.stall_seconds,
        latency=options.latency,
        rate_limit=options.rate_limit,
        rate_window=options.rate_window,
        reset_style=options.reset_style,
        refuse_keys=options.refuse_keys,
        items=_listed(options.items) if options.items is not None else defaults.items,
        taxes=_listed(options.taxes) if options.taxes is not None else defaults.taxes,
        sent_invoices=options.sent_invoices,
    )


def _listed(text: str) -> tuple[str, ...]:
    """The items of a comma-separated list, without blanks."""
    return tuple(part.strip() for part in text.split(",") if part.strip())
