"""The QuickBooks Online emulator over real HTTP: OAuth, faults, queries, vendors, POs, replay, throttles, CDC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_mlconnector.sandbox.quickbooks import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REALM_ID,
    SANDBOX_REDIRECT_URI,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_WEBHOOK_VERIFIER_TOKEN,
    QuickBooksSandbox,
)
from airflow_provider_mlconnector.sandbox.quickbooks.backend import qbo_time

RECEIVER = "http://127.0.0.1:9/qbo-hook"  # closed port: deliveries are recorded, not received


SANDBOX_SYSTEMS = [QuickBooksSandbox]


@pytest.fixture(autouse=True)
def demo(reset_demo):
    reset_demo(rewind_clock=True)


def token_call(running, auth=(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET), **form):
    return requests.post(
        f"{running.url}/quickbooks/oauth2/v1/tokens/bearer",
        auth=auth,
        data=form,
        headers={"Accept": "application/json"},
        timeout=5,
    )


def sandbox_time(running, *, days_ago: float) -> str:
    """An instant ``days_ago`` before the sandbox clock, in QuickBooks' ``MetaData`` form (CDC windows are relative)."""
    return qbo_time(running.sandbox.ctx.clock.now() - days_ago * 86400)


def refresh(running, refresh_token=SANDBOX_REFRESH_TOKEN):
    return token_call(running, grant_type="refresh_token", refresh_token=refresh_token)


class Api:
    """A raw client that paces itself like a well-behaved app (≤ 10 calls per sandbox second)."""

    def __init__(self, running, access_token):
        self.running = running
        self.base = f"{running.url}/quickbooks/v3/company/{SANDBOX_REALM_ID}"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {access_token}", "Accept": "application/json"})

    def call(self, method, path, *, minorversion="75", params=None, **kw):
        self.running.sandbox.ctx.clock.advance(0.11)
        query = dict(params or {})
        if minorversion is not None:
            query["minorversion"] = minorversion
        return self.session.request(method, self.base + path, params=query, timeout=10, **kw)

    def query(self, statement):
        return self.call("GET", "/query", params={"query": statement})

    def rows(self, statement, entity):
        response = self.query(statement)
        assert response.status_code == 200, response.text
        return response.json()["QueryResponse"].get(entity, [])

    def post(self, path, body, **params):
        return self.call("POST", path, params=params, json=body)


@pytest.fixture
def api(running):
    token = refresh(running).json()
    client = Api(running, token["access_token"])
    client.refresh_token = token["refresh_token"]
    return client


def fault_of(response):
    error = response.json()["Fault"]["Error"][0]
    return error["code"], error["Detail"]


def po_body(**overrides):
    body = {
        "VendorRef": {"value": "56"},
        "APAccountRef": {"value": "33"},
        "DocNumber": "ADB-2026-11",
        "Line": [
            {
                "DetailType": "AccountBasedExpenseLineDetail",
                "Amount": 659.88,
                "Description": "Creative Cloud for teams (Nov)",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "59"}},
            }
        ],
    }
    body.update(overrides)
    return body


# ---------------------------------------------------------------------- OAuth


def test_refresh_rotates_and_the_old_token_dies(running):
    first = refresh(running)
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600 and body["x_refresh_token_expires_in"] == 8726400
    assert body["refresh_token"] != SANDBOX_REFRESH_TOKEN
    reused = refresh(running)
    assert reused.status_code == 400 and reused.json() == {"error": "invalid_grant"}
    assert refresh(running, body["refresh_token"]).status_code == 200


def test_grace_period_switch_returns_the_successor(running):
    running.control.switch("quickbooks", "refresh_token_grace_seconds", 120)
    newest = refresh(running).json()["refresh_token"]
    within = refresh(running)
    assert within.status_code == 200 and within.json()["refresh_token"] == newest
    running.control.advance_clock(121)
    assert refresh(running).status_code == 400


def test_rotation_interval_switch_keeps_the_token_until_due(running):
    running.control.switch("quickbooks", "refresh_token_rotation_seconds", 86400)
    assert refresh(running).json()["refresh_token"] == SANDBOX_REFRESH_TOKEN
    running.control.advance_clock(86400)
    assert refresh(running).json()["refresh_token"] != SANDBOX_REFRESH_TOKEN


def test_refresh_token_validity_rolls_and_expires(running):
    running.control.switch("quickbooks", "refresh_token_rotation_seconds", 10**9)  # never rotate here
    for _ in range(2):  # each use within ~101 days extends the validity: 16M s in all, past the first expiry
        running.control.advance_clock(8_000_000)
        kept = refresh(running)
        assert kept.json()["refresh_token"] == SANDBOX_REFRESH_TOKEN
        assert kept.json()["x_refresh_token_expires_in"] == 8726400
    running.control.advance_clock(8_726_401)
    assert refresh(running).json() == {"error": "invalid_grant"}


def test_token_endpoint_needs_basic_client_auth(running):
    wrong = token_call(
        running, auth=(SANDBOX_CLIENT_ID, "nope"), grant_type="refresh_token", refresh_token=SANDBOX_REFRESH_TOKEN
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    in_body = requests.post(
        f"{running.url}/quickbooks/oauth2/v1/tokens/bearer",
        data={
            "grant_type": "refresh_token",
            "refresh_token": SANDBOX_REFRESH_TOKEN,
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
        timeout=5,
    )
    assert in_body.status_code == 401


def test_authorization_code_grant(running):
    consent = requests.get(
        f"{running.url}/quickbooks/connect/oauth2",
        params={
            "client_id": SANDBOX_CLIENT_ID,
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "redirect_uri": SANDBOX_REDIRECT_URI,
            "state": "xyz",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert consent.status_code == 302
    query = parse_qs(urlsplit(consent.headers["location"]).query)
    assert query["realmId"] == [SANDBOX_REALM_ID] and query["state"] == ["xyz"]
    grant = token_call(
        running, grant_type="authorization_code", code=query["code"][0], redirect_uri=SANDBOX_REDIRECT_URI
    )
    assert grant.status_code == 200 and grant.json()["refresh_token"].startswith("AB11")


def test_401_has_the_lower_case_fault_shape(running, api):
    running.control.advance_clock(3601)
    expired = api.call("GET", "/vendor/56")
    assert expired.status_code == 401
    body = expired.json()
    assert body["fault"]["error"][0]["code"] == "3200"
    assert body["fault"]["type"] == "AUTHENTICATION"
    assert "Fault" not in body
    assert expired.headers["www-authenticate"] == 'Bearer realm="Intuit", error="invalid_token"'
    assert expired.headers["intuit_tid"]


def test_expired_auth_fault_and_wrong_realm(running, api):
    running.control.fault("quickbooks", "expired_auth")
    assert api.call("GET", "/vendor/56").status_code == 401
    fresh = Api(running, refresh(running, api.refresh_token).json()["access_token"])
    fresh.base = fresh.base.replace(SANDBOX_REALM_ID, "1234567890")
    assert fresh.call("GET", "/vendor/56").status_code == 403


# ---------------------------------------------------------------------- minorversion


def test_minorversion_required_and_at_least_75(running, api):
    missing = api.call("GET", "/vendor/56", minorversion=None)
    assert missing.status_code == 400 and "minorversion" in fault_of(missing)[1]
    old = api.call("GET", "/vendor/56", minorversion="65")
    assert old.status_code == 400 and "Minimum supported version is 75" in fault_of(old)[1]
    assert api.call("GET", "/vendor/56", minorversion="75").status_code == 200
    running.control.switch("quickbooks", "minorversion_required", False)
    assert api.call("GET", "/vendor/56", minorversion=None).status_code == 200


# ---------------------------------------------------------------------- query


def test_query_envelope_and_filters(api):
    response = api.query("SELECT * FROM Account WHERE AcctNum = '6030'")
    body = response.json()
    assert set(body) == {"QueryResponse", "time"}
    assert body["QueryResponse"]["startPosition"] == 1 and body["QueryResponse"]["maxResults"] == 1
    assert body["QueryResponse"]["Account"][0]["Name"] == "Advertising & Promotion"
    expense = api.rows("select * from Account where AccountType = 'Expense' orderby AcctNum desc", "Account")
    assert [a["AcctNum"] for a in expense] == ["6040", "6030", "6020", "6010"]
    some = api.rows("SELECT * FROM Account WHERE Id IN ('33', '35') AND Classification = 'Asset'", "Account")
    assert [a["Name"] for a in some] == ["Operating Checking"]
    like = api.rows("SELECT * FROM Account WHERE Name LIKE '%Subscriptions'", "Account")
    assert [a["AcctNum"] for a in like] == ["6020"]


def test_query_empty_count_and_time_comparisons(api):
    assert api.query("SELECT * FROM Vendor WHERE DisplayName = 'Nobody'").json()["QueryResponse"] == {}
    assert api.query("SELECT count(*) FROM Account").json()["QueryResponse"] == {"totalCount": 6}
    api.post("/vendor", {"DisplayName": "Cloudline Hosting"})
    recent = api.rows("SELECT * FROM Vendor WHERE MetaData.LastUpdatedTime > '2026-10-01T00:00:00-07:00'", "Vendor")
    assert [v["DisplayName"] for v in recent] == ["Cloudline Hosting"]


def test_query_quote_escaping_and_case(api):
    api.post("/vendor", {"DisplayName": "Dianne's Auto Shop"})
    found = api.rows("SELECT * FROM Vendor WHERE DisplayName = 'Dianne\\'s Auto Shop'", "Vendor")
    assert [v["DisplayName"] for v in found] == ["Dianne's Auto Shop"]
    assert api.rows("SELECT * FROM Vendor WHERE DisplayName = 'adobe inc.'", "Vendor")[0]["Id"] == "56"


def test_query_errors(api):
    assert fault_of(api.query("SELECT * FROM vendor"))[0] == "4001"  # entity names are case-sensitive
    assert fault_of(api.query("SELECT DisplayName FROM Vendor"))[0] == "4000"  # no projections
    assert fault_of(api.query("SELECT * FROM Vendor WHERE A = 1 OR B = 2"))[0] in ("4000", "4001")
    assert fault_of(api.query("SELECT * FROM Vendor WHERE Nickname = 'x'"))[0] == "4001"
    assert fault_of(api.query("SELECT * FROM Vendor WHERE DisplayName = 'unterminated"))[0] == "4000"


def test_query_paging_default_and_cap(running, api):
    running.control.generate({"quickbooks": {"vendors": 1005}})
    assert len(api.rows("SELECT * FROM Vendor", "Vendor")) == 100  # default MAXRESULTS
    page = api.query("SELECT * FROM Vendor STARTPOSITION 1001 MAXRESULTS 10").json()["QueryResponse"]
    assert page["startPosition"] == 1001 and len(page["Vendor"]) == 6  # 1005 generated + Adobe
    assert len(api.rows("SELECT * FROM Vendor MAXRESULTS 5000", "Vendor")) == 1000
    running.control.switch("quickbooks", "query_over_cap", "error")
    assert fault_of(api.query("SELECT * FROM Vendor MAXRESULTS 5000"))[0] == "4001"


def test_query_leaves_inactive_out_unless_asked(api):
    vendor = api.post("/vendor", {"DisplayName": "Old Printer Co", "Active": False}).json()["Vendor"]
    names = [v["DisplayName"] for v in api.rows("SELECT * FROM Vendor", "Vendor")]
    assert "Old Printer Co" not in names
    both = api.rows("SELECT * FROM Vendor WHERE Active IN (true, false)", "Vendor")
    assert vendor["Id"] in [v["Id"] for v in both]


def test_query_by_post_needs_application_text(api):
    text = api.call("POST", "/query", data="SELECT * FROM Account", headers={"Content-Type": "application/text"})
    assert len(text.json()["QueryResponse"]["Account"]) == 6
    wrong = api.call("POST", "/query", data="SELECT * FROM Account", headers={"Content-Type": "application/json"})
    assert wrong.status_code == 415


# ---------------------------------------------------------------------- vendors


def test_vendor_create_read_and_shape(api):
    created = api.post("/vendor", {"DisplayName": "Cloudline Hosting", "TaxIdentifier": "99-5688293"})
    assert created.status_code == 200
    vendor = created.json()["Vendor"]
    assert vendor["SyncToken"] == "0" and vendor["Active"] is True and vendor["domain"] == "QBO"
    assert vendor["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
    assert vendor["TaxIdentifier"] == "XXXXXX8293"
    assert vendor["PrintOnCheckName"] == "Cloudline Hosting"
    assert set(vendor["MetaData"]) == {"CreateTime", "LastUpdatedTime"}
    assert api.call("GET", f"/vendor/{vendor['Id']}").json()["Vendor"]["DisplayName"] == "Cloudline Hosting"
    missing = api.call("GET", "/vendor/9999")
    assert missing.status_code == 400 and fault_of(missing)[0] == "610"


def test_display_name_is_unique_across_vendors_customers_employees(api):
    for name in ("Adobe Inc.", "ADOBE INC.", "Harbor Street Bakery", "Dana Whitfield"):
        response = api.post("/vendor", {"DisplayName": name})
        assert response.status_code == 400, name
        body = response.json()
        assert body["Fault"]["type"] == "ValidationFault"
        assert fault_of(response)[0] == "6240"
        assert body["Fault"]["Error"][0]["Message"] == "Duplicate Name Exists Error"


def test_vendor_validation(api):
    assert fault_of(api.post("/vendor", {"CompanyName": "No Display"}))[0] == "2020"
    assert api.post("/vendor", {"GivenName": "Ada", "FamilyName": "Lovelace"}).json()["Vendor"]["DisplayName"] == (
        "Ada Lovelace"
    )
    assert fault_of(api.post("/vendor", {"DisplayName": "Parent: Child"}))[0] == "6000"
    assert fault_of(api.post("/vendor", {"DisplayName": "X", "Nickname": "y"}))[0] == "2010"


def test_sparse_update_full_update_and_stale_token(api):
    vendor = api.post("/vendor", {"DisplayName": "Cloudline Hosting", "AcctNum": "CL-1"}).json()["Vendor"]
    sparse = api.post("/vendor", {"Id": vendor["Id"], "SyncToken": "0", "sparse": True, "CompanyName": "Cloudline"})
    updated = sparse.json()["Vendor"]
    assert updated["SyncToken"] == "1" and updated["AcctNum"] == "CL-1" and updated["CompanyName"] == "Cloudline"
    stale = api.post("/vendor", {"Id": vendor["Id"], "SyncToken": "0", "sparse": True, "AcctNum": "CL-2"})
    assert stale.status_code == 400
    assert fault_of(stale)[0] == "5010"
    assert stale.json()["Fault"]["Error"][0]["Message"] == "Stale Object Error"
    full = api.post("/vendor", {"Id": vendor["Id"], "SyncToken": "1", "DisplayName": "Cloudline Hosting"})
    replaced = full.json()["Vendor"]
    assert replaced["SyncToken"] == "2" and "AcctNum" not in replaced and "CompanyName" not in replaced


# ---------------------------------------------------------------------- purchase orders


def test_purchase_order_create_computes_total_and_fills_refs(api):
    body = po_body(
        Line=[
            {
                "DetailType": "AccountBasedExpenseLineDetail",
                "Amount": 2400.00,
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "58"}},
            },
            {
                "DetailType": "ItemBasedExpenseLineDetail",
                "Amount": 350.00,
                "ItemBasedExpenseLineDetail": {"ItemRef": {"value": "20"}, "Qty": 5, "UnitPrice": 70},
            },
        ],
        DocNumber="PFS-1041",
    )
    created = api.post("/purchaseorder", body)
    assert created.status_code == 200, created.text
    order = created.json()["PurchaseOrder"]
    assert order["TotalAmt"] == 2750.0
    assert order["POStatus"] == "Open" and order["EmailStatus"] == "NotSet"
    assert order["VendorRef"] == {"value": "56", "name": "Adobe Inc."}
    assert order["APAccountRef"] == {"value": "33", "name": "Accounts Payable (A/P)"}
    assert [line["Id"] for line in order["Line"]] == ["1", "2"]
    assert order["Line"][0]["AccountBasedExpenseLineDetail"]["AccountRef"]["name"] == "Contract Labor"
    assert '"Amount": 2400.0' in created.text  # money as JSON numbers


def test_purchase_order_validation(running, api):
    assert fault_of(api.post("/purchaseorder", po_body(APAccountRef=None)))[0] == "2020"
    assert fault_of(api.post("/purchaseorder", po_body(VendorRef={"value": "999"})))[0] == "610"
    assert fault_of(api.post("/purchaseorder", po_body(APAccountRef={"value": "35"})))[0] == "6000"
    no_expense_account = po_body(
        Line=[
            {
                "DetailType": "ItemBasedExpenseLineDetail",
                "Amount": 10,
                "ItemBasedExpenseLineDetail": {"ItemRef": {"value": "21"}},
            }
        ]
    )
    code, detail = fault_of(api.post("/purchaseorder", no_expense_account))
    assert code == "6000" and "Select an account" in detail
    mismatch = po_body(
        Line=[
            {
                "DetailType": "ItemBasedExpenseLineDetail",
                "Amount": 100,
                "ItemBasedExpenseLineDetail": {"ItemRef": {"value": "20"}, "Qty": 2, "UnitPrice": 70},
            }
        ]
    )
    assert fault_of(api.post("/purchaseorder", mismatch))[0] == "6070"
    assert api.post("/purchaseorder", po_body()).status_code == 200
    assert fault_of(api.post("/purchaseorder", po_body()))[0] == "6140"  # duplicate DocNumber (addendum 2.3)
    running.control.switch("quickbooks", "duplicate_docnumber_error", False)
    assert api.post("/purchaseorder", po_body()).status_code == 200


def test_purchase_order_doc_number_assigned_update_and_delete(api):
    order = api.post("/purchaseorder", po_body(DocNumber=None)).json()["PurchaseOrder"]
    assert order["DocNumber"] == "1001"
    changed = api.post("/purchaseorder", {"Id": order["Id"], "SyncToken": "0", "sparse": True, "Memo": "Nov"})
    assert changed.json()["PurchaseOrder"]["SyncToken"] == "1"
    assert fault_of(api.post("/purchaseorder", {"Id": order["Id"], "SyncToken": "0", "sparse": True}))[0] == "5010"
    gone = api.post("/purchaseorder", {"Id": order["Id"], "SyncToken": "1"}, operation="delete").json()
    assert gone["PurchaseOrder"] == {"status": "Deleted", "Id": order["Id"], "domain": "QBO"}
    assert fault_of(api.call("GET", f"/purchaseorder/{order['Id']}"))[0] == "610"


def test_a_doc_number_over_21_characters_is_refused(api):
    code, detail = fault_of(api.post("/purchaseorder", po_body(DocNumber="X" * 22)))
    assert code == "2050" and "Max:21" in detail
    assert api.post("/purchaseorder", po_body(DocNumber="X" * 21)).status_code == 200


def test_a_document_dated_in_a_closed_period_is_refused_with_6210(running, api):
    running.control.switch("quickbooks", "books_closed_through", "2026-09-30")
    code, detail = fault_of(api.post("/purchaseorder", po_body(TxnDate="2026-09-30")))
    assert code == "6210" and "closed" in detail
    assert api.post("/purchaseorder", po_body(TxnDate="2026-10-01")).status_code == 200


def test_purchase_orders_turned_off_refuse_purchase_orders_but_not_bills(running, api):
    running.control.switch("quickbooks", "purchase_orders_enabled", False)
    code, detail = fault_of(api.post("/purchaseorder", po_body()))
    assert code == "6000" and "turned off" in detail
    assert api.post("/bill", po_body()).status_code == 200


def test_bills_post_with_a_balance_and_their_numbers_belong_to_their_vendor(api):
    created = api.post("/bill", po_body(DocNumber="INV-7"))
    assert created.status_code == 200, created.text
    bill = created.json()["Bill"]
    assert bill["TotalAmt"] == 659.88 and bill["Balance"] == 659.88 and "POStatus" not in bill
    assert fault_of(api.post("/bill", po_body(DocNumber="INV-7")))[0] == "6140"
    other_vendor = api.post("/vendor", {"DisplayName": "Cloudline Hosting"}).json()["Vendor"]["Id"]
    assert api.post("/bill", po_body(DocNumber="INV-7", VendorRef={"value": other_vendor})).status_code == 200
    assert api.rows("SELECT * FROM Bill WHERE DocNumber = 'INV-7'", "Bill")[0]["Id"] == bill["Id"]
    gone = api.post("/bill", {"Id": bill["Id"], "SyncToken": "0"}, operation="delete")
    assert gone.json()["Bill"]["status"] == "Deleted"


def test_a_foreign_currency_vendor_needs_multicurrency_and_keeps_its_currency(running, api):
    cad = {"DisplayName": "Maple Print Co.", "CurrencyRef": {"value": "CAD"}}
    assert fault_of(api.post("/vendor", cad))[0] == "6000"
    running.control.switch("quickbooks", "multicurrency_enabled", True)
    vendor = api.post("/vendor", cad).json()["Vendor"]
    change = {"Id": vendor["Id"], "SyncToken": "0", "sparse": True, "CurrencyRef": {"value": "USD"}}
    assert fault_of(api.post("/vendor", change))[0] == "6000"


def test_company_info_names_the_plan(api):
    info = api.call("GET", f"/companyinfo/{SANDBOX_REALM_ID}").json()["CompanyInfo"]
    assert {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"} in info["NameValue"]


# ---------------------------------------------------------------------- requestid replay


def test_same_requestid_replays_the_original_response(running, api):
    first = api.post("/vendor", {"DisplayName": "Cloudline Hosting"}, requestid="bill-qbo-vendor-1")
    second = api.post("/vendor", {"DisplayName": "Cloudline Hosting"}, requestid="bill-qbo-vendor-1")
    assert second.status_code == 200 and second.content == first.content
    assert len(api.rows("SELECT * FROM Vendor WHERE DisplayName = 'Cloudline Hosting'", "Vendor")) == 1
    failed = api.post("/vendor", {"DisplayName": "Adobe Inc."}, requestid="dup-1")
    assert api.post("/vendor", {"DisplayName": "Fine Name"}, requestid="dup-1").content == failed.content
    too_long = api.post("/vendor", {"DisplayName": "X"}, requestid="r" * 51)
    assert too_long.status_code == 400


def test_commit_then_drop_then_retry_creates_once(running, api):
    running.control.fault("quickbooks", "drop_after_commit", method="POST", path="/vendor$")
    with pytest.raises(requests.exceptions.RequestException):
        api.post("/vendor", {"DisplayName": "Cloudline Hosting"}, requestid="cl-1")
    retried = api.post("/vendor", {"DisplayName": "Cloudline Hosting"}, requestid="cl-1")
    assert retried.status_code == 200
    vendors = running.control.state("quickbooks")[SANDBOX_REALM_ID]["Vendor"]
    assert [v["DisplayName"] for v in vendors].count("Cloudline Hosting") == 1


def test_replay_retention_switch(running, api):
    running.control.switch("quickbooks", "requestid_retention_seconds", 60)
    api.post("/vendor", {"DisplayName": "Cloudline Hosting"}, requestid="cl-2")
    running.control.advance_clock(61)
    late = api.post("/vendor", {"DisplayName": "Cloudline Hosting"}, requestid="cl-2")
    assert fault_of(late)[0] == "6240"  # no longer replayed: processed again


# ---------------------------------------------------------------------- throttling


def test_more_than_ten_per_second_is_429(running, monkeypatch):
    api = Api(running, refresh(running).json()["access_token"])
    frozen = running.sandbox.ctx.clock.now()
    monkeypatch.setattr(running.sandbox.ctx.clock, "now", lambda: frozen)  # all eleven in one sandbox second
    url = api.base + "/companyinfo/" + SANDBOX_REALM_ID
    statuses = [api.session.get(url, params={"minorversion": "75"}, timeout=5).status_code for _ in range(11)]
    assert statuses[:10] == [200] * 10 and statuses[10] == 429


def test_per_minute_budget_per_realm(running, api):
    running.control.switch("quickbooks", "max_requests_per_minute", 3)
    statuses = [api.call("GET", "/vendor/56").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = api.call("GET", "/vendor/56")
    assert throttled.json()["Fault"]["Error"][0]["code"] == "3001"
    assert "Retry-After" not in throttled.headers
    running.control.advance_clock(60)
    assert api.call("GET", "/vendor/56").status_code == 200


def batch(api, *items, **params):
    return api.post("/batch", {"BatchItemRequest": list(items)}, **params)


def test_batch_answers_each_item_by_its_bid_and_a_refused_item_leaves_the_others(running, api):
    response = batch(
        api,
        {"bId": "v1", "operation": "create", "Vendor": {"DisplayName": "Batch Vendor One"}},
        {"bId": "v2", "operation": "create", "Vendor": {"DisplayName": "Adobe Inc."}},  # the name is taken
        {"bId": "p1", "operation": "create", "PurchaseOrder": po_body(DocNumber="BATCH-1")},
    )
    assert response.status_code == 200, response.text
    answers = {item["bId"]: item for item in response.json()["BatchItemResponse"]}
    assert [item["bId"] for item in response.json()["BatchItemResponse"]] == ["p1", "v2", "v1"]  # order not kept
    assert answers["v1"]["Vendor"]["DisplayName"] == "Batch Vendor One"
    assert answers["v2"]["Fault"]["type"] == "ValidationFault"
    assert answers["v2"]["Fault"]["Error"][0]["code"] == "6240"
    assert answers["p1"]["PurchaseOrder"]["DocNumber"] == "BATCH-1"
    assert len(api.rows("SELECT * FROM Vendor WHERE DisplayName = 'Batch Vendor One'", "Vendor")) == 1


def test_batch_limits_and_item_shape(running, api):
    too_many = batch(
        api, *[{"bId": f"b{i}", "operation": "create", "Vendor": {"DisplayName": f"V{i}"}} for i in range(31)]
    )
    assert too_many.status_code == 400 and "at most 30" in fault_of(too_many)[1]
    assert api.rows("SELECT * FROM Vendor WHERE DisplayName = 'V0'", "Vendor") == []  # nothing of it written
    running.control.switch("quickbooks", "batch_max_items", 10)
    assert (
        batch(
            api, *[{"bId": f"b{i}", "operation": "create", "Vendor": {"DisplayName": f"W{i}"}} for i in range(11)]
        ).status_code
        == 400
    )
    (no_bid, update_without_id, delete_vendor) = batch(
        api,
        {"operation": "create", "Vendor": {"DisplayName": "No bId"}},
        {"bId": "u", "operation": "update", "Vendor": {"DisplayName": "No Id"}},
        {"bId": "d", "operation": "delete", "Vendor": {"Id": "56", "SyncToken": "0"}},
    ).json()["BatchItemResponse"]
    assert all(item["Fault"]["type"] == "ValidationFault" for item in (no_bid, update_without_id, delete_vendor))


def test_batch_calls_have_their_own_budget_and_replay_by_requestid(running, api):
    running.control.switch("quickbooks", "max_batch_requests_per_minute", 2)
    item = {"bId": "a", "operation": "create", "Vendor": {"DisplayName": "Replayed Batch Vendor"}}
    first = batch(api, item, requestid="batch-rid-1")
    assert batch(api, item, requestid="batch-rid-1").json()["BatchItemResponse"] == first.json()["BatchItemResponse"]
    assert batch(api, item, requestid="batch-rid-2").status_code == 429
    assert api.call("GET", "/vendor/56").status_code == 200  # only batch calls are held back
    assert len(api.rows("SELECT * FROM Vendor WHERE DisplayName = 'Replayed Batch Vendor'", "Vendor")) == 1


def test_more_than_ten_concurrent_is_429(running, api):
    running.control.switch("quickbooks", "max_requests_per_second", None)
    running.control.latency("quickbooks", 1500)  # long enough for all thirteen to overlap
    statuses: list[int] = []
    lock = threading.Lock()

    def one():
        response = api.session.get(api.base + "/vendor/56", params={"minorversion": "75"}, timeout=10)
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=one) for _ in range(13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 10 and statuses.count(429) == 3


# ---------------------------------------------------------------------- CDC, company info, webhooks


def test_cdc_returns_changes_and_deletions(running, api):
    vendor = api.post("/vendor", {"DisplayName": "Cloudline Hosting"}).json()["Vendor"]
    order = api.post("/purchaseorder", po_body()).json()["PurchaseOrder"]
    api.post("/purchaseorder", {"Id": order["Id"], "SyncToken": "0"}, operation="delete")
    since = sandbox_time(running, days_ago=1)  # after the demo data, before the changes above
    body = api.call("GET", "/cdc", params={"entities": "Vendor,PurchaseOrder", "changedSince": since}).json()
    groups = body["CDCResponse"][0]["QueryResponse"]
    assert [v["Id"] for v in groups[0]["Vendor"]] == [vendor["Id"]]
    assert groups[1]["PurchaseOrder"] == [
        {"domain": "QBO", "status": "Deleted", "Id": order["Id"], "MetaData": groups[1]["PurchaseOrder"][0]["MetaData"]}
    ]
    running.control.switch("quickbooks", "cdc_shape", "combined")
    combined = api.call("GET", "/cdc", params={"entities": "Vendor,PurchaseOrder", "changedSince": since}).json()
    assert set(combined["CDCResponse"][0]["QueryResponse"][0]) == {"Vendor", "PurchaseOrder"}


def test_cdc_validation(running, api):
    within = api.call("GET", "/cdc", params={"entities": "Vendor", "changedSince": sandbox_time(running, days_ago=29)})
    assert within.status_code == 200
    too_old = api.call("GET", "/cdc", params={"entities": "Vendor", "changedSince": sandbox_time(running, days_ago=31)})
    assert too_old.status_code == 400 and "30 days" in fault_of(too_old)[1]
    assert api.call("GET", "/cdc", params={"changedSince": sandbox_time(running, days_ago=1)}).status_code == 400


def test_company_info_and_account_read(api):
    info = api.call("GET", f"/companyinfo/{SANDBOX_REALM_ID}").json()["CompanyInfo"]
    assert info["CompanyName"] == "Brightside Marketing" and info["Id"] == "1"
    account = api.call("GET", "/account/33").json()["Account"]
    assert account["AccountType"] == "Accounts Payable" and account["AcctNum"] == "2000"


def _deliveries(running, before):
    running.sandbox.ctx.webhooks.wait_idle()
    return running.control.webhooks()[before:]


def test_cloudevents_webhook_signed_with_the_verifier_token(running, api):
    running.control.switch("quickbooks", "webhook_endpoint", RECEIVER)
    before = len(running.control.webhooks())
    vendor = api.post("/vendor", {"DisplayName": "Cloudline Hosting"}).json()["Vendor"]
    (delivery,) = _deliveries(running, before)
    events = json.loads(delivery["body"])
    assert events[0]["type"] == "qbo.vendor.created.v1"
    assert events[0]["intuitentityid"] == vendor["Id"] and events[0]["intuitaccountid"] == SANDBOX_REALM_ID
    assert events[0]["specversion"] == "1.0"
    digest = hmac.new(SANDBOX_WEBHOOK_VERIFIER_TOKEN.encode(), delivery["body"].encode(), hashlib.sha256).digest()
    assert delivery["headers"]["intuit-signature"] == base64.b64encode(digest).decode()


def test_legacy_webhook_payload_switch(running, api):
    running.control.switch("quickbooks", "webhook_endpoint", RECEIVER)
    running.control.switch("quickbooks", "webhook_payload", "legacy")
    before = len(running.control.webhooks())
    api.post("/vendor", {"Id": "56", "SyncToken": "0", "sparse": True, "AcctNum": "ADB"})
    (delivery,) = _deliveries(running, before)
    (notification,) = json.loads(delivery["body"])["eventNotifications"]
    assert notification["realmId"] == SANDBOX_REALM_ID
    (entity,) = notification["dataChangeEvent"]["entities"]
    assert entity["name"] == "Vendor" and entity["id"] == "56" and entity["operation"] == "Update"


def test_reset_restores_switches_and_credentials(running):
    running.control.switch("quickbooks", "min_minorversion", 99)
    refresh(running)
    running.control.reset()
    assert running.control.state("quickbooks")[SANDBOX_REALM_ID]["Vendor"] == []
    token = refresh(running)
    assert token.status_code == 200
    api = Api(running, token.json()["access_token"])
    assert api.call("GET", f"/companyinfo/{SANDBOX_REALM_ID}").status_code == 200
