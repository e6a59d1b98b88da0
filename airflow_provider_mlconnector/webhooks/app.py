"""The webhook receiver: ``POST /webhooks/{system}`` -> verify -> inbox -> 200.

Nothing slow happens while the vendor waits (QuickBooks allows 3 s, BILL 10 s): the handler
verifies the signature with secrets from the connection or the token store, stores the events
(deduplicated by vendor event id) and answers. DAG runs are started later by the
:class:`~.dispatcher.Dispatcher` running in the same process.

Routes get no Airflow authentication when mounted as a plugin: the vendor signature is the
authentication, and a delivery that fails it (unsigned, forged, stale) gets 401 and leaves no
trace: it is answered from reads, without a write or a write lock. The one post that cannot be
signed, FreshBooks' verification message, is rate-limited (429) and writes only the first
verifier of a callback we registered.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timezone
from functools import cached_property

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from airflow_provider_mlconnector.core.throttle import TokenBuckets
from airflow_provider_mlconnector.exceptions import MLConnectorError
from airflow_provider_mlconnector.state import StateStore
from airflow_provider_mlconnector.webhooks.connections import ConnectionExtras
from airflow_provider_mlconnector.webhooks.credentials import WebhookCredentials
from airflow_provider_mlconnector.webhooks.dispatcher import Dispatcher, Trigger
from airflow_provider_mlconnector.webhooks.model import (
    Delivery,
    Event,
    ExtrasSource,
    HandlerContext,
    Receipt,
    Rejected,
    Throttled,
    quoted,
)
from airflow_provider_mlconnector.webhooks.settings import WebhookSettings
from airflow_provider_mlconnector.webhooks.vendors import HANDLERS, WITHOUT_WEBHOOKS, Handler

log = logging.getLogger(__name__)


class _BodyTooLargeError(Exception):
    pass


def _default_store() -> StateStore:
    from airflow_provider_mlconnector.state import get_state_store

    return get_state_store()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Receiver:
    """Verification and storage, synchronous (it runs in a worker thread).

    :param store: the state store, or a zero-argument factory so nothing connects at import.
    :param clock: when a delivery arrived (tests move it).
    """

    def __init__(
        self,
        settings: WebhookSettings,
        store: StateStore | Callable[[], StateStore] = _default_store,
        extras: ExtrasSource | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.settings = settings
        self._store = store
        self.extras: ExtrasSource = extras or ConnectionExtras()
        self.clock = clock
        self.handshakes = TokenBuckets(settings.handshake_burst, settings.handshake_interval)

    @cached_property
    def store(self) -> StateStore:
        return self._store if isinstance(self._store, StateStore) else self._store()

    @cached_property
    def context(self) -> HandlerContext:
        return HandlerContext(
            self.settings, self.extras, lambda: WebhookCredentials(self.store.tokens), self.handshakes
        )

    def accept(self, handler: Handler, delivery: Delivery) -> tuple[Receipt, int, int]:
        """Verify and store; returns the receipt, how many events were new and how many repeats."""
        receipt = handler(delivery, self.context)
        new = sum(self._store_event(delivery, event) for event in receipt.events)
        log.info("webhooks: %s delivery: %d new, %d repeated", delivery.system, new, len(receipt.events) - new)
        return receipt, new, len(receipt.events) - new

    def _store_event(self, delivery: Delivery, event: Event) -> bool:
        """Store once per ``(system, event_id)``, and not after a recent twin; ``False`` for a repeat."""
        inbox = self.store.inbox
        if event.twin is not None:
            twin = inbox.get(delivery.system, event.twin.event_id)
            if twin is not None and twin.received_at > event.twin.after:
                return False
        return inbox.add(
            delivery.system, event.tenant, event.event_id, event.event_type, event.payload, delivery.received_at
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes without buffering them."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def create_app(
    *,
    settings: WebhookSettings | None = None,
    store: StateStore | Callable[[], StateStore] = _default_store,
    extras: ExtrasSource | None = None,
    trigger: Trigger | None = None,
    run_dispatcher: bool | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> FastAPI:
    """The receiver app (cheap: no database or connection is touched until the first request).

    :param trigger: how DAG runs are started; default: Airflow's REST API when configured.
    :param run_dispatcher: start the background dispatcher with the app (default: the
        ``MLCONNECTOR_WEBHOOK_DISPATCHER`` setting, on).
    :param clock: the receiver's time of arrival (tests move it).
    """
    settings = settings or WebhookSettings.from_env()
    receiver = Receiver(settings, store, extras, clock)
    lifespan = _lifespan(receiver, trigger, settings.dispatcher_enabled if run_dispatcher is None else run_dispatcher)
    app = FastAPI(title="ml-connector webhooks", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.receiver = receiver

    @app.post("/webhooks/{system}")
    async def receive(system: str, request: Request) -> JSONResponse:
        return await _receive(receiver, system, request)

    @app.get("/health")
    async def health() -> dict[str, object]:
        return {"status": "ok", "systems": sorted(HANDLERS)}

    return app


async def _receive(receiver: Receiver, system: str, request: Request) -> JSONResponse:
    handler = HANDLERS.get(system)
    if handler is None:
        return _error(
            404, WITHOUT_WEBHOOKS.get(system, f"no webhook endpoint for {system!r}; known: {sorted(HANDLERS)}")
        )
    try:
        body = await read_body(request, receiver.settings.max_body_bytes)
    except _BodyTooLargeError:
        return _error(413, f"body larger than {receiver.settings.max_body_bytes} bytes")
    delivery = Delivery(system, body, request.headers, receiver.clock())
    client = quoted(request.client.host if request.client else "?")
    try:
        receipt, new, repeated = await run_in_threadpool(receiver.accept, handler, delivery)
    except Rejected as exc:
        log.warning("webhooks: rejected %s delivery from %s: %s", system, client, exc.reason)
        return _error(401, "signature verification failed")
    except Throttled as exc:
        log.warning("webhooks: throttled %s delivery from %s: %s", system, client, exc.reason)
        retry_after = str(max(1, math.ceil(exc.retry_after)))
        return JSONResponse({"detail": "too many requests"}, status_code=429, headers={"Retry-After": retry_after})
    except (MLConnectorError, SQLAlchemyError) as exc:
        # Our side is broken (store down, no Fernet key...): 503 makes the vendor retry later.
        log.error("webhooks: could not take a %s delivery: %s", system, exc)
        return _error(503, "temporarily unable to accept webhooks")
    background = BackgroundTask(receipt.after_response) if receipt.after_response else None
    content = {"stored": new, "duplicates": repeated, "ignored": receipt.ignored}
    return JSONResponse(content, status_code=200, background=background)


def _lifespan(
    receiver: Receiver, trigger: Trigger | None, run_dispatcher: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dispatcher = _start_dispatcher(receiver, trigger) if run_dispatcher else None
        app.state.dispatcher = dispatcher
        try:
            yield
        finally:
            if dispatcher is not None:
                await run_in_threadpool(dispatcher.stop)

    return lifespan


def _start_dispatcher(receiver: Receiver, trigger: Trigger | None) -> Dispatcher | None:
    try:
        return _build_dispatcher(receiver, trigger)
    except Exception:  # inside Airflow's API server a bad setting must not stop the server
        log.exception("webhooks: dispatcher not started; events are stored, DAGs run on their schedule only")
        return None


def _build_dispatcher(receiver: Receiver, trigger: Trigger | None) -> Dispatcher | None:
    if trigger is None:
        trigger = _rest_trigger()
    if trigger is None:
        log.warning(
            "webhooks: no Airflow API configured (MLCONNECTOR_AIRFLOW_API_URL or connection "
            "mlconnector_airflow_api): events are stored, DAGs run on their schedule only"
        )
        return None
    settings = receiver.settings
    dispatcher = Dispatcher(
        receiver.store.inbox, trigger, interval=settings.trigger_interval, tick=settings.dispatch_tick
    )
    dispatcher.start()
    return dispatcher


def _rest_trigger() -> Trigger | None:
    from airflow_provider_mlconnector.webhooks.airflow_api import AirflowApiConfig, RestTrigger

    config = AirflowApiConfig.resolve()
    return RestTrigger(config) if config is not None else None
