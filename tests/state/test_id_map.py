"""The ID map and its write-intent protocol."""

from __future__ import annotations

import pytest

from airflow_provider_mlconnector.state import (
    Claim,
    ClaimOutcome,
    IdMapConflictError,
    MappingStatus,
    StateError,
    StateStore,
    content_fingerprint,
)

PAIR, ENTITY = "freshbooks_to_quickbooks", "bill"
SRC, TGT = "fb-acct-1", "qbo-realm-1"


def claim(store: StateStore, source_id: str, owner: str, nk: str | None = "B-1|V-1", **kwargs: float) -> Claim:
    return store.id_map.claim(PAIR, ENTITY, SRC, source_id, TGT, nk, owner, **kwargs)


def test_claim_complete_lifecycle(store: StateStore) -> None:
    first = claim(store, "1", "dag/run-1/upsert")
    assert first.outcome == ClaimOutcome.CLAIMED
    assert first.may_write
    assert first.mapping.status is MappingStatus.PENDING
    assert first.mapping.claimed_by == "dag/run-1/upsert"
    assert store.id_map.get(PAIR, ENTITY, SRC, "1") == first.mapping

    assert claim(store, "1", "dag/run-2/upsert").outcome == "busy"

    done = store.id_map.complete(PAIR, ENTITY, SRC, "1", "QB-77", "fp1")
    assert done.status is MappingStatus.SYNCED
    assert (done.target_id, done.fingerprint, done.claimed_by, done.claimed_at) == ("QB-77", "fp1", None, None)
    assert done.last_synced_at is not None

    again = claim(store, "1", "dag/run-3/upsert")
    assert again.outcome == "synced"
    assert not again.may_write
    assert again.mapping.target_id == "QB-77"
    assert store.id_map.get_by_target(PAIR, ENTITY, TGT, "QB-77") == done


def test_same_owner_recovers_its_own_pending_intent(store: StateStore) -> None:
    first = claim(store, "1", "dag/run-1/upsert")
    retry = claim(store, "1", "dag/run-1/upsert")  # a task retry after a crash
    assert retry.outcome == ClaimOutcome.RECOVERING
    assert retry.may_write
    assert retry.mapping.claimed_at is not None
    assert first.mapping.claimed_at is not None
    assert retry.mapping.claimed_at >= first.mapping.claimed_at  # lease renewed


def test_expired_lease_is_taken_over_by_exactly_one_owner(store: StateStore) -> None:
    claim(store, "1", "run-a")
    taken = claim(store, "1", "run-b", lease_seconds=0)
    assert taken.outcome == "recovering"
    assert taken.mapping.claimed_by == "run-b"
    # run-a's lease was taken: with a normal lease run-a now sees a live foreign claim.
    assert claim(store, "1", "run-a").outcome == "busy"
    # Compare-and-set: a second taker working from the same stale snapshot loses.
    snapshot = store.id_map.get(PAIR, ENTITY, SRC, "1")
    assert snapshot is not None
    assert store.id_map._take_over(snapshot, "run-c") is not None
    assert store.id_map._take_over(snapshot, "run-d") is None
    current = store.id_map.get(PAIR, ENTITY, SRC, "1")
    assert current is not None
    assert current.claimed_by == "run-c"


def test_natural_key_already_owned_by_another_source_record_is_a_conflict(store: StateStore) -> None:
    claim(store, "1", "run-1", nk="B-1|V-1")
    other = claim(store, "2", "run-1", nk="B-1|V-1")
    assert other.outcome == ClaimOutcome.CONFLICT
    assert not other.may_write
    assert other.mapping.source_id == "1"
    assert store.id_map.get(PAIR, ENTITY, SRC, "2") is None
    # Records without a natural key are not constrained by it.
    assert claim(store, "3", "run-1", nk=None).outcome == "claimed"
    assert claim(store, "4", "run-1", nk=None).outcome == "claimed"


def test_release_drops_only_pending_intents(store: StateStore) -> None:
    claim(store, "1", "run-1")
    assert not store.id_map.release(PAIR, ENTITY, SRC, "1", owner="someone-else")
    assert store.id_map.release(PAIR, ENTITY, SRC, "1", owner="run-1")
    assert store.id_map.get(PAIR, ENTITY, SRC, "1") is None
    assert claim(store, "1", "run-2").outcome == "claimed"  # nothing stays stuck

    store.id_map.complete(PAIR, ENTITY, SRC, "1", "QB-1", "fp")
    assert not store.id_map.release(PAIR, ENTITY, SRC, "1")
    assert store.id_map.get(PAIR, ENTITY, SRC, "1") is not None


def test_complete_is_idempotent_but_refuses_a_second_target_id(store: StateStore) -> None:
    claim(store, "1", "run-1")
    store.id_map.complete(PAIR, ENTITY, SRC, "1", "QB-1", "fp")
    assert store.id_map.complete(PAIR, ENTITY, SRC, "1", "QB-1", "fp2").fingerprint == "fp2"
    with pytest.raises(IdMapConflictError) as caught:
        store.id_map.complete(PAIR, ENTITY, SRC, "1", "QB-2", "fp")
    assert caught.value.existing is not None
    assert caught.value.existing.target_id == "QB-1"
    with pytest.raises(StateError, match="no intent"):
        store.id_map.complete(PAIR, ENTITY, SRC, "never-claimed", "QB-3", "fp")


def test_record_upserts_synced_mappings(store: StateStore) -> None:
    matched = store.id_map.record(PAIR, ENTITY, SRC, "1", TGT, "QB-1", "B-1|V-1", "fp1")
    assert matched.status is MappingStatus.SYNCED
    updated = store.id_map.record(PAIR, ENTITY, SRC, "1", TGT, "QB-1", None, "fp2")
    assert (updated.natural_key, updated.fingerprint) == ("B-1|V-1", "fp2")  # None keeps the key
    assert updated.created_at == matched.created_at

    # A pending intent becomes synced when the record is matched instead of created.
    claim(store, "2", "run-1", nk="B-2|V-1")
    assert store.id_map.record(PAIR, ENTITY, SRC, "2", TGT, "QB-2", "B-2|V-1", "fp").claimed_by is None

    with pytest.raises(IdMapConflictError, match="already"):
        store.id_map.record(PAIR, ENTITY, SRC, "3", TGT, "QB-3", "B-1|V-1", "fp")


def test_keys_are_scoped_by_tenant_and_listed(store: StateStore) -> None:
    store.id_map.record(PAIR, ENTITY, "acct-a", "1", TGT, "QB-1", "k", "fp")
    store.id_map.record(PAIR, ENTITY, "acct-b", "1", "other-realm", "QB-1", "k", "fp")  # same ids, other tenants
    store.id_map.record(PAIR, "vendor", "acct-a", "1", TGT, "QB-9", "k", "fp")

    assert [m.source_tenant for m in store.id_map.list(PAIR, ENTITY)] == ["acct-a", "acct-b"]
    assert [m.target_tenant for m in store.id_map.list(PAIR, ENTITY, "acct-b")] == ["other-realm"]
    mapping = store.id_map.get_by_target(PAIR, ENTITY, "other-realm", "QB-1")
    assert mapping is not None
    assert mapping.source_tenant == "acct-b"
    assert store.id_map.get_by_natural_key(PAIR, ENTITY, TGT, "k") == store.id_map.get(PAIR, ENTITY, "acct-a", "1")


def test_content_fingerprint_is_order_independent() -> None:
    assert content_fingerprint({"a": 1, "b": [1, 2]}) == content_fingerprint({"b": [1, 2], "a": 1})
    assert content_fingerprint({"a": 1}) != content_fingerprint({"a": 2})


def test_get_many_reads_many_mappings_at_once_and_agrees_with_get(store: StateStore) -> None:
    for i in range(3):
        claim(store, str(i), "dag/run-1/upsert", nk=f"B-{i}|V-1")
    store.id_map.complete(PAIR, ENTITY, SRC, "1", "QB-1", "fp1")
    found = store.id_map.get_many(PAIR, ENTITY, SRC, ["0", "1", "1", "missing", *[f"x{i}" for i in range(600)]])
    assert set(found) == {"0", "1"}  # ids beyond one IN list are read too; absent ids are left out
    assert found["1"] == store.id_map.get(PAIR, ENTITY, SRC, "1") and found["1"].target_id == "QB-1"
    assert store.id_map.get_many(PAIR, ENTITY, "another-tenant", ["0"]) == {}
