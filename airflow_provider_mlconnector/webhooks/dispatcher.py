"""Turn inbox events into a few DAG runs, never one run per event.

Every ``tick`` seconds the dispatcher reads the pending events of the routed systems and, per
target DAG:

* a run of the DAG is **queued**: it has not read its sources yet, so it covers the events;
  they are marked processed with that run's id;
* a run is **running**: it may have read its sources before the change; the events wait;
* no active run and the DAG was not triggered in the last ``interval`` seconds: trigger one
  with ``dag_run_id = webhook__<start of the current interval, UTC>``. Receivers in several
  API-server processes compute the same id, so Airflow answers 409 to all but one;
* Airflow does not know the DAG (404): the events are marked ``<dag_id>/!no-dag``.

An event routed to two DAGs is marked processed once both covered it; its ``run_id`` then reads
``freshbooks_to_bill/webhook__...;bill_to_quickbooks/webhook__...``. Failures leave events
pending, so the next tick retries; the scheduled runs remain the backstop.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import requests

from airflow_provider_mlconnector.exceptions import MLConnectorError
from airflow_provider_mlconnector.state.inbox import InboxEvent, WebhookInbox
from airflow_provider_mlconnector.webhooks.routing import ROUTES, Route, dags_for

log = logging.getLogger(__name__)

UNROUTED = "!unrouted"
RUN_ID_PREFIX = "webhook__"


class TriggerResult(enum.Enum):
    TRIGGERED = "triggered"
    EXISTS = "exists"  # 409: this dag_run_id was already created (by another receiver process)
    NO_DAG = "no_dag"  # 404: Airflow does not know the DAG


@dataclass(frozen=True)
class ActiveRun:
    run_id: str
    state: str  # "queued" or "running"


class Trigger(Protocol):
    """How the dispatcher talks to Airflow (REST in production, a fake in tests)."""

    def active_run(self, dag_id: str) -> ActiveRun | None:
        """A queued run if there is one, else a running one, else ``None``."""
        ...

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any]) -> TriggerResult: ...


@dataclass
class TickReport:
    """What one tick did (for logs and tests)."""

    triggered: list[tuple[str, str]] = field(default_factory=list)
    attached: int = 0
    processed: int = 0
    unrouted: int = 0
    waiting: int = 0


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Dispatcher:
    """Coalesces pending inbox events into DAG runs; see the module docstring.

    :param inbox: the state store's webhook inbox.
    :param trigger: the Airflow side.
    :param interval: at most one trigger per DAG per this many seconds.
    :param tick: seconds between inbox reads in the background thread.
    """

    def __init__(
        self,
        inbox: WebhookInbox,
        trigger: Trigger,
        *,
        interval: float = 30.0,
        tick: float = 2.0,
        batch: int = 500,
        routes: tuple[Route, ...] = ROUTES,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.inbox = inbox
        self.trigger = trigger
        self.interval = interval
        self.tick_seconds = tick
        self.batch = batch
        self.routes = routes
        self.clock = clock
        self._next_allowed: dict[str, datetime] = {}
        # inbox id -> {dag_id: "dag_id/run_id"} for events routed to several DAGs, partly covered
        self._covered: dict[int, dict[str, str]] = {}
        self._missing_logged: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ one pass

    def tick(self) -> TickReport:
        """Read pending events once and trigger or attach runs."""
        now = self.clock()
        report = TickReport()
        wanted = self._pending_routes(report)
        for dag_id, ids in self._uncovered_by_dag(wanted).items():
            ref = self._dispatch(dag_id, len(ids), now, report)
            if ref is not None:
                for event_id in ids:
                    self._covered.setdefault(event_id, {})[dag_id] = ref
        self._mark_complete(wanted, report)
        report.waiting = len(wanted) - report.processed
        return report

    def _pending_routes(self, report: TickReport) -> dict[int, tuple[str, ...]]:
        systems = dict.fromkeys(route.system for route in self.routes)
        events: list[InboxEvent] = [e for system in systems for e in self.inbox.pending(system, limit=self.batch)]
        wanted: dict[int, tuple[str, ...]] = {}
        unrouted: list[int] = []
        for event in events:
            dags = dags_for(event.system, event.event_type, self.routes)
            if dags:
                wanted[event.id] = dags
            else:
                unrouted.append(event.id)
        report.unrouted = self.inbox.mark_processed(unrouted, UNROUTED)
        # Forget coverage of events someone else (another receiver process) completed.
        self._covered = {event_id: refs for event_id, refs in self._covered.items() if event_id in wanted}
        return wanted

    def _uncovered_by_dag(self, wanted: dict[int, tuple[str, ...]]) -> dict[str, list[int]]:
        by_dag: dict[str, list[int]] = {}
        for event_id, dags in wanted.items():
            for dag_id in dags:
                if dag_id not in self._covered.get(event_id, {}):
                    by_dag.setdefault(dag_id, []).append(event_id)
        return by_dag

    def _dispatch(self, dag_id: str, count: int, now: datetime, report: TickReport) -> str | None:
        """The run reference that covers ``count`` new events of ``dag_id``, or ``None`` to wait."""
        try:
            active = self.trigger.active_run(dag_id)
            if active is not None:
                if active.state != "queued":
                    return None
                report.attached += count
                return f"{dag_id}/{active.run_id}"
            if now < self._next_allowed.get(dag_id, now):
                return None
            run_id = self.run_id_for(now)
            result = self.trigger.trigger(dag_id, run_id, {"webhook_events": count})
        except (MLConnectorError, requests.RequestException) as exc:
            log.warning("webhooks: could not trigger %s (%s); events stay pending", dag_id, exc)
            self._next_allowed[dag_id] = now + timedelta(seconds=self.interval)
            return None
        return self._after_trigger(dag_id, run_id, result, now, report)

    def _after_trigger(
        self, dag_id: str, run_id: str, result: TriggerResult, now: datetime, report: TickReport
    ) -> str | None:
        if result is TriggerResult.NO_DAG:
            if dag_id not in self._missing_logged:
                log.warning("webhooks: Airflow has no DAG %r; its webhook events are marked done", dag_id)
                self._missing_logged.add(dag_id)
            return f"{dag_id}/!no-dag"
        self._next_allowed[dag_id] = now + timedelta(seconds=self.interval)
        if result is TriggerResult.TRIGGERED:
            log.info("webhooks: triggered %s run %s", dag_id, run_id)
            report.triggered.append((dag_id, run_id))
            return f"{dag_id}/{run_id}"
        # Another process created this interval's run; next tick sees whether it is still queued.
        return None

    def _mark_complete(self, wanted: dict[int, tuple[str, ...]], report: TickReport) -> None:
        done: dict[str, list[int]] = {}
        for event_id, dags in wanted.items():
            refs = self._covered.get(event_id, {})
            if all(dag_id in refs for dag_id in dags):
                done.setdefault(";".join(refs[dag_id] for dag_id in dags), []).append(event_id)
        for ref, ids in done.items():
            report.processed += self.inbox.mark_processed(ids, ref[:255])
            for event_id in ids:
                self._covered.pop(event_id, None)

    def run_id_for(self, now: datetime) -> str:
        """``webhook__<start of the interval containing now>``: equal in every receiver process."""
        seconds = int(now.timestamp() // self.interval * self.interval)
        start = datetime.fromtimestamp(seconds, tz=timezone.utc)
        return RUN_ID_PREFIX + start.isoformat(timespec="seconds")

    # ------------------------------------------------------------------ background thread

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="mlconnector-webhook-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.tick()
            except Exception:  # the loop must outlive a database or API outage
                log.exception("webhooks: dispatcher tick failed; retrying in %.0fs", self.tick_seconds)
            else:
                if report.triggered or report.processed:
                    log.info("webhooks: dispatcher %s", report)
            self._stop.wait(self.tick_seconds)
