"""In-memory FreshBooks: OAuth app and tokens, identities, businesses and their accounting data.

Actions are named like the vendor's endpoints and raise the vendor's errors (``errno`` numbers from
https://www.freshbooks.com/api/errors); :mod:`.api` renders them in each service's own shape.
Money is ``Decimal`` inside and ``{"amount": "<2 decimals>", "code": "USD"}`` outside.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import random
import re
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from airflow_provider_mlconnector.sandbox.freshbooks import demo

EASTERN = ZoneInfo("America/New_York")
CENT = Decimal("0.01")
MAX_PER_PAGE = 100
CODE_LIFETIME = 300.0  # authorization codes live 5 minutes [FB-AUTH]
SCOPES = (
    "user:profile:read user:bills:read user:bills:write user:bill_vendors:read user:bill_vendors:write "
    "user:bill_payments:read user:bill_payments:write user:expenses:read user:expenses:write "
    "user:clients:read user:clients:write user:invoices:read user:invoices:write user:payments:read "
    "user:payments:write user:teams:read user:business:read"
)
#: FB-JS ``BillPayments.ts`` payment types.
BILL_PAYMENT_TYPES = frozenset(
    [
        "Check",
        "Credit",
        "Cash",
        "Bank Transfer",
        "Credit Card",
        "Debit",
        "PayPal",
        "2Checkout",
        "VISA",
        "MASTERCARD",
        "DISCOVER",
        "AMEX",
        "DINERS",
        "JCB",
        "ACH",
        "Other",
    ]
)
#: Nouns accepted by the callbacks service (Zapier's 2013 list + bills from the 3P spec).
EVENT_NOUNS = frozenset(
    [
        "bill",
        "bill_vendor",
        "bill_payment",
        "category",
        "client",
        "estimate",
        "expense",
        "invoice",
        "item",
        "payment",
        "project",
        "recurring",
        "service",
        "staff",
        "task",
        "time_entry",
        "credit_note",
    ]
)
EVENT_VERBS = ("create", "update", "delete")
INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in "
    "the authorization request, or was issued to another client."
)
INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication included, or unsupported "
    "authentication method."
)


# ------------------------------------------------------------------ errors (vendor-named)


class FreshBooksError(Exception):
    """An error answer; ``validation`` ones take their HTTP status from a switch (UNCONFIRMED)."""

    status = 400
    errno = 0
    validation = False

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        obj: str | None = None,
        value: Any = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.object = obj
        self.value = None if value is None else str(value)
        self.details = details or []


class RequiredField(FreshBooksError):
    errno = 1001
    validation = True


class AccessDenied(FreshBooksError):
    errno = 1003
    status = 403


class InvalidValue(FreshBooksError):
    errno = 1004
    validation = True


class ParseError(FreshBooksError):
    errno = 1005


class DeletedResource(FreshBooksError):
    errno = 1011
    validation = True


class UnknownResource(FreshBooksError):
    errno = 1012
    status = 404


class UnknownReference(UnknownResource):
    """A body names a record that does not exist (a write validation error, not a 404)."""

    validation = True


class InvalidPerPage(FreshBooksError):
    errno = 1013


class InvalidPage(FreshBooksError):
    errno = 1014


class Unauthenticated(FreshBooksError):
    status = 401


class RateLimited(FreshBooksError):
    status = 429


class OAuthError(Exception):
    """A token/authorize endpoint error: ``{"error", "error_description"}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


# ------------------------------------------------------------------ money, dates


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def money(amount: Decimal, code: str) -> dict[str, str]:
    """FreshBooks Money: the amount as a string with exactly two decimals."""
    return {"amount": f"{quantize(amount):.2f}", "code": code}


def parse_decimal(value: Any, field: str, obj: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise InvalidValue(f"{field} must be a number.", field=field, obj=obj, value=value)
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidValue(f"{field} must be a number.", field=field, obj=obj, value=value) from None
    if not parsed.is_finite():
        raise InvalidValue(f"{field} must be a number.", field=field, obj=obj, value=value)
    return parsed


def parse_money(value: Any, field: str, obj: str, default_code: str) -> tuple[Decimal, str]:
    if not isinstance(value, Mapping) or value.get("amount") in (None, ""):
        raise RequiredField(f"Field {field} is required.", field=field, obj=obj)
    code = str(value.get("code") or default_code).upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise InvalidValue("Invalid currency code.", field=f"{field}.code", obj=obj, value=code)
    return parse_decimal(value["amount"], field, obj), code


def parse_date(value: Any, field: str, obj: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidValue(f"{field} must be a date (YYYY-MM-DD).", field=field, obj=obj, value=value) from None


def parse_int(value: Any, field: str, obj: str) -> int:
    if isinstance(value, bool):
        raise InvalidValue(f"{field} must be an integer.", field=field, obj=obj, value=value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidValue(f"{field} must be an integer.", field=field, obj=obj, value=value) from None


def plain(number: Decimal) -> str:
    """A decimal without exponent or trailing zeros: ``10``, ``1.5``."""
    return format(number.normalize(), "f")


@functools.lru_cache(maxsize=8192)
def fmt_time(ts: float, zone: str) -> str:
    """Accounting datetimes: ``YYYY-MM-DD HH:MM:SS`` with no zone (UTC or US/Eastern per field)."""
    tz = EASTERN if zone == "Eastern" else timezone.utc
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def iso_z(ts: float, *, micro: bool = False) -> str:
    text = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f" if micro else "%Y-%m-%dT%H:%M:%S")
    return text + "Z"


def parse_instant(value: str, zone: str) -> float | None:
    """A ``search[updated_min]`` value (date or date-time) as epoch seconds, or None if unparseable."""
    tz = EASTERN if zone == "Eastern" else timezone.utc
    text = value.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz).timestamp()
        except ValueError:
            continue
    return None


def webhook_signature(fields: Iterable[tuple[str, str]], verifier: str) -> str:
    """``X-FreshBooks-Hmac-SHA256``: base64 HMAC-SHA256 over Python ``json.dumps`` of the form fields."""
    message = json.dumps({key: str(value) for key, value in fields})
    digest = hmac.new(verifier.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# ------------------------------------------------------------------ resources


@dataclass(frozen=True)
class Resource:
    """One classic accounting resource under ``/accounting/account/{account_id}/``."""

    key: str
    path: str
    singular: str
    plural: str
    id_fields: tuple[str, ...]
    noun: str | None  # webhook event noun
    delete: str | None  # "vis_state" (soft delete by PUT), "http" (DELETE), None (read-only)
    first_id: int
    timestamps: tuple[tuple[str, str, str], ...]  # (field, "created"|"updated", "UTC"|"Eastern"|"vendor")
    required: tuple[str, ...] = ()
    #: False: the API has no create (legacy staff: "Do not create staff here" [round-2 addendum 1.7]).
    creatable: bool = True

    @property
    def writable(self) -> bool:
        return self.delete is not None


RESOURCES: tuple[Resource, ...] = (
    Resource(
        "bill_vendors",
        "bill_vendors/bill_vendors",
        "bill_vendor",
        "bill_vendors",
        ("vendorid",),
        "bill_vendor",
        "vis_state",
        6001,
        (("created_at", "created", "vendor"), ("updated_at", "updated", "vendor")),
        ("vendor_name",),
    ),
    Resource(
        "bills",
        "bills/bills",
        "bill",
        "bills",
        ("id",),
        "bill",
        "vis_state",
        8001,
        (("created_at", "created", "UTC"), ("updated_at", "updated", "UTC")),
    ),
    Resource(
        "bill_payments",
        "bill_payments/bill_payments",
        "bill_payment",
        "bill_payments",
        ("id",),
        "bill_payment",
        "vis_state",
        9101,
        (),
    ),
    Resource(
        "expenses",
        "expenses/expenses",
        "expense",
        "expenses",
        ("id", "expenseid"),
        "expense",
        "vis_state",
        64101,
        (("updated", "updated", "Eastern"),),
        ("categoryid", "staffid", "date", "amount"),
    ),
    Resource(
        "categories",
        "expenses/categories",
        "category",
        "categories",
        ("id", "categoryid"),
        None,
        None,
        3101,
        (("created_at", "created", "Eastern"), ("updated_at", "updated", "Eastern")),
    ),
    Resource(
        "clients",
        "users/clients",
        "client",
        "clients",
        ("id", "userid"),
        "client",
        "vis_state",
        88101,
        (("signup_date", "created", "UTC"), ("updated", "updated", "Eastern")),
    ),
    Resource(
        "invoices",
        "invoices/invoices",
        "invoice",
        "invoices",
        ("id", "invoiceid"),
        "invoice",
        "http",
        120101,
        (("created_at", "created", "Eastern"), ("updated", "updated", "Eastern")),
        ("customerid", "create_date"),
    ),
    Resource(
        "payments",
        "payments/payments",
        "payment",
        "payments",
        ("id", "logid"),
        "payment",
        "vis_state",
        33101,
        (("updated", "updated", "Eastern"),),
        ("invoiceid", "amount", "date"),
    ),
    Resource(  # round-2 addendum 1.3; generic CRUD, delete = PUT vis_state 1
        "credit_notes",
        "credit_notes/credit_notes",
        "credit_note",
        "credit_notes",
        ("id", "creditid"),
        "credit_note",
        "vis_state",
        47101,
        (("updated", "updated", "Eastern"),),
        ("clientid", "lines"),
    ),
    Resource(
        "items",
        "items/items",
        "item",
        "items",
        ("id", "itemid"),
        "item",
        "vis_state",
        2301,
        (("updated", "updated", "Eastern"),),
        ("name",),
    ),
    Resource(
        "taxes",
        "taxes/taxes",
        "tax",
        "taxes",
        ("id", "taxid"),
        None,
        "http",
        21,
        (("updated", "updated", "Eastern"),),
        ("name", "amount"),
    ),
    Resource(
        "staffs",
        "users/staffs",
        "staff",
        "staffs",
        ("id", "userid"),
        None,
        "vis_state",  # update, and delete = PUT vis_state 1 [round-2 addendum 1.7]; never created
        11,
        (("signup_date", "created", "UTC"), ("updated", "updated", "Eastern")),
        creatable=False,
    ),
)
RESOURCE = {spec.key: spec for spec in RESOURCES}

#: Documented searches per resource: search key -> (match kind, record field). Others are ignored.
SEARCHES: dict[str, dict[str, tuple[str, str]]] = {
    "bills": {
        "vendorid": ("eq_int", "vendorid"),
        "statuses": ("in_status", "status"),
        "currency_code": ("eq", "currency_code"),
        "ids": ("in_int", "id"),
    },
    "clients": {"email": ("eq", "email"), "organization_like": ("like", "organization"), "userids": ("in_int", "id")},
    "invoices": {"customerid": ("eq_int", "customerid"), "invoice_number": ("eq", "invoice_number")},
    "payments": {"invoiceid": ("eq_int", "invoiceid")},
    "items": {"sku": ("eq", "sku")},  # "Equals" [round-2 addendum 1.5]
    "expenses": {
        "categoryid": ("eq_int", "categoryid"),
        "staffid": ("eq_int", "staffid"),  # round-2 addendum 1.6
        "staffids": ("in_int", "staffid"),
    },
    "staffs": {"email_like": ("like", "email"), "userids": ("in_int", "id")},  # round-2 addendum 1.7
}
#: Searches that real FreshBooks may or may not honour (UNCONFIRMED: switch ``honour_updated_min``).
UPDATED_SEARCH_RESOURCES = frozenset({"bills", "bill_vendors"})

VENDOR_FIELDS = (
    "vendor_name",
    "account_number",
    "street",
    "street2",
    "city",
    "province",
    "postal_code",
    "country",
    "phone",
    "website",
    "primary_contact_email",
    "primary_contact_first_name",
    "primary_contact_last_name",
    "currency_code",
    "language",
    "is_1099",
    "note",
    "tax_defaults",
)
BILL_FIELDS = ("vendorid", "bill_number", "issue_date", "due_offset_days", "currency_code", "language", "lines")
BILL_OPTIONAL = ("overall_category", "overall_description", "attachment")
READ_ONLY = frozenset(
    {"vis_state", "ext_vis_state", "created_at", "updated_at", "updated", "signup_date", "amount_paid", "outstanding"}
)


@dataclass
class Query:
    page: int
    per_page: int
    search: dict[str, list[str]]
    include: list[str]


_SEARCH_KEY = re.compile(r"search\[(\w+)\](\[\])?")


def parse_query(pairs: Iterable[tuple[str, str]], default_per_page: int) -> Query:
    """``page``/``per_page``/``search[...]``/``include[]`` per https://www.freshbooks.com/api/parameters."""
    page, per_page = 1, default_per_page
    search: dict[str, list[str]] = {}
    include: list[str] = []
    for key, value in pairs:
        if key == "page":
            if not re.fullmatch(r"\d+", value.strip()):
                raise InvalidPage("Page must be a positive integer.", field="page", value=value)
            page = max(1, int(value))  # page=0 answers page 1
        elif key == "per_page":
            if not re.fullmatch(r"\d+", value.strip()) or int(value) < 1:
                raise InvalidPerPage("Per page must be a positive integer.", field="per_page", value=value)
            per_page = min(MAX_PER_PAGE, int(value))  # silently capped at 100
        elif key in ("include[]", "include"):
            include.append(value)
        elif match := _SEARCH_KEY.fullmatch(key):
            search.setdefault(match.group(1), []).append(value)
    return Query(page, per_page, search, include)


def paged(rows: list[Any], query: Query) -> tuple[list[Any], dict[str, int]]:
    total = len(rows)
    start = (query.page - 1) * query.per_page
    info = {
        "page": query.page,
        "pages": math.ceil(total / query.per_page),
        "per_page": query.per_page,
        "total": total,
    }
    return rows[start : start + query.per_page], info


class Table:
    """Records of one resource keyed by id, in id order when listed."""

    def __init__(self, first_id: int) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.next_id = first_id

    def new_id(self, wanted: Any = None) -> int:
        if wanted is not None:
            ident = int(wanted)
            if ident in self.rows:
                raise InvalidValue("Duplicate id in fixture.", field="id", value=ident)
            self.next_id = max(self.next_id, ident + 1)
            return ident
        ident = self.next_id
        self.next_id += 1
        return ident

    def ordered(self) -> list[dict[str, Any]]:
        return [self.rows[key] for key in sorted(self.rows)]


class Account:
    """One business's accounting data (``account_id`` scope)."""

    def __init__(self, business: dict[str, Any]) -> None:
        self.business = business
        self.account_id: str = business["account_id"]
        self.tables = {spec.key: Table(spec.first_id) for spec in RESOURCES}
        self.ledger: dict[str, dict[str, Any]] = {}
        self.callbacks = Table(2001)
        self.team_members: list[dict[str, Any]] = []
        self.projects: list[dict[str, Any]] = []
        self.invitations: list[dict[str, Any]] = []
        self.invoice_seq = 1


# ------------------------------------------------------------------ the backend


class FreshBooksBackend:
    """All FreshBooks state of the sandbox.

    :param clock: sandbox time (epoch seconds; the control plane can fast-forward it).
    :param switches: the live switch dict of the sandbox (UNCONFIRMED behaviours).
    :param notify: sends one outbound webhook ``(url, body, headers)``.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        switches: Mapping[str, Any],
        notify: Callable[[str, bytes, dict[str, str]], None],
    ) -> None:
        self.clock = clock
        self.switches = switches
        self.notify = notify
        self.reset()

    # ---------------------------------------------------------------- baseline

    def reset(self) -> None:
        """Empty accounting data; the OAuth app, identities and businesses always exist."""
        self.apps = {app["client_id"]: dict(app) for app in demo.APPS}
        self.businesses = {b["id"]: dict(b) for b in demo.BUSINESSES}
        self.accounts = {b["account_id"]: Account(b) for b in self.businesses.values()}
        self.identities = {i["id"]: dict(i) for i in demo.IDENTITIES}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        for identity in demo.IDENTITIES:
            self.refresh_tokens[identity["refresh_token"]] = {
                "identity_id": identity["id"],
                "client_id": demo.SANDBOX_CLIENT_ID,
                "scope": SCOPES,
                "used": False,
                "access_token": None,
            }
        self.stats = {
            "authorization_code": 0,
            "refresh_token": 0,
            "rejected_refresh": 0,
            "reused_refresh": 0,
            "retried_refresh": 0,
        }
        self.recent_calls: deque[float] = deque()
        self.quiet = False

    # ---------------------------------------------------------------- OAuth

    def app_for_authorize(self, client_id: str, redirect_uri: str, response_type: str) -> dict[str, Any]:
        app = self.apps.get(client_id)
        if app is None:
            raise OAuthError(401, "invalid_client", INVALID_CLIENT)
        allowed = list(app["redirect_uris"]) + list(self.switches.get("extra_redirect_uris") or [])
        if redirect_uri not in allowed:
            raise OAuthError(
                400,
                "invalid_redirect_uri",
                "The requested redirect uri is malformed or doesn't match client redirect URI.",
            )
        if response_type != "code":
            raise OAuthError(
                400, "unsupported_response_type", "The authorization server does not support this response type."
            )
        return app

    def authorize(self, client_id: str, redirect_uri: str, identity_id: int, scope: str | None) -> str:
        """The user consented: issue a single-use code valid for 5 minutes."""
        if identity_id not in self.identities:
            raise OAuthError(400, "invalid_request", "Unknown user.")
        code = secrets.token_hex(32)
        self.codes[code] = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "identity_id": identity_id,
            "scope": scope or SCOPES,
            "expires_at": self.clock() + CODE_LIFETIME,
            "used": False,
        }
        return code

    def token(self, form: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /auth/oauth/token`` (authorization_code and refresh_token grants)."""
        grant = str(form.get("grant_type") or "")
        if grant not in ("authorization_code", "refresh_token"):
            raise OAuthError(
                400, "unsupported_grant_type", "The authorization grant type is not supported by the server."
            )
        app = self.apps.get(str(form.get("client_id") or ""))
        secret = str(form.get("client_secret") or "")
        if app is None or not hmac.compare_digest(app["client_secret"].encode(), secret.encode()):
            raise OAuthError(401, "invalid_client", INVALID_CLIENT)
        now = self.clock()
        if grant == "authorization_code":
            code = self.codes.get(str(form.get("code") or ""))
            if (
                code is None
                or code["used"]
                or code["expires_at"] <= now
                or code["client_id"] != app["client_id"]
                or code["redirect_uri"] != str(form.get("redirect_uri") or "")
            ):
                raise OAuthError(400, "invalid_grant", INVALID_GRANT)
            code["used"] = True
            identity_id, scope = code["identity_id"], code["scope"]
        else:
            presented = str(form.get("refresh_token") or "")
            chain = self.refresh_tokens.get(presented)
            if chain is not None and chain["client_id"] == app["client_id"] and self._retried_in_grace(chain):
                return self._answer_again(chain, now)
            if chain is None or chain["used"] or chain["client_id"] != app["client_id"]:
                self.stats["rejected_refresh"] += 1
                if chain is not None and chain["used"]:
                    self.stats["reused_refresh"] += 1
                raise OAuthError(
                    int(self.switches["refresh_reuse_status"]), str(self.switches["refresh_reuse_error"]), INVALID_GRANT
                )
            chain["used"] = True  # single use [FB-AUTH]
            chain["used_at"] = now
            if self.switches["revoke_access_on_refresh"] and chain["access_token"]:
                self.access_tokens.pop(chain["access_token"], None)
            identity_id, scope = chain["identity_id"], chain["scope"]
        self.stats[grant] += 1
        created = int(now)
        expires_in = int(self.switches["expires_in"])
        access, refresh = secrets.token_hex(32), secrets.token_hex(32)
        self.access_tokens[access] = {
            "identity_id": identity_id,
            "client_id": app["client_id"],
            "expires_at": created + expires_in,
        }
        self.refresh_tokens[refresh] = {
            "identity_id": identity_id,
            "client_id": app["client_id"],
            "scope": scope,
            "used": False,
            "access_token": access,
        }
        if grant == "refresh_token":
            self.refresh_tokens[presented]["successor"] = refresh
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "refresh_token": refresh,
            "scope": scope,
            "created_at": created,
        }

    def _retried_in_grace(self, chain: Mapping[str, Any]) -> bool:
        """A used refresh token sent again within ``refresh_reuse_grace_seconds`` (switch; 0 = never,
        the documented single use), while the token it was exchanged for is still unused."""
        grace = float(self.switches["refresh_reuse_grace_seconds"] or 0)
        successor = self.refresh_tokens.get(str(chain.get("successor") or ""))
        return (
            bool(chain["used"])
            and grace > 0
            and self.clock() - float(chain["used_at"]) <= grace
            and successor is not None
            and not successor["used"]
        )

    def _answer_again(self, chain: Mapping[str, Any], now: float) -> dict[str, Any]:
        """The answer to a retried refresh: the same next refresh token, a new access token for it."""
        refresh = str(chain["successor"])
        successor = self.refresh_tokens[refresh]
        if self.switches["revoke_access_on_refresh"] and successor["access_token"]:
            self.access_tokens.pop(successor["access_token"], None)
        created = int(now)
        expires_in = int(self.switches["expires_in"])
        access = secrets.token_hex(32)
        self.access_tokens[access] = {
            "identity_id": successor["identity_id"],
            "client_id": successor["client_id"],
            "expires_at": created + expires_in,
        }
        successor["access_token"] = access
        self.stats["retried_refresh"] += 1
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "refresh_token": refresh,
            "scope": successor["scope"],
            "created_at": created,
        }

    def authenticate(self, authorization: str | None) -> dict[str, Any]:
        """The identity behind a ``Bearer`` access token, or :class:`Unauthenticated`."""
        scheme, _, token = (authorization or "").partition(" ")
        grant = self.access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or grant["expires_at"] <= self.clock():
            raise Unauthenticated("This action requires authentication to continue.")
        return self.identities[grant["identity_id"]]

    def expire_access_tokens(self) -> None:
        for grant in self.access_tokens.values():
            grant["expires_at"] = self.clock() - 1

    def check_rate_limit(self) -> None:
        """Optional per-minute budget (UNCONFIRMED numbers: off unless ``rate_limit_per_minute``)."""
        limit = int(self.switches.get("rate_limit_per_minute") or 0)
        if limit <= 0:
            return
        now = self.clock()
        while self.recent_calls and now - self.recent_calls[0] >= 60:
            self.recent_calls.popleft()
        if len(self.recent_calls) >= limit:
            raise RateLimited("Too many requests.")
        self.recent_calls.append(now)

    # ---------------------------------------------------------------- identity and scoping

    def memberships(self, identity: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(m, self.businesses[m["business_id"]]) for m in identity["memberships"]]

    def users_me(self, identity: Mapping[str, Any]) -> dict[str, Any]:
        """``GET /auth/api/v1/users/me``."""
        memberships = [
            {"id": m["id"], "role": m["role"], "unacknowledged_change": False, "business": dict(b)}
            for m, b in self.memberships(identity)
        ]
        return {
            "id": identity["id"],
            "identity_id": identity["id"],
            "identity_uuid": identity["identity_uuid"],
            "first_name": identity["first_name"],
            "last_name": identity["last_name"],
            "email": identity["email"],
            "confirmed_at": identity["confirmed_at"],
            "business_memberships": memberships,
            "roles": [
                {"id": 61000 + i, "role": "admin", "systemid": b["id"], "userid": 1, "accountid": b["account_id"]}
                for i, (_, b) in enumerate(self.memberships(identity))
            ],
            "groups": [
                {
                    "id": 12000 + i,
                    "group_id": 7000 + i,
                    "role": m["role"],
                    "identity_id": identity["id"],
                    "business_id": b["id"],
                    "active": True,
                }
                for i, (m, b) in enumerate(self.memberships(identity))
            ],
        }

    def account_for(self, identity: Mapping[str, Any], account_id: str) -> Account:
        """Tokens open only the accounts of their identity's businesses."""
        for _, business in self.memberships(identity):
            if business["account_id"] == account_id:
                return self.accounts[account_id]
        raise AccessDenied("The requested account is not accessible with this token.", field="account_id")

    def business_for(self, identity: Mapping[str, Any], *, business_id: int | None = None, uuid: str = "") -> Account:
        for _, business in self.memberships(identity):
            if business["id"] == business_id or business["business_uuid"] == uuid:
                return self.accounts[business["account_id"]]
        raise AccessDenied("You do not have access to this business.", field="business")

    # ---------------------------------------------------------------- generic accounting

    def list_records(
        self, acct: Account, spec: Resource, pairs: Iterable[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        query = parse_query(pairs, int(self.switches["default_per_page"]))
        rows = self._filter(acct, spec, acct.tables[spec.key].ordered(), query.search)
        page, info = paged(rows, query)
        include_vendor = spec.key == "bills" and "vendor" in query.include
        return [self.render(acct, spec, rec, include_vendor=include_vendor) for rec in page], info

    def _filter(
        self, acct: Account, spec: Resource, rows: list[dict[str, Any]], search: Mapping[str, list[str]]
    ) -> list[dict[str, Any]]:
        if "vis_state" in search:
            wanted = {parse_int(v, "vis_state", spec.singular) for v in search["vis_state"]}
            rows = [r for r in rows if r.get("vis_state", 0) in wanted]
        else:  # deleted records are hidden unless asked for; archived ones are listed [FB-VIS]
            rows = [r for r in rows if r.get("vis_state", 0) != 1]
        for key, values in search.items():
            rule = SEARCHES.get(spec.key, {}).get(key)
            if rule is not None:
                rows = self._apply_search(acct, rows, rule, values)
            elif (
                key in ("updated_min", "updated_max")
                and spec.key in UPDATED_SEARCH_RESOURCES
                and self.switches["honour_updated_min"]
            ):
                rows = self._apply_updated(spec, rows, key, values[-1])
            # any other search key is silently ignored, like an undocumented filter would be
        return rows

    def _apply_search(
        self, acct: Account, rows: list[dict[str, Any]], rule: tuple[str, str], values: list[str]
    ) -> list[dict[str, Any]]:
        kind, field = rule
        if kind == "eq":
            return [r for r in rows if str(r.get(field)) == values[-1]]
        if kind == "like":
            needle = values[-1].lower()
            return [r for r in rows if needle in str(r.get(field) or "").lower()]
        if kind in ("eq_int", "in_int"):
            wanted = {parse_int(v, field, "search") for v in (values[-1:] if kind == "eq_int" else values)}
            return [r for r in rows if r.get(field) in wanted]
        if kind == "in_status":
            statuses = set(values)
            return [r for r in rows if self.bill_status(r) in statuses]
        raise AssertionError(kind)

    def _apply_updated(self, spec: Resource, rows: list[dict[str, Any]], key: str, value: str) -> list[dict[str, Any]]:
        zone = self._zone(spec, "updated")
        instant = parse_instant(value, zone)
        if instant is None:
            raise InvalidValue("Invalid date.", field=key, value=value)
        if key == "updated_min":
            return [r for r in rows if r["_updated"] >= instant]
        return [r for r in rows if r["_updated"] <= instant + (86400 if len(value.strip()) == 10 else 0)]

    def _zone(self, spec: Resource, which: str) -> str:
        for _, kind, zone in spec.timestamps:
            if kind == which:
                return str(self.switches["bill_vendor_timezone"]) if zone == "vendor" else zone
        return "UTC"

    def get_record(self, acct: Account, spec: Resource, ident: Any, *, include_vendor: bool = False) -> dict[str, Any]:
        return self.render(acct, spec, self._row(acct, spec, ident), include_vendor=include_vendor)

    def _row(self, acct: Account, spec: Resource, ident: Any) -> dict[str, Any]:
        try:
            key = int(str(ident))
        except ValueError:
            key = -1
        row = acct.tables[spec.key].rows.get(key)
        if row is None:
            label = spec.singular.replace("_", " ").capitalize()
            raise UnknownResource(f"{label} not found.", field=spec.id_fields[-1], obj=spec.singular, value=ident)
        return row

    def create_record(
        self, acct: Account, spec: Resource, body: Any, identity_id: int, *, fixture_id: Any = None
    ) -> dict[str, Any]:
        """``POST`` a resource; the body is the object under its singular key."""
        return self.render(acct, spec, self._insert(acct, spec, body, identity_id, fixture_id))

    def _insert(
        self, acct: Account, spec: Resource, body: Any, identity_id: int, fixture_id: Any = None
    ) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise RequiredField(f"Field {spec.singular} is required.", field=spec.singular, obj=spec.singular)
        for field in spec.required:
            if body.get(field) in (None, "", []):
                raise RequiredField(f"Field {field} is required.", field=field, obj=spec.singular)
        now = self.clock()
        if spec.key == "bills":
            row = self._new_bill(acct, body, fixture_id)
        elif spec.key == "bill_vendors":
            row = self._new_vendor(acct, body, fixture_id)
        elif spec.key == "bill_payments":
            row = self._new_bill_payment(acct, body, fixture_id)
        elif spec.key == "invoices":
            row = self._new_invoice(acct, body, fixture_id)
        elif spec.key == "payments":
            row = self._new_payment(acct, body, fixture_id)
        else:
            row = self._new_generic(acct, spec, body, fixture_id)
        if spec.key != "taxes":  # taxes are deleted for real, they carry no vis_state
            row.setdefault("vis_state", 0)
        row["_created"] = row["_updated"] = now
        acct.tables[spec.key].rows[row[spec.id_fields[0]]] = row
        self._after_change(acct, spec, row, "create", identity_id)
        return row

    def update_record(self, acct: Account, spec: Resource, ident: Any, body: Any, identity_id: int) -> dict[str, Any]:
        """``PUT`` a resource. Phases: ext_vis_state, vis_state, actions, regular data [FB-VIS]."""
        row = self._row(acct, spec, ident)
        if not isinstance(body, Mapping):
            raise RequiredField(f"Field {spec.singular} is required.", field=spec.singular, obj=spec.singular)
        if "ext_vis_state" in body:
            return self.render(acct, spec, row)  # its phase swallows the rest; nothing we model changes
        if "vis_state" in body:
            # The documented pitfall: any vis_state in a PUT silently throws the other fields away.
            vis = parse_int(body["vis_state"], "vis_state", spec.singular)
            if vis not in (0, 1, 2):
                raise InvalidValue("vis_state must be 0, 1 or 2.", field="vis_state", obj=spec.singular, value=vis)
            verb = "delete" if vis == 1 else "update"
            if row.get("vis_state", 0) != vis:
                row["vis_state"] = vis
                row["_updated"] = self.clock()
                self._after_change(acct, spec, row, verb, identity_id)
            return self.render(acct, spec, row)
        if row.get("vis_state", 0) == 1:
            label = spec.singular.replace("_", " ").capitalize()
            raise DeletedResource(f"{label} is deleted.", field=spec.id_fields[-1], obj=spec.singular, value=ident)
        if spec.key == "bills":
            self._update_bill(acct, row, body)
        elif spec.key == "bill_vendors":
            self._update_vendor(row, body)
        elif spec.key == "bill_payments":
            self._update_bill_payment(acct, row, body)
        elif spec.key == "invoices":
            self._update_invoice(acct, row, body)
        elif spec.key == "payments":
            self._update_payment(acct, row, body)
        else:
            self._update_generic(acct, spec, row, body)
        row["_updated"] = self.clock()
        self._after_change(acct, spec, row, "update", identity_id)
        return self.render(acct, spec, row)

    def delete_record(self, acct: Account, spec: Resource, ident: Any, identity_id: int) -> dict[str, Any]:
        """HTTP ``DELETE`` (invoices, taxes): invoices become vis_state 1, taxes disappear."""
        row = self._row(acct, spec, ident)
        if spec.key == "taxes":
            del acct.tables[spec.key].rows[row["id"]]
            return self.render(acct, spec, row)
        row["vis_state"] = 1
        row["_updated"] = self.clock()
        self._after_change(acct, spec, row, "delete", identity_id)
        return self.render(acct, spec, row)

    def _after_change(self, acct: Account, spec: Resource, row: dict[str, Any], verb: str, identity_id: int) -> None:
        if spec.key == "bill_payments":
            bill = acct.tables["bills"].rows[row["billid"]]
            self._recompute_bill(acct, bill)
            bill["_updated"] = self.clock()
            self.emit(acct, spec.noun, verb, row["id"], identity_id)
            self.emit(acct, "bill", "update", bill["id"], identity_id)
            return
        if spec.key == "payments":
            invoice = acct.tables["invoices"].rows[row["invoiceid"]]
            self._recompute_invoice(acct, invoice)
            invoice["_updated"] = self.clock()
            self.emit(acct, spec.noun, verb, row["id"], identity_id)
            self.emit(acct, "invoice", "update", invoice["id"], identity_id)
            return
        self.emit(acct, spec.noun, verb, row[spec.id_fields[0]], identity_id)

    # ---------------------------------------------------------------- rendering

    def render(
        self, acct: Account, spec: Resource, row: Mapping[str, Any], *, include_vendor: bool = False
    ) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if not k.startswith("_")}
        for field, kind, zone in spec.timestamps:
            if zone == "vendor":
                zone = str(self.switches["bill_vendor_timezone"])
            out[field] = fmt_time(row["_created" if kind == "created" else "_updated"], zone)
        if spec.key == "bills":
            self._render_bill(acct, row, out, include_vendor)
        elif spec.key == "bill_vendors":
            self._render_vendor(acct, row, out)
        elif spec.key == "bill_payments":
            out["amount"] = money(row["_amount"], row["_code"])
        elif spec.key == "invoices":
            self._render_invoice(row, out)
        return out

    # ---------------------------------------------------------------- bill vendors

    def _new_vendor(self, acct: Account, body: Mapping[str, Any], fixture_id: Any) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(VENDOR_FIELDS)
        row.update(currency_code="USD", language="en", is_1099=False, tax_defaults=[])
        self._apply_vendor_fields(row, body)
        row["vendorid"] = acct.tables["bill_vendors"].new_id(fixture_id)
        row["_bills"] = set()
        return row

    def _update_vendor(self, row: dict[str, Any], body: Mapping[str, Any]) -> None:
        self._apply_vendor_fields(row, body)
        if not row.get("vendor_name"):
            raise RequiredField("Field vendor_name is required.", field="vendor_name", obj="bill_vendor")

    @staticmethod
    def _apply_vendor_fields(row: dict[str, Any], body: Mapping[str, Any]) -> None:
        for field in VENDOR_FIELDS:
            if field in body:
                row[field] = body[field]
        if not re.fullmatch(r"[A-Z]{3}", str(row.get("currency_code") or "")):
            raise InvalidValue(
                "Invalid currency code.", field="currency_code", obj="bill_vendor", value=row["currency_code"]
            )

    def _render_vendor(self, acct: Account, row: Mapping[str, Any], out: dict[str, Any]) -> None:
        outstanding: dict[str, Decimal] = {}
        overdue: dict[str, Decimal] = {}
        bills = acct.tables["bills"].rows
        for bill_id in row["_bills"]:
            bill = bills[bill_id]
            if bill.get("vis_state", 0) == 1:
                continue
            due = bill["_amount"] + bill["_tax"] - bill["_paid"]
            if due > 0:
                code = bill["currency_code"]
                outstanding[code] = outstanding.get(code, Decimal(0)) + due
                if self.bill_status(bill) == "overdue":
                    overdue[code] = overdue.get(code, Decimal(0)) + due
        out["outstanding_balance"] = [money(v, k) for k, v in sorted(outstanding.items())]
        out["overdue_balance"] = [money(v, k) for k, v in sorted(overdue.items())]

    # ---------------------------------------------------------------- bills

    def _new_bill(self, acct: Account, body: Mapping[str, Any], fixture_id: Any) -> dict[str, Any]:
        for field in self.switches["bill_required_fields"]:
            if body.get(field) in (None, "", []):
                raise RequiredField(f"Field {field} is required.", field=field, obj="bill")
        row: dict[str, Any] = {
            "bill_number": None,
            "currency_code": "USD",
            "language": "en",
            "due_offset_days": 0,
            "attachment": None,
            "overall_category": None,
            "overall_description": None,
            "_paid": Decimal(0),
            "_payments": [],
        }
        self._apply_bill_fields(acct, row, body, creating=True)
        row["id"] = acct.tables["bills"].new_id(fixture_id)
        acct.tables["bill_vendors"].rows[row["vendorid"]]["_bills"].add(row["id"])
        return row

    def _update_bill(self, acct: Account, row: dict[str, Any], body: Mapping[str, Any]) -> None:
        old_vendor = row["vendorid"]
        self._apply_bill_fields(acct, row, body, creating=False)
        if row["vendorid"] != old_vendor:
            vendors = acct.tables["bill_vendors"].rows
            vendors[old_vendor]["_bills"].discard(row["id"])
            vendors[row["vendorid"]]["_bills"].add(row["id"])
        self._recompute_bill(acct, row)

    def _apply_bill_fields(
        self, acct: Account, row: dict[str, Any], body: Mapping[str, Any], *, creating: bool
    ) -> None:
        if "vendorid" in body or creating:
            vendorid = parse_int(body.get("vendorid"), "vendorid", "bill")
            vendor = acct.tables["bill_vendors"].rows.get(vendorid)
            if vendor is None:
                raise UnknownReference("Vendor not found.", field="vendorid", obj="bill", value=vendorid)
            if vendor.get("vis_state", 0) == 1:
                raise DeletedResource("Vendor is deleted.", field="vendorid", obj="bill", value=vendorid)
            row["vendorid"] = vendorid
        for field in ("bill_number", "language", "attachment", *BILL_OPTIONAL):
            if field in body:
                row[field] = body[field]
        if "currency_code" in body:
            code = str(body["currency_code"] or "").upper()
            if not re.fullmatch(r"[A-Z]{3}", code):
                raise InvalidValue("Invalid currency code.", field="currency_code", obj="bill", value=code)
            row["currency_code"] = code
        if "issue_date" in body or creating:
            row["issue_date"] = parse_date(body.get("issue_date"), "issue_date", "bill").isoformat()
        if "due_offset_days" in body:
            offset = parse_int(body["due_offset_days"], "due_offset_days", "bill")
            if offset < 0:
                raise InvalidValue("due_offset_days must not be negative.", field="due_offset_days", obj="bill")
            row["due_offset_days"] = offset
        row["due_date"] = (date.fromisoformat(row["issue_date"]) + timedelta(days=row["due_offset_days"])).isoformat()
        if "lines" in body or creating:
            row["_lines"] = self._bill_lines(acct, body.get("lines"), row["currency_code"])
        for line in row["_lines"]:
            if line["_code"] != row["currency_code"]:
                raise InvalidValue(
                    "Line currency must match the bill currency.",
                    field="unit_cost.code",
                    obj="bill",
                    value=line["_code"],
                )
        row["_amount"] = sum((line["_amount"] for line in row["_lines"]), Decimal(0))
        row["_tax"] = sum((line["_tax1"] + line["_tax2"] for line in row["_lines"]), Decimal(0))
        if row["_lines"] and not body.get("overall_category"):
            row["overall_category"] = row["_lines"][0]["_category"]
        if row["_lines"] and not body.get("overall_description"):
            row["overall_description"] = row["_lines"][0]["description"]

    def _bill_lines(self, acct: Account, raw_lines: Any, currency: str) -> list[dict[str, Any]]:
        if not isinstance(raw_lines, list) or not raw_lines:
            raise RequiredField("Field lines is required.", field="lines", obj="bill")
        categories = acct.tables["categories"].rows
        lines = []
        for index, raw in enumerate(raw_lines, start=1):
            if not isinstance(raw, Mapping):
                raise InvalidValue("Each line must be an object.", field="lines", obj="bill_line")
            if raw.get("categoryid") in (None, ""):
                raise RequiredField("Field categoryid is required.", field="categoryid", obj="bill_line")
            categoryid = parse_int(raw["categoryid"], "categoryid", "bill_line")
            category = categories.get(categoryid)
            if category is None:
                raise UnknownReference("Category not found.", field="categoryid", obj="bill_line", value=categoryid)
            quantity = parse_decimal(
                raw.get("quantity", 1) if raw.get("quantity") is not None else 1, "quantity", "bill_line"
            )
            unit_cost, code = parse_money(raw.get("unit_cost"), "unit_cost", "bill_line", currency)
            amount = quantize(quantity * unit_cost)
            pct1 = self._percent(raw.get("tax_percent1"))
            pct2 = self._percent(raw.get("tax_percent2"))
            tax1 = quantize(amount * pct1 / 100) if pct1 is not None else Decimal(0)
            base2 = amount + tax1 if raw.get("compounded_tax") else amount
            tax2 = quantize(base2 * pct2 / 100) if pct2 is not None else Decimal(0)
            lines.append(
                {
                    "list_index": index,
                    "description": raw.get("description"),
                    "categoryid": categoryid,
                    "tax_name1": raw.get("tax_name1"),
                    "tax_name2": raw.get("tax_name2"),
                    "tax_authorityid1": raw.get("tax_authorityid1"),
                    "tax_authorityid2": raw.get("tax_authorityid2"),
                    "compounded_tax": bool(raw.get("compounded_tax", False)),
                    "_quantity": quantity,
                    "_unit_cost": unit_cost,
                    "_code": code,
                    "_amount": amount,
                    "_pct1": pct1,
                    "_pct2": pct2,
                    "_tax1": tax1,
                    "_tax2": tax2,
                    "_category": category["category"],
                }
            )
        return lines

    @staticmethod
    def _percent(value: Any) -> Decimal | None:
        if value in (None, ""):
            return None
        pct = parse_decimal(value, "tax_percent", "bill_line")
        if not Decimal(0) <= pct <= Decimal(100):
            raise InvalidValue("Invalid percent value.", field="tax_percent", obj="bill_line", value=value)
        return pct

    def bill_status(self, bill: Mapping[str, Any]) -> str:
        """unpaid | overdue | partial | paid, recomputed from the bill payments."""
        outstanding = bill["_amount"] + bill["_tax"] - bill["_paid"]
        if outstanding <= 0:
            return "paid"
        if bill["_paid"] > 0:
            return "partial"
        today = datetime.fromtimestamp(self.clock(), EASTERN).date().isoformat()
        return "overdue" if bill["due_date"] < today else "unpaid"

    def _recompute_bill(self, acct: Account, bill: dict[str, Any]) -> None:
        payments = acct.tables["bill_payments"].rows
        bill["_paid"] = sum(
            (payments[p]["_amount"] for p in bill["_payments"] if payments[p].get("vis_state", 0) != 1), Decimal(0)
        )

    def _render_bill(self, acct: Account, row: Mapping[str, Any], out: dict[str, Any], include_vendor: bool) -> None:
        code = row["currency_code"]
        total = row["_amount"] + row["_tax"]
        out["amount"] = money(row["_amount"], code)
        out["tax_amount"] = money(row["_tax"], code)
        out["total_amount"] = money(total, code)
        out["paid"] = money(row["_paid"], code)
        out["outstanding"] = money(total - row["_paid"], code)
        out["status"] = self.bill_status(row)
        out["lines"] = [self._render_line(acct, line, index, row) for index, line in enumerate(row["_lines"])]
        payments = acct.tables["bill_payments"]
        out["bill_payments"] = [
            self.render(acct, RESOURCE["bill_payments"], payments.rows[p])
            for p in row["_payments"]
            if payments.rows[p].get("vis_state", 0) != 1
        ]
        if include_vendor:
            vendor = acct.tables["bill_vendors"].rows[row["vendorid"]]
            out["vendor"] = self.render(acct, RESOURCE["bill_vendors"], vendor)

    def _render_line(
        self, acct: Account, line: Mapping[str, Any], index: int, bill: Mapping[str, Any]
    ) -> dict[str, Any]:
        code = line["_code"]
        out = {k: v for k, v in line.items() if not k.startswith("_")}
        out["id"] = bill["id"] * 100 + index + 1  # stable line ids
        out["quantity"] = plain(line["_quantity"])
        out["unit_cost"] = money(line["_unit_cost"], code)
        out["amount"] = money(line["_amount"], code)
        out["total_amount"] = money(line["_amount"] + line["_tax1"] + line["_tax2"], code)
        for n in (1, 2):
            pct = line[f"_pct{n}"]
            out[f"tax_percent{n}"] = None if pct is None else plain(pct)
            out[f"tax_amount{n}"] = None if pct is None else money(line[f"_tax{n}"], code)
        if self.switches["line_category_shape"] == "flat":
            out["category"] = line["_category"]  # FB-JS fixture shape
        else:
            category = acct.tables["categories"].rows[line["categoryid"]]
            out["category"] = self.render(acct, RESOURCE["categories"], category)
            del out["categoryid"]  # FB-PM shape: the id lives in the nested category only
        return out

    # ---------------------------------------------------------------- bill payments

    def _new_bill_payment(self, acct: Account, body: Mapping[str, Any], fixture_id: Any) -> dict[str, Any]:
        for field in self.switches["bill_payment_required_fields"]:
            if body.get(field) in (None, "", []):
                raise RequiredField(f"Field {field} is required.", field=field, obj="bill_payment")
        billid = parse_int(body.get("billid"), "billid", "bill_payment")
        bill = acct.tables["bills"].rows.get(billid)
        if bill is None:
            raise UnknownReference("Bill not found.", field="billid", obj="bill_payment", value=billid)
        if bill.get("vis_state", 0) == 1:
            raise DeletedResource("Bill is deleted.", field="billid", obj="bill_payment", value=billid)
        row: dict[str, Any] = {
            "billid": billid,
            "payment_type": "Check",
            "note": None,
            "paid_date": None,
            "matched_with_expense": False,
        }
        self._apply_bill_payment_fields(acct, bill, row, body, previous=Decimal(0))
        row["id"] = acct.tables["bill_payments"].new_id(fixture_id)
        bill["_payments"].append(row["id"])
        return row

    def _update_bill_payment(self, acct: Account, row: dict[str, Any], body: Mapping[str, Any]) -> None:
        bill = acct.tables["bills"].rows[row["billid"]]
        self._apply_bill_payment_fields(acct, bill, row, body, previous=row["_amount"])

    def _apply_bill_payment_fields(
        self, acct: Account, bill: Mapping[str, Any], row: dict[str, Any], body: Mapping[str, Any], previous: Decimal
    ) -> None:
        if "amount" in body or "_amount" not in row:
            amount, code = parse_money(body.get("amount"), "amount", "bill_payment", bill["currency_code"])
            if amount <= 0:
                raise InvalidValue(
                    "Amount must be greater than zero.", field="amount", obj="bill_payment", value=amount
                )
            if code != bill["currency_code"]:
                raise InvalidValue(
                    "Payment currency must match the bill currency.",
                    field="amount.code",
                    obj="bill_payment",
                    value=code,
                )
            outstanding = bill["_amount"] + bill["_tax"] - bill["_paid"] + previous
            if self.switches["reject_overpayment"] and amount > outstanding:
                raise InvalidValue(
                    "Payment amount exceeds the amount outstanding on the bill.",
                    field="amount",
                    obj="bill_payment",
                    value=f"{amount}",
                )
            row["_amount"], row["_code"] = quantize(amount), code
        if "paid_date" in body:
            row["paid_date"] = parse_date(body["paid_date"], "paid_date", "bill_payment").isoformat()
        if "payment_type" in body:
            if body["payment_type"] not in BILL_PAYMENT_TYPES:
                raise InvalidValue(
                    "Invalid payment type.", field="payment_type", obj="bill_payment", value=body["payment_type"]
                )
            row["payment_type"] = body["payment_type"]
        if "note" in body:
            row["note"] = body["note"]

    # ---------------------------------------------------------------- invoices and payments

    def _new_invoice(self, acct: Account, body: Mapping[str, Any], fixture_id: Any) -> dict[str, Any]:
        row: dict[str, Any] = {
            "status": 1,  # created as draft [FB-INV]
            "v3_status": "draft",
            "payment_status": "unpaid",
            "display_status": "draft",
            "currency_code": "USD",
            "language": "en",
            "due_offset_days": 0,
            "notes": "",
            "terms": "",
            "po_number": None,
            "_paid": Decimal(0),
            "_payments": [],
        }
        number = body.get("invoice_number")
        if number in (None, ""):
            number = f"{acct.invoice_seq:07d}"
        elif self.switches["unique_invoice_numbers"] and any(
            str(i.get("invoice_number")) == str(number) for i in acct.tables["invoices"].rows.values()
        ):
            # "The same Invoice Number can't be used twice (regardless of whether the Invoice itself
            # is active, archived or deleted)" [FB-SUP]; the API's errno for it is UNCONFIRMED.
            raise InvalidValue("Invoice number is already in use.", field="invoice_number", obj="invoice", value=number)
        else:
            digits = re.sub(r"\D", "", str(number))
            if digits:
                acct.invoice_seq = max(acct.invoice_seq, int(digits))
        acct.invoice_seq += 1
        row["invoice_number"] = str(number)
        self._apply_invoice_fields(acct, row, body, creating=True)
        ident = acct.tables["invoices"].new_id(fixture_id)
        row["id"] = row["invoiceid"] = ident
        return row

    def _update_invoice(self, acct: Account, row: dict[str, Any], body: Mapping[str, Any]) -> None:
        if (body.get("action_mark_as_sent") or body.get("action_email")) and row["status"] == 1:
            row["status"], row["v3_status"], row["display_status"] = 2, "sent", "sent"
        self._apply_invoice_fields(acct, row, body, creating=False)
        self._recompute_invoice(acct, row)

    def _apply_invoice_fields(
        self, acct: Account, row: dict[str, Any], body: Mapping[str, Any], *, creating: bool
    ) -> None:
        if "customerid" in body or creating:
            customerid = parse_int(body.get("customerid"), "customerid", "invoice")
            client = acct.tables["clients"].rows.get(customerid)
            if client is None:
                raise UnknownReference("Client not found.", field="customerid", obj="invoice", value=customerid)
            row["customerid"] = customerid
            for field in ("fname", "lname", "organization", "email"):
                row[field] = client.get(field)
            row["currency_code"] = body.get("currency_code") or client.get("currency_code") or "USD"
        for field in ("language", "notes", "terms", "po_number"):
            if field in body:
                row[field] = body[field]
        if "create_date" in body or creating:
            row["create_date"] = parse_date(body.get("create_date"), "create_date", "invoice").isoformat()
        if "due_offset_days" in body:
            row["due_offset_days"] = parse_int(body["due_offset_days"], "due_offset_days", "invoice")
        row["due_date"] = (date.fromisoformat(row["create_date"]) + timedelta(days=row["due_offset_days"])).isoformat()
        if "lines" in body or creating:
            lines = []
            for index, raw in enumerate(body.get("lines") or [], start=1):
                qty = parse_decimal(raw.get("qty", 1), "qty", "line")
                unit_cost, code = parse_money(raw.get("unit_cost"), "unit_cost", "line", row["currency_code"])
                if unit_cost < 0 and not self.switches["negative_line_amounts"]:
                    raise InvalidValue(
                        "unit_cost must not be negative.", field="unit_cost", obj="line", value=unit_cost
                    )
                amount = quantize(qty * unit_cost)
                pct = self._percent(raw.get("taxAmount1"))
                tax = quantize(amount * pct / 100) if pct is not None else Decimal(0)
                lines.append(
                    {
                        "lineid": index,
                        "name": raw.get("name"),
                        "description": raw.get("description"),
                        "qty": plain(qty),
                        "unit_cost": money(unit_cost, code),
                        "amount": money(amount, code),
                        "taxName1": raw.get("taxName1"),
                        "taxAmount1": None if pct is None else plain(pct),
                        "_total": amount + tax,
                    }
                )
            row["_lines"] = lines
        row["_amount"] = sum((line["_total"] for line in row["_lines"]), Decimal(0))

    def _recompute_invoice(self, acct: Account, invoice: dict[str, Any]) -> None:
        payments = acct.tables["payments"].rows
        invoice["_paid"] = sum(
            (payments[p]["_amount"] for p in invoice["_payments"] if payments[p].get("vis_state", 0) != 1), Decimal(0)
        )
        if invoice["_paid"] <= 0:
            invoice["payment_status"] = "unpaid"
            if invoice["status"] in (4, 8):
                invoice["status"], invoice["v3_status"] = 2, "sent"
        elif invoice["_paid"] >= invoice["_amount"]:
            invoice["status"], invoice["v3_status"], invoice["payment_status"] = 4, "paid", "paid"
        else:
            invoice["status"], invoice["v3_status"], invoice["payment_status"] = 8, "partial", "partial"
        invoice["display_status"] = invoice["v3_status"]

    @staticmethod
    def _render_invoice(row: Mapping[str, Any], out: dict[str, Any]) -> None:
        code = row["currency_code"]
        out["lines"] = [{k: v for k, v in line.items() if not k.startswith("_")} for line in row["_lines"]]
        out["amount"] = money(row["_amount"], code)
        out["paid"] = money(row["_paid"], code)
        out["outstanding"] = money(max(Decimal(0), row["_amount"] - row["_paid"]), code)

    def _new_payment(self, acct: Account, body: Mapping[str, Any], fixture_id: Any) -> dict[str, Any]:
        invoiceid = parse_int(body.get("invoiceid"), "invoiceid", "payment")
        invoice = acct.tables["invoices"].rows.get(invoiceid)
        if invoice is None:
            raise UnknownReference("Invoice not found.", field="invoiceid", obj="payment", value=invoiceid)
        if invoice.get("vis_state", 0) == 1:
            raise DeletedResource("Invoice is deleted.", field="invoiceid", obj="payment", value=invoiceid)
        amount, code = parse_money(body.get("amount"), "amount", "payment", invoice["currency_code"])
        if amount <= 0:
            raise InvalidValue("Amount must be greater than zero.", field="amount", obj="payment", value=amount)
        row: dict[str, Any] = {
            "invoiceid": invoiceid,
            "clientid": invoice["customerid"],
            "date": parse_date(body.get("date"), "date", "payment").isoformat(),
            "type": body.get("type") or "Check",
            "note": body.get("note") or "",
            "amount": money(amount, code),
            "_amount": quantize(amount),
        }
        ident = acct.tables["payments"].new_id(fixture_id)
        row["id"] = row["logid"] = ident
        invoice["_payments"].append(ident)
        return row

    def _update_payment(self, acct: Account, row: dict[str, Any], body: Mapping[str, Any]) -> None:
        invoice = acct.tables["invoices"].rows[row["invoiceid"]]
        if "amount" in body:
            amount, code = parse_money(body["amount"], "amount", "payment", invoice["currency_code"])
            if amount <= 0:
                raise InvalidValue("Amount must be greater than zero.", field="amount", obj="payment", value=amount)
            row["amount"], row["_amount"] = money(amount, code), quantize(amount)
        if "date" in body:
            row["date"] = parse_date(body["date"], "date", "payment").isoformat()
        for field in ("type", "note"):
            if field in body:
                row[field] = body[field]

    # ---------------------------------------------------------------- the rest (generic)

    def _new_generic(self, acct: Account, spec: Resource, body: Mapping[str, Any], fixture_id: Any) -> dict[str, Any]:
        row = self._clean(spec, body)
        if spec.key == "expenses":
            self._check_expense(acct, row)
        if spec.key == "clients" and not any(row.get(f) for f in ("organization", "fname", "lname", "email")):
            raise RequiredField("Field email is required.", field="email", obj="client")
        ident = acct.tables[spec.key].new_id(fixture_id)
        for field in spec.id_fields:
            row[field] = ident
        return row

    def _update_generic(self, acct: Account, spec: Resource, row: dict[str, Any], body: Mapping[str, Any]) -> None:
        changes = self._clean(spec, body)
        if spec.key == "expenses":
            self._check_expense(acct, {**row, **changes})
        row.update(changes)

    def _clean(self, spec: Resource, body: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for key, value in body.items():
            if key in spec.id_fields or key in READ_ONLY or key.startswith("_"):
                continue
            if isinstance(value, Mapping) and "amount" in value:
                amount, code = parse_money(value, key, spec.singular, "USD")
                value = money(amount, code)
            row[key] = value
        return row

    @staticmethod
    def _check_expense(acct: Account, row: Mapping[str, Any]) -> None:
        categoryid = parse_int(row.get("categoryid"), "categoryid", "expense")
        if categoryid not in acct.tables["categories"].rows:
            raise UnknownReference("Category not found.", field="categoryid", obj="expense", value=categoryid)
        parse_date(row.get("date"), "date", "expense")

    # ---------------------------------------------------------------- webhooks (callbacks)

    def emit(self, acct: Account, noun: str | None, verb: str, object_id: Any, identity_id: int) -> None:
        """Notify every verified callback registered for the event, its noun, or ``all``."""
        if noun is None or self.quiet:
            return
        if noun == "bill_payment" and not self.switches["bill_payment_events"]:
            return
        event = f"{noun}.{verb}"
        for callback in acct.callbacks.ordered():
            if not callback["verified"] or callback["event"] not in (event, noun, "all"):
                continue
            fields = [
                ("name", event),
                ("object_id", str(object_id)),
                ("account_id", acct.account_id),
                ("business_id", str(acct.business["id"])),
                ("identity_id", str(identity_id)),
                ("user_id", "1"),
            ]
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-FreshBooks-Hmac-SHA256": webhook_signature(fields, callback["_verifier"]),
            }
            self.notify(callback["uri"], urlencode(fields).encode(), headers)

    def known_event(self, event: str) -> bool:
        if event == "all":
            return True
        noun, _, verb = event.partition(".")
        if noun == "bill_payment" and not self.switches["bill_payment_events"]:
            return False
        if noun not in EVENT_NOUNS:
            return False
        return verb in ("", *EVENT_VERBS) or (verb == "sendByEmail" and noun in ("invoice", "estimate"))

    def create_callback(self, acct: Account, body: Any) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise InvalidValue("Invalid request.", details=["callback: Field required"])
        details = []
        event, uri = str(body.get("event") or ""), str(body.get("uri") or "")
        if not self.known_event(event):
            details.append("event: Value error, Unrecognized event.")
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            details.append("uri: Value error, Invalid URI.")
        if details:
            raise InvalidValue("Invalid callback.", details=details)
        ident = acct.callbacks.new_id()
        callback = {
            "callbackid": ident,
            "event": event,
            "uri": uri,
            "verified": False,
            "_verifier": secrets.token_urlsafe(18),
            "_updated": self.clock(),
        }
        acct.callbacks.rows[ident] = callback
        self._send_verification(callback)
        return self.render_callback(callback)

    def _send_verification(self, callback: Mapping[str, Any]) -> None:
        fields = [
            ("name", str(self.switches["verify_event_name"])),
            ("object_id", str(callback["callbackid"])),
            ("verifier", callback["_verifier"]),
        ]
        self.notify(callback["uri"], urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"})

    def callback(self, acct: Account, ident: Any) -> dict[str, Any]:
        try:
            return acct.callbacks.rows[int(str(ident))]
        except (KeyError, ValueError):
            raise UnknownResource("Requested resource could not be found.") from None

    def update_callback(self, acct: Account, ident: Any, body: Any) -> dict[str, Any]:
        callback = self.callback(acct, ident)
        if not isinstance(body, Mapping):
            raise InvalidValue("Invalid request.", details=["callback: Field required"])
        if "verifier" in body:
            if not hmac.compare_digest(str(body["verifier"]).encode(), callback["_verifier"].encode()):
                raise InvalidValue("Invalid verifier.", details=["verifier: Value error, Invalid verifier."])
            callback["verified"] = True
        elif body.get("resend"):
            self._send_verification(callback)
        else:
            raise InvalidValue("Nothing to update.", details=["callback: Provide verifier or resend."])
        callback["_updated"] = self.clock()
        return self.render_callback(callback)

    def delete_callback(self, acct: Account, ident: Any) -> None:
        del acct.callbacks.rows[self.callback(acct, ident)["callbackid"]]

    def list_callbacks(
        self, acct: Account, pairs: Iterable[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        query = parse_query(pairs, int(self.switches["default_per_page"]))
        rows = acct.callbacks.ordered()
        if "event" in query.search:
            wanted = query.search["event"][-1]
            # "matches event and parent event": invoice <-> invoice.create both ways
            rows = [
                r
                for r in rows
                if r["event"] == wanted or r["event"].split(".")[0] == wanted or wanted.split(".")[0] == r["event"]
            ]
        page, info = paged(rows, query)
        return [self.render_callback(r) for r in page], info

    @staticmethod
    def render_callback(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "callbackid": row["callbackid"],
            "event": row["event"],
            "uri": row["uri"],
            "verified": row["verified"],
            "updated_at": iso_z(row["_updated"]),
        }

    # ---------------------------------------------------------------- businesses service

    def list_ledger_accounts(self, acct: Account) -> list[dict[str, Any]]:
        return [self._render_ledger(r) for r in sorted(acct.ledger.values(), key=lambda r: r["number"] or "")]

    def ledger_account(self, acct: Account, uuid: str) -> dict[str, Any]:
        row = acct.ledger.get(uuid)
        if row is None:
            raise UnknownResource("Ledger account not found.", field="uuid", value=uuid)
        return self._render_ledger(row)

    def create_ledger_account(self, acct: Account, body: Any) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise InvalidValue("Invalid request body.", field="body")
        for field in ("name", "type"):
            if not body.get(field):
                raise RequiredField("This field is required.", field=field)
        if body["type"] not in ("asset", "liability", "equity", "income", "expense"):
            raise InvalidValue("Invalid account type.", field="type", value=body["type"])
        number = body.get("number")
        if number and any(r["number"] == str(number) for r in acct.ledger.values()):
            raise InvalidValue("An account with this number already exists.", field="number", value=number)
        uuid = str(body.get("uuid") or secrets.token_hex(16))
        if len(uuid) == 32:
            uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"
        row = {
            "uuid": uuid,
            "name": body["name"],
            "number": None if number in (None, "") else str(number),
            "description": body.get("description") or "",
            "type": body["type"],
            "sub_type": body.get("sub_type"),
            "system_account_name": body.get("system_account_name"),
            "parent_account": body.get("parent_account"),
            "sub_accounts": list(body.get("sub_accounts") or []),
            "auto_created": bool(body.get("auto_created", False)),
            "state": body.get("state") or "active",
            "_updated": self.clock(),
        }
        acct.ledger[uuid] = row
        return self._render_ledger(row)

    @staticmethod
    def _render_ledger(row: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if not k.startswith("_")}
        out["updated_at"] = iso_z(row["_updated"], micro=True)
        return out

    def list_team_members(
        self, acct: Account, pairs: Iterable[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        query = parse_query(pairs, 5)
        page, info = paged(acct.team_members, query)
        return page, {"page": info["page"], "per_page": info["per_page"], "total": info["total"]}

    def list_projects(
        self, acct: Account, pairs: Iterable[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Projects (read side only: the user creates them); filters ``active``, ``complete``, ``internal``."""
        params = list(pairs)
        rows = acct.projects
        for name in ("active", "complete", "internal"):
            wanted = [v for k, v in params if k == name]
            if wanted:
                flag = wanted[-1].strip().lower() in ("true", "1")
                rows = [p for p in rows if bool(p.get(name)) == flag]
        page, info = paged(rows, parse_query(params, MAX_PER_PAGE))
        return page, {
            "page": info["page"],
            "pages": info["pages"],
            "per_page": info["per_page"],
            "total": info["total"],
        }

    def invite(self, acct: Account, body: Any) -> dict[str, Any]:
        """``POST /auth/api/v1/users/invitation``: recorded; the person is not a team member until they accept.

        Response shape and accepted ``capacity`` values are UNCONFIRMED [round-2 addendum 1.7].
        """
        if not isinstance(body, Mapping) or not body.get("to_email"):
            raise RequiredField("Field to_email is required.", field="to_email", obj="invitation")
        if body.get("invitable_type") != "business" or body.get("invitable_id") != acct.business["id"]:
            raise InvalidValue("Unknown invitable.", field="invitable_id", obj="invitation")
        invitation = {
            "id": len(acct.invitations) + 1,
            "to_email": str(body["to_email"]),
            "capacity": str(body.get("capacity") or "employee"),
            "invitable_id": acct.business["id"],
            "invitable_type": "business",
            "sent_at": iso_z(self.clock()),
        }
        acct.invitations.append(invitation)
        return invitation

    # ---------------------------------------------------------------- seed, generate, snapshot

    def seed(self, fixture: Mapping[str, Any]) -> None:
        """Load ``{"accounts": {account_id: {resource: [records]}}}`` (records in request shape + ids)."""
        self.quiet = True
        try:
            for account_id, data in (fixture.get("accounts") or {}).items():
                self._seed_account(self.accounts[account_id], data)
        finally:
            self.quiet = False

    def _seed_account(self, acct: Account, data: Mapping[str, Any]) -> None:
        now = self.clock()
        for raw in data.get("categories", []):
            ident = acct.tables["categories"].new_id(raw["id"])
            acct.tables["categories"].rows[ident] = {
                "id": ident,
                "categoryid": ident,
                "category": raw["category"],
                "parentid": raw.get("parentid"),
                "is_cogs": bool(raw.get("is_cogs", False)),
                "is_editable": bool(raw.get("is_editable", False)),
                "vis_state": raw.get("vis_state", 0),
                "_created": now,
                "_updated": now,
            }
        for raw in data.get("ledger_accounts", []):
            self.create_ledger_account(acct, raw)
        for raw in data.get("staffs", []):
            ident = acct.tables["staffs"].new_id(raw["id"])
            acct.tables["staffs"].rows[ident] = {
                **{k: v for k, v in raw.items() if k != "id"},
                "id": ident,
                "userid": ident,
                "organization": acct.business["name"],
                "vis_state": 0,
                "_created": now,
                "_updated": now,
            }
        for raw in data.get("projects", []):
            acct.projects.append(
                {"description": "", "client_id": None, "active": True, "complete": False, "internal": True, **raw}
            )
        for raw in data.get("team_members", []):
            acct.team_members.append(
                {
                    "middle_name": None,
                    "phone_number": None,
                    "street_1": None,
                    "street_2": None,
                    "city": None,
                    "province": None,
                    "country": None,
                    "postal_code": None,
                    **raw,
                    "business_id": acct.business["id"],
                    "active": True,
                    "invitation_date_accepted": "2024-02-12T16:10:00Z",
                }
            )
        for key in ("bill_vendors", "bills", "bill_payments", "clients", "items", "taxes", "expenses"):
            spec = RESOURCE[key]
            for raw in data.get(key, []):
                ident = raw.get(spec.id_fields[0])
                body = {k: v for k, v in raw.items() if k not in (*spec.id_fields, "vis_state")}
                self._insert(acct, spec, body, 0, fixture_id=ident)
                if raw.get("vis_state"):
                    acct.tables[key].rows[int(ident)]["vis_state"] = raw["vis_state"]
        for raw in data.get("invoices", []):
            body = {k: v for k, v in raw.items() if k not in ("id", "action_mark_as_sent")}
            created = self.create_record(acct, RESOURCE["invoices"], body, 0, fixture_id=raw.get("id"))
            if raw.get("action_mark_as_sent"):
                self.update_record(acct, RESOURCE["invoices"], created["id"], {"action_mark_as_sent": True}, 0)
        for raw in data.get("payments", []):
            body = {k: v for k, v in raw.items() if k != "id"}
            self.create_record(acct, RESOURCE["payments"], body, 0, fixture_id=raw.get("id"))

    def generate(self, counts: Mapping[str, int], account_id: str = demo.BRIGHTSIDE_ACCOUNT_ID) -> None:
        """Synthetic bill vendors and bills (1-3 lines each) for benchmarks; fast, no webhooks."""
        acct = self.accounts[account_id]
        if not acct.tables["categories"].rows:
            self._seed_account(acct, {"categories": demo.CATEGORIES})
        vendors, bills = acct.tables["bill_vendors"], acct.tables["bills"]
        rng = random.Random(4201 + len(vendors.rows) + len(bills.rows))
        self.quiet = True
        try:
            for _ in range(int(counts.get("bill_vendors", 0))):
                self._insert(acct, RESOURCE["bill_vendors"], demo.generated_vendor(vendors.next_id, rng), 0)
            wanted = int(counts.get("bills", 0))
            if wanted and not vendors.rows:
                for _ in range(max(1, wanted // 10)):
                    self._insert(acct, RESOURCE["bill_vendors"], demo.generated_vendor(vendors.next_id, rng), 0)
            active = [v for v, row in vendors.rows.items() if row.get("vis_state", 0) != 1]
            for n in range(wanted):
                vendorid = active[n % len(active)]
                self._insert(acct, RESOURCE["bills"], demo.generated_bill(bills.next_id, vendorid, rng), 0)
        finally:
            self.quiet = False

    def snapshot(self) -> dict[str, Any]:
        accounts = {}
        for account_id, acct in self.accounts.items():
            data: dict[str, Any] = {
                spec.key: [self.render(acct, spec, row) for row in acct.tables[spec.key].ordered()]
                for spec in RESOURCES
            }
            data["ledger_accounts"] = self.list_ledger_accounts(acct)
            data["callbacks"] = [self.render_callback(r) for r in acct.callbacks.ordered()]
            data["team_members"] = list(acct.team_members)
            data["projects"] = list(acct.projects)
            data["invitations"] = list(acct.invitations)
            accounts[account_id] = data
        now = self.clock()
        return {
            "accounts": accounts,
            "oauth": {
                **self.stats,
                "live_access_tokens": sum(1 for g in self.access_tokens.values() if g["expires_at"] > now),
                "unused_refresh_tokens": sum(1 for c in self.refresh_tokens.values() if not c["used"]),
            },
        }
