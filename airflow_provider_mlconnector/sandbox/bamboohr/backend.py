"""BambooHR in memory: companies, employees, change tracking, webhooks and OAuth grants.

Actions are named like the API's endpoints (``get_employees_directory``, ``get_changed_employee_ids``,
``request_custom_report``...) and raise :class:`BambooHRError` with the HTTP status BambooHR uses.
Time comes from the sandbox clock passed in, so the control plane can fast-forward token expiry.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

# Sandbox credentials (constants, never real secrets). The API key belongs to employee 4 (the
# owner), so ``GET /employees/0`` answers with her record.
SANDBOX_COMPANY = "brightside"
SANDBOX_COMPANY_ID = "148213"
SANDBOX_API_KEY = "bhr-sandbox-key-5f0c8d2b1e7a4c3f9d6b"
SANDBOX_API_KEY_OWNER = "4"
SANDBOX_OAUTH_CLIENT_ID = "bhr-sandbox-client-ml-connector"
SANDBOX_OAUTH_CLIENT_SECRET = "bhr-sandbox-client-secret-7d1e9a0c44b2"
SANDBOX_OAUTH_REFRESH_TOKEN = "bhr-sandbox-refresh-0-3c9f1a7e5b2d"
SANDBOX_OAUTH_REDIRECT_URI = "https://localhost:8765/oauth/bamboohr/callback"

ACCESS_TOKEN_SECONDS = 3600
MAX_FIELDS = 400

DEFAULT_WEBHOOK_EVENTS = [
    "employee_with_fields.updated",
    "employee_with_fields.deleted",
    "employee_with_fields.created",
]
EVENT_TYPES = {
    "employee.created",
    "employee.updated",
    "employee.deleted",
    "employee_with_fields.created",
    "employee_with_fields.updated",
    "employee_with_fields.deleted",
    "company-integrations.updated",
    "company.updated",
    "company.deleted",
}

# (alias, English name, type, field id). Aliases are what the API takes in ``fields=``.
FIELD_CATALOG: list[tuple[str, str, str, str]] = [
    ("employeeNumber", "Employee #", "text", "17"),
    ("firstName", "First Name", "text", "1"),
    ("lastName", "Last Name", "text", "2"),
    ("preferredName", "Preferred Name", "text", "1358"),
    ("displayName", "Display Name", "text", "1357"),
    ("jobTitle", "Job Title", "list", "5"),
    ("department", "Department", "list", "4"),
    ("division", "Division", "list", "1355"),
    ("location", "Location", "list", "18"),
    ("workEmail", "Work Email", "email", "15"),
    ("homeEmail", "Home Email", "email", "16"),
    ("workPhone", "Work Phone", "phone", "11"),
    ("mobilePhone", "Mobile Phone", "phone", "13"),
    ("status", "Status", "status", "1354"),
    ("employmentHistoryStatus", "Employment Status", "list", "1360"),
    ("hireDate", "Hire Date", "date", "1936"),
    ("terminationDate", "Termination Date", "date", "1946"),
    ("supervisor", "Reporting to", "employee", "1359"),
    ("supervisorEId", "Supervisor EID", "int", "1361"),
    ("city", "City", "text", "9"),
    ("state", "State", "state", "10"),
    ("country", "Country", "country", "1368"),
    ("payRate", "Pay rate", "currency", "19"),
    ("lastChanged", "Last changed", "timestamp", "1362"),
]
FIELDS = {alias: {"id": fid, "name": name, "type": ftype, "alias": alias} for alias, name, ftype, fid in FIELD_CATALOG}
WRITABLE = set(FIELDS) - {"displayName", "lastChanged", "supervisor"}
DATE_FIELDS = {alias for alias, _, ftype, _ in FIELD_CATALOG if ftype == "date"}

DIRECTORY_FIELDS = [
    ("displayName", "text", "Display name"),
    ("firstName", "text", "First name"),
    ("lastName", "text", "Last name"),
    ("preferredName", "text", "Preferred name"),
    ("jobTitle", "list", "Job title"),
    ("workPhone", "text", "Work Phone"),
    ("mobilePhone", "text", "Mobile Phone"),
    ("workEmail", "email", "Work Email"),
    ("department", "list", "Department"),
    ("location", "list", "Location"),
    ("division", "list", "Division"),
    ("photoUploaded", "bool", "Employee photo exists"),
    ("photoUrl", "url", "Employee photo url"),
]


class BambooHRError(Exception):
    """An API failure with BambooHR's status; ``message`` goes into ``X-BambooHR-Error-Message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OAuthError(Exception):
    """A token-endpoint failure (RFC 6749 body)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def iso(ts: float) -> str:
    """BambooHR's timestamp form: ``2026-11-20T15:02:10+00:00``."""
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).isoformat()


def parse_iso(value: str) -> float:
    """Parse an ISO-8601 timestamp (``Z`` or an offset; a bare date means midnight UTC)."""
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def sign(private_key: str, body: bytes, timestamp: str) -> str:
    """``X-BambooHR-Signature``: lowercase hex HMAC-SHA256 over the raw body then the timestamp."""
    return hmac.new(private_key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


@dataclass
class Webhook:
    id: str
    name: str
    url: str
    format: str
    events: list[str]
    monitor_fields: list[str]
    post_fields: dict[str, str]
    include_company_domain: bool
    private_key: str
    created: float
    last_sent: float | None = None
    log: list[dict[str, Any]] = field(default_factory=list)

    def public(self, *, with_key: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "created": _sql_time(self.created),
            "lastSent": _sql_time(self.last_sent) if self.last_sent else None,
            "monitorFields": list(self.monitor_fields),
            "postFields": dict(self.post_fields),
            "url": self.url,
            "format": self.format,
            "includeCompanyDomain": self.include_company_domain,
            "events": list(self.events),
        }
        if with_key:
            body["privateKey"] = self.private_key
        return body


def _sql_time(ts: float) -> str:
    # Webhook.lastSent / created: "YYYY-MM-DD HH:MM:SS" in UTC.
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Company:
    domain: str
    company_id: str
    name: str
    employees: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: dict[str, float] = field(default_factory=dict)
    changed_at: dict[str, float] = field(default_factory=dict)
    deleted_at: dict[str, float] = field(default_factory=dict)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    directory_shared: bool = True


@dataclass(frozen=True)
class Caller:
    """Who is calling: a company and, for API keys, the key's own employee (``id=0``)."""

    company: str
    employee_id: str | None
    via: str  # "api_key" or "oauth"


@dataclass
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass
class _Grant:
    company: str
    client_id: str
    expires_at: float | None = None
    redirect_uri: str | None = None


class BambooHRBackend:
    """All state of the BambooHR emulator. ``clock`` returns sandbox epoch seconds."""

    def __init__(self, clock: Callable[[], float], switches: Mapping[str, Any]) -> None:
        self.clock = clock
        self.switches = switches
        self.companies: dict[str, Company] = {}
        self.api_keys: dict[str, tuple[str, str]] = {}  # key -> (company, employee id)
        self.clients: dict[str, tuple[str, set[str]]] = {}  # client id -> (secret, redirect uris)
        self.refresh_tokens: dict[str, _Grant] = {}
        self.access_tokens: dict[str, _Grant] = {}
        self.auth_codes: dict[str, _Grant] = {}
        self._ids = itertools.count(100)
        self._webhook_ids = itertools.count(1)
        self.add_company(SANDBOX_COMPANY, SANDBOX_COMPANY_ID, "Brightside Marketing")
        self.api_keys[SANDBOX_API_KEY] = (SANDBOX_COMPANY, SANDBOX_API_KEY_OWNER)
        self.clients[SANDBOX_OAUTH_CLIENT_ID] = (SANDBOX_OAUTH_CLIENT_SECRET, {SANDBOX_OAUTH_REDIRECT_URI})
        self.refresh_tokens[SANDBOX_OAUTH_REFRESH_TOKEN] = _Grant(SANDBOX_COMPANY, SANDBOX_OAUTH_CLIENT_ID)

    # ------------------------------------------------------------------ companies & auth

    def add_company(self, domain: str, company_id: str, name: str) -> Company:
        company = Company(domain=domain, company_id=company_id, name=name)
        self.companies[domain] = company
        return company

    def company(self, domain: str) -> Company:
        found = self.companies.get(domain)
        if found is None:
            raise BambooHRError(404, f"Company '{domain}' not found")
        return found

    def authenticate_key(self, key: str, domain: str) -> Caller:
        owner = self.api_keys.get(key)
        if owner is None or owner[0] != domain:
            raise BambooHRError(401, "Invalid API key")
        return Caller(domain, owner[1], "api_key")

    def authenticate_bearer(self, token: str, domain: str) -> Caller:
        grant = self.access_tokens.get(token)
        if grant is None or grant.company != domain:
            raise BambooHRError(401, "Invalid access token")
        if grant.expires_at is not None and grant.expires_at <= self.clock():
            raise BambooHRError(401, "The access token expired")
        return Caller(domain, None, "oauth")

    def expire_access_tokens(self) -> None:
        for grant in self.access_tokens.values():
            grant.expires_at = self.clock() - 1

    def authorize(self, client_id: str, redirect_uri: str, company: str) -> str:
        """``authorize.php``: the sandbox approves at once and returns a one-time code."""
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError(400, "invalid_client", "Unknown client_id")
        if redirect_uri not in client[1]:
            raise OAuthError(400, "invalid_request", "redirect_uri is not registered for this application")
        self.company(company)
        code = "bhr-code-" + secrets.token_hex(12)
        self.auth_codes[code] = _Grant(company, client_id, self.clock() + 600, redirect_uri)
        return code

    def token(self, form: Mapping[str, str]) -> dict[str, Any]:
        """``POST token.php?request=token``: authorization-code and refresh-token grants."""
        client_id = form.get("client_id", "")
        client = self.clients.get(client_id)
        if client is None or not hmac.compare_digest(client[0], form.get("client_secret", "")):
            raise OAuthError(401, "invalid_client", "Client authentication failed")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            grant = self.auth_codes.pop(form.get("code", ""), None)
            if grant is None or grant.client_id != client_id or (grant.expires_at or 0) <= self.clock():
                raise OAuthError(400, "invalid_grant", "The authorization code is invalid or expired")
            if form.get("redirect_uri") != grant.redirect_uri:
                raise OAuthError(400, "invalid_grant", "redirect_uri does not match the authorization request")
            return self._issue(grant.company, client_id, None)
        if grant_type == "refresh_token":
            presented = form.get("refresh_token", "")
            grant = self.refresh_tokens.get(presented)
            if grant is None or grant.client_id != client_id:
                raise OAuthError(400, "invalid_grant", "The refresh token is invalid or was already used")
            if grant.expires_at is not None and grant.expires_at <= self.clock():
                raise OAuthError(400, "invalid_grant", "The refresh token expired")
            return self._issue(grant.company, client_id, presented)
        raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    def _issue(self, company: str, client_id: str, used_refresh: str | None) -> dict[str, Any]:
        access = "bhr-at-" + secrets.token_hex(16)
        self.access_tokens[access] = _Grant(company, client_id, self.clock() + ACCESS_TOKEN_SECONDS)
        refresh = used_refresh
        if used_refresh is None or self.switches.get("oauth_rotate_refresh_token", True):
            refresh = "bhr-rt-" + secrets.token_hex(16)
            self.refresh_tokens[refresh] = _Grant(company, client_id)
            if used_refresh is not None:
                # Rotation: the presented token is spent at once.
                self.refresh_tokens.pop(used_refresh, None)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
            "scope": "offline_access employee company:info",
            "companyDomain": company,
        }

    # ------------------------------------------------------------------ employees

    def _empty_date(self) -> str | None:
        return "0000-00-00" if self.switches.get("empty_date_as_zeros", True) else None

    def _value(self, employee: Mapping[str, Any], alias: str, company: Company, emp_id: str) -> Any:
        if alias == "displayName":
            first = employee.get("preferredName") or employee.get("firstName") or ""
            return f"{first} {employee.get('lastName') or ''}".strip()
        if alias == "lastChanged":
            return iso(company.changed_at[emp_id])
        if alias == "status":
            return self.status_of(employee)
        if alias == "supervisor":
            boss = company.employees.get(str(employee.get("supervisorEId") or ""))
            return f"{boss.get('lastName')}, {boss.get('firstName')}" if boss else None
        value = employee.get(alias)
        if alias in DATE_FIELDS and not value:
            return self._empty_date()
        return value if value not in ("",) else None

    def status_of(self, employee: Mapping[str, Any]) -> Any:
        """``status``, with a future-dated termination taking effect on its date (sandbox clock).

        BambooHR keeps a future-dated termination in the employment-status table until it is
        effective; whether ``/employees/changed`` then lists the employee is UNCONFIRMED, and the
        sandbox does not (clients must look at ``terminationDate`` themselves).
        """
        status = employee.get("status")
        ends = str(employee.get("terminationDate") or "")
        hired = str(employee.get("hireDate") or "")
        today = datetime.fromtimestamp(self.clock(), tz=timezone.utc).date().isoformat()
        if status == "Active" and ends and not ends.startswith("0000") and ends <= today and not hired > ends:
            return "Inactive"
        return status

    def _resolve(self, company: Company, caller: Caller, emp_id: str) -> str:
        if emp_id == "0":
            if caller.employee_id is None:
                raise BambooHRError(404, "Employee 0 is only defined for API keys tied to an employee")
            return caller.employee_id
        if emp_id not in company.employees:
            raise BambooHRError(404, f"Employee {emp_id} not found")
        return emp_id

    def get_employee(self, caller: Caller, emp_id: str, fields: list[str] | None) -> dict[str, Any]:
        company = self.company(caller.company)
        emp_id = self._resolve(company, caller, emp_id)
        if fields is None:
            fields = list(self.switches.get("employee_default_fields") or [])
        if len(fields) > MAX_FIELDS:
            raise BambooHRError(400, f"A maximum of {MAX_FIELDS} fields may be requested")
        employee = company.employees[emp_id]
        result: dict[str, Any] = {"id": emp_id}
        for alias in fields:
            # Unknown or invisible fields are silently omitted, as BambooHR does.
            if alias in FIELDS:
                result[alias] = self._value(employee, alias, company, emp_id)
        return result

    def get_employees_directory(self, caller: Caller, only_current: bool = True) -> dict[str, Any]:
        company = self.company(caller.company)
        if not company.directory_shared:
            raise BambooHRError(403, "The employee directory is not shared with this user")
        rows = []
        for emp_id, employee in sorted(company.employees.items(), key=lambda kv: int(kv[0])):
            if only_current and self.status_of(employee) != "Active":
                continue
            row: dict[str, Any] = {"id": emp_id}
            for alias, _, _ in DIRECTORY_FIELDS:
                if alias == "photoUploaded":
                    row[alias] = False
                elif alias == "photoUrl":
                    row[alias] = "https://resources.bamboohr.com/images/photo_person_150x150.png"
                else:
                    row[alias] = self._value(employee, alias, company, emp_id)
            rows.append(row)
        if not rows:
            raise BambooHRError(404, "The directory is empty")
        fields = [{"id": alias, "type": ftype, "name": name} for alias, ftype, name in DIRECTORY_FIELDS]
        return {"fields": fields, "employees": rows}

    def get_changed_employee_ids(self, caller: Caller, since: float, change_type: str | None) -> dict[str, Any]:
        company = self.company(caller.company)
        changed: dict[str, dict[str, Any]] = {}
        for emp_id, at in company.changed_at.items():
            if at <= since:
                continue
            if emp_id in company.deleted_at:
                action = "Deleted"
            elif company.created_at[emp_id] > since:
                action = "Inserted"
            else:
                action = "Updated"
            if change_type is None or change_type == action.lower():
                changed[emp_id] = {"id": emp_id, "action": action, "lastChanged": iso(at)}
        ordered = dict(sorted(changed.items(), key=lambda kv: int(kv[0])))
        return {"latest": iso(self.clock()), "employees": ordered}

    def request_custom_report(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        company = self.company(caller.company)
        requested = body.get("fields")
        if not isinstance(requested, list) or not requested:
            raise BambooHRError(400, "A custom report needs a non-empty fields list")
        if len(requested) > MAX_FIELDS:
            raise BambooHRError(400, f"A maximum of {MAX_FIELDS} fields may be requested")
        fields = [str(f) for f in requested if str(f) in FIELDS]  # unknown fields are dropped
        filters = body.get("filters") or {}
        since: float | None = None
        last_changed = filters.get("lastChanged") if isinstance(filters, dict) else None
        if isinstance(last_changed, dict) and last_changed.get("value"):
            try:
                since = parse_iso(str(last_changed["value"]))
            except ValueError:
                raise BambooHRError(400, "filters.lastChanged.value is not an ISO-8601 timestamp") from None
        wanted_ids = None
        if isinstance(filters, dict) and filters.get("employeeIds"):
            wanted_ids = {str(i) for i in filters["employeeIds"]}
        rows = []
        for emp_id, employee in sorted(company.employees.items(), key=lambda kv: int(kv[0])):
            if wanted_ids is not None and emp_id not in wanted_ids:
                continue
            if since is not None and company.changed_at[emp_id] < since:
                continue
            row: dict[str, Any] = {"id": emp_id}
            for alias in fields:
                row[alias] = self._value(employee, alias, company, emp_id)
            rows.append(row)
        meta = [{"id": alias, "type": FIELDS[alias]["type"], "name": FIELDS[alias]["name"]} for alias in fields]
        # Key order carries no meaning in JSON; the rows come first so that the control plane's
        # row faults (page_drift, corrupt_row: "the first list of records") hit employees, not fields.
        return {"title": str(body.get("title") or "Report"), "employees": rows, "fields": meta}

    def list_fields(self) -> list[dict[str, Any]]:
        return [dict(meta) for meta in FIELDS.values()]

    def add_employee(self, domain: str, values: Mapping[str, Any]) -> tuple[str, list[str]]:
        company = self.company(domain)
        if not values.get("firstName") or not values.get("lastName"):
            raise BambooHRError(400, "firstName and lastName are required")
        self._check_writable(values)
        emp_id = str(next(self._ids))
        while emp_id in company.employees or emp_id in company.deleted_at:
            emp_id = str(next(self._ids))
        record = {"status": "Active", **{k: v for k, v in values.items() if k in WRITABLE}}
        company.employees[emp_id] = record
        now = self.clock()
        company.created_at[emp_id] = now
        company.changed_at[emp_id] = now
        return emp_id, sorted(record)

    def update_employee(self, domain: str, emp_id: str, values: Mapping[str, Any]) -> list[str]:
        """Apply field changes; returns the aliases whose value actually changed."""
        company = self.company(domain)
        if emp_id not in company.employees or emp_id in company.deleted_at:
            raise BambooHRError(404, f"Employee {emp_id} not found")
        self._check_writable(values)
        employee = company.employees[emp_id]
        changed = [k for k, v in values.items() if employee.get(k) != v]
        employee.update({k: values[k] for k in changed})
        if changed:
            company.changed_at[emp_id] = self.clock()
        return changed

    def delete_employee(self, domain: str, emp_id: str) -> None:
        """Deletion has no public endpoint (it happens in the UI); tests call this directly."""
        company = self.company(domain)
        if emp_id not in company.employees:
            raise BambooHRError(404, f"Employee {emp_id} not found")
        now = self.clock()
        company.deleted_at[emp_id] = now
        company.changed_at[emp_id] = now
        company.employees.pop(emp_id)

    def _check_writable(self, values: Mapping[str, Any]) -> None:
        unknown = sorted(set(values) - WRITABLE)
        if unknown:
            raise BambooHRError(400, f"Unknown or read-only field(s): {', '.join(unknown)}")

    # ------------------------------------------------------------------ webhooks

    def create_webhook(self, domain: str, body: Mapping[str, Any]) -> dict[str, Any]:
        company = self.company(domain)
        hook = self._validated_webhook(str(next(self._webhook_ids)), body, None)
        company.webhooks[hook.id] = hook
        # The private key is returned here and never again.
        return hook.public(with_key=True)

    def update_webhook(self, domain: str, webhook_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        company = self.company(domain)
        existing = company.webhooks.get(webhook_id)
        if existing is None:
            raise BambooHRError(404, f"Webhook {webhook_id} not found")
        hook = self._validated_webhook(webhook_id, body, existing)
        company.webhooks[webhook_id] = hook
        return hook.public()

    def _validated_webhook(self, webhook_id: str, body: Mapping[str, Any], existing: Webhook | None) -> Webhook:
        name = body.get("name")
        url = body.get("url")
        if not name or not isinstance(name, str):
            raise BambooHRError(400, "name is required")
        if not url or not isinstance(url, str):
            raise BambooHRError(400, "url is required")
        if not url.startswith("https://") and not (
            self.switches.get("webhook_allow_loopback_http", True)
            and url.startswith(("http://127.0.0.1", "http://localhost"))
        ):
            raise BambooHRError(400, "The webhook url must use HTTPS")
        fmt = str(body.get("format") or "json")
        if fmt not in ("json", "form"):
            raise BambooHRError(400, "format must be 'json' or 'form'")
        events = list(body.get("events") or DEFAULT_WEBHOOK_EVENTS)
        unknown = sorted(set(events) - EVENT_TYPES)
        if unknown:
            raise BambooHRError(400, f"Unknown event type(s): {', '.join(unknown)}")
        families = {e.split(".")[0] for e in events if e.startswith("employee")}
        if len(families) > 1:
            raise BambooHRError(400, "employee_with_fields.* events cannot be mixed with employee.* events")
        monitor = [str(f) for f in body.get("monitorFields") or []]
        if any(e.endswith(".updated") and e.startswith("employee") for e in events) and not monitor:
            raise BambooHRError(400, "monitorFields is required for *.updated events")
        bad = sorted(set(monitor) - set(FIELDS))
        if bad:
            raise BambooHRError(400, f"Unknown monitor field(s): {', '.join(bad)}")
        post_fields = body.get("postFields") or {}
        if not isinstance(post_fields, dict) or set(post_fields) - set(FIELDS):
            raise BambooHRError(400, "postFields must map known field aliases to labels")
        return Webhook(
            id=webhook_id,
            name=name,
            url=url,
            format=fmt,
            events=events,
            monitor_fields=monitor,
            post_fields={str(k): str(v) for k, v in post_fields.items()},
            include_company_domain=bool(body.get("includeCompanyDomain", False)),
            private_key=existing.private_key if existing else secrets.token_hex(32),
            created=existing.created if existing else self.clock(),
            last_sent=existing.last_sent if existing else None,
        )

    def list_webhooks(self, domain: str) -> list[dict[str, Any]]:
        return [h.public() for h in self.company(domain).webhooks.values()]

    def get_webhook(self, domain: str, webhook_id: str) -> dict[str, Any]:
        hook = self.company(domain).webhooks.get(webhook_id)
        if hook is None:
            raise BambooHRError(404, f"Webhook {webhook_id} not found")
        return hook.public()

    def webhook_log(self, domain: str, webhook_id: str) -> list[dict[str, Any]]:
        hook = self.company(domain).webhooks.get(webhook_id)
        if hook is None:
            raise BambooHRError(404, f"Webhook {webhook_id} not found")
        return copy.deepcopy(hook.log)

    def delete_webhook(self, domain: str, webhook_id: str) -> None:
        if self.company(domain).webhooks.pop(webhook_id, None) is None:
            raise BambooHRError(404, f"Webhook {webhook_id} not found")

    def deliveries_for(self, domain: str, emp_id: str, action: str, changed: Iterable[str]) -> list[Delivery]:
        """The signed deliveries one employee change produces (``action``: created/updated/deleted)."""
        company = self.company(domain)
        changed = list(changed)
        now = self.clock()
        out: list[Delivery] = []
        for hook in company.webhooks.values():
            payloads: list[Any] = []
            if "employee." + action in hook.events:
                payloads.extend(self._event_payloads(company, emp_id, action, changed, hook, now))
            if "employee_with_fields." + action in hook.events:
                payload = self._field_payload(company, emp_id, action, changed, hook, now)
                if payload is not None:
                    payloads.append(payload)
            for payload in payloads:
                if hook.format == "form":
                    body = urlencode(_flatten_form(payload)).encode()
                    content_type = "application/x-www-form-urlencoded"
                else:
                    body = json.dumps(payload).encode()
                    content_type = "application/json"
                timestamp = (
                    str(int(now))
                    if self.switches.get("webhook_timestamp_format", "unix") == "unix"
                    else datetime.fromtimestamp(int(now), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")
                )
                headers = {
                    "Content-Type": content_type,
                    "User-Agent": "BambooHR-WebHooks/1.0 (+https://www.bamboohr.com)",
                    "X-BambooHR-Timestamp": timestamp,
                    "X-BambooHR-Signature": sign(hook.private_key, body, timestamp),
                }
                if hook.include_company_domain:
                    headers["company-domain"] = company.domain
                hook.last_sent = now
                hook.log.append({"sentAt": _sql_time(now), "url": hook.url, "action": action, "employeeId": emp_id})
                out.append(Delivery(hook.url, body, headers))
        return out

    def _event_payloads(
        self, company: Company, emp_id: str, action: str, changed: list[str], hook: Webhook, now: float
    ) -> list[dict[str, Any]]:
        stamp = datetime.fromtimestamp(int(now), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")
        data: dict[str, Any] = {"companyId": company.company_id, "employeeId": emp_id}
        if action == "updated":
            relevant = [f for f in changed if f in hook.monitor_fields]
            if not relevant:
                return []
            data["changedFields"] = relevant
        payloads = [{"type": f"employee.{action}", "timestamp": stamp, "data": data}]
        if action == "created" and "employee.updated" in hook.events:
            # On create BambooHR fires both employee.created and employee.updated.
            payloads.append(
                {
                    "type": "employee.updated",
                    "timestamp": stamp,
                    "data": {**data, "changedFields": [f for f in changed if f in hook.monitor_fields]},
                }
            )
        return payloads

    def _field_payload(
        self, company: Company, emp_id: str, action: str, changed: list[str], hook: Webhook, now: float
    ) -> dict[str, Any] | None:
        relevant = [f for f in changed if f in hook.monitor_fields] if action == "updated" else changed
        if action == "updated" and not relevant:
            return None
        label = {alias: hook.post_fields.get(alias, FIELDS[alias]["name"]) for alias in FIELDS}
        fields: dict[str, Any] = {}
        employee = company.employees.get(emp_id)
        if employee is not None:
            for alias, post_label in hook.post_fields.items():
                value = self._value(employee, alias, company, emp_id)
                if self.switches.get("field_webhook_value_shape", "plain") == "object":
                    value = {"value": value}
                fields[post_label] = value
        return {
            "employees": [
                {
                    "id": emp_id,
                    "action": action.capitalize(),
                    "timestamp": iso(now),
                    "changedFields": [label[f] for f in relevant if f in label],
                    "fields": fields,
                }
            ]
        }

    # ------------------------------------------------------------------ fixtures

    def load(self, fixture: Mapping[str, Any]) -> None:
        domain = str(fixture.get("company", SANDBOX_COMPANY))
        if domain not in self.companies:
            self.add_company(domain, str(fixture.get("company_id", "1")), str(fixture.get("name", domain)))
        company = self.companies[domain]
        if "name" in fixture:
            company.name = str(fixture["name"])
        for raw in fixture.get("employees", []):
            record = dict(raw)
            emp_id = str(record.pop("id"))
            last_changed = record.pop("lastChanged", None)
            created = record.pop("created", None)
            company.employees[emp_id] = record
            at = parse_iso(last_changed) if last_changed else self.clock()
            company.changed_at[emp_id] = at
            company.created_at[emp_id] = parse_iso(created) if created else at
        for key in fixture.get("api_keys", []):
            self.api_keys[str(key["key"])] = (domain, str(key["employee_id"]))

    def generate(self, domain: str, count: int) -> None:
        company = self.company(domain)
        departments = ["Creative", "Accounts", "Media", "Operations"]
        for n in range(count):
            emp_id = str(next(self._ids))
            company.employees[emp_id] = {
                "employeeNumber": f"G{emp_id}",
                "firstName": f"Gen{n}",
                "lastName": f"Employee{emp_id}",
                "jobTitle": "Specialist",
                "department": departments[n % len(departments)],
                "division": "Brightside Marketing",
                "location": "Remote",
                "workEmail": f"gen{emp_id}@brightsidemarketing.com",
                "status": "Active",
                "hireDate": "2026-01-05",
            }
            company.created_at[emp_id] = company.changed_at[emp_id] = self.clock()

    def snapshot(self) -> dict[str, Any]:
        return {
            domain: {
                "name": c.name,
                "employees": {k: dict(v) for k, v in c.employees.items()},
                "deleted": sorted(c.deleted_at),
                "webhooks": [h.public() for h in c.webhooks.values()],
            }
            for domain, c in self.companies.items()
        } | {"oauth": {"refresh_tokens": len(self.refresh_tokens), "access_tokens": len(self.access_tokens)}}


def _flatten_form(payload: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``type=...&data[companyId]=...&data[changedFields][0]=...`` (BambooHR's form-post variant)."""
    pairs: list[tuple[str, str]] = []
    if isinstance(payload, dict):
        for key, value in payload.items():
            pairs.extend(_flatten_form(value, f"{prefix}[{key}]" if prefix else str(key)))
    elif isinstance(payload, list):
        for index, value in enumerate(payload):
            pairs.extend(_flatten_form(value, f"{prefix}[{index}]"))
    else:
        pairs.append((prefix, "" if payload is None else str(payload)))
    return pairs
