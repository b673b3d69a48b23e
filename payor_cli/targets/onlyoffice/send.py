"""How ONLYOFFICE's kinds are sent: a company a request (then its e-mail, phone, address), an
invoice a request with its lines, never created twice.

What comes before anything is sent (a token, the portal's catalog) is catalog.py's. Ids come
from the journal and, for keys it lacks, from look-ups: a company by its e-mail (or, when its
create got no clear answer, by its name), an invoice by its number.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from payor_cli.contract import (
    Answer,
    OneByOne,
    Outcome,
    Outlet,
    Pending,
    Transport,
    journalled_ids,
)
from payor_cli.schema import Kind
from payor_cli.targets.onlyoffice.catalog import Catalog, accepted_data
from payor_cli.targets.onlyoffice.spec import API
from payor_cli.values import fold_email

CONTACT = f"{API}/crm/contact"


class CompanySender(OneByOne):
    """A company a request, then its e-mail (and phone, address) as contact data."""

    def __init__(self, kind: Kind, client: Transport, outlet: Outlet) -> None:
        super().__init__(kind, client, outlet)
        self.ids = journalled_ids(outlet, kind.name)
        self.unsettled = outlet.open_intents()

    def one(self, pending: Pending) -> None:
        data = pending.data()
        company = self.ids.get(pending.key) or find_by_email(self.client, data["email"])
        if company is None and pending.key in self.unsettled:
            # an earlier run's create got no answer: the company may be there without its
            # e-mail yet, found only by its name (only such creates cost this look-up)
            company = find_company(self.client, data["companyName"], without_email=True)
        if company is not None:
            answer = self.client.send(
                "PUT",
                f"{self.kind.path}/{company}",
                body=json.dumps({"companyName": data["companyName"]}).encode(),
                what=f"company {data['companyName']!r}",
                on_wire=lambda: self.outlet.sending([pending]),
            )
            if answer.outcome is Outcome.MISSING:
                company = None
            elif answer.outcome is not Outcome.ACCEPTED:
                self.outlet.refused(pending, answer.message or f"HTTP {answer.status}")
                return
        if company is None:
            self.outlet.intend(pending.key)
            answer = self.client.send(
                "POST",
                self.kind.path,
                body=json.dumps({"companyName": data["companyName"]}).encode(),
                what=f"company {data['companyName']!r}",
                on_ambiguous=lambda: _found(
                    find_company(self.client, data["companyName"], without_email=True)
                ),
                on_wire=lambda: self.outlet.sending([pending]),
            )
            if answer.outcome not in (Outcome.ACCEPTED, Outcome.FOUND):
                self.outlet.refused(pending, answer.message or f"HTTP {answer.status}")
                return
            company = int(answer.data if answer.outcome is Outcome.FOUND else answer.data["id"])
        problem = self._contact_data(company, data)
        if problem:
            self.outlet.refused(pending, problem)
        else:
            self.outlet.accepted([pending], [str(company)])

    def _contact_data(self, company: int, data: dict) -> str | None:
        """The e-mail (primary), phone and address; a primary item replaces the old one."""
        posts = [("Email", data["email"])] + (
            [("Phone", data["phone"])] if data.get("phone") else []
        )
        for info_type, value in posts:
            body = {"infoType": info_type, "data": value, "isPrimary": True, "category": "Work"}
            answer = self.client.send(
                "POST",
                f"{CONTACT}/{company}/data",
                body=json.dumps(body).encode(),
                what=info_type,
                on_ambiguous=lambda t=info_type, v=value: _found(
                    company if find_by_info(self.client, t, v) == company else None
                ),
            )
            if answer.outcome not in (
                Outcome.ACCEPTED,
                Outcome.FOUND,
            ):  # found: it arrived after all
                return f"{info_type.lower()}: {answer.message or 'refused'}"
        # the portal calls the street "street"; an empty cell leaves its part out
        names = {
            "address": "street",
            "city": "city",
            "state": "state",
            "zip": "zip",
            "country": "country",
        }
        address = {names[k]: data[k] for k in names if data.get(k)}
        if address:
            address |= {"category": "Billing", "isPrimary": True}
            answer = self.client.send(
                "POST",
                f"{CONTACT}/{company}/addressdata",
                body=json.dumps({"address": address}).encode(),
                what="address",
            )
            if answer.outcome is not Outcome.ACCEPTED:
                return f"address: {answer.message or 'refused'}"
        return None


def find_by_email(client: Transport, email: str) -> int | None:
    """The contact whose e-mail is exactly this one (the server matches by substring)."""
    return find_by_info(client, "Email", email)


def find_by_info(client: Transport, info_type: str, value: str) -> int | None:
    """The contact with this e-mail or phone, compared exactly, without regard to case."""
    found = accepted_data(
        client.send(
            "GET",
            f"{CONTACT}/bycontactinfo",
            params={"infoType": info_type, "data": value},
            what=f"contact {value}",
        )
    )
    for contact in found or []:
        for info in contact.get("commonData") or []:
            same = fold_email(str(info.get("data"))) == fold_email(value)
            if info.get("infoType") == info_type and same:
                return int(contact["id"])
    return None


def find_company(client: Transport, name: str, *, without_email: bool = False) -> int | None:
    """The company called exactly `name` (the server matches by substring); with
    `without_email`, only one that has no e-mail yet (created by a run that got no answer)."""
    found = accepted_data(
        client.send(
            "GET",
            f"{CONTACT}/filter",
            params={"filterValue": name, "contactListView": "company"},
            what=f"company {name!r}",
        )
    )
    for contact in found or []:
        if str(contact.get("companyName", contact.get("displayName"))) != name:
            continue
        emails = [d for d in contact.get("commonData") or [] if d.get("infoType") == "Email"]
        if not (without_email and emails):
            return int(contact["id"])
    return None


def _found(record_id: int | None) -> Answer | None:
    return Answer(Outcome.FOUND, 0, data=record_id) if record_id is not None else None


class InvoiceSender(OneByOne):
    """An invoice a request with its lines; updated while Draft, else `cannot_update`."""

    def __init__(
        self, kind: Kind, client: Transport, outlet: Outlet, catalog: Callable[[], Catalog | None]
    ) -> None:
        super().__init__(kind, client, outlet)
        self.entries = outlet.journalled(kind.name)
        self.contacts = journalled_ids(outlet, "customers")
        self._catalog = catalog

    @property
    def catalog(self) -> Catalog:
        """Looked up before the run's first request, which may come after this sender is made."""
        return self._catalog() or Catalog()

    def one(self, pending: Pending) -> None:
        self.client.ready()  # the catalog, before the first invoice is judged
        data = json.loads(pending.payload, parse_float=Number)
        currency = str(data.get("currency", "")).upper()
        data["currency"] = currency  # the portal's codes are upper case
        if self.catalog.currencies and currency not in self.catalog.currencies:
            known = ", ".join(sorted(self.catalog.currencies)[:12])
            self.outlet.refused(
                pending,
                f"currency {currency!r} is not one of the portal's ({known})",
                "not_in_portal",
            )
            return
        reference = str(data.pop("contact"))
        contact = self.contacts.get(fold_email(reference))
        if contact is None:  # looked up once a run for each reference
            contact = find_by_email(self.client, reference) or find_company(self.client, reference)
            if contact is not None:
                self.contacts[fold_email(reference)] = contact
        if contact is None:
            self.outlet.refused(
                pending,
                f"contact {reference!r} is not in ONLYOFFICE: upload it first (upload all)",
                "customer_missing",
            )
            return
        body = self._body(data, contact)
        known = self.entries.get(pending.key)
        if known is not None and known[1] and known[1].isdigit():
            if known[0] == pending.fingerprint:  # there already, as it is (--full)
                self.outlet.unchanged([pending])
                return
            self._update(pending, int(known[1]), body)
            return
        existing = self._by_number(pending.key)
        if existing is not None:  # there already: adopted, and brought to this content
            if _same_lines(existing, body):
                self.outlet.accepted([pending], [str(existing["id"])])
            else:  # a PUT while Draft; the portal refuses it otherwise: cannot_update
                self._update(pending, int(existing["id"]), body)
            return
        answer = self.client.send(
            "POST",
            self.kind.path,
            body=_dumps(body).encode(),
            what=f"invoice {pending.key}",
            on_ambiguous=lambda: _found(_id(self._by_number(pending.key))),
            on_wire=lambda: self.outlet.sending([pending]),
        )
        if answer.outcome is Outcome.FOUND:
            self.outlet.accepted([pending], [str(answer.data)])
        elif answer.outcome is Outcome.ACCEPTED:
            self.outlet.accepted([pending], [str((answer.data or {}).get("id"))])
        else:
            self.outlet.refused(pending, answer.message or f"HTTP {answer.status}")

    def _update(self, pending: Pending, record_id: int, body: dict) -> None:
        body = {k: v for k, v in body.items() if k != "number"}
        answer = self.client.send(
            "PUT",
            f"{self.kind.path}/{record_id}",
            body=_dumps(body).encode(),
            what=f"invoice {pending.key}",
            on_wire=lambda: self.outlet.sending([pending]),
        )
        if answer.outcome is Outcome.ACCEPTED:
            self.outlet.accepted([pending], [str(record_id)])
        elif answer.outcome is Outcome.FORBIDDEN:
            self.outlet.refused(
                pending,
                f"invoice {pending.key} is no longer a Draft in ONLYOFFICE, so it cannot be "
                "changed: change it there, or give it a new number",
                "cannot_update",
            )
        else:
            self.outlet.refused(pending, answer.message or f"HTTP {answer.status}")

    def _by_number(self, number: str) -> dict | None:
        answer = self.client.send(
            "GET",
            f"{self.kind.path}/bynumber",
            params={"number": number},
            what=f"invoice {number}",
        )
        found = accepted_data(answer)
        return found if isinstance(found, dict) and "id" in found else None

    def _body(self, data: dict, contact: int) -> dict:
        catalog = self.catalog

        def ids(item: str | None, tax: str | None) -> dict[str, Any]:
            return {
                "invoiceItemID": catalog.items.get(str(item or catalog.default_item), 0),
                "invoiceTax1ID": catalog.taxes.get(str(tax), 0) if tax else 0,
            }

        return invoice_body(data, {"contactId": contact}, ids)


def invoice_body(
    data: dict, contact: dict[str, Any], references: Callable[[str | None, str | None], dict]
) -> dict:
    """The invoice as it goes out: the sender's defaults (templateType 0, exchangeRate 1,
    quantity 1, discount 0, no second tax) filled in; `contact` and `references` (of a line's
    item and tax) name the records: by id in a real run, by reference in a dry run."""
    lines = []
    for line in data.pop("invoiceLines", []):
        item, tax = line.pop("item", None), line.pop("tax", None)
        described = {"description": line["description"]} if "description" in line else {}
        lines.append(
            {
                **references(item, tax),
                "invoiceTax2ID": 0,
                **described,  # an empty cell leaves the field out, as everywhere
                "quantity": line.get("quantity", Number("1")),
                "price": line["price"],
                "discount": line.get("discount", Number("0")),
            }
        )
    body = contact | {"templateType": 0, "exchangeRate": Number("1")} | data
    return body | {"invoiceLines": lines}


def dry_run_invoice(payload: str, default_item: str | None) -> str:
    """A dry run's invoice as the sender would send it, its contact, items and taxes named by
    reference (no network, so no ids)."""
    data = json.loads(payload, parse_float=Number)
    data["currency"] = str(data.get("currency", "")).upper()
    contact = {"contact": data.pop("contact")}

    def titles(item: str | None, tax: str | None) -> dict[str, Any]:
        named = {"item": item or default_item} if item or default_item else {}
        return named | ({"tax": tax} if tax else {"invoiceTax1ID": 0})

    return _dumps(invoice_body(data, contact, titles))


def _same_lines(existing: dict, body: dict) -> bool:
    """The portal's invoice has this body's lines (what the money is)."""

    def lines(invoice: dict) -> list[tuple]:
        return [
            (
                line.get("invoiceItemID"),
                str(line.get("description") or ""),
                Decimal(str(line.get("quantity"))),
                Decimal(str(line.get("price"))),
                Decimal(str(line.get("discount", 0))),
            )
            for line in invoice.get("invoiceLines") or []
        ]

    return lines(existing) == lines(body) and existing.get("currency") == body.get("currency")


def _id(record: dict | None) -> int | None:
    return int(record["id"]) if record else None


class Number(str):
    """A JSON number kept as its text: amounts go out with the digits they came with."""


def _dumps(value: Any) -> str:
    """JSON with Numbers written as they are (json.dumps would quote them or make floats)."""
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)
