"""`business-suite`, the REST v2 CRM of seed 003: Bearer auth, customers by batch, invoices one
a request with their items, ids looked up, 1000 requests an hour.

Customers are keyed by `email` (case-insensitive); new ones go in batches of at most 100,
changed ones one PUT each by id. An invoice names its customer by id, and cannot be changed
once created: a changed invoice is rejected `cannot_update`. A create that got no clear answer
is looked up before it is tried again, so no invoice is ever created twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from payor_cli.schema import Kind, fields_of

from . import Credentials, Outlet, Target

if TYPE_CHECKING:
    from payor_cli.client import Answer, ApiClient, Reply
    from payor_cli.values import Converted

API = "/api/v2"
BATCH_LIMIT = 100
"""Customers a batch create takes; more is 413."""
HOURLY_QUOTA = 1000

CUSTOMERS = Kind(
    name="customers",
    path=f"{API}/batch/customers",
    fields=fields_of("account! email:email! phone address city state zip country"),
    key=("email",),
)

INVOICES = Kind(
    name="invoices",
    path=f"{API}/invoices",
    fields=fields_of("invoice_number! customer! date:date! due_date:date notes amount:money"),
    key=("invoice_number",),
    parent=("customers", "customer", "email"),
    lines=fields_of("description! amount:money! qty:decimal"),
    lines_member="items",
    amount_without_lines="amount",
)


class BusinessSuite(Target):
    name = "business-suite"
    title = "business-suite (REST v2 CRM)"
    kinds: ClassVar[dict[str, Kind]] = {k.name: k for k in (CUSTOMERS, INVOICES)}
    amount_field = "amount"
    currency_field = None
    credential_names = ("PAYOR_API_KEY",)
    line_amount_fields = ("amount", "qty")
    hourly_quota = HOURLY_QUOTA

    def default_line(self, record: dict[str, Converted]) -> dict[str, Converted]:
        """`{"description": <invoice_number>, "amount": <amount>, "qty": 1}`."""
        import pyarrow as pa

        from payor_cli.values import Converted

        number = record["invoice_number"]
        ones = pa.repeat(pa.scalar("1", pa.string()), len(number.json))
        return {"description": number, "amount": record["amount"], "qty": Converted(ones, [])}

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
        from payor_cli.client import Answer

        if reply.status == 404 and isinstance(reply.data, dict):
            # the API's "no such id"; a proxy's 404 page is no word on the record
            return Answer("missing", reply.status, reply.message, data=reply.data)
        if reply.status in (400, 409, 422):
            errors = field_errors(reply.data, reply.short)  # scrubbed, one line, printable
            return Answer("refused", reply.status, reply.message, errors, reply.data)
        return None

    def sender(self, kind: Kind, client: ApiClient, outlet: Outlet) -> Any:
        from .business_suite_send import CustomerSender, InvoiceSender

        if kind.name == "customers":
            return CustomerSender(kind, client, outlet)
        return InvoiceSender(kind, client, outlet)

    def sandbox_routes(self) -> Any:
        from .business_suite_sandbox import BusinessSuiteRoutes

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
