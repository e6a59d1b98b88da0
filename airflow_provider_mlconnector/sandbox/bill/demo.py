"""The sandbox identity and the demo story's BILL side (Brightside Marketing).

BILL already holds what the AP clerk typed in by hand: the chart of accounts (no meals account on
purpose: FreshBooks bill NCC-778 must dead-letter as unmapped), vendor "Adobe Inc." with bill
ADB-2026-10 and its cleared payment (the sync must match both, not duplicate them, and write the
payment back to FreshBooks), and vendor "Cloudline Hosting" with two bills for the BILL ->
QuickBooks story. That story's unglamorous cases live in vendors no other pair touches: Brightline
Events (a bill on "6070 Team Offsite & Events", which QuickBooks' chart lacks, and one with a
27-character invoice number), Maple Print Co. (bills in CAD), Harbor Street Bakery (a QuickBooks
customer's name) and Old Town Couriers (archived, never synced). Amounts are strings here so the
fixture is exact; the backend keeps Decimals.
"""

from __future__ import annotations

from typing import Any

# The sandbox identity (login works right after a reset; these are not real credentials).
SANDBOX_USERNAME = "ap@brightside-marketing.example"
SANDBOX_PASSWORD = "bill-sandbox-password-7Qx2"
SANDBOX_DEV_KEY = "01BRTSIDESANDBOXDEVKEY5c1f0e9a"
SANDBOX_ORGANIZATION_ID = "00802BRTSIDEMKT0001A"
SANDBOX_ORGANIZATION_NAME = "Brightside Marketing"
SANDBOX_USER_ID = "00602BRTSIDEUSRapmgr"
SANDBOX_BANK_ACCOUNT_ID = "bac02BRTSIDEBACopchk"

#: chart of accounts: number -> (id, name, type)
ACCOUNTS: dict[str, tuple[str, str, str]] = {
    "1000": ("0ca02BRTSIDECOA1000a", "Operating Checking", "BANK"),
    "6010": ("0ca02BRTSIDECOA6010a", "Contract Labor", "EXPENSE"),
    "6020": ("0ca02BRTSIDECOA6020a", "Software & Subscriptions", "EXPENSE"),
    "6030": ("0ca02BRTSIDECOA6030a", "Advertising & Promotion", "EXPENSE"),
    "6040": ("0ca02BRTSIDECOA6040a", "Office Supplies", "EXPENSE"),
    # BILL-only: QuickBooks' chart has no such account, so BILL -> QuickBooks dead-letters its bill.
    "6070": ("0ca02BRTSIDECOA6070a", "Team Offsite & Events", "EXPENSE"),
}
ADOBE_VENDOR_ID = "00902BRTSIDEVENadob1"
CLOUDLINE_VENDOR_ID = "00902BRTSIDEVENclou1"
ADOBE_BILL_ID = "00n02BRTSIDEBILadb10"
CLOUDLINE_BILL_IDS = ("00n02BRTSIDEBILclh01", "00n02BRTSIDEBILclh02")
ADOBE_PAYMENT_ID = "stp02BRTSIDEPAYadb10"
CLOUDLINE_PAYMENT_ID = "stp02BRTSIDEPAYclh02"
# The BILL -> QuickBooks story's unglamorous cases (vendors no other pair touches).
BRIGHTLINE_VENDOR_ID = "00902BRTSIDEVENbrle1"
MAPLE_VENDOR_ID = "00902BRTSIDEVENmapl1"
HARBOR_VENDOR_ID = "00902BRTSIDEVENharb1"
OLDTOWN_VENDOR_ID = "00902BRTSIDEVENoldt1"
BRIGHTLINE_BILL_IDS = ("00n02BRTSIDEBILble01", "00n02BRTSIDEBILble02")
MAPLE_BILL_ID = "00n02BRTSIDEBILmpc01"


def _bill(
    bill_id: str,
    vendor_id: str,
    number: str,
    invoice_date: str,
    due: str,
    amount: str,
    text: str,
    created: str,
    account: str = "6020",
) -> dict[str, Any]:
    return {
        "id": bill_id,
        "vendorId": vendor_id,
        "invoice": {"invoiceNumber": number, "invoiceDate": invoice_date},
        "dueDate": due,
        "description": text,
        "billLineItems": [
            {"amount": amount, "description": text, "classifications": {"chartOfAccountId": ACCOUNTS[account][0]}}
        ],
        "createdTime": created,
    }


def demo_fixture() -> dict[str, Any]:
    """The demo story (see /work/notes/demo-story.md); ids are stable so other systems can refer to them."""
    return {
        "chart_of_accounts": [
            {
                "id": account_id,
                "accountNumber": number,
                "name": name,
                "accountType": kind,
                "createdTime": "2026-01-05T15:00:00.000+00:00",
            }
            for number, (account_id, name, kind) in ACCOUNTS.items()
        ],
        "vendors": [
            {
                "id": ADOBE_VENDOR_ID,
                "name": "Adobe Inc.",
                "accountType": "BUSINESS",
                "email": "billing@adobe.example",
                "phone": "4085366000",
                "address": {
                    "line1": "345 Park Avenue",
                    "city": "San Jose",
                    "stateOrProvince": "CA",
                    "zipOrPostalCode": "95110",
                    "country": "US",
                },
                "billCurrency": "USD",
                "createdTime": "2026-03-02T17:21:09.412+00:00",
            },
            {
                "id": CLOUDLINE_VENDOR_ID,
                "name": "Cloudline Hosting",
                "accountType": "BUSINESS",
                "email": "invoices@cloudline.example",
                "address": {
                    "line1": "500 NW Harbor Blvd, Suite 400",
                    "city": "Portland",
                    "stateOrProvince": "OR",
                    "zipOrPostalCode": "97209",
                    "country": "US",
                },
                "billCurrency": "USD",
                "createdTime": "2026-04-14T16:02:44.118+00:00",
            },
            *_quickbooks_story_vendors(),
        ],
        "bills": [
            _bill(
                ADOBE_BILL_ID,
                ADOBE_VENDOR_ID,
                "ADB-2026-10",
                "2026-10-01",
                "2026-10-31",
                "659.88",
                "Creative Cloud for teams - October 2026",
                "2026-10-02T14:11:37.250+00:00",
            ),
            _bill(
                CLOUDLINE_BILL_IDS[0],
                CLOUDLINE_VENDOR_ID,
                "CLH-3301",
                "2026-10-15",
                "2026-11-14",
                "420.00",
                "Managed hosting - October 2026",
                "2026-10-16T09:45:12.004+00:00",
            ),
            _bill(
                CLOUDLINE_BILL_IDS[1],
                CLOUDLINE_VENDOR_ID,
                "CLH-3302",
                "2026-11-01",
                "2026-12-01",
                "420.00",
                "Managed hosting - November 2026",
                "2026-11-02T10:03:55.731+00:00",
            ),
            *_quickbooks_story_bills(),
        ],
        "payments": [
            {
                "id": ADOBE_PAYMENT_ID,
                "billPaymentId": "blp02BRTSIDEBLPadb10",
                "billId": ADOBE_BILL_ID,
                "amount": "659.88",
                "status": "CLEARED",
                "processDate": "2026-10-27",
                "createdTime": "2026-10-24T18:30:00.000+00:00",
                "updatedTime": "2026-10-29T12:00:00.000+00:00",
            },
            {
                "id": CLOUDLINE_PAYMENT_ID,
                "billPaymentId": "blp02BRTSIDEBLPclh02",
                "billId": CLOUDLINE_BILL_IDS[1],
                "amount": "420.00",
                "status": "CLEARED",
                "processDate": "2026-11-16",
                "createdTime": "2026-11-13T16:05:00.000+00:00",
                "updatedTime": "2026-11-18T12:00:00.000+00:00",
            },
        ],
    }


def _address(line1: str, city: str, region: str, postal: str, country: str) -> dict[str, str]:
    return {"line1": line1, "city": city, "stateOrProvince": region, "zipOrPostalCode": postal, "country": country}


def _quickbooks_story_vendors() -> list[dict[str, Any]]:
    """Brightline (one bill unmappable in QuickBooks, one with a 27-character invoice number),
    Maple Print (bills in CAD: QuickBooks without multicurrency refuses it), Harbor Street Bakery
    (QuickBooks already has a customer of that name: 6240) and Old Town Couriers (archived, never
    synced: skipped)."""
    return [
        {
            "id": BRIGHTLINE_VENDOR_ID,
            "name": "Brightline Events",
            "accountType": "BUSINESS",
            "email": "accounts@brightline-events.example",
            "phone": "4155550187",
            "accountNumber": "BRT-EV-204",
            "address": _address("88 King Street", "San Francisco", "CA", "94107", "US"),
            "billCurrency": "USD",
            "createdTime": "2026-09-03T15:10:00.000+00:00",
        },
        {
            "id": MAPLE_VENDOR_ID,
            "name": "Maple Print Co.",
            "accountType": "BUSINESS",
            "email": "billing@mapleprint.example",
            "address": _address("220 Queen Street West", "Toronto", "ON", "M5V 1Z6", "CA"),
            "billCurrency": "CAD",
            "createdTime": "2026-09-10T13:00:00.000+00:00",
        },
        {
            "id": HARBOR_VENDOR_ID,
            "name": "Harbor Street Bakery",
            "accountType": "BUSINESS",
            "address": _address("14 Harbor Street", "Sausalito", "CA", "94965", "US"),
            "billCurrency": "USD",
            "createdTime": "2026-09-12T09:30:00.000+00:00",
        },
        {
            "id": OLDTOWN_VENDOR_ID,
            "name": "Old Town Couriers",
            "accountType": "BUSINESS",
            "address": _address("9 Mission Street", "San Francisco", "CA", "94105", "US"),
            "archived": True,
            "createdTime": "2026-09-20T09:00:00.000+00:00",
        },
    ]


def _quickbooks_story_bills() -> list[dict[str, Any]]:
    return [
        _bill(
            BRIGHTLINE_BILL_IDS[0],
            BRIGHTLINE_VENDOR_ID,
            "BLE-0415",
            "2026-10-20",
            "2026-11-19",
            "1850.00",
            "Team offsite venue - October 2026",
            "2026-10-21T10:00:00.000+00:00",
            account="6070",
        ),
        _bill(
            BRIGHTLINE_BILL_IDS[1],
            BRIGHTLINE_VENDOR_ID,
            "BLE-2026-Q4-OFFSITE-DEPOSIT",
            "2026-11-05",
            "2026-12-05",
            "500.00",
            "Q4 offsite deposit",
            "2026-11-06T10:00:00.000+00:00",
            account="6010",
        ),
        _bill(
            MAPLE_BILL_ID,
            MAPLE_VENDOR_ID,
            "MPC-2207",
            "2026-10-28",
            "2026-11-27",
            "312.40",
            "Event signage print run",
            "2026-10-29T11:00:00.000+00:00",
            account="6030",
        ),
    ]
