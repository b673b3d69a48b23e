"""A server that echoes the credentials: nothing of them leaves payor. The terminal, the log
file, the JSON report and the rejected-rows file are searched for each secret, its JSON-escaped
and URL-encoded forms, and its first eight characters (what a message cut short keeps)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import write_csv, write_mapping
from hostile_server import CUSTOMER_FIELDS, HostileServer, invoke, json_answer, raw

KEY = "key-Tw5-0a9c-echoed"
SECRET = 'Zq9 "never"  \\shown-5e1f'  # a space, quotes, a backslash, two spaces in a row
USER, PASSWORD = "ops@example.com", 'pw "Mx3"  \\7b2e-echoed'
ROWS = [["No", "Email", "Name"], ["C1", "c1@x.example", "Alpha"], ["C2", "c2@x.example", "Beta"]]
CONFIG = """
[api]
target = "{target}"
timeout = 5
[upload]
max_retries = 1
concurrency = 1
[customers]
[customers.fields]
{fields}
"""
FIELDS = CUSTOMER_FIELDS


def traces(secret: str) -> list[str]:
    """What of a secret must not be found anywhere."""
    return [secret, json.dumps(secret)[1:-1], quote(secret, safe=""), secret[:8]]


def headers_json() -> str:
    return json.dumps({"api_key": KEY, "api_secret": SECRET})


LISTING = {"success": True, "data": [], "meta": {"total_pages": 1}}

CASES = {
    # PayorCRM refuses the rows and quotes the request's headers, as JSON, in its reasons
    "row reasons quote the headers as JSON": (
        "payorcrm",
        lambda seen: json_answer(
            422,
            {
                "errors": [
                    {"index": 0, "message": f"rejected; request headers were {headers_json()}"},
                    {"index": 1, "message": "x" * 280 + SECRET},
                ]
            },
        ),
        1,
    ),
    # no row named: `errors` is an object, JSON-escaped into the message of every row
    "errors object made the message": (
        "payorcrm",
        lambda seen: json_answer(422, {"errors": {"api_secret": f"{SECRET} is expired"}}),
        1,
    ),
    # an unexpected answer aborts: its message, re-spaced and cut, names the secret
    "long message with the secret in it": (
        "payorcrm",
        lambda seen: json_answer(
            418, {"message": "lorem ipsum " * 12 + f"\n  {SECRET}\t and more"}
        ),
        3,
    ),
    "message cut by payor inside the secret": (
        "payorcrm",
        lambda seen: json_answer(418, {"message": "y" * 290 + SECRET}),
        3,
    ),
    "message cut by the server inside the secret": (
        "payorcrm",
        lambda seen: json_answer(418, {"message": f"api_secret {SECRET[:11]}…"}),
        3,
    ),
    "an HTML page and URL-encoded text": (
        "payorcrm",
        lambda seen: raw(
            418,
            f"<html><title>Denied {SECRET}</title><body>q={quote(SECRET)}</body></html>".encode(),
            "text/html",
        ),
        3,
    ),
    "plain text with the key URL-encoded": (
        "payorcrm",
        lambda seen: raw(
            418, f"bad request ?api_key={quote(KEY)}&s={quote(SECRET)}".encode(), "text/plain"
        ),
        3,
    ),
    # the status line's own phrase, and a message that echoes the key in capitals
    "status line and capitals": (
        "payorcrm",
        lambda seen: raw(418, b"", "text/plain", reason=f"Teapot for {SECRET}"),
        3,
    ),
    "the key in capitals": (
        "payorcrm",
        lambda seen: json_answer(418, {"message": f"API_KEY={KEY.upper()} is not known"}),
        3,
    ),
    # business-suite: its 422 `errors` name fields; a field and a message quote the key
    "business-suite field errors": (
        "business-suite",
        lambda seen: (
            json_answer(200, LISTING)
            if seen.method == "GET"
            else json_answer(
                422,
                {
                    "success": False,
                    "message": "Validation failed",
                    "errors": {f"customers.0.{KEY}": [f"token {KEY} unknown"], "email": SECRET},
                },
            )
        ),
        1,
    ),
    # onlyoffice: the sign-in's error quotes the request's body, password and all
    "onlyoffice sign-in quotes the password": (
        "onlyoffice",
        lambda seen: json_answer(
            418, {"status": 1, "error": {"message": f"no such user: {seen.body.decode()}"}}
        ),
        3,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_secret_the_server_echoes_is_never_shown_or_written(case, tmp_path: Path):
    target, answer, code = CASES[case]
    source = write_csv(tmp_path / "customers.csv", ROWS)
    config = write_mapping(
        tmp_path / "payor.toml", CONFIG.format(target=target, fields=FIELDS[target])
    )
    env = {"PAYOR_API_KEY": KEY, "PAYOR_API_SECRET": SECRET}
    if target == "onlyoffice":
        env = {"PAYOR_API_USER": USER, "PAYOR_API_PASSWORD": PASSWORD}
    with HostileServer(answer) as server:
        run = invoke(
            tmp_path, "upload", "customers", source, "--config", config, "--base-url",
            server.url, "--state-dir", tmp_path / "state", env=env,
        )  # fmt: skip
        assert server.seen, "the server was asked"
    assert run.code == code, run.out
    assert {"report", "log"} <= set(run.files)
    assert "***" in run.everything  # the echo was there, hidden
    for secret in (KEY, SECRET, PASSWORD):
        for trace in traces(secret):
            found = trace.casefold() in run.everything.casefold()
            assert not found, f"{trace!r} in the output:\n{run.everything}"


def test_a_word_that_ends_like_a_short_piece_of_a_secret_is_left_whole(tmp_path: Path):
    """A file called `contest` beside the key `test-key-…`: four letters of a secret at a
    text's end are no cut secret (a piece is hidden from 8 characters and half the secret)."""
    source = write_csv(tmp_path / "contest", ROWS)
    config = write_mapping(
        tmp_path / "payor.toml", CONFIG.format(target="payorcrm", fields=FIELDS["payorcrm"])
    )
    env = {"PAYOR_API_KEY": "test-key-5f2c", "PAYOR_API_SECRET": SECRET}
    run = invoke(tmp_path, "upload", "customers", source, "--config", config, "--dry-run", env=env)
    assert run.code == 0, run.out
    assert json.loads(run.files["report"])["file"] == str(source)
