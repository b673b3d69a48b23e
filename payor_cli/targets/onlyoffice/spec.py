"""ONLYOFFICE CRM as data: its endpoints, kinds and fields, as its documentation gives them."""

from __future__ import annotations

from payor_cli.schema import Kind, fields_of

NAME = "onlyoffice"
API = "/api/2.0"
DRAFT = 1

CUSTOMERS = Kind(
    name="customers",
    target=NAME,
    path=f"{API}/crm/contact/company",
    fields=fields_of("companyName! email:email! phone address city state zip country"),
    key=("email",),
)

INVOICES = Kind(
    name="invoices",
    target=NAME,
    path=f"{API}/crm/invoice",
    fields=fields_of(
        "number! contact! issueDate:date! dueDate:date! currency! terms! exchangeRate:decimal "
        "language purchaseOrderNumber description amount:money"
    ),
    key=("number",),
    parent=("customers", "contact", "email"),
    lines=fields_of("description quantity:decimal price:money! discount:decimal item tax"),
    lines_member="invoiceLines",
    amount_without_lines="amount",
    date_suffix="T00:00:00",
)
