"""End to end over HTTP: register with the real hooks, let the sandbox emulators deliver signed
webhooks to the receiver (uvicorn, real connections from AIRFLOW_CONN_*, real state store), then
route the stored events with the dispatcher.

The emulators sign with their own code, so this also checks that our verification agrees with
independent implementations of each vendor's scheme.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import requests
import uvicorn
from cryptography.fernet import Fernet

from airflow_provider_mlconnector.state import StateStore, get_state_store
from airflow_provider_mlconnector.webhooks import register
from airflow_provider_mlconnector.webhooks.app import create_app
from airflow_provider_mlconnector.webhooks.credentials import WebhookCredentials
from airflow_provider_mlconnector.webhooks.dispatcher import ActiveRun, Dispatcher, TriggerResult

pytestmark = pytest.mark.e2e

SYSTEMS = ("freshbooks", "bill", "bigcommerce", "bamboohr", "quickbooks")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    from airflow_provider_mlconnector.sandbox.registry import load
    from airflow_provider_mlconnector.sandbox.server import RunningSandbox

    running = RunningSandbox(systems=[load(name) for name in SYSTEMS])
    running.control.reset()
    running.control.seed_demo()
    running.control.switch("bill", "require_https_notification_url", False)
    running.control.switch("bigcommerce", "require_https_destination", False)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def environment(sandbox, tmp_path_factory) -> Iterator[StateStore]:
    """Connections named as in production (``<system>_default``) and one state store for all."""
    with pytest.MonkeyPatch.context() as patch:
        for name in SYSTEMS:
            connection = sandbox.sandbox.systems[name].connection(f"{sandbox.url}/{name}")
            patch.setenv(f"AIRFLOW_CONN_{name.upper()}_DEFAULT", json.dumps(connection))
            patch.delenv(f"MLCONNECTOR_{name.upper()}_CONN_ID", raising=False)
        patch.setenv("MLCONNECTOR_STATE_URL", f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'state.db'}")
        patch.setenv("MLCONNECTOR_FERNET_KEY", Fernet.generate_key().decode())
        get_state_store.cache_clear()
        yield get_state_store()
        get_state_store().close()
        get_state_store.cache_clear()


@pytest.fixture(scope="module")
def receiver_url(environment) -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(run_dispatcher=False), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "receiver did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def hook(system: str) -> Any:
    if system == "quickbooks":  # not registrable through the API, so not in the CLI's table
        from airflow_provider_mlconnector.hooks.quickbooks import QuickBooksHook

        return QuickBooksHook("quickbooks_default")
    from airflow_provider_mlconnector.webhooks.cli import make_hook

    return make_hook(system)


def settle(sandbox) -> list[dict[str, Any]]:
    sandbox.sandbox.ctx.webhooks.wait_idle()
    return list(sandbox.control.webhooks())


def pending_types(store: StateStore, system: str) -> list[str]:
    return sorted(event.event_type for event in store.inbox.pending(system))


@pytest.fixture(scope="module")
def registered(sandbox, environment, receiver_url) -> WebhookCredentials:
    """The receiver registered with every vendor through the real hooks."""
    credentials = WebhookCredentials(environment.tokens)
    # FreshBooks: the verification handshake reaches the receiver, which confirms it.
    fb_url = f"{receiver_url}/webhooks/freshbooks"
    fb_report = register.register_freshbooks(hook("freshbooks"), credentials, fb_url, ["bill"])
    assert fb_report.ok, fb_report.problems
    account = hook("freshbooks").business.account_id
    deadline = time.monotonic() + 10
    while not credentials.freshbooks_verifiers(account) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert credentials.freshbooks_verifiers(account), "callback not verified by the receiver"

    assert register.register_bill(hook("bill"), f"{receiver_url}/webhooks/bill").ok
    assert register.register_bigcommerce(hook("bigcommerce"), credentials, f"{receiver_url}/webhooks/bigcommerce").ok
    assert register.register_bamboohr(hook("bamboohr"), credentials, f"{receiver_url}/webhooks/bamboohr").ok
    sandbox.control.switch("quickbooks", "webhook_endpoint", f"{receiver_url}/webhooks/quickbooks")
    settle(sandbox)
    return credentials


ADDRESS = {"line1": "1 Main St", "city": "Austin", "stateOrProvince": "TX", "zipOrPostalCode": "78701", "country": "US"}


def change_bigcommerce_order(sandbox, status_id: int) -> None:
    bc = sandbox.sandbox.systems["bigcommerce"].connection(f"{sandbox.url}/bigcommerce")
    requests.put(
        f"{sandbox.url}/bigcommerce/stores/{bc['extra']['store_hash']}/v2/orders/103",
        json={"status_id": status_id},
        headers={"X-Auth-Token": bc["password"], "Accept": "application/json"},
        timeout=10,
    ).raise_for_status()


def test_every_emulator_delivers_into_the_inbox(sandbox, environment, registered):
    store = environment
    # One change in each system.
    hook("freshbooks").bills.update(7105, {"bill_number": "META-88213-R"})
    hook("bill").vendors.create({"name": "Webhook Vendor", "address": ADDRESS})
    change_bigcommerce_order(sandbox, 11)
    sandbox.sandbox.systems["bamboohr"].update_employee("9", {"jobTitle": "Senior Account Manager"})
    hook("quickbooks").vendors.create({"DisplayName": "Webhook Vendor QBO"})
    deliveries = settle(sandbox)

    assert pending_types(store, "freshbooks") == ["bill.update"]
    assert "vendor.created" in pending_types(store, "bill")
    assert any(t.startswith("store/order/") for t in pending_types(store, "bigcommerce"))
    assert pending_types(store, "bamboohr") == ["employee.updated"]
    assert pending_types(store, "quickbooks") == ["qbo.vendor.created.v1"]
    # Only the FreshBooks verification sent before the callback was remembered may have been refused.
    refused = [d for d in deliveries if d["status"] != 200]
    assert all(d["system"] == "freshbooks" and "verifier=" in d["body"] for d in refused), refused

    # A redelivered event is acknowledged and stored once.
    before = len(store.inbox.pending())
    last = len(deliveries)
    sandbox.control.redeliver(last)
    settle(sandbox)
    assert sandbox.control.webhooks()[-1]["status"] == 200
    assert len(store.inbox.pending()) == before

    # The dispatcher routes what arrived.
    airflow = RecordingAirflow()
    Dispatcher(store.inbox, airflow, interval=30).tick()
    assert set(airflow.triggered) == {
        "freshbooks_to_bill",
        "bill_to_quickbooks",
        "bigcommerce_to_freshbooks",
        "bamboohr_to_freshbooks",
    }
    assert store.inbox.pending("freshbooks") == []
    assert pending_types(store, "quickbooks") == []  # routed to bill_to_quickbooks


def test_unconfirmed_wire_variants_are_accepted(sandbox, environment, registered):
    """The emulators' switches for what the dossiers leave UNCONFIRMED."""
    store = environment
    for event in store.inbox.pending():
        store.inbox.mark_processed([event.id], "earlier")
    sandbox.control.switch("bill", "webhook_body_as_json_string", True)
    sandbox.control.switch("bill", "webhook_signature_key_encoding", "base64")
    sandbox.control.switch("bamboohr", "webhook_timestamp_format", "iso")
    sandbox.control.switch("quickbooks", "webhook_payload", "legacy")
    # Other signature header names: the secret header set at registration still authenticates.
    sandbox.control.switch("bigcommerce", "webhook_header_signature", "X-BC-Signature")
    try:
        hook("bill").vendors.create({"name": "Escaped Vendor", "address": ADDRESS})
        change_bigcommerce_order(sandbox, 10)
        sandbox.sandbox.systems["bamboohr"].update_employee("9", {"department": "Sales"})
        hook("quickbooks").vendors.create({"DisplayName": "Legacy Payload Vendor"})
        deliveries = settle(sandbox)
    finally:
        for system, name in (
            ("bill", "webhook_body_as_json_string"),
            ("bill", "webhook_signature_key_encoding"),
            ("bamboohr", "webhook_timestamp_format"),
            ("quickbooks", "webhook_payload"),
            ("bigcommerce", "webhook_header_signature"),
        ):
            default = sandbox.sandbox.systems[system].default_switches[name]
            sandbox.control.switch(system, name, default)
    assert all(d["status"] == 200 for d in deliveries[-4:]), deliveries[-4:]
    assert "vendor.created" in pending_types(store, "bill")
    assert any(t.startswith("store/order/") for t in pending_types(store, "bigcommerce"))
    assert pending_types(store, "bamboohr") == ["employee.updated"]
    assert pending_types(store, "quickbooks") == ["Vendor.Create"]


class RecordingAirflow:
    def __init__(self) -> None:
        self.triggered: list[str] = []

    def active_run(self, dag_id: str) -> ActiveRun | None:
        return None

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any]) -> TriggerResult:
        self.triggered.append(dag_id)
        return TriggerResult.TRIGGERED
