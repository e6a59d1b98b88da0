"""freshbooks_to_bill in the pair conformance suite (the demo story: see sandbox/freshbooks/demo.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.e2e.pair_cases import PairCase

ORG = "00802BRTSIDEMKT0001A"
FB_ACCOUNT = "BRT4201"
GOOGLE_VENDOR = 5104


def target_keys(harness: Any) -> dict[str, list[str]]:
    org = harness.control.state("bill")["organizations"][ORG]
    fb = harness.control.state("freshbooks")["accounts"][FB_ACCOUNT]
    return {
        "vendor": [str(v["name"]).casefold() for v in org["vendors"] if not v.get("archived")],
        "bill": [str(b["invoice"]["invoiceNumber"]) for b in org["bills"]],
        "payment": [str(p.get("note")) for p in fb["bill_payments"] if "BILL payment" in str(p.get("note"))],
    }


def _vendors(fb: Any) -> Any:
    return getattr(fb, "bill_vendors", None)


def update_vendor(harness: Any, vendor_id: int, changes: dict[str, Any]) -> None:
    with harness.hook("freshbooks") as fb:
        resource = _vendors(fb)
        if resource is not None and hasattr(resource, "update"):
            resource.update(vendor_id, changes)
        else:
            fb.update_bill_vendor(vendor_id, changes)


def create_vendor(harness: Any, vendor: dict[str, Any]) -> None:
    with harness.hook("freshbooks") as fb:
        resource = _vendors(fb)
        if resource is not None and hasattr(resource, "create"):
            resource.create(vendor)
        else:
            fb.create_bill_vendor(vendor)


def malform(harness: Any) -> tuple[str, str]:
    # FreshBooks answers the first bill of every listing without its issue date (until faults clear).
    control = harness.control
    control.fault("freshbooks", "corrupt_row", count=50, method="GET", path=r"/bills/bills$", field="issue_date")
    return "bill", "PFS-1041"


def list_twice(harness: Any) -> tuple[str, str]:
    # The next vendor listing serves its first vendor twice, as a page that drifted would.
    harness.control.fault("freshbooks", "page_drift", count=1, method="GET", path=r"/bill_vendors/bill_vendors$")
    return "vendor", "pixel forge studio"


def rename_onto_sibling(harness: Any) -> tuple[str, str]:
    update_vendor(harness, GOOGLE_VENDOR, {"vendor_name": "Pixel Forge Studio"})
    return "vendor", str(GOOGLE_VENDOR)


def stream_goes_on(harness: Any) -> tuple[str, str]:
    create_vendor(
        harness,
        {
            "vendor_name": "Lumen Print Shop",
            "primary_contact_email": "orders@lumenprint.example",
            "street": "18 Harbor Way",
            "city": "Portland",
            "province": "Oregon",
            "postal_code": "97201",
            "country": "United States",
            "currency_code": "USD",
            "language": "en",
        },
    )
    return "vendor", "lumen print shop"


def check_story(harness: Any) -> None:
    """The demo story's particulars: Adobe matched by name, ISO countries, GL lines, the one dead letter."""
    org = harness.control.state("bill")["organizations"][ORG]
    names = [v["name"] for v in org["vendors"]]
    assert names.count("Adobe Inc.") == 1  # matched by name, not duplicated
    meta = next(v for v in org["vendors"] if v["name"] == "Meta Platforms Ireland Ltd")
    assert meta["address"]["country"] == "IE"
    bills = {b["invoice"]["invoiceNumber"]: b for b in org["bills"]}
    assert "NCC-778" not in bills  # unmapped meals account: dead-lettered, never guessed
    assert "PFS-1039" not in bills  # archived in FreshBooks and never synced
    accounts = {a["id"]: a["name"] for a in org["chart_of_accounts"]}
    lines = {
        (Decimal(str(li["amount"])), accounts[li["classifications"]["chartOfAccountId"]])
        for li in bills["GADS-5521"]["billLineItems"]
    }
    assert lines == {(Decimal("1250.00"), "Advertising & Promotion"), (Decimal("84.99"), "Office Supplies")}
    assert Decimal(str(bills["PFS-1041"]["amount"])) == Decimal("2750.00")
    letters = harness.store.dead_letters.list(status="open", pair="freshbooks_to_bill")
    assert [(d.entity, d.error_kind) for d in letters] == [("bill", "unmapped_account")]
    assert "Meals & Entertainment" in letters[0].reason
    # BILL's cleared Adobe payment is written back against the original FreshBooks bill.
    fb = harness.control.state("freshbooks")["accounts"][FB_ACCOUNT]
    adobe = next(b for b in fb["bills"] if b["bill_number"] == "ADB-2026-10")
    payments = [p for p in fb["bill_payments"] if str(p["billid"]) == str(adobe["id"])]
    assert len(payments) == 1 and payments[0]["amount"] == {"amount": "659.88", "code": "USD"}
    assert adobe["status"] == "paid"


CASE = PairCase(
    dag_id="freshbooks_to_bill",
    seed=lambda harness: harness.control.seed_demo(),
    target_keys=target_keys,
    story={
        "vendor": {"pixel forge studio", "meta platforms ireland ltd", "google llc", "northside catering co."},
        "bill": {"PFS-1041", "PFS-1042", "ADB-2026-11", "META-88213", "GADS-5521"},
        "payment": {"BILL payment"},  # prefix: the Adobe payment's note
    },
    creates=[
        ("bill", "POST", r"^/connect/v3/vendors(/bulk)?$"),
        ("bill", "POST", r"^/connect/v3/bills(/bulk)?$"),
        ("freshbooks", "POST", r"/bill_payments/bill_payments$"),
    ],
    empty=lambda harness: None,  # the reset sandbox: connected accounts with nothing in them
    malform=malform,
    list_twice=list_twice,
    rename_onto_sibling=rename_onto_sibling,
    stream_goes_on=stream_goes_on,
    check_story=check_story,
)
