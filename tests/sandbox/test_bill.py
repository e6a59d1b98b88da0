"""The BILL emulator's documented behaviours, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from airflow_provider_mlconnector.sandbox.bill import (
    SANDBOX_DEV_KEY,
    SANDBOX_ORGANIZATION_ID,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    BillSandbox,
)
from airflow_provider_mlconnector.sandbox.bill.demo import (
    ACCOUNTS,
    ADOBE_BILL_ID,
    ADOBE_VENDOR_ID,
    CLOUDLINE_BILL_IDS,
    demo_fixture,
)
from airflow_provider_mlconnector.sandbox.server import RunningSandbox

#: how many vendors and bills the demo story seeds (counts below are relative to it).
DEMO_VENDORS, DEMO_BILLS = len(demo_fixture()["vendors"]), len(demo_fixture()["bills"])

ORG = SANDBOX_ORGANIZATION_ID
ADDRESS = {
    "line1": "1 Market St",
    "city": "San Francisco",
    "stateOrProvince": "CA",
    "zipOrPostalCode": "94105",
    "country": "US",
}


SANDBOX_SYSTEMS = [BillSandbox]


@pytest.fixture(autouse=True)
def _fresh(reset_demo):
    reset_demo()


class Bill:
    """A bare BILL client: just enough to poke the emulator."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.base = f"{sandbox.url}/bill"
        self.session_id: str | None = None

    def login(self, **override) -> requests.Response:
        body = {
            "username": SANDBOX_USERNAME,
            "password": SANDBOX_PASSWORD,
            "organizationId": ORG,
            "devKey": SANDBOX_DEV_KEY,
            **override,
        }
        response = requests.post(f"{self.base}/connect/v3/login", json=body, timeout=10)
        if response.status_code == 200:
            self.session_id = response.json()["sessionId"]
        return response

    def headers(self, **extra: str) -> dict[str, str]:
        return {"devKey": SANDBOX_DEV_KEY, "sessionId": self.session_id or "", **extra}

    def call(self, method: str, path: str, *, headers: dict | None = None, **kwargs) -> requests.Response:
        prefix = "" if path.startswith("/connect-events") else "/connect/v3"
        return requests.request(
            method, f"{self.base}{prefix}{path}", headers=headers or self.headers(), timeout=10, **kwargs
        )

    def get(self, path: str, **params) -> requests.Response:
        return self.call("GET", path, params=params)

    def post(self, path: str, body, **kwargs) -> requests.Response:
        return self.call("POST", path, json=body, **kwargs)


@pytest.fixture
def bill(sandbox) -> Bill:
    client = Bill(sandbox)
    assert client.login().status_code == 200
    return client


def error_of(response: requests.Response) -> dict:
    body = response.json()
    assert isinstance(body, list)
    assert set(body[0]) == {"timestamp", "code", "severity", "category", "message"}
    return body[0]


def messages_of(response: requests.Response) -> list[str]:
    return [entry["message"] for entry in response.json()]


def state(sandbox) -> dict:
    return sandbox.control.state("bill")["organizations"][ORG]


def vendor_body(name: str = "Pixel Forge Studio", **extra) -> dict:
    return {"name": name, "accountType": "BUSINESS", "address": dict(ADDRESS), **extra}


def bill_body(vendor_id: str = ADOBE_VENDOR_ID, number: str = "INV-1", amounts=(100,), **extra) -> dict:
    return {
        "vendorId": vendor_id,
        "dueDate": "2026-12-31",
        "invoice": {"invoiceNumber": number, "invoiceDate": "2026-11-30"},
        "billLineItems": [
            {"amount": a, "description": f"line {i}", "classifications": {"chartOfAccountId": ACCOUNTS["6010"][0]}}
            for i, a in enumerate(amounts)
        ],
        **extra,
    }


def align_clock(sandbox, window: int) -> None:
    """Move the sandbox clock to just after a window boundary so counters cannot roll over mid-test."""
    now = sandbox.sandbox.ctx.clock.now()
    sandbox.control.advance_clock(window - now % window + 0.5)


# ---------------------------------------------------------------------- login and sessions


def test_login_returns_a_session_for_the_organization(sandbox):
    response = Bill(sandbox).login()
    assert response.status_code == 200
    body = response.json()
    assert body["organizationId"] == ORG
    assert body["userId"].startswith("006") and len(body["userId"]) == 20
    assert body["trusted"] is False
    assert body["sessionId"]


def test_login_requires_all_four_fields(sandbox):
    response = Bill(sandbox).login(password="", devKey=None)
    assert response.status_code == 400
    assert error_of(response)["code"] == "BDC_1143"
    assert set(messages_of(response)) == {"password: must not be blank", "devKey: must not be blank"}


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"password": "wrong"}, "BDC_1101"),
        ({"devKey": "not-a-key"}, "BDC_1102"),
        ({"organizationId": "008x"}, "BDC_1101"),
    ],
)
def test_login_rejects_bad_credentials(sandbox, override, code):
    response = Bill(sandbox).login(**override)
    assert response.status_code == 401
    assert error_of(response)["code"] == code


def test_calls_need_devkey_and_session_headers(sandbox, bill):
    assert error_of(bill.call("GET", "/vendors", headers={"devKey": SANDBOX_DEV_KEY}))["code"] == "BDC_1109"
    assert error_of(bill.call("GET", "/vendors", headers={"sessionId": bill.session_id}))["code"] == "BDC_1102"
    # the devKey goes in a header on every call, not only at login
    wrong = bill.call("GET", "/vendors", headers={"devKey": "other", "sessionId": bill.session_id})
    assert wrong.status_code == 401
    assert bill.get("/vendors").status_code == 200


def test_session_idles_out_after_35_minutes_and_the_timer_slides(sandbox, bill):
    sandbox.control.advance_clock(34 * 60)
    assert bill.get("/vendors").status_code == 200
    sandbox.control.advance_clock(34 * 60)  # 68 minutes after login, 34 after the last call
    assert bill.get("/vendors").status_code == 200
    sandbox.control.advance_clock(36 * 60)
    expired = bill.get("/vendors")
    assert expired.status_code == 401
    assert error_of(expired) | {"timestamp": None} == {
        "timestamp": None,
        "code": "BDC_1109",
        "severity": "ERROR",
        "category": "REQUEST",
        "message": "Session is invalid.  Please log in.",
    }
    # a new login works; the old session stays dead
    old = bill.session_id
    assert bill.login().status_code == 200
    assert bill.session_id != old
    assert bill.get("/vendors").status_code == 200


def test_expired_session_status_is_a_switch(sandbox, bill):
    sandbox.control.switch("bill", "session_expired_status", 400)
    sandbox.control.fault("bill", "expired_auth")
    response = bill.get("/vendors")
    assert response.status_code == 400
    assert error_of(response)["code"] == "BDC_1109"


def test_session_details_and_logout(sandbox, bill):
    info = bill.get("/login/session").json()
    assert info == {"organizationId": ORG, "userId": info["userId"], "trusted": False}
    assert bill.post("/logout", {}).status_code == 200
    assert error_of(bill.get("/vendors"))["code"] == "BDC_1109"


def test_unknown_path_is_bdc_1121(sandbox, bill):
    response = bill.get("/widgets")
    assert response.status_code == 404
    assert error_of(response)["code"] == "BDC_1121"


# ---------------------------------------------------------------------- demo data


def test_demo_story_is_loaded(sandbox, bill):
    accounts = {
        a["accountNumber"]: a for a in bill.get("/classifications/chart-of-accounts", max=100).json()["results"]
    }
    assert {n: a["name"] for n, a in accounts.items()} == {
        "1000": "Operating Checking",
        "6010": "Contract Labor",
        "6020": "Software & Subscriptions",
        "6030": "Advertising & Promotion",
        "6040": "Office Supplies",
        "6070": "Team Offsite & Events",
    }
    assert all(a["id"].startswith("0ca") and len(a["id"]) == 20 for a in accounts.values())
    vendors = {v["name"]: v for v in bill.get("/vendors", max=100).json()["results"]}
    assert set(vendors) == {
        "Adobe Inc.",
        "Cloudline Hosting",
        "Brightline Events",
        "Maple Print Co.",
        "Harbor Street Bakery",
        "Old Town Couriers",
    }
    assert vendors["Old Town Couriers"]["archived"] is True and vendors["Maple Print Co."]["billCurrency"] == "CAD"
    assert vendors["Adobe Inc."]["address"]["country"] == "US"
    adobe_bill = bill.get(f"/bills/{ADOBE_BILL_ID}").json()
    assert adobe_bill["invoice"]["invoiceNumber"] == "ADB-2026-10"
    assert (adobe_bill["amount"], adobe_bill["paidAmount"], adobe_bill["dueAmount"]) == (659.88, 659.88, 0)
    assert adobe_bill["paymentStatus"] == "PAID"
    payments = bill.get("/payments").json()["results"]
    adobe_payment = next(p for p in payments if p["billId"] == ADOBE_BILL_ID)
    assert adobe_payment["singleStatus"] == "CLEARED"
    assert adobe_payment["billPayments"][0]["amount"] == 659.88
    assert adobe_payment["billPayments"][0]["id"].startswith("blp")
    assert adobe_payment["id"].startswith("stp")
    cloudline = {
        b["invoice"]["invoiceNumber"]: b["paymentStatus"]
        for b in bill.get("/bills").json()["results"]
        if b["id"] in CLOUDLINE_BILL_IDS
    }
    assert cloudline == {"CLH-3301": "UNPAID", "CLH-3302": "PAID"}


def test_amounts_are_exact_json_numbers(sandbox, bill):
    created = bill.post("/bills", bill_body(amounts=(2400, 350.5)))
    assert created.status_code == 201
    assert '"amount":2750.50' in created.text
    assert '"amount":2400.00' in created.text


# ---------------------------------------------------------------------- lists


def test_page_size_defaults_to_20_and_is_capped_at_100(sandbox, bill):
    sandbox.control.generate({"bill": {"vendors": 41}})  # + the demo story's 6 = 47
    first = bill.get("/vendors").json()
    assert len(first["results"]) == 20
    assert "nextPage" in first and "prevPage" not in first
    assert len(bill.get("/vendors", max=100).json()["results"]) == 47
    for bad in (0, 101, "x"):
        response = bill.get("/vendors", max=bad)
        assert response.status_code == 400
        assert error_of(response)["code"] == "BDC_1100"


def test_switch_default_page_size(sandbox, bill):
    sandbox.control.generate({"bill": {"vendors": 41}})  # + the demo story's 6 = 47
    sandbox.control.switch("bill", "default_page_size", 100)
    assert len(bill.get("/vendors").json()["results"]) == 47


def test_switches_return_to_defaults_on_reset(sandbox):
    sandbox.control.switch("bill", "default_page_size", 100)
    sandbox.control.reset()
    sandbox.control.generate({"bill": {"vendors": 30}})
    client = Bill(sandbox)
    client.login()
    assert len(client.get("/vendors").json()["results"]) == 20
    sandbox.control.switch("bill", "default_page_size", 100)  # the new dict is the one consulted
    assert len(client.get("/vendors").json()["results"]) == 30


def test_next_page_tokens_walk_to_the_end(sandbox, bill):
    sandbox.control.generate({"bill": {"vendors": 41}})  # + the demo story's 6 = 47
    seen, token, pages = [], None, []
    while True:
        params = {"max": 20, **({"page": token} if token else {})}
        page = bill.get("/vendors", **params).json()
        pages.append(page)
        seen += [v["id"] for v in page["results"]]
        token = page.get("nextPage")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 47
    assert [len(p["results"]) for p in pages] == [20, 20, 7]
    assert "prevPage" in pages[1] and "nextPage" not in pages[2]
    # a token belongs to its query
    response = bill.get("/vendors", max=20, page=pages[0]["nextPage"], filters='name:sw:"Generated"')
    assert error_of(response)["code"] == "BDC_1100"
    assert error_of(bill.get("/vendors", page="garbage"))["code"] == "BDC_1100"


def test_filters_match_quoted_values_with_commas_and_escaped_quotes(sandbox, bill):
    tricky = 'Smith, "Best" & Co \\ Ltd'
    created = bill.post("/vendors", vendor_body(tricky)).json()
    escaped = tricky.replace("\\", "\\\\").replace('"', '\\"')
    found = bill.get("/vendors", filters=f'name:eq:"{escaped}"').json()["results"]
    assert [v["id"] for v in found] == [created["id"]]
    assert bill.get("/vendors", filters='name:eq:"Adobe Inc."').json()["results"][0]["id"] == ADOBE_VENDOR_ID
    assert bill.get("/vendors", filters='name:eq:"adobe inc."').json()["results"] == []
    assert [v["name"] for v in bill.get("/vendors", filters='name:sw:"Cloud"').json()["results"]] == [
        "Cloudline Hosting"
    ]


def test_filters_combine_with_and_and_support_in_and_booleans(sandbox, bill):
    both = f'id:in:"{ADOBE_VENDOR_ID},00902NOPE",archived:eq:false'
    assert [v["id"] for v in bill.get("/vendors", filters=both).json()["results"]] == [ADOBE_VENDOR_ID]
    bill.post(f"/vendors/{ADOBE_VENDOR_ID}/archive", {})
    assert bill.get("/vendors", filters=both).json()["results"] == []
    paid = bill.get("/bills", filters='paymentStatus:in:"PAID,PARTIAL"').json()["results"]
    assert {b["invoice"]["invoiceNumber"] for b in paid} == {"ADB-2026-10", "CLH-3302"}


@pytest.mark.parametrize(
    "value",
    [
        '"2026-11-01T00:00:00.000Z"',
        '"2026-11-01T00:00:00.000"',
        '"2026-11-01T00:00:00"',
        '"2026-11-01T00:00"',
        '"2026-11-01"',
        '"2026-10-31T20:00:00.000-04:00"',
    ],
)
def test_datetime_filters_accept_the_documented_formats(sandbox, bill, value):
    found = bill.get("/payments", filters=f"updatedTime:gte:{value}").json()["results"]
    assert [p["billId"] for p in found] == [CLOUDLINE_BILL_IDS[1]]  # updated 2026-11-18, the other in October


@pytest.mark.parametrize(
    ("entity", "filters", "fragment"),
    [
        ("/bills", 'invoice.invoiceNumber:eq:"ADB-2026-10"', "not filterable"),
        ("/bills", 'invoiceNumber:eq:"ADB-2026-10"', "not filterable"),
        ("/vendors", 'name:gt:"A"', "not supported"),
        ("/vendors", 'name:like:"A"', "unknown operator"),
        ("/vendors", "name:eq:Adobe", "double quotes"),
        ("/vendors", 'updatedTime:gte:"yesterday"', "yyyy-MM-dd"),
        ("/vendors", 'archived:eq:"maybe"', "true or false"),
        ("/vendors", 'name:eq:"open', "unterminated"),
        ("/payments", 'status:eq:"PAID"', "not filterable"),
    ],
)
def test_bad_filters_are_rejected(sandbox, bill, entity, filters, fragment):
    response = bill.get(entity, filters=filters)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "BDC_1100"
    assert fragment in error["message"]


def test_sort(sandbox, bill):
    names = [v["name"] for v in bill.get("/vendors", sort="name:desc").json()["results"]]
    assert names == sorted((v["name"] for v in demo_fixture()["vendors"]), reverse=True)
    assert error_of(bill.get("/vendors", sort="email:asc"))["code"] == "BDC_1100"


# ---------------------------------------------------------------------- vendors


def test_create_vendor_without_dedup(sandbox, bill):
    first = bill.post("/vendors", vendor_body())
    second = bill.post("/vendors", vendor_body())
    assert first.status_code == second.status_code == 201
    a, b = first.json(), second.json()
    assert a["id"] != b["id"]
    assert a["id"].startswith("009") and len(a["id"]) == 20
    assert a["archived"] is False and a["billCurrency"] == "USD"
    assert len(bill.get("/vendors", filters='name:eq:"Pixel Forge Studio"').json()["results"]) == 2


@pytest.mark.parametrize("country", ["USA", "United States", "us", "XX"])
def test_vendor_country_must_be_iso_alpha_2(sandbox, bill, country):
    response = bill.post("/vendors", vendor_body(address={**ADDRESS, "country": country}))
    assert response.status_code == 400
    assert error_of(response)["code"] == "BDC_1143"
    assert messages_of(response) == ["address.country: must be a valid ISO 3166-1 alpha-2 country code, e.g. US"]


def test_vendor_validation_names_each_field(sandbox, bill):
    response = bill.post("/vendors", {"name": "x" * 101, "address": {"line1": "1 Rue", "country": "FR"}})
    assert set(messages_of(response)) == {
        "name: size must be between 1 and 100",
        "address.city: must not be blank",
        "address.stateOrProvince: must not be blank",
        "address.zipOrPostalCode: must not be blank",
    }
    assert messages_of(bill.post("/vendors", {"name": "No address"})) == ["address: must not be null"]
    sandbox.control.switch("bill", "vendor_address_required", False)
    assert bill.post("/vendors", {"name": "No address"}).status_code == 201


def test_vendor_patch_archive_restore_and_thin_list_rows(sandbox, bill):
    body = vendor_body(
        paymentInformation={
            "payeeName": "Pixel Forge",
            "bankAccount": {"nameOnAccount": "PF", "accountNumber": "111222333", "routingNumber": "074000010"},
        }
    )
    vendor = bill.post("/vendors", body).json()
    assert vendor["paymentInformation"]["bankAccount"]["accountNumber"] == "xxxxx2333"
    row = bill.get("/vendors", filters=f'id:eq:"{vendor["id"]}"').json()["results"][0]
    assert "paymentInformation" not in row  # list rows are thinner than the single GET
    patched = bill.call("PATCH", f"/vendors/{vendor['id']}", json={"email": "ap@pixelforge.example"}).json()
    assert patched["email"] == "ap@pixelforge.example"
    assert patched["updatedTime"] >= vendor["updatedTime"]
    bank = bill.call("PATCH", f"/vendors/{vendor['id']}", json={"paymentInformation": {"bankAccount": {}}})
    assert bank.status_code == 400
    assert bill.post(f"/vendors/{vendor['id']}/archive", {}).json()["archived"] is True
    assert bill.post(f"/vendors/{vendor['id']}/restore", {}).json()["archived"] is False
    assert bill.get("/vendors/00902DOESNOTEXIST000").status_code == 404


def test_bulk_vendors_limit_and_all_or_nothing(sandbox, bill):
    too_many = bill.post("/vendors/bulk", [vendor_body(f"V{i}") for i in range(21)])
    assert too_many.status_code == 400
    mixed = bill.post("/vendors/bulk", [vendor_body("Good"), vendor_body("Bad", address={**ADDRESS, "country": "USA"})])
    assert mixed.status_code == 400
    assert messages_of(mixed) == ["[1].address.country: must be a valid ISO 3166-1 alpha-2 country code, e.g. US"]
    assert len(state(sandbox)["vendors"]) == DEMO_VENDORS  # nothing was created
    ok = bill.post("/vendors/bulk", [vendor_body(f"V{i}") for i in range(20)])
    assert ok.status_code == 201
    assert len(ok.json()) == 20


# ---------------------------------------------------------------------- bills


def test_create_bill_derives_amount_and_ids(sandbox, bill):
    created = bill.post("/bills", bill_body(amounts=(2400, 350)))
    assert created.status_code == 201
    body = created.json()
    assert body["id"].startswith("00n") and len(body["id"]) == 20
    assert body["amount"] == 2750
    assert (body["paymentStatus"], body["paidAmount"], body["dueAmount"]) == ("UNPAID", 0, 2750)
    assert body["vendorName"] == "Adobe Inc."
    assert body["billLineItems"][0]["classifications"]["chartOfAccountId"] == ACCOUNTS["6010"][0]
    # amounts sent by the client are ignored: BILL derives them from the lines
    assert bill.post("/bills", bill_body(number="INV-2", amount=1)).json()["amount"] == 100


def test_bill_validation(sandbox, bill):
    body = bill_body(amounts=(10.005,))
    body["billLineItems"][0]["classifications"]["chartOfAccountId"] = "0ca02NOSUCHACCOUNT01"
    del body["invoice"]
    response = bill.post("/bills", body)
    assert response.status_code == 400
    assert set(messages_of(response)) == {
        "invoice: must not be null",
        "billLineItems[0].amount: must have at most 2 decimal places",
        "billLineItems[0].classifications.chartOfAccountId: chart of account 0ca02NOSUCHACCOUNT01 was not found",
    }
    assert messages_of(bill.post("/bills", bill_body(amounts=("12.50",)))) == [
        "billLineItems[0].amount: must be a number"
    ]
    assert messages_of(bill.post("/bills", bill_body(vendor_id="00902NOPE"))) == [
        "vendorId: vendor 00902NOPE was not found"
    ]
    no_lines = bill_body()
    no_lines["billLineItems"] = []
    assert messages_of(bill.post("/bills", no_lines)) == ["billLineItems: must contain at least one line item"]
    assert messages_of(bill.post("/bills", bill_body(dueDate="12/31/2026"))) == [
        "dueDate: must be a date in yyyy-MM-dd format"
    ]


def test_flat_line_chart_of_account_id_is_ignored_by_default(sandbox, bill):
    body = bill_body()
    body["billLineItems"] = [{"amount": 5, "chartOfAccountId": ACCOUNTS["6020"][0]}]
    created = bill.post("/bills", body).json()
    assert "classifications" not in created["billLineItems"][0]
    sandbox.control.switch("bill", "flat_line_chart_of_account_id", "reject")
    assert bill.post("/bills", body).status_code == 400


def test_bills_are_not_deduplicated(sandbox, bill):
    a = bill.post("/bills", bill_body(number="ADB-2026-10")).json()
    assert a["id"] != ADOBE_BILL_ID
    same = bill.get("/bills", filters=f'vendorId:eq:"{ADOBE_VENDOR_ID}"').json()["results"]
    assert [b["invoice"]["invoiceNumber"] for b in same].count("ADB-2026-10") == 2


def test_bulk_bills_limit_is_100_unless_switched(sandbox, bill):
    many = [bill_body(number=f"B-{i}") for i in range(101)]
    response = bill.post("/bills/bulk", many)
    assert response.status_code == 400
    assert "at most 100" in error_of(response)["message"]
    sandbox.control.switch("bill", "bulk_bills_limit", 200)
    accepted = bill.post("/bills/bulk", many)
    assert accepted.status_code == 201
    assert len(accepted.json()) == 101


def test_bulk_bills_are_all_or_nothing(sandbox, bill):
    batch = [bill_body(number="OK-1"), bill_body(number="BAD", vendor_id="00902NOPE"), bill_body(number="OK-2")]
    response = bill.post("/bills/bulk", batch)
    assert messages_of(response) == ["[1].vendorId: vendor 00902NOPE was not found"]
    assert len(state(sandbox)["bills"]) == DEMO_BILLS


def test_a_bulk_call_costs_its_latency_plus_a_per_record_cost(sandbox, bill):
    import time

    sandbox.control.latency("bill", 10, per_record_ms=20)
    started = time.monotonic()
    assert bill.post("/bills/bulk", [bill_body(number=f"PR-{i}") for i in range(10)]).status_code == 201
    bulk = time.monotonic() - started
    started = time.monotonic()
    assert bill.post("/bills", bill_body(number="PR-single")).status_code == 201
    single = time.monotonic() - started
    assert bulk >= 0.01 + 10 * 0.02
    assert single < 0.01 + 10 * 0.02  # one record: the per-call latency, not the bulk charge


def test_patch_put_archive_bill(sandbox, bill):
    created = bill.post("/bills", bill_body(amounts=(100,))).json()
    patched = bill.call("PATCH", f"/bills/{created['id']}", json={"invoice": {"invoiceNumber": "INV-1b"}}).json()
    assert patched["invoice"] == {"invoiceNumber": "INV-1b", "invoiceDate": "2026-11-30"}
    assert patched["amount"] == 100
    lines = bill.call("PATCH", f"/bills/{created['id']}", json={"billLineItems": [{"amount": 75.25}]}).json()
    assert (lines["amount"], lines["dueAmount"]) == (75.25, 75.25)
    replaced = bill.call("PUT", f"/bills/{created['id']}", json=bill_body(number="INV-9", amounts=(9,))).json()
    assert replaced["invoice"]["invoiceNumber"] == "INV-9" and replaced["amount"] == 9
    assert bill.call("PUT", f"/bills/{created['id']}", json={"dueDate": "2026-12-01"}).status_code == 400
    archived = bill.post(f"/bills/{created['id']}/archive", {}).json()
    assert (archived["archived"], archived["recordStatus"]) == (True, "INACTIVE")


def test_bill_with_payments_cannot_change_amount(sandbox, bill):
    response = bill.call("PATCH", f"/bills/{ADOBE_BILL_ID}", json={"billLineItems": [{"amount": 1}]})
    assert response.status_code == 400
    assert bill.call("PATCH", f"/bills/{ADOBE_BILL_ID}", json={"description": "ok"}).status_code == 200


def test_single_get_has_due_amount_list_rows_may_not(sandbox, bill):
    row = bill.get("/bills", filters=f'id:eq:"{ADOBE_BILL_ID}"').json()["results"][0]
    assert "dueAmount" not in row
    assert bill.get(f"/bills/{ADOBE_BILL_ID}").json()["dueAmount"] == 0


def test_webhook_style_invoice_date_switch(sandbox, bill):
    sandbox.control.switch("bill", "invoice_date_as_datetime", True)
    assert bill.get(f"/bills/{ADOBE_BILL_ID}").json()["invoice"]["invoiceDate"] == "2026-10-01T00:00:00.000Z"


# ---------------------------------------------------------------------- payments


def sandbox_payment(sandbox, bill_id: str, amount: str, status: str = "SCHEDULED") -> requests.Response:
    return requests.post(
        f"{sandbox.url}/bill/_sandbox/payments",
        json={"billId": bill_id, "amount": amount, "status": status, "processDate": "2026-11-25"},
        timeout=10,
    )


def test_sandbox_payments_drive_bill_status(sandbox, bill):
    target = bill.post("/bills", bill_body(amounts=(300,))).json()
    scheduled = sandbox_payment(sandbox, target["id"], "100.00")
    assert scheduled.status_code == 201
    payment = scheduled.json()
    assert (payment["status"], payment["singleStatus"]) == ("SCHEDULED", "SCHEDULED")
    assert bill.get(f"/bills/{target['id']}").json()["paymentStatus"] == "SCHEDULED"
    settled = requests.post(f"{sandbox.url}/bill/_sandbox/payments/{payment['id']}/settle", timeout=10).json()
    assert settled["singleStatus"] == "CLEARED"
    partial = bill.get(f"/bills/{target['id']}").json()
    assert (partial["paymentStatus"], partial["paidAmount"], partial["dueAmount"]) == ("PARTIAL", 100, 200)
    sandbox_payment(sandbox, target["id"], "200.00", status="CLEARED")
    paid = bill.get(f"/bills/{target['id']}").json()
    assert (paid["paymentStatus"], paid["paidAmount"], paid["dueAmount"]) == ("PAID", 300, 0)
    over = sandbox_payment(sandbox, target["id"], "0.01")
    assert messages_of(over) == ["amount: exceeds the bill's open amount"]
    mine = bill.get("/payments", filters=f'updatedTime:gte:"{paid["createdTime"]}"').json()["results"]
    assert {p["billId"] for p in mine} == {target["id"]}
    assert bill.get(f"/payments/{payment['id']}").json()["billPayments"][0]["billId"] == target["id"]


def test_creating_a_payment_needs_an_mfa_trusted_session(sandbox, bill):
    body = {
        "billId": CLOUDLINE_BILL_IDS[0],
        "amount": 420.00,
        "fundingAccount": {"type": "BANK_ACCOUNT", "id": "bac02BRTSIDEBACopchk"},
        "processingOptions": {},
    }
    refused = bill.post("/payments", body)
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "BDC_1363"
    sandbox.control.switch("bill", "sessions_trusted", True)
    assert bill.login().json()["trusted"] is True
    created = bill.post("/payments", body)
    assert created.status_code == 201
    assert created.json()["singleStatus"] == "SCHEDULED"


# ---------------------------------------------------------------------- rate limits


def test_hourly_cap_until_the_next_hour(sandbox):
    align_clock(sandbox, 3600)
    sandbox.control.switch("bill", "hourly_request_limit", 4)
    client = Bill(sandbox)
    client.login()  # counts as one
    assert [client.get("/vendors").status_code for _ in range(3)] == [200, 200, 200]
    capped = client.get("/vendors")
    assert capped.status_code == 400
    error = error_of(capped)
    assert error["code"] == "BDC_1144"
    assert error["message"] == "Max number of allowed requests per hour reached: 4."
    assert "Retry-After" not in capped.headers
    sandbox.control.advance_clock(30 * 60)
    assert client.get("/vendors").status_code == 400  # same clock hour: still capped
    sandbox.control.switch("bill", "rate_limit_status", 429)
    assert client.get("/vendors").status_code == 429
    sandbox.control.advance_clock(30 * 60)  # the next clock hour
    assert client.login().status_code == 200  # capped calls did not keep the session alive
    assert client.get("/vendors").status_code == 200


def test_login_limits(sandbox):
    align_clock(sandbox, 60)
    statuses = [Bill(sandbox).login() for _ in range(6)]
    assert [r.status_code for r in statuses] == [200] * 5 + [400]
    assert error_of(statuses[-1])["code"] == "BDC_1144"
    sandbox.control.advance_clock(61)
    assert Bill(sandbox).login().status_code == 200
    sandbox.control.reset()
    align_clock(sandbox, 3600)
    sandbox.control.switch("bill", "login_hourly_limit", 2)
    sandbox.control.switch("bill", "login_per_minute_limit", 100)
    assert [Bill(sandbox).login().status_code for _ in range(3)] == [200, 200, 400]


def test_more_than_three_concurrent_requests_get_bdc_1322(sandbox, bill):
    sandbox.control.latency("bill", 400)
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(lambda _: bill.get("/vendors"), range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 200, 400, 400]
    rejected = [r for r in responses if r.status_code == 400]
    assert {error_of(r)["code"] for r in rejected} == {"BDC_1322"}
    assert error_of(rejected[0])["message"] == "Max number of concurrent requests per organization reached."
    concurrency = sandbox.control.state("bill")["concurrency"]
    assert concurrency["peak_in_flight"] == 3
    assert concurrency["rejections"] == 2
    # once they finish, calls go through again
    assert bill.get("/vendors").status_code == 200


def test_rate_limit_and_server_faults_use_bill_bodies(sandbox, bill):
    sandbox.control.fault("bill", "429")
    throttled = bill.get("/vendors")
    assert throttled.status_code == 400
    assert error_of(throttled)["code"] == "BDC_1322"
    sandbox.control.fault("bill", "500")
    failed = bill.get("/vendors")
    assert failed.status_code == 500
    assert error_of(failed)["code"] == "BDC_1001"


# ---------------------------------------------------------------------- webhooks


class Receiver:
    """A local HTTP endpoint that records raw deliveries."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict, bytes]] = []
        self.event = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                outer.event.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bill-hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, sandbox) -> list[tuple[dict, bytes]]:
        sandbox.sandbox.ctx.webhooks.wait_idle()
        assert len(self.deliveries) >= count, self.deliveries
        return self.deliveries


@pytest.fixture
def receiver(sandbox):
    sandbox.control.switch("bill", "require_https_notification_url", False)
    recv = Receiver()
    yield recv
    recv.server.shutdown()


def subscribe(bill: Bill, url: str, events=("vendor.created",), key: str | None = None) -> requests.Response:
    body = {
        "name": "sync",
        "status": {"enabled": True},
        "events": [{"type": e, "version": "1"} for e in events],
        "notificationUrl": url,
    }
    return bill.call(
        "POST",
        "/connect-events/v3/subscriptions",
        json=body,
        headers=bill.headers(**{"X-Idempotent-Key": key or str(uuid.uuid4())}),
    )


def signature(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def test_event_catalog(sandbox, bill):
    catalog = bill.call("GET", "/connect-events/v3/events/catalog").json()
    types = {e["type"] for e in catalog}
    assert {"vendor.created", "bill.updated", "payment.updated", "payment.failed"} <= types


def test_subscription_create_rules(sandbox, bill):
    https = "https://hooks.example.test/bill"
    missing_key = bill.call(
        "POST",
        "/connect-events/v3/subscriptions",
        json={"name": "x", "events": [{"type": "bill.created", "version": "1"}], "notificationUrl": https},
    )
    assert missing_key.status_code == 400
    assert "X-Idempotent-Key" in error_of(missing_key)["message"]
    not_v4 = subscribe(bill, https, key=str(uuid.uuid1()))
    assert "UUID4" in error_of(not_v4)["message"]
    assert messages_of(subscribe(bill, "http://plain.example.test/")) == ["notificationUrl: must use HTTPS"]
    assert "unknown event type" in error_of(subscribe(bill, https, events=("bill.paid",)))["message"]
    key = str(uuid.uuid4())
    first = subscribe(bill, https, events=("bill.created",), key=key)
    assert first.status_code == 201
    assert first.json()["securityKey"]
    assert subscribe(bill, https, events=("bill.created",), key=key).json() == first.json()  # replayed for 24 h
    duplicate = subscribe(bill, https, events=("bill.created", "bill.updated"))
    assert "already sends bill.created" in error_of(duplicate)["message"]
    listed = bill.call("GET", "/connect-events/v3/subscriptions").json()
    assert len(listed) == 1 and "securityKey" not in listed[0]
    for i in range(9):
        assert subscribe(bill, f"{https}/{i}").status_code == 201
    assert "at most 10" in error_of(subscribe(bill, f"{https}/10"))["message"]


def test_deliveries_are_signed_over_the_raw_body(sandbox, bill, receiver):
    sub = subscribe(bill, receiver.url, events=("vendor.created", "bill.created")).json()
    vendor = bill.post("/vendors", vendor_body()).json()
    bill.post("/bills", bill_body(vendor_id=vendor["id"], amounts=(2400, 350)))
    (h1, raw1), (h2, raw2) = receiver.wait_for(2, sandbox)
    for headers, raw in ((h1, raw1), (h2, raw2)):
        assert headers["x-bill-sha-signature"] == signature(raw, sub["securityKey"])
    first, second = json.loads(raw1), json.loads(raw2)
    assert first["metadata"] | {"eventId": None} == {
        "eventId": None,
        "subscriptionId": sub["id"],
        "organizationId": ORG,
        "eventType": "vendor.created",
        "version": "1",
    }
    assert first["vendor"]["id"] == vendor["id"]
    assert first["metadata"]["eventId"] != second["metadata"]["eventId"]
    assert second["bill"]["amount"] == 2750
    assert b'"amount":2750.00' in raw2
    assert second["bill"]["invoice"]["invoiceDate"] == "2026-11-30T00:00:00.000Z"
    # history and resend keep the eventId (receivers dedupe on it)
    history = bill.call("GET", f"/connect-events/v3/events/subscription/{sub['id']}").json()
    assert [e["eventType"] for e in history] == ["vendor.created", "bill.created"]
    resent = bill.call("POST", f"/connect-events/v3/events/subscription/{sub['id']}/event/{history[0]['eventId']}")
    assert resent.status_code == 200
    _, raw3 = receiver.wait_for(3, sandbox)[2]
    assert raw3 == raw1


def test_payment_updates_and_disabled_subscriptions(sandbox, bill, receiver):
    sub = subscribe(bill, receiver.url, events=("payment.updated",)).json()
    payment = sandbox_payment(sandbox, CLOUDLINE_BILL_IDS[0], "420.00").json()
    requests.post(f"{sandbox.url}/bill/_sandbox/payments/{payment['id']}/settle", timeout=10)
    deliveries = receiver.wait_for(2, sandbox)
    statuses = [json.loads(raw)["payment"]["status"] for _, raw in deliveries]
    assert statuses == ["SCHEDULED", "PAID"]
    assert json.loads(deliveries[0][1])["payment"]["billIds"] == [CLOUDLINE_BILL_IDS[0]]
    disabled = bill.call("PATCH", f"/connect-events/v3/subscriptions/{sub['id']}", json={"status": {"enabled": False}})
    assert disabled.json()["status"] == {"enabled": False}
    other = bill.post("/bills", bill_body(number="INV-77")).json()
    assert sandbox_payment(sandbox, other["id"], "1.00").status_code == 201
    sandbox.sandbox.ctx.webhooks.wait_idle()
    assert len(receiver.deliveries) == 2


def test_security_key_rotation_and_test_event(sandbox, bill, receiver):
    sub = subscribe(bill, receiver.url, events=("vendor.updated",)).json()
    key = str(uuid.uuid4())
    path = f"/connect-events/v3/subscriptions/{sub['id']}/security-key"
    assert bill.call("POST", path).status_code == 400  # X-Idempotent-Key required
    rotated = bill.call("POST", path, headers=bill.headers(**{"X-Idempotent-Key": key})).json()
    again = bill.call("POST", path, headers=bill.headers(**{"X-Idempotent-Key": key})).json()
    assert rotated == again and rotated["securityKey"] != sub["securityKey"]
    bill.call("PATCH", f"/vendors/{ADOBE_VENDOR_ID}", json={"phone": "4085366001"})
    headers, raw = receiver.wait_for(1, sandbox)[0]
    assert headers["x-bill-sha-signature"] == signature(raw, rotated["securityKey"])
    assert headers["x-bill-sha-signature"] != signature(raw, sub["securityKey"])
    assert bill.call("POST", f"/connect-events/v3/subscriptions/{sub['id']}/test").status_code == 200
    assert len(receiver.wait_for(2, sandbox)) == 2
    assert bill.call("DELETE", f"/connect-events/v3/subscriptions/{sub['id']}").status_code == 204
    assert bill.call("GET", f"/connect-events/v3/subscriptions/{sub['id']}").status_code == 404


def test_webhook_body_as_json_string_switch(sandbox, bill, receiver):
    sandbox.control.switch("bill", "webhook_body_as_json_string", True)
    sub = subscribe(bill, receiver.url).json()
    bill.post("/vendors", vendor_body())
    headers, raw = receiver.wait_for(1, sandbox)[0]
    assert isinstance(json.loads(raw), str)
    assert json.loads(json.loads(raw))["metadata"]["eventType"] == "vendor.created"
    assert headers["x-bill-sha-signature"] == signature(raw, sub["securityKey"])


# ---------------------------------------------------------------------- control plane


def test_seeding_the_demo_twice_keeps_one_copy(sandbox):
    sandbox.control.seed_demo()
    snap = state(sandbox)
    assert (len(snap["vendors"]), len(snap["bills"]), len(snap["payments"])) == (DEMO_VENDORS, DEMO_BILLS, 2)


def test_generate_snapshot_and_reset(sandbox):
    sandbox.control.generate({"bill": {"vendors": 3, "bills": 7}})
    snap = state(sandbox)
    assert len(snap["vendors"]) == DEMO_VENDORS + 3 and len(snap["bills"]) == DEMO_BILLS + 7
    assert all(len(b["id"]) == 20 for b in snap["bills"])
    sandbox.control.reset()
    empty = state(sandbox)
    assert empty["vendors"] == [] and empty["bills"] == []
    assert Bill(sandbox).login().status_code == 200  # the identity survives a reset


def test_connection_points_at_the_sandbox(sandbox):
    conn = sandbox.control.connections()["bill"]
    assert conn["conn_type"] == "bill"
    assert conn["host"].endswith("/bill")
    assert conn["extra"] == {"dev_key": SANDBOX_DEV_KEY, "organization_id": ORG}
