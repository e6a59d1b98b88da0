"""BigCommerceHook against the running sandbox, plus requests-mock for wire edge cases."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import requests_mock

from airflow_provider_mlconnector.core.http import RetrySettings
from airflow_provider_mlconnector.exceptions import (
    AuthError,
    ConfigurationError,
    NotFoundError,
    RateLimitedError,
    RecordRejectedError,
    WriteOutcomeUnknownError,
)
from airflow_provider_mlconnector.hooks.bigcommerce import (
    PAID_STATUS_IDS,
    PARTIALLY_REFUNDED,
    REFUNDED,
    BigCommerceHook,
    payment_state,
)
from airflow_provider_mlconnector.sandbox.bigcommerce import ACCESS_TOKEN, CLIENT_SECRET, BigCommerceSandbox
from airflow_provider_mlconnector.webhooks import signatures

UTC = timezone.utc
MOCK_BASE = "https://api.bigcommerce.test/stores/summit7x"


SANDBOX_SYSTEMS = [BigCommerceSandbox]
#: Orders of the demo store a listing shows (108 is an incomplete checkout).
DEMO_ORDERS = [100, 101, 102, 103, 104, 105, 106, 107, 109, 110, 111, 112, 113]


@pytest.fixture(autouse=True)
def _demo(reset_demo):
    reset_demo(restore_switches=True)


@pytest.fixture
def make_hook(sandbox, use_connection, state_store, fake_time):
    def make(conn=None, fake=None, **kwargs):
        connection = conn or sandbox.sandbox.systems["bigcommerce"].connection(f"{sandbox.url}/bigcommerce")
        use_connection("bc_test", connection)
        fake = fake or fake_time(sandbox.control)
        return BigCommerceHook(
            "bc_test",
            state_store=state_store,
            sleep=fake.sleep,
            clock=fake.clock,
            retry=kwargs.pop("retry", RetrySettings(max_attempts=4, base_wait=0.01, max_wait=60)),
            **kwargs,
        )

    return make


@pytest.fixture
def mock_hook(use_connection, state_store, fake_time):
    def make(fake=None, retry=None):
        connection = {
            "conn_type": "bigcommerce",
            "host": "https://api.bigcommerce.test",
            "password": ACCESS_TOKEN,
            "extra": {"store_hash": "summit7x", "client_secret": CLIENT_SECRET},
        }
        use_connection("bc_mock", connection)
        fake = fake or fake_time()
        return BigCommerceHook(
            "bc_mock",
            state_store=state_store,
            sleep=fake.sleep,
            clock=fake.clock,
            retry=retry or RetrySettings(max_attempts=4, base_wait=0.01, max_wait=60),
        )

    return make


def _requests(sandbox, route=None, status=None):
    return [
        r
        for r in sandbox.control.requests("bigcommerce")
        if (route is None or r["route"].endswith(route)) and (status is None or r["status"] == status)
    ]


# ---------------------------------------------------------------- connection and auth


def test_test_connection_names_the_store(make_hook):
    assert make_hook().test_connection() == (True, "BigCommerce store 'Summit Outfitters' (summit7x) reached")


def test_wrong_token_fails_fast_and_clearly_without_leaking_it(sandbox, make_hook, caplog):
    conn = sandbox.sandbox.systems["bigcommerce"].connection(f"{sandbox.url}/bigcommerce")
    conn["password"] = "wrong-token-ab12cd34ef56"
    hook = make_hook(conn)
    caplog.set_level(logging.DEBUG)
    ok, message = hook.test_connection()
    assert ok is False
    assert "HTTP 401" in message and "access token" in message
    assert "wrong-token-ab12cd34ef56" not in message
    assert len(_requests(sandbox)) == 1  # a static token cannot be refreshed: no retry
    with pytest.raises(AuthError) as raised:
        list(hook.orders.list())
    assert raised.value.renewable is False
    assert "wrong-token-ab12cd34ef56" not in str(raised.value) + (raised.value.body or "")
    assert "wrong-token-ab12cd34ef56" not in caplog.text and ACCESS_TOKEN not in caplog.text


def test_unknown_store_hash_is_a_clear_failure(sandbox, make_hook):
    conn = sandbox.sandbox.systems["bigcommerce"].connection(f"{sandbox.url}/bigcommerce")
    conn["extra"]["store_hash"] = "wrong99"
    ok, message = make_hook(conn).test_connection()
    assert ok is False and "404" in message and "Store not found" in message


def test_missing_store_hash_is_a_configuration_error(sandbox, make_hook):
    conn = sandbox.sandbox.systems["bigcommerce"].connection(f"{sandbox.url}/bigcommerce")
    conn["extra"] = {}
    with pytest.raises(ConfigurationError, match="store_hash"):
        make_hook(conn).get_store()


def test_token_goes_in_x_auth_token_never_bearer(mock_hook):
    hook = mock_hook()
    with requests_mock.Mocker() as m:
        m.get(f"{MOCK_BASE}/v2/store", json={"name": "Summit Outfitters"})
        hook.get_store()
        sent = m.request_history[0].headers
    assert sent["X-Auth-Token"] == ACCESS_TOKEN
    assert "Authorization" not in sent
    assert sent["Accept"] == "application/json"


def test_config_repr_hides_secrets(make_hook):
    text = repr(make_hook().config)
    assert ACCESS_TOKEN not in text and CLIENT_SECRET not in text and "summit7x" in text


# ---------------------------------------------------------------- orders


def test_iter_orders_pages_to_the_end(sandbox, make_hook):
    hook = make_hook()
    hook.orders.page_size = len(DEMO_ORDERS)
    ids = [o["id"] for o in hook.orders.list()]
    assert ids == DEMO_ORDERS  # 108 is an incomplete checkout: hidden from order lists
    pages = _requests(sandbox, "/v2/orders")
    assert [p["status"] for p in pages] == [200, 204]  # the 204 page ends the loop
    sandbox.control.clear_requests()
    hook.orders.page_size = 5
    assert len(list(hook.orders.list())) == len(DEMO_ORDERS)
    assert [p["status"] for p in _requests(sandbox, "/v2/orders")] == [200, 200, 200]  # short page ends it


def test_paid_orders_and_payment_states(make_hook):
    hook = make_hook()
    assert {2, 3, 8, 9, 10, 11} == PAID_STATUS_IDS
    assert (PARTIALLY_REFUNDED, REFUNDED) == (14, 4)
    states = {o["id"]: payment_state(o) for o in hook.orders.list()}
    assert states == {
        100: "paid",
        101: "paid",
        102: "paid",
        103: "unpaid",
        104: "unpaid",
        105: "refunded",
        106: "partially_refunded",
        107: "paid",
        109: "paid",
        110: "paid",
        111: "paid",
        112: "partially_refunded",
        113: "unpaid",
    }
    since = datetime(2026, 10, 20, tzinfo=UTC)
    assert [o["id"] for o in hook.iter_paid_orders(modified_since=since)] == [102, 106, 107, 109, 110, 111, 112]
    assert [o["id"] for o in hook.orders.list(status_id=10)] == [100, 107, 110]
    assert hook.count_orders(modified_since=since) == 11
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        list(hook.orders.list(min_date_modified=datetime(2026, 10, 20)))


def test_modified_since_is_sent_as_rfc2822_and_sorted_by_id(mock_hook):
    hook = mock_hook()
    with requests_mock.Mocker() as m:
        m.get(f"{MOCK_BASE}/v2/orders", status_code=204)
        list(hook.orders.list(min_date_modified=datetime(2026, 11, 1, 7, 30, tzinfo=UTC)))
        query = m.request_history[0].qs
    assert query["min_date_modified"] == ["sun, 01 nov 2026 07:30:00 +0000"]  # requests-mock lowercases
    assert query["sort"] == ["id:asc"] and query["limit"] == ["250"] and query["page"] == ["1"]


def test_order_details_products_statuses_and_missing_order(make_hook):
    hook = make_hook()
    assert hook.orders.get(106)["refunded_amount"] == "70.1500"
    assert [line["sku"] for line in hook.order_products.list(order_id=100)] == ["SO-TENT-RL2P", "SO-ACC-TISTK8"]
    assert {s["id"] for s in hook.order_statuses.list()} == set(range(15))
    with pytest.raises(NotFoundError):
        hook.orders.get(4242)
    with pytest.raises(TypeError, match="bigcommerce orders cannot create"):
        hook.orders.create({"status_id": 1})  # the store is only ever a source


def test_transactions_refunds_customers_products(make_hook):
    hook = make_hook()
    assert [t["event"] for t in hook.transactions.list(order_id=105)] == ["purchase", "refund"]
    assert list(hook.transactions.list(order_id=103)) == []  # 204
    assert [r["id"] for r in hook.order_refunds.list(order_id=106)] == [2]
    assert [r["id"] for r in hook.refunds.list(created__min=datetime(2026, 10, 28, tzinfo=UTC))] == [2, 3]
    assert [r["order_id"] for r in hook.refunds.list(order_id__in=[105])] == [105]
    assert hook.refunds.get(2)["order_id"] == 106
    hook.customers.page_size = 2
    assert [c["id"] for c in hook.customers.list()] == [1, 2, 3, 4, 5]
    assert [c["id"] for c in hook.customers.list(date_modified__min=datetime(2026, 11, 1, tzinfo=UTC))] == [5]
    assert [c["id"] for c in hook.customers.list(id__in=[4, 2])] == [2, 4]
    hook.products.page_size = 3
    assert [p["sku"] for p in hook.products.list()][-1] == "SO-FUEL-230"
    assert hook.products.find(sku="SO-FUEL-230")["sku"] == "SO-FUEL-230"


# ---------------------------------------------------------------- quota


def test_quota_is_absorbed_without_a_single_429(sandbox, make_hook, fake_time):
    sandbox.control.switch("bigcommerce", "rate_limit_quota", 5)
    fake = fake_time(sandbox.control)
    hook = make_hook(fake=fake)
    hook.orders.page_size = 1
    assert len(list(hook.orders.list())) == len(DEMO_ORDERS)  # 14 calls through a 5-call window
    assert _requests(sandbox, status=429) == []
    assert len(_requests(sandbox, "/v2/orders")) == len(DEMO_ORDERS) + 1
    waits = [s for s in fake.slept if s > 1]
    assert waits and all(25 < s <= 30 for s in waits)  # slept until the window reset


def test_429_with_quota_headers_waits_for_the_reset(mock_hook, fake_time):
    fake = fake_time()
    hook = mock_hook(fake)
    quota = {"X-Rate-Limit-Time-Window-Ms": "30000", "X-Rate-Limit-Requests-Quota": "150"}
    with requests_mock.Mocker() as m:
        m.get(
            f"{MOCK_BASE}/v2/store",
            [
                {
                    "status_code": 429,
                    "json": [{"status": 429, "message": "quota"}],
                    "headers": {**quota, "X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "7500"},
                },
                {
                    "json": {"name": "Summit"},
                    "headers": {**quota, "X-Rate-Limit-Requests-Left": "149", "X-Rate-Limit-Time-Reset-Ms": "30000"},
                },
            ],
        )
        assert hook.get_store()["name"] == "Summit"
    assert 7.5 <= sum(fake.slept) <= 8.5  # the reset time plus at most a second of jitter


def test_429_without_quota_headers_uses_normal_backoff(sandbox, make_hook, fake_time):
    fake = fake_time(sandbox.control)
    hook = make_hook(fake=fake)
    sandbox.control.fault("bigcommerce", "429", count=2)
    assert hook.get_store()["name"] == "Summit Outfitters"
    assert len(fake.slept) == 2 and all(s < 1 for s in fake.slept)  # base_wait 0.01 doubling, not 30 s


def test_quota_wait_longer_than_max_wait_fails_clearly(mock_hook):
    hook = mock_hook(retry=RetrySettings(max_attempts=3, base_wait=0.01, max_wait=5))
    with requests_mock.Mocker() as m:
        m.get(
            f"{MOCK_BASE}/v2/store",
            status_code=429,
            json=[{"status": 429, "message": "quota"}],
            headers={"X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "29000"},
        )
        with pytest.raises(RateLimitedError, match="more than the configured maximum"):
            hook.get_store()


# ---------------------------------------------------------------- refunds


def test_refunds_on_one_order_are_sent_one_at_a_time(sandbox, make_hook):
    sandbox.control.switch("bigcommerce", "refund_processing_seconds", 0.2)
    hooks = [make_hook() for _ in range(3)]
    results: list = []

    def refund(hook):
        results.append(
            hook.create_refund(
                100,
                [{"item_type": "ORDER", "item_id": 100, "amount": 10}],
                [{"provider_id": "custom", "amount": 10, "offline": True}],
                reason="goodwill",
            )
        )

    threads = [threading.Thread(target=refund, args=(h,)) for h in hooks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["id"] for r in results) == [4, 5, 6]  # the demo holds refunds 1-3
    assert _requests(sandbox, "/payment_actions/refunds", status=409) == []
    assert hooks[0].orders.get(100)["refunded_amount"] == "30.0000"


def test_refund_refused_as_busy_by_another_process_is_retried(mock_hook, fake_time):
    fake = fake_time()
    hook = mock_hook(fake)
    busy = {"status": 409, "title": "A refund for order 100 is already being processed", "type": "x", "errors": {}}
    with requests_mock.Mocker() as m:
        m.post(
            f"{MOCK_BASE}/v3/orders/100/payment_actions/refunds",
            [{"status_code": 409, "json": busy}, {"status_code": 201, "json": {"data": {"id": 9}, "meta": {}}}],
        )
        refund = hook.create_refund(100, [{"item_type": "ORDER", "item_id": 100, "amount": 1}], [])
    assert refund == {"id": 9}
    assert fake.slept and fake.slept[0] >= 2.0


def test_refund_validation_error_is_a_record_error(make_hook):
    with pytest.raises(RecordRejectedError, match="guest customer"):
        make_hook().create_refund(
            107,
            [{"item_type": "ORDER", "item_id": 107, "amount": 5}],
            [{"provider_id": "storecredit", "amount": 5, "offline": True}],
        )


def test_lost_refund_answer_is_never_resent(sandbox, make_hook):
    hook = make_hook()
    quote = hook.create_refund_quote(102, [{"item_type": "ORDER", "item_id": 102, "amount": 20}])
    assert quote["total_refund_amount"] == 20
    sandbox.control.fault("bigcommerce", "drop_after_commit", method="POST", path="payment_actions/refunds$")
    with pytest.raises(WriteOutcomeUnknownError):
        hook.create_refund(
            102,
            [{"item_type": "ORDER", "item_id": 102, "amount": 20}],
            [{"provider_id": "custom", "amount": 20, "offline": True}],
        )
    assert len(_requests(sandbox, "/v3/orders/{order_id:int}/payment_actions/refunds")) == 1
    assert [r["total_amount"] for r in hook.order_refunds.list(order_id=102)] == [20]  # committed exactly once


# ---------------------------------------------------------------- webhooks


class _Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.received.append((self.rfile.read(int(self.headers["Content-Length"])), dict(self.headers)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bigcommerce"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_webhook_registration_reuse_and_reactivation(sandbox, make_hook):
    sandbox.control.switch("bigcommerce", "require_https_destination", False)
    hook = make_hook()
    created = hook.ensure_webhook("store/order/statusUpdated", "http://127.0.0.1:9/hooks", headers={"X-Key": "k1"})
    assert created["is_active"] is True and created["headers"] == {"X-Key": "k1"}
    again = hook.ensure_webhook("store/order/statusUpdated", "http://127.0.0.1:9/hooks", headers={"X-Key": "k1"})
    assert again["id"] == created["id"] and len(list(hook.webhooks.list())) == 1
    requests.post(f"{sandbox.url}/bigcommerce/_sandbox/hooks/{created['id']}/deactivate", timeout=5).raise_for_status()
    assert hook.webhooks.get(created["id"])["is_active"] is False
    revived = hook.ensure_webhook("store/order/statusUpdated", "http://127.0.0.1:9/hooks", headers={"X-Key": "k2"})
    assert revived["is_active"] is True and revived["headers"] == {"X-Key": "k2"}
    assert hook.webhooks.update(created["id"], {"is_active": True})["is_active"] is True
    hook.webhooks.delete(created["id"])
    assert list(hook.webhooks.list()) == []


def test_webhook_https_rule_is_a_record_rejection(make_hook):
    with pytest.raises(RecordRejectedError, match="https"):
        make_hook().ensure_webhook("store/order/created", "http://127.0.0.1:9/hooks")


def test_delivered_webhooks_verify_with_the_client_secret(sandbox, make_hook):
    sandbox.control.switch("bigcommerce", "require_https_destination", False)
    receiver = _Receiver()
    try:
        hook = make_hook()
        hook.ensure_webhook("store/order/*", receiver.url)
        requests.put(
            f"{sandbox.url}/bigcommerce/stores/summit7x/v2/orders/103",
            json={"status_id": 11},
            headers={"X-Auth-Token": ACCESS_TOKEN},
            timeout=5,
        ).raise_for_status()
        deadline = time.monotonic() + 5
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        body, headers = receiver.received[1]
        assert json.loads(body)["data"]["status"] == {"previous_status_id": 1, "new_status_id": 11}
        signed = {k.lower(): v for k, v in headers.items()}
        stamp = (signed["webhook-id"], signed["webhook-timestamp"])

        def verified(secret: str, raw: bytes) -> bool:  # the receiver's verifier (webhooks/signatures.py)
            return signatures.standard_webhooks(secret, *stamp, raw, signed["webhook-signature"])

        assert verified(CLIENT_SECRET, body) is True
        assert verified(CLIENT_SECRET, body.replace(b"11", b"10")) is False
        assert verified("another-secret", body) is False
    finally:
        receiver.server.shutdown()
