"""The sync engine's guarantees, with a real state store and an in-memory target system.

The target below behaves like a vendor without idempotency keys: every create makes a new record
(duplicates are possible), it can lose an answer after committing, and it sends its writes
through the same fence check the HTTP core runs right before a write leaves.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from airflow_provider_mlconnector.core.fence import check_fence
from airflow_provider_mlconnector.exceptions import (
    FatalApiError,
    MappingError,
    NotFoundError,
    RateLimitedError,
    RecordError,
    RecordRejectedError,
    WriteOutcomeUnknownError,
)
from airflow_provider_mlconnector.operators.engine import RunInfo, SyncEngine
from airflow_provider_mlconnector.operators.pair import SHARED_PAIR, Entity, Pair, Retire, SharedKey, Skip
from airflow_provider_mlconnector.state import StateStore, schema
from airflow_provider_mlconnector.state.id_map import content_fingerprint
from airflow_provider_mlconnector.state.watermarks import Window

ALL = Window(start=None, end=datetime(2026, 11, 21, tzinfo=timezone.utc), is_backfill=False)
PAIR_NAME = "a_to_b"


class FakeSource:
    conn_type = "a"
    tenant = "src-tenant"

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.lines: list[dict] = []
        self.listed: list[str] | None = None  # ids the listing returns (None: all), e.g. after the watermark moved

    def things(self):
        return [r for r in self.records if self.listed is None or r.get("id") in self.listed]

    def thing(self, source_id):
        return next((dict(r) for r in self.records if r.get("id") == source_id), None)


class FakeTarget:
    conn_type = "b"
    tenant = "tgt-tenant"

    def __init__(self) -> None:
        self.records: dict[str, dict] = {}
        self.creates = 0
        self.updates = 0
        self.lose_next_answer = False
        self.html_next_answer = False
        self.reject: set[str] = set()
        self.locked: set[str] = set()  # paid: no longer editable
        self.before_send = None  # runs inside the call, before the write leaves (a throttle wait)
        self.slow = 0.0

    def create(self, payload):
        if payload["name"] in self.reject:
            raise RecordRejectedError("name: not allowed", system="fake", status=400)
        if self.before_send is not None:
            hook, self.before_send = self.before_send, None
            hook()
        check_fence()  # what core/http.py does right before a write leaves
        if self.slow:
            time.sleep(self.slow)
        if self.html_next_answer:
            self.html_next_answer = False
            raise FatalApiError("expected a JSON body", system="fake", status=200, body="<html>")
        self.creates += 1
        target_id = f"T{self.creates}"
        self.records[target_id] = {"id": target_id, **payload}
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise WriteOutcomeUnknownError("connection dropped", system="fake")
        return self.records[target_id]

    def update(self, target_id, payload):
        if target_id not in self.records:
            raise NotFoundError("no such record", system="fake", status=404)
        if target_id in self.locked:
            raise RecordError("paid in the target; reconcile manually", kind="manual_reconciliation")
        self.updates += 1
        self.records[target_id].update(payload)

    def archive(self, target_id):
        self.records[target_id]["archived"] = True

    def by_name(self, name):
        return next((r for r in self.records.values() if r["name"] == name and not r.get("archived")), None)


UNMAPPED: set[str] = set()


def thing_payload(record, ctx):
    if record.get("archived"):
        return Retire("archived at the source")
    if record.get("draft"):
        return Skip("a draft")
    if record["category"] in UNMAPPED:
        raise MappingError(f"category {record['category']!r} has no GL account", kind="unmapped_account")
    return {"name": record["name"], "amount": str(Decimal(record["amount"]).quantize(Decimal("0.01")))}


def line_payload(line, ctx):
    return {"name": f"line {line['id']}", "parent": ctx.target_id("thing", line["thing"])}


THING = Entity(
    "thing",
    read=lambda source, window: source.things(),
    fetch=lambda source, source_id: source.thing(source_id),
    transform=thing_payload,
    natural_key=lambda record, payload: payload["name"],
    find=lambda target, key: target.by_name(key),
    create=lambda target, payload: target.create(payload),
    update=lambda target, target_id, payload: target.update(target_id, payload),
    retire=lambda target, target_id: target.archive(target_id),
    batch_size=2,
)
LINE = Entity(
    "line",
    after=("thing",),
    read=lambda source, window: [li for li in source.lines if source.listed is None or li["id"] in source.listed],
    fetch=lambda source, source_id: next((li for li in source.lines if li["id"] == source_id), None),
    transform=line_payload,
    natural_key=lambda record, payload: payload["name"],
    find=lambda target, key: target.by_name(key),
    create=lambda target, payload: target.create(payload),
    update=lambda target, target_id, payload: target.update(target_id, payload),
)
PAIR = Pair(PAIR_NAME, source=FakeSource, target=FakeTarget, entities=(THING, LINE))  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path):
    return StateStore(f"sqlite:///{tmp_path}/state.db", fernet_keys=[Fernet.generate_key().decode()])


@pytest.fixture
def source():
    UNMAPPED.clear()
    world = FakeSource()
    world.records = [
        {"id": "1", "name": "Adobe", "amount": "10.00", "category": "software"},
        {"id": "2", "name": "Pixel", "amount": "20.00", "category": "labor"},
        {"id": "3", "name": "Catering", "amount": "30.00", "category": "meals"},
    ]
    return world


@pytest.fixture
def target():
    return FakeTarget()


def engine(store, source, target, *, entity=THING, run_id="r1", try_number=1, dry_run=False):
    run = RunInfo("dag", run_id, f"upsert_{entity.name}s", 0, try_number, dry_run)
    return SyncEngine(PAIR, entity, source, target, store, run)


def run(store, source, target, *, workers=1, replay=(), **kwargs):
    sync = engine(store, source, target, **kwargs)
    counts: dict[str, int] = {}
    for batch in sync.extract(ALL, replay_ids=replay):
        result = sync.upsert(sync.match(batch), workers=workers)
        for k, v in result.counts.items():
            counts[k] = counts.get(k, 0) + v
    return counts


def mapping(store, source_id, entity="thing"):
    return store.id_map.get(PAIR_NAME, entity, "src-tenant", source_id)


def names(target):
    return sorted(r["name"] for r in target.records.values())


# --- the basics ---------------------------------------------------------------------------------


def test_first_run_creates_and_second_run_writes_nothing(store, source, target):
    assert run(store, source, target) == {"created": 3}
    assert run(store, source, target, run_id="r2") == {"unchanged": 3}
    assert target.creates == 3


def test_existing_target_record_is_matched_not_duplicated(store, source, target):
    target.records["T99"] = {"id": "T99", "name": "Adobe", "amount": "10.00"}
    assert run(store, source, target) == {"matched_existing": 1, "created": 2}
    assert mapping(store, "1").target_id == "T99"


def test_changed_record_is_updated_once(store, source, target):
    run(store, source, target)
    source.records[0]["amount"] = "11.00"
    assert run(store, source, target, run_id="r2") == {"updated": 1, "unchanged": 2}
    assert target.records["T1"]["amount"] == "11.00"


def test_lost_answer_is_confirmed_by_lookup_not_recreated(store, source, target):
    target.lose_next_answer = True
    assert run(store, source, target) == {"created": 3}
    assert target.creates == 3 and names(target) == ["Adobe", "Catering", "Pixel"]


def test_dead_run_claim_is_recovered_by_the_next_writer_through_a_lookup(store, source, target):
    # Attempt 1 claimed and the vendor committed, then the worker died before completing.
    payload = {"name": "Adobe", "amount": "10.00"}
    store.id_map.claim(
        PAIR_NAME,
        "thing",
        "src-tenant",
        "1",
        "tgt-tenant",
        "Adobe",
        "dag/r1/upsert/0/try1/x",
        lease_seconds=0,
        fingerprint=content_fingerprint(payload),
    )
    store.id_map.abandon(PAIR_NAME, "thing", "src-tenant", "1", owner="dag/r1/upsert/0/try1/x")
    target.create(payload)
    assert run(store, source, target, try_number=2) == {"created": 3}  # one confirmed by lookup
    assert names(target).count("Adobe") == 1


# --- 1. the same source record twice in one batch, three workers ------------------------------


def test_same_record_listed_twice_in_a_batch_becomes_one_target_record(store, source, target):
    source.records.append(dict(source.records[0]))  # page drift: Adobe on two pages
    counts = run(store, source, target, workers=3)
    assert counts == {"created": 3}
    assert names(target).count("Adobe") == 1


def test_a_live_sibling_worker_sees_busy_and_never_recovers_the_claim(store, source, target):
    target.slow = 0.3  # both workers are inside the same record at once
    sync = engine(store, source, target)
    (decision,) = sync.match([source.records[0]])
    twin = sync.match([source.records[0]])[0]
    result = sync.upsert([decision, twin], workers=3)
    assert dict(result.counts) == {"created": 1, "waiting": 1}
    assert target.creates == 1
    # The parked twin is re-read next run and found synced: nothing is written twice.
    assert run(store, source, target, run_id="r2") == {"unchanged": 1, "created": 2}
    assert store.dead_letters.list(status="replay_requested", pair=PAIR_NAME) == []
    assert names(target).count("Adobe") == 1


# --- 2. a lost answer, then the source changed before the retry ----------------------------


def _crash_after_commit(store, target, source_id, payload, key):
    owner = "dag/r1/upsert/0/try1/dead"
    store.id_map.claim(
        PAIR_NAME, "thing", "src-tenant", source_id, "tgt-tenant", key, owner, fingerprint=content_fingerprint(payload)
    )
    target.create(payload)
    store.id_map.abandon(PAIR_NAME, "thing", "src-tenant", source_id, owner=owner)


def test_recovery_looks_up_the_claimed_key_and_updates_to_the_changed_source(store, source, target):
    _crash_after_commit(store, target, "1", {"name": "Adobe", "amount": "10.00"}, "Adobe")
    source.records[0].update(name="Adobe Systems", amount="12.50")  # edited before the retry
    assert run(store, source, target, try_number=2) == {"updated": 1, "created": 2}
    assert names(target) == ["Adobe Systems", "Catering", "Pixel"]  # no second bill
    assert target.records["T1"]["amount"] == "12.50"
    synced = mapping(store, "1")
    assert (synced.target_id, synced.natural_key) == ("T1", "Adobe Systems")
    assert synced.fingerprint == content_fingerprint({"name": "Adobe Systems", "amount": "12.50"})
    assert run(store, source, target, run_id="r3") == {"unchanged": 3}


def test_recovery_that_finds_a_record_it_may_no_longer_change_dead_letters_it(store, source, target):
    _crash_after_commit(store, target, "1", {"name": "Adobe", "amount": "10.00"}, "Adobe")
    target.locked = {"T1"}  # the target already paid the old amount
    source.records[0]["amount"] = "12.50"
    assert run(store, source, target, try_number=2) == {"quarantined": 1, "created": 2}
    assert names(target).count("Adobe") == 1
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    assert letter.error_kind == "manual_reconciliation"
    # The ID map holds what the target holds (the old content), so later runs keep saying so.
    assert mapping(store, "1").fingerprint == content_fingerprint({"name": "Adobe", "amount": "10.00"})


# --- 3. a lease taken over while the first writer is inside the vendor call ----------------------


def test_a_writer_whose_lease_was_taken_over_during_its_call_never_sends(store, source, target):
    first = engine(store, source, target, run_id="slow")
    (decision,) = first.match([source.records[0]])

    def lease_expires_and_another_run_writes() -> None:
        # A long throttle wait inside the call: the lease runs out and another run takes over.
        with store.db.write() as conn:
            old = datetime.now(timezone.utc) - timedelta(hours=1)
            conn.execute(sa.update(schema.id_map).values(claimed_at=old))
        assert run(store, source, target, run_id="fast") == {"created": 3}

    target.before_send = lease_expires_and_another_run_writes
    result = first.upsert([decision])
    assert dict(result.counts) == {"waiting": 1}
    assert names(target).count("Adobe") == 1


# --- 4. a claim held by a run that died is never counted done ----------------------------------


def test_a_record_busy_elsewhere_is_parked_and_written_after_the_watermark_moved(store, source, target):
    store.id_map.claim(PAIR_NAME, "thing", "src-tenant", "1", "tgt-tenant", "Adobe", "dag/other/upsert/0/try1/z")
    assert run(store, source, target) == {"waiting": 1, "created": 2}
    assert target.by_name("Adobe") is None
    (parked,) = store.dead_letters.list(status="replay_requested", pair=PAIR_NAME)
    assert parked.error_kind == "busy_elsewhere"
    # That run died; its lease runs out. The window moved on: the listing no longer has Adobe.
    store.id_map.abandon(PAIR_NAME, "thing", "src-tenant", "1", owner="dag/other/upsert/0/try1/z")
    source.listed = []
    assert run(store, source, target, run_id="r2") == {"created": 1}
    assert names(target).count("Adobe") == 1
    assert store.dead_letters.get(parked.id).status == "replayed"


# --- 5. a record whose reference is not synced yet waits, then resolves ------------------------


def test_a_record_whose_parent_is_not_synced_yet_is_parked_then_written_when_linked(store, source, target):
    source.lines = [{"id": "L1", "thing": "1"}]
    assert run(store, source, target, entity=LINE) == {"waiting": 1}
    run(store, source, target)  # the parent syncs
    source.listed = ["1", "2", "3"]  # the line is no longer in the window
    assert run(store, source, target, entity=LINE, run_id="r3") == {"created": 1}
    assert target.by_name("line L1")["parent"] == mapping(store, "1").target_id
    assert store.dead_letters.list(status="replay_requested", pair=PAIR_NAME) == []


def test_records_that_reference_the_same_parent_ask_the_id_map_for_it_once_per_task(store, source, target):
    run(store, source, target)  # the parents sync
    source.lines = [{"id": f"L{i}", "thing": str(1 + i % 2)} for i in range(30)]  # 30 lines over 2 parents
    asked = []
    id_map_get = store.id_map.get
    store.id_map.get = lambda pair, entity, tenant, source_id: (
        asked.append((entity, source_id)) or id_map_get(pair, entity, tenant, source_id)
    )
    assert run(store, source, target, entity=LINE) == {"created": 30}
    assert sorted(a for a in asked if a[0] == "thing") == [("thing", "1"), ("thing", "2")]
    assert {r["parent"] for r in target.records.values() if "parent" in r} == {
        mapping(store, "1").target_id,
        mapping(store, "2").target_id,
    }


# --- 6. a rename onto a sibling's key ----------------------------------------------------------


def test_a_rename_onto_a_siblings_key_is_dead_lettered_before_any_write_and_the_stream_goes_on(store, source, target):
    run(store, source, target)
    source.records[1]["name"] = "Adobe"  # Pixel renamed onto Adobe
    source.records[2]["amount"] = "31.00"  # and a valid change in the same run
    assert run(store, source, target, run_id="r2") == {"quarantined": 1, "unchanged": 1, "updated": 1}
    assert target.records["T2"]["name"] == "Pixel"  # never patched
    assert target.records["T3"]["amount"] == "31.00"
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    assert (letter.source_id, letter.error_kind) == ("2", "duplicate_natural_key")
    assert run(store, source, target, run_id="r3") == {"quarantined": 1, "unchanged": 2}


def test_a_rename_onto_a_name_the_target_already_has_is_dead_lettered(store, source, target):
    run(store, source, target)
    target.records["T9"] = {"id": "T9", "name": "Studio", "amount": "1.00"}  # made by hand in the target
    source.records[1]["name"] = "Studio"
    assert run(store, source, target, run_id="r2") == {"quarantined": 1, "unchanged": 2}
    assert target.records["T2"]["name"] == "Pixel" and target.updates == 0


# --- 7. one bad record never fails the batch -----------------------------------------------------


@pytest.mark.parametrize(
    "broken",
    [
        {"id": "9", "name": "No amount", "category": "x"},
        {"id": "9", "name": "Bad amount", "amount": "N/A", "category": "x"},
        {"id": "9", "name": "Null amount", "amount": None, "category": "x"},
        {"name": "No id", "amount": "1.00", "category": "x"},
    ],
)
def test_a_malformed_record_is_dead_lettered_and_the_rest_are_written(store, source, target, broken):
    source.records.insert(1, broken)
    assert run(store, source, target) == {"created": 3, "quarantined": 1}
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    assert letter.error_kind == "malformed" and "malformed source record" in letter.reason


def test_a_200_answer_with_an_html_page_dead_letters_that_record_after_a_lookup(store, source, target):
    target.html_next_answer = True
    assert run(store, source, target) == {"created": 2, "quarantined": 1}
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    assert letter.error_kind == "rejected" and "JSON" in letter.reason
    assert mapping(store, letter.source_id) is None  # the claim was released: a replay can create it


def test_a_404_on_one_update_dead_letters_that_record_only(store, source, target):
    run(store, source, target)
    del target.records["T1"]  # deleted by hand in the target
    source.records[0]["amount"] = "99.00"
    source.records[1]["amount"] = "21.00"
    assert run(store, source, target, run_id="r2") == {"quarantined": 1, "updated": 1, "unchanged": 1}
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    assert letter.error_kind == "missing_in_target"


# --- 8. quiet runs -------------------------------------------------------------------------------


def test_an_empty_source_is_a_quiet_successful_run(store, source, target):
    source.records = []
    sync = engine(store, source, target)
    assert sync.extract(ALL) == []


# --- 11. dry runs ------------------------------------------------------------------------------


def test_dry_run_writes_nothing_and_flags_no_dead_letter_for_replay(store, source, target):
    UNMAPPED.add("meals")
    run(store, source, target)
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    UNMAPPED.clear()
    counts = run(store, source, target, run_id="r2", dry_run=True, replay=[letter.id])
    assert counts == {"would_unchanged": 2, "would_create": 1}
    assert store.dead_letters.get(letter.id).status == "open"
    assert target.creates == 2
    assert [row.action for row in store.audit.history("a", "3")] == ["quarantined"]


# --- dead letters, retire, skip ------------------------------------------------------------------


def test_unmappable_record_is_dead_lettered_then_replayed_once(store, source, target):
    UNMAPPED.add("meals")
    assert run(store, source, target) == {"created": 2, "quarantined": 1}
    assert run(store, source, target, run_id="r2") == {"unchanged": 2, "quarantined": 1}
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    assert letter.source_id == "3" and letter.attempts == 2 and "no GL account" in letter.reason
    UNMAPPED.clear()  # the accountant adds the mapping
    assert run(store, source, target, run_id="r3") == {"unchanged": 2, "created": 1}
    assert run(store, source, target, run_id="r4") == {"unchanged": 3}
    assert store.dead_letters.get(letter.id).status == "replayed"
    actions = [row.action for row in store.audit.history("a", "3")]
    assert actions == ["quarantined", "quarantined", "created", "replayed", "unchanged"]


def test_vendor_rejection_releases_the_claim_and_is_not_resent_until_replayed(store, source, target):
    target.reject = {"Pixel"}
    assert run(store, source, target) == {"created": 2, "quarantined": 1}
    assert mapping(store, "2") is None
    target.reject = set()
    attempts = target.creates
    assert run(store, source, target, run_id="r2") == {"unchanged": 2, "quarantined": 1}
    assert target.creates == attempts
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    assert run(store, source, target, run_id="r3", replay=[letter.id]) == {"unchanged": 2, "created": 1}
    assert store.dead_letters.get(letter.id).status == "replayed"


def test_a_synced_record_retired_at_the_source_is_retired_once_and_a_never_synced_one_skipped(store, source, target):
    run(store, source, target)
    source.records[0]["archived"] = True
    source.records.append({"id": "4", "name": "Old", "amount": "1.00", "category": "x", "archived": True})
    source.records.append({"id": "5", "name": "Draft", "amount": "1.00", "category": "x", "draft": True})
    assert run(store, source, target, run_id="r2") == {"retired": 1, "skipped": 2, "unchanged": 2}
    assert target.records["T1"]["archived"] is True and target.by_name("Old") is None
    assert run(store, source, target, run_id="r3") == {"unchanged": 3, "skipped": 2}


def test_parallel_workers_write_each_record_once(store, source, target):
    source.records = [{"id": str(i), "name": f"Vendor {i}", "amount": "1.00", "category": "x"} for i in range(40)]
    big = Entity(**{**THING.__dict__, "batch_size": 40})
    assert run(store, source, target, entity=big, workers=4) == {"created": 40}
    assert run(store, source, target, entity=big, run_id="r2", workers=4) == {"unchanged": 40}
    assert target.creates == 40


def test_concurrent_engines_on_the_same_records_never_duplicate(store, source, target):
    source.records = [{"id": str(i), "name": f"Vendor {i}", "amount": "1.00", "category": "x"} for i in range(12)]
    target.slow = 0.01
    results: list[dict] = []
    threads = [
        threading.Thread(target=lambda rid=rid: results.append(run(store, source, target, run_id=rid, workers=3)))
        for rid in ("a", "b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run(store, source, target, run_id="c")  # whatever was parked resolves
    assert sorted(names(target)) == sorted({r["name"] for r in source.records})


# --- plan: no task start-ups for work that is not there -------------------------------------------


def test_a_rerun_with_nothing_changed_plans_no_write_batch(store, source, target):
    first = engine(store, source, target).plan(ALL, workers=2)
    assert first.counts == {"read": 3} and [len(b) for b in first.write_batches] == [2, 1]
    for batch in first.write_batches:
        engine(store, source, target).upsert(batch)
    second = engine(store, source, target, run_id="r2").plan(ALL, workers=2)
    assert second.write_batches == [] and second.counts == {"read": 3, "unchanged": 3}


def test_a_plan_settles_dead_letters_and_parking_itself_and_reads_reference_data_once(store, source, target):
    UNMAPPED.add("meals")
    reads: list[int] = []
    counted = Entity(**{**THING.__dict__, "prepare": lambda src, tgt: reads.append(1)})
    plan = engine(store, source, target, entity=counted).plan(ALL, workers=3)
    assert plan.counts == {"read": 3, "quarantined": 1}
    assert sum(len(b) for b in plan.write_batches) == 2
    assert reads == [1]  # once per task, not once per batch


def test_a_dry_run_plan_counts_what_it_would_do_and_maps_no_upsert(store, source, target):
    plan = engine(store, source, target, dry_run=True).plan(ALL)
    assert plan.write_batches == [] and plan.counts == {"read": 3, "would_create": 3}


# --- bulk creates: all or nothing, halved when refused, looked up when the answer is lost --------


class BulkTarget(FakeTarget):
    def __init__(self) -> None:
        super().__init__()
        self.bulk_calls: list[int] = []
        self.lose_next_bulk_answer = False

    def create_many(self, payloads):
        check_fence()
        self.bulk_calls.append(len(payloads))
        refused = [p["name"] for p in payloads if p["name"] in self.reject]
        if refused:  # all or nothing, as BILL's bulk endpoints
            raise RecordRejectedError(f"name {refused[0]}: not allowed", system="fake", status=400)
        created = []
        for payload in payloads:
            self.creates += 1
            target_id = f"T{self.creates}"
            self.records[target_id] = {"id": target_id, **payload}
            created.append(self.records[target_id])
        if self.lose_next_bulk_answer:
            self.lose_next_bulk_answer = False
            raise WriteOutcomeUnknownError("connection dropped after commit", system="fake")
        return created


BULK = Entity(
    **{**THING.__dict__, "batch_size": 40, "bulk_limit": 8, "create_many": lambda t, payloads: t.create_many(payloads)}
)


@pytest.fixture
def many(source):
    source.records = [{"id": str(i), "name": f"Vendor {i}", "amount": "1.00", "category": "x"} for i in range(20)]
    return source


def test_bulk_creates_use_the_vendor_limit_and_a_rerun_writes_nothing(store, many):
    target = BulkTarget()
    assert run(store, many, target, entity=BULK, workers=3) == {"created": 20}
    assert sorted(target.bulk_calls) == [4, 8, 8]
    assert run(store, many, target, entity=BULK, run_id="r2") == {"unchanged": 20}
    assert target.creates == 20


def test_a_refused_bulk_call_is_halved_until_the_bad_record_is_dead_lettered_alone(store, many):
    target = BulkTarget()
    target.reject = {"Vendor 5"}
    assert run(store, many, target, entity=BULK) == {"created": 19, "quarantined": 1}
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    assert letter.source_id == "5" and mapping(store, "5") is None
    assert len(target.bulk_calls) <= 3 + 2 * 3  # three chunks, then log2(8) halvings of one of them
    assert names(target).count("Vendor 5") == 0 and target.creates == 19


def test_a_lost_bulk_answer_is_resolved_record_by_record_by_lookup_never_recreated(store, many):
    target = BulkTarget()
    target.lose_next_bulk_answer = True
    assert run(store, many, target, entity=BULK) == {"created": 20}
    assert target.creates == 20 and len(set(names(target))) == 20
    assert run(store, many, target, entity=BULK, run_id="r2") == {"unchanged": 20}


def test_a_bulk_write_costs_a_few_state_store_commits_per_call_not_several_per_record(store, source):
    """Claims, fences, completions and audit rows of a bulk call are one transaction each: at 10,000
    records one commit per record per step was most of a run (benchmarks/README.md)."""
    source.records = [{"id": str(i), "name": f"Vendor {i}", "amount": "1.00", "category": "x"} for i in range(80)]
    sync = engine(store, source, BulkTarget(), entity=BULK)
    decisions = [d for batch in sync.extract(ALL) for d in sync.match(batch)]
    commits = []
    sa.event.listen(store.db.engine, "commit", lambda conn: commits.append(1))
    assert sync.upsert(decisions).counts == {"created": 80}
    # the claims (1 read, 1 write), then per bulk call (10 of 8): fence, completion, audit, letters read
    assert len(commits) <= 2 + 4 * 10, len(commits)


def test_a_bulk_record_busy_elsewhere_is_parked_and_the_others_written(store, many):
    target = BulkTarget()
    store.id_map.claim(PAIR_NAME, "thing", "src-tenant", "3", "tgt-tenant", "Vendor 3", "dag/other/upsert/0/try1/z")
    assert run(store, many, target, entity=BULK) == {"created": 19, "waiting": 1}
    assert target.by_name("Vendor 3") is None


# --- item-by-item bulk answers (QuickBooks' batch): one item's error is that record's alone ------


class BatchTarget(BulkTarget):
    """Answers each item apart: a refused, lost or throttled item leaves the others written."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: set[str] = set()  # committed, but the item's answer says nothing
        self.throttled: set[str] = set()

    def create_many(self, payloads):
        check_fence()
        self.bulk_calls.append(len(payloads))
        answers = []
        for payload in payloads:
            if payload["name"] in self.reject:
                answers.append(RecordRejectedError(f"name {payload['name']}: not allowed", system="fake", status=400))
                continue
            if payload["name"] in self.throttled:
                self.throttled.discard(payload["name"])
                answers.append(RateLimitedError("throttled", system="fake", status=429))
                continue
            self.creates += 1
            target_id = f"T{self.creates}"
            self.records[target_id] = {"id": target_id, **payload}
            if payload["name"] in self.lost:
                self.lost.discard(payload["name"])
                answers.append(WriteOutcomeUnknownError("no answer for this item", system="fake"))
            else:
                answers.append(self.records[target_id])
        return answers


def test_an_item_refused_in_a_batch_is_dead_lettered_alone_and_the_batch_is_not_resent(store, many):
    target = BatchTarget()
    target.reject = {"Vendor 5"}
    assert run(store, many, target, entity=BULK) == {"created": 19, "quarantined": 1}
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    assert letter.source_id == "5" and "not allowed" in letter.reason
    assert sorted(target.bulk_calls) == [4, 8, 8]  # no halving: the others were written the first time
    assert target.creates == 19 and len(set(names(target))) == 19


def test_a_lost_or_throttled_item_is_looked_up_or_retried_never_created_twice(store, many):
    target = BatchTarget()
    target.lost, target.throttled = {"Vendor 2"}, {"Vendor 7"}
    # The lost one is found by its natural key; the throttled one is left for the task's retry.
    assert run(store, many, target, entity=BULK) == {"created": 19, "retry_later": 1}
    assert target.by_name("Vendor 7") is None and mapping(store, "2") is not None
    assert run(store, many, target, entity=BULK, run_id="r2") == {"unchanged": 19, "created": 1}
    assert sorted(names(target)) == sorted(f"Vendor {i}" for i in range(20))  # each once


# --- a natural key shared by two pairs (one FreshBooks bill vendor per person) -----------------

SHARED = SharedKey("thing_by_name")
SHARED_THING = dataclasses.replace(THING, shared=SHARED)
OTHER_PAIR = Pair("c_to_b", source=FakeSource, target=FakeTarget, entities=(SHARED_THING,))  # type: ignore[arg-type]
THIS_PAIR = Pair(PAIR_NAME, source=FakeSource, target=FakeTarget, entities=(SHARED_THING,))  # type: ignore[arg-type]


def shared_engine(store, source, target, pair=THIS_PAIR, entity=SHARED_THING, run_id="r1"):
    return SyncEngine(pair, entity, source, target, store, RunInfo(pair.name, run_id, "upsert_things"))


def other_source():
    world = FakeSource()
    world.records = [{"id": "c-7", "name": "Adobe", "amount": "10.00", "category": "software"}]
    return world


def shared_row(store, key="Adobe"):
    return store.id_map.get(SHARED_PAIR, "thing_by_name", "tgt-tenant", key)


def test_a_record_another_pair_created_after_this_plan_looked_is_linked_not_created_twice(store, source, target):
    this = shared_engine(store, source, target)
    decisions = this.match([source.records[0]])  # plans a create: the target has no Adobe yet
    assert [d.action for d in decisions] == ["create"]
    other = shared_engine(store, other_source(), target, pair=OTHER_PAIR)
    assert dict(other.upsert(other.match(other_source().records)).counts) == {"created": 1}
    assert dict(this.upsert(decisions).counts) == {"matched_existing": 1}
    assert names(target) == ["Adobe"] and target.creates == 1
    assert mapping(store, "1").target_id == "T1"
    assert shared_row(store).target_id == "T1"


def test_while_another_pair_is_creating_the_key_the_record_is_parked_and_linked_next_run(store, source, target):
    store.id_map.claim(SHARED_PAIR, "thing_by_name", "tgt-tenant", "Adobe", "tgt-tenant", "Adobe", "c_to_b/live")
    this = shared_engine(store, source, target)
    assert dict(this.upsert(this.match([source.records[0]])).counts) == {"waiting": 1}
    assert target.creates == 0 and mapping(store, "1") is None  # its own claim is dropped, nothing sent
    (letter,) = store.dead_letters.list(status="replay_requested", pair=PAIR_NAME)
    assert letter.error_kind == "busy_elsewhere"
    # The other pair finishes; the parked record is re-read next run and linked by the plan's lookup.
    target.create({"name": "Adobe", "amount": "10.00"})
    store.id_map.complete(SHARED_PAIR, "thing_by_name", "tgt-tenant", "Adobe", "T1", None, owner="c_to_b/live")
    nxt = shared_engine(store, source, target, run_id="r2")
    counts: Counter[str] = Counter()
    for batch in nxt.extract(ALL):
        counts += nxt.upsert(nxt.match(batch)).counts
    assert counts == {"matched_existing": 1, "created": 2}
    assert names(target).count("Adobe") == 1


def test_a_pair_that_died_after_creating_the_key_leaves_it_to_be_found_by_lookup(store, source, target):
    store.id_map.claim(SHARED_PAIR, "thing_by_name", "tgt-tenant", "Adobe", "tgt-tenant", "Adobe", "c_to_b/dead")
    store.id_map.abandon(SHARED_PAIR, "thing_by_name", "tgt-tenant", "Adobe", owner="c_to_b/dead")
    this = shared_engine(store, source, target)
    decisions = this.match([source.records[0]])
    target.create({"name": "Adobe", "amount": "10.00"})  # what the dead pair had sent
    assert dict(this.upsert(decisions).counts) == {"matched_existing": 1}
    assert target.creates == 1 and shared_row(store).target_id == "T1"


def test_a_shared_key_whose_record_was_renamed_away_is_taken_afresh_not_linked_to_the_old_record(store, source, target):
    other = shared_engine(store, other_source(), target, pair=OTHER_PAIR)
    other.upsert(other.match(other_source().records))
    target.records["T1"]["name"] = "Adobe Inc"  # the other pair's record no longer has the key
    this = shared_engine(store, source, target)
    assert dict(this.upsert(this.match([source.records[0]])).counts) == {"created": 1}
    assert mapping(store, "1").target_id == "T2" and shared_row(store).target_id == "T2"
    assert names(target) == ["Adobe", "Adobe Inc"]


def test_a_pair_that_writes_when_adopting_brings_the_other_pairs_record_up_to_date(store, source, target):
    adopting = dataclasses.replace(THING, shared=SharedKey("thing_by_name"), update_matches=True)
    pair = Pair(PAIR_NAME, source=FakeSource, target=FakeTarget, entities=(adopting,))  # type: ignore[arg-type]
    this = shared_engine(store, source, target, pair=pair, entity=adopting)
    decisions = this.match([{**source.records[0], "amount": "12.00"}])
    other = shared_engine(store, other_source(), target, pair=OTHER_PAIR)
    other.upsert(other.match(other_source().records))
    assert dict(this.upsert(decisions).counts) == {"updated": 1}
    assert target.creates == 1 and target.records["T1"]["amount"] == "12.00"


def test_a_refused_create_frees_the_shared_key(store, source, target):
    target.reject.add("Adobe")
    this = shared_engine(store, source, target)
    assert dict(this.upsert(this.match([source.records[0]])).counts) == {"quarantined": 1}
    assert shared_row(store) is None


def test_a_shared_key_cannot_be_created_in_bulk():
    with pytest.raises(ValueError, match="shared key"):
        Pair(
            "x",
            source=FakeSource,
            target=FakeTarget,
            entities=(dataclasses.replace(SHARED_THING, create_many=len, bulk_limit=5),),
        )  # type: ignore[arg-type]


# --- one writer changes a synced record at a time ----------------------------------------------


def test_two_runs_updating_one_record_at_once_apply_the_change_once(store, source, target):
    # An update that applies a change (a refund taken off payments) must not run twice in parallel.
    run(store, source, target)
    source.records[0]["amount"] = "11.00"
    inside, release = threading.Event(), threading.Event()
    plain_update = target.update

    def slow_update(target_id, payload):
        inside.set()
        release.wait(10)
        plain_update(target_id, payload)

    target.update = slow_update
    first, second = engine(store, source, target, run_id="r2"), engine(store, source, target, run_id="r3")
    (mine,), (theirs,) = first.match([source.records[0]]), second.match([source.records[0]])
    outcome: dict[str, object] = {}
    writer = threading.Thread(target=lambda: outcome.update(first.upsert([mine]).counts))
    writer.start()
    assert inside.wait(10)
    assert dict(second.upsert([theirs]).counts) == {"waiting": 1}  # parked: re-read next run
    release.set()
    writer.join(10)
    assert outcome == {"updated": 1} and target.updates == 1
    assert mapping(store, "1").claimed_by is None  # the update lease is given back
    assert run(store, source, target, run_id="r4") == {"unchanged": 3}


def test_a_failed_update_gives_its_lease_back(store, source, target):
    run(store, source, target)
    source.records[0]["amount"] = "11.00"
    target.locked.add("T1")
    assert run(store, source, target, run_id="r2") == {"quarantined": 1, "unchanged": 2}
    target.locked.clear()
    assert mapping(store, "1").claimed_by is None
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    assert run(store, source, target, run_id="r3", replay=[letter.id]) == {"updated": 1, "unchanged": 2}


# --- the target's revision of what this integration wrote (QuickBooks' SyncToken) -------------


class RevisedTarget(BulkTarget):
    """Every write answers with the record's revision, as QuickBooks' SyncToken."""

    def create(self, payload):
        return {**super().create(payload), "rev": "0"}

    def create_many(self, payloads):
        return [{**record, "rev": "0"} for record in super().create_many(payloads)]

    def update(self, target_id, payload):
        super().update(target_id, payload)
        self.records[target_id]["rev"] = str(int(self.records[target_id].get("rev", "0")) + 1)
        return dict(self.records[target_id])


def revision(store, source_id):
    return mapping(store, source_id).target_version


def test_the_id_map_keeps_the_revision_each_write_left_and_none_for_a_record_it_found(store, source):
    target = RevisedTarget()
    target.records["T99"] = {"id": "T99", "name": "Adobe", "amount": "10.00", "rev": "7"}  # someone else's
    revised = dataclasses.replace(THING, target_version=lambda record: record.get("rev"))
    in_bulk = dataclasses.replace(BULK, target_version=lambda record: record.get("rev"))
    assert run(store, source, target, entity=revised) == {"matched_existing": 1, "created": 2}
    assert [revision(store, i) for i in ("1", "2", "3")] == [None, "0", "0"]
    source.records[1]["amount"] = "21.00"
    assert run(store, source, target, entity=revised, run_id="r2") == {"updated": 1, "unchanged": 2}
    assert revision(store, "2") == "1"
    source.records.append({"id": "4", "name": "Bulky", "amount": "4.00", "category": "x"})
    source.listed = ["4"]
    assert run(store, source, target, entity=in_bulk, run_id="r3") == {"created": 1}
    assert target.bulk_calls == [1] and revision(store, "4") == "0"


# --- what a listing lacks is read only for records that moved since their sync ------------------


SINCE = Window(start=datetime(2026, 11, 20, tzinfo=timezone.utc), end=ALL.end, is_backfill=False)


class Enricher:
    """``Entity.enrich``: adds what the listing lacks (an order's lines), counting what it read."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def __call__(self, source, records):
        for record in records:
            self.read.append(record["id"])
            yield {**record, "category": record.get("category", "x")}


def enriched_entity(enricher):
    return dataclasses.replace(THING, enrich=enricher, source_version=lambda record: record.get("modified"))


def plan_counts(store, source, target, entity, window, run_id):
    sync = SyncEngine(PAIR, entity, source, target, store, RunInfo("dag", run_id, "plan_things"))
    plan = sync.plan(window)
    for batch in plan.write_batches:
        plan.counts.update(sync.upsert(batch).counts)
    return dict(plan.counts)


def test_records_at_the_revision_of_their_sync_are_not_enriched_and_the_others_are(store, source, target):
    for record in source.records:
        record["modified"] = "v1"
    enricher = Enricher()
    entity = enriched_entity(enricher)
    assert plan_counts(store, source, target, entity, ALL, "r1") == {"read": 3, "created": 3}
    assert sorted(enricher.read) == ["1", "2", "3"] and revisions(store) == ["v1", "v1", "v1"]
    enricher.read.clear()
    source.records[0].update(modified="v2", amount="11.00")
    assert plan_counts(store, source, target, entity, SINCE, "r2") == {"read": 3, "unchanged": 2, "updated": 1}
    assert enricher.read == ["1"] and target.records["T1"]["amount"] == "11.00"
    assert revisions(store) == ["v2", "v1", "v1"]
    enricher.read.clear()
    assert plan_counts(store, source, target, entity, ALL, "r3") == {"read": 3, "unchanged": 3}  # full_resync
    assert sorted(enricher.read) == ["1", "2", "3"]


def test_an_unchanged_record_found_so_from_its_content_gets_its_revision_noted(store, source, target):
    enricher = Enricher()
    run(store, source, target)  # synced before revisions were kept
    for record in source.records:
        record["modified"] = "v1"
    entity = enriched_entity(enricher)
    assert plan_counts(store, source, target, entity, SINCE, "r2") == {"read": 3, "unchanged": 3}
    assert revisions(store) == ["v1", "v1", "v1"] and len(enricher.read) == 3
    enricher.read.clear()
    assert plan_counts(store, source, target, entity, SINCE, "r3") == {"read": 3, "unchanged": 3}
    assert enricher.read == []


def test_a_record_with_an_open_dead_letter_is_enriched_and_decided_again(store, source, target):
    for record in source.records:
        record["modified"] = "v1"
    enricher = Enricher()
    entity = enriched_entity(enricher)
    plan_counts(store, source, target, entity, ALL, "r1")
    store.dead_letters.add(PAIR_NAME, "thing", "src-tenant", "2", reason="checked by hand", error_kind="validation")
    enricher.read.clear()
    plan_counts(store, source, target, entity, SINCE, "r2")
    assert enricher.read == ["2"]


def revisions(store):
    return [mapping(store, i).source_version for i in ("1", "2", "3")]


def test_enrich_and_source_version_are_declared_together():
    with pytest.raises(ValueError, match="together"):
        Pair("x", source=FakeSource, target=FakeTarget, entities=(dataclasses.replace(THING, enrich=Enricher()),))  # type: ignore[arg-type]


def test_a_record_found_before_creating_is_brought_up_to_date_when_declared_and_a_failed_update_is_retried(
    store, source, target
):
    updating = dataclasses.replace(THING, update_matches=True)
    target.records["T99"] = {"id": "T99", "name": "Adobe", "amount": "9.00"}
    target.locked.add("T99")
    assert run(store, source, target, entity=updating) == {"quarantined": 1, "created": 2}
    assert mapping(store, "1").target_id == "T99" and mapping(store, "1").fingerprint is None
    target.locked.clear()
    (letter,) = store.dead_letters.list(status="open", pair=PAIR_NAME)
    assert run(store, source, target, entity=updating, run_id="r2", replay=[letter.id]) == {
        "updated": 1,
        "unchanged": 2,
    }
    assert target.records["T99"]["amount"] == "10.00" and target.creates == 2
