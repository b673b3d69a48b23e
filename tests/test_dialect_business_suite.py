"""The business-suite sandbox dialect against its rules (tests/dialect_rules.md), over raw HTTP:
each test names the rule ids it checks."""

from __future__ import annotations

import time

import pytest
import requests
from dialect_http import KEY, call, servers

from payor_cli.targets.business_suite.sandbox import BusinessSuiteRoutes

API = "/api/v2"
AUTH = {"Authorization": f"Bearer {KEY}"}
DROP = "(not sent)"
LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.fixture
def start():
    with servers(BusinessSuiteRoutes) as make:
        yield make


@pytest.fixture
def server(start):
    return start()


def bs(server, method: str, path: str, body=None, **options):
    """A request with the key, unless `headers` says otherwise."""
    return call(server, method, API + path, body, headers=options.pop("headers", AUTH), **options)


def customer(n: int, **extra) -> dict:
    return {"account": f"Firma {n}", "email": f"c{n}@x.example", **extra}


def create_customers(server, *people: dict) -> list[int]:
    answer = bs(server, "POST", "/batch/customers", {"customers": list(people)})
    assert answer.status == 201, answer.text
    return [c["id"] for c in answer.json["data"]]


def invoice(number: str, customer_id: int, **extra) -> dict:
    items = [{"description": "Work", "amount": 10.5, "qty": 2}]
    return {"invoice_number": number, "customer_id": customer_id, "date": "2026-03-01",
            "items": items, **extra}  # fmt: skip


def refused_fields(answer) -> set[str]:
    assert answer.status == 422, answer.text
    assert answer.json["success"] is False and answer.json["message"] == "Validation failed"
    return set(answer.json["errors"])


def test_unnamed_paths_are_404_and_other_methods_405(server):
    """BS-01"""
    assert bs(server, "GET", "/nothing").status == 404
    assert call(server, "GET", "/api/v1/customers", headers=AUTH).status == 404
    wrong = bs(server, "GET", "/batch/customers")
    assert (wrong.status, wrong.headers["Allow"]) == (405, "POST")
    assert bs(server, "DELETE", "/invoices").status == 405
    assert bs(server, "GET", "/nothing").json == {
        "success": False, "message": "no such endpoint: GET /api/v2/nothing"
    }  # fmt: skip


@pytest.mark.parametrize("headers", [{}, {"Authorization": KEY}, {"Authorization": "Bearer no"}])
def test_without_the_bearer_key_the_answer_is_401_and_nothing_is_stored(server, headers):
    """BS-02"""
    for method, path, body in [
        ("POST", "/batch/customers", {"customers": [customer(1)]}),
        ("GET", "/customers", None),
        ("POST", "/invoices", invoice("R-1", 1)),
    ]:
        answer = bs(server, method, path, body, headers=headers)
        assert answer.status == 401
        assert answer.json == {
            "success": False, "message": "Invalid API key or unauthorized access"
        }  # fmt: skip
    assert server.records("customers") == [] and server.records("invoices") == []


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"email": "a@x.example"}, "account"),
        ({"account": "  ", "email": "a@x.example"}, "account"),
        ({"account": "A"}, "email"),
        ({"account": "A", "email": "no-at-sign"}, "email"),
        ({"account": "A", "email": "a b@x.example"}, "email"),
        ({"account": "A", "email": "a@x.example", "phone": 301234}, "phone"),
        ({"account": "A", "email": "a@x.example", "fax": "1"}, "fax"),
    ],
)
def test_a_customer_outside_its_fields_is_refused(server, row, field):
    """BS-03 BS-15: the batch's FIELD is customers.INDEX.NAME."""
    answer = bs(server, "POST", "/batch/customers", {"customers": [customer(1), row]})
    assert refused_fields(answer) == {f"customers.1.{field}"}
    assert server.records("customers") == []


def test_an_email_is_a_key_in_any_case(server):
    """BS-04 COMMON-06"""
    twice = [customer(1), {"account": "B", "email": "C1@X.example"}]
    assert refused_fields(bs(server, "POST", "/batch/customers", {"customers": twice})) == {
        "customers.1.email"
    }
    create_customers(server, customer(1))
    later = {"customers": [customer(2), {"account": "B", "email": "C1@x.EXAMPLE"}]}
    assert refused_fields(bs(server, "POST", "/batch/customers", later)) == {"customers.1.email"}
    assert [c["email"] for c in server.records("customers")] == ["c1@x.example"]


def test_the_customer_list_pages_every_customer(server):
    """BS-05"""
    people = [customer(n, city="Köln") for n in range(150)]
    ids = create_customers(server, *people[:100]) + create_customers(server, *people[100:])
    first = bs(server, "GET", "/customers", params={"page": "1", "limit": "100"})
    second = bs(server, "GET", "/customers", params={"page": "2", "limit": "100"})
    assert first.status == second.status == 200
    assert first.json["meta"] == {"current_page": 1, "total_pages": 2, "total_records": 150}
    assert second.json["meta"] == {"current_page": 2, "total_pages": 2, "total_records": 150}
    listed = first.json["data"] + second.json["data"]
    assert first.json["success"] is True and len(first.json["data"]) == 100
    assert [(c["id"], c["account"], c["email"], c["city"]) for c in listed] == [
        (i, p["account"], p["email"], "Köln") for i, p in zip(ids, people, strict=True)
    ]


def test_a_batch_create_answers_201_with_the_ids_in_order(server):
    """BS-06 COMMON-01"""
    people = [customer(3, phone="+49 1"), customer(1), customer(2)]
    answer = bs(server, "POST", "/batch/customers", {"customers": people})
    assert answer.status == 201 and answer.json["success"] is True
    data = answer.json["data"]
    assert [(c["account"], c["email"]) for c in data] == [
        (p["account"], p["email"]) for p in people
    ]
    assert len({c["id"] for c in data}) == 3
    stored = {c["id"]: c for c in server.records("customers")}
    assert [stored[c["id"]]["email"] for c in data] == [p["email"] for p in people]
    assert stored[data[0]["id"]]["phone"] == "+49 1"


def test_more_than_100_customers_a_batch_are_413(server):
    """BS-07"""
    answer = bs(
        server, "POST", "/batch/customers", {"customers": [customer(n) for n in range(101)]}
    )
    assert answer.status == 413 and answer.json["success"] is False
    assert server.records("customers") == []
    assert len(create_customers(server, *[customer(n) for n in range(100)])) == 100


def test_a_put_replaces_the_customer_with_the_whole_object(server):
    """BS-08 BS-16"""
    (cid,) = create_customers(server, customer(1, phone="+49 1", city="Bonn"))
    answer = bs(server, "PUT", f"/customers/{cid}", {"account": "Neu", "email": "c1@x.example"})
    assert answer.status == 200 and answer.json["success"] is True
    assert (answer.json["data"]["id"], answer.json["data"]["account"]) == (cid, "Neu")
    (stored,) = server.records("customers")
    assert (stored["account"], "phone" in stored, "city" in stored) == ("Neu", False, False)
    assert refused_fields(bs(server, "PUT", f"/customers/{cid}", {"email": "c1@x.example"})) == {
        "account"
    }
    assert bs(server, "PUT", "/customers/999999", customer(1)).status == 404
    assert bs(server, "GET", "/customers/999999").status == 404
    assert server.records("customers")[0]["account"] == "Neu"


def test_an_invoice_is_created_201_with_its_id(server):
    """BS-09 COMMON-01 COMMON-04: a credit line's negative amount is stored as sent."""
    (cid,) = create_customers(server, customer(1))
    body = invoice("R-1", cid, due_date="2026-03-31", notes="Danke")
    body["items"].append({"description": "Gutschrift", "amount": -3.25, "qty": 1})
    answer = bs(server, "POST", "/invoices", body)
    assert answer.status == 201 and answer.json["success"] is True
    data = answer.json["data"]
    assert data["invoice_number"] == "R-1" and isinstance(data["id"], int)
    (stored,) = server.records("invoices")
    assert stored["id"] == data["id"]
    assert {k: stored[k] for k in body} == body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"invoice_number": DROP}, "invoice_number"),
        ({"invoice_number": " "}, "invoice_number"),
        ({"customer_id": DROP}, "customer_id"),
        ({"customer_id": 999999}, "customer_id"),
        ({"customer_id": "1"}, "customer_id"),
        ({"date": DROP}, "date"),
        ({"date": "01.03.2026"}, "date"),
        ({"date": "2026-03-01T00:00:00"}, "date"),
        ({"date": "2026-02-30"}, "date"),
        ({"due_date": "2026-13-01"}, "due_date"),
        ({"due_date": None}, "due_date"),
        ({"notes": 5}, "notes"),
        ({"customer": "c1@x.example"}, "customer"),
        ({"items": []}, "items"),
    ],
)
def test_an_invoice_outside_its_fields_is_refused(server, change, field):
    """BS-10 COMMON-05"""
    (cid,) = create_customers(server, customer(1))
    body = {k: v for k, v in {**invoice("R-1", cid), **change}.items() if v != DROP}
    assert refused_fields(bs(server, "POST", "/invoices", body)) == {field}
    assert server.records("invoices") == []


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"amount": 1.0}, "description"),
        ({"description": "", "amount": 1.0}, "description"),
        ({"description": "A"}, "amount"),
        ({"description": "A", "amount": "10.00"}, "amount"),
        ({"description": "A", "amount": True}, "amount"),
        ({"description": "A", "amount": 1.005}, "amount"),
        ({"description": "A", "amount": 1.0, "qty": "2"}, "qty"),
        ({"description": "A", "amount": 1.0, "price": 1.0}, "price"),
    ],
)
def test_a_line_outside_its_fields_is_refused(server, line, field):
    """BS-11 COMMON-02 COMMON-03: money and quantities are JSON numbers, 2 places for money."""
    (cid,) = create_customers(server, customer(1))
    body = invoice("R-1", cid, items=[{"description": "ok", "amount": 1.0}, line])
    assert refused_fields(bs(server, "POST", "/invoices", body)) == {f"items.1.{field}"}


def test_a_line_without_qty_is_taken(server):
    """BS-11"""
    (cid,) = create_customers(server, customer(1))
    raw = b'{"invoice_number":"R-1","customer_id":%d,"date":"2026-03-01",' % cid
    raw += b'"items":[{"description":"A","amount":1500.00}]}'
    assert bs(server, "POST", "/invoices", raw=raw).status == 201
    assert server.records("invoices")[0]["items"] == [{"description": "A", "amount": 1500.0}]


def test_a_second_invoice_of_a_number_is_409(server):
    """BS-12 BS-18"""
    (cid,) = create_customers(server, customer(1))
    assert bs(server, "POST", "/invoices", invoice("R-1", cid)).status == 201
    again = bs(server, "POST", "/invoices", invoice("R-1", cid, notes="other"))
    assert again.status == 409 and again.json["success"] is False
    assert all(name in again.headers for name in LIMIT_HEADERS)
    assert len(server.records("invoices")) == 1 and "notes" not in server.records("invoices")[0]


def test_the_invoice_list_of_a_customer_holds_only_its_invoices(server):
    """BS-13"""
    a, b = create_customers(server, customer(1), customer(2))
    for number, cid in [("R-1", a), ("R-2", b), ("R-3", a)]:
        assert bs(server, "POST", "/invoices", invoice(number, cid)).status == 201
    answer = bs(server, "GET", "/invoices", params={"customer_id": str(a), "limit": "100"})
    assert answer.status == 200
    assert [i["invoice_number"] for i in answer.json["data"]] == ["R-1", "R-3"]
    assert answer.json["meta"] == {"current_page": 1, "total_pages": 1, "total_records": 2}


def test_an_invoice_cannot_be_updated(server):
    """BS-14"""
    (cid,) = create_customers(server, customer(1))
    iid = bs(server, "POST", "/invoices", invoice("R-1", cid)).json["data"]["id"]
    assert bs(server, "PUT", f"/invoices/{iid}", invoice("R-1", cid, notes="x")).status == 404
    assert bs(server, "PUT", "/invoices", invoice("R-1", cid, notes="x")).status == 405
    assert "notes" not in server.records("invoices")[0]


def test_a_body_that_is_no_json_is_400_in_the_validation_shape(server):
    """BS-15"""
    answer = bs(server, "POST", "/batch/customers", raw=b'{"customers": [,]}')
    assert answer.status == 400
    assert answer.json["success"] is False and answer.json["message"] == "Validation failed"
    assert set(answer.json["errors"]) == {"body"}
    assert server.stats()["malformed_bodies"] == 1


@pytest.mark.parametrize("fault", ["500", "502", "503", "504", "429", "soft"])
def test_an_injected_fault_stores_nothing_and_keeps_the_shape_and_headers(start, fault):
    """BS-17 BS-18: 5xx and 429 are temporary; they carry the quota headers too."""
    server = start(fault_rate=1.0, faults=(fault,))
    answer = bs(server, "POST", "/batch/customers", {"customers": [customer(1)]})
    assert answer.status == (200 if fault == "soft" else int(fault))
    assert answer.json["success"] is False and answer.json["message"]
    assert [answer.headers.get(n) is not None for n in LIMIT_HEADERS] == [True] * 3
    assert answer.headers["X-RateLimit-Limit"] == "1000"
    assert server.records("customers") == []


def test_every_answer_carries_the_quota_headers(start):
    """BS-18: successes, refusals, unknown paths, a refused body, the quota's 429."""
    server = start(rate_limit=50, rate_window=3600)
    (cid,) = create_customers(server, customer(1))
    answers = [
        bs(server, "GET", "/customers"),
        bs(server, "POST", "/invoices", invoice("R-1", cid)),
        bs(server, "POST", "/invoices", invoice("R-1", cid)),  # 409
        bs(server, "POST", "/batch/customers", {"customers": [{}]}),  # 422
        bs(server, "POST", "/batch/customers", {"customers": [customer(n) for n in range(101)]}),
        bs(server, "GET", "/customers", headers={}),  # 401
        bs(server, "GET", "/nothing"),  # 404
        bs(server, "PUT", "/customers"),  # 405
        bs(server, "PUT", "/customers/999999", customer(1)),  # 404
        bs(server, "POST", "/invoices", raw=b"{"),  # 400
    ]
    chunked = requests.post(
        server.url + API + "/invoices", data=iter([b"{}"]), headers=AUTH, timeout=10
    )
    assert chunked.status_code == 411
    assert sorted({a.status for a in answers}) == [200, 201, 400, 401, 404, 405, 409, 413, 422]
    for answer in [*answers, chunked]:
        assert all(name in answer.headers for name in LIMIT_HEADERS), answer.status
    while (spent := bs(server, "GET", "/customers")).status != 429:
        assert int(spent.headers["X-RateLimit-Remaining"]) >= 0
    assert all(name in spent.headers for name in LIMIT_HEADERS)


def test_reset_is_the_unix_time_of_the_windows_end(server):
    """BS-19 BS-20: the documented quota, 1000 an hour."""
    before = time.time()
    first, second = bs(server, "GET", "/customers"), bs(server, "GET", "/customers")
    after = time.time()
    assert [first.headers["X-RateLimit-Limit"], second.headers["X-RateLimit-Limit"]] == ["1000"] * 2
    assert (first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]) == (
        "999", "998"
    )  # fmt: skip
    reset = first.headers["X-RateLimit-Reset"]
    assert reset.isdigit() and second.headers["X-RateLimit-Reset"] == reset
    assert before < int(reset) <= after + 3600 + 1


def test_past_the_quota_the_answer_is_429_until_the_window_ends(start):
    """BS-20: no Retry-After, Remaining 0; the next window serves again."""
    server = start(rate_limit=2, rate_window=1.0)
    spent = [bs(server, "GET", "/customers") for _ in range(3)]
    assert [a.status for a in spent] == [200, 200, 429]
    assert spent[2].headers["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in spent[2].headers
    assert server.stats()["rate_limited"] == 1
    while time.time() < int(spent[2].headers["X-RateLimit-Reset"]):
        time.sleep(0.05)
    again = bs(server, "GET", "/customers")
    assert again.status == 200 and again.headers["X-RateLimit-Remaining"] == "1"


def test_a_field_not_sent_is_absent_and_an_empty_string_is_counted(server):
    """COMMON-07"""
    create_customers(server, customer(1, city="Bonn"), customer(2, phone="", city="Ulm"))
    first, second = server.records("customers")
    assert "phone" not in first and "address" not in first
    assert second["phone"] == ""  # stored as a real server would, and seen in the stats
    assert server.stats()["empty_strings"] == {"POST /api/v2/batch/customers customers[].phone": 1}
