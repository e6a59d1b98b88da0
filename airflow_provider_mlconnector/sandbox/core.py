"""The sandbox's shared machinery: one ASGI app serving six vendor emulators plus a control plane.

Shape (after moto): each system lives in ``sandbox/<system>/`` with its in-memory state, its
routes (vendor paths, auth checks, vendor-shaped errors) and its demo data, and subclasses
:class:`SystemSandbox`. This module mounts each under ``/<system>``, wraps it with the request log,
latency and fault injection, and serves the control plane under ``/_sandbox``:

==========================================  =====================================================
``POST /_sandbox/reset[?system=S]``           empty state and default switches (all systems,
                                              or one); a full reset also rewinds the clock
``POST /_sandbox/seed``                       ``{"demo": true | [S, ...]}`` | ``{"fixtures": {S: {...}}}`` |
                                              ``{"generate": {S: {entity: N}}}``
``POST /_sandbox/faults``                     ``{"system", "kind", "count"=1, "method"?, "path"?,
                                              "hold_seconds"?}``; kinds: ``429``, ``500``,
                                              ``timeout``, ``expired_auth``, ``drop_after_commit``,
                                              ``page_drift`` (the list answer repeats a row, as a
                                              row that moved across a page boundary is read twice),
                                              ``corrupt_row`` (the list answer's first row has
                                              ``field`` set to ``value``; ``value`` absent = deleted)
``GET /_sandbox/faults``                      the faults still pending (not yet triggered)
``DELETE /_sandbox/faults``                   forget pending faults
``POST /_sandbox/latency``                    ``{"system", "ms", "per_record_ms"=0}``: ``ms`` added
                                              to every call, ``per_record_ms`` more per record a
                                              bulk or batch call carries (bulk is not free)
``POST /_sandbox/clock/advance``              ``{"seconds"}`` fast-forwards expiries
``GET /_sandbox/requests[?system=S]``         the request log; ``/requests/counts`` per route
``DELETE /_sandbox/requests``                 clear the log
``GET /_sandbox/state/{system}``              the system's state (for assertions)
``GET|POST /_sandbox/switches``               behaviour switches for UNCONFIRMED facts
``GET /_sandbox/webhooks``                    outbound webhook deliveries
``POST /_sandbox/webhooks/{n}/redeliver``     send delivery ``n`` again (duplicate delivery)
==========================================  =====================================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

FAULT_KINDS = ("429", "500", "timeout", "expired_auth", "drop_after_commit", "page_drift", "corrupt_row")


class DropConnection(Exception):
    """Raised after the response start was sent: the server closes the socket mid-response."""


class Clock:
    """Sandbox time: real time plus an offset the control plane can fast-forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=timezone.utc)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Fault:
    system: str
    kind: str
    count: int = 1
    method: str | None = None
    path: str | None = None  # a regex searched in the path below the system prefix
    hold_seconds: float = 30.0
    field: str | None = None  # corrupt_row: which field of the first row
    value: Any = "__delete__"  # corrupt_row: its new value (default: the field is missing)

    def matches(self, system: str, method: str, path: str) -> bool:
        if self.system != system or self.count <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, path) is not None


class FaultBook:
    """Scripted faults: "the next N responses on a route"."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; expected one of {FAULT_KINDS}")
        with self._lock:
            self._faults.append(fault)

    def take(self, system: str, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(system, method, path):
                    fault.count -= 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults if f.count > 0]


@dataclass
class LoggedRequest:
    system: str
    method: str
    path: str
    route: str
    status: int
    at: float
    fault: str | None = None


class RequestLog:
    def __init__(self) -> None:
        self.entries: list[LoggedRequest] = []
        self._lock = threading.Lock()

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def counts(self, system: str | None = None) -> dict[str, int]:
        with self._lock:
            return dict(Counter(f"{e.system} {e.method} {e.route}" for e in self.entries if system in (None, e.system)))


@dataclass
class Delivery:
    n: int
    system: str
    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "system": self.system,
            "url": self.url,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "status": self.status,
            "error": self.error,
        }


class WebhookSender:
    """Delivers outbound webhooks from a background thread, in order, and remembers each one."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._queue: queue.Queue[Delivery] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def send(self, system: str, url: str, body: bytes, headers: dict[str, str]) -> Delivery:
        with self._lock:
            delivery = Delivery(len(self.deliveries) + 1, system, url, body, headers)
            self.deliveries.append(delivery)
        self._queue.put(delivery)
        return delivery

    def redeliver(self, n: int) -> Delivery:
        original = self.deliveries[n - 1]
        return self.send(original.system, original.url, original.body, dict(original.headers))

    def wait_idle(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return
            time.sleep(0.02)

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                response = requests.post(delivery.url, data=delivery.body, headers=delivery.headers, timeout=10)
                delivery.status = response.status_code
            except requests.RequestException as exc:
                delivery.error = type(exc).__name__
            finally:
                self._queue.task_done()


@dataclass
class SandboxContext:
    """What every system emulator shares: the clock, faults, request log, webhooks, switches."""

    clock: Clock = field(default_factory=Clock)
    faults: FaultBook = field(default_factory=FaultBook)
    log: RequestLog = field(default_factory=RequestLog)
    webhooks: WebhookSender = field(default_factory=WebhookSender)
    latency_ms: dict[str, float] = field(default_factory=dict)
    per_record_ms: dict[str, float] = field(default_factory=dict)


class SystemSandbox:
    """Base class of one vendor emulator (one folder per system).

    Subclasses keep their state in plain attributes, reset it in :meth:`reset`, expose vendor
    routes from :meth:`routes`, and answer with vendor-shaped errors. ``switches`` holds the
    behaviours a dossier marks UNCONFIRMED (name -> value), changeable at runtime.
    """

    name: ClassVar[str]
    default_switches: ClassVar[dict[str, Any]] = {}

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.switches: dict[str, Any] = dict(self.default_switches)
        self.lock = threading.RLock()
        self.reset()

    # --- to implement -------------------------------------------------------------------
    def reset(self) -> None:
        raise NotImplementedError

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def seed(self, fixture: dict[str, Any]) -> None:
        """Load a JSON fixture (same shape as :meth:`demo_fixture`)."""
        raise NotImplementedError

    def demo_fixture(self) -> dict[str, Any]:
        """The demo story's data for this system."""
        return {}

    def generate(self, counts: dict[str, int]) -> None:
        """Create N synthetic records per entity (benchmarks)."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        """The current state, JSON-safe, for assertions."""
        raise NotImplementedError

    def connection(self, base_url: str) -> dict[str, Any]:
        """The Airflow connection (JSON form) that points a hook at this emulator."""
        raise NotImplementedError

    def expire_credentials(self) -> None:
        """Expire every live access token / session now (the ``expired_auth`` fault)."""
        raise NotImplementedError

    def rate_limited_response(self) -> Response:
        """The vendor's own throttling answer (the ``429`` fault)."""
        return JSONResponse({"message": "Too Many Requests"}, status_code=429, headers={"Retry-After": "1"})

    def server_error_response(self) -> Response:
        """The vendor's own server error (the ``500`` fault)."""
        return JSONResponse({"message": "Internal Server Error"}, status_code=500)

    async def around(self, scope: Scope, call: Callable[[], Awaitable[None]]) -> None:
        """Wraps latency + handling of one request (BILL counts concurrent requests here)."""
        await call()

    # --- helpers for subclasses -----------------------------------------------------------
    def now(self) -> float:
        return self.ctx.clock.now()

    async def charge_records(self, count: int) -> None:
        """A bulk or batch call's extra latency: ``per_record_ms`` for each record it carries."""
        per_record = self.ctx.per_record_ms.get(self.name, 0.0)
        if per_record and count:
            await asyncio.sleep(per_record * count / 1000)

    def send_webhook(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        self.ctx.webhooks.send(self.name, url, body, headers)


class SystemMiddleware:
    """Request log, latency and fault injection in front of one system's routes."""

    def __init__(self, app: ASGIApp, system: SystemSandbox) -> None:
        self.app = app
        self.system = system

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = self.system.ctx
        method = scope["method"]
        path = scope["path"][len(scope.get("root_path", "")) :] or scope["path"]
        status = {"code": 0}

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        fault = ctx.faults.take(self.system.name, method, path)
        try:
            if fault is not None and fault.kind != "drop_after_commit":
                await self._inject(fault, scope, receive, logging_send)
            elif fault is not None:
                await self._commit_then_drop(scope, receive, logging_send)
            else:
                await self.system.around(scope, lambda: self._handle(scope, receive, logging_send))
        finally:
            ctx.log.add(
                LoggedRequest(
                    system=self.system.name,
                    method=method,
                    path=path,
                    route=self._route_template(scope, path),
                    status=status["code"],
                    at=time.time(),
                    fault=fault.kind if fault else None,
                )
            )

    def _route_template(self, scope: Scope, path: str) -> str:
        """The matched route's template (``/stores/{store_hash}/v2/orders``), also for calls a fault
        answered before the router ran."""
        from starlette.routing import Match

        for route in getattr(self.app, "routes", ()):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return str(getattr(route, "path", path))
        return path

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        latency = self.system.ctx.latency_ms.get(self.system.name, 0.0)
        if latency:
            await asyncio.sleep(latency / 1000)
        await self.app(scope, receive, send)

    async def _inject(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        if fault.kind == "expired_auth":
            self.system.expire_credentials()
            await self.system.around(scope, lambda: self._handle(scope, receive, send))
            return
        if fault.kind in ("page_drift", "corrupt_row"):
            await self._rewrite_rows(fault, scope, receive, send)
            return
        if fault.kind == "timeout":
            # Hold the request past any sane client timeout, then hang up without answering.
            await asyncio.sleep(fault.hold_seconds)
            raise DropConnection("timeout fault")
        response = self.system.rate_limited_response() if fault.kind == "429" else self.system.server_error_response()
        await response(scope, receive, send)

    async def _rewrite_rows(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer normally, but with the body's first list of records changed as the fault says."""
        captured: list[Message] = []

        async def keep(message: Message) -> None:
            captured.append(message)

        await self.system.around(scope, lambda: self._handle(scope, receive, keep))
        start = next(m for m in captured if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        try:
            payload = json.loads(body)
            rows = _first_record_list(payload)
        except ValueError:
            rows = None
        if rows and fault.kind == "page_drift":
            rows.append(dict(rows[0]))
        elif rows and fault.field:
            if fault.value == "__delete__":
                rows[0].pop(fault.field, None)
            else:
                rows[0][fault.field] = fault.value
        if rows:
            body = json.dumps(payload).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _commit_then_drop(self, scope: Scope, receive: Receive, send: Send) -> None:
        captured: list[Message] = []

        async def swallow(message: Message) -> None:
            captured.append(message)

        await self.system.around(scope, lambda: self._handle(scope, receive, swallow))
        start = next((m for m in captured if m["type"] == "http.response.start"), None)
        if start is not None:
            await send(start)  # headers promise a body that never comes: the client sees a broken read
        raise DropConnection("drop_after_commit fault")


def _first_record_list(value: Any) -> list[Any] | None:
    """The first non-empty list of objects in a JSON body, depth first (whatever the envelope)."""
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return value
        candidates = value
    elif isinstance(value, dict):
        candidates = list(value.values())
    else:
        return None
    for child in candidates:
        found = _first_record_list(child)
        if found:
            return found
    return None


class Sandbox:
    """All six emulators and the control plane, as one Starlette app."""

    def __init__(self, systems: Iterable[type[SystemSandbox]] | None = None) -> None:
        if systems is None:
            from airflow_provider_mlconnector.sandbox.registry import SYSTEMS

            systems = SYSTEMS
        self.ctx = SandboxContext()
        self.systems: dict[str, SystemSandbox] = {cls.name: cls(self.ctx) for cls in systems}
        self.app = self._build_app()

    def _build_app(self) -> Starlette:
        mounts: list[BaseRoute] = [Mount("/_sandbox", routes=self._control_routes())]
        for system in self.systems.values():
            from starlette.routing import Router

            router = Router(routes=system.routes())
            mounts.append(Mount(f"/{system.name}", app=SystemMiddleware(router, system)))
        return Starlette(routes=mounts)

    # --- control plane --------------------------------------------------------------------
    def reset(self, system: str | None = None) -> None:
        for name, emulator in self.systems.items():
            if system in (None, name):
                with emulator.lock:
                    # In place: emulators may hold a reference to their switches dict.
                    emulator.switches.clear()
                    emulator.switches.update(emulator.default_switches)
                    emulator.reset()
        if system is None:
            self.ctx.clock.offset = 0.0
            self.ctx.faults.clear()
            self.ctx.log.clear()
            self.ctx.latency_ms.clear()
            self.ctx.per_record_ms.clear()

    def seed(self, body: dict[str, Any]) -> None:
        if demo := body.get("demo"):
            for name, emulator in self.systems.items():
                if demo is not True and name not in demo:
                    continue
                with emulator.lock:
                    emulator.seed(emulator.demo_fixture())
        for name, fixture in (body.get("fixtures") or {}).items():
            with self._system(name).lock:
                self._system(name).seed(fixture)
        for name, counts in (body.get("generate") or {}).items():
            with self._system(name).lock:
                self._system(name).generate(counts)

    def _system(self, name: str) -> SystemSandbox:
        if name not in self.systems:
            raise KeyError(f"unknown system {name!r}; known: {sorted(self.systems)}")
        return self.systems[name]

    def connections(self, base_url: str) -> dict[str, dict[str, Any]]:
        base = base_url.rstrip("/")
        return {name: s.connection(f"{base}/{name}") for name, s in self.systems.items()}

    def _control_routes(self) -> list[BaseRoute]:
        def ok(payload: Any = None) -> JSONResponse:
            return JSONResponse(payload if payload is not None else {"ok": True})

        async def reset(request: Request) -> Response:
            self.reset(request.query_params.get("system"))
            return ok()

        async def seed(request: Request) -> Response:
            self.seed(await request.json())
            return ok()

        async def faults(request: Request) -> Response:
            if request.method == "DELETE":
                self.ctx.faults.clear()
                return ok()
            if request.method == "GET":
                return ok(self.ctx.faults.pending())
            body = await request.json()
            self._system(body["system"])
            self.ctx.faults.add(Fault(**body))
            return ok()

        async def latency(request: Request) -> Response:
            body = await request.json()
            name = self._system(body["system"]).name
            self.ctx.latency_ms[name] = float(body["ms"])
            self.ctx.per_record_ms[name] = float(body.get("per_record_ms") or 0.0)
            return ok()

        async def clock(request: Request) -> Response:
            body = await request.json()
            self.ctx.clock.advance(float(body["seconds"]))
            return ok({"now": self.ctx.clock.now()})

        async def requests_log(request: Request) -> Response:
            if request.method == "DELETE":
                self.ctx.log.clear()
                return ok()
            system = request.query_params.get("system")
            return ok([asdict(e) for e in self.ctx.log.entries if system in (None, e.system)])

        async def request_counts(request: Request) -> Response:
            return ok(self.ctx.log.counts(request.query_params.get("system")))

        async def state(request: Request) -> Response:
            emulator = self._system(request.path_params["system"])
            with emulator.lock:
                return ok(json.loads(json.dumps(emulator.snapshot(), default=str)))

        async def switches(request: Request) -> Response:
            if request.method == "POST":
                body = await request.json()
                self._system(body["system"]).switches[body["name"]] = body["value"]
            return ok({name: s.switches for name, s in self.systems.items()})

        async def webhooks(request: Request) -> Response:
            return ok([d.public() for d in self.ctx.webhooks.deliveries])

        async def redeliver(request: Request) -> Response:
            return ok(self.ctx.webhooks.redeliver(int(request.path_params["n"])).public())

        async def connections(request: Request) -> Response:
            base = str(request.base_url).rstrip("/")
            return ok(self.connections(base))

        return [
            Route("/reset", reset, methods=["POST"]),
            Route("/seed", seed, methods=["POST"]),
            Route("/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/latency", latency, methods=["POST"]),
            Route("/clock/advance", clock, methods=["POST"]),
            Route("/requests", requests_log, methods=["GET", "DELETE"]),
            Route("/requests/counts", request_counts, methods=["GET"]),
            Route("/state/{system}", state, methods=["GET"]),
            Route("/switches", switches, methods=["GET", "POST"]),
            Route("/webhooks", webhooks, methods=["GET"]),
            Route("/webhooks/{n:int}/redeliver", redeliver, methods=["POST"]),
            Route("/connections", connections, methods=["GET"]),
        ]


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()
