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
  :class:`WriteOutcomeUnknownError`; look the record up (``hook.vendors.find(name=...)``, a bill by
  vendor and invoice number) before creating again.
* **Money**: BILL sends amounts as JSON numbers; this hook returns them as ``Decimal`` (exact) and
  accepts ``Decimal`` amounts in bodies.
* **Resources**: each collection is one line of :class:`BillHook` in the :class:`Connect` flavour
  (``hook.bills.list(vendorId=ids, archived=False)``, ``hook.bills.create_many(bodies)``); it speaks
  BILL's filter language, splits long ``in`` lists, and archives instead of deleting.

Webhook security keys are stored encrypted under ``("bill", "webhook:<organizationId>:<subscriptionId>")``
as ``{"security_key", "subscription_id", "notification_url"}``; the receiver verifies deliveries
(``webhooks/signatures.py``).
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
from airflow_provider_mlconnector.core.resources import LIST_ONLY, READ_ONLY, Record, Resource
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
#: values per ``in`` filter (``vendorId:in``): keeps the query string short (20-char ids); a longer
#: list is sent as several queries.
VENDORS_PER_FILTER = 50
#: ``verbs=`` of a BILL collection that archives instead of deleting.
ARCHIVABLE = "list get create update archive restore"
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
FILTER_OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "sw"})

SESSION_INVALID = "BDC_1109"
BAD_LOGIN = "BDC_1101"  # wrong username/password, or a user outside the organization
BAD_DEV_KEY = "BDC_1102"
BAD_CREDENTIALS = (BAD_LOGIN, BAD_DEV_KEY)
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

    def __init__(self, *, login_client: ApiClient, config: BillConfig, tokens: TokenStore, conn_id: str) -> None:
        super().__init__(
            tokens=tokens,
            system=SYSTEM,
            credential_key=config.session_key,
            proof=(config.username, config.password, config.dev_key, config.organization_id),
            conn_id=conn_id,
        )
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
                f"BILL refused the login of connection '{self.conn_id}' to organization {cfg.organization_id} "
                f"({exc.code or exc.status}: {exc.message}); {_login_fix(exc)}",
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


def _login_fix(refusal: AuthError) -> str:
    """Which connection field a refused login points at (BILL's code says which check failed)."""
    if refusal.code == BAD_DEV_KEY:
        return "check the developer key (extra dev_key): sandbox and production keys differ"
    if refusal.code == BAD_LOGIN and "organization" in refusal.message.lower():
        return "check the organization id (extra organization_id): this user does not belong to it"
    if refusal.code == BAD_LOGIN:
        return "check the username (login) and the password"
    return "check the username (login), password, developer key (extra dev_key) and organization_id"


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


# ---------------------------------------------------------------------- the resource flavour


def _window(updated_since: datetime | None, updated_before: datetime | None) -> list[str]:
    clauses = []
    if updated_since is not None:
        clauses.append(bill_filter("updatedTime", "gte", updated_since))
    if updated_before is not None:
        clauses.append(bill_filter("updatedTime", "lt", updated_before))
    return clauses


def _is_choice(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset))


class Connect(Resource["BillHook"]):
    """A BILL v3 collection: ``/connect/v3/<path>`` (``root=EVENTS``: the webhooks API).

    Records are bare JSON objects, amounts exact ``Decimal``; lists are ``{"results": [...],
    "nextPage": token}``, 100 per page (an empty page that carries a token means continue). Keyword
    filters become BILL's language: a value is ``field:eq:value``, a list ``field:in:"a,b"`` (sent
    :data:`VENDORS_PER_FILTER` values per query); ``where=`` adds other :func:`bill_filter`
    clauses and ``updated_since``/``updated_before`` the ``updatedTime`` window, all ANDed. BILL
    deletes nothing: ``archive``/``restore`` instead; ``create_many`` is its all-or-nothing bulk create.

    :param root: :data:`CONNECT` or :data:`EVENTS`.
    :param bulk: the most records one bulk create accepts; None when there is no bulk endpoint.
    :param paged: False for the small unpaged lists of the webhooks API (bare arrays).
    """

    created_field = "createdTime"

    def __init__(
        self, path: str, *, root: str = CONNECT, bulk: int | None = None, paged: bool = True, **options: Any
    ) -> None:
        super().__init__(f"{root}/{path}", in_limit=VENDORS_PER_FILTER, **options)
        self.bulk = bulk
        self.paged = paged

    def list(
        self,
        *,
        where: Iterable[str] = (),
        updated_since: datetime | None = None,
        updated_before: datetime | None = None,
        **filters: Any,
    ) -> Iterator[Record]:
        """Every record matching all of the filters, page after page, each once.

        :param where: more :func:`bill_filter` clauses (other operators, other fields).
        :param updated_since: inclusive lower bound on ``updatedTime`` (timezone-aware).
        :param updated_before: exclusive upper bound on ``updatedTime``.
        :param filters: documented filterable fields: a value means ``eq``, a list ``in``.
        """
        return self._listing(filters, where=(*_window(updated_since, updated_before), *where))

    def create_many(self, bodies: Sequence[Mapping[str, Any]]) -> Sequence[Record]:
        """``POST <path>/bulk``: all created, or none (a validation error rejects the whole batch).

        :param bodies: at most :attr:`bulk` records; more raises ``ValueError`` (chunk upstream).
        """
        self._allow("create")
        if self.bulk is None:
            raise TypeError(f"{self.label} has no bulk create")
        if len(bodies) > self.bulk:
            raise ValueError(f"BILL accepts at most {self.bulk} {self.name} per bulk call, got {len(bodies)}")
        if not bodies:
            return []
        path = f"{self._collection_path({})}/bulk"
        return _as_list(self.hook.client.send_json("POST", path, json=_jsonable(list(bodies))))

    def _rows(self, path: str, filters: dict[str, Any], **options: Any) -> Iterator[Record]:
        if not self.paged:
            yield from _as_list(self.hook.client.get_json(path))
            return
        clauses = [
            bill_filter(field, "in", [str(v) for v in value]) if _is_choice(value) else bill_filter(field, "eq", value)
            for field, value in filters.items()
        ]
        params: dict[str, Any] = {"max": PAGE_SIZE, **self.order}
        text = join_filters([*clauses, *options.get("where", ())])
        if text:
            params["filters"] = text
        for row in self.hook.client.paginate(path, CursorPaginator(token=_next_page), params=params, records=_results):
            yield _decimalize(row)

    def _get(self, path: str) -> Record:
        record: Record = _decimalize(self.hook.client.get_json(path))
        return record

    def _create(self, path: str, body: Mapping[str, Any]) -> Record:
        # Not idempotent: a lost answer is WriteOutcomeUnknownError, never re-sent blindly.
        return self._send("POST", path, body)

    def _update(self, path: str, changes: Mapping[str, Any]) -> Record:
        return self._send("PATCH", path, changes, idempotent=True)

    def _archive(self, path: str, *, archived: bool) -> Record:
        return self._send("POST", f"{path}/{'archive' if archived else 'restore'}", {}, idempotent=True)

    def _delete(self, path: str) -> Record | None:
        self.hook.client.send_json("DELETE", path)
        return None

    def _send(self, method: str, path: str, body: Mapping[str, Any], **kwargs: Any) -> Record:
        record: Record = _decimalize(self.hook.client.send_json(method, path, json=_jsonable(body), **kwargs))
        return record


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
    pool: ClassVar[str | None] = BILL_POOL
    max_concurrency: ClassVar[int] = MAX_CONCURRENT_REQUESTS
    default_host: ClassVar[str] = "https://gateway.prod.bill.com"
    default_retry: ClassVar[RetrySettings] = RetrySettings(max_attempts=6, base_wait=1.0)

    # ------------------------------------------------------------------ resources (dossier B5-B11)
    vendors = Connect(
        "vendors",
        verbs=ARCHIVABLE,
        bulk=BULK_VENDORS_LIMIT,
        filters="id archived name accountType billCurrency paymentStatus createdTime updatedTime",
    )
    bills = Connect(
        "bills",
        verbs=ARCHIVABLE,
        bulk=BULK_BILLS_LIMIT,
        filters="id archived vendorId dueDate paymentStatus createdTime updatedTime",
    )
    # Payments with their billPayments[] applications (see bill_applications); created in BILL only.
    payments = Connect("payments", verbs=READ_ONLY, filters="id vendorId createdTime updatedTime")
    chart_of_accounts = Connect(
        "classifications/chart-of-accounts", verbs=ARCHIVABLE, filters="id archived name createdTime updatedTime"
    )
    subscriptions = Connect("subscriptions", root=EVENTS, paged=False, verbs=READ_ONLY, delete="http")
    event_catalog = Connect("events/catalog", root=EVENTS, paged=False, verbs=LIST_ONLY)

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

    @property
    def tenant(self) -> str:
        return self.organization_id

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
        return BillSessionAuth(
            login_client=login_client, config=self.config, tokens=self.state.tokens, conn_id=self.conn_id
        )

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
        info: dict[str, Any] = self.client.get_json(f"{CONNECT}/login/session")
        return info

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

    # ------------------------------------------------------------------ webhook subscriptions

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
        mine = [s for s in self.subscriptions.list() if s.get("notificationUrl") == notification_url]
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
        """The stored security key of ``subscription_id`` (the receiver verifies deliveries with it).

        :param subscription_id: ``metadata.subscriptionId`` of a delivery.
        """
        stored = self.state.tokens.get(SYSTEM, self.config.webhook_key(subscription_id))
        key = (stored or {}).get("security_key")
        if key:
            mask(str(key))
        return str(key) if key else None

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

    # ------------------------------------------------------------------ superseded by the resources
    # Still called by pairs/freshbooks_to_bill.py while the engine is being rewritten; each names
    # its replacement. Delete them once nothing calls them.
