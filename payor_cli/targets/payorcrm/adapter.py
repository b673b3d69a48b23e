"""PayorCRM (seed 000), the default target: two upload endpoints that take batches and upsert.

`api_key` and `api_secret` headers; customers upserted by `customerno`, invoices by
`invoiceNumber`, a JSON array a request. The documentation says nothing of answers, batch limits
or rate limits, so every answer the contract names is handled: 2xx with `success: false`
retried, 400/409/422 with or without row numbers, 413 halving the batch.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from payor_cli.contract import (
    MAX_MESSAGE,
    Answer,
    Credentials,
    Outcome,
    Outlet,
    Pending,
    Reply,
    Target,
    Transport,
)
from payor_cli.schema import Kind
from payor_cli.targets.payorcrm.sandbox import PayorCrmRoutes
from payor_cli.targets.payorcrm.spec import CUSTOMERS, INVOICES, NAME


class PayorCrm(Target):
    name = NAME
    title = "PayorCRM"
    kinds: ClassVar[dict[str, Kind]] = {k.name: k for k in (CUSTOMERS, INVOICES)}
    amount_field = "invoiceAmount"
    currency_field = "currency"
    credential_names = ("PAYOR_API_KEY", "PAYOR_API_SECRET")

    def auth_headers(self, credentials: Credentials) -> dict[str, str]:
        return {"api_key": credentials.api_key, "api_secret": credentials.api_secret or ""}

    def answer_problem(self, reply: Reply) -> str | None:
        """PayorCRM accepts with a JSON object (`success: false` in it is a temporary failure);
        anything else (a proxy's page, an empty body, a 204, a list) is not its answer."""
        if not isinstance(reply.data, dict):
            return f"{reply.form}, not a JSON object"
        if not isinstance(reply.data.get("success", True), bool):  # 0 == False: not a bool
            return f'"success": {json.dumps(reply.data["success"])[:40]}, neither true nor false'
        return None

    def refusal(self, reply: Reply) -> Answer | None:
        if reply.status in (400, 409, 422):
            errors = row_errors(reply.data, reply.short)  # scrubbed, one line, printable
            return Answer(Outcome.REFUSED, reply.status, reply.message, errors)
        return None

    def sender(self, kind: Kind, client: Transport, outlet: Outlet) -> BatchUpsert:
        return BatchUpsert(kind, client, outlet)

    def sandbox_routes(self) -> Any:
        return PayorCrmRoutes()


def row_errors(data: Any, clean) -> dict[int, str]:
    """Row reasons from the common shapes: errors: [{index|row, message}] or {index: msg}."""
    if not isinstance(data, dict):
        return {}
    errors = data.get("errors") or data.get("rows") or data.get("failed")
    if isinstance(errors, dict):
        items = [{"index": k, "message": v} for k, v in errors.items()]
    elif isinstance(errors, list):
        items = errors
    else:
        return {}
    found: dict[int, str] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        index = item.get("index", item.get("row"))
        try:
            position = int(index)
        except (TypeError, ValueError):
            continue
        reason = item.get("message") or item.get("error") or "refused by the server"
        if item.get("field"):
            reason = f"{item['field']}: {reason}"
        reason = clean(clean(str(reason))[:MAX_MESSAGE])  # scrubbed before it is cut, and after
        found[position] = f"{found[position]}; {reason}" if position in found else reason
    return found


class BatchUpsert:
    """A batch in one POST. Refused rows named by the server leave the batch and the rest is
    sent again; a refusal naming none is split in halves until the refused rows are found;
    413 halves the batch size for the rest of the run."""

    def __init__(self, kind: Kind, client: Transport, outlet: Outlet) -> None:
        self.kind = kind
        self.client = client
        self.outlet = outlet

    def send(self, batch: list[Pending]) -> None:
        size = self.outlet.batch_size
        if len(batch) > size:  # cut before a 413 halved the size: sent at the size now
            for start in range(0, len(batch), size):
                self.send(batch[start : start + size])
            return
        body = b"[" + b",".join(p.payload for p in batch) + b"]"
        answer = self.client.post(
            self.kind.path,
            body,
            f"{len(batch)} {self.kind.name}",
            on_wire=lambda: self.outlet.sending(batch),
        )
        outlet = self.outlet
        if answer.outcome is Outcome.ACCEPTED:
            outlet.accepted(batch)
        elif answer.outcome is Outcome.TOO_LARGE:
            if len(batch) == 1:
                outlet.refused(
                    batch[0], f"too large for the server (HTTP 413) {answer.message}".strip()
                )
                return
            if len(batch) <= outlet.batch_size:
                # cut at the size in force: halve it. A batch cut before an earlier halving
                # (in flight at the time) is only cut again at the size now
                outlet.batch_size = max(1, len(batch) // 2)
                outlet.notice(
                    f"{self.kind.name}: the server found {len(batch)} rows too large (HTTP 413); "
                    f"batch size now {outlet.batch_size}"
                )
            remaining = batch
            while remaining:  # cut afresh each time: a part may halve the size again
                part = remaining[: outlet.batch_size]
                remaining = remaining[outlet.batch_size :]
                self._again(part)
        elif answer.row_errors and all(0 <= i < len(batch) for i in answer.row_errors):
            for position, reason in sorted(answer.row_errors.items()):
                outlet.refused(batch[position], reason)
            rest = [p for i, p in enumerate(batch) if i not in answer.row_errors]
            if rest:
                self._again(rest)
        elif len(batch) == 1:
            outlet.refused(batch[0], answer.message or f"HTTP {answer.status}")
        else:
            middle = len(batch) // 2
            self._again(batch[:middle])
            self._again(batch[middle:])

    def _again(self, part: list[Pending]) -> None:
        self.outlet.check_stop()  # between the parts of a split batch too: nothing new goes out
        self.send(part)
