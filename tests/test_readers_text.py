"""Text tables read as frictionless and csvkit read them: header records, spaces before
quotes, single-byte encodings other than cp1252, NUL bytes, cells beyond the header."""

from __future__ import annotations

import tomllib

import pytest
from conftest import INVOICE_MAPPING

from payor_cli import read as readers
from payor_cli.check import binding, mapping, validate
from payor_cli.targets.payorcrm.adapter import PayorCrm

PAYORCRM = PayorCrm()

ITEM_MAPPING = INVOICE_MAPPING + 'itemText = "Text"\n'


def test_a_quoted_header_cell_with_a_line_break_is_one_header(tmp_path, dry_run):
    source = tmp_path / "export.csv"
    source.write_text('"Invoice\nNo",Customer,Amount\nI1,C1,5\nI2,C2,x\n', encoding="utf-8")
    mapping_text = INVOICE_MAPPING.replace('"Invoice"', '"Invoice\\nNo"')
    run, payloads, rejected, _ = dry_run("invoices", source, mapping_text)
    assert run.code == 1, run.text
    assert payloads == [{"customerNumber": "C1", "invoiceNumber": "I1", "invoiceAmount": 5}]
    # the header spans lines 1-2, so the refused row stands on line 4
    assert [r["source_row"] for r in rejected] == ["4"]
    assert rejected[0]["Invoice\nNo"] == "I2"


def test_a_header_of_many_quoted_multiline_cells_reads_every_row(tmp_path, dry_run):
    names = [f"Col\n{i}" for i in range(26)]
    names[0], names[1], names[2] = "Customer", "Invoice", "Amount"
    header = ",".join(f'"{n}"' for n in names)
    body = "".join(",".join(["C", f"I{r}", "1", *["v"] * 23]) + "\n" for r in range(50))
    source = tmp_path / "opendata.csv"
    source.write_text(header + "\n" + body, encoding="utf-8")
    run, payloads, _, report = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 0, run.text
    assert len(payloads) == 50
    assert report["rows_rejected"] == 0


def test_spaces_before_quoted_fields_are_skipped(tmp_path, dry_run):
    source = tmp_path / "spaced.csv"
    source.write_text(
        'Customer, "Invoice", "Amount", "Text"\nC1, "0001", "2", "a, b"\n', encoding="utf-8"
    )
    run, payloads, _, _ = dry_run("invoices", source, ITEM_MAPPING)
    assert run.code == 0, run.text
    assert payloads == [
        {"customerNumber": "C1", "invoiceNumber": "0001", "invoiceAmount": 2, "itemText": "a, b"}
    ]


def test_init_reads_headers_after_a_space_without_their_quotes(tmp_path, payor):
    source = tmp_path / "spaced.csv"
    source.write_text(
        'Customer, "Invoice", "Amount"\n' + "".join(f'C{i}, "I{i}", "{i}"\n' for i in range(9))
    )
    run = payor("init", "invoices", source, "-o", tmp_path / "m.toml")
    assert run.code == 0, run.text
    fields = tomllib.loads((tmp_path / "m.toml").read_text())["invoices"]["fields"]
    assert fields["invoiceNumber"] == "Invoice"


GREEK = [("Λεωνίδας Παπαδόπουλος", "Αθήνα"), ("Γιώργος Νικολάου", "Θεσσαλονίκη"),
         ("Μαρία Κωνσταντίνου", "Πάτρα"), ("Ελένη Δημητρίου", "Ηράκλειο")]  # fmt: skip
RUSSIAN = [("Иван Петров", "Москва"), ("Сергей Иванов", "Санкт-Петербург"),
           ("Мария Смирнова", "Новосибирск"), ("Ольга Кузнецова", "Екатеринбург")]  # fmt: skip
CZECH = [("Jiří Dvořák", "Praha"), ("Petr Novák", "Brno"), ("Žofie Černá", "Plzeň"),
         ("Tomáš Růžička", "Ústí nad Labem")]  # fmt: skip


@pytest.mark.parametrize(
    ("names", "encoding", "shown"),
    [
        (GREEK, "iso-8859-7", ("iso8859-7", "cp1253")),
        (RUSSIAN, "cp1251", ("cp1251",)),
        (RUSSIAN, "koi8-r", ("koi8-r",)),
        (CZECH, "cp1250", ("cp1250",)),
    ],
)
def test_single_byte_exports_other_than_cp1252_are_detected(
    tmp_path, dry_run, names, encoding, shown
):
    lines = ["Customer;Invoice;Amount;Text"]
    lines += [f"{name};I{i};{i + 1};{city}" for i, (name, city) in enumerate(names * 5)]
    source = tmp_path / "export.csv"
    source.write_bytes("\r\n".join(lines).encode(encoding))
    run, payloads, _, _ = dry_run("invoices", source, ITEM_MAPPING)
    assert run.code == 0, run.text
    assert [p["customerNumber"] for p in payloads[:4]] == [name for name, _ in names]
    assert [p["itemText"] for p in payloads[:4]] == [city for _, city in names]
    first = run.text.splitlines()[0]
    assert any(f"csv, {name}," in first for name in shown), first


def test_western_text_stays_cp1252(tmp_path, dry_run):
    rows = ["Customer;Invoice;Amount;Text", "Müller GmbH;I1;1;München", "Søren Ærø;I2;2;Århus",
            "François Lefèvre;I3;3;Besançon", "José Núñez;I4;4;A Coruña"]  # fmt: skip
    source = tmp_path / "export.csv"
    source.write_bytes("\n".join(rows).encode("cp1252"))
    run, payloads, _, _ = dry_run("invoices", source, ITEM_MAPPING)
    assert run.code == 0, run.text
    assert [p["customerNumber"] for p in payloads] == [r.split(";")[0] for r in rows[1:]]
    assert "csv, cp1252 (guessed from only 13 non-ASCII bytes;" in run.text.splitlines()[0]
    assert "set encoding" in run.text.splitlines()[0]


def test_a_well_founded_guess_has_no_warning(tmp_path, dry_run):
    lines = ["Customer;Invoice;Amount"] + [f"{n};I{i};1" for i, (n, _) in enumerate(RUSSIAN * 5)]
    source = tmp_path / "export.csv"
    source.write_bytes("\n".join(lines).encode("cp1251"))
    run, _, _, report = dry_run("invoices", source, INVOICE_MAPPING)
    assert run.code == 0, run.text
    assert "csv, cp1251, delimiter ';'" in run.text.splitlines()[0]
    assert report["source"] == "csv, cp1251, delimiter ';', header on row 1"


@pytest.mark.parametrize("options", [(), ("--encoding", "cp1252")])
def test_a_nul_byte_rejects_its_row_naming_the_column(tmp_path, dry_run, options):
    source = tmp_path / "export.csv"
    source.write_bytes(b"Customer,Invoice,Amount\nC1,I1,1\nC2,I\x002,2\nC3,I3,3\n")
    run, payloads, rejected, _ = dry_run("invoices", source, INVOICE_MAPPING, *options)
    assert run.code == 1, run.text
    assert [p["invoiceNumber"] for p in payloads] == ["I1", "I3"]
    assert [r["source_row"] for r in rejected] == ["3"]
    assert "column 'Invoice' contains a NUL byte" in rejected[0]["errors"]


def test_cells_beyond_the_header_reach_the_rejected_row(tmp_path):
    source = tmp_path / "export.csv"
    source.write_text("Customer,Invoice,Amount\nC1,I1,1\nC2,I2,2,left over,,more,,\n")
    section = tomllib.loads(INVOICE_MAPPING)["invoices"]
    parsed = mapping.parse_mapping(section, PAYORCRM.kind("invoices"))
    table = readers.open_table(source, parsed.input)
    validator = validate.Validator(binding.bind(parsed, table.headers, str(source)), PAYORCRM)
    rejected = [row for chunk in table.chunks() for row in validator(chunk).rejected]
    assert [(row.row, row.cells, row.extra) for row in rejected] == [
        (3, ["C2", "I2", "2"], ["left over", "", "more"])
    ]
