"""BambooHRHook against the BambooHR emulator (real HTTP) and requests-mock for edge cases."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest
import requests

from airflow_provider_mlconnector.core.auth import chain_key
from airflow_provider_mlconnector.core.http import RetrySettings
from airflow_provider_mlconnector.exceptions import (
    AuthError,
    ConfigurationError,
    FatalApiError,
    NotFoundError,
    RateLimitedError,
)
from airflow_provider_mlconnector.hooks.bamboohr import BambooHRHook, compute_signature
from airflow_provider_mlconnector.sandbox.bamboohr import (
    SANDBOX_API_KEY,
    SANDBOX_OAUTH_CLIENT_ID,
    SANDBOX_OAUTH_CLIENT_SECRET,
    SANDBOX_OAUTH_REFRESH_TOKEN,
    BambooHRSandbox,
)

CONN_ID = "bhr_test"
TOKEN_ROUTE = "bamboohr POST /token.php"
RECEIVER = "http://127.0.0.1:9/bamboohr"


SANDBOX_SYSTEMS = [BambooHRSandbox]


@pytest.fixture(autouse=True)
def demo(reset_demo):
    reset_demo(rewind_clock=True)


@pytest.fixture
def emulator(running) -> BambooHRSandbox:
    return running.sandbox.systems["bamboohr"]


@pytest.fixture
def store(state_store):
    return state_store


@pytest.fixture
def conn(running, emulator, use_connection):
    def set_conn(mode="api_key", **overrides):
        base = f"{running.url}/bamboohr"
        connection = emulator.oauth_connection(base) if mode == "oauth" else emulator.connection(base)
        return use_connection(CONN_ID, connection, **overrides)

    set_conn()
    return set_conn


@pytest.fixture
def make_hook(store, sleeps, conn):
    def make(**kwargs):
        kwargs.setdefault("retry", RetrySettings(max_attempts=4, base_wait=0.01, max_wait=60))
        return BambooHRHook(CONN_ID, state_store=store, sleep=sleeps, **kwargs)

    return make


def counts(running):
    return running.control.request_counts("bamboohr")


# ---------------------------------------------------------------------- API-key mode


def test_test_connection_names_the_company(make_hook):
    ok, message = make_hook().test_connection()
    assert ok
    assert message.startswith("Connected to BambooHR company 'brightside' (api_key auth;")


def test_wrong_key_fails_fast_and_clearly(running, make_hook, conn):
    conn(password="wrong-key-123")
    ok, message = make_hook().test_connection()
    assert not ok
    assert "rejected the API key" in message and "HTTP 401" in message
    assert "wrong-key-123" not in message
    assert counts(running) == {"bamboohr GET /api/gateway.php/{company}/v1/meta/fields": 1}  # no retries


def test_directory_and_employee_fields(make_hook):
    hook = make_hook()
    staff = list(hook.iter_directory())
    assert len(staff) == 12 and "15" not in [e["id"] for e in staff]
    assert len(hook.get_directory(only_current=False)["employees"]) == 13
    lucas = hook.get_employee("15", ["firstName", "status", "terminationDate"])
    assert lucas == {"id": "15", "firstName": "Lucas", "status": "Inactive", "terminationDate": "2026-10-31"}
    with pytest.raises(ValueError, match="at least one field"):
        hook.get_employee("15", [])
    with pytest.raises(NotFoundError):
        hook.get_employee("999", ["firstName"])


def test_changed_employees_since(make_hook):
    hook = make_hook()
    changed = hook.get_changed_employees(datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert set(changed["employees"]) == {"9", "12", "13", "14", "16", "17"}
    inserted = hook.get_changed_employees(datetime(2026, 11, 1), change_type="inserted")
    assert list(inserted["employees"]) == ["14", "16", "17"]
    with pytest.raises(ValueError, match="change_type"):
        hook.get_changed_employees(datetime(2026, 11, 1), change_type="Inserted")


def test_custom_report_for_bulk_pulls(make_hook):
    hook = make_hook()
    fields = ["firstName", "lastName", "workEmail", "department", "status", "hireDate", "terminationDate"]
    rows = list(hook.iter_employees(fields))
    assert len(rows) == 13  # Active and Inactive
    new_hires = list(hook.iter_employees(fields, changed_since=datetime(2026, 11, 12, tzinfo=timezone.utc)))
    assert [(r["firstName"], r["hireDate"]) for r in new_hires] == [
        ("Olivia", "2021-08-30"),  # her notice (a future-dated termination) was entered on 2026-11-18
        ("Ethan", "2026-11-16"),
        ("Jordan", "2026-11-16"),
    ]
    picked = hook.run_custom_report(["firstName"], employee_ids=["4", "15"])
    assert [e["id"] for e in picked["employees"]] == ["4", "15"]
    assert any(f["alias"] == "workEmail" for f in hook.list_fields())


# ---------------------------------------------------------------------- throttling


def test_429_with_retry_after_is_absorbed(running, make_hook, sleeps):
    running.control.fault("bamboohr", "429", count=2)
    assert make_hook().list_fields()
    assert len(sleeps) == 2 and all(5 <= s <= 6 for s in sleeps)


def test_legacy_503_throttling_is_absorbed(running, make_hook, sleeps):
    running.control.switch("bamboohr", "rate_limit_status", 503)
    running.control.fault("bamboohr", "429")
    assert make_hook().get_employee("4", ["firstName"])["firstName"] == "Dana"
    assert len(sleeps) == 1 and 5 <= sleeps[0] <= 6


def test_quota_window_is_waited_out(running, make_hook):
    running.control.switch("bamboohr", "throttle_limit", 2)
    running.control.switch("bamboohr", "throttle_window_seconds", 5)
    waited: list[float] = []

    def sandbox_sleep(seconds: float) -> None:  # time passes on the sandbox clock, not the wall clock
        waited.append(seconds)
        running.control.advance_clock(seconds)

    hook = BambooHRHook(CONN_ID, state_store=None, sleep=sandbox_sleep, retry=RetrySettings(max_attempts=3))
    for employee in ("4", "5", "6", "7"):
        hook.get_employee(employee, ["firstName"])
    assert len(waited) >= 1
    log = running.control.requests("bamboohr")
    assert [r["status"] for r in log].count(429) == len(waited)
    assert [r["status"] for r in log][-1] == 200


def test_retry_after_beyond_the_cap_fails_clearly(running, make_hook):
    running.control.switch("bamboohr", "retry_after_seconds", 3600)
    running.control.fault("bamboohr", "429")
    with pytest.raises(RateLimitedError, match="more than the configured maximum"):
        make_hook().list_fields()


# ---------------------------------------------------------------------- OAuth mode


def test_oauth_refreshes_and_persists_the_rotated_token(running, make_hook, conn, store):
    conn("oauth")
    hook = make_hook()
    ok, message = hook.test_connection()
    assert ok and "oauth auth" in message
    saved = store.tokens.get("bamboohr", chain_key(SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_REFRESH_TOKEN, "brightside"))
    assert saved["refresh_token"] != SANDBOX_OAUTH_REFRESH_TOKEN
    make_hook().list_fields()  # a new hook (another task) uses the stored access token
    assert counts(running)[TOKEN_ROUTE] == 1


def test_oauth_renews_once_after_a_401(running, make_hook, conn):
    conn("oauth")
    hook = make_hook()
    hook.list_fields()
    running.control.fault("bamboohr", "expired_auth")
    assert hook.get_employee("4", ["firstName"])["firstName"] == "Dana"
    assert counts(running)[TOKEN_ROUTE] == 2


def test_oauth_spent_refresh_token_fails_fast(running, make_hook, conn):
    conn("oauth")
    requests.post(
        f"{running.url}/bamboohr/token.php?request=token",
        data={
            "client_id": SANDBOX_OAUTH_CLIENT_ID,
            "client_secret": SANDBOX_OAUTH_CLIENT_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": SANDBOX_OAUTH_REFRESH_TOKEN,
        },
        timeout=5,
    )
    with pytest.raises(AuthError, match="re-authorize") as info:
        make_hook().list_fields()
    assert SANDBOX_OAUTH_REFRESH_TOKEN not in str(info.value)
    assert SANDBOX_OAUTH_CLIENT_SECRET not in str(info.value)


def test_token_url_defaults_and_overrides(conn, make_hook):
    assert make_hook().config.token_url.endswith("/bamboohr/token.php?request=token")
    conn("oauth", host="")
    config = make_hook().config
    assert config.api_host == "https://api.bamboohr.com"
    assert config.token_url == "https://brightside.bamboohr.com/token.php?request=token"
    conn("oauth", extra={"token_url": "https://auth.example/token"})
    assert make_hook().config.token_url == "https://auth.example/token"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"extra": {"company_domain": ""}}, "company_domain"),
        ({"extra": {"company_domain": "brightside.bamboohr.com"}}, "subdomain"),
        ({"extra": {"auth_type": "saml"}}, "auth_type"),
        ({"password": ""}, "API key"),
    ],
)
def test_bad_connections_are_configuration_errors(conn, make_hook, overrides, match):
    conn(**overrides)
    with pytest.raises(ConfigurationError, match=match):
        _ = make_hook().config


def test_secrets_never_reach_the_logs(running, make_hook, conn, store, caplog):
    caplog.set_level(logging.DEBUG)
    conn("oauth")
    hook = make_hook()
    hook.list_fields()
    running.control.fault("bamboohr", "expired_auth")
    hook.get_employee("4", ["firstName"])
    created = hook.create_webhook("sync", RECEIVER, monitor_fields=["jobTitle"], events=["employee.updated"])
    saved = store.tokens.get("bamboohr", chain_key(SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_REFRESH_TOKEN, "brightside"))
    private_key = hook.webhook_private_key(created["id"])
    secrets = (SANDBOX_OAUTH_CLIENT_SECRET, SANDBOX_OAUTH_REFRESH_TOKEN, saved["refresh_token"], private_key)
    text = caplog.text + repr(hook.config)
    assert all(secret not in text for secret in secrets)
    conn()
    api_key_hook = make_hook()
    api_key_hook.list_fields()
    assert SANDBOX_API_KEY not in caplog.text + repr(api_key_hook.config)


# ---------------------------------------------------------------------- webhooks


def test_webhook_private_key_is_kept_and_verifies_deliveries(running, make_hook, emulator, store):
    hook = make_hook()
    before = len(running.control.webhooks())
    created = hook.create_webhook(
        "ml-connector staff sync",
        RECEIVER,
        monitor_fields=["jobTitle", "department", "status"],
        events=["employee.created", "employee.updated", "employee.deleted"],
    )
    assert "privateKey" not in created
    assert [h["id"] for h in hook.list_webhooks()] == [created["id"]]
    stored = store.tokens.get("bamboohr", hook.webhook_key_name(created["id"]))
    assert len(stored["private_key"]) == 64
    emulator.update_employee("9", {"jobTitle": "Senior Account Manager"})
    running.sandbox.ctx.webhooks.wait_idle()
    (delivery,) = running.control.webhooks()[before:]
    body = delivery["body"].encode()
    headers = delivery["headers"]
    signature, timestamp = headers["X-BambooHR-Signature"], headers["X-BambooHR-Timestamp"]
    assert hook.verify_webhook_signature(created["id"], body, timestamp, signature)
    assert not hook.verify_webhook_signature(created["id"], body, str(int(timestamp) + 1), signature)
    assert signature == compute_signature(stored["private_key"], body, timestamp)
    hook.delete_webhook(created["id"])
    assert hook.list_webhooks() == []
    with pytest.raises(ConfigurationError, match="no private key"):
        hook.webhook_private_key(created["id"])


# ---------------------------------------------------------------------- wire details (requests-mock)


@pytest.fixture
def mocked(requests_mock, conn):
    conn(host="https://bhr.example.test")
    return requests_mock, "https://bhr.example.test/api/gateway.php/brightside/v1"


def test_wire_format_of_calls(mocked, make_hook):
    mock, base = mocked
    mock.get(f"{base}/employees/changed", json={"latest": "x", "employees": {}})
    mock.post(f"{base}/reports/custom", json={"title": "t", "fields": [], "employees": []})
    hook = make_hook()
    hook.get_changed_employees(datetime(2026, 11, 1, 8, 30, tzinfo=timezone.utc))
    hook.run_custom_report(["firstName"], changed_since=datetime(2026, 11, 1, tzinfo=timezone.utc))
    changed, report = mock.request_history
    assert changed.qs["since"] == ["2026-11-01t08:30:00z"]  # requests-mock lower-cases query values
    assert "since=2026-11-01T08%3A30%3A00Z" in changed.url
    assert changed.headers["Accept"] == "application/json"
    assert changed.headers["Authorization"].startswith("Basic ")
    assert report.headers["Content-Type"] == "application/json"
    assert report.qs["format"] == ["json"]
    assert json.loads(report.body) == {
        "title": "ml-connector export",
        "fields": ["firstName"],
        "filters": {"lastChanged": {"includeNull": "no", "value": "2026-11-01T00:00:00Z"}},
    }


def test_report_is_a_read_retried_after_a_5xx(mocked, make_hook):
    mock, base = mocked
    mock.post(f"{base}/reports/custom", [{"status_code": 502}, {"json": {"employees": [{"id": "4"}]}}])
    assert list(make_hook().iter_employees(["firstName"])) == [{"id": "4"}]


def test_503_without_retry_after_is_retried_with_backoff(mocked, make_hook, sleeps):
    mock, base = mocked
    mock.get(f"{base}/meta/fields", [{"status_code": 503}, {"json": []}])
    assert make_hook().list_fields() == []
    assert len(sleeps) == 1 and sleeps[0] <= 0.01


def test_xml_answer_is_refused_clearly(mocked, make_hook):
    mock, base = mocked
    mock.get(f"{base}/meta/fields", text='<?xml version="1.0"?><fields/>', headers={"Content-Type": "text/xml"})
    with pytest.raises(FatalApiError, match="expected a JSON body"):
        make_hook().list_fields()


def test_403_is_fatal_and_names_permissions(mocked, make_hook):
    mock, base = mocked
    mock.get(f"{base}/employees/directory", status_code=403, headers={"X-BambooHR-Error-Message": "not shared"})
    with pytest.raises(AuthError, match="permissions") as info:
        make_hook().get_directory()
    assert not info.value.renewable
    assert mock.call_count == 1
