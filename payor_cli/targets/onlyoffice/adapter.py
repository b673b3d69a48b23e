"""`onlyoffice`, ONLYOFFICE Workspace's CRM (seed 004): one company, one invoice a request,
ids looked up, an envelope around every answer that names no field when it refuses.

Auth: `Authorization: <token>` (PAYOR_API_KEY), or PAYOR_API_USER and PAYOR_API_PASSWORD
exchanged once a run for a token (never stored, never shown). Invoice items, taxes and
currencies must exist in the portal: they are looked up once a run, before anything is sent.
Since a refusal names no field, every rule the API has is checked here first.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from payor_cli.contract import (
    Answer,
    Credentials,
    Outcome,
    Outlet,
    Reply,
    Target,
    TargetSettings,
    Transport,
)
from payor_cli.errors import ConfigError
from payor_cli.numbers import ones
from payor_cli.schema import Kind
from payor_cli.targets.onlyoffice.catalog import Catalog, prepare
from payor_cli.targets.onlyoffice.sandbox import OnlyOfficeRoutes
from payor_cli.targets.onlyoffice.send import CompanySender, InvoiceSender, dry_run_invoice
from payor_cli.targets.onlyoffice.spec import CUSTOMERS, INVOICES, NAME
from payor_cli.values import Converted, Fault


class OnlyOffice(Target):
    name = NAME
    title = "ONLYOFFICE CRM"
    kinds: ClassVar[dict[str, Kind]] = {k.name: k for k in (CUSTOMERS, INVOICES)}
    amount_field = "amount"
    currency_field = "currency"
    credential_names = ("PAYOR_API_KEY",)
    line_amount_fields = ("price", "quantity")

    def credentials(self, settings: TargetSettings) -> Credentials:
        if settings.api_key:
            return Credentials(settings.api_key)
        if settings.api_user and settings.api_password:
            return Credentials("", user=settings.api_user, password=settings.api_password)
        raise ConfigError(
            "no credentials: PAYOR_API_KEY (a token), or PAYOR_API_USER and PAYOR_API_PASSWORD, "
            "not set",
            "export PAYOR_API_KEY, or PAYOR_API_USER and PAYOR_API_PASSWORD (exchanged once a "
            "run for a token); or try --sandbox",
        )

    def requests_for(self, kind: Kind, rows: int, batch_size: int) -> int:
        """A request a record (a company's e-mail and phone add one each: not counted)."""
        return rows

    def auth_headers(self, credentials: Credentials) -> dict[str, str]:
        return {"Authorization": credentials.api_key} if credentials.api_key else {}

    def prepare(self, client: Transport, planned: list[Any], settings: TargetSettings) -> None:
        self.catalog = prepare(self, client, planned, settings)

    def classify(self, reply: Reply) -> Answer | None:
        envelope = reply.data if isinstance(reply.data, dict) else None
        if envelope is not None and "response" in envelope:
            reply.data = envelope["response"]  # the envelope's content is what callers read
        if envelope is not None and isinstance(envelope.get("error"), dict):
            reply.message = reply.short(envelope["error"].get("message") or reply.message)
        if 200 <= reply.status < 300:
            if envelope is not None and envelope.get("status") == 1:
                return None  # an error inside a 2xx envelope: taken as temporary
            problem = _not_an_answer(reply, envelope)
            if problem is not None:
                return Answer(Outcome.UNCLEAR, reply.status, self.not_its_answer(reply, problem))
            return Answer(Outcome.ACCEPTED, reply.status, data=reply.data)
        if reply.status == 403:  # the portal's word for "not yours to change" (not Draft)
            return Answer(Outcome.FORBIDDEN, reply.status, reply.message, data=reply.data)
        return super().classify(reply)

    def refusal(self, reply: Reply) -> Answer | None:
        if reply.status == 404 and isinstance(reply.data, dict):
            # the portal's "no such record"; a proxy's 404 page is no word on the record
            return Answer(Outcome.MISSING, reply.status, reply.message, data=reply.data)
        if reply.status in (400, 409, 422):
            return Answer(Outcome.REFUSED, reply.status, reply.message or "invalid arguments")
        return None

    def default_line(self, record: dict[str, Converted]) -> dict[str, Converted]:
        """One line: the invoice's number as description, quantity 1, its amount as price."""
        number = record["number"]
        return {
            "description": number,
            "quantity": ones(len(number.json)),
            "price": record["amount"],
        }

    def rules(
        self, kind: Kind, record: dict[str, Converted], lines: dict[str, Converted]
    ) -> list[tuple[str, Fault]]:
        """What the portal refuses without saying why: a rate not above 0, a quantity not
        above 0, a discount outside 0-100."""
        found: list[tuple[str, Fault]] = []
        checks = [
            ("exchangeRate", record, lambda v: pc.less_equal(v, 0), "must be above 0"),
            ("quantity", lines, lambda v: pc.less_equal(v, 0), "must be above 0"),
            (
                "discount",
                lines,
                lambda v: pc.or_(pc.less(v, 0), pc.greater(v, 100 * 10**6)),
                "must be a percentage from 0 to 100",
            ),
        ]
        for name, where, broken, text in checks:
            converted = where.get(name)
            if converted is None or converted.integers is None:
                continue
            mask = pc.fill_null(broken(converted.integers), False)
            found.append((name, Fault(mask, "out_of_range", text)))
        return found

    def sender(self, kind: Kind, client: Transport, outlet: Outlet) -> Any:
        if kind.name == "customers":
            return CompanySender(kind, client, outlet)
        return InvoiceSender(kind, client, outlet, lambda: self.catalog)

    catalog: Catalog | None = None
    """The portal's currencies, taxes and items, looked up once a run (`prepare`)."""
    invoice_item: str | None = None
    """The item of a line that names none (`[api].invoice_item`)."""

    def configure(self, settings: TargetSettings) -> None:
        self.invoice_item = settings.invoice_item

    def as_sent(self, kind: Kind, payloads: pa.Array) -> pa.Array:
        """Invoices with the defaults the sender adds, titles in place of ids."""
        if kind.name != "invoices" or not len(payloads):
            return payloads
        return pa.array(
            [
                None if p is None else dry_run_invoice(p, self.invoice_item)
                for p in payloads.to_pylist()
            ],
            pa.string(),
        )

    def sandbox_routes(self) -> Any:
        return OnlyOfficeRoutes()


def _not_an_answer(reply: Reply, envelope: dict | None) -> str | None:
    """Why a 2xx is not the portal's answer (None: it is): the envelope with `response`, and
    in it what payor reads: the sign-in's token; an object, or a list of objects, with whole
    ids; contact data and invoice lines as lists of objects; a create's new id."""
    if envelope is None or "response" not in envelope:
        return f'{reply.form}, not its envelope ({{"response": ...}})'
    response, path = reply.data, urlsplit(reply.url).path
    if path.endswith("/authentication"):
        token = response.get("token") if isinstance(response, dict) else None
        usable = isinstance(token, str) and token.strip() and token.isprintable()
        return None if usable else "a sign-in without a token (one line of text)"
    if not isinstance(response, dict | list) or (
        reply.method != "GET" and isinstance(response, list)
    ):
        return "a response that is not an object" + (" or a list" if reply.method == "GET" else "")
    listed = isinstance(response, list)
    for item in response if listed else [response]:
        if not isinstance(item, dict):
            return "a list that holds something other than objects"
        if "id" in item and not _whole(item["id"]):
            return "an id that is not a whole number"
        if listed and "id" not in item and not path.endswith("/settings/currency"):
            return "a listed record without an id"
        for member in ("commonData", "invoiceLines"):
            found = item.get(member)
            if found is not None and not (
                isinstance(found, list) and all(isinstance(d, dict) for d in found)
            ):
                return f"{member} that is not a list of objects"
    created = reply.method == "POST" and path.endswith((CUSTOMERS.path, INVOICES.path))
    if created and "id" not in response:
        return "a create answered without the new record's id"
    return None


def _whole(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit())
