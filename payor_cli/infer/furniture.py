"""Report furniture: skip rules for total rows, footers and group headings a dry run would reject."""

from __future__ import annotations

import re
from collections import Counter

from payor_cli.infer.plan import Plan, SkipRule

_TOTAL_ROWS = r"(?i)^(grand |sub-?)?totals?\b"
_TOTAL_CELLS = r"(?i)^(grand |sub-?)?totals?( for .*)?$"
_FURNITURE = (
    (r"^\*+$", r"^\*+$", "total rows (*, **)"),
    (_TOTAL_ROWS, _TOTAL_CELLS, "total rows"),
    (
        r"(?i)^(gesamtsumme|gesamt|summe|zwischensumme|ergebnis|insgesamt)\b",
        r"(?i)^(gesamtsumme|gesamt|summe|zwischensumme|ergebnis|insgesamt)$",
        "total rows",
    ),
    (
        r"(?i)^(monday|tuesday|wednesday|thursday|friday|saturday|sunday),",
        r"(?i)^(monday|tuesday|wednesday|thursday|friday|saturday|sunday), .*\d:\d\d",
        "the report's timestamp footer",
    ),
    (r"(?i)^(accrual|cash) basis\b", r"(?i)^(accrual|cash) basis\b", "the report's footer"),
)


def required_columns(plan: Plan) -> list[int]:
    columns = []
    for name in plan.required:
        choice = plan.choices.get(name)
        if choice and choice.column is not None:
            columns.append(choice.column)
        elif choice and choice.columns:
            columns.extend(choice.columns.values())
    return sorted(set(columns))


def rule_hits(plan: Plan, rule: SkipRule, rows: list[int]) -> list[int]:
    compiled = re.compile(rule.pattern)
    targets = [rule.column] if rule.column is not None else range(len(plan.headers))
    hits = []
    for r in rows:
        for index in targets:
            cell = plan.sample.columns[index][r]
            if cell is not None and compiled.search(cell):
                hits.append(r)
                break
    return hits


def find_furniture(plan: Plan) -> None:
    """Skip rules for report rows a dry run would otherwise reject (totals, footers)."""
    required = required_columns(plan)
    sample = plan.sample
    every = range(sample.rows)
    if not required:
        return
    columns = sample.columns
    active = [r for r in every if any(columns[i][r] is not None for i in required)]
    complete = [r for r in active if all(columns[i][r] is not None for i in required)]
    for rule in list(plan.skip):
        if rule_hits(plan, rule, complete):
            plan.skip.remove(rule)
            plan.notes.append(
                f"left out the preset's skip rule {rule.pattern!r}: it would drop rows "
                f"such as row {sample.first_row + rule_hits(plan, rule, complete)[0]}"
            )
    skipped = set()
    for rule in plan.skip:
        skipped.update(rule_hits(plan, rule, active))
    whole = set(complete)
    partial = [r for r in active if r not in skipped and r not in whole]
    proposals = _proposals(plan, partial)
    for rule_options in proposals.values():
        for rule in rule_options:
            if rule_hits(plan, rule, complete):
                continue  # it would drop real rows
            if rule_hits(plan, rule, partial):
                plan.skip.append(rule)
            break
    rows_skipped = set()
    for rule in plan.skip:
        rows_skipped.update(rule_hits(plan, rule, active))
    plan.value_rows = [r for r in active if r not in rows_skipped] or plan.data_rows


def _proposals(plan: Plan, partial: list[int]) -> dict[tuple[int | None, str], list[SkipRule]]:
    """Candidate skip rules for incomplete rows: known furniture, or a word that starts several
    of them (group headings); per rule, the broad pattern first and a narrower fallback."""
    columns = plan.sample.columns
    proposals: dict[tuple[int | None, str], list[SkipRule]] = {}
    tokens: Counter[tuple[int, str]] = Counter()
    for r in partial:
        cells = [(i, columns[i][r]) for i in range(len(plan.headers)) if columns[i][r]]
        if not cells:
            continue
        stars = next(((i, c) for i, c in cells if re.fullmatch(r"\*+", c)), None)
        index, text = stars or cells[0]
        named = index in plan.addressable
        for column_pattern, cell_pattern, why in _FURNITURE:
            if re.search(column_pattern, text):
                # the broad pattern for the column, else the exact one (a customer may be
                # called "Total Wine"); a column a mapping cannot name: every column, exact
                patterns = [column_pattern, cell_pattern] if named else [cell_pattern]
                rule_options = [
                    SkipRule(index if named else None, pattern, why) for pattern in patterns
                ]
                proposals.setdefault((rule_options[0].column, column_pattern), rule_options)
                break
        else:
            word = re.match(r"([^\W\d_]{3,})(\s|$)", text)
            if word and named:
                tokens[index, word.group(1)] += 1
    for (index, word), count in tokens.items():
        if count >= 2:
            pattern = rf"^{re.escape(word)}\b"
            proposals.setdefault(
                (index, pattern), [SkipRule(index, pattern, f'group headings ("{word} ...")')]
            )
    return proposals
