"""The rejected-rows file: marked cells in a workbook, extra cells kept, fixed files re-uploaded."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import openpyxl
import pytest
from conftest import (
    CREDENTIALS,
    CUSTOMER_MAPPING,
    INVOICE_MAPPING,
    read_jsonl,
    write_csv,
    write_mapping,
    write_xlsx,
)

from payor_cli.read import InputOptions, Table, open_table
from payor_cli.rows import RejectedRow, RowError
from payor_cli.run import rejected as rejected_module
from payor_cli.run.outputs import RejectedWriter

DATED_MAPPING = """
[invoices]
date_format = "%d.%m.%Y"
[invoices.fields]
customerNumber = "Customer"
invoiceNumber = "Invoice"
invoiceAmount = "Amount"
postDate = "Date"
"""
HEADER = ["Customer", "Invoice", "Amount", "Date", "Note"]
NOT_A_DATE = "postDate is not a date in the format %d.%m.%Y"


def marked(sheet) -> dict[str, str | None]:
    """Every filled cell of the sheet, with its comment's text."""
    return {
        cell.coordinate: cell.comment.text if cell.comment else None
        for row in sheet.iter_rows()
        for cell in row
        if cell.fill.fill_type is not None
    }


def commented(sheet) -> set[str]:
    return {cell.coordinate for row in sheet.iter_rows() for cell in row if cell.comment}


def source_rows(note: str) -> list[list[str]]:
    return [
        HEADER,
        ["C1", "I1", "10", "01.02.2024", "fine"],
        ["C2", "I2", "abc", "31.02.2024", note],
        ["C3", "", "5", "01.02.2024", "n4"],
        ["C4", "I4", "7.5", "02.02.2024", "n5"],
    ]


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_workbook_marks_the_cells_to_fix_and_the_fixed_file_uploads(tmp_path, payor, suffix):
    # a workbook source cannot hold "=1+1" as text through write_xlsx (it becomes a formula)
    note = "=1+1" if suffix == "csv" else "n3"
    writer = write_csv if suffix == "csv" else write_xlsx
    source = writer(tmp_path / f"in.{suffix}", source_rows(note))
    mapping = write_mapping(tmp_path / "m.toml", DATED_MAPPING)
    out = tmp_path / "r.xlsx"
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run", "--rejected", out)
    assert run.code == 1, run.text

    sheet = openpyxl.load_workbook(out).active
    assert [c.value for c in sheet[1]] == ["source_row", "errors", "origin", *HEADER]
    assert [sheet.cell(r, 1).value for r in range(2, sheet.max_row + 1)] == [3, 4, 5]
    assert marked(sheet) == {
        "F2": "invoiceAmount is not a number",
        "G2": NOT_A_DATE,
        "E3": "invoiceNumber is empty (required)",
        "F4": "invoiceAmount is not a whole number (nothing is rounded; check scale)",
    }
    assert commented(sheet) == {"F2", "G2", "E3", "F4"}
    assert {sheet[c].border.left.style for c in ("F2", "G2", "E3", "F4")} == {"medium"}
    assert sheet["F2"].fill.fill_type == "solid"
    assert sheet["H2"].value == note and sheet["H2"].data_type == "s"
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:H4"
    assert [sheet.cell(r, 2).alignment.wrap_text for r in range(1, 5)] == [None, True, True, True]
    assert sheet.column_dimensions["B"].width == rejected_module.ERRORS_WIDTH
    sheet_name = ", sheet 'Sheet1'," if suffix == "xlsx" else ""
    assert [sheet.cell(r, 3).value for r in range(2, 5)] == [
        f"in.{suffix}{sheet_name} row {r}" for r in (3, 4, 5)
    ]

    for coordinate, fixed in {"F2": "12", "G2": "28.02.2024", "E3": "I3", "F4": "8"}.items():
        sheet[coordinate] = fixed
    sheet.parent.save(out)
    payloads = tmp_path / "p.jsonl"
    again = payor(
        "upload", "invoices", out, "--mapping", mapping, "--dry-run", "--payloads", payloads
    )
    assert again.code == 0, again.text
    assert [(p["invoiceNumber"], p["invoiceAmount"]) for p in read_jsonl(payloads)] == [
        ("I2", 12),
        ("I3", 5),
        ("I4", 8),
    ]


def test_a_row_refused_by_the_server_marks_its_errors_cell(tmp_path, payor, sandbox_server):
    server = sandbox_server("--refuse-keys", "^C2$")
    people = [["No", "Email", "Name"], ["C1", "a@x.example", "A"], ["C2", "b@x.example", "B"]]
    source = write_csv(tmp_path / "customers.csv", people)
    mapping = write_mapping(tmp_path / "m.toml", CUSTOMER_MAPPING)
    out = tmp_path / "r.xlsx"
    run = payor(
        "upload", "customers", source, "--mapping", mapping, "--base-url", server.url,
        "--state-dir", tmp_path / "state", "--rejected", out, env=CREDENTIALS,
    )  # fmt: skip
    assert run.code == 1, run.text
    sheet = openpyxl.load_workbook(out).active
    assert [c.value for c in sheet[2]][3:] == ["C2", "b@x.example", "B"]
    assert "refused by the server" in sheet["B2"].value
    assert marked(sheet) == {"B2": None}
    assert sheet["B2"].border.left.style == "medium"
    assert [r["customerno"] for r in server.records("customers")] == ["C1"]


# --- the writer itself: extra cells, several reasons, the comment limit ------------------------

TABLE_HEADERS = ["Customer", "Invoice", "Amount"]


def table_for(path: Path, headers: list[str] = TABLE_HEADERS, delimiter: str = ";") -> Table:
    return Table(path, "csv", headers, 1, "utf-8-sig", delimiter)


def bad_amount(row: int, value: str, extra: list[str] | None = None) -> RejectedRow:
    error = RowError(row, "invoiceAmount", "Amount", "not_a_number", "is not a number", value)
    return RejectedRow(row, [error], [f"C{row}", f"I{row}", value], extra=extra or [])


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle, delimiter=";"))


def reread(path: Path) -> tuple[list[str], list[list[str]]]:
    """The file as payor reads it as a source: its headers and rows."""
    table = open_table(path, InputOptions())
    assert table.rejected_file
    rows = [
        [column[i].as_py() for column in chunk.columns]
        for chunk in table.chunks()
        for i in range(chunk.num_rows)
    ]
    return table.headers, rows


LEAD = ["source_row", "errors", "origin"]
MESSAGE = 'invoiceAmount (column "Amount"): "{}" is not a number'


def test_csv_widens_its_header_for_extra_cells_and_reads_again(tmp_path):
    path = tmp_path / "r.csv"
    writer = RejectedWriter(path, table_for(tmp_path / "in.csv"))
    spool = tmp_path / "r.csv.partial.csv"
    writer.write([bad_amount(2, "x")])
    assert read_csv(spool) == [LEAD + TABLE_HEADERS, ["2", MESSAGE.format("x"), "in.csv row 2", "C2", "I2", "x"]]  # fmt: skip
    writer.write([bad_amount(3, "y", ["e1", "", "e3", " "]), bad_amount(4, "z")])
    # on disk before close, as a killed run would leave it: one width for every line
    assert read_csv(spool) == [
        LEAD + TABLE_HEADERS + ["extra_1", "extra_2", "extra_3"],
        ["2", MESSAGE.format("x"), "in.csv row 2", "C2", "I2", "x", "", "", ""],
        ["3", MESSAGE.format("y"), "in.csv row 3", "C3", "I3", "y", "e1", "", "e3"],
        ["4", MESSAGE.format("z"), "in.csv row 4", "C4", "I4", "z", "", "", ""],
    ]
    assert read_csv(path) == [LEAD + TABLE_HEADERS]  # the file itself: whole, header only
    writer.write([bad_amount(5, "w", ["f1"])])
    writer.close()
    assert read_csv(path)[-1] == ["5", MESSAGE.format("w"), "in.csv row 5", "C5", "I5", "w", "f1", "", ""]  # fmt: skip
    assert path.read_bytes().count(b"\xef\xbb\xbf") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]
    headers, rows = reread(path)
    assert headers == [*TABLE_HEADERS, "extra_1", "extra_2", "extra_3"]
    assert [row[:3] for row in rows] == [["C2", "I2", "x"], ["C3", "I3", "y"], ["C4", "I4", "z"], ["C5", "I5", "w"]]  # fmt: skip


def test_xlsx_names_extra_columns_and_reads_again(tmp_path):
    path = tmp_path / "r.xlsx"
    writer = RejectedWriter(path, table_for(tmp_path / "in.csv"))
    writer.write([bad_amount(2, "x"), bad_amount(3, "y", ["e1", "", "e3"])])
    writer.write([bad_amount(4, "z", ["f1"])])
    writer.close()
    sheet = openpyxl.load_workbook(path).active
    assert [c.value for c in sheet[1]] == LEAD + TABLE_HEADERS + ["extra_1", "extra_2", "extra_3"]
    assert [c.value for c in sheet[3]][3:] == ["C3", "I3", "y", "e1", None, "e3"]
    assert [c.value for c in sheet[4]][3:] == ["C4", "I4", "z", "f1", None, None]
    assert sheet.auto_filter.ref == "A1:I4"
    assert marked(sheet) == {f"F{r}": "invoiceAmount is not a number" for r in (2, 3, 4)}
    headers, rows = reread(path)
    assert headers == [*TABLE_HEADERS, "extra_1", "extra_2", "extra_3"]
    assert rows[1] == ["C3", "I3", "y", "e1", "", "e3"]


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_extra_columns_do_not_disturb_a_reupload(tmp_path, payor, suffix):
    path = tmp_path / f"r.{suffix}"
    writer = RejectedWriter(path, table_for(tmp_path / "in.csv", delimiter=","))
    writer.write([bad_amount(2, "12", ["stray", "cells"]), bad_amount(3, "13")])
    writer.close()
    mapping = write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)
    payloads = tmp_path / "p.jsonl"
    run = payor(
        "upload", "invoices", path, "--mapping", mapping, "--dry-run", "--payloads", payloads
    )
    assert run.code == 0, run.text
    assert read_jsonl(payloads) == [
        {"customerNumber": "C2", "invoiceNumber": "I2", "invoiceAmount": 12},
        {"customerNumber": "C3", "invoiceNumber": "I3", "invoiceAmount": 13},
    ]


def test_extra_names_skip_those_the_header_has(tmp_path):
    path = tmp_path / "r.csv"
    writer = RejectedWriter(path, table_for(tmp_path / "in.csv", [*TABLE_HEADERS, "extra_1"]))
    row = bad_amount(2, "x", ["again"])
    row.cells.append("kept")
    writer.write([row])
    writer.close()
    assert read_csv(path)[0] == LEAD + TABLE_HEADERS + ["extra_1", "extra_2"]
    assert read_csv(path)[1][-2:] == ["kept", "again"]


def kill_while_writing(path: Path) -> None:
    """Write two batches to `path` in a process of its own, and SIGKILL it before close."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from payor_cli.run.outputs import RejectedWriter
        from payor_cli.read import Table
        from payor_cli.rows import RejectedRow, RowError

        def row(n, value, extra=()):
            error = RowError(n, "invoiceAmount", "Amount", "not_a_number", "is not a number")
            return RejectedRow(n, [error], [f"C{{n}}", f"I{{n}}", value], extra=list(extra))

        table = Table(Path("in.csv"), "csv", {TABLE_HEADERS!r}, 1, "utf-8-sig", ";")
        writer = RejectedWriter(Path({str(path)!r}), table)
        writer.write([row(2, "x")])
        writer.write([row(3, "y", ["e1"])])
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr


def test_a_killed_csv_run_leaves_a_new_file_and_its_rows_in_the_spool(tmp_path):
    path = tmp_path / "r.csv"
    write_csv(path, [["old", "file"], ["from", "yesterday"]])
    kill_while_writing(path)
    assert reread(path) == ([*TABLE_HEADERS], [])
    headers, rows = reread(tmp_path / "r.csv.partial.csv")
    assert headers == [*TABLE_HEADERS, "extra_1"]
    assert rows == [["C2", "I2", "x", ""], ["C3", "I3", "y", "e1"]]


def test_a_killed_xlsx_run_leaves_a_new_workbook_and_its_rows_in_a_csv(tmp_path):
    path = tmp_path / "r.xlsx"
    write_xlsx(path, [["old", "file"], ["from", "yesterday"]])
    kill_while_writing(path)
    assert list(openpyxl.load_workbook(path).active.values) == [tuple(LEAD + TABLE_HEADERS)]
    headers, rows = reread(tmp_path / "r.xlsx.partial.csv")
    assert headers == [*TABLE_HEADERS, "extra_1"]
    assert rows == [["C2", "I2", "x", ""], ["C3", "I3", "y", "e1"]]


def test_a_finished_xlsx_run_leaves_the_workbook_alone(tmp_path):
    path = tmp_path / "r.xlsx"
    writer = RejectedWriter(path, table_for(tmp_path / "in.csv"))
    writer.write([bad_amount(2, "x")])
    writer.close()
    assert [c.value for c in openpyxl.load_workbook(path).active[2]] == [
        2, MESSAGE.format("x"), "in.csv row 2", "C2", "I2", "x"
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.xlsx"]


def test_reasons_of_one_cell_are_joined_and_fields_of_several_columns_mark_each(tmp_path):
    path = tmp_path / "r.xlsx"
    writer = RejectedWriter(path, table_for(tmp_path / "in.csv"))
    errors = [
        RowError(2, "invoiceAmount", "Amount", "not_a_number", "is not a number", "x"),
        RowError(2, "taxAmount", "Amount", "required", "is empty (required)"),
        RowError(2, "reference", "Customer, Invoice", "not_json", "is not a JSON object"),
        RowError(2, "invoiceNumber", None, "duplicate_key", "repeats row 1"),
    ]
    writer.write([RejectedRow(2, errors, ["C", "I", "x"])])
    writer.close()
    sheet = openpyxl.load_workbook(path).active
    assert marked(sheet) == {
        "B2": None,
        "D2": "reference is not a JSON object",
        "E2": "reference is not a JSON object",
        "F2": "invoiceAmount is not a number\ntaxAmount is empty (required)",
    }


def test_past_the_comment_limit_cells_are_still_marked(tmp_path, monkeypatch):
    monkeypatch.setattr(rejected_module, "COMMENT_LIMIT", 2)
    path = tmp_path / "r.xlsx"
    writer = RejectedWriter(path, table_for(tmp_path / "in.csv"))
    writer.write([bad_amount(row, "x") for row in (2, 3, 4)])
    writer.close()
    sheet = openpyxl.load_workbook(path).active
    assert marked(sheet) == {
        "F2": "invoiceAmount is not a number",
        "F3": "invoiceAmount is not a number",
        "F4": None,
    }


def test_a_control_character_a_workbook_cannot_hold_is_replaced_and_marked(tmp_path, payor):
    rows = [HEADER, ["C2", "I2", "abc", "01.02.2024", "bell\x07here"]]
    source = write_csv(tmp_path / "in.csv", rows)
    mapping = write_mapping(tmp_path / "m.toml", DATED_MAPPING)
    out = tmp_path / "r.xlsx"
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run", "--rejected", out)
    assert run.code == 1, run.text
    sheet = openpyxl.load_workbook(out).active
    assert sheet["H2"].value == "bell\ufffdhere"
    assert marked(sheet) == {
        "F2": "invoiceAmount is not a number",
        "H2": rejected_module.CONTROL_REASON,
    }
