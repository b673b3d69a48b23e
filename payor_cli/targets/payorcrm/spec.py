"""PayorCRM (seed 000) as data: its endpoints, kinds and fields, as its documentation gives them."""

from __future__ import annotations

from payor_cli.schema import Kind, fields_of

NAME = "payorcrm"
# Field lists and types as PayorCRM's "API integration" page documents them (seed 000).
CUSTOMERS = Kind(
    name="customers",
    target=NAME,
    path="/jsonApi/upload/customers",
    fields=fields_of(
        "companyname firstname lastname phoneno emailaddress1:email! customerno! cocode"
    ),
    key=("customerno",),
)

INVOICES = Kind(
    name="invoices",
    target=NAME,
    path="/jsonApi/upload/invoices",
    fields=fields_of(
        "companyCode profitCenter customerName customerNumber! accountingDocNumber "
        "invoiceNumber! postDate:date dueDate:date paymentTerms documentType postingKey "
        "debitCreditIndicator balanceAmount billAddr:json shipAddr:json currency "
        "invoiceAmount:integer! reasonCode reasonCodeDescription fiscalYear invoiceDate:date "
        "reference1 reference2 localAmount:integer itemText fiscalPeriod issueDate:date soldTo "
        "lineItem referenceDocNo status"
    ),
    key=("invoiceNumber",),
    parent=("customers", "customerNumber", "customerno"),
)
