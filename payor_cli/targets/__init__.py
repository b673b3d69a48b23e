"""The APIs payor uploads to, by name: the registry that only the top (run, api, cli) consults.

Each API is a plug-in in its own folder (its fields and rules, how its answers read, how a kind
is sent, its sandbox dialect) that depends only on `payor_cli.contract` and the value rules.
"""

from __future__ import annotations

from payor_cli.contract import Target
from payor_cli.errors import ConfigError
from payor_cli.schema import Apis
from payor_cli.targets.business_suite.adapter import BusinessSuite
from payor_cli.targets.onlyoffice.adapter import OnlyOffice
from payor_cli.targets.payorcrm.adapter import PayorCrm

DEFAULT_TARGET = PayorCrm.name
"""The API a run uploads to when neither the options, the environment nor the config name one."""

_REGISTRY: dict[str, type[Target]] = {
    PayorCrm.name: PayorCrm,
    BusinessSuite.name: BusinessSuite,
    OnlyOffice.name: OnlyOffice,
}


def target_names() -> list[str]:
    """The names of the APIs payor knows."""
    return list(_REGISTRY)


def get_target(name: str) -> Target:
    """A fresh target called `name` (it holds one run's state); an unknown name is a usage
    error."""
    chosen = name.strip().lower()
    if chosen not in _REGISTRY:
        raise ConfigError(
            f"unknown target {name!r}",
            f"choose one of: {', '.join(_REGISTRY)} (--target, PAYOR_TARGET, [api].target)",
        )
    return _REGISTRY[chosen]()


def api_kinds() -> Apis:
    """Every API's kinds, by API name then kind name: what the top hands down to a stage that
    must name other APIs."""
    return {name: made.kinds for name, made in _REGISTRY.items()}
