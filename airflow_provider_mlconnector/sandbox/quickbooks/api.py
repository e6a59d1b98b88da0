"""QuickBooks Online's HTTP surface: OAuth token endpoint, ``/v3/company/{realm}/...``, replay cache.

Every company call goes through :func:`routes`' wrapper, in QuickBooks' order: throttle verdict
(set by ``around()``), bearer token (401 with the lower-case ``fault`` body), ``minorversion``,
``requestid`` replay, then the operation, answered as ``{"<Entity>": {...}, "time": ...}`` or a
``Fault``. Every response carries an ``intuit_tid`` header.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from airflow_provider_mlconnector.sandbox.quickbooks.backend import (
    AuthFailure,
    Change,
    OAuthError,
    QBOFault,
    QuickBooksBackend,
    envelope_time,
)

if TYPE_CHECKING:
    from airflow_provider_mlconnector.sandbox.quickbooks import QuickBooksSandbox

#: scope key set by QuickBooksSandbox.around() when a call is over a throttle.
THROTTLED = "mlconnector.quickbooks.throttled"
MAX_REQUEST_ID = 50

Result = tuple[int, dict[str, Any], list[Change]]
Operation = Callable[[Request, str, Any], Result]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # QuickBooks writes money as JSON numbers: 25.0, 659.88
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, default=_default).encode()


def tid() -> str:
    return "1-" + secrets.token_hex(12)


def qbo_response(status: int, body: bytes, extra: dict[str, str] | None = None) -> Response:
    headers = {"intuit_tid": tid(), **(extra or {})}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def auth_failure(failure: AuthFailure, now_ms: int) -> Response:
    if failure.status == 403:
        fault = QBOFault(
            403,
            "3100",
            "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
            failure.detail,
            fault_type="AuthorizationFault",
        )
        return qbo_response(403, dumps(fault.body(envelope_time(now_ms / 1000))))
    body: dict[str, Any] = {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [
                {
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": f"{failure.detail}: the access token is not valid for this request",
                    "code": "3200",
                    "element": None,
                }
            ],
            "type": "AUTHENTICATION",
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": now_ms,
        "status": None,
        "cdcresponse": [],
    }
    headers = {"www-authenticate": 'Bearer realm="Intuit", error="invalid_token"'}
    return qbo_response(401, dumps(body), headers)


def routes(sandbox: QuickBooksSandbox) -> list[BaseRoute]:
    def backend() -> QuickBooksBackend:
        return sandbox.backend  # looked up per call: reset() swaps the backend object

    def now_text() -> str:
        return envelope_time(sandbox.now())

    def company(
        operation: Operation, *, body: str | None = None, records: Callable[[Any], int] | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap one company operation; ``body`` = "json" or "text" to read the request body first.

        :param records: how many records the body carries (a batch): each costs the sandbox's
            per-record latency on top of the call's.
        """

        async def endpoint(request: Request) -> Response:
            if request.scope.get(THROTTLED):
                return sandbox.rate_limited_response()
            realm_id = str(request.path_params["realm"])
            try:
                backend().authenticate(request.headers.get("authorization", ""), realm_id)
                backend().realm(realm_id)
            except AuthFailure as failure:
                return auth_failure(failure, int(sandbox.now() * 1000))
            request_id = request.query_params.get("requestid")
            try:
                _check_minor_version(request.query_params.get("minorversion"), sandbox.switches)
                if request_id is not None and len(request_id) > MAX_REQUEST_ID:
                    raise invalid("requestid exceeds 50 characters")
                payload = _parse_body(await request.body(), body)
            except QBOFault as rejected:
                return qbo_response(rejected.status, dumps(rejected.body(now_text())))
            if records is not None:
                await sandbox.charge_records(records(payload))
            # No await from here on: the replay check, the operation and the cache write are atomic.
            with sandbox.lock:
                if request_id is not None:
                    replay = sandbox.replayed(realm_id, request_id)
                    if replay is not None:
                        return qbo_response(replay[0], replay[1])
                try:
                    status, result, changes = operation(request, realm_id, payload)
                    encoded = dumps({**result, "time": now_text()})
                except QBOFault as fault:
                    status, changes = fault.status, []
                    encoded = dumps(fault.body(now_text()))
                if request_id is not None and status < 500:
                    sandbox.remember(realm_id, request_id, status, encoded)
            if changes:
                sandbox.notify(realm_id, changes)
            return qbo_response(status, encoded)

        return endpoint

    def query(request: Request, realm_id: str, payload: Any) -> Result:
        text = payload if request.method == "POST" else request.query_params.get("query")
        if request.method == "POST":
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media not in ("application/text", "text/plain"):
                raise QBOFault(415, "2010", "Unsupported Media Type", "POST /query takes Content-Type application/text")
        if not text:
            raise QBOFault(400, "4000", "Error parsing query", "QueryParserError: the query is empty")
        return 200, {"QueryResponse": backend().query(realm_id, str(text))}, []

    def write_vendor(request: Request, realm_id: str, payload: Any) -> Result:
        vendor, change = backend().write_vendor(realm_id, payload)
        return 200, {"Vendor": vendor}, [change]

    def write_purchase_order(request: Request, realm_id: str, payload: Any) -> Result:
        if request.query_params.get("operation") == "delete":
            deleted, change = backend().delete_purchase_order(realm_id, payload)
            return 200, {"PurchaseOrder": deleted}, [change]
        order, change = backend().write_purchase_order(realm_id, payload)
        return 200, {"PurchaseOrder": order}, [change]

    def write_bill(request: Request, realm_id: str, payload: Any) -> Result:
        if request.query_params.get("operation") == "delete":
            deleted, change = backend().delete_document(realm_id, "Bill", payload)
            return 200, {"Bill": deleted}, [change]
        bill, change = backend().write_document(realm_id, "Bill", payload)
        return 200, {"Bill": bill}, [change]

    def batch(request: Request, realm_id: str, payload: Any) -> Result:
        """``POST /batch``: up to ``batch_max_items`` independent operations, each answered apart."""
        items = payload.get("BatchItemRequest")
        if not isinstance(items, list) or not items:
            raise invalid("BatchItemRequest must be a non-empty list")
        limit = int(sandbox.switches["batch_max_items"])
        if len(items) > limit:
            raise invalid(f"a batch request takes at most {limit} BatchItemRequest objects, not {len(items)}")
        answers: list[dict[str, Any]] = []
        changes: list[Change] = []
        for item in items:
            answer, change = _batch_item(backend(), realm_id, item)
            answers.append(answer)
            changes += change
        if sandbox.switches.get("batch_answer_order") == "reversed":
            answers.reverse()  # "Execution order of BatchItemRequest objects should not be assumed"
        return 200, {"BatchItemResponse": answers}, changes

    def reader(entity: str) -> Operation:
        def read(request: Request, realm_id: str, payload: Any) -> Result:
            return 200, {entity: backend().get(realm_id, entity, str(request.path_params["id"]))}, []

        return read

    def company_info(request: Request, realm_id: str, payload: Any) -> Result:
        return 200, {"CompanyInfo": backend().company_info(realm_id, str(request.path_params["id"]))}, []

    def cdc(request: Request, realm_id: str, payload: Any) -> Result:
        entities = [e.strip() for e in request.query_params.get("entities", "").split(",") if e.strip()]
        changed = backend().cdc(realm_id, entities, request.query_params.get("changedSince", ""))
        return 200, {"CDCResponse": changed}, []

    async def token(request: Request) -> Response:
        form = await request.form()
        try:
            with sandbox.lock:
                issued = backend().token(request.headers.get("authorization", ""), {k: str(v) for k, v in form.items()})
        except OAuthError as exc:
            error: dict[str, str] = {"error": exc.error}
            if exc.description:
                error["error_description"] = exc.description
            return JSONResponse(error, status_code=exc.status, headers={"intuit_tid": tid()})
        return JSONResponse(issued, headers={"intuit_tid": tid(), "Cache-Control": "no-store"})

    async def connect(request: Request) -> Response:
        """The consent page (appcenter.intuit.com/connect/oauth2): approves at once, like a click."""
        params = request.query_params
        if params.get("response_type") != "code" or "com.intuit.quickbooks.accounting" not in params.get("scope", ""):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        realm_id = params.get("realmId") or next(iter(backend().realms))
        try:
            code = backend().authorize(params.get("client_id", ""), params.get("redirect_uri", ""), realm_id)
        except (OAuthError, AuthFailure) as exc:
            return JSONResponse({"error": getattr(exc, "error", "access_denied")}, status_code=400)
        query = urlencode({"code": code, "state": params.get("state", ""), "realmId": realm_id})
        return RedirectResponse(f"{params['redirect_uri']}?{query}", status_code=302)

    prefix = "/v3/company/{realm}"
    return [
        Route("/oauth2/v1/tokens/bearer", token, methods=["POST"]),
        Route("/connect/oauth2", connect, methods=["GET"]),
        Route(prefix + "/query", company(query), methods=["GET"]),
        Route(prefix + "/query", company(query, body="text"), methods=["POST"]),
        Route(prefix + "/vendor", company(write_vendor, body="json"), methods=["POST"]),
        Route(prefix + "/vendor/{id}", company(reader("Vendor")), methods=["GET"]),
        Route(prefix + "/purchaseorder", company(write_purchase_order, body="json"), methods=["POST"]),
        Route(prefix + "/purchaseorder/{id}", company(reader("PurchaseOrder")), methods=["GET"]),
        Route(prefix + "/bill", company(write_bill, body="json"), methods=["POST"]),
        Route(prefix + "/bill/{id}", company(reader("Bill")), methods=["GET"]),
        Route(prefix + "/account/{id}", company(reader("Account")), methods=["GET"]),
        Route(prefix + "/customer/{id}", company(reader("Customer")), methods=["GET"]),
        Route(prefix + "/employee/{id}", company(reader("Employee")), methods=["GET"]),
        Route(prefix + "/item/{id}", company(reader("Item")), methods=["GET"]),
        Route(prefix + "/companyinfo/{id}", company(company_info), methods=["GET"]),
        Route(prefix + "/cdc", company(cdc), methods=["GET"]),
        Route(prefix + "/batch", company(batch, body="json", records=_batch_size), methods=["POST"]),
    ]


BATCH_ENTITIES = ("Vendor", "PurchaseOrder", "Bill")
MAX_BATCH_ID = 10


def _batch_size(payload: Any) -> int:
    items = payload.get("BatchItemRequest") if isinstance(payload, dict) else None
    return len(items) if isinstance(items, list) else 0


def _batch_item(backend: QuickBooksBackend, realm_id: str, item: Any) -> tuple[dict[str, Any], list[Change]]:
    """One BatchItemRequest: its entity or its own ``Fault``; a refused item leaves the others alone."""
    batch_id = str(item.get("bId") or "") if isinstance(item, dict) else ""
    try:
        if not batch_id or len(batch_id) > MAX_BATCH_ID:
            raise invalid(f"bId is required, at most {MAX_BATCH_ID} characters")
        named = [entity for entity in BATCH_ENTITIES if entity in item]
        operation = item.get("operation")
        if len(named) != 1 or operation not in ("create", "update", "delete"):
            raise invalid("a BatchItemRequest names one entity and an operation create, update or delete")
        (entity,) = named
        body = item[entity]
        if not isinstance(body, dict) or (operation == "create") == (body.get("Id") not in (None, "")):
            raise invalid(f"{operation}: {entity} Id must be {'absent' if operation == 'create' else 'present'}")
        if operation == "delete":
            if entity == "Vendor":
                raise invalid("a Vendor cannot be deleted; make it inactive (Active: false)")
            record, change = backend.delete_document(realm_id, entity, body)
        elif entity == "Vendor":
            record, change = backend.write_vendor(realm_id, body)
        else:
            record, change = backend.write_document(realm_id, entity, body)
    except QBOFault as fault:
        return {"bId": batch_id, "Fault": fault.body("")["Fault"]}, []
    return {"bId": batch_id, entity: record}, [change]


def invalid(detail: str) -> QBOFault:
    return QBOFault(400, "2010", "Request has invalid or unsupported property", detail)


def _parse_body(raw: bytes, kind: str | None) -> Any:
    if kind == "text":
        return raw.decode("utf-8", "replace")
    if kind != "json":
        return None
    try:
        payload = json.loads(raw or b"{}", parse_float=Decimal)
    except ValueError:
        raise invalid("Malformed JSON body") from None
    if not isinstance(payload, dict):
        raise invalid("The request body must be a JSON object")
    return payload


def _check_minor_version(raw: str | None, switches: dict[str, Any]) -> None:
    minimum = int(switches.get("min_minorversion", 75))
    if raw is None:
        if switches.get("minorversion_required", True):
            raise invalid("minorversion is required on every call")
        return
    if not raw.isdigit():
        raise invalid(f"Invalid minorversion {raw}")
    if int(raw) < minimum:
        raise invalid(f"Minor Version {raw} is no longer supported. Minimum supported version is {minimum}")
