"""bill_to_quickbooks in the pair conformance suite.

The demo story: sandbox/bill/demo.py (the BILL side) and sandbox/quickbooks/demo.py (the books).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mlconnector.sandbox.bill.demo import BRIGHTLINE_VENDOR_ID
from tests.e2e.pair_cases import PairCase

REALM = "9341453050001234"
PAIR = "bill_to_quickbooks"
SOFTWARE, CONTRACT_LABOR, AP = "59", "58", "33"


def realm(harness: Any) -> dict[str, Any]:
    state: dict[str, Any] = harness.control.state("quickbooks")[REALM]
    return state


def target_keys(harness: Any) -> dict[str, list[str]]:
    books = realm(harness)
    return {
        "vendor": [str(v["DisplayName"]) for v in books["Vendor"]],
        "purchase_order": [str(p.get("DocNumber")) for p in books["PurchaseOrder"]],
        "bill": [str(b.get("DocNumber")) for b in books["Bill"]],
    }


def malform(harness: Any) -> tuple[str, str]:
    # BILL answers the first bill of every listing (Adobe's ADB-2026-10) without its vendor id.
    harness.control.fault("bill", "corrupt_row", count=50, method="GET", path=r"^/connect/v3/bills$", field="vendorId")
    return "purchase_order", "ADB-2026-10"


def list_twice(harness: Any) -> tuple[str, str]:
    # The next vendor listing serves its first vendor (Adobe Inc.) twice, as a page that drifted would.
    harness.control.fault("bill", "page_drift", count=1, method="GET", path=r"^/connect/v3/vendors$")
    return "vendor", "Adobe Inc."


def rename_onto_sibling(harness: Any) -> tuple[str, str]:
    with harness.hook("bill") as bill:
        bill.vendors.update(BRIGHTLINE_VENDOR_ID, {"name": "Cloudline Hosting"})
    return "vendor", BRIGHTLINE_VENDOR_ID


def stream_goes_on(harness: Any) -> tuple[str, str]:
    address = {"line1": "18 Harbor Way", "city": "Portland", "stateOrProvince": "OR", "zipOrPostalCode": "97201"}
    with harness.hook("bill") as bill:
        bill.vendors.create(
            {"name": "Lumen Print Shop", "accountType": "BUSINESS", "address": {**address, "country": "US"}}
        )
    return "vendor", "Lumen Print Shop"


def check_story(harness: Any) -> None:
    """Vendors matched or created, POs with exact amounts on mapped accounts, paid ones closed, the dead letters."""
    books = realm(harness)
    vendors = {v["DisplayName"]: v for v in books["Vendor"]}
    assert [v["DisplayName"] for v in books["Vendor"]].count("Adobe Inc.") == 1  # matched, not duplicated
    assert vendors["Cloudline Hosting"]["BillAddr"]["Country"] == "USA"
    assert "Old Town Couriers" not in vendors  # archived in BILL, never synced: skipped
    assert (
        "Maple Print Co." not in vendors
        and [v["DisplayName"] for v in books["Vendor"]].count("Harbor Street Bakery") == 0
    )
    orders = {p["DocNumber"]: p for p in books["PurchaseOrder"]}
    hosting = orders["CLH-3301"]
    assert hosting["POStatus"] == "Open" and hosting["TotalAmt"] == 420.0
    assert (
        hosting["VendorRef"]["value"] == vendors["Cloudline Hosting"]["Id"] and hosting["APAccountRef"]["value"] == AP
    )
    assert [
        (line["Amount"], line["AccountBasedExpenseLineDetail"]["AccountRef"]["value"]) for line in hosting["Line"]
    ] == [(420.0, SOFTWARE)]
    assert hosting["PrivateNote"] == "BILL bill 00n02BRTSIDEBILclh01"
    assert orders["CLH-3302"]["POStatus"] == "Closed" and orders["ADB-2026-10"]["POStatus"] == "Closed"  # paid in BILL
    assert orders["ADB-2026-10"]["VendorRef"]["value"] == "56" and orders["ADB-2026-10"]["TotalAmt"] == 659.88
    (deposit,) = [p for p in books["PurchaseOrder"] if p["DocNumber"].startswith("BLE-2026-Q4-")]
    assert len(deposit["DocNumber"]) == 21 and "BLE-2026-Q4-OFFSITE-DEPOSIT" in deposit["PrivateNote"]
    assert deposit["Line"][0]["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] == CONTRACT_LABOR
    assert "BLE-0415" not in orders and "MPC-2207" not in orders
    letters = {(d.entity, d.error_kind): d for d in harness.store.dead_letters.list(status="open", pair=PAIR)}
    assert "6070 Team Offsite & Events" in letters[("purchase_order", "unmapped_account")].reason
    refused = [d.reason for (entity, kind), d in letters.items() if (entity, kind) == ("vendor", "validation")]
    assert refused, letters
    all_vendor_reasons = " ".join(
        d.reason for d in harness.store.dead_letters.list(status="open", pair=PAIR) if d.entity == "vendor"
    )
    assert "Customer 12 'Harbor Street Bakery'" in all_vendor_reasons and "CAD" in all_vendor_reasons
    parked = [(d.entity, d.error_kind) for d in harness.store.dead_letters.list(pair=PAIR) if d.active]
    assert ("purchase_order", "not_linked_yet") in parked  # Maple's bill waits for its vendor


CASE = PairCase(
    dag_id=PAIR,
    seed=lambda harness: harness.control.seed_demo(),
    target_keys=target_keys,
    story={
        "vendor": {"Cloudline Hosting", "Brightline Events", "Adobe Inc."},
        "purchase_order": {"CLH-3301", "CLH-3302", "ADB-2026-10", "BLE-2026-Q4-"},
    },
    creates=[
        # Every create goes in a batch (vendors, then purchase orders): both batch answers are dropped.
        ("quickbooks", "POST", r"/batch$"),
        ("quickbooks", "POST", r"/batch$"),
    ],
    empty=lambda harness: None,  # the reset sandbox: a connected company and organization, both empty
    malform=malform,
    list_twice=list_twice,
    rename_onto_sibling=rename_onto_sibling,
    stream_goes_on=stream_goes_on,
    check_story=check_story,
)
