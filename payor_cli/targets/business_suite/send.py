"""How business-suite's kinds are sent: customers by batch (and PUT by id), invoices one a
request, their customer resolved to its id, never created twice.

Ids come from the journal (what earlier runs were given) and, only when a key is met that the
journal lacks, from the server: the customer list once a run, each customer's invoices once a
run. A create that got no clear answer (a timeout, a dropped connection, a 5xx) is looked up
before it is tried again.
"""

from __future__ import annotations

import json
import re
import threading
from decimal import Decimal

from payor_cli.contract import (
    Answer,
    OneByOne,
    Outcome,
    Outlet,
    Pending,
    Transport,
    journalled_ids,
    whole_id,
)
from payor_cli.schema import Kind
from payor_cli.targets.business_suite.spec import API, BATCH_LIMIT
from payor_cli.values import fold_email

PAGE = 100
_CUSTOMER_MEMBER = re.compile(rb'"customer":"((?:[^"\\]|\\.)*)"')


class Directory:
    """The customers the CRM holds (e-mail and account -> id), listed when first needed.

    Several senders share it: a lookup waits while the list is loaded, so it never sees a
    half-filled list (a customer missing from it would be created twice)."""

    def __init__(self, client: Transport) -> None:
        self.client = client
        self.by_email: dict[str, int] | None = None
        self.by_account: dict[str, int] = {}
        self._lock = threading.RLock()

    def find(self, reference: str) -> int | None:
        with self._lock:
            if self.by_email is None:
                self.reload()
            assert self.by_email is not None
            folded = fold_email(reference.strip())
            found = self.by_email.get(folded)
            if found is None:
                found = self.by_account.get(reference.strip(), self.by_account.get(folded))
            return found

    def reload(self) -> None:
        with self._lock:
            self.by_email, self.by_account = {}, {}
            for customer in listed(self.client, f"{API}/customers", {}, "the customer list"):
                self.add(customer, customer["id"])

    def email_ids(self, emails: list[str]) -> dict[int, int]:
        """Position -> id of the e-mails the directory holds."""
        with self._lock:
            assert self.by_email is not None
            found = {i: self.by_email.get(email) for i, email in enumerate(emails)}
            return {i: v for i, v in found.items() if v is not None}

    def add(self, customer: dict, record_id: int) -> None:
        """A customer this run created or updated: its invoices find it without a new list."""
        with self._lock:
            if self.by_email is None:
                return  # not listed yet: the list, when needed, will have it
            self.by_email[fold_email(str(customer.get("email", "")))] = record_id
            account = str(customer.get("account", ""))
            self.by_account.setdefault(account, record_id)
            self.by_account.setdefault(fold_email(account), record_id)


def listed(client: Transport, path: str, params: dict[str, str], what: str) -> list[dict]:
    """Every record of a paged listing."""
    found: list[dict] = []
    page = 1
    while True:
        answer = client.send(
            "GET", path, params={**params, "page": str(page), "limit": str(PAGE)}, what=what
        )
        data = answer.data if isinstance(answer.data, dict) else {}
        if answer.outcome is not Outcome.ACCEPTED:
            break
        found.extend(r for r in data.get("data") or [] if isinstance(r, dict) and "id" in r)
        meta = data.get("meta") or {}
        if page >= int(meta.get("total_pages") or 1):
            break
        page += 1
    return found


class CustomerSender:
    """New customers in batch creates of at most 100; known ones (by the journal, or found in
    the CRM's list: adopted, not duplicated) updated with one PUT each."""

    def __init__(self, kind: Kind, client: Transport, outlet: Outlet, directory: Directory) -> None:
        self.kind = kind
        self.client = client
        self.outlet = outlet
        self.ids = journalled_ids(outlet, kind.name)
        self.directory = directory

    def send(self, batch: list[Pending]) -> None:
        new: list[Pending] = []
        for pending in batch:
            known = self.ids.get(pending.key)
            if known is None:
                known = self.directory.find(pending.key)  # listed once, when first needed
            if known is None or not self._update(pending, known):
                new.append(pending)
        for start in range(0, len(new), BATCH_LIMIT):
            self.outlet.check_stop()
            self._create(new[start : start + BATCH_LIMIT])

    def _update(self, pending: Pending, record_id: int) -> bool:
        """PUT the whole object; False when the id is gone (then it is created anew)."""
        answer = self.client.send(
            "PUT",
            f"{API}/customers/{record_id}",
            body=pending.payload,
            what=f"customer {pending.key}",
            on_wire=lambda: self.outlet.sending([pending]),
        )
        if answer.outcome is Outcome.MISSING:
            return False
        if answer.outcome is Outcome.ACCEPTED:
            self.directory.add(pending.data(), record_id)
            self.outlet.accepted([pending], [str(record_id)])
        else:
            self.outlet.refused(pending, answer.row_errors.get(0) or answer.message)
        return True

    def _create(self, batch: list[Pending]) -> None:
        if not batch:
            return
        body = b'{"customers":[' + b",".join(p.payload for p in batch) + b"]}"
        answer = self.client.send(
            "POST",
            self.kind.path,
            body=body,
            what=f"{len(batch)} customers",
            on_ambiguous=lambda: self._created_after_all(batch),
            on_wire=lambda: self.outlet.sending(batch),
        )
        if answer.outcome is Outcome.FOUND:
            found: dict[int, int] = answer.data
            self.outlet.accepted([batch[i] for i in found], [str(v) for v in found.values()])
            self._create([p for i, p in enumerate(batch) if i not in found])
        elif answer.outcome is Outcome.ACCEPTED:
            created = answer.data.get("data") if isinstance(answer.data, dict) else None
            ids = [whole_id(c.get("id")) if isinstance(c, dict) else None for c in created or []]
            if len(ids) != len(batch) or None in ids:
                ids = [None] * len(batch)  # found by the list when next needed
            for pending, record_id in zip(batch, ids, strict=True):
                if record_id is not None:
                    self.directory.add(pending.data(), record_id)
            self.outlet.accepted(batch, [str(i) if i is not None else None for i in ids])
        elif answer.outcome is Outcome.TOO_LARGE and len(batch) > 1:
            middle = len(batch) // 2
            self._create(batch[:middle])
            self._create(batch[middle:])
        elif answer.row_errors and all(0 <= i < len(batch) for i in answer.row_errors):
            for position, reason in sorted(answer.row_errors.items()):
                self.outlet.refused(batch[position], reason)
            self._create([p for i, p in enumerate(batch) if i not in answer.row_errors])
        else:
            for pending in batch:
                self.outlet.refused(pending, answer.message or f"HTTP {answer.status}")

    def _created_after_all(self, batch: list[Pending]) -> Answer | None:
        self.directory.reload()
        found = self.directory.email_ids([p.key for p in batch])
        return Answer(Outcome.FOUND, 0, data=found) if found else None


def _same_invoice(existing: dict, ours: dict) -> bool:
    """The CRM's invoice says what ours says: dates, notes and every item, exactly."""

    def items(invoice: dict) -> list[tuple]:
        return [
            (
                str(i.get("description")),
                Decimal(str(i.get("amount"))),
                Decimal(str(i.get("qty", 1))),
            )
            for i in invoice.get("items") or []
        ]

    fields = ("customer_id", "date", "due_date", "notes")
    return items(existing) == items(ours) and all(existing.get(f) == ours.get(f) for f in fields)


class InvoiceSender(OneByOne):
    """One invoice a request, its customer named by id. An invoice the journal knows is not
    sent again: unchanged it is there, changed it is refused `cannot_update`."""

    def __init__(self, kind: Kind, client: Transport, outlet: Outlet, directory: Directory) -> None:
        super().__init__(kind, client, outlet)
        self.entries = outlet.journalled(kind.name)
        self.customer_ids = journalled_ids(outlet, "customers")
        self.directory = directory
        self.invoices_of: dict[int, dict[str, int]] = {}

    def one(self, pending: Pending) -> None:
        known = self.entries.get(pending.key)
        if known is not None and known[1]:
            if known[0] == pending.fingerprint:
                self.outlet.unchanged([pending])  # there already, as it is (--full)
            else:
                self.outlet.refused(
                    pending,
                    f"invoice {pending.key} is in business-suite already (id {known[1]}) and "
                    "its API cannot change an invoice: change it there, or give it a new number",
                    "cannot_update",
                )
            return
        match = _CUSTOMER_MEMBER.search(pending.payload)
        reference = json.loads(b'"' + match.group(1) + b'"') if match else ""
        customer_id = self.customer_ids.get(fold_email(reference)) or self.directory.find(reference)
        if customer_id is None:
            self.outlet.refused(
                pending,
                f"customer {reference!r} is not in business-suite: upload it first "
                "(payor upload customers, or upload all)",
                "customer_missing",
            )
            return
        assert match is not None
        body = (
            pending.payload[: match.start()]
            + f'"customer_id":{customer_id}'.encode()
            + pending.payload[match.end() :]
        )
        existing = self._invoice(customer_id, pending.key)
        if existing is not None:  # in the CRM already: adopted, not created twice
            if _same_invoice(existing, json.loads(body)):
                self.outlet.accepted([pending], [str(existing["id"])])
            else:
                self.outlet.refused(
                    pending,
                    f"invoice {pending.key} is in business-suite already (id {existing['id']}) "
                    "with other content, and its API cannot change an invoice: change it "
                    "there, or give it a new number",
                    "cannot_update",
                )
            return
        answer = self.client.send(
            "POST",
            self.kind.path,
            body=body,
            what=f"invoice {pending.key}",
            on_ambiguous=lambda: self._found(customer_id, pending.key),
            on_wire=lambda: self.outlet.sending([pending]),
        )
        self._booked(pending, answer, customer_id)

    def _booked(self, pending: Pending, answer: Answer, customer_id: int) -> None:
        if answer.outcome is Outcome.FOUND:
            self.outlet.accepted([pending], [str(answer.data)])
        elif answer.outcome is Outcome.ACCEPTED:
            created = answer.data.get("data") if isinstance(answer.data, dict) else None
            record_id = created.get("id") if isinstance(created, dict) else None
            self.outlet.accepted([pending], [str(record_id) if record_id is not None else None])
        elif answer.status == 409 and (found := self._found(customer_id, pending.key)):
            self.outlet.accepted([pending], [str(found.data)])
        else:
            reasons = "; ".join(answer.row_errors.values()) if answer.row_errors else ""
            self.outlet.refused(pending, reasons or answer.message or f"HTTP {answer.status}")

    def _invoice(self, customer_id: int, number: str, *, fresh: bool = False) -> dict | None:
        """The customer's invoice with this number, from its list (once a run)."""
        if fresh or customer_id not in self.invoices_of:
            invoices = listed(
                self.client,
                self.kind.path,
                {"customer_id": str(customer_id)},
                f"the invoices of customer {customer_id}",
            )
            self.invoices_of[customer_id] = {str(i.get("invoice_number")): i for i in invoices}
        return self.invoices_of[customer_id].get(number)

    def _found(self, customer_id: int, number: str) -> Answer | None:
        found = self._invoice(customer_id, number, fresh=True)
        return Answer(Outcome.FOUND, 0, data=found["id"]) if found is not None else None
