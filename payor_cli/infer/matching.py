"""Field choice by meaning: label families ranked, checked against the values, explained."""

from __future__ import annotations

from payor_cli.infer.labels import (
    ALIAS_COMMENTS,
    LABELS_OF,
    MEANINGS,
    NORMALISED,
    VALUE_SHAPES,
    WEAK_SCORE,
    label_score,
    own_field,
)
from payor_cli.infer.plan import Choice, Plan
from payor_cli.infer.sample import are_names
from payor_cli.schema import FieldType

_SHAPE_WORDS = {"code": "codes", "words": "names"}


def wanted_shape(plan: Plan, name: str) -> str | None:
    """'code' for a number field, 'words' for a name field, None for a field of neither."""
    shape = VALUE_SHAPES.get(name)
    if shape is None and name in LABELS_OF:
        shape = VALUE_SHAPES.get(LABELS_OF[name][0])
    return shape


def shape_fits(plan: Plan, name: str, index: int) -> bool:
    """Whether a column's values have the shape the field wants: codes, or names in words."""
    shape = wanted_shape(plan, name)
    if shape is None:
        return True
    texts = plan.sample.texts(index, plan.data_rows)
    if not texts:
        return True
    return are_names(texts) == (shape == "words")


def _candidates(plan: Plan, free: list[int], required: bool) -> list[tuple]:
    """(rank, -index, field, index, how) of every field of the pass with a column it fits."""
    pairs = []
    for f in plan.kind.fields:
        if f.name in plan.choices or (f.name in plan.required) != required:
            continue
        for index in free:
            scored = label_score(plan.kind, f.name, plan.normal[index])
            if scored is None:
                continue
            if not plan.compatible(f.name, index):
                if scored[0] >= WEAK_SCORE:
                    plan.unfit.setdefault(f.name, (index, f.type.value))
                continue
            score, how = scored
            fill = plan.fill(index)
            # a required field wants a column filled on every row (Xero's AccountNumber is often
            # empty, its ContactName never); then a label over a look-alike (Xero's AccountCode
            # is a ledger account); then the values' shape: a number holds codes, a name words
            shaped = shape_fits(plan, f.name, index)
            labelled = how != "similar"
            rank = (shaped, score, fill)
            rank = (fill >= 0.99, labelled, *rank) if required else (labelled, *rank)
            pairs.append((rank, -index, f.name, index, how))
    return sorted(pairs, reverse=True)


def match_labels(plan: Plan) -> None:
    """Fields to columns by label and values: required fields first, each column and field once."""
    free = [i for i in sorted(plan.addressable) if i not in plan.used]
    for required in (True, False):
        pairs = _candidates(plan, free, required)
        for _, _, name, index, how in pairs:
            if name in plan.choices or index in plan.used:
                continue
            choice = Choice(name, plan.kind.field(name).type, column=index, how=how)
            if how == "similar":
                choice.comments.append("matched by a similar label: check")
            if name in ALIAS_COMMENTS:
                _alias_comments(plan, choice)
            if not shape_fits(plan, name, index):
                choice.comments.append(_last_resort(plan, name))
            if required:
                _gaps_comment(plan, choice, pairs)
            plan.passed_over[name] = [
                i for _, _, n, i, h in pairs if n == name and i != index and h != "similar"
            ]
            plan.assign(choice)
    for name, (index, type_name) in plan.unfit.items():
        if name not in plan.choices:
            example = next(iter(plan.sample.texts(index, plan.data_rows)), "")
            plan.notes.append(
                f"column {plan.header(index)!r} is named like {name}, but its values are "
                f"not {type_name}s (e.g. {example!r}): not mapped"
            )


def _alias_comments(plan: Plan, choice: Choice) -> None:
    choice.comments.append(ALIAS_COMMENTS[choice.field])
    texts = plan.sample.texts(choice.column, plan.data_rows)
    codes = texts and not any("@" in t for t in texts) and not are_names(texts)
    if plan.kind.parent and choice.field == plan.kind.parent[1] and codes:
        choice.comments.insert(0, "check: these look like customer numbers")


def _last_resort(plan: Plan, name: str) -> str:
    if wanted_shape(plan, name) == "code":
        return "names, the last resort: no column holds a number or code for it"
    return "codes, the last resort: no column holds names for it"


def _gaps_comment(plan: Plan, choice: Choice, pairs: list[tuple]) -> None:
    """Say so where a better-labelled column was passed over because it has empty cells."""
    chosen_score = label_score(plan.kind, choice.field, plan.normal[choice.column])[0]
    passed = [
        i
        for rank, _, other, i, _ in pairs
        if other == choice.field and not rank[0] and rank[3] > chosen_score
    ]
    if passed:
        choice.comments.append(f"not {plan.header(passed[0])!r}: it is empty in some rows")


def apply_meanings(plan: Plan) -> None:
    """Vendor labels whose meaning their words do not say (SAP's Referenz is the invoice number)."""
    for rule in MEANINGS:
        name = own_field(plan.kind, rule["field"])
        choice = plan.choices.get(name) if name else None
        if choice is None or choice.column is None or choice.how == "preset":
            continue
        if plan.normal[choice.column] not in rule["over"]:
            continue
        if rule["when"] and not any(n in rule["when"] for n in plan.normal):
            continue
        preferred = _preferred_column(plan, rule, choice)
        if preferred is not None:
            _take_meaning(plan, rule, choice, preferred)


def _preferred_column(plan: Plan, rule: dict, choice: Choice) -> int | None:
    for index, normal in enumerate(plan.normal):
        if normal not in rule["prefer"] or index not in plan.addressable:
            continue
        holder = next((c for c in plan.choices.values() if c.column == index), None)
        if holder is not None and holder.how == "preset":
            continue
        if plan.fill(index) >= 0.5 and plan.compatible(choice.field, index):
            return index
    return None


def _take_meaning(plan: Plan, rule: dict, choice: Choice, preferred: int) -> None:
    """The preferred column feeds the field; the column it had moves to the field it means."""
    old = choice.column
    for other in [c for c in plan.choices.values() if c.column == preferred]:
        del plan.choices[other.field]
    plan.used.discard(old)
    moved = own_field(plan.kind, rule["moves_to"])
    fate = f"{plan.header(old)} -> {moved}" if moved else f"{plan.header(old)} is not mapped"
    plan.assign(
        Choice(choice.field, choice.type, column=preferred, how="meaning",
               comments=[f"{plan.header(preferred)}: {rule['why']}; {fate}"])
    )  # fmt: skip
    if moved and moved not in plan.choices:
        plan.assign(
            Choice(moved, plan.kind.field(moved).type, column=old, how="meaning",
                   comments=[f"{plan.header(old)}: {rule['moved_why']}"])
        )  # fmt: skip
    empty = [r for r in plan.data_rows if plan.sample.columns[preferred][r] is None]
    if empty:
        plan.notes.append(
            f"{choice.field} ({plan.header(preferred)!r}) is empty in {len(empty)} row(s), such "
            f"as row {plan.sample.first_row + empty[0]} (a payment, say): those rows will be "
            "rejected"
        )


def explain_choices(plan: Plan) -> None:
    """A one-line why on each choice that passed over another column: what became of that one."""
    for name, others in plan.passed_over.items():
        choice = plan.choices.get(name)
        if choice is None or choice.column is None or choice.how == "meaning" or not others:
            continue
        if any(c.startswith("not ") for c in choice.comments):
            continue
        alternative = others[0]
        holder = next((c.field for c in plan.choices.values() if c.column == alternative), None)
        fate = f"-> {holder}" if holder else "is not mapped"
        shape = wanted_shape(plan, name)
        if shape and shape_fits(plan, name, choice.column):
            why = f"{_SHAPE_WORDS[shape]}"
            if not shape_fits(plan, name, alternative):
                why += f", where {plan.header(alternative)!r} holds {_other_shape(shape)}"
        else:
            why = "the label that names it best"
        choice.comments.append(
            f"{plan.header(choice.column)}: {why}; {plan.header(alternative)} {fate}"
        )


def _other_shape(shape: str) -> str:
    return "names" if shape == "code" else "codes"


def share_names(plan: Plan) -> None:
    """Where a customer's name is its identity, send it as the name too."""
    pairs = {
        "invoices": ("customerNumber", "customerName"),
        "customers": ("customerno", "companyname"),
    }
    number, name = pairs.get(plan.kind.name, (None, None))
    if not number or name in plan.choices or number not in plan.choices:
        return
    source = plan.choices[number]
    if source.column is None or plan.kind.field(name) is None:
        return
    _, weak = NORMALISED[plan.kind.name].get(number, ([], []))
    texts = plan.sample.texts(source.column, plan.data_rows)
    if plan.normal[source.column] in weak and are_names(texts):
        plan.choices[name] = Choice(
            name,
            FieldType.STRING,
            column=source.column,
            how="shared",
            comments=["the same column: this export names customers by their name"],
        )
