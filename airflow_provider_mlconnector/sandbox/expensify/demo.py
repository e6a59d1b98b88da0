"""Demo data: the "Brightside Marketing" policy and its expense reports (October-November 2026).

Category GL codes are the FreshBooks ledger account numbers of the shared demo story (6010-6050),
except "Client Gifts", which has none: its expense cannot be mapped and must end in manual
reconciliation, never in a guessed account.

==============  ===================================  ==========  =====================================
report          name                                 state       why it is there
==============  ===================================  ==========  =====================================
R00A7kQ2mX1B    October Client Meetings              APPROVED    plain approved report, 3 expenses
R00B3nV8pL4C    Q4 Ad Spend Reimbursement            REIMBURSED  reimbursed reports are exported too
R00C9wE1rT6D    Freelance Illustrator Deposit        SUBMITTED   not approved: never exported
R00D2yU5iO8E    November Supplies                    OPEN        not submitted: never exported
R00E6tR3eW2F    Client Appreciation Gifts            APPROVED    one expense in "Client Gifts" (no GL)
R00F1qA9sD7G    TEST - Sandbox Sync Check            APPROVED    the test-report-prefix feature
R00G4hJ6kL0H    Toronto Pitch Trip                   APPROVED    a CAD expense converted to USD
R00H8cN2vB5J    Berlin Partner Workshop              APPROVED    a EUR report: never converted 1:1
R00J5mK7nQ3W    September Software Renewals          APPROVED    company card only: expenses, no bill
==============  ===================================  ==========  =====================================

Company card (non-reimbursable) expenses: Figma in R00A7kQ2mX1B, Canva in R00G4hJ6kL0H and both
September renewals; the Google Ads one is in "Digital Ads", whose GL code 6030 is the only link to
the FreshBooks "Advertising" category. The two September reports are older than the hook tests'
October anchor on purpose.

Two edits a mapper must honour: the Staples expense in R00A7kQ2mX1B was edited from 42.17 to
39.17 (``modifiedAmount`` 3917 wins over ``amount``) and the Meta expense in R00B3nV8pL4C was
renamed (``modifiedMerchant`` "Meta Ads" over the card descriptor). ``convertedAmount`` is always
the effective amount in the report currency, and the report ``total`` is their sum.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from airflow_provider_mlconnector.sandbox.expensify.backend import POLICY_ID, POLICY_NAME

#: The day the story is told: its dates are written as seen that day (tests run the sandbox clock
#: there) and shifted to the sandbox's today when seeded (see :func:`story_as_of`).
STORY_DAY = date(2026, 11, 21)
DOMAIN = "brightside-marketing.example"
MANAGER = f"nora.ellison@{DOMAIN}"

PEOPLE = [
    ("Nora", "Ellison", MANAGER, 18330001),
    ("Maya", "Okafor", f"maya.okafor@{DOMAIN}", 18330002),
    ("Theo", "Lindqvist", f"theo.lindqvist@{DOMAIN}", 18330003),
    ("June", "Park", f"june.park@{DOMAIN}", 18330004),
    ("Rafael", "Costa", f"rafael.costa@{DOMAIN}", 18330005),
    ("Harper", "Nguyen", f"harper.nguyen@{DOMAIN}", 18330006),
]


def demo_fixture() -> dict[str, Any]:
    """The Brightside Marketing Expensify account as a JSON fixture."""
    return {
        "people": [{"first": f, "last": la, "email": e, "account_id": a} for f, la, e, a in PEOPLE],
        "policies": [
            {
                "id": POLICY_ID,
                "name": POLICY_NAME,
                "owner": MANAGER,
                "role": "admin",
                "outputCurrency": "USD",
                "type": "corporate",
                "categories": [
                    _category("Contract Labor", "6010"),
                    _category("Software & Subscriptions", "6020"),
                    _category("Advertising", "6030"),
                    _category("Office Supplies", "6040"),
                    _category("Meals & Entertainment", "6050", comments=True),
                    _category("Client Gifts", ""),
                    _category("Digital Ads", "6030"),
                    _category("Entertainment (retired)", "6050", enabled=False),
                ],
                "tags": [
                    {
                        "name": "Client",
                        "tags": [
                            {"name": "Northwind Coffee", "enabled": True, "glCode": ""},
                            {"name": "Harbor Health", "enabled": True, "glCode": ""},
                            {"name": "Lumen Fitness", "enabled": True, "glCode": ""},
                        ],
                    },
                    {
                        "name": "Project",
                        "tags": [
                            {"name": "NWC Fall Launch 2026", "enabled": True, "glCode": "P-101"},
                            {"name": "Harbor Rebrand", "enabled": True, "glCode": "P-102"},
                            {"name": "Internal", "enabled": True, "glCode": "P-900"},
                        ],
                    },
                ],
                "reportFields": [
                    {"name": "Client PO", "type": "text", "values": []},
                ],
                "tax": {},
                "employees": [
                    {"email": e, "role": "admin" if e == MANAGER else "user", "submitsTo": MANAGER}
                    for _, _, e, _ in PEOPLE
                ],
            }
        ],
        "reports": [
            _report(
                "R00A7kQ2mX1B",
                "October Client Meetings",
                f"maya.okafor@{DOMAIN}",
                "APPROVED",
                created="2026-10-28 09:14:02",
                submitted="2026-10-30 17:45:10",
                approved="2026-11-03 10:02:55",
                expenses=[
                    _expense(
                        "4056343049275634494",
                        "Osteria Marco",
                        8640,
                        "2026-10-14",
                        "Meals & Entertainment",
                        tag="Northwind Coffee",
                        comment="Kick-off lunch with Northwind",
                        billable=True,
                        receipt="https://www.expensify.com/receipts/w_1a2b3c4d.jpg",
                    ),
                    _expense(
                        "4056343049275634495",
                        "Staples",
                        4217,
                        "2026-10-16",
                        "Office Supplies",
                        tag="Internal",
                        modified_amount=3917,
                        comment="Returned one toner cartridge",
                    ),
                    _expense(
                        "4056343049275634496",
                        "Figma",
                        4500,
                        "2026-10-20",
                        "Software & Subscriptions",
                        tag="Internal",
                        reimbursable=False,
                    ),
                ],
            ),
            _report(
                "R00B3nV8pL4C",
                "Q4 Ad Spend Reimbursement",
                f"june.park@{DOMAIN}",
                "REIMBURSED",
                created="2026-10-12 11:20:40",
                submitted="2026-10-13 08:05:12",
                approved="2026-10-20 15:30:00",
                reimbursed="2026-10-24 09:00:00",
                expenses=[
                    _expense(
                        "4056343049275634501",
                        "LinkedIn Ads",
                        35000,
                        "2026-10-05",
                        "Advertising",
                        tag="Harbor Rebrand",
                        billable=True,
                    ),
                    _expense(
                        "4056343049275634502",
                        "META*ADS 8812",
                        12999,
                        "2026-10-09",
                        "Advertising",
                        tag="Harbor Rebrand",
                        billable=True,
                        modified_merchant="Meta Ads",
                    ),
                ],
            ),
            _report(
                "R00C9wE1rT6D",
                "Freelance Illustrator Deposit",
                f"theo.lindqvist@{DOMAIN}",
                "SUBMITTED",
                created="2026-11-11 13:00:00",
                submitted="2026-11-11 13:05:00",
                expenses=[
                    _expense(
                        "4056343049275634510",
                        "Ines Duarte Illustration",
                        50000,
                        "2026-11-10",
                        "Contract Labor",
                        tag="Lumen Fitness",
                    ),
                ],
            ),
            _report(
                "R00D2yU5iO8E",
                "November Supplies",
                f"harper.nguyen@{DOMAIN}",
                "OPEN",
                created="2026-11-17 16:40:00",
                expenses=[
                    _expense("4056343049275634520", "Blick Art Materials", 2399, "2026-11-17", "Office Supplies")
                ],
            ),
            _report(
                "R00E6tR3eW2F",
                "Client Appreciation Gifts",
                f"theo.lindqvist@{DOMAIN}",
                "APPROVED",
                created="2026-11-06 10:10:10",
                submitted="2026-11-07 09:00:00",
                approved="2026-11-10 14:22:31",
                expenses=[
                    _expense(
                        "4056343049275634530",
                        "Harry & David",
                        18450,
                        "2026-11-05",
                        "Client Gifts",
                        tag="Harbor Health",
                        comment="Thank-you baskets after the Harbor launch",
                    ),
                    _expense(
                        "4056343049275634531",
                        "The Copper Pot",
                        6420,
                        "2026-11-05",
                        "Meals & Entertainment",
                        tag="Harbor Health",
                    ),
                ],
            ),
            _report(
                "R00F1qA9sD7G",
                "TEST - Sandbox Sync Check",
                f"rafael.costa@{DOMAIN}",
                "APPROVED",
                created="2026-11-12 08:00:00",
                submitted="2026-11-12 08:01:00",
                approved="2026-11-12 08:30:00",
                expenses=[
                    _expense(
                        "4056343049275634540",
                        "Test Merchant",
                        1234,
                        "2026-11-12",
                        "Office Supplies",
                        comment="Trial run of the FreshBooks sync",
                    ),
                ],
            ),
            _report(
                "R00G4hJ6kL0H",
                "Toronto Pitch Trip",
                f"maya.okafor@{DOMAIN}",
                "APPROVED",
                created="2026-11-13 19:05:44",
                submitted="2026-11-14 07:30:00",
                approved="2026-11-16 11:11:11",
                expenses=[
                    _expense(
                        "4056343049275634550",
                        "Pai Northern Thai Kitchen",
                        8450,
                        "2026-11-12",
                        "Meals & Entertainment",
                        currency="CAD",
                        converted=6160,
                        rate="0.7290",
                        tag="Lumen Fitness",
                        comment="Pitch dinner, 3 guests",
                        billable=True,
                    ),
                    _expense(
                        "4056343049275634551",
                        "Canva",
                        1499,
                        "2026-11-13",
                        "Software & Subscriptions",
                        tag="Internal",
                        reimbursable=False,
                    ),
                ],
            ),
            _report(
                "R00H8cN2vB5J",
                "Berlin Partner Workshop",
                f"june.park@{DOMAIN}",
                "APPROVED",
                currency="EUR",
                created="2026-09-21 09:30:00",
                submitted="2026-09-22 18:12:40",
                approved="2026-09-25 08:45:00",
                expenses=[
                    _expense(
                        "4056343049275634560",
                        "Hotel Oderberger",
                        31800,
                        "2026-09-18",
                        "Meals & Entertainment",
                        currency="EUR",
                        tag="Harbor Health",
                        comment="Workshop venue and lunch",
                    ),
                ],
            ),
            _report(
                "R00J5mK7nQ3W",
                "September Software Renewals",
                f"rafael.costa@{DOMAIN}",
                "APPROVED",
                created="2026-09-28 10:00:00",
                submitted="2026-09-29 09:15:00",
                approved="2026-09-30 16:40:00",
                expenses=[
                    _expense(
                        "4056343049275634570",
                        "Adobe Creative Cloud",
                        8999,
                        "2026-09-27",
                        "Software & Subscriptions",
                        tag="Internal",
                        reimbursable=False,
                    ),
                    _expense(
                        "4056343049275634571",
                        "Google Ads",
                        25000,
                        "2026-09-26",
                        "Digital Ads",
                        tag="NWC Fall Launch 2026",
                        reimbursable=False,
                    ),
                ],
            ),
        ],
    }


def _category(name: str, gl_code: str, *, enabled: bool = True, comments: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "enabled": enabled,
        "glCode": gl_code,
        "payrollCode": "",
        "areCommentsRequired": comments,
        "commentHint": "Who attended?" if comments else "",
        "maxExpenseAmount": 50000 if comments else None,
    }


def _report(
    report_id: str,
    name: str,
    email: str,
    state: str,
    *,
    created: str,
    expenses: list[dict[str, Any]],
    submitted: str = "",
    approved: str = "",
    reimbursed: str = "",
    currency: str = "USD",
) -> dict[str, Any]:
    account_id = next(a for _, _, e, a in PEOPLE if e == email)
    return {
        "reportID": report_id,
        "reportName": name,
        "policyID": POLICY_ID,
        "accountEmail": email,
        "accountID": account_id,
        "managerEmail": MANAGER if submitted else "",
        "state": state,
        "currency": currency,
        "created": created,
        "submitted": submitted,
        "approved": approved,
        "reimbursed": reimbursed,
        "expenses": expenses,
    }


def _expense(
    transaction_id: str,
    merchant: str,
    amount: int,
    created: str,
    category: str,
    *,
    currency: str = "USD",
    converted: int | None = None,
    rate: str = "1",
    tag: str = "",
    comment: str = "",
    billable: bool = False,
    receipt: str = "",
    modified_amount: int | None = None,
    modified_merchant: str = "",
    reimbursable: bool = True,
) -> dict[str, Any]:
    return {
        "transactionID": transaction_id,
        "merchant": merchant,
        "amount": amount,
        "created": created,
        "category": category,
        "currency": currency,
        "converted_amount": converted,
        "conversion_rate": rate,
        "tag": tag,
        "comment": comment,
        "billable": billable,
        "receipt_url": receipt,
        "modified_amount": modified_amount,
        "modified_merchant": modified_merchant,
        "reimbursable": reimbursable,
    }


def story_as_of(fixture: dict[str, Any], today: date) -> dict[str, Any]:
    """The fixture with every report and expense date moved by ``today - STORY_DAY``.

    The exporter only reaches a year back: a story pinned to calendar dates would fall out of it.
    """
    shift = today - STORY_DAY
    if not shift:
        return fixture
    for report in fixture.get("reports", []):
        for name in ("created", "submitted", "approved", "reimbursed"):
            report[name] = _shifted(report.get(name, ""), shift)
        for expense in report.get("expenses", []):
            expense["created"] = _shifted(expense["created"], shift)
    return fixture


def _shifted(stamp: str, shift: timedelta) -> str:
    if not stamp:
        return stamp
    if len(stamp) == 10:
        return (date.fromisoformat(stamp) + shift).isoformat()
    return (datetime.fromisoformat(stamp) + shift).strftime("%Y-%m-%d %H:%M:%S")
