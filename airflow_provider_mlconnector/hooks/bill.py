"""BILL (bill.com) v3 hook.

What BILL imposes and how this hook copes (dossier PART B / C):

* **One session per organization.** ``POST /connect/v3/login`` returns a ``sessionId`` that idles
  out after 35 minutes; login is limited (200 per hour per developer key, 5 per minute). The
  session is kept encrypted in the token store under ``("bill", "session:<organizationId>:<fp>")``
  (``fp`` = a hash of username + developer key) so every task reuses it; on ``BDC_1109`` (or a
  bare 401) exactly one task logs in again, under the store's lock, and the call is retried once.
* **At most 3 requests in flight per developer key and organization** (``BDC_1322``). Across
  processes: run every BILL task in the Airflow pool :data:`BILL_POOL` (``bill_api``, 3 slots:
  ``airflow pools set bill_api 3 "BILL: 3 concurrent requests per org"``). Within a process: a
  shared :class:`ConcurrencyLimit` per organization. A ``BDC_1322`` that still happens is retried
  after ~1-2 s with jitter.
* **20,000 requests per hour** (``BDC_1144``): wait for the next hour when that is within
  ``max_rate_limit_wait`` seconds (hook argument or connection extra, default 300), else fail with
  a clear :class:`RateLimitedError` so the task is rescheduled.
* **No idempotency on creates**: a create whose answer is lost raises
  :class:`WriteOutcomeUnknownError`; look the record up with :meth:`BillHook.find_vendor_by_name`
  or :meth:`BillHook.find_bill` before creating again.
* **Money**: BILL sends amounts as JSON numbers; this hook returns them as ``Decimal`` (exact) and
  accepts ``Decimal`` amounts in bodies.

Webhook security keys are stored encrypted under ``("bill", "webhook:<organizationId>:<subscriptionId>")``
as ``{"security_key", "subscription_id", "notification_url"}``; verify deliveries with
:func:`verify_webhook_signature`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar

import requests

from airflow_provider_mlconnector.core.auth import Credential, StoredCredentialAuth
from airflow_provider_mlconnector.core.http import ApiClient, ErrorInfo, ErrorKind, RetrySettings
from airflow_provider_mlconnector.core.paging import CursorPaginator
from airflow_provider_mlconnector.core.secrets import mask, redact_text
from airflow_provider_mlconnector.core.throttle import ConcurrencyLimit
from airflow_provider_mlconnector.exceptions import AuthError, ConfigurationError, FatalApiError
from airflow_provider_mlconnector.hooks.base import MLConnectorHook

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state.tokens import TokenStore

log = logging.getLogger(__name__)

SYSTEM = "bill"
CONNECT = "/connect/v3"
EVENTS = "/connect-events/v3"
#: The Airflow pool every BILL task must run in (3 slots = BILL's concurrency cap per organization).
BILL_POOL = "bill_api"
BILL_POOL_SLOTS = 3
MAX_CONCURRENT_REQUESTS = 3
PAGE_SIZE = 100
BULK_BILLS_LIMIT = 100  # current docs; an older page says 200
BULK_VENDORS_LIMIT = 20
#: vendor ids per ``vendorId:in`` filter: keeps the query string short (20-char ids).
VENDORS_PER_FILTER = 50
DEFAULT_MAX_RATE_LIMIT_WAIT = 300.0
MIN_RATE_LIMIT_WAIT = 2.0
#: Base wait after BDC_1322; the HTTP core adds up to 1 s of jitter.
CONCURRENCY_BACKOFF = 1.0
#: The events the sync consumes, in one consolidated subscription.
WEBHOOK_EVENTS: tuple[str, ...] = (
    "vendor.created",
    "vendor.updated",
    "vendor.archived",
    "vendor.restored",
    "bill.created",
    "bill.updated",
    "bill.archived",
    "bill.restored",
    "payment.updated",
)
SIGNATURE_HEADER = "x-bill-sha-signature"
FILTER_OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "sw"})

SESSION_INVALID = "BDC_1109"
BAD_CREDENTIALS = ("BDC_1101", "BDC_1102")
HOURLY_LIMIT = "BDC_1144"
CONCURRENCY_LIMIT = "BDC_1322"


# ---------------------------------------------------------------------- errors


def parse_bill_error(response: requests.Response, *, now: Callable[[], float] = time.time) -> ErrorInfo:
    """Read BILL's v3 error array (``[{"code": "BDC_1109", "message": ...}]``) into an :class:`ErrorInfo`.

    BILL puts the meaning in the code, not the status: ``BDC_1109`` (session expired) is a renewable
    auth failure, ``BDC_1101``/``BDC_1102`` are fatal, ``BDC_1322`` and ``BDC_1144`` are rate limits
    with no ``Retry-After`` header, so the wait is derived here.
    """
    try:
        body = response.json()
    except ValueError:
        return ErrorInfo(message=response.reason or f"HTTP {response.status_code}")
    entries = [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []
    if isinstance(body, dict):
        entries = [body]
    if not entries:
        return ErrorInfo(message=response.reason or f"HTTP {response.status_code}")
    code = str(entries[0].get("code") or "") or None
    messages = [str(e["message"]) for e in entries[:5] if e.get("message")]
    if len(entries) > 5:
        messages.append(f"... and {len(entries) - 5} more")
    message = redact_text("; ".join(messages) or response.reason or f"HTTP {response.status_code}")
    kind: ErrorKind | None = None
    retry_after: float | None = None
    if code == SESSION_INVALID:
        kind = "auth_expired"
    elif code in BAD_CREDENTIALS:
        kind = "auth_fatal"
    elif code == CONCURRENCY_LIMIT:
        kind, retry_after = "rate_limited", CONCURRENCY_BACKOFF
    elif code == HOURLY_LIMIT:
        # "wait until the next hour"; the login cap counts per minute.
        window = 60 if "per minute" in message.lower() else 3600
        kind, retry_after = "rate_limited", window - (now() % window) + 1.0
    return ErrorInfo(message=message, code=code, kind=kind, retry_after=retry_after)


# ---------------------------------------------------------------------- configuration and auth


@dataclass(frozen=True)
class BillConfig:
    """What the hook reads from its Airflow connection."""

    base_url: str
    username: str
    password: str = field(repr=False)
    dev_key: str = field(repr=False)
    organization_id: str
    max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT

    @property
    def fingerprint(self) -> str:
        """Tells sessions of different users / developer keys apart without storing either in a key."""
        return hashlib.sha256(f"{self.username}\n{self.dev_key}".encode()).hexdigest()[:16]

    @property
    def session_key(self) -> str:
        return f"session:{self.organization_id}:{self.fingerprint}"

    def webhook_key(self, subscription_id: str) -> str:
        return f"webhook:{self.organization_id}:{subscription_id}"


class BillSessionAuth(StoredCredentialAuth):
    """A BILL session shared through the token store; renewed by logging in again (no refresh exists)."""

    def __init__(self, *, login_client: ApiClient, config: BillConfig, tokens: TokenStore) -> None:
        super().__init__(tokens=tokens, system=SYSTEM, credential_key=config.session_key)
        self.login_client = login_client
        self.config = config
        mask(config.password, config.dev_key)

    def renew(self, latest: Credential | None) -> Credential:
        cfg = self.config
        body = {
            "username": cfg.username,
            "password": cfg.password,
            "organizationId": cfg.organization_id,
            "devKey": cfg.dev_key,
        }
        try:
            # Safe to retry: a lost login answer only costs one more login.
            answer = self.login_client.send_json("POST", f"{CONNECT}/login", json=body, idempotent=True, write=False)
        except AuthError as exc:
            raise AuthError(
                f"BILL refused the login to organization {cfg.organization_id} ({exc.code or exc.status}: "
                f"{exc.message}); check the username, password, developer key and organization id of the "
                "connection (sandbox and production keys differ)",
                system=SYSTEM,
                status=exc.status,
                code=exc.code,
                request_id=exc.request_id,
            ) from None
        session_id = answer.get("sessionId") if isinstance(answer, dict) else None
        if not session_id:
            raise AuthError("BILL login answered without a sessionId", system=SYSTEM)
        mask(str(session_id))
        log.info("BILL: logged in to organization %s", cfg.organization_id)
        return {
            "session_id": str(session_id),
            "organization_id": answer.get("organizationId", cfg.organization_id),
            "user_id": answer.get("userId"),
            "trusted": bool(answer.get("trusted", False)),
            "logged_in_at": time.time(),
        }

    def apply(self, request: requests.PreparedRequest, credential: Credential) -> None:
        request.headers["devKey"] = self.config.dev_key
        request.headers["sessionId"] = str(credential["session_id"])

    def is_expired(self, credential: Credential) -> bool:
        # The idle expiry slides with every call made by any task: only BILL knows it (BDC_1109).
        return not credential.get("session_id")

    def secrets_of(self, credential: Credential) -> list[str]:
        return [str(credential["session_id"])] if credential.get("session_id") else []

    def forget(self) -> None:
        """Drop the shared session (after a logout) unless another task already replaced it."""
        with self.tokens.locked(self.system, self.credential_key) as slot:
            if slot.value is None or slot.value == self._current:
                slot.save({})
        self._current = None


_LIMITS: dict[str, ConcurrencyLimit] = {}
_LIMITS_LOCK = threading.Lock()


def organization_limit(config: BillConfig) -> ConcurrencyLimit:
    """The process-wide cap of :data:`MAX_CONCURRENT_REQUESTS` for one (developer key, organization)."""
    key = f"{config.organization_id}:{config.fingerprint}"
    with _LIMITS_LOCK:
        if key not in _LIMITS:
            _LIMITS[key] = ConcurrencyLimit(MAX_CONCURRENT_REQUESTS)
        return _LIMITS[key]


# ---------------------------------------------------------------------- filters and values


def format_bill_datetime(moment: datetime) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSSZ`` in UTC, the documented filter form. Naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("BILL filters need a timezone-aware datetime")
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bill_filter(field: str, op: str, value: Any) -> str:
    """One ``filters=`` clause: ``bill_filter("name", "eq", 'Joe "Q" Ltd')`` -> ``name:eq:"Joe \\"Q\\" Ltd"``.

    Strings, dates and datetimes are double-quoted (``"`` and ``\\`` backslash-escaped); booleans and
    numbers are bare; ``in``/``nin`` take a sequence, sent as one quoted comma list.

    :param field: a filterable field of the entity (``updatedTime``, ``vendorId``, ``name``...).
    :param op: one of ``eq ne gt gte lt lte in nin sw``.
    :param value: the value to compare with.
    """
    if op not in FILTER_OPS:
        raise ValueError(f"unknown BILL filter operator {op!r}")
    if not field.replace(".", "").isalnum():
        raise ValueError(f"invalid BILL filter field {field!r}")
    if op in ("in", "nin"):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise ValueError(f"{op} needs a sequence of values")
        items = [str(v) for v in value]
        if not items or any("," in v or '"' in v or "\\" in v for v in items):
            raise ValueError(f"{op} values must be non-empty and free of commas, quotes and backslashes")
        return f"{field}:{op}:{_quote(','.join(items))}"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, Decimal)):
        text = str(value)
    elif isinstance(value, datetime):
        text = _quote(format_bill_datetime(value))
    elif isinstance(value, date):
        text = _quote(value.isoformat())
    elif isinstance(value, str):
        text = _quote(value)
    else:
        raise ValueError(f"cannot use a {type(value).__name__} in a BILL filter")
    return f"{field}:{op}:{text}"


def join_filters(clauses: Iterable[str]) -> str:
    """Clauses joined with ``,`` (logical AND)."""
    return ",".join(c for c in clauses if c)


def _decimalize(value: Any) -> Any:
    """JSON floats -> ``Decimal`` via their shortest repr (exact for every amount BILL can hold)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _decimalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimalize(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    """A body for ``requests``: ``Decimal`` -> float (refused when not exact), dates -> ISO strings."""
    if isinstance(value, Decimal):
        as_float = float(value)
        if Decimal(repr(as_float)) != value:
            raise ValueError(f"amount {value} cannot be sent exactly as a JSON number")
        return as_float
    if isinstance(value, datetime):
        return format_bill_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _results(payload: Any) -> list[Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise FatalApiError("BILL list answer has no 'results' array", system=SYSTEM)
    results: list[Any] = payload["results"]
    return results


def _next_page(payload: Any) -> str | None:
    token = payload.get("nextPage") if isinstance(payload, dict) else None
    return str(token) if token else None


def _as_list(payload: Any) -> list[dict[str, Any]]:
    """Answers that are a bare array or a ``{"results": [...]}`` envelope (both seen in v3)."""
    if isinstance(payload, dict) and isinstance(payload.get("results"), list):
        payload = payload["results"]
    if not isinstance(payload, list):
        raise FatalApiError("expected a JSON array from BILL", system=SYSTEM)
    return [_decimalize(item) for item in payload]


def verify_webhook_signature(raw_body: bytes, signature: str | None, security_key: str) -> bool:
    """Check ``x-bill-sha-signature``: base64(HMAC-SHA256(key=securityKey as UTF-8, msg=raw body)).

    :param raw_body: the request body exactly as received (never re-serialised JSON).
    :param signature: the header value.
    :param security_key: the subscription's key (see :meth:`BillHook.webhook_security_key`).
    """
    from airflow_provider_mlconnector.webhooks import signatures

    if not signature:
        return False
    return signatures.body_hmac(security_key, raw_body, signature)


def bill_applications(payment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """How a payment is applied to bills: ``[{"payment_id", "bill_payment_id", "bill_id", "amount"}]``.

    Uses ``billPayments[]``; a payment without it (older shape) counts as wholly applied to ``billId``.
    """
    applications = payment.get("billPayments") or []
    if not applications and payment.get("billId"):
        applications = [{"id": None, "billId": payment["billId"], "amount": payment.get("amount")}]
    return [
        {
            "payment_id": payment.get("id"),
            "bill_payment_id": a.get("id"),
            "bill_id": a.get("billId"),
            "amount": _decimalize(a.get("amount")),
        }
        for a in applications
    ]


# ---------------------------------------------------------------------- the hook


class BillHook(MLConnectorHook):
    """BILL API hook (connection type ``bill``): vendors, bills, payments, chart of accounts, webhooks.

    Run tasks using it in the Airflow pool :data:`BILL_POOL` (3 slots).

    :param conn_id: the Airflow connection id (``bill_default``).
    :param state_store: the state store holding the shared session and webhook keys.
    :param max_rate_limit_wait: longest wait (seconds) for BILL's hourly cap before failing; also the
        connection extra ``max_rate_limit_wait``. Default 300.
    :param retry: attempts and base backoff (its ``max_wait`` is replaced by ``max_rate_limit_wait``).
    :param sleep: sleep function override (tests).
    :param clock: wall clock used to compute the wait until BILL's next hour (tests).
    """

    conn_name_attr: ClassVar[str] = "bill_conn_id"
    default_conn_name: ClassVar[str] = "bill_default"
    conn_type: ClassVar[str] = "bill"
    hook_name: ClassVar[str] = "BILL"
    default_host: ClassVar[str] = "https://gateway.prod.bill.com"
    default_retry: ClassVar[RetrySettings] = RetrySettings(max_attempts=6, base_wait=1.0)

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        max_rate_limit_wait: float | None = None,
        clock: Callable[[], float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id, **kwargs)
        self._max_rate_limit_wait = max_rate_limit_wait
        self._error_parser = partial(parse_bill_error, now=clock if clock is not None else time.time)

    # ------------------------------------------------------------------ wiring

    @cached_property
    def config(self) -> BillConfig:
        conn = self.connection
        extra = self.extra  # MLConnectorHook.extra; ruff's S610 means Django's QuerySet.extra
        organization_id = self.require(extra("organization_id"), "organization_id (extra)")
        if not organization_id.startswith("008"):
            raise ConfigurationError(f"connection '{self.conn_id}': a BILL organization id starts with 008")
        wait = self._max_rate_limit_wait
        if wait is None:
            try:
                wait = float(extra("max_rate_limit_wait", DEFAULT_MAX_RATE_LIMIT_WAIT))
            except (TypeError, ValueError):
                raise ConfigurationError(
                    f"connection '{self.conn_id}': extra max_rate_limit_wait must be a number of seconds"
                ) from None
        if wait < MIN_RATE_LIMIT_WAIT:
            # Below this even a BDC_1322 back-off (1-2 s) would count as "too long" and fail the call.
            raise ConfigurationError(
                f"connection '{self.conn_id}': max_rate_limit_wait must be at least {MIN_RATE_LIMIT_WAIT:.0f} seconds"
            )
        config = BillConfig(
            base_url=self.host_url(),
            username=self.require(conn.login, "login (username)"),
            password=self.require(conn.password, "password"),
            dev_key=self.require(extra("dev_key"), "dev_key (extra)"),
            organization_id=organization_id,
            max_rate_limit_wait=wait,
        )
        mask(config.password, config.dev_key)
        return config

    @property
    def organization_id(self) -> str:
        """The BILL organization (``008...``) this connection works in: the tenant of every record."""
        return self.config.organization_id

    def _retry_settings(self) -> RetrySettings:
        # The longest single wait is max_rate_limit_wait: BILL's hourly cap asks for up to an hour.
        return replace(self._retry, max_wait=self.config.max_rate_limit_wait)

    @cached_property
    def session_auth(self) -> BillSessionAuth:
        login_client = ApiClient(
            system=SYSTEM,
            base_url=self.config.base_url,
            error_parser=self._error_parser,
            retry=self._retry_settings(),
            sleep=self._sleep,
        )
        return BillSessionAuth(login_client=login_client, config=self.config, tokens=self.state.tokens)

    def build_client(self) -> ApiClient:
        # The login client above has no throttle on purpose: a login happens while a request already
        # holds one of the 3 slots, and must not wait for another.
        return ApiClient(
            system=SYSTEM,
            base_url=self.config.base_url,
            auth=self.session_auth,
            error_parser=self._error_parser,
            throttle=organization_limit(self.config),
            retry=self._retry_settings(),
            sleep=self._sleep,
        )

    # ------------------------------------------------------------------ session

    def login(self) -> dict[str, Any]:
        """Make sure a session exists (the shared one when still stored); return its non-secret details."""
        credential = self.session_auth.credential()
        return {
            "organizationId": credential.get("organization_id"),
            "userId": credential.get("user_id"),
            "trusted": credential.get("trusted", False),
        }

    def session_info(self) -> dict[str, Any]:
        """``GET /v3/login/session``: organization, user and MFA status of the current session."""
        return self._get(f"{CONNECT}/login/session")

    def logout(self) -> None:
        """End the shared session at BILL and forget it (other tasks will log in again)."""
        self.client.send_json("POST", f"{CONNECT}/logout", json={}, idempotent=True)
        self.session_auth.forget()

    def test_connection(self) -> tuple[bool, str]:
        """Log in (or reuse the session) and report the organization reached."""

        def probe() -> str:
            info = self.session_info()
            trusted = "MFA-trusted" if info.get("trusted") else "not MFA-trusted"
            return (
                f"Connected to BILL organization {info.get('organizationId')} as user {info.get('userId')} "
                f"({trusted} session) at {self.config.base_url}"
            )

        return self.connection_check(probe)

    # ------------------------------------------------------------------ generic calls

    def _get(self, path: str) -> dict[str, Any]:
        answer: dict[str, Any] = _decimalize(self.client.get_json(path))
        return answer

    def _send(self, method: str, path: str, body: Any, **kwargs: Any) -> Any:
        return _decimalize(self.client.send_json(method, path, json=_jsonable(body), **kwargs))

    def iter_list(self, path: str, *, filters: Iterable[str] = (), sort: str | None = None) -> Iterator[dict[str, Any]]:
        """Every row of a v3 list, 100 per page, following ``nextPage`` until it is absent.

        :param path: the list path, e.g. ``/connect/v3/bills``.
        :param filters: clauses built with :func:`bill_filter` (ANDed).
        :param sort: ``field:asc`` or ``field:desc``.
        """
        params: dict[str, Any] = {"max": PAGE_SIZE}
        text = join_filters(filters)
        if text:
            params["filters"] = text
        if sort:
            params["sort"] = sort
        paginator = CursorPaginator(token=_next_page)
        for row in self.client.paginate(path, paginator, params=params, records=_results):
            yield _decimalize(row)

    @staticmethod
    def _window(updated_since: datetime | None, updated_before: datetime | None) -> list[str]:
        clauses = []
        if updated_since is not None:
            clauses.append(bill_filter("updatedTime", "gte", updated_since))
        if updated_before is not None:
            clauses.append(bill_filter("updatedTime", "lt", updated_before))
        return clauses

    # ------------------------------------------------------------------ vendors

    def list_vendors(
        self,
        *,
        updated_since: datetime | None = None,
        updated_before: datetime | None = None,
        include_archived: bool = True,
        filters: Iterable[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """Vendors, optionally only those updated in ``[updated_since, updated_before)``.

        :param updated_since: inclusive lower bound on ``updatedTime`` (timezone-aware).
        :param updated_before: exclusive upper bound on ``updatedTime``.
        :param include_archived: also return archived vendors.
        :param filters: more :func:`bill_filter` clauses.
        """
        clauses = [*self._window(updated_since, updated_before), *filters]
        if not include_archived:
            clauses.append(bill_filter("archived", "eq", False))
        return self.iter_list(f"{CONNECT}/vendors", filters=clauses)

    def get_vendor(self, vendor_id: str) -> dict[str, Any]:
        """One vendor (the single GET carries more fields than list rows).

        :param vendor_id: the ``009...`` id.
        """
        return self._get(f"{CONNECT}/vendors/{vendor_id}")

    def find_vendor_by_name(self, name: str, *, include_archived: bool = False) -> dict[str, Any] | None:
        """The vendor named exactly ``name`` (the oldest one if BILL holds duplicates), or None.

        BILL does not dedupe vendor creates, so always look up before creating.

        :param name: the exact vendor name.
        :param include_archived: also consider archived vendors.
        """
        found = [
            v
            for v in self.list_vendors(include_archived=include_archived, filters=[bill_filter("name", "eq", name)])
            if v.get("name") == name  # also guards against a case-insensitive or prefix match server-side
        ]
        return self._oldest(found, f"vendor name {name!r}")

    def create_vendor(self, vendor: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v3/vendors``. Not idempotent: on :class:`WriteOutcomeUnknownError` look it up by name.

        :param vendor: the BILL vendor body (``name``, ``address`` with an ISO alpha-2 ``country``...).
        """
        created: dict[str, Any] = self._send("POST", f"{CONNECT}/vendors", vendor)
        return created

    def create_vendors_bulk(self, vendors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``POST /v3/vendors/bulk``: up to :data:`BULK_VENDORS_LIMIT`, all-or-nothing.

        :param vendors: vendor bodies; more than the limit raises ``ValueError`` (chunk upstream).
        """
        return self._bulk(f"{CONNECT}/vendors/bulk", vendors, BULK_VENDORS_LIMIT)

    def update_vendor(self, vendor_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``PATCH /v3/vendors/{id}`` with the fields to change (bank details cannot change here).

        :param vendor_id: the ``009...`` id.
        :param changes: the fields to set.
        """
        updated: dict[str, Any] = self._send("PATCH", f"{CONNECT}/vendors/{vendor_id}", changes, idempotent=True)
        return updated

    def archive_vendor(self, vendor_id: str) -> dict[str, Any]:
        """``POST /v3/vendors/{id}/archive`` (BILL never deletes).

        :param vendor_id: the ``009...`` id.
        """
        archived: dict[str, Any] = self._send("POST", f"{CONNECT}/vendors/{vendor_id}/archive", {}, idempotent=True)
        return archived

    # ------------------------------------------------------------------ bills

    def list_bills(
        self,
        *,
        vendor_id: str | None = None,
        updated_since: datetime | None = None,
        updated_before: datetime | None = None,
        include_archived: bool = True,
        filters: Iterable[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """Bills, optionally of one vendor and/or updated in ``[updated_since, updated_before)``.

        List rows may lack fields of the single GET (``dueAmount``): absent is not zero.

        :param vendor_id: only this vendor's bills.
        :param updated_since: inclusive lower bound on ``updatedTime`` (timezone-aware).
        :param updated_before: exclusive upper bound on ``updatedTime``.
        :param include_archived: also return archived bills.
        :param filters: more :func:`bill_filter` clauses.
        """
        clauses = [*self._window(updated_since, updated_before), *filters]
        if vendor_id is not None:
            clauses.append(bill_filter("vendorId", "eq", vendor_id))
        if not include_archived:
            clauses.append(bill_filter("archived", "eq", False))
        return self.iter_list(f"{CONNECT}/bills", filters=clauses)

    def list_bills_for_vendors(
        self, vendor_ids: Iterable[str], *, include_archived: bool = False
    ) -> Iterator[dict[str, Any]]:
        """The bills of several vendors (``vendorId:in``, :data:`VENDORS_PER_FILTER` ids per query).

        For matching a batch by vendor + invoice number with a few list calls instead of one
        :meth:`find_bill` per record.

        :param vendor_ids: ``009...`` vendor ids.
        :param include_archived: also return archived bills (like :meth:`find_bill`, default no).
        """
        ids = sorted(set(vendor_ids))
        for start in range(0, len(ids), VENDORS_PER_FILTER):
            chunk = ids[start : start + VENDORS_PER_FILTER]
            yield from self.list_bills(
                include_archived=include_archived, filters=[bill_filter("vendorId", "in", chunk)]
            )

    def get_bill(self, bill_id: str) -> dict[str, Any]:
        """One bill with ``paymentStatus``, ``paidAmount`` and ``dueAmount``.

        :param bill_id: the ``00n...`` id.
        """
        return self._get(f"{CONNECT}/bills/{bill_id}")

    def find_bill(
        self, vendor_id: str, invoice_number: str, *, include_archived: bool = False
    ) -> dict[str, Any] | None:
        """The bill of ``vendor_id`` with ``invoice.invoiceNumber == invoice_number`` (oldest if duplicated).

        ``invoiceNumber`` is not filterable in BILL, so this reads the vendor's bills and matches here.

        :param vendor_id: the ``009...`` vendor id.
        :param invoice_number: the exact invoice number.
        :param include_archived: also consider archived bills.
        """
        found = [
            b
            for b in self.list_bills(vendor_id=vendor_id, include_archived=include_archived)
            if (b.get("invoice") or {}).get("invoiceNumber") == invoice_number
        ]
        return self._oldest(found, f"invoice {invoice_number!r} of vendor {vendor_id}")

    def create_bill(self, bill: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v3/bills``. Not idempotent: on :class:`WriteOutcomeUnknownError` use :meth:`find_bill`.

        :param bill: ``vendorId``, ``dueDate``, ``invoice{invoiceNumber, invoiceDate}``, ``billLineItems``
            (``amount`` as ``Decimal``, ``classifications.chartOfAccountId``).
        """
        created: dict[str, Any] = self._send("POST", f"{CONNECT}/bills", bill)
        return created

    def create_bills_bulk(self, bills: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``POST /v3/bills/bulk``: up to :data:`BULK_BILLS_LIMIT` bills (any vendors), all-or-nothing.

        A validation error rejects the whole batch (:class:`RecordRejectedError`): retry its bills one
        by one to find the culprit.

        :param bills: bill bodies; more than the limit raises ``ValueError`` (chunk upstream).
        """
        return self._bulk(f"{CONNECT}/bills/bulk", bills, BULK_BILLS_LIMIT)

    def update_bill(self, bill_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``PATCH /v3/bills/{id}``; ``billLineItems`` given replace all lines.

        :param bill_id: the ``00n...`` id.
        :param changes: the fields to set.
        """
        updated: dict[str, Any] = self._send("PATCH", f"{CONNECT}/bills/{bill_id}", changes, idempotent=True)
        return updated

    def archive_bill(self, bill_id: str) -> dict[str, Any]:
        """``POST /v3/bills/{id}/archive``.

        :param bill_id: the ``00n...`` id.
        """
        archived: dict[str, Any] = self._send("POST", f"{CONNECT}/bills/{bill_id}/archive", {}, idempotent=True)
        return archived

    def _bulk(self, path: str, items: Sequence[Mapping[str, Any]], limit: int) -> list[dict[str, Any]]:
        if len(items) > limit:
            raise ValueError(f"BILL accepts at most {limit} records per bulk call, got {len(items)}")
        if not items:
            return []
        return _as_list(self.client.send_json("POST", path, json=_jsonable(list(items))))

    # ------------------------------------------------------------------ payments and accounts

    def list_payments(
        self,
        *,
        updated_since: datetime | None = None,
        updated_before: datetime | None = None,
        vendor_id: str | None = None,
        filters: Iterable[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """Payments (``stp...``) with ``billPayments[]`` links, for the write-back; see :func:`bill_applications`.

        ``singleStatus == "CLEARED"`` means settled in the vendor's account.

        :param updated_since: inclusive lower bound on ``updatedTime`` (timezone-aware).
        :param updated_before: exclusive upper bound on ``updatedTime``.
        :param vendor_id: only this vendor's payments.
        :param filters: more :func:`bill_filter` clauses.
        """
        clauses = [*self._window(updated_since, updated_before), *filters]
        if vendor_id is not None:
            clauses.append(bill_filter("vendorId", "eq", vendor_id))
        return self.iter_list(f"{CONNECT}/payments", filters=clauses)

    def get_payment(self, payment_id: str) -> dict[str, Any]:
        """One payment.

        :param payment_id: the ``stp...`` id.
        """
        return self._get(f"{CONNECT}/payments/{payment_id}")

    def list_chart_of_accounts(self, *, include_archived: bool = False) -> Iterator[dict[str, Any]]:
        """Chart-of-accounts entries (``0ca...``); each carries its number as ``accountNumber``.

        :param include_archived: also return archived accounts.
        """
        clauses = [] if include_archived else [bill_filter("archived", "eq", False)]
        return self.iter_list(f"{CONNECT}/classifications/chart-of-accounts", filters=clauses)

    # ------------------------------------------------------------------ webhook subscriptions

    def list_event_catalog(self) -> list[dict[str, Any]]:
        """``GET /v3/events/catalog`` of the webhooks API."""
        return _as_list(self.client.get_json(f"{EVENTS}/events/catalog"))

    def list_subscriptions(self) -> list[dict[str, Any]]:
        """The organization's webhook subscriptions (at most 10)."""
        return _as_list(self.client.get_json(f"{EVENTS}/subscriptions"))

    def create_subscription(
        self,
        *,
        notification_url: str,
        events: Sequence[str] = WEBHOOK_EVENTS,
        name: str = "ml-connector",
        enabled: bool = True,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Create a subscription; its one-time ``securityKey`` goes to the token store, not the result.

        Retried safely: the same ``X-Idempotent-Key`` replays BILL's first answer for 24 h.

        :param notification_url: the HTTPS endpoint receiving deliveries.
        :param events: event types (version 1).
        :param name: the subscription's name.
        :param enabled: whether deliveries start at once.
        :param idempotency_key: a UUID4; generated when omitted.
        """
        body = {
            "name": name,
            "status": {"enabled": enabled},
            "events": [{"type": e, "version": "1"} for e in events],
            "notificationUrl": notification_url,
        }
        created: dict[str, Any] = self.client.send_json(
            "POST",
            f"{EVENTS}/subscriptions",
            json=body,
            headers={"X-Idempotent-Key": idempotency_key or str(uuid.uuid4())},
            idempotent=True,
        )
        security_key = created.pop("securityKey", None)
        if security_key:
            self._store_security_key(str(created["id"]), str(security_key), notification_url)
        return created

    def ensure_subscription(
        self, *, notification_url: str, events: Sequence[str] = WEBHOOK_EVENTS, name: str = "ml-connector"
    ) -> dict[str, Any]:
        """One consolidated, enabled subscription to ``notification_url`` for ``events``, with a known key.

        Reuses an existing subscription to the same URL (patching its events / status when they
        differ, rotating its key when the store has none) instead of creating duplicates.

        :param notification_url: the HTTPS endpoint receiving deliveries.
        :param events: event types (version 1).
        :param name: the name used when creating.
        """
        mine = [s for s in self.list_subscriptions() if s.get("notificationUrl") == notification_url]
        if not mine:
            return self.create_subscription(notification_url=notification_url, events=events, name=name)
        if len(mine) > 1:
            log.warning("BILL: %d subscriptions deliver to the same URL; keeping %s", len(mine), mine[0].get("id"))
        subscription = mine[0]
        have = {e.get("type") for e in subscription.get("events") or []}
        enabled = (subscription.get("status") or {}).get("enabled")
        sub_id = str(subscription["id"])
        if have != set(events) or not enabled:
            body = {"events": [{"type": e, "version": "1"} for e in events], "status": {"enabled": True}}
            subscription = self.client.send_json(
                "PATCH", f"{EVENTS}/subscriptions/{sub_id}", json=body, idempotent=True
            )
        if self.webhook_security_key(sub_id) is None:
            self.rotate_security_key(sub_id)
        return subscription

    def rotate_security_key(self, subscription_id: str, *, idempotency_key: str | None = None) -> None:
        """Ask BILL for a new security key and store it (encrypted); the old key stops verifying.

        :param subscription_id: the subscription's id.
        :param idempotency_key: a UUID4; generated when omitted.
        """
        answer = self.client.send_json(
            "POST",
            f"{EVENTS}/subscriptions/{subscription_id}/security-key",
            json={},
            headers={"X-Idempotent-Key": idempotency_key or str(uuid.uuid4())},
            idempotent=True,
        )
        security_key = answer.get("securityKey") if isinstance(answer, dict) else None
        if not security_key:
            raise FatalApiError("BILL answered the key rotation without a securityKey", system=SYSTEM)
        self._store_security_key(subscription_id, str(security_key), None)

    def webhook_security_key(self, subscription_id: str) -> str | None:
        """The stored security key of ``subscription_id`` (for :func:`verify_webhook_signature`).

        :param subscription_id: ``metadata.subscriptionId`` of a delivery.
        """
        stored = self.state.tokens.get(SYSTEM, self.config.webhook_key(subscription_id))
        key = (stored or {}).get("security_key")
        if key:
            mask(str(key))
        return str(key) if key else None

    def delete_subscription(self, subscription_id: str) -> None:
        """``DELETE /v3/subscriptions/{id}``.

        :param subscription_id: the subscription's id.
        """
        self.client.send_json("DELETE", f"{EVENTS}/subscriptions/{subscription_id}")

    def send_test_event(self, subscription_id: str) -> dict[str, Any]:
        """``POST /v3/subscriptions/{id}/test``: BILL sends a sample notification.

        :param subscription_id: the subscription's id.
        """
        answer: dict[str, Any] = self.client.send_json(
            "POST", f"{EVENTS}/subscriptions/{subscription_id}/test", json={}, idempotent=True
        )
        return answer

    def _store_security_key(self, subscription_id: str, security_key: str, url: str | None) -> None:
        mask(security_key)
        key = self.config.webhook_key(subscription_id)
        previous = self.state.tokens.get(SYSTEM, key) or {}
        self.state.tokens.put(
            SYSTEM,
            key,
            {
                "security_key": security_key,
                "subscription_id": subscription_id,
                "notification_url": url or previous.get("notification_url"),
                "stored_at": time.time(),
            },
        )

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _oldest(found: list[dict[str, Any]], what: str) -> dict[str, Any] | None:
        if not found:
            return None
        if len(found) > 1:
            log.warning(
                "BILL holds %d records for %s (%s); using the oldest",
                len(found),
                what,
                ", ".join(str(f.get("id")) for f in found),
            )
        return min(found, key=lambda f: (str(f.get("createdTime") or ""), str(f.get("id"))))
