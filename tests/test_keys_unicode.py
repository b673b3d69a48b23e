"""Keys as the server sees them: a byte-order mark inside a file is no part of a key, and an
e-mail address is one key however its case and Unicode form are written (`İnfo@`, `i̇nfo@`;
`é` as one character or two), in keys, look-ups and links alike.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CREDENTIALS, CUSTOMER_MAPPING, write_csv, write_mapping

BUSINESS_SUITE = """
[api]
target = "business-suite"

[customers]
[customers.fields]
email = "Mail"
account = "Firma"
"""
DOTTED = "\u0130nfo@firma.example"  # İnfo@: capital I with dot above
COMBINING = "i\u0307nfo@firma.example"  # i̇nfo@: i and a combining dot above


def test_a_byte_order_mark_inside_a_file_is_trimmed_from_the_key(tmp_path, dry_run):
    # two exports joined with cat: the second one's BOM starts a line of the first's table
    first = b"\xef\xbb\xbfNo,Email,Name\r\n4,a@x.example,Alpha\r\n"
    second = b"\xef\xbb\xbf5,b@x.example,Beta\r\n\xef\xbb\xbf4,a@x.example,Alpha\r\n"
    source = tmp_path / "joined.csv"
    source.write_bytes(first + second)
    run, payloads, _, report = dry_run("customers", source, CUSTOMER_MAPPING)
    assert run.code == 0, run.text
    assert [p["customerno"] for p in payloads] == ["4", "5"]  # the third row repeats row 2
    assert report["rows_merged"] == 1


def test_a_byte_order_mark_around_spaces_is_trimmed_as_white_space(tmp_path, dry_run):
    source = tmp_path / "spaced.csv"
    source.write_bytes("No,Email,Name\n \ufeff 7 ,c@x.example,\ufeffGamma\ufeff\n".encode())
    run, payloads, _, _ = dry_run("customers", source, CUSTOMER_MAPPING)
    assert run.code == 0, run.text
    assert payloads == [{"customerno": "7", "emailaddress1": "c@x.example", "companyname": "Gamma"}]


def test_an_address_written_two_ways_in_one_file_is_one_key(tmp_path, dry_run):
    source = write_csv(
        tmp_path / "kunden.csv",
        [["Firma", "Mail"], ["Firma Eins", DOTTED], ["Firma Zwei", COMBINING]],
    )
    run, payloads, rejected, _ = dry_run(
        "customers", source, BUSINESS_SUITE, "--target", "business-suite"
    )
    assert run.code == 1, run.text
    assert [p["email"] for p in payloads] == [DOTTED]
    assert len(rejected) == 1 and "repeats the key of row 2" in rejected[0]["errors"]


@pytest.fixture
def upload_fresh(payor, tmp_path: Path):
    """Upload customers to a business-suite server, each run with a state dir of its own."""
    config = write_mapping(tmp_path / "payor.toml", BUSINESS_SUITE)
    runs = iter(range(100))

    def run(server, mail: str, name: str):
        number = next(runs)
        source = write_csv(tmp_path / f"kunden{number}.csv", [["Firma", "Mail"], [name, mail]])
        return payor(
            "upload", "customers", source, "--config", config, "--base-url", server.url,
            "--state-dir", tmp_path / f"state{number}", env=CREDENTIALS,
        )  # fmt: skip

    return run


def test_the_same_dotted_address_again_on_a_fresh_state_dir_updates_its_customer(
    sandbox_server, upload_fresh
):
    server = sandbox_server("--target", "business-suite")
    first = upload_fresh(server, DOTTED, "Firma Eins")
    assert first.code == 0, first.text
    again = upload_fresh(server, DOTTED, "Firma Eins AG")
    assert again.code == 0, again.text  # found in the CRM's list, not created again
    assert [(c["email"], c["account"]) for c in server.records("customers")] == [
        (DOTTED, "Firma Eins AG")
    ]


@pytest.mark.parametrize(
    ("before", "after"),
    [(COMBINING, DOTTED), ("jos\u00e9@firma.example", "jose\u0301@firma.example")],
    ids=["dotted-i", "composed-e-acute"],
)
def test_an_address_written_another_way_finds_its_customer(
    sandbox_server, upload_fresh, before, after
):
    server = sandbox_server("--target", "business-suite")
    assert upload_fresh(server, before, "Firma Eins").code == 0
    run = upload_fresh(server, after, "Firma Eins")
    assert run.code == 0, run.text
    assert len(server.records("customers")) == 1, server.records("customers")


def test_the_key_folds_as_servers_compare_addresses():
    from payor_cli.check.keys import email_keys, fold_email

    assert fold_email(DOTTED) == fold_email(COMBINING) == fold_email("I\u0307NFO@FIRMA.EXAMPLE")
    assert fold_email("STRASSE@x.example") == fold_email("straße@x.example")
    assert fold_email("Info@firma.example") != fold_email(DOTTED)  # İ is not I
    import pyarrow as pa

    column = pa.array([DOTTED, None, "A@B.example", "jose\u0301@x"])
    assert email_keys(column).to_pylist() == [
        fold_email(DOTTED),
        None,
        "a@b.example",
        "jos\u00e9@x",
    ]
