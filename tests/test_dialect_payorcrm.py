"""The PayorCRM sandbox dialect against its rules (tests/dialect_rules.md, from the "API"
section of payor-cli.md), over raw HTTP: each test names the rule ids it checks."""

from __future__ import annotations

import pytest
import requests
from dialect_http import KEY, SECRET, call, servers

from payor_cli.targets.payorcrm.sandbox import PayorCrmRoutes

CUSTOMERS, INVOICES = "/jsonApi/upload/customers", "/jsonApi/upload/invoices"
AUTH = {"api_key": KEY, "api_secret": SECRET}


@pytest.fixture
def start():
    with servers(PayorCrmRoutes) as make:
        yield make


@pytest.fixture
def server(start):
    return start()


def pc(server, path: str, rows, **options):
    """POST the rows with both credential headers, unless `headers` says otherwise."""
    headers = options.pop("headers", AUTH)
    return call(server, options.pop("method", "POST"), path, rows, headers=headers, **options)


def customer(no: str, **extra) -> dict:
    return {"customerno": no, "emailaddress1": f"{no.lower()}@x.example", **extra}


def invoice(no: str, customer_no: str = "C1", **extra) -> dict:
    return {"customerNumber": customer_no, "invoiceNumber": no, "invoiceAmount": 100, **extra}


def named(answer) -> set[tuple[int, str | None]]:
    """(row, field) of each error a 400 names."""
    assert answer.status == 400, answer.text
    return {(e["index"], e["field"]) for e in answer.json["errors"]}


def test_the_two_upload_paths_take_post_only(server):
    """PC-01"""
    assert pc(server, CUSTOMERS, [customer("C1")]).status == 200
    assert pc(server, INVOICES, [invoice("I1")]).status == 200
    assert pc(server, "/jsonApi/upload/orders", [{}]).status == 404
    wrong = pc(server, CUSTOMERS, None, method="GET")
    assert (wrong.status, wrong.headers["Allow"]) == (405, "POST")


def test_another_content_type_is_415(server):
    """PC-02"""
    answer = requests.post(
        server.url + CUSTOMERS, data=b'[{"customerno":"C1","emailaddress1":"a@x.example"}]',
        headers={**AUTH, "Content-Type": "text/plain"}, timeout=10,
    )  # fmt: skip
    assert answer.status_code == 415 and server.records("customers") == []


@pytest.mark.parametrize("raw", [b'{"customerno": "C1"}', b"[{,}]", b"", b'"text"'])
def test_a_body_that_is_no_array_is_400(server, raw):
    """PC-03"""
    answer = pc(server, CUSTOMERS, None, raw=raw)
    assert answer.status == 400 and answer.json["success"] is False
    assert server.records("customers") == []


def test_an_element_that_is_no_object_is_refused(server):
    """PC-03"""
    assert named(pc(server, CUSTOMERS, [customer("C1"), "C2"])) == {(1, None)}


@pytest.mark.parametrize(
    "headers", [{}, {"api_key": KEY}, {"api_secret": SECRET}, {"api_key": KEY, "api_secret": "x"}]
)
def test_both_credential_headers_are_needed(server, headers):
    """PC-04"""
    assert pc(server, CUSTOMERS, [customer("C1")], headers=headers).status == 401
    assert server.records("customers") == []


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"customerno": "C2"}, "emailaddress1"),
        ({"emailaddress1": "b@x.example"}, "customerno"),
        (customer("C2", emailaddress1="no-at-sign"), "emailaddress1"),
        (customer("C2", phoneno=301234), "phoneno"),
        (customer("C2", fax="1"), "fax"),
    ],
)
def test_a_customer_outside_its_fields_refuses_the_batch(server, row, field):
    """PC-05 PC-09: the 400 names the row and the field."""
    assert named(pc(server, CUSTOMERS, [customer("C1"), row])) == {(1, field)}
    assert server.records("customers") == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"invoiceAmount": "100"}, "invoiceAmount"),
        ({"invoiceAmount": 1.5}, "invoiceAmount"),
        ({"postDate": "01.03.2026"}, "postDate"),
        ({"billAddr": "Berlin"}, "billAddr"),
        ({"balanceAmount": 5}, "balanceAmount"),
        ({"invoiceNumber": ""}, "invoiceNumber"),
    ],
)
def test_an_invoice_outside_its_types_refuses_the_batch(server, change, field):
    """PC-06"""
    pc(server, CUSTOMERS, [customer("C1")])
    assert named(pc(server, INVOICES, [invoice("I1"), invoice("I2", **change)])) == {(1, field)}
    fine = invoice("I3", postDate="2026-03-01", billAddr={"city": "Bonn"}, localAmount=-5)
    assert pc(server, INVOICES, [fine]).status == 200


def test_an_invoice_needs_its_customer_stored_first(server):
    """PC-07"""
    assert named(pc(server, INVOICES, [invoice("I1", "C9")])) == {(0, "customerNumber")}
    pc(server, CUSTOMERS, [customer("C9")])
    assert pc(server, INVOICES, [invoice("I1", "C9")]).status == 200


def test_a_soft_failure_is_a_200_with_success_false(start):
    """PC-08"""
    server = start(fault_rate=1.0, faults=("soft",))
    answer = pc(server, CUSTOMERS, [customer("C1")])
    assert (answer.status, answer.json["success"]) == (200, False)
    assert server.records("customers") == []


def test_without_name_rows_a_400_names_no_row(start):
    """PC-09"""
    server = start(name_rows=False)
    answer = pc(server, CUSTOMERS, [customer("C1"), {"customerno": "C2"}])
    assert answer.status == 400 and "errors" not in answer.json
    assert server.records("customers") == []


def test_above_the_batch_limit_the_answer_is_413(start):
    """PC-10"""
    server = start(max_batch=2)
    assert pc(server, CUSTOMERS, [customer(f"C{n}") for n in range(3)]).status == 413
    assert server.records("customers") == []
    assert pc(server, CUSTOMERS, [customer(f"C{n}") for n in range(2)]).status == 200


@pytest.mark.parametrize("fault", ["429", "500", "502", "503", "504"])
def test_temporary_faults_store_nothing_and_may_say_when(start, fault):
    """PC-11"""
    server = start(fault_rate=1.0, faults=(fault,), rate_limit=100)
    answer = pc(server, CUSTOMERS, [customer("C1")])
    assert answer.status == int(fault)
    assert ("Retry-After" in answer.headers) is (fault in ("429", "503"))
    assert answer.headers["X-RateLimit-Limit"] == "100"
    assert server.records("customers") == []


def test_the_quota_answers_429_with_its_headers(start):
    """PC-11"""
    server = start(rate_limit=1, rate_window=3600)
    assert pc(server, CUSTOMERS, [customer("C1")]).status == 200
    spent = pc(server, CUSTOMERS, [customer("C2")])
    assert spent.status == 429 and spent.headers["X-RateLimit-Remaining"] == "0"
    assert int(spent.headers["Retry-After"]) > 0


def test_the_connection_may_drop(start):
    """PC-12"""
    server = start(fault_rate=1.0, faults=("drop",))
    with pytest.raises(requests.ConnectionError):
        pc(server, CUSTOMERS, [customer("C1")])
    assert server.records("customers") == []


def test_a_stalled_answer_comes_after_the_rows_were_stored(start):
    """PC-13"""
    server = start(stall_rate=1.0, stall_seconds=2.0)
    with pytest.raises(requests.ReadTimeout):
        requests.post(server.url + CUSTOMERS, json=[customer("C1")], headers=AUTH, timeout=0.5)
    assert [c["customerno"] for c in server.records("customers")] == ["C1"]


def test_a_batch_sent_twice_is_stored_once(server):
    """PC-14"""
    rows = [customer("C1", companyname="A"), customer("C2")]
    assert pc(server, CUSTOMERS, rows).status == 200
    rows[0]["companyname"] = "A2"
    assert pc(server, CUSTOMERS, rows).status == 200
    assert [(c["customerno"], c.get("companyname")) for c in server.records("customers")] == [
        ("C1", "A2"), ("C2", None)
    ]  # fmt: skip
