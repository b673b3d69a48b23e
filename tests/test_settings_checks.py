"""Settings a run cannot work with are refused before any work: exit 2, one line saying what to
change, nothing read, nothing sent. And one API address is one journal scope, however it is
written."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_csv, write_mapping
from hostile_server import HostileServer, invoke, json_answer

from payor_cli.sandbox.server import Sandbox, SandboxConfig
from payor_cli.targets.payorcrm.sandbox import PayorCrmRoutes

KEY, SECRET = "key-Sc4-81d0", "secret-Pp7-2b6c-never-shown"
CREDENTIALS = {"PAYOR_API_KEY": KEY, "PAYOR_API_SECRET": SECRET}
ROWS = [["No", "Email", "Name"], ["C1", "c1@x.example", "Alpha"], ["C2", "c2@x.example", "Beta"]]
MAPPING = """
[customers]
[customers.fields]
customerno = "No"
emailaddress1 = "Email"
companyname = "Name"
"""

# (what the [api] section says, or the --base-url given; what the one error line says)
CASES = {
    "timeout nan": ("timeout = nan", "timeout must be a positive number, not nan"),
    "timeout inf": ("timeout = inf", "timeout must be a positive number, not inf"),
    "connect_timeout nan": ("connect_timeout = nan", "connect_timeout must be a positive number"),
    "timeout of years": ("timeout = 1e12", "timeout must be at most 86400 (seconds)"),
    "trailing space": ('base_url = "{url} "', "has spaces or control characters in it"),
    "leading space": ('base_url = " {url}"', "has spaces or control characters in it"),
    "port 99999": ("--base-url http://127.0.0.1:99999", "the port is not a number from 1 to 65535"),
    "port not a number": ("--base-url http://127.0.0.1:http", "the port is not a number"),
    "query string": ("--base-url {url}/?tenant=7", "has a query or fragment"),
    "fragment": ('base_url = "{url}#api"', "has a query or fragment"),
    "credentials": (
        "--base-url http://admin:pa55-Wd9-hidden@127.0.0.1:{port}",
        "holds credentials (user:password@)",
    ),
    "missing ca_bundle": ('ca_bundle = "/nonexistent/corporate.pem"', "no such file"),
    "ca_bundle that is no PEM": ('ca_bundle = "{junk}"', "holds no certificate payor can read"),
    "a secret no header can carry": (
        'api_secret = "s€cret-Pp7"',
        "the api secret holds a character an HTTP header cannot carry",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_setting_payor_cannot_work_with_is_one_line_and_exit_2_before_any_work(
    case, tmp_path: Path
):
    given, said = CASES[case]
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with HostileServer(lambda seen: json_answer(200, {"success": True})) as server:
        given = given.format(url=server.url, port=server.port, junk=junk)
        api = "" if given.startswith("--") else given
        flags = given.split() if given.startswith("--") else ["--base-url", server.url]
        if api.startswith("base_url"):
            flags = []  # the config's base URL is the one used
        config = write_mapping(tmp_path / "payor.toml", f"[api]\n{api}\n{MAPPING}")
        source = write_csv(tmp_path / "customers.csv", ROWS)
        run = invoke(
            tmp_path, "upload", "customers", source, "--config", config, *flags,
            "--state-dir", tmp_path / "state",
            env={"PAYOR_API_KEY": KEY} if "api_secret" in api else CREDENTIALS,
        )  # fmt: skip
        assert server.seen == []
    assert run.code == 2, run.out
    lines = run.out.strip().splitlines()
    assert len(lines) == 1 and "error: " in lines[0] and said in lines[0], run.out
    assert "pa55-Wd9-hidden" not in run.everything
    assert not (tmp_path / "state").exists()  # nothing was done, not even the state dir


def test_one_api_address_is_one_journal_scope_however_it_is_written(tmp_path: Path):
    """`HTTP://127.0.0.1:PORT` and `http://127.0.0.1:PORT/` are one API: the second run finds
    every row unchanged."""
    source = write_csv(tmp_path / "customers.csv", ROWS)
    config = write_mapping(tmp_path / "payor.toml", MAPPING)
    with Sandbox(SandboxConfig(api_key=KEY, api_secret=SECRET), PayorCrmRoutes()) as sandbox:
        port = sandbox.url.rsplit(":", 1)[1]
        flags = ["--config", config, "--state-dir", tmp_path / "state"]
        runs = [
            invoke(
                tmp_path, "upload", "customers", source, *flags, "--base-url", url, env=CREDENTIALS
            )
            for url in (f"HTTP://127.0.0.1:{port}", f"http://127.0.0.1:{port}/")
        ]
        stored = sandbox.stats()
    assert [r.code for r in runs] == [0, 0], runs[-1].out
    assert (runs[0].report["rows_accepted"], runs[0].report["rows_unchanged"]) == (2, 0)
    assert (runs[1].report["rows_sent"], runs[1].report["rows_unchanged"]) == (0, 2)
    assert stored["requests"] == 1, stored


def test_a_missing_requests_ca_bundle_is_one_line_and_exit_2_before_any_work(tmp_path: Path):
    """No [api].ca_bundle: requests would use REQUESTS_CA_BUNDLE; one that does not exist is
    said before any work, not as a failure of the first request."""
    config = write_mapping(tmp_path / "payor.toml", MAPPING)
    source = write_csv(tmp_path / "customers.csv", ROWS)
    run = invoke(
        tmp_path, "upload", "customers", source, "--config", config, "--base-url",
        "https://crm.example.test", "--state-dir", tmp_path / "state",
        env=CREDENTIALS | {"REQUESTS_CA_BUNDLE": "/nonexistent/bundle.pem"},
    )  # fmt: skip
    assert run.code == 2, run.out
    lines = run.out.strip().splitlines()
    assert len(lines) == 1, run.out
    assert (
        "the environment's REQUESTS_CA_BUNDLE '/nonexistent/bundle.pem': no such file" in lines[0]
    )
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    "name, proxy", [("HTTPS_PROXY", "proxy.corp:port"), ("ALL_PROXY", "socks5://127.0.0.1:1080")]
)
def test_a_proxy_payor_cannot_use_is_one_line_and_exit_2_before_any_work(
    name, proxy, tmp_path: Path
):
    config = write_mapping(tmp_path / "payor.toml", MAPPING)
    source = write_csv(tmp_path / "customers.csv", ROWS)
    run = invoke(
        tmp_path, "upload", "customers", source, "--config", config, "--base-url",
        "https://crm.example.test", "--state-dir", tmp_path / "state",
        env=CREDENTIALS | {name: proxy},
    )  # fmt: skip
    assert run.code == 2, run.out
    lines = run.out.strip().splitlines()
    assert len(lines) == 1, run.out
    assert f"the environment's {name} {proxy!r} is not a proxy payor can use" in lines[0]
