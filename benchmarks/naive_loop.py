"""The baseline: what a straightforward hand-written uploader does with an invoice CSV.

`python benchmarks/naive_loop.py FILE.csv` reads the file with csv.DictReader, builds one payload
dict per row with the usual per-row checks (required fields non-empty, Amount as a Decimal that
must be whole in cents, the three dates parsed with datetime.strptime), collects the valid rows in
a list and serializes every 500 of them with json.dumps, throwing the text away (nothing is sent).
It prints the counts, so a run can be checked against payor's.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from decimal import Decimal, InvalidOperation

BATCH = 500

# column -> API field, as in the benchmark's mapping TOML
COLUMNS = {
    "CompanyCode": "companyCode",
    "ProfitCenter": "profitCenter",
    "CustomerName": "customerName",
    "CustomerNumber": "customerNumber",
    "DocNumber": "accountingDocNumber",
    "InvoiceNumber": "invoiceNumber",
    "PostDate": "postDate",
    "DueDate": "dueDate",
    "Terms": "paymentTerms",
    "DocType": "documentType",
    "PostingKey": "postingKey",
    "DC": "debitCreditIndicator",
    "Balance": "balanceAmount",
    "Currency": "currency",
    "Amount": "invoiceAmount",
    "InvoiceDate": "invoiceDate",
    "Text": "itemText",
}
REQUIRED = ("CustomerNumber", "InvoiceNumber", "Amount")
DATES = ("PostDate", "DueDate", "InvoiceDate")
HUNDRED = Decimal(100)


def main(path: str) -> int:
    rows_read = rows_valid = rows_rejected = batches = 0
    batch: list[dict[str, object]] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            rows_read += 1
            row: dict[str, object] = {}
            ok = True
            for column, field in COLUMNS.items():
                value = (record.get(column) or "").strip()
                if not value:
                    if column in REQUIRED:
                        ok = False
                    continue
                row[field] = value
            if not ok:
                rows_rejected += 1
                continue
            try:
                cents = Decimal(record["Amount"].strip()) * HUNDRED
                if cents != cents.to_integral_value():
                    raise ValueError("not whole")
                row["invoiceAmount"] = int(cents)
                for column in DATES:
                    value = record[column].strip()
                    if value:
                        row[COLUMNS[column]] = (
                            datetime.strptime(value, "%Y-%m-%d").date().isoformat()
                        )
            except (InvalidOperation, ValueError):
                rows_rejected += 1
                continue
            rows_valid += 1
            batch.append(row)
            if len(batch) == BATCH:
                json.dumps(batch)
                batches += 1
                batch = []
    if batch:
        json.dumps(batch)
        batches += 1
    print(
        f"rows_read={rows_read} rows_valid={rows_valid} rows_rejected={rows_rejected} batches={batches}"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: naive_loop.py FILE.csv")
    sys.exit(main(sys.argv[1]))
