"""payor against a hostile or broken HTTP world: redirects, answers that are not the API's,
trickles, cut-off and huge bodies, proxies and CA bundles. The real CLI runs (in this process, or
as a process where signals matter) against a loopback server that misbehaves on purpose, mostly
in front of a real sandbox, so what arrived is what the sandbox stored."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_csv, write_mapping
from hostile_server import (
    CUSTOMER_FIELDS,
    HostileServer,
    after_upstream,
    chunked_huge,
    cut_chunked,
    html,
    huge,
    invoke,
    json_answer,
    nested,
    no_content,
    raw,
    redirect,
    trickle,
    wait_until,
)

from payor_cli.sandbox.server import Sandbox, SandboxConfig
from payor_cli.targets import get_target

KEY, SECRET = "key-Hx7-4c1e", "secret-Vq2-9d8f-never-shown"
USER, PASSWORD = "ops@example.com", "pass-Kr4-73ab-never-shown"
CREDENTIALS = {"PAYOR_API_KEY": KEY, "PAYOR_API_SECRET": SECRET}
SIGN_IN = {"PAYOR_API_USER": USER, "PAYOR_API_PASSWORD": PASSWORD}

CONFIG = """
[api]
target = "{target}"
timeout = {timeout}
connect_timeout = 2
[upload]
max_retries = {retries}
concurrency = 1

[customers]
[customers.fields]
{fields}
"""
FIELDS = CUSTOMER_FIELDS
ROWS = [
    ["No", "Email", "Name"],
    ["C1", "c1@x.example", "Alpha Ltd"],
    ["C2", "c2@x.example", "Beta"],
]


@pytest.fixture
def sandbox():
    started: list[Sandbox] = []

    def start(target: str = "payorcrm") -> Sandbox:
        secret = PASSWORD if target == "onlyoffice" else SECRET
        config = SandboxConfig(api_key=KEY, api_secret=secret, api_user=USER)
        server = Sandbox(config, routes=get_target(target).sandbox_routes()).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def hostile():
    started: list[HostileServer] = []

    def start(answer=lambda seen: None, upstream: str | None = None, **more) -> HostileServer:
        server = HostileServer(answer, upstream, **more)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def upload(tmp_path: Path):
    """`payor upload customers` of two rows to `url`, in this process."""

    def run(url: str, target: str = "payorcrm", *, timeout=5, retries=1, env=None, state="state"):
        source = write_csv(tmp_path / "customers.csv", ROWS)
        config = CONFIG.format(
            target=target, timeout=timeout, retries=retries, fields=FIELDS[target]
        )
        settings = write_mapping(tmp_path / "payor.toml", config)
        secrets = SIGN_IN if target == "onlyoffice" else CREDENTIALS
        return invoke(
            tmp_path, "upload", "customers", source, "--config", settings, "--base-url", url,
            "--state-dir", tmp_path / state, env={**secrets, **(env or {})},
        )  # fmt: skip

    return run


# -- redirects -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "target, path",
    [
        ("payorcrm", "/jsonApi/upload/customers"),  # the upload itself
        ("business-suite", "/api/v2/customers"),  # a look-up, with a token (Bearer)
        ("onlyoffice", "/api/2.0/authentication"),  # the sign-in POST, with the password
    ],
)
def test_a_redirect_to_another_host_stops_the_run_and_carries_nothing_there(
    target, path, upload, sandbox, hostile
):
    elsewhere = hostile(lambda seen: json_answer(200, {"success": True, "data": []}))
    upstream = sandbox(target)
    server = hostile(
        lambda seen: (
            redirect(307, elsewhere.url + seen.path) if seen.path.startswith(path) else None
        ),
        upstream.url,
    )
    run = upload(server.url, target)
    assert run.code == 3, run.out
    assert f"307, a redirect to {elsewhere.url}{path}" in run.out
    assert elsewhere.seen == []  # neither the credentials nor the rows went there
    assert run.report["rows_accepted"] == 0
    # nothing behind the redirect was journalled: with the redirect gone, every row is sent
    server.answer = lambda seen: None
    again = upload(server.url, target)
    assert again.code == 0, again.out
    assert (again.report["rows_accepted"], again.report["rows_unchanged"]) == (2, 0)


def test_a_302_does_not_turn_the_upload_into_an_accepted_get(upload, hostile):
    elsewhere = hostile(lambda seen: json_answer(200, {"success": True}))
    server = hostile(lambda seen: redirect(302, elsewhere.url + "/ok"))
    run = upload(server.url)
    assert run.code == 3, run.out
    assert f"HTTP 302, a redirect to {elsewhere.url}/ok" in run.out
    assert elsewhere.seen == []
    assert run.report["rows_accepted"] == 0


# -- answers that are not the API's ---------------------------------------------------------------
@pytest.mark.parametrize(
    "act, said",
    [
        (html(200, "Hotel WiFi - sign in"), "an HTML page ('Hotel WiFi - sign in')"),
        (raw(200, b"OK, got it"), "text that is not JSON ('OK, got it')"),
        (raw(200, b""), "an empty body"),
        (no_content(), "no body (HTTP 204)"),
        (json_answer(200, [{"stored": 2}]), "a JSON list, not a JSON object"),
        (nested(100_000), "JSON nested more than 64 levels deep"),
        (json_answer(200, {"success": "false"}), '"success": "false", neither true nor false'),
        (json_answer(200, {"success": 0}), '"success": 0, neither true nor false'),
    ],
    ids=["html", "not-json", "empty", "204", "list", "nested", "success-text", "success-zero"],
)
def test_a_2xx_that_is_not_the_apis_answer_is_not_an_acceptance(
    act, said, upload, sandbox, hostile
):
    upstream = sandbox()
    server = hostile(lambda seen: act, upstream.url)
    run = upload(server.url, retries=1)
    assert run.code == 3, run.out
    assert "that is not PayorCRM's answer: " + said in run.out
    assert "after 2 tries" in run.out  # sent again once (an upsert), then the run stopped
    assert run.report["rows_accepted"] == 0
    server.answer = lambda seen: None
    again = upload(server.url)
    assert again.code == 0, again.out
    assert (again.report["rows_accepted"], again.report["rows_unchanged"]) == (2, 0)
    assert len(upstream.records("customers")) == 2


def test_an_unclear_create_is_looked_up_and_not_created_twice(upload, sandbox, hostile):
    """onlyoffice: the company is created, but its answer is a proxy's page: payor looks it up
    by name (it has no e-mail yet), finds it, and goes on with its e-mail."""
    upstream = sandbox("onlyoffice")
    creates = []

    def answer(seen):
        if seen.method == "POST" and seen.path == "/api/2.0/crm/contact/company":
            creates.append(seen)
            if len(creates) == 1:
                return after_upstream(html(200, "Bad gateway, sort of"))
        return None

    server = hostile(answer, upstream.url)
    run = upload(server.url, "onlyoffice", retries=2)
    assert run.code == 0, run.out
    companies = upstream.records("customers")
    assert sorted(c["companyName"] for c in companies) == ["Alpha Ltd", "Beta"]
    emails = {c["companyName"]: [d["data"] for d in c["commonData"]] for c in companies}
    assert emails == {"Alpha Ltd": ["c1@x.example"], "Beta": ["c2@x.example"]}
    assert len(creates) == 2  # Alpha's create was not sent again


def test_a_proxys_404_page_is_not_taken_for_a_record_that_is_gone(
    tmp_path, upload, sandbox, hostile
):
    """business-suite: a changed customer is PUT by its id; a 404 there means the id is gone
    and the customer is created anew. A proxy's 404 page says nothing of the record: the run
    stops instead of creating the customer a second time."""
    upstream = sandbox("business-suite")
    server = hostile(upstream=upstream.url)
    assert upload(server.url, "business-suite").code == 0
    changed = [ROWS[0]] + [[*row[:2], row[2] + " GmbH"] for row in ROWS[1:]]
    write_csv(tmp_path / "customers.csv", changed)
    server.answer = lambda seen: html(404, "404 Not Found") if seen.method == "PUT" else None
    source, config = tmp_path / "customers.csv", tmp_path / "payor.toml"
    run = invoke(
        tmp_path, "upload", "customers", source, "--config", config, "--base-url", server.url,
        "--state-dir", tmp_path / "state", env=CREDENTIALS,
    )  # fmt: skip
    assert run.code == 3, run.out
    assert "unexpected answer HTTP 404" in run.out and "404 Not Found" in run.out
    assert sorted(c["account"] for c in upstream.records("customers")) == ["Alpha Ltd", "Beta"]


@pytest.mark.parametrize(
    "answer, said",
    [
        ({"count": 1, "status": 0, "response": "signed in"}, "a sign-in without a token"),
        ({"token": "t-123456"}, "a JSON object, not its envelope"),
        (["token"], "a JSON list, not its envelope"),
        ({"response": {"token": "t-1\r\nX-Evil: 1"}}, "a sign-in without a token"),
    ],
)
def test_an_onlyoffice_answer_of_another_shape_is_unclear_not_a_crash(
    answer, said, upload, sandbox, hostile
):
    upstream = sandbox("onlyoffice")
    server = hostile(
        lambda seen: json_answer(201, answer) if seen.path.endswith("/authentication") else None,
        upstream.url,
    )
    run = upload(server.url, "onlyoffice")
    assert run.code == 3, run.out
    assert "that is not ONLYOFFICE CRM's answer: " + said in run.out
    assert "Error" not in run.out  # no AttributeError, no traceback
    assert upstream.records("customers") == []


def test_a_servers_reason_reaches_a_terminal_as_text_not_as_markup_or_escapes(tmp_path, hostile):
    """On a terminal the summary's tables show the server's reasons: rich markup in them is
    text (not a crash), and an escape sequence or a right-to-left override is not passed on."""
    reason = "bad [/bold] value [link=https://evil.example]x[/link] \x1b]0;owned\x07 \u202eevil"
    errors = [{"index": 0, "message": reason}, {"index": 1, "message": reason}]
    server = hostile(lambda seen: json_answer(422, {"errors": errors}))
    source = write_csv(tmp_path / "customers.csv", ROWS)
    config = CONFIG.format(target="payorcrm", timeout=5, retries=1, fields=FIELDS["payorcrm"])
    settings = write_mapping(tmp_path / "payor.toml", config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")} | CREDENTIALS
    env |= {"COLUMNS": "250", "TERM": "xterm"}
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "payor_cli", "upload", "customers", str(source), "--config",
         str(settings), "--base-url", server.url, "--state-dir", str(tmp_path / "state")],
        env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    shown = b""
    with contextlib.suppress(OSError):  # EIO once the process has ended
        while chunk := os.read(leader, 65536):
            shown += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 1, shown
    text = shown.decode("utf-8", "replace")
    assert "bad [/bold] value [link=https://evil.example]x[/link]" in text
    assert "\x1b]0;owned" not in text and "\u202e" not in text


# -- time and size ---------------------------------------------------------------------------------
@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_trickling_answer_ends_at_the_read_timeout(headers_too, upload, hostile):
    """A byte every 0.3 s never lets a socket's read timeout fire: the read timeout (1 s)
    bounds the whole answer."""
    server = hostile(lambda seen: trickle(b'{"success": true, "stored": 2}', 0.3, headers_too))
    run = upload(server.url, timeout=1)
    assert run.code == 3, run.out
    assert "no whole answer within 1 s (read timeout)" in run.out
    assert run.report["rows_accepted"] == 0


def test_sigterm_during_a_trickling_answer_stops_the_run_within_the_read_timeout(tmp_path, hostile):
    server = hostile(lambda seen: trickle(b" " * 100_000, 0.2))
    source = write_csv(tmp_path / "customers.csv", ROWS)
    config = CONFIG.format(target="payorcrm", timeout=3, retries=8, fields=FIELDS["payorcrm"])
    settings = write_mapping(tmp_path / "payor.toml", config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOR_")} | CREDENTIALS
    report = tmp_path / "report.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "payor_cli", "upload", "customers", str(source), "--config",
         str(settings), "--base-url", server.url, "--state-dir", str(tmp_path / "state"),
         "--report-json", str(report)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: len(server.seen) == 1)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 3, out
    assert json.loads(report.read_text())["stopped"]["reason"] == "interrupted"
    assert len(server.seen) == 1  # no retry after the stop


@pytest.mark.parametrize("act", [huge(64 * 1024 * 1024), chunked_huge()], ids=["length", "chunked"])
def test_a_huge_answer_is_not_read_past_the_limit(act, upload, hostile):
    server = hostile(lambda seen: act)
    run = upload(server.url)
    assert run.code == 3, run.out
    assert "than 8 MiB, which is not the API's" in run.out
    assert server.sent_bytes < 32 * 1024 * 1024  # the 8 MiB read and what the sockets buffer


def test_a_gzipped_answer_is_read_and_a_gzip_bomb_is_not(upload, sandbox, hostile):
    """An answer's Content-Encoding is decoded as it is read, the limit counting what it
    decodes to: 1 GB of spaces in 1 MB of gzip is not read past 8 MiB."""
    upstream = sandbox()
    honest = hostile(
        lambda seen: after_upstream(
            raw(
                200,
                gzip.compress(b'{"success": true, "stored": 2}'),
                **{"Content-Encoding": "gzip"},
            )
        ),
        upstream.url,
    )
    run = upload(honest.url)
    assert run.code == 0, run.out
    assert run.report["rows_accepted"] == 2
    # a gzip stream may hold several members: 1,024 of 1 MiB of spaces each, packed once
    bomb = gzip.compress(b" " * 1024 * 1024) * 1024
    hostile_one = hostile(lambda seen: raw(200, bomb, **{"Content-Encoding": "gzip"}))
    run = upload(hostile_one.url, state="other")
    assert run.code == 3, run.out
    assert "than 8 MiB, which is not the API's" in run.out


def test_an_answer_cut_off_mid_body_is_sent_again(upload, sandbox, hostile):
    upstream = sandbox()
    answers = []

    def answer(seen):
        answers.append(seen)
        return after_upstream(cut_chunked(b'{"success": tr')) if len(answers) == 1 else None

    server = hostile(answer, upstream.url)
    run = upload(server.url, retries=1)
    assert run.code == 0, run.out
    assert "the answer was cut off" in run.out
    assert (run.report["rows_accepted"], run.report["requests"], run.report["retries"]) == (2, 2, 1)
    assert sorted(r["customerno"] for r in upstream.records("customers")) == ["C1", "C2"]


# -- proxies and TLS -------------------------------------------------------------------------------
def test_plain_http_to_loopback_never_goes_through_a_proxy(upload, sandbox, hostile):
    upstream = sandbox()
    proxy = hostile(upstream=upstream.url)  # an honest proxy: it would relay
    env = {"HTTP_PROXY": proxy.url, "http_proxy": proxy.url, "ALL_PROXY": proxy.url}
    run = upload(upstream.url, env=env)
    assert run.code == 0, run.out
    assert proxy.seen == []  # the secret did not travel to it in clear text
    assert len(upstream.records("customers")) == 2


def test_a_proxy_that_refuses_the_tunnel_is_named_and_nothing_counts_as_sent(tmp_path, hostile):
    proxy = hostile(lambda seen: raw(403, b"", "text/plain", reason="Blocked by policy"))
    source = write_csv(tmp_path / "customers.csv", ROWS)
    config = CONFIG.format(target="payorcrm", timeout=5, retries=1, fields=FIELDS["payorcrm"])
    settings = write_mapping(tmp_path / "payor.toml", config)
    run = invoke(
        tmp_path, "upload", "customers", source, "--config", settings, "--base-url",
        "https://crm.example.test", "--state-dir", tmp_path / "state",
        env=CREDENTIALS | {"HTTPS_PROXY": proxy.url},
    )  # fmt: skip
    assert run.code == 3, run.out
    assert "the proxy failed (403 Blocked by policy)" in run.out
    assert [s.method for s in proxy.seen] == ["CONNECT", "CONNECT"]
    assert (run.report["requests"], run.report["rows_sent"]) == (0, 0)  # the API saw none


def test_the_configured_ca_bundle_wins_over_requests_ca_bundle_through_an_https_proxy(
    tmp_path, upload, sandbox, hostile
):
    """https://crm.example.test through HTTPS_PROXY (a CONNECT tunnel to a TLS server in front
    of the sandbox): [api].ca_bundle verifies, REQUESTS_CA_BUNDLE (another CA) does not
    override it, and the log names the bundle and the proxy."""
    ca, context = certificates(tmp_path, "crm.example.test")
    other_ca, _ = certificates(tmp_path / "other", "elsewhere.test")
    upstream = sandbox()
    tls_server = hostile(upstream=upstream.url, tls=context)
    proxy = hostile(tunnels={"crm.example.test": ("127.0.0.1", tls_server.port)})
    source = write_csv(tmp_path / "customers.csv", ROWS)
    config = CONFIG.format(target="payorcrm", timeout=5, retries=1, fields=FIELDS["payorcrm"])
    config = config.replace("[api]\n", f'[api]\nca_bundle = "{ca}"\n')
    settings = write_mapping(tmp_path / "payor.toml", config)
    env = CREDENTIALS | {"HTTPS_PROXY": proxy.url, "REQUESTS_CA_BUNDLE": str(other_ca)}
    run = invoke(
        tmp_path, "upload", "customers", source, "--config", settings, "--base-url",
        "https://crm.example.test", "--state-dir", tmp_path / "state", env=env,
    )  # fmt: skip
    assert run.code == 0, run.out
    assert [s.path for s in proxy.seen] == ["crm.example.test:443"]  # HTTPS_PROXY is honoured
    assert f"certificates checked against {ca} ([api].ca_bundle)" in run.files["log"]
    assert f"through the proxy 127.0.0.1:{proxy.port}" in run.files["log"]
    assert len(upstream.records("customers")) == 2


def certificates(folder: Path, host: str):
    """A CA's PEM file, and a server context with a certificate for `host` that it signed."""
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test CA for {host}")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = folder / "server.pem"
    chain.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    return ca_file, context
