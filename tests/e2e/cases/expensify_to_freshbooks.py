"""expensify_to_freshbooks in the pair conformance suite (the story: sandbox/expensify/demo.py).

Expensify serves an export in two calls (the ``file`` job answers a file name, the ``download``
the list of reports), so a list fault covers both calls: the download is the list it rewrites.
Reports seeded here are dated relative to now (the demo story moves with the sandbox clock too).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_mlconnector.sandbox.expensify.demo import demo_fixture, story_as_of
from tests.e2e.pair_cases import PairCase

FB_ACCOUNT = "BRT4201"
POLICY_ID = "B2A5D0E6F1C34A97"
LABEL = "ml-connector"
MAYA = "maya.okafor@brightside-marketing.example"
FIGMA, CANVA = "4056343049275634496", "4056343049275634551"
TRANSACTION = re.compile(r"^Expensify report \S+ \(.*\) / transaction (\S+)")


def target_keys(harness: Any) -> dict[str, list[str]]:
    fb = harness.control.state("freshbooks")["accounts"][FB_ACCOUNT]
    reports = harness.control.state("expensify")["reports"]
    return {
        "person": [
            str(v["primary_contact_email"]).casefold()
            for v in fb["bill_vendors"]
            if v.get("vis_state", 0) != 1 and v.get("primary_contact_email")
        ],
        "bill": [
            str(b["bill_number"])
            for b in fb["bills"]
            if str(b.get("overall_description") or "").startswith("Expensify report")
        ],
        "expense": [m.group(1) for e in fb["expenses"] if (m := TRANSACTION.match(str(e.get("notes") or "")))],
        "payment": [str(p["note"]) for p in fb["bill_payments"] if "Reimbursed in Expensify" in str(p.get("note"))],
        "label": [rid for rid, report in reports.items() if LABEL in report["labels"]],
    }


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _report(report_id: str, name: str, days_ago: int, *expenses: dict[str, Any], **fields: Any) -> dict[str, Any]:
    moment = datetime.now(timezone.utc) - timedelta(days=days_ago)
    return {
        "reportID": report_id,
        "reportName": name,
        "policyID": POLICY_ID,
        "accountEmail": MAYA,
        "accountID": 18330002,
        "state": "APPROVED",
        "currency": "USD",
        "created": _stamp(moment),
        "submitted": _stamp(moment + timedelta(hours=1)),
        "approved": _stamp(moment + timedelta(hours=2)),
        "expenses": list(expenses),
        **fields,
    }


def _expense(transaction_id: str, merchant: str, cents: int, days_ago: int, **fields: Any) -> dict[str, Any]:
    spent = (datetime.now(timezone.utc) - timedelta(days=days_ago)).date().isoformat()
    return {"transactionID": transaction_id, "merchant": merchant, "amount": cents, "created": spent, **fields}


def malform(harness: Any) -> tuple[str, str]:
    # An approved report without its approval date, the first of the export; the download also
    # serves its first report without the field.
    bad = _report(
        "R00Z0MALF0RM",
        "Approved, date lost",
        100,
        _expense("4056343049275639001", "Staples", 2150, 101, category="Office Supplies"),
        approved="",
    )
    harness.control.seed({"expensify": {"reports": [bad]}})
    harness.control.fault("expensify", "corrupt_row", count=4, method="POST", field="approved")
    return "bill", "R00Z0MALF0RM"


def list_twice(harness: Any) -> tuple[str, str]:
    # The export's first report twice, as a listing that drifted; its employee is Maya.
    harness.control.fault("expensify", "page_drift", count=4, method="POST")
    return "person", MAYA


def _demo_report(report_id: str) -> dict[str, Any]:
    story = story_as_of(demo_fixture(), datetime.now(timezone.utc).date())
    return next(r for r in story["reports"] if r["reportID"] == report_id)


def rename_onto_sibling(harness: Any) -> tuple[str, str]:
    # Toronto's Canva charge re-appears under the Figma charge's transaction id (already booked).
    toronto = _demo_report("R00G4hJ6kL0H")
    canva = next(e for e in toronto["expenses"] if e["transactionID"] == CANVA)
    canva["transactionID"] = FIGMA
    harness.control.seed({"expensify": {"reports": [toronto]}})
    return "expense", f"R00G4hJ6kL0H/{FIGMA}"


def stream_goes_on(harness: Any) -> tuple[str, str]:
    fresh = _report(
        "R00K2pX4cV9N",
        "December Tools",
        0,
        _expense("4056343049275639101", "Notion", 1000, 0, category="Software & Subscriptions", reimbursable=False),
    )
    harness.control.seed({"expensify": {"reports": [fresh]}})
    return "expense", "4056343049275639101"


CASE = PairCase(
    dag_id="expensify_to_freshbooks",
    seed=lambda harness: harness.control.seed_demo(),
    target_keys=target_keys,
    story={
        "person": {MAYA, "june.park@brightside-marketing.example", "rafael.costa@brightside-marketing.example"},
        "bill": {"R00A7kQ2mX1B", "R00B3nV8pL4C", "R00F1qA9sD7G", "R00G4hJ6kL0H"},
        "expense": {FIGMA, CANVA, "4056343049275634570", "4056343049275634571"},
        "payment": {"Reimbursed in Expensify: report R00B3nV8pL4C"},
        "label": {"R00A7kQ2mX1B", "R00B3nV8pL4C", "R00F1qA9sD7G", "R00G4hJ6kL0H", "R00J5mK7nQ3W"},
    },
    creates=[
        ("freshbooks", "POST", r"/bill_vendors/bill_vendors$"),
        ("freshbooks", "POST", r"/bills/bills$"),
        ("freshbooks", "POST", r"/expenses/expenses$"),
        ("freshbooks", "POST", r"/bill_payments/bill_payments$"),
    ],
    empty=lambda harness: None,  # the reset sandbox: connected accounts with nothing in them
    malform=malform,
    list_twice=list_twice,
    rename_onto_sibling=rename_onto_sibling,
    stream_goes_on=stream_goes_on,
    # Every Expensify job is a POST; the exports read. (The export label is a write we accept here:
    # it is never applied in a dry run, nor on a rerun with nothing new.)
    read_posts=("expensify POST /Integration-Server/ExpensifyIntegrations",),
)
