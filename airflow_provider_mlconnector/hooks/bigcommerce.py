"""BigCommerce hook: v2 orders, v3 transactions/refunds/customers/catalog, and webhooks.

Auth is the API account's static access token in ``X-Auth-Token`` (never ``Bearer``). The store's
request quota (shared by every app on the store, refreshed every 30 s) is respected with
:class:`QuotaThrottle`, which reads ``X-Rate-Limit-Requests-Left`` on every answer and pauses until
the window resets before the quota is gone; a 429 that still happens waits
``X-Rate-Limit-Time-Reset-Ms``. Refund writes are sent strictly one at a time per order, as
BigCommerce requires.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, ClassVar, Literal

import requests

from airflow_provider_mlconnector.core.auth import HeaderAuth
from airflow_provider_mlconnector.core.http import ApiClient, ErrorInfo, RetrySettings
from airflow_provider_mlconnector.core.paging import CursorPaginator, PageNumberPaginator
from airflow_provider_mlconnector.core.secrets import mask
from airflow_provider_mlconnector.exceptions import ConfigurationError, FatalApiError
from airflow_provider_mlconnector.hooks.base import MLConnectorHook

log = logging.getLogger(__name__)

#: Order statuses BigCommerce counts as paid: Shipped, Partially Shipped, Awaiting Pickup,
#: Awaiting Shipment, Completed, Awaiting Fulfillment.
PAID_STATUS_IDS: frozenset[int] = frozenset({2, 3, 8, 9, 10, 11})
#: Paid, then partly refunded (not in BigCommerce's own paid list; treated as paid-with-refund).
PARTIALLY_REFUNDED = 14
#: "Neither paid nor unpaid": the whole order was refunded.
REFUNDED = 4
PAGE_SIZE = 250
#: Pause before retrying a refund refused because another refund on the order is processing.
REFUND_BUSY_WAIT = 2.0
#: Standard Webhooks header names (BigCommerce does not name them: UNCONFIRMED, see the sandbox).
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"

PaymentState = Literal["paid", "partially_refunded", "refunded", "unpaid"]


def payment_state(order: Mapping[str, Any]) -> PaymentState:
    """Classify a v2 order by ``status_id`` (never by its merchant-editable label)."""
    status_id = int(order["status_id"])
    if status_id in PAID_STATUS_IDS:
        return "paid"
    if status_id == PARTIALLY_REFUNDED:
        return "partially_refunded"
    if status_id == REFUNDED:
        return "refunded"
    return "unpaid"


@dataclass(frozen=True)
class BigCommerceConfig:
    """What the connection says. Secrets are kept out of ``repr``."""

    base_url: str
    store_hash: str
    access_token: str = field(repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)


class QuotaThrottle:
    """Stay inside the store's 30-second request quota using the headers of every answer.

    BigCommerce tells each response how many requests are left in the window and when it resets.
    When ``reserve`` or fewer are left (counting the calls this client sent since), the next call
    waits for the reset instead of being refused: the quota is shared with the store's other apps.

    :param reserve: requests left untouched for in-flight calls and other apps.
    """

    def __init__(
        self,
        *,
        reserve: int = 2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._left: int | None = None
        self._reset_at = 0.0

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                if self._left is not None and now >= self._reset_at:
                    self._left = None  # a new window: unknown until the next answer says
                if self._left is None or self._left > self.reserve:
                    if self._left is not None:
                        self._left -= 1
                    return
                wait = self._reset_at - now
            log.info("bigcommerce: %s requests left in the quota window; pausing %.1fs", self._left, wait)
            self._sleep(wait)

    def release(self) -> None:
        return None

    def observe(self, response: requests.Response) -> None:
        left = _int_header(response, "X-Rate-Limit-Requests-Left")
        reset_ms = _int_header(response, "X-Rate-Limit-Time-Reset-Ms")
        if left is None or reset_ms is None:
            return
        with self._lock:
            self._left = left
            self._reset_at = self._clock() + reset_ms / 1000.0


class BigCommerceHook(MLConnectorHook):
    """BigCommerce API hook (connection type ``bigcommerce``).

    :param conn_id: Airflow connection id (password = access token; extras ``store_hash``,
        optional ``client_id`` and ``client_secret`` for webhook signatures).
    :param state_store: the state store (unused by the static token; accepted for symmetry).
    :param retry: retry policy.
    :param sleep: how to wait (tests inject a fake).
    :param clock: monotonic clock of the quota throttle.
    :param quota_reserve: requests of each quota window left for other apps and in-flight calls.
    """

    conn_name_attr: ClassVar[str] = "bigcommerce_conn_id"
    default_conn_name: ClassVar[str] = "bigcommerce_default"
    conn_type: ClassVar[str] = "bigcommerce"
    hook_name: ClassVar[str] = "BigCommerce"
    default_host: ClassVar[str] = "https://api.bigcommerce.com"
    default_retry: ClassVar[RetrySettings] = RetrySettings(max_attempts=6, base_wait=1.0, max_wait=60.0)

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        quota_reserve: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id, **kwargs)
        self._clock = clock
        self._quota_reserve = quota_reserve

    # ------------------------------------------------------------------ configuration and client

    @cached_property
    def config(self) -> BigCommerceConfig:
        token = self.require(self.connection.password, "password (access token)")
        extras = {name: self.extra(name) for name in ("store_hash", "client_id", "client_secret")}
        secret = extras["client_secret"]
        mask(token, secret)
        return BigCommerceConfig(
            base_url=self.host_url(),
            store_hash=self.require(extras["store_hash"], "extra store_hash"),
            access_token=token,
            client_id=extras["client_id"],
            client_secret=str(secret) if secret else None,
        )

    @property
    def tenant(self) -> str:
        """The store hash: every order, customer and product id is unique only within its store."""
        return self.config.store_hash

    def build_client(self) -> ApiClient:
        cfg = self.config
        return ApiClient(
            system="bigcommerce",
            base_url=f"{cfg.base_url}/stores/{cfg.store_hash}",
            auth=HeaderAuth({"X-Auth-Token": cfg.access_token}),
            error_parser=bigcommerce_error_parser,
            throttle=QuotaThrottle(reserve=self._quota_reserve, clock=self._clock, sleep=self._sleep),
            retry=self._retry,
            headers={"Content-Type": "application/json"},
            sleep=self._sleep,
        )

    # ------------------------------------------------------------------ store

    def get_store(self) -> dict[str, Any]:
        """The store's profile (``GET /v2/store``): name, currency, timezone..."""
        return _dict(self.client.get_json("/v2/store"))

    # ------------------------------------------------------------------ v2 orders

    def iter_orders(
        self,
        *,
        modified_since: datetime | None = None,
        status_id: int | None = None,
        customer_id: int | None = None,
        email: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Orders (v2 JSON), oldest id first, each once.

        Paging is by id ascending on purpose: an order modified while we page keeps its place, so
        none is skipped (sorting by ``date_modified`` would move it past the cursor). An order
        that enters the filter mid-way can shift a page; the repeat is dropped here.

        :param modified_since: only orders modified at or after this aware datetime.
        :param status_id: only this status (one id; BigCommerce filters a single value).
        :param customer_id: only this customer's orders (0 = guests).
        :param email: only orders whose billing e-mail is this one.
        :param page_size: orders per page, at most 250.
        """
        params: dict[str, Any] = {"sort": "id:asc"}
        if modified_since is not None:
            params["min_date_modified"] = rfc2822(modified_since)
        if status_id is not None:
            params["status_id"] = status_id
        if customer_id is not None:
            params["customer_id"] = customer_id
        if email is not None:
            params["email"] = email
        seen: set[int] = set()
        for order in self._v2_pages("/v2/orders", params, page_size):
            if order["id"] not in seen:
                seen.add(order["id"])
                yield order

    def iter_paid_orders(self, *, modified_since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Orders that were paid: :data:`PAID_STATUS_IDS` and :data:`PARTIALLY_REFUNDED`.

        One pass over the modified orders filtered here costs fewer calls than one pass per
        status id (the v2 filter takes a single status).

        :param modified_since: only orders modified at or after this aware datetime.
        """
        for order in self.iter_orders(modified_since=modified_since):
            if payment_state(order) in ("paid", "partially_refunded"):
                yield order

    def count_orders(self, *, modified_since: datetime | None = None, status_id: int | None = None) -> int:
        """How many orders match (``GET /v2/orders/count``).

        :param modified_since: only orders modified at or after this aware datetime.
        :param status_id: only this status.
        """
        params: dict[str, Any] = {}
        if modified_since is not None:
            params["min_date_modified"] = rfc2822(modified_since)
        if status_id is not None:
            params["status_id"] = status_id
        return int(_dict(self.client.get_json("/v2/orders/count", params=params))["count"])

    def get_order(self, order_id: int) -> dict[str, Any]:
        """One order (v2 JSON); a missing order raises ``NotFoundError``.

        :param order_id: the order id.
        """
        return _dict(self.client.get_json(f"/v2/orders/{int(order_id)}"))

    def iter_order_products(self, order_id: int) -> Iterator[dict[str, Any]]:
        """The order's line items (v2 JSON; money as 4-decimal strings).

        :param order_id: the order id.
        """
        yield from self._v2_pages(f"/v2/orders/{int(order_id)}/products", {}, PAGE_SIZE)

    def get_order_statuses(self) -> list[dict[str, Any]]:
        """Status ids with their system and merchant labels."""
        return _list(self.client.get_json("/v2/order_statuses"))

    def _v2_pages(self, path: str, params: Mapping[str, Any], page_size: int) -> Iterator[dict[str, Any]]:
        if not 1 <= page_size <= PAGE_SIZE:
            raise ConfigurationError(f"page_size must be between 1 and {PAGE_SIZE}")
        # A v2 page is a bare list; an empty page is HTTP 204 with no body, which ends the loop.
        paginator = PageNumberPaginator(size_param="limit", size=page_size)
        yield from self.client.paginate(path, paginator, params=params, records=_list)

    # ------------------------------------------------------------------ v3 transactions and refunds

    def iter_transactions(self, order_id: int) -> Iterator[dict[str, Any]]:
        """Payment transactions of an order (v3; a 204 means none).

        :param order_id: the order id.
        """
        yield from self._v3_pages(f"/v3/orders/{int(order_id)}/transactions", {})

    def iter_order_refunds(self, order_id: int) -> Iterator[dict[str, Any]]:
        """Refunds of one order (v3).

        :param order_id: the order id.
        """
        body = self.client.send_json("GET", f"/v3/orders/{int(order_id)}/payment_actions/refunds")
        yield from _data_list(body)

    def iter_refunds(
        self, *, created_since: datetime | None = None, order_ids: Iterable[int] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Refunds of the whole store (v3), oldest first.

        :param created_since: only refunds created at or after this aware datetime.
        :param order_ids: only refunds of these orders.
        """
        params: dict[str, Any] = {}
        if created_since is not None:
            params["created:min"] = _utc(created_since).isoformat(timespec="seconds")
        if order_ids is not None:
            params["order_id:in"] = ",".join(str(int(i)) for i in order_ids)
        yield from self._v3_pages("/v3/orders/payment_actions/refunds", params)

    def get_refund(self, refund_id: int) -> dict[str, Any]:
        """One refund (v3); a missing refund raises ``NotFoundError``.

        :param refund_id: the refund id.
        """
        return _unwrap(self.client.get_json(f"/v3/orders/payment_actions/refunds/{int(refund_id)}"))

    def create_refund_quote(self, order_id: int, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Price a refund and list the refund methods available (``refund_quotes``).

        :param order_id: the order id.
        :param items: refund items, e.g. ``{"item_type": "PRODUCT", "item_id": 11, "quantity": 1}``.
        """
        with _refund_lock(self.config.store_hash, order_id):
            body = self.client.send_json(
                "POST",
                f"/v3/orders/{int(order_id)}/payment_actions/refund_quotes",
                json={"items": list(items)},
                idempotent=True,  # a quote changes nothing: safe to repeat
                write=True,
            )
        return _dict(_dict(body).get("data"))

    def create_refund(
        self,
        order_id: int,
        items: Sequence[Mapping[str, Any]],
        payments: Sequence[Mapping[str, Any]],
        *,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Refund an order. Refunds of one order are sent one at a time (a per-order lock).

        Not idempotent: when the answer is lost this raises ``WriteOutcomeUnknownError``; look at
        :meth:`iter_order_refunds` before trying again.

        :param order_id: the order id.
        :param items: refund items (as for :meth:`create_refund_quote`).
        :param payments: ``{"provider_id", "amount", "offline"}`` entries adding up to the quote.
        :param reason: shown to the merchant.
        """
        body: dict[str, Any] = {"items": list(items), "payments": list(payments)}
        if reason:
            body["reason"] = reason
        with _refund_lock(self.config.store_hash, order_id):
            answer = self.client.send_json(
                "POST", f"/v3/orders/{int(order_id)}/payment_actions/refunds", json=body, idempotent=False
            )
        return _dict(_dict(answer).get("data"))

    # ------------------------------------------------------------------ v3 customers and products

    def iter_customers(
        self, *, modified_since: datetime | None = None, page_size: int = PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Customers (v3), followed by cursor (``after``) so inserts while paging do not shift pages.

        :param modified_since: only customers modified at or after this aware datetime.
        :param page_size: customers per page (BigCommerce states no maximum; 250 is assumed).
        """
        params: dict[str, Any] = {"limit": page_size}
        if modified_since is not None:
            params["date_modified:min"] = _utc(modified_since).strftime("%Y-%m-%dT%H:%M:%SZ")
        paginator = CursorPaginator(token=_next_customer_cursor, token_param="after")  # noqa: S106 (a cursor, not a secret)
        yield from self.client.paginate("/v3/customers", paginator, params=params, records=_data_list)

    def get_customers(self, customer_ids: Iterable[int]) -> list[dict[str, Any]]:
        """The customers with these ids (v3 ``id:in``), in pages of 50 ids.

        :param customer_ids: customer ids (0, a guest, is ignored).
        """
        wanted = sorted({int(i) for i in customer_ids if int(i)})
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), 50):
            chunk = ",".join(str(i) for i in wanted[start : start + 50])
            found.extend(self._v3_pages("/v3/customers", {"id:in": chunk}))
        return found

    def iter_products(
        self, *, modified_since: datetime | None = None, sku: str | None = None, page_size: int = PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Catalog products (v3).

        :param modified_since: only products modified at or after this aware datetime.
        :param sku: only the product with this SKU.
        :param page_size: products per page, at most 250.
        """
        params: dict[str, Any] = {}
        if modified_since is not None:
            params["date_modified:min"] = _utc(modified_since).isoformat(timespec="seconds")
        if sku is not None:
            params["sku"] = sku
        yield from self._v3_pages("/v3/catalog/products", params, page_size)

    def _v3_pages(self, path: str, params: Mapping[str, Any], page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        paginator = PageNumberPaginator(size_param="limit", size=page_size, total_pages=_total_pages)
        yield from self.client.paginate(path, paginator, params=params, records=_data_list)

    # ------------------------------------------------------------------ webhooks

    def list_webhooks(self) -> list[dict[str, Any]]:
        """Webhooks registered by this API account (others' are invisible to it)."""
        return list(self._v3_pages("/v3/hooks", {}))

    def get_webhook(self, hook_id: int) -> dict[str, Any]:
        """One webhook.

        :param hook_id: the webhook id.
        """
        return _unwrap(self.client.get_json(f"/v3/hooks/{int(hook_id)}"))

    def create_webhook(
        self, scope: str, destination: str, *, headers: Mapping[str, str] | None = None, is_active: bool = True
    ) -> dict[str, Any]:
        """Register a webhook; BigCommerce requires an https destination on port 443.

        :param scope: e.g. ``store/order/statusUpdated`` or ``store/order/*``.
        :param destination: the receiver's URL.
        :param headers: custom headers BigCommerce sends with every delivery (e.g. basic auth).
        :param is_active: start active.
        """
        body: dict[str, Any] = {"scope": scope, "destination": destination, "is_active": is_active}
        if headers:
            mask(*headers.values())
            body["headers"] = dict(headers)
        return _unwrap(self.client.send_json("POST", "/v3/hooks", json=body))

    def update_webhook(self, hook_id: int, **changes: Any) -> dict[str, Any]:
        """Change a webhook (``scope``, ``destination``, ``headers``, ``is_active``).

        :param hook_id: the webhook id.
        """
        return _unwrap(self.client.send_json("PUT", f"/v3/hooks/{int(hook_id)}", json=changes))

    def reactivate_webhook(self, hook_id: int) -> dict[str, Any]:
        """Turn a webhook BigCommerce deactivated (after ~48 h of failed deliveries) back on.

        :param hook_id: the webhook id.
        """
        return self.update_webhook(hook_id, is_active=True)

    def delete_webhook(self, hook_id: int) -> dict[str, Any]:
        """Delete a webhook.

        :param hook_id: the webhook id.
        """
        return _unwrap(self.client.send_json("DELETE", f"/v3/hooks/{int(hook_id)}"))

    def ensure_webhook(
        self, scope: str, destination: str, *, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The webhook for ``scope`` + ``destination``: reuse it (reactivated if needed) or create it.

        Safe to run on every DAG run, and the way to recover from a lost create answer.

        :param scope: the webhook scope.
        :param destination: the receiver's URL.
        :param headers: custom headers to send with every delivery.
        """
        for hook in self.list_webhooks():
            if hook.get("scope") == scope and hook.get("destination") == destination:
                changes: dict[str, Any] = {}
                if not hook.get("is_active"):
                    changes["is_active"] = True
                if headers is not None and (hook.get("headers") or {}) != dict(headers):
                    changes["headers"] = dict(headers)
                return self.update_webhook(int(hook["id"]), **changes) if changes else hook
        return self.create_webhook(scope, destination, headers=headers)

    def verify_webhook(
        self, body: bytes, headers: Mapping[str, str], *, tolerance: float = 300.0, now: float | None = None
    ) -> bool:
        """Check a delivery's Standard Webhooks signature with the app's ``client_secret``.

        :param body: the raw request body, exactly as received.
        :param headers: the request headers (any case).
        :param tolerance: maximum age (and clock skew) of ``webhook-timestamp``, in seconds.
        :param now: the current epoch time (default: the system clock).
        """
        if not self.config.client_secret:
            raise ConfigurationError(f"connection '{self.conn_id}' has no client_secret to verify webhooks")
        return verify_signature(self.config.client_secret, body, headers, tolerance=tolerance, now=now)

    # ------------------------------------------------------------------ Airflow

    def test_connection(self) -> tuple[bool, str]:
        """Authenticate and name the store behind the store hash."""

        def probe() -> str:
            store = self.get_store()
            return f"BigCommerce store '{store.get('name')}' ({self.config.store_hash}) reached"

        return self.connection_check(probe)


# --------------------------------------------------------------------------- helpers


def verify_signature(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> bool:
    """Standard Webhooks: ``v1,<base64 HMAC-SHA256(key=secret bytes, id + "." + timestamp + "." + body)>``.

    The signature header may list several space-separated signatures (key rotation); any match wins.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    message_id = lowered.get(WEBHOOK_ID_HEADER)
    timestamp = lowered.get(WEBHOOK_TIMESTAMP_HEADER)
    signatures = lowered.get(WEBHOOK_SIGNATURE_HEADER)
    if not message_id or not timestamp or not signatures:
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - sent_at) > tolerance:
        return False
    from airflow_provider_mlconnector.webhooks.signatures import standard_webhooks

    return standard_webhooks(secret, message_id, timestamp, body, signatures)


def bigcommerce_error_parser(response: requests.Response) -> ErrorInfo:
    """v2 errors are ``[{"status", "message"}]``, v3 ``{"status", "title", "errors"}``."""
    message = _error_message(response)
    status = response.status_code
    if status == 401:
        return ErrorInfo(
            message=f"BigCommerce rejected the access token ({message}); "
            "check the connection's X-Auth-Token: the API account may have been deleted",
            code="401",
            kind="auth_fatal",
        )
    if status == 403:
        return ErrorInfo(message=f"the API account lacks an OAuth scope ({message})", code="403", kind="auth_fatal")
    if status == 429:
        reset_ms = _int_header(response, "X-Rate-Limit-Time-Reset-Ms")
        if reset_ms is not None:
            return ErrorInfo(
                message="store request quota spent", code="429", kind="rate_limited", retry_after=reset_ms / 1000
            )
        # No quota headers: the platform is under load; normal backoff applies.
        return ErrorInfo(message="BigCommerce is under high load", code="429", kind="rate_limited")
    if status == 409 and "/payment_actions/refund" in (response.request.url or ""):
        # Another refund on this order is still processing: this one was refused, not applied.
        return ErrorInfo(message=message, code="409", kind="rate_limited", retry_after=REFUND_BUSY_WAIT)
    return ErrorInfo(message=message, code=str(status))


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("data"), list) and body["data"]:
        body = body["data"]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("message") or body[0].get("title") or response.reason)
    if isinstance(body, dict):
        title = str(body.get("title") or body.get("message") or response.reason)
        errors = body.get("errors")
        if isinstance(errors, dict) and errors:
            title += ": " + "; ".join(f"{k}: {v}" for k, v in errors.items())
        return title
    return response.reason or f"HTTP {response.status_code}"


_REFUND_LOCKS: dict[tuple[str, int], threading.Lock] = {}
_REFUND_LOCKS_GUARD = threading.Lock()


def _refund_lock(store_hash: str, order_id: int) -> threading.Lock:
    """One lock per order across every hook in this process ("process refunds sequentially")."""
    with _REFUND_LOCKS_GUARD:
        return _REFUND_LOCKS.setdefault((store_hash, int(order_id)), threading.Lock())


def rfc2822(moment: datetime) -> str:
    """The v2 date filter format, e.g. ``Thu, 20 Apr 2017 15:32:00 +0000``."""
    return email.utils.format_datetime(_utc(moment))


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ConfigurationError("datetimes passed to the BigCommerce hook must be timezone-aware")
    return moment.astimezone(timezone.utc)


def _int_header(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FatalApiError("expected a JSON object from BigCommerce", system="bigcommerce")
    return value


def _list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FatalApiError("expected a JSON list from BigCommerce", system="bigcommerce")
    return value


def _data_list(value: Any) -> list[dict[str, Any]]:
    if value is None:  # 204 No Content
        return []
    return _list(_dict(value).get("data"))


def _unwrap(value: Any) -> dict[str, Any]:
    """v3 single resources come as ``{"data": {...}, "meta": {}}``."""
    body = _dict(value)
    return _dict(body["data"]) if isinstance(body.get("data"), dict) else body


def _total_pages(payload: Any) -> int | None:
    pagination = ((payload or {}).get("meta") or {}).get("pagination") or {}
    pages = pagination.get("total_pages")
    return int(pages) if pages is not None else None


def _next_customer_cursor(payload: Any) -> str | None:
    cursor = ((payload or {}).get("meta") or {}).get("cursor_pagination") or {}
    if not (cursor.get("links") or {}).get("next"):
        return None
    end = cursor.get("end_cursor")
    return str(end) if end else None
