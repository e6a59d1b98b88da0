"""bill_to_quickbooks through a real Airflow: what happens after the first run (the conformance suite covers it).

A BILL bill paid after it was synced closes its Purchase Order; a Purchase Order edited in
QuickBooks is reported as a dead letter and never overwritten.
"""

from __future__ import annotations

import pytest
import requests

from airflow_provider_mlconnector.sandbox.bill.demo import CLOUDLINE_BILL_IDS
from airflow_provider_mlconnector.sandbox.quickbooks.demo import REALM_ID

pytestmark = pytest.mark.e2e
PAIR = "bill_to_quickbooks"


def realm(harness) -> dict:
    return harness.control.state("quickbooks")[REALM_ID]


def test_a_paid_bill_closes_its_purchase_order_and_an_edit_in_quickbooks_is_reported(harness):
    harness.control.clear_requests()
    assert "summary" in harness.run_dag(PAIR)
    creates = harness.control.request_counts("quickbooks")
    # Vendors, then purchase orders, each in one batch call (up to 30 creates per call).
    assert creates.get("quickbooks POST /v3/company/{realm}/batch") == 2, creates
    assert "quickbooks POST /v3/company/{realm}/vendor" not in creates
    orders = {p["DocNumber"]: p for p in realm(harness)["PurchaseOrder"]}
    assert orders["CLH-3301"]["POStatus"] == "Open"

    paid = requests.post(
        f"{harness.sandbox.url}/bill/_sandbox/payments",
        json={"billId": CLOUDLINE_BILL_IDS[0], "amount": "420.00", "status": "CLEARED", "processDate": "2026-11-20"},
        timeout=10,
    )
    assert paid.status_code == 201, paid.text
    edited = orders["ADB-2026-10"]
    line = {**edited["Line"][0], "Amount": 700.0}
    with harness.hook("quickbooks") as qb:
        qb.purchase_orders.update(edited["Id"], {"Line": [line]})
    harness.control.clear_requests()

    assert "summary" in harness.run_dag(PAIR)
    orders = {p["DocNumber"]: p for p in realm(harness)["PurchaseOrder"]}
    assert orders["CLH-3301"]["POStatus"] == "Closed"  # paid in BILL
    assert orders["ADB-2026-10"]["TotalAmt"] == 700.0  # the QuickBooks edit is left as it is
    letters = [
        d
        for d in harness.store.dead_letters.list(status="open", pair=PAIR)
        if d.source_id == f"PurchaseOrder/{edited['Id']}"
    ]
    assert [d.error_kind for d in letters] == ["edited_in_quickbooks"]
    assert "TotalAmt is 700.00, BILL says 659.88" in letters[0].reason
    writes = [r for r in harness.control.requests("quickbooks") if r["method"] == "POST" and "query" not in r["route"]]
    assert [r["route"] for r in writes] == ["/v3/company/{realm}/purchaseorder"]  # closing CLH-3301, nothing else
