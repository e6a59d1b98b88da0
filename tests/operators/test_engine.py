"""The sync engine's guarantees, with a real state store and an in-memory target system.

The target below behaves like a vendor without idempotency keys: every create makes a new record
(duplicates are possible), and it can lose an answer after committing.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from cryptography.fernet import Fernet

from airflow_provider_mlconnector.exceptions import MappingError, RecordRejectedError, WriteOutcomeUnknownError
from airflow_provider_mlconnector.operators.engine import EntitySpec, RunInfo, SyncEngine
from airflow_provider_mlconnector.state import StateStore
from airflow_provider_mlconnector.state.watermarks import Window

ALL = Window(start=None, end=datetime(2026, 11, 21, tzinfo=timezone.utc), is_backfill=False)


class FakeTarget:
    def __init__(self) -> None:
        self.records: dict[str, dict] = {}
        self.creates = 0
        self.lose_next_answer = False
        self.reject = set()

    def create(self, payload):
        if payload["name"] in self.reject:
            raise RecordRejectedError("name: not allowed", system="fake", status=400)
        self.creates += 1
        target_id = f"T{self.creates}"
        self.records[target_id] = {"id": target_id, **payload}
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise WriteOutcomeUnknownError("connection dropped", system="fake")
        return self.records[target_id]

    def by_name(self, name):
        return next((r for r in self.records.values() if r["name"] == name), None)


class FakeSpec(EntitySpec):
    pair = "a_to_b"
    entity = "thing"
    source_system = "a"
    target_system = "b"
    batch_size = 2
    source_records: list[dict] = []
    fake: FakeTarget
    unmapped: set = set()

    @property
    def source_tenant(self):
        return "src-tenant"

    @property
    def target_tenant(self):
        return "tgt-tenant"

    def extract(self, window):
        return list(self.source_records)

    def fetch(self, source_id):
        return next((r for r in self.source_records if r["id"] == source_id), None)

    def source_id(self, record):
        return record["id"]

    def skip_reason(self, record, mapped):
        return "archived and never synced" if record.get("archived") and not mapped else None

    def transform(self, record):
        if record["category"] in self.unmapped:
            raise MappingError(f"category {record['category']!r} has no GL account", kind="unmapped_account")
        return {"name": record["name"], "amount": record["amount"]}

    def natural_key(self, record, payload):
        return payload["name"]

    def find_existing(self, natural_key, payload):
        return self.fake.by_name(natural_key)

    def create(self, payload, record):
        return self.fake.create(payload)

    def update(self, target_id, payload, record):
        self.fake.records[target_id].update(payload)
        return self.fake.records[target_id]

    def target_id(self, target_record):
        return target_record["id"]


@pytest.fixture
def store(tmp_path):
    return StateStore(f"sqlite:///{tmp_path}/state.db", fernet_keys=[Fernet.generate_key().decode()])


@pytest.fixture
def fake():
    FakeSpec.fake = FakeTarget()
    FakeSpec.unmapped = set()
    FakeSpec.source_records = [
        {"id": "1", "name": "Adobe", "amount": "10.00", "category": "software"},
        {"id": "2", "name": "Pixel", "amount": "20.00", "category": "labor"},
        {"id": "3", "name": "Catering", "amount": "30.00", "category": "meals"},
    ]
    return FakeSpec.fake


def run(store, run_id="r1", try_number=1, dry_run=False, workers=1):
    engine = SyncEngine(FakeSpec(None, None, store), store, RunInfo("dag", run_id, "upsert", 0, try_number, dry_run))
    counts = {}
    for batch in engine.extract(ALL):
        result = engine.upsert(engine.match(batch), workers=workers)
        for k, v in result.counts.items():
            counts[k] = counts.get(k, 0) + v
        if result.retry_later:
            counts.setdefault("retry_later_ids", []).extend(result.retry_later)
    return counts


def test_first_run_creates_and_second_run_writes_nothing(store, fake):
    assert run(store) == {"created": 3}
    assert run(store, run_id="r2") == {"unchanged": 3}
    assert fake.creates == 3


def test_existing_target_record_is_matched_not_duplicated(store, fake):
    fake.records["T99"] = {"id": "T99", "name": "Adobe", "amount": "10.00"}
    assert run(store) == {"matched_existing": 1, "created": 2}
    assert store.id_map.get("a_to_b", "thing", "src-tenant", "1").target_id == "T99"


def test_changed_record_is_updated_once(store, fake):
    run(store)
    FakeSpec.source_records[0]["amount"] = "11.00"
    assert run(store, run_id="r2") == {"updated": 1, "unchanged": 2}
    assert fake.records["T1"]["amount"] == "11.00"


def test_lost_answer_is_confirmed_by_lookup_not_recreated(store, fake):
    fake.lose_next_answer = True
    assert run(store) == {"created": 3}
    assert fake.creates == 3
    assert len({r["name"] for r in fake.records.values()}) == 3


def test_crash_between_vendor_commit_and_bookkeeping_is_recovered(store, fake):
    # Attempt 1 claims and the vendor commits, then the worker dies before completing the claim.
    spec = FakeSpec(None, None, store)
    store.id_map.claim("a_to_b", "thing", "src-tenant", "1", "tgt-tenant", "Adobe", "dag/r1/upsert/0")
    fake.create({"name": "Adobe", "amount": "10.00"})
    # The task retry (same owner) recovers through a natural-key lookup: still one Adobe.
    assert run(store, try_number=2) == {"created": 2, "matched_existing": 1}
    assert [r["name"] for r in fake.records.values()].count("Adobe") == 1
    assert spec.fake is fake


def test_another_live_run_holding_the_claim_is_never_duplicated(store, fake):
    store.id_map.claim("a_to_b", "thing", "src-tenant", "1", "tgt-tenant", "Adobe", "dag/other-run/upsert/0")
    counts = run(store)
    assert counts == {"in_progress_elsewhere": 1, "created": 2}
    assert fake.by_name("Adobe") is None


def test_unmappable_record_is_dead_lettered_then_replayed_once(store, fake):
    FakeSpec.unmapped = {"meals"}
    assert run(store) == {"created": 2, "quarantined": 1}
    assert run(store, run_id="r2") == {"unchanged": 2, "quarantined": 1}
    (letter,) = store.dead_letters.list(status="open", pair="a_to_b")
    assert letter.source_id == "3" and letter.attempts == 2 and "no GL account" in letter.reason
    FakeSpec.unmapped = set()  # the accountant adds the mapping
    assert run(store, run_id="r3") == {"unchanged": 2, "created": 1}
    assert run(store, run_id="r4") == {"unchanged": 3}
    assert store.dead_letters.get(letter.id).status == "replayed"
    assert fake.creates == 3
    actions = [row.action for row in store.audit.history("a", "3")]
    assert actions == ["quarantined", "quarantined", "created", "replayed", "unchanged"]


def test_vendor_rejection_releases_the_claim_and_is_not_resent_until_replayed(store, fake):
    fake.reject = {"Pixel"}
    assert run(store) == {"created": 2, "quarantined": 1}
    assert store.id_map.get("a_to_b", "thing", "src-tenant", "2") is None
    fake.reject = set()  # the cause is fixed on the target side...
    attempts = fake.creates
    assert run(store, run_id="r2") == {"unchanged": 2, "quarantined": 1}
    assert fake.creates == attempts  # ...but the same content is not sent again on its own
    (letter,) = store.dead_letters.list(status="open", pair="a_to_b")
    store.dead_letters.request_replay([letter.id])  # on-call: `mlconnector-state dlq replay <id>`
    assert run(store, run_id="r3") == {"unchanged": 2, "created": 1}
    assert store.dead_letters.get(letter.id).status == "replayed"


def test_changed_source_record_is_retried_after_a_rejection(store, fake):
    fake.reject = {"Pixel"}
    run(store)
    FakeSpec.source_records[1]["name"] = "Pixel Forge"  # the accountant fixes the record itself
    assert run(store, run_id="r2") == {"unchanged": 2, "created": 1}


def test_archived_never_synced_is_skipped_with_reason(store, fake):
    FakeSpec.source_records.append({"id": "4", "name": "Old", "amount": "1.00", "category": "x", "archived": True})
    assert run(store) == {"created": 3, "skipped": 1}
    assert fake.by_name("Old") is None


def test_dry_run_writes_nothing(store, fake):
    assert run(store, dry_run=True) == {"would_create": 3}
    assert fake.creates == 0
    assert store.id_map.list("a_to_b", "thing") == []


def test_parallel_workers_write_each_record_once(store, fake):
    FakeSpec.source_records = [
        {"id": str(i), "name": f"Vendor {i}", "amount": "1.00", "category": "x"} for i in range(40)
    ]
    FakeSpec.batch_size = 40
    try:
        assert run(store, workers=4) == {"created": 40}
        assert run(store, run_id="r2", workers=4) == {"unchanged": 40}
    finally:
        FakeSpec.batch_size = 2
    assert fake.creates == 40
    assert len({r["name"] for r in fake.records.values()}) == 40
