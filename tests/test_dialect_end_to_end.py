"""payor as a black box against each strict dialect on a loopback server: one accounting export
(customers and invoice lines on every row, some street, line text and quantity cells empty)
feeds `upload all`, with and without injected faults. The server's store must hold every
customer and invoice exactly once, every line, and no field as `""`. The mappings come from
docs/mapping.md, docs/targets.md and sample_data/*.toml, not from the senders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from conftest import CREDENTIALS, write_csv, write_mapping, write_xlsx

HEADER = ["Customer No", "Company", "E-mail", "Street", "Zip", "City", "Country", "Invoice No",
          "Invoice Date", "Due Date", "Currency", "Pos", "Line Text", "Qty", "Unit Price"]  # fmt: skip
STALLS = ("--stall-rate", "0.25", "--stall-seconds", "1")  # stored, answered after the timeout
FAULTS = ("--fault-rate", "0.2", "--faults", "500,502,503,504,429,drop", "--seed", "5", *STALLS)
BUSINESS_SUITE = """
[api]
target = "business-suite"
timeout = 0.5

[customers]
[customers.fields]
email = "E-mail"
account = "Company"
address = "Street"
zip = "Zip"
city = "City"
country = "Country"

[invoices]
[invoices.fields]
invoice_number = "Invoice No"
customer = "E-mail"
date = "Invoice Date"
due_date = "Due Date"
[invoices.lines]
description = "Line Text"
amount = "Unit Price"
qty = "Qty"
"""

ONLYOFFICE = """
[api]
target = "onlyoffice"
timeout = 0.5
invoice_item = "Services"

[customers]
[customers.fields]
email = "E-mail"
companyName = "Company"
address = "Street"
zip = "Zip"
city = "City"
country = "Country"

[invoices]
[invoices.fields]
number = "Invoice No"
contact = "E-mail"
issueDate = "Invoice Date"
dueDate = "Due Date"
currency = "Currency"
terms = { value = "30 days net" }
[invoices.lines]
description = "Line Text"
quantity = "Qty"
price = "Unit Price"
"""


def export(*, empty_streets: bool, empty_texts: bool, invoices: int = 36) -> list[list[Any]]:
    """Rows as an accounting system exports open items: one per invoice line, the customer's
    master data repeated on each. E-mails and names that contain one another ("Company 1" in
    "Company 10"), so look-ups that match substrings find more than one."""
    rows: list[list[Any]] = [HEADER]
    for i in range(invoices):
        c = i % 12
        email = f"{c or ''}billing@firm.example" if c % 4 else f"{c or ''}Billing@Firm.example"
        street = "" if empty_streets and c % 3 == 0 else f"Hauptstr. {c + 1}"
        day = dt.date(2026, 3, 1 + i % 28)
        for n in range(1 + i % 3):
            text = "" if empty_texts and (i + n) % 4 == 0 else f"Service {n + 1} of {i}"
            qty = "" if (i + n) % 5 == 2 else ("1.5" if n == 1 else str(n + 1))
            price = f"{(i * 37 + n * 11) % 900 + 1}.{(i + n) % 100:02d}"
            rows.append(
                [f"K{c:04d}", f"Company {c}", email, street, f"{10115 + c}", "Berlin", "DE",
                 f"INV-{i:05d}", day, day + dt.timedelta(days=30), "EUR", n + 1, text, qty,
                 price]
            )  # fmt: skip
    return rows


def records_of(rows: list[list[Any]]) -> tuple[dict[str, dict], dict[str, list[tuple]]]:
    """The customers by e-mail (their cells) and the invoices' lines by number, from the file:
    (text or None, unit price, quantity) with an empty quantity being the default 1."""
    customers: dict[str, dict] = {}
    invoices: dict[str, list[tuple]] = {}
    for row in rows[1:]:
        cell = dict(zip(HEADER, row, strict=True))
        customers[cell["E-mail"]] = cell
        qty = Decimal(cell["Qty"] or "1")
        line = (cell["Line Text"] or None, Decimal(cell["Unit Price"]), qty)
        invoices.setdefault(cell["Invoice No"], []).append(line)
    return customers, invoices


def customers_of(rows: list[list[Any]]) -> dict[str, str]:
    """Each invoice number's customer e-mail."""
    return {str(r[7]): str(r[2]) for r in rows[1:]}


def empty_strings(value: Any, at: str = "") -> list[str]:
    """Where a stored record holds "", e.g. `addresses.0.street`."""
    if value == "":
        return [at]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empty_strings(v, f"{at}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [p for n, v in enumerate(value) for p in empty_strings(v, f"{at}.{n}")]
    return []


def check_store(server, stored_customers: list[dict], stored_invoices: list[dict]) -> None:
    """No "" arrived, no body was malformed, nothing stored holds ""."""
    everything = {"customers": stored_customers, "invoices": stored_invoices}
    assert empty_strings(everything) == []
    assert server.stats()["empty_strings"] == {}
    assert server.stats()["malformed_bodies"] == 0


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(()),
        pytest.param(("--fault-rate", "0.2", "--faults", "429,drop", "--seed", "5", *STALLS)),
        pytest.param(FAULTS),
    ],
    ids=["no-faults", "429-and-drops", "faults"],
)
def test_business_suite_stores_every_record_once(
    faults, tmp_path, sandbox_server, upload_one_export
):
    """An invoice with an empty line text is refused by payor (description is required), whole;
    every other record arrives once, empty streets and quantities left out."""
    rows = export(empty_streets=True, empty_texts=True)
    source = write_csv(tmp_path / "open_items.csv", [[str(c) for c in r] for r in rows])
    config = write_mapping(tmp_path / "payor.toml", BUSINESS_SUITE)
    server = sandbox_server("--target", "business-suite", *faults)
    run, report = upload_one_export(server, source, config, env=CREDENTIALS)
    customers, invoices = records_of([[str(c) for c in r] for r in rows])
    sendable = {n: ls for n, ls in invoices.items() if all(text for text, _, _ in ls)}
    assert len(sendable) < len(invoices)  # the file has invoices payor must refuse
    assert run.code == 1, run.text
    assert report["invoices"]["rows_rejected"] == sum(map(len, invoices.values())) - sum(
        map(len, sendable.values())
    )
    stored = server.records("customers")
    assert sorted(c["email"] for c in stored) == sorted(customers)
    fields = {"account": "Company", "address": "Street", "zip": "Zip", "city": "City",
              "country": "Country"}  # fmt: skip
    for record in stored:
        cells = customers[record["email"]]
        wanted = {f: cells[col] for f, col in fields.items() if cells[col]}
        assert {k: v for k, v in record.items() if k in fields} == wanted
    by_id = {c["id"]: c["email"] for c in stored}
    numbers = [i["invoice_number"] for i in server.records("invoices")]
    assert sorted(numbers) == sorted(sendable)  # each once
    for record in server.records("invoices"):
        assert by_id[record["customer_id"]] == customers_of(rows)[record["invoice_number"]]
        lines = [(i.get("description"), Decimal(str(i["amount"])), Decimal(str(i.get("qty", 1))))
                 for i in record["items"]]  # fmt: skip
        assert lines == sendable[record["invoice_number"]]
    assert server.stats()["writes"] == {"customers": 12, "invoices": len(sendable)}
    check_store(server, stored, server.records("invoices"))
    if faults:
        assert sum(server.stats()["injected"].values()) > 0 and server.stats()["stalled"] > 0


@pytest.mark.parametrize(
    ("empty_streets", "empty_texts"),
    [
        pytest.param(False, False, id="no-empty-cells"),
        pytest.param(True, False, id="empty-streets"),
        pytest.param(False, True, id="empty-line-texts"),
        pytest.param(True, True, id="both"),
    ],
)  # fmt: skip
def test_onlyoffice_stores_every_record_once_under_faults(
    empty_streets, empty_texts, tmp_path, sandbox_server, upload_one_export
):
    """A workbook with date cells, 20% injected faults: every company once with exactly the
    address parts that have cells, every invoice once with every line."""
    # 24 invoices: each of the 12 companies twice, every pattern of empty cells still there
    rows = export(empty_streets=empty_streets, empty_texts=empty_texts, invoices=24)
    source = write_xlsx(tmp_path / "open_items.xlsx", [
        [None if c == "" else (float(c) if h in ("Unit Price", "Qty") else c)
         for h, c in zip(HEADER, r, strict=True)] if n else r
        for n, r in enumerate(rows)
    ])  # fmt: skip
    config = write_mapping(tmp_path / "payor.toml", ONLYOFFICE)
    server = sandbox_server("--target", "onlyoffice", *FAULTS)
    # onlyoffice takes one record a request: batches of 9 rows keep the senders busy side by
    # side, as the batches of a large export do (one batch of all rows went one by one)
    run, _ = upload_one_export(
        server, source, config, "--batch-size", "9",
        env={"PAYOR_API_KEY": CREDENTIALS["PAYOR_API_KEY"]},
    )  # fmt: skip
    customers, invoices = records_of([[str(c) for c in r] for r in rows])
    assert run.code == 0, run.text
    stored = server.records("customers")
    emails = [d["data"] for c in stored for d in c["commonData"] if d["infoType"] == "Email"]
    assert sorted(emails) == sorted(customers) and len(stored) == len(customers)
    by_id = {}
    for record in stored:
        (email,) = [d["data"] for d in record["commonData"]]
        by_id[record["id"]] = email
        cells = customers[email]
        assert record["companyName"] == cells["Company"]
        parts = {"street": "Street", "zip": "Zip", "city": "City", "country": "Country"}
        wanted = {p: cells[col] for p, col in parts.items() if cells[col]}
        assert record["addresses"] == [{**wanted, "category": "Billing", "isPrimary": True}]
    stored_invoices = server.records("invoices")
    assert sorted(i["number"] for i in stored_invoices) == sorted(invoices)  # each once
    for record in stored_invoices:
        assert by_id[record["contactId"]] == customers_of(rows)[record["number"]]
        assert record["issueDate"].endswith("T00:00:00") and record["currency"] == "EUR"
        lines = [(i.get("description"), Decimal(str(i["price"])),
                  Decimal(str(i.get("quantity", 1)))) for i in record["invoiceLines"]]  # fmt: skip
        assert lines == invoices[record["number"]]
    assert server.stats()["writes"]["invoices"] == len(invoices)
    check_store(server, stored, stored_invoices)
    assert sum(server.stats()["injected"].values()) > 0 and server.stats()["stalled"] > 0
