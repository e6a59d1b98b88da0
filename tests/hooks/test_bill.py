"""BillHook against the BILL emulator (real HTTP) and requests-mock for edge cases."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from airflow_provider_mlconnector.core.http import RetrySettings
from airflow_provider_mlconnector.exceptions import (
    AuthError,
    ConfigurationError,
    RateLimitedError,
    RecordRejectedError,
    WriteOutcomeUnknownError,
)
from airflow_provider_mlconnector.hooks import bill as bill_module
from airflow_provider_mlconnector.hooks.bill import (
    BULK_BILLS_LIMIT,
    WEBHOOK_EVENTS,
    BillHook,
    bill_applications,
    bill_filter,
    format_bill_datetime,
    parse_bill_error,
)
from airflow_provider_mlconnector.sandbox.bill import (
    SANDBOX_DEV_KEY,
    SANDBOX_ORGANIZATION_ID,
    SANDBOX_PASSWORD,
    BillSandbox,
)
from airflow_provider_mlconnector.sandbox.bill.demo import (
    ACCOUNTS,
    ADOBE_BILL_ID,
    ADOBE_VENDOR_ID,
    CLOUDLINE_BILL_IDS,
    CLOUDLINE_VENDOR_ID,
    demo_fixture,
)
from airflow_provider_mlconnector.state import StateStore
from airflow_provider_mlconnector.webhooks import signatures

CONN_ID = "bill_test"
ORG = SANDBOX_ORGANIZATION_ID
LOGIN = "bill POST /connect/v3/login"
MOCK = "https://bill.mock.test"
ADDRESS = {"line1": "1 Main St", "city": "Austin", "stateOrProvince": "TX", "zipOrPostalCode": "78701", "country": "US"}
FAST = RetrySettings(max_attempts=4, base_wait=0.01)


SANDBOX_SYSTEMS = [BillSandbox]


@pytest.fixture(autouse=True)
def fresh(reset_demo, monkeypatch):
    reset_demo()
    monkeypatch.setattr(bill_module, "_LIMITS", {})  # a fresh per-organization cap per test


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(state_store):
    return state_store


@pytest.fixture
def conn(running, use_connection):
    def set_conn(**overrides):
        connection = running.sandbox.systems["bill"].connection(f"{running.url}/bill")
        return use_connection(CONN_ID, connection, **overrides)

    set_conn()
    return set_conn


@pytest.fixture
def make_hook(conn, store, sleeps):
    def make(**kwargs) -> BillHook:
        kwargs.setdefault("retry", FAST)
        kwargs.setdefault("max_rate_limit_wait", 5.0)
        return BillHook(CONN_ID, state_store=store, sleep=sleeps, **kwargs)

    return make


@pytest.fixture
def hook(make_hook) -> BillHook:
    return make_hook()


def logins(running) -> int:
    return running.control.request_counts("bill").get(LOGIN, 0)


def stored_session(store, hook: BillHook) -> str:
    return store.tokens.get("bill", hook.config.session_key)["session_id"]


def bill_body(vendor_id: str = ADOBE_VENDOR_ID, number: str = "INV-1", amounts=(Decimal("100.00"),)) -> dict:
    return {
        "vendorId": vendor_id,
        "dueDate": "2026-12-31",
        "invoice": {"invoiceNumber": number, "invoiceDate": "2026-11-30"},
        "billLineItems": [{"amount": a, "classifications": {"chartOfAccountId": ACCOUNTS["6010"][0]}} for a in amounts],
    }


# ---------------------------------------------------------------------- connection and session


def test_test_connection_reports_the_organization(hook, running):
    ok, message = hook.test_connection()
    assert ok, message
    assert ORG in message and "not MFA-trusted" in message
    assert logins(running) == 1


def test_test_connection_explains_a_bad_login(conn, make_hook):
    conn(password="not-the-password")
    ok, message = make_hook().test_connection()
    assert not ok
    assert "BDC_1101" in message and "check the username (login) and the password" in message
    assert "not-the-password" not in message and SANDBOX_DEV_KEY not in message


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"extra": {"dev_key": ""}}, "dev_key"),
        ({"login": None}, "login"),
        ({"extra": {"organization_id": "123"}}, "008"),
    ],
)
def test_configuration_errors_are_clear(conn, make_hook, overrides, missing):
    conn(**overrides)
    with pytest.raises(ConfigurationError, match=missing):
        make_hook().config  # noqa: B018


def test_max_rate_limit_wait_comes_from_the_connection(conn, store):
    conn(extra={"max_rate_limit_wait": "42"})
    assert BillHook(CONN_ID, state_store=store).config.max_rate_limit_wait == 42.0
    assert BillHook(CONN_ID, state_store=store, max_rate_limit_wait=7).config.max_rate_limit_wait == 7
    assert BillHook(CONN_ID, state_store=store).client.retry.max_wait == 42.0
    with pytest.raises(ConfigurationError, match="at least 2 seconds"):
        BillHook(CONN_ID, state_store=store, max_rate_limit_wait=0.5).config  # noqa: B018


def test_one_session_is_shared_through_the_token_store(make_hook, store, running):
    first, second = make_hook(), make_hook()
    assert first.vendors.find(name="Adobe Inc.")["id"] == ADOBE_VENDOR_ID
    assert second.vendors.get(ADOBE_VENDOR_ID)["name"] == "Adobe Inc."
    assert logins(running) == 1
    assert store.tokens.get("bill", first.config.session_key)["organization_id"] == ORG
    first.logout()
    assert second.bills.get(ADOBE_BILL_ID)["id"] == ADOBE_BILL_ID  # BDC_1109 -> one new login
    assert logins(running) == 2


@pytest.mark.parametrize("how", ["clock", "fault"])
def test_session_expiring_mid_pagination_costs_one_login(hook, running, how):
    running.control.generate({"bill": {"bills": 253 - len(demo_fixture()["bills"])}})
    rows = hook.bills.list()
    first_page = [next(rows) for _ in range(100)]
    if how == "clock":
        running.control.advance_clock(36 * 60)
    else:
        running.control.fault("bill", "expired_auth", path="^/connect/v3/bills$")
    rest = list(rows)
    ids = [b["id"] for b in first_page + rest]
    assert len(ids) == len(set(ids)) == 253
    assert logins(running) == 2
    statuses = [r["status"] for r in running.control.requests("bill") if r["route"] == "/connect/v3/bills"]
    assert statuses == [200, 401, 200, 200]


def test_a_session_renewed_by_another_task_is_reused(make_hook, running):
    first, second = make_hook(), make_hook()
    first.vendors.get(ADOBE_VENDOR_ID)
    second.vendors.get(ADOBE_VENDOR_ID)
    running.control.advance_clock(36 * 60)
    first.vendors.get(ADOBE_VENDOR_ID)  # logs in again
    second.vendors.get(ADOBE_VENDOR_ID)  # rejected, finds the new session in the store: no login
    assert logins(running) == 2


def test_concurrent_expiry_logs_in_once(make_hook, running):
    hooks = [make_hook() for _ in range(4)]
    for h in hooks:
        h.vendors.get(ADOBE_VENDOR_ID)
    running.control.advance_clock(36 * 60)
    errors: list[BaseException] = []

    def work(h: BillHook) -> None:
        try:
            h.vendors.get(ADOBE_VENDOR_ID)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(h,)) for h in hooks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert logins(running) == 2


# ---------------------------------------------------------------------- rate limits


def test_six_threads_never_exceed_three_in_flight(make_hook, running):
    running.control.latency("bill", 150)
    errors: list[BaseException] = []

    def work() -> None:
        hook = make_hook()
        try:
            for _ in range(3):
                hook.vendors.get(CLOUDLINE_VENDOR_ID)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    concurrency = running.control.state("bill")["concurrency"]
    assert concurrency["rejections"] == 0
    assert concurrency["peak_attempted"] <= 3
    assert concurrency["peak_in_flight"] == 3  # the threads really did overlap
    assert logins(running) == 1
    vendor_calls = running.control.request_counts("bill")["bill GET /connect/v3/vendors/{vendor_id}"]
    assert vendor_calls == 18  # no BDC_1322, so no retries


def test_bdc_1322_is_retried_after_a_short_jittered_wait(hook, running, sleeps):
    hook.vendors.get(ADOBE_VENDOR_ID)
    running.control.fault("bill", "429", count=2)  # BILL's throttle answer: 400 + BDC_1322
    assert hook.vendors.get(ADOBE_VENDOR_ID)["id"] == ADOBE_VENDOR_ID
    assert len(sleeps) == 2
    assert all(1.0 <= s <= 1.02 for s in sleeps)


def test_bdc_1322_with_status_429_is_absorbed_too(hook, running, sleeps):
    running.control.switch("bill", "concurrency_limit_status", 429)
    running.control.fault("bill", "429")
    assert hook.bills.get(ADOBE_BILL_ID)["invoice"]["invoiceNumber"] == "ADB-2026-10"
    assert len(sleeps) == 1 and sleeps[0] >= 1.0


def test_hourly_cap_beyond_the_maximum_wait_fails_clearly(make_hook, running, sleeps):
    now = running.sandbox.ctx.clock.now()
    running.control.advance_clock(3600 - now % 3600 + 0.5)
    running.control.switch("bill", "hourly_request_limit", 2)  # the login and one call
    hook = make_hook(max_rate_limit_wait=600, clock=lambda: 36_000.0 + 10)  # 10 s past the hour
    hook.vendors.get(ADOBE_VENDOR_ID)
    with pytest.raises(RateLimitedError) as caught:
        hook.vendors.get(ADOBE_VENDOR_ID)
    assert caught.value.code == "BDC_1144"
    assert "asks to wait 3591s, more than the configured maximum 600s" in str(caught.value)
    assert caught.value.retry_after == 3591.0
    assert sleeps == []


def test_hourly_cap_within_the_maximum_wait_waits_for_the_next_hour(requests_mock, conn, make_hook, sleeps):
    conn(host=MOCK)
    requests_mock.post(f"{MOCK}/connect/v3/login", json={"sessionId": "s-1", "organizationId": ORG})
    capped = [{"code": "BDC_1144", "message": "Max number of allowed requests per hour reached: 20000."}]
    requests_mock.get(f"{MOCK}/connect/v3/vendors/v1", [{"status_code": 400, "json": capped}, {"json": {"id": "v1"}}])
    hook = make_hook(max_rate_limit_wait=900, clock=lambda: 36_000.0 + 3000)  # 10 minutes before the hour
    assert hook.vendors.get("v1") == {"id": "v1"}
    assert len(sleeps) == 1
    assert 601.0 <= sleeps[0] <= 601.02


def test_plain_http_429_is_absorbed(requests_mock, conn, make_hook, sleeps):
    conn(host=MOCK)
    requests_mock.post(f"{MOCK}/connect/v3/login", json={"sessionId": "s-1"})
    requests_mock.get(f"{MOCK}/connect/v3/bills/b1", [{"status_code": 429}, {"json": {"id": "b1"}}])
    assert make_hook().bills.get("b1") == {"id": "b1"}
    assert len(sleeps) == 1 and sleeps[0] <= 0.01


def test_parse_bill_error():
    def response(status: int, body) -> requests.Response:
        r = requests.Response()
        r.status_code = status
        r._content = json.dumps(body).encode() if body is not None else b"<html>"
        r.reason = "Bad Request"
        return r

    def entry(code: str, message: str) -> dict:
        return {
            "timestamp": "2026-11-21T00:00:00.000+00:00",
            "code": code,
            "severity": "ERROR",
            "category": "REQUEST",
            "message": message,
        }

    hourly = parse_bill_error(response(400, [entry("BDC_1144", "... per hour reached: 20000.")]), now=lambda: 7300.0)
    assert (hourly.kind, hourly.code, hourly.retry_after) == ("rate_limited", "BDC_1144", 3501.0)
    minute = parse_bill_error(response(400, [entry("BDC_1144", "... per minute reached: 5.")]), now=lambda: 7300.0)
    assert minute.retry_after == 21.0  # 7300 s is 40 s into a minute
    assert parse_bill_error(response(400, [entry("BDC_1322", "x")])).retry_after == 1.0
    assert parse_bill_error(response(401, [entry("BDC_1109", "Session is invalid.  Please log in.")])).kind == (
        "auth_expired"
    )
    assert parse_bill_error(response(401, [entry("BDC_1102", "Developer key is invalid.")])).kind == "auth_fatal"
    several = parse_bill_error(response(400, [entry("BDC_1143", "a: bad"), entry("BDC_1143", "b: bad")]))
    assert (several.kind, several.message) == (None, "a: bad; b: bad")
    assert parse_bill_error(response(502, None)).message == "Bad Request"


# ---------------------------------------------------------------------- secrets


def test_secrets_stay_out_of_logs_and_errors(make_hook, conn, store, running, caplog):
    caplog.set_level(logging.DEBUG)
    hook = make_hook()
    hook.vendors.get(ADOBE_VENDOR_ID)
    old_session = stored_session(store, hook)
    running.control.advance_clock(36 * 60)
    list(hook.vendors.list())
    new_session = stored_session(store, hook)
    assert new_session != old_session
    failures: list[BaseException] = []
    with pytest.raises(RecordRejectedError) as rejected:
        hook.vendors.create({"name": "Bad Country", "address": {**ADDRESS, "country": "USA"}})
    failures.append(rejected.value)
    assert "address.country" in rejected.value.message
    conn(password="wrong-password-123")
    with pytest.raises(AuthError) as refused:
        BillHook(CONN_ID, state_store=make_store(store)).vendors.get(ADOBE_VENDOR_ID)
    failures.append(refused.value)
    assert caplog.records, "expected some log lines"
    secrets = [SANDBOX_PASSWORD, SANDBOX_DEV_KEY, old_session, new_session, "wrong-password-123"]
    texts = [caplog.text] + [f"{e} {getattr(e, 'body', '')} {getattr(e, 'message', '')}" for e in failures]
    for text in texts:
        for secret in secrets:
            assert secret not in text


def make_store(existing: StateStore) -> StateStore:
    """A second, empty store (so the failing hook cannot reuse the good session)."""
    path = Path(existing.db.url.database).with_name("other.db")
    return StateStore(f"sqlite:///{path}", fernet_keys=[Fernet.generate_key().decode()])


def test_session_is_encrypted_at_rest(hook, store, db_path):
    hook.vendors.get(ADOBE_VENDOR_ID)
    session_id = stored_session(store, hook)
    assert session_id.encode() not in db_path.read_bytes()


# ---------------------------------------------------------------------- filters and lookups


def test_bill_filter_quoting():
    assert bill_filter("name", "eq", "Adobe Inc.") == 'name:eq:"Adobe Inc."'
    assert bill_filter("name", "eq", 'Smith, "Best" \\ Co') == 'name:eq:"Smith, \\"Best\\" \\\\ Co"'
    assert bill_filter("archived", "eq", False) == "archived:eq:false"
    moment = datetime(2026, 11, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-5)))
    assert bill_filter("updatedTime", "gte", moment) == 'updatedTime:gte:"2026-11-01T14:30:15.123Z"'
    assert bill_filter("paymentStatus", "in", ["PAID", "PARTIAL"]) == 'paymentStatus:in:"PAID,PARTIAL"'
    with pytest.raises(ValueError, match="timezone"):
        format_bill_datetime(datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="commas"):
        bill_filter("id", "in", ["a,b"])
    with pytest.raises(ValueError, match="operator"):
        bill_filter("name", "like", "x")
    with pytest.raises(ValueError, match="sequence"):
        bill_filter("id", "in", "abc")


def test_find_vendor_by_name_with_quotes_and_commas(hook):
    tricky = 'Smith, "Best" & Co \\ Ltd'
    created = hook.vendors.create({"name": tricky, "address": ADDRESS})
    assert created["id"].startswith("009")
    assert hook.vendors.find(name=tricky)["id"] == created["id"]
    assert hook.vendors.find(name="Adobe Inc.")["id"] == ADOBE_VENDOR_ID
    assert hook.vendors.find(name="adobe inc.") is None
    assert hook.vendors.find(name="Adobe") is None


def test_find_vendor_skips_archived_unless_asked(hook):
    hook.vendors.archive(CLOUDLINE_VENDOR_ID)
    assert hook.vendors.find(name="Cloudline Hosting", archived=False) is None
    assert hook.vendors.find(name="Cloudline Hosting")["archived"] is True
    assert hook.vendors.restore(CLOUDLINE_VENDOR_ID)["archived"] is False


def invoice_number(number):
    return lambda bill: (bill.get("invoice") or {}).get("invoiceNumber") == number


def test_find_bill_by_vendor_and_invoice_number(hook, caplog):
    found = hook.bills.find(vendorId=ADOBE_VENDOR_ID, archived=False, matching=invoice_number("ADB-2026-10"))
    assert found["id"] == ADOBE_BILL_ID
    assert found["amount"] == Decimal("659.88")
    assert hook.bills.find(vendorId=ADOBE_VENDOR_ID, archived=False, matching=invoice_number("ADB-2026-11")) is None
    assert hook.bills.find(vendorId=CLOUDLINE_VENDOR_ID, archived=False, matching=invoice_number("ADB-2026-10")) is None
    duplicate = hook.bills.create(bill_body(number="ADB-2026-10"))  # BILL does not dedupe
    with caplog.at_level(logging.WARNING):
        assert (
            hook.bills.find(vendorId=ADOBE_VENDOR_ID, archived=False, matching=invoice_number("ADB-2026-10"))["id"]
            == ADOBE_BILL_ID
        )  # the oldest
    assert duplicate["id"] in caplog.text


def test_bills_of_several_vendors(hook, running, monkeypatch):
    monkeypatch.setattr(hook.bills, "in_limit", 1)  # one vendorId:in query per vendor
    hook.bills.create(bill_body(number="ADB-2026-11"))
    before = running.control.request_counts("bill").get("bill GET /connect/v3/bills", 0)
    numbers = sorted(
        b["invoice"]["invoiceNumber"] for b in hook.bills.list(vendorId=[ADOBE_VENDOR_ID, CLOUDLINE_VENDOR_ID])
    )
    assert numbers == ["ADB-2026-10", "ADB-2026-11", "CLH-3301", "CLH-3302"]
    assert running.control.request_counts("bill")["bill GET /connect/v3/bills"] - before == 2
    assert list(hook.bills.list(vendorId=[])) == []
    assert hook.organization_id == ORG


def test_lost_create_answer_is_not_retried_and_is_found_by_natural_key(hook, running):
    hook.vendors.get(ADOBE_VENDOR_ID)
    running.control.fault("bill", "drop_after_commit", method="POST", path="^/connect/v3/bills$")
    with pytest.raises(WriteOutcomeUnknownError):
        hook.bills.create(bill_body(number="LOST-1"))
    found = hook.bills.find(vendorId=ADOBE_VENDOR_ID, archived=False, matching=invoice_number("LOST-1"))
    assert found is not None
    bills = running.control.state("bill")["organizations"][ORG]["bills"]
    assert [b["invoice"]["invoiceNumber"] for b in bills].count("LOST-1") == 1


def test_decimal_amounts_round_trip_exactly(hook):
    created = hook.bills.create(bill_body(amounts=(Decimal("2400.00"), Decimal("350.00"), Decimal("0.10"))))
    assert created["amount"] == Decimal("2750.10")
    assert isinstance(created["amount"], Decimal)
    assert hook.bills.get(created["id"])["dueAmount"] == Decimal("2750.10")
    with pytest.raises(ValueError, match="exactly"):
        hook.bills.create(bill_body(amounts=(Decimal("12345678901234567.89"),)))


def test_update_and_archive_bill(hook):
    created = hook.bills.create(bill_body(number="UPD-1"))
    updated = hook.bills.update(created["id"], {"billLineItems": [{"amount": Decimal("80.25")}]})
    assert updated["amount"] == Decimal("80.25")
    assert hook.bills.archive(created["id"])["archived"] is True
    assert hook.bills.find(vendorId=ADOBE_VENDOR_ID, archived=False, matching=invoice_number("UPD-1")) is None
    assert hook.bills.find(vendorId=ADOBE_VENDOR_ID, matching=invoice_number("UPD-1"))["id"] == created["id"]


def test_updated_since_window(hook, running):
    start = datetime.fromtimestamp(running.sandbox.ctx.clock.now(), tz=timezone.utc) - timedelta(seconds=1)
    created = hook.vendors.create({"name": "Fresh Vendor", "address": ADDRESS})
    hook.vendors.update(ADOBE_VENDOR_ID, {"phone": "4085366001"})
    recent = {v["id"] for v in hook.vendors.list(updated_since=start)}
    assert recent == {created["id"], ADOBE_VENDOR_ID}
    untouched = {v["id"] for v in demo_fixture()["vendors"]} - {ADOBE_VENDOR_ID}
    assert CLOUDLINE_VENDOR_ID in untouched
    assert {v["id"] for v in hook.vendors.list(updated_before=start)} == untouched


def test_bulk_limits(hook, running):
    with pytest.raises(ValueError, match="at most 100"):
        hook.bills.create_many([bill_body(number=f"B-{i}") for i in range(BULK_BILLS_LIMIT + 1)])
    with pytest.raises(ValueError, match="at most 20"):
        hook.vendors.create_many([{"name": f"V{i}", "address": ADDRESS} for i in range(21)])
    assert "bill POST /connect/v3/bills/bulk" not in running.control.request_counts("bill")
    created = hook.bills.create_many([bill_body(number=f"B-{i}") for i in range(BULK_BILLS_LIMIT)])
    assert len(created) == 100 and all(b["amount"] == Decimal("100.00") for b in created)
    with pytest.raises(RecordRejectedError, match=r"\[1\]\.vendorId"):
        hook.bills.create_many([bill_body(number="OK"), bill_body(vendor_id="00902NOPE", number="BAD")])
    assert hook.vendors.create_many([{"name": "Bulk A", "address": ADDRESS}])[0]["name"] == "Bulk A"
    assert hook.bills.create_many([]) == []


# ---------------------------------------------------------------------- payments and accounts


def test_payments_by_updated_time_with_bill_links(hook):
    since = datetime(2026, 11, 1, tzinfo=timezone.utc)
    payments = list(hook.payments.list(updated_since=since))
    assert [p["billId"] for p in payments] == [CLOUDLINE_BILL_IDS[1]]
    assert bill_applications(payments[0]) == [
        {
            "payment_id": payments[0]["id"],
            "bill_payment_id": "blp02BRTSIDEBLPclh02",
            "bill_id": CLOUDLINE_BILL_IDS[1],
            "amount": Decimal("420.00"),
        }
    ]
    adobe = list(hook.payments.list(vendorId=ADOBE_VENDOR_ID))
    assert len(adobe) == 1 and adobe[0]["singleStatus"] == "CLEARED"
    assert hook.payments.get(adobe[0]["id"])["amount"] == Decimal("659.88")
    assert bill_applications({"id": "stp1", "billId": "00n1", "amount": 5.5})[0]["amount"] == Decimal("5.5")


def test_chart_of_accounts_carries_account_numbers(hook):
    accounts = {a["accountNumber"]: a["name"] for a in hook.chart_of_accounts.list(archived=False)}
    assert accounts["6030"] == "Advertising & Promotion"
    assert "6050" not in accounts  # no meals account: NCC-778 must dead-letter


# ---------------------------------------------------------------------- webhooks

HOOK_URL = "http://127.0.0.1:9/bill-webhooks"  # deliveries are recorded even when nobody listens


def test_ensure_subscription_is_consolidated_and_its_key_encrypted(hook, running, store, db_path):
    running.control.switch("bill", "require_https_notification_url", False)
    first = hook.ensure_subscription(notification_url=HOOK_URL)
    assert "securityKey" not in first
    again = hook.ensure_subscription(notification_url=HOOK_URL)
    assert again["id"] == first["id"]
    assert len(list(hook.subscriptions.list())) == 1
    key = hook.webhook_security_key(first["id"])
    assert key and key.encode() not in db_path.read_bytes()
    hook.vendors.create({"name": "Signed Vendor", "address": ADDRESS})
    running.sandbox.ctx.webhooks.wait_idle()
    delivery = running.control.webhooks()[-1]
    raw = delivery["body"].encode()
    signature = delivery["headers"]["x-bill-sha-signature"]
    assert json.loads(raw)["metadata"]["subscriptionId"] == first["id"]
    # the receiver's verifier (webhooks/signatures.py) accepts what the sandbox signed with the stored key
    assert signatures.body_hmac(key, raw, signature)
    assert not signatures.body_hmac(key, raw + b" ", signature)
    hook.rotate_security_key(first["id"])
    new_key = hook.webhook_security_key(first["id"])
    assert new_key != key
    hook.vendors.update(ADOBE_VENDOR_ID, {"phone": "4085366009"})
    running.sandbox.ctx.webhooks.wait_idle()
    latest = running.control.webhooks()[-1]
    assert signatures.body_hmac(new_key, latest["body"].encode(), latest["headers"]["x-bill-sha-signature"])
    assert not signatures.body_hmac(key, latest["body"].encode(), latest["headers"]["x-bill-sha-signature"])


def test_ensure_subscription_patches_events_of_an_existing_one(hook, running):
    running.control.switch("bill", "require_https_notification_url", False)
    partial = hook.create_subscription(notification_url=HOOK_URL, events=("vendor.created",), enabled=False)
    ensured = hook.ensure_subscription(notification_url=HOOK_URL)
    assert ensured["id"] == partial["id"]
    assert {e["type"] for e in ensured["events"]} == set(WEBHOOK_EVENTS)
    assert ensured["status"] == {"enabled": True}


def test_create_subscription_after_a_lost_answer_creates_one(hook, running):
    hook.vendors.get(ADOBE_VENDOR_ID)
    running.control.fault("bill", "drop_after_commit", method="POST", path="^/connect-events/v3/subscriptions$")
    created = hook.create_subscription(notification_url="https://hooks.example.test/bill")
    subs = running.control.state("bill")["organizations"][ORG]["subscriptions"]
    assert [s["id"] for s in subs] == [created["id"]]
    assert hook.webhook_security_key(created["id"]) == subs[0]["securityKey"]


def test_event_catalog_and_test_event(hook, running):
    assert set(WEBHOOK_EVENTS) <= {e["type"] for e in hook.event_catalog.list()}
    sub = hook.create_subscription(notification_url="https://hooks.example.test/bill")
    assert hook.send_test_event(sub["id"])["eventId"]
    assert hook.subscriptions.delete(sub["id"]) is None
    assert list(hook.subscriptions.list()) == []


# ---------------------------------------------------------------------- requests-mock edge cases


def test_empty_page_with_next_page_means_continue(requests_mock, conn, make_hook):
    conn(host=MOCK)
    requests_mock.post(f"{MOCK}/connect/v3/login", json={"sessionId": "s-1"})
    requests_mock.get(
        f"{MOCK}/connect/v3/vendors",
        [
            {"json": {"results": [], "nextPage": "t1"}},
            {"json": {"results": [{"id": "v1", "amount": 1.5}], "prevPage": "t0"}},
        ],
    )
    assert list(make_hook().vendors.list()) == [{"id": "v1", "amount": Decimal("1.5")}]
    pages = [r for r in requests_mock.request_history if r.method == "GET"]
    assert pages[0].qs == {"max": ["100"]}
    assert pages[1].qs == {"max": ["100"], "page": ["t1"]}
    assert pages[1].headers["devKey"] == SANDBOX_DEV_KEY and pages[1].headers["sessionId"] == "s-1"


def test_a_generic_401_logs_in_again_once_then_fails(requests_mock, conn, make_hook):
    conn(host=MOCK)
    login = requests_mock.post(
        f"{MOCK}/connect/v3/login", [{"json": {"sessionId": "s-1"}}, {"json": {"sessionId": "s-2"}}]
    )
    bills = requests_mock.get(f"{MOCK}/connect/v3/bills/b1", status_code=401, text="Unauthorized")
    with pytest.raises(AuthError):
        make_hook().bills.get("b1")
    assert login.call_count == 2
    assert [r.headers["sessionId"] for r in bills.request_history] == ["s-1", "s-2"]


def test_a_list_answer_without_results_is_an_error(requests_mock, conn, make_hook):
    conn(host=MOCK)
    requests_mock.post(f"{MOCK}/connect/v3/login", json={"sessionId": "s-1"})
    requests_mock.get(f"{MOCK}/connect/v3/payments", json={"data": []})
    with pytest.raises(Exception, match="results"):
        list(make_hook().payments.list())


def test_the_vendor_and_bill_calls_the_freshbooks_to_bill_pair_makes(hook):
    assert hook.vendors.find(name="Adobe Inc.", archived=False)["id"] == ADOBE_VENDOR_ID
    vendor = hook.vendors.create({"name": "Pair Vendor", "address": ADDRESS})
    assert hook.vendors.update(vendor["id"], {"phone": "4085366002"})["phone"] == "4085366002"
    bills = list(hook.bills.list(vendorId=[ADOBE_VENDOR_ID], archived=False))
    assert [b["id"] for b in bills] == [ADOBE_BILL_ID]

    def number(n: str):
        return lambda b: (b.get("invoice") or {}).get("invoiceNumber") == n

    assert (
        hook.bills.find(vendorId=ADOBE_VENDOR_ID, archived=False, matching=number("ADB-2026-10"))["id"] == ADOBE_BILL_ID
    )
    created = hook.bills.create(bill_body(number="PAIR-1"))
    assert hook.bills.get(created["id"])["id"] == created["id"]
    assert hook.bills.update(created["id"], {"description": "x"})["description"] == "x"
    assert hook.bills.archive(created["id"])["archived"] is True
    assert hook.bills.find(vendorId=ADOBE_VENDOR_ID, archived=False, matching=number("PAIR-1")) is None
    since = datetime(2026, 11, 1, tzinfo=timezone.utc)
    payments = list(hook.payments.list(updated_since=since))
    assert payments and hook.payments.get(payments[0]["id"])["id"] == payments[0]["id"]
