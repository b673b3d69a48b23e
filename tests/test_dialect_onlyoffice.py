"""The onlyoffice sandbox dialect against its rules (tests/dialect_rules.md), over raw HTTP:
each test names the rule ids it checks."""

from __future__ import annotations

import pytest
from dialect_http import KEY, SECRET, USER, call, servers

from payor_cli.targets.onlyoffice.sandbox import OnlyOfficeRoutes

API = "/api/2.0"
TOKEN = {"Authorization": KEY}
DROP = "(not sent)"
SERVICES, VAT19 = 100, 200  # the sandbox's first invoice item and tax


@pytest.fixture
def start():
    with servers(OnlyOfficeRoutes) as make:
        yield make


@pytest.fixture
def server(start):
    return start()


def oo(server, method: str, path: str, body=None, **options):
    """A request with the token, unless `headers` says otherwise."""
    return call(server, method, API + path, body, headers=options.pop("headers", TOKEN), **options)


def refused(answer, status: int = 400) -> str:
    """The error envelope's message, after checking the envelope."""
    assert answer.status == status, answer.text
    body = answer.json
    assert set(body) == {"status", "statusCode", "error"}, body
    assert (body["status"], body["statusCode"]) == (1, status)
    assert set(body["error"]) == {"message"}
    return body["error"]["message"]


def company(server, name: str, email: str | None = None) -> int:
    answer = oo(server, "POST", "/crm/contact/company", {"companyName": name})
    assert answer.status == 201, answer.text
    cid = answer.json["response"]["id"]
    if email is not None:
        data = {"infoType": "Email", "data": email, "isPrimary": True, "category": "Work"}
        assert oo(server, "POST", f"/crm/contact/{cid}/data", data).status == 201
    return cid


def line(**extra) -> dict:
    return {"invoiceItemID": SERVICES, "invoiceTax1ID": 0, "invoiceTax2ID": 0,
            "description": "Work", "quantity": 2, "price": 10.5, "discount": 0, **extra}  # fmt: skip


def invoice(number: str, contact_id: int, **extra) -> dict:
    body = {"number": number, "issueDate": "2026-03-01T00:00:00",
            "dueDate": "2026-03-31T00:00:00", "contactId": contact_id, "currency": "EUR",
            "exchangeRate": 1, "terms": "30 days", "templateType": 0, "invoiceLines": [line()],
            **extra}  # fmt: skip
    return {k: v for k, v in body.items() if v != DROP}


def test_unnamed_paths_are_404_in_the_error_envelope(server):
    """OO-01 OO-03"""
    assert refused(oo(server, "GET", "/crm/nothing"), 404)
    assert refused(call(server, "GET", "/api/1.0/crm/invoice/tax", headers=TOKEN), 404)


def test_every_answer_is_the_envelope(server):
    """OO-02"""
    cid = company(server, "Acme")
    currencies = oo(server, "GET", "/crm/settings/currency")
    assert currencies.status == 200
    body = currencies.json
    assert (body["status"], body["statusCode"], body["count"]) == (0, 200, len(body["response"]))
    created = oo(server, "POST", "/crm/invoice", invoice("RE-1", cid))
    assert (created.json["status"], created.json["statusCode"], created.json["count"]) == (
        0,
        201,
        1,
    )


def test_an_error_names_no_field(start):
    """OO-03 OO-22: every refusal, also the generic server's, is the error envelope."""
    server = start(rate_limit=8, rate_window=3600, sent_invoices="^SENT")
    cid = company(server, "Acme")
    sent = oo(server, "POST", "/crm/invoice", invoice("SENT-1", cid)).json["response"]["id"]
    messages = [
        refused(oo(server, "POST", "/crm/invoice", invoice("RE-1", cid, terms=DROP))),
        refused(oo(server, "POST", "/crm/invoice", raw=b"{")),
        refused(oo(server, "GET", "/crm/invoice/tax", headers={}), 401),
        refused(oo(server, "PUT", f"/crm/invoice/{sent}", invoice("SENT-1", cid)), 403),
        refused(oo(server, "GET", "/crm/invoice/bynumber", params={"number": "x"}), 404),
        refused(oo(server, "DELETE", "/crm/invoice"), 405),
    ]
    assert not any("terms" in m.lower() for m in messages)
    while (spent := oo(server, "GET", "/crm/invoice/tax")).status != 429:
        assert spent.status == 200
    assert refused(spent, 429)
    assert server.stats()["malformed_bodies"] == 1


def test_a_sign_in_gives_the_token(server):
    """OO-04"""
    answer = oo(
        server, "POST", "/authentication", {"userName": USER, "password": SECRET}, headers={}
    )
    assert answer.status == 201 and answer.json["response"]["token"] == KEY
    wrong = {"userName": USER, "password": "nope"}
    assert refused(oo(server, "POST", "/authentication", wrong, headers={}), 401)
    other = {"userName": "someone", "password": SECRET}
    assert refused(oo(server, "POST", "/authentication", other, headers={}), 401)


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "other"}, {"Authorization": f"Bearer {KEY}"}]
)
def test_without_the_token_every_request_is_401(server, headers):
    """OO-05"""
    assert refused(
        oo(server, "POST", "/crm/contact/company", {"companyName": "A"}, headers=headers), 401
    )
    assert refused(oo(server, "GET", "/crm/settings/currency", headers=headers), 401)
    assert server.records("customers") == []


@pytest.mark.parametrize(
    "body", [{}, {"companyName": ""}, {"companyName": " "}, {"companyName": 5}]
)
def test_a_company_needs_its_name(server, body):
    """OO-06"""
    assert refused(oo(server, "POST", "/crm/contact/company", body))
    assert server.records("customers") == []


def test_contact_data_is_stored_on_its_company(server):
    """OO-06 OO-07 COMMON-01"""
    cid = company(server, "Acme", "info@acme.example")
    phone = {"infoType": "Phone", "data": "+49 30 1", "isPrimary": True, "category": "Work"}
    assert oo(server, "POST", f"/crm/contact/{cid}/data", phone).status == 201
    (stored,) = server.records("customers")
    assert (stored["id"], stored["companyName"]) == (cid, "Acme")
    assert [(d["infoType"], d["data"]) for d in stored["commonData"]] == [
        ("Email", "info@acme.example"), ("Phone", "+49 30 1")
    ]  # fmt: skip
    for bad in [{**phone, "infoType": "Fax"}, {**phone, "data": ""},
                {**phone, "infoType": "Email", "data": "no-at-sign"}]:  # fmt: skip
        assert refused(oo(server, "POST", f"/crm/contact/{cid}/data", bad))
    assert refused(oo(server, "POST", "/crm/contact/999999/data", phone), 404)
    assert len(server.records("customers")[0]["commonData"]) == 2


def test_a_primary_item_replaces_the_old_one_of_its_type(server):
    """OO-08"""
    cid = company(server, "Acme", "old@acme.example")
    new = {"infoType": "Email", "data": "new@acme.example", "isPrimary": True, "category": "Work"}
    assert oo(server, "POST", f"/crm/contact/{cid}/data", new).status == 201
    assert [d["data"] for d in server.records("customers")[0]["commonData"]] == ["new@acme.example"]


def test_an_address_is_stored_with_exactly_the_parts_sent(server):
    """OO-09 COMMON-07"""
    cid = company(server, "Acme", "a@acme.example")
    address = {"city": "Berlin", "zip": "10115", "category": "Billing", "isPrimary": True}
    answer = oo(server, "POST", f"/crm/contact/{cid}/addressdata", {"address": address})
    assert answer.status == 201
    assert server.records("customers")[0]["addresses"] == [address]
    for bad in [{**address, "street2": "x"}, {**address, "zip": 10115}]:
        assert refused(oo(server, "POST", f"/crm/contact/{cid}/addressdata", {"address": bad}))
    assert refused(oo(server, "POST", f"/crm/contact/{cid}/addressdata", address))
    assert server.records("customers")[0]["addresses"] == [address]
    assert server.stats()["empty_strings"] == {}


def test_an_empty_address_part_is_stored_and_counted(server):
    """COMMON-07: the portal keeps a "" it is sent; the stats show it arrived."""
    cid = company(server, "Acme", "a@acme.example")
    address = {"street": "", "city": "Berlin", "category": "Billing", "isPrimary": True}
    assert oo(server, "POST", f"/crm/contact/{cid}/addressdata", {"address": address}).status == 201
    assert server.records("customers")[0]["addresses"] == [address]
    assert server.stats()["empty_strings"] == {
        "POST /api/2.0/crm/contact/{id}/addressdata address.street": 1
    }


def test_the_look_up_by_email_matches_substrings_in_any_case(server):
    """OO-10 COMMON-06: the client must compare exactly."""
    a, b = company(server, "A", "a@x.example"), company(server, "B", "ba@x.example")
    company(server, "C", "c@x.example")
    found = oo(server, "GET", "/crm/contact/bycontactinfo",
               params={"infoType": "Email", "data": "A@X.example"})  # fmt: skip
    assert found.status == 200 and sorted(c["id"] for c in found.json["response"]) == [a, b]
    assert found.json["count"] == 2


def test_the_look_up_by_name_matches_substrings(server):
    """OO-11"""
    a, b = company(server, "Acme"), company(server, "Acme Holding")
    company(server, "Other")
    found = oo(server, "GET", "/crm/contact/filter",
               params={"filterValue": "Acme", "contactListView": "company"})  # fmt: skip
    assert sorted(c["id"] for c in found.json["response"]) == [a, b]


def test_a_company_is_renamed_by_put(server):
    """OO-12"""
    cid = company(server, "Acme", "a@acme.example")
    answer = oo(server, "PUT", f"/crm/contact/company/{cid}", {"companyName": "Acme AG"})
    assert answer.status == 200 and server.records("customers")[0]["companyName"] == "Acme AG"
    assert refused(oo(server, "PUT", "/crm/contact/company/999999", {"companyName": "X"}), 404)
    assert refused(oo(server, "PUT", f"/crm/contact/company/{cid}", {"companyName": ""}))


@pytest.mark.parametrize(
    "change",
    [{"number": DROP}, {"number": ""}, {"contactId": DROP}, {"contactId": 999999},
     {"issueDate": DROP}, {"dueDate": DROP}, {"issueDate": "2026-03-01"},
     {"dueDate": "01.03.2026T00:00:00"}, {"issueDate": "2026-02-30T00:00:00"},
     {"currency": DROP}, {"currency": "XYZ"}, {"terms": DROP}, {"terms": " "}],
)  # fmt: skip
def test_an_invoice_without_its_required_fields_is_refused(server, change):
    """OO-13 COMMON-05"""
    cid = company(server, "Acme")
    body = {k: v for k, v in {**invoice("RE-1", cid), **change}.items() if v != DROP}
    assert refused(oo(server, "POST", "/crm/invoice", body))
    assert server.records("invoices") == []


def test_a_number_is_unique_in_the_portal(server):
    """OO-14"""
    cid = company(server, "Acme")
    assert oo(server, "POST", "/crm/invoice", invoice("RE-1", cid)).status == 201
    assert refused(oo(server, "POST", "/crm/invoice", invoice("RE-1", cid, terms="other")))
    assert [i["terms"] for i in server.records("invoices")] == ["30 days"]


def test_omitted_defaults_are_taken(server):
    """OO-15 OO-16: no exchangeRate, templateType, discount, tax ids or quantity."""
    cid = company(server, "Acme")
    bare = {"invoiceItemID": SERVICES, "price": 10.0}
    body = invoice("RE-1", cid, exchangeRate=DROP, templateType=DROP, invoiceLines=[bare])
    assert oo(server, "POST", "/crm/invoice", body).status == 201
    assert server.records("invoices")[0]["invoiceLines"] == [bare]


@pytest.mark.parametrize(
    "change",
    [{"price": DROP}, {"price": "10.50"}, {"price": False}, {"discount": 101}, {"discount": -1},
     {"invoiceItemID": 999}, {"invoiceItemID": DROP}, {"invoiceTax1ID": 999},
     {"invoiceTax2ID": 999}, {"quantity": "2"}, {"discount": "5"}, {"description": 5},
     {"item": "Services"}],
)  # fmt: skip
def test_a_line_outside_its_rules_is_refused(server, change):
    """OO-16 COMMON-02 COMMON-03"""
    cid = company(server, "Acme")
    bad = {k: v for k, v in line(**change).items() if v != DROP}
    assert refused(
        oo(server, "POST", "/crm/invoice", invoice("RE-1", cid, invoiceLines=[line(), bad]))
    )
    assert server.records("invoices") == []


def test_a_string_exchange_rate_is_refused_and_a_credit_line_stored(server):
    """COMMON-03 COMMON-04"""
    cid = company(server, "Acme")
    assert refused(oo(server, "POST", "/crm/invoice", invoice("RE-1", cid, exchangeRate="1")))
    credit = line(price=-25.5, invoiceTax1ID=VAT19)
    assert (
        oo(server, "POST", "/crm/invoice", invoice("RE-2", cid, invoiceLines=[credit])).status
        == 201
    )
    assert server.records("invoices")[0]["invoiceLines"] == [credit]


def test_the_portals_items_taxes_and_currencies(start):
    """OO-17"""
    server = start(items=("Services", "Web Services", "Hardware"), taxes=("VAT 19%:19",))
    items = oo(server, "GET", "/crm/invoiceitem/filter", params={"filterValue": "Services"})
    assert [i["title"] for i in items.json["response"]] == ["Services", "Web Services"]
    taxes = oo(server, "GET", "/crm/invoice/tax").json["response"]
    assert [(t["id"], t["name"], t["rate"]) for t in taxes] == [(VAT19, "VAT 19%", 19)]
    codes = [
        c["abbreviation"] for c in oo(server, "GET", "/crm/settings/currency").json["response"]
    ]
    assert "EUR" in codes and "XYZ" not in codes


def test_a_new_invoice_is_201_draft_with_its_id(server):
    """OO-18 COMMON-01"""
    cid = company(server, "Acme")
    body = invoice("RE-1", cid, language="de", purchaseOrderNumber="PO-7", description="März")
    answer = oo(server, "POST", "/crm/invoice", body)
    assert answer.status == 201
    created = answer.json["response"]
    assert created["status"]["id"] == 1 and isinstance(created["id"], int)
    (stored,) = server.records("invoices")
    assert stored == {**body, "id": created["id"], "status": {"id": 1}}
    assert refused(oo(server, "POST", "/crm/invoice", invoice("RE-2", cid, contact="Acme")))


def test_the_look_up_by_number_is_exact(server):
    """OO-19"""
    cid = company(server, "Acme")
    iid = oo(server, "POST", "/crm/invoice", invoice("RE-10", cid)).json["response"]["id"]
    found = oo(server, "GET", "/crm/invoice/bynumber", params={"number": "RE-10"})
    assert (found.json["response"]["id"], found.json["response"]["status"]["id"]) == (iid, 1)
    assert refused(oo(server, "GET", "/crm/invoice/bynumber", params={"number": "RE-1"}), 404)


def test_a_draft_is_updated_by_put_and_keeps_its_number(server):
    """OO-20"""
    cid = company(server, "Acme")
    iid = oo(server, "POST", "/crm/invoice", invoice("RE-1", cid)).json["response"]["id"]
    body = invoice(DROP, cid, terms="14 days", invoiceLines=[line(price=99.0)])  # no number
    assert oo(server, "PUT", f"/crm/invoice/{iid}", body).status == 200
    (stored,) = server.records("invoices")
    assert (stored["number"], stored["terms"], stored["invoiceLines"][0]["price"]) == (
        "RE-1", "14 days", 99.0
    )  # fmt: skip
    assert refused(oo(server, "PUT", "/crm/invoice/999999", body), 404)


def test_a_sent_invoice_cannot_be_changed(start):
    """OO-21"""
    server = start(sent_invoices="^RE-")
    cid = company(server, "Acme")
    iid = oo(server, "POST", "/crm/invoice", invoice("RE-1", cid)).json["response"]["id"]
    assert refused(oo(server, "PUT", f"/crm/invoice/{iid}", invoice("RE-1", cid, terms="x")), 403)
    assert server.records("invoices")[0]["terms"] == "30 days"


@pytest.mark.parametrize("fault", ["429", "503", "500", "502", "504"])
def test_faults_are_envelopes_and_429_503_carry_retry_after(start, fault):
    """OO-22 OO-03"""
    server = start(fault_rate=1.0, faults=(fault,))
    answer = oo(server, "POST", "/crm/contact/company", {"companyName": "Acme"})
    assert refused(answer, int(fault))
    assert ("Retry-After" in answer.headers) is (fault in ("429", "503"))
    assert not [h for h in answer.headers if h.lower().startswith("x-ratelimit")]
    assert server.records("customers") == []


def test_the_quotas_429_carries_retry_after_and_no_ratelimit_headers(start):
    """OO-22"""
    server = start(rate_limit=1, rate_window=3600)
    first, second = (oo(server, "GET", "/crm/invoice/tax") for _ in range(2))
    assert first.status == 200 and refused(second, 429)
    assert int(second.headers["Retry-After"]) > 0
    assert not [h for h in [*first.headers, *second.headers] if h.lower().startswith("x-ratelimit")]
