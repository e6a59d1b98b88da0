"""The FastAPI receiver, system by system: accept, reject, dedupe, size limit."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from urllib.parse import urlencode

import pytest

from airflow_provider_mlconnector.state import StateStore
from airflow_provider_mlconnector.webhooks.app import create_app
from airflow_provider_mlconnector.webhooks.credentials import bamboohr_hook_key, bill_hook_key
from tests.webhooks.conftest import (
    BAMBOO_COMPANY,
    BC_SECRET,
    BC_STORE,
    BILL_ORG,
    FB_ACCOUNT,
    QBO_REALM,
    QBO_VERIFIER,
    b64_hmac,
    bamboohr_sign,
    freshbooks_sign,
    rows,
    standard_sign,
)

# ---------------------------------------------------------------------- common behaviour


def test_expensify_has_no_endpoint(client, store):
    response = client.post("/webhooks/expensify", content=b"{}")
    assert response.status_code == 404
    assert "Expensify sends no webhooks" in response.json()["detail"]


def test_unknown_system_404(client):
    assert client.post("/webhooks/stripe", content=b"{}").status_code == 404


def test_health(client):
    assert client.get("/health").json()["status"] == "ok"


def test_oversized_body_413_and_nothing_stored(client, store):
    body = b"x" * 5000  # settings fixture: 4096 bytes
    response = client.post("/webhooks/quickbooks", content=body, headers={"intuit-signature": b64_hmac(b"k", body)})
    assert response.status_code == 413
    assert rows(store) == []


def test_oversized_body_without_content_length_413(client, store):
    def chunks():
        for _ in range(10):
            yield b"y" * 1000

    response = client.post("/webhooks/quickbooks", content=chunks(), headers={"intuit-signature": "x"})
    assert response.status_code == 413
    assert rows(store) == []


def test_store_failure_is_503_so_the_vendor_retries(tmp_path, extras, settings):
    keyless = StateStore(f"sqlite:///{tmp_path / 'nokey.db'}")  # no Fernet key: token store refuses
    app = create_app(settings=settings, store=keyless, extras=extras, run_dispatcher=False)
    from fastapi.testclient import TestClient

    body = json.dumps({"metadata": {"eventId": "e1", "subscriptionId": "s1", "organizationId": BILL_ORG}}).encode()
    with TestClient(app) as test_client:
        response = test_client.post("/webhooks/bill", content=body, headers={"x-bill-sha-signature": "abc"})
    assert response.status_code == 503
    assert keyless.inbox.pending() == []
    keyless.close()


# ---------------------------------------------------------------------- QuickBooks


def qbo_notification(entity_id: str = "1", operation: str = "Create", realm: str = QBO_REALM) -> bytes:
    return json.dumps(
        {
            "eventNotifications": [
                {
                    "realmId": realm,
                    "dataChangeEvent": {
                        "entities": [
                            {
                                "name": "Vendor",
                                "id": entity_id,
                                "operation": operation,
                                "lastUpdated": "2015-10-05T14:42:19-0700",
                            }
                        ]
                    },
                }
            ]
        }
    ).encode()


def post_qbo(client, body: bytes, key: str = QBO_VERIFIER):
    return client.post("/webhooks/quickbooks", content=body, headers={"intuit-signature": b64_hmac(key.encode(), body)})


def test_quickbooks_event_notifications_stored_per_entity(client, store):
    body = qbo_notification()
    response = post_qbo(client, body)
    assert response.status_code == 200
    assert response.json() == {"stored": 1, "duplicates": 0, "ignored": 0}
    (event,) = rows(store, "quickbooks")
    assert event.tenant == QBO_REALM
    assert event.event_type == "Vendor.Create"
    assert event.payload["id"] == "1"


def test_quickbooks_replay_is_200_with_one_row(client, store):
    body = qbo_notification()
    assert post_qbo(client, body).json()["stored"] == 1
    second = post_qbo(client, body)
    assert second.status_code == 200
    assert second.json() == {"stored": 0, "duplicates": 1, "ignored": 0}
    assert len(rows(store)) == 1


def test_quickbooks_out_of_order_deliveries_both_kept(client, store):
    update = qbo_notification(operation="Update")
    create = qbo_notification(operation="Create")
    assert post_qbo(client, update).status_code == 200
    assert post_qbo(client, create).status_code == 200
    assert sorted(e.event_type for e in rows(store)) == ["Vendor.Create", "Vendor.Update"]


def test_quickbooks_cloudevents_with_foreign_realm_ignored(client, store):
    events = [
        {
            "specversion": "1.0",
            "id": "88cd52aa-33b6-4351-9aa4-47572edbd068",
            "source": "intuit.x",
            "type": "qbo.vendor.created.v1",
            "time": "2025-09-10T21:31:25.179851517Z",
            "intuitentityid": "1234",
            "intuitaccountid": QBO_REALM,
            "data": {},
        },
        {"specversion": "1.0", "id": "other-realm-event", "type": "qbo.vendor.updated.v1", "intuitaccountid": "999"},
    ]
    body = json.dumps(events).encode()
    response = post_qbo(client, body)
    assert response.status_code == 200
    assert response.json() == {"stored": 1, "duplicates": 0, "ignored": 1}
    (event,) = rows(store)
    assert event.event_id == "88cd52aa-33b6-4351-9aa4-47572edbd068"
    assert event.event_type == "qbo.vendor.created.v1"


@pytest.mark.parametrize(
    "headers",
    [{}, {"intuit-signature": ""}, {"intuit-signature": "bm90IGl0"}],
    ids=["unsigned", "empty", "forged"],
)
def test_quickbooks_unsigned_or_forged_401_no_trace(client, store, headers):
    response = client.post("/webhooks/quickbooks", content=qbo_notification(), headers=headers)
    assert response.status_code == 401
    assert rows(store) == []


def test_quickbooks_signed_with_wrong_token_401(client, store):
    assert post_qbo(client, qbo_notification(), key="not-the-token").status_code == 401
    assert rows(store) == []


def test_quickbooks_without_configured_token_401(client, store, extras):
    del extras.values["quickbooks"]["webhook_verifier_token"]
    assert post_qbo(client, qbo_notification()).status_code == 401


def test_quickbooks_verified_but_unreadable_is_kept_not_retried(client, store):
    body = b'{"something": "else"}'
    response = post_qbo(client, body)
    assert response.status_code == 200
    (event,) = rows(store)
    assert event.event_type == "unreadable"


# ---------------------------------------------------------------------- BILL


BILL_KEY = "bill-one-time-security-key"


def bill_body(event_id: str = "625947c4-8e6b-48f0-ae72-ea9c9375ec27", event_type: str = "bill.created") -> bytes:
    # Dossier B11 payload, minified.
    payload = {
        "metadata": {
            "eventId": event_id,
            "subscriptionId": "f6d06930-sub",
            "organizationId": BILL_ORG,
            "eventType": event_type,
            "version": "1",
        },
        "bill": {"id": "00n02JZNIEYMNPY99iz9", "vendorId": "00902BILKFECNEV2oji1", "amount": 228.99},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


@pytest.fixture
def bill_key(store):
    # Where BillHook.create_subscription keeps it.
    store.tokens.put("bill", bill_hook_key(BILL_ORG, "f6d06930-sub"), {"security_key": BILL_KEY})


def post_bill(client, body: bytes, key: str = BILL_KEY):
    return client.post("/webhooks/bill", content=body, headers={"x-bill-sha-signature": b64_hmac(key.encode(), body)})


def test_bill_event_stored_with_ids_only(client, store, bill_key):
    response = post_bill(client, bill_body())
    assert response.status_code == 200
    (event,) = rows(store, "bill")
    assert event.event_id == "625947c4-8e6b-48f0-ae72-ea9c9375ec27"
    assert event.event_type == "bill.created"
    assert event.tenant == BILL_ORG
    assert event.payload["bill"] == {"id": "00n02JZNIEYMNPY99iz9"}  # amounts stay out of the inbox


def test_bill_replay_and_out_of_order(client, store, bill_key):
    later = bill_body("e-2", "bill.updated")
    earlier = bill_body("e-1", "bill.created")
    for body in (later, earlier, later, earlier):
        assert post_bill(client, body).status_code == 200
    assert sorted(e.event_id for e in rows(store)) == ["e-1", "e-2"]


def test_bill_json_string_wrapped_payload(client, store, bill_key):
    inner = bill_body("wrapped-1").decode()
    wrapped = json.dumps(inner).encode()  # a JSON string literal holding the object
    assert post_bill(client, wrapped).status_code == 200
    # and signed over the inner JSON instead of the wire bytes
    wrapped_2 = json.dumps(bill_body("wrapped-2").decode()).encode()
    response = client.post(
        "/webhooks/bill",
        content=wrapped_2,
        headers={"x-bill-sha-signature": b64_hmac(BILL_KEY.encode(), bill_body("wrapped-2"))},
    )
    assert response.status_code == 200
    assert sorted(e.event_id for e in rows(store)) == ["wrapped-1", "wrapped-2"]


def test_bill_forged_unsigned_unknown_subscription(client, store, bill_key):
    assert post_bill(client, bill_body(), key="guess").status_code == 401
    assert client.post("/webhooks/bill", content=bill_body()).status_code == 401
    other = bill_body().replace(b"f6d06930-sub", b"another-sub")
    assert post_bill(client, other).status_code == 401
    assert rows(store) == []


def test_bill_manual_key_from_connection(client, store, extras):
    extras.values["bill"]["webhook_security_key"] = "manual-key"
    assert post_bill(client, bill_body(), key="manual-key").status_code == 200


# ---------------------------------------------------------------------- BigCommerce


def bc_body(order_id: int = 250, digest: str = "7ee67cd1cf2ca60bc1aa9e5fe957d2de373be4ca") -> bytes:
    payload = {
        "scope": "store/order/statusUpdated",
        "store_id": "1025646",
        "data": {"type": "order", "id": order_id, "status": {"previous_status_id": 0, "new_status_id": 11}},
        "hash": digest,
        "created_at": 1561479335,
        "producer": f"stores/{BC_STORE}",
    }
    return json.dumps(payload).encode()


def bc_headers(body: bytes, message_id: str = "msg_1", timestamp: int | None = None, secret: str = BC_SECRET):
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_sign(secret, message_id, stamp, body),
    }


def test_bigcommerce_signed_delivery(client, store):
    body = bc_body()
    response = client.post("/webhooks/bigcommerce", content=body, headers=bc_headers(body))
    assert response.status_code == 200
    (event,) = rows(store, "bigcommerce")
    assert event.event_type == "store/order/statusUpdated"
    assert event.tenant == BC_STORE
    assert event.event_id == "hash-7ee67cd1cf2ca60bc1aa9e5fe957d2de373be4ca"


def test_bigcommerce_retry_with_new_message_id_dedupes_on_hash(client, store):
    body = bc_body()
    assert client.post("/webhooks/bigcommerce", content=body, headers=bc_headers(body, "msg_1")).status_code == 200
    retry = client.post("/webhooks/bigcommerce", content=body, headers=bc_headers(body, "msg_2"))
    assert retry.status_code == 200
    assert retry.json()["duplicates"] == 1
    assert len(rows(store)) == 1


def test_bigcommerce_stale_and_future_timestamps_401(client, store):
    body = bc_body()
    now = int(time.time())
    # A margin past the 300 s tolerance: a slow CI machine may cross a second boundary mid-test.
    for stamp in (now - 330, now + 330):
        response = client.post("/webhooks/bigcommerce", content=body, headers=bc_headers(body, timestamp=stamp))
        assert response.status_code == 401
    assert rows(store) == []


def test_bigcommerce_forged_401(client, store):
    body = bc_body()
    assert (
        client.post("/webhooks/bigcommerce", content=body, headers=bc_headers(body, secret="wrong")).status_code == 401
    )
    tampered = client.post("/webhooks/bigcommerce", content=bc_body(251), headers=bc_headers(body))
    assert tampered.status_code == 401
    assert client.post("/webhooks/bigcommerce", content=body).status_code == 401  # unsigned, no header secret
    assert rows(store) == []


def test_bigcommerce_secret_header_fallback(client, store, extras, credentials):
    del extras.values["bigcommerce"]["client_secret"]
    credentials.save_bigcommerce_header(BC_STORE, "X-MLConnector-Webhook-Secret", "header-secret", {"1": "x"})
    body = bc_body()
    ok = client.post("/webhooks/bigcommerce", content=body, headers={"X-MLConnector-Webhook-Secret": "header-secret"})
    assert ok.status_code == 200
    bad = client.post("/webhooks/bigcommerce", content=bc_body(2, "h2"), headers={"X-MLConnector-Webhook-Secret": "no"})
    assert bad.status_code == 401
    assert len(rows(store)) == 1


def test_bigcommerce_signature_decides_when_present(client, store, credentials):
    # A valid secret header does not rescue a bad signature: the signature is checked when possible.
    credentials.save_bigcommerce_header(BC_STORE, "X-MLConnector-Webhook-Secret", "header-secret", {})
    body = bc_body()
    headers = {**bc_headers(body, secret="wrong"), "X-MLConnector-Webhook-Secret": "header-secret"}
    assert client.post("/webhooks/bigcommerce", content=body, headers=headers).status_code == 401


# ---------------------------------------------------------------------- BambooHR

BHR_KEY = "bamboo-private-key"


@pytest.fixture
def bamboo_key(store, credentials):
    # Where BambooHRHook.create_webhook keeps the key, plus our index of webhook ids.
    store.tokens.put("bamboohr", bamboohr_hook_key(BAMBOO_COMPANY, "7"), {"private_key": BHR_KEY})
    credentials.index_bamboohr_webhook(BAMBOO_COMPANY, "7")


def bhr_body(employee: str = "67890", stamp: str = "2026-01-31T18:42:00+0000") -> bytes:
    payload = {
        "type": "employee.updated",
        "timestamp": stamp,
        "data": {"companyId": "12345", "employeeId": employee, "changedFields": ["firstName"]},
    }
    return json.dumps(payload).encode()


def bhr_headers(body: bytes, timestamp: str | None = None, key: str = BHR_KEY, **extra: str):
    stamp = str(int(time.time())) if timestamp is None else timestamp
    return {"X-BambooHR-Timestamp": stamp, "X-BambooHR-Signature": bamboohr_sign(key, body, stamp), **extra}


def test_bamboohr_event_stored(client, store, bamboo_key):
    body = bhr_body()
    response = client.post("/webhooks/bamboohr", content=body, headers=bhr_headers(body))
    assert response.status_code == 200
    (event,) = rows(store, "bamboohr")
    assert event.event_type == "employee.updated"
    assert event.tenant == BAMBOO_COMPANY


def test_bamboohr_iso_timestamp_header(client, store, bamboo_key):
    body = bhr_body()
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")
    assert client.post("/webhooks/bamboohr", content=body, headers=bhr_headers(body, stamp)).status_code == 200


def test_bamboohr_resend_is_a_duplicate_even_with_new_timestamp(client, store, bamboo_key):
    body = bhr_body()
    first = client.post("/webhooks/bamboohr", content=body, headers=bhr_headers(body, str(int(time.time()) - 60)))
    second = client.post("/webhooks/bamboohr", content=body, headers=bhr_headers(body))
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["duplicates"] == 1
    # a new change (another employee) is a new event
    other = bhr_body("11111")
    assert client.post("/webhooks/bamboohr", content=other, headers=bhr_headers(other)).json()["stored"] == 1


def test_bamboohr_stale_unsigned_forged_401(client, store, bamboo_key):
    body = bhr_body()
    stale = bhr_headers(body, str(int(time.time()) - 301))
    assert client.post("/webhooks/bamboohr", content=body, headers=stale).status_code == 401
    assert client.post("/webhooks/bamboohr", content=body, headers=bhr_headers(body, key="x")).status_code == 401
    assert client.post("/webhooks/bamboohr", content=body).status_code == 401
    no_tz = bhr_headers(body, "2026-01-31T18:42:00")
    assert client.post("/webhooks/bamboohr", content=body, headers=no_tz).status_code == 401
    assert rows(store) == []


def test_bamboohr_field_based_form_payload_and_global_key(client, store, extras):
    extras.values["bamboohr"]["webhook_private_key"] = "global-key"
    fields = {"employees": [{"id": "12345", "action": "Updated", "timestamp": "t", "fields": {"First Name": "B"}}]}
    body = json.dumps(fields).encode()
    response = client.post("/webhooks/bamboohr", content=body, headers=bhr_headers(body, key="global-key"))
    assert response.status_code == 200
    (event,) = rows(store)
    assert event.event_type == "employee_with_fields.updated"
    assert "fields" not in event.payload["employees"][0]  # employee data is not kept
    form = urlencode({"type": "employee.created", "data[employeeId]": "5"}).encode()
    headers = {**bhr_headers(form, key="global-key"), "content-type": "application/x-www-form-urlencoded"}
    assert client.post("/webhooks/bamboohr", content=form, headers=headers).status_code == 200
    assert {e.event_type for e in rows(store)} == {"employee_with_fields.updated", "employee.created"}


# ---------------------------------------------------------------------- FreshBooks

FB_VERIFIER = "fb-verifier-from-handshake"


def fb_event(name: str = "bill.create", object_id: str = "1234567") -> list[tuple[str, str]]:
    return [
        ("name", name),
        ("object_id", object_id),
        ("account_id", FB_ACCOUNT),
        ("business_id", "6543"),
        ("identity_id", "1234"),
        ("user_id", "1"),
    ]


def post_fb(client, fields, verifier: str | None = FB_VERIFIER):
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if verifier is not None:
        headers["X-FreshBooks-Hmac-SHA256"] = freshbooks_sign(verifier, fields)
    return client.post("/webhooks/freshbooks", content=urlencode(fields).encode(), headers=headers)


@pytest.fixture
def fake_freshbooks_hook(monkeypatch):
    """Replaces FreshBooksHook for the post-handshake verification."""
    import airflow_provider_mlconnector.hooks.freshbooks as module

    calls: list[tuple[str, str]] = []

    class FakeHook:
        def __init__(self, conn_id=None, **kwargs):
            self.conn_id = conn_id

        def verify_callback(self, callback_id, verifier):
            calls.append((str(callback_id), verifier))
            return {"callbackid": callback_id, "verified": True}

    monkeypatch.setattr(module, "FreshBooksHook", FakeHook)
    return calls


def test_freshbooks_handshake_then_signed_events(client, store, credentials, fake_freshbooks_hook):
    credentials.remember_callback(FB_ACCOUNT, "2001", "bill.create", "https://x/webhooks/freshbooks")
    handshake = [("name", "callback.verify"), ("object_id", "2001"), ("verifier", FB_VERIFIER)]
    response = post_fb(client, handshake, verifier=None)
    assert response.status_code == 200
    assert fake_freshbooks_hook == [("2001", FB_VERIFIER)]  # confirmed to FreshBooks after answering
    assert credentials.freshbooks_callback(FB_ACCOUNT, "2001") == {
        "event": "bill.create",
        "uri": "https://x/webhooks/freshbooks",
        "verifier": FB_VERIFIER,
        "verified": True,
    }
    assert rows(store) == []  # a handshake is not an event

    assert post_fb(client, fb_event()).status_code == 200
    assert post_fb(client, fb_event()).json()["duplicates"] == 1  # a resend while pending
    assert post_fb(client, fb_event("bill_vendor.update", "99")).status_code == 200
    assert sorted(e.event_type for e in rows(store, "freshbooks")) == ["bill.create", "bill_vendor.update"]


def test_freshbooks_handshake_for_unknown_callback_leaves_no_trace(client, store, credentials, fake_freshbooks_hook):
    handshake = [
        ("name", "callback.verify"),
        ("object_id", "666"),
        ("verifier", "attacker"),
        ("account_id", FB_ACCOUNT),
    ]
    assert post_fb(client, handshake, verifier=None).status_code == 401
    assert credentials.freshbooks_callback(FB_ACCOUNT, "666") is None
    assert fake_freshbooks_hook == []
    # and the attacker's verifier does not sign anything
    assert post_fb(client, fb_event(), verifier="evil").status_code == 401


def test_freshbooks_verified_callback_cannot_be_rekeyed(client, credentials, fake_freshbooks_hook):
    credentials.remember_callback(FB_ACCOUNT, "2001", "bill.create", "u")
    credentials.mark_verified(FB_ACCOUNT, "2001", FB_VERIFIER)
    handshake = [("name", "callback.verify"), ("object_id", "2001"), ("verifier", "attacker")]
    assert post_fb(client, handshake, verifier=None).status_code == 401
    assert credentials.freshbooks_verifiers(FB_ACCOUNT) == [FB_VERIFIER]


def test_freshbooks_unverified_callback_does_not_sign(client, store, credentials, monkeypatch):
    import airflow_provider_mlconnector.hooks.freshbooks as module

    class NoVerifyHook:
        def __init__(self, *args, **kwargs):
            pass

    monkeypatch.setattr(module, "FreshBooksHook", NoVerifyHook)
    credentials.remember_callback(FB_ACCOUNT, "2001", "bill.create", "u")
    handshake = [("name", "callback.verify"), ("object_id", "2001"), ("verifier", FB_VERIFIER)]
    assert post_fb(client, handshake, verifier=None).status_code == 200  # verifier kept for the CLI
    assert credentials.freshbooks_callback(FB_ACCOUNT, "2001")["verifier"] == FB_VERIFIER
    assert post_fb(client, fb_event()).status_code == 401  # not verified with FreshBooks yet
    assert rows(store) == []


def test_freshbooks_forged_and_unsigned_events(client, store, credentials):
    credentials.remember_callback(FB_ACCOUNT, "2001", "bill.create", "u")
    credentials.mark_verified(FB_ACCOUNT, "2001", FB_VERIFIER)
    assert post_fb(client, fb_event(), verifier="guess").status_code == 401
    assert post_fb(client, fb_event(), verifier=None).status_code == 401
    # signature over the raw body instead of the JSON rendering: refused
    body = urlencode(fb_event()).encode()
    raw = {"X-FreshBooks-Hmac-SHA256": b64_hmac(FB_VERIFIER.encode(), body)}
    assert client.post("/webhooks/freshbooks", content=body, headers=raw).status_code == 401
    assert rows(store) == []


def test_freshbooks_identical_event_after_processing_is_still_a_duplicate_within_the_window(client, store, credentials):
    credentials.remember_callback(FB_ACCOUNT, "2001", "bill.update", "u")
    credentials.mark_verified(FB_ACCOUNT, "2001", FB_VERIFIER)
    assert post_fb(client, fb_event("bill.update")).json()["stored"] == 1
    (first,) = rows(store)
    store.inbox.mark_processed([first.id], "freshbooks_to_bill/webhook__1")
    # FreshBooks sends no time: the same fields may be a replay, so no new event (and no new run)
    # until the replay window has passed (see test_anonymous_callers.py).
    assert post_fb(client, fb_event("bill.update")).json()["duplicates"] == 1
    assert rows(store) == []
