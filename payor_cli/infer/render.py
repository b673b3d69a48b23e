"""The suggested mapping as commented TOML: section settings, field lines, unmapped columns."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from payor_cli.infer.amounts import NUMBER_TYPES
from payor_cli.infer.dates import date_ok
from payor_cli.infer.layout import Located
from payor_cli.infer.plan import Choice, Plan
from payor_cli.read import Table
from payor_cli.schema import FieldType

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; DEL must be escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


def _comment(text: str) -> str:
    return " ".join(text.split())


def _with_comment(line: str, comments: list[str]) -> str:
    if not comments:
        return line
    return f"{line}   # {_comment('; '.join(comments))}"


def render(
    plan: Plan,
    located: Located,
    path: Path,
    table: Table,
    preset: str | None,
    todo: list[str],
) -> str:
    """The whole mapping text: the notes, the [KIND] section, its fields, the unmapped columns."""
    kind = plan.kind
    out = [
        f"# Mapping for `payor upload {kind.name}`, suggested by `payor init` from {path.name}",
        f"# ({table.describe()}).",
        "# Check it, then try it with `--dry-run` before a real upload.",
    ]
    if preset:
        out.append(f"# Preset: {preset}")
    out.extend(f"# Note: {_comment(note)}" for note in plan.notes)
    out += ["", f"[{kind.name}]"]
    # the target whose fields these are: an upload to another one stops, naming both
    out.append(f"target = {toml_string(kind.target)}")
    out.extend(_input_lines(located, table))
    # settings shared by every field of a type go to the section
    shared_format = _shared_format(plan)
    if shared_format:
        value = shared_format[0] if len(shared_format) == 1 else list(shared_format)
        out.append(f"date_format = {toml_value(value)}")
    shared_separators = _shared_separators(plan)
    if shared_separators:
        decimal, thousands = shared_separators
        out.append(f"decimal = {toml_string(decimal or '.')}")
        if thousands:
            out.append(f"thousands = {toml_string(thousands)}")
    out.append(_key_line(plan, preset))
    out.extend(_skip_lines(plan))
    out += ["", f"[{kind.name}.fields]"]
    for f in kind.fields:
        choice = plan.choices.get(f.name)
        if choice is not None:
            line = _field_line(plan, choice, shared_format, shared_separators)
            out.append(_with_comment(line, choice.comments))
        elif f.name in plan.left_out:
            # written out, commented: the user sees what was dropped and can take it back
            line = _field_line(plan, plan.left_out[f.name], shared_format, shared_separators)
            why = "left out: it differs between the lines of one invoice, which are one record"
            out.append(f"# {_with_comment(line, [why])}")
        elif f.name in todo:
            out.extend(todo_lines(f.name, f.type, one_value_serves(plan, f.name)))
    out.extend(_unmapped_lines(plan))
    return "\n".join(out) + "\n"


def _input_lines(located: Located, table: Table) -> list[str]:
    """sheet, header_row, encoding and delimiter: what a reader needs to find the table again."""
    out = []
    if located.sheet is not None:
        line = f"sheet = {toml_string(located.sheet)}"
        out.append(
            line if not located.sheet_is_first else f"# {line}   # the first sheet: the default"
        )
    if table.header_row != 1:
        out.append(f"header_row = {table.header_row}")
    if located.state_encoding:
        out.append(f"encoding = {toml_string(located.state_encoding)}")
    elif located.comment_encoding:
        out.append(
            f"# encoding = {toml_string(located.comment_encoding)}   "
            "# detected; set it only if detection ever fails"
        )
    if located.delimiter:
        out.append(f"delimiter = {toml_string(located.delimiter)}")
    if located.options.member:
        out.append(f"member = {toml_string(located.options.member)}")
    return out


def _shared_format(plan: Plan) -> tuple[str, ...] | None:
    """The date format every date field can take from the section, if there is one."""
    date_choices = [
        c for c in plan.choices.values() if c.type is FieldType.DATE and c.column is not None
    ]
    formats = {tuple(c.options["format"]) for c in date_choices if c.options.get("format")}
    if len(formats) != 1:
        return None
    candidate = next(iter(formats))
    for c in date_choices:
        if c.options.get("format"):
            continue
        texts = plan.sample.texts(c.column, plan.value_rows)
        if texts and date_ok(texts, candidate):
            return None
    return candidate


def _shared_separators(plan: Plan) -> tuple[str | None, str | None] | None:
    """The (decimal, thousands) every amount field shares, if they share any but the default."""
    amount_choices = [c for c in plan.choices.values() if c.type in NUMBER_TYPES]
    separators = {(c.options.get("decimal"), c.options.get("thousands")) for c in amount_choices}
    if len(separators) == 1 and next(iter(separators)) != (None, None):
        return next(iter(separators))
    return None


def _key_line(plan: Plan, preset: str | None) -> str:
    key = plan.key or list(plan.kind.key)
    key_line = f"key = {toml_value(key)}"
    if plan.key is not None and preset and not plan.key_comment:
        return _with_comment(key_line, [f"from the preset {preset}"])
    if plan.key_comment:
        return _with_comment(key_line, [plan.key_comment])
    if list(key) == list(plan.kind.key):
        return _with_comment(key_line, ["the default: a repeated key rejects the row"])
    return key_line


def _skip_lines(plan: Plan) -> list[str]:
    if not plan.skip:
        return []
    out = ["skip = ["]
    for rule in plan.skip:
        entry: dict[str, str] = {}
        if rule.column is not None:
            entry["column"] = plan.header(rule.column)
        entry["pattern"] = rule.pattern
        out.append(_with_comment(f"    {toml_value(entry)},", [rule.comment]))
    out.append("]")
    return out


def _unmapped_lines(plan: Plan) -> list[str]:
    """The columns no field takes, listed in comments for the user to map by hand."""
    unmapped = [
        h
        for i, h in enumerate(plan.headers)
        if h.strip()
        and i not in plan.used
        and not any(c.column == i for c in plan.choices.values())
    ]
    if not unmapped:
        return []
    schema = f"payor schema --target {plan.kind.target} {plan.kind.name}"
    out = ["", f"# Columns not mapped (`{schema}` lists the fields):"]
    line = "#"
    for label in (toml_string(h) for h in unmapped):
        if len(line) + len(label) > 98 and line != "#":
            out.append(line.rstrip(","))
            line = "#"
        line += f" {label},"
    out.append(line.rstrip(","))
    return out


_EXAMPLE_VALUES = {FieldType.EMAIL: "ar@yourcompany.example"}


def todo_lines(name: str, ftype: FieldType, one_value: bool) -> list[str]:
    """The commented lines of a required field no column holds: the ways to supply it."""
    if not one_value:
        return [f'# TODO {name} = "..."   (required: name the column that holds it)']
    example = _EXAMPLE_VALUES.get(ftype, "...")
    return [
        f'# TODO {name} = "..."   (required: name the column that holds it,',
        f"#   or give every record the same value: {name} = {{ value = {toml_string(example)} }};",
        '#   a column with a few empty cells takes { column = "...", default = "..." })',
    ]


def one_value_serves(plan: Plan, name: str) -> bool:
    """Whether one value for every record can stand in for a missing column (an e-mail for
    all customers, say; never a key or an amount)."""
    ftype = plan.kind.field(name).type
    return ftype in (FieldType.EMAIL, FieldType.STRING) and name not in plan.kind.key


def _field_line(
    plan: Plan,
    choice: Choice,
    shared_format: tuple[str, ...] | None,
    shared_separators: tuple[str | None, str | None] | None,
) -> str:
    """`field = ...` for one choice, without the settings its section already states."""
    spec: dict[str, Any] = {}
    if choice.value is not None:
        spec["value"] = choice.value
    elif choice.columns:
        spec["columns"] = {k: plan.header(i) for k, i in choice.columns.items()}
    elif choice.summed:
        spec["sum"] = plan.header(choice.column)
        if choice.times is not None:
            spec["times"] = plan.header(choice.times)
    else:
        spec["column"] = plan.header(choice.column)
    options = dict(choice.options)
    if choice.type is FieldType.DATE:
        fmt = options.pop("format", None)
        if fmt and tuple(fmt) != shared_format:
            spec["format"] = fmt[0] if len(fmt) == 1 else list(fmt)
    if choice.type in NUMBER_TYPES:
        decimal = options.pop("decimal", None)
        thousands = options.pop("thousands", None)
        if (decimal, thousands) != shared_separators:
            if decimal or thousands:
                spec["decimal"] = decimal or "."
            if thousands:
                spec["thousands"] = thousands
        if "scale" in options and choice.type is FieldType.INTEGER:
            spec["scale"] = options.pop("scale")
    for option in ("default", "map", "missing"):
        if option in options:
            spec[option] = options.pop(option)
    if list(spec) == ["column"]:
        return f"{choice.field} = {toml_string(spec['column'])}"
    return f"{choice.field} = {toml_value(spec)}"
