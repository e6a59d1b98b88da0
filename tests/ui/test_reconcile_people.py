"""bamboohr_to_freshbooks' reconciliation over real HTTP to the sandbox: an employee and the bill
vendor they became, then the vendor edited (or deleted) in FreshBooks behind the integration's back."""

from __future__ import annotations

import pytest

from airflow_provider_mlconnector.hooks.bamboohr import BambooHRHook
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook
from airflow_provider_mlconnector.operators.reconcile import reconcile
from airflow_provider_mlconnector.pairs import people
from airflow_provider_mlconnector.pairs.bamboohr_to_freshbooks import EMPLOYEE_FIELDS, PAIR
from airflow_provider_mlconnector.sandbox.bamboohr import BambooHRSandbox
from airflow_provider_mlconnector.sandbox.freshbooks import FreshBooksSandbox

SANDBOX_SYSTEMS = [BambooHRSandbox, FreshBooksSandbox]


@pytest.fixture
def hooks(sandbox_hooks):
    return sandbox_hooks(BambooHRHook, FreshBooksHook)


def _synced_person(bamboo: BambooHRHook, fb: FreshBooksHook, store) -> tuple[dict, dict]:
    employee = next(
        e
        for e in bamboo.iter_employees(EMPLOYEE_FIELDS)
        if e.get("workEmail") and not e.get("terminationDate", "").strip("0-")
    )
    payload = people.person_vendor_payload(
        employee["workEmail"], first_name=employee["firstName"], last_name=employee["lastName"]
    )
    vendor = fb.bill_vendors.create(payload)
    vendor_id = people.vendor_id(vendor)
    store.id_map.record(PAIR.name, "person", bamboo.tenant, str(employee["id"]), fb.tenant, vendor_id, "k", "fp")
    return employee, vendor


def test_a_person_vendor_given_another_email_or_deleted_in_freshbooks_is_drift(hooks, state_store):
    bamboo, fb = hooks
    employee, vendor = _synced_person(bamboo, fb, state_store)
    (persons,) = [e for e in reconcile(PAIR, bamboo, fb, state_store).entities if e.entity == "person"]
    assert (persons.checked, persons.drift) == (1, [])

    vendor_id = people.vendor_id(vendor)
    fb.bill_vendors.update(vendor_id, {"primary_contact_email": "someone.else@example.com"})
    (drift,) = reconcile(PAIR, bamboo, fb, state_store).drift
    assert drift.problems == [f"e-mail differs: BambooHR {employee['workEmail']}, FreshBooks someone.else@example.com"]

    fb.bill_vendors.update(vendor_id, {"primary_contact_email": employee["workEmail"]})
    fb.bill_vendors.delete(vendor_id)
    (drift,) = reconcile(PAIR, bamboo, fb, state_store).drift
    assert drift.problems == ["works here in BambooHR, but the bill vendor is deleted or archived in FreshBooks"]
