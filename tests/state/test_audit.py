"""Audit trail: redacted summaries, history across systems, per-run listing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from airflow_provider_mlconnector.state import AuditAction, AuditEvent, StateStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def event(
    action: AuditAction | str, *, source_id: str = "INV-1", target_id: str | None = None, **kw: object
) -> AuditEvent:
    base: dict[str, object] = {
        "pair": "freshbooks_to_quickbooks",
        "entity": "invoice",
        "action": action,
        "source_system": "freshbooks",
        "source_tenant": "acct-1",
        "source_id": source_id,
        "target_system": "quickbooks",
        "target_tenant": "realm-1",
        "target_id": target_id,
        "dag_id": "fb_to_qbo",
        "run_id": "run-1",
        "task_id": "upsert",
        "try_number": 1,
    }
    return AuditEvent(**{**base, **kw})  # type: ignore[arg-type]


def test_summary_is_redacted_and_json_safe(store: StateStore) -> None:
    summary = {
        "amount": Decimal("1234.10"),
        "headers": {"Authorization": "Bearer abc.def", "X-Request-Id": "r-1"},
        "refresh_token": "rt",
        "note": "sent with Bearer eyJhbGciOi.secret",
        "at": T0,
    }
    store.audit.record(event(AuditAction.CREATED, target_id="77", summary=summary, vendor_request_id="req-9"))
    (row,) = store.audit.history("freshbooks", "INV-1")
    assert row.summary == {
        "amount": "1234.10",
        "headers": {"Authorization": "***", "X-Request-Id": "r-1"},
        "refresh_token": "***",
        "note": "sent with Bearer ***",
        "at": T0.isoformat(),
    }
    assert row.action is AuditAction.CREATED
    assert row.vendor_request_id == "req-9"


def test_history_follows_a_record_across_systems(store: StateStore) -> None:
    store.audit.record(event("failed", summary={"error": "unmapped account"}), occurred_at=T0)
    store.audit.record(event("created", target_id="77"), occurred_at=T0 + timedelta(minutes=1))
    store.audit.record(event("updated", target_id="77"), occurred_at=T0 + timedelta(minutes=2))
    store.audit.record(event("created", source_id="INV-2", target_id="78"), occurred_at=T0)
    # QBO record 77 as a *source* in the reverse pair
    store.audit.record(
        AuditEvent(
            pair="quickbooks_to_freshbooks",
            entity="payment",
            action=AuditAction.UNCHANGED,
            source_system="quickbooks",
            source_tenant="realm-1",
            source_id="77",
            target_system="freshbooks",
        ),
        occurred_at=T0 + timedelta(minutes=3),
    )

    from_source = [r.action.value for r in store.audit.history("freshbooks", "INV-1")]
    assert from_source == ["failed", "created", "updated"]
    from_target = [(r.action.value, r.pair) for r in store.audit.history("quickbooks", "77")]
    assert from_target == [
        ("created", "freshbooks_to_quickbooks"),
        ("updated", "freshbooks_to_quickbooks"),
        ("unchanged", "quickbooks_to_freshbooks"),
    ]
    assert store.audit.history("bill", "77") == []


def test_for_run_and_action_validation(store: StateStore) -> None:
    store.audit.record(event("created", target_id="1"))
    store.audit.record(event("matched_existing", source_id="INV-2", target_id="2", run_id="run-2"))
    assert [r.source_id for r in store.audit.for_run("fb_to_qbo", "run-1")] == ["INV-1"]
    assert [r.action for r in store.audit.for_run("fb_to_qbo", "run-2")] == [AuditAction.MATCHED_EXISTING]
    with pytest.raises(ValueError, match="exploded"):
        store.audit.record(event("exploded"))


def test_record_many_stores_every_event_redacted_in_one_go(store: StateStore) -> None:
    events = [
        event(AuditAction.UNCHANGED, source_id=f"INV-{i}", summary={"token": f"secret-{i}", "n": i}) for i in range(3)
    ]
    store.audit.record_many(events)
    store.audit.record_many([])  # nothing to store is not an error
    rows = store.audit.for_run("fb_to_qbo", "run-1")
    assert [(r.source_id, r.action, r.summary) for r in rows] == [
        (f"INV-{i}", AuditAction.UNCHANGED, {"token": "***", "n": i}) for i in range(3)
    ]
    with pytest.raises(ValueError):
        store.audit.record_many([event("teleported")])
