"""The key: repeated keys in the sample, and exports with one row per invoice line."""

from __future__ import annotations

from payor_cli import values
from payor_cli.infer.labels import INVOICE_TOTALS, QUANTITIES, UNIT_PRICES, own_field
from payor_cli.infer.plan import Choice, Plan
from payor_cli.infer.value_formats import infer_amount
from payor_cli.schema import FieldType


def choose_key(plan: Plan) -> None:
    default = list(plan.kind.key)
    if plan.key is not None:
        missing = [k for k in plan.key if k not in plan.choices]
        if missing:
            plan.notes.append(
                f"the preset's key {' + '.join(plan.key)} needs {', '.join(missing)}, which "
                f"this file lacks; used {' + '.join(default)}"
            )
            plan.key = None
    # a preset's own key (invoice + line, say) is its author's choice: left as it is
    if plan.kind.name == "invoices" and (plan.key or default) == default:
        _line_level(plan)
    key = plan.key or default
    if not all(k in plan.choices for k in key) or plan.duplicates_noted:
        return
    groups = _groups(plan, key)
    if not groups:
        return
    repeats = sum(len(rows) - 1 for rows in groups)
    differing = _differing_repeats(plan, groups)
    said = []
    if repeats > differing:
        said.append(f"{repeats - differing} with the same values merge into it (sent once)")
    if differing:
        said.append(f"{differing} with other values will be rejected as duplicate_key")
    if not differing and plan.kind.name == "customers":
        plan.key_comment = (
            f"{len(groups)} customers repeat on several rows (an invoice export lists one on "
            "each of its invoices): the rows of a customer are one record, sent once"
        )
    plan.notes.append(
        f"{repeats} row(s) in the first {plan.sample.rows} repeat the {' + '.join(key)} "
        f"of an earlier row: {'; '.join(said)}"
    )


def _key_values(plan: Plan, key: list[str]) -> list[tuple[str | None, ...]]:
    columns = []
    for name in key:
        choice = plan.choices[name]
        if choice.column is None:
            columns.append([choice.value] * plan.sample.rows)
        else:
            # a text that means empty (R's NA) is no key: its rows are rejected, not merged
            missing = set(choice.options.get("missing", ()))
            cells = plan.sample.columns[choice.column]
            columns.append([None if cell in missing else cell for cell in cells])
    return [tuple(c[r] for c in columns) for r in plan.value_rows]


def _groups(plan: Plan, key: list[str]) -> list[list[int]]:
    """The rows of each key value that more than one row of the sample has, in file order."""
    rows: dict[tuple[str | None, ...], list[int]] = {}
    for row, value in zip(plan.value_rows, _key_values(plan, key), strict=True):
        if None not in value:
            rows.setdefault(value, []).append(row)
    return [found for found in rows.values() if len(found) > 1]


def _column_varies(
    plan: Plan, index: int, groups: list[list[int]], choice: Choice | None = None
) -> bool:
    # an empty cell counts: a field left out of one payload makes the payloads differ
    column = _as_sent(plan, index, choice)
    return any(len({column[r] for r in rows}) > 1 for rows in groups)


def _as_sent(plan: Plan, index: int, choice: Choice | None) -> list[str | None]:
    """A column's cells as the field sends them: a date without its time of day (the lines of
    one invoice in the UCI export carry minutes apart, on the same day)."""
    column = plan.sample.columns[index]
    if choice is None or choice.type is not FieldType.DATE:
        return column
    formats = choice.options.get("format")
    parse = values.date_with_formats(tuple(formats)) if formats else values.iso_date
    return [parse(cell) or cell if cell is not None else None for cell in column]


def _varies(plan: Plan, choice: Choice, groups: list[list[int]]) -> bool:
    return any(_column_varies(plan, i, groups, choice) for i in plan.sources(choice))


def _differing_repeats(plan: Plan, groups: list[list[int]]) -> int:
    """Repeated rows whose mapped cells differ from the first row of their key."""
    columns = sorted({i for c in plan.choices.values() for i in plan.sources(c)})
    cells = plan.sample.columns
    return sum(
        1
        for rows in groups
        for r in rows[1:]
        if any(cells[i][r] != cells[i][rows[0]] for i in columns)
    )


def _line_level(plan: Plan) -> None:
    """An export with one row per invoice line: the lines of an invoice make one record.

    PayorCRM knows an invoice by its number alone. Rows that repeat a key with the same
    payload are one record, sent once; a field that differs from line to line would make
    every line after the first a duplicate_key rejection. So the invoice's total is its
    amount, and the line's own fields (text, line number, quantity) are left out.
    """
    number = own_field(plan.kind, "invoiceNumber")
    invoice = plan.choices.get(number) if number else None
    if invoice is None or invoice.column is None:
        return
    invoices = _groups(plan, [invoice.field])
    if not invoices:
        return
    plan.duplicates_noted = True
    plan.key_comment = (
        f"one row per invoice line ({plan.header(invoice.column)!r} repeats): the lines of "
        "an invoice are one record, sent once"
    )
    _invoice_total(plan, invoices)
    _leave_out_line_fields(plan, invoices)


def _invoice_total(plan: Plan, invoices: list[list[int]]) -> None:
    """invoiceAmount from a column the same on every line of an invoice: its total."""
    name = own_field(plan.kind, "invoiceAmount")
    if name is None:
        return
    amount = plan.choices.get(name)
    if amount is not None and not _varies(plan, amount, invoices):
        amount.comments.insert(0, "the invoice's total: the same on each of its lines")
        return
    total = _total_column(plan, invoices, name, amount)
    if total is None:
        summed = _sum_of_lines(plan, invoices, name, amount)
        if summed is not None:
            if amount is not None and summed is not amount and amount.column is not None:
                plan.used.discard(amount.column)
            plan.assign(summed)
        elif amount is not None:
            _line_amount_kept(plan, amount)
        return
    previous = plan.header(amount.column) if amount and amount.column is not None else None
    if previous is not None:
        plan.used.discard(amount.column)
    replacement = Choice(name, plan.kind.field(name).type, column=total, how="label")
    plan.assign(replacement)
    infer_amount(plan, replacement, plan.sample.texts(total, plan.value_rows))
    replacement.comments.insert(
        0,
        "the invoice's total, the same on each of its lines"
        + (f" (not {previous!r}, which differs from line to line)" if previous else ""),
    )


_SUMMABLE = (FieldType.INTEGER, FieldType.MONEY)


def _sum_of_lines(
    plan: Plan, invoices: list[list[int]], name: str, amount: Choice | None
) -> Choice | None:
    """No column holds the invoice's total: the sum of its lines' amounts (or unit price times
    quantity), where an invoice's lines are adjacent rows, as `sum` adds them."""
    ftype = plan.kind.field(name).type
    if ftype not in _SUMMABLE or plan.kind.lines:  # an API with lines adds them up itself
        return None
    if not _adjacent(plan, invoices):
        plan.notes.append(
            "the lines of an invoice are not adjacent rows here: sorted by invoice number, "
            "their amounts could be summed per invoice with `sum` (see the mapping docs)"
        )
        return None
    # a column empty on most lines is no line amount to sum: each empty line would be refused
    if amount is not None and amount.column is not None and _filled(plan, amount.column) >= 0.9:
        amount.summed = True
        amount.comments.insert(0, "the sum of the invoice's lines: no column holds its total")
        return amount
    price = _free_column(plan, UNIT_PRICES, name)
    quantity = _free_column(plan, QUANTITIES, name)
    if price is None or quantity is None:
        return None
    summed = Choice(name, ftype, column=price, how="sum", summed=True, times=quantity)
    infer_amount(plan, summed, plan.sample.texts(price, plan.value_rows))
    summed.comments.insert(
        0,
        f"the sum over the invoice's lines of {plan.header(price)} x {plan.header(quantity)}: "
        "no column holds its total",
    )
    return summed


def _filled(plan: Plan, index: int) -> float:
    """The share of the rows to send that have a value in the column."""
    column = plan.sample.columns[index]
    rows = plan.value_rows
    return sum(1 for r in rows if column[r] is not None) / len(rows) if rows else 0.0


def _adjacent(plan: Plan, invoices: list[list[int]]) -> bool:
    """Whether the rows of each repeated invoice follow one another (no other row between)."""
    position = {row: at for at, row in enumerate(plan.value_rows)}
    return all(position[rows[-1]] - position[rows[0]] == len(rows) - 1 for rows in invoices)


def _free_column(plan: Plan, labels: list[str], name: str) -> int | None:
    """The first free column with one of the labels whose values are amounts."""
    for label in labels:
        for index, normal in enumerate(plan.normal):
            if (
                normal == label
                and index in plan.addressable
                and index not in plan.used
                and plan.compatible(name, index)
            ):
                return index
    return None


def _total_column(plan, invoices: list[list[int]], name: str, amount: Choice | None) -> int | None:
    """A free column labelled like an invoice total, with amounts, equal within an invoice."""
    taken = plan.used - set(plan.sources(amount) if amount else [])
    for label in INVOICE_TOTALS:
        for index, normal in enumerate(plan.normal):
            if (
                normal == label
                and index in plan.addressable
                and index not in taken
                and plan.compatible(name, index)
                and not _column_varies(plan, index, invoices)
            ):
                return index
    return None


def _line_amount_kept(plan: Plan, amount: Choice) -> None:
    # no total to take instead: the line's amount is the best there is, but it cannot merge
    amount.comments.insert(0, "differs from line to line: see the note above")
    plan.notes.append(
        f"{plan.described(amount)} differs between the lines of an invoice and no column "
        "holds the invoice's total: every line after an invoice's first will be rejected as "
        "duplicate_key unless the amounts are summed per invoice"
    )


def _leave_out_line_fields(plan: Plan, invoices: list[list[int]]) -> None:
    """Drop the optional fields that differ between the lines of an invoice, with a note."""
    kept = (own_field(plan.kind, "invoiceNumber"), own_field(plan.kind, "invoiceAmount"))
    for name, choice in list(plan.choices.items()):
        if name in kept or not _varies(plan, choice, invoices):
            continue
        if name in plan.kind.required:
            # a required field cannot be left out: its differing lines will be refused
            plan.notes.append(
                f"{plan.described(choice)} differs between the lines of an invoice: a line "
                "that differs from its invoice's first will be rejected as duplicate_key"
            )
            continue
        del plan.choices[name]
        plan.left_out[name] = choice
    if plan.left_out:
        shown = ", ".join(plan.described(c) for c in plan.left_out.values())
        plan.notes.append(
            "left out what differs between the lines of an invoice (its lines are sent as "
            f"one record): {shown}"
        )
