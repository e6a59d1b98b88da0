"""FreshBooks bill vendor -> BILL vendor payloads: BILL requires a mailing address (dossier: create
vendor, ``address`` object required), so a vendor without one is settled before any BILL call."""

from __future__ import annotations

import pytest

from airflow_provider_mlconnector.exceptions import MappingError
from airflow_provider_mlconnector.operators.pair import Ctx, Skip
from airflow_provider_mlconnector.pairs import people
from airflow_provider_mlconnector.pairs.freshbooks_to_bill import vendor_payload

CTX = Ctx(None, None, None, False, {})
ADDRESS = {
    "street": "1 Main St",
    "city": "Austin",
    "province": "TX",
    "postal_code": "78701",
    "country": "United States",
}


def vendor(**fields: object) -> dict[str, object]:
    return {"vendorid": 6100, "vendor_name": "Acme Print", "vis_state": 0, **fields}


def test_a_vendor_with_an_address_becomes_a_bill_vendor_with_it():
    payload = vendor_payload(vendor(**ADDRESS), CTX)
    assert isinstance(payload, dict)
    assert payload["address"] == {
        "line1": "1 Main St", "city": "Austin", "stateOrProvince": "TX", "zipOrPostalCode": "78701", "country": "US",
    }  # fmt: skip


def test_a_supplier_without_an_address_is_a_validation_letter_naming_the_fix():
    with pytest.raises(MappingError) as caught:
        vendor_payload(vendor(), CTX)
    assert caught.value.kind == "validation"
    assert "address" in str(caught.value) and "FreshBooks" in str(caught.value)


def test_an_employee_kept_by_ml_connector_without_an_address_is_skipped_with_the_reason():
    employee = vendor(vendor_name="Jamal Reed", primary_contact_email="jamal@example.com", note=people.PERSON_NOTE)
    outcome = vendor_payload(employee, CTX)
    assert isinstance(outcome, Skip) and "address" in outcome.reason
    # BambooHR adds the job title to the note
    with_role = {**employee, "note": f"{people.PERSON_NOTE} - Designer"}
    assert isinstance(vendor_payload(with_role, CTX), Skip)
