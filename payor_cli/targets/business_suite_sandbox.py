"""The sandbox's business-suite dialect: the REST v2 endpoints of seed 003, strict as a real
server is (Bearer key, 422 field errors, 409 on a second invoice number, 413 above 100
customers a batch, 404 for unknown ids), on the generic server of payor_cli/sandbox.py with
all its faults, stalls and rate limits.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from payor_cli.sandbox import HttpReply, Sandbox, failure, same_secret

from .business_suite import API, BATCH_LIMIT, CUSTOMERS, INVOICES

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_CUSTOMER = re.compile(rf"^{API}/customers/(\d+)$")
CUSTOMER_FIELDS = {f.name for f in CUSTOMERS.fields}
PAGE_LIMIT = 100

Route = Callable[[Sandbox, dict[str, str], Mapping[str, str], bytes], HttpReply]


class BusinessSuiteRoutes:
    kinds: ClassVar = {k.name: k for k in (CUSTOMERS, INVOICES)}

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
                    data = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    return HttpReply(400, failure(f"malformed JSON: {exc}"))
                return handler(sandbox, data, record_id) if record_id else handler(sandbox, data)
            return handler(sandbox, query, record_id) if record_id else handler(sandbox, query)

        return answer

    def methods(self, path: str) -> str:
        if path in (f"{API}/customers", f"{API}/invoices"):
            return "GET, POST"
        return "PUT" if _CUSTOMER.match(path) else ""

    # -- customers -----------------------------------------------------------------------------
    def _list_customers(self, sandbox: Sandbox, query: dict[str, str]) -> HttpReply:
        with sandbox._store.lock:
            every = sandbox._store.every("customers")
        return _page(every, query)

    def _get_customer(self, sandbox: Sandbox, query: dict[str, str], record_id: int) -> HttpReply:
        with sandbox._store.lock:
            found = sandbox._store.by_id("customers", record_id)
        if found is None:
            return HttpReply(404, failure(f"customer {record_id} not found"))
        return HttpReply(200, {"success": True, "data": found})

    def _create_customers(self, sandbox: Sandbox, data: Any) -> HttpReply:
        rows = data.get("customers") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            return HttpReply(422, _invalid({"customers": "is required and must be a list"}))
        if len(rows) > BATCH_LIMIT:
            return HttpReply(413, failure(f"at most {BATCH_LIMIT} customers a request"))
        if sandbox.config.max_batch is not None and len(rows) > sandbox.config.max_batch:
            return HttpReply(413, failure(f"at most {sandbox.config.max_batch} customers"))
        sandbox.count("rows_received", len(rows))
        store = sandbox._store
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
                record_id = store.insert("customers", email, lambda i, r=row: _stamped(r, i))
                created.append({"id": record_id, "account": row["account"], "email": row["email"]})
        sandbox.count("writes", len(rows), "customers")
        return HttpReply(201, {"success": True, "data": created}, note=f"created {len(rows)}")

    def _update_customer(self, sandbox: Sandbox, data: Any, record_id: int) -> HttpReply:
        store = sandbox._store
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
            updated = _stamped(data, record_id)
            store.replace("customers", record_id, email, updated)
        sandbox.count("writes", 1, "customers")
        return HttpReply(200, {"success": True, "data": updated}, note="updated")

    # -- invoices --------------------------------------------------------------------------------
    def _list_invoices(self, sandbox: Sandbox, query: dict[str, str]) -> HttpReply:
        with sandbox._store.lock:
            every = sandbox._store.every("invoices")
        wanted = query.get("customer_id")
        if wanted is not None:
            every = [i for i in every if str(i.get("customer_id")) == wanted]
        return _page(every, query)

    def _create_invoice(self, sandbox: Sandbox, data: Any) -> HttpReply:
        sandbox.count("rows_received", 1)
        store = sandbox._store
        with store.lock:
            problems = _invoice_problems(sandbox, data)
            if problems:
                return HttpReply(422, _invalid(problems), note="refused")
            number = str(data["invoice_number"])
            if store.find("invoices", number) is not None:
                return HttpReply(409, failure(f"invoice {number} already exists"), note="duplicate")
            record_id = store.insert("invoices", number, lambda i: _stamped(data, i))
            created = store.by_id("invoices", record_id or 0)
        sandbox.count("writes", 1, "invoices")
        return HttpReply(201, {"success": True, "data": created}, note=f"created {number}")


def _authorized(sandbox: Sandbox, headers: Mapping[str, str]) -> bool:
    given = headers.get("Authorization") or ""
    return given.startswith("Bearer ") and same_secret(given[7:], sandbox.config.api_key)


def _invalid(errors: dict[str, str]) -> dict[str, Any]:
    return {"success": False, "message": "Validation failed", "errors": errors}


def _stamped(row: dict[str, Any], record_id: int) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return {"id": record_id, **row, "created_at": now, "updated_at": now}


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
    allowed = {"invoice_number", "customer_id", "date", "due_date", "notes", "items"}
    problems = {name: "is not an invoice field" for name in data if name not in allowed}
    if not isinstance(data.get("invoice_number"), str) or not data["invoice_number"].strip():
        problems["invoice_number"] = "is required"
    customer = data.get("customer_id")
    if isinstance(customer, bool) or not isinstance(customer, int):
        problems["customer_id"] = "is required and must be an integer"
    elif sandbox._store.by_id("customers", customer) is None:
        problems["customer_id"] = "does not exist"
    for name, required in (("date", True), ("due_date", False)):
        value = data.get(name)
        if value is None and not required:
            continue
        try:
            dt.date.fromisoformat(value)
        except (TypeError, ValueError):
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
    problems = {
        n: "is not an item field" for n in item if n not in {"description", "amount", "qty"}
    }
    if not isinstance(item.get("description"), str) or not item["description"].strip():
        problems["description"] = "is required"
    for name, required in (("amount", True), ("qty", False)):
        value = item.get(name)
        if value is None and not required:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems[name] = "must be a number"
    return problems
