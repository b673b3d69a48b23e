"""The plan: which column (or value) feeds which field of a kind, chosen by labels and values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from payor_cli.infer.amounts import NUMBER_TYPES, guess_amounts
from payor_cli.infer.dates import guess_dates
from payor_cli.infer.labels import LETTERED, header_forms, label_score, normalise
from payor_cli.infer.sample import Sample, is_object
from payor_cli.schema import FieldType, Kind

FIT_SHARE = 0.75
"""The share of a column's values that must read as dates (or amounts) for a date (or amount)
field to take it; the values that do not are rows to reject, noted with examples."""


def fitting_share(text_coverage: float, texts: int, fitting_cells: int = 0) -> float:
    """The share of a column's values that fit: its fitting typed cells and texts, of all."""
    total = texts + fitting_cells
    return (fitting_cells + text_coverage * texts) / total if total else 1.0


@dataclass
class Choice:
    field: str
    type: FieldType
    column: int | None = None
    columns: dict[str, int] | None = None
    value: str | None = None
    how: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    fixed: set[str] = field(default_factory=set)
    comments: list[str] = field(default_factory=list)
    summed: bool = False
    """The column is summed over the lines of a record (`sum`), times `times` if given."""
    times: int | None = None


@dataclass
class SkipRule:
    column: int | None
    pattern: str
    comment: str


class Plan:
    """The choices for one kind and one file, built up step by step."""

    def __init__(
        self,
        kind: Kind,
        headers: list[str],
        sample: Sample,
        vocabulary_kind: Kind | None = None,
        labels_above: list[str] | None = None,
    ) -> None:
        self.kind = kind
        self.vocabulary_kind = vocabulary_kind
        """The kind of the API whose field names the vocabularies and presets use."""
        self.headers = headers
        self.sample = sample
        self.choices: dict[str, Choice] = {}
        self.used: set[int] = set()
        self.skip: list[SkipRule] = []
        self.key: list[str] | None = None
        self.key_comment: str | None = None
        self.notes: list[str] = []
        self.preset_missing: list[str] = []
        self.duplicates_noted = False
        self.left_out: dict[str, Choice] = {}
        """Fields matched to a column but left out: they differ between the lines of an invoice."""
        self.normal = [header_forms(h) for h in headers]
        self.labels_above = labels_above or []
        self.above = [header_forms(h) for h in self.labels_above]
        """The labels in the row above a header of machine keys (`Invoice No` over `name`):
        they name the columns too, though a mapping names the keys."""
        first: dict[str, int] = {}
        for i, h in enumerate(headers):
            if h.strip():
                first.setdefault(h.strip().casefold(), i)
        self.addressable = set(first.values())
        """Columns a mapping can name: `bind` finds the first of equal headers, no empty one."""
        self._compatible: dict[tuple[FieldType, int], bool] = {}
        self.unfit: dict[str, tuple[int, str]] = {}
        """Fields whose label a column has, but not values of the field's type: column, type."""
        self.misfits: dict[str, dict[int, str]] = {}
        """Per customer field: the labelled columns left out, as their values do not behave
        like a customer's, with why."""
        self.passed_over: dict[str, list[int]] = {}
        """Per field chosen by label: the other columns it could have taken, best first."""
        self.data_rows = self._dense_rows()
        self.value_rows = self.data_rows
        self.required = list(kind.required)
        """The fields a mapping without lines must map: the kind's required ones and, for
        invoices with lines, the amount that gives each invoice its one line."""
        if (
            kind.lines
            and kind.amount_without_lines
            and kind.amount_without_lines not in kind.required
        ):
            self.required.append(kind.amount_without_lines)

    # -- helpers

    def _dense_rows(self) -> list[int]:
        """Rows that look like data: most of the cells a full row has are filled."""
        sample = self.sample
        counts = [
            sum(1 for column in sample.columns if column[r] is not None) for r in range(sample.rows)
        ]
        if not counts:
            return []
        ordered = sorted(counts)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        return [r for r, c in enumerate(counts) if c > p90 / 2]

    def label_score(self, name: str, index: int) -> tuple[float, str] | None:
        """How well a column's header (or the label above its key) names a field."""
        scores = [label_score(self.kind, name, self.normal[index])]
        if index < len(self.above):
            scores.append(label_score(self.kind, name, self.above[index]))
        found = [score for score in scores if score is not None]
        return max(found) if found else None

    def label_above(self, name: str, index: int) -> str | None:
        """The label above a key that names the field better than the key does, if any."""
        if index >= len(self.above):
            return None
        own = label_score(self.kind, name, self.normal[index])
        above = label_score(self.kind, name, self.above[index])
        if above is None or (own is not None and own >= above):
            return None
        return self.labels_above[index]

    def header(self, index: int) -> str:
        return self.headers[index]

    def find_header(self, alternatives: list[str]) -> int | None:
        """The first alternative the file has (compared as normalised labels)."""
        for label in alternatives:
            wanted = label.strip().casefold()
            for i, h in enumerate(self.headers):
                if i in self.addressable and h.strip().casefold() == wanted:
                    return i
            target = normalise(label)
            for i, n in enumerate(self.normal):
                if i in self.addressable and n and n == target:
                    return i
        return None

    def compatible(self, name: str, index: int) -> bool:
        """Whether the column's values fit the field's type (dates, amounts, e-mails, JSON), and
        a field of words (a country) holds more than bare numbers."""
        ftype = self.kind.field(name).type
        if (ftype, index) not in self._compatible:
            self._compatible[ftype, index] = self._fits(ftype, index)
        if name in LETTERED and self._compatible[ftype, index]:
            texts = self.sample.texts(index, self.data_rows)
            return sum(1 for t in texts if any(ch.isalpha() for ch in t)) >= 0.5 * len(texts)
        return self._compatible[ftype, index]

    def unfit_values(self, name: str) -> str:
        """What a field's values are, as a note says a column's are not: dates, amounts, ..."""
        if name in LETTERED:
            return "words"
        return f"{self.kind.field(name).type.value}s"

    def _fits(self, ftype: FieldType, index: int) -> bool:
        texts = self.sample.texts(index, self.data_rows)
        if not texts:
            return ftype is not FieldType.JSON
        if ftype is FieldType.DATE:
            # a real date cell fits: a few typed-in impossible dates are rows to reject
            cells = self.sample.date_cell_count(index, self.data_rows)
            return fitting_share(guess_dates(texts).coverage, len(texts), cells) >= FIT_SHARE
        if ftype in NUMBER_TYPES:
            return fitting_share(guess_amounts(texts).coverage, len(texts)) >= FIT_SHARE
        if ftype is FieldType.EMAIL:
            return sum("@" in t for t in texts) >= 0.5 * len(texts)
        if ftype is FieldType.JSON:
            return sum(is_object(t) for t in texts) >= 0.9 * len(texts)
        return True

    def fill(self, index: int) -> float:
        rows = self.data_rows
        if not rows:
            return 0.0
        column = self.sample.columns[index]
        return sum(1 for r in rows if column[r] is not None) / len(rows)

    def assign(self, choice: Choice) -> None:
        self.choices[choice.field] = choice
        if choice.column is not None:
            self.used.add(choice.column)
        for index in (choice.columns or {}).values():
            self.used.add(index)
        if choice.times is not None:
            self.used.add(choice.times)

    def sources(self, choice: Choice) -> list[int]:
        """The columns a field's value is made of (none for a fixed value)."""
        if choice.column is not None:
            return [choice.column] + ([choice.times] if choice.times is not None else [])
        return list((choice.columns or {}).values())

    def described(self, choice: Choice) -> str:
        """A field with its columns, as notes name it: itemText ('Description')."""
        return f"{choice.field} ({', '.join(repr(self.header(i)) for i in self.sources(choice))})"
