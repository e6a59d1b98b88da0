"""Webhook inbox: dedupe by (system, event id), pending queue."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_provider_mlconnector.state import StateStore

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def test_duplicate_event_is_ignored(store: StateStore) -> None:
    payload = {"entities": [{"name": "Invoice", "id": "130", "operation": "Create"}]}
    assert store.inbox.add("quickbooks", "realm-1", "evt-1", "Invoice.Create", payload, received_at=T0)
    assert not store.inbox.add("quickbooks", "realm-1", "evt-1", "Invoice.Update", {"other": 1})
    event = store.inbox.get("quickbooks", "evt-1")
    assert event is not None
    assert (event.event_type, event.payload, event.received_at) == ("Invoice.Create", payload, T0)
    assert len(store.inbox.pending()) == 1
    # The same id from another system is another event.
    assert store.inbox.add("bigcommerce", "store-9", "evt-1", "store/order/created", {"data": {"id": 250}})
    assert store.inbox.get("bill", "evt-1") is None


def test_pending_and_mark_processed(store: StateStore) -> None:
    store.inbox.add("quickbooks", "r", "b", "t", {}, received_at=T0 + timedelta(seconds=2))
    store.inbox.add("quickbooks", "r", "a", "t", {"verifierToken": "secret"}, received_at=T0)
    store.inbox.add("freshbooks", "acct", "c", "t", {}, received_at=T0 + timedelta(seconds=1))

    pending = store.inbox.pending()
    assert [e.event_id for e in pending] == ["a", "c", "b"]
    assert pending[0].payload == {"verifierToken": "***"}
    assert [e.event_id for e in store.inbox.pending("quickbooks")] == ["a", "b"]
    assert len(store.inbox.pending(limit=1)) == 1

    assert store.inbox.mark_processed([pending[0].id, pending[1].id], "run-1") == 2
    assert store.inbox.mark_processed([pending[0].id], "run-2") == 0  # keeps its first run
    assert store.inbox.mark_processed([], "run-2") == 0
    assert [e.event_id for e in store.inbox.pending()] == ["b"]
    processed = store.inbox.get("quickbooks", "a")
    assert processed is not None
    assert processed.run_id == "run-1"
    assert processed.processed_at is not None
