"""The ID map and its write-intent protocol."""

from __future__ import annotations

import pytest

from airflow_provider_mlconnector.state import (
    Claim,
    ClaimOutcome,
    IdMapConflictError,
    Intent,
    MappingStatus,
    StateError,
    StateStore,
    content_fingerprint,
)
from airflow_provider_mlconnector.state.errors import ClaimLostError

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


# ---------------------------------------------------------------------------------- batches (bulk creates)


def test_claim_many_claims_fresh_records_together_and_answers_every_other_one_as_claim_would(store: StateStore) -> None:
    claim(store, "synced", "run-0", nk="K-synced")
    store.id_map.complete(PAIR, ENTITY, SRC, "synced", "QB-1", "fp")
    claim(store, "busy", "run-other", nk="K-busy")
    intents = [
        Intent("new-1", "run-1/a", "K-new-1", "fp1"),
        Intent("synced", "run-1/b", "K-synced", "fp"),
        Intent("busy", "run-1/c", "K-busy", "fp"),
        Intent("new-2", "run-1/d", "K-new-2", "fp2"),
    ]
    claims = store.id_map.claim_many(PAIR, ENTITY, SRC, TGT, intents)
    assert [c.outcome for c in claims] == ["claimed", "synced", "busy", "claimed"]
    assert claims[0].mapping == store.id_map.get(PAIR, ENTITY, SRC, "new-1")
    assert (claims[3].mapping.claimed_by, claims[3].mapping.natural_key) == ("run-1/d", "K-new-2")


def test_claim_many_falls_back_to_one_by_one_when_a_key_is_taken(store: StateStore) -> None:
    claim(store, "owner", "run-0", nk="K-taken")
    store.id_map.complete(PAIR, ENTITY, SRC, "owner", "QB-1", "fp")
    claims = store.id_map.claim_many(
        PAIR, ENTITY, SRC, TGT, [Intent("a", "run-1/a", "K-a"), Intent("b", "run-1/b", "K-taken")]
    )
    assert [c.outcome for c in claims] == ["claimed", "conflict"]
    assert claims[1].mapping.source_id == "owner"
    assert store.id_map.get(PAIR, ENTITY, SRC, "b") is None


def test_the_same_record_twice_in_one_claim_many_is_claimed_once(store: StateStore) -> None:
    claims = store.id_map.claim_many(
        PAIR, ENTITY, SRC, TGT, [Intent("a", "run-1/x", "K-a"), Intent("a", "run-1/y", "K-a")]
    )
    assert [c.outcome for c in claims] == ["claimed", "busy"]


def test_renew_many_answers_which_claims_are_still_ours(store: StateStore) -> None:
    claim(store, "a", "run-1/a", nk="K-a")
    claim(store, "b", "run-1/b", nk="K-b")
    claim(store, "b", "run-2/b", nk="K-b", lease_seconds=0)  # taken over
    ours = store.id_map.renew_many(
        PAIR, ENTITY, SRC, [Intent("a", "run-1/a", "K-a2", "fp-new"), Intent("b", "run-1/b", "K-b", None)]
    )
    assert ours == {"a"}
    renewed = store.id_map.get(PAIR, ENTITY, SRC, "a")
    assert renewed is not None and (renewed.natural_key, renewed.fingerprint) == ("K-a2", "fp-new")


def test_renew_many_names_the_record_whose_new_key_another_record_owns(store: StateStore) -> None:
    claim(store, "a", "run-1/a", nk="K-a")
    claim(store, "b", "run-1/b", nk="K-b")
    with pytest.raises(IdMapConflictError):
        store.id_map.renew_many(PAIR, ENTITY, SRC, [Intent("a", "run-1/a", "K-a"), Intent("b", "run-1/b", "K-a")])
    kept = store.id_map.get(PAIR, ENTITY, SRC, "b")
    assert kept is not None and kept.natural_key == "K-b"  # the batch was rolled back, b kept its key


def test_complete_many_syncs_the_records_still_ours_and_reports_a_lost_claim(store: StateStore) -> None:
    claim(store, "a", "run-1/a", nk="K-a")
    claim(store, "b", "run-1/b", nk="K-b")
    claim(store, "b", "run-2/b", nk="K-b", lease_seconds=0)  # taken over while the bulk call ran
    failures = store.id_map.complete_many(
        PAIR,
        ENTITY,
        SRC,
        [Intent("a", "run-1/a", fingerprint="fp-a", target_id="QB-a"), Intent("b", "run-1/b", target_id="QB-b")],
    )
    assert set(failures) == {"b"} and isinstance(failures["b"], ClaimLostError)
    done = store.id_map.get(PAIR, ENTITY, SRC, "a")
    assert done is not None and (done.status, done.target_id, done.fingerprint) == ("synced", "QB-a", "fp-a")
    lost = store.id_map.get(PAIR, ENTITY, SRC, "b")
    assert lost is not None and (lost.status, lost.claimed_by) == ("pending", "run-2/b")


def test_one_writer_at_a_time_holds_a_synced_record_and_a_dead_holders_lease_runs_out(store: StateStore) -> None:
    claim(store, "1", "run-a")
    store.id_map.complete(PAIR, ENTITY, SRC, "1", "QB-77", "fp1", owner="run-a")
    assert store.id_map.hold(PAIR, ENTITY, SRC, "1", owner="run-b")
    assert not store.id_map.hold(PAIR, ENTITY, SRC, "1", owner="run-c")  # b is changing it
    assert claim(store, "1", "run-c").outcome == "synced"  # still synced for everyone else
    assert store.id_map.hold(PAIR, ENTITY, SRC, "1", owner="run-c", lease_seconds=0)  # b died
    assert not store.id_map.let_go(PAIR, ENTITY, SRC, "1", owner="run-b")  # no longer b's
    assert store.id_map.let_go(PAIR, ENTITY, SRC, "1", owner="run-c")
    store.id_map.hold(PAIR, ENTITY, SRC, "1", owner="run-d")
    done = store.id_map.record(PAIR, ENTITY, SRC, "1", TGT, "QB-77", None, "fp2")  # the update landed
    assert (done.fingerprint, done.claimed_by) == ("fp2", None)
    assert not store.id_map.hold(PAIR, ENTITY, SRC, "2", owner="run-d")  # nothing synced to change


def test_a_synced_row_whose_record_is_gone_is_reopened_by_exactly_one_writer(store: StateStore) -> None:
    claim(store, "k", "run-a")
    store.id_map.complete(PAIR, ENTITY, SRC, "k", "QB-77", None, owner="run-a")
    assert store.id_map.reopen(PAIR, ENTITY, SRC, "k", target_id="QB-77", owner="run-b")
    assert not store.id_map.reopen(PAIR, ENTITY, SRC, "k", target_id="QB-77", owner="run-c")
    reopened = store.id_map.get(PAIR, ENTITY, SRC, "k")
    assert (reopened.status, reopened.target_id, reopened.claimed_by) == (MappingStatus.PENDING, None, "run-b")
    assert claim(store, "k", "run-c").outcome == "busy"
