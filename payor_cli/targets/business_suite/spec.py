"""business-suite, the REST v2 CRM (seed 003) as data: its endpoints, kinds and fields, as its documentation gives them."""

from __future__ import annotations

from payor_cli.schema import Kind, fields_of

NAME = "business-suite"
API = "/api/v2"
BATCH_LIMIT = 100
"""Customers a batch create takes; more is 413."""
HOURLY_QUOTA = 1000

CUSTOMERS = Kind(
    name="customers",
    target=NAME,
    path=f"{API}/batch/customers",
    fields=fields_of("account! email:email! phone address city state zip country"),
    key=("email",),
)

INVOICES = Kind(
    name="invoices",
    target=NAME,
    path=f"{API}/invoices",
    fields=fields_of("invoice_number! customer! date:date! due_date:date notes amount:money"),
    key=("invoice_number",),
    parent=("customers", "customer", "email"),
    lines=fields_of("description! amount:money! qty:decimal"),
    lines_member="items",
    amount_without_lines="amount",
)
