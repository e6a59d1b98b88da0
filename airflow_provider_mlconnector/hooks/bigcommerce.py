"""BigCommerce hook: v2 orders, v3 transactions/refunds/customers/catalog, and webhooks.

Auth is the API account's static access token in ``X-Auth-Token`` (never ``Bearer``). The store's
request quota (shared by every app on the store, refreshed every 30 s) is respected with
:class:`QuotaThrottle`, which reads ``X-Rate-Limit-Requests-Left`` on every answer and pauses until
the window resets before the quota is gone; a 429 that still happens waits
``X-Rate-Limit-Time-Reset-Ms``. Refund writes are sent strictly one at a time per order, as
BigCommerce requires.

Resources. Each collection is one line of :class:`BigCommerceHook`, in the :class:`V2` flavour (bare
JSON lists paged by ``page``/``limit``, an empty page answered with HTTP 204, RFC 2822 dates) or the
:class:`V3` flavour (``{"data", "meta"}`` envelopes, paged by page or cursor, ISO 8601 dates).
Filters keep BigCommerce's names, with ``__`` for the colon: ``hook.refunds.list(created__min=t)``
sends ``created:min``. The store is only ever a source: everything but webhooks is read-only.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, ClassVar, Literal

import requests

from airflow_provider_mlconnector.core.auth import HeaderAuth
from airflow_provider_mlconnector.core.http import ApiClient, ErrorInfo, RetrySettings
from airflow_provider_mlconnector.core.paging import CursorPaginator, PageNumberPaginator
from airflow_provider_mlconnector.core.resources import LIST_ONLY, READ_ONLY, Record, Resource
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
#: Documented filters (dossier 1.5, 1.10) by their wire names.
ORDER_FILTERS = (
    "min_id max_id min_total max_total customer_id email status_id cart_id payment_method channel_id "
    "min_date_created max_date_created min_date_modified max_date_modified external_order_id"
)
CUSTOMER_FILTERS = (
    "id:in email:in name:in name:like company:in customer_group_id:in phone:in "
    "date_created date_created:min date_created:max date_modified date_modified:min date_modified:max"
)
#: ids per ``:in`` filter, keeping query strings short.
IN_VALUES = 50

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


#: Per-order reads (products, transactions, refunds) in flight at once. BigCommerce caps requests
#: per 30-second window (the quota headers), not concurrent connections; :class:`QuotaThrottle`
#: keeps every one of these calls inside the window.
READS_AT_ONCE = 4


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


class _StoreResource(Resource["BigCommerceHook"]):
    """What both API versions share: ``__`` for ``:`` in filter names, filter values, single records.

    :param page_size: records per page (at most 250).
    """

    def __init__(self, path: str, *, page_size: int = PAGE_SIZE, **options: Any) -> None:
        super().__init__(path, **options)
        self.page_size = page_size

    def list(self, **filters: Any) -> Iterator[Record]:
        """Every record matching ``filters`` (``created__min=`` for ``created:min``), each once."""
        if not 1 <= self.page_size <= PAGE_SIZE:
            raise ConfigurationError(f"{self.label}: page_size must be between 1 and {PAGE_SIZE}")
        return self._listing({name.replace("__", ":"): value for name, value in filters.items()})

    def _date(self, moment: datetime) -> str:
        raise NotImplementedError

    def _params(self, filters: Mapping[str, Any]) -> dict[str, Any]:
        """The query: a stable order where declared, dates in this version's format, lists comma-joined."""
        params: dict[str, Any] = dict(self.order)
        for name, value in filters.items():
            if isinstance(value, datetime):
                params[name] = self._date(value)
            elif isinstance(value, bool):
                params[name] = "true" if value else "false"
            elif isinstance(value, (list, tuple, set, frozenset)):
                params[name] = ",".join(str(v) for v in value)
            elif value is not None:
                params[name] = value
        return params

    def _get(self, path: str) -> Record:
        return _unwrap(self.hook.client.get_json(path))

    def _create(self, path: str, body: Mapping[str, Any]) -> Record:
        return _unwrap(self.hook.client.send_json("POST", path, json=dict(body)))

    def _update(self, path: str, changes: Mapping[str, Any]) -> Record:
        return _unwrap(self.hook.client.send_json("PUT", path, json=dict(changes)))

    def _delete(self, path: str) -> Record | None:
        answer = self.hook.client.send_json("DELETE", path)
        return _unwrap(answer) if answer else None


class V2(_StoreResource):
    """A v2 collection (``/v2/<path>``): bare JSON lists by ``page``/``limit``, HTTP 204 for an empty
    page (the end), RFC 2822 dates, bare objects for one record.

    :param paged: False for small lists answered in one go (order statuses).
    """

    def __init__(self, path: str, *, paged: bool = True, **options: Any) -> None:
        super().__init__(f"/v2/{path}", **options)
        self.paged = paged

    def _date(self, moment: datetime) -> str:
        return rfc2822(moment)

    def _rows(self, path: str, filters: dict[str, Any], **options: Any) -> Iterator[Record]:
        params = self._params(filters)
        if not self.paged:
            return iter(_list(self.hook.client.send_json("GET", path, params=params)))
        rows: Iterator[Record] = self.hook.client.paginate(
            path, PageNumberPaginator(size_param="limit", size=self.page_size), params=params, records=_list
        )
        return rows


class V3(_StoreResource):
    """A v3 collection (``/v3/<path>``): ``{"data": [...], "meta": {...}}`` (HTTP 204: none), ISO 8601
    dates, ``{"data": {...}}`` for one record.

    :param paging: ``pages`` (``meta.pagination.total_pages``), ``cursor`` (customers: ``after`` =
        ``meta.cursor_pagination.end_cursor``, so inserts while paging shift nothing) or ``none``.
    """

    def __init__(self, path: str, *, paging: Literal["pages", "cursor", "none"] = "pages", **options: Any) -> None:
        super().__init__(f"/v3/{path}", **options)
        self.paging = paging

    def _date(self, moment: datetime) -> str:
        return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _rows(self, path: str, filters: dict[str, Any], **options: Any) -> Iterator[Record]:
        params = self._params(filters)
        client = self.hook.client
        if self.paging == "none":
            return iter(_data_list(client.send_json("GET", path, params=params)))
        if self.paging == "cursor":
            params["limit"] = self.page_size
            cursor = CursorPaginator(
                token=_next_customer_cursor,
                token_param="after",  # noqa: S106 (a cursor, not a secret)
                size=self.page_size,
                total_records=_total_records,
            )
            rows: Iterator[Record] = client.paginate(path, cursor, params=params, records=_data_list)
            return rows
        pages = PageNumberPaginator(size_param="limit", size=self.page_size, total_pages=_total_pages)
        numbered: Iterator[Record] = client.paginate(path, pages, params=params, records=_data_list)
        return numbered


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

    # ------------------------------------------------------------------ resources (dossier 1.4-1.11, round 2 §3)
    # Orders page by id ascending on purpose: an order modified while we page keeps its place, so
    # none is skipped (sorting by date_modified would move it past the page being read).
    orders = V2("orders", verbs=READ_ONLY, order={"sort": "id:asc"}, filters=ORDER_FILTERS)
    order_products = V2("orders/{order_id}/products", verbs=READ_ONLY)
    order_shipping_addresses = V2("orders/{order_id}/shipping_addresses", verbs=READ_ONLY)
    order_statuses = V2("order_statuses", paged=False, verbs=LIST_ONLY)
    transactions = V3("orders/{order_id}/transactions", verbs=LIST_ONLY)
    order_refunds = V3(
        "orders/{order_id}/payment_actions/refunds", paging="none", verbs=LIST_ONLY, filters="transaction_id"
    )
    refunds = V3(
        "orders/payment_actions/refunds",
        verbs=READ_ONLY,
        in_limit=IN_VALUES,
        filters="order_id:in id:in created:min created:max transaction_id",
    )
    customers = V3("customers", paging="cursor", verbs=LIST_ONLY, in_limit=IN_VALUES, filters=CUSTOMER_FILTERS)
    products = V3(
        "catalog/products",
        verbs=READ_ONLY,
        order={"sort": "id", "direction": "asc"},
        in_limit=IN_VALUES,
        filters="id id:in name sku sku:in is_visible date_modified:min date_modified:max",
    )
    variants = V3("catalog/variants", verbs=READ_ONLY, in_limit=IN_VALUES, filters="id:in sku sku:in product_id:in")
    product_variants = V3("catalog/products/{product_id}/variants", verbs=READ_ONLY)
    webhooks = V3("hooks", delete="http", filters="scope is_active destination")

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

    def iter_paid_orders(self, *, modified_since: datetime | None = None) -> Iterator[Record]:
        """Orders that were paid: :data:`PAID_STATUS_IDS` and :data:`PARTIALLY_REFUNDED`.

        One pass over the modified orders filtered here costs fewer calls than one pass per
        status id (the v2 filter takes a single status).

        :param modified_since: only orders modified at or after this aware datetime.
        """
        orders = self.orders.list() if modified_since is None else self.orders.list(min_date_modified=modified_since)
        for order in orders:
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

    # ------------------------------------------------------------------ v3 refunds: one at a time per order

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
        ``order_refunds.list(order_id=...)`` before trying again.

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

    # ------------------------------------------------------------------ webhooks

    def ensure_webhook(self, scope: str, destination: str, *, headers: Mapping[str, str] | None = None) -> Record:
        """The webhook for ``scope`` + ``destination``: reuse it (reactivated if needed) or create it.

        Safe to run on every DAG run, and the way to recover from a lost create answer. BigCommerce
        requires an https destination on port 443, and deactivates a hook after ~48 h of failed
        deliveries; the custom ``headers`` (secrets) are sent with every delivery.

        :param scope: the webhook scope (``store/order/*``).
        :param destination: the receiver's URL.
        :param headers: custom headers to send with every delivery.
        """
        if headers:
            mask(*headers.values())
        for hook in self.webhooks.list():
            if hook.get("scope") == scope and hook.get("destination") == destination:
                changes: dict[str, Any] = {}
                if not hook.get("is_active"):
                    changes["is_active"] = True
                if headers is not None and (hook.get("headers") or {}) != dict(headers):
                    changes["headers"] = dict(headers)
                return self.webhooks.update(int(hook["id"]), changes) if changes else hook
        body: dict[str, Any] = {"scope": scope, "destination": destination, "is_active": True}
        if headers:
            body["headers"] = dict(headers)
        return self.webhooks.create(body)

    # ------------------------------------------------------------------ Airflow

    def test_connection(self) -> tuple[bool, str]:
        """Authenticate and name the store behind the store hash."""

        def probe() -> str:
            store = self.get_store()
            return f"BigCommerce store '{store.get('name')}' ({self.config.store_hash}) reached"

        return self.connection_check(probe)


# --------------------------------------------------------------------------- helpers


def bigcommerce_error_parser(response: requests.Response) -> ErrorInfo:
    """v2 errors are ``[{"status", "message"}]``, v3 ``{"status", "title", "errors"}``."""
    message = _error_message(response)
    status = response.status_code
    if status == 401:
        return ErrorInfo(
            message=f"BigCommerce rejected the access token ({message}); check the access token (password) "
            "and the store_hash extra: the API account may have been deleted",
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


def _total_records(payload: Any) -> int | None:
    total = (((payload or {}).get("meta") or {}).get("pagination") or {}).get("total")
    return int(total) if total is not None else None


def _next_customer_cursor(payload: Any) -> str | None:
    cursor = ((payload or {}).get("meta") or {}).get("cursor_pagination") or {}
    if not (cursor.get("links") or {}).get("next"):
        return None
    end = cursor.get("end_cursor")
    return str(end) if end else None
