"""Writes the sample exports of the README (deterministic; run it to regenerate them)."""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

import openpyxl

HERE = Path(__file__).parent
CITIES = [("Berlin", "10115"), ("Hamburg", "20095"), ("Munich", "80331"), ("Cologne", "50667")]
NAMES = [
    ("Müller Metallbau GmbH", "Anna", "Müller"),
    ("Acme Trading Ltd", "John", "Smith"),
    ("Nordic Foods AB", "Sven", "Larsson"),
    ("Café Crème SARL", "Élodie", "Martin"),
    ("O'Brien & Sons", "Patrick", "O'Brien"),
    ("Blue Harbor Inc.", "Maria", "Garcia"),
    ("Zeta Logistics", "Wei", "Zhang"),
    ("Namibia Minerals (NA)", "Tjiuee", "Kandjii"),
]


def customers() -> list[dict[str, str]]:
    rows = []
    for n, (company, first, last) in enumerate(NAMES):
        number = f"{10001 + n:06d}"  # leading zeros are part of the number
        rows.append(
            {
                "Customer No": number,
                "Company": company,
                "First Name": first,
                "Last Name": last,
                "Phone": f"+49 30 {5550100 + n}",
                "E-mail": f"ar@{company.split()[0].lower().strip('.,')}.example",
                "Company Code": "1000",
            }
        )
    return rows


def invoices(rng: random.Random) -> list[dict[str, object]]:
    rows = []
    start = dt.date(2026, 9, 1)
    for n in range(40):
        customer = customers()[n % len(NAMES)]
        posted = start + dt.timedelta(days=rng.randrange(60))
        city, zip_code = CITIES[n % len(CITIES)]
        cents = rng.randrange(1_000, 2_500_000)
        credit = n % 13 == 12
        rows.append(
            {
                "Customer No": customer["Customer No"],
                "Customer": customer["Company"],
                "Invoice No": f"INV-2026-{n + 1:05d}",
                "Invoice Date": posted,
                "Due Date": posted + dt.timedelta(days=30),
                "Amount": (-cents if credit else cents) / 100,
                "Currency": "EUR" if n % 4 else "USD",
                "D/C": "H" if credit else "S",
                "Street": f"Hauptstraße {n + 1}",
                "City": city,
                "Postal Code": zip_code,
            }
        )
    return rows


def write_customers() -> None:
    rows = customers()
    with (HERE / "customers.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_invoices(rows: list[dict[str, object]]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Open Items"
    sheet.append(list(rows[0]))
    for row in rows:
        sheet.append(list(row.values()))
    for cell in sheet["D"][1:] + sheet["E"][1:]:
        cell.number_format = "DD.MM.YYYY"
    for cell in sheet["F"][1:]:
        cell.number_format = "#,##0.00"
    book.save(HERE / "invoices.xlsx")


def write_report(rows: list[dict[str, object]]) -> None:
    """An aging report as an ERP prints it: title lines, group headings, Total rows, a footer."""
    lines: list[list[str]] = [
        ["Open items report, all company codes"],
        ["Printed 2026-11-20 06:00 by AR-BATCH"],
        [],
        list(rows[0]),
    ]
    by_customer: dict[str, list[dict[str, object]]] = {}
    for row in rows[:24]:
        by_customer.setdefault(str(row["Customer No"]), []).append(row)
    grand = 0
    for number, items in by_customer.items():
        lines.append([f"Customer {number}"])
        total = 0
        for row in items:
            cents = round(float(row["Amount"]) * 100)
            total += cents
            amount = f"{abs(cents) / 100:,.2f}" + ("-" if cents < 0 else "")
            cells = dict(row, Amount=amount)
            for name in ("Invoice Date", "Due Date"):
                cells[name] = row[name].strftime("%d.%m.%Y")
            lines.append([str(v) for v in cells.values()])
        grand += total
        lines.append(["Total", "", "", "", "", f"{total / 100:,.2f}"])
        lines.append([])
    lines.append(["Grand total", "", "", "", "", f"{grand / 100:,.2f}"])
    with (HERE / "open_items_report.csv").open("w", encoding="cp1252", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(lines)


if __name__ == "__main__":
    items = invoices(random.Random(7))
    write_customers()
    write_invoices(items)
    write_report(items)
