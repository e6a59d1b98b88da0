"""HTTP adapter of the BigCommerce emulator: auth, quota, parsing, vendor envelopes and errors.

Everything vendor-shaped about the wire lives here: ``X-Auth-Token`` checks, the per-store quota
with its ``X-Rate-Limit-*`` headers, v2 money strings / RFC-2822 dates and array error bodies,
v3 ``{"data", "meta"}`` envelopes and object error bodies, 204 on an empty v2 page, and the
Standard-Webhooks-signed thin webhook deliveries.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import hmac
import json
import math
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from airflow_provider_mlconnector.sandbox.bigcommerce.backend import (
    ACCESS_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    ORDER_STATUSES,
    PAID_STATUSES,
    STORE_HASH,
    STORE_ID,
    BadRequest,
    BigCommerceBackend,
    BigCommerceError,
    Customer,
    Hook,
    LimitExceeded,
    Order,
    OrderLine,
    Product,
    Refund,
    RefundInProgress,
    Transaction,
    cents,
    decimal_of,
    decode_cursor,
    encode_cursor,
)
from airflow_provider_mlconnector.sandbox.bigcommerce.demo import demo_fixture
from airflow_provider_mlconnector.sandbox.core import Delivery, SystemSandbox

ERROR_TYPE = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"
MAX_LIMIT = 250
WINDOW_MS = 30_000
V2_SORT_KEYS = frozenset(
    {"id", "customer_id", "date_created", "date_modified", "status_id", "channel_id", "external_id"}
)
FOUR = Decimal("0.0001")
#: The store's default currency, and its rate to the transactional currencies the demo sells in.
STORE_CURRENCY = "USD"
EXCHANGE_RATES = {"EUR": "0.9200000000", "CAD": "1.3600000000"}

Handler = Callable[[Request], Awaitable[Response]]


class BigCommerceSandbox(SystemSandbox):
    """The BigCommerce emulator mounted at ``/bigcommerce``; see ``README.md`` for its coverage."""

    name: ClassVar[str] = "bigcommerce"
    default_switches: ClassVar[dict[str, Any]] = {
        # Per-store quota per 30 s window (Standard/Plus plans: 150; Pro: 450).
        "rate_limit_quota": 150,
        # Status answered for a store hash that does not exist (UNCONFIRMED: 404 or 401).
        "unknown_store_status": 404,
        # Status of a second refund on an order whose refund is still processing (UNCONFIRMED: 409 or 422).
        "concurrent_refund_status": 409,
        # How long a refund stays "processing" (seconds of real time) before it commits.
        "refund_processing_seconds": 0.05,
        # Webhook destinations must be https on port 443; off allows http://127.0.0.1 receivers.
        "require_https_destination": True,
        # Standard Webhooks header names on deliveries (UNCONFIRMED: BigCommerce does not name them).
        "webhook_header_id": "webhook-id",
        "webhook_header_timestamp": "webhook-timestamp",
        "webhook_header_signature": "webhook-signature",
        # Consecutive failed deliveries after which a hook is deactivated (stands in for the 48 h
        # retry schedule, which is not replayed); 0 never deactivates.
        "deactivate_after_failed_deliveries": 5,
        # Max ``limit`` of GET /v3/customers (UNCONFIRMED: the spec states no maximum).
        "customers_max_limit": 250,
    }

    def reset(self) -> None:
        self.backend = BigCommerceBackend(now=self.now, switches=self.switches)
        self.revoked = False
        self.window_start = 0.0
        self.window_used = 0
        self.hook_deliveries: dict[int, list[Delivery]] = {}

    # ------------------------------------------------------------------ SystemSandbox API

    def connection(self, base_url: str) -> dict[str, Any]:
        return {
            "conn_type": "bigcommerce",
            "host": base_url,
            "password": ACCESS_TOKEN,
            "extra": {"store_hash": STORE_HASH, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        }

    def expire_credentials(self) -> None:
        # BigCommerce tokens do not expire; the nearest real event is a revoked API account.
        self.revoked = True

    def rate_limited_response(self) -> Response:
        # The "platform under high load" 429: no X-Rate-Limit-* headers, so clients use normal backoff.
        return JSONResponse({"status": 429, "title": "Too many requests", "type": ERROR_TYPE}, status_code=429)

    def server_error_response(self) -> Response:
        return JSONResponse({"status": 500, "title": "Internal Server Error", "type": ERROR_TYPE}, status_code=500)

    def demo_fixture(self) -> dict[str, Any]:
        return demo_fixture()

    def seed(self, fixture: dict[str, Any]) -> None:
        backend = self.backend
        for raw in fixture.get("customers", []):
            customer = Customer(
                id=int(raw["id"]),
                email=raw["email"],
                first_name=raw["first_name"],
                last_name=raw["last_name"],
                company=raw.get("company", ""),
                phone=raw.get("phone", ""),
                notes=raw.get("notes", ""),
                customer_group_id=int(raw.get("customer_group_id", 0)),
                date_created=_ts(raw["date_created"]),
                date_modified=_ts(raw.get("date_modified", raw["date_created"])),
                addresses=list(raw.get("addresses", [])),
                store_credit=Decimal(str(raw.get("store_credit", "0"))),
            )
            backend.customers[customer.id] = customer
        for raw in fixture.get("products", []):
            product = Product(
                id=int(raw["id"]),
                name=raw["name"],
                sku=raw["sku"],
                price=Decimal(str(raw["price"])),
                cost_price=Decimal(str(raw.get("cost_price", "0"))),
                retail_price=Decimal(str(raw.get("retail_price", "0"))),
                sale_price=Decimal(str(raw.get("sale_price", "0"))),
                categories=list(raw.get("categories", [])),
                brand_id=int(raw.get("brand_id", 0)),
                inventory_level=int(raw.get("inventory_level", 0)),
                is_visible=bool(raw.get("is_visible", True)),
                date_created=_ts(raw["date_created"]),
                date_modified=_ts(raw.get("date_modified", raw["date_created"])),
            )
            backend.products[product.id] = product
        for raw in fixture.get("orders", []):
            self._seed_order(raw)
        for raw in fixture.get("refunds", []):
            self._seed_refund(raw)
        backend.events.clear()  # seeded history is not news: no webhooks for it

    def _seed_order(self, raw: dict[str, Any]) -> None:
        backend = self.backend
        rate = Decimal(str(raw.get("tax_rate", "0")))
        order = Order(
            id=int(raw["id"]),
            customer_id=int(raw.get("customer_id", 0)),
            status_id=int(raw["status_id"]),
            date_created=_ts(raw["date_created"]),
            date_modified=_ts(raw.get("date_modified", raw["date_created"])),
            lines=[],
            billing_address=dict(raw["billing_address"]),
            shipping_cost_ex_tax=Decimal(str(raw.get("shipping_cost_ex_tax", "0"))),
            payment_method=raw.get("payment_method", "Credit Card"),
            currency_code=raw.get("currency", STORE_CURRENCY),
            display_currency_code=raw.get("display_currency", ""),
        )
        for line in raw["lines"]:
            # A catalog line names its product; a custom line (product_id 0) brings its own name,
            # price and, maybe, no SKU at all (BigCommerce allows custom products without one).
            product = backend.products.get(int(line.get("product_id", 0)))
            price = Decimal(str(line.get("price", product.price if product else "0")))
            order.lines.append(
                OrderLine(
                    id=backend.next_id("line"),
                    order_id=order.id,
                    product_id=product.id if product else 0,
                    name=product.name if product else str(line["name"]),
                    sku=product.sku if product else str(line.get("sku", "")),
                    quantity=int(line["quantity"]),
                    base_price=price,
                    price_tax=cents(price * rate),
                )
            )
        if order.status_id in (2, 3, 10):
            order.date_shipped = order.date_modified
        backend.orders[order.id] = order
        backend.bump("order", order.id)
        if order.status_id in PAID_STATUSES:
            backend.record_purchase(order)

    def _seed_refund(self, raw: dict[str, Any]) -> None:
        backend = self.backend
        order = backend.get_order(int(raw["order_id"]))
        items = []
        for item in raw["items"]:
            item = dict(item)
            if "line_index" in item:
                item["item_id"] = order.lines[int(item.pop("line_index"))].id
            items.append(item)
        modified = order.date_modified
        quote = backend.create_refund_quote(order.id, {"items": items})
        # The first refund method is the original gateway; a fixture may refund to store credit.
        provider = raw.get("provider") or quote["refund_methods"][0][0]["provider_id"]
        refund = backend.create_refund(
            order.id,
            {
                "items": items,
                "reason": raw.get("reason", ""),
                "payments": [{"provider_id": provider, "amount": str(quote["total_refund_amount"])}],
            },
        )
        refund.created = _ts(raw["created"]) if "created" in raw else modified
        for txn in backend.transactions.get(order.id, []):
            if txn.event == "refund" and txn.date_created > refund.created:
                txn.date_created = refund.created
        order.date_modified = max(modified, refund.created)

    def generate(self, counts: dict[str, int]) -> None:
        rng = random.Random(4242)
        backend = self.backend
        now = self.now()
        for _ in range(int(counts.get("products", 0))):
            pid = max(backend.products, default=200) + 1
            price = Decimal(rng.randrange(500, 60000)) / 100
            backend.products[pid] = Product(
                id=pid,
                name=f"Trail Gear Item {pid}",
                sku=f"SO-GEN-{pid:05d}",
                price=price,
                cost_price=cents(price * Decimal("0.45")),
                inventory_level=rng.randrange(0, 200),
                date_created=now - 86400 * 90,
                date_modified=now - rng.randrange(0, 86400 * 60),
            )
        for _ in range(int(counts.get("customers", 0))):
            cid = max(backend.customers, default=0) + 1
            created = now - rng.randrange(86400, 86400 * 120)
            backend.customers[cid] = Customer(
                id=cid,
                email=f"hiker{cid}@example.com",
                first_name="Hiker",
                last_name=f"Number {cid}",
                date_created=created,
                date_modified=created + rng.randrange(0, 86400),
            )
        if int(counts.get("orders", 0)) and not backend.products:
            self.generate({"products": 20})
        statuses = [10, 10, 10, 2, 2, 11, 11, 9, 3, 1, 7, 5, 4, 14]
        product_ids = sorted(backend.products)
        customer_ids = [0, *sorted(backend.customers)]
        for _ in range(int(counts.get("orders", 0))):
            status = rng.choice(statuses)
            final = status
            status = 10 if status in (4, 14) else status
            created = now - rng.randrange(3600, 86400 * 45)
            oid = backend.next_id("order")
            order = Order(
                id=oid,
                customer_id=rng.choice(customer_ids),
                status_id=status,
                date_created=created,
                date_modified=created + rng.randrange(0, 86400 * 3),
                lines=[],
                billing_address={"first_name": "Gen", "last_name": f"Order {oid}", "email": f"buyer{oid}@example.com"},
                shipping_cost_ex_tax=Decimal(rng.choice(["0", "8.00", "12.00", "25.00"])),
            )
            for product_id in rng.sample(product_ids, k=min(len(product_ids), rng.randrange(1, 4))):
                product = backend.products[product_id]
                order.lines.append(
                    OrderLine(
                        id=backend.next_id("line"),
                        order_id=oid,
                        product_id=product_id,
                        name=product.name,
                        sku=product.sku,
                        quantity=rng.randrange(1, 4),
                        base_price=product.price,
                        price_tax=cents(product.price * Decimal("0.08")),
                    )
                )
            backend.orders[oid] = order
            if status in PAID_STATUSES:
                backend.record_purchase(order)
            if final in (4, 14):
                # Replay a refund the way the store would: all of it (-> 4) or a third (-> 14).
                amount = order.total_inc_tax if final == 4 else cents(order.total_inc_tax / 3)
                items = [{"item_type": "ORDER", "item_id": oid, "amount": str(amount)}]
                quote = backend.create_refund_quote(oid, {"items": items})
                provider = quote["refund_methods"][0][0]["provider_id"]
                backend.create_refund(
                    oid, {"items": items, "payments": [{"provider_id": provider, "amount": str(amount)}]}
                )
        backend.events.clear()

    def snapshot(self) -> dict[str, Any]:
        backend = self.backend
        base = "http://sandbox/bigcommerce"
        return {
            "store_hash": backend.store_hash,
            "orders": {str(o.id): order_v2(o, base, backend) for o in backend.orders.values()},
            "order_products": {
                str(o.id): [line_v2(line, o, backend) for line in o.lines] for o in backend.orders.values()
            },
            "transactions": {str(oid): [transaction_v3(t) for t in txns] for oid, txns in backend.transactions.items()},
            "refunds": [refund_v3(r) for r in backend.refunds.values()],
            "customers": [customer_v3(c, set()) for c in backend.customers.values()],
            "products": [product_v3(p) for p in backend.products.values()],
            "hooks": [hook_v3(h) for h in backend.hooks.values()],
            "rate_limit": {"window_start": self.window_start, "used": self.window_used},
            "revoked": self.revoked,
        }

    # ------------------------------------------------------------------ routes

    def routes(self) -> list[BaseRoute]:
        store = "/stores/{store_hash}"
        v2, v3 = "v2", "v3"
        return [
            self._route(f"{store}/v2/store", v2, self._get_store),
            self._route(f"{store}/v2/orders/count", v2, self._count_orders),
            self._route(f"{store}/v2/orders", v2, self._list_orders),
            self._route(f"{store}/v2/orders", v2, self._create_order, "POST"),
            self._route(f"{store}/v2/orders/{{order_id:int}}", v2, self._get_order),
            self._route(f"{store}/v2/orders/{{order_id:int}}", v2, self._update_order, "PUT"),
            self._route(f"{store}/v2/orders/{{order_id:int}}/products", v2, self._list_order_products),
            self._route(f"{store}/v2/order_statuses", v2, self._order_statuses),
            self._route(f"{store}/v3/orders/{{order_id:int}}/transactions", v3, self._list_transactions),
            self._route(
                f"{store}/v3/orders/{{order_id:int}}/payment_actions/refund_quotes", v3, self._refund_quote, "POST"
            ),
            self._route(f"{store}/v3/orders/{{order_id:int}}/payment_actions/refunds", v3, self._order_refunds),
            self._route(f"{store}/v3/orders/{{order_id:int}}/payment_actions/refunds", v3, self._create_refund, "POST"),
            self._route(f"{store}/v3/orders/payment_actions/refunds", v3, self._list_refunds),
            self._route(f"{store}/v3/orders/payment_actions/refunds/{{refund_id:int}}", v3, self._get_refund),
            self._route(f"{store}/v3/customers", v3, self._list_customers),
            self._route(f"{store}/v3/catalog/products", v3, self._list_products),
            self._route(f"{store}/v3/catalog/products", v3, self._create_product, "POST"),
            self._route(f"{store}/v3/catalog/products/{{product_id:int}}", v3, self._update_product, "PUT"),
            self._route(f"{store}/v3/hooks", v3, self._list_hooks),
            self._route(f"{store}/v3/hooks", v3, self._create_hook, "POST"),
            self._route(f"{store}/v3/hooks/{{hook_id:int}}", v3, self._get_hook),
            self._route(f"{store}/v3/hooks/{{hook_id:int}}", v3, self._update_hook, "PUT"),
            self._route(f"{store}/v3/hooks/{{hook_id:int}}", v3, self._delete_hook, "DELETE"),
            # Sandbox-only: what BigCommerce does after ~48 h of failed retries.
            Route("/_sandbox/hooks/{hook_id:int}/deactivate", self._deactivate_hook, methods=["POST"]),
        ]

    def _route(self, path: str, version: str, handler: Handler, method: str = "GET") -> Route:
        async def endpoint(request: Request) -> Response:
            if request.path_params["store_hash"] != self.backend.store_hash:
                status = int(self.switches["unknown_store_status"])
                return error_response(version, status, "Store not found." if status == 404 else "Unauthorized.")
            if not self._authorized(request):
                return error_response(version, 401, "No valid credentials were supplied in the request.")
            quota_headers, allowed = self._spend_quota()
            if not allowed:
                refused = error_response(version, 429, "You have exceeded the request quota for this store.")
                refused.headers.update(quota_headers)
                refused.headers["X-Retry-After"] = str(
                    math.ceil(int(quota_headers["X-Rate-Limit-Time-Reset-Ms"]) / 1000)
                )
                return refused
            response: Response
            try:
                response = await handler(request)
            except BigCommerceError as exc:
                response = error_response(
                    version, exc.status, exc.message, exc.errors, wrap=_wraps_errors(request, exc)
                )
            response.headers.update(quota_headers)
            self._deliver_events()
            return response

        return Route(path, endpoint, methods=[method])

    def _authorized(self, request: Request) -> bool:
        # Only X-Auth-Token counts; "Bearer <token>" in it, or an Authorization header, is not a credential.
        token = request.headers.get("x-auth-token")
        return bool(token) and hmac.compare_digest(str(token), ACCESS_TOKEN) and not self.revoked

    def _spend_quota(self) -> tuple[dict[str, str], bool]:
        with self.lock:
            now = self.now()
            if now - self.window_start >= WINDOW_MS / 1000:
                self.window_start, self.window_used = now, 0
            quota = int(self.switches["rate_limit_quota"])
            allowed = self.window_used < quota
            if allowed:
                self.window_used += 1
            reset_ms = max(1, math.ceil((self.window_start + WINDOW_MS / 1000 - now) * 1000))
            headers = {
                "X-Rate-Limit-Time-Window-Ms": str(WINDOW_MS),
                "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
                "X-Rate-Limit-Requests-Quota": str(quota),
                "X-Rate-Limit-Requests-Left": str(max(0, quota - self.window_used)),
            }
            return headers, allowed

    # ------------------------------------------------------------------ v2 handlers

    async def _get_store(self, request: Request) -> Response:
        return JSONResponse(
            {
                "id": self.backend.store_hash,
                "store_id": int(STORE_ID),
                "domain": "summit-outfitters.example",
                "secure_url": "https://summit-outfitters.example",
                "name": self.backend.store_name,
                "first_name": "Dana",
                "last_name": "Whitfield",
                "address": "1901 Pearl Street\nBoulder, Colorado 80302\nUnited States",
                "country": "United States",
                "country_code": "US",
                "phone": "303-555-0142",
                "admin_email": "dana@summit-outfitters.example",
                "order_email": "orders@summit-outfitters.example",
                "timezone": {
                    "name": "America/Denver",
                    "raw_offset": -25200,
                    "dst_offset": -21600,
                    "dst_correction": True,
                },
                "language": "en",
                "currency": "USD",
                "currency_symbol": "$",
                "decimal_separator": ".",
                "thousands_separator": ",",
                "decimal_places": 2,
                "weight_units": "LBS",
                "dimension_units": "Inches",
                "plan_name": "Standard",
                "plan_level": "Standard",
                "industry": "Sporting Goods",
                "is_price_entered_with_tax": False,
            }
        )

    def _order_filters(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        ranges: dict[str, tuple[float | None, float | None]] = {}
        for name in ("date_created", "date_modified"):
            low, high = _date_param(q, f"min_{name}"), _date_param(q, f"max_{name}")
            if low is not None or high is not None:
                ranges[name] = (low, high)
        sort = ("id", False)
        if "sort" in q:
            key, _, direction = q["sort"].partition(":")
            if key not in V2_SORT_KEYS or direction not in ("", "asc", "desc"):
                raise BadRequest("The field 'sort' is invalid.")
            sort = (key, direction == "desc")
        return {
            "status_id": _int_param(q, "status_id"),
            "customer_id": _int_param(q, "customer_id"),
            "min_id": _int_param(q, "min_id"),
            "max_id": _int_param(q, "max_id"),
            "min_total": decimal_of(q["min_total"], "min_total") if "min_total" in q else None,
            "max_total": decimal_of(q["max_total"], "max_total") if "max_total" in q else None,
            "email": q.get("email"),
            "date_ranges": ranges,
            "sort": sort,
        }

    async def _list_orders(self, request: Request) -> Response:
        page, limit = _page_limit(request, default_limit=50, maximum=MAX_LIMIT)
        with self.lock:
            orders = self.backend.get_orders(**self._order_filters(request))
            chunk = orders[(page - 1) * limit : page * limit]
            body = [order_v2(o, _base(request), self.backend) for o in chunk]
        if not body:
            return Response(status_code=204)  # the empty v2 page: no body at all
        return JSONResponse(body)

    async def _count_orders(self, request: Request) -> Response:
        with self.lock:
            filters = self._order_filters(request)
            orders = self.backend.get_orders(**filters)
        statuses = []
        for order_index, (status_id, (label, description)) in enumerate(sorted(ORDER_STATUSES.items())):
            statuses.append(
                {
                    "id": status_id,
                    "name": label,
                    "system_label": label,
                    "custom_label": label,
                    "system_description": description,
                    "count": sum(1 for o in orders if o.status_id == status_id),
                    "sort_order": order_index,
                }
            )
        return JSONResponse({"statuses": statuses, "count": len(orders)})

    async def _get_order(self, request: Request) -> Response:
        with self.lock:
            order = self.backend.get_order(request.path_params["order_id"])
            return JSONResponse(order_v2(order, _base(request), self.backend))

    async def _create_order(self, request: Request) -> Response:
        body = await _json_body(request)
        with self.lock:
            order = self.backend.create_order(body)
            return JSONResponse(order_v2(order, _base(request), self.backend), status_code=201)

    async def _update_order(self, request: Request) -> Response:
        body = await _json_body(request)
        with self.lock:
            order = self.backend.update_order(request.path_params["order_id"], body)
            return JSONResponse(order_v2(order, _base(request), self.backend))

    async def _list_order_products(self, request: Request) -> Response:
        page, limit = _page_limit(request, default_limit=50, maximum=MAX_LIMIT)
        with self.lock:
            order = self.backend.get_order(request.path_params["order_id"])
            chunk = order.lines[(page - 1) * limit : page * limit]
            body = [line_v2(line, order, self.backend) for line in chunk]
        if not body:
            return Response(status_code=204)
        return JSONResponse(body)

    async def _order_statuses(self, request: Request) -> Response:
        return JSONResponse(
            [
                {
                    "id": status_id,
                    "name": label,
                    "system_label": label,
                    "custom_label": label,
                    "system_description": description,
                    "order": index,
                }
                for index, (status_id, (label, description)) in enumerate(sorted(ORDER_STATUSES.items()))
            ]
        )

    # ------------------------------------------------------------------ v3 handlers

    async def _list_transactions(self, request: Request) -> Response:
        page, limit = _page_limit(request, default_limit=50, maximum=MAX_LIMIT)
        with self.lock:
            order = self.backend.get_order(request.path_params["order_id"])
            txns = self.backend.transactions.get(order.id, [])
            if not txns:
                return Response(status_code=204)  # "No content found"
            chunk = txns[(page - 1) * limit : page * limit]
            return JSONResponse(
                {
                    "data": [transaction_v3(t) for t in chunk],
                    "meta": pagination_meta(len(txns), len(chunk), page, limit),
                }
            )

    async def _refund_quote(self, request: Request) -> Response:
        body = await _json_body(request)
        order_id = request.path_params["order_id"]
        with self.lock:
            self.backend.get_order(order_id)
            if order_id in self.backend.refunding:
                raise self._refund_busy(order_id)
            quote = self.backend.create_refund_quote(order_id, body)
        return JSONResponse({"data": _jsonable(quote), "meta": {}}, status_code=201)

    async def _create_refund(self, request: Request) -> Response:
        body = await _json_body(request)
        order_id = request.path_params["order_id"]
        with self.lock:
            self.backend.get_order(order_id)
            if order_id in self.backend.refunding:
                raise self._refund_busy(order_id)
            self.backend.refunding.add(order_id)
        try:
            # The payment runs asynchronously at the gateway; a second refund meanwhile is refused.
            await asyncio.sleep(float(self.switches["refund_processing_seconds"]))
            with self.lock:
                refund = self.backend.create_refund(order_id, body)
        finally:
            with self.lock:
                self.backend.refunding.discard(order_id)
        return JSONResponse({"data": refund_v3(refund), "meta": {}}, status_code=201)

    def _refund_busy(self, order_id: int) -> RefundInProgress:
        return RefundInProgress(
            f"A refund for order {order_id} is already being processed; refunds must be processed sequentially.",
            status=int(self.switches["concurrent_refund_status"]),
        )

    async def _order_refunds(self, request: Request) -> Response:
        with self.lock:
            order = self.backend.get_order(request.path_params["order_id"])
            refunds = self.backend.get_refunds(order_ids=[order.id])
            txn = _int_param(request.query_params, "transaction_id")
            if txn is not None:
                refunds = [r for r in refunds if any(p.get("transaction_id") == txn for p in r.payments)]
            return JSONResponse({"data": [refund_v3(r) for r in refunds], "meta": {}})

    async def _list_refunds(self, request: Request) -> Response:
        q = request.query_params
        page, limit = _page_limit(request, default_limit=50, maximum=MAX_LIMIT)
        with self.lock:
            refunds = self.backend.get_refunds(
                order_ids=_int_list(q, "order_id:in"),
                refund_ids=_int_list(q, "id:in"),
                created_min=_date_param(q, "created:min"),
                created_max=_date_param(q, "created:max"),
            )
            chunk = refunds[(page - 1) * limit : page * limit]
            return JSONResponse(
                {"data": [refund_v3(r) for r in chunk], "meta": pagination_meta(len(refunds), len(chunk), page, limit)}
            )

    async def _get_refund(self, request: Request) -> Response:
        with self.lock:
            refund = self.backend.get_refund(request.path_params["refund_id"])
            return JSONResponse({"data": refund_v3(refund), "meta": {}})

    async def _list_customers(self, request: Request) -> Response:
        q = request.query_params
        page, limit = _page_limit(request, default_limit=50, maximum=int(self.switches["customers_max_limit"]))
        emails = q.get("email:in")
        with self.lock:
            customers = self.backend.get_customers(
                ids=set(_int_list(q, "id:in") or []) or None,
                emails={e.strip().lower() for e in emails.split(",")} if emails else None,
                modified_min=_date_param(q, "date_modified:min"),
                modified_max=_date_param(q, "date_modified:max"),
                created_min=_date_param(q, "date_created:min"),
                created_max=_date_param(q, "date_created:max"),
            )
            sort = q.get("sort")
            if sort:
                key, _, direction = sort.partition(":")
                if key not in ("date_created", "last_name", "date_modified"):
                    raise BadRequest("The field 'sort' is invalid.")
                customers.sort(key=lambda c: (getattr(c, key), c.id), reverse=direction == "desc")
            includes = set((q.get("include") or "").split(","))
            body = self._customer_page(customers, page, limit, q.get("after"), q.get("before"), includes)
        return JSONResponse(body)

    def _customer_page(
        self,
        customers: list[Customer],
        page: int,
        limit: int,
        after: str | None,
        before: str | None,
        includes: set[str],
    ) -> dict[str, Any]:
        total = len(customers)
        cursored = after is not None or before is not None
        if after is not None:
            position = decode_cursor(after)
            index = next((i + 1 for i, c in enumerate(customers) if c.id == position), None)
            start = index if index is not None else next((i for i, c in enumerate(customers) if c.id > position), total)
            chunk = customers[start : start + limit]
        elif before is not None:
            position = decode_cursor(before)
            end = next((i for i, c in enumerate(customers) if c.id == position), total)
            start = max(0, end - limit)
            chunk = customers[start:end]
        else:
            start = (page - 1) * limit
            chunk = customers[start : start + limit]
        meta = pagination_meta(total, len(chunk), page if not cursored else start // max(1, limit) + 1, limit)
        cursor: dict[str, Any] = {"count": len(chunk), "per_page": limit, "links": {}}
        if chunk:
            cursor["start_cursor"] = encode_cursor(chunk[0].id)
            # The end cursor is only returned on the first page or when paging by cursor.
            if cursored or page == 1:
                cursor["end_cursor"] = encode_cursor(chunk[-1].id)
            if start + len(chunk) < total:
                cursor["links"]["next"] = f"?after={encode_cursor(chunk[-1].id)}&limit={limit}"
            if start > 0:
                cursor["links"]["previous"] = f"?before={encode_cursor(chunk[0].id)}&limit={limit}"
        meta["cursor_pagination"] = cursor
        return {"data": [customer_v3(c, includes) for c in chunk], "meta": meta}

    async def _list_products(self, request: Request) -> Response:
        q = request.query_params
        page, limit = _page_limit(request, default_limit=50, maximum=MAX_LIMIT)
        skus = q.get("sku:in") or q.get("sku")
        visible = q.get("is_visible")
        with self.lock:
            products = self.backend.get_products(
                ids=set(_int_list(q, "id:in") or ([int(q["id"])] if "id" in q else [])) or None,
                skus=set(skus.split(",")) if skus else None,
                name=q.get("name"),
                modified_min=_date_param(q, "date_modified:min"),
                is_visible=None if visible is None else visible in ("true", "1"),
            )
            chunk = products[(page - 1) * limit : page * limit]
            return JSONResponse(
                {
                    "data": [product_v3(p) for p in chunk],
                    "meta": pagination_meta(len(products), len(chunk), page, limit),
                }
            )

    async def _create_product(self, request: Request) -> Response:
        body = await _json_body(request)
        with self.lock:
            product = self.backend.create_product(body)
            return JSONResponse({"data": product_v3(product), "meta": {}}, status_code=200)

    async def _update_product(self, request: Request) -> Response:
        body = await _json_body(request)
        with self.lock:
            product = self.backend.update_product(request.path_params["product_id"], body)
            return JSONResponse({"data": product_v3(product), "meta": {}})

    async def _list_hooks(self, request: Request) -> Response:
        page, limit = _page_limit(request, default_limit=50, maximum=MAX_LIMIT)
        with self.lock:
            hooks = sorted(self.backend.hooks.values(), key=lambda h: h.id)
            scope = request.query_params.get("scope")
            if scope:
                hooks = [h for h in hooks if h.scope == scope]
            active = request.query_params.get("is_active")
            if active is not None:
                hooks = [h for h in hooks if h.is_active == (active == "true")]
            chunk = hooks[(page - 1) * limit : page * limit]
            return JSONResponse(
                {"data": [hook_v3(h) for h in chunk], "meta": pagination_meta(len(hooks), len(chunk), page, limit)}
            )

    async def _create_hook(self, request: Request) -> Response:
        body = await _json_body(request)
        with self.lock:
            hook = self.backend.create_hook(body)
            return JSONResponse({"data": hook_v3(hook), "meta": {}})

    async def _get_hook(self, request: Request) -> Response:
        with self.lock:
            return JSONResponse({"data": hook_v3(self.backend.get_hook(request.path_params["hook_id"])), "meta": {}})

    async def _update_hook(self, request: Request) -> Response:
        body = await _json_body(request)
        with self.lock:
            hook = self.backend.update_hook(request.path_params["hook_id"], body)
            if hook.is_active:
                self.hook_deliveries.pop(hook.id, None)  # a reactivated hook starts with a clean record
            return JSONResponse({"data": hook_v3(hook), "meta": {}})

    async def _delete_hook(self, request: Request) -> Response:
        with self.lock:
            hook = self.backend.delete_hook(request.path_params["hook_id"])
            return JSONResponse({"data": hook_v3(hook), "meta": {}})

    async def _deactivate_hook(self, request: Request) -> Response:
        try:
            with self.lock:
                hook = self.backend.deactivate_hook(request.path_params["hook_id"])
        except BigCommerceError as exc:
            return error_response("v3", exc.status, exc.message)
        return JSONResponse({"data": hook_v3(hook), "meta": {}})

    # ------------------------------------------------------------------ outbound webhooks

    def _deliver_events(self) -> None:
        with self.lock:
            events, self.backend.events = self.backend.events, []
            for scope, data in events:
                self._deliver(scope, data)

    def _deliver(self, scope: str, data: dict[str, Any]) -> None:
        created_at = int(self.now())
        event = {"scope": scope, "store_id": STORE_ID, "data": data, "created_at": created_at}
        # The same event delivered twice carries the same hash: receivers dedupe on it.
        digest = hashlib.sha1(json.dumps(event, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
        payload = {**event, "hash": digest, "producer": f"stores/{STORE_HASH}"}
        body = json.dumps(payload, separators=(",", ":")).encode()
        threshold = int(self.switches["deactivate_after_failed_deliveries"])
        for hook in sorted(self.backend.hooks.values(), key=lambda h: h.id):
            if not hook.is_active or not hook.matches(scope):
                continue
            if threshold and _trailing_failures(self.hook_deliveries.get(hook.id, [])) >= threshold:
                self.backend.deactivate_hook(hook.id)
                continue
            message_id = f"msg_{uuid.uuid4().hex}"
            headers = {"Content-Type": "application/json", **(hook.headers or {})}
            headers.update(sign_delivery(message_id, str(created_at), body, CLIENT_SECRET, self.switches))
            delivery = self.ctx.webhooks.send(self.name, hook.destination, body, headers)
            self.hook_deliveries.setdefault(hook.id, []).append(delivery)


def sign_delivery(
    message_id: str, timestamp: str, body: bytes, secret: str, switches: dict[str, Any]
) -> dict[str, str]:
    """Standard Webhooks headers: ``v1,<base64 HMAC-SHA256(key=client_secret bytes, id.timestamp.body)>``."""
    signed = message_id.encode() + b"." + timestamp.encode() + b"." + body
    signature = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    return {
        switches["webhook_header_id"]: message_id,
        switches["webhook_header_timestamp"]: timestamp,
        switches["webhook_header_signature"]: f"v1,{signature}",
    }


def _trailing_failures(deliveries: list[Delivery]) -> int:
    failures = 0
    for delivery in reversed(deliveries):
        if delivery.status is None and delivery.error is None:
            continue  # still in flight
        if delivery.error is None and delivery.status is not None and 200 <= delivery.status < 300:
            break
        failures += 1
    return failures


# --------------------------------------------------------------------------- serialisers


def money(value: Decimal) -> str:
    """v2 money: a string with four decimals (``"361.9500"``)."""
    return str(value.quantize(FOUR))


def number(value: Decimal) -> int | float:
    """v3 money: a JSON number."""
    return int(value) if value == value.to_integral_value() else float(value)


def rfc2822(ts: float) -> str:
    return email.utils.format_datetime(datetime.fromtimestamp(ts, tz=timezone.utc))


def iso(ts: float, *, z: bool = False) -> str:
    text = datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if z else text


def order_v2(order: Order, base: str, backend: BigCommerceBackend) -> dict[str, Any]:
    label = ORDER_STATUSES[order.status_id][0]
    resource = f"{base}/stores/{backend.store_hash}/v2/orders/{order.id}"
    zero = money(Decimal(0))
    shipping_inc = order.shipping_cost_ex_tax + order.shipping_cost_tax
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "date_created": rfc2822(order.date_created),
        "date_modified": rfc2822(order.date_modified),
        "date_shipped": rfc2822(order.date_shipped) if order.date_shipped else "",
        "status_id": order.status_id,
        "status": label,
        "subtotal_ex_tax": money(order.subtotal_ex_tax),
        "subtotal_inc_tax": money(order.subtotal_ex_tax + order.subtotal_tax),
        "subtotal_tax": money(order.subtotal_tax),
        "base_shipping_cost": money(order.shipping_cost_ex_tax),
        "shipping_cost_ex_tax": money(order.shipping_cost_ex_tax),
        "shipping_cost_inc_tax": money(shipping_inc),
        "shipping_cost_tax": money(order.shipping_cost_tax),
        "shipping_cost_tax_class_id": 2,
        "base_handling_cost": zero,
        "handling_cost_ex_tax": zero,
        "handling_cost_inc_tax": zero,
        "handling_cost_tax": zero,
        "handling_cost_tax_class_id": 2,
        "base_wrapping_cost": zero,
        "wrapping_cost_ex_tax": zero,
        "wrapping_cost_inc_tax": zero,
        "wrapping_cost_tax": zero,
        "wrapping_cost_tax_class_id": 3,
        "total_ex_tax": money(order.total_ex_tax),
        "total_inc_tax": money(order.total_inc_tax),
        "total_tax": money(order.total_tax),
        "items_total": sum(line.quantity for line in order.lines),
        "items_shipped": sum(line.quantity for line in order.lines) if order.date_shipped else 0,
        "payment_method": order.payment_method,
        "payment_provider_id": order.payment_provider_id,
        "payment_status": order.payment_status,
        "refunded_amount": money(order.refunded_amount),
        "order_is_digital": False,
        "store_credit_amount": zero,
        "gift_certificate_amount": zero,
        "ip_address": "",
        "geoip_country": "",
        "geoip_country_iso2": "",
        # currency_code is the display currency, default_currency_code the transactional one
        # (orders.v2 info.description); the store's own default is USD.
        "currency_id": 1,
        "currency_code": order.display_currency_code or order.currency_code,
        "currency_exchange_rate": "1.0000000000",
        "default_currency_id": 1,
        "default_currency_code": order.currency_code,
        "store_default_currency_code": STORE_CURRENCY,
        "store_default_to_transactional_exchange_rate": EXCHANGE_RATES.get(order.currency_code, "1.0000000000"),
        "staff_notes": order.staff_notes,
        "customer_message": order.customer_message,
        "discount_amount": zero,
        "coupon_discount": zero,
        "shipping_address_count": 1,
        "is_deleted": order.is_deleted,
        "is_email_opt_in": False,
        "credit_card_type": None,
        "order_source": order.order_source,
        "channel_id": order.channel_id,
        "external_source": order.external_source,
        "billing_address": order.billing_address,
        "products": {"url": f"{resource}/products", "resource": f"/orders/{order.id}/products"},
        "shipping_addresses": {
            "url": f"{resource}/shippingaddresses",
            "resource": f"/orders/{order.id}/shippingaddresses",
        },
        "coupons": {"url": f"{resource}/coupons", "resource": f"/orders/{order.id}/coupons"},
        "external_id": None,
        "external_merchant_id": None,
        "tax_provider_id": "BasicTaxProvider",
        "customer_locale": "en",
        "external_order_id": "",
        "custom_status": label,
    }


def line_v2(line: OrderLine, order: Order, backend: BigCommerceBackend) -> dict[str, Any]:
    product = backend.products.get(line.product_id)
    cost = product.cost_price if product else Decimal(0)
    zero = money(Decimal(0))
    return {
        "id": line.id,
        "order_id": order.id,
        "product_id": line.product_id,
        "variant_id": 0,
        "order_address_id": order.id + 100,
        "name": line.name,
        "name_customer": line.name,
        "name_merchant": line.name,
        "sku": line.sku,
        "upc": "",
        "type": "physical",
        "base_price": money(line.base_price),
        "price_ex_tax": money(line.base_price),
        "price_inc_tax": money(line.price_inc_tax),
        "price_tax": money(line.price_tax),
        "base_total": money(line.total_ex_tax),
        "total_ex_tax": money(line.total_ex_tax),
        "total_inc_tax": money(line.total_inc_tax),
        "total_tax": money(line.total_tax),
        "weight": zero,
        "quantity": line.quantity,
        "base_cost_price": money(cost),
        "cost_price_inc_tax": money(cost),
        "cost_price_ex_tax": money(cost),
        "cost_price_tax": zero,
        "is_refunded": line.quantity_refunded >= line.quantity,
        "quantity_refunded": line.quantity_refunded,
        "refund_amount": money(line.refund_amount),
        "return_id": 0,
        "wrapping_name": "",
        "base_wrapping_cost": zero,
        "wrapping_cost_ex_tax": zero,
        "wrapping_cost_inc_tax": zero,
        "wrapping_cost_tax": zero,
        "wrapping_message": "",
        "quantity_shipped": line.quantity if order.date_shipped else 0,
        "fixed_shipping_cost": zero,
        "ebay_item_id": "",
        "ebay_transaction_id": "",
        "option_set_id": None,
        "parent_order_product_id": None,
        "is_bundled_product": False,
        "bin_picking_number": "",
        "external_id": None,
        "brand": "Summit Outfitters" if product else "",
        "applied_discounts": [],
        "product_options": [],
        "configurable_fields": [],
    }


def transaction_v3(txn: Transaction) -> dict[str, Any]:
    card = txn.method == "credit_card"
    return {
        "id": txn.id,
        "order_id": str(txn.order_id),
        "event": txn.event,
        "method": txn.method,
        "amount": number(txn.amount),
        "currency": txn.currency,
        "gateway": txn.gateway,
        "gateway_transaction_id": txn.gateway_transaction_id,
        "date_created": iso(txn.date_created),
        "test": False,
        "status": txn.status,
        "fraud_review": False,
        "reference_transaction_id": txn.reference_transaction_id,
        "offline": None,
        "custom": None,
        "payment_method_id": f"{txn.gateway}.card" if card else txn.gateway,
        "payment_instrument_token": None,
        "avs_result": {
            "code": "Y",
            "message": "Address and 5-digit ZIP match",
            "street_match": "Y",
            "postal_match": "Y",
        }
        if card
        else None,
        "cvv_result": {"code": "M", "message": "CVV2 Match"} if card else None,
        "credit_card": {
            "card_type": txn.card_type,
            "card_iin": "424242",
            "card_last4": txn.card_last4,
            "card_expiry_month": 8,
            "card_expiry_year": 2029,
        }
        if card
        else None,
        "gift_certificate": None,
        "store_credit": None,
    }


def refund_v3(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "order_id": refund.order_id,
        "user_id": refund.user_id,
        "created": iso(refund.created),
        "reason": refund.reason,
        "total_amount": number(refund.total_amount),
        "total_tax": number(refund.total_tax),
        "uses_merchant_override_values": refund.uses_merchant_override_values,
        "payments": [_jsonable(p) for p in refund.payments],
        "items": [
            {
                "item_type": item.get("item_type"),
                "item_id": item.get("item_id"),
                "reason": item.get("reason"),
                "quantity": item.get("quantity"),
                "requested_amount": number(Decimal(str(item["amount"]))) if "amount" in item else None,
            }
            for item in refund.items
        ],
    }


def customer_v3(customer: Customer, includes: set[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": customer.id,
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "company": customer.company,
        "phone": customer.phone,
        "registration_ip_address": "",
        "notes": customer.notes,
        "tax_exempt_category": customer.tax_exempt_category,
        "customer_group_id": customer.customer_group_id,
        "date_created": iso(customer.date_created, z=True),
        "date_modified": iso(customer.date_modified, z=True),
        "address_count": len(customer.addresses),
        "attribute_count": 0,
        "authentication": {"force_password_reset": False},
        "accepts_product_review_abandoned_cart_emails": False,
        "origin_channel_id": 1,
        "channel_ids": None,
    }
    if "addresses" in includes:
        body["addresses"] = [
            {"id": customer.id * 10 + i, "customer_id": customer.id, **a} for i, a in enumerate(customer.addresses)
        ]
    if "storecredit" in includes:
        body["store_credit_amounts"] = [{"amount": number(customer.store_credit)}]
    return body


def product_v3(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "name": product.name,
        "type": product.type,
        "sku": product.sku,
        "description": "",
        "weight": number(product.weight),
        "price": number(product.price),
        "cost_price": number(product.cost_price),
        "retail_price": number(product.retail_price),
        "sale_price": number(product.sale_price),
        "calculated_price": number(product.sale_price or product.price),
        "tax_class_id": product.tax_class_id,
        "categories": product.categories,
        "brand_id": product.brand_id,
        "inventory_level": product.inventory_level,
        "inventory_tracking": "product",
        "is_visible": product.is_visible,
        "date_created": iso(product.date_created),
        "date_modified": iso(product.date_modified),
        "custom_url": {"url": f"/{product.sku.lower()}/", "is_customized": False},
    }


def hook_v3(hook: Hook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "client_id": hook.client_id,
        "store_hash": hook.store_hash,
        "created_at": hook.created_at,
        "updated_at": hook.updated_at,
        "scope": hook.scope,
        "destination": hook.destination,
        "is_active": hook.is_active,
        "headers": hook.headers,
        "events_history_enabled": False,
    }


def pagination_meta(total: int, count: int, page: int, limit: int) -> dict[str, Any]:
    pages = max(1, math.ceil(total / limit)) if limit else 1
    links: dict[str, str] = {"current": f"?page={page}&limit={limit}"}
    if page > 1:
        links["previous"] = f"?page={page - 1}&limit={limit}"
    if page < pages:
        links["next"] = f"?page={page + 1}&limit={limit}"
    return {
        "pagination": {
            "total": total,
            "count": count,
            "per_page": limit,
            "current_page": page,
            "total_pages": pages,
            "links": links,
        }
    }


def error_response(
    version: str, status: int, message: str, errors: dict[str, str] | None = None, *, wrap: bool = False
) -> JSONResponse:
    """v2 errors are an array of ``{status, message}``; v3 errors an object (refund 422s wrapped in data)."""
    if version == "v2":
        return JSONResponse([{"status": status, "message": message}], status_code=status)
    error: dict[str, Any] = {"status": status, "title": message, "type": ERROR_TYPE}
    if wrap:
        return JSONResponse({"data": [error]}, status_code=status)
    error["errors"] = errors or {}
    return JSONResponse(error, status_code=status)


def _wraps_errors(request: Request, exc: BigCommerceError) -> bool:
    return exc.status == 422 and request.method == "POST" and "/payment_actions/refund" in request.url.path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _base(request: Request) -> str:
    url = str(request.url)
    return url[: url.index("/stores/")]


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _int_param(query: Any, name: str) -> int | None:
    if name not in query:
        return None
    try:
        return int(query[name])
    except ValueError:
        raise BadRequest(f"The field '{name}' is invalid.") from None


def _int_list(query: Any, name: str) -> list[int] | None:
    if name not in query:
        return None
    try:
        return [int(part) for part in str(query[name]).split(",") if part.strip()]
    except ValueError:
        raise BadRequest(f"The field '{name}' is invalid.") from None


def _page_limit(request: Request, *, default_limit: int, maximum: int) -> tuple[int, int]:
    page = _int_param(request.query_params, "page") or 1
    limit = _int_param(request.query_params, "limit")
    limit = default_limit if limit is None else limit
    if page < 1:
        raise BadRequest("The field 'page' is invalid.")
    if limit < 1:
        raise BadRequest("The field 'limit' is invalid.")
    if limit > maximum:
        raise LimitExceeded(maximum)
    return page, limit


def _date_param(query: Any, name: str) -> float | None:
    """RFC-2822 (``Thu, 20 Apr 2017 11:32:00 -0400``) or ISO-8601; a bare date means midnight UTC."""
    raw = query.get(name)
    if raw is None:
        return None
    raw = str(raw).strip()
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        try:
            parsed = datetime.fromisoformat(raw.replace(" ", "+") if raw.count(" ") == 1 and "T" in raw else raw)
        except ValueError:
            if raw.isdigit():
                return float(raw)
            raise BadRequest(f"The field '{name}' is invalid.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _ts(value: str | float) -> float:
    if isinstance(value, int | float):
        return float(value)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()
