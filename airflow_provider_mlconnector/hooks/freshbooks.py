"""FreshBooks hook: OAuth with single-use refresh tokens, business discovery, typed resource methods.

Token chain. FreshBooks refresh tokens never expire but work **once**; each refresh returns the next
one. The chain lives encrypted in the state store's token store under the credential key
``<client_id>:<sha256(initial refresh token)[:12]>`` (see :func:`credential_key`), so a re-consent
that puts a new initial refresh token in the connection starts a new chain, and every task using
the same connection shares one chain. Refreshes run single-flight under the token store's lock
(:class:`~airflow_provider_mlconnector.core.auth.RotatingOAuth`): the new refresh token is saved
before the new access token is used, N tasks that find the token expired make exactly one refresh
call, and a rejected grant (``invalid_grant``) fails fast with a "re-authorize" message.

Business discovery. Classic accounting paths use ``account_id``, team members ``business_id`` and
ledger accounts ``business_uuid``. All three come from ``/auth/api/v1/users/me``, cached in the token
store next to the chain (``<credential key>#businesses``) so tasks do not call users/me each time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from functools import cached_property
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

import requests

from airflow_provider_mlconnector.core.auth import Credential, HeaderAuth, RotatingOAuth, chain_key, oauth_error_parser
from airflow_provider_mlconnector.core.http import ApiClient, ErrorInfo, ErrorKind
from airflow_provider_mlconnector.core.paging import PageNumberPaginator
from airflow_provider_mlconnector.core.throttle import SlidingWindowBudget
from airflow_provider_mlconnector.exceptions import ConfigurationError
from airflow_provider_mlconnector.hooks.base import MLConnectorHook

SYSTEM = "freshbooks"
API_HOST = "https://api.freshbooks.com"
#: Browser consent page of the real service; a host override (sandbox) serves /auth/oauth/authorize.
AUTHORIZE_URL = "https://auth.freshbooks.com/oauth/authorize"
TOKEN_PATH = "/auth/oauth/token"  # noqa: S105 (a path, not a secret)
USERS_ME_PATH = "/auth/api/v1/users/me"
PAGE_SIZE = 100  # FreshBooks silently caps per_page at 100
CENT = Decimal("0.01")
SIGNATURE_HEADER = "X-FreshBooks-Hmac-SHA256"


class VisState(IntEnum):
    """FreshBooks soft-delete states."""

    ACTIVE = 0
    DELETED = 1
    ARCHIVED = 2


@dataclass(frozen=True)
class _Resource:
    path: str  # below /accounting/account/{account_id}/
    singular: str
    plural: str
    delete: Literal["vis_state", "http"] | None  # how this resource is deleted; None: read-only


#: Classic accounting resources (dossier A7). Bill vendors and bill payments are NOT under bills/.
RESOURCES: dict[str, _Resource] = {
    "bill_vendors": _Resource("bill_vendors/bill_vendors", "bill_vendor", "bill_vendors", "vis_state"),
    "bills": _Resource("bills/bills", "bill", "bills", "vis_state"),
    "bill_payments": _Resource("bill_payments/bill_payments", "bill_payment", "bill_payments", "vis_state"),
    "expenses": _Resource("expenses/expenses", "expense", "expenses", "vis_state"),
    "expense_categories": _Resource("expenses/categories", "category", "categories", None),
    "clients": _Resource("users/clients", "client", "clients", "vis_state"),
    "invoices": _Resource("invoices/invoices", "invoice", "invoices", "http"),
    "payments": _Resource("payments/payments", "payment", "payments", "vis_state"),
    "items": _Resource("items/items", "item", "items", "vis_state"),
    "taxes": _Resource("taxes/taxes", "tax", "taxes", "http"),
    "staff": _Resource("users/staffs", "staff", "staffs", None),
}


# ------------------------------------------------------------------ small public helpers


def credential_key(client_id: str, refresh_token: str) -> str:
    """The token-store key of a chain (see :func:`core.auth.chain_key`); a new consent gives a new key."""
    return chain_key(client_id, refresh_token)


def money(amount: Decimal | int | str, code: str = "USD") -> dict[str, str]:
    """FreshBooks Money ``{"amount": "12.30", "code": "USD"}``. Refuses sub-cent amounts (no silent rounding).

    :param amount: the amount; a float is refused because it cannot carry cents exactly.
    :param code: ISO 4217 currency code.
    """
    if isinstance(amount, (float, bool)):
        raise TypeError("money amounts must be Decimal, int or str, never float")
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"not an amount: {amount!r}") from None
    if not value.is_finite() or value != value.quantize(CENT):
        raise ValueError(f"amount {amount!r} is not a whole number of cents")
    return {"amount": f"{value.quantize(CENT):.2f}", "code": code}


def parse_money(obj: Mapping[str, Any] | None) -> Decimal:
    """The exact ``Decimal`` of a FreshBooks Money object (``{"amount": "659.88", "code": "USD"}``)."""
    if not isinstance(obj, Mapping) or obj.get("amount") in (None, ""):
        raise ValueError(f"not a FreshBooks money object: {obj!r}")
    try:
        value = Decimal(str(obj["amount"]))
    except InvalidOperation:
        raise ValueError(f"not a FreshBooks money object: {obj!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a FreshBooks money object: {obj!r}")
    return value


def line_category_id(line: Mapping[str, Any]) -> int | None:
    """A bill line's expense category id, whichever shape the API used (nested object or flat id)."""
    category = line.get("category")
    source = category if isinstance(category, Mapping) else {"categoryid": line.get("categoryid")}
    ident = source.get("categoryid", source.get("id"))
    return None if ident in (None, "") else int(ident)


def webhook_signature(fields: Mapping[str, Any] | Iterable[tuple[str, Any]], verifier: str) -> str:
    """``X-FreshBooks-Hmac-SHA256`` of a webhook: base64 HMAC-SHA256 keyed by the callback's verifier.

    FreshBooks signs Python's ``json.dumps`` of the form fields in their received order, values as
    strings and default separators, not the raw body.
    """
    pairs = fields.items() if isinstance(fields, Mapping) else fields
    message = json.dumps({str(key): str(value) for key, value in pairs})
    digest = hmac.new(verifier.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_webhook(fields: Mapping[str, Any] | Iterable[tuple[str, Any]], signature: str, verifier: str) -> bool:
    """True when ``signature`` (the header value) matches the form ``fields`` (received order)."""
    from airflow_provider_mlconnector.webhooks import signatures

    pairs = fields.items() if isinstance(fields, Mapping) else fields
    return signatures.form_json_hmac(verifier, [(str(k), str(v)) for k, v in pairs], signature or "")


def freshbooks_error_parser(response: requests.Response) -> ErrorInfo:
    """Every FreshBooks error shape as an :class:`ErrorInfo`.

    * accounting: ``{"response": {"errors": [{"errno", "field", "message", ...}]}}``;
    * newer accounting: ``{"code", "message", "details": [{"reason", "metadata"}]}``;
    * businesses: ``{"errors": {"message", "status", "details": [{"reason", ...}]}}``;
    * events: flat ``{"errno", "message", "details": [...]}``;
    * auth: ``{"error", "error_description"}`` (``unauthenticated`` means the token expired, even
      under a 403).

    Field *values* are left out on purpose: they can hold personal data.
    """
    try:
        body = response.json()
    except ValueError:
        return ErrorInfo(message=response.reason or f"HTTP {response.status_code}")
    if not isinstance(body, dict):
        return ErrorInfo(message=response.reason or f"HTTP {response.status_code}")
    if isinstance(body.get("error"), str):
        code = body["error"]
        kind: ErrorKind | None = "auth_expired" if code in ("unauthenticated", "invalid_token") else None
        return ErrorInfo(message=str(body.get("error_description") or code), code=code, kind=kind)
    inner = body.get("response")
    if isinstance(inner, dict) and isinstance(inner.get("errors"), list) and inner["errors"]:
        entries = [e for e in inner["errors"] if isinstance(e, dict)]
        messages = [_entry_message(e.get("message"), e.get("field")) for e in entries]
        errno = entries[0].get("errno") if entries else None
        return ErrorInfo(message="; ".join(messages) or "error", code=None if errno is None else str(errno))
    errors = body.get("errors")
    if isinstance(errors, dict):
        reasons = [str(d["reason"]) for d in errors.get("details") or [] if isinstance(d, dict) and d.get("reason")]
        message = "; ".join(reasons) or str(errors.get("message") or response.reason)
        return ErrorInfo(message=message, code=str(errors.get("status") or response.status_code))
    if "errno" in body:
        message = str(body.get("message") or response.reason)
        details = body.get("details")
        if isinstance(details, list) and details:
            message = f"{message} ({'; '.join(str(d) for d in details)})"
        return ErrorInfo(message=message, code=str(body["errno"]))
    if isinstance(body.get("details"), list) and body.get("message"):
        reasons = [str(d.get("reason")) for d in body["details"] if isinstance(d, dict) and d.get("reason")]
        message = str(body["message"]) + (f" ({', '.join(reasons)})" if reasons else "")
        return ErrorInfo(message=message, code=str(body.get("code")) if body.get("code") is not None else None)
    return ErrorInfo(message=str(body.get("message") or response.reason or f"HTTP {response.status_code}"))


def _entry_message(message: Any, field: Any) -> str:
    text = str(message or "error")
    return f"{text} (field {field})" if field else text


def search_params(search: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"vendorid": 5, "ids": [1, 2]}`` -> ``{"search[vendorid]": "5", "search[ids][]": ["1", "2"]}``."""
    params: dict[str, Any] = {}
    for key, value in (search or {}).items():
        if isinstance(value, (list, tuple, set, frozenset)):
            params[f"search[{key}][]"] = [str(v) for v in value]
        elif value is not None:
            params[f"search[{key}]"] = str(value)
    return params


# ------------------------------------------------------------------ configuration and auth


@dataclass(frozen=True)
class FreshBooksConfig:
    """What the hook reads from its Airflow connection."""

    api_url: str
    authorize_url: str
    client_id: str
    client_secret: str
    redirect_uri: str
    refresh_token: str | None
    account_id: str | None
    business_id: int | None

    def chain_key(self, conn_id: str) -> str:
        if not self.refresh_token:
            raise ConfigurationError(
                f"connection '{conn_id}' (freshbooks) has no refresh_token: run "
                "`python -m airflow_provider_mlconnector.hooks.freshbooks_consent` and put the refresh token it "
                "prints in the connection's refresh_token extra"
            )
        return credential_key(self.client_id, self.refresh_token)


@dataclass(frozen=True)
class FreshBooksBusiness:
    """One business the identity belongs to, with the three ids FreshBooks services use."""

    account_id: str
    business_id: int
    business_uuid: str
    name: str
    role: str

    def label(self) -> str:
        return f"{self.name} (account_id {self.account_id}, business_id {self.business_id}, role {self.role})"


@dataclass(frozen=True)
class ConsentResult:
    """What the consent helper stored: the chain key, the new refresh token and the businesses."""

    credential_key: str
    refresh_token: str
    businesses: list[FreshBooksBusiness]


class FreshBooksOAuth(RotatingOAuth):
    """:class:`RotatingOAuth` as FreshBooks wants it: client id/secret and ``redirect_uri`` in the form body."""

    def secrets_of(self, credential: Credential) -> list[str]:
        # Only the tokens are secret; masking "Bearer" or the scope list would garble every log line.
        return [str(credential[k]) for k in ("access_token", "refresh_token", "id_token") if credential.get(k)]


def _businesses_from(me: Mapping[str, Any]) -> list[FreshBooksBusiness]:
    found = []
    for membership in me.get("business_memberships") or []:
        business = membership.get("business") or {}
        found.append(
            FreshBooksBusiness(
                account_id=str(business.get("account_id")),
                business_id=int(business["id"]),
                business_uuid=str(business.get("business_uuid")),
                name=str(business.get("name")),
                role=str(membership.get("role")),
            )
        )
    return found


def _result(payload: Any, key: str) -> Any:
    return payload["response"]["result"][key]


def _pages_of(payload: Any) -> int | None:
    pages = payload["response"]["result"].get("pages")
    return None if pages is None else int(pages)


# ------------------------------------------------------------------ the hook


class FreshBooksHook(MLConnectorHook):
    """FreshBooks API hook (connection type ``freshbooks``).

    Connection: ``login`` = OAuth client id, ``password`` = client secret, extras ``refresh_token``
    (the initial one, from the consent helper), ``redirect_uri``, optional ``account_id`` /
    ``business_id`` (required when the identity belongs to several businesses); ``host`` overrides
    ``https://api.freshbooks.com`` (the sandbox).

    :param conn_id: the Airflow connection id (also accepted as ``freshbooks_conn_id=``).
    :param state_store: the state store holding the token chain (default: the configured one).
    :param retry: retry policy of API calls.
    :param sleep: the sleep function used between retries (tests inject a no-op).
    :param requests_per_minute: optional client-side budget; FreshBooks publishes no limit.
    """

    conn_name_attr: ClassVar[str] = "freshbooks_conn_id"
    default_conn_name: ClassVar[str] = "freshbooks_default"
    conn_type: ClassVar[str] = "freshbooks"
    hook_name: ClassVar[str] = "FreshBooks"
    default_host: ClassVar[str] = API_HOST

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        requests_per_minute: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id, **kwargs)
        self._requests_per_minute = requests_per_minute

    # ------------------------------------------------------------------ setup

    @cached_property
    def config(self) -> FreshBooksConfig:
        """The connection parsed once into a :class:`FreshBooksConfig`."""
        conn = self.connection
        api_url = self.host_url()
        overridden = bool((conn.host or "").strip()) and api_url.rstrip("/") != API_HOST
        extras = {name: self.extra(name) for name in ("business_id", "account_id", "redirect_uri", "refresh_token")}
        business_id = extras["business_id"]
        try:
            parsed_business = None if business_id in (None, "") else int(business_id)
        except ValueError:
            raise ConfigurationError(f"connection '{self.conn_id}': business_id must be a number") from None
        account_id = extras["account_id"]
        return FreshBooksConfig(
            api_url=api_url,
            authorize_url=f"{api_url}/auth/oauth/authorize" if overridden else AUTHORIZE_URL,
            client_id=self.require(conn.login, "the OAuth client id (login)"),
            client_secret=self.require(conn.password, "the OAuth client secret (password)"),
            redirect_uri=self.require(extras["redirect_uri"], "redirect_uri (extra)"),
            refresh_token=extras["refresh_token"],
            account_id=str(account_id) if account_id not in (None, "") else None,
            business_id=parsed_business,
        )

    def _api_client(self, auth: Any, error_parser: Any) -> ApiClient:
        kwargs: dict[str, Any] = {"retry": self._retry, "sleep": self._sleep}
        throttle = SlidingWindowBudget([(self._requests_per_minute, 60.0)]) if self._requests_per_minute else None
        return ApiClient(
            system=SYSTEM,
            base_url=self.config.api_url,
            auth=auth,
            error_parser=error_parser,
            throttle=throttle,
            **kwargs,
        )

    def _token_flow(self, key: str) -> FreshBooksOAuth:
        cfg = self.config
        return FreshBooksOAuth(
            token_client=self._api_client(None, oauth_error_parser),
            token_path=TOKEN_PATH,
            client_id=cfg.client_id,
            client_secret=cfg.client_secret,
            initial_refresh_token=cfg.refresh_token,
            extra_fields={"redirect_uri": cfg.redirect_uri},
            tokens=self.state.tokens,
            system=SYSTEM,
            credential_key=key,
        )

    @cached_property
    def credential_key(self) -> str:
        """This connection's token-chain key in the token store (safe to log)."""
        return self.config.chain_key(self.conn_id)

    @cached_property
    def oauth(self) -> FreshBooksOAuth:
        """The single-flight refresh-token flow of this connection's chain."""
        return self._token_flow(self.credential_key)

    def build_client(self) -> ApiClient:
        return self._api_client(self.oauth, freshbooks_error_parser)

    # ------------------------------------------------------------------ identity

    def me(self) -> dict[str, Any]:
        """``GET /auth/api/v1/users/me``: the identity and its business memberships."""
        payload = self.client.get_json(USERS_ME_PATH)
        result: dict[str, Any] = payload["response"]
        return result

    def businesses(self, *, refresh: bool = False) -> list[FreshBooksBusiness]:
        """The identity's businesses, from the token-store cache unless ``refresh`` (then users/me).

        :param refresh: ignore the cache and ask FreshBooks again.
        """
        if not refresh:
            cached = self.state.tokens.get(SYSTEM, f"{self.credential_key}#businesses")
            if cached is not None:
                return [FreshBooksBusiness(**b) for b in cached["businesses"]]
        return self._discover(self.me(), self.credential_key)

    def _discover(self, me: Mapping[str, Any], key: str) -> list[FreshBooksBusiness]:
        found = _businesses_from(me)
        cached = {"identity_id": me.get("identity_id"), "businesses": [asdict(b) for b in found]}
        self.state.tokens.put(SYSTEM, f"{key}#businesses", cached)
        return found

    @cached_property
    def business(self) -> FreshBooksBusiness:
        """The business this connection works on (named by the connection, or the only one)."""
        chosen = self._choose(self.businesses(), final=False)
        if chosen is None:  # the cache may predate a change of the connection: ask FreshBooks once
            chosen = self._choose(self.businesses(refresh=True), final=True)
        assert chosen is not None
        return chosen

    @property
    def account_id(self) -> str:
        """The ``account_id`` of this connection's business (the tenant of accounting and events paths)."""
        return self.business.account_id

    def _choose(self, found: list[FreshBooksBusiness], *, final: bool) -> FreshBooksBusiness | None:
        cfg = self.config
        labels = "; ".join(b.label() for b in found) or "none"
        if cfg.account_id is not None or cfg.business_id is not None:
            for candidate in found:
                if cfg.account_id not in (None, candidate.account_id):
                    continue
                if cfg.business_id not in (None, candidate.business_id):
                    continue
                return candidate
            if not final:
                return None
            wanted = f"account_id {cfg.account_id}" if cfg.account_id else f"business_id {cfg.business_id}"
            raise ConfigurationError(
                f"connection '{self.conn_id}' names {wanted}, but this FreshBooks identity belongs to: {labels}"
            )
        # A "client" membership cannot use the accounting API: never pick one by default.
        usable = [b for b in found if b.role != "client"]
        if len(usable) == 1:
            return usable[0]
        if not usable:
            raise ConfigurationError(f"this FreshBooks identity has no business it can manage (memberships: {labels})")
        raise ConfigurationError(
            f"this FreshBooks identity belongs to several businesses; set business_id (or account_id) in "
            f"connection '{self.conn_id}' to one of: {labels}"
        )

    def test_connection(self) -> tuple[bool, str]:
        """Call users/me and name the business this connection works on."""

        def probe() -> str:
            me = self.me()
            business = self._choose(self._discover(me, self.credential_key), final=True)
            assert business is not None
            who = f"{me.get('first_name', '')} {me.get('last_name', '')}".strip() or me.get("email", "?")
            return f"Connected to FreshBooks as {who}: {business.label()}"

        return self.connection_check(probe)

    # ------------------------------------------------------------------ consent (used by the helper)

    def authorize_url(self, *, state: str, scope: str | None = None) -> str:
        """The browser URL where the user grants this app access.

        :param state: an unguessable value echoed back to the redirect (CSRF protection).
        :param scope: space-separated scopes; the app's registered scopes when omitted.
        """
        cfg = self.config
        params = {"client_id": cfg.client_id, "response_type": "code", "redirect_uri": cfg.redirect_uri, "state": state}
        if scope:
            params["scope"] = scope
        return f"{cfg.authorize_url}?{urlencode(params)}"

    def complete_consent(self, code: str) -> ConsentResult:
        """Exchange an authorization code, store the tokens as a new chain and discover the businesses.

        :param code: the ``code`` FreshBooks appended to the redirect URI (valid 5 minutes, once).
        """
        credential = self._token_flow("consent").exchange({"grant_type": "authorization_code", "code": code.strip()})
        refresh_token = str(credential.get("refresh_token") or "")
        if not refresh_token or not credential.get("access_token"):
            raise ConfigurationError("FreshBooks answered the code exchange without tokens")
        key = credential_key(self.config.client_id, refresh_token)
        self.state.tokens.put(SYSTEM, key, credential)
        bearer = HeaderAuth({"Authorization": f"Bearer {credential['access_token']}"})
        me = self._api_client(bearer, freshbooks_error_parser).get_json(USERS_ME_PATH)["response"]
        found = self._discover(me, key)
        return ConsentResult(credential_key=key, refresh_token=refresh_token, businesses=found)

    # ------------------------------------------------------------------ generic resource access

    def _path(self, resource: str, record_id: Any = None) -> str:
        spec = RESOURCES[resource]
        path = f"/accounting/account/{self.business.account_id}/{spec.path}"
        return path if record_id is None else f"{path}/{record_id}"

    def list_records(
        self,
        resource: str,
        *,
        search: Mapping[str, Any] | None = None,
        include: Iterable[str] = (),
        vis_state: VisState | int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every record of a classic accounting resource, 100 per page until ``pages`` is reached.

        :param resource: a key of :data:`RESOURCES` (``bills``, ``bill_vendors``, ``clients``...).
        :param search: ``search[...]`` filters, e.g. ``{"vendorid": 5101, "ids": [1, 2]}``. FreshBooks
            ignores filters it does not know, so only pass documented ones.
        :param include: ``include[]`` values (``vendor`` on bills).
        :param vis_state: list only this state; by default FreshBooks lists active and archived
            records and hides deleted ones.
        """
        spec = RESOURCES[resource]
        params = search_params(search)
        if vis_state is not None:
            params["search[vis_state]"] = str(int(vis_state))
        if include:
            params["include[]"] = list(include)
        paginator = PageNumberPaginator(size=PAGE_SIZE, total_pages=_pages_of)
        records: Iterator[dict[str, Any]] = self.client.paginate(
            self._path(resource), paginator, params=params, records=lambda payload: list(_result(payload, spec.plural))
        )
        return records

    def get_record(self, resource: str, record_id: int | str, *, include: Iterable[str] = ()) -> dict[str, Any]:
        """One record by id.

        :param resource: a key of :data:`RESOURCES`.
        :param record_id: its id.
        :param include: ``include[]`` values (``vendor`` on bills).
        """
        params = {"include[]": list(include)} if include else None
        record: dict[str, Any] = _result(
            self.client.get_json(self._path(resource, record_id), params=params), RESOURCES[resource].singular
        )
        return record

    def create_record(self, resource: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new record; returns it as FreshBooks stored it.

        A lost answer raises ``WriteOutcomeUnknownError``: look the record up before creating again.

        :param resource: a key of :data:`RESOURCES`.
        :param record: the fields (without the singular wrapper).
        """
        spec = RESOURCES[resource]
        if "vis_state" in record:
            raise ValueError("do not send vis_state when creating a record")
        created: dict[str, Any] = _result(
            self.client.send_json("POST", self._path(resource), json={spec.singular: dict(record)}), spec.singular
        )
        return created

    def update_record(self, resource: str, record_id: int | str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """PUT changed fields. Refuses ``vis_state``: FreshBooks would silently drop every other field.

        :param resource: a key of :data:`RESOURCES`.
        :param record_id: its id.
        :param changes: the fields to change (without the singular wrapper).
        """
        if "vis_state" in changes or "ext_vis_state" in changes:
            raise ValueError(
                "an update must not carry vis_state: FreshBooks would ignore every other field; "
                "use set_vis_state() (archive/delete/restore) separately"
            )
        spec = RESOURCES[resource]
        updated: dict[str, Any] = _result(
            self.client.send_json("PUT", self._path(resource, record_id), json={spec.singular: dict(changes)}),
            spec.singular,
        )
        return updated

    def set_vis_state(self, resource: str, record_id: int | str, vis_state: VisState | int) -> dict[str, Any]:
        """Archive (2), delete (1) or restore (0) a record with a PUT that carries only ``vis_state``.

        :param resource: a key of :data:`RESOURCES` whose records are soft-deleted.
        :param record_id: its id.
        :param vis_state: the new state.
        """
        spec = RESOURCES[resource]
        if spec.delete != "vis_state":
            raise ValueError(f"{resource} records have no vis_state updates")
        updated: dict[str, Any] = _result(
            self.client.send_json(
                "PUT", self._path(resource, record_id), json={spec.singular: {"vis_state": int(VisState(vis_state))}}
            ),
            spec.singular,
        )
        return updated

    # ------------------------------------------------------------------ bill vendors

    def list_bill_vendors(
        self, *, vis_state: VisState | int | None = None, search: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """All bill vendors (active and archived unless ``vis_state`` says otherwise).

        :param vis_state: list only this state (``VisState.DELETED`` to see deletions).
        :param search: extra filters (none are documented for vendors).
        """
        return self.list_records("bill_vendors", vis_state=vis_state, search=search)

    def get_bill_vendor(self, vendor_id: int | str) -> dict[str, Any]:
        """One bill vendor.

        :param vendor_id: its ``vendorid``.
        """
        return self.get_record("bill_vendors", vendor_id)

    def create_bill_vendor(self, vendor: Mapping[str, Any]) -> dict[str, Any]:
        """Create a bill vendor (``vendor_name`` required).

        :param vendor: the vendor fields.
        """
        return self.create_record("bill_vendors", vendor)

    def update_bill_vendor(self, vendor_id: int | str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Update a bill vendor (never with ``vis_state``).

        :param vendor_id: its ``vendorid``.
        :param changes: the fields to change.
        """
        return self.update_record("bill_vendors", vendor_id, changes)

    def delete_bill_vendor(self, vendor_id: int | str) -> dict[str, Any]:
        """Soft-delete a bill vendor (``vis_state`` 1).

        :param vendor_id: its ``vendorid``.
        """
        return self.set_vis_state("bill_vendors", vendor_id, VisState.DELETED)

    # ------------------------------------------------------------------ bills

    def list_bills(
        self,
        *,
        vendor_id: int | None = None,
        statuses: Iterable[str] | None = None,
        currency_code: str | None = None,
        ids: Iterable[int] | None = None,
        include_vendor: bool = False,
        vis_state: VisState | int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Bills, filtered by the documented searches only (FreshBooks has no updated-since filter for bills).

        :param vendor_id: ``search[vendorid]``.
        :param statuses: ``search[statuses][]`` among unpaid, overdue, partial, paid.
        :param currency_code: ``search[currency_code]``.
        :param ids: ``search[ids][]``: fetch these bills (e.g. after a webhook).
        :param include_vendor: embed each bill's ``vendor`` (``include[]=vendor``).
        :param vis_state: list only this state (default: active and archived).
        """
        search: dict[str, Any] = {}
        if vendor_id is not None:
            search["vendorid"] = vendor_id
        if statuses is not None:
            search["statuses"] = list(statuses)
        if currency_code is not None:
            search["currency_code"] = currency_code
        if ids is not None:
            search["ids"] = list(ids)
            if not search["ids"]:
                return iter(())  # an empty "in" list would mean "no filter" to a lenient server
        include = ["vendor"] if include_vendor else []
        return self.list_records("bills", search=search, include=include, vis_state=vis_state)

    def get_bill(self, bill_id: int | str, *, include_vendor: bool = False) -> dict[str, Any]:
        """One bill, with its lines and embedded ``bill_payments``.

        :param bill_id: its id.
        :param include_vendor: embed the ``vendor``.
        """
        return self.get_record("bills", bill_id, include=["vendor"] if include_vendor else [])

    def create_bill(self, bill: Mapping[str, Any]) -> dict[str, Any]:
        """Create a bill (vendorid, issue_date, due_offset_days, currency_code, language, lines).

        :param bill: the bill fields; line amounts as :func:`money` objects.
        """
        return self.create_record("bills", bill)

    def update_bill(self, bill_id: int | str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Update a bill; never sends ``vis_state`` (use :meth:`archive_bill` / :meth:`delete_bill`).

        :param bill_id: its id.
        :param changes: the fields to change (``lines`` replaces all lines).
        """
        return self.update_record("bills", bill_id, changes)

    def archive_bill(self, bill_id: int | str) -> dict[str, Any]:
        """Archive a bill (``vis_state`` 2, still listed).

        :param bill_id: its id.
        """
        return self.set_vis_state("bills", bill_id, VisState.ARCHIVED)

    def delete_bill(self, bill_id: int | str) -> dict[str, Any]:
        """Soft-delete a bill (``vis_state`` 1, hidden from lists).

        :param bill_id: its id.
        """
        return self.set_vis_state("bills", bill_id, VisState.DELETED)

    # ------------------------------------------------------------------ bill payments

    def list_bill_payments(
        self, bill_id: int | str | None = None, *, vis_state: VisState | int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Bill payments: of one bill (embedded in the bill, active only), or all of them.

        No ``billid`` search is documented for bill payments, so a bill's payments are read from the
        bill itself rather than trusting a filter the API might ignore.

        :param bill_id: only this bill's payments.
        :param vis_state: with no ``bill_id``, list only this state.
        """
        if bill_id is not None:
            return iter(self.get_bill(bill_id).get("bill_payments") or [])
        return self.list_records("bill_payments", vis_state=vis_state)

    def get_bill_payment(self, payment_id: int | str) -> dict[str, Any]:
        """One bill payment.

        :param payment_id: its id.
        """
        return self.get_record("bill_payments", payment_id)

    def create_bill_payment(self, payment: Mapping[str, Any]) -> dict[str, Any]:
        """Record a payment against a bill; the bill's paid/outstanding/status follow.

        :param payment: ``billid``, ``amount`` (:func:`money`), ``paid_date``, ``payment_type``, ``note``.
        """
        return self.create_record("bill_payments", payment)

    def update_bill_payment(self, payment_id: int | str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Update a bill payment (never with ``vis_state``).

        :param payment_id: its id.
        :param changes: the fields to change.
        """
        return self.update_record("bill_payments", payment_id, changes)

    def delete_bill_payment(self, payment_id: int | str) -> dict[str, Any]:
        """Soft-delete a bill payment; the bill becomes unpaid/partial again.

        :param payment_id: its id.
        """
        return self.set_vis_state("bill_payments", payment_id, VisState.DELETED)

    # ------------------------------------------------------------------ reference data

    def list_expense_categories(self) -> Iterator[dict[str, Any]]:
        """Expense categories (bill lines point at them by ``categoryid``)."""
        return self.list_records("expense_categories")

    def list_ledger_accounts(self) -> list[dict[str, Any]]:
        """The chart of accounts (``/accounting/businesses/{business_uuid}/ledger_accounts/accounts``)."""
        path = f"/accounting/businesses/{self.business.business_uuid}/ledger_accounts/accounts"
        accounts: list[dict[str, Any]] = self.client.get_json(path)["data"]
        return accounts

    def list_taxes(self) -> Iterator[dict[str, Any]]:
        """Taxes."""
        return self.list_records("taxes")

    def list_staff(self) -> Iterator[dict[str, Any]]:
        """Legacy staff records (``users/staffs``)."""
        return self.list_records("staff")

    def list_team_members(self) -> Iterator[dict[str, Any]]:
        """Team members of the business (``/auth/api/v1/businesses/{business_id}/team_members``)."""
        path = f"/auth/api/v1/businesses/{self.business.business_id}/team_members"

        def pages(payload: Any) -> int:
            meta = payload.get("meta") or {}
            return math.ceil(int(meta.get("total", 0)) / max(1, int(meta.get("per_page", PAGE_SIZE))))

        paginator = PageNumberPaginator(size=PAGE_SIZE, total_pages=pages)
        members: Iterator[dict[str, Any]] = self.client.paginate(
            path, paginator, records=lambda payload: list(payload["response"])
        )
        return members

    # ------------------------------------------------------------------ clients, invoices, payments, items, expenses

    def list_clients(self, *, search: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Clients.

        :param search: filters such as ``{"email": "a@b.c"}``.
        """
        return self.list_records("clients", search=search)

    def get_client(self, client_id: int | str) -> dict[str, Any]:
        """One client.

        :param client_id: its id (``userid``).
        """
        return self.get_record("clients", client_id)

    def create_client(self, client: Mapping[str, Any]) -> dict[str, Any]:
        """Create a client.

        :param client: the client fields.
        """
        return self.create_record("clients", client)

    def update_client(self, client_id: int | str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Update a client.

        :param client_id: its id.
        :param changes: the fields to change.
        """
        return self.update_record("clients", client_id, changes)

    def list_invoices(self, *, search: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Invoices.

        :param search: filters such as ``{"customerid": 88001}``.
        """
        return self.list_records("invoices", search=search)

    def get_invoice(self, invoice_id: int | str) -> dict[str, Any]:
        """One invoice.

        :param invoice_id: its id.
        """
        return self.get_record("invoices", invoice_id)

    def create_invoice(self, invoice: Mapping[str, Any]) -> dict[str, Any]:
        """Create an invoice; FreshBooks creates it as a draft (status 1).

        :param invoice: ``customerid``, ``create_date``, ``lines``...
        """
        return self.create_record("invoices", invoice)

    def update_invoice(self, invoice_id: int | str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Update an invoice.

        :param invoice_id: its id.
        :param changes: the fields to change.
        """
        return self.update_record("invoices", invoice_id, changes)

    def mark_invoice_sent(self, invoice_id: int | str) -> dict[str, Any]:
        """Mark a draft invoice as sent without emailing it (``action_mark_as_sent``).

        :param invoice_id: its id.
        """
        return self.update_record("invoices", invoice_id, {"action_mark_as_sent": True})

    def delete_invoice(self, invoice_id: int | str) -> dict[str, Any]:
        """Delete an invoice (HTTP DELETE, unlike most resources).

        :param invoice_id: its id.
        """
        deleted: dict[str, Any] = _result(
            self.client.send_json("DELETE", self._path("invoices", invoice_id)), RESOURCES["invoices"].singular
        )
        return deleted

    def list_payments(self, *, search: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Invoice payments (accounts receivable).

        :param search: filters such as ``{"invoiceid": 120001}``.
        """
        return self.list_records("payments", search=search)

    def get_payment(self, payment_id: int | str) -> dict[str, Any]:
        """One invoice payment.

        :param payment_id: its id.
        """
        return self.get_record("payments", payment_id)

    def create_payment(self, payment: Mapping[str, Any]) -> dict[str, Any]:
        """Record an invoice payment.

        :param payment: ``invoiceid``, ``amount`` (:func:`money`), ``date``, ``type``.
        """
        return self.create_record("payments", payment)

    def update_payment(self, payment_id: int | str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Update an invoice payment.

        :param payment_id: its id.
        :param changes: the fields to change.
        """
        return self.update_record("payments", payment_id, changes)

    def list_items(self) -> Iterator[dict[str, Any]]:
        """Items (billable products and services)."""
        return self.list_records("items")

    def get_item(self, item_id: int | str) -> dict[str, Any]:
        """One item.

        :param item_id: its id.
        """
        return self.get_record("items", item_id)

    def create_item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Create an item.

        :param item: ``name``, ``unit_cost`` (:func:`money`)...
        """
        return self.create_record("items", item)

    def update_item(self, item_id: int | str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Update an item.

        :param item_id: its id.
        :param changes: the fields to change.
        """
        return self.update_record("items", item_id, changes)

    def list_expenses(self, *, search: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Expenses.

        :param search: filters such as ``{"categoryid": 3005}``.
        """
        return self.list_records("expenses", search=search)

    def get_expense(self, expense_id: int | str) -> dict[str, Any]:
        """One expense.

        :param expense_id: its id.
        """
        return self.get_record("expenses", expense_id)

    def create_expense(self, expense: Mapping[str, Any]) -> dict[str, Any]:
        """Create an expense.

        :param expense: ``categoryid``, ``staffid``, ``date``, ``amount`` (:func:`money`)...
        """
        return self.create_record("expenses", expense)

    def update_expense(self, expense_id: int | str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Update an expense.

        :param expense_id: its id.
        :param changes: the fields to change.
        """
        return self.update_record("expenses", expense_id, changes)

    # ------------------------------------------------------------------ webhooks (callbacks)

    def _callbacks_path(self, callback_id: int | str | None = None) -> str:
        path = f"/events/account/{self.business.account_id}/events/callbacks"
        return path if callback_id is None else f"{path}/{callback_id}"

    def list_callbacks(self, *, event: str | None = None) -> Iterator[dict[str, Any]]:
        """Registered webhook callbacks.

        :param event: only callbacks for this event or its parent noun (``bill`` matches ``bill.create``).
        """
        params = {"search[event]": event} if event else {}
        paginator = PageNumberPaginator(size=PAGE_SIZE, total_pages=_pages_of)
        callbacks: Iterator[dict[str, Any]] = self.client.paginate(
            self._callbacks_path(),
            paginator,
            params=params,
            records=lambda payload: list(_result(payload, "callbacks")),
        )
        return callbacks

    def register_callback(self, event: str, uri: str) -> dict[str, Any]:
        """Register a webhook; FreshBooks then POSTs a ``verifier`` to ``uri`` (see :meth:`verify_callback`).

        :param event: ``bill.create``, a noun such as ``bill`` (all its events), or ``all``.
        :param uri: where FreshBooks posts the events.
        """
        payload = self.client.send_json("POST", self._callbacks_path(), json={"callback": {"event": event, "uri": uri}})
        callback: dict[str, Any] = _result(payload, "callback")
        return callback

    def verify_callback(self, callback_id: int | str, verifier: str) -> dict[str, Any]:
        """Confirm a callback with the verifier FreshBooks posted; keep the verifier, it signs the events.

        :param callback_id: the ``callbackid``.
        :param verifier: the ``verifier`` field of the verification message.
        """
        payload = self.client.send_json(
            "PUT", self._callbacks_path(callback_id), json={"callback": {"verifier": verifier}}
        )
        callback: dict[str, Any] = _result(payload, "callback")
        return callback

    def resend_callback_verification(self, callback_id: int | str) -> dict[str, Any]:
        """Ask FreshBooks to post the verification message again.

        :param callback_id: the ``callbackid``.
        """
        payload = self.client.send_json("PUT", self._callbacks_path(callback_id), json={"callback": {"resend": True}})
        callback: dict[str, Any] = _result(payload, "callback")
        return callback

    def delete_callback(self, callback_id: int | str) -> None:
        """Unregister a webhook.

        :param callback_id: the ``callbackid``.
        """
        self.client.request("DELETE", self._callbacks_path(callback_id))

    @staticmethod
    def verify_webhook(fields: Mapping[str, Any] | Iterable[tuple[str, Any]], signature: str, verifier: str) -> bool:
        """Check an incoming event's ``X-FreshBooks-Hmac-SHA256`` header.

        :param fields: the form fields in received order.
        :param signature: the header value.
        :param verifier: the callback's verifier.
        """
        return verify_webhook(fields, signature, verifier)
