"""QuickBooks Online in memory: realms, entities, OAuth grants, the query engine and CDC.

Actions are named after the API's operations and raise :class:`QBOFault` shaped like Intuit's
``Fault`` bodies. Money is ``Decimal`` inside and a JSON number outside (``25.0``, ``659.88``).
Times are the realm's local time (Pacific), as QuickBooks writes ``MetaData``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_mlconnector.sandbox.quickbooks import query as qry

# Sandbox credentials (constants, never real secrets).
SANDBOX_REALM_ID = "9341453050001234"
SANDBOX_CLIENT_ID = "ABqbSandboxMlConnectorClient0001"
SANDBOX_CLIENT_SECRET = "qbo-sandbox-client-secret-1b7e0d9c"
SANDBOX_REFRESH_TOKEN = "AB11qbo-sandbox-refresh-0-8f2c61d4a9e3"
SANDBOX_REDIRECT_URI = "https://localhost:8765/oauth/quickbooks/callback"
SANDBOX_WEBHOOK_VERIFIER_TOKEN = "qbo-sandbox-verifier-3e5a7c9d"

ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 8726400  # what Intuit returns as x_refresh_token_expires_in (~101 days)
CDC_LOOKBACK_DAYS = 30
CDC_MAX_OBJECTS = 1000
PACIFIC = ZoneInfo("America/Los_Angeles")
USD = {"value": "USD", "name": "United States Dollar"}

NAMED_ENTITIES = ("Vendor", "Customer", "Employee")  # share the DisplayName namespace
QUERYABLE = ("Vendor", "PurchaseOrder", "Bill", "Account", "Customer", "Employee", "Item", "CompanyInfo")
#: purchase documents: same lines, refs and DocNumber rules (a Bill posts to A/P, a PO does not).
DOCUMENTS = ("PurchaseOrder", "Bill")
DOC_NUMBER_MAX = 21
HAS_ACTIVE = {"Vendor", "Account", "Customer", "Employee", "Item"}

READ_ONLY = ["Id", "SyncToken", "MetaData", "domain", "sparse"]
SCHEMA: dict[str, list[str]] = {
    "Vendor": [
        "Title",
        "GivenName",
        "MiddleName",
        "FamilyName",
        "Suffix",
        "CompanyName",
        "DisplayName",
        "PrintOnCheckName",
        "Active",
        "TaxIdentifier",
        "BillRate",
        "AcctNum",
        "Vendor1099",
        "TaxReportingBasis",
        "BillAddr",
        "PrimaryPhone",
        "AlternatePhone",
        "Mobile",
        "Fax",
        "PrimaryEmailAddr",
        "WebAddr",
        "TermRef",
        "CurrencyRef",
        "APAccountRef",
        "OtherContactInfo",
    ],
    "PurchaseOrder": [
        "APAccountRef",
        "VendorRef",
        "Line",
        "CurrencyRef",
        "GlobalTaxCalculation",
        "DocNumber",
        "TxnDate",
        "DueDate",
        "POStatus",
        "Memo",
        "PrivateNote",
        "POEmail",
        "ShipAddr",
        "VendorAddr",
        "ShipTo",
        "ShipMethodRef",
        "ClassRef",
        "SalesTermRef",
        "CustomField",
        "TxnTaxDetail",
        "ExchangeRate",
        "EmailStatus",
        "DepartmentRef",
    ],
    "Bill": [
        "APAccountRef",
        "VendorRef",
        "Line",
        "CurrencyRef",
        "GlobalTaxCalculation",
        "DocNumber",
        "TxnDate",
        "DueDate",
        "PrivateNote",
        "SalesTermRef",
        "DepartmentRef",
        "TxnTaxDetail",
        "ExchangeRate",
    ],
    "Account": [
        "Name",
        "AcctNum",
        "AccountType",
        "AccountSubType",
        "Classification",
        "FullyQualifiedName",
        "Active",
        "SubAccount",
        "ParentRef",
        "Description",
        "CurrentBalance",
        "CurrentBalanceWithSubAccounts",
        "CurrencyRef",
    ],
    "Customer": ["DisplayName", "CompanyName", "GivenName", "FamilyName", "Active", "PrimaryEmailAddr", "Balance"],
    "Employee": ["DisplayName", "GivenName", "FamilyName", "Active", "PrimaryEmailAddr", "EmployeeNumber"],
    "Item": ["Name", "Type", "Active", "ExpenseAccountRef", "IncomeAccountRef", "PurchaseCost", "Description"],
    "CompanyInfo": ["CompanyName", "LegalName", "CompanyAddr", "Country", "Email", "FiscalYearStartMonth"],
}
SERVER_FIELDS = {
    "Vendor": ["Balance", "V4IDPseudonym"],
    "PurchaseOrder": ["TotalAmt", "LinkedTxn"],
    "Bill": ["TotalAmt", "Balance", "LinkedTxn"],
}


class QBOFault(Exception):
    """A QuickBooks ``Fault``: HTTP status, Intuit error code, message, detail and fault type."""

    def __init__(
        self, status: int, code: str, message: str, detail: str, fault_type: str = "ValidationFault", element: str = ""
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.fault_type = fault_type
        self.element = element

    def body(self, time: str) -> dict[str, Any]:
        error = {"Message": self.message, "Detail": self.detail, "code": self.code, "element": self.element}
        return {"Fault": {"Error": [error], "type": self.fault_type}, "time": time}


class AuthFailure(Exception):
    """401 (lower-case ``fault``) or 403 (``Fault`` type AuthorizationFault) before any business logic."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str = "") -> None:
        super().__init__(description or error)
        self.status = status
        self.error = error
        self.description = description


def duplicate_name(name: str) -> QBOFault:
    return QBOFault(
        400,
        "6240",
        "Duplicate Name Exists Error",
        "The name supplied already exists. : Another customer, vendor or employee is already using this name. "
        f"Please use a different name. ({name})",
    )


def stale_object() -> QBOFault:
    return QBOFault(
        400,
        "5010",
        "Stale Object Error",
        "Stale Object Error : You and root were working on this at the same time. root finished before you did, "
        "so your work was not saved.",
    )


def not_found(what: str) -> QBOFault:
    return QBOFault(
        400,
        "610",
        "Object Not Found",
        f"Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, "
        f"customers, items, vendors or employees. ({what})",
    )


def required(param: str) -> QBOFault:
    return QBOFault(
        400,
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {param} is missing in the request",
    )


def invalid_property(entity: str, prop: str) -> QBOFault:
    return QBOFault(
        400,
        "2010",
        "Request has invalid or unsupported property",
        f'Property Name:Unrecognized field "{prop}" (class com.intuit.schema.finance.v3.{entity}), '
        "not marked as ignorable",
    )


def business(detail: str) -> QBOFault:
    return QBOFault(
        400,
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
    )


def local_time(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc).astimezone(PACIFIC)


def qbo_time(ts: float) -> str:
    """``MetaData`` form: ``2026-11-20T06:12:45-08:00``."""
    return local_time(ts).replace(microsecond=0).isoformat()


def envelope_time(ts: float) -> str:
    """The ``time`` of every response: ``2026-11-20T06:12:45.123-08:00``."""
    return local_time(ts).isoformat(timespec="milliseconds")


def money(value: Any, field_name: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise QBOFault(
            400, "2030", "Invalid Number", f"Invalid Number : {field_name} value '{value}' is not a number"
        ) from None
    if not amount.is_finite():
        raise QBOFault(400, "2030", "Invalid Number", f"Invalid Number : {field_name}")
    return amount


def signature(verifier_token: str, body: bytes) -> str:
    """``intuit-signature``: base64 of HMAC-SHA256 over the raw body, keyed with the verifier token."""
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class _RefreshGrant:
    realm: str
    client_id: str
    issued_at: float
    expires_at: float
    superseded_at: float | None = None
    successor: str | None = None


@dataclass
class _AccessGrant:
    realm: str
    client_id: str
    expires_at: float


@dataclass
class Change:
    """One entity change, for webhooks: ``operation`` is Create, Update or Delete."""

    entity: str
    id: str
    operation: str
    at: float


@dataclass
class Realm:
    realm_id: str
    company: dict[str, Any]
    entities: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {e: {} for e in QUERYABLE})
    deleted: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {e: {} for e in QUERYABLE})
    next_id: int = 1
    next_doc_number: int = 1001
    replays: dict[str, tuple[float, int, bytes]] = field(default_factory=dict)

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id - 1)

    def saw_id(self, entity_id: str) -> None:
        """Keep generated ids above every seeded one."""
        if entity_id.isdigit():
            self.next_id = max(self.next_id, int(entity_id) + 1)


class QuickBooksBackend:
    """All QuickBooks state. ``clock`` returns sandbox epoch seconds; ``switches`` is live."""

    def __init__(self, clock: Callable[[], float], switches: Mapping[str, Any]) -> None:
        self.clock = clock
        self.switches = switches
        self.realms: dict[str, Realm] = {}
        self.clients: dict[str, tuple[str, set[str]]] = {
            SANDBOX_CLIENT_ID: (SANDBOX_CLIENT_SECRET, {SANDBOX_REDIRECT_URI}),
        }
        self.refresh_tokens: dict[str, _RefreshGrant] = {}
        self.access_tokens: dict[str, _AccessGrant] = {}
        self.auth_codes: dict[str, tuple[str, str, str, float]] = {}  # code -> realm, client, redirect, exp
        self.add_realm(SANDBOX_REALM_ID, {"CompanyName": "Brightside Marketing"})
        now = self.clock()
        self.refresh_tokens[SANDBOX_REFRESH_TOKEN] = _RefreshGrant(
            SANDBOX_REALM_ID, SANDBOX_CLIENT_ID, now, now + REFRESH_TOKEN_SECONDS
        )

    # ------------------------------------------------------------------ realms

    def add_realm(self, realm_id: str, company: Mapping[str, Any]) -> Realm:
        now = qbo_time(self.clock())
        info = {
            "CompanyName": company.get("CompanyName", "Sandbox Company"),
            "LegalName": company.get("LegalName", company.get("CompanyName", "Sandbox Company")),
            "Country": "US",
            "FiscalYearStartMonth": "January",
            "SupportedLanguages": "en",
            "domain": "QBO",
            "sparse": False,
            "Id": "1",
            "SyncToken": "0",
            "MetaData": {"CreateTime": now, "LastUpdatedTime": now},
            **{k: v for k, v in company.items() if k not in ("Id",)},
        }
        realm = Realm(realm_id=realm_id, company=info)
        self.realms[realm_id] = realm
        return realm

    def realm(self, realm_id: str) -> Realm:
        found = self.realms.get(realm_id)
        if found is None:
            raise AuthFailure(403, f"realm {realm_id} is not connected to this app")
        return found

    # ------------------------------------------------------------------ OAuth

    def authorize(self, client_id: str, redirect_uri: str, realm_id: str) -> str:
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError(400, "invalid_client")
        if redirect_uri not in client[1]:
            raise OAuthError(400, "invalid_request", "redirect_uri is not registered")
        self.realm(realm_id)
        code = "AB11qbo-code-" + secrets.token_hex(10)
        self.auth_codes[code] = (realm_id, client_id, redirect_uri, self.clock() + 300)
        return code

    def token(self, authorization: str, form: Mapping[str, str]) -> dict[str, Any]:
        """``POST /oauth2/v1/tokens/bearer`` with HTTP Basic client authentication."""
        scheme, _, value = authorization.partition(" ")
        try:
            client_id, _, secret = (
                base64.b64decode(value).decode().partition(":") if scheme == "Basic" else ("", "", "")
            )
        except (ValueError, UnicodeDecodeError):
            client_id, secret = "", ""
        client = self.clients.get(client_id)
        if client is None or not hmac.compare_digest(client[0], secret):
            raise OAuthError(401, "invalid_client")
        now = self.clock()
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            entry = self.auth_codes.pop(form.get("code", ""), None)
            if entry is None or entry[1] != client_id or entry[3] <= now or entry[2] != form.get("redirect_uri"):
                raise OAuthError(400, "invalid_grant")
            refresh = self._new_refresh(entry[0], client_id, now)
            return self._issue(entry[0], client_id, refresh, now)
        if grant_type != "refresh_token":
            raise OAuthError(400, "unsupported_grant_type")
        presented = form.get("refresh_token", "")
        grant = self.refresh_tokens.get(presented)
        if grant is None or grant.client_id != client_id or grant.expires_at <= now:
            raise OAuthError(400, "invalid_grant")
        if grant.superseded_at is not None:
            # A rotated-out token works only inside the grace period, and then yields its successor.
            grace = float(self.switches.get("refresh_token_grace_seconds", 0) or 0)
            if now - grant.superseded_at > grace or grant.successor is None:
                raise OAuthError(400, "invalid_grant")
            current = grant.successor
        else:
            current = presented
            rotate_after = float(self.switches.get("refresh_token_rotation_seconds", 0) or 0)
            if now - grant.issued_at >= rotate_after:
                current = self._new_refresh(grant.realm, client_id, now)
                grant.superseded_at = now
                grant.successor = current
            else:
                grant.expires_at = now + REFRESH_TOKEN_SECONDS  # rolling validity, extended on use
        return self._issue(grant.realm, client_id, current, now)

    def _new_refresh(self, realm: str, client_id: str, now: float) -> str:
        token = "AB11" + secrets.token_urlsafe(30)
        self.refresh_tokens[token] = _RefreshGrant(realm, client_id, now, now + REFRESH_TOKEN_SECONDS)
        return token

    def _issue(self, realm: str, client_id: str, refresh: str, now: float) -> dict[str, Any]:
        access = "eyJqbo." + secrets.token_urlsafe(48)
        self.access_tokens[access] = _AccessGrant(realm, client_id, now + ACCESS_TOKEN_SECONDS)
        return {
            "token_type": "bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "x_refresh_token_expires_in": int(self.refresh_tokens[refresh].expires_at - now),
        }

    def authenticate(self, authorization: str, realm_id: str) -> None:
        scheme, _, token = authorization.partition(" ")
        grant = self.access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None:
            raise AuthFailure(401, "Token invalid")
        if grant.expires_at <= self.clock():
            raise AuthFailure(401, "Token expired")
        if grant.realm != realm_id:
            raise AuthFailure(403, f"The token is not authorized for realm {realm_id}")

    def expire_access_tokens(self) -> None:
        for grant in self.access_tokens.values():
            grant.expires_at = min(grant.expires_at, self.clock() - 1)

    # ------------------------------------------------------------------ reads

    def get(self, realm_id: str, entity: str, entity_id: str) -> dict[str, Any]:
        found = self.realm(realm_id).entities[entity].get(entity_id)
        if found is None:
            raise not_found(f"{entity} {entity_id}")
        return self.public(entity, found)

    def company_info(self, realm_id: str, company_id: str) -> dict[str, Any]:
        realm = self.realm(realm_id)
        if company_id != realm_id:
            raise not_found(f"CompanyInfo {company_id}")
        info = dict(realm.company)
        if self.switches.get("offering_sku"):
            info["NameValue"] = [{"Name": "OfferingSku", "Value": str(self.switches["offering_sku"])}]
        return info

    def public(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = _strip_empty(dict(record))
        if entity == "Vendor" and out.get("TaxIdentifier") and self.switches.get("mask_tax_identifier", True):
            out["TaxIdentifier"] = "XXXXXX" + str(out["TaxIdentifier"])[-4:]
        return out

    def query(self, realm_id: str, text: str) -> dict[str, Any]:
        realm = self.realm(realm_id)
        try:
            parsed = qry.parse(text)
        except qry.QueryError as exc:
            raise self._query_fault(exc) from None
        if parsed.entity not in QUERYABLE:
            raise self._query_fault(
                qry.QueryError("validation", f"QueryValidationError: Invalid entity {parsed.entity}")
            )
        schema = [*READ_ONLY, *SCHEMA[parsed.entity], *SERVER_FIELDS.get(parsed.entity, [])]
        for prop in [c.prop for c in parsed.where] + [p for p, _ in parsed.order_by]:
            if not qry.known_property(prop, schema):
                raise self._query_fault(
                    qry.QueryError("validation", f"QueryValidationError: property '{prop}' is not queryable")
                )
        cap = int(self.switches.get("query_max_results_cap", 1000))
        max_results = 100 if parsed.max_results is None else parsed.max_results
        if max_results > cap:
            if self.switches.get("query_over_cap", "cap") == "error":
                raise self._query_fault(
                    qry.QueryError("validation", f"QueryValidationError: MAXRESULTS must not exceed {cap}")
                )
            max_results = cap
        records = [realm.company] if parsed.entity == "CompanyInfo" else list(realm.entities[parsed.entity].values())
        if (
            parsed.entity in HAS_ACTIVE
            and self.switches.get("query_excludes_inactive", True)
            and not any(c.prop == "Active" for c in parsed.where)
        ):
            records = [r for r in records if r.get("Active", True)]
        fold = bool(self.switches.get("query_case_insensitive", True))
        records = [r for r in records if all(qry.matches(r, c, fold_case=fold) for c in parsed.where)]
        if parsed.count:
            return {"totalCount": len(records)}
        order = parsed.order_by or [("Id", False)]
        for prop, descending in reversed(order):
            records.sort(key=functools.partial(qry.sort_key, prop=prop), reverse=descending)
        page = records[parsed.start_position - 1 : parsed.start_position - 1 + max_results]
        if not page:
            return {}
        return {
            parsed.entity: [self.public(parsed.entity, r) for r in page],
            "startPosition": parsed.start_position,
            "maxResults": len(page),
        }

    def _query_fault(self, exc: qry.QueryError) -> QBOFault:
        if exc.kind == "parse":
            return QBOFault(400, "4000", "Error parsing query", exc.detail)
        return QBOFault(400, "4001", "Invalid query", exc.detail)

    def cdc(self, realm_id: str, entities: list[str], changed_since: str) -> list[dict[str, Any]]:
        realm = self.realm(realm_id)
        if not entities or not changed_since:
            raise required("entities" if not entities else "changedSince")
        unknown = [e for e in entities if e not in QUERYABLE or e == "CompanyInfo"]
        if unknown:
            raise QBOFault(400, "2010", "Request has invalid or unsupported property", f"Invalid entity {unknown[0]}")
        since = qry.as_time(changed_since)
        if since is None:
            raise QBOFault(400, "2010", "Request has invalid or unsupported property", "changedSince is not a dateTime")
        oldest = datetime.fromtimestamp(self.clock(), tz=timezone.utc) - timedelta(days=CDC_LOOKBACK_DAYS)
        if since < oldest:
            raise QBOFault(
                400,
                "2010",
                "Request has invalid or unsupported property",
                f"changedSince must be within the last {CDC_LOOKBACK_DAYS} days",
            )
        budget = CDC_MAX_OBJECTS
        groups: list[dict[str, Any]] = []
        for entity in entities:
            changed: list[dict[str, Any]] = []
            for record in list(realm.entities[entity].values()) + list(realm.deleted[entity].values()):
                when = qry.as_time(record["MetaData"]["LastUpdatedTime"])
                if when is not None and when > since:
                    changed.append(record)
            changed.sort(key=lambda r: qry.sort_key(r, "MetaData.LastUpdatedTime"))
            changed = changed[:budget]
            budget -= len(changed)
            rows = [self.public(entity, r) if r.get("status") != "Deleted" else dict(r) for r in changed]
            group: dict[str, Any] = {entity: rows, "startPosition": 1, "maxResults": len(rows)} if rows else {}
            groups.append(group)
        if self.switches.get("cdc_shape", "per_entity") == "combined":
            merged: dict[str, Any] = {}
            for group in groups:
                merged.update({k: v for k, v in group.items() if k not in ("startPosition", "maxResults")})
            return [{"QueryResponse": [merged]}]
        return [{"QueryResponse": groups}]

    # ------------------------------------------------------------------ writes

    def _check_fields(self, entity: str, body: Mapping[str, Any]) -> None:
        allowed = set(READ_ONLY) | set(SCHEMA[entity]) | set(SERVER_FIELDS.get(entity, []))
        for key in body:
            if key not in allowed:
                raise invalid_property(entity, key)

    def _meta(self, created: str | None = None) -> dict[str, str]:
        now = qbo_time(self.clock())
        return {"CreateTime": created or now, "LastUpdatedTime": now}

    def _check_sync(self, current: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        if body.get("SyncToken") in (None, ""):
            raise required("SyncToken")
        if str(body["SyncToken"]) != str(current["SyncToken"]):
            raise stale_object()

    def _name_taken(self, realm: Realm, name: str, except_id: str | None) -> bool:
        fold = self.switches.get("display_name_case_insensitive", True)
        wanted = name.strip().lower() if fold else name.strip()
        for entity in NAMED_ENTITIES:
            for entity_id, record in realm.entities[entity].items():
                if entity == "Vendor" and entity_id == except_id:
                    continue
                theirs = str(record.get("DisplayName") or "").strip()
                if (theirs.lower() if fold else theirs) == wanted:
                    return True
        return False

    def write_vendor(self, realm_id: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        """``POST /vendor``: create without ``Id``; full or sparse (``"sparse": true``) update with one."""
        realm = self.realm(realm_id)
        self._check_fields("Vendor", body)
        if body.get("Id") not in (None, ""):
            return self._update_vendor(realm, body)
        record = {k: v for k, v in body.items() if k in SCHEMA["Vendor"]}
        record["DisplayName"] = self._display_name(record)
        if self._name_taken(realm, record["DisplayName"], None):
            raise duplicate_name(record["DisplayName"])
        currency = (record.get("CurrencyRef") or USD).get("value")
        if currency != "USD" and not self.switches.get("multicurrency_enabled", False):
            raise business(f"Multicurrency is not enabled for this company; a {currency} vendor needs it")
        vendor_id = realm.new_id()
        record.update(
            Id=vendor_id,
            SyncToken="0",
            Active=record.get("Active", True),
            Balance=Decimal("0"),
            Vendor1099=record.get("Vendor1099", False),
            PrintOnCheckName=record.get("PrintOnCheckName") or record["DisplayName"],
            CurrencyRef=record.get("CurrencyRef") or dict(USD),
            domain="QBO",
            sparse=False,
            MetaData=self._meta(),
        )
        realm.entities["Vendor"][vendor_id] = record
        return self.public("Vendor", record), Change("Vendor", vendor_id, "Create", self.clock())

    def _display_name(self, record: Mapping[str, Any]) -> str:
        name = record.get("DisplayName")
        if not name:
            parts = [record.get(p) for p in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
            name = " ".join(str(p) for p in parts if p)
        if not name:
            raise required("DisplayName (or one of Title, GivenName, MiddleName, FamilyName, Suffix)")
        name = str(name).strip()
        if len(name) > 500:
            raise QBOFault(
                400,
                "2050",
                "String length is either shorter or longer than supported by specification",
                f"String length specified does not match the supported length. Min:0 Max:500 supported. "
                f"Supplied length:{len(name)}",
                element="DisplayName",
            )
        if ":" in name and self.switches.get("display_name_colon_rejected", True):
            raise business("The name supplied contains invalid characters ':'")
        return name

    def _update_vendor(self, realm: Realm, body: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        vendor_id = str(body["Id"])
        current = realm.entities["Vendor"].get(vendor_id)
        if current is None:
            raise not_found(f"Vendor {vendor_id}")
        self._check_sync(current, body)
        supplied = {k: v for k, v in body.items() if k in SCHEMA["Vendor"]}
        kept = (current.get("CurrencyRef") or USD).get("value")
        if "CurrencyRef" in supplied and (supplied["CurrencyRef"] or {}).get("value") != kept:
            raise business("CurrencyRef cannot be changed once set")  # addendum 2.1: read-only after create
        if body.get("sparse") is True:
            merged = {**current, **supplied}
        else:
            # Full update: writable fields left out are cleared.
            merged = {k: v for k, v in current.items() if k not in SCHEMA["Vendor"]} | supplied
            merged.setdefault("Active", True)
            merged.setdefault("CurrencyRef", current.get("CurrencyRef") or dict(USD))
        merged["DisplayName"] = self._display_name(merged)
        if self._name_taken(realm, merged["DisplayName"], vendor_id):
            raise duplicate_name(merged["DisplayName"])
        merged["SyncToken"] = str(int(current["SyncToken"]) + 1)
        merged["MetaData"] = self._meta(current["MetaData"]["CreateTime"])
        merged["sparse"] = False
        realm.entities["Vendor"][vendor_id] = merged
        return self.public("Vendor", merged), Change("Vendor", vendor_id, "Update", self.clock())

    def write_purchase_order(self, realm_id: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        """``POST /purchaseorder``: create, or full/sparse update when ``Id`` is present."""
        return self.write_document(realm_id, "PurchaseOrder", body)

    def write_document(self, realm_id: str, entity: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        """``POST /purchaseorder`` or ``/bill``: create, or full/sparse update when ``Id`` is present."""
        realm = self.realm(realm_id)
        self._check_fields(entity, body)
        if entity == "PurchaseOrder" and not self.switches.get("purchase_orders_enabled", True):
            # UNCONFIRMED: the API error when the plan or the setting lacks POs (addendum 2.2).
            raise business("Purchase Orders is turned off. Turn on purchase orders in Settings > Expenses")
        supplied = {k: v for k, v in body.items() if k in SCHEMA[entity]}
        if body.get("Id") not in (None, ""):
            doc_id = str(body["Id"])
            current = realm.entities[entity].get(doc_id)
            if current is None:
                raise not_found(f"{entity} {doc_id}")
            self._check_sync(current, body)
            if body.get("sparse") is True:
                record = {**current, **supplied}
            else:
                record = {k: v for k, v in current.items() if k not in SCHEMA[entity]} | supplied
                record.setdefault("DocNumber", current.get("DocNumber"))
            self._validate_document(realm, entity, record, doc_id)
            record["SyncToken"] = str(int(current["SyncToken"]) + 1)
            record["MetaData"] = self._meta(current["MetaData"]["CreateTime"])
            record["sparse"] = False
            realm.entities[entity][doc_id] = record
            return self.public(entity, record), Change(entity, doc_id, "Update", self.clock())
        record = dict(supplied)
        self._validate_document(realm, entity, record, None)
        doc_id = realm.new_id()
        record.update(Id=doc_id, SyncToken="0", domain="QBO", sparse=False, MetaData=self._meta())
        realm.entities[entity][doc_id] = record
        return self.public(entity, record), Change(entity, doc_id, "Create", self.clock())

    def delete_purchase_order(self, realm_id: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        return self.delete_document(realm_id, "PurchaseOrder", body)

    def delete_document(self, realm_id: str, entity: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        """``POST /<entity>?operation=delete`` with ``{Id, SyncToken}``: gone, a tombstone in CDC."""
        realm = self.realm(realm_id)
        doc_id = str(body.get("Id") or "")
        current = realm.entities[entity].get(doc_id)
        if current is None:
            raise not_found(f"{entity} {doc_id}")
        self._check_sync(current, body)
        del realm.entities[entity][doc_id]
        tombstone = {
            "domain": "QBO",
            "status": "Deleted",
            "Id": doc_id,
            "MetaData": {"LastUpdatedTime": qbo_time(self.clock())},
        }
        realm.deleted[entity][doc_id] = tombstone
        return {"status": "Deleted", "Id": doc_id, "domain": "QBO"}, Change(entity, doc_id, "Delete", self.clock())

    def _ref(self, realm: Realm, entity: str, ref: Any, label: str) -> dict[str, Any]:
        if not isinstance(ref, Mapping) or not ref.get("value"):
            raise required(label)
        target = realm.entities[entity].get(str(ref["value"]))
        if target is None or not target.get("Active", True):
            raise not_found(f"{label} {ref.get('value')}")
        return target

    def _validate_po(self, realm: Realm, record: dict[str, Any], po_id: str | None) -> None:
        self._validate_document(realm, "PurchaseOrder", record, po_id)

    def _validate_document(self, realm: Realm, entity: str, record: dict[str, Any], doc_id: str | None) -> None:
        vendor = self._ref(realm, "Vendor", record.get("VendorRef"), "VendorRef")
        record["VendorRef"] = {"value": vendor["Id"], "name": vendor["DisplayName"]}
        ap = self._ref(realm, "Account", record.get("APAccountRef"), "APAccountRef")
        if ap.get("AccountType") != "Accounts Payable":
            raise business("APAccountRef must be an Accounts Payable account")
        record["APAccountRef"] = {"value": ap["Id"], "name": ap["Name"]}
        currency = record.get("CurrencyRef") or dict(USD)
        if currency.get("value") != "USD" and not self.switches.get("multicurrency_enabled", False):
            raise business("Multicurrency is not enabled for this company; CurrencyRef must be USD")
        record["CurrencyRef"] = dict(currency) if currency.get("value") != "USD" else dict(USD)
        lines = record.get("Line")
        if not isinstance(lines, list) or not lines:
            raise required("Line")
        total = Decimal("0")
        cleaned: list[dict[str, Any]] = []
        for number, raw in enumerate(lines, start=1):
            if not isinstance(raw, Mapping):
                raise required("Line")
            line = dict(raw)
            if line.get("Amount") is None:
                raise required("Line.Amount")
            amount = money(line["Amount"], "Amount")
            kind = line.get("DetailType")
            detail = dict(line.get(str(kind)) or {})
            if kind == "AccountBasedExpenseLineDetail":
                account = self._ref(realm, "Account", detail.get("AccountRef"), "AccountRef")
                detail["AccountRef"] = {"value": account["Id"], "name": account["Name"]}
                detail.setdefault("BillableStatus", "NotBillable")
                detail.setdefault("TaxCodeRef", {"value": "NON"})
            elif kind == "ItemBasedExpenseLineDetail":
                item = self._ref(realm, "Item", detail.get("ItemRef"), "ItemRef")
                if not item.get("ExpenseAccountRef"):
                    raise business("Select an account for this transaction.")
                detail["ItemRef"] = {"value": item["Id"], "name": item["Name"]}
                if detail.get("Qty") is not None and detail.get("UnitPrice") is not None:
                    qty = money(detail["Qty"], "Qty")
                    price = money(detail["UnitPrice"], "UnitPrice")
                    if (qty * price).quantize(Decimal("0.01")) != amount.quantize(Decimal("0.01")):
                        raise QBOFault(
                            400,
                            "6070",
                            "Amount is not equal to UnitPrice * Qty",
                            f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
                        )
                    detail["Qty"], detail["UnitPrice"] = qty, price
                detail.setdefault("BillableStatus", "NotBillable")
                detail.setdefault("TaxCodeRef", {"value": "NON"})
            else:
                raise business(
                    f"Line {number}: DetailType must be AccountBasedExpenseLineDetail or ItemBasedExpenseLineDetail"
                )
            total += amount
            entry: dict[str, Any] = {"Id": str(number), "LineNum": number, "DetailType": kind, "Amount": amount}
            if line.get("Description"):
                entry["Description"] = line["Description"]
            entry[str(kind)] = detail
            cleaned.append(entry)
        record["Line"] = cleaned
        record["TotalAmt"] = total
        if entity == "PurchaseOrder":
            status = record.get("POStatus") or "Open"
            if status not in ("Open", "Closed"):
                raise business("POStatus must be Open or Closed")
            record["POStatus"] = status
            record.setdefault("EmailStatus", "NotSet")
        else:
            record["Balance"] = total  # nothing paid: the sandbox has no BillPayment
        record["TxnDate"] = record.get("TxnDate") or local_time(self.clock()).date().isoformat()
        for key in ("TxnDate", "DueDate"):
            if record.get(key):
                try:
                    date.fromisoformat(str(record[key]))
                except ValueError:
                    raise QBOFault(400, "2040", "Invalid Date", f"Invalid date format for {key}") from None
        self._check_period(entity, str(record["TxnDate"]))
        doc = record.get("DocNumber")
        if doc:
            self._check_doc_number(realm, entity, record, doc_id)
        elif entity == "PurchaseOrder":
            taken = {str(p.get("DocNumber")) for p in realm.entities["PurchaseOrder"].values()}
            while str(realm.next_doc_number) in taken:
                realm.next_doc_number += 1
            record["DocNumber"] = str(realm.next_doc_number)
            realm.next_doc_number += 1

    def _check_period(self, entity: str, txn_date: str) -> None:
        """6210 "Account Period Closed" for a date on or before the company's closing date."""
        closed = self.switches.get("books_closed_through")
        if not closed or (entity == "PurchaseOrder" and not self.switches.get("closing_date_applies_to_po", True)):
            return
        if date.fromisoformat(txn_date) <= date.fromisoformat(str(closed)):
            raise QBOFault(
                400,
                "6210",
                "Account Period Closed",
                f"Account Period Closed, Cannot Update Through This Date : The account period has closed and the "
                f"books are closed through {closed}. TxnDate={txn_date}",
            )

    def _check_doc_number(self, realm: Realm, entity: str, record: Mapping[str, Any], doc_id: str | None) -> None:
        """DocNumber: 21 characters at most; a reused one is refused with 6140 (addendum 2.3)."""
        doc = str(record["DocNumber"])
        if len(doc) > DOC_NUMBER_MAX:
            raise QBOFault(
                400,
                "2050",
                "String length is either shorter or longer than supported by specification",
                f"String length specified does not match the supported length. Min:0 Max:{DOC_NUMBER_MAX} "
                f"supported. Supplied length:{len(doc)}",
                element="DocNumber",
            )
        if not self.switches.get("duplicate_docnumber_error", True):
            return
        vendor = str(record["VendorRef"]["value"])
        for other_id, other in realm.entities[entity].items():
            if other_id == doc_id or str(other.get("DocNumber")) != doc:
                continue
            # A bill number is the vendor's: another vendor may reuse it (UNCONFIRMED scope, switch).
            per_vendor = entity == "Bill" and self.switches.get("bill_docnumber_unique_per_vendor", True)
            if per_vendor and str(other["VendorRef"]["value"]) != vendor:
                continue
            raise QBOFault(
                400,
                "6140",
                "Duplicate Document Number Error",
                f"Duplicate Document Number Error : You must specify a different number. This number has already "
                f"been used. DocNumber={doc} is assigned to TxnType={entity} with TxnId={other_id}",
            )

    # ------------------------------------------------------------------ fixtures

    def load(self, fixture: Mapping[str, Any]) -> None:
        realm_id = str(fixture.get("realm_id", SANDBOX_REALM_ID))
        realm = self.realms.get(realm_id) or self.add_realm(realm_id, fixture.get("company", {}))
        if fixture.get("company"):
            realm.company.update(fixture["company"])
        plural = {
            "accounts": "Account",
            "vendors": "Vendor",
            "customers": "Customer",
            "employees": "Employee",
            "items": "Item",
        }
        for key, entity in plural.items():
            for raw in fixture.get(key, []):
                record = _decimals(dict(raw))
                record.setdefault("Active", True)
                record.setdefault("SyncToken", "0")
                record.setdefault("domain", "QBO")
                record.setdefault("sparse", False)
                record.setdefault("MetaData", self._meta())
                if entity == "Vendor":
                    record.setdefault("Balance", Decimal("0"))
                    record.setdefault("CurrencyRef", dict(USD))
                    record.setdefault("PrintOnCheckName", record.get("DisplayName"))
                if entity == "Account":
                    record.setdefault("FullyQualifiedName", record.get("Name"))
                    record.setdefault("CurrencyRef", dict(USD))
                realm.entities[entity][str(record["Id"])] = record
                realm.saw_id(str(record["Id"]))
        for raw in fixture.get("purchase_orders", []):
            record = _decimals(dict(raw))
            self._validate_po(realm, record, str(record.get("Id")))
            record.setdefault("SyncToken", "0")
            record.update(domain="QBO", sparse=False)
            record.setdefault("MetaData", self._meta())
            realm.entities["PurchaseOrder"][str(record["Id"])] = record
            realm.saw_id(str(record["Id"]))

    def generate(self, realm_id: str, counts: Mapping[str, int]) -> None:
        realm = self.realm(realm_id)
        first = realm.next_id
        for n in range(int(counts.get("vendors", 0))):
            self.write_vendor(realm_id, {"DisplayName": f"Generated Vendor {first + n:05d}"})
        vendors = [v["Id"] for v in realm.entities["Vendor"].values() if v.get("Active", True)]
        expense = [a["Id"] for a in realm.entities["Account"].values() if a.get("AccountType") == "Expense"]
        payable = [a["Id"] for a in realm.entities["Account"].values() if a.get("AccountType") == "Accounts Payable"]
        for n in range(int(counts.get("purchase_orders", 0))):
            if not (vendors and expense and payable):
                raise ValueError("generating purchase orders needs vendors, an expense and an A/P account")
            self.write_purchase_order(
                realm_id,
                {
                    "VendorRef": {"value": vendors[n % len(vendors)]},
                    "APAccountRef": {"value": payable[0]},
                    "Line": [
                        {
                            "DetailType": "AccountBasedExpenseLineDetail",
                            "Amount": Decimal(100 + n) + Decimal("0.25"),
                            "AccountBasedExpenseLineDetail": {"AccountRef": {"value": expense[n % len(expense)]}},
                        }
                    ],
                },
            )

    def snapshot(self) -> dict[str, Any]:
        return {
            realm_id: {
                "company": realm.company,
                **{entity: list(rows.values()) for entity, rows in realm.entities.items() if entity != "CompanyInfo"},
                "deleted": {e: sorted(rows) for e, rows in realm.deleted.items() if rows},
                "replayed_request_ids": sorted(realm.replays),
            }
            for realm_id, realm in self.realms.items()
        }


def _strip_empty(value: Any) -> Any:
    """QuickBooks returns only non-empty properties."""
    if isinstance(value, dict):
        return {k: _strip_empty(v) for k, v in value.items() if v is not None and v != "" and v != {} and v != []}
    if isinstance(value, list):
        return [_strip_empty(v) for v in value]
    return value


def _decimals(record: dict[str, Any]) -> dict[str, Any]:
    for key, value in record.items():
        if isinstance(value, float):
            record[key] = Decimal(str(value))
        elif isinstance(value, dict):
            _decimals(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _decimals(item)
    return record
