"""payor from Python: dry_run and upload of files and DataFrames, silent, raising payor's errors."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import SAMPLES, write_csv

import payor_cli
from payor_cli.errors import ConfigError, MappingError, PayorError

pd = pytest.importorskip("pandas")

CUSTOMERS = {
    "customers": {
        "fields": {
            "customerno": "No",
            "companyname": "Company",
            "emailaddress1": "E-mail",
        }
    }
}
INVOICES = {
    "invoices": {
        "fields": {
            "invoiceNumber": "Invoice",
            "customerNumber": "Customer",
            "invoiceAmount": {"column": "Amount", "scale": 100},
            "invoiceDate": "Date",
            "currency": {"value": "EUR"},
        }
    }
}


@pytest.fixture(autouse=True)
def quiet_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No config of the user's, no PAYOR_* of the environment: each test stands alone."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / ".state"))
    for name in ("PAYOR_API_KEY", "PAYOR_API_SECRET", "PAYOR_BASE_URL", "PAYOR_TARGET"):
        monkeypatch.delenv(name, raising=False)


def customers_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "No": ["010001", "010002", "010003"],
            "Company": ["Acme", "Bolt", None],
            "E-mail": ["a@acme.example", "not an address", "c@c.example"],
        }
    )


def test_a_dataframe_dry_run_gives_summary_rejected_rows_and_payloads(capsys):
    run = payor_cli.dry_run(customers_frame(), "customers", mapping=CUSTOMERS)
    assert run.summary["rows_read"] == 3
    assert run.summary["rows_valid"] == 2
    assert run.summary["exit_code"] == 1
    assert run.summary["file"] == "<DataFrame>"
    assert [p["customerno"] for p in run.payloads] == ["010001", "010003"]
    assert "companyname" not in run.payloads[1]  # None is an empty cell: the field is left out
    [rejected] = run.rejected
    assert list(rejected)[:2] == ["source_row", "errors"]
    assert rejected["source_row"] == 3  # the frame's position 1, as if a header were row 1
    assert "emailaddress1" in rejected["errors"]
    assert rejected["E-mail"] == "not an address"
    assert capsys.readouterr() == ("", "")  # the API prints nothing


def test_float_cells_count_as_their_shortest_decimal_form():
    frame = pd.DataFrame(
        {
            "Invoice": ["I1", "I2", "I3", "I4"],
            "Customer": ["C1"] * 4,
            "Amount": [1234.56, 0.1 + 0.2, 1.2e11, float("nan")],
            "Date": pd.to_datetime(["2024-12-31", "2024-01-02", "2024-03-04", "2024-03-05"]),
        }
    )
    run = payor_cli.dry_run(frame, "invoices", mapping=INVOICES)
    assert run.exit_code == 1  # the inexact float and the empty cell are rejected
    amounts = {p["invoiceNumber"]: p["invoiceAmount"] for p in run.payloads}
    assert amounts == {"I1": 123456, "I3": 12000000000000}
    assert {r["source_row"]: r["Amount"] for r in run.rejected} == {3: "0.30000000000000004", 5: ""}
    assert run.payloads[0]["invoiceDate"] == "2024-12-31"  # a datetime column needs no format


def test_decimal_and_text_columns_are_exact():
    frame = pd.DataFrame(
        {
            "Invoice": ["I1", "I2"],
            "Customer": ["C1", "C2"],
            "Amount": [Decimal("19.99"), Decimal("1E+2")],
            "Date": ["2024-12-31", "2024-01-02"],
        }
    )
    run = payor_cli.dry_run(frame, "invoices", mapping=INVOICES)
    assert [p["invoiceAmount"] for p in run.payloads] == [1999, 10000]
    assert run.exit_code == 0


def test_a_file_dry_run_with_a_mapping_file_is_the_clis_dry_run(tmp_path: Path):
    source = write_csv(
        tmp_path / "c.csv", [["No", "Company", "E-mail"], ["7", "Acme", "a@b.example"]]
    )
    mapping = tmp_path / "map.toml"
    mapping.write_text('[customers.fields]\ncustomerno = "No"\nemailaddress1 = "E-mail"\n')
    run = payor_cli.dry_run(str(source), "customers", mapping=str(mapping), payloads="p.jsonl")
    assert run.exit_code == 0
    assert run.payloads == [{"customerno": "7", "emailaddress1": "a@b.example"}]
    written = (tmp_path / "p.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in written] == run.payloads


def test_a_notebook_uploads_a_dataframe_to_the_sandbox(tmp_path: Path):
    state = tmp_path / "state"
    run = payor_cli.upload(customers_frame(), "customers", CUSTOMERS, sandbox=True, state_dir=state)
    assert run.exit_code == 1  # the row without an e-mail address is rejected
    assert run.summary["rows_accepted"] == 2
    assert run.payloads is None
    with sqlite3.connect(state / "sandbox.sqlite") as db:
        keys = [k for (k,) in db.execute("SELECT key FROM records WHERE kind = 'customers'")]
    assert sorted(keys) == ["010001", "010003"]
    again = payor_cli.upload(
        customers_frame(), "customers", CUSTOMERS, sandbox=True, state_dir=state
    )
    assert again.exit_code == 1
    assert again.summary["rows_unchanged"] == 2
    assert again.summary["rows_sent"] == 0


def test_failures_raise_payors_own_errors():
    with pytest.raises(MappingError, match="a DataFrame needs a mapping"):
        payor_cli.dry_run(customers_frame(), "customers")
    with pytest.raises(MappingError, match="nope"):
        payor_cli.dry_run(customers_frame(), "customers", {"customers": {"fields": {"nope": "No"}}})
    with pytest.raises(ConfigError, match="no API address"):
        payor_cli.upload(customers_frame(), "customers", CUSTOMERS)
    with pytest.raises(PayorError) as missing:
        payor_cli.dry_run(SAMPLES / "nope.csv", "customers", CUSTOMERS)
    assert missing.value.exit_code == 2


def test_unknown_options_are_refused():
    with pytest.raises(TypeError, match="batchsize"):
        payor_cli.dry_run(customers_frame(), "customers", CUSTOMERS, batchsize=5)


def test_source_row_is_the_position_plus_two_whatever_the_index(tmp_path: Path):
    frame = customers_frame().set_index(pd.Index([70, 50, 60]))
    frame["No"] = pd.array([10001, None, 10003], dtype="Int64")  # a nullable integer column
    report = tmp_path / "run.json"
    run = payor_cli.dry_run(frame, "customers", CUSTOMERS, report_json=report)
    assert run.exit_code == 1
    assert [p["customerno"] for p in run.payloads] == ["10001", "10003"]
    assert [r["source_row"] for r in run.rejected] == [3]
    assert run.rejected[0]["No"] == ""
    assert json.loads(report.read_text()) == run.summary


def test_a_failed_run_still_writes_its_report(tmp_path: Path):
    report = tmp_path / "run.json"
    with pytest.raises(MappingError):
        payor_cli.dry_run(customers_frame(), "invoices", INVOICES, report_json=report)
    written = json.loads(report.read_text())
    assert written["exit_code"] == 2
    assert "column 'Customer' (customerNumber) is not in the header row" in written["error"]


def test_the_readme_notebook_cell_runs_as_written(tmp_path: Path, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    cell = readme.split("## From a notebook", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("PAYOR_STATE_DIR", str(tmp_path / "state"))
    namespace: dict = {}
    exec(compile(cell, "README.md", "exec"), namespace)
    said = cell.split("print(run)  # ", 1)[1].split("\n", 1)[0]
    assert str(namespace["run"]) == said  # the comment is what the cell prints
    assert namespace["run"].summary["rows_accepted"] == 1
    assert namespace["run"].rejected == []
    assert (tmp_path / "state" / "sandbox.sqlite").exists()  # PAYOR_STATE_DIR, not the home
