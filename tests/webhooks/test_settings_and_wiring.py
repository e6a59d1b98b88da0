"""Settings, connection lookups, and the app's lifespan running the dispatcher."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from airflow_provider_mlconnector.exceptions import ConfigurationError
from airflow_provider_mlconnector.webhooks.app import create_app
from airflow_provider_mlconnector.webhooks.connections import ConnectionExtras, fetch_connection_extras
from airflow_provider_mlconnector.webhooks.credentials import WebhookCredentials
from airflow_provider_mlconnector.webhooks.settings import WebhookSettings, conn_id_for
from tests.webhooks.conftest import BC_STORE, QBO_REALM, QBO_VERIFIER, FakeAirflow, b64_hmac


def test_settings_from_env():
    settings = WebhookSettings.from_env(
        {"MLCONNECTOR_WEBHOOK_TRIGGER_INTERVAL": "60", "MLCONNECTOR_WEBHOOK_DISPATCHER": "off"}
    )
    assert settings.trigger_interval == 60
    assert settings.dispatcher_enabled is False
    assert settings.max_body_bytes == 256 * 1024
    with pytest.raises(ConfigurationError):
        WebhookSettings.from_env({"MLCONNECTOR_WEBHOOK_MAX_CLOCK_SKEW": "-1"})
    with pytest.raises(ConfigurationError):
        WebhookSettings.from_env({"MLCONNECTOR_WEBHOOK_DISPATCHER": "maybe"})


def test_conn_id_override():
    assert conn_id_for("bill", {}) == "bill_default"
    assert conn_id_for("bill", {"MLCONNECTOR_BILL_CONN_ID": "bill_prod"}) == "bill_prod"


def test_extras_cached_and_legacy_keys():
    calls: list[str] = []

    def fetch(conn_id):
        calls.append(conn_id)
        return {"extra__quickbooks__realm_id": "42", "webhook_verifier_token": "t"}

    extras = ConnectionExtras(fetch, ttl=60)
    assert extras.get("quickbooks", "realm_id") == "42"
    assert extras.get("quickbooks", "webhook_verifier_token") == "t"
    assert extras.get("quickbooks", "missing") is None
    assert calls == ["quickbooks_default"]
    assert ConnectionExtras(lambda conn_id: None).get("bill", "x") is None


def test_extras_from_a_real_airflow_connection(monkeypatch):
    conn = {"conn_type": "quickbooks", "extra": {"realm_id": QBO_REALM}}
    monkeypatch.setenv("AIRFLOW_CONN_QBO_WEBHOOK_TEST", json.dumps(conn))
    assert fetch_connection_extras("qbo_webhook_test") == {"realm_id": QBO_REALM}
    assert fetch_connection_extras("no_such_connection_here") is None


def test_app_lifespan_runs_the_dispatcher(store, extras, settings):
    """Receiver and dispatcher together: a verified delivery becomes a DAG run, no test ticking."""
    airflow = FakeAirflow({"bigcommerce_to_freshbooks"})
    fast = WebhookSettings(dispatch_tick=0.05, trigger_interval=30)
    app = create_app(settings=fast, store=store, extras=extras, trigger=airflow, run_dispatcher=True)
    body = json.dumps(
        {"scope": "store/order/created", "data": {"type": "order", "id": 1}, "hash": "h1", "producer": "stores/s"}
    ).encode()
    extras.values["bigcommerce"].pop("client_secret")
    WebhookCredentials(store.tokens).save_bigcommerce_header(BC_STORE, "X-Secret", "s3", {})
    with TestClient(app) as client:
        assert client.post("/webhooks/bigcommerce", content=body, headers={"X-Secret": "s3"}).status_code == 200
        deadline = time.monotonic() + 5
        while not airflow.triggers and time.monotonic() < deadline:
            time.sleep(0.02)
    assert [t[0] for t in airflow.triggers] == ["bigcommerce_to_freshbooks"]
    assert app.state.dispatcher._thread is None  # stopped with the app


def test_no_airflow_api_configured_means_no_dispatcher(store, extras, settings, monkeypatch):
    monkeypatch.delenv("MLCONNECTOR_AIRFLOW_API_URL", raising=False)
    monkeypatch.setattr("airflow_provider_mlconnector.webhooks.airflow_api._get_connection", lambda conn_id: None)
    app = create_app(settings=settings, store=store, extras=extras, run_dispatcher=True)
    with TestClient(app) as client:
        body = b"[]"
        signature = b64_hmac(QBO_VERIFIER.encode(), body)
        response = client.post("/webhooks/quickbooks", content=body, headers={"intuit-signature": signature})
        assert response.status_code == 200
        assert app.state.dispatcher is None
