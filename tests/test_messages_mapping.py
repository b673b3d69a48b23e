"""A field the target lacks is named with the target, the command that lists the target's
fields, and, when it is another target's field, the target the mapping looks written for."""

from __future__ import annotations

from conftest import write_csv, write_mapping

PEOPLE = [["No", "Email", "Name"], ["C1", "a@x.example", "A"]]


def test_a_payorcrm_mapping_for_onlyoffice_says_whose_field_it_is(tmp_path, payor):
    source = write_csv(tmp_path / "c.csv", PEOPLE)
    mapping = write_mapping(
        tmp_path / "m.toml", '[customers]\n[customers.fields]\ncustomerno = "No"\n'
    )
    run = payor("upload", "customers", source, "--mapping", mapping, "--target", "onlyoffice", "--dry-run")  # fmt: skip
    assert run.code == 2
    assert "'customerno' is not a field of onlyoffice's customers" in run.err
    assert "the mapping looks written for payorcrm" in run.err
    assert "field field" not in run.err


def test_a_misspelt_field_names_the_target_and_its_schema_command(tmp_path, payor):
    source = write_csv(tmp_path / "c.csv", PEOPLE)
    mapping = write_mapping(
        tmp_path / "m.toml", '[customers]\n[customers.fields]\nemial = "Email"\n'
    )
    run = payor("upload", "customers", source, "--mapping", mapping, "--target", "business-suite", "--dry-run")  # fmt: skip
    assert run.code == 2
    assert "'emial' is not a field of business-suite's customers" in run.err
    assert "did you mean 'email'?" in run.err
    assert "`payor schema --target business-suite customers` lists the fields" in run.err
    listed = payor("schema", "customers", "--target", "business-suite")
    assert listed.code == 0 and "email" in listed.out


def test_a_line_field_is_called_a_line_field(tmp_path, payor):
    source = write_csv(tmp_path / "i.csv", [["Nr", "Text"], ["1", "x"]])
    mapping = write_mapping(
        tmp_path / "m.toml",
        '[invoices]\ntarget = "business-suite"\n[invoices.fields]\ninvoice_number = "Nr"\n'
        'customer = "Nr"\ndate = "Nr"\n[invoices.lines]\ndescription = "Text"\nwhatever = "Text"\n',
    )
    run = payor("upload", "invoices", source, "--mapping", mapping, "--dry-run")
    assert run.code == 2
    assert "'whatever' is not a line field of business-suite's invoices" in run.err
