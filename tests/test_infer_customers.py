"""`payor init customers` on an invoice-only export: one record per customer, and what is missing."""

from __future__ import annotations

from conftest import DATA
from infer_helpers import dry_run_written, init


def test_customers_of_the_ibm_invoice_export_need_an_email_and_say_how_to_give_it(tmp_path, payor):
    source = DATA / "ibm_accounts_receivable.csv"
    made = init(payor, tmp_path, "customers", source)
    assert made.code == 1  # a required field has no column: a TODO line
    assert made.fields == {"customerno": "customerID"}
    assert (
        "no column found for emailaddress1: the API requires an e-mail address on every "
        "record; name the column that holds it in the TODO line, or give every record the same "
        'one with emailaddress1 = { value = "..." }'
    ) in made.text
    todo = '# TODO emailaddress1 = "..."   (required: name the column that holds it,'
    assert todo in made.toml
    assert 'emailaddress1 = { value = "ar@yourcompany.example" }' in made.toml
    assert "the rows of a customer are one record, sent once" in made.section_comment("key")
    # the user takes the suggested value: the file's 100 customers, one record each
    write_with_one_email(made, tmp_path)
    code, payloads, rejected = dry_run_written(payor, tmp_path, "customers", source)
    assert (code, rejected) == (0, [])
    assert len(payloads) == 100
    assert len({p["customerno"] for p in payloads}) == 100
    assert payloads[0] == {"customerno": "0379-NEVHP", "emailaddress1": "ar@acme.example"}


def test_r_na_cells_in_the_uci_sample_are_empty_customer_numbers_not_a_customer(tmp_path, payor):
    source = DATA / "uci_online_retail_sample_semicolon.csv"
    made = init(payor, tmp_path, "customers", source)
    assert made.code == 1  # no e-mail column: a TODO line
    assert made.fields == {"customerno": {"column": "CustomerID", "missing": ["NA"]}}
    assert made.line("customerno").endswith("# 'NA': an empty cell, as R and spreadsheets write it")
    write_with_one_email(made, tmp_path)
    code, payloads, rejected = dry_run_written(payor, tmp_path, "customers", source)
    # a row whose only mapped cell is empty is a blank row to the upload: skipped, not sent
    assert (code, rejected) == (0, [])
    assert "NA" not in {p["customerno"] for p in payloads}
    assert len(payloads) == len({p["customerno"] for p in payloads}) == 1039


def write_with_one_email(made, tmp_path) -> None:
    """The written mapping, with the one e-mail for every record that the TODO line suggests."""
    (tmp_path / "customers.toml").write_text(
        made.toml.replace(
            "[customers.fields]\n",
            '[customers.fields]\nemailaddress1 = { value = "ar@acme.example" }\n',
        ),
        encoding="utf-8",
    )
