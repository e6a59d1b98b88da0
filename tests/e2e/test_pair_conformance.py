"""The pair conformance suite: every pair, through a real Airflow, against the sandbox.

A pair joins by adding its :class:`~tests.e2e.pair_cases.PairCase` to ``CASES``. What each pair
must show (scenarios share DAG runs where they can: each run costs a real Airflow process):

* a dry run writes nothing anywhere; the first run writes the story even when the vendor drops
  the answer to one create of each kind; a rerun writes nothing; a rename onto another record's
  key is dead-lettered and the stream goes on;
* two concurrent runs leave no duplicate, also with a record listed twice (page drift) and a
  malformed one (dead-lettered, the rest written);
* connected accounts with nothing in them: the run succeeds.

The overlapping backfill runs under the real scheduler in ``test_demo.py``.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.conftest import assert_succeeded
from tests.e2e.pair_cases import CASES, PairCase

pytestmark = pytest.mark.e2e

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(params=CASES, ids=lambda case: case.dag_id)
def case(request) -> PairCase:
    return request.param


@pytest.fixture
def world(sandbox, airflow_home, tmp_path, case):
    from tests.e2e.conftest import Harness

    sandbox.control.reset()
    harness = Harness(sandbox, airflow_home, tmp_path, extra_env=dict(case.extra_env))
    return harness


def vendor_writes(harness, case: PairCase) -> dict[str, int]:
    """Write calls to any vendor, not counting logins, token refreshes and the case's reading POSTs."""
    return {
        route: n
        for route, n in harness.control.request_counts().items()
        if route.split()[1] in WRITE_METHODS
        and not any(w in route for w in ("login", "oauth", "token"))
        and route not in case.read_posts
    }


def duplicates(keys: dict[str, list[str]]) -> dict[str, list[str]]:
    return {entity: [k for k, n in Counter(found).items() if n > 1] for entity, found in keys.items() if found}


def assert_no_duplicate(harness, case: PairCase) -> dict[str, list[str]]:
    keys = case.target_keys(harness)
    assert not any(duplicates(keys).values()), f"duplicated in the target: {duplicates(keys)}"
    return keys


def assert_story(harness, case: PairCase, *, missing_ok: set[tuple[str, str]] = frozenset()) -> None:
    keys = assert_no_duplicate(harness, case)
    for entity, expected in case.story.items():
        for key in expected:
            if (entity, key) in missing_ok:
                continue
            assert any(found.startswith(key) for found in keys.get(entity, [])), f"{entity} {key!r} not written: {keys}"


def assert_nothing_in_state(harness, case: PairCase) -> None:
    store = harness.store
    assert store.dead_letters.list(pair=case.dag_id) == []
    for entity in case.story:
        assert store.id_map.list(case.dag_id, entity) == []


def test_dry_run_first_run_with_dropped_answers_rerun_and_a_rename_onto_a_sibling(world, case):
    case.seed(world)
    world.control.clear_requests()
    assert_succeeded(world.run_dag(case.dag_id, conf={"dry_run": True}))
    assert vendor_writes(world, case) == {}, "a dry run must write nothing"
    assert_nothing_in_state(world, case)

    for system, method, path in case.creates:
        world.control.fault(system, "drop_after_commit", count=1, method=method, path=path)
    assert_succeeded(world.run_dag(case.dag_id))
    pending = [f for f in world.control.pending_faults() if f["kind"] == "drop_after_commit"]
    assert pending == [], f"create routes the pair never called (the case's `creates` is stale): {pending}"
    assert_story(world, case)
    case.check_story(world)

    world.control.clear_requests()
    assert_succeeded(world.run_dag(case.dag_id))
    assert vendor_writes(world, case) == {}, "a no-change rerun must write nothing"

    entity, source_id = case.rename_onto_sibling(world)
    new_entity, new_key = case.stream_goes_on(world)
    before = case.target_keys(world)
    assert_succeeded(world.run_dag(case.dag_id))
    letters = [
        d
        for d in world.store.dead_letters.list(status="open", pair=case.dag_id)
        if (d.entity, d.source_id) == (entity, source_id)
    ]
    assert [d.error_kind for d in letters] == ["duplicate_natural_key"], world.store.dead_letters.list()
    after = assert_no_duplicate(world, case)
    assert new_key in after[new_entity] and new_key not in before.get(new_entity, []), "the stream did not go on"


def test_concurrent_runs_with_a_record_listed_twice_and_a_malformed_one_leave_no_duplicate(world, case):
    case.seed(world)
    twice_entity, twice_key = case.list_twice(world)
    bad_entity, bad_key = case.malform(world)
    for system in {system for system, _, _ in case.creates}:
        world.control.latency(system, 30)  # widen the race window
    first = world.start_dag(case.dag_id)
    second = world.start_dag(case.dag_id)
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert any("summary" in out for out in outputs), outputs[0][-3000:]

    keys = assert_no_duplicate(world, case)
    assert keys[twice_entity].count(twice_key) <= 1
    assert bad_key not in keys.get(bad_entity, []), "a malformed record was written"
    kinds = {d.error_kind for d in world.store.dead_letters.list(pair=case.dag_id) if d.entity == bad_entity}
    assert "malformed" in kinds, kinds
    faults = {r.get("fault") for r in world.control.requests()}
    assert {"page_drift", "corrupt_row"} <= faults, "the drift and the corruption were not served"

    # The source is fixed; whatever one run parked while the other held it, a later run finishes.
    world.control.clear_faults()
    assert_succeeded(world.run_dag(case.dag_id))
    assert_story(world, case, missing_ok={(bad_entity, bad_key)})
    assert case.target_keys(world)[twice_entity].count(twice_key) == 1


def test_connected_accounts_with_nothing_in_them_succeed(world, case):
    case.empty(world)
    world.control.clear_requests()
    output = world.run_dag(case.dag_id)
    assert_succeeded(output)
    assert vendor_writes(world, case) == {}
    assert all(not keys for keys in case.target_keys(world).values())
