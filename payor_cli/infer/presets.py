"""The presets shipped with payor (vendor layouts) and how one is applied to a plan."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from payor_cli.errors import MappingError
from payor_cli.infer.amounts import NUMBER_TYPES
from payor_cli.infer.labels import own_field
from payor_cli.infer.plan import Choice, SkipRule
from payor_cli.schema import FieldType, Kind

if TYPE_CHECKING:
    from payor_cli.infer.plan import Plan


def preset_files() -> dict[str, Any]:
    folder = resources.files("payor_cli") / "presets"
    if not folder.is_dir():
        return {}
    return {
        entry.name.removesuffix(".toml"): entry
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }


def list_presets() -> list[tuple[str, str]]:
    """The presets shipped with payor: (name, one-line description), by name."""
    found = []
    for name, entry in sorted(preset_files().items()):
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        found.append((name, str(data.get("description", "")).strip()))
    return found


def load_preset(name: str) -> dict:
    """A preset's TOML as a dict: a shipped preset by name, or a preset file by its path."""
    files = preset_files()
    entry = files.get(name.strip().casefold())
    if entry is not None:
        return tomllib.loads(entry.read_text(encoding="utf-8"))
    if name.endswith(".toml") and Path(name).is_file():
        try:
            return tomllib.loads(Path(name).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise MappingError(f"{name}: not valid TOML: {exc}") from None
    raise MappingError(
        f"there is no preset {name!r}",
        f"the presets are: {', '.join(sorted(files))} (see `payor init --list-presets`)",
    )


def preset_section(name: str, kind: Kind) -> dict[str, Any]:
    data = load_preset(name)
    section = data.get(kind.name)
    if not isinstance(section, dict):
        having = [n for n, _ in list_presets() if kind.name in load_preset(n)]
        raise MappingError(
            f"preset {name!r} has no [{kind.name}] section",
            f"presets for {kind.name}: {', '.join(having) or 'none'}; or leave out --preset",
        )
    return section


def alternatives(value: Any) -> list[str]:
    """A preset's column: one label or a list of them (the one the file has wins)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _preset_options(choice: Choice, spec: dict[str, Any], defaults: dict[str, Any]) -> None:
    """A preset field's settings (its own, else the section's), fixed against inference."""
    ftype = choice.type
    for option in ("default", "map", "scale"):
        if option == "scale" and ftype is not FieldType.INTEGER:
            continue  # money and decimals have no scale
        if option in spec:
            choice.options[option] = spec[option]
            choice.fixed.add(option)
    if ftype is FieldType.DATE:
        given = spec.get("format", defaults["format"])
        if given:
            choice.options["format"] = tuple(alternatives(given))
            choice.fixed.add("format")
    if ftype in NUMBER_TYPES:
        for option in ("decimal", "thousands"):
            given = spec.get(option, defaults[option])
            if given:
                choice.options[option] = given
                choice.fixed.add(option)


def apply_preset(plan: Plan, section: dict[str, Any]) -> None:
    """A preset's columns, settings, skip rules and key, where this file has its columns."""
    defaults = {
        "format": section.get("date_format"),
        "decimal": section.get("decimal"),
        "thousands": section.get("thousands"),
    }
    for given, raw in (section.get("fields") or {}).items():
        # a preset names PayorCRM's fields: another target's kind takes those it has
        name = own_field(plan.kind, given)
        if name is None and other_targets_field(plan, given):
            continue
        schema_field = plan.kind.field(name) if name else None
        if schema_field is None:
            raise MappingError(f"preset: {given!r} is not a {plan.kind.name} field")
        spec = raw if isinstance(raw, dict) else {"column": raw}
        choice = Choice(name, schema_field.type, how="preset")
        if "value" in spec:
            choice.value = str(spec["value"])
        elif "columns" in spec:
            found = {k: plan.find_header(alternatives(v)) for k, v in spec["columns"].items()}
            if any(i is None for i in found.values()):
                preset_lacks(plan, name)
                continue
            choice.columns = {k: i for k, i in found.items() if i is not None}
        else:
            index = plan.find_header(alternatives(spec.get("column")))
            if index is None:
                preset_lacks(plan, name)
                continue
            choice.column = index
        _preset_options(choice, spec, defaults)
        plan.assign(choice)
    for rule in section.get("skip", []):
        if not isinstance(rule, dict) or "pattern" not in rule:
            continue
        if rule.get("column"):
            index = plan.find_header(alternatives(rule["column"]))
            if index is None:
                continue
            plan.skip.append(SkipRule(index, rule["pattern"], "from the preset"))
        else:
            plan.skip.append(SkipRule(None, rule["pattern"], "from the preset"))
    key = [own_field(plan.kind, k) or k for k in alternatives(section.get("key"))]
    if key:
        plan.key = key


def other_targets_field(plan: Plan, name: str) -> bool:
    """Whether `name` is a field of the vocabulary's API (a preset names its fields), where
    this kind is another API's."""
    named = plan.vocabulary_kind
    return named is not None and named is not plan.kind and named.field(name) is not None


def preset_lacks(plan: Plan, name: str) -> None:
    # a preset covers several layouts of its vendor: only a missing required field is news
    if name in plan.required:
        plan.preset_missing.append(name)
