"""No output file may be an input of the run: such a run stops before it reads anything (exit
2), naming both, and the input keeps every byte. Outputs are written whole or not at all.
Through the real CLI, on real files, links included."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import CUSTOMER_MAPPING, INVOICE_MAPPING, write_csv, write_mapping

from payor_cli.run.outputs import PayloadWriter
from payor_cli.whole import same_file

ROWS = [["Customer", "Invoice", "Amount"], ["C1", "I1", "10"], ["C2", "", "x"]]


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "same.csv", ROWS)


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    return write_mapping(tmp_path / "m.toml", INVOICE_MAPPING)


def assert_refused(run, before: bytes, path: Path, *named: str) -> None:
    assert run.code == 2, run.text
    assert path.read_bytes() == before
    for text in named:
        assert text in run.err, run.err
    assert "writing it would destroy what the run reads" in run.err


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "real"])
def test_rejected_naming_the_export_leaves_it_whole(tmp_path, payor, export, mapping, dry):
    before = export.read_bytes()
    extra = ["--dry-run"] if dry else ["--sandbox", "--state-dir", str(tmp_path / "state")]
    run = payor("upload", "invoices", export, "--mapping", mapping, "--rejected", export, *extra)
    assert_refused(run, before, export, f"--rejected {export} is the export")
    assert "no data rows" not in run.err


def test_a_symlink_to_the_export_is_the_export(tmp_path, payor, export, mapping):
    link = tmp_path / "link.csv"
    link.symlink_to(export.name)
    before = export.read_bytes()
    run = payor("upload", "invoices", export, "--mapping", mapping, "--dry-run", "--rejected", link)
    assert_refused(run, before, export, f"--rejected {link} is the export {export}")
    assert link.is_symlink()


def test_a_hard_link_to_the_export_is_the_export(tmp_path, payor, export, mapping):
    hard = tmp_path / "hard.json"
    os.link(export, hard)
    before = export.read_bytes()
    run = payor(
        "upload", "invoices", export, "--mapping", mapping, "--dry-run", "--report-json", hard
    )
    assert_refused(run, before, export, "--report-json", f"the export {export}")


def test_another_spelling_of_the_export_is_the_export(tmp_path, payor, export, mapping):
    (tmp_path / "sub").mkdir()
    spelled = Path("sub") / ".." / export.name
    before = export.read_bytes()
    run = payor(
        "upload", "invoices", export, "--mapping", mapping, "--dry-run", "--payloads", spelled
    )
    assert_refused(run, before, export, f"--payloads {spelled} is the export")


def test_a_log_file_naming_the_export_gets_no_line(tmp_path, payor, export, mapping):
    before = export.read_bytes()
    run = payor(
        "upload", "invoices", export, "--mapping", mapping, "--dry-run", "--log-file", export
    )
    assert_refused(run, before, export, f"--log-file {export} is the export")


def test_the_config_and_the_mapping_are_inputs_too(tmp_path, payor, export, mapping):
    config = write_mapping(tmp_path / "settings.toml", "[upload]\nbatch_size = 10\n")
    before = config.read_bytes()
    run = payor(
        "upload", "invoices", export, "--mapping", mapping, "--config", config, "--dry-run",
        "--report-json", config,
    )  # fmt: skip
    assert_refused(run, before, config, f"--report-json {config} is the config file")
    before = mapping.read_bytes()
    run = payor(
        "upload", "invoices", export, "--mapping", mapping, "--dry-run", "--report-json", mapping
    )
    assert_refused(run, before, mapping, f"--report-json {mapping} is the mapping")


def test_the_journal_of_the_state_dir_is_never_an_output(tmp_path, payor, export, mapping):
    state = tmp_path / "state"
    state.mkdir()
    journal = state / "journal.sqlite"
    journal.write_bytes(b"SQLite format 3\x00 stands in for a journal")
    before = journal.read_bytes()
    run = payor(
        "upload", "invoices", export, "--mapping", mapping, "--dry-run", "--state-dir", state,
        "--log-file", journal,
    )  # fmt: skip
    assert_refused(run, before, journal, f"--log-file {journal} is the journal")


def test_upload_all_checks_each_kind_output_against_both_exports(tmp_path, payor):
    people = write_csv(tmp_path / "r.customers.csv", [["No", "Email", "Name"], ["C1", "a@x.example", "A"]])  # fmt: skip
    invoices = write_csv(tmp_path / "invoices.csv", ROWS)
    mapping = write_mapping(tmp_path / "m.toml", CUSTOMER_MAPPING + INVOICE_MAPPING)
    before = people.read_bytes()
    run = payor(
        "upload", "all", "--customers", people, "--invoices", invoices, "--mapping", mapping,
        "--dry-run", "--rejected", tmp_path / "r.csv",
    )  # fmt: skip
    assert_refused(run, before, people, "--rejected (r.customers.csv)", "the customers export")
    assert not (tmp_path / "r.invoices.csv").exists()


def test_the_spool_of_a_workbook_is_an_output_too(tmp_path, payor, mapping):
    # a killed run's rows wait in r.xlsx.partial.csv; a clerk fixes and uploads that file
    spool = write_csv(tmp_path / "r.xlsx.partial.csv", [["source_row", "errors", *ROWS[0]], ["3", "x", "C2", "I2", "5"]])  # fmt: skip
    before = spool.read_bytes()
    run = payor("upload", "invoices", spool, "--mapping", mapping, "--dry-run", "--rejected", tmp_path / "r.xlsx")  # fmt: skip
    assert_refused(run, before, spool, "--rejected's spool (r.xlsx.partial.csv)", "the export")


def test_two_outputs_naming_one_file_stop_the_run(tmp_path, payor, export, mapping):
    out = tmp_path / "out.csv"
    run = payor(
        "upload", "invoices", export, "--mapping", mapping, "--dry-run", "--rejected", out,
        "--report-json", out,
    )  # fmt: skip
    assert run.code == 2, run.text
    assert f"--report-json {out} is the file of --rejected" in run.err
    assert not out.exists()


def test_init_never_writes_its_mapping_over_the_export(tmp_path, payor, export):
    before = export.read_bytes()
    run = payor("init", "invoices", export, "-o", export, "--force")
    assert_refused(run, before, export, f"-o {export} is the export")


def test_same_file_compares_files_not_names(tmp_path):
    a = write_csv(tmp_path / "a.csv", ROWS)
    os.link(a, tmp_path / "b.csv")
    assert same_file(a, tmp_path / "b.csv")
    assert same_file(tmp_path / "new.csv", tmp_path / "." / "new.csv")  # neither exists yet
    assert not same_file(a, tmp_path / "new.csv")


def test_payloads_are_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"old": 1}\n', encoding="utf-8")
    writer = PayloadWriter(path)
    writer.write(pa.array(['{"a": 1}', '{"a": 2}']))
    assert not path.exists()  # the old file is gone at once; the new one is not there yet
    writer.write(pa.array(['{"a": 3}']))
    writer.close()
    assert path.read_text(encoding="utf-8") == '{"a": 1}\n{"a": 2}\n{"a": 3}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl"]


def test_a_rejected_file_replaces_the_old_one_and_leaves_no_working_file(tmp_path, payor, mapping):
    """The rows wait in a spool beside the file, which is renamed over it at the end."""
    rows = [ROWS[0]] + [[f"C{n}", "", "1"] for n in range(3000)]
    source = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "r.csv"
    out.write_text("old,file\n", encoding="utf-8")
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run", "--rejected", out)
    assert run.code == 1, run.text
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "source_row,errors,origin,Customer,Invoice,Amount"
    assert len(lines) == 3001
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "m.toml", "r.csv"]


def test_the_sandbox_data_in_the_state_dir_is_never_an_output(tmp_path, payor, export, mapping):
    state = tmp_path / "state"
    state.mkdir()
    data = state / "sandbox.sqlite"
    data.write_bytes(b"SQLite format 3\x00 stands in for the sandbox's rows")
    before = data.read_bytes()
    run = payor(
        "upload", "invoices", export, "--mapping", mapping, "--sandbox", "--state-dir", state,
        "--report-json", data,
    )  # fmt: skip
    assert_refused(run, before, data, f"--report-json {data} is the sandbox's data")
