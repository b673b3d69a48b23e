"""The vocabularies (vocabulary.toml): which column labels name which field, and label scores."""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
import unicodedata
from importlib import resources

from payor_cli.schema import FieldType, Kind

FIELD_NAME_SCORE = 4.0
STRONG_SCORE = 3.0
WEAK_SCORE = 2.0
_FUZZY_CUTOFF = 0.88


def normalise(label: str) -> str:
    """A header as compared with known labels: case, accents, spaces and punctuation dropped."""
    text = unicodedata.normalize("NFKD", label.casefold())
    return "".join(ch for ch in text if ch.isalnum() and not unicodedata.combining(ch))


_DATE_SUFFIX = re.compile(r"^(?P<stem>.*?[^\W_])(?:[ _.-]+(?i:at|on)|(?<=[a-z])(?:At|On))$")
"""A snake_case or camelCase ERP column named for the moment of an event: `due_at`,
`invoiced_at`, `postedOn` (Rails, Akaunting, Frappe, Odoo)."""


def header_forms(label: str) -> str:
    """A header as `label_score` compares it: normalised, and an event time (`due_at`,
    `invoiced_at`, `posted_on`) as the date label it means (due date, invoice date, post date),
    where the vocabularies know that label."""
    normal = normalise(label)
    match = _DATE_SUFFIX.match(label.strip())
    if not match:
        return normal
    stem = normalise(match["stem"])
    known = _known_labels()
    # due -> duedate; invoiced -> invoicedate; issued -> issuedate; posted -> postdate
    for candidate in (stem + "date", stem[:-1] + "date", stem[:-2] + "date", stem):
        if candidate in known:
            return candidate
    return normal


def _normalised(labels: list[str]) -> list[str]:
    return list(dict.fromkeys(normalise(s) for s in labels if s.strip()))


def _load_vocabulary() -> dict:
    entry = resources.files("payor_cli") / "infer" / "vocabulary.toml"
    return tomllib.loads(entry.read_text(encoding="utf-8"))


_VOCABULARY = _load_vocabulary()
VOCABULARY_TARGET: str = _VOCABULARY["fields_of"]
"""The API whose field names the vocabularies (and the presets) use."""
NORMALISED: dict[str, dict[str, tuple[list[str], list[str]]]] = {
    kind_name: {
        name: (_normalised(entry.get("names", [])), _normalised(entry.get("serves", [])))
        for name, entry in _VOCABULARY[kind_name].items()
    }
    for kind_name in ("customers", "invoices")
}
"""kind -> field -> (labels that name it, labels of columns that can serve), normalised."""
_BY_FIELD = {name: labels for fields in NORMALISED.values() for name, labels in fields.items()}
assert len(_BY_FIELD) == sum(map(len, NORMALISED.values())), "a field name in two kinds"

INVOICE_TOTALS = _normalised(_VOCABULARY["invoice_totals"]["labels"])
"""Labels of a column that holds the invoice's total, most specific first."""
OTHER_LABELS = _normalised(_VOCABULARY["other_labels"]["labels"])
"""Labels of columns no field takes (they help to find a header row)."""
LABELS_OF: dict[str, tuple[str, ...]] = {
    name: tuple(sources) for name, sources in _VOCABULARY["borrowed"].items()
}
"""Fields of other targets -> the PayorCRM fields whose labels they take, by preference."""
ALIAS_COMMENTS: dict[str, str] = dict(_VOCABULARY["borrowed_comments"])
"""A comment on the line of a field from LABELS_OF, for what its label does not say."""
VALUE_SHAPES: dict[str, str] = {
    name: shape for shape, names in _VOCABULARY["value_shapes"].items() for name in names
}
"""Field -> "code" (a number field prefers code-like values) or "words" (a name field)."""
LETTERED: frozenset[str] = frozenset(_VOCABULARY["lettered"]["fields"])
"""Fields whose values have letters: a column of bare numbers is not one of them."""
UNIT_PRICES = _normalised(_VOCABULARY["line_amounts"]["unit_price"])
QUANTITIES = _normalised(_VOCABULARY["line_amounts"]["quantity"])
"""Labels of a line's unit price and quantity: their product summed is the invoice's amount."""
MISSING_MARKERS: tuple[str, ...] = tuple(_VOCABULARY["missing_markers"]["texts"])
"""Cell texts that mean empty where a field of a value shape holds them (R writes NA)."""
MEANINGS: list[dict] = [
    {
        **rule,
        "prefer": _normalised(rule["prefer"]),
        "over": _normalised(rule["over"]),
        "when": _normalised(rule.get("when", [])),
    }
    for rule in _VOCABULARY["meanings"]
]
"""Vendor labels that mean another field than their words say (see vocabulary.toml)."""


def labels(kind: Kind, name: str) -> tuple[list[str], list[str]]:
    """The (strong, weak) normalised labels of one of the kind's fields."""
    # PayorCRM's own fields keep their labels (its issueDate is no other target's issueDate)
    own = kind.target == VOCABULARY_TARGET
    sources = None if own else LABELS_OF.get(name)
    if sources is None or kind.field(name) is None:
        return NORMALISED.get(kind.name, {}).get(name, ([], []))
    first_strong, first_weak = _BY_FIELD[sources[0]]
    strong = list(dict.fromkeys([*first_strong, normalise(name)]))
    weak = [*first_weak]
    for other in sources[1:]:
        weak.extend(_BY_FIELD[other][0] + _BY_FIELD[other][1])
    return strong, [label for label in dict.fromkeys(weak) if label not in strong]


def own_field(kind: Kind, payorcrm_name: str) -> str | None:
    """The kind's field that takes a PayorCRM field's place (itself in a PayorCRM kind)."""
    if kind.field(payorcrm_name) is not None:
        return payorcrm_name
    for name, sources in LABELS_OF.items():
        if sources[0] == payorcrm_name and kind.field(name) is not None:
            return name
    return None


@functools.cache
def _known_labels() -> frozenset[str]:
    return frozenset(all_field_labels())


def all_field_labels() -> set[str]:
    """Every normalised label of the vocabularies, field names included."""
    known = set(OTHER_LABELS)
    for fields in NORMALISED.values():
        for name, (strong, weak) in fields.items():
            known.add(normalise(name))
            known.update(strong, weak)
    known.discard("")
    return known


def label_score(kind: Kind, name: str, header: str) -> tuple[float, str] | None:
    """How well a normalised header names a field: (score, "name" | "label" | "similar")."""
    if not header:
        return None
    strong, weak = labels(kind, name)
    field_name = normalise(name)
    if header == field_name and name not in LABELS_OF:
        # a field of LABELS_OF is scored by the labels it takes, its own name the last of
        # them: a "Customer" column must not beat an e-mail one, nor "Account" a company
        return FIELD_NAME_SCORE, "name"
    if header in strong:
        return STRONG_SCORE - strong.index(header) / 1000, "label"
    if header in weak:
        return WEAK_SCORE - weak.index(header) / 1000, "label"
    if kind.field(name).type is FieldType.JSON:
        return None
    best = None
    for label in [field_name, *strong]:
        if len(label) >= 6 and label in header and len(label) / len(header) >= 0.5:
            score = 1 + len(label) / len(header) / 2
            best = max(best or (0, ""), (score, "similar"))
    if best:
        return best
    for label in [field_name, *strong]:
        if len(label) < 5:
            continue
        matcher = difflib.SequenceMatcher(None, label, header)
        if matcher.real_quick_ratio() < _FUZZY_CUTOFF or matcher.quick_ratio() < _FUZZY_CUTOFF:
            continue
        ratio = matcher.ratio()
        if ratio >= _FUZZY_CUTOFF:
            best = max(best or (0, ""), (ratio, "similar"))
    return best
