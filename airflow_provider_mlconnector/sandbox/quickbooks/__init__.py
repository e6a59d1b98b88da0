"""QuickBooks Online emulator (served under ``/quickbooks``); see README.md in this folder for coverage."""

from __future__ import annotations

import copy
import json
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, ClassVar

from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Scope

from airflow_provider_mlconnector.sandbox.core import SystemSandbox
from airflow_provider_mlconnector.sandbox.quickbooks import api, demo
from airflow_provider_mlconnector.sandbox.quickbooks.backend import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REALM_ID,
    SANDBOX_REDIRECT_URI,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_WEBHOOK_VERIFIER_TOKEN,
    Change,
    QBOFault,
    QuickBooksBackend,
    envelope_time,
    local_time,
    signature,
)

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REALM_ID",
    "SANDBOX_REDIRECT_URI",
    "SANDBOX_REFRESH_TOKEN",
    "SANDBOX_WEBHOOK_VERIFIER_TOKEN",
    "QuickBooksSandbox",
    "signature",
]

# The app id part of a CloudEvents ``source`` ("intuit.<opaque app id>").
_APP_SOURCE = "intuit.mlconnectorSandboxApp0d3f9b2a"
_OPS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Merge": "merged", "Void": "voided"}


class QuickBooksSandbox(SystemSandbox):
    """The QuickBooks Online emulator. Switches cover the dossier's UNCONFIRMED points (see README)."""

    name = "quickbooks"
    default_switches: ClassVar[dict[str, Any]] = {
        # Refresh-token rotation: a new value on every refresh after this many seconds since the
        # token was issued (0 = every refresh; ~86400 matches the "changes every 24 h" reports).
        "refresh_token_rotation_seconds": 0,
        # How long a rotated-out refresh token keeps working (0 = invalid at once).
        "refresh_token_grace_seconds": 0,
        # minorversion: required on every call and at least 75 (python-quickbooks' floor).
        "minorversion_required": True,
        "min_minorversion": 75,
        # MAXRESULTS: cap 1000 (default 100); "cap" silently caps, "error" refuses larger values.
        "query_max_results_cap": 1000,
        "query_over_cap": "cap",
        # Inactive Vendor/Account/... rows are left out unless the WHERE clause names Active.
        "query_excludes_inactive": True,
        # String comparisons in WHERE (and DisplayName uniqueness) ignore case.
        "query_case_insensitive": True,
        "display_name_case_insensitive": True,
        # Colons are refused in DisplayName (SECONDARY).
        "display_name_colon_rejected": True,
        # TaxIdentifier comes back masked on reads (XXXXXX8293).
        "mask_tax_identifier": True,
        # A reused DocNumber is refused with 6140 (addendum 2.3; the company preference varies).
        "duplicate_docnumber_error": True,
        # A Bill's DocNumber clashes only with the same vendor's bills (UNCONFIRMED scope).
        "bill_docnumber_unique_per_vendor": True,
        # Purchase orders need QBO Plus/Advanced and "Use purchase orders"; the API error when they
        # are off is UNCONFIRMED (a 6000 business validation fault here).
        "purchase_orders_enabled": True,
        # CompanyInfo NameValue OfferingSku (None = not sent).
        "offering_sku": "QuickBooks Online Plus",
        # Multicurrency off: only USD vendors and documents.
        "multicurrency_enabled": False,
        # Closing date (ISO date, None = open books): a document dated on or before it -> 6210.
        "books_closed_through": None,
        # Whether the closing date also refuses (non-posting) purchase orders (UNCONFIRMED).
        "closing_date_applies_to_po": True,
        # requestid replay: how long a response is kept for replay (None = until reset).
        "requestid_retention_seconds": 86400,
        # Throttles per realm: 500/min, 10/s, 10 concurrent -> 429.
        "max_requests_per_minute": 500,
        "max_requests_per_second": 10,
        "max_concurrent_requests": 10,
        # Batch: at most 30 operations per call (the limits page; the batch page says 10:
        # UNCONFIRMED) and 40 batch calls a minute per realm; each call also counts once above.
        "batch_max_items": 30,
        "max_batch_requests_per_minute": 40,
        # The answer order of batch items is not promised: "reversed" makes clients match by bId.
        "batch_answer_order": "reversed",
        # 429 body ("fault" JSON or "empty") and optional Retry-After header (None = not sent).
        "throttle_body": "fault",
        "throttle_retry_after": None,
        # CDC nesting: one QueryResponse per entity ("per_entity") or all in one ("combined").
        "cdc_shape": "per_entity",
        # Webhook endpoint configured in the developer portal (None = no deliveries) and the
        # payload format: "cloudevents" (mandatory after the 2026 migration) or "legacy".
        "webhook_endpoint": None,
        "webhook_payload": "cloudevents",
    }

    backend: QuickBooksBackend

    def reset(self) -> None:
        # A reset also restores the default switches (in place: the backend keeps a reference).
        self.switches.clear()
        self.switches.update(copy.deepcopy(self.default_switches))
        self.backend = QuickBooksBackend(self.now, self.switches)
        self._in_flight: dict[str, int] = defaultdict(int)
        self._recent: dict[str, deque[float]] = defaultdict(deque)
        self._recent_batches: dict[str, deque[float]] = defaultdict(deque)

    def routes(self) -> list[BaseRoute]:
        return api.routes(self)

    def seed(self, fixture: dict[str, Any]) -> None:
        self.backend.load(fixture)

    def demo_fixture(self) -> dict[str, Any]:
        return demo.fixture()

    def generate(self, counts: dict[str, int]) -> None:
        self.backend.generate(SANDBOX_REALM_ID, counts)

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = json.loads(api.dumps(self.backend.snapshot()))
        return snap

    def connection(self, base_url: str) -> dict[str, Any]:
        return {
            "conn_type": "quickbooks",
            "host": base_url,
            "login": SANDBOX_CLIENT_ID,
            "password": SANDBOX_CLIENT_SECRET,
            "extra": {
                "realm_id": SANDBOX_REALM_ID,
                "refresh_token": SANDBOX_REFRESH_TOKEN,
                "redirect_uri": SANDBOX_REDIRECT_URI,
                "environment": "sandbox",
                "webhook_verifier_token": SANDBOX_WEBHOOK_VERIFIER_TOKEN,
            },
        }

    def expire_credentials(self) -> None:
        self.backend.expire_access_tokens()

    def rate_limited_response(self) -> Response:
        headers = {"intuit_tid": api.tid()}
        if self.switches.get("throttle_retry_after") is not None:
            headers["Retry-After"] = str(self.switches["throttle_retry_after"])
        if self.switches.get("throttle_body", "fault") == "empty":
            return Response(b"", status_code=429, headers=headers)
        fault = QBOFault(
            429,
            "3001",
            "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            "The request limit was reached. Wait 60 seconds before retrying.",
            fault_type="ThrottlingFault",
        )
        return Response(api.dumps(fault.body(envelope_time(self.now()))), 429, headers, "application/json")

    def server_error_response(self) -> Response:
        fault = QBOFault(
            500,
            "10000",
            "An application error has occurred while processing your request",
            "System Failure Error: An unexpected error occurred while accessing or saving your data.",
            fault_type="SystemFault",
        )
        return Response(
            api.dumps(fault.body(envelope_time(self.now()))), 500, {"intuit_tid": api.tid()}, "application/json"
        )

    async def around(self, scope: Scope, call: Callable[[], Awaitable[None]]) -> None:
        # around() cannot answer by itself: it marks the request and the route wrapper answers 429.
        path = scope["path"][len(scope.get("root_path", "")) :]
        parts = path.split("/")
        if len(parts) < 4 or parts[1:3] != ["v3", "company"]:
            await call()
            return
        realm = parts[3]
        now = self.now()
        with self.lock:
            recent = self._recent[realm]
            while recent and now - recent[0] >= 60:
                recent.popleft()
            last_second = sum(1 for t in recent if now - t < 1)
            per_minute = self.switches.get("max_requests_per_minute")
            per_second = self.switches.get("max_requests_per_second")
            concurrent = self.switches.get("max_concurrent_requests")
            batches = self._recent_batches[realm] if parts[4:5] == ["batch"] else None
            while batches and now - batches[0] >= 60:
                batches.popleft()
            per_minute_batches = self.switches.get("max_batch_requests_per_minute")
            throttled = (
                (per_minute is not None and len(recent) >= int(per_minute))
                or (per_second is not None and last_second >= int(per_second))
                or (concurrent is not None and self._in_flight[realm] >= int(concurrent))
                or (batches is not None and per_minute_batches is not None and len(batches) >= int(per_minute_batches))
            )
            if throttled:
                scope[api.THROTTLED] = True
            else:
                recent.append(now)
                if batches is not None:
                    batches.append(now)
                self._in_flight[realm] += 1
        try:
            await call()
        finally:
            if not throttled:
                with self.lock:
                    self._in_flight[realm] -= 1

    # ------------------------------------------------------------------ replay cache

    def replayed(self, realm_id: str, request_id: str) -> tuple[int, bytes] | None:
        entry = self.backend.realm(realm_id).replays.get(request_id)
        if entry is None:
            return None
        retention = self.switches.get("requestid_retention_seconds")
        if retention is not None and self.now() - entry[0] > float(retention):
            return None
        return entry[1], entry[2]

    def remember(self, realm_id: str, request_id: str, status: int, body: bytes) -> None:
        self.backend.realm(realm_id).replays[request_id] = (self.now(), status, body)

    # ------------------------------------------------------------------ webhooks

    def notify(self, realm_id: str, changes: list[Change]) -> None:
        """Deliver webhook notifications for entity changes (near real time, like the sandbox)."""
        endpoint = self.switches.get("webhook_endpoint")
        if not endpoint:
            return
        if self.switches.get("webhook_payload", "cloudevents") == "legacy":
            entities = [
                {
                    "name": c.entity,
                    "id": c.id,
                    "operation": c.operation,
                    "lastUpdated": local_time(c.at).strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                for c in changes
            ]
            payload: Any = {"eventNotifications": [{"realmId": realm_id, "dataChangeEvent": {"entities": entities}}]}
        else:
            payload = [
                {
                    "specversion": "1.0",
                    "id": str(uuid.uuid4()),
                    "source": _APP_SOURCE,
                    "type": f"qbo.{c.entity.lower()}.{_OPS[c.operation]}.v1",
                    "datacontenttype": "application/json",
                    "time": datetime.fromtimestamp(c.at, tz=timezone.utc).isoformat().replace("+00:00", "Z"),
                    "intuitentityid": c.id,
                    "intuitaccountid": realm_id,
                    "data": {},
                }
                for c in changes
            ]
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "intuit-signature": signature(SANDBOX_WEBHOOK_VERIFIER_TOKEN, body),
        }
        self.send_webhook(str(endpoint), body, headers)
