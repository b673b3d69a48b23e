"""The sandbox's onlyoffice dialect: the CRM endpoints payor uses, in the envelope, as strict
as the portal (a token or a sign-in; 400 "invalid arguments" naming no field), with seeded
invoice items and taxes and invoices that stop being Draft, for rehearsing `cannot_update`.

Every answer, the generic server's faults, 404s and 429s included, is the envelope; 429 and 503
carry Retry-After, and no X-RateLimit-* header is sent (none is documented). Look-ups match by
substring, as the portal's do. What arrives is stored as it is: an address part sent as `""` is
stored (the portal would), and the sandbox's stats count it under `empty_strings`. The rules and
their tests: tests/dialect_rules.md.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from payor_cli.sandbox.replies import HttpReply, dialect_fault
from payor_cli.sandbox.server import Sandbox, same_secret
from payor_cli.targets.onlyoffice.spec import API, CUSTOMERS, DRAFT, INVOICES

CONTACT = f"{API}/crm/contact"
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "PLN")
SENT = 2
_ID = r"(\d+)"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T00:00:00")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
ADDRESS_PARTS = {"street", "city", "state", "zip", "country"}
INVOICE_FIELDS = {
    "number", "issueDate", "dueDate", "contactId", "currency", "exchangeRate", "terms",
    "templateType", "language", "purchaseOrderNumber", "description", "invoiceLines",
}  # fmt: skip
LINE_FIELDS = {
    "invoiceItemID", "invoiceTax1ID", "invoiceTax2ID", "description", "quantity", "price",
    "discount",
}  # fmt: skip


def envelope(status: int, response: Any) -> HttpReply:
    count = len(response) if isinstance(response, list) else 1
    body = {"count": count, "status": 0, "statusCode": status, "response": response}
    return HttpReply(status, body)


def error(status: int, message: str) -> HttpReply:
    body = {"status": 1, "statusCode": status, "error": {"message": message}}
    return HttpReply(status, body, note=message)


class OnlyOfficeRoutes:
    kinds: ClassVar = {k.name: k for k in (CUSTOMERS, INVOICES)}
    body_stats = True
    limit_headers = "never"

    def error(self, status: int, message: str) -> HttpReply:
        return error(status, message)

    def fault(self, fault: str, wait: int) -> HttpReply:
        return dialect_fault(fault, wait, error)

    def __init__(self) -> None:
        self.table: list[tuple[str, re.Pattern[str], Callable[..., HttpReply]]] = [
            ("POST", re.compile(f"{API}/authentication"), self._sign_in),
            ("POST", re.compile(f"{CONTACT}/company"), self._create_company),
            ("PUT", re.compile(f"{CONTACT}/company/{_ID}"), self._update_company),
            ("POST", re.compile(f"{CONTACT}/{_ID}/data"), self._contact_data),
            ("POST", re.compile(f"{CONTACT}/{_ID}/addressdata"), self._address),
            ("GET", re.compile(f"{CONTACT}/bycontactinfo"), self._by_contact_info),
            ("GET", re.compile(f"{CONTACT}/filter"), self._filter),
            ("GET", re.compile(f"{API}/crm/settings/currency"), self._currencies),
            ("GET", re.compile(f"{API}/crm/invoice/tax"), self._taxes),
            ("GET", re.compile(f"{API}/crm/invoiceitem/filter"), self._items),
            ("GET", re.compile(f"{API}/crm/invoice/bynumber"), self._by_number),
            ("POST", re.compile(f"{API}/crm/invoice"), self._create_invoice),
            ("PUT", re.compile(f"{API}/crm/invoice/{_ID}"), self._update_invoice),
        ]

    def route(self, method: str, path: str) -> Callable[..., HttpReply] | None:
        for verb, pattern, handler in self.table:
            match = pattern.fullmatch(path)
            if verb == method and match:
                return self._guarded(
                    handler,
                    match.groups(),
                    signing_in=verb == "POST" and path == f"{API}/authentication",
                    where=(method, path),
                )
        return None

    def methods(self, path: str) -> str:
        return ", ".join(v for v, p, _ in self.table if p.fullmatch(path))

    def _guarded(
        self, handler, groups: tuple, *, signing_in: bool, where: tuple[str, str]
    ) -> Callable[..., HttpReply]:
        def answer(
            sandbox: Sandbox, query: dict[str, str], headers: Mapping[str, str], body: bytes
        ):
            if not signing_in and not same_secret(
                headers.get("Authorization"), sandbox.config.api_key
            ):
                return error(401, "Unauthorized")
            data = None
            if body:
                try:
                    data = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    sandbox.count("malformed_bodies", 1)
                    return error(400, "Invalid arguments")
                if not signing_in:  # a password is no statistic
                    sandbox.saw(*where, data)
            with sandbox.store.lock:
                return handler(sandbox, query, data, *[int(g) for g in groups])

        return answer

    # -- sign-in, catalogs ---------------------------------------------------------------------
    def _sign_in(self, sandbox: Sandbox, query, data) -> HttpReply:
        config = sandbox.config
        if (
            isinstance(data, dict)
            and data.get("userName") == config.api_user
            and same_secret(str(data.get("password")), config.api_secret)
        ):
            return envelope(201, {"token": config.api_key, "expires": "2099-01-01T00:00:00"})
        return error(401, "User authentication failed")

    def _currencies(self, sandbox: Sandbox, query, data) -> HttpReply:
        return envelope(200, [{"abbreviation": c, "title": c} for c in CURRENCIES])

    def _taxes(self, sandbox: Sandbox, query, data) -> HttpReply:
        return envelope(
            200, [{"id": i, "name": n, "rate": r} for i, (n, r) in _taxes(sandbox).items()]
        )

    def _items(self, sandbox: Sandbox, query, data) -> HttpReply:
        wanted = query.get("filterValue", "").casefold()
        found = [
            {"id": i, "title": t} for i, t in _items(sandbox).items() if wanted in t.casefold()
        ]
        return envelope(200, found)

    # -- companies -----------------------------------------------------------------------------
    def _create_company(self, sandbox: Sandbox, query, data) -> HttpReply:
        name = data.get("companyName") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name.strip():
            return error(400, "Invalid arguments")
        store = sandbox.store
        record_id = store.insert(
            "customers",
            f"new:{name}:{_now()}",
            lambda i: {"id": i, "companyName": name, "commonData": [], "addresses": []},
        )
        sandbox.count("writes", 1, "customers")
        return envelope(201, store.by_id("customers", record_id or 0))

    def _update_company(self, sandbox: Sandbox, query, data, record_id: int) -> HttpReply:
        store = sandbox.store
        company = store.by_id("customers", record_id)
        if company is None:
            return error(404, "Not found")
        name = data.get("companyName") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name.strip():
            return error(400, "Invalid arguments")
        company["companyName"] = name
        store.replace("customers", record_id, _company_key(company), company)
        sandbox.count("writes", 1, "customers")
        return envelope(200, company)

    def _contact_data(self, sandbox: Sandbox, query, data, record_id: int) -> HttpReply:
        store = sandbox.store
        company = store.by_id("customers", record_id)
        if company is None:
            return error(404, "Not found")
        if not isinstance(data, dict) or data.get("infoType") not in ("Email", "Phone"):
            return error(400, "Invalid arguments")
        value = data.get("data")
        if not isinstance(value, str) or not value.strip():
            return error(400, "Invalid arguments")
        if data["infoType"] == "Email" and not _EMAIL.fullmatch(value):
            return error(400, "Invalid arguments")
        if not isinstance(data.get("isPrimary", False), bool):
            return error(400, "Invalid arguments")
        if sandbox.refuse is not None and sandbox.refuse.search(value):
            return error(400, "Invalid arguments")
        kept = [
            d
            for d in company["commonData"]
            if d["infoType"] != data["infoType"] or not data.get("isPrimary")
        ]
        company["commonData"] = [
            *kept,
            {"infoType": data["infoType"], "data": value, "isPrimary": bool(data.get("isPrimary"))},
        ]
        store.replace("customers", record_id, _company_key(company), company)
        return envelope(201, company["commonData"][-1])

    def _address(self, sandbox: Sandbox, query, data, record_id: int) -> HttpReply:
        store = sandbox.store
        company = store.by_id("customers", record_id)
        if company is None:
            return error(404, "Not found")
        address = data.get("address") if isinstance(data, dict) else None
        if not isinstance(address, dict) or not _valid_address(address):
            return error(400, "Invalid arguments")
        # stored as it arrived: a part not sent is absent, a part sent as "" is kept (and counted
        # in the stats' empty_strings), as the portal keeps it
        company["addresses"] = [address]
        store.replace("customers", record_id, _company_key(company), company)
        return envelope(201, address)

    def _by_contact_info(self, sandbox: Sandbox, query, data) -> HttpReply:
        if query.get("infoType") not in ("Email", "Phone") or not query.get("data"):
            return error(400, "Invalid arguments")
        wanted = query["data"].casefold()
        found = [
            c
            for c in sandbox.store.every("customers")
            if any(
                wanted in str(d["data"]).casefold()
                for d in c["commonData"]
                if d["infoType"] == query.get("infoType")
            )
        ]
        return envelope(200, found)

    def _filter(self, sandbox: Sandbox, query, data) -> HttpReply:
        wanted = query.get("filterValue", "").casefold()
        found = [
            c for c in sandbox.store.every("customers") if wanted in c["companyName"].casefold()
        ]
        return envelope(200, found)

    # -- invoices --------------------------------------------------------------------------------
    def _by_number(self, sandbox: Sandbox, query, data) -> HttpReply:
        found = sandbox.store.find("invoices", query.get("number", ""))
        return envelope(200, found) if found else error(404, "Invoice not found")

    def _create_invoice(self, sandbox: Sandbox, query, data) -> HttpReply:
        sandbox.count("rows_received", 1)
        if not _valid_invoice(sandbox, data, creating=True):
            return error(400, "Invalid arguments")
        store = sandbox.store
        number = data["number"]
        if store.find("invoices", number) is not None:
            return error(400, "Invalid arguments")  # the portal's word for a taken number
        pattern = sandbox.config.sent_invoices
        status = SENT if pattern and re.search(pattern, number) else DRAFT
        record_id = store.insert(
            "invoices", number, lambda i: {"id": i, **data, "status": {"id": status}}
        )
        sandbox.count("writes", 1, "invoices")
        return envelope(201, store.by_id("invoices", record_id or 0))

    def _update_invoice(self, sandbox: Sandbox, query, data, record_id: int) -> HttpReply:
        store = sandbox.store
        invoice = store.by_id("invoices", record_id)
        if invoice is None:
            return error(404, "Not found")
        if invoice["status"]["id"] != DRAFT:
            return error(403, "Access denied")
        if not _valid_invoice(sandbox, data, creating=False):
            return error(400, "Invalid arguments")
        # the number stays the stored one: a PUT's body has none
        updated = {
            **data,
            "id": record_id,
            "number": invoice["number"],
            "status": invoice["status"],
        }
        store.replace("invoices", record_id, invoice["number"], updated)
        sandbox.count("writes", 1, "invoices")
        return envelope(200, updated)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _company_key(company: dict) -> str:
    emails = [d["data"].casefold() for d in company["commonData"] if d["infoType"] == "Email"]
    return emails[0] if emails else f"new:{company['id']}"


def _items(sandbox: Sandbox) -> dict[int, str]:
    return {100 + i: title for i, title in enumerate(sandbox.config.items)}


def _taxes(sandbox: Sandbox) -> dict[int, tuple[str, float]]:
    found = {}
    for i, text in enumerate(sandbox.config.taxes):
        name, _, rate = text.rpartition(":")
        found[200 + i] = (name or text, float(rate or 0))
    return found


_TEXTS = ("language", "purchaseOrderNumber", "description")


def _is_date(value: Any) -> bool:
    """`YYYY-MM-DDT00:00:00` of a real day."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


def _valid_address(address: dict) -> bool:
    """Only the documented parts, each a string; isPrimary a boolean, category a string."""
    if not set(address) <= ADDRESS_PARTS | {"category", "isPrimary"}:
        return False
    if not all(isinstance(address[p], str) for p in ADDRESS_PARTS & set(address)):
        return False
    return isinstance(address.get("isPrimary", True), bool) and isinstance(
        address.get("category", ""), str
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _valid_invoice(sandbox: Sandbox, data: Any, *, creating: bool) -> bool:
    """Everything the portal checks; it says only "invalid arguments" when one fails."""
    if not isinstance(data, dict) or not set(data) <= INVOICE_FIELDS:
        return False
    if creating and (not isinstance(data.get("number"), str) or not data["number"].strip()):
        return False
    if not all(isinstance(data.get(n, ""), str) for n in _TEXTS):
        return False
    template = data.get("templateType", 0)
    if isinstance(template, bool) or not isinstance(template, int):
        return False
    contact = data.get("contactId")
    if not _number(contact) or sandbox.store.by_id("customers", int(contact)) is None:
        return False
    if not all(_is_date(data.get(d)) for d in ("issueDate", "dueDate")):
        return False
    if data.get("currency") not in CURRENCIES:
        return False
    if not isinstance(data.get("terms"), str) or not data["terms"].strip():
        return False
    if not _number(data.get("exchangeRate", 1)) or data.get("exchangeRate", 1) <= 0:
        return False
    lines = data.get("invoiceLines")
    if not isinstance(lines, list) or not lines:
        return False
    items, taxes = _items(sandbox), _taxes(sandbox)
    for line in lines:
        if not isinstance(line, dict) or not set(line) <= LINE_FIELDS:
            return False
        if not isinstance(line.get("description", ""), str):
            return False
        if line.get("invoiceItemID") not in items:
            return False
        if line.get("invoiceTax1ID", 0) not in (0, *taxes) or line.get("invoiceTax2ID", 0) not in (
            0,
            *taxes,
        ):
            return False
        if not _number(line.get("quantity", 1)) or line.get("quantity", 1) <= 0:
            return False  # quantity: 1 when absent
        if not _number(line.get("price")):
            return False
        if not _number(line.get("discount", 0)) or not 0 <= line.get("discount", 0) <= 100:
            return False
    refused = sandbox.refuse is not None and sandbox.refuse.search(str(data.get("number", "")))
    return not refused
