"""`payor init`'s engine: a commented mapping suggested from a file's layout, labels and values."""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from payor_cli import read as readers
from payor_cli.check.binding import bind
from payor_cli.check.mapping import Mapping, parse_mapping
from payor_cli.check.validate import Validator
from payor_cli.contract import Target
from payor_cli.infer.furniture import find_furniture
from payor_cli.infer.keys import choose_key
from payor_cli.infer.labels import VOCABULARY_TARGET
from payor_cli.infer.layout import locate
from payor_cli.infer.matching import (
    apply_meanings,
    explain_choices,
    invoice_number_by_values,
    match_labels,
    share_names,
)
from payor_cli.infer.plan import Plan
from payor_cli.infer.presets import apply_preset, preset_section
from payor_cli.infer.render import one_value_serves, render
from payor_cli.infer.sample import SAMPLE_ROWS, Sample
from payor_cli.infer.value_formats import infer_values
from payor_cli.read import InputOptions, Table
from payor_cli.schema import Apis, FieldType, Kind


@dataclass
class Suggestion:
    """What `payor init` suggests for one file: the TOML to write and what to tell the user."""

    kind: Kind
    toml: str
    """The commented mapping TOML text, a [customers] or [invoices] section, ready to write."""
    mapping: Mapping | None
    """`parse_mapping` of that TOML when complete (None if required fields are TODO)."""
    todo: list[str]
    """Required fields that no column was found for."""
    notes: list[str]
    """Things the user should confirm (ambiguous date order, duplicate keys, ...)."""
    source: str
    """What was detected: sheet, header row, encoding, delimiter."""
    problem: str | None = None
    """Why the suggestion is not to be tried as it is: its own dry run rejects most rows."""


def suggest_mapping(
    path: Path,
    kind: Kind,
    options: InputOptions | None = None,
    preset: str | None = None,
    *,
    target: Target,
    apis: Apis,
) -> Suggestion:
    """The mapping `payor init` suggests for a file: layout detected, columns and formats inferred
    (`kind` one of `target`'s; `apis`: every API's kinds, as the registry has them).

    Raises InputError when the file cannot be read and MappingError for an unknown preset.
    """
    path = Path(path)
    options = options or InputOptions()
    section = preset_section(preset, kind) if preset else None
    located = locate(path, options, section)
    table = readers.open_table(path, located.options, chunk_rows=SAMPLE_ROWS)
    sample = Sample.read(table, SAMPLE_ROWS)
    vocabulary_kind = apis.get(VOCABULARY_TARGET, {}).get(kind.name)
    plan = Plan(kind, table.headers, sample, vocabulary_kind, located.labels_above)
    if section is not None:
        apply_preset(plan, section)
    match_labels(plan)
    invoice_number_by_values(plan)
    apply_meanings(plan)
    share_names(plan)
    explain_choices(plan)
    find_furniture(plan)
    infer_values(plan)
    choose_key(plan)
    todo = [name for name in plan.required if name not in plan.choices]
    if plan.preset_missing:
        plan.notes.append(
            "the preset's columns for "
            + ", ".join(plan.preset_missing)
            + " are not in this file"
            + (": matched them by their labels instead" if not todo else "")
        )
    for name in todo:
        plan.notes.append(_missing_note(plan, name))
    toml = render(plan, located, path, table, preset, todo)
    mapping = None
    problem = None
    if not todo:
        data = tomllib.loads(toml)
        mapping = parse_mapping(data[kind.name], kind, f"suggested mapping for {path.name}", apis)
        extra, rejected = _verify(mapping, table, sample, target)
        if extra:
            plan.notes.extend(extra)
            toml = render(plan, located, path, table, preset, todo)
        if rejected > sample.rows / 2:
            problem = (
                f"the suggested mapping's own dry run rejects {rejected} of the first "
                f"{sample.rows} rows (see the note): check its header row and columns before "
                "an upload"
            )
    return Suggestion(kind, toml, mapping, todo, plan.notes, table.describe(), problem)


def _missing_note(plan: Plan, name: str) -> str:
    """What the API lacks when no column holds a required field, and how to supply it."""
    if not one_value_serves(plan, name):
        return f"no column found for {name} (required): name it in the mapping"
    what = "an e-mail address" if plan.kind.field(name).type is FieldType.EMAIL else "a value"
    return (
        f"no column found for {name}: the API requires {what} on every record; name the column "
        f"that holds it in the TODO line, or give every record the same one with "
        f'{name} = {{ value = "..." }}'
    )


def _verify(
    mapping: Mapping, table: Table, sample: Sample, target: Target
) -> tuple[list[str], int]:
    """A dry run over the sample: what it would reject, as notes, and how many rows."""
    if sample.chunk is None or not sample.rows:
        return [], 0
    bound = bind(mapping, table.headers, str(table.path))
    result = Validator(bound, target)(sample.chunk)
    if not result.rejected:
        return [], 0
    reasons: Counter[str] = Counter()
    first: dict[str, int] = {}
    for row in result.rejected:
        for error in row.errors:
            reasons[error.reason] += 1
            first.setdefault(error.reason, row.row)
    shown = "; ".join(
        f"{reason} ({count}x, first row {first[reason]})"
        for reason, count in reasons.most_common(3)
    )
    note = f"a dry run of the first {sample.rows} rows rejects {len(result.rejected)}: {shown}"
    return [note], len(result.rejected)
