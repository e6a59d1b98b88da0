"""The dispatcher: coalescing, routing, and what it does when Airflow says no."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from airflow_provider_mlconnector.exceptions import RetryableApiError
from airflow_provider_mlconnector.webhooks.dispatcher import Dispatcher
from airflow_provider_mlconnector.webhooks.routing import dags_for
from tests.webhooks.conftest import FakeAirflow

T0 = datetime(2026, 3, 2, 9, 0, 5, tzinfo=timezone.utc)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def airflow() -> FakeAirflow:
    return FakeAirflow({"freshbooks_to_bill", "bill_to_quickbooks", "bigcommerce_to_freshbooks"})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dispatcher(store, airflow, clock) -> Dispatcher:
    return Dispatcher(store.inbox, airflow, interval=30, clock=clock)


def add(store, system: str, event_id: str, event_type: str) -> None:
    assert store.inbox.add(system, "tenant", event_id, event_type, {"id": event_id})


def test_routing_table():
    assert dags_for("bill", "vendor.created") == ("freshbooks_to_bill", "bill_to_quickbooks")
    assert dags_for("bill", "bill.updated") == ("freshbooks_to_bill", "bill_to_quickbooks")
    assert dags_for("bill", "payment.updated") == ("freshbooks_to_bill",)
    assert dags_for("bill", "invoice.created") == ()
    assert dags_for("freshbooks", "bill.create") == ("freshbooks_to_bill",)
    assert dags_for("freshbooks", "bill_vendor.update") == ("freshbooks_to_bill",)
    assert dags_for("freshbooks", "bill_payment.create") == ("freshbooks_to_bill",)
    assert dags_for("freshbooks", "invoice.create") == ()
    assert dags_for("bigcommerce", "store/order/statusUpdated") == ("bigcommerce_to_freshbooks",)
    assert dags_for("bigcommerce", "store/product/updated") == ()
    assert dags_for("bamboohr", "employee.updated") == ("bamboohr_to_freshbooks",)
    assert dags_for("quickbooks", "Vendor.Create") == ("bill_to_quickbooks",)
    assert dags_for("quickbooks", "qbo.purchaseorder.updated.v1") == ("bill_to_quickbooks",)
    assert dags_for("quickbooks", "qbo.billpayment.created.v1") == ()
    assert dags_for("quickbooks", "Customer.Create") == ()


def test_run_id_is_the_interval_start(dispatcher):
    assert dispatcher.run_id_for(T0) == "webhook__2026-03-02T09:00:00+00:00"
    assert dispatcher.run_id_for(T0 + timedelta(seconds=25)) == "webhook__2026-03-02T09:00:30+00:00"


def test_a_burst_of_100_events_makes_a_handful_of_runs(store, dispatcher, airflow, clock):
    """100 BigCommerce order events over 100 s while the DAG takes a few ticks per run."""
    for n in range(100):
        add(store, "bigcommerce", f"e{n}", "store/order/updated")
        clock.tick(1)
        if n % 2 == 0:  # a tick every 2 s, as the background thread does
            dispatcher.tick()
        if n % 10 == 0:
            airflow.advance()  # the scheduler moves runs along every 10 s
    for _ in range(10):  # drain
        clock.tick(30)
        airflow.advance()
        dispatcher.tick()
    runs = [t for t in airflow.triggers if t[0] == "bigcommerce_to_freshbooks"]
    assert 1 < len(runs) <= 5
    assert store.inbox.pending() == []
    processed = [store.inbox.get("bigcommerce", f"e{n}") for n in range(100)]
    assert all(e is not None and e.run_id and e.run_id.startswith("bigcommerce_to_freshbooks/") for e in processed)
    run_ids = {e.run_id.split("/", 1)[1] for e in processed if e and e.run_id}
    assert run_ids <= {run_id for _, run_id, _ in runs}


def test_queued_run_absorbs_new_events(store, dispatcher, airflow):
    add(store, "bigcommerce", "a", "store/order/created")
    report = dispatcher.tick()
    assert len(report.triggered) == 1
    (_, run_id, conf) = airflow.triggers[0]
    assert conf == {"webhook_events": 1}
    add(store, "bigcommerce", "b", "store/order/updated")
    report = dispatcher.tick()
    assert report.triggered == []
    assert report.attached == 1
    assert store.inbox.get("bigcommerce", "b").run_id == f"bigcommerce_to_freshbooks/{run_id}"


def test_running_run_makes_events_wait_then_a_new_run(store, dispatcher, airflow, clock):
    add(store, "bigcommerce", "a", "store/order/created")
    dispatcher.tick()
    airflow.advance()  # running: it may have read BigCommerce already
    add(store, "bigcommerce", "b", "store/order/updated")
    clock.tick(40)
    assert dispatcher.tick().waiting == 1
    assert store.inbox.get("bigcommerce", "b").processed_at is None
    airflow.advance()  # finished
    report = dispatcher.tick()
    assert len(report.triggered) == 1
    assert store.inbox.get("bigcommerce", "b").processed_at is not None


def test_at_most_one_trigger_per_interval(store, dispatcher, airflow, clock):
    add(store, "bigcommerce", "a", "store/order/created")
    dispatcher.tick()
    airflow.advance()
    airflow.advance()  # already done
    add(store, "bigcommerce", "b", "store/order/updated")
    clock.tick(10)
    assert dispatcher.tick().triggered == []  # cooling down
    clock.tick(25)
    assert len(dispatcher.tick().triggered) == 1
    assert len(airflow.triggers) == 2


def test_bill_event_covers_both_dags_before_it_is_done(store, dispatcher, airflow):
    airflow.runs["bill_to_quickbooks"] = {"scheduled__x": "running"}
    add(store, "bill", "v1", "vendor.updated")
    dispatcher.tick()
    event = store.inbox.get("bill", "v1")
    assert event.processed_at is None  # bill_to_quickbooks is busy: wait for it
    assert [t[0] for t in airflow.triggers] == ["freshbooks_to_bill"]
    airflow.runs["bill_to_quickbooks"] = {"scheduled__x": "success"}
    airflow.runs["freshbooks_to_bill"] = {k: "running" for k in airflow.runs["freshbooks_to_bill"]}
    dispatcher.tick()
    event = store.inbox.get("bill", "v1")
    assert [t[0] for t in airflow.triggers] == ["freshbooks_to_bill", "bill_to_quickbooks"]  # no re-trigger
    assert event.run_id.startswith("freshbooks_to_bill/webhook__")
    assert ";bill_to_quickbooks/webhook__" in event.run_id


def test_unrouted_marked_and_unrouted_systems_left_pending(store, dispatcher, airflow):
    add(store, "bill", "i1", "invoice.created")
    add(store, "expensify", "x1", "report.approved")  # a system no route lists: kept for a future consumer
    report = dispatcher.tick()
    assert report.unrouted == 1
    assert store.inbox.get("bill", "i1").run_id == "!unrouted"
    assert store.inbox.get("expensify", "x1").processed_at is None
    assert airflow.triggers == []


def test_missing_dag_marks_events_without_a_run(store, dispatcher, airflow):
    add(store, "bamboohr", "h1", "employee.updated")  # bamboohr_to_freshbooks is not deployed
    dispatcher.tick()
    assert store.inbox.get("bamboohr", "h1").run_id == "bamboohr_to_freshbooks/!no-dag"


def test_conflict_means_another_process_triggered(store, airflow, clock):
    first = Dispatcher(store.inbox, airflow, interval=30, clock=clock)
    second = Dispatcher(store.inbox, airflow, interval=30, clock=clock)
    add(store, "bigcommerce", "a", "store/order/created")
    airflow.runs["bigcommerce_to_freshbooks"] = {first.run_id_for(clock()): "success"}  # made by the other process
    assert second.tick().triggered == []  # 409: not triggered twice in one interval
    assert store.inbox.get("bigcommerce", "a").processed_at is None
    clock.tick(30)
    assert len(second.tick().triggered) == 1


@pytest.mark.parametrize(
    "error", [requests.ConnectionError("down"), RetryableApiError("503", system="airflow", status=503)]
)
def test_airflow_errors_keep_events_pending(store, dispatcher, airflow, clock, error):
    add(store, "bigcommerce", "a", "store/order/created")
    airflow.fail_next = error
    assert dispatcher.tick().triggered == []
    assert store.inbox.get("bigcommerce", "a").processed_at is None
    clock.tick(31)
    assert len(dispatcher.tick().triggered) == 1


def test_background_thread_starts_and_stops(store, airflow):
    dispatcher = Dispatcher(store.inbox, airflow, interval=30, tick=0.05)
    add(store, "bigcommerce", "a", "store/order/created")
    dispatcher.start()
    try:
        for _ in range(100):
            if airflow.triggers:
                break
            import time

            time.sleep(0.02)
    finally:
        dispatcher.stop()
    assert len(airflow.triggers) == 1
