"""The sandbox's business-suite dialect: the REST v2 endpoints of seed 003, strict as a real
server is (Bearer key, 422 field errors, 409 on a second invoice number, 413 above 100
customers a batch, 404 for unknown ids), on the generic server of payor_cli/sandbox.py with
all its faults, stalls and rate limits.

Its quota is the documented one (1000 requests an hour) unless `--rate-limit` sets another,
and every answer, faults and refusals included, carries `X-RateLimit-Limit`, `-Remaining` and
`-Reset` as the Unix time of the window's end; a 429 of the quota has no Retry-After (none is
documented). The rules and their tests: tests/dialect_rules.md.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from payor_cli.sandbox.replies import HttpReply, dialect_fault, failure
from payor_cli.sandbox.server import Sandbox, same_secret
from payor_cli.targets.business_suite.spec import (
    API,
    BATCH_LIMIT,
    CUSTOMERS,
    HOURLY_QUOTA,
    INVOICES,
)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CUSTOMER = re.compile(rf"^{API}/customers/(\d+)$")
CUSTOMER_FIELDS = {f.name for f in CUSTOMERS.fields}
INVOICE_FIELDS = {"invoice_number", "customer_id", "date", "due_date", "notes", "items"}
ITEM_FIELDS = {"description", "amount", "qty"}
PAGE_LIMIT = 100

Route = Callable[[Sandbox, dict[str, str], Mapping[str, str], bytes], HttpReply]


class BusinessSuiteRoutes:
    kinds: ClassVar = {k.name: k for k in (CUSTOMERS, INVOICES)}
    body_stats = True
    quota = (HOURLY_QUOTA, 3600.0)
    limit_headers = "always"
    reset_style = "epoch"
    retry_after_on_quota = False

    def error(self, status: int, message: str) -> HttpReply:
        return HttpReply(status, failure(message), note=message)

    def fault(self, fault: str, wait: int) -> HttpReply:
        return dialect_fault(fault, wait, self.error)

    def route(self, method: str, path: str) -> Route | None:
        handler: Callable[..., HttpReply] | None = None
        record_id: int | None = None
        if path == f"{API}/customers" and method == "GET":
            handler = self._list_customers
        elif path == f"{API}/batch/customers" and method == "POST":
            handler = self._create_customers
        elif (match := _CUSTOMER.match(path)) and method in ("PUT", "GET"):
            record_id = int(match.group(1))
            handler = self._update_customer if method == "PUT" else self._get_customer
        elif path == f"{API}/invoices" and method == "GET":
            handler = self._list_invoices
        elif path == f"{API}/invoices" and method == "POST":
            handler = self._create_invoice
        if handler is None:
            return None

        def answer(sandbox: Sandbox, query, headers, body) -> HttpReply:
            if not _authorized(sandbox, headers):
                return HttpReply(
                    401, failure("Invalid API key or unauthorized access"), note="unauthorized"
                )
            if method in ("POST", "PUT"):
                try:
                    # decimals as sent: an amount's places are checked, then stored as a number
                    data = json.loads(body.decode("utf-8"), parse_float=Decimal)
                except (UnicodeDecodeError, ValueError) as exc:
                    sandbox.count("malformed_bodies", 1)
                    return HttpReply(400, _invalid({"body": f"malformed JSON: {exc}"}))
                sandbox.saw(method, path, data)
                return (
                    handler(sandbox, data, record_id)
                    if record_id is not None
                    else handler(sandbox, data)
                )
            return (
                handler(sandbox, query, record_id)
                if record_id is not None
                else handler(sandbox, query)
            )

        return answer

    def methods(self, path: str) -> str:
        if path == f"{API}/invoices":
            return "GET, POST"
        if path == f"{API}/customers":
            return "GET"
        if path == f"{API}/batch/customers":
            return "POST"
        return "GET, PUT" if _CUSTOMER.match(path) else ""

    # -- customers -----------------------------------------------------------------------------
    def _list_customers(self, sandbox: Sandbox, query: dict[str, str]) -> HttpReply:
        with sandbox.store.lock:
            every = sandbox.store.every("customers")
        return _page(every, query)

    def _get_customer(self, sandbox: Sandbox, query: dict[str, str], record_id: int) -> HttpReply:
        with sandbox.store.lock:
            found = sandbox.store.by_id("customers", record_id)
        if found is None:
            return HttpReply(404, failure(f"customer {record_id} not found"))
        return HttpReply(200, {"success": True, "data": found})

    def _create_customers(self, sandbox: Sandbox, data: Any) -> HttpReply:
        rows = data.get("customers") if isinstance(data, dict) else None
        if not isinstance(rows, list) or not rows:
            return HttpReply(422, _invalid({"customers": "is required and must be a list"}))
        if len(rows) > BATCH_LIMIT:
            return HttpReply(413, failure(f"at most {BATCH_LIMIT} customers a request"))
        if sandbox.config.max_batch is not None and len(rows) > sandbox.config.max_batch:
            return HttpReply(413, failure(f"at most {sandbox.config.max_batch} customers"))
        sandbox.count("rows_received", len(rows))
        store = sandbox.store
        with store.lock:
            errors: dict[str, str] = {}
            seen: set[str] = set()
            for index, row in enumerate(rows):
                for name, problem in _customer_problems(sandbox, row).items():
                    errors[f"customers.{index}.{name}"] = problem
                email = str(row.get("email", "")).lower() if isinstance(row, dict) else ""
                if email and (email in seen or store.find("customers", email)):
                    errors[f"customers.{index}.email"] = "has already been taken"
                seen.add(email)
            if errors:
                return HttpReply(422, _invalid(errors), note=f"refused {len(errors)} fields")
            created = []
            for row in rows:
                email = row["email"].lower()
                record_id = store.insert("customers", email, lambda i, r=row: _stamped(r, i, None))
                created.append({"id": record_id, "account": row["account"], "email": row["email"]})
        sandbox.count("writes", len(rows), "customers")
        return HttpReply(201, {"success": True, "data": created}, note=f"created {len(rows)}")

    def _update_customer(self, sandbox: Sandbox, data: Any, record_id: int) -> HttpReply:
        store = sandbox.store
        with store.lock:
            existing = store.by_id("customers", record_id)
            if existing is None:
                return HttpReply(404, failure(f"customer {record_id} not found"))
            problems = _customer_problems(sandbox, data)
            email = str(data.get("email", "")).lower() if isinstance(data, dict) else ""
            other = store.find("customers", email) if email else None
            if other is not None and other["id"] != record_id:
                problems["email"] = "has already been taken"
            if problems:
                return HttpReply(422, _invalid(problems))
            updated = _stamped(data, record_id, existing.get("created_at"))
            store.replace("customers", record_id, email, updated)
        sandbox.count("writes", 1, "customers")
        return HttpReply(200, {"success": True, "data": updated}, note="updated")

    # -- invoices --------------------------------------------------------------------------------
    def _list_invoices(self, sandbox: Sandbox, query: dict[str, str]) -> HttpReply:
        with sandbox.store.lock:
            every = sandbox.store.every("invoices")
        wanted = query.get("customer_id")
        if wanted is not None:
            every = [i for i in every if str(i.get("customer_id")) == wanted]
        return _page(every, query)

    def _create_invoice(self, sandbox: Sandbox, data: Any) -> HttpReply:
        sandbox.count("rows_received", 1)
        store = sandbox.store
        with store.lock:
            problems = _invoice_problems(sandbox, data)
            if problems:
                return HttpReply(422, _invalid(problems), note="refused")
            number = str(data["invoice_number"])
            if store.find("invoices", number) is not None:
                return HttpReply(409, failure(f"invoice {number} already exists"), note="duplicate")
            record_id = store.insert("invoices", number, lambda i: _stamped(data, i, None))
            created = store.by_id("invoices", record_id or 0)
        sandbox.count("writes", 1, "invoices")
        return HttpReply(201, {"success": True, "data": created}, note=f"created {number}")


def _authorized(sandbox: Sandbox, headers: Mapping[str, str]) -> bool:
    given = headers.get("Authorization") or ""
    return given.startswith("Bearer ") and same_secret(given[7:], sandbox.config.api_key)


def _invalid(errors: dict[str, str]) -> dict[str, Any]:
    return {"success": False, "message": "Validation failed", "errors": errors}


def _stamped(row: dict[str, Any], record_id: int, created: str | None) -> dict[str, Any]:
    """The record as stored: what arrived (amounts as JSON numbers), its id and times."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return {"id": record_id, **_numbers(row), "created_at": created or now, "updated_at": now}


def _numbers(value: Any) -> Any:
    """The parsed body with its decimals as floats again, for the JSON store."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def _page(records: list[dict[str, Any]], query: dict[str, str]) -> HttpReply:
    try:
        page = max(1, int(query.get("page", "1")))
        limit = min(PAGE_LIMIT, max(1, int(query.get("limit", "20"))))
    except ValueError:
        return HttpReply(422, _invalid({"page": "must be a number"}))
    pages = max(1, -(-len(records) // limit))
    meta = {"current_page": page, "total_pages": pages, "total_records": len(records)}
    part = records[(page - 1) * limit : page * limit]
    return HttpReply(200, {"success": True, "data": part, "meta": meta})


def _customer_problems(sandbox: Sandbox, row: Any) -> dict[str, str]:
    if not isinstance(row, dict):
        return {"customer": "must be an object"}
    problems = {name: "is not a customer field" for name in row if name not in CUSTOMER_FIELDS}
    for name in ("account", "email"):
        if not isinstance(row.get(name), str) or not row[name].strip():
            problems[name] = "is required"
    if "email" not in problems and not _EMAIL.fullmatch(row["email"]):
        problems["email"] = "must be a valid email address"
    for name, value in row.items():
        if name in CUSTOMER_FIELDS and name not in problems and not isinstance(value, str):
            problems[name] = "must be a string"
    if sandbox.refuse is not None and sandbox.refuse.search(str(row.get("email", ""))):
        problems["email"] = "refused by sandbox rule"
    return problems


def _invoice_problems(sandbox: Sandbox, data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        return {"invoice": "must be an object"}
    problems = {name: "is not an invoice field" for name in data if name not in INVOICE_FIELDS}
    if not isinstance(data.get("invoice_number"), str) or not data["invoice_number"].strip():
        problems["invoice_number"] = "is required"
    if "notes" in data and not isinstance(data["notes"], str):
        problems["notes"] = "must be a string"
    customer = data.get("customer_id")
    if isinstance(customer, bool) or not isinstance(customer, int):
        problems["customer_id"] = "is required and must be an integer"
    elif sandbox.store.by_id("customers", customer) is None:
        problems["customer_id"] = "does not exist"
    for name, required in (("date", True), ("due_date", False)):
        if name not in data and not required:
            continue
        value = data.get(name)
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            problems[name] = "must be a date (YYYY-MM-DD)"
            continue
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            problems[name] = "must be a date (YYYY-MM-DD)"
    items = data.get("items")
    if not isinstance(items, list) or not items:
        problems["items"] = "at least one item is required"
    else:
        for index, item in enumerate(items):
            for name, problem in _item_problems(item).items():
                problems[f"items.{index}.{name}"] = problem
    number = str(data.get("invoice_number", ""))
    if sandbox.refuse is not None and sandbox.refuse.search(number):
        problems["invoice_number"] = "refused by sandbox rule"
    return problems


def _item_problems(item: Any) -> dict[str, str]:
    if not isinstance(item, dict):
        return {"item": "must be an object"}
    problems = {n: "is not an item field" for n in item if n not in ITEM_FIELDS}
    if not isinstance(item.get("description"), str) or not item["description"].strip():
        problems["description"] = "is required"
    for name, required in (("amount", True), ("qty", False)):
        if name not in item and not required:
            continue  # qty: 1 when absent
        value = item.get(name)
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            problems[name] = "must be a number"
        elif name == "amount" and isinstance(value, Decimal) and value.as_tuple().exponent < -2:
            problems[name] = "must have at most 2 decimal places"
    return problems
