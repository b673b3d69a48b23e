"""Bad input, bad mappings, bad settings: exit 2, one clear line, no traceback, nothing sent."""

from __future__ import annotations

import json
import zipfile

import pytest
from conftest import INVOICE_MAPPING, write_csv, write_mapping, write_xlsx


def assert_one_clear_error(run, *needles: str) -> None:
    assert run.code == 2, run.text
    assert "Traceback" not in run.text
    errors = [line for line in run.err.splitlines() if "error:" in line]
    assert len(errors) == 1, run.err
    for needle in needles:
        assert needle in run.err, run.err


@pytest.fixture
def mapping(tmp_path):
    return write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)


def upload(payor, source, mapping, *extra):
    return payor("upload", "invoices", source, "--mapping", mapping, "--dry-run", *extra)


def test_empty_file(tmp_path, payor, mapping):
    source = tmp_path / "empty.csv"
    source.write_bytes(b"")
    assert_one_clear_error(upload(payor, source, mapping), "empty.csv", "empty")


def test_header_only(tmp_path, payor, mapping):
    source = write_csv(tmp_path / "h.csv", [["Customer", "Invoice", "Amount"]])
    assert_one_clear_error(upload(payor, source, mapping), "no data rows")


@pytest.mark.process("the crash came as the process ended, after the run: only a process shows it")
def test_header_only_exits_2_every_time(tmp_path, payor, mapping):
    """Arrow's CSV reader on a stream with no data ended the process at exit now and then
    (exit 134, "terminate called without an active exception"): it is never started there."""
    source = write_csv(tmp_path / "h.csv", [["Customer", "Invoice", "Amount"]])
    codes = [upload(payor, source, mapping).code for _ in range(8)]
    assert codes == [2] * 8


def test_binary_garbage(tmp_path, payor, mapping):
    source = tmp_path / "garbage.csv"
    source.write_bytes(bytes(range(256)) * 40)
    assert_one_clear_error(upload(payor, source, mapping), "garbage.csv")


def test_wrong_sheet_name_lists_sheets(tmp_path, payor, mapping):
    source = write_xlsx(
        tmp_path / "b.xlsx", [["Customer", "Invoice", "Amount"], ["C", "I", 1]], sheet="Data"
    )
    assert_one_clear_error(upload(payor, source, mapping, "--sheet", "Dtaa"), "Dtaa", "Data")


def test_truncated_xlsx(tmp_path, payor, mapping):
    whole = write_xlsx(tmp_path / "whole.xlsx", [["Customer", "Invoice", "Amount"], ["C", "I", 1]])
    source = tmp_path / "cut.xlsx"
    source.write_bytes(whole.read_bytes()[:1500])
    assert_one_clear_error(upload(payor, source, mapping), "cut.xlsx")


def test_zip_that_is_not_a_workbook(tmp_path, payor, mapping):
    source = tmp_path / "fake.xlsx"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert_one_clear_error(upload(payor, source, mapping), "fake.xlsx")


def test_missing_file(tmp_path, payor, mapping):
    assert_one_clear_error(upload(payor, tmp_path / "nope.csv", mapping), "nope.csv")


def test_missing_mapped_column_names_closest_headers(tmp_path, payor, mapping):
    source = write_csv(tmp_path / "in.csv", [["Customer", "Invoice No", "Amount"], ["C", "I", "1"]])
    run = upload(payor, source, mapping)
    assert_one_clear_error(run, "'Invoice'", "Invoice No")
    assert len(run.err.strip().splitlines()) == 1


def test_unknown_field_suggests_nearest(tmp_path, payor):
    source = write_csv(tmp_path / "in.csv", [["Customer", "Invoice", "Amount"], ["C", "I", "1"]])
    bad = write_mapping(tmp_path / "bad.toml", INVOICE_MAPPING + 'invoiceAmmount = "Amount"\n')
    assert_one_clear_error(upload(payor, source, bad), "invoiceAmmount", "invoiceAmount")


def test_unknown_field_option_suggests_nearest(tmp_path, payor):
    source = write_csv(tmp_path / "in.csv", [["Customer", "Invoice", "Amount"], ["C", "I", "1"]])
    bad = write_mapping(
        tmp_path / "bad.toml",
        INVOICE_MAPPING.replace(
            'invoiceAmount = "Amount"', 'invoiceAmount = { column = "Amount", scael = 100 }'
        ),
    )
    assert_one_clear_error(upload(payor, source, bad), "scael", "scale")


def test_required_field_not_mapped(tmp_path, payor):
    source = write_csv(tmp_path / "in.csv", [["Customer", "Invoice", "Amount"], ["C", "I", "1"]])
    bad = write_mapping(
        tmp_path / "bad.toml", INVOICE_MAPPING.replace('invoiceAmount = "Amount"\n', "")
    )
    assert_one_clear_error(upload(payor, source, bad), "invoiceAmount")


def test_option_that_does_not_fit_the_type(tmp_path, payor):
    source = write_csv(tmp_path / "in.csv", [["Customer", "Invoice", "Amount"], ["C", "I", "1"]])
    bad = write_mapping(
        tmp_path / "bad.toml", INVOICE_MAPPING + 'reference1 = { column = "Amount", scale = 100 }\n'
    )
    assert_one_clear_error(upload(payor, source, bad), "reference1", "scale")


def test_invalid_toml(tmp_path, payor):
    source = write_csv(tmp_path / "in.csv", [["Customer", "Invoice", "Amount"], ["C", "I", "1"]])
    bad = write_mapping(tmp_path / "bad.toml", "[invoices\nfields = 1")
    assert_one_clear_error(upload(payor, source, bad), "bad.toml", "TOML")


def test_bad_rejected_suffix(tmp_path, payor, mapping):
    source = write_csv(tmp_path / "in.csv", [["Customer", "Invoice", "Amount"], ["C", "I", "1"]])
    assert_one_clear_error(
        upload(payor, source, mapping, "--rejected", tmp_path / "r.txt"), ".csv or .xlsx"
    )


def test_unknown_encoding(tmp_path, payor, mapping):
    source = write_csv(tmp_path / "in.csv", [["Customer", "Invoice", "Amount"], ["C", "I", "1"]])
    assert_one_clear_error(upload(payor, source, mapping, "--encoding", "klingon"), "klingon")


def test_real_upload_without_mapping_points_to_init(tmp_path, payor):
    source = write_csv(tmp_path / "in.csv", [["Customer", "Invoice", "Amount"], ["C", "I", "1"]])
    run = payor("upload", "invoices", source, "--base-url", "http://127.0.0.1:9")
    assert_one_clear_error(run, "payor init")


def test_schema_command_lists_fields_and_required_marks(payor):
    run = payor("schema", "invoices", "--json")
    assert run.code == 0
    fields = {f["name"]: f for f in json.loads(run.out)["invoices"]}
    assert fields["invoiceAmount"] == {"name": "invoiceAmount", "type": "integer", "required": True}
    assert fields["billAddr"]["type"] == "json" and fields["postDate"]["type"] == "date"
    assert len(fields) == 31
    plain = payor("schema")
    assert plain.code == 0, plain.text
    assert (
        "emailaddress1" in plain.out and "required" in plain.out and "customerNumber" in plain.out
    )


def test_unwritable_outputs_are_refused_before_any_work(tmp_path, payor, mapping):
    source = write_csv(tmp_path / "in.csv", [["Customer", "Invoice", "Amount"], ["C", "I", "1"]])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for option in ("--rejected", "--payloads", "--report-json", "--log-file"):
        run = upload(payor, source, mapping, option, blocker / "out.csv")
        assert_one_clear_error(run, "cannot write")
        assert "checking" not in run.out  # refused before reading the file


def test_a_failed_run_still_writes_its_report(tmp_path, payor, mapping):
    report = tmp_path / "report.json"
    report.write_text('{"exit_code": 0, "note": "last night"}')
    run = upload(payor, tmp_path / "missing.csv", mapping, "--report-json", report)
    assert run.code == 2
    data = json.loads(report.read_text())
    assert data["exit_code"] == 2 and "missing.csv" in data["error"] and data["rows_read"] == 0
