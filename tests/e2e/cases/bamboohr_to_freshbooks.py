"""bamboohr_to_freshbooks in the pair conformance suite (the demo story: sandbox/bamboohr/demo.py and the
``HR_*`` records of sandbox/freshbooks/demo.py)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from tests.e2e.pair_cases import PairCase

FB_ACCOUNT = "BRT4201"
DOMAIN = "brightsidemarketing.com"
MARKER = re.compile(r"\[\s*dept\s*:", re.IGNORECASE)


def target_keys(harness: Any) -> dict[str, list[str]]:
    fb = harness.control.state("freshbooks")["accounts"][FB_ACCOUNT]
    return {
        # One item per active bill vendor with a contact e-mail: a person twice shows as a repeat.
        "person": [
            str(v["primary_contact_email"]).strip().casefold()
            for v in fb["bill_vendors"]
            if v.get("primary_contact_email") and v.get("vis_state", 0) != 1
        ],
        # One item per department marker: an expense tagged twice shows as a repeat.
        "expense": [f"notes:{e['id']}" for e in fb["expenses"] for _ in MARKER.findall(str(e.get("notes") or ""))],
    }


def change_employee(harness: Any, employee_id: str, values: dict[str, Any]) -> None:
    """What an HR admin does in BambooHR (the sandbox's update endpoint; the pair never writes there)."""
    with harness.hook("bamboohr") as bamboo:
        bamboo.client.send_json("POST", f"employees/{employee_id}", json=values)


def malform(harness: Any) -> tuple[str, str]:
    # Every FreshBooks expense listing of the next runs serves its first expense (Marcus's stock
    # photos, 63901) without its id: both concurrent runs must dead-letter it and tag the others.
    harness.control.fault("freshbooks", "corrupt_row", count=25, method="GET", path=r"/expenses/expenses$", field="id")
    return "expense", "notes:63901"


def list_twice(harness: Any) -> tuple[str, str]:
    # The next BambooHR custom report (the first run's full read) lists its first employee twice.
    harness.control.fault("bamboohr", "page_drift", count=1, method="POST", path=r"/reports/custom$")
    return "person", f"dana.whitfield@{DOMAIN}"


def rename_onto_sibling(harness: Any) -> tuple[str, str]:
    change_employee(harness, "5", {"workEmail": f"priya.raman@{DOMAIN}"})  # Marcus gets Priya's e-mail
    return "person", "5"


def stream_goes_on(harness: Any) -> tuple[str, str]:
    with harness.hook("bamboohr") as bamboo:
        bamboo.client.send_json(
            "POST",
            "employees",
            json={
                "firstName": "Lena",
                "lastName": "Ortiz",
                "workEmail": f"lena.ortiz@{DOMAIN}",
                "jobTitle": "Designer",
                "department": "Creative",
                "hireDate": datetime.now(timezone.utc).date().isoformat(),
            },
        )
    return "person", f"lena.ortiz@{DOMAIN}"


def check_story(harness: Any) -> None:
    """Departments went only onto untagged expenses; the person who left before got no vendor."""
    fb = harness.control.state("freshbooks")["accounts"][FB_ACCOUNT]
    notes = {e["id"]: str(e.get("notes") or "") for e in fb["expenses"]}
    assert notes[63903].endswith("\n[dept: Media]") and notes[63904].endswith("\n[dept: Creative]"), notes
    assert notes[63902] == "Client dinner [dept: Sales]", "a marker set by hand was overwritten"
    assert f"lucas.fontaine@{DOMAIN}" not in target_keys(harness)["person"]


CASE = PairCase(
    dag_id="bamboohr_to_freshbooks",
    seed=lambda harness: harness.control.seed_demo(),
    target_keys=target_keys,
    story={
        "person": {
            f"sofia.marchetti@{DOMAIN}",
            f"ethan.park@{DOMAIN}",
            f"jamal.reed@{DOMAIN}",
            f"grace.kowalski@{DOMAIN}",
        },
        "expense": {"notes:63901", "notes:63903", "notes:63904"},
    },
    creates=[
        ("freshbooks", "POST", r"/bill_vendors/bill_vendors$"),
        ("freshbooks", "PUT", r"/expenses/expenses/\d+$"),
    ],
    empty=lambda harness: None,  # the reset sandbox: connected accounts with nothing in them
    malform=malform,
    list_twice=list_twice,
    rename_onto_sibling=rename_onto_sibling,
    stream_goes_on=stream_goes_on,
    check_story=check_story,
    # The custom report is a read sent as POST (it names the fields).
    read_posts=("bamboohr POST /api/gateway.php/{company}/v1/reports/custom",),
)
