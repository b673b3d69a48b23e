"""The one rule that chooses a command's target: --target, else PAYOR_TARGET, else the config's
[api].target, else the mappings' (or the default); and where the choice came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payor_cli.errors import ConfigError
from payor_cli.targets import DEFAULT_TARGET, get_target, target_names


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
