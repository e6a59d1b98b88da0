"""QuickBooksHook against the QuickBooks emulator (real HTTP) and requests-mock for edge cases."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
import requests

from airflow_provider_mlconnector.core.auth import chain_key
from airflow_provider_mlconnector.core.http import RetrySettings
from airflow_provider_mlconnector.exceptions import (
    AuthError,
    ConfigurationError,
    NotFoundError,
    RecordRejectedError,
)
from airflow_provider_mlconnector.hooks import quickbooks as qbo
from airflow_provider_mlconnector.hooks.quickbooks import QuickBooksHook, StaleObjectError
from airflow_provider_mlconnector.sandbox.quickbooks import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REALM_ID,
    SANDBOX_REFRESH_TOKEN,
    QuickBooksSandbox,
)
from airflow_provider_mlconnector.webhooks import signatures

CONN_ID = "qbo_test"
TOKEN_KEY = chain_key(SANDBOX_CLIENT_ID, SANDBOX_REFRESH_TOKEN, SANDBOX_REALM_ID)
TOKEN_ROUTE = "quickbooks POST /oauth2/v1/tokens/bearer"


class Clock:
    """The hook's clock, kept in step with the sandbox's fast-forwarded clock."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


SANDBOX_SYSTEMS = [QuickBooksSandbox]


@pytest.fixture(autouse=True)
def fresh(reset_demo, monkeypatch):
    reset_demo(rewind_clock=True)
    monkeypatch.setattr(qbo, "_THROTTLES", {})  # a fresh per-realm client budget per test


@pytest.fixture
def store(state_store):
    return state_store


@pytest.fixture
def conn(running, use_connection):
    def set_conn(**overrides):
        connection = running.sandbox.systems["quickbooks"].connection(f"{running.url}/quickbooks")
        return use_connection(CONN_ID, connection, **overrides)

    set_conn()
    return set_conn


@pytest.fixture
def make_hook(store, sleeps, conn):
    def make(**kwargs):
        kwargs.setdefault("retry", RetrySettings(max_attempts=4, base_wait=0.01, max_wait=90))
        return QuickBooksHook(CONN_ID, state_store=store, sleep=sleeps, **kwargs)

    return make


def counts(running):
    return running.control.request_counts("quickbooks")


def statuses(running):
    return [(r["method"], r["route"], r["status"]) for r in running.control.requests("quickbooks")]


# ---------------------------------------------------------------------- connection and auth


def test_test_connection_names_the_company(make_hook):
    ok, message = make_hook().test_connection()
    assert ok
    assert message == (
        f"Connected to QuickBooks Online company 'Brightside Marketing' (realm {SANDBOX_REALM_ID}, sandbox)"
    )


def test_test_connection_fails_clearly_on_a_wrong_secret(make_hook, conn):
    conn(password="not-the-secret")
    ok, message = make_hook().test_connection()
    assert not ok
    assert "invalid_client" in message and "client secret (password)" in message
    assert "not-the-secret" not in message and SANDBOX_REFRESH_TOKEN not in message


def test_first_call_persists_the_rotated_refresh_token(running, make_hook, store):
    make_hook().get_company_info()
    saved = store.tokens.get("quickbooks", TOKEN_KEY)
    assert saved["refresh_token"] not in (None, SANDBOX_REFRESH_TOKEN)
    assert saved["access_token"] and saved["expires_at"] > time.time() + 3000
    # The connection's refresh token is spent: only the stored one works now.
    spent = requests.post(
        f"{running.url}/quickbooks/oauth2/v1/tokens/bearer",
        auth=(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET),
        data={"grant_type": "refresh_token", "refresh_token": SANDBOX_REFRESH_TOKEN},
        timeout=5,
    )
    assert spent.json() == {"error": "invalid_grant"}


def test_another_hook_reuses_the_stored_token(running, make_hook):
    make_hook().get_company_info()
    make_hook().get_company_info()
    assert counts(running)[TOKEN_ROUTE] == 1


def test_refreshes_proactively_before_the_hour_is_up(running, make_hook):
    clock = Clock()
    hook = make_hook(clock=clock)
    hook.get_company_info()
    running.control.advance_clock(3400)  # 200 s left: inside the 5-minute margin
    clock.offset = 3400
    hook.get_company_info()
    assert counts(running)[TOKEN_ROUTE] == 2
    assert all(status != 401 for _, _, status in statuses(running))


def test_refreshes_once_on_401(running, make_hook):
    hook = make_hook()
    hook.get_company_info()
    running.control.fault("quickbooks", "expired_auth")
    assert hook.get_company_info()["CompanyName"] == "Brightside Marketing"
    assert counts(running)[TOKEN_ROUTE] == 2
    assert [s for _, route, s in statuses(running) if route.endswith("companyinfo/{id}")] == [200, 401, 200]


def test_revoked_refresh_token_fails_fast_with_a_clear_message(running, make_hook, store):
    requests.post(
        f"{running.url}/quickbooks/oauth2/v1/tokens/bearer",
        auth=(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET),
        data={"grant_type": "refresh_token", "refresh_token": SANDBOX_REFRESH_TOKEN},
        timeout=5,
    )
    with pytest.raises(AuthError) as info:
        make_hook().get_company_info()
    assert info.value.code == "invalid_grant"
    assert "re-authorize" in str(info.value)
    assert SANDBOX_REFRESH_TOKEN not in str(info.value) and SANDBOX_CLIENT_SECRET not in str(info.value)
    assert counts(running)[TOKEN_ROUTE] == 2  # ours + the one above: no retry loop
    assert store.tokens.get("quickbooks", TOKEN_KEY) is None


def test_secrets_never_reach_the_logs(running, make_hook, store, caplog):
    caplog.set_level(logging.DEBUG)
    hook = make_hook()
    hook.get_company_info()
    running.control.fault("quickbooks", "expired_auth")
    hook.get_company_info()
    with pytest.raises(RecordRejectedError) as info:
        hook.vendors.create({"DisplayName": "Adobe Inc."})
    saved = store.tokens.get("quickbooks", TOKEN_KEY)
    text = caplog.text + str(info.value) + repr(hook.config)
    for secret in (SANDBOX_CLIENT_SECRET, SANDBOX_REFRESH_TOKEN, saved["refresh_token"], saved["access_token"]):
        assert secret not in text


# ---------------------------------------------------------------------- configuration


def test_hosts_and_token_url_follow_the_connection(conn, make_hook):
    assert make_hook().config.token_url.endswith("/quickbooks/oauth2/v1/tokens/bearer")
    conn(host="", extra={"environment": "sandbox"})
    config = make_hook().config
    assert config.api_host == qbo.SANDBOX_HOST and config.token_url == qbo.OAUTH_ENDPOINT
    conn(host="", extra={"environment": "production", "token_url": "https://idp.example/token"})
    config = make_hook().config
    assert config.api_host == qbo.PRODUCTION_HOST and config.token_url == "https://idp.example/token"


@pytest.mark.parametrize(
    ("extra", "match"),
    [({"realm_id": ""}, "realm_id"), ({"realm_id": "abc"}, "numeric"), ({"environment": "staging"}, "environment")],
)
def test_bad_connections_are_configuration_errors(conn, make_hook, extra, match):
    conn(extra=extra)
    with pytest.raises(ConfigurationError, match=match):
        _ = make_hook().config


# ---------------------------------------------------------------------- queries


def test_query_pages_to_the_end(running, make_hook):
    running.control.generate({"quickbooks": {"vendors": 24}})
    hook = make_hook()
    vendors = list(hook.query_entities("Vendor", page_size=10))
    assert len(vendors) == 25
    ids = [int(v["Id"]) for v in vendors]
    assert ids == sorted(set(ids))
    assert counts(running)["quickbooks GET /v3/company/{realm}/query"] == 3
    with pytest.raises(ValueError, match="1000"):
        list(hook.query_entities("Vendor", page_size=1001))


def test_query_exact_multiple_reads_one_empty_page(running, make_hook):
    running.control.generate({"quickbooks": {"vendors": 19}})
    assert len(list(make_hook().query_entities("Vendor", page_size=10))) == 20
    assert counts(running)["quickbooks GET /v3/company/{realm}/query"] == 3


def test_find_vendor_by_name_escapes_quotes_and_sees_inactive(make_hook):
    hook = make_hook()
    created = hook.vendors.create({"DisplayName": "Dianne's Auto Shop", "Active": False})
    assert hook.vendors.find(DisplayName="Dianne's Auto Shop", Active=[True, False])["Id"] == created["Id"]
    assert hook.vendors.find(DisplayName="Adobe Inc.", Active=[True, False])["Id"] == "56"
    assert hook.vendors.find(DisplayName="Nobody Ltd", Active=[True, False]) is None


def test_accounts_by_number_and_type(make_hook):
    hook = make_hook()
    assert hook.accounts.find(AcctNum="6030")["Name"] == "Advertising & Promotion"
    assert hook.accounts.find(AcctNum="6050") is None  # no meals account in the story
    assert [a["AcctNum"] for a in hook.accounts.list(AccountType="Expense")] == ["6010", "6020", "6030", "6040"]
    assert hook.accounts.get("33")["AccountType"] == "Accounts Payable"
    with pytest.raises(TypeError, match="quickbooks accounts cannot create"):
        hook.accounts.create({"Name": "New"})


def test_missing_object_is_not_found(make_hook):
    with pytest.raises(NotFoundError) as info:
        make_hook().vendors.get("9999")
    assert info.value.code == "610"


# ---------------------------------------------------------------------- writes


def test_vendor_and_purchase_order_story(make_hook):
    hook = make_hook()
    rid = hook.request_id_for("bill-qbo", "vendor", "00901CLH", "fp-1")
    assert len(rid) <= 50
    vendor = hook.vendors.create({"DisplayName": "Cloudline Hosting", "BillAddr": {"Country": "US"}}, request_id=rid)
    account = hook.accounts.find(AcctNum="6020")
    order = hook.purchase_orders.create(
        {
            "VendorRef": {"value": vendor["Id"]},
            "APAccountRef": {"value": hook.accounts.find(AcctNum="2000")["Id"]},
            "DocNumber": "CLH-3301",
            "Line": [
                {
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "Amount": "420.00",
                    "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account["Id"]}},
                }
            ],
        },
        request_id=hook.request_id_for("bill-qbo", "po", "00n01CLH3301", "fp-1"),
    )
    assert order["TotalAmt"] == 420.0 and order["VendorRef"]["name"] == "Cloudline Hosting"
    updated = hook.purchase_orders.update(order["Id"], {"Memo": "Hosting, November"}, current=order)
    assert updated["SyncToken"] == "1" and updated["Memo"] == "Hosting, November"
    assert hook.purchase_orders.find(DocNumber="CLH-3301")["Id"] == order["Id"]
    deleted = hook.purchase_orders.delete(order["Id"])
    assert deleted["status"] == "Deleted"
    assert hook.vendors.delete(vendor["Id"])["Active"] is False  # names are never deleted: made inactive
    assert hook.vendors.find(DisplayName="Cloudline Hosting") is None


def test_lost_answer_is_replayed_not_duplicated(running, make_hook):
    running.control.fault("quickbooks", "drop_after_commit", method="POST", path="/vendor$")
    vendor = make_hook().vendors.create({"DisplayName": "Cloudline Hosting"})
    assert vendor["DisplayName"] == "Cloudline Hosting"
    names = [v["DisplayName"] for v in running.control.state("quickbooks")[SANDBOX_REALM_ID]["Vendor"]]
    assert names.count("Cloudline Hosting") == 1
    assert counts(running)["quickbooks POST /v3/company/{realm}/vendor"] == 2


def test_duplicate_name_is_a_record_error_not_retried(running, make_hook):
    with pytest.raises(RecordRejectedError) as info:
        make_hook().vendors.create({"DisplayName": "Dana Whitfield"})  # an Employee has it
    assert info.value.code == qbo.DUPLICATE_NAME
    assert counts(running)["quickbooks POST /v3/company/{realm}/vendor"] == 1


def test_stale_sync_token_is_reread_and_retried_once(running, make_hook):
    hook = make_hook()
    vendor = hook.vendors.create({"DisplayName": "Cloudline Hosting"})
    hook.vendors.update(vendor["Id"], {"CompanyName": "Cloudline Inc."}, current=vendor)  # someone else's edit
    updated = hook.vendors.update(vendor["Id"], {"AcctNum": "CL-7"}, current=vendor)
    assert updated["SyncToken"] == "2"
    assert updated["AcctNum"] == "CL-7" and updated["CompanyName"] == "Cloudline Inc."
    vendor_calls = [s for m, r, s in statuses(running) if r.endswith("/vendor") or r.endswith("/vendor/{id}")]
    assert vendor_calls == [200, 200, 400, 200, 200]  # create, edit, stale, re-read, retry


def test_stale_twice_raises_stale_object_error(requests_mock, conn, make_hook):
    conn(host="https://qbo.example.test")
    requests_mock.post(
        "https://qbo.example.test/oauth2/v1/tokens/bearer",
        json={"access_token": "at-1", "refresh_token": "rt-2", "expires_in": 3600, "token_type": "bearer"},
    )
    stale = {"Fault": {"Error": [{"Message": "Stale Object Error", "Detail": "stale", "code": "5010"}]}}
    base = f"https://qbo.example.test/v3/company/{SANDBOX_REALM_ID}"
    requests_mock.post(f"{base}/vendor", status_code=400, json=stale)
    requests_mock.get(f"{base}/vendor/7", json={"Vendor": {"Id": "7", "SyncToken": "5"}})
    with pytest.raises(StaleObjectError) as info:
        make_hook().vendors.update("7", {"AcctNum": "X"}, current={"Id": "7", "SyncToken": "3"})
    assert isinstance(info.value, RecordRejectedError) and info.value.code == "5010"
    posts = [r for r in requests_mock.request_history if r.method == "POST" and "/vendor" in r.path]
    assert [json.loads(r.body)["SyncToken"] for r in posts] == ["3", "5"]
    assert posts[0].qs["requestid"] != posts[1].qs["requestid"]  # a new SyncToken is a new request


# ---------------------------------------------------------------------- throttling


def test_429_is_absorbed_after_qbo_s_60_seconds(running, make_hook, sleeps):
    hook = make_hook()
    hook.get_company_info()
    running.control.fault("quickbooks", "429", count=2)
    assert hook.vendors.get("56")["DisplayName"] == "Adobe Inc."
    assert len(sleeps) == 2 and all(60 <= s <= 61 for s in sleeps)


def test_429_wait_is_capped_by_retry_settings(running, make_hook, sleeps):
    hook = make_hook(retry=RetrySettings(max_attempts=3, base_wait=0.01, max_wait=5))
    hook.get_company_info()
    running.control.fault("quickbooks", "429")
    hook.vendors.get("56")
    assert len(sleeps) == 1 and 5 <= sleeps[0] <= 6


def test_per_minute_quota_is_waited_out(running, store, conn):
    running.control.switch("quickbooks", "max_requests_per_minute", 3)
    waited: list[float] = []

    def sandbox_sleep(seconds: float) -> None:  # the 60 s pass on the sandbox clock, not the wall clock
        waited.append(seconds)
        running.control.advance_clock(seconds)

    hook = QuickBooksHook(CONN_ID, state_store=store, sleep=sandbox_sleep, retry=RetrySettings(max_attempts=3))
    names = [hook.vendors.get("56")["DisplayName"] for _ in range(5)]
    assert names == ["Adobe Inc."] * 5
    assert len(waited) == 1 and 60 <= waited[0] <= 61


def test_budget_keeps_a_burst_under_ten_per_second(running, make_hook):
    hook = make_hook()
    for _ in range(14):
        hook.vendors.get("56")
    assert all(status != 429 for _, _, status in statuses(running))


def test_never_more_than_ten_requests_in_flight(running, make_hook):
    hook = make_hook()
    hook.get_company_info()
    running.control.switch("quickbooks", "max_requests_per_second", None)
    # Calls outlast the client's 1.2 s budget window, so only the concurrency cap keeps #11 waiting.
    running.control.latency("quickbooks", 1500)
    errors: list[BaseException] = []

    def read():
        try:
            hook.vendors.get("56")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(status != 429 for _, _, status in statuses(running))


# ---------------------------------------------------------------------- wire details (requests-mock)


@pytest.fixture
def mocked(requests_mock, conn):
    conn(host="https://qbo.example.test")
    requests_mock.post(
        "https://qbo.example.test/oauth2/v1/tokens/bearer",
        json={"access_token": "at-1", "refresh_token": "rt-2", "expires_in": 3600, "token_type": "bearer"},
    )
    return requests_mock, f"https://qbo.example.test/v3/company/{SANDBOX_REALM_ID}"


def test_minorversion_on_every_call_and_requestid_on_writes(mocked, make_hook):
    mock, base = mocked
    mock.get(f"{base}/vendor/56", json={"Vendor": {"Id": "56"}})
    mock.post(f"{base}/vendor", json={"Vendor": {"Id": "57"}})
    hook = make_hook()
    hook.vendors.get("56")
    hook.vendors.create({"DisplayName": "A"}, request_id="rid-1")
    hook.vendors.create({"DisplayName": "A"})
    hook.vendors.create({"DisplayName": "A"})
    api_calls = [r for r in mock.request_history if "/v3/company/" in r.url]
    assert all(r.qs["minorversion"] == ["75"] for r in api_calls)
    assert api_calls[0].headers["Authorization"] == "Bearer at-1"
    assert api_calls[1].qs["requestid"] == ["rid-1"]
    assert api_calls[2].qs["requestid"] == api_calls[3].qs["requestid"]  # derived from the body
    token_call = mock.request_history[0]
    assert token_call.headers["Authorization"].startswith("Basic ")
    assert "client_secret" not in token_call.body


def test_fault_inside_a_200_is_an_error(mocked, make_hook):
    mock, base = mocked
    fault = {
        "Fault": {"Error": [{"Message": "Duplicate Name Exists Error", "code": "6240"}], "type": "ValidationFault"}
    }
    mock.post(f"{base}/vendor", json=fault)
    with pytest.raises(RecordRejectedError) as info:
        make_hook().vendors.create({"DisplayName": "A"})
    assert info.value.code == "6240"


def test_403_is_fatal_with_a_clear_message(mocked, make_hook):
    mock, base = mocked
    body = {
        "Fault": {"Error": [{"Message": "ApplicationAuthorizationFailed", "code": "3100"}], "type": "AUTHENTICATION"}
    }
    mock.get(f"{base}/companyinfo/{SANDBOX_REALM_ID}", status_code=403, json=body)
    ok, message = make_hook().test_connection()
    assert not ok and "still connected" in message
    assert len([r for r in mock.request_history if "companyinfo" in r.url]) == 1


# ---------------------------------------------------------------------- CDC and webhooks


def test_change_data_capture(running, make_hook):
    from datetime import datetime, timedelta, timezone

    hook = make_hook()
    since = datetime.now(timezone.utc) - timedelta(minutes=5)
    vendor = hook.vendors.create({"DisplayName": "Cloudline Hosting"})
    order = hook.purchase_orders.create(
        {
            "VendorRef": {"value": vendor["Id"]},
            "APAccountRef": {"value": "33"},
            "Line": [
                {
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "Amount": 420,
                    "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "59"}},
                }
            ],
        }
    )
    hook.purchase_orders.delete(order["Id"])
    changes = hook.get_changes(["Vendor", "PurchaseOrder"], since)
    assert [v["Id"] for v in changes["Vendor"]] == [vendor["Id"]]
    assert changes["PurchaseOrder"][0]["status"] == "Deleted"
    running.control.switch("quickbooks", "cdc_shape", "combined")
    assert hook.get_changes(["Vendor", "PurchaseOrder"], since) == changes
    assert [v["Id"] for v in hook.vendors.list(updated_since=since)] == [vendor["Id"]]


def test_webhook_signature_verification(running, make_hook):
    running.control.switch("quickbooks", "webhook_endpoint", "http://127.0.0.1:9/qbo")
    before = len(running.control.webhooks())
    hook = make_hook()
    hook.vendors.create({"DisplayName": "Cloudline Hosting"})
    running.sandbox.ctx.webhooks.wait_idle()
    (delivery,) = running.control.webhooks()[before:]
    body, signature = delivery["body"].encode(), delivery["headers"]["intuit-signature"]
    # the receiver's verifier (webhooks/signatures.py) with the connection's verifier token
    assert signatures.body_hmac(hook.config.webhook_verifier_token, body, signature)
    assert not signatures.body_hmac(hook.config.webhook_verifier_token, body + b" ", signature)


# ---------------------------------------------------------------------- resources


def test_the_hook_names_its_realm_as_tenant_and_its_pool(make_hook):
    hook = make_hook()
    assert hook.tenant == SANDBOX_REALM_ID
    assert (QuickBooksHook.pool, QuickBooksHook.max_concurrency) == ("quickbooks_api", 10)


def test_vendors_are_found_by_exact_display_name_inactive_ones_included_quotes_escaped(make_hook):
    hook = make_hook()
    created = hook.vendors.create({"DisplayName": "Dianne's Auto Shop"})
    hook.vendors.update(created["Id"], {"Active": False})
    found = hook.vendors.find(DisplayName="Dianne's Auto Shop", Active=[True, False])
    assert found is not None and found["Id"] == created["Id"] and found["Active"] is False
    assert hook.vendors.find(DisplayName="Dianne's Auto Shop") is None  # inactive ones hide by default
    assert hook.vendors.find(DisplayName="dianne's auto shop", Active=[True, False]) is None  # exact only
    several = hook.vendors.list(DisplayName=["Adobe Inc.", "Dianne's Auto Shop"], Active=[True, False])
    assert sorted(v["DisplayName"] for v in several) == ["Adobe Inc.", "Dianne's Auto Shop"]


def test_an_update_reads_the_current_sync_token_and_retries_once_when_stale(running, make_hook):
    hook = make_hook()
    vendor = hook.vendors.get("56")
    hook.vendors.update("56", {"AcctNum": "A-1"})  # someone else moves the token on
    updated = hook.vendors.update("56", {"AcctNum": "A-2"}, current=vendor)  # based on the stale read
    assert updated["AcctNum"] == "A-2" and updated["SyncToken"] == "2"


def test_documents_are_listed_by_doc_number_and_deleted_on_their_current_token(make_hook):
    hook = make_hook()
    body = {
        "VendorRef": {"value": "56"},
        "APAccountRef": {"value": "33"},
        "DocNumber": "ADB-2026-11",
        "Line": [
            {
                "DetailType": "AccountBasedExpenseLineDetail",
                "Amount": 10.5,
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "59"}},
            }
        ],
    }
    order = hook.purchase_orders.create(body, request_id="po-adb-2026-11")
    hook.purchase_orders.update(order["Id"], {"POStatus": "Closed"})
    assert [o["Id"] for o in hook.purchase_orders.list(DocNumber=["ADB-2026-11", "nope"])] == [order["Id"]]
    hook.purchase_orders.delete(order["Id"])
    with pytest.raises(NotFoundError):
        hook.purchase_orders.get(order["Id"])
    bill = hook.bills.create(body)
    assert hook.bills.find(DocNumber="ADB-2026-11")["Id"] == bill["Id"]


def test_test_connection_warns_when_the_plan_has_no_purchase_orders(running, make_hook):
    running.control.switch("quickbooks", "offering_sku", "QuickBooks Online Essentials")
    ok, message = make_hook().test_connection()
    assert ok and "Warning: the plan is QuickBooks Online Essentials" in message


def test_a_create_without_replay_reports_a_lost_answer_instead_of_resending_it(running, make_hook):
    from airflow_provider_mlconnector.exceptions import WriteOutcomeUnknownError

    running.control.fault("quickbooks", "drop_after_commit", method="POST", path="/vendor$")
    with pytest.raises(WriteOutcomeUnknownError):
        make_hook().vendors.create({"DisplayName": "Cloudline Hosting"}, replay=False)
    assert counts(running)["quickbooks POST /v3/company/{realm}/vendor"] == 1  # sent once, committed once


def test_a_batch_create_answers_each_body_in_order_whatever_order_quickbooks_answers_in(running, make_hook):
    bodies = [{"DisplayName": "Batch One"}, {"DisplayName": "Dana Whitfield"}, {"DisplayName": "Batch Three"}]
    one, refused, three = make_hook().vendors.create_many(bodies)  # the sandbox answers in reverse
    assert (one["DisplayName"], three["DisplayName"]) == ("Batch One", "Batch Three")
    assert isinstance(refused, RecordRejectedError) and refused.code == qbo.DUPLICATE_NAME
    assert counts(running)["quickbooks POST /v3/company/{realm}/batch"] == 1
    (request,) = [r for r in running.control.requests("quickbooks") if r["path"].endswith("/batch")]
    assert request["status"] == 200


def test_a_lost_batch_answer_is_reported_never_resent(running, make_hook):
    from airflow_provider_mlconnector.exceptions import WriteOutcomeUnknownError

    running.control.fault("quickbooks", "drop_after_commit", method="POST", path="/batch$")
    with pytest.raises(WriteOutcomeUnknownError):
        make_hook().vendors.create_many([{"DisplayName": "Lost Batch Vendor"}])
    assert counts(running)["quickbooks POST /v3/company/{realm}/batch"] == 1


def test_a_batch_item_without_an_answer_may_exist(mocked, make_hook):
    from airflow_provider_mlconnector.exceptions import WriteOutcomeUnknownError

    mock, base = mocked
    mock.post(f"{base}/batch", json={"BatchItemResponse": [{"bId": "b0", "Vendor": {"Id": "9", "DisplayName": "A"}}]})
    hook = make_hook()
    first, second = hook.vendors.create_many([{"DisplayName": "A"}, {"DisplayName": "B"}])
    (sent,) = [r for r in mock.request_history if r.url.split("?")[0].endswith("/batch")]
    assert len(sent.qs["requestid"][0]) <= 36  # QuickBooks' limit for a batch's requestid
    assert first["Id"] == "9" and isinstance(second, WriteOutcomeUnknownError)
    with pytest.raises(ValueError, match="1 to 30"):
        hook.vendors.create_many([{"DisplayName": f"V{i}"} for i in range(31)])
