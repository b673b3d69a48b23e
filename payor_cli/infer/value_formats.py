"""Value settings of the chosen columns: date formats, separators, scale, with notes on misfits."""

from __future__ import annotations

import re
from decimal import Decimal

from payor_cli.infer.amounts import NUMBER_TYPES, PLACES, amount_bad, guess_amounts
from payor_cli.infer.dates import (
    CONFIRM_ORDER,
    DateGuess,
    date_ok,
    date_separator,
    day_month_order,
    guess_dates,
    swapped_order,
)
from payor_cli.infer.labels import MISSING_MARKERS, VALUE_SHAPES
from payor_cli.infer.plan import Choice, Plan
from payor_cli.schema import FieldType


def _missing_markers(choice: Choice, texts: list[str]) -> None:
    """`missing` for the texts that stand for an empty cell (R's NA): not a customer "NA"."""
    present = set(texts)
    markers = [m for m in MISSING_MARKERS if m in present]
    if markers:
        choice.options["missing"] = markers
        shown = ", ".join(repr(m) for m in markers)
        choice.comments.append(f"{shown}: an empty cell, as R and spreadsheets write it")


def infer_values(plan: Plan) -> None:
    """Date formats, amount settings and e-mail checks of the chosen columns, with notes."""
    dates: list[tuple[Choice, DateGuess]] = []
    for choice in plan.choices.values():
        if choice.column is None or choice.how == "shared":
            continue
        texts = plan.sample.texts(choice.column, plan.value_rows)
        if choice.field in VALUE_SHAPES and "missing" not in choice.options:
            _missing_markers(choice, texts)
        if choice.type is FieldType.DATE:
            dates.append((choice, infer_date(plan, choice, texts)))
        elif choice.type in NUMBER_TYPES:
            infer_amount(plan, choice, texts)
        elif choice.type is FieldType.EMAIL:
            bad = [t for t in texts if not re.fullmatch(r"[^@\s]+@[^@\s]+", t)]
            if bad:
                plan.notes.append(
                    f"{choice.field} (column {plan.header(choice.column)!r}): "
                    f"{len(bad)} value(s) are not e-mail addresses, e.g. {bad[0]!r}"
                )
    # one file, one habit: a column whose order is clear settles the undecided ones
    decided: dict[str, set[str]] = {}
    for choice, guess in dates:
        formats = choice.options.get("format") or ()
        if guess.formats and not guess.ambiguous and "format" not in choice.fixed:
            for f in formats:
                if day_month_order(f):
                    decided.setdefault(date_separator(f), set()).add(day_month_order(f))
    for choice, guess in dates:
        if not guess.ambiguous or "format" in choice.fixed:
            continue
        fmt = choice.options["format"][0]
        orders = decided.get(date_separator(fmt), set())
        if len(orders) == 1:
            order = next(iter(orders))
            if day_month_order(fmt) != order:
                choice.options["format"] = (swapped_order(fmt),)
            continue
        choice.comments.append(CONFIRM_ORDER)
        plan.notes.append(
            f"{choice.field} (column {plan.header(choice.column)!r}): the day/month order "
            f"could not be decided from the data (no day above 12); guessed "
            f"{choice.options['format'][0]}: confirm"
        )


def infer_date(plan: Plan, choice: Choice, texts: list[str]) -> DateGuess:
    where = f"{choice.field} (column {plan.header(choice.column)!r})"
    if "format" in choice.fixed:
        if not texts or not date_ok(texts, choice.options["format"]):
            return DateGuess(choice.options["format"])
        guess = guess_dates(texts)
        if guess.coverage > 0.99:
            plan.notes.append(
                f"{where}: the preset's format {choice.options['format'][0]} does not read "
                f"values such as {date_ok(texts, choice.options['format'])[0]!r}; "
                f"used {guess.formats[0] if guess.formats else 'ISO (YYYY-MM-DD)'}"
            )
            choice.fixed.discard("format")
            choice.options.pop("format")
        else:
            plan.notes.append(
                f"{where}: values such as {date_ok(texts, choice.options['format'])[0]!r} "
                f"are not dates in the preset's format {choice.options['format'][0]}; "
                "those rows will be rejected"
            )
            return DateGuess(choice.options["format"])
    else:
        guess = guess_dates(texts)
    if guess.formats:
        choice.options["format"] = guess.formats
        if len(guess.formats) > 1:
            choice.comments.append("several date styles in this column")
    if guess.coverage < 1 and guess.bad:
        plan.notes.append(
            f"{where}: {guess.misfits} distinct value(s) are not dates in a known format, "
            f"e.g. {guess.bad[0]!r}; those rows will be rejected"
        )
    return guess


def infer_amount(plan: Plan, choice: Choice, texts: list[str]) -> None:
    """decimal, thousands and (integers only) scale; money and decimals have no scale."""
    where = f"{choice.field} (column {plan.header(choice.column)!r})"
    guess = guess_amounts(texts)
    places = PLACES.get(choice.type)
    own_scale = 10**places if places is not None else None
    fixed = choice.fixed & {"decimal", "thousands"}
    if fixed:
        decimal = choice.options.get("decimal", ".")
        thousands = choice.options.get("thousands")
        scale = own_scale or choice.options.get("scale", guess.scale or 1)
        if amount_bad(texts, decimal, thousands, scale) and guess.coverage == 1:
            plan.notes.append(
                f"{where}: the preset's decimal {decimal!r} does not read these amounts; "
                f"used decimal {guess.decimal or '.'!r}"
            )
            choice.fixed -= {"decimal", "thousands"}
            choice.options.pop("decimal", None)
            choice.options.pop("thousands", None)
    if not choice.fixed & {"decimal", "thousands"}:
        if guess.decimal and (guess.decimal != "." or guess.thousands):
            choice.options["decimal"] = guess.decimal
        if guess.thousands:
            choice.options["thousands"] = guess.thousands
            choice.options.setdefault("decimal", guess.decimal or ".")
    comments = []
    if own_scale:
        choice.options.pop("scale", None)
        if guess.note:
            plan.notes.append(f"{where}: {guess.note}")
    elif "scale" not in choice.fixed:
        if guess.scale:
            choice.options["scale"] = guess.scale
            if guess.scale == 100:
                comments.append("amounts have decimals: sent in cents (x100)")
        if guess.scale_note or guess.note:
            plan.notes.append(f"{where}: {guess.scale_note or guess.note}")
    elif Decimal(str(choice.options["scale"])) == 100:
        comments.append("sent in cents (x100)")
    decimal = choice.options.get("decimal", ".")
    thousands = choice.options.get("thousands")
    scale = own_scale or choice.options.get("scale", 1)
    left = amount_bad(texts, decimal, thousands, scale)
    if left:
        settings = (
            f"at most {places} decimals and these separators" if own_scale else "these settings"
        )
        plan.notes.append(
            f"{where}: {len(left)} distinct value(s) are not amounts with {settings}, "
            f"e.g. {left[0]!r}; those rows will be rejected"
        )
    if guess.negatives:
        shown = " and ".join(f"{how} ({example})" for how, example in guess.negatives.items())
        comments.append(f"{shown}: read as negative")
    choice.comments.extend(comments)
