"""What ONLYOFFICE needs before anything is sent (`prepare`): a token for the run, when it has
none, and the portal's currencies, taxes and invoice items, looked up once; an item or tax the
file names that the portal lacks is a usage error."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from payor_cli.contract import Answer, Outcome, Target, TargetSettings, Transport
from payor_cli.errors import AbortedError, ConfigError
from payor_cli.targets.onlyoffice.spec import API


@dataclass
class Catalog:
    """The portal's currencies, taxes (name -> id) and invoice items (title -> id)."""

    currencies: set[str] = field(default_factory=set)
    taxes: dict[str, int] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    default_item: str | None = None


def accepted_data(answer: Answer) -> Any:
    """The data of an accepted answer (None for any other)."""
    return answer.data if answer.outcome is Outcome.ACCEPTED else None


def prepare(
    target: Target, client: Transport, planned: list[Any], settings: TargetSettings
) -> Catalog | None:
    """Sign in (when the run has no token) and look up the catalog the invoices need (None:
    no invoices in the run)."""
    if "Authorization" not in client.headers:
        _sign_in(target, client, settings)
    invoices = [p for p in planned if p.source.kind.name == "invoices"]
    if not invoices:
        return None
    catalog = Catalog(default_item=settings.invoice_item)
    currencies = accepted_data(
        client.send("GET", f"{API}/crm/settings/currency", what="currencies")
    )
    catalog.currencies = {str(c.get("abbreviation", "")).upper() for c in currencies or []}
    taxes = accepted_data(client.send("GET", f"{API}/crm/invoice/tax", what="taxes")) or []
    catalog.taxes = {str(t.get("name")): int(t["id"]) for t in taxes if "id" in t}
    named_items, wanted_taxes = _named(invoices[0])
    wanted_items = set(named_items or ())
    if settings.invoice_item:
        wanted_items.add(settings.invoice_item)
    elif named_items is None or "" in named_items:
        raise ConfigError(
            "every ONLYOFFICE invoice line needs an invoice item, and some lines name none",
            'map item under [invoices.lines], or set invoice_item = "Title" in [api]',
        )
    catalog.items = _items(client, wanted_items)
    _check_named(catalog, wanted_items, wanted_taxes)
    return catalog


def _sign_in(target: Target, client: Transport, settings: TargetSettings) -> None:
    """Exchange the user's password for the run's token, sent with every request from now."""
    answer = client.send(
        "POST",
        f"{API}/authentication",
        body=json.dumps(
            {"userName": settings.api_user, "password": settings.api_password}
        ).encode(),
        what="the sign-in",
        classify=lambda reply: _signed_in(target, reply, settings.api_user),
    )
    token = (
        (accepted_data(answer) or {}).get("token") if answer.outcome is Outcome.ACCEPTED else None
    )
    if not token:
        raise ConfigError(
            f"the portal refused the sign-in of {settings.api_user!r}",
            "check PAYOR_API_USER and PAYOR_API_PASSWORD, or use a token (PAYOR_API_KEY)",
        )
    client.authorize("Authorization", str(token))


def _signed_in(target: Target, reply: Any, user: str | None) -> Answer | None:
    if reply.status in (401, 403):
        raise AbortedError(
            f"the portal refused the sign-in of {user!r} (HTTP {reply.status})",
            "check PAYOR_API_USER and PAYOR_API_PASSWORD, or use a token (PAYOR_API_KEY)",
        )
    return target.classify(reply)


def _items(client: Transport, wanted: set[str]) -> dict[str, int]:
    """The portal's invoice items of these titles (title -> id), each looked up by its title."""
    items: dict[str, int] = {}
    for title in sorted(t for t in wanted if t):
        found = accepted_data(
            client.send(
                "GET",
                f"{API}/crm/invoiceitem/filter",
                params={"filterValue": title},
                what=f"invoice item {title!r}",
            )
        )
        for item in found or []:
            if str(item.get("title")) == title:
                items[title] = int(item["id"])
    return items


def _check_named(catalog: Catalog, items: set[str], taxes: set[str]) -> None:
    """Every item and tax the file names is the portal's: else a usage error, nothing sent."""
    missing_items = sorted(t for t in items if t and t not in catalog.items)
    missing_taxes = sorted(t for t in taxes if t and t not in catalog.taxes)
    if missing_items or missing_taxes:
        named = [f"invoice item {t!r}" for t in missing_items] + [
            f"tax {t!r}" for t in missing_taxes
        ]
        raise ConfigError(
            f"the portal has no {', '.join(named)}; nothing was sent",
            "create them in ONLYOFFICE (CRM settings), or map the lines to ones it has",
        )


def _named(planned: Any) -> tuple[set[str] | None, set[str]]:
    """The item titles and tax names the invoices file's lines name (read once, now)."""
    lines = {b.spec.field: b for b in planned.bound.lines or []}
    columns = {n: lines[n].column_index for n in ("item", "tax") if n in lines}
    constants = {n: lines[n].spec.value for n in ("item", "tax") if n in lines}
    items: set[str] = set()
    taxes: set[str] = set()
    if "item" not in lines:
        return None, taxes
    for chunk in planned.table.chunks():
        for name, found in (("item", items), ("tax", taxes)):
            index = columns.get(name)
            if constants.get(name) is not None:
                found.add(str(constants[name]))
            elif index is not None:
                found.update(
                    str(v or "").strip() for v in chunk.columns[index].unique().to_pylist()
                )
    return items, taxes
