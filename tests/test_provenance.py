"""A row that comes back through a rejected file keeps the link to its original export: every
rejected file names, in its `origin` column, the row the export had; `source_row` is the row in
the file read. The column is payor's own: dropped on read, written once, never stacking."""

from __future__ import annotations

import openpyxl
import pytest
from conftest import (
    CREDENTIALS,
    CUSTOMER_MAPPING,
    INVOICE_MAPPING,
    read_rejected,
    write_csv,
    write_mapping,
)

from payor_cli import api

HEADER = ["Customer", "Invoice", "Amount"]


def export_rows(bad: set[int], rows: int = 40) -> list[list[str]]:
    """A header and data rows 2..rows+1; the rows in `bad` have an amount that is no number."""
    return [HEADER] + [
        [f"C{n}", f"I{n}", "oops" if n in bad else str(n)] for n in range(2, rows + 2)
    ]


def dry(payor, source, mapping, rejected):
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run", "--rejected", rejected)  # fmt: skip
    assert run.code == 1, run.text
    return run


def test_three_rounds_of_a_csv_keep_the_export_row(tmp_path, payor):
    source = write_csv(tmp_path / "export.csv", export_rows({14, 33}))
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    first, second, third = (tmp_path / f"round{n}.csv" for n in (1, 2, 3))
    dry(payor, source, mapping, first)
    dry(payor, first, mapping, second)
    dry(payor, second, mapping, third)
    for path in (first, second, third):
        rows = read_rejected(path)
        assert list(rows[0]) == ["source_row", "errors", "origin", *HEADER]  # never stacks
        assert [r["origin"] for r in rows] == ["export.csv row 14", "export.csv row 33"]
        assert [r["Invoice"] for r in rows] == ["I14", "I33"]
    assert [r["source_row"] for r in read_rejected(first)] == ["14", "33"]
    # source_row is the row in the file read: the rejected file's own rows 2 and 3
    assert [r["source_row"] for r in read_rejected(second)] == ["2", "3"]
    assert [r["source_row"] for r in read_rejected(third)] == ["2", "3"]


def test_a_fixed_row_leaves_and_the_others_keep_their_origin(tmp_path, payor):
    source = write_csv(tmp_path / "export.csv", export_rows({5, 9, 30}))
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    first, second = tmp_path / "r1.csv", tmp_path / "r2.csv"
    dry(payor, source, mapping, first)
    text = first.read_text(encoding="utf-8-sig").replace("I9,oops", "I9,9")  # the clerk's fix
    first.write_text(text, encoding="utf-8-sig")
    dry(payor, first, mapping, second)
    assert [(r["source_row"], r["origin"]) for r in read_rejected(second)] == [
        ("2", "export.csv row 5"),
        ("4", "export.csv row 30"),
    ]


def test_three_rounds_of_a_workbook_keep_the_export_row(tmp_path, payor):
    source = write_csv(tmp_path / "export.csv", export_rows({21}))
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    paths = [tmp_path / f"round{n}.xlsx" for n in (1, 2, 3)]
    dry(payor, source, mapping, paths[0])
    dry(payor, paths[0], mapping, paths[1])
    dry(payor, paths[1], mapping, paths[2])
    for path, source_row in zip(paths, (21, 2, 2), strict=True):
        rows = list(openpyxl.load_workbook(path).active.values)
        assert rows[0] == ("source_row", "errors", "origin", *HEADER)
        assert rows[1][0] == source_row and rows[1][2] == "export.csv row 21"


def test_a_workbook_export_names_its_sheet(tmp_path, payor):
    book = openpyxl.Workbook()
    book.active.title = "Open Items"
    for row in export_rows({3}, rows=4):
        book.active.append(row)
    book.save(tmp_path / "export.xlsx")
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    first, second = tmp_path / "r1.csv", tmp_path / "r2.csv"
    dry(payor, tmp_path / "export.xlsx", mapping, first)
    dry(payor, first, mapping, second)
    assert [r["origin"] for r in read_rejected(second)] == [
        "export.xlsx, sheet 'Open Items', row 3"
    ]


def test_a_rejected_file_of_an_older_payor_names_its_source_row(tmp_path, payor):
    old = write_csv(
        tmp_path / "old.csv",
        [["source_row", "errors", *HEADER], ["1433", "invoiceAmount ...", "C1", "I1", "x"]],
    )
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    again = tmp_path / "again.csv"
    dry(payor, old, mapping, again)
    [row] = read_rejected(again)
    assert (row["source_row"], row["origin"]) == ("2", "row 1433 of the export behind old.csv")
    assert list(row) == ["source_row", "errors", "origin", *HEADER]


def test_a_row_the_server_refuses_keeps_its_origin(tmp_path, payor, sandbox_server):
    server = sandbox_server("--refuse-keys", "^C7$")
    people = [["No", "Email", "Name"]] + [
        [f"C{n}", f"c{n}@x.example", f"N{n}"] for n in range(2, 9)
    ]
    people[4][1] = "broken"  # row 5: rejected here, before sending
    source = write_csv(tmp_path / "people.csv", people)
    mapping = write_mapping(tmp_path / "m.toml", CUSTOMER_MAPPING)
    first, second = tmp_path / "r1.csv", tmp_path / "r2.csv"
    common = ("--mapping", mapping, "--base-url", server.url, "--state-dir", tmp_path / "state")
    run = payor("upload", "customers", source, *common, "--rejected", first, env=CREDENTIALS)
    assert run.code == 1, run.text
    assert [r["origin"] for r in read_rejected(first)] == ["people.csv row 5", "people.csv row 7"]
    run = payor("upload", "customers", first, *common, "--rejected", second, env=CREDENTIALS)
    assert run.code == 1, run.text
    rows = read_rejected(second)
    assert [(r["source_row"], r["origin"]) for r in rows] == [
        ("2", "people.csv row 5"),
        ("3", "people.csv row 7"),
    ]
    assert "refused by the server" in rows[1]["errors"]


@pytest.mark.parametrize("rounds", [1, 2])
def test_the_python_api_gives_each_rejected_row_its_origin(tmp_path, rounds):
    source = write_csv(tmp_path / "export.csv", export_rows({6}))
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    path = source
    for n in range(rounds):
        run = api.dry_run(path, "invoices", mapping, rejected=tmp_path / f"r{n}.csv")
        path = tmp_path / f"r{n}.csv"
    assert [r["origin"] for r in run.rejected] == ["export.csv row 6"]
    assert list(run.rejected[0])[:3] == ["source_row", "errors", "origin"]
