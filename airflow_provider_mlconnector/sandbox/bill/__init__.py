"""BILL (bill.com) v3 emulator, mounted at ``/bill``: ``/bill/connect/v3/...`` and ``/bill/connect-events/v3/...``.

See README.md in this folder for the coverage table and the switches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, ClassVar

from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Scope

from airflow_provider_mlconnector.sandbox.bill import api
from airflow_provider_mlconnector.sandbox.bill.backend import BillBackend, Organization, Record, iso, parse_iso
from airflow_provider_mlconnector.sandbox.bill.demo import (
    SANDBOX_BANK_ACCOUNT_ID,
    SANDBOX_DEV_KEY,
    SANDBOX_ORGANIZATION_ID,
    SANDBOX_ORGANIZATION_NAME,
    SANDBOX_PASSWORD,
    SANDBOX_USER_ID,
    SANDBOX_USERNAME,
    demo_fixture,
)
from airflow_provider_mlconnector.sandbox.bill.errors import SYSTEM_ERROR, BillError
from airflow_provider_mlconnector.sandbox.bill.events import EventHub
from airflow_provider_mlconnector.sandbox.bill.wire import error_body, render_json
from airflow_provider_mlconnector.sandbox.core import SystemSandbox

__all__ = [
    "SANDBOX_DEV_KEY",
    "SANDBOX_ORGANIZATION_ID",
    "SANDBOX_PASSWORD",
    "SANDBOX_USERNAME",
    "BillSandbox",
]


class BillSandbox(SystemSandbox):
    """The BILL emulator: sessions, rate limits, vendors, bills, chart of accounts, payments, webhooks."""

    name = "bill"
    default_switches: ClassVar[dict[str, Any]] = {
        "session_idle_minutes": 35,
        "session_expired_status": 401,  # UNCONFIRMED HTTP status of BDC_1109
        "rate_limit_status": 400,  # UNCONFIRMED HTTP status of BDC_1144 ("4xx with BDC codes, not 429")
        "concurrency_limit_status": 400,  # UNCONFIRMED HTTP status of BDC_1322
        "max_concurrent_requests": 3,  # per developer key per organization
        "hourly_request_limit": 20000,  # per developer key; lower it in tests
        "login_hourly_limit": 200,
        "login_per_minute_limit": 5,  # login sends email/SMS: 5 per minute (dossier B4)
        "default_page_size": 20,  # UNCONFIRMED 20 vs 100: the stricter one
        "filters_require_quotes": True,  # UNCONFIRMED: string/date values must be quoted
        "filter_eq_case_insensitive": False,  # UNCONFIRMED
        "payments_extra_filterable_fields": [],  # UNCONFIRMED beyond id, vendorId, createdTime, updatedTime
        "bulk_bills_limit": 100,  # UNCONFIRMED 100 (current doc) vs 200 (older doc)
        "bulk_vendors_limit": 20,
        "create_status": 201,  # UNCONFIRMED 201 vs 200
        "sessions_trusted": False,  # MFA-trusted sessions (needed by POST /v3/payments)
        "mfa_required_status": 403,  # UNCONFIRMED
        "thin_list_rows": True,  # list rows omit fields the single GET has
        "vendor_address_required": True,
        "vendor_address_required_fields": ["line1", "city", "stateOrProvince", "zipOrPostalCode", "country"],
        "invoice_date_as_datetime": False,  # API answers echo invoiceDate as a date-time
        "flat_line_chart_of_account_id": "ignore",  # UNCONFIRMED: ignore | reject | accept
        "require_https_notification_url": True,
        "webhook_body_as_json_string": False,  # UNCONFIRMED "JSON-escaped payload presented as a string"
        "webhook_signature_key_encoding": "utf8",  # UNCONFIRMED: utf8 | base64
    }

    def reset(self) -> None:
        if not hasattr(self, "backend"):
            self.backend = BillBackend(clock=self.now, emit=self._publish, switches=lambda: self.switches)
            self.events = EventHub(clock=self.now, send=self._send, switches=lambda: self.switches)
            self._in_flight: dict[tuple[str, str], int] = {}
            self._attempting: dict[tuple[str, str], int] = {}
        self.backend.reset()
        self.events.reset()
        self.concurrency = {"peak_in_flight": 0, "peak_attempted": 0, "rejections": 0}
        self.backend.add_identity(
            dev_key=SANDBOX_DEV_KEY,
            username=SANDBOX_USERNAME,
            password=SANDBOX_PASSWORD,
            user_id=SANDBOX_USER_ID,
            org_id=SANDBOX_ORGANIZATION_ID,
            org_name=SANDBOX_ORGANIZATION_NAME,
        )
        org = self.backend.orgs[SANDBOX_ORGANIZATION_ID]
        org.bank_accounts[SANDBOX_BANK_ACCOUNT_ID] = {"id": SANDBOX_BANK_ACCOUNT_ID, "name": "Operating Checking"}

    def routes(self) -> list[BaseRoute]:
        return api.build_routes(self)

    def _publish(self, org_id: str, event_type: str, entity_key: str, entity: Record) -> None:
        self.events.publish(org_id, event_type, entity_key, entity)

    def _send(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        return self.ctx.webhooks.send(self.name, url, body, headers)

    # ------------------------------------------------------------------ concurrency (BDC_1322)

    async def around(self, scope: Scope, call: Callable[[], Awaitable[None]]) -> None:
        """Count in-flight calls per (devKey, organization), injected latency included."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        session = self.backend.peek_session(headers.get("devkey"), headers.get("sessionid"))
        if session is None:
            await call()  # login, control routes and bad sessions: answered by the routes
            return
        key = (session.dev_key, session.organization_id)
        admitted = self._in_flight.get(key, 0) < int(self.switches["max_concurrent_requests"])
        if not admitted:
            scope[api.REJECTED] = True
            self.concurrency["rejections"] += 1
        counter = self._in_flight if admitted else self._attempting
        counter[key] = counter.get(key, 0) + 1
        in_flight = self._in_flight.get(key, 0)
        self.concurrency["peak_in_flight"] = max(self.concurrency["peak_in_flight"], in_flight)
        self.concurrency["peak_attempted"] = max(
            self.concurrency["peak_attempted"], in_flight + self._attempting.get(key, 0)
        )
        try:
            await call()
        finally:
            counter[key] -= 1

    def rate_limited_response(self) -> Response:
        """The ``429`` fault: BILL throttles with BDC_1322 in a 4xx body, not a 429."""
        return self._error(api.concurrency_error(self.switches))

    def server_error_response(self) -> Response:
        return self._error(BillError(SYSTEM_ERROR, "System error.", status=500, category="SERVER"))

    def _error(self, error: BillError) -> Response:
        return Response(
            render_json(error_body(error, self.now())), status_code=error.status, media_type="application/json"
        )

    def expire_credentials(self) -> None:
        self.backend.expire_sessions()

    # ------------------------------------------------------------------ data

    def connection(self, base_url: str) -> dict[str, Any]:
        return {
            "conn_type": "bill",
            "host": base_url,
            "login": SANDBOX_USERNAME,
            "password": SANDBOX_PASSWORD,
            "extra": {"dev_key": SANDBOX_DEV_KEY, "organization_id": SANDBOX_ORGANIZATION_ID},
        }

    def demo_fixture(self) -> dict[str, Any]:
        return demo_fixture()

    def seed(self, fixture: dict[str, Any]) -> None:
        """Load ``{"organizations", "chart_of_accounts", "vendors", "bills", "payments"}`` (API shapes).

        Records may carry ``id``, ``organizationId``, ``createdTime`` and ``updatedTime``; money may
        be strings. Seeding validates like the API but sends no webhooks; records whose ``id``
        already exists are skipped, so seeding the demo twice is harmless.
        """
        backend = self.backend
        for org in fixture.get("organizations", []):
            backend.add_identity(
                dev_key=SANDBOX_DEV_KEY,
                username=SANDBOX_USERNAME,
                password=SANDBOX_PASSWORD,
                user_id=SANDBOX_USER_ID,
                org_id=org["id"],
                org_name=org["name"],
            )
        for item in fixture.get("chart_of_accounts", []):
            org = self._org_of(item)
            if item.get("id") in org.accounts:
                continue  # seeding the same fixture twice keeps one copy
            account = backend.create_account(org, _strip_meta(item) | {"id": item.get("id")})
            self._restamp(account, item)
        for item in fixture.get("vendors", []):
            org = self._org_of(item)
            if item.get("id") in org.vendors:
                continue
            vendor = backend.create_vendor(org, _strip_meta(item), emit=False)
            if item.get("archived"):  # an archived vendor is created, then archived (BILL's only way)
                vendor["archived"], vendor["recordStatus"] = True, "INACTIVE"
            self._restamp(_rekey(org.vendors, vendor, item.get("id")), item)
        for item in fixture.get("bills", []):
            org = self._org_of(item)
            if item.get("id") in org.bills:
                continue
            body = _strip_meta(item)
            body["billLineItems"] = [_exact(line) for line in body.get("billLineItems", [])]
            bill = backend.create_bill(org, body, None, emit=False)
            bill["createdBy"] = item.get("createdBy", SANDBOX_USER_ID)
            self._restamp(_rekey(org.bills, bill, item.get("id")), item)
        for item in fixture.get("payments", []):
            org = backend.find_org_of_bill(item["billId"])
            if item.get("id") in org.payments:
                continue
            created = parse_iso(item["createdTime"]) if item.get("createdTime") else None
            payment = backend.make_payment(
                org,
                bill_id=item["billId"],
                amount=Decimal(str(item["amount"])),
                status=item.get("status", "CLEARED"),
                process_date=item.get("processDate"),
                created_by=SANDBOX_USER_ID,
                payment_id=item.get("id"),
                at=created,
                emit=False,
            )
            if item.get("billPaymentId"):
                payment["billPayments"][0]["id"] = item["billPaymentId"]
            if item.get("updatedTime"):
                updated = parse_iso(item["updatedTime"])
                payment["_updated"], payment["updatedTime"] = updated, iso(updated)
                bill = org.bills[item["billId"]]
                bill["_updated"], bill["updatedTime"] = updated, iso(updated)

    def _org_of(self, item: dict[str, Any]) -> Organization:
        org_id = item.get("organizationId", SANDBOX_ORGANIZATION_ID)
        if org_id not in self.backend.orgs:
            raise KeyError(f"unknown BILL organization {org_id!r} in fixture; add it under 'organizations'")
        return self.backend.orgs[org_id]

    def _restamp(self, record: Record, item: dict[str, Any]) -> None:
        if item.get("createdTime"):
            created = parse_iso(item["createdTime"])
            updated = parse_iso(item["updatedTime"]) if item.get("updatedTime") else created
            record["_created"], record["createdTime"] = created, iso(created)
            record["_updated"], record["updatedTime"] = updated, iso(updated)

    def generate(self, counts: dict[str, int]) -> None:
        """``{"vendors": N, "bills": N}`` synthetic records in the sandbox organization, fast, no webhooks."""
        backend = self.backend
        org = backend.orgs[SANDBOX_ORGANIZATION_ID]
        expense = next((a for a in org.accounts.values() if a["accountType"] == "EXPENSE" and not a["archived"]), None)
        if expense is None:
            expense = backend.create_account(org, {"name": "General Expense", "accountNumber": "6999"})
        start = len(org.vendors)
        for i in range(int(counts.get("vendors", 0))):
            n = start + i + 1
            backend.create_vendor(
                org,
                {
                    "name": f"Generated Vendor {n:05d}",
                    "accountType": "BUSINESS",
                    "address": {
                        "line1": f"{100 + n} Market Street",
                        "city": "San Francisco",
                        "stateOrProvince": "CA",
                        "zipOrPostalCode": "94105",
                        "country": "US",
                    },
                },
                emit=False,
            )
        vendors = [v["id"] for v in org.vendors.values() if not v["archived"]]
        if not vendors and counts.get("bills"):
            backend.create_vendor(
                org,
                {
                    "name": "Generated Vendor",
                    "address": {
                        "line1": "1 Main St",
                        "city": "Austin",
                        "stateOrProvince": "TX",
                        "zipOrPostalCode": "78701",
                        "country": "US",
                    },
                },
                emit=False,
            )
            vendors = [v["id"] for v in org.vendors.values()]
        rng = backend._rng
        start = len(org.bills)
        for i in range(int(counts.get("bills", 0))):
            n = start + i + 1
            amount = Decimal(rng.randint(1000, 500000)) / 100
            backend.create_bill(
                org,
                {
                    "vendorId": vendors[i % len(vendors)],
                    "dueDate": "2026-12-31",
                    "invoice": {"invoiceNumber": f"GEN-{n:06d}", "invoiceDate": "2026-11-01"},
                    "billLineItems": [
                        {
                            "amount": amount,
                            "description": f"Generated line {n}",
                            "classifications": {"chartOfAccountId": expense["id"]},
                        }
                    ],
                },
                None,
                emit=False,
            )

    def snapshot(self) -> dict[str, Any]:
        backend = self.backend
        orgs = {}
        for org in backend.orgs.values():
            orgs[org.id] = {
                "name": org.name,
                "vendors": [backend.render_vendor(v) for v in org.vendors.values()],
                "bills": [backend.render_bill(b) for b in org.bills.values()],
                "chart_of_accounts": [_plain(a) for a in org.accounts.values()],
                "payments": [_plain(p) for p in org.payments.values()],
                "subscriptions": self.events.snapshot().get(org.id, []),
            }
        return {
            "organizations": orgs,
            "sessions": len(backend.sessions),
            "stats": dict(backend.stats),
            "concurrency": dict(self.concurrency),
        }


def _plain(record: Record) -> Record:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _strip_meta(item: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in item.items() if k not in ("id", "organizationId", "createdTime", "updatedTime", "createdBy")
    }


def _exact(line: dict[str, Any]) -> dict[str, Any]:
    line = dict(line)
    for key in ("amount", "quantity", "price"):
        if isinstance(line.get(key), (str, float)):
            line[key] = Decimal(str(line[key]))
    return line


def _rekey(table: dict[str, Record], record: Record, new_id: str | None) -> Record:
    if new_id and new_id != record["id"]:
        del table[record["id"]]
        record["id"] = new_id
        table[new_id] = record
    return record
