"""BambooHR's HTTP surface: both URL prefixes, Basic ``key:x`` and Bearer auth, content negotiation.

Errors follow BambooHR: the status code, an empty body and the detail in the
``X-BambooHR-Error-Message`` header. JSON is served only when ``Accept`` names
``application/json``; otherwise XML (or 406, switch ``non_json_accept``).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from airflow_provider_mlconnector.sandbox.bamboohr.backend import (
    SANDBOX_COMPANY,
    BambooHRBackend,
    BambooHRError,
    Caller,
    OAuthError,
    parse_iso,
)

if TYPE_CHECKING:
    from airflow_provider_mlconnector.sandbox.bamboohr import BambooHRSandbox

Handler = Callable[[Request], Awaitable[Response]]
#: scope key set by BambooHRSandbox.around() when the call is over the throttle switch's quota.
THROTTLED = "mlconnector.bamboohr.throttled"
REPORT_ACCEPTS = {
    "application/json": "json",
    "text/xml": "xml",
    "text/csv": "csv",
    "application/pdf": "pdf",
    "application/vnd.ms-excel": "xls",
}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(b"", status_code=status, headers={"X-BambooHR-Error-Message": message, **(headers or {})})


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


def _xml_value(tag: str, value: Any, attrs: str = "") -> str:
    text = "" if value is None else escape(str(value).lower() if isinstance(value, bool) else str(value))
    return f"<{tag}{attrs}>{text}</{tag}>"


def employee_xml(record: dict[str, Any]) -> str:
    fields = "".join(_xml_value("field", v, f" id={quoteattr(k)}") for k, v in record.items() if k != "id")
    return f"<employee id={quoteattr(str(record['id']))}>{fields}</employee>"


def to_xml(kind: str, payload: Any) -> str:
    """BambooHR's XML forms for the resources the sandbox serves."""
    head = '<?xml version="1.0"?>\n'
    if kind == "employee":
        return head + employee_xml(payload)
    if kind in ("directory", "report"):
        fieldset = "".join(
            _xml_value("field", f["name"], f" id={quoteattr(f['id'])} type={quoteattr(f['type'])}")
            for f in payload["fields"]
        )
        employees = "".join(employee_xml(e) for e in payload["employees"])
        title = _xml_value("title", payload["title"]) if kind == "report" else ""
        root = "report" if kind == "report" else "directory"
        return f"{head}<{root}>{title}<fields>{fieldset}</fields><employees>{employees}</employees></{root}>"
    return head + _generic_xml(kind, payload)


def _generic_xml(tag: str, payload: Any) -> str:
    if isinstance(payload, dict):
        return f"<{tag}>" + "".join(_generic_xml(str(k), v) for k, v in payload.items()) + f"</{tag}>"
    if isinstance(payload, list):
        item = tag[:-1] if tag.endswith("s") else "item"
        return f"<{tag}>" + "".join(_generic_xml(item, v) for v in payload) + f"</{tag}>"
    return _xml_value(tag, payload)


def negotiate(request: Request, kind: str, payload: Any, status: int = 200) -> Response:
    if wants_json(request):
        return JSONResponse(payload, status_code=status)
    return Response(to_xml(kind, payload), status_code=status, media_type="text/xml")


def routes(sandbox: BambooHRSandbox) -> list[BaseRoute]:
    def backend() -> BambooHRBackend:
        return sandbox.backend  # looked up per call: reset() swaps the backend object

    def company_of(request: Request) -> str:
        if "company" in request.path_params:
            return str(request.path_params["company"])
        # /api/v1/... is addressed by subdomain ({company}.bamboohr.com). A loopback sandbox has
        # no subdomain, so it falls back to the sandbox company.
        host = request.headers.get("host", "").split(":")[0]
        if host.endswith(".bamboohr.com") and host.count(".") == 2:
            return host.split(".")[0]
        return SANDBOX_COMPANY

    def authenticate(request: Request) -> Caller:
        domain = company_of(request)
        backend().company(domain)
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, colon, password = base64.b64decode(value).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise BambooHRError(401, "Malformed Basic credentials") from None
            # The key is the user name; the password is ignored, even empty (`key:`, as many clients send).
            # The docs' "any non-empty string" (use "x") is the api_key_password_required switch.
            if not user or not colon or (not password and sandbox.switches["api_key_password_required"]):
                raise BambooHRError(401, "Your API key is missing")
            return backend().authenticate_key(user, domain)
        if scheme.lower() == "bearer" and value:
            return backend().authenticate_bearer(value.strip(), domain)
        raise BambooHRError(401, "Your API key is missing")

    def api(handler: Callable[[Request, Caller], Awaitable[Response]]) -> Handler:
        async def wrapped(request: Request) -> Response:
            if request.scope.get(THROTTLED):
                return sandbox.rate_limited_response()
            try:
                caller = authenticate(request)
                if not wants_json(request) and sandbox.switches.get("non_json_accept", "xml") == "406":
                    return error(406, "Only application/json responses are supported")
                return await handler(request, caller)
            except BambooHRError as exc:
                headers = {"WWW-Authenticate": 'Basic realm="BambooHR"'} if exc.status == 401 else None
                return error(exc.status, exc.message, headers)

        return wrapped

    def flag(request: Request, name: str, default: bool) -> bool:
        raw = request.query_params.get(name)
        return default if raw is None else raw.lower() in ("1", "true", "yes")

    async def directory(request: Request, caller: Caller) -> Response:
        only_current = flag(request, "onlyCurrent", True)
        return negotiate(request, "directory", backend().get_employees_directory(caller, only_current))

    async def changed(request: Request, caller: Caller) -> Response:
        since_raw = request.query_params.get("since")
        if not since_raw:
            raise BambooHRError(400, "The since parameter is required")
        try:
            since = parse_iso(since_raw)
        except ValueError:
            raise BambooHRError(400, "since must be an ISO-8601 timestamp") from None
        change_type = request.query_params.get("type")
        if change_type is not None:
            valid = ("inserted", "updated", "deleted")
            strict = sandbox.switches.get("changed_type_case_sensitive", True)
            candidate = change_type if strict else change_type.lower()
            if candidate not in valid:
                raise BambooHRError(400, "type must be one of inserted, updated, deleted")
            change_type = candidate
        return negotiate(request, "changed", backend().get_changed_employee_ids(caller, since, change_type))

    async def employee(request: Request, caller: Caller) -> Response:
        raw = request.query_params.get("fields")
        fields = [f.strip() for f in raw.split(",") if f.strip()] if raw is not None else None
        record = backend().get_employee(caller, str(request.path_params["id"]), fields)
        return negotiate(request, "employee", record)

    async def update_employee(request: Request, caller: Caller) -> Response:
        values = await _json_body(request)
        emp_id = str(request.path_params["id"])
        changed_fields = backend().update_employee(caller.company, emp_id, values)
        if changed_fields:
            sandbox.fire(caller.company, emp_id, "updated", changed_fields)
        return Response(b"", status_code=200)

    async def add_employee(request: Request, caller: Caller) -> Response:
        values = await _json_body(request)
        emp_id, fields = backend().add_employee(caller.company, values)
        sandbox.fire(caller.company, emp_id, "created", fields)
        location = f"{str(request.url).rstrip('/')}/{emp_id}"
        return Response(b"", status_code=201, headers={"Location": location})

    async def custom_report(request: Request, caller: Caller) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            # Anything but JSON is parsed as XML, so a JSON body sent as form data fails like this.
            raise BambooHRError(400, "Malformed XML")
        fmt = request.query_params.get("format")
        if fmt is None:
            accept = request.headers.get("accept", "").strip().lower()
            if accept not in REPORT_ACCEPTS:
                raise BambooHRError(404, "Unsupported report format")
            fmt = REPORT_ACCEPTS[accept]
        fmt = fmt.lower()
        if fmt not in ("json", "xml", "csv", "pdf", "xls"):
            raise BambooHRError(400, f"Unknown report format {fmt}")
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise BambooHRError(400, "Malformed JSON") from None
        if not isinstance(body, dict):
            raise BambooHRError(400, "The report body must be an object")
        report = backend().request_custom_report(caller, body)
        if fmt == "json":
            return JSONResponse(report)
        if fmt == "xml":
            return Response(to_xml("report", report), media_type="text/xml")
        if fmt == "csv":
            return Response(_csv(report), media_type="text/csv")
        raise BambooHRError(501, f"The sandbox does not render {fmt.upper()} reports")

    async def meta_fields(request: Request, caller: Caller) -> Response:
        return negotiate(request, "fields", backend().list_fields())

    async def webhooks(request: Request, caller: Caller) -> Response:
        if request.method == "POST":
            created = backend().create_webhook(caller.company, await _json_body(request))
            return negotiate(request, "webhook", created, status=201)
        return negotiate(request, "webhooks", {"webhooks": backend().list_webhooks(caller.company)})

    async def webhook(request: Request, caller: Caller) -> Response:
        webhook_id = str(request.path_params["id"])
        if request.method == "DELETE":
            backend().delete_webhook(caller.company, webhook_id)
            return Response(b"", status_code=204)
        if request.method == "PUT":
            updated = backend().update_webhook(caller.company, webhook_id, await _json_body(request))
            return negotiate(request, "webhook", updated)
        return negotiate(request, "webhook", backend().get_webhook(caller.company, webhook_id))

    async def webhook_log(request: Request, caller: Caller) -> Response:
        log = backend().webhook_log(caller.company, str(request.path_params["id"]))
        return negotiate(request, "webhookLogs", {"webhookLogs": log})

    async def monitor_fields(request: Request, caller: Caller) -> Response:
        fields = [{"id": f["id"], "name": f["name"], "alias": f["alias"]} for f in backend().list_fields()]
        return negotiate(request, "fields", {"fields": fields})

    async def token(request: Request) -> Response:
        if request.query_params.get("request") != "token":
            return JSONResponse({"error": "invalid_request", "error_description": "request=token is required"}, 400)
        form = await request.form()
        try:
            issued = backend().token({k: str(v) for k, v in form.items()})
        except OAuthError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status)
        return JSONResponse(issued, headers={"Cache-Control": "no-store"})

    async def authorize(request: Request) -> Response:
        params = request.query_params
        if params.get("response_type") != "code":
            return JSONResponse({"error": "unsupported_response_type"}, status_code=400)
        try:
            code = backend().authorize(params.get("client_id", ""), params.get("redirect_uri", ""), company_of(request))
        except (OAuthError, BambooHRError) as exc:
            return JSONResponse({"error": getattr(exc, "error", "invalid_request"), "error_description": str(exc)}, 400)
        query = urlencode({"code": code, "state": params.get("state", "")})
        return RedirectResponse(f"{params['redirect_uri']}?{query}", status_code=302)

    table: list[tuple[str, Callable[[Request, Caller], Awaitable[Response]], list[str]]] = [
        ("/employees/directory", directory, ["GET"]),
        ("/employees/changed", changed, ["GET"]),
        ("/employees", add_employee, ["POST"]),
        ("/employees/{id}", employee, ["GET"]),
        ("/employees/{id}", update_employee, ["POST"]),
        ("/reports/custom", custom_report, ["POST"]),
        ("/meta/fields", meta_fields, ["GET"]),
        ("/webhooks/monitor_fields", monitor_fields, ["GET"]),
        ("/webhooks", webhooks, ["GET", "POST"]),
        ("/webhooks/{id}/log", webhook_log, ["GET"]),
        ("/webhooks/{id}", webhook, ["GET", "PUT", "DELETE"]),
    ]
    out: list[BaseRoute] = [
        Route("/token.php", token, methods=["POST"]),
        Route("/authorize.php", authorize, methods=["GET"]),
    ]
    for prefix in ("/api/gateway.php/{company}/v1", "/api/v1"):
        out.extend(Route(prefix + path, api(handler), methods=methods) for path, handler, methods in table)
    return out


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise BambooHRError(400, "Malformed JSON") from None
    if not isinstance(body, dict):
        raise BambooHRError(400, "The request body must be an object")
    return body


def _csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    ids = [f["id"] for f in report["fields"]]
    writer.writerow(["id", *[f["name"] for f in report["fields"]]])
    for row in report["employees"]:
        writer.writerow([row["id"], *["" if row.get(i) is None else row.get(i) for i in ids]])
    return buffer.getvalue()
