"""Contract suite: the same vendor-agnostic checks against all six emulators, over real HTTP.

In the spirit of singer's standard tap tests: one adapter per system says how the vendor
authenticates (with the sandbox's own Airflow connection, exactly as the API dossiers in
``shared/api/*.md`` describe), which cheap call proves a credential, which list pages, and which
write the provider makes. The checks are then identical for every system:

1. an unauthenticated call gets the vendor's own 401/403 shape (Expensify: ``responseCode`` in
   the body under HTTP 200);
2. the auth round trip (login / token exchange -> authenticated call) works;
3. walking a list with the smallest page size the vendor allows terminates and yields every
   record exactly once (and matches the total the API reports, where it reports one);
4. ``control.reset()`` without seeding leaves nothing to list and nothing in the state snapshot;
5. every fault kind is honoured in the vendor's shape: ``429``, ``500``, ``timeout``,
   ``expired_auth`` (and re-authenticating recovers where the vendor has a re-authentication)
   and ``drop_after_commit`` (the client sees a broken connection, the record exists);
6. ``control.request_counts(system)`` matches the calls made, keyed ``"system METHOD /template"``.

Vendors with a request quota tighter than a test's burst (Expensify: 5 per 10 s and 20 per 60 s;
QuickBooks: 10 per second) are paced on the sandbox clock, not with sleeps, so the walk behaves as
a well-behaved client would and the module stays fast.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests

from airflow_provider_mlconnector.sandbox.bamboohr import BambooHRSandbox
from airflow_provider_mlconnector.sandbox.freshbooks import BRIGHTSIDE_ACCOUNT_ID
from airflow_provider_mlconnector.sandbox.server import RunningSandbox

SYSTEMS = ["freshbooks", "bill", "bigcommerce", "expensify", "bamboohr", "quickbooks"]
TIMEOUT = 10.0
#: what ``requests`` raises when the server commits, sends the status line and hangs up mid-body.
BROKEN_READ = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)


# ---------------------------------------------------------------------------------------- HTTP


class Http:
    """``requests`` against one system, recording each call as ``"system METHOD /route-template"``."""

    def __init__(self, running: RunningSandbox, system: str, pace_seconds: float) -> None:
        self.system = system
        self.base = f"{running.url}/{system}"
        self.control = running.control
        self.pace_seconds = pace_seconds
        self.session = requests.Session()
        self.calls: Counter[str] = Counter()

    def __call__(
        self,
        method: str,
        template: str,
        path: dict[str, str] | None = None,
        *,
        timeout: float = TIMEOUT,
        **kwargs: Any,
    ) -> requests.Response:
        if self.pace_seconds:
            self.control.advance_clock(self.pace_seconds)
        url = self.base + fill(template, path or {})
        self.calls[f"{self.system} {method} {template}"] += 1
        return self.session.request(method, url, timeout=timeout, **kwargs)


def fill(template: str, values: dict[str, str]) -> str:
    """``/a/{id:int}/b`` + ``{"id": "7"}`` -> ``/a/7/b`` (Starlette route templates)."""

    def value(match: re.Match[str]) -> str:
        return str(values[match.group(1)])

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, template)


def is_json(response: requests.Response) -> bool:
    return response.headers.get("content-type", "").split(";")[0].strip() == "application/json"


# ------------------------------------------------------------------------------ the adapters


class Vendor:
    """How one vendor is called. Subclasses fill in the vendor-specific parts."""

    name: ClassVar[str]
    #: sandbox-clock seconds to advance before each call (vendors whose quota a test would trip).
    pace_seconds: ClassVar[float] = 0.0
    #: regex (searched in the path below ``/<system>``) of the probe call, to aim faults at it.
    probe_path: ClassVar[str]
    #: method + regex of the write used for ``drop_after_commit``.
    create_method: ClassVar[str] = "POST"
    create_path: ClassVar[str]
    #: True: ``expired_auth`` expires a token and logging in again recovers. False: the vendor's
    #: credential is static, so the fault revokes it and it stays refused (no re-authentication).
    reauth_recovers: ClassVar[bool] = True

    def __init__(self, running: RunningSandbox) -> None:
        self.running = running
        self.conn: dict[str, Any] = running.control.connections()[self.name]
        self.extra: dict[str, Any] = self.conn.get("extra") or {}

    # --- auth ---------------------------------------------------------------------------------
    def login(self, http: Http) -> Any:
        """Authenticate as the dossier says, from the sandbox connection; return the credential."""
        raise NotImplementedError

    def expiring_login(self, http: Http) -> Any:
        """The credential the ``expired_auth`` check uses (one that can expire)."""
        return self.login(http)

    def probe(self, http: Http, creds: Any, *, timeout: float = TIMEOUT) -> requests.Response:
        """A cheap authenticated call; ``creds=None`` makes it unauthenticated."""
        raise NotImplementedError

    def expect_ok(self, response: requests.Response) -> None:
        assert response.status_code == 200, (response.status_code, response.text[:300])

    def expect_unauthenticated(self, response: requests.Response) -> None:
        raise NotImplementedError

    def expect_expired(self, response: requests.Response) -> None:
        self.expect_unauthenticated(response)

    # --- faults -------------------------------------------------------------------------------
    def expect_throttled(self, response: requests.Response) -> None:
        raise NotImplementedError

    def expect_server_error(self, response: requests.Response) -> None:
        raise NotImplementedError

    # --- lists --------------------------------------------------------------------------------
    def walk(self, http: Http, creds: Any) -> tuple[list[str], int | None]:
        """Page through the list with the smallest page size: (ids in order, total the API reports)."""
        raise NotImplementedError

    def listed_in_state(self, state: dict[str, Any]) -> list[str]:
        """The ids the walk must yield, read from the state snapshot."""
        raise NotImplementedError

    def records_in_state(self, state: dict[str, Any]) -> int:
        """How many business records the snapshot holds (0 after a reset)."""
        raise NotImplementedError

    # --- writes -------------------------------------------------------------------------------
    def create(self, http: Http, creds: Any) -> requests.Response:
        raise NotImplementedError

    def created_in_state(self, state: dict[str, Any]) -> bool:
        raise NotImplementedError


def _count(values: Any) -> int:
    return len(values) if isinstance(values, (list, dict)) else 0


class FreshBooks(Vendor):
    """OAuth refresh grant (single-use refresh tokens) [dossier A2]; identity via users/me [A3]."""

    name = "freshbooks"
    probe_path = r"^/auth/api/v1/users/me$"
    create_path = r"/bill_payments/bill_payments$"
    BILLS = "/accounting/account/{account_id}/bills/bills"
    PAYMENTS = "/accounting/account/{account_id}/bill_payments/bill_payments"
    ME = "/auth/api/v1/users/me"
    PROBE_NOTE = "contract-suite drop_after_commit"

    def __init__(self, running: RunningSandbox) -> None:
        super().__init__(running)
        self.refresh_token = str(self.extra["refresh_token"])

    def login(self, http: Http) -> Any:
        response = http(
            "POST",
            "/auth/oauth/token",
            data={
                "grant_type": "refresh_token",
                "client_id": self.conn["login"],
                "client_secret": self.conn["password"],
                "redirect_uri": self.extra["redirect_uri"],
                "refresh_token": self.refresh_token,
            },
        )
        assert response.status_code == 200, response.text
        token = response.json()
        assert token["token_type"].lower() == "bearer"
        assert token["expires_in"] > 0 and isinstance(token["created_at"], int)
        # Refresh tokens are single use: the next login must present the rotated one.
        assert token["refresh_token"] != self.refresh_token
        self.refresh_token = token["refresh_token"]
        return {"Authorization": f"Bearer {token['access_token']}"}

    def probe(self, http: Http, creds: Any, *, timeout: float = TIMEOUT) -> requests.Response:
        return http("GET", self.ME, headers=creds or {}, timeout=timeout)

    def expect_ok(self, response: requests.Response) -> None:
        super().expect_ok(response)
        memberships = response.json()["response"]["business_memberships"]
        assert memberships and memberships[0]["business"]["account_id"]

    def expect_unauthenticated(self, response: requests.Response) -> None:
        # A3: {"error": "unauthenticated", "error_description": ...}; 401 vs 403 UNCONFIRMED.
        assert response.status_code in (401, 403), response.status_code
        assert is_json(response)
        body = response.json()
        assert body["error"] == "unauthenticated" and body["error_description"]

    def expect_throttled(self, response: requests.Response) -> None:
        # A13: no published body or Retry-After; the emulator answers an accounting-style error.
        assert response.status_code == 429
        assert is_json(response)
        assert response.json()["response"]["errors"][0]["errno"] == 429

    def expect_server_error(self, response: requests.Response) -> None:
        assert response.status_code == 500
        assert is_json(response)
        assert response.json()["response"]["errors"][0]["errno"] == 500  # A4: 500 FreshAlchemyUnexpected

    def _account_id(self, http: Http, creds: Any) -> str:
        me = self.probe(http, creds)
        self.expect_ok(me)
        return str(me.json()["response"]["business_memberships"][0]["business"]["account_id"])

    def walk(self, http: Http, creds: Any) -> tuple[list[str], int | None]:
        account_id = self._account_id(http, creds)
        ids: list[str] = []
        totals: set[int] = set()
        page = 1
        for _ in range(200):
            response = http(
                "GET", self.BILLS, {"account_id": account_id}, headers=creds, params={"page": page, "per_page": 1}
            )
            assert response.status_code == 200, response.text
            result = response.json()["response"]["result"]
            assert result["page"] == page and result["per_page"] == 1
            ids.extend(str(bill["id"]) for bill in result["bills"])
            totals.add(result["total"])
            if page >= result["pages"]:  # C5: loop on page < pages
                break
            page += 1
        else:
            pytest.fail("FreshBooks paging never ended")
        assert len(totals) == 1, f"total changed while paging: {totals}"
        return ids, totals.pop()

    def _account(self, state: dict[str, Any]) -> dict[str, Any]:
        account: dict[str, Any] = state["accounts"][BRIGHTSIDE_ACCOUNT_ID]  # the connection's only business
        return account

    def listed_in_state(self, state: dict[str, Any]) -> list[str]:
        # A6: lists show active and archived records, not deleted ones.
        return [str(b["id"]) for b in self._account(state)["bills"] if b.get("vis_state", 0) != 1]

    def records_in_state(self, state: dict[str, Any]) -> int:
        return sum(_count(table) for account in state["accounts"].values() for table in account.values())

    def create(self, http: Http, creds: Any) -> requests.Response:
        account_id = self._account_id(http, creds)
        payment = {
            "billid": 7101,
            "amount": {"amount": "100.00", "code": "USD"},
            "payment_type": "Check",
            "paid_date": "2026-11-20",
            "note": self.PROBE_NOTE,
        }
        return http("POST", self.PAYMENTS, {"account_id": account_id}, headers=creds, json={"bill_payment": payment})

    def created_in_state(self, state: dict[str, Any]) -> bool:
        return any(p.get("note") == self.PROBE_NOTE for p in self._account(state)["bill_payments"])


class Bill(Vendor):
    """``POST /connect/v3/login`` -> ``devKey`` + ``sessionId`` headers [dossier B2]; v3 error arrays [B3]."""

    name = "bill"
    probe_path = r"^/connect/v3/login/session$"
    create_path = r"^/connect/v3/vendors$"
    PROBE_VENDOR = "Contract Suite Supplies"

    def login(self, http: Http) -> Any:
        body = {
            "username": self.conn["login"],
            "password": self.conn["password"],
            "organizationId": self.extra["organization_id"],
            "devKey": self.extra["dev_key"],
        }
        response = http("POST", "/connect/v3/login", json=body)
        assert response.status_code == 200, response.text
        session = response.json()
        assert session["organizationId"] == self.extra["organization_id"]
        assert session["userId"].startswith("006") and session["sessionId"]
        return {"devKey": self.extra["dev_key"], "sessionId": session["sessionId"]}

    def probe(self, http: Http, creds: Any, *, timeout: float = TIMEOUT) -> requests.Response:
        return http("GET", "/connect/v3/login/session", headers=creds or {}, timeout=timeout)

    def expect_ok(self, response: requests.Response) -> None:
        super().expect_ok(response)
        assert response.json()["organizationId"] == self.extra["organization_id"]

    @staticmethod
    def _error(response: requests.Response) -> dict[str, Any]:
        assert is_json(response)
        body = response.json()
        assert isinstance(body, list) and body, body  # B3: a JSON array of errors
        first: dict[str, Any] = body[0]
        assert {"timestamp", "code", "severity", "category", "message"} <= set(first)
        return first

    def expect_unauthenticated(self, response: requests.Response) -> None:
        # No devKey/sessionId at all: 401 with a BDC code (B2/B3: invalid devKey or session).
        assert response.status_code == 401, response.status_code
        assert self._error(response)["code"] in ("BDC_1102", "BDC_1109")

    def expect_expired(self, response: requests.Response) -> None:
        # B2: BDC_1109 "Session is invalid.  Please log in." (HTTP status UNCONFIRMED; 401 hinted).
        assert response.status_code == 401, response.status_code
        error = self._error(response)
        assert error["code"] == "BDC_1109"
        assert error["message"] == "Session is invalid.  Please log in."

    def expect_throttled(self, response: requests.Response) -> None:
        # B4 + C3: throttling is a 4xx with BDC_1322 in the body, not HTTP 429, no Retry-After.
        assert 400 <= response.status_code < 500 and response.status_code != 429, response.status_code
        assert self._error(response)["code"] == "BDC_1322"
        assert "Retry-After" not in response.headers

    def expect_server_error(self, response: requests.Response) -> None:
        assert response.status_code == 500
        assert self._error(response)["code"] == "BDC_1001"  # B3: system error

    def walk(self, http: Http, creds: Any) -> tuple[list[str], int | None]:
        ids: list[str] = []
        params: dict[str, Any] = {"max": 1}
        for _ in range(200):
            response = http("GET", "/connect/v3/bills", headers=creds, params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["results"]) <= 1
            ids.extend(row["id"] for row in body["results"])
            if "nextPage" not in body:  # B5: terminate on the ABSENCE of nextPage
                break
            params = {"max": 1, "page": body["nextPage"]}
        else:
            pytest.fail("BILL paging never ended")
        return ids, None  # BILL reports no total

    def _org(self, state: dict[str, Any]) -> dict[str, Any]:
        org: dict[str, Any] = state["organizations"][self.extra["organization_id"]]
        return org

    def listed_in_state(self, state: dict[str, Any]) -> list[str]:
        return [b["id"] for b in self._org(state)["bills"]]

    def records_in_state(self, state: dict[str, Any]) -> int:
        return sum(
            _count(org[key])
            for org in state["organizations"].values()
            for key in ("vendors", "bills", "chart_of_accounts", "payments", "subscriptions")
        )

    def create(self, http: Http, creds: Any) -> requests.Response:
        vendor = {
            "name": self.PROBE_VENDOR,
            "accountType": "BUSINESS",
            "address": {
                "line1": "1 Contract Way",
                "city": "Austin",
                "stateOrProvince": "TX",
                "zipOrPostalCode": "78701",
                "country": "US",
            },
        }
        return http("POST", "/connect/v3/vendors", headers=creds, json=vendor)

    def created_in_state(self, state: dict[str, Any]) -> bool:
        return any(v["name"] == self.PROBE_VENDOR for v in self._org(state)["vendors"])


class BigCommerce(Vendor):
    """``X-Auth-Token`` only, no login [dossier 1.1]; v2 errors are arrays [1.2]; quota headers [1.3]."""

    name = "bigcommerce"
    probe_path = r"/v2/store$"
    create_path = r"/v3/hooks$"
    reauth_recovers = False  # tokens never expire: the fault revokes the API account's token
    STORE = "/stores/{store_hash}/v2/store"
    ORDERS = "/stores/{store_hash}/v2/orders"
    COUNT = "/stores/{store_hash}/v2/orders/count"
    HOOKS = "/stores/{store_hash}/v3/hooks"
    QUOTA_HEADERS = (
        "X-Rate-Limit-Time-Window-Ms",
        "X-Rate-Limit-Time-Reset-Ms",
        "X-Rate-Limit-Requests-Quota",
        "X-Rate-Limit-Requests-Left",
    )
    PROBE_DESTINATION = "https://hooks.example.com/contract-suite"

    @property
    def store(self) -> dict[str, str]:
        return {"store_hash": str(self.extra["store_hash"])}

    def login(self, http: Http) -> Any:
        return {"X-Auth-Token": self.conn["password"], "Accept": "application/json"}

    def probe(self, http: Http, creds: Any, *, timeout: float = TIMEOUT) -> requests.Response:
        return http("GET", self.STORE, self.store, headers=creds or {"Accept": "application/json"}, timeout=timeout)

    def expect_ok(self, response: requests.Response) -> None:
        super().expect_ok(response)
        # 1.3: every authenticated answer carries the four quota headers.
        for header in self.QUOTA_HEADERS:
            assert int(response.headers[header]) >= 0, header

    def expect_unauthenticated(self, response: requests.Response) -> None:
        assert response.status_code == 401
        assert is_json(response)
        body = response.json()
        assert isinstance(body, list) and body[0]["status"] == 401 and body[0]["message"]  # 1.2 v2 array

    def expect_throttled(self, response: requests.Response) -> None:
        # 1.3: a 429 WITHOUT the X-Rate-Limit-* headers is the "platform under high load" answer.
        assert response.status_code == 429
        assert not any(h in response.headers for h in self.QUOTA_HEADERS)
        assert is_json(response)

    def expect_server_error(self, response: requests.Response) -> None:
        assert response.status_code == 500
        assert is_json(response)

    def walk(self, http: Http, creds: Any) -> tuple[list[str], int | None]:
        ids: list[str] = []
        for page in range(1, 200):
            response = http("GET", self.ORDERS, self.store, headers=creds, params={"page": page, "limit": 1})
            if response.status_code == 204:  # 1.2: an empty v2 page is 204 with no body
                assert response.content == b""
                break
            assert response.status_code == 200, response.text
            rows = response.json()
            assert len(rows) == 1
            ids.extend(str(order["id"]) for order in rows)
        else:
            pytest.fail("BigCommerce paging never ended")
        count = http("GET", self.COUNT, self.store, headers=creds)
        assert count.status_code == 200, count.text
        return ids, int(count.json()["count"])

    def listed_in_state(self, state: dict[str, Any]) -> list[str]:
        # 1.5 (README): Incomplete orders (status 0) are listed only when asked for with status_id=0.
        return [oid for oid, order in state["orders"].items() if order["status_id"] != 0]

    def records_in_state(self, state: dict[str, Any]) -> int:
        keys = ("orders", "order_products", "transactions", "refunds", "customers", "products", "hooks")
        return sum(_count(state[key]) for key in keys)

    def create(self, http: Http, creds: Any) -> requests.Response:
        hook = {"scope": "store/order/created", "destination": self.PROBE_DESTINATION, "is_active": True}
        return http("POST", self.HOOKS, self.store, headers=creds, json=hook)

    def created_in_state(self, state: dict[str, Any]) -> bool:
        return any(h["destination"] == self.PROBE_DESTINATION for h in state["hooks"])


class Expensify(Vendor):
    """One form-encoded endpoint; partner credentials in every ``requestJobDescription`` [dossier 2.1].

    Its paged list is the provider's own: the report exporter with ``limit`` 1 and a
    ``markedAsExported`` filter, labelling each exported report (``onFinish.markAsExported``), so
    each run yields the next unexported report until none is left [2.4].
    """

    name = "expensify"
    pace_seconds = 3.5  # 2.3: 5 calls per 10 s and 20 per 60 s
    probe_path = r"^/Integration-Server/ExpensifyIntegrations$"
    create_path = r"^/Integration-Server/ExpensifyIntegrations$"
    reauth_recovers = False  # partner credentials do not expire: the fault stands for a regenerated secret
    JOB = "/Integration-Server/ExpensifyIntegrations"
    LABEL = "contract-suite"
    TEMPLATE = '[<#list reports as report>"${report.reportID?json_string}"<#sep>,</#list>]'

    def login(self, http: Http) -> Any:
        return {"partnerUserID": self.conn["login"], "partnerUserSecret": self.conn["password"]}

    def _job(
        self, http: Http, creds: Any, job: dict[str, Any], *, timeout: float = TIMEOUT, **fields: str
    ) -> requests.Response:
        description = dict(job)
        if creds is not None:
            description["credentials"] = creds
        form = {"requestJobDescription": json.dumps(description), **fields}
        return http("POST", self.JOB, data=form, timeout=timeout)

    def probe(self, http: Http, creds: Any, *, timeout: float = TIMEOUT) -> requests.Response:
        job = {"type": "get", "inputSettings": {"type": "policyList", "adminOnly": True}}
        return self._job(http, creds, job, timeout=timeout)

    def expect_ok(self, response: requests.Response) -> None:
        super().expect_ok(response)
        body = response.json()
        assert body["responseCode"] == 200
        assert [p["id"] for p in body["policyList"]] == [self.extra["policy_id"]]

    def expect_unauthenticated(self, response: requests.Response) -> None:
        # 2.2: failures are {"responseMessage", "responseCode"} under HTTP 200; the body code wins.
        # The code for bad credentials is UNCONFIRMED (switch bad_credentials_code).
        assert response.status_code == 200
        body = response.json()
        assert not 200 <= body["responseCode"] < 300, body
        assert body["responseMessage"]

    def expect_throttled(self, response: requests.Response) -> None:
        # 2.3: responseCode 429 with the documented message; Retry-After often absent.
        body = response.json()
        assert body["responseCode"] == 429
        assert body["responseMessage"].startswith("You have been rate-limited.")
        assert response.status_code in (200, 429)

    def expect_server_error(self, response: requests.Response) -> None:
        body = response.json()
        assert body["responseCode"] == 500
        assert response.status_code in (200, 500)

    def _export(self, http: Http, creds: Any, filters: dict[str, str], limit: str | None = None) -> list[str]:
        settings: dict[str, Any] = {"type": "combinedReportData", "filters": filters}
        if limit is not None:
            settings["limit"] = limit
        job = {
            "type": "file",
            "onReceive": {"immediateResponse": ["returnRandomFileName"]},
            "inputSettings": settings,
            "outputSettings": {"fileExtension": "json"},
            "onFinish": [{"actionName": "markAsExported", "label": self.LABEL}],
        }
        generated = self._job(http, creds, job, template=self.TEMPLATE)
        assert generated.status_code == 200, generated.text
        file_name = generated.text.strip()
        assert re.fullmatch(r"export[0-9a-f-]{36}\.json", file_name), file_name  # 2.4: the bare file name
        download = {"type": "download", "fileName": file_name, "fileSystem": "integrationServer"}
        content = self._job(http, creds, download)
        assert content.status_code == 200, content.text
        ids: list[str] = json.loads(content.text)
        return ids

    # Demo reports date from autumn 2026; an explicit endDate keeps the span legal (<= 1 year)
    # whatever today's date is.
    WINDOW: ClassVar[dict[str, str]] = {"startDate": "2026-01-01", "endDate": "2026-12-31"}

    def walk(self, http: Http, creds: Any) -> tuple[list[str], int | None]:
        ids: list[str] = []
        for _ in range(100):
            page = self._export(http, creds, {**self.WINDOW, "markedAsExported": self.LABEL}, limit="1")
            assert len(page) <= 1
            if not page:
                break
            ids.extend(page)
        else:
            pytest.fail("Expensify export paging never ended")
        return ids, None  # the exporter reports no total

    def listed_in_state(self, state: dict[str, Any]) -> list[str]:
        return list(state["reports"])

    def records_in_state(self, state: dict[str, Any]) -> int:
        return _count(state["policies"]) + _count(state["reports"]) + _count(state["files"])

    PROBE_REPORT = "R00A7kQ2mX1B"

    def create(self, http: Http, creds: Any) -> requests.Response:
        # The provider's write: onFinish.markAsExported labels the exported report.
        job = {
            "type": "file",
            "onReceive": {"immediateResponse": ["returnRandomFileName"]},
            "inputSettings": {"type": "combinedReportData", "filters": {"reportIDList": self.PROBE_REPORT}},
            "outputSettings": {"fileExtension": "json"},
            "onFinish": [{"actionName": "markAsExported", "label": self.LABEL}],
        }
        return self._job(http, creds, job, template=self.TEMPLATE)

    def created_in_state(self, state: dict[str, Any]) -> bool:
        return self.LABEL in state["reports"][self.PROBE_REPORT]["labels"]


class BambooHR(Vendor):
    """Basic ``key:x`` on the legacy gateway prefix [dossier 3.1]; errors = status + empty body [3.2].

    API keys do not expire, so the ``expired_auth`` check uses the OAuth mode (refresh grant at
    ``token.php?request=token``, client credentials in the form body [3.1]).
    """

    name = "bamboohr"
    probe_path = r"/v1/employees/directory$"
    create_path = r"/v1/webhooks$"
    DIRECTORY = "/api/gateway.php/{company}/v1/employees/directory"
    REPORT = "/api/gateway.php/{company}/v1/reports/custom"
    WEBHOOKS = "/api/gateway.php/{company}/v1/webhooks"
    PROBE_WEBHOOK = "https://hooks.example.com/contract-suite/bamboohr"

    def __init__(self, running: RunningSandbox) -> None:
        super().__init__(running)
        emulator = running.sandbox.systems[self.name]
        assert isinstance(emulator, BambooHRSandbox)
        self.oauth: dict[str, Any] = emulator.oauth_connection(self.conn["host"])
        self.refresh_token = str(self.oauth["extra"]["refresh_token"])

    @property
    def company(self) -> dict[str, str]:
        return {"company": str(self.extra["company_domain"])}

    def login(self, http: Http) -> Any:
        key = base64.b64encode(f"{self.conn['password']}:x".encode()).decode()
        return {"Authorization": f"Basic {key}", "Accept": "application/json"}

    def expiring_login(self, http: Http) -> Any:
        form = {
            "client_id": self.oauth["login"],
            "client_secret": self.oauth["password"],
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
        }
        response = http("POST", "/token.php", params={"request": "token"}, data=form)
        assert response.status_code == 200, response.text
        token = response.json()
        assert token["expires_in"] == 3600
        self.refresh_token = token.get("refresh_token") or self.refresh_token  # may rotate
        return {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/json"}

    def probe(self, http: Http, creds: Any, *, timeout: float = TIMEOUT) -> requests.Response:
        headers = creds or {"Accept": "application/json"}
        return http("GET", self.DIRECTORY, self.company, headers=headers, timeout=timeout)

    def expect_ok(self, response: requests.Response) -> None:
        super().expect_ok(response)
        body = response.json()
        assert {"fields", "employees"} <= set(body)
        assert all(isinstance(e["id"], str) for e in body["employees"])  # 3.3: ids are strings

    @staticmethod
    def _error(response: requests.Response) -> None:
        # 3.2 + README: the status, an empty body, the detail in X-BambooHR-Error-Message.
        assert response.content == b"", response.content[:200]
        assert response.headers.get("X-BambooHR-Error-Message")

    def expect_unauthenticated(self, response: requests.Response) -> None:
        assert response.status_code == 401
        self._error(response)

    def expect_throttled(self, response: requests.Response) -> None:
        # 3.2: 429 since 2026-09-16 (503 legacy); "Every rate-limited response includes a Retry-After".
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0
        self._error(response)

    def expect_server_error(self, response: requests.Response) -> None:
        assert response.status_code == 500
        self._error(response)

    def walk(self, http: Http, creds: Any) -> tuple[list[str], int | None]:
        # BambooHR does not page the directory or the custom report (the paged /api/v1/employees
        # list is not what the provider uses): the walk is one page holding everyone (3.3: the
        # custom report includes Active and Inactive employees).
        report = {"title": "contract suite", "fields": ["firstName", "lastName", "status"]}
        response = http("POST", self.REPORT, self.company, headers=creds, params={"format": "JSON"}, json=report)
        assert response.status_code == 200, response.text
        return [str(e["id"]) for e in response.json()["employees"]], None

    def listed_in_state(self, state: dict[str, Any]) -> list[str]:
        return list(state[self.extra["company_domain"]]["employees"])

    def records_in_state(self, state: dict[str, Any]) -> int:
        company = state[self.extra["company_domain"]]
        return _count(company["employees"]) + _count(company["deleted"]) + _count(company["webhooks"])

    def create(self, http: Http, creds: Any) -> requests.Response:
        webhook = {
            "name": "contract suite",
            "monitorFields": ["firstName"],
            "postFields": {"firstName": "First Name"},
            "url": self.PROBE_WEBHOOK,
            "format": "json",
        }
        return http("POST", self.WEBHOOKS, self.company, headers=creds, json=webhook)

    def created_in_state(self, state: dict[str, Any]) -> bool:
        hooks = state[self.extra["company_domain"]]["webhooks"]
        return any(h["url"] == self.PROBE_WEBHOOK for h in hooks)


class QuickBooks(Vendor):
    """``/oauth2/v1/tokens/bearer`` with Basic client auth and a rotating refresh token [dossier 4.1]."""

    name = "quickbooks"
    pace_seconds = 0.2  # 4.3: 10 requests per second per realm
    probe_path = r"/companyinfo/"
    create_path = r"/vendor$"
    COMPANY_INFO = "/v3/company/{realm}/companyinfo/{id}"
    QUERY = "/v3/company/{realm}/query"
    VENDOR = "/v3/company/{realm}/vendor"
    MINOR: ClassVar[dict[str, str]] = {"minorversion": "75"}
    PROBE_VENDOR = "Contract Suite Supplies"

    def __init__(self, running: RunningSandbox) -> None:
        super().__init__(running)
        self.refresh_token = str(self.extra["refresh_token"])

    @property
    def realm(self) -> dict[str, str]:
        realm = str(self.extra["realm_id"])
        return {"realm": realm, "id": realm}

    def login(self, http: Http) -> Any:
        basic = base64.b64encode(f"{self.conn['login']}:{self.conn['password']}".encode()).decode()
        response = http(
            "POST",
            "/oauth2/v1/tokens/bearer",
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
            data={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
        )
        assert response.status_code == 200, response.text
        token = response.json()
        assert token["token_type"].lower() == "bearer" and token["expires_in"] == 3600
        self.refresh_token = token["refresh_token"]  # always persist the newest (4.1)
        return {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/json"}

    def probe(self, http: Http, creds: Any, *, timeout: float = TIMEOUT) -> requests.Response:
        headers = creds or {"Accept": "application/json"}
        return http("GET", self.COMPANY_INFO, self.realm, headers=headers, params=self.MINOR, timeout=timeout)

    def expect_ok(self, response: requests.Response) -> None:
        super().expect_ok(response)
        assert response.json()["CompanyInfo"]["CompanyName"]

    def expect_unauthenticated(self, response: requests.Response) -> None:
        # 4.8: HTTP 401, LOWER-case "fault" body, code 3200, www-authenticate: Bearer ... invalid_token.
        assert response.status_code == 401
        assert is_json(response)
        fault = response.json()["fault"]
        assert fault["type"] == "AUTHENTICATION" and fault["error"][0]["code"] == "3200"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert response.headers.get("intuit_tid")

    def _fault(self, response: requests.Response) -> dict[str, Any]:
        assert is_json(response), response.headers.get("content-type")
        body = response.json()
        assert "time" in body  # 4.8: {"Fault": {"Error": [...], "type"}, "time"}
        fault: dict[str, Any] = body["Fault"]
        return fault

    def expect_throttled(self, response: requests.Response) -> None:
        # 4.3: 429 on throttling ("wait 60 seconds"); body shape UNCONFIRMED (emulator: Fault 3001).
        assert response.status_code == 429
        assert self._fault(response)["Error"][0]["code"] == "3001"

    def expect_server_error(self, response: requests.Response) -> None:
        assert response.status_code == 500
        fault = self._fault(response)
        assert fault["type"] == "SystemFault" and fault["Error"][0]["code"] == "10000"

    def _query(self, http: Http, creds: Any, statement: str) -> dict[str, Any]:
        response = http("GET", self.QUERY, self.realm, headers=creds, params={**self.MINOR, "query": statement})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["QueryResponse"]
        return result

    def walk(self, http: Http, creds: Any) -> tuple[list[str], int | None]:
        ids: list[str] = []
        for position in range(1, 200):  # 4.4: STARTPOSITION is 1-based
            page = self._query(http, creds, f"SELECT * FROM Account STARTPOSITION {position} MAXRESULTS 1")
            rows = page.get("Account", [])  # an empty result is "QueryResponse": {}
            if not rows:
                break
            assert len(rows) == 1 and page["startPosition"] == position and page["maxResults"] == 1
            ids.append(rows[0]["Id"])
        else:
            pytest.fail("QuickBooks paging never ended")
        total = self._query(http, creds, "SELECT count(*) FROM Account").get("totalCount", 0)
        return ids, int(total)

    def _realm(self, state: dict[str, Any]) -> dict[str, Any]:
        realm: dict[str, Any] = state[str(self.extra["realm_id"])]
        return realm

    def listed_in_state(self, state: dict[str, Any]) -> list[str]:
        # 4.4 (SECONDARY, switch query_excludes_inactive): inactive rows are left out.
        return [a["Id"] for a in self._realm(state)["Account"] if a.get("Active", True)]

    def records_in_state(self, state: dict[str, Any]) -> int:
        realm = self._realm(state)
        keys = ("Vendor", "PurchaseOrder", "Account", "Customer", "Employee", "Item", "deleted")
        return sum(_count(realm[key]) for key in keys)

    def create(self, http: Http, creds: Any) -> requests.Response:
        return http(
            "POST",
            self.VENDOR,
            self.realm,
            headers=creds,
            params={**self.MINOR, "requestid": str(uuid.uuid4())},
            json={"DisplayName": self.PROBE_VENDOR},
        )

    def created_in_state(self, state: dict[str, Any]) -> bool:
        return any(v["DisplayName"] == self.PROBE_VENDOR for v in self._realm(state)["Vendor"])


ADAPTERS: dict[str, type[Vendor]] = {
    cls.name: cls for cls in (FreshBooks, Bill, BigCommerce, Expensify, BambooHR, QuickBooks)
}
assert sorted(ADAPTERS) == sorted(SYSTEMS)


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def running() -> Iterator[RunningSandbox]:
    sandbox = RunningSandbox()
    yield sandbox
    sandbox.stop()


@pytest.fixture(params=SYSTEMS)
def system(request: pytest.FixtureRequest, running: RunningSandbox) -> str:
    running.control.reset()
    running.control.seed_demo()
    name: str = request.param
    return name


@pytest.fixture
def vendor(system: str, running: RunningSandbox) -> Vendor:
    return ADAPTERS[system](running)


@pytest.fixture
def http(vendor: Vendor, running: RunningSandbox) -> Iterator[Http]:
    client = Http(running, vendor.name, vendor.pace_seconds)
    yield client
    client.session.close()


# ------------------------------------------------------------------------------ the contract


def test_unauthenticated_call_gets_the_vendor_auth_error(vendor: Vendor, http: Http) -> None:
    vendor.expect_unauthenticated(vendor.probe(http, None))


def test_auth_round_trip(vendor: Vendor, http: Http) -> None:
    creds = vendor.login(http)
    vendor.expect_ok(vendor.probe(http, creds))
    vendor.expect_ok(vendor.probe(http, creds))  # the credential is reusable


def test_paging_ends_and_yields_every_record_once(vendor: Vendor, http: Http, running: RunningSandbox) -> None:
    expected = vendor.listed_in_state(running.control.state(vendor.name))
    assert len(expected) >= 3, "the demo data should give the walk several pages"
    ids, total = vendor.walk(http, vendor.login(http))
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates, f"records seen twice: {duplicates}"
    assert sorted(ids) == sorted(expected)
    if total is not None:
        assert total == len(ids)


def test_reset_empties_state(vendor: Vendor, http: Http, running: RunningSandbox) -> None:
    assert vendor.records_in_state(running.control.state(vendor.name)) > 0
    running.control.reset()
    assert vendor.records_in_state(running.control.state(vendor.name)) == 0
    # The credentials survive a reset (they are the sandbox's, not the demo's); the list is empty.
    ids, total = vendor.walk(http, vendor.login(http))
    assert ids == []
    assert total in (None, 0)


def test_fault_429_is_the_vendor_throttle_answer(vendor: Vendor, http: Http, running: RunningSandbox) -> None:
    creds = vendor.login(http)
    running.control.fault(vendor.name, "429", path=vendor.probe_path)
    vendor.expect_throttled(vendor.probe(http, creds))
    vendor.expect_ok(vendor.probe(http, creds))  # spent after one answer


def test_fault_500_is_the_vendor_server_error(vendor: Vendor, http: Http, running: RunningSandbox) -> None:
    creds = vendor.login(http)
    running.control.fault(vendor.name, "500", path=vendor.probe_path)
    vendor.expect_server_error(vendor.probe(http, creds))
    vendor.expect_ok(vendor.probe(http, creds))


def test_fault_timeout_holds_past_the_client_timeout(vendor: Vendor, http: Http, running: RunningSandbox) -> None:
    creds = vendor.login(http)
    running.control.fault(vendor.name, "timeout", path=vendor.probe_path, hold_seconds=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        vendor.probe(http, creds, timeout=0.3)
    vendor.expect_ok(vendor.probe(http, creds))
    # The held request hangs up (and is logged) after hold_seconds; wait for it, so it neither
    # goes unrecorded nor lands in the next test's request log.
    deadline = time.monotonic() + 5
    while not any(e["fault"] == "timeout" for e in running.control.requests(vendor.name)):
        assert time.monotonic() < deadline, "the held request never ended"
        time.sleep(0.05)


def test_fault_expired_auth(vendor: Vendor, http: Http, running: RunningSandbox) -> None:
    creds = vendor.expiring_login(http)
    vendor.expect_ok(vendor.probe(http, creds))
    running.control.fault(vendor.name, "expired_auth", path=vendor.probe_path)
    vendor.expect_expired(vendor.probe(http, creds))
    vendor.expect_expired(vendor.probe(http, creds))  # expired stays expired: no silent revival
    if vendor.reauth_recovers:
        vendor.expect_ok(vendor.probe(http, vendor.expiring_login(http)))
    else:
        # A static credential (BigCommerce token, Expensify partner secret) has no re-authentication:
        # the fault stands for its revocation, which only the operator undoes.
        vendor.expect_expired(vendor.probe(http, vendor.expiring_login(http)))


def test_fault_drop_after_commit(vendor: Vendor, http: Http, running: RunningSandbox) -> None:
    creds = vendor.login(http)
    assert not vendor.created_in_state(running.control.state(vendor.name))
    running.control.fault(vendor.name, "drop_after_commit", method=vendor.create_method, path=vendor.create_path)
    with pytest.raises(BROKEN_READ):  # requests reads the body eagerly: the hang-up breaks that read
        vendor.create(http, creds)
    assert vendor.created_in_state(running.control.state(vendor.name)), "the write was not committed"


def test_request_log_counts_the_calls_made(vendor: Vendor, http: Http, running: RunningSandbox) -> None:
    vendor.expect_unauthenticated(vendor.probe(http, None))
    creds = vendor.login(http)
    vendor.expect_ok(vendor.probe(http, creds))
    vendor.walk(http, creds)
    created = vendor.create(http, creds)
    assert created.status_code in (200, 201), created.text
    assert vendor.created_in_state(running.control.state(vendor.name))
    counts = running.control.request_counts(vendor.name)
    assert counts == dict(http.calls)
    assert all(key.startswith(f"{vendor.name} ") for key in counts)


def test_request_log_keys_fault_answers_by_route_template(vendor: Vendor, http: Http, running: RunningSandbox) -> None:
    """A call answered by an injected fault is still a call to that route, and is logged as one."""
    creds = vendor.login(http)
    running.control.fault(vendor.name, "500", path=vendor.probe_path)
    running.control.fault(vendor.name, "429", path=vendor.probe_path)
    vendor.expect_server_error(vendor.probe(http, creds))
    vendor.expect_throttled(vendor.probe(http, creds))
    vendor.expect_ok(vendor.probe(http, creds))
    assert running.control.request_counts(vendor.name) == dict(http.calls)
