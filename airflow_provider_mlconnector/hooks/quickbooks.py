"""QuickBooks Online hook: OAuth with rotating refresh tokens, queries, a table of entities, CDC.

* **Auth.** OAuth 2.0 per realm. Access tokens live 60 minutes and are refreshed 5 minutes early
  (and once on a 401). The refresh token may change on every refresh, so the newest one is saved,
  encrypted, in the state store under ``("quickbooks", "<realm_id>:<client_id>")`` under the
  store's lock before the new access token is used. The connection's refresh token is only the
  first one.
* **Idempotent writes.** Every POST carries ``requestid``. QuickBooks answers a repeated requestid
  with the original response instead of writing again, so a write whose answer was lost is safely
  retried. Pass :meth:`QuickBooksHook.request_id_for` of the source record; updates mix the
  SyncToken in, so a retry after a stale-object conflict is a new request.
* **Limits.** 500 requests/min and 10 concurrent requests per realm (429 "wait 60 seconds").
  The hook keeps a per-realm budget (480/min, 10 per 1.2 s) and at most 10 requests in flight in
  this process. Across workers, run QuickBooks tasks in an Airflow pool of 10 slots::

      airflow pools set quickbooks_api 10 "QuickBooks Online: 10 concurrent requests per realm"

* **Errors.** ``Fault`` bodies (and the lower-case ``fault`` of 401s) are parsed: 6240 duplicate
  name and validation faults are record errors (dead-letter), 5010 is :class:`StaleObjectError`,
  610 on a read is :class:`~airflow_provider_mlconnector.exceptions.NotFoundError`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import requests

from airflow_provider_mlconnector.core.auth import Credential, HeaderAuth, RotatingOAuth, chain_key
from airflow_provider_mlconnector.core.http import ApiClient, ErrorInfo, RetrySettings
from airflow_provider_mlconnector.core.paging import OffsetPaginator
from airflow_provider_mlconnector.core.resources import Record, Resource
from airflow_provider_mlconnector.core.throttle import ConcurrencyLimit, SlidingWindowBudget, Throttles
from airflow_provider_mlconnector.exceptions import (
    ApiError,
    ConfigurationError,
    FatalApiError,
    NotFoundError,
    RecordRejectedError,
    WriteOutcomeUnknownError,
)
from airflow_provider_mlconnector.hooks.oauth import ConsentError, OAuthApp, OAuthHook, Reached

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state import StateStore

log = logging.getLogger(__name__)

SYSTEM = "quickbooks"
MINOR_VERSION = 75
PRODUCTION_HOST = "https://quickbooks.api.intuit.com"
SANDBOX_HOST = "https://sandbox-quickbooks.api.intuit.com"
OAUTH_ENDPOINT = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
#: Intuit's consent page; a host override (sandbox) serves ``{host}/connect/oauth2``.
AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
#: The Airflow pool QuickBooks tasks should run in (10 slots = the per-realm concurrency cap).
POOL = "quickbooks_api"
MAX_CONCURRENT = 10
#: QuickBooks asks clients to "wait 60 seconds before retrying" a 429 and sends no Retry-After.
THROTTLE_WAIT = 60.0
MAX_RESULTS = 1000
CDC_MAX_OBJECTS = 1000
DUPLICATE_NAME = "6240"
#: duplicate DocNumber (round-2 addendum 2.3: 6140; 6210 is "Account Period Closed").
DUPLICATE_DOC_NUMBER = "6140"
PERIOD_CLOSED = "6210"
#: DocNumber of a PurchaseOrder or Bill: at most 21 characters.
DOC_NUMBER_MAX = 21
#: CompanyInfo ``NameValue`` ``OfferingSku`` values whose companies have purchase orders.
PURCHASE_ORDER_PLANS = ("QuickBooks Online Plus", "QuickBooks Online Advanced")
STALE_OBJECT = "5010"
#: ``POST /batch``: 30 operations per call (the limits page; the batch page says 10) and 40 batch
#: calls a minute per realm, each also one of the 500.
BATCH_MAX_ITEMS = 30
BATCH_PER_MINUTE = 40
OBJECT_NOT_FOUND = "610"
_REQUEST_IDS = uuid.UUID("4f0d6c2e-9a51-5b7e-8c3d-2e1f0a9b8c7d")


class StaleObjectError(RecordRejectedError):
    """QuickBooks refused an update because the SyncToken is stale (Fault 5010).

    Someone changed the object since it was read: re-read it and decide again.
    """


@dataclass(frozen=True)
class QuickBooksConfig:
    """What the connection says. Secrets stay out of ``repr``."""

    realm_id: str
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    environment: str
    api_host: str
    token_url: str
    webhook_verifier_token: str | None = field(repr=False)


_THROTTLES: dict[str, Throttles] = {}
_THROTTLES_LOCK = threading.Lock()


def realm_throttle(realm_id: str) -> Throttles:
    """One throttle per realm per process: every hook on the realm shares its budget and slots."""
    with _THROTTLES_LOCK:
        if realm_id not in _THROTTLES:
            # Margins under 500/min and 10/s absorb clock skew between us and Intuit.
            budget = SlidingWindowBudget([(480, 60.0), (10, 1.2)])
            _THROTTLES[realm_id] = Throttles(ConcurrencyLimit(MAX_CONCURRENT), budget)
        return _THROTTLES[realm_id]


_BATCH_BUDGETS: dict[str, SlidingWindowBudget] = {}


def batch_budget(realm_id: str) -> SlidingWindowBudget:
    """The realm's 40 batch calls a minute (a margin of two for clock skew), shared per process."""
    with _THROTTLES_LOCK:
        return _BATCH_BUDGETS.setdefault(realm_id, SlidingWindowBudget([(BATCH_PER_MINUTE - 2, 60.0)]))


def batch_result(entity: str, item: Mapping[str, Any] | None) -> Record | ApiError:
    """One BatchItemResponse: the entity, or that item's own error (a ValidationFault refuses the record)."""
    if item is not None and isinstance(item.get(entity), dict):
        record: Record = item[entity]
        return record
    if item is None or "Fault" not in item:
        return WriteOutcomeUnknownError("the batch answer has no item for this record: it may exist", system=SYSTEM)
    code, text, fault_type = _fault(item)
    if fault_type == "ValidationFault":
        refused = StaleObjectError if code == STALE_OBJECT else RecordRejectedError
        return refused(text, system=SYSTEM, status=400, code=code)
    return WriteOutcomeUnknownError(f"batch item failed ({fault_type}): {text}", system=SYSTEM, code=code)


def _fault(body: Any) -> tuple[str | None, str, str | None]:
    """(code, "Message: Detail", fault type) from a ``Fault`` or lower-case ``fault`` body."""
    if not isinstance(body, dict):
        return None, "", None
    fault = body.get("Fault") or body.get("fault") or {}
    if not isinstance(fault, dict):
        return None, "", None
    errors = fault.get("Error") or fault.get("error") or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    code = first.get("code")
    message = str(first.get("Message") or first.get("message") or "")
    detail = first.get("Detail") or first.get("detail")
    text = f"{message}: {detail}" if detail else message
    return (str(code) if code else None), text, fault.get("type")


def _is_write(response: requests.Response) -> bool:
    request = response.request
    return request is not None and request.method == "POST" and "/query" not in (request.path_url or "")


def make_error_parser(retry: RetrySettings) -> Callable[[requests.Response], ErrorInfo]:
    """The QuickBooks error parser; a 429's default wait is 60 s, capped by ``retry.max_wait``."""

    def parse(response: requests.Response) -> ErrorInfo:
        try:
            body = response.json()
        except ValueError:
            body = None
        code, text, fault_type = _fault(body)
        status = response.status_code
        message = text or response.reason or f"HTTP {status}"
        if status == 429 or code == "3001":
            header = response.headers.get("Retry-After")
            wait = float(header) if header and header.isdigit() else min(THROTTLE_WAIT, retry.max_wait)
            return ErrorInfo(f"QuickBooks throttled the realm: {message}", code, "rate_limited", wait)
        if status == 401:
            return ErrorInfo(f"QuickBooks rejected the access token: {message}", code or "3200", "auth_expired")
        if status == 403 or fault_type == "AuthorizationFault":
            return ErrorInfo(
                f"QuickBooks refused access (is the app still connected to this realm?): {message}", code, "auth_fatal"
            )
        if status >= 500:
            return ErrorInfo(message, code, "retryable")
        if status in (400, 422) or fault_type == "ValidationFault":
            return ErrorInfo(message, code, "record" if _is_write(response) else "fatal")
        return ErrorInfo(message, code)

    return parse


def _fault_in_success(response: requests.Response) -> ErrorInfo | None:
    """QuickBooks may answer 200 with a ``Fault`` inside."""
    if not response.content.lstrip().startswith(b'{"Fault"'):
        return None
    code, text, _ = _fault(response.json())
    return ErrorInfo(text or "Fault in a 200 response", code, "record" if _is_write(response) else "fatal")


class _QueryPages(OffsetPaginator):
    """STARTPOSITION/MAXRESULTS paging: the statement is rebuilt for every page (1-based)."""

    def __init__(self, statement: str, size: int) -> None:
        super().__init__(size=size, first_offset=1)
        self.statement = statement

    def init_request(self, params: dict[str, Any]) -> None:
        params["query"] = self._page()

    def update_request(self, params: dict[str, Any]) -> None:
        self.offset += self.size
        params["query"] = self._page()

    def _page(self) -> str:
        return f"{self.statement} STARTPOSITION {self.offset} MAXRESULTS {self.size}"


def _literal(value: Any) -> str:
    """One value of a query condition: booleans and numbers bare, strings quoted and escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return QuickBooksHook.quote(str(value))


def where_clause(filters: Mapping[str, Any]) -> str | None:
    """``A = 'x' AND B IN (true, false)`` from ``{"A": "x", "B": [True, False]}`` (no OR exists)."""
    conditions = [
        f"{name} IN ({', '.join(_literal(v) for v in value)})"
        if isinstance(value, (list, tuple, set, frozenset))
        else f"{name} = {_literal(value)}"
        for name, value in filters.items()
    ]
    return " AND ".join(conditions) or None


class QboEntity(Resource["QuickBooksHook"]):
    """A QuickBooks entity (``Vendor``, ``PurchaseOrder``...): read by query, written by POST.

    ``list(DisplayName="Acme")`` runs ``SELECT * FROM Vendor WHERE DisplayName = 'Acme' ORDERBY Id``
    (quotes escaped; ordered by Id so pages neither skip nor repeat); a list value becomes
    ``IN (...)``. Inactive rows are left out unless ``Active`` is filtered: ``list(Active=[True,
    False])`` reads both. ``create``/``update`` take ``request_id=`` (default: a hash of the body);
    ``update`` is sparse on the current SyncToken, re-read once when stale. ``delete`` is the
    entity's rule: ``"operation"`` (``operation=delete`` on the current SyncToken, read first) or
    ``"soft"`` (``Active: false``, for names that QuickBooks never deletes).
    """

    def __init__(self, entity: str, **options: Any) -> None:
        super().__init__(entity, id_field="Id", **options)

    @property
    def entity(self) -> str:
        return self.path

    def list(
        self, *, where: str | None = None, updated_since: datetime | None = None, **filters: Any
    ) -> Iterator[Record]:
        """Every row matching all of the conditions, in Id order, each once.

        :param where: one more condition in the query language (build literals with :meth:`QuickBooksHook.quote`).
        :param updated_since: only rows changed after this datetime (naive means UTC); no 1000-row cap, unlike CDC.
        :param filters: field -> value (``=``) or list of values (``IN``).
        """
        extra = [f"MetaData.LastUpdatedTime > {QuickBooksHook.quote(_iso(updated_since))}"] if updated_since else []
        return self._listing(filters, where=[*extra, *([where] if where else [])])

    def create(
        self, body: Mapping[str, Any], *, request_id: str | None = None, replay: bool = True, **path: Any
    ) -> Record:
        """Create one; ``request_id`` makes a retried POST replay the first answer.

        :param replay: retry a lost answer with the same requestid (QuickBooks replays it). False
            raises ``WriteOutcomeUnknownError`` instead, for callers that look the record up before
            creating again: a repeated requestid has created duplicates (addendum 2.5).
        """
        self._allow("create")
        hook = self.hook
        rid = request_id or hook._default_request_id(f"{self.entity.lower()}.create", body)
        created: Record = hook._post(self.entity.lower(), body, rid, idempotent=replay)[self.entity]
        return created

    def create_many(
        self, bodies: Sequence[Mapping[str, Any]], *, request_id: str | None = None
    ) -> Sequence[Record | ApiError]:
        """Create up to ``BATCH_MAX_ITEMS`` in one ``POST /batch``; QuickBooks answers each item apart.

        :returns: in the order of ``bodies``, each created record or that item's own error
            (``RecordRejectedError`` for a ValidationFault: the others are written all the same).
            A lost answer raises ``WriteOutcomeUnknownError`` and is never re-sent blindly.
        """
        self._allow("create")
        return self.hook.batch_create(self.entity, bodies, request_id=request_id)

    def update(
        self,
        record_id: Any,
        changes: Mapping[str, Any],
        *,
        request_id: str | None = None,
        current: Mapping[str, Any] | None = None,
        **path: Any,
    ) -> Record:
        """Sparse update on the current SyncToken, re-read once if someone wrote meanwhile.

        :param current: the record as just read (its SyncToken is used); read here when omitted.
        """
        self._allow("update")
        base = current if current is not None else self.get(record_id)
        return self.hook._sparse_update(self.entity, str(record_id), changes, str(base["SyncToken"]), request_id)

    def _rows(self, path: str, filters: dict[str, Any], **options: Any) -> Iterator[Record]:
        conditions = [c for c in (where_clause(filters), *options.get("where", ())) if c]
        return self.hook.query_entities(self.entity, " AND ".join(conditions) or None)

    def _get(self, path: str) -> Record:
        return self.hook._read(self.entity, path.rsplit("/", 1)[-1])

    def _delete(self, path: str) -> Record | None:
        entity_id = path.rsplit("/", 1)[-1]
        if self.delete_rule == "soft":
            return self.update(entity_id, {"Active": False})
        body = {"Id": entity_id, "SyncToken": str(self.hook._read(self.entity, entity_id)["SyncToken"])}
        rid = self.hook._default_request_id(f"{self.entity.lower()}.delete", body)
        deleted: Record = self.hook._post(self.entity.lower(), body, rid, {"operation": "delete"})[self.entity]
        return deleted


class QuickBooksHook(OAuthHook):
    """QuickBooks Online API hook (connection type ``quickbooks``).

    Connection: login = OAuth client id, password = client secret, extras ``realm_id``,
    ``refresh_token`` (the first one), ``environment`` (``sandbox``/``production``), optional
    ``token_url`` and ``webhook_verifier_token``. ``host`` overrides the API host (then the token
    endpoint follows it: ``{host}/oauth2/v1/tokens/bearer``).

    :param conn_id: the Airflow connection id.
    :param state_store: where rotated refresh tokens are kept (encrypted).
    :param retry: retry policy of API calls.
    :param sleep: how to wait between retries (tests inject a recorder).
    :param clock: epoch-seconds clock used for token expiry (tests pass the sandbox's).
    """

    conn_name_attr: ClassVar[str] = "quickbooks_conn_id"
    default_conn_name: ClassVar[str] = "quickbooks_default"
    conn_type: ClassVar[str] = "quickbooks"
    hook_name: ClassVar[str] = "QuickBooks Online"
    default_host: ClassVar[str] = PRODUCTION_HOST
    pool: ClassVar[str | None] = POOL
    max_concurrency: ClassVar[int] = MAX_CONCURRENT

    vendors = QboEntity("Vendor", delete="soft", filters="Id DisplayName Active")
    purchase_orders = QboEntity("PurchaseOrder", delete="operation", filters="Id DocNumber")
    bills = QboEntity("Bill", delete="operation", filters="Id DocNumber")
    accounts = QboEntity("Account", verbs="list get", filters="Id AcctNum Name Active AccountType")

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        state_store: StateStore | None = None,
        clock: Callable[[], float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id, state_store=state_store, **kwargs)
        self._clock = clock if clock is not None else time.time

    # ------------------------------------------------------------------ configuration

    consent_scope: ClassVar[str | None] = ACCOUNTING_SCOPE

    @cached_property
    def config(self) -> QuickBooksConfig:
        setting = self.extra  # an alias: ruff's S610 mistakes .extra() for Django's QuerySet.extra
        realm_id = self._realm(self.require(setting("realm_id"), "extra realm_id (the consent helper prints it)"))
        assert realm_id is not None  # require() refused an empty one
        return QuickBooksConfig(
            realm_id=realm_id,
            client_id=self.require(self.connection.login, "login (OAuth client id)"),
            client_secret=self.require(self.connection.password, "password (OAuth client secret)"),
            refresh_token=setting("refresh_token"),
            environment=self._environment,
            api_host=self._api_host,
            token_url=self._token_url,
            webhook_verifier_token=setting("webhook_verifier_token"),
        )

    @property
    def _environment(self) -> str:
        environment = str(self.extra("environment", "production")).lower()
        if environment not in ("sandbox", "production"):
            raise ConfigurationError(
                f"connection '{self.conn_id}': environment must be 'sandbox' or 'production', not {environment!r}"
            )
        return environment

    @property
    def _overridden(self) -> bool:
        return bool((self.connection.host or "").strip())

    @property
    def _api_host(self) -> str:
        return self.host_url(SANDBOX_HOST if self._environment == "sandbox" else PRODUCTION_HOST)

    @property
    def _token_url(self) -> str:
        default = f"{self._api_host}/oauth2/v1/tokens/bearer" if self._overridden else OAUTH_ENDPOINT
        return str(self.extra("token_url") or default)

    def _realm(self, value: Any) -> str | None:
        if value in (None, ""):
            return None
        if not str(value).isdigit():
            raise ConfigurationError(f"connection '{self.conn_id}': realm_id must be the numeric QuickBooks company id")
        return str(value)

    @property
    def oauth_app(self) -> OAuthApp:
        """The app as consent needs it: no realm_id yet (the consent redirect brings it)."""
        return OAuthApp(
            client_id=self.require(self.connection.login, "login (OAuth client id)"),
            client_secret=self.require(self.connection.password, "password (OAuth client secret)"),
            redirect_uri=self.require(self.extra("redirect_uri"), "extra redirect_uri (registered for the app)"),
            authorize_url=f"{self._api_host}/connect/oauth2" if self._overridden else AUTHORIZE_URL,
        )

    def token_flow(self, credential_key: str) -> RotatingOAuth:
        token_url = self._token_url
        return RotatingOAuth(
            token_client=self.token_client(token_url),
            token_path=token_url,
            client_id=self.require(self.connection.login, "login (OAuth client id)"),
            client_secret=self.require(self.connection.password, "password (OAuth client secret)"),
            initial_refresh_token=self.extra("refresh_token"),
            reauthorize=self.consent_command(),
            client_auth="basic",
            tokens=self.state.tokens,
            system=SYSTEM,
            credential_key=credential_key,
            conn_id=self.conn_id,
            expiry_margin=300.0,
            clock=self._clock,
        )

    @cached_property
    def auth(self) -> RotatingOAuth:
        config = self.config
        return self.token_flow(chain_key(config.client_id, config.refresh_token, config.realm_id))

    def chain_key_for(self, refresh_token: str, redirect: Mapping[str, str]) -> str:
        return chain_key(self.oauth_app.client_id, refresh_token, self._consented_realm(redirect))

    def _consented_realm(self, redirect: Mapping[str, str]) -> str:
        realm = self._realm(redirect.get("realmId")) or self._realm(self.extra("realm_id"))
        if realm is None:
            raise ConsentError(
                "QuickBooks names the company in the redirect (realmId=...): paste the whole redirected URL, "
                "or set realm_id in the connection first"
            )
        return realm

    def reached_by(self, credential: Credential, credential_key: str, redirect: Mapping[str, str]) -> Reached:
        """The company the consent was given for; its realm id goes in the connection."""
        realm = self._consented_realm(redirect)
        client = ApiClient(
            system=SYSTEM,
            base_url=f"{self._api_host}/v3/company/{realm}",
            auth=HeaderAuth({"Authorization": f"Bearer {credential['access_token']}"}),
            error_parser=make_error_parser(self._retry),
            retry=self._retry,
            sleep=self._sleep,
        )
        info = client.get_json(f"companyinfo/{realm}", params={"minorversion": str(MINOR_VERSION)})["CompanyInfo"]
        notes = []
        configured = self._realm(self.extra("realm_id"))
        if configured not in (None, realm):
            notes.append(f"The connection named realm {configured}; this consent is for realm {realm}.")
        return Reached(
            lines=[f"QuickBooks Online company '{info.get('CompanyName')}' (realm {realm}, {self._environment})"],
            extras={"realm_id": realm},
            notes=notes,
        )

    def build_client(self) -> ApiClient:
        config = self.config
        client = ApiClient(
            system=SYSTEM,
            base_url=f"{config.api_host}/v3/company/{config.realm_id}",
            auth=self.auth,
            error_parser=make_error_parser(self._retry),
            success_body_error=_fault_in_success,
            throttle=realm_throttle(config.realm_id),
            retry=self._retry,
            sleep=self._sleep,
        )
        # Every QuickBooks call must carry the minor version; session params ride on each request.
        client.session.params = {"minorversion": str(MINOR_VERSION)}
        return client

    @property
    def tenant(self) -> str:
        """The realm (company) id: every mapping is scoped by it."""
        return self.config.realm_id

    def test_connection(self) -> tuple[bool, str]:
        """Read CompanyInfo, name the company reached and warn when it cannot hold purchase orders."""

        def probe() -> str:
            info = self.get_company_info()
            reached = (
                f"Connected to QuickBooks Online company '{info.get('CompanyName')}' "
                f"(realm {self.config.realm_id}, {self.config.environment})"
            )
            warning = purchase_order_warning(info)
            return f"{reached}. Warning: {warning}" if warning else reached

        return self.connection_check(probe)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def request_id_for(*parts: str) -> str:
        """A deterministic ``requestid`` (≤ 50 chars) for a write, e.g. ``(pair, entity, source_id, fingerprint)``.

        :param parts: what identifies the intended write; the same parts give the same id.
        """
        return str(uuid.uuid5(_REQUEST_IDS, "\x1f".join(parts)))

    @staticmethod
    def quote(value: str) -> str:
        """A query string literal: single quotes, with ``\\`` and ``'`` escaped by a backslash.

        :param value: the raw value, e.g. a DisplayName like ``Dianne's Auto Shop``.
        """
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def _default_request_id(self, operation: str, body: Mapping[str, Any]) -> str:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return self.request_id_for(self.config.realm_id, operation, canonical)

    def _post(
        self,
        path: str,
        body: Mapping[str, Any],
        request_id: str,
        params: Mapping[str, str] | None = None,
        *,
        idempotent: bool = True,
    ) -> Any:
        try:
            # idempotent=True: QuickBooks replays a repeated requestid, so a lost answer is retried.
            return self.client.send_json(
                "POST", path, params={**(params or {}), "requestid": request_id}, json=body, idempotent=idempotent
            )
        except RecordRejectedError as exc:
            if exc.code == STALE_OBJECT and not isinstance(exc, StaleObjectError):
                raise StaleObjectError(
                    exc.message,
                    system=exc.system,
                    status=exc.status,
                    code=exc.code,
                    request_id=exc.request_id,
                    body=exc.body,
                ) from None
            raise

    def batch_create(
        self, entity: str, bodies: Sequence[Mapping[str, Any]], *, request_id: str | None = None
    ) -> list[Record | ApiError]:
        """See :meth:`QboEntity.create_many`. Items are matched to answers by ``bId``, never by order."""
        if not 0 < len(bodies) <= BATCH_MAX_ITEMS:
            raise ValueError(f"a QuickBooks batch takes 1 to {BATCH_MAX_ITEMS} operations, not {len(bodies)}")
        items = [{"bId": f"b{i}", "operation": "create", entity: dict(body)} for i, body in enumerate(bodies)]
        rid = request_id or self._default_request_id(f"batch.{entity.lower()}.create", {"items": items})
        budget = batch_budget(self.config.realm_id)
        budget.acquire()
        try:
            answer = self._post("batch", {"BatchItemRequest": items}, rid, idempotent=False)
        finally:
            budget.release()
        answered = answer.get("BatchItemResponse") if isinstance(answer, dict) else None
        by_id = {str(item.get("bId")): item for item in answered or [] if isinstance(item, dict)}
        return [batch_result(entity, by_id.get(f"b{i}")) for i in range(len(bodies))]

    def _read(self, entity: str, entity_id: str) -> dict[str, Any]:
        try:
            payload = self.client.get_json(f"{entity.lower()}/{entity_id}")
        except FatalApiError as exc:
            if exc.code == OBJECT_NOT_FOUND and not isinstance(exc, NotFoundError):
                raise NotFoundError(
                    exc.message, system=exc.system, status=exc.status, code=exc.code, request_id=exc.request_id
                ) from None
            raise
        result: dict[str, Any] = payload[entity]
        return result

    # ------------------------------------------------------------------ reads

    def get_company_info(self) -> dict[str, Any]:
        """The realm's ``CompanyInfo`` (``CompanyName``, ``LegalName``, ``Country``...)."""
        payload = self.client.get_json(f"companyinfo/{self.config.realm_id}")
        info: dict[str, Any] = payload["CompanyInfo"]
        return info

    def query(self, statement: str, *, page_size: int = MAX_RESULTS) -> Iterator[dict[str, Any]]:
        """Run ``SELECT * FROM <Entity> [WHERE ...] [ORDERBY ...]`` and yield every row, page by page.

        :param statement: the statement without STARTPOSITION/MAXRESULTS (the hook adds them).
        :param page_size: rows per page, at most 1000.
        """
        if not 1 <= page_size <= MAX_RESULTS:
            raise ValueError(f"page_size must be between 1 and {MAX_RESULTS}")
        words = statement.split()
        if len(words) < 4 or words[0].upper() != "SELECT" or words[2].upper() != "FROM":
            raise ValueError("statement must look like SELECT * FROM <Entity> ...")
        if any(w.upper() in ("STARTPOSITION", "MAXRESULTS") for w in words):
            raise ValueError("leave STARTPOSITION/MAXRESULTS out: the hook pages by itself")
        entity = words[3]

        def rows(payload: Any) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (payload or {}).get("QueryResponse", {}).get(entity, [])
            return found

        yield from self.client.paginate("query", _QueryPages(statement, page_size), records=rows)

    def query_entities(
        self, entity: str, where: str | None = None, *, order_by: str | None = "Id", page_size: int = MAX_RESULTS
    ) -> Iterator[dict[str, Any]]:
        """Every ``entity`` row matching ``where``, in a stable order so pages neither skip nor repeat.

        :param entity: ``Vendor``, ``PurchaseOrder``, ``Account``... (case-sensitive).
        :param where: the condition after WHERE, e.g. ``"Active = true"``; build literals with :meth:`quote`.
        :param order_by: ORDERBY clause (``None`` for the service's order).
        :param page_size: rows per page, at most 1000.
        """
        statement = f"SELECT * FROM {entity}"  # noqa: S608 - QuickBooks' query language, not SQL
        if where:
            statement += f" WHERE {where}"
        if order_by:
            statement += f" ORDERBY {order_by}"
        return self.query(statement, page_size=page_size)

    def get_changes(self, entities: Sequence[str], changed_since: datetime) -> dict[str, list[dict[str, Any]]]:
        """Change data capture: objects of ``entities`` changed after ``changed_since`` (≤ 30 days back).

        Deleted objects come back as ``{"Id": ..., "status": "Deleted"}``. One response holds at most
        1000 objects; when that many come back, read the rest with ``<entity>.list(updated_since=...)``.

        :param entities: entity names, e.g. ``["Vendor", "PurchaseOrder"]``.
        :param changed_since: a timezone-aware datetime (naive means UTC).
        """
        payload = self.client.get_json(
            "cdc", params={"entities": ",".join(entities), "changedSince": _iso(changed_since)}
        )
        changes: dict[str, list[dict[str, Any]]] = {entity: [] for entity in entities}
        for block in payload.get("CDCResponse", []):
            # The nesting varies (one QueryResponse per entity, or one for all): walk every one.
            for response in block.get("QueryResponse", []):
                for key, rows in response.items():
                    if key in changes and isinstance(rows, list):
                        changes[key].extend(rows)
        if sum(len(rows) for rows in changes.values()) >= CDC_MAX_OBJECTS:
            log.warning(
                "quickbooks CDC returned %d objects, its cap: read the rest with <entity>.list(updated_since=...)",
                CDC_MAX_OBJECTS,
            )
        return changes

    # ------------------------------------------------------------------ SyncToken updates (QboEntity.update)

    def _sparse_update(
        self, entity: str, entity_id: str, changes: Mapping[str, Any], sync_token: str, request_id: str | None
    ) -> dict[str, Any]:
        base = request_id or self._default_request_id(f"{entity.lower()}.update.{entity_id}", changes)
        token = sync_token
        for attempt in (1, 2):
            body = {**changes, "Id": entity_id, "SyncToken": token, "sparse": True}
            # A new SyncToken makes a new request: a replayed stale answer would never succeed.
            rid = self.request_id_for(base, token)
            try:
                payload = self._post(entity.lower(), body, rid)
            except StaleObjectError:
                if attempt == 2:
                    raise
                token = str(self._read(entity, entity_id)["SyncToken"])
                log.info("quickbooks %s %s changed meanwhile; retrying on SyncToken %s", entity, entity_id, token)
                continue
            updated: dict[str, Any] = payload[entity]
            return updated
        raise AssertionError("unreachable")


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat(timespec="seconds")


def offering(company_info: Mapping[str, Any]) -> str | None:
    """The plan (``OfferingSku`` of CompanyInfo's ``NameValue``), when QuickBooks says it."""
    for item in company_info.get("NameValue") or []:
        if isinstance(item, Mapping) and item.get("Name") == "OfferingSku":
            return str(item.get("Value") or "") or None
    return None


def purchase_order_warning(company_info: Mapping[str, Any]) -> str | None:
    """Why this company may refuse purchase orders, or None when its plan has them.

    POs need QuickBooks Online Plus or Advanced *and* Settings > Expenses > "Use purchase orders";
    the API exposes the plan, not the setting, and its error when POs are off is undocumented.
    """
    plan = offering(company_info)
    if plan in PURCHASE_ORDER_PLANS:
        return None
    if plan is None:
        return (
            "QuickBooks did not say the plan; purchase orders need Plus or Advanced with "
            "'Use purchase orders' turned on (or use the Bill mode)"
        )
    return f"the plan is {plan}: purchase orders need Plus or Advanced (or use the Bill mode)"
