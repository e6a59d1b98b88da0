"""The demo story in BambooHR: Brightside Marketing's staff (company domain ``brightside``).

Eight long-standing employees (ten active staff in all), two new hires in November 2026 and one termination at the end
of October 2026, across the Creative, Accounts, Media and Operations departments. Employee 4
(Dana Whitfield, the founder) owns the sandbox API key.

The unglamorous cases (``bamboohr_to_freshbooks``): Olivia Brennan (12) hands in her notice, a
termination dated six weeks after the day the sandbox is seeded (she stays Active until then);
Noah Bergstrom (16, a freelancer entered without a work e-mail) becomes a dead letter; Jordan Reed (17)
was entered with Jamal Reed's work e-mail, a duplicate that is dead-lettered while Jamal syncs.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

DOMAIN = "brightsidemarketing.com"

# (id, first, last, preferred, title, department, location, hire date, supervisor id, phone ext)
Row = tuple[str, str, str, str | None, str, str, str, str, str | None, str]
SF = "San Francisco"
_STAFF: list[Row] = [
    ("4", "Dana", "Whitfield", None, "Founder & CEO", "Operations", SF, "2019-03-04", None, "101"),
    ("5", "Marcus", "Oyelaran", None, "Creative Director", "Creative", SF, "2019-06-17", "4", "102"),
    ("6", "Priya", "Raman", None, "Senior Designer", "Creative", SF, "2020-09-08", "5", "103"),
    ("7", "Tomás", "Ibarra", "Tom", "Copywriter", "Creative", "Remote", "2021-02-01", "5", "104"),
    ("8", "Grace", "Kowalski", None, "Account Director", "Accounts", SF, "2019-11-04", "4", "105"),
    ("9", "Jamal", "Reed", None, "Account Manager", "Accounts", SF, "2022-04-18", "8", "106"),
    ("10", "Hannah", "Lindqvist", None, "Head of Media", "Media", SF, "2020-01-13", "4", "107"),
    ("12", "Olivia", "Brennan", None, "Office & Finance Manager", "Operations", SF, "2021-08-30", "4", "109"),
]
_NEW_HIRES: list[Row] = [
    ("13", "Sofia", "Marchetti", None, "Junior Designer", "Creative", SF, "2026-11-02", "5", "110"),
    ("14", "Ethan", "Park", None, "Media Analyst", "Media", "Remote", "2026-11-16", "10", "111"),
]
_TERMINATED = ("15", "Lucas", "Fontaine", None, "Account Coordinator", "Accounts", SF, "2024-02-05", "8", "112")


def _employee(row: Row, **extra: Any) -> dict[str, Any]:
    emp_id, first, last, preferred, title, department, location, hired, boss, ext = row
    local = (preferred or first).lower().replace("á", "a")
    return {
        "id": emp_id,
        "employeeNumber": f"BRT-{int(emp_id):03d}",
        "firstName": first,
        "lastName": last,
        "preferredName": preferred,
        "jobTitle": title,
        "department": department,
        "division": "Brightside Marketing",
        "location": location,
        "workEmail": f"{local}.{last.lower()}@{DOMAIN}",
        "workPhone": f"415-555-0{ext}",
        "mobilePhone": None,
        "homeEmail": None,
        "status": "Active",
        "employmentHistoryStatus": "Full-Time",
        "hireDate": hired,
        "terminationDate": None,
        "supervisorEId": boss,
        "city": "San Francisco" if location == "San Francisco" else None,
        "state": "CA" if location == "San Francisco" else None,
        "country": "United States",
        "created": f"{hired}T16:00:00+00:00",
        "lastChanged": f"{hired}T16:00:00+00:00",
        **extra,
    }


def fixture() -> dict[str, Any]:
    employees = [_employee(row) for row in _STAFF]
    employees += [
        _employee(_NEW_HIRES[0], created="2026-10-20T17:12:00+00:00", lastChanged="2026-11-02T15:30:00+00:00"),
        _employee(_NEW_HIRES[1], created="2026-11-09T18:45:00+00:00", lastChanged="2026-11-16T15:05:00+00:00"),
        _employee(
            _TERMINATED,
            status="Inactive",
            terminationDate="2026-10-31",
            lastChanged="2026-10-31T22:10:00+00:00",
        ),
    ]
    # Jamal's promotion is a recent update of a long-standing employee.
    employees[5]["lastChanged"] = "2026-11-10T09:20:00+00:00"
    notice_ends = (datetime.now(timezone.utc) + timedelta(weeks=6)).date().isoformat()
    employees[7].update(terminationDate=notice_ends, lastChanged="2026-11-18T10:00:00+00:00")
    freelancer = (
        "16",
        "Noah",
        "Bergstrom",
        None,
        "Freelance Videographer",
        "Media",
        "Remote",
        "2026-11-09",
        "10",
        "113",
    )
    employees.append(_employee(freelancer, workEmail=None, lastChanged="2026-11-09T12:00:00+00:00"))
    typo = ("17", "Jordan", "Reed", None, "Account Coordinator", "Accounts", SF, "2026-11-16", "8", "114")
    employees.append(_employee(typo, workEmail=f"jamal.reed@{DOMAIN}", lastChanged="2026-11-16T17:00:00+00:00"))
    return {"company": "brightside", "company_id": "148213", "name": "Brightside Marketing", "employees": employees}
