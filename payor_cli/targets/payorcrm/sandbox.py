"""PayorCRM's dialect of the sandbox: two upload endpoints, api_key/api_secret, a JSON array a
request, upserts by key, and a whole batch refused for one bad row (naming the rows or not).

PayorCRM's documentation is silent on answers and batch limits, so this dialect is the strict
API the contract tells the client to expect. Validation is pure: the kinds are the only source of
fields and types.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from payor_cli.sandbox.replies import HttpReply, failure
from payor_cli.sandbox.server import Sandbox, same_secret
from payor_cli.sandbox.store import row_key
from payor_cli.schema import Field, FieldType, Kind
from payor_cli.targets.payorcrm.spec import CUSTOMERS, INVOICES

KINDS = {k.name: k for k in (CUSTOMERS, INVOICES)}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


@dataclass(frozen=True)
class RowProblem:
    """One reason why the row at `index` (0-based in its batch) was refused."""

    index: int
    field: str | None
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _value_problem(kind: FieldType, value: Any) -> str | None:
    """Why `value` is not a valid JSON value of the field type, or None."""
    got = _json_type(value)
    if kind in (FieldType.STRING, FieldType.EMAIL):
        if not isinstance(value, str):
            return f"must be a string, got {got}"
        if kind is FieldType.EMAIL and not _EMAIL.fullmatch(value):
            return "is not an e-mail address (x@y, no spaces)"
        return None
    if kind is FieldType.INTEGER:
        # bool is an int in Python but not in JSON; 5.0 arrives as a float: both refused
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {got}"
        return None
    if kind is FieldType.DATE:
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            return f"must be a date as YYYY-MM-DD, got {json.dumps(value)[:40]}"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return f"is not a real date: {value}"
        return None
    if kind is FieldType.JSON:
        return None if isinstance(value, dict) else f"must be a JSON object, got {got}"
    return None


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


_SEEN_DATES: set[str] = set()
_SEEN_DATES_MAX = 100_000


def _plainly_valid(spec: Field, value: Any) -> bool:
    """A quick yes for the usual values; False means: look closer (it may still be valid)."""
    kind = type(value)
    if kind is str:
        if spec.type is FieldType.STRING:
            return not spec.required or bool(value.strip())
        if spec.type is FieldType.DATE and value in _SEEN_DATES:
            return True
        if spec.type is FieldType.DATE and _value_problem(FieldType.DATE, value) is None:
            if len(_SEEN_DATES) < _SEEN_DATES_MAX:
                _SEEN_DATES.add(value)
            return True
        return False
    return kind is int and spec.type is FieldType.INTEGER


class _Missing:
    """Marks a field a row does not have (unlike null, which is refused)."""


_MISSING = _Missing()
_COLUMN_TYPES = {
    FieldType.STRING: str,
    FieldType.EMAIL: str,
    FieldType.DATE: str,
    FieldType.INTEGER: int,
    FieldType.JSON: dict,
}


def _batch_plainly_valid(kind: Kind, rows: list[Any]) -> bool:
    """Column by column, at C speed: True when nothing in the batch can be wrong.

    False only means "look row by row", which finds and explains whatever is wrong.
    """
    if set(map(type, rows)) != {dict}:
        return False
    names = set().union(*rows)
    if any(kind.field(name) is None for name in names) or not set(kind.required) <= names:
        return False
    for name in names:
        spec = kind.field(name)
        column = [row.get(name, _MISSING) for row in rows]
        allowed = {_COLUMN_TYPES[spec.type]} | (set() if spec.required else {_Missing})
        if not set(map(type, column)) <= allowed:
            return False
        present = [v for v in column if v is not _MISSING] if not spec.required else column
        if (
            spec.required
            and spec.type is not FieldType.INTEGER
            and not all(map(str.strip, present))
        ):
            return False
        if spec.type is FieldType.EMAIL and not all(map(_EMAIL.fullmatch, present)):
            return False
        if spec.type is FieldType.DATE:
            for value in set(present) - _SEEN_DATES:
                if _value_problem(FieldType.DATE, value) is not None:
                    return False
                if len(_SEEN_DATES) < _SEEN_DATES_MAX:
                    _SEEN_DATES.add(value)
    return True


def shape_errors(kind: Kind, rows: list[Any]) -> list[RowProblem]:
    """Everything wrong with the rows that needs no stored data: objects, fields, types."""
    if _batch_plainly_valid(kind, rows):
        return []
    errors: list[RowProblem] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(
                RowProblem(index, None, f"row must be a JSON object, got {_json_type(row)}")
            )
            continue
        for name, value in row.items():
            spec = kind.field(name)
            if spec is None:
                errors.append(RowProblem(index, name, "unknown field"))
            elif _plainly_valid(spec, value):
                continue  # the common cases, checked first: the sandbox takes 1M rows
            elif spec.required and _empty(value):
                errors.append(RowProblem(index, name, "is required"))
            elif (problem := _value_problem(spec.type, value)) is not None:
                errors.append(RowProblem(index, name, problem))
        for name in kind.required:
            if name not in row:
                errors.append(RowProblem(index, name, "is required"))
    return errors


class PayorCrmRoutes:
    """PayorCRM's dialect: two upload endpoints, api_key/api_secret, a JSON array, upserts."""

    def __init__(self) -> None:
        self.kinds = KINDS
        self._paths = {k.path: k for k in KINDS.values()}

    def route(self, method: str, path: str) -> Callable[..., HttpReply] | None:
        kind = self._paths.get(path)
        if kind is None or method != "POST":
            return None
        return lambda sandbox, query, headers, body: self._upload(sandbox, kind, headers, body)

    def methods(self, path: str) -> str:
        return "POST" if path in self._paths else ""

    def _upload(
        self, sandbox: Sandbox, kind: Kind, headers: Mapping[str, str], body: bytes
    ) -> HttpReply:
        config = sandbox.config
        rows, problem = _parse(body)
        if rows is not None:
            sandbox.count("rows_received", len(rows))
        if not (
            same_secret(headers.get("api_key"), config.api_key)
            and same_secret(headers.get("api_secret"), config.api_secret)
        ):
            return HttpReply(401, failure("invalid api_key or api_secret"), note="unauthorized")
        media = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media != "application/json":
            return HttpReply(415, failure("Content-Type must be application/json"))
        if rows is None:
            return HttpReply(400, failure(problem), note="malformed body")
        if config.max_batch is not None and len(rows) > config.max_batch:
            return HttpReply(
                413,
                failure(f"batch too large, max {config.max_batch} rows"),
                note=f"{len(rows)} rows",
            )
        errors = shape_errors(kind, rows)
        store = sandbox.store
        with store.lock:
            errors += self._stored_data_errors(sandbox, kind, rows, {e.index for e in errors})
            if not errors:
                store.upsert(kind, rows)
        if errors:
            errors.sort(key=lambda e: e.index)
            note = f"refused {len({e.index for e in errors})} of {len(rows)} rows"
            if config.name_rows:
                body_out = {"success": False, "errors": [e.as_json() for e in errors]}
            else:
                body_out = failure("validation failed")
            return HttpReply(400, body_out, note=note)
        sandbox.count("writes", len(rows), kind.name)
        return HttpReply(
            200, {"success": True, "stored": len(rows)}, note=f"stored {len(rows)} rows"
        )

    def _stored_data_errors(
        self, sandbox: Sandbox, kind: Kind, rows: list[Any], bad: set[int]
    ) -> list[RowProblem]:
        """Rules that need the store: the parent exists, no refuse_keys match (lock held)."""
        errors: list[RowProblem] = []
        parent = KINDS[kind.parent[0]] if kind.parent else None
        known: set[Any] = set()
        if parent is not None and kind.parent is not None:
            link = kind.parent[1]
            wanted = {row.get(link) for i, row in enumerate(rows) if i not in bad}
            known = sandbox.store.existing(
                parent, kind.parent[2], {v for v in wanted if v is not None}
            )
        for index, row in enumerate(rows):
            if index in bad:
                continue
            if sandbox.refuse is not None and sandbox.refuse.search(row_key(kind, row)):
                errors.append(RowProblem(index, kind.key[0], "refused by sandbox rule"))
            if parent is not None and kind.parent is not None:
                link = kind.parent[1]
                value = row.get(link)
                if value not in known:
                    singular = parent.name.removesuffix("s")
                    errors.append(RowProblem(index, link, f"{singular} {value} does not exist"))
        return errors


def _parse(body: bytes) -> tuple[list[Any] | None, str]:
    """The body's JSON array, or None and why not (naming no row: the body is not rows yet)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"malformed JSON: {exc}"
    if not isinstance(data, list):
        return None, f"body must be a JSON array of objects, got {_json_type(data)}"
    return data, ""
