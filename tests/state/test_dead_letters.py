"""Dead-letter queue: one active letter per record, resolve and replay."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from airflow_provider_mlconnector.state import DeadLetter, LetterStatus, NotFoundInStateError, StateError, StateStore
from airflow_provider_mlconnector.state.schema import dead_letter, utcnow

PAIR = "freshbooks_to_quickbooks"


def fail(
    store: StateStore, source_id: str = "INV-1", reason: str = "GL account 4010 is not mapped", **kw: object
) -> DeadLetter:
    return store.dead_letters.add(
        PAIR,
        "invoice",
        "acct-1",
        source_id,
        reason=reason,
        error_kind="unmapped_account",
        payload={"number": "INV-1", "api_key": "k-123", "lines": [{"account": "4010", "amount": "12.50"}]},
        **kw,  # type: ignore[arg-type]
    )


def test_rerun_failing_the_same_record_updates_one_letter(store: StateStore) -> None:
    first = fail(store, run_id="run-1")
    second = fail(store, reason="GL account 4010 is still not mapped", run_id="run-2")
    assert second.id == first.id
    assert (second.attempts, second.reason, second.last_run_id) == (2, "GL account 4010 is still not mapped", "run-2")
    assert second.payload["api_key"] == "***"
    assert second.payload["lines"] == [{"account": "4010", "amount": "12.50"}]
    assert len(store.dead_letters.list()) == 1
    assert store.dead_letters.open_for(PAIR, "invoice", "acct-1", "INV-1") == second


def test_database_enforces_one_active_letter(store: StateStore) -> None:
    letter = fail(store)
    row = {
        "pair": PAIR,
        "entity": "invoice",
        "source_tenant": "acct-1",
        "source_id": "INV-1",
        "reason": "dup",
        "error_kind": "validation",
        "payload": {},
        "status": "open",
        "attempts": 1,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    with pytest.raises(IntegrityError), store.db.write() as conn:
        conn.execute(sa.insert(dead_letter).values(**row))
    store.dead_letters.resolve(letter.id, "fixed by hand")
    with store.db.write() as conn:  # a closed letter no longer blocks a new one
        conn.execute(sa.insert(dead_letter).values(**row))


def test_resolve_then_fail_again_opens_a_new_letter(store: StateStore) -> None:
    letter = fail(store)
    resolved = store.dead_letters.resolve(letter.id, "mapped 4010 to Sales")
    assert (resolved.status, resolved.resolution_note) == (LetterStatus.RESOLVED, "mapped 4010 to Sales")
    assert store.dead_letters.open_for(PAIR, "invoice", "acct-1", "INV-1") is None
    again = fail(store)
    assert again.id != letter.id
    assert again.attempts == 1
    assert [dl.status for dl in store.dead_letters.list()] == [LetterStatus.RESOLVED, LetterStatus.OPEN]
    assert store.dead_letters.list(status="open") == [again]
    assert store.dead_letters.list(pair="other") == []


def test_replay_flow(store: StateStore) -> None:
    one, two = fail(store, "INV-1"), fail(store, "INV-2")
    assert store.dead_letters.request_replay([one.id, two.id, 999]) == [one.id, two.id]
    assert store.dead_letters.request_replay([one.id]) == []  # already flagged
    assert [dl.id for dl in store.dead_letters.replay_requested(PAIR)] == [one.id, two.id]
    assert store.dead_letters.replay_requested("other_pair") == []

    # The next run replays both: INV-1 succeeds, INV-2 fails again.
    replayed = store.dead_letters.mark_replayed(one.id)
    assert replayed.status is LetterStatus.REPLAYED
    assert store.dead_letters.mark_replayed(one.id) == replayed  # idempotent
    reopened = fail(store, "INV-2", reason="still unmapped")
    assert (reopened.id, reopened.status, reopened.attempts) == (two.id, LetterStatus.OPEN, 2)
    assert store.dead_letters.replay_requested(PAIR) == []


def test_closing_errors(store: StateStore) -> None:
    with pytest.raises(NotFoundInStateError):
        store.dead_letters.resolve(12345, "nope")
    letter = fail(store)
    store.dead_letters.mark_replayed(letter.id)
    with pytest.raises(StateError, match="already replayed"):
        store.dead_letters.resolve(letter.id, "too late")
    assert store.dead_letters.get(letter.id) is not None
    assert store.dead_letters.get(999) is None


def test_open_for_many_finds_the_active_letters_of_many_records(store: StateStore) -> None:
    first, second = fail(store, "INV-1"), fail(store, "INV-2")
    store.dead_letters.resolve(second.id, "booked by hand")
    found = store.dead_letters.open_for_many(PAIR, "invoice", "acct-1", ["INV-1", "INV-2", "INV-3"])
    assert found == {"INV-1": store.dead_letters.open_for(PAIR, "invoice", "acct-1", "INV-1")}
    assert found["INV-1"].id == first.id
