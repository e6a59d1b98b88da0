"""BILL v3 HTTP adapter: vendor paths, ``devKey`` + ``sessionId`` checks, list envelopes, v3 errors.

Thin by design (moto's ``responses.py``): parse the request, call the backend under the sandbox
lock, serialise the vendor's JSON. Paths are relative to the system prefix ``/bill``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_provider_mlconnector.sandbox.bill import query
from airflow_provider_mlconnector.sandbox.bill.backend import Organization, Record, Session
from airflow_provider_mlconnector.sandbox.bill.errors import (
    API_NOT_SUPPORTED,
    CONCURRENCY_LIMIT,
    CONCURRENCY_MESSAGE,
    BillError,
    InvalidRequest,
    ValidationFailed,
)
from airflow_provider_mlconnector.sandbox.bill.wire import error_body, parse_json, render_json

if TYPE_CHECKING:
    from airflow_provider_mlconnector.sandbox.bill import BillSandbox

#: set by ``BillSandbox.around`` on a request beyond the concurrency cap.
REJECTED = "bill.concurrency_rejected"
CONNECT = "/connect/v3"
EVENTS = "/connect-events/v3"
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

Handler = Callable[[Request, Session], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def concurrency_error(switches: Mapping[str, Any]) -> BillError:
    return BillError(CONCURRENCY_LIMIT, CONCURRENCY_MESSAGE, status=int(switches["concurrency_limit_status"]))


def build_routes(sb: BillSandbox) -> list[BaseRoute]:
    backend, hub = sb.backend, sb.events

    def respond(payload: Any, status: int = 200) -> Response:
        return Response(render_json(payload), status_code=status, media_type="application/json")

    def fail(error: BillError) -> Response:
        return Response(
            render_json(error_body(error, sb.now())), status_code=error.status, media_type="application/json"
        )

    def created() -> int:
        return int(sb.switches["create_status"])

    async def read_body(request: Request) -> Any:
        raw = await request.body()
        try:
            return parse_json(raw) if raw else None
        except ValueError:
            raise InvalidRequest("Request body is not valid JSON.") from None

    def authed(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            if request.scope.get(REJECTED):
                return fail(concurrency_error(sb.switches))
            try:
                with sb.lock:
                    session = backend.authenticate(request.headers.get("devKey"), request.headers.get("sessionId"))
                return await handler(request, session)
            except BillError as exc:
                return fail(exc)

        return endpoint

    def listing(
        entity: str, records: Callable[[Organization], Iterable[Record]], render: Callable[[Record], Record]
    ) -> Endpoint:
        async def handler(request: Request, session: Session) -> Response:
            params = request.query_params
            with sb.lock:
                conditions = query.parse_filters(params.get("filters"), entity, sb.switches)
                order = query.parse_sort(params.get("sort"), entity, sb.switches)
                size = query.page_size(params.get("max"), int(sb.switches["default_page_size"]))
                insensitive = bool(sb.switches["filter_eq_case_insensitive"])
                rows = [r for r in records(backend.org(session)) if query.matches(r, conditions, insensitive)]
                rows = query.apply_sort(query.apply_sort(rows, [("_created", False)]), order)
                owner = query.fingerprint(entity, session.organization_id, params.get("filters"), params.get("sort"))
                page, next_page, prev_page = query.paginate(rows, size=size, token=params.get("page"), query=owner)
                payload: Record = {"results": [render(r) for r in page]}
                if next_page:
                    payload["nextPage"] = next_page
                if prev_page:
                    payload["prevPage"] = prev_page
            return respond(payload)

        return authed(handler)

    # ------------------------------------------------------------------ login

    async def login(request: Request) -> Response:
        try:
            body = await read_body(request)
            if not isinstance(body, Mapping):
                raise ValidationFailed(["body: must be a JSON object"])
            with sb.lock:
                return respond(backend.login(body))
        except BillError as exc:
            return fail(exc)

    async def session_info(request: Request, session: Session) -> Response:
        return respond(backend.session_info(session))

    async def logout(request: Request, session: Session) -> Response:
        with sb.lock:
            backend.logout(session)
        return respond({})

    # ------------------------------------------------------------------ vendors

    def render_vendor(record: Record) -> Record:
        return backend.render_vendor(record)

    async def create_vendor(request: Request, session: Session) -> Response:
        body = await read_body(request)
        with sb.lock:
            return respond(render_vendor(backend.create_vendor(backend.org(session), body)), created())

    async def bulk_vendors(request: Request, session: Session) -> Response:
        body = await read_body(request)
        await sb.charge_records(len(body) if isinstance(body, list) else 0)
        with sb.lock:
            vendors = backend.bulk_create_vendors(backend.org(session), body)
            return respond([render_vendor(v) for v in vendors], created())

    async def get_vendor(request: Request, session: Session) -> Response:
        with sb.lock:
            return respond(render_vendor(backend.get_vendor(backend.org(session), request.path_params["vendor_id"])))

    async def patch_vendor(request: Request, session: Session) -> Response:
        body = await read_body(request)
        with sb.lock:
            vendor = backend.update_vendor(backend.org(session), request.path_params["vendor_id"], body)
            return respond(render_vendor(vendor))

    def archive_vendor(archived: bool) -> Handler:
        async def handler(request: Request, session: Session) -> Response:
            with sb.lock:
                vendor = backend.set_vendor_archived(backend.org(session), request.path_params["vendor_id"], archived)
                return respond(render_vendor(vendor))

        return handler

    # ------------------------------------------------------------------ bills

    def render_bill(record: Record) -> Record:
        return backend.render_bill(record)

    async def create_bill(request: Request, session: Session) -> Response:
        body = await read_body(request)
        with sb.lock:
            return respond(render_bill(backend.create_bill(backend.org(session), body, session)), created())

    async def bulk_bills(request: Request, session: Session) -> Response:
        body = await read_body(request)
        await sb.charge_records(len(body) if isinstance(body, list) else 0)
        with sb.lock:
            bills = backend.bulk_create_bills(backend.org(session), body, session)
            return respond([render_bill(b) for b in bills], created())

    async def get_bill(request: Request, session: Session) -> Response:
        with sb.lock:
            return respond(render_bill(backend.get_bill(backend.org(session), request.path_params["bill_id"])))

    def write_bill(replace: bool) -> Handler:
        async def handler(request: Request, session: Session) -> Response:
            body = await read_body(request)
            with sb.lock:
                bill = backend.update_bill(backend.org(session), request.path_params["bill_id"], body, replace=replace)
                return respond(render_bill(bill))

        return handler

    def archive_bill(archived: bool) -> Handler:
        async def handler(request: Request, session: Session) -> Response:
            with sb.lock:
                bill = backend.set_bill_archived(backend.org(session), request.path_params["bill_id"], archived)
                return respond(render_bill(bill))

        return handler

    # ------------------------------------------------------------------ chart of accounts

    def render_plain(record: Record) -> Record:
        return {k: v for k, v in record.items() if not k.startswith("_")}

    async def create_account(request: Request, session: Session) -> Response:
        body = await read_body(request)
        if isinstance(body, Mapping) and "id" in body:
            raise ValidationFailed(["id: must not be set on create"])
        with sb.lock:
            return respond(render_plain(backend.create_account(backend.org(session), body)), created())

    async def get_account(request: Request, session: Session) -> Response:
        with sb.lock:
            return respond(render_plain(backend.get_account(backend.org(session), request.path_params["account_id"])))

    async def patch_account(request: Request, session: Session) -> Response:
        body = await read_body(request)
        with sb.lock:
            account = backend.update_account(backend.org(session), request.path_params["account_id"], body)
            return respond(render_plain(account))

    # ------------------------------------------------------------------ payments

    async def create_payment(request: Request, session: Session) -> Response:
        body = await read_body(request)
        with sb.lock:
            return respond(render_plain(backend.create_payment(backend.org(session), body, session)), created())

    async def get_payment(request: Request, session: Session) -> Response:
        with sb.lock:
            return respond(render_plain(backend.get_payment(backend.org(session), request.path_params["payment_id"])))

    # ------------------------------------------------------------------ webhooks API

    async def catalog(request: Request, session: Session) -> Response:
        return respond(hub.catalog())

    async def list_subscriptions(request: Request, session: Session) -> Response:
        with sb.lock:
            return respond(hub.list_subscriptions(session.organization_id))

    async def create_subscription(request: Request, session: Session) -> Response:
        body = await read_body(request)
        key = request.headers.get("X-Idempotent-Key")
        org_id = session.organization_id
        with sb.lock:
            cached = hub.replay(org_id, "create-subscription", key)
            if cached is not None:
                return respond(cached[1], cached[0])
            subscription = hub.create(org_id, body)
            hub.remember(org_id, "create-subscription", str(key), created(), subscription)
            return respond(subscription, created())

    async def get_subscription(request: Request, session: Session) -> Response:
        with sb.lock:
            sub = hub.get(session.organization_id, request.path_params["subscription_id"])
            return respond(hub.render(sub))

    def write_subscription(replace: bool) -> Handler:
        async def handler(request: Request, session: Session) -> Response:
            body = await read_body(request)
            with sb.lock:
                sub = hub.update(session.organization_id, request.path_params["subscription_id"], body, replace=replace)
                return respond(sub)

        return handler

    async def delete_subscription(request: Request, session: Session) -> Response:
        with sb.lock:
            hub.delete(session.organization_id, request.path_params["subscription_id"])
        return Response(status_code=204)

    async def rotate_key(request: Request, session: Session) -> Response:
        key = request.headers.get("X-Idempotent-Key")
        org_id, sub_id = session.organization_id, request.path_params["subscription_id"]
        operation = f"security-key:{sub_id}"
        with sb.lock:
            cached = hub.replay(org_id, operation, key)
            if cached is not None:
                return respond(cached[1], cached[0])
            answer = hub.rotate_key(org_id, sub_id)
            hub.remember(org_id, operation, str(key), created(), answer)
            return respond(answer, created())

    async def test_subscription(request: Request, session: Session) -> Response:
        with sb.lock:
            return respond(hub.send_test(session.organization_id, request.path_params["subscription_id"]))

    async def event_history(request: Request, session: Session) -> Response:
        with sb.lock:
            return respond(hub.events_of(session.organization_id, request.path_params["subscription_id"]))

    async def resend_event(request: Request, session: Session) -> Response:
        with sb.lock:
            event = hub.resend(
                session.organization_id, request.path_params["subscription_id"], request.path_params["event_id"]
            )
            return respond(event)

    # ------------------------------------------------------------------ sandbox-only control routes

    async def simulate_payment(request: Request) -> Response:
        try:
            body = await read_body(request)
            if not isinstance(body, Mapping):
                raise ValidationFailed(["body: must be a JSON object"])
            amount = body.get("amount")
            if isinstance(amount, str):
                try:
                    amount = Decimal(amount)
                except InvalidOperation:
                    raise ValidationFailed(["amount: must be a number"]) from None
            with sb.lock:
                org = backend.find_org_of_bill(str(body.get("billId")))
                payment = backend.make_payment(
                    org,
                    bill_id=body.get("billId"),
                    amount=amount,
                    status=str(body.get("status", "SCHEDULED")),
                    process_date=body.get("processDate"),
                    description=body.get("description"),
                )
                return respond(render_plain(payment), 201)
        except BillError as exc:
            return fail(exc)

    async def settle_payment(request: Request) -> Response:
        try:
            with sb.lock:
                payment_id = request.path_params["payment_id"]
                payment = backend.settle_payment(backend.find_org_of_payment(payment_id), payment_id)
                return respond(render_plain(payment))
        except BillError as exc:
            return fail(exc)

    async def not_supported(request: Request) -> Response:
        return fail(BillError(API_NOT_SUPPORTED, "API not supported.", status=404))

    vendors = f"{CONNECT}/vendors"
    bills = f"{CONNECT}/bills"
    accounts = f"{CONNECT}/classifications/chart-of-accounts"
    payments = f"{CONNECT}/payments"
    subscriptions = f"{EVENTS}/subscriptions"
    return [
        Route(f"{CONNECT}/login", login, methods=["POST"]),
        Route(f"{CONNECT}/login/session", authed(session_info), methods=["GET"]),
        Route(f"{CONNECT}/logout", authed(logout), methods=["POST"]),
        Route(
            vendors,
            listing("vendors", lambda o: o.vendors.values(), lambda r: backend.render_vendor(r, row=True)),
            methods=["GET"],
        ),
        Route(vendors, authed(create_vendor), methods=["POST"]),
        Route(f"{vendors}/bulk", authed(bulk_vendors), methods=["POST"]),
        Route(f"{vendors}/{{vendor_id}}", authed(get_vendor), methods=["GET"]),
        Route(f"{vendors}/{{vendor_id}}", authed(patch_vendor), methods=["PATCH"]),
        Route(f"{vendors}/{{vendor_id}}/archive", authed(archive_vendor(True)), methods=["POST"]),
        Route(f"{vendors}/{{vendor_id}}/restore", authed(archive_vendor(False)), methods=["POST"]),
        Route(
            bills,
            listing("bills", lambda o: o.bills.values(), lambda r: backend.render_bill(r, row=True)),
            methods=["GET"],
        ),
        Route(bills, authed(create_bill), methods=["POST"]),
        Route(f"{bills}/bulk", authed(bulk_bills), methods=["POST"]),
        Route(f"{bills}/{{bill_id}}", authed(get_bill), methods=["GET"]),
        Route(f"{bills}/{{bill_id}}", authed(write_bill(replace=False)), methods=["PATCH"]),
        Route(f"{bills}/{{bill_id}}", authed(write_bill(replace=True)), methods=["PUT"]),
        Route(f"{bills}/{{bill_id}}/archive", authed(archive_bill(True)), methods=["POST"]),
        Route(f"{bills}/{{bill_id}}/restore", authed(archive_bill(False)), methods=["POST"]),
        Route(accounts, listing("chart-of-accounts", lambda o: o.accounts.values(), render_plain), methods=["GET"]),
        Route(accounts, authed(create_account), methods=["POST"]),
        Route(f"{accounts}/{{account_id}}", authed(get_account), methods=["GET"]),
        Route(f"{accounts}/{{account_id}}", authed(patch_account), methods=["PATCH"]),
        Route(payments, listing("payments", lambda o: o.payments.values(), render_plain), methods=["GET"]),
        Route(payments, authed(create_payment), methods=["POST"]),
        Route(f"{payments}/{{payment_id}}", authed(get_payment), methods=["GET"]),
        Route(f"{EVENTS}/events/catalog", authed(catalog), methods=["GET"]),
        Route(subscriptions, authed(list_subscriptions), methods=["GET"]),
        Route(subscriptions, authed(create_subscription), methods=["POST"]),
        Route(f"{subscriptions}/{{subscription_id}}", authed(get_subscription), methods=["GET"]),
        Route(f"{subscriptions}/{{subscription_id}}", authed(write_subscription(replace=False)), methods=["PATCH"]),
        Route(f"{subscriptions}/{{subscription_id}}", authed(write_subscription(replace=True)), methods=["PUT"]),
        Route(f"{subscriptions}/{{subscription_id}}", authed(delete_subscription), methods=["DELETE"]),
        Route(f"{subscriptions}/{{subscription_id}}/security-key", authed(rotate_key), methods=["POST"]),
        Route(f"{subscriptions}/{{subscription_id}}/test", authed(test_subscription), methods=["POST"]),
        Route(f"{EVENTS}/events/subscription/{{subscription_id}}", authed(event_history), methods=["GET"]),
        Route(
            f"{EVENTS}/events/subscription/{{subscription_id}}/event/{{event_id}}",
            authed(resend_event),
            methods=["POST"],
        ),
        Route("/_sandbox/payments", simulate_payment, methods=["POST"]),
        Route("/_sandbox/payments/{payment_id}/settle", settle_payment, methods=["POST"]),
        Route("/{path:path}", not_supported, methods=ALL_METHODS),
    ]
