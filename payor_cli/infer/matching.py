"""Field choice by meaning: label families ranked, checked against the values, explained."""

from __future__ import annotations

import re

from payor_cli.infer.labels import (
    ALIAS_COMMENTS,
    LABELS_OF,
    MEANINGS,
    VALUE_SHAPES,
    VOCABULARY_TARGET,
    WEAK_SCORE,
    own_field,
)
from payor_cli.infer.plan import Choice, Plan
from payor_cli.infer.sample import are_names
from payor_cli.schema import FieldType

_SHAPE_WORDS = {"code": "codes", "words": "names"}

_CUSTOMER_FIELDS = ("customerNumber", "customerName", "customerno", "companyname")
"""PayorCRM's fields that name a customer (other targets' borrow their labels)."""
INVOICE_NUMBERS = re.compile(
    r"(?i)^(?:[a-z]{2,5}-)?(?:inv|invoice|bill|sinv|re|rg|rech|rechnung|fa|fac|fact|facture|"
    r"factura|ft|fv)[-_ #./:]*(?:[a-z0-9]+[-/])*\d+$"
)
"""Values that are invoice numbers by their shape: INV-1, INV-000001, ACC-SINV-2021-00001, RE-7."""


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
        misfits = _customer_misfits(plan, f.name, free)
        for index in free:
            if index in misfits:
                continue
            scored = plan.label_score(f.name, index)
            if scored is None:
                continue
            if not plan.compatible(f.name, index):
                if scored[0] >= WEAK_SCORE:
                    plan.unfit.setdefault(f.name, (index, plan.unfit_values(f.name)))
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


def _is_customer_field(plan: Plan, name: str) -> bool:
    sources = LABELS_OF.get(name, ()) if plan.kind.target != VOCABULARY_TARGET else ()
    return name in _CUSTOMER_FIELDS or any(s in _CUSTOMER_FIELDS for s in sources)


def invoice_column(plan: Plan) -> int | None:
    """The column that most likely holds the invoice number: by its label, else its values."""
    name = own_field(plan.kind, "invoiceNumber")
    if name is None:
        return None
    best = None
    for index in sorted(plan.addressable):
        scored = plan.label_score(name, index)
        if scored and scored[1] != "similar" and plan.fill(index) >= 0.5:
            best = max(best or (0.0, 0), (scored[0], -index))
    if best is not None:
        return -best[1]
    return next((i for i in sorted(plan.addressable) if _holds_invoice_numbers(plan, i)), None)


def _holds_invoice_numbers(plan: Plan, index: int) -> bool:
    """Whether nearly every value of a column has an invoice number's shape (INV-1, RE-7), and
    few repeat (the lines of one invoice may)."""
    texts = plan.sample.texts(index, plan.data_rows)
    if len(texts) < 2 or plan.fill(index) < 0.9:
        return False
    numbered = sum(1 for t in texts if INVOICE_NUMBERS.match(t))
    return numbered >= 0.9 * len(texts) and len(set(texts)) >= 0.3 * len(texts)


def _customer_misfits(plan: Plan, name: str, free: list[int]) -> dict[int, str]:
    """The columns labelled for an invoice's customer whose values do not behave like one: a
    customer column varies with the customer and is the same on every line of an invoice. A
    code that is one value on invoices of different customers is the seller's own account; a
    column that differs between an invoice's lines is a line's (a ledger account). Left out
    only where another labelled column behaves."""
    if not _is_customer_field(plan, name):
        return {}
    labelled = [
        i for i in free if plan.label_score(name, i) is not None and plan.compatible(name, i)
    ]
    if plan.kind.name != "invoices":
        # a customer list made from an invoice export: its invoice numbers are no customer's
        invoice = next((i for i in labelled if _holds_invoice_numbers(plan, i)), None)
        if invoice is not None and len(labelled) >= 2:
            plan.misfits[name] = {invoice: "it holds invoice numbers"}
            return plan.misfits[name]
        return {}
    invoice = invoice_column(plan)
    if len(labelled) < 2 or invoice is None:
        return {}
    numbers = plan.sample.columns[invoice]
    groups: dict[str, list[int]] = {}
    for r in plan.data_rows:
        if numbers[r] is not None:
            groups.setdefault(numbers[r], []).append(r)
    reasons: dict[int, str] = {}
    for index in labelled:
        if index == invoice:
            reasons[index] = "it holds the invoice numbers"
            continue
        column = plan.sample.columns[index]
        seen = {column[r] for r in plan.data_rows if column[r] is not None}
        if len(seen) == 1 and len(groups) >= 3:
            reasons[index] = f"one value on all {len(groups)} invoices"
        elif any(len({column[r] for r in rows} - {None}) > 1 for rows in groups.values()):
            reasons[index] = "it differs between an invoice's lines"
    if len(reasons) == len(labelled) or not reasons:
        return {}
    plan.misfits[name] = reasons
    return reasons


def invoice_number_by_values(plan: Plan) -> None:
    """No column is labelled for the invoice number: one whose values all have its shape
    (`Details`: INV-1, INV-2) is it."""
    name = own_field(plan.kind, "invoiceNumber")
    if name is None or plan.kind.name != "invoices":
        return
    held = plan.choices.get(name)
    if held is not None and held.how != "similar":
        return
    for index in sorted(plan.addressable):
        holder = next((c for c in plan.choices.values() if index in plan.sources(c)), None)
        if holder is not None and holder is not held:
            continue
        if index == (held.column if held else None) or not _holds_invoice_numbers(plan, index):
            continue
        if held is not None:
            plan.used.discard(held.column)
        example = next(iter(plan.sample.texts(index, plan.data_rows)))
        plan.assign(
            Choice(name, plan.kind.field(name).type, column=index, how="values",
                   comments=[f"its values are invoice numbers ({example!r}, ...)"])
        )  # fmt: skip
        return


def match_labels(plan: Plan) -> None:
    """Fields to columns by label and values: required fields first, each column and field once."""
    free = [i for i in sorted(plan.addressable) if i not in plan.used]
    for required in (True, False):
        pairs = _candidates(plan, free, required)
        for _, _, name, index, how in pairs:
            if name in plan.choices or index in plan.used:
                continue
            choice = Choice(name, plan.kind.field(name).type, column=index, how=how)
            above = plan.label_above(name, index)
            if above:
                choice.comments.append(f"labelled {above!r} in the row above")
            if how == "similar":
                choice.comments.append("matched by a similar label: check")
            if name in ALIAS_COMMENTS:
                _alias_comments(plan, choice)
            if not shape_fits(plan, name, index):
                choice.comments.append(_last_resort(plan, name))
            if required:
                _gaps_comment(plan, choice, pairs)
            misfits = plan.misfits.get(name)
            if misfits:
                behaves = (
                    "it varies with the customer and is the same on each line of an invoice; "
                    if plan.kind.name == "invoices"
                    else ""
                )
                choice.comments.append(
                    f"{plan.header(index)}: {behaves}"
                    + ", ".join(f"not {plan.header(i)!r} ({why})" for i, why in misfits.items())
                )
            plan.passed_over[name] = [
                i for _, _, n, i, h in pairs if n == name and i != index and h != "similar"
            ]
            plan.assign(choice)
    for name, (index, type_name) in plan.unfit.items():
        if name not in plan.choices:
            example = next(iter(plan.sample.texts(index, plan.data_rows)), "")
            plan.notes.append(
                f"column {plan.header(index)!r} is named like {name}, but its values are "
                f"not {type_name} (e.g. {example!r}): not mapped"
            )


def _alias_comments(plan: Plan, choice: Choice) -> None:
    choice.comments.append(ALIAS_COMMENTS[choice.field])
    texts = plan.sample.texts(choice.column, plan.data_rows)
    codes = texts and not any("@" in t for t in texts) and not are_names(texts)
    if plan.kind.parent and choice.field == plan.kind.parent[1] and codes:
        choice.comments.insert(0, "check: these look like customer numbers")


def _last_resort(plan: Plan, name: str) -> str:
    if wanted_shape(plan, name) == "code":
        if plan.misfits.get(name):
            return "names, the last resort: no other column holds the customer's number or code"
        return "names, the last resort: no column holds a number or code for it"
    return "codes, the last resort: no column holds names for it"


def _gaps_comment(plan: Plan, choice: Choice, pairs: list[tuple]) -> None:
    """Say so where a better-labelled column was passed over because it has empty cells."""
    chosen_score = plan.label_score(choice.field, choice.column)[0]
    passed = [
        i
        for rank, _, other, i, _ in pairs
        if other == choice.field and not rank[0] and rank[3] > chosen_score
    ]
    if passed:
        where = "every row" if plan.fill(passed[0]) == 0 else "some rows"
        choice.comments.append(f"not {plan.header(passed[0])!r}: it is empty in {where}")


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
    """Where a customer's name is its identity, one column feeds the number and the name: a
    number column holding names is sent as the name too, and where no column holds a number,
    the name column is the number (the last resort), in customers and invoices alike."""
    pairs = {
        "invoices": ("customerNumber", "customerName"),
        "customers": ("customerno", "companyname"),
    }
    number, name = pairs.get(plan.kind.name, (None, None))
    if not number or plan.kind.field(name) is None or plan.kind.field(number) is None:
        return
    if number not in plan.choices and name in plan.choices:
        source = plan.choices[name]
        if source.column is None:
            return
        texts = plan.sample.texts(source.column, plan.data_rows)
        if plan.fill(source.column) >= 0.99 and are_names(texts):
            plan.choices[number] = Choice(
                number,
                FieldType.STRING,
                column=source.column,
                how="shared",
                comments=[
                    f"the same column as {name}: no column holds a number or code, so the "
                    "name is the customer's identity"
                ],
            )
        return
    if name in plan.choices or number not in plan.choices:
        return
    source = plan.choices[number]
    if source.column is None:
        return
    texts = plan.sample.texts(source.column, plan.data_rows)
    if are_names(texts):
        plan.choices[name] = Choice(
            name,
            FieldType.STRING,
            column=source.column,
            how="shared",
            comments=["the same column: this export names customers by their name"],
        )
