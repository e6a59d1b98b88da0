"""BambooHR hook: employee directory, changed-employee ids, named fields, custom reports, webhooks.

* **Base URL** ``{host}/api/gateway.php/{company_domain}/v1`` (host default https://api.bamboohr.com).
* **Auth.** API-key mode (default): HTTP Basic with the key as user name and ``x`` as password;
  the key is the connection password. OAuth mode (extra ``auth_type=oauth``): client id/secret
  in login/password, the first refresh token in extra ``refresh_token``; the token endpoint is
  ``https://{company}.bamboohr.com/token.php?request=token`` (``{host}/token.php?request=token``
  when the host is overridden; extra ``token_url`` wins). Rotated refresh tokens are kept encrypted
  in the state store under ``("bamboohr", "<company>:<client_id>")``.
* **Format.** ``Accept: application/json`` on every call: without it BambooHR answers XML.
* **Throttling.** No quota is published; 429 (503 before 2026-09-16) carry ``Retry-After``,
  which the HTTP core honours.
* **Webhooks.** The private key is returned only when a webhook is created. The hook keeps it
  encrypted in the state store under ``("bamboohr", "webhook:<company>:<webhook id>")`` for
  :meth:`BambooHRHook.verify_webhook_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import requests

from airflow_provider_mlconnector.core.auth import Credential, HeaderAuth, RotatingOAuth, chain_key
from airflow_provider_mlconnector.core.http import ApiAuth, ApiClient, ErrorInfo
from airflow_provider_mlconnector.core.secrets import mask
from airflow_provider_mlconnector.exceptions import ConfigurationError
from airflow_provider_mlconnector.hooks.oauth import ConsentError, OAuthApp, OAuthHook, Reached

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state import StateStore

SYSTEM = "bamboohr"
DEFAULT_HOST = "https://api.bamboohr.com"
CHANGE_TYPES = ("inserted", "updated", "deleted")
MAX_FIELDS = 400
JSON = {"Accept": "application/json"}


@dataclass(frozen=True)
class BambooHRConfig:
    """What the connection says. Secrets stay out of ``repr``."""

    company_domain: str
    auth_type: str
    api_host: str
    secret: str = field(repr=False)  # the API key, or the OAuth client secret
    client_id: str | None
    refresh_token: str | None = field(repr=False)
    token_url: str


class ApiKeyAuth(ApiAuth):
    """HTTP Basic with the API key as user name and ``x`` as password (any non-empty string works)."""

    def __init__(self, api_key: str) -> None:
        self._basic = requests.auth.HTTPBasicAuth(api_key, "x")
        mask(api_key)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        result: requests.PreparedRequest = self._basic(request)
        return result


def make_error_parser(auth_type: str) -> Callable[[requests.Response], ErrorInfo]:
    """BambooHR puts error detail in the ``X-BambooHR-Error-Message`` header, not the body."""

    def parse(response: requests.Response) -> ErrorInfo:
        status = response.status_code
        detail = response.headers.get("X-BambooHR-Error-Message") or response.reason or f"HTTP {status}"
        if status == 429:
            return ErrorInfo(f"BambooHR rate limit: {detail}", kind="rate_limited")
        if status == 503:
            # A 503 with Retry-After is the legacy throttling answer; without, a plain outage.
            throttled = bool(response.headers.get("Retry-After"))
            return ErrorInfo(f"BambooHR unavailable: {detail}", kind="rate_limited" if throttled else "retryable")
        if status == 401:
            if auth_type == "oauth":
                return ErrorInfo(f"BambooHR rejected the access token: {detail}", kind="auth_expired")
            return ErrorInfo(
                f"BambooHR rejected the API key: {detail}. Check the API key (password) and the company_domain extra",
                kind="auth_fatal",
            )
        if status == 403:
            return ErrorInfo(f"BambooHR refused access (permissions of this key/app): {detail}", kind="auth_fatal")
        # BambooHR is only read here, webhooks aside: a 400 is a bad request, never a record error.
        return ErrorInfo(detail, kind="fatal" if 400 <= status < 500 and status not in (404, 408, 409) else None)

    return parse


def compute_signature(private_key: str, body: bytes, timestamp: str) -> str:
    """``X-BambooHR-Signature``: lowercase hex HMAC-SHA256 over the raw body followed by the timestamp.

    :param private_key: the webhook's private key.
    :param body: the raw request body.
    :param timestamp: the ``X-BambooHR-Timestamp`` header, as received.
    """
    return hmac.new(private_key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


class BambooHRHook(OAuthHook):
    """BambooHR API hook (connection type ``bamboohr``).

    :param conn_id: the Airflow connection id.
    :param state_store: keeps rotated OAuth refresh tokens and webhook private keys (encrypted).
    :param retry: retry policy of API calls.
    :param sleep: how to wait between retries (tests inject a recorder).
    """

    conn_name_attr: ClassVar[str] = "bamboohr_conn_id"
    default_conn_name: ClassVar[str] = "bamboohr_default"
    conn_type: ClassVar[str] = "bamboohr"
    hook_name: ClassVar[str] = "BambooHR"
    default_host: ClassVar[str] = DEFAULT_HOST

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        state_store: StateStore | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id, state_store=state_store, **kwargs)

    # ------------------------------------------------------------------ configuration

    @cached_property
    def config(self) -> BambooHRConfig:
        setting = self.extra  # an alias: ruff's S610 mistakes .extra() for Django's QuerySet.extra
        company = self.require(setting("company_domain"), "extra company_domain").strip()
        if "." in company or "/" in company:
            raise ConfigurationError(
                f"connection '{self.conn_id}': company_domain is the subdomain only ('acme' for acme.bamboohr.com)"
            )
        auth_type = str(setting("auth_type", "api_key")).lower()
        if auth_type not in ("api_key", "oauth"):
            raise ConfigurationError(f"connection '{self.conn_id}': auth_type must be 'api_key' or 'oauth'")
        host = self.host_url()
        overridden = bool((self.connection.host or "").strip())
        token_url = setting("token_url") or (
            f"{host}/token.php?request=token"
            if overridden
            else f"https://{company}.bamboohr.com/token.php?request=token"
        )
        if auth_type == "oauth":
            client_id: str | None = self.require(self.connection.login, "login (OAuth client id)")
            secret = self.require(self.connection.password, "password (OAuth client secret)")
        else:
            client_id = None
            secret = self.require(self.connection.password, "password (API key)")
        return BambooHRConfig(
            company_domain=company,
            auth_type=auth_type,
            api_host=host,
            secret=secret,
            client_id=client_id,
            refresh_token=setting("refresh_token"),
            token_url=str(token_url),
        )

    @property
    def tenant(self) -> str:
        """The BambooHR company domain (``acme`` of acme.bamboohr.com): the tenant of every record."""
        return self.config.company_domain

    def build_auth(self) -> ApiAuth:
        config = self.config
        if config.auth_type == "api_key":
            return ApiKeyAuth(config.secret)
        assert config.client_id is not None
        return self.token_flow(chain_key(config.client_id, config.refresh_token, config.company_domain))

    # ------------------------------------------------------------------ OAuth mode (OAuthHook; the consent helper)

    @property
    def oauth_app(self) -> OAuthApp:
        config = self.config
        if config.client_id is None:
            raise ConsentError(
                f"connection '{self.conn_id}' uses an API key: set the extra auth_type to oauth, the OAuth client id "
                "in login and its secret in password to authorize by consent"
            )
        overridden = bool((self.connection.host or "").strip())
        return OAuthApp(
            client_id=config.client_id,
            client_secret=config.secret,
            redirect_uri=self.require(self.extra("redirect_uri"), "extra redirect_uri (registered for the app)"),
            authorize_url=(
                f"{config.api_host}/authorize.php"
                if overridden
                else f"https://{config.company_domain}.bamboohr.com/authorize.php"
            ),
        )

    def token_flow(self, credential_key: str) -> RotatingOAuth:
        config = self.config
        assert config.client_id is not None
        return RotatingOAuth(
            token_client=self.token_client(config.token_url),
            token_path=config.token_url,
            client_id=config.client_id,
            client_secret=config.secret,
            initial_refresh_token=config.refresh_token,
            reauthorize=self.consent_command(),
            client_auth="body",
            tokens=self.state.tokens,
            system=SYSTEM,
            credential_key=credential_key,
            conn_id=self.conn_id,
        )

    def chain_key_for(self, refresh_token: str, redirect: Mapping[str, str]) -> str:
        return chain_key(self.oauth_app.client_id, refresh_token, self.config.company_domain)

    def reached_by(self, credential: Credential, credential_key: str, redirect: Mapping[str, str]) -> Reached:
        """The company, read with the new access token (its field catalogue)."""
        config = self.config
        client = ApiClient(
            system=SYSTEM,
            base_url=f"{config.api_host}/api/gateway.php/{config.company_domain}/v1",
            auth=HeaderAuth({"Authorization": f"Bearer {credential['access_token']}"}),
            error_parser=make_error_parser("oauth"),
            headers=JSON,
            retry=self._retry,
            sleep=self._sleep,
        )
        fields = client.get_json("meta/fields")
        return Reached(lines=[f"BambooHR company '{config.company_domain}' ({len(fields)} fields visible)"])

    def build_client(self) -> ApiClient:
        config = self.config
        return ApiClient(
            system=SYSTEM,
            base_url=f"{config.api_host}/api/gateway.php/{config.company_domain}/v1",
            auth=self.build_auth(),
            error_parser=make_error_parser(config.auth_type),
            headers=JSON,
            retry=self._retry,
            sleep=self._sleep,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Read the field catalogue and name the company reached."""

        def probe() -> str:
            fields = self.list_fields()
            return (
                f"Connected to BambooHR company '{self.config.company_domain}' "
                f"({self.config.auth_type} auth; {len(fields)} fields visible)"
            )

        return self.connection_check(probe)

    # ------------------------------------------------------------------ employees

    def get_directory(self, *, only_current: bool = True) -> dict[str, Any]:
        """The employee directory: ``{"fields": [...], "employees": [...]}`` (ids are strings).

        :param only_current: False includes terminated employees.
        """
        params = {"onlyCurrent": str(only_current).lower()}
        directory: dict[str, Any] = self.client.get_json("employees/directory", params=params)
        return directory

    def iter_directory(self, *, only_current: bool = True) -> Iterator[dict[str, Any]]:
        """Each employee of the directory.

        :param only_current: False includes terminated employees.
        """
        yield from self.get_directory(only_current=only_current).get("employees", [])

    def get_changed_employees(self, since: datetime, *, change_type: str | None = None) -> dict[str, Any]:
        """Ids of employees changed after ``since``: ``{"latest": ..., "employees": {id: {id, action, lastChanged}}}``.

        Any field, employment status, job or compensation change counts. ``action`` is Inserted,
        Updated or Deleted.

        :param since: a timezone-aware datetime (naive means UTC).
        :param change_type: only ``inserted``, ``updated`` or ``deleted`` changes.
        """
        params = {"since": _iso(since)}
        if change_type is not None:
            if change_type not in CHANGE_TYPES:
                raise ValueError(f"change_type must be one of {CHANGE_TYPES}")
            params["type"] = change_type
        changed: dict[str, Any] = self.client.get_json("employees/changed", params=params)
        return changed

    def get_employee(self, employee_id: str, fields: Sequence[str], *, only_current: bool = True) -> dict[str, Any]:
        """One employee with the named fields (BambooHR returns little unless fields are named).

        Fields the caller may not see are silently left out, so check for missing keys.

        :param employee_id: the employee id (``"0"`` = the API key's own employee).
        :param fields: field aliases, e.g. ``["firstName", "lastName", "workEmail", "status"]``.
        :param only_current: False returns future-dated values of history tables.
        """
        names = _field_list(fields)
        params = {"fields": ",".join(names), "onlyCurrent": str(only_current).lower()}
        employee: dict[str, Any] = self.client.get_json(f"employees/{employee_id}", params=params)
        return employee

    def run_custom_report(
        self,
        fields: Sequence[str],
        *,
        changed_since: datetime | None = None,
        employee_ids: Sequence[str] | None = None,
        title: str = "ml-connector export",
    ) -> dict[str, Any]:
        """A custom report: named fields for many employees (Active and Inactive) in one call.

        :param fields: field aliases (unknown ones are silently dropped by BambooHR), at most 400.
        :param changed_since: only employees changed since then.
        :param employee_ids: only these employees.
        :param title: the report title.
        """
        body: dict[str, Any] = {"title": title, "fields": _field_list(fields)}
        filters: dict[str, Any] = {}
        if changed_since is not None:
            filters["lastChanged"] = {"includeNull": "no", "value": _iso(changed_since)}
        if employee_ids:
            filters["employeeIds"] = [int(i) if str(i).isdigit() else i for i in employee_ids]
        if filters:
            body["filters"] = filters
        # A read sent as POST: safe to retry. ``json=`` makes Content-Type exactly application/json,
        # which BambooHR needs (anything else is parsed as XML).
        report: dict[str, Any] = self.client.send_json(
            "POST", "reports/custom", params={"format": "JSON"}, json=body, idempotent=True, write=False
        )
        return report

    def iter_employees(
        self,
        fields: Sequence[str],
        *,
        changed_since: datetime | None = None,
        employee_ids: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Each employee row of a custom report (see :meth:`run_custom_report`).

        :param fields: field aliases.
        :param changed_since: only employees changed since then.
        :param employee_ids: only these employees.
        """
        report = self.run_custom_report(fields, changed_since=changed_since, employee_ids=employee_ids)
        yield from report.get("employees", [])

    def list_fields(self) -> list[dict[str, Any]]:
        """The field catalogue: ``[{"id", "name", "type", "alias"}]``."""
        fields: list[dict[str, Any]] = self.client.get_json("meta/fields")
        return fields

    # ------------------------------------------------------------------ webhooks

    def webhook_key_name(self, webhook_id: str) -> str:
        """Where a webhook's private key lives in the token store (system ``bamboohr``).

        :param webhook_id: the webhook id.
        """
        return f"webhook:{self.config.company_domain}:{webhook_id}"

    def create_webhook(
        self,
        name: str,
        url: str,
        *,
        monitor_fields: Sequence[str],
        post_fields: Mapping[str, str] | None = None,
        events: Sequence[str] | None = None,
        include_company_domain: bool = True,
        payload_format: str = "json",
    ) -> dict[str, Any]:
        """Register a permissioned webhook and keep its private key (returned only now) in the token store.

        Not retried when the answer is lost (it is not idempotent): list the webhooks, delete the
        stray one and create it again.

        :param name: a label.
        :param url: the HTTPS receiver.
        :param monitor_fields: the fields whose changes fire ``*.updated`` events.
        :param post_fields: fields to include in field-based payloads (alias -> label).
        :param events: e.g. ``["employee.created", "employee.updated", "employee.deleted"]``;
            BambooHR's default is the three ``employee_with_fields.*`` events.
        :param include_company_domain: add the company-domain header to deliveries.
        :param payload_format: ``json`` or ``form``.
        :return: the webhook without its private key.
        """
        body: dict[str, Any] = {
            "name": name,
            "url": url,
            "monitorFields": list(monitor_fields),
            "postFields": dict(post_fields or {}),
            "format": payload_format,
            "includeCompanyDomain": include_company_domain,
        }
        if events is not None:
            body["events"] = list(events)
        created: dict[str, Any] = self.client.send_json("POST", "webhooks", json=body)
        private_key = str(created.pop("privateKey", "") or "")
        if not private_key:
            raise ConfigurationError("BambooHR created the webhook but returned no private key; delete and recreate it")
        mask(private_key)
        self.state.tokens.put(
            SYSTEM,
            self.webhook_key_name(str(created["id"])),
            {"private_key": private_key, "name": name, "url": url},
        )
        return created

    def list_webhooks(self) -> list[dict[str, Any]]:
        """The webhooks this key/app registered (private keys are never listed)."""
        payload = self.client.get_json("webhooks")
        hooks: list[dict[str, Any]] = payload.get("webhooks", []) if isinstance(payload, dict) else payload
        return hooks

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook and forget its private key.

        :param webhook_id: the webhook id.
        """
        self.client.request("DELETE", f"webhooks/{webhook_id}")
        self.state.tokens.put(SYSTEM, self.webhook_key_name(webhook_id), {"deleted": True})

    def webhook_private_key(self, webhook_id: str) -> str:
        """The stored private key of a webhook created through this hook.

        :param webhook_id: the webhook id.
        """
        stored = self.state.tokens.get(SYSTEM, self.webhook_key_name(webhook_id)) or {}
        key = stored.get("private_key")
        if not key:
            raise ConfigurationError(
                f"no private key is stored for BambooHR webhook {webhook_id}: it was created elsewhere or deleted"
            )
        mask(str(key))
        return str(key)

    def verify_webhook_signature(self, webhook_id: str, body: bytes, timestamp: str, signature: str) -> bool:
        """Check ``X-BambooHR-Signature`` of a delivery against the stored private key.

        :param webhook_id: which webhook the delivery is for (the receiver's route knows it).
        :param body: the raw request body, exactly as received.
        :param timestamp: the ``X-BambooHR-Timestamp`` header.
        :param signature: the ``X-BambooHR-Signature`` header.
        """
        from airflow_provider_mlconnector.webhooks import signatures

        return signatures.body_timestamp_hmac(self.webhook_private_key(webhook_id), body, timestamp, signature)


def _field_list(fields: Sequence[str]) -> list[str]:
    if isinstance(fields, str):
        raise TypeError("fields must be a sequence of field names, not one string")
    names = [f.strip() for f in fields if f and f.strip()]
    if not names:
        raise ValueError("name at least one field: BambooHR returns almost nothing for unnamed fields")
    if len(names) > MAX_FIELDS:
        raise ValueError(f"BambooHR accepts at most {MAX_FIELDS} fields per request")
    return names


def _iso(moment: datetime) -> str:
    """ISO-8601 in UTC with ``Z`` (no ``+``, which a sloppy encoder would turn into a space)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
