"""One rule chooses the target in every command: --target, else PAYOR_TARGET, else the config's
[api].target; a mapping names the target it was written for, and an upload that chose another
stops naming both, while one that chose none takes the mapping's. PAYOR_CONFIG names the
settings file when --config is not given. All through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

from conftest import CUSTOMER_MAPPING, write_csv, write_mapping

ONLYOFFICE_CONFIG = '[api]\ntarget = "onlyoffice"\n'
PEOPLE = [
    ["No", "Company", "Email", "Name"],
    ["C1", "Acme GmbH", "ar@acme.example", "Acme"],
    ["C2", "Beta AG", "billing@beta.example", "Beta"],
]
ONLYOFFICE_CUSTOMERS = """
[customers]
target = "onlyoffice"
[customers.fields]
companyName = "Company"
email = "Email"
"""


def test_schema_shows_the_fields_of_the_config_target(tmp_path, payor):
    config = write_mapping(tmp_path / "settings.toml", ONLYOFFICE_CONFIG)
    run = payor("schema", "customers", "--json", "--config", config)
    assert run.code == 0, run.text
    assert [f["name"] for f in json.loads(run.out)["customers"]][:2] == ["companyName", "email"]


def test_schema_reads_the_config_named_by_payor_config(tmp_path, payor):
    config = write_mapping(tmp_path / "elsewhere.toml", ONLYOFFICE_CONFIG)
    run = payor("schema", "customers", "--json", env={"PAYOR_CONFIG": str(config)})
    assert run.code == 0, run.text
    assert "companyName" in [f["name"] for f in json.loads(run.out)["customers"]]


def test_schema_reads_payor_toml_in_the_working_folder(tmp_path, payor):
    write_mapping(tmp_path / "payor.toml", '[api]\ntarget = "business-suite"\n')
    run = payor("schema", "customers", "--json")
    assert run.code == 0, run.text
    assert [f["name"] for f in json.loads(run.out)["customers"]][:2] == ["account", "email"]


def test_the_flag_beats_the_environment_which_beats_the_config(tmp_path, payor):
    config = write_mapping(tmp_path / "settings.toml", ONLYOFFICE_CONFIG)
    env = {"PAYOR_TARGET": "business-suite"}
    by_env = payor("schema", "customers", "--json", "--config", config, env=env)
    by_flag = payor(
        "schema", "customers", "--json", "--config", config, "--target", "payorcrm", env=env
    )
    assert (by_env.code, by_flag.code) == (0, 0), by_env.text + by_flag.text
    assert json.loads(by_env.out)["customers"][0]["name"] == "account"
    assert json.loads(by_flag.out)["customers"][0]["name"] == "companyname"


def test_an_unknown_target_in_the_config_names_where_it_came_from(tmp_path, payor):
    config = write_mapping(tmp_path / "settings.toml", '[api]\ntarget = "salesforce"\n')
    run = payor("schema", "--config", config)
    assert run.code == 2
    assert "unknown target 'salesforce'" in run.err
    assert f"{config} [api].target" in run.err


def test_init_suggests_the_config_target_and_writes_it_into_the_mapping(tmp_path, payor):
    source = write_csv(tmp_path / "customers.csv", PEOPLE)
    config = write_mapping(tmp_path / "settings.toml", ONLYOFFICE_CONFIG)
    mapping = tmp_path / "m.toml"
    run = payor("init", "customers", source, "--config", config, "-o", mapping)
    assert run.code == 0, run.text
    section = tomllib.loads(mapping.read_text(encoding="utf-8"))["customers"]
    assert section["target"] == "onlyoffice"
    assert section["fields"]["companyName"] == "Company"
    assert section["fields"]["email"] == "Email"


def test_an_upload_with_no_target_takes_the_mapping_target(tmp_path, payor):
    source = write_csv(tmp_path / "customers.csv", PEOPLE)
    mapping = write_mapping(tmp_path / "m.toml", ONLYOFFICE_CUSTOMERS)
    report = tmp_path / "report.json"
    run = payor(
        "upload", "customers", source, "--mapping", mapping, "--dry-run", "--report-json", report
    )
    assert run.code == 0, run.text
    assert json.loads(report.read_text())["target"] == "onlyoffice"


def test_init_then_upload_goes_to_the_target_init_was_told(tmp_path, payor):
    source = write_csv(tmp_path / "customers.csv", PEOPLE)
    mapping = tmp_path / "m.toml"
    assert payor("init", "customers", source, "--target", "business-suite", "-o", mapping).code == 0
    report = tmp_path / "report.json"
    run = payor(
        "upload", "customers", source, "--mapping", mapping, "--dry-run", "--report-json", report
    )
    assert run.code == 0, run.text
    assert json.loads(report.read_text())["target"] == "business-suite"


def test_an_upload_to_another_target_than_the_mapping_stops_naming_both(tmp_path, payor):
    source = write_csv(tmp_path / "customers.csv", PEOPLE)
    mapping = write_mapping(tmp_path / "m.toml", ONLYOFFICE_CUSTOMERS)
    rejected = tmp_path / "rejected.csv"
    run = payor(
        "upload", "customers", source, "--mapping", mapping, "--target", "business-suite",
        "--dry-run", "--rejected", rejected,
    )  # fmt: skip
    assert run.code == 2
    assert "business-suite (from --target)" in run.err
    assert f"{mapping} [customers] was written for onlyoffice" in run.err
    assert not rejected.exists()


def test_the_config_target_against_the_mapping_target_stops_naming_both(tmp_path, payor):
    source = write_csv(tmp_path / "customers.csv", PEOPLE)
    config = write_mapping(
        tmp_path / "payor.toml", '[api]\ntarget = "payorcrm"\n' + ONLYOFFICE_CUSTOMERS
    )
    run = payor("upload", "customers", source, "--config", config, "--dry-run")
    assert run.code == 2
    assert f"payorcrm (from {config} [api].target)" in run.err
    assert "[customers] was written for onlyoffice" in run.err


def test_payor_config_names_the_settings_file_of_an_upload(tmp_path, payor):
    source = write_csv(tmp_path / "customers.csv", PEOPLE)
    (tmp_path / "conf").mkdir()
    config = write_mapping(tmp_path / "conf" / "settings.toml", ONLYOFFICE_CUSTOMERS)
    report = tmp_path / "report.json"
    run = payor(
        "upload", "customers", source, "--dry-run", "--report-json", report,
        env={"PAYOR_CONFIG": str(config)},
    )  # fmt: skip
    assert run.code == 0, run.text
    data = json.loads(report.read_text())
    assert (data["target"], data["rows_valid"]) == ("onlyoffice", 2)


def test_a_payor_config_that_names_no_file_is_a_usage_error(tmp_path, payor):
    source = write_csv(tmp_path / "customers.csv", PEOPLE)
    mapping = write_mapping(tmp_path / "m.toml", CUSTOMER_MAPPING)
    missing = tmp_path / "nowhere.toml"
    run = payor(
        "upload", "customers", source, "--mapping", mapping, "--dry-run",
        env={"PAYOR_CONFIG": str(missing)},
    )  # fmt: skip
    assert run.code == 2
    assert f"{missing}: no such config file (named by PAYOR_CONFIG)" in run.err


def test_the_mappings_of_upload_all_must_name_one_target(tmp_path, payor):
    source = write_csv(tmp_path / "customers.csv", PEOPLE)
    mapping = write_mapping(
        tmp_path / "m.toml",
        ONLYOFFICE_CUSTOMERS + '\n[invoices]\ntarget = "business-suite"\n[invoices.fields]\n',
    )
    run = payor(
        "upload", "all", "--customers", source, "--invoices", source, "--mapping", mapping,
        "--dry-run",
    )  # fmt: skip
    assert run.code == 2
    assert "written for different targets" in run.err
    assert "onlyoffice" in run.err and "business-suite" in run.err


def test_the_sandbox_serves_the_config_target(tmp_path):
    config = write_mapping(tmp_path / "settings.toml", ONLYOFFICE_CONFIG)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "payor_cli", "sandbox", "--port", "0", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        first = process.stdout.readline()
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()
    assert "payor sandbox: a ONLYOFFICE" in first, first


def test_every_command_resolves_the_target_by_one_function(tmp_path):
    from payor_cli.run.settings import resolve_target
    from payor_cli.run.target_choice import TargetChoice, choose_target, with_mapping_target

    config = write_mapping(tmp_path / "settings.toml", ONLYOFFICE_CONFIG)
    assert resolve_target(None, config, {}) == TargetChoice("onlyoffice", f"{config} [api].target")
    assert resolve_target(None, None, {"PAYOR_CONFIG": str(config)}).name == "onlyoffice"
    assert resolve_target("payorcrm", config, {}).origin == "--target"
    assert choose_target(None, {}, {}, None) == TargetChoice(None, "")
    taken = with_mapping_target(TargetChoice(None, ""), [("onlyoffice", "m.toml [customers]")])
    assert taken == TargetChoice("onlyoffice", "m.toml [customers]")
