"""FreshBooks routes: auth checks, request parsing, and each service's own envelope and error shape.

Services answer differently [dossier A4]:

* accounting ``/accounting/account/{account_id}/...``: ``{"response": {"result": ...}}`` and
  ``{"response": {"errors": [{"errno", "field", "message", "object", "value"}]}}``;
* businesses ``/accounting/businesses/{business_uuid}/...``: ``{"data": ...}`` and
  ``{"errors": {"message", "status", "details": [{"reason", "metadata"}]}}``;
* events ``/events/account/{account_id}/...``: ``response.result`` and flat ``{"errno", "message"}``;
* auth ``/auth/...``: ``{"response": ...}`` and ``{"error", "error_description"}``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from airflow_provider_mlconnector.sandbox.freshbooks import demo
from airflow_provider_mlconnector.sandbox.freshbooks.backend import (
    RESOURCES,
    Account,
    FreshBooksError,
    OAuthError,
    ParseError,
    RequiredField,
    Resource,
    Unauthenticated,
)

if TYPE_CHECKING:
    from airflow_provider_mlconnector.sandbox.freshbooks import FreshBooksSandbox

Handler = Callable[[Request], Awaitable[Response]]

#: 401 body of the accounting service: a guess (UNCONFIRMED in the dossier, A4).
ACCOUNTING_401 = (
    "The server could not verify that you are authorized to access the URL requested. You either supplied the "
    "wrong credentials (e.g. a bad password), or your browser doesn't understand how to supply the credentials "
    "required."
)
EVENTS_422 = "The request was well-formed but was unable to be followed due to semantic errors."


class FreshBooksApi:
    """The HTTP face of :class:`~.backend.FreshBooksBackend`."""

    def __init__(self, sandbox: FreshBooksSandbox) -> None:
        self.sandbox = sandbox

    @property
    def backend(self) -> Any:
        return self.sandbox.backend

    def routes(self) -> list[BaseRoute]:
        acct = "/accounting/account/{account_id}"
        routes: list[BaseRoute] = [
            Route("/auth/oauth/token", self._wrap("oauth", self.token), methods=["POST"]),
            Route("/auth/oauth/authorize", self._wrap("oauth", self.authorize), methods=["GET", "POST"]),
            Route("/auth/api/v1/users/me", self._wrap("auth", self.users_me), methods=["GET"]),
            Route(
                "/auth/api/v1/businesses/{business_id}/team_members",
                self._wrap("auth", self.team_members),
                methods=["GET"],
            ),
            Route("/projects/business/{business_id}/projects", self._wrap("auth", self.projects), methods=["GET"]),
            Route("/auth/api/v1/users/invitation", self._wrap("auth", self.invitation), methods=["POST"]),
            Route(
                "/accounting/businesses/{business_uuid}/ledger_accounts/accounts",
                self._wrap("businesses", self.ledger_accounts),
                methods=["GET", "POST"],
            ),
            Route(
                "/accounting/businesses/{business_uuid}/ledger_accounts/accounts/{uuid}",
                self._wrap("businesses", self.ledger_account),
                methods=["GET"],
            ),
            Route(
                "/events/account/{account_id}/events/callbacks",
                self._wrap("events", self.callbacks),
                methods=["GET", "POST"],
            ),
            Route(
                "/events/account/{account_id}/events/callbacks/{callback_id}",
                self._wrap("events", self.callback),
                methods=["GET", "PUT", "DELETE"],
            ),
        ]
        for spec in RESOURCES:
            methods = ["GET", "POST"] if spec.writable and spec.creatable else ["GET"]
            routes.append(
                Route(f"{acct}/{spec.path}", self._wrap("accounting", self._collection(spec)), methods=methods)
            )
            member = ["GET"] + (["PUT"] if spec.writable else []) + (["DELETE"] if spec.delete == "http" else [])
            routes.append(
                Route(
                    f"{acct}/{spec.path}/{{resource_id}}", self._wrap("accounting", self._member(spec)), methods=member
                )
            )
        return routes

    # ------------------------------------------------------------------ plumbing

    def _wrap(self, service: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                with self.sandbox.lock:
                    self.backend.check_rate_limit()
                return await handler(request)
            except OAuthError as err:
                return JSONResponse({"error": err.error, "error_description": err.description}, status_code=err.status)
            except FreshBooksError as err:
                if err.status == 429:
                    return self.sandbox.rate_limited_response()
                return self.error(service, err)

        return endpoint

    def error(self, service: str, err: FreshBooksError) -> Response:
        """Render ``err`` in ``service``'s shape."""
        status = int(self.sandbox.switches["validation_status"]) if err.validation else err.status
        if service == "accounting":
            if isinstance(err, Unauthenticated):
                body: dict[str, Any] = {
                    "response": {
                        "errors": [
                            {"errno": 1003, "field": "requester", "message": ACCOUNTING_401, "object": "requester"}
                        ]
                    }
                }
                return JSONResponse(body, status_code=401)
            entry = {"errno": err.errno, "field": err.field, "message": err.message, "object": err.object}
            entry["value"] = err.value
            return JSONResponse({"response": {"errors": [entry]}}, status_code=status)
        if service == "events":
            if isinstance(err, Unauthenticated):
                message = "invalid_token: The request token failed to authenticate or validate."
                return JSONResponse({"errno": 401, "message": message}, status_code=401)
            if err.validation:
                details = err.details or [f"{err.field}: {err.message}"]
                return JSONResponse({"errno": 422, "message": EVENTS_422, "details": details}, status_code=422)
            message = "Requested resource could not be found." if err.status == 404 else err.message
            return JSONResponse({"errno": err.status, "message": message}, status_code=err.status)
        if service == "businesses":
            status = 400 if err.validation else err.status
            reason = f"{err.field}: {err.message}" if err.field else err.message
            detail = {"reason": reason, "metadata": {"message": err.message, "field": err.field}}
            body = {"errors": {"message": f"Request failed with status code {status}", "status": status}}
            body["errors"]["details"] = [detail]
            return JSONResponse(body, status_code=status)
        # auth service
        if isinstance(err, Unauthenticated):
            status = int(self.sandbox.switches["users_me_unauthenticated_status"])
            body = {"error": "unauthenticated", "error_description": err.message}
            return JSONResponse(body, status_code=status)
        slug = {403: "forbidden", 404: "not_found"}.get(err.status, "invalid_request")
        return JSONResponse({"error": slug, "error_description": err.message}, status_code=status)

    def _identity(self, request: Request) -> dict[str, Any]:
        with self.sandbox.lock:
            identity: dict[str, Any] = self.backend.authenticate(request.headers.get("authorization"))
            return identity

    def _account(self, request: Request) -> Account:
        identity = self._identity(request)
        with self.sandbox.lock:
            account: Account = self.backend.account_for(identity, request.path_params["account_id"])
            return account

    @staticmethod
    async def _json(request: Request) -> Any:
        try:
            return json.loads(await request.body() or b"null")
        except ValueError:
            raise ParseError("Could not parse the request body as JSON.", field="body") from None

    @staticmethod
    async def _wrapped(request: Request, key: str) -> Any:
        body = await FreshBooksApi._json(request)
        if not isinstance(body, dict) or key not in body:
            raise RequiredField(f"Field {key} is required.", field=key, obj=key)
        return body[key]

    @staticmethod
    def _result(payload: dict[str, Any]) -> JSONResponse:
        return JSONResponse({"response": {"result": payload}})

    # ------------------------------------------------------------------ OAuth

    async def token(self, request: Request) -> Response:
        # FB-PY posts a form, FB-JS posts JSON, FreshBooks' own curl posts multipart: accept all three.
        if "application/json" in request.headers.get("content-type", ""):
            data = await self._json(request)
            form = data if isinstance(data, dict) else {}
        else:
            form = {key: str(value) for key, value in (await request.form()).items()}
        with self.sandbox.lock:
            return JSONResponse(self.backend.token(form))

    async def authorize(self, request: Request) -> Response:
        """A tiny consent page (GET) whose "Allow" (POST) redirects to ``redirect_uri?code=..&state=..``."""
        params: dict[str, str] = dict(request.query_params)
        if request.method == "POST":
            params.update({key: str(value) for key, value in (await request.form()).items()})
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        try:
            with self.sandbox.lock:
                app = self.backend.app_for_authorize(client_id, redirect_uri, params.get("response_type", ""))
        except OAuthError as err:
            page = f"<h1>Authorization error</h1><p>{html.escape(err.error)}: {html.escape(err.description)}</p>"
            return HTMLResponse(page, status_code=400)
        state = params.get("state")
        if request.method == "GET":
            return HTMLResponse(self._consent_page(app["name"], params))
        query: dict[str, str] = {}
        if params.get("decision", "allow") != "allow":
            query["error"] = "access_denied"
        else:
            identity_id = int(params.get("identity_id") or demo.DEMO_IDENTITY_ID)
            with self.sandbox.lock:
                query["code"] = self.backend.authorize(client_id, redirect_uri, identity_id, params.get("scope"))
        if state:
            query["state"] = state
        return RedirectResponse(f"{redirect_uri}?{urlencode(query)}", status_code=302)

    def _consent_page(self, app_name: str, params: dict[str, str]) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k in ("client_id", "redirect_uri", "response_type", "state", "scope")
        )
        users = "".join(
            f'<option value="{i["id"]}">{html.escape(i["first_name"])} {html.escape(i["last_name"])}'
            f" ({html.escape(i['email'])})</option>"
            for i in demo.IDENTITIES
        )
        return (
            "<!doctype html><title>FreshBooks sandbox: authorize</title>"
            f"<h1>{html.escape(app_name)} wants to access your FreshBooks account</h1>"
            f'<form method="post">{hidden}<label>Signed in as <select name="identity_id">{users}</select></label>'
            '<p><button name="decision" value="allow">Allow</button> '
            '<button name="decision" value="deny">Deny</button></p></form>'
        )

    # ------------------------------------------------------------------ auth service

    async def users_me(self, request: Request) -> Response:
        identity = self._identity(request)
        with self.sandbox.lock:
            return JSONResponse({"response": self.backend.users_me(identity)})

    async def team_members(self, request: Request) -> Response:
        identity = self._identity(request)
        with self.sandbox.lock:
            try:
                business_id = int(request.path_params["business_id"])
            except ValueError:
                business_id = -1
            acct = self.backend.business_for(identity, business_id=business_id)
            rows, meta = self.backend.list_team_members(acct, request.query_params.multi_items())
        return JSONResponse({"response": rows, "meta": meta})

    async def projects(self, request: Request) -> Response:
        identity = self._identity(request)
        with self.sandbox.lock:
            try:
                business_id = int(request.path_params["business_id"])
            except ValueError:
                business_id = -1
            acct = self.backend.business_for(identity, business_id=business_id)
            rows, meta = self.backend.list_projects(acct, request.query_params.multi_items())
        return JSONResponse({"projects": rows, "meta": meta})

    async def invitation(self, request: Request) -> Response:
        identity = self._identity(request)
        body = await self._json(request)
        with self.sandbox.lock:
            business_id = body.get("invitable_id") if isinstance(body, dict) else None
            acct = self.backend.business_for(identity, business_id=business_id if isinstance(business_id, int) else -1)
            return JSONResponse({"invitation": self.backend.invite(acct, body)})

    # ------------------------------------------------------------------ businesses service

    def _business(self, request: Request) -> Account:
        identity = self._identity(request)
        with self.sandbox.lock:
            account: Account = self.backend.business_for(identity, uuid=request.path_params["business_uuid"])
            return account

    async def ledger_accounts(self, request: Request) -> Response:
        acct = self._business(request)
        if request.method == "POST":
            body = await self._json(request)
            with self.sandbox.lock:
                return JSONResponse({"data": self.backend.create_ledger_account(acct, body)})
        with self.sandbox.lock:
            return JSONResponse({"data": self.backend.list_ledger_accounts(acct)})

    async def ledger_account(self, request: Request) -> Response:
        acct = self._business(request)
        with self.sandbox.lock:
            return JSONResponse({"data": self.backend.ledger_account(acct, request.path_params["uuid"])})

    # ------------------------------------------------------------------ events service

    async def callbacks(self, request: Request) -> Response:
        acct = self._account(request)
        if request.method == "POST":
            body = await self._json(request)
            payload = body.get("callback") if isinstance(body, dict) else None
            with self.sandbox.lock:
                return self._result({"callback": self.backend.create_callback(acct, payload)})
        with self.sandbox.lock:
            rows, info = self.backend.list_callbacks(acct, request.query_params.multi_items())
        return self._result({"callbacks": rows, **info})

    async def callback(self, request: Request) -> Response:
        acct = self._account(request)
        ident = request.path_params["callback_id"]
        if request.method == "DELETE":
            with self.sandbox.lock:
                self.backend.delete_callback(acct, ident)
            return Response(status_code=204)
        if request.method == "PUT":
            body = await self._json(request)
            payload = body.get("callback") if isinstance(body, dict) else None
            with self.sandbox.lock:
                return self._result({"callback": self.backend.update_callback(acct, ident, payload)})
        with self.sandbox.lock:
            return self._result({"callback": self.backend.render_callback(self.backend.callback(acct, ident))})

    # ------------------------------------------------------------------ accounting service

    def _collection(self, spec: Resource) -> Handler:
        async def collection(request: Request) -> Response:
            acct = self._account(request)
            if request.method == "POST":
                payload = await self._wrapped(request, spec.singular)
                identity_id = self._identity(request)["id"]
                with self.sandbox.lock:
                    return self._result({spec.singular: self.backend.create_record(acct, spec, payload, identity_id)})
            with self.sandbox.lock:
                rows, info = self.backend.list_records(acct, spec, request.query_params.multi_items())
            return self._result({spec.plural: rows, **info})

        return collection

    def _member(self, spec: Resource) -> Handler:
        async def member(request: Request) -> Response:
            acct = self._account(request)
            ident = request.path_params["resource_id"]
            identity_id = self._identity(request)["id"]
            if request.method == "PUT":
                payload = await self._wrapped(request, spec.singular)
                with self.sandbox.lock:
                    record = self.backend.update_record(acct, spec, ident, payload, identity_id)
            elif request.method == "DELETE":
                with self.sandbox.lock:
                    record = self.backend.delete_record(acct, spec, ident, identity_id)
            else:
                include_vendor = "vendor" in request.query_params.getlist("include[]")
                with self.sandbox.lock:
                    record = self.backend.get_record(acct, spec, ident, include_vendor=include_vendor)
            return self._result({spec.singular: record})

        return member
