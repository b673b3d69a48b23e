"""Compressed exports: a .gz, or a .zip holding one CSV or workbook, read as that file."""

from __future__ import annotations

import gzip
import zipfile

from conftest import INVOICE_MAPPING, write_xlsx

CSV = "Customer,Invoice,Amount\nC1,0001,1\nC2,0002,x\n"


def test_a_gzipped_csv_is_read_as_the_csv(tmp_path, dry_run):
    source = tmp_path / "export.csv.gz"
    source.write_bytes(gzip.compress(CSV.encode("utf-8")))
    run, payloads, rejected, _ = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 1, run.text
    assert payloads == [{"customerNumber": "C1", "invoiceNumber": "0001", "invoiceAmount": 1}]
    assert [r["source_row"] for r in rejected] == ["3"]
    assert "member 'export.csv'" in run.text


def test_a_zip_with_one_csv_is_read_as_the_csv(tmp_path, dry_run):
    source = tmp_path / "export.csv.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export.csv", CSV.encode("cp1252"))
    run, payloads, _, _ = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 1, run.text
    assert [p["invoiceNumber"] for p in payloads] == ["0001"]


def test_a_zip_with_one_workbook_is_read_as_the_workbook(tmp_path, dry_run):
    book = write_xlsx(tmp_path / "book.xlsx", [["Customer", "Invoice", "Amount"], ["C", 7, 2]])
    source = tmp_path / "book.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.write(book, "reports/book.xlsx")
    run, payloads, _, _ = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 0, run.text
    assert payloads == [{"customerNumber": "C", "invoiceNumber": "7", "invoiceAmount": 2}]
    assert "(xlsx, member 'reports/book.xlsx', sheet 'Sheet1'" in run.text


def test_a_zip_with_several_files_names_them_and_asks_which(tmp_path, dry_run):
    source = tmp_path / "exports.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("customers.csv", "No,Email\n")
        archive.writestr("invoices.csv", CSV)
    run, _, _, _ = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 2, run.text
    assert "holds 2 files: 'customers.csv', 'invoices.csv'" in run.err
    assert "--member" in run.err
    chosen = INVOICE_MAPPING.replace("[invoices]\n", '[invoices]\nmember = "invoices.csv"\n')
    run, payloads, _, _ = dry_run("invoices", source, chosen)
    assert run.code == 1, run.text
    assert [p["invoiceNumber"] for p in payloads] == ["0001"]


def test_init_reads_a_gzipped_export(tmp_path, payor):
    rows = "".join(f"C{i},I{i},{i}\n" for i in range(20))
    source = tmp_path / "export.csv.gz"
    source.write_bytes(gzip.compress(("Customer,Invoice,Amount\n" + rows).encode("utf-8")))
    run = payor("init", "invoices", source, "-o", tmp_path / "m.toml")
    assert run.code == 0, run.text
    assert 'invoiceNumber = "Invoice"' in (tmp_path / "m.toml").read_text()


def test_member_chooses_the_file_of_a_zip_for_upload_and_init(tmp_path, payor):
    source = tmp_path / "exports.zip"
    rows = "".join(f"C{i},I{i},{i}\n" for i in range(20))
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("customers.csv", "No,Email\nC1,a@x.example\n")
        archive.writestr("invoices.csv", "Customer,Invoice,Amount\n" + rows)
    mapping = tmp_path / "m.toml"
    run = payor("init", "invoices", source, "--member", "invoices.csv", "-o", mapping)
    assert run.code == 0, run.text
    assert 'member = "invoices.csv"' in mapping.read_text()
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run")
    assert run.code == 0, run.text
    assert "20 read, 20 valid" in run.out
    other = payor(
        "upload", "invoices", source, "--mapping", mapping, "--dry-run", "--member", "customers.csv"
    )
    assert other.code == 2  # the flag beats the mapping: that file has other columns
    assert "the file's headers are: 'No', 'Email'" in other.err
