"""`business-suite`, the REST v2 CRM of seed 003: Bearer auth, customers by batch, invoices one
a request with their items, ids looked up, 1000 requests an hour.

Customers are keyed by `email` (case-insensitive); new ones go in batches of at most 100,
changed ones one PUT each by id. An invoice names its customer by id, and cannot be changed
once created: a changed invoice is rejected `cannot_update`. A create that got no clear answer
is looked up before it is tried again, so no invoice is ever created twice.
"""

from __future__ import annotations

from typing import Any, ClassVar

from payor_cli.contract import Answer, Credentials, Outcome, Outlet, Reply, Target, Transport
from payor_cli.numbers import ones
from payor_cli.schema import Kind
from payor_cli.targets.business_suite.sandbox import BusinessSuiteRoutes
from payor_cli.targets.business_suite.send import CustomerSender, Directory, InvoiceSender
from payor_cli.targets.business_suite.spec import (
    BATCH_LIMIT,
    CUSTOMERS,
    HOURLY_QUOTA,
    INVOICES,
    NAME,
)
from payor_cli.values import Converted


class BusinessSuite(Target):
    name = NAME
    title = "business-suite (REST v2 CRM)"
    kinds: ClassVar[dict[str, Kind]] = {k.name: k for k in (CUSTOMERS, INVOICES)}
    amount_field = "amount"
    currency_field = None
    credential_names = ("PAYOR_API_KEY",)
    line_amount_fields = ("amount", "qty")
    hourly_quota = HOURLY_QUOTA
    directory: Directory | None = None
    """The CRM's customers by e-mail, listed once a run."""

    def default_line(self, record: dict[str, Converted]) -> dict[str, Converted]:
        """`{"description": <invoice_number>, "amount": <amount>, "qty": 1}`."""
        number = record["invoice_number"]
        return {"description": number, "amount": record["amount"], "qty": ones(len(number.json))}

    def requests_for(self, kind: Kind, rows: int, batch_size: int) -> int:
        """New customers go in batches of at most 100; invoices one a request."""
        if kind.name == "customers":
            return -(-rows // min(batch_size, BATCH_LIMIT))
        return rows

    def auth_headers(self, credentials: Credentials) -> dict[str, str]:
        return {"Authorization": f"Bearer {credentials.api_key}"}

    def answer_problem(self, reply: Reply) -> str | None:
        """Its acceptance: `{"success": true, "data": <an object or a list of objects>}`, with
        `meta` (a listing's pages) an object when it is there."""
        data = reply.data
        if not isinstance(data, dict):
            return f"{reply.form}, not a JSON object"
        if data.get("success") is False:
            return None  # a temporary failure (see Target.classify)
        if data.get("success") is not True or "data" not in data:
            return 'a JSON object without "success": true and "data"'
        inner = data["data"]
        if not isinstance(inner, dict | list):
            return '"data" that is neither an object nor a list'
        if isinstance(inner, list) and not all(isinstance(r, dict) for r in inner):
            return '"data" that lists something other than objects'
        meta = data.get("meta")
        if meta is not None and not (isinstance(meta, dict) and _whole(meta.get("total_pages"))):
            return '"meta" without a page count'
        return None

    def refusal(self, reply: Reply) -> Answer | None:
        if reply.status == 404 and isinstance(reply.data, dict):
            # the API's "no such id"; a proxy's 404 page is no word on the record
            return Answer(Outcome.MISSING, reply.status, reply.message, data=reply.data)
        if reply.status in (400, 409, 422):
            errors = field_errors(reply.data, reply.short)  # scrubbed, one line, printable
            return Answer(Outcome.REFUSED, reply.status, reply.message, errors, reply.data)
        return None

    def sender(self, kind: Kind, client: Transport, outlet: Outlet) -> Any:
        if self.directory is None:  # one a run: customers and invoices list the customers once
            self.directory = Directory(client)
        if kind.name == "customers":
            return CustomerSender(kind, client, outlet, self.directory)
        return InvoiceSender(kind, client, outlet, self.directory)

    def sandbox_routes(self) -> Any:
        return BusinessSuiteRoutes()


def field_errors(data: Any, clean) -> dict[int, str]:
    """`errors: {FIELD: MESSAGE}` -> reasons by position: `customers.INDEX.NAME` names a row
    of a batch; a plain FIELD belongs to the one record sent (position 0)."""
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, dict):
        return {}
    found: dict[int, str] = {}
    for name, message in errors.items():
        parts = str(name).split(".")
        position, field = 0, str(name)
        if len(parts) >= 3 and parts[1].isdigit():
            position, field = int(parts[1]), ".".join(parts[2:])
        text = message if isinstance(message, str) else "; ".join(map(str, message or []))
        reason = clean(clean(f"{field}: {text}")[:300])  # scrubbed before it is cut, and after
        found[position] = f"{found[position]}; {reason}" if position in found else reason
    return found


def _whole(value: Any) -> bool:
    """A page count: absent, or a whole number (as a number or as digits)."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit())
