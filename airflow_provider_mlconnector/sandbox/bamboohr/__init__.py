"""BambooHR emulator (served under ``/bamboohr``); see README.md in this folder for coverage."""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar

from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Scope

from airflow_provider_mlconnector.sandbox.bamboohr import api, demo
from airflow_provider_mlconnector.sandbox.bamboohr.backend import (
    SANDBOX_API_KEY,
    SANDBOX_COMPANY,
    SANDBOX_OAUTH_CLIENT_ID,
    SANDBOX_OAUTH_CLIENT_SECRET,
    SANDBOX_OAUTH_REDIRECT_URI,
    SANDBOX_OAUTH_REFRESH_TOKEN,
    BambooHRBackend,
    sign,
)
from airflow_provider_mlconnector.sandbox.core import SystemSandbox

__all__ = [
    "SANDBOX_API_KEY",
    "SANDBOX_COMPANY",
    "SANDBOX_OAUTH_CLIENT_ID",
    "SANDBOX_OAUTH_CLIENT_SECRET",
    "SANDBOX_OAUTH_REDIRECT_URI",
    "SANDBOX_OAUTH_REFRESH_TOKEN",
    "BambooHRSandbox",
    "sign",
]


class BambooHRSandbox(SystemSandbox):
    """The BambooHR emulator. Switches cover the dossier's UNCONFIRMED points (see README)."""

    name = "bamboohr"
    default_switches: ClassVar[dict[str, Any]] = {
        # Basic auth: the key is the user name and the password is ignored, even empty (`key:`, what
        # widely used clients send). True = the docs' "any non-empty string" read strictly: `key:` is 401.
        "api_key_password_required": False,
        # Response when Accept does not name application/json: "xml" (widely reported) or "406".
        "non_json_accept": "xml",
        # GET /employees/{id} without fields=: OpenAPI says firstName,lastName; [] = only "id".
        "employee_default_fields": ["firstName", "lastName"],
        # /employees/changed?type= values must be exactly lower-case inserted|updated|deleted.
        "changed_type_case_sensitive": True,
        # Empty date fields come back as "0000-00-00" (BambooHR habit) instead of null.
        "empty_date_as_zeros": True,
        # OAuth refresh returns a new refresh token and spends the presented one.
        "oauth_rotate_refresh_token": True,
        # Throttling: no quota is published. None = only injected faults; N = 429 after N calls
        # per window (per sandbox), with Retry-After.
        "throttle_limit": None,
        "throttle_window_seconds": 60,
        "retry_after_seconds": 5,
        # 429 since 2026-09-16; 503 is the legacy throttling status.
        "rate_limit_status": 429,
        # Webhook signing timestamp: "unix" seconds or "iso".
        "webhook_timestamp_format": "unix",
        # Field-based webhook values: "plain" ("First Name": "Bryony") or "object" ({"value": ...}).
        "field_webhook_value_shape": "plain",
        # Real BambooHR needs HTTPS webhook URLs; the sandbox also accepts http://127.0.0.1/localhost
        # so the demo's local receiver can be reached. Set False for HTTPS-only.
        "webhook_allow_loopback_http": True,
    }

    backend: BambooHRBackend

    def reset(self) -> None:
        # A reset also restores the default switches (in place: the backend keeps a reference).
        self.switches.clear()
        self.switches.update(copy.deepcopy(self.default_switches))
        self.backend = BambooHRBackend(self.now, self.switches)
        self._calls: deque[float] = deque()

    def routes(self) -> list[BaseRoute]:
        return api.routes(self)

    def seed(self, fixture: dict[str, Any]) -> None:
        self.backend.load(fixture)

    def demo_fixture(self) -> dict[str, Any]:
        return demo.fixture()

    def generate(self, counts: dict[str, int]) -> None:
        self.backend.generate(SANDBOX_COMPANY, int(counts.get("employees", 0)))

    def snapshot(self) -> dict[str, Any]:
        return self.backend.snapshot()

    def connection(self, base_url: str) -> dict[str, Any]:
        """API-key mode: the key is the password; the login stays empty."""
        return {
            "conn_type": "bamboohr",
            "host": base_url,
            "login": "",
            "password": SANDBOX_API_KEY,
            "extra": {"company_domain": SANDBOX_COMPANY, "auth_type": "api_key"},
        }

    def oauth_connection(self, base_url: str) -> dict[str, Any]:
        """OAuth mode: client id/secret plus the initial refresh token."""
        return {
            "conn_type": "bamboohr",
            "host": base_url,
            "login": SANDBOX_OAUTH_CLIENT_ID,
            "password": SANDBOX_OAUTH_CLIENT_SECRET,
            "extra": {
                "company_domain": SANDBOX_COMPANY,
                "auth_type": "oauth",
                "refresh_token": SANDBOX_OAUTH_REFRESH_TOKEN,
                "redirect_uri": SANDBOX_OAUTH_REDIRECT_URI,
            },
        }

    def expire_credentials(self) -> None:
        self.backend.expire_access_tokens()

    def rate_limited_response(self) -> Response:
        status = int(self.switches.get("rate_limit_status", 429))
        return api.error(
            status,
            "Rate limit exceeded" if status == 429 else "Service temporarily unavailable",
            {"Retry-After": str(self.switches.get("retry_after_seconds", 5))},
        )

    def server_error_response(self) -> Response:
        return api.error(500, "Internal server error")

    async def around(self, scope: Scope, call: Callable[[], Awaitable[None]]) -> None:
        # around() cannot answer by itself, so it marks the request and the route wrapper answers
        # with rate_limited_response() (see api.THROTTLED).
        limit = self.switches.get("throttle_limit")
        if limit:
            now = self.now()
            window = float(self.switches.get("throttle_window_seconds", 60))
            with self.lock:
                while self._calls and now - self._calls[0] >= window:
                    self._calls.popleft()
                if len(self._calls) >= int(limit):
                    scope[api.THROTTLED] = True
                else:
                    self._calls.append(now)
        await call()

    # ------------------------------------------------------------------ helpers for tests/demo

    def fire(self, domain: str, employee_id: str, action: str, changed: Iterable[str]) -> None:
        """Send the webhooks one employee change triggers (``action``: created/updated/deleted)."""
        for delivery in self.backend.deliveries_for(domain, employee_id, action, changed):
            self.send_webhook(delivery.url, delivery.body, delivery.headers)

    def update_employee(self, employee_id: str, values: dict[str, Any], domain: str = SANDBOX_COMPANY) -> None:
        """Change an employee as an HR admin would in the UI (fires webhooks)."""
        with self.lock:
            changed = self.backend.update_employee(domain, employee_id, values)
        if changed:
            self.fire(domain, employee_id, "updated", changed)

    def terminate_employee(self, employee_id: str, date: str, domain: str = SANDBOX_COMPANY) -> None:
        """Terminate as of ``date``; a future date leaves the employee Active until then."""
        values: dict[str, Any] = {"terminationDate": date}
        if date <= self.ctx.clock.now_dt().date().isoformat():
            values["status"] = "Inactive"
        self.update_employee(employee_id, values, domain)

    def rehire_employee(self, employee_id: str, date: str, domain: str = SANDBOX_COMPANY) -> None:
        """Rehire as of ``date`` (a hire date after the termination date, status Active)."""
        self.update_employee(employee_id, {"status": "Active", "hireDate": date}, domain)

    def delete_employee(self, employee_id: str, domain: str = SANDBOX_COMPANY) -> None:
        with self.lock:
            self.backend.delete_employee(domain, employee_id)
        self.fire(domain, employee_id, "deleted", [])
