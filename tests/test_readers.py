"""Reading real-world files: encodings, delimiters, quoting, header rows, lying extensions."""

from __future__ import annotations

import codecs

import pytest
from conftest import INVOICE_MAPPING, write_xlsx

ROWS = [
    ["Customer", "Invoice", "Amount", "Text"],
    ["Müller", "0001", "1", 'Grüße, "quoted"'],
    ["Søren", "0002", "2", "line one\nline two"],
]
EXPECTED_TEXT = ['Grüße, "quoted"', "line one\nline two"]
MAPPING = INVOICE_MAPPING + 'itemText = "Text"\n'


def csv_text(delimiter: str, newline: str = "\r\n") -> str:
    def cell(value: str) -> str:
        if any(c in value for c in (delimiter, '"', "\n")):
            return '"' + value.replace('"', '""') + '"'
        return value

    return "".join(delimiter.join(cell(c) for c in row) + newline for row in ROWS)


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("cp1252", b""),
    ],
)
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_encodings_and_delimiters_are_detected(tmp_path, dry_run, encoding, bom, delimiter):
    source = tmp_path / "export.txt"
    source.write_bytes(bom + csv_text(delimiter).encode(encoding))
    run, payloads, _, _ = dry_run("invoices", source, MAPPING)
    assert run.code == 0, run.text
    assert [p["customerNumber"] for p in payloads] == ["Müller", "Søren"]
    assert [p["itemText"] for p in payloads] == EXPECTED_TEXT
    assert [p["invoiceNumber"] for p in payloads] == ["0001", "0002"]


def test_latin1_is_read(tmp_path, dry_run):
    source = tmp_path / "export.csv"
    source.write_bytes(csv_text(";").encode("latin-1"))
    run, payloads, _, _ = dry_run("invoices", source, MAPPING)
    assert run.code == 0, run.text
    assert [p["customerNumber"] for p in payloads] == ["Müller", "Søren"]


def test_sap_utf16_tab_text_saved_as_xls(tmp_path, dry_run):
    lines = [
        "Kundenposten\t\t\t",
        "Buchungskreis 1000\t\t\t",
        "\t\t\t",
        "Konto\tReferenz\tBetrag in Hauswährung\tText",
        "4711\t90001\t1.234,56-\tMiete",
        "*\t\t1.234,56-\t",
    ]
    source = tmp_path / "FBL5N.xls"
    source.write_bytes(codecs.BOM_UTF16_LE + "\r\n".join(lines).encode("utf-16-le"))
    mapping = """
[invoices]
header_row = 4
decimal = ","
skip = [{ column = "Konto", pattern = "^\\\\*" }]
[invoices.fields]
customerNumber = "Konto"
invoiceNumber = "Referenz"
invoiceAmount = { column = "Betrag in Hauswährung", scale = 100 }
"""
    run, payloads, _, report = dry_run("invoices", source, mapping)
    assert run.code == 0, run.text
    assert payloads == [
        {"customerNumber": "4711", "invoiceNumber": "90001", "invoiceAmount": -123456}
    ]
    assert report["rows_skipped"] == 1


def test_encoding_and_delimiter_options_override_detection(tmp_path, dry_run):
    source = tmp_path / "in.csv"
    source.write_bytes("Customer|Invoice|Amount\nÄ;1|I|5\n".encode("cp1252"))
    run, payloads, _, _ = dry_run(
        "invoices", source, INVOICE_MAPPING, "--encoding", "cp1252", "--delimiter", "pipe"
    )
    assert run.code == 0, run.text
    assert payloads[0]["customerNumber"] == "Ä;1"


def test_header_row_option(tmp_path, dry_run):
    source = tmp_path / "in.csv"
    source.write_text("Report,,\nas of today,,\nCustomer,Invoice,Amount\nC,I,1\n")
    run, payloads, _, _ = dry_run("invoices", source, INVOICE_MAPPING, "--header-row", "3")
    assert run.code == 0, run.text
    assert len(payloads) == 1


def test_ragged_rows_are_padded_or_rejected(tmp_path, dry_run):
    source = tmp_path / "in.csv"
    source.write_text("Customer,Invoice,Amount\nC,I1,1\nC,I2\nC,I3,3,extra\nC,I4,4,,\n")
    run, payloads, rejected, _ = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 1
    assert [p["invoiceNumber"] for p in payloads] == ["I1", "I4"]
    assert [r["source_row"] for r in rejected] == ["3", "4"]
    assert "invoiceAmount" in rejected[0]["errors"] and "is empty" in rejected[0]["errors"]
    assert "the row has 4 cells but the header has 3" in rejected[1]["errors"]


def test_xlsm_and_ods_are_read(tmp_path, dry_run):
    source = write_xlsx(tmp_path / "book.xlsm", [["Customer", "Invoice", "Amount"], ["C", 1, 2]])
    run, payloads, _, _ = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 0, run.text
    assert payloads == [{"customerNumber": "C", "invoiceNumber": "1", "invoiceAmount": 2}]
