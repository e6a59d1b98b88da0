"""FreshBooks emulator: OAuth with single-use refresh tokens, accounting, businesses, events.

See ``README.md`` beside this file for the coverage table and the switches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from airflow_provider_mlconnector.sandbox.core import SandboxContext, SystemSandbox
from airflow_provider_mlconnector.sandbox.freshbooks import demo
from airflow_provider_mlconnector.sandbox.freshbooks.api import FreshBooksApi
from airflow_provider_mlconnector.sandbox.freshbooks.backend import FreshBooksBackend, webhook_signature
from airflow_provider_mlconnector.sandbox.freshbooks.demo import (
    BRIGHTSIDE_ACCOUNT_ID,
    BRIGHTSIDE_BUSINESS_ID,
    BRIGHTSIDE_BUSINESS_UUID,
    HARBOR_ACCOUNT_ID,
    HARBOR_BUSINESS_ID,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_MULTI_REFRESH_TOKEN,
    SANDBOX_REDIRECT_URI,
    SANDBOX_REFRESH_TOKEN,
)

__all__ = [
    "BRIGHTSIDE_ACCOUNT_ID",
    "BRIGHTSIDE_BUSINESS_ID",
    "BRIGHTSIDE_BUSINESS_UUID",
    "HARBOR_ACCOUNT_ID",
    "HARBOR_BUSINESS_ID",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_MULTI_REFRESH_TOKEN",
    "SANDBOX_REDIRECT_URI",
    "SANDBOX_REFRESH_TOKEN",
    "FreshBooksSandbox",
    "webhook_signature",
]


class _LiveSwitches(Mapping[str, Any]):
    """The sandbox's current switches, even after the control plane replaces the dict (reset)."""

    def __init__(self, sandbox: SystemSandbox) -> None:
        self.sandbox = sandbox

    def __getitem__(self, name: str) -> Any:
        return self.sandbox.switches[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.sandbox.switches)

    def __len__(self) -> int:
        return len(self.sandbox.switches)


class FreshBooksSandbox(SystemSandbox):
    """The FreshBooks emulator served under ``/freshbooks``."""

    name = "freshbooks"
    #: Behaviours the dossier marks UNCONFIRMED; each default is the most likely (or stricter) one.
    default_switches: ClassVar[dict[str, Any]] = {
        "expires_in": 43200,  # access token lifetime; docs say 12 hours
        "refresh_reuse_status": 400,  # Doorkeeper answers invalid_grant with 400
        "refresh_reuse_error": "invalid_grant",
        # A used refresh token sent again within N seconds (its answer lost), while the token it was
        # exchanged for is unused, gets that same next token again. Docs: "can only be used once"; a
        # grace window is not documented either way. 0 = strict single use.
        "refresh_reuse_grace_seconds": 0,
        "revoke_access_on_refresh": True,  # a refresh also kills the access token it replaced
        "users_me_unauthenticated_status": 401,  # the Python SDK's test uses 403
        "validation_status": 422,  # HTTP status of errno 1001/1004/1011 answers
        "default_per_page": 15,
        "honour_updated_min": False,  # search[updated_min] on bills/bill vendors: ignored by default
        "bill_vendor_timezone": "UTC",  # or "Eastern" (the SDKs disagree)
        "line_category_shape": "nested",  # "nested" (Postman) or "flat" (Node SDK fixture)
        "bill_required_fields": ["vendorid", "issue_date", "due_offset_days", "currency_code", "language", "lines"],
        "bill_payment_required_fields": ["billid", "amount", "paid_date", "payment_type"],
        "reject_overpayment": True,
        "bill_payment_events": True,  # bill_payment.* webhooks (no source either way)
        "verify_event_name": "callback.verify",
        "rate_limit_per_minute": 0,  # 0 = off; numbers are unknown
        "rate_limit_retry_after": None,  # seconds in a Retry-After header, or None for no header
        "extra_redirect_uris": [],  # more registered redirect URIs for the sandbox app
        "unique_invoice_numbers": True,  # a number used by any invoice (even deleted) is refused (errno UNCONFIRMED)
        "negative_line_amounts": True,  # invoice lines may carry a negative unit_cost (UNCONFIRMED; UI allows it)
    }

    def __init__(self, ctx: SandboxContext) -> None:
        self.backend: FreshBooksBackend | None = None
        super().__init__(ctx)
        self.api = FreshBooksApi(self)

    def reset(self) -> None:
        if self.backend is None:
            self.backend = FreshBooksBackend(clock=self.now, switches=_LiveSwitches(self), notify=self.send_webhook)
        else:
            self.backend.reset()

    def _backend(self) -> FreshBooksBackend:
        assert self.backend is not None
        return self.backend

    def routes(self) -> list[BaseRoute]:
        return self.api.routes()

    def seed(self, fixture: dict[str, Any]) -> None:
        self._backend().seed(fixture)

    def demo_fixture(self) -> dict[str, Any]:
        return demo.demo_fixture()

    def generate(self, counts: dict[str, int]) -> None:
        self._backend().generate(counts)

    def snapshot(self) -> dict[str, Any]:
        return self._backend().snapshot()

    def connection(self, base_url: str) -> dict[str, Any]:
        return {
            "conn_type": "freshbooks",
            "host": base_url,
            "login": SANDBOX_CLIENT_ID,
            "password": SANDBOX_CLIENT_SECRET,
            "extra": {"refresh_token": SANDBOX_REFRESH_TOKEN, "redirect_uri": SANDBOX_REDIRECT_URI},
        }

    def expire_credentials(self) -> None:
        self._backend().expire_access_tokens()

    def rate_limited_response(self) -> Response:
        # FreshBooks' 429 body is undocumented: an accounting-style error without errno detail.
        headers = {}
        if self.switches.get("rate_limit_retry_after") is not None:
            headers["Retry-After"] = str(self.switches["rate_limit_retry_after"])
        body = {"response": {"errors": [{"errno": 429, "field": None, "message": "Too many requests."}]}}
        return JSONResponse(body, status_code=429, headers=headers)

    def server_error_response(self) -> Response:
        body = {
            "response": {
                "errors": [{"errno": 500, "field": None, "message": "An unexpected error occurred.", "object": None}]
            }
        }
        return JSONResponse(body, status_code=500)
