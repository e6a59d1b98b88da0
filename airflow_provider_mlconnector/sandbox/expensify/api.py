"""HTTP adapter of the Expensify emulator: the one Integration Server endpoint.

``POST /Integration-Server/ExpensifyIntegrations`` with a form-encoded ``requestJobDescription``
(JSON) plus job-specific fields (``template``). Failures are a JSON envelope with
``responseCode``/``responseMessage`` under HTTP 200 (the body code wins); the report exporter
answers with the bare file name and the downloader with the raw file.
"""

from __future__ import annotations

import hmac
import json
import random
from collections import deque
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from airflow_provider_mlconnector.sandbox.core import SystemSandbox
from airflow_provider_mlconnector.sandbox.expensify.backend import (
    PARTNER_USER_ID,
    PARTNER_USER_SECRET,
    POLICY_ID,
    Expense,
    ExpensifyBackend,
    ExpensifyError,
    FileNotFound,
    People,
    Policy,
    Report,
    ValidationFailed,
)
from airflow_provider_mlconnector.sandbox.expensify.demo import demo_fixture, story_as_of

JOB_PATH = "/Integration-Server/ExpensifyIntegrations"
RATE_LIMITED_MESSAGE = (
    "You have been rate-limited. Please try again later or contact help@expensify.com for assistance."
)
CONTENT_TYPES = {"json": "application/json", "csv": "text/csv", "xml": "application/xml", "txt": "text/plain"}


class ExpensifySandbox(SystemSandbox):
    """The Expensify emulator mounted at ``/expensify``; see ``README.md`` for its coverage."""

    name: ClassVar[str] = "expensify"
    default_switches: ClassVar[dict[str, Any]] = {
        # responseCode for wrong partner credentials (UNCONFIRMED; 407 "Authentication error" is what
        # Expensify's own apps receive for a failed authentication).
        "bad_credentials_code": 407,
        # (requests, seconds) windows per partnerUserID: "5 every 10 s, 20 every 60 s".
        "rate_limits": [[5, 10], [20, 60]],
        # HTTP status of the rate-limit answer; its body always says responseCode 429.
        "rate_limit_http_status": 429,
        # Seconds (sandbox clock) before an exported file can be downloaded; before that the
        # download body is empty (UNCONFIRMED: the "not rendered yet" answer is undocumented).
        "render_delay_seconds": 0.0,
        # outputSettings key of the file base name (UNCONFIRMED: fileBasename or fileBaseName).
        "file_basename_key": "fileBasename",
        # report.status in templates: "display" (Approved, Processing...) or "state" (APPROVED...).
        "report_status_style": "display",
        # Expense amounts negative in the template model (UNCONFIRMED sign convention).
        "negative_expense_amounts": False,
    }

    def reset(self) -> None:
        self.backend = ExpensifyBackend(now=self.now, switches=self.switches)
        self.revoked = False
        self.calls: dict[str, deque[float]] = {}

    # ------------------------------------------------------------------ SystemSandbox API

    def connection(self, base_url: str) -> dict[str, Any]:
        return {
            "conn_type": "expensify",
            "host": base_url,
            "login": PARTNER_USER_ID,
            "password": PARTNER_USER_SECRET,
            "extra": {"policy_id": POLICY_ID},
        }

    def expire_credentials(self) -> None:
        # Partner credentials do not expire; the nearest real event is a regenerated secret.
        self.revoked = True

    def rate_limited_response(self) -> Response:
        return JSONResponse(
            {"responseMessage": RATE_LIMITED_MESSAGE, "responseCode": 429},
            status_code=int(self.switches["rate_limit_http_status"]),
        )

    def server_error_response(self) -> Response:
        return JSONResponse({"responseMessage": "Internal server error", "responseCode": 500}, status_code=500)

    def demo_fixture(self) -> dict[str, Any]:
        today = datetime.fromtimestamp(self.now(), tz=timezone.utc).date()
        return story_as_of(demo_fixture(), today)

    def seed(self, fixture: dict[str, Any]) -> None:
        backend = self.backend
        for raw in fixture.get("people", []):
            person = People(raw["first"], raw["last"], raw["email"], int(raw["account_id"]))
            backend.people[person.email] = person
        for raw in fixture.get("policies", []):
            policy = Policy(**{k: v for k, v in raw.items()})
            backend.policies[policy.id] = policy
        for raw in fixture.get("reports", []):
            report = Report(
                reportID=raw["reportID"],
                reportName=raw["reportName"],
                policyID=raw["policyID"],
                accountEmail=raw["accountEmail"],
                accountID=int(raw.get("accountID", 0)),
                state=raw["state"],
                created=raw["created"],
                currency=raw.get("currency", "USD"),
                managerEmail=raw.get("managerEmail", ""),
                submitted=raw.get("submitted", ""),
                approved=raw.get("approved", ""),
                reimbursed=raw.get("reimbursed", ""),
                labels=set(raw.get("labels", [])),
                expenses=[_expense(e) for e in raw.get("expenses", [])],
            )
            backend.reports[report.reportID] = report

    def generate(self, counts: dict[str, int]) -> None:
        backend = self.backend
        if not backend.policies:
            self.seed({k: v for k, v in demo_fixture().items() if k != "reports"})
        policy = backend.policies.get(POLICY_ID) or next(iter(backend.policies.values()))
        rng = random.Random(777)
        categories = [c["name"] for c in policy.categories if c.get("enabled", True)]
        tags = [t["name"] for level in policy.tags for t in level.get("tags", [])] or [""]
        people = sorted(backend.people) or ["employee@example.com"]
        now = datetime.fromtimestamp(self.now(), tz=timezone.utc)
        states = ["APPROVED"] * 5 + ["REIMBURSED"] * 3 + ["SUBMITTED", "OPEN", "ARCHIVED"]
        for n in range(int(counts.get("reports", 0))):
            created = now - timedelta(days=rng.randrange(1, 90), seconds=rng.randrange(86400))
            state = rng.choice(states)
            submitted = created + timedelta(hours=rng.randrange(1, 48)) if state != "OPEN" else None
            approved = (
                submitted + timedelta(hours=rng.randrange(1, 72))
                if submitted and state in ("APPROVED", "REIMBURSED", "ARCHIVED")
                else None
            )
            reimbursed = approved + timedelta(days=rng.randrange(1, 5)) if approved and state == "REIMBURSED" else None
            report_id = f"R0G{len(backend.reports) + n:09d}"
            expenses = []
            for i in range(rng.randrange(1, 6)):
                spent = (created - timedelta(days=rng.randrange(0, 10))).date().isoformat()
                expenses.append(
                    Expense(
                        transactionID=str(5_000_000_000_000_000_000 + (len(backend.reports) + n) * 10 + i),
                        merchant=rng.choice(["Uber", "Staples", "Adobe", "Delta", "Blue Bottle", "Zoom"]),
                        amount=rng.randrange(199, 90000),
                        created=spent,
                        category=rng.choice(categories),
                        tag=rng.choice(tags),
                    )
                )
            email = rng.choice(people)
            person = backend.people.get(email)
            report = Report(
                reportID=report_id,
                reportName=f"Expenses {created:%b %d} #{n + 1}",
                policyID=policy.id,
                accountEmail=email,
                accountID=person.account_id if person else 0,
                state=state,
                created=f"{created:%Y-%m-%d %H:%M:%S}",
                managerEmail=policy.owner if submitted else "",
                submitted=f"{submitted:%Y-%m-%d %H:%M:%S}" if submitted else "",
                approved=f"{approved:%Y-%m-%d %H:%M:%S}" if approved else "",
                reimbursed=f"{reimbursed:%Y-%m-%d %H:%M:%S}" if reimbursed else "",
                expenses=expenses,
            )
            backend.reports[report.reportID] = report

    def snapshot(self) -> dict[str, Any]:
        backend = self.backend
        return {
            "policies": {
                pid: {"name": p.name, "categories": p.categories, "tags": p.tags} for pid, p in backend.policies.items()
            },
            "reports": {
                rid: {
                    "reportName": r.reportName,
                    "state": r.state,
                    "labels": sorted(r.labels),
                    "total": r.total(),
                    "approved": r.approved,
                    "reimbursed": r.reimbursed,
                }
                for rid, r in backend.reports.items()
            },
            "files": sorted(backend.files),
            "revoked": self.revoked,
        }

    # ------------------------------------------------------------------ the endpoint

    def routes(self) -> list[BaseRoute]:
        return [Route(JOB_PATH, self._integrations, methods=["POST"])]

    async def _integrations(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return _envelope(410, "The request must be application/x-www-form-urlencoded")
        form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        raw = (form.get("requestJobDescription") or [""])[0]
        if not raw:
            return _envelope(410, "requestJobDescription is missing")
        try:
            job = json.loads(raw)
        except ValueError:
            return _envelope(410, "requestJobDescription is not valid JSON")
        if not isinstance(job, dict):
            return _envelope(410, "requestJobDescription must be a JSON object")
        if not self._authenticated(job.get("credentials")):
            return _envelope(int(self.switches["bad_credentials_code"]), "Authentication error")
        if not self._admit(PARTNER_USER_ID):
            return JSONResponse(
                {"responseMessage": RATE_LIMITED_MESSAGE, "responseCode": 429},
                status_code=int(self.switches["rate_limit_http_status"]),
            )
        template = form["template"][0] if form.get("template") else None
        try:
            with self.lock:
                return self._run(job, template)
        except FileNotFound:
            return JSONResponse({"responseMessage": "File not found"})
        except ExpensifyError as exc:
            return _envelope(exc.code, exc.message)

    def _run(self, job: dict[str, Any], template: str | None) -> Response:
        kind = job.get("type")
        raw_settings = job.get("inputSettings")
        settings: dict[str, Any] = raw_settings if isinstance(raw_settings, dict) else {}
        if kind == "file":
            return PlainTextResponse(self.backend.export_reports(job, template))
        if kind == "download":
            name = str(job.get("fileName", ""))
            content = self.backend.download(job)
            media = CONTENT_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")
            return Response(content, media_type=media if content else "text/plain")
        if kind == "get" and settings.get("type") == "policyList":
            return JSONResponse({"policyList": self.backend.get_policy_list(settings), "responseCode": 200})
        if kind == "get" and settings.get("type") == "policy":
            return JSONResponse({"policyInfo": self.backend.get_policy(settings), "responseCode": 200})
        if kind == "update" and settings.get("type") == "reportStatus":
            return JSONResponse({**self.backend.update_report_status(settings), "responseCode": 200})
        raise ValidationFailed(f"Unsupported job: type={kind!r} inputSettings.type={settings.get('type')!r}")

    def _authenticated(self, credentials: Any) -> bool:
        if not isinstance(credentials, dict) or self.revoked:
            return False
        user = str(credentials.get("partnerUserID", ""))
        secret = str(credentials.get("partnerUserSecret", ""))
        return hmac.compare_digest(user, PARTNER_USER_ID) and hmac.compare_digest(secret, PARTNER_USER_SECRET)

    def _admit(self, user: str) -> bool:
        """Sliding windows per partner user on the sandbox clock; refused calls do not count."""
        with self.lock:
            now = self.now()
            calls = self.calls.setdefault(user, deque())
            windows = [(int(n), float(s)) for n, s in self.switches["rate_limits"]]
            longest = max(s for _, s in windows)
            while calls and now - calls[0] >= longest:
                calls.popleft()
            for limit, seconds in windows:
                if sum(1 for t in calls if now - t < seconds) >= limit:
                    return False
            calls.append(now)
            return True


def _envelope(code: int, message: str) -> JSONResponse:
    """Expensify's failure envelope, under HTTP 200: the body code is what counts."""
    return JSONResponse({"responseMessage": message, "responseCode": code})


def _expense(raw: dict[str, Any]) -> Expense:
    return Expense(
        transactionID=str(raw["transactionID"]),
        merchant=raw["merchant"],
        amount=int(raw["amount"]),
        created=raw["created"],
        category=raw.get("category", ""),
        currency=raw.get("currency", "USD"),
        tag=raw.get("tag", ""),
        comment=raw.get("comment", ""),
        billable=bool(raw.get("billable", False)),
        reimbursable=bool(raw.get("reimbursable", True)),
        converted_amount=raw.get("converted_amount"),
        conversion_rate=Decimal(str(raw.get("conversion_rate", "1"))),
        modified_amount=raw.get("modified_amount"),
        modified_merchant=raw.get("modified_merchant", ""),
        modified_created=raw.get("modified_created", ""),
        receipt_url=raw.get("receipt_url", ""),
    )
