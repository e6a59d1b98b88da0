"""BambooHR -> FreshBooks mapping rules: pure functions, then the real engine over small in-memory hooks.

Dates are relative to the day the test runs (the pair decides employment as of the UTC date).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_mlconnector.exceptions import ConfigurationError, MappingError, NotFoundError, NotLinkedYetError
from airflow_provider_mlconnector.operators.engine import RunInfo, SyncEngine
from airflow_provider_mlconnector.operators.pair import Ctx, Retire, Skip
from airflow_provider_mlconnector.pairs import bamboohr_to_freshbooks as pair
from airflow_provider_mlconnector.pairs.bamboohr_to_freshbooks import (
    PAIR,
    Settings,
    StaffReference,
    TagReference,
    employment_ended,
    person_payload,
    read_employees,
    staff_link,
    tag_payload,
    with_marker,
)
from airflow_provider_mlconnector.state.watermarks import Window

TODAY = datetime.now(timezone.utc).date()
DAY = timedelta(days=1)
NOW = datetime.now(timezone.utc)


def employee(emp_id: str = "13", **fields: Any) -> dict[str, Any]:
    record = {
        "id": emp_id,
        "firstName": "Sofia",
        "lastName": "Marchetti",
        "preferredName": None,
        "workEmail": "Sofia.Marchetti@brightside.example",
        "jobTitle": "Junior Designer",
        "department": "Creative",
        "division": "Brightside",
        "status": "Active",
        "employmentHistoryStatus": "Full-Time",
        "hireDate": (TODAY - 30 * DAY).isoformat(),
        "terminationDate": "0000-00-00",
    }
    record.update(fields)
    return record


def ctx(reference: Any, *, mapped: bool = False) -> Ctx:
    return Ctx(source=None, target=None, reference=reference, mapped=mapped, streams={})


# ---------------------------------------------------------------------------------- employment


def test_an_active_employee_without_termination_date_is_employed():
    assert employment_ended(employee(), TODAY) is None


def test_a_termination_date_that_has_arrived_ends_the_employment_even_while_status_says_active():
    assert employment_ended(employee(terminationDate=TODAY.isoformat()), TODAY) == (
        f"terminated on {TODAY.isoformat()} in BambooHR"
    )


def test_a_future_dated_termination_changes_nothing_until_its_date_even_when_status_is_inactive():
    future = employee(terminationDate=(TODAY + 5 * DAY).isoformat(), status="Inactive")
    assert employment_ended(future, TODAY) is None
    assert employment_ended(future, TODAY + 5 * DAY) is not None


def test_a_hire_date_after_the_termination_date_is_a_rehire():
    rehired = employee(terminationDate=(TODAY - 90 * DAY).isoformat(), hireDate=(TODAY - 10 * DAY).isoformat())
    assert employment_ended(rehired, TODAY) is None


@pytest.mark.parametrize(
    "fields", [{"status": "Inactive"}, {"employmentHistoryStatus": "Terminated"}, {"action": "Deleted"}]
)
def test_inactive_terminated_or_deleted_employees_are_no_longer_employed(fields):
    assert employment_ended(employee(**fields), TODAY) is not None


# ---------------------------------------------------------------------------------- person payload


def test_an_employee_becomes_a_person_bill_vendor_with_name_email_and_job_title():
    payload = person_payload(employee(), ctx(TODAY))
    assert payload["vendor_name"] == "Sofia Marchetti"
    assert payload["primary_contact_email"] == "Sofia.Marchetti@brightside.example"
    assert (payload["primary_contact_first_name"], payload["primary_contact_last_name"]) == ("Sofia", "Marchetti")
    assert payload["note"].endswith(" - Junior Designer, Creative")
    assert pair.person_key(employee(), payload) == "sofia.marchetti@brightside.example"


def test_a_terminated_employee_retires_the_person_vendor():
    outcome = person_payload(employee(status="Inactive"), ctx(TODAY))
    assert isinstance(outcome, Retire) and "Inactive" in outcome.reason


def test_an_employee_without_work_email_is_a_dead_letter_naming_them():
    with pytest.raises(MappingError) as caught:
        person_payload(employee(workEmail=None), ctx(TODAY))
    assert caught.value.kind == "missing_email" and "Sofia Marchetti" in caught.value.reason


# ---------------------------------------------------------------------------------- staff link


def staff_reference(**settings: Any) -> StaffReference:
    return StaffReference(
        TODAY,
        Settings(**settings),
        staff={"sofia.marchetti@brightside.example": "21"},
        team_members=frozenset({"sofia.marchetti@brightside.example", "ethan.park@brightside.example"}),
    )


def test_an_employee_with_a_staff_record_is_linked_by_email():
    assert staff_link(employee(), ctx(staff_reference())) == {"email": "sofia.marchetti@brightside.example"}


def test_an_employee_with_no_team_member_waits_with_what_to_do_and_is_not_invited_by_default():
    with pytest.raises(NotLinkedYetError) as caught:
        staff_link(employee("16", firstName="Nina", workEmail="nina@brightside.example"), ctx(staff_reference()))
    assert "add Nina Marchetti as an Unassigned team member in FreshBooks" in caught.value.reason


def test_inviting_is_an_explicit_opt_in_and_never_for_an_existing_team_member():
    nina = employee("16", workEmail="nina@brightside.example")
    assert staff_link(nina, ctx(staff_reference(invite_team_members=True))) == {
        "email": "nina@brightside.example",
        "invite": True,
    }
    ethan = employee("14", workEmail="ethan.park@brightside.example")
    with pytest.raises(NotLinkedYetError, match="has no staff record yet"):
        staff_link(ethan, ctx(staff_reference(invite_team_members=True)))


def test_a_termination_leaves_the_staff_record_alone_unless_retire_staff_is_enabled():
    leaver = employee(status="Inactive")
    assert isinstance(staff_link(leaver, ctx(staff_reference())), Skip)
    assert isinstance(staff_link(leaver, ctx(staff_reference(retire_staff=True))), Retire)


def test_settings_refuse_an_unknown_department_carrier(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_MLCONNECTOR_BAMBOOHR_TO_FRESHBOOKS", '{"department_carrier": "tags"}')
    with pytest.raises(ConfigurationError, match="department_carrier"):
        Settings.load()
    monkeypatch.setenv("AIRFLOW_VAR_MLCONNECTOR_BAMBOOHR_TO_FRESHBOOKS", '{"retire_staff": true}')
    assert Settings.load() == Settings(retire_staff=True)


# ---------------------------------------------------------------------------------- department tag


TAGS = TagReference("notes", by_staff={"21": "Creative"}, by_email={"ethan.park@brightside.example": "Media"})


def test_an_untagged_expense_of_a_staff_member_gets_the_department_marker_on_a_line_of_its_own():
    expense = {"id": 64002, "staffid": 21, "notes": "Stock photos"}
    assert tag_payload(expense, ctx(TAGS)) == {"expenseid": "64002", "notes": "Stock photos\n[dept: Creative]"}
    assert with_marker("", "Media") == "[dept: Media]"


def test_an_expense_naming_the_employee_email_in_its_notes_is_attributed_to_them():
    expense = {"id": 64003, "staffid": 1, "notes": "Expensify report R1 for Ethan.Park@brightside.example"}
    assert tag_payload(expense, ctx(TAGS))["notes"].endswith("\n[dept: Media]")


@pytest.mark.parametrize("notes", ["Taxi [dept: Sales]", "taxi [DEPT:creative]", "[ dept : Old team ]"])
def test_a_marker_already_present_by_hand_or_from_an_earlier_department_is_never_overwritten(notes):
    assert isinstance(tag_payload({"id": 1, "staffid": 21, "notes": notes}, ctx(TAGS)), Skip)


def test_an_expense_of_nobody_known_is_skipped():
    assert isinstance(tag_payload({"id": 1, "staffid": 99, "notes": ""}, ctx(TAGS)), Skip)


def test_project_mode_sets_the_internal_project_titled_like_the_department_and_a_missing_one_is_a_dead_letter():
    projects = TagReference(
        "project", by_staff={"21": "Creative", "22": "Media"}, by_email={}, projects={"Creative": "7"}
    )
    assert tag_payload({"id": 5, "staffid": 21}, ctx(projects)) == {"expenseid": "5", "modern_projectid": 7}
    assert isinstance(tag_payload({"id": 6, "staffid": 21, "modern_projectid": 3}, ctx(projects)), Skip)
    with pytest.raises(MappingError) as caught:
        tag_payload({"id": 7, "staffid": 22}, ctx(projects))
    assert caught.value.kind == "unmapped_department" and "'Media'" in caught.value.reason


def test_an_email_two_employees_share_attributes_expenses_to_nobody():
    rows = [{"workEmail": "a@x.example", "department": "Creative"}, {"workEmail": "A@x.example", "department": "Media"}]
    assert pair.departments_by_email(rows) == {}


# ---------------------------------------------------------------------------------- in-memory hooks


class FakeBambooHR:
    conn_type = "bamboohr"
    tenant = "brightside"

    def __init__(self, *employees: dict[str, Any]) -> None:
        self.employees = {e["id"]: dict(e) for e in employees}
        self.changed: dict[str, str] = {}  # id -> action since the last read
        self.state = None

    def iter_employees(self, fields, *, changed_since=None, employee_ids=None):
        for emp_id, record in self.employees.items():
            if employee_ids is None or emp_id in employee_ids:
                yield {"id": emp_id, **{f: record.get(f) for f in fields}}

    def get_changed_employees(self, since):
        return {"latest": NOW.isoformat(), "employees": {i: {"id": i, "action": a} for i, a in self.changed.items()}}

    def get_employee(self, emp_id, fields):
        if emp_id not in self.employees:
            raise NotFoundError("employee not found", system="bamboohr", status=404)
        return {"id": emp_id, **{f: self.employees[emp_id].get(f) for f in fields}}


class FakeResource:
    def __init__(self, id_field: str, first_id: int, rows: list[dict[str, Any]] | None = None) -> None:
        self.id_field = id_field
        self.ids = itertools.count(first_id)
        self.rows = {str(r[id_field]): {"vis_state": 0, **r} for r in rows or []}
        self.writes: list[tuple[str, str]] = []
        self.listings = 0

    def list(self, **filters):
        self.listings += 1
        wanted = {int(filters["vis_state"])} if "vis_state" in filters else {0, 2}
        return [dict(r) for r in self.rows.values() if r.get("vis_state") in wanted]

    def get(self, record_id):
        return dict(self.rows[str(record_id)])

    def create(self, body):
        new_id = str(next(self.ids))
        self.rows[new_id] = {self.id_field: new_id, "vis_state": 0, **body}
        self.writes.append(("create", new_id))
        return dict(self.rows[new_id])

    def update(self, record_id, changes):
        self.rows[str(record_id)].update(changes)
        self.writes.append(("update", str(record_id)))
        return dict(self.rows[str(record_id)])

    def delete(self, record_id):
        self.rows[str(record_id)]["vis_state"] = 1
        self.writes.append(("delete", str(record_id)))

    def restore(self, record_id):
        self.rows[str(record_id)]["vis_state"] = 0
        self.writes.append(("restore", str(record_id)))


class FakeFreshBooks:
    conn_type = "freshbooks"
    tenant = "BRT4201"

    def __init__(self) -> None:
        self.bill_vendors = FakeResource("vendorid", 6101)
        self.staff = FakeResource("id", 31, [{"id": "21", "email": "sofia.marchetti@brightside.example"}])
        self.team_members = FakeResource("uuid", 1, [{"uuid": "t1", "email": "sofia.marchetti@brightside.example"}])
        self.expenses = FakeResource("id", 64101)
        self.projects = FakeResource("id", 1)
        self.invited: list[str] = []

    def invite_team_member(self, email):
        self.invited.append(email)
        return {}

    def vendors(self) -> list[dict[str, Any]]:
        return [v for v in self.bill_vendors.rows.values() if v["vis_state"] == 0]


FULL = Window(start=None, end=NOW, is_backfill=False)
SINCE = Window(start=NOW - timedelta(hours=2), end=NOW, is_backfill=False)


def sync(store, entity: str, bamboo, fb, run_id: str, window: Window = FULL) -> dict[str, int]:
    engine = SyncEngine(PAIR, PAIR.entity(entity), bamboo, fb, store, RunInfo("bamboohr_to_freshbooks", run_id, entity))
    counts: dict[str, int] = {}
    for batch in engine.extract(window):
        for outcome, n in engine.upsert(engine.match(batch)).counts.items():
            counts[outcome] = counts.get(outcome, 0) + n
    return counts


# ---------------------------------------------------------------------------------- reading


def test_a_window_reads_changed_employees_terminations_that_arrived_and_deleted_ones_with_named_fields():
    bamboo = FakeBambooHR(
        employee("13"), employee("14", terminationDate=TODAY.isoformat()), employee("15"), employee("16")
    )
    bamboo.changed = {"13": "Updated", "17": "Deleted"}
    records = list(read_employees(bamboo, SINCE))
    assert [r["id"] for r in records] == ["17", "13", "14"]
    assert records[0] == {"id": "17", "action": "Deleted"}
    assert set(records[1]) == {"id", *pair.EMPLOYEE_FIELDS}


def test_a_first_run_reads_every_employee():
    bamboo = FakeBambooHR(employee("13"), employee("14", status="Inactive"))
    assert [r["id"] for r in read_employees(bamboo, FULL)] == ["13", "14"]


# ---------------------------------------------------------------------------------- people through the engine


def test_new_hires_become_one_bill_vendor_each_and_a_rerun_writes_nothing(state_store):
    bamboo = FakeBambooHR(employee("13"), employee("14", firstName="Ethan", lastName="Park", workEmail="e@b.example"))
    fb = FakeFreshBooks()
    assert sync(state_store, "person", bamboo, fb, "r1") == {"created": 2}
    assert sorted(v["vendor_name"] for v in fb.vendors()) == ["Ethan Park", "Sofia Marchetti"]
    writes = len(fb.bill_vendors.writes)
    assert sync(state_store, "person", bamboo, fb, "r2") == {"unchanged": 2}
    assert len(fb.bill_vendors.writes) == writes


def test_new_hires_read_the_vendor_list_once_per_batch_not_once_per_person(state_store):
    hires = [employee(str(n), workEmail=f"hire{n}@b.example") for n in range(20, 30)]
    fb = FakeFreshBooks()
    assert sync(state_store, "person", FakeBambooHR(*hires), fb, "r1") == {"created": 10}
    assert fb.bill_vendors.listings == 1  # the batch index; creating 10 people lists nothing more


def test_a_person_the_expensify_pair_met_first_is_adopted_by_email_and_brought_up_to_date(state_store):
    fb = FakeFreshBooks()
    fb.bill_vendors.rows["6001"] = {
        "vendorid": "6001",
        "vendor_name": "Sofia Marchetti",
        "primary_contact_email": "sofia.marchetti@BRIGHTSIDE.example",
        "vis_state": 0,
    }
    assert sync(state_store, "person", FakeBambooHR(employee("13")), fb, "r1") == {"updated": 1}
    assert [v["vendorid"] for v in fb.vendors()] == ["6001"]  # no second vendor
    assert fb.bill_vendors.rows["6001"]["note"].endswith("Junior Designer, Creative")


def test_a_termination_soft_deletes_the_vendor_and_a_rehire_restores_it(state_store):
    bamboo, fb = FakeBambooHR(employee("13")), FakeFreshBooks()
    sync(state_store, "person", bamboo, fb, "r1")
    bamboo.employees["13"].update(status="Inactive", terminationDate=(TODAY - DAY).isoformat())
    assert sync(state_store, "person", bamboo, fb, "r2") == {"retired": 1}
    assert fb.vendors() == [] and len(fb.bill_vendors.rows) == 1  # vis_state 1, never a hard delete
    assert sync(state_store, "person", bamboo, fb, "r3") == {"unchanged": 1}
    bamboo.employees["13"].update(status="Active", hireDate=TODAY.isoformat())
    assert sync(state_store, "person", bamboo, fb, "r4") == {"updated": 1}
    assert [v["vendor_name"] for v in fb.vendors()] == ["Sofia Marchetti"]


def test_two_employees_with_one_email_dead_letter_the_second_and_everyone_else_is_synced(state_store):
    bamboo = FakeBambooHR(employee("13"), employee("16", firstName="Sofie"), employee("14", workEmail="e@b.example"))
    counts = sync(state_store, "person", bamboo, FakeFreshBooks(), "r1")
    assert counts == {"created": 2, "quarantined": 1}
    (letter,) = state_store.dead_letters.list(status="open", pair=PAIR.name)
    assert (letter.source_id, letter.error_kind) == ("16", "duplicate_natural_key")


def test_staff_links_by_email_and_the_employee_without_team_member_waits_until_added(state_store):
    bamboo = FakeBambooHR(employee("13"), employee("14", firstName="Ethan", workEmail="ethan@b.example"))
    fb = FakeFreshBooks()
    assert sync(state_store, "staff", bamboo, fb, "r1") == {"matched_existing": 1, "waiting": 1}
    fb.staff.rows["22"] = {"id": "22", "email": "Ethan@b.example", "vis_state": 0}
    bamboo.employees.clear()  # nothing changed in BambooHR: the waiting one is re-read by id
    bamboo.employees["14"] = employee("14", firstName="Ethan", workEmail="ethan@b.example")
    assert sync(state_store, "staff", bamboo, fb, "r2", SINCE) == {"matched_existing": 1}
    assert fb.invited == [] and fb.staff.writes == []


def test_retire_staff_soft_deletes_the_staff_record_and_a_rehire_restores_it(state_store, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_MLCONNECTOR_BAMBOOHR_TO_FRESHBOOKS", '{"retire_staff": "true"}')
    bamboo, fb = FakeBambooHR(employee("13")), FakeFreshBooks()
    sync(state_store, "staff", bamboo, fb, "r1")
    bamboo.employees["13"]["status"] = "Inactive"
    assert sync(state_store, "staff", bamboo, fb, "r2") == {"retired": 1}
    assert fb.staff.rows["21"]["vis_state"] == 1
    bamboo.employees["13"]["status"] = "Active"
    assert sync(state_store, "staff", bamboo, fb, "r3") == {"updated": 1}
    assert fb.staff.rows["21"]["vis_state"] == 0


def test_a_changed_department_tags_only_expenses_without_one(state_store, monkeypatch):
    bamboo, fb = FakeBambooHR(employee("13")), FakeFreshBooks()
    monkeypatch.setattr(pair, "freshbooks_of", lambda _: fb)
    fb.expenses.rows = {
        "1": {"id": "1", "staffid": "21", "notes": "Fonts", "vis_state": 0},
        "2": {"id": "2", "staffid": "21", "notes": "Lunch [dept: Sales]", "vis_state": 0},  # by hand
        "3": {"id": "3", "staffid": "99", "notes": "Someone else", "vis_state": 0},
    }
    assert sync(state_store, "expense", bamboo, fb, "r1") == {"created": 1}
    assert fb.expenses.rows["1"]["notes"] == "Fonts\n[dept: Creative]"
    bamboo.employees["13"]["department"] = "Media"
    fb.expenses.rows["4"] = {"id": "4", "staffid": "21", "notes": "", "vis_state": 0}
    assert sync(state_store, "expense", bamboo, fb, "r2") == {"created": 1}
    notes = {k: v["notes"] for k, v in fb.expenses.rows.items()}
    assert notes == {
        "1": "Fonts\n[dept: Creative]",
        "2": "Lunch [dept: Sales]",
        "3": "Someone else",
        "4": "[dept: Media]",
    }
    assert sync(state_store, "expense", bamboo, fb, "r3") == {}


def test_the_pair_is_registered_and_writes_nothing_back_to_bamboohr():
    from airflow_provider_mlconnector.pairs import PAIRS

    assert PAIRS["bamboohr_to_freshbooks"] is PAIR
    assert not any(entity.reverse for entity in PAIR.entities)


# ---------------------------------------------------------------------------------- against the sandbox (real HTTP)

from airflow_provider_mlconnector.sandbox.bamboohr import BambooHRSandbox  # noqa: E402
from airflow_provider_mlconnector.sandbox.freshbooks import FreshBooksSandbox  # noqa: E402

SANDBOX_SYSTEMS = [BambooHRSandbox, FreshBooksSandbox]


class FakeExpensify:
    conn_type = "expensify"
    tenant = "brightside-policy"


def test_a_person_both_pairs_meet_in_the_same_hour_gets_one_bill_vendor(state_store):
    # Expensify's plan finds no vendor for Sofia; BambooHR creates hers before Expensify writes.
    from airflow_provider_mlconnector.pairs import expensify_to_freshbooks

    fb = FakeFreshBooks()
    expensify = SyncEngine(
        expensify_to_freshbooks.PAIR,
        expensify_to_freshbooks.PAIR.entity("person"),
        FakeExpensify(),
        fb,
        state_store,
        RunInfo("expensify_to_freshbooks", "r1", "upsert_persons"),
    )
    sofia = "sofia.marchetti@brightside.example"
    planned = expensify.match([{"id": sofia, "email": "Sofia.Marchetti@brightside.example"}])
    assert [d.action for d in planned] == ["create"]
    assert sync(state_store, "person", FakeBambooHR(employee("13")), fb, "r1") == {"created": 1}
    assert dict(expensify.upsert(planned).counts) == {"matched_existing": 1}
    (vendor,) = fb.vendors()
    assert vendor["note"].endswith("Junior Designer, Creative")  # BambooHR's, not overwritten
    linked = state_store.id_map.get("expensify_to_freshbooks", "person", "brightside-policy", sofia)
    assert linked.target_id == vendor["vendorid"]


HR = "brightsidemarketing.com"


@pytest.fixture
def world(sandbox, use_connection, state_store, monkeypatch):
    """The demo story in a reset sandbox; real hooks on its connections; the expense entity's own hook too."""
    sandbox.control.reset()
    sandbox.control.seed_demo()
    connections = sandbox.control.connections()
    for system in ("bamboohr", "freshbooks"):
        use_connection(f"{system}_default", connections[system])
    from airflow_provider_mlconnector.hooks.bamboohr import BambooHRHook
    from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook

    bamboo, fb = BambooHRHook(state_store=state_store), FreshBooksHook(state_store=state_store)
    monkeypatch.setattr(pair, "freshbooks_of", lambda _: fb)
    return sandbox, bamboo, fb


def run_all(store, bamboo, fb, run_id: str, window: Window = FULL) -> dict[str, dict[str, int]]:
    return {entity.name: sync(store, entity.name, bamboo, fb, run_id, window) for entity in PAIR.entities}


def live_vendors(sandbox) -> dict[str, dict[str, Any]]:
    vendors = sandbox.control.state("freshbooks")["accounts"]["BRT4201"]["bill_vendors"]
    return {str(v["primary_contact_email"]).casefold(): v for v in vendors if v.get("primary_contact_email")}


def test_the_demo_story_syncs_people_links_staff_and_tags_only_untagged_expenses_then_a_rerun_writes_nothing(
    world, state_store
):
    sandbox, bamboo, fb = world
    counts = run_all(state_store, bamboo, fb, "r1")
    # 8 long-standing + 2 new hires; Jordan (Jamal's e-mail) and Noah (none) are dead letters; Lucas left before.
    assert counts["person"] == {"created": 10, "quarantined": 2, "skipped": 1}
    # the new hires wait for a team member; Noah has no e-mail, Lucas's staff is left alone; Jordan again
    assert counts["staff"] == {"matched_existing": 8, "waiting": 2, "skipped": 2, "quarantined": 1}
    assert counts["expense"] == {"created": 3}
    kinds = sorted((d.entity, d.source_id, d.error_kind) for d in state_store.dead_letters.list(status="open"))
    assert kinds == [
        ("person", "16", "missing_email"),
        ("person", "17", "duplicate_natural_key"),
        ("staff", "17", "duplicate_natural_key"),
    ]
    vendors = live_vendors(sandbox)
    assert vendors[f"sofia.marchetti@{HR}"]["note"].endswith("Junior Designer, Creative")
    assert f"lucas.fontaine@{HR}" not in vendors
    notes = {e["id"]: e["notes"] for e in sandbox.control.state("freshbooks")["accounts"]["BRT4201"]["expenses"]}
    assert notes[63901].endswith("\n[dept: Creative]") and notes[63903].endswith("\n[dept: Media]")
    assert notes[63902] == "Client dinner [dept: Sales]"  # set by hand: kept
    assert notes[63904].endswith("\n[dept: Creative]")  # Sofia's, found by the e-mail in its notes
    assert notes[64001] == "Client lunch, Summit Outdoor kickoff"  # Luis is not a BambooHR employee

    sandbox.control.clear_requests()
    again = run_all(state_store, bamboo, fb, "r2", SINCE)
    assert again == {"person": {}, "staff": {"waiting": 2}, "expense": {}}
    writes = [r for r in sandbox.control.requests() if r["method"] in ("POST", "PUT", "DELETE")]
    assert [r["path"] for r in writes if "reports/custom" not in r["path"]] == []


def test_a_termination_soft_deletes_the_vendor_and_a_rehire_restores_it_through_the_sandbox(world, state_store):
    sandbox, bamboo, fb = world
    run_all(state_store, bamboo, fb, "r1")
    backend = sandbox.sandbox.systems["bamboohr"]
    backend.terminate_employee("13", (TODAY - DAY).isoformat())
    assert sync(state_store, "person", bamboo, fb, "r2", SINCE) == {"retired": 1}
    vendor = live_vendors(sandbox)[f"sofia.marchetti@{HR}"]
    assert vendor["vis_state"] == 1  # soft-deleted, still there
    backend.rehire_employee("13", TODAY.isoformat())
    assert sync(state_store, "person", bamboo, fb, "r3", SINCE) == {"updated": 1}
    assert live_vendors(sandbox)[f"sofia.marchetti@{HR}"]["vis_state"] == 0
