"""The BigCommerce emulator over real HTTP: auth, envelopes, paging, quota, refunds, webhooks."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from airflow_provider_mlconnector.sandbox.bigcommerce import (
    ACCESS_TOKEN,
    CLIENT_SECRET,
    STORE_HASH,
    STORE_ID,
    BigCommerceSandbox,
)

AUTH = {"X-Auth-Token": ACCESS_TOKEN, "Accept": "application/json"}


SANDBOX_SYSTEMS = [BigCommerceSandbox]


@pytest.fixture(autouse=True)
def _demo(reset_demo):
    reset_demo(restore_switches=True)


@pytest.fixture
def store(sandbox):
    return f"{sandbox.url}/bigcommerce/stores/{STORE_HASH}"


class Receiver:
    """A local webhook destination recording what it receives; answers ``status``."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/bc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received


@pytest.fixture
def receiver(sandbox):
    sandbox.control.switch("bigcommerce", "require_https_destination", False)
    r = Receiver()
    yield r
    r.server.shutdown()


# ---------------------------------------------------------------- auth


def test_x_auth_token_is_the_only_credential(store):
    assert requests.get(f"{store}/v2/orders", headers=AUTH, timeout=5).status_code == 200
    missing = requests.get(f"{store}/v2/orders", timeout=5)
    assert missing.status_code == 401
    assert missing.json() == [{"status": 401, "message": "No valid credentials were supplied in the request."}]
    bearer = requests.get(f"{store}/v2/orders", headers={"X-Auth-Token": f"Bearer {ACCESS_TOKEN}"}, timeout=5)
    assert bearer.status_code == 401
    authorization = requests.get(
        f"{store}/v3/customers", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, timeout=5
    )
    assert authorization.status_code == 401
    assert authorization.json()["status"] == 401 and "title" in authorization.json()  # v3 error object
    # unauthenticated calls do not spend the store's quota
    assert "X-Rate-Limit-Requests-Left" not in missing.headers


def test_unknown_store_hash_is_404_by_default_and_401_by_switch(sandbox):
    url = f"{sandbox.url}/bigcommerce/stores/nosuch1/v2/orders"
    assert requests.get(url, headers=AUTH, timeout=5).status_code == 404
    sandbox.control.switch("bigcommerce", "unknown_store_status", 401)
    assert requests.get(url, headers=AUTH, timeout=5).status_code == 401


def test_revoked_account_via_expired_auth_fault(sandbox, store):
    sandbox.control.fault("bigcommerce", "expired_auth")
    assert requests.get(f"{store}/v2/orders", headers=AUTH, timeout=5).status_code == 401
    assert requests.get(f"{store}/v2/orders", headers=AUTH, timeout=5).status_code == 401


# ---------------------------------------------------------------- v2 orders


def test_v2_orders_money_strings_dates_and_statuses(store):
    orders = requests.get(f"{store}/v2/orders", headers=AUTH, timeout=5).json()
    by_id = {o["id"]: o for o in orders}
    assert sorted(by_id) == [100, 101, 102, 103, 104, 105, 106, 107, 109, 110, 111, 112, 113]  # 108: Incomplete
    first = by_id[100]
    assert first["total_inc_tax"] == "431.5800" and first["subtotal_ex_tax"] == "388.5000"
    assert first["total_tax"] == "31.0800" and first["shipping_cost_inc_tax"] == "12.0000"
    assert first["date_created"] == "Sat, 03 Oct 2026 15:12:09 +0000"
    assert email.utils.parsedate_to_datetime(first["date_modified"]).year == 2026
    assert first["products"]["resource"] == "/orders/100/products"
    assert {o["id"]: o["status_id"] for o in orders} == {
        100: 10,
        101: 2,
        102: 11,
        103: 1,
        104: 7,
        105: 4,
        106: 14,
        107: 10,
        109: 11,
        110: 10,
        111: 9,
        112: 14,
        113: 6,
    }
    assert by_id[105]["refunded_amount"] == by_id[105]["total_inc_tax"] == "159.6200"
    assert by_id[106]["refunded_amount"] == "70.1500"
    assert by_id[107]["customer_id"] == 0 and by_id[107]["billing_address"]["email"] == "jordan.blake@example.com"
    incomplete = requests.get(f"{store}/v2/orders", params={"status_id": 0}, headers=AUTH, timeout=5).json()
    assert [o["id"] for o in incomplete] == [108]


def test_v2_order_filters_accept_rfc2822_and_iso8601(store):
    def ids(params):
        response = requests.get(f"{store}/v2/orders", params=params, headers=AUTH, timeout=5)
        return [] if response.status_code == 204 else [o["id"] for o in response.json()]

    rfc = ids({"min_date_modified": "Sun, 01 Nov 2026 00:00:00 +0000"})
    iso = ids({"min_date_modified": "2026-10-31T19:00:00.000-05:00"})
    assert rfc == iso == [102, 103, 104, 107, 109, 110, 111, 112, 113]
    assert ids({"status_id": 10}) == [100, 107, 110]
    assert ids({"status_id": 10, "min_date_modified": "2026-11-01"}) == [107, 110]
    assert ids({"sort": "date_created:desc", "limit": 2}) == [113, 112]
    bad = requests.get(f"{store}/v2/orders", params={"min_date_modified": "yesterday"}, headers=AUTH, timeout=5)
    assert bad.status_code == 400 and bad.json()[0]["status"] == 400


def test_v2_paging_ends_with_204_and_limit_above_250_is_413(store):
    pages = []
    for page in range(1, 5):
        response = requests.get(f"{store}/v2/orders", params={"page": page, "limit": 5}, headers=AUTH, timeout=5)
        pages.append(response)
    assert [len(r.json()) for r in pages[:3]] == [5, 5, 3]
    assert pages[3].status_code == 204 and pages[3].content == b""
    too_big = requests.get(f"{store}/v2/orders", params={"limit": 251}, headers=AUTH, timeout=5)
    assert too_big.status_code == 413 and too_big.json()[0]["status"] == 413
    assert requests.get(f"{store}/v2/orders", params={"limit": 250}, headers=AUTH, timeout=5).status_code == 200


def test_v2_single_order_count_products_and_statuses(store):
    missing = requests.get(f"{store}/v2/orders/999", headers=AUTH, timeout=5)
    assert missing.status_code == 404
    assert missing.json() == [{"status": 404, "message": "The requested resource was not found."}]
    count = requests.get(f"{store}/v2/orders/count", headers=AUTH, timeout=5).json()
    assert count["count"] == 13
    assert next(s for s in count["statuses"] if s["id"] == 10)["count"] == 3
    lines = requests.get(f"{store}/v2/orders/106/products", headers=AUTH, timeout=5).json()
    assert [line["sku"] for line in lines] == ["SO-TENT-RL2P", "SO-STOVE-AMC", "SO-ACC-TISTK8"]
    stove = lines[1]
    assert stove["price_ex_tax"] == "64.9500" and stove["price_tax"] == "5.2000"
    assert stove["quantity_refunded"] == 1 and stove["is_refunded"] is True and stove["refund_amount"] == "70.1500"
    statuses = requests.get(f"{store}/v2/order_statuses", headers=AUTH, timeout=5).json()
    assert {s["id"]: s["system_label"] for s in statuses}[14] == "Partially Refunded"
    assert set(statuses[0]) == {"id", "name", "system_label", "custom_label", "system_description", "order"}


def test_v2_order_create_and_update(store):
    created = requests.post(
        f"{store}/v2/orders",
        json={
            "customer_id": 1,
            "status_id": 11,
            "billing_address": {"first_name": "Avery", "last_name": "Chen", "email": "avery.chen@example.com"},
            "products": [{"product_id": 84, "quantity": 3}],
        },
        headers=AUTH,
        timeout=5,
    )
    assert created.status_code == 201
    order = created.json()
    assert order["id"] == 114 and order["total_inc_tax"] == "23.8500"
    txns = requests.get(f"{store}/v3/orders/114/transactions", headers=AUTH, timeout=5).json()["data"]
    assert txns[0]["event"] == "purchase" and txns[0]["amount"] == 23.85
    updated = requests.put(f"{store}/v2/orders/109", json={"status_id": 2}, headers=AUTH, timeout=5).json()
    assert updated["status_id"] == 2 and updated["date_shipped"]
    bad = requests.post(f"{store}/v2/orders", json={"products": []}, headers=AUTH, timeout=5)
    assert bad.status_code == 400


# ---------------------------------------------------------------- quota


def test_quota_headers_on_every_response_and_429_once_spent(sandbox, store):
    sandbox.control.switch("bigcommerce", "rate_limit_quota", 4)
    lefts = []
    for _ in range(4):
        response = requests.get(f"{store}/v2/order_statuses", headers=AUTH, timeout=5)
        assert response.headers["X-Rate-Limit-Time-Window-Ms"] == "30000"
        assert response.headers["X-Rate-Limit-Requests-Quota"] == "4"
        assert 0 < int(response.headers["X-Rate-Limit-Time-Reset-Ms"]) <= 30000
        lefts.append(int(response.headers["X-Rate-Limit-Requests-Left"]))
    assert lefts == [3, 2, 1, 0]
    refused = requests.get(f"{store}/v2/order_statuses", headers=AUTH, timeout=5)
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Requests-Left"] == "0"
    assert int(refused.headers["X-Rate-Limit-Time-Reset-Ms"]) > 0
    # also on error answers of a v3 route
    assert requests.get(f"{store}/v3/customers", headers=AUTH, timeout=5).status_code == 429
    sandbox.control.advance_clock(30)
    again = requests.get(f"{store}/v2/order_statuses", headers=AUTH, timeout=5)
    assert again.status_code == 200 and again.headers["X-Rate-Limit-Requests-Left"] == "3"


def test_platform_load_429_fault_has_no_quota_headers(sandbox, store):
    sandbox.control.fault("bigcommerce", "429")
    response = requests.get(f"{store}/v2/orders", headers=AUTH, timeout=5)
    assert response.status_code == 429
    assert "X-Rate-Limit-Time-Reset-Ms" not in response.headers


# ---------------------------------------------------------------- v3 transactions and refunds


def test_transactions_are_v3_with_204_when_none(store):
    assert requests.get(f"{store}/v3/orders/103/transactions", headers=AUTH, timeout=5).status_code == 204
    body = requests.get(f"{store}/v3/orders/105/transactions", headers=AUTH, timeout=5).json()
    assert [(t["event"], t["amount"]) for t in body["data"]] == [("purchase", 159.62), ("refund", 159.62)]
    assert body["data"][0]["order_id"] == "105" and body["meta"]["pagination"]["total"] == 2
    assert requests.get(f"{store}/v3/orders/999/transactions", headers=AUTH, timeout=5).status_code == 404


def test_refund_listing_per_order_and_store_wide(store):
    per_order = requests.get(f"{store}/v3/orders/106/payment_actions/refunds", headers=AUTH, timeout=5).json()
    assert [(r["id"], r["total_amount"], r["total_tax"]) for r in per_order["data"]] == [(2, 70.15, 5.2)]
    everything = requests.get(f"{store}/v3/orders/payment_actions/refunds", headers=AUTH, timeout=5).json()
    assert [r["order_id"] for r in everything["data"]] == [105, 106, 112]
    recent = requests.get(
        f"{store}/v3/orders/payment_actions/refunds",
        params={"created:min": "2026-10-28T00:00:00+00:00"},
        headers=AUTH,
        timeout=5,
    ).json()
    assert [r["id"] for r in recent["data"]] == [2, 3]
    assert (
        requests.get(f"{store}/v3/orders/payment_actions/refunds/1", headers=AUTH, timeout=5)
        .json()["data"]["reason"]
        .startswith("Arrived")
    )


def test_refund_quote_then_partial_then_full_refund_moves_status(store):
    lines = requests.get(f"{store}/v2/orders/101/products", headers=AUTH, timeout=5).json()
    items = [{"item_type": "PRODUCT", "item_id": lines[1]["id"], "quantity": 1}]
    quote = requests.post(
        f"{store}/v3/orders/101/payment_actions/refund_quotes", json={"items": items}, headers=AUTH, timeout=5
    )
    assert quote.status_code == 201
    assert quote.json()["data"]["total_refund_amount"] == 204.12  # 189.00 + 8 % tax
    refund = requests.post(
        f"{store}/v3/orders/101/payment_actions/refunds",
        json={"items": items, "payments": [{"provider_id": "authorizenet", "amount": 204.12, "offline": False}]},
        headers=AUTH,
        timeout=5,
    )
    assert refund.status_code == 201
    order = requests.get(f"{store}/v2/orders/101", headers=AUTH, timeout=5).json()
    assert order["status_id"] == 14 and order["refunded_amount"] == "204.1200"
    rest = {"item_type": "ORDER", "item_id": 101, "amount": 301.32}
    full = requests.post(
        f"{store}/v3/orders/101/payment_actions/refunds",
        json={"items": [rest], "payments": [{"provider_id": "custom", "amount": 301.32, "offline": True}]},
        headers=AUTH,
        timeout=5,
    )
    assert full.status_code == 201
    assert requests.get(f"{store}/v2/orders/101", headers=AUTH, timeout=5).json()["status_id"] == 4


def test_refund_validation_errors_are_wrapped_422s(store):
    over = requests.post(
        f"{store}/v3/orders/106/payment_actions/refunds",
        json={
            "items": [{"item_type": "ORDER", "item_id": 106, "amount": 1000}],
            "payments": [{"provider_id": "custom", "amount": 1000, "offline": True}],
        },
        headers=AUTH,
        timeout=5,
    )
    assert over.status_code == 422
    assert over.json()["data"][0]["status"] == 422 and "refundable" in over.json()["data"][0]["title"]
    guest = requests.post(
        f"{store}/v3/orders/107/payment_actions/refunds",
        json={
            "items": [{"item_type": "ORDER", "item_id": 107, "amount": 5}],
            "payments": [{"provider_id": "storecredit", "amount": 5, "offline": True}],
        },
        headers=AUTH,
        timeout=5,
    )
    assert guest.status_code == 422
    assert guest.json()["data"][0]["title"] == "Unable to provide store credit for a guest customer."
    unpaid = requests.post(
        f"{store}/v3/orders/103/payment_actions/refund_quotes",
        json={"items": [{"item_type": "ORDER", "item_id": 103, "amount": 5}]},
        headers=AUTH,
        timeout=5,
    )
    assert unpaid.status_code == 422


def _refund(store, order_id, amount):
    return requests.post(
        f"{store}/v3/orders/{order_id}/payment_actions/refunds",
        json={
            "items": [{"item_type": "ORDER", "item_id": order_id, "amount": amount}],
            "payments": [{"provider_id": "custom", "amount": amount, "offline": True}],
        },
        headers=AUTH,
        timeout=5,
    )


def test_concurrent_refunds_on_one_order_are_refused_but_other_orders_proceed(sandbox, store):
    sandbox.control.switch("bigcommerce", "refund_processing_seconds", 0.5)
    with ThreadPoolExecutor(max_workers=3) as pool:
        same = [pool.submit(_refund, store, 100, 10) for _ in range(2)]
        other = pool.submit(_refund, store, 102, 10)
        statuses = sorted(f.result().status_code for f in same)
        assert other.result().status_code == 201
    assert statuses == [201, 409]
    assert requests.get(f"{store}/v2/orders/100", headers=AUTH, timeout=5).json()["refunded_amount"] == "10.0000"
    sandbox.control.switch("bigcommerce", "concurrent_refund_status", 422)
    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(f.result().status_code for f in [pool.submit(_refund, store, 100, 1) for _ in range(2)])
    assert statuses == [201, 422]


# ---------------------------------------------------------------- customers and products


def test_customers_cursor_pagination(store):
    first = requests.get(f"{store}/v3/customers", params={"limit": 2}, headers=AUTH, timeout=5).json()
    assert [c["id"] for c in first["data"]] == [1, 2]
    cursor = first["meta"]["cursor_pagination"]
    assert cursor["end_cursor"] and cursor["links"]["next"]
    assert first["meta"]["pagination"]["total_pages"] == 3
    seen = [c["id"] for c in first["data"]]
    after = cursor["end_cursor"]
    while after:
        page = requests.get(
            f"{store}/v3/customers", params={"limit": 2, "after": after}, headers=AUTH, timeout=5
        ).json()
        seen += [c["id"] for c in page["data"]]
        meta = page["meta"]["cursor_pagination"]
        after = meta["end_cursor"] if meta["links"].get("next") else None
    assert seen == [1, 2, 3, 4, 5]
    second_page = requests.get(f"{store}/v3/customers", params={"limit": 2, "page": 2}, headers=AUTH, timeout=5).json()
    assert "end_cursor" not in second_page["meta"]["cursor_pagination"]  # only on page 1 or with a cursor
    modified = requests.get(
        f"{store}/v3/customers", params={"date_modified:min": "2026-10-01T00:00:00Z"}, headers=AUTH, timeout=5
    ).json()
    assert [c["id"] for c in modified["data"]] == [4, 5]
    assert requests.get(f"{store}/v3/customers", params={"limit": 251}, headers=AUTH, timeout=5).status_code == 413


def test_catalog_products(store):
    body = requests.get(f"{store}/v3/catalog/products", params={"limit": 5}, headers=AUTH, timeout=5).json()
    assert body["meta"]["pagination"] == {
        "total": 8,
        "count": 5,
        "per_page": 5,
        "current_page": 1,
        "total_pages": 2,
        "links": {"current": "?page=1&limit=5", "next": "?page=2&limit=5"},
    }
    tent = body["data"][0]
    assert tent["name"] == "Ridgeline 2P Backpacking Tent" and tent["price"] == 349 and tent["cost_price"] == 162
    stoves = requests.get(
        f"{store}/v3/catalog/products", params={"sku:in": "SO-STOVE-AMC,SO-STOVE-TC2B"}, headers=AUTH, timeout=5
    ).json()
    assert [p["price"] for p in stoves["data"]] == [64.95, 139]
    assert (
        requests.get(f"{store}/v3/catalog/products", params={"limit": 300}, headers=AUTH, timeout=5).status_code == 413
    )


# ---------------------------------------------------------------- hooks


def test_hook_destination_rules_and_limits(sandbox, store):
    def create(destination, scope="store/order/created"):
        return requests.post(
            f"{store}/v3/hooks", json={"scope": scope, "destination": destination}, headers=AUTH, timeout=5
        )

    assert create("http://127.0.0.1:9/hook").status_code == 422
    assert create("https://receiver.example:8443/hook").status_code == 422
    made = create("https://receiver.example/hook")
    assert made.status_code == 200
    hook = made.json()["data"]
    assert hook["is_active"] is True and hook["store_hash"] == STORE_HASH and hook["scope"] == "store/order/created"
    assert create("https://receiver.example/hook").status_code == 422  # one per scope + destination
    assert create("https://receiver.example/hook", scope="store/order/nope").status_code == 422
    for n in range(9):
        assert create(f"https://receiver.example/hook{n}").status_code == 200
    assert create("https://receiver.example/hook-eleven").status_code == 422  # at most 10 per scope
    sandbox.control.switch("bigcommerce", "require_https_destination", False)
    assert create("http://127.0.0.1:9/hook", scope="store/order/updated").status_code == 200
    listed = requests.get(f"{store}/v3/hooks", headers=AUTH, timeout=5).json()
    assert listed["meta"]["pagination"]["total"] == 11


def test_hook_get_update_delete_and_reactivation(sandbox, store):
    hook = requests.post(
        f"{store}/v3/hooks",
        json={"scope": "store/order/*", "destination": "https://receiver.example/h"},
        headers=AUTH,
        timeout=5,
    ).json()["data"]
    url = f"{store}/v3/hooks/{hook['id']}"
    deactivated = requests.post(f"{sandbox.url}/bigcommerce/_sandbox/hooks/{hook['id']}/deactivate", timeout=5)
    assert deactivated.json()["data"]["is_active"] is False
    assert requests.get(url, headers=AUTH, timeout=5).json()["data"]["is_active"] is False
    reactivated = requests.put(url, json={"is_active": True}, headers=AUTH, timeout=5).json()["data"]
    assert reactivated["is_active"] is True
    assert requests.delete(url, headers=AUTH, timeout=5).status_code == 200
    assert requests.get(url, headers=AUTH, timeout=5).status_code == 404


def _standard_webhooks_signature(secret, message_id, timestamp, body):
    digest = hmac.new(secret.encode(), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_thin_signed_webhooks_on_order_changes(sandbox, store, receiver):
    requests.post(
        f"{store}/v3/hooks",
        json={"scope": "store/order/*", "destination": receiver.url, "headers": {"X-Shared": "s3cr3t-header"}},
        headers=AUTH,
        timeout=5,
    ).raise_for_status()
    requests.put(f"{store}/v2/orders/104", json={"status_id": 11}, headers=AUTH, timeout=5).raise_for_status()
    got = receiver.wait_for(2)
    payloads = [json.loads(r["body"]) for r in got]
    assert [p["scope"] for p in payloads] == ["store/order/updated", "store/order/statusUpdated"]
    status = payloads[1]
    assert status["data"] == {"type": "order", "id": 104, "status": {"previous_status_id": 7, "new_status_id": 11}}
    assert status["store_id"] == STORE_ID and status["producer"] == f"stores/{STORE_HASH}"
    assert len(status["hash"]) == 40 and isinstance(status["created_at"], int)
    for delivery in got:
        headers = {k.lower(): v for k, v in delivery["headers"].items()}
        assert headers["x-shared"] == "s3cr3t-header"
        expected = _standard_webhooks_signature(
            CLIENT_SECRET, headers["webhook-id"], headers["webhook-timestamp"], delivery["body"]
        )
        assert headers["webhook-signature"] == expected
    # a redelivery is the same event: same body (hash) and same message id
    sandbox.control.redeliver(2)
    again = receiver.wait_for(3)[2]
    assert again["body"] == got[1]["body"]
    assert again["headers"]["webhook-id"] == got[1]["headers"]["webhook-id"]


def test_refund_webhook_and_switchable_signature_header_names(sandbox, store, receiver):
    sandbox.control.switch("bigcommerce", "webhook_header_signature", "X-BC-Signature")
    requests.post(
        f"{store}/v3/hooks",
        json={"scope": "store/order/refund/created", "destination": receiver.url},
        headers=AUTH,
        timeout=5,
    ).raise_for_status()
    assert _refund(store, 100, 5).status_code == 201
    delivery = receiver.wait_for(1)[0]
    payload = json.loads(delivery["body"])
    assert payload["scope"] == "store/order/refund/created"
    assert payload["data"] == {"type": "order", "id": 100, "refund": {"refund_id": 4}}
    assert "X-BC-Signature" in delivery["headers"] or "x-bc-signature" in {k.lower() for k in delivery["headers"]}


def test_hook_is_deactivated_after_failed_deliveries(sandbox, store, receiver):
    sandbox.control.switch("bigcommerce", "deactivate_after_failed_deliveries", 2)
    receiver.status = 500
    hook = requests.post(
        f"{store}/v3/hooks",
        json={"scope": "store/order/updated", "destination": receiver.url},
        headers=AUTH,
        timeout=5,
    ).json()["data"]
    for n in range(2):
        requests.put(f"{store}/v2/orders/100", json={"staff_notes": f"n{n}"}, headers=AUTH, timeout=5)
        receiver.wait_for(n + 1)
        sandbox.sandbox.ctx.webhooks.wait_idle()
    requests.put(f"{store}/v2/orders/100", json={"staff_notes": "n2"}, headers=AUTH, timeout=5)
    state = requests.get(f"{store}/v3/hooks/{hook['id']}", headers=AUTH, timeout=5).json()["data"]
    assert state["is_active"] is False
    assert len(receiver.received) == 2  # the third event was not delivered


# ---------------------------------------------------------------- seeding


def test_generate_counts(sandbox, store):
    sandbox.control.reset()
    sandbox.control.generate({"bigcommerce": {"products": 12, "customers": 7, "orders": 40}})
    state = sandbox.control.state("bigcommerce")
    assert len(state["products"]) == 12 and len(state["customers"]) == 7 and len(state["orders"]) == 40
    statuses = {o["status_id"] for o in state["orders"].values()}
    assert {4, 14} & statuses
    for order in state["orders"].values():
        if order["status_id"] == 4:
            assert order["refunded_amount"] == order["total_inc_tax"]


# ------------------------------------------------------------------ the BigCommerce -> FreshBooks story


def test_a_multi_currency_order_names_its_transactional_and_display_currencies(store):
    order = requests.get(f"{store}/v2/orders/111", headers=AUTH, timeout=5).json()
    assert (order["currency_code"], order["default_currency_code"], order["store_default_currency_code"]) == (
        "USD",
        "EUR",
        "USD",
    )
    txns = requests.get(f"{store}/v3/orders/111/transactions", headers=AUTH, timeout=5).json()["data"]
    assert [(t["event"], t["currency"]) for t in txns] == [("purchase", "EUR")]


def test_a_custom_product_line_may_have_no_sku_and_a_store_credit_refund_leaves_no_refund_transaction(store):
    lines = requests.get(f"{store}/v2/orders/110/products", headers=AUTH, timeout=5).json()
    assert [(line["product_id"], line["sku"]) for line in lines] == [(83, "SO-ACC-TISTK8"), (0, "")]
    (refund,) = requests.get(f"{store}/v3/orders/112/payment_actions/refunds", headers=AUTH, timeout=5).json()["data"]
    assert [(p["provider_id"], p["offline"]) for p in refund["payments"]] == [("storecredit", True)]
    txns = requests.get(f"{store}/v3/orders/112/transactions", headers=AUTH, timeout=5).json()["data"]
    assert [t["event"] for t in txns] == ["purchase"]


def test_catalog_products_are_created_and_updated_with_unique_skus(store):
    body = {"name": "Trail Mug", "type": "physical", "weight": 1, "price": 14.5, "sku": "SO-ACC-MUG"}
    created = requests.post(f"{store}/v3/catalog/products", json=body, headers=AUTH, timeout=5)
    assert created.status_code == 200 and created.json()["data"]["sku"] == "SO-ACC-MUG"
    taken = requests.put(f"{store}/v3/catalog/products/83", json={"sku": "SO-TENT-RL2P"}, headers=AUTH, timeout=5)
    assert taken.status_code == 409
    moved = requests.put(f"{store}/v3/catalog/products/77", json={"sku": "SO-TENT-RL2P-V2"}, headers=AUTH, timeout=5)
    assert moved.json()["data"]["sku"] == "SO-TENT-RL2P-V2"
    assert requests.put(f"{store}/v3/catalog/products/83", json={"sku": "SO-TENT-RL2P"}, headers=AUTH, timeout=5).ok
    missing = requests.post(f"{store}/v3/catalog/products", json={"name": "x"}, headers=AUTH, timeout=5)
    assert missing.status_code == 422
