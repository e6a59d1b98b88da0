"""The FreshBooks side of the demo story, the sandbox credentials, and the benchmark generator.

Brightside Marketing (a ten-person marketing agency) keeps its accounts payable in FreshBooks:
five bill vendors and eight bills (one archived). BILL and QuickBooks emulators use the same names
and numbers (see the shared demo story), so ids and names here are a contract: change them only
together with the other emulators.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from decimal import Decimal
from typing import Any


def _hex(phrase: str) -> str:
    """A stable 64-hex string that looks like a FreshBooks token or client id."""
    return hashlib.sha256(f"mlconnector freshbooks sandbox {phrase}".encode()).hexdigest()


# --- sandbox credentials (public on purpose: they only open the local emulator) ------------
SANDBOX_CLIENT_ID = _hex("client id")
SANDBOX_CLIENT_SECRET = _hex("client secret")
#: the HTTPS redirect URI registered for the sandbox app (FreshBooks requires HTTPS, no query).
SANDBOX_REDIRECT_URI = "https://localhost:8443/freshbooks/callback"
#: initial refresh token of the demo identity (one business). Single use, valid again after reset.
SANDBOX_REFRESH_TOKEN = _hex("refresh token brightside")
#: initial refresh token of the second identity (two businesses: the connection must pick one).
SANDBOX_MULTI_REFRESH_TOKEN = _hex("refresh token multi")

BRIGHTSIDE_ACCOUNT_ID = "BRT4201"
BRIGHTSIDE_BUSINESS_ID = 439001
BRIGHTSIDE_BUSINESS_UUID = "6f1c2a9e-5b7d-4c3e-9a1f-2d8e7b6c5a40"
HARBOR_ACCOUNT_ID = "HLS7733"
HARBOR_BUSINESS_ID = 439002
HARBOR_BUSINESS_UUID = "b3d7e0c4-1a2f-4e6b-8c9d-0f1e2a3b4c5d"

DEMO_IDENTITY_ID = 5550001
MULTI_IDENTITY_ID = 5550002

APPS: list[dict[str, Any]] = [
    {
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "name": "ml-connector (sandbox)",
        "redirect_uris": [SANDBOX_REDIRECT_URI],
    }
]

BUSINESSES: list[dict[str, Any]] = [
    {
        "id": BRIGHTSIDE_BUSINESS_ID,
        "business_uuid": BRIGHTSIDE_BUSINESS_UUID,
        "name": "Brightside Marketing",
        "account_id": BRIGHTSIDE_ACCOUNT_ID,
        "date_format": "mm/dd/yyyy",
        "address": {
            "id": 76501,
            "street": "1120 NW Couch St",
            "city": "Portland",
            "province": "Oregon",
            "country": "United States",
            "postal_code": "97209",
        },
        "phone_number": {"id": 666201, "phone_number": "5035550142"},
        "business_clients": [],
    },
    {
        "id": HARBOR_BUSINESS_ID,
        "business_uuid": HARBOR_BUSINESS_UUID,
        "name": "Harbor Lane Studio",
        "account_id": HARBOR_ACCOUNT_ID,
        "date_format": "dd/mm/yyyy",
        "address": {
            "id": 76502,
            "street": "77 Harbour St",
            "city": "Toronto",
            "province": "Ontario",
            "country": "Canada",
            "postal_code": "M5J 2V3",
        },
        "phone_number": {"id": 666202, "phone_number": "4165550199"},
        "business_clients": [],
    },
]

IDENTITIES: list[dict[str, Any]] = [
    {
        "id": DEMO_IDENTITY_ID,
        "identity_uuid": "0c7f3d1e-8a4b-4b5c-9d2e-6f7a8b9c0d11",
        "first_name": "Maya",
        "last_name": "Chen",
        "email": "maya@brightsidemarketing.example",
        "confirmed_at": "2024-02-12T16:04:11Z",
        "memberships": [{"id": 140201, "role": "owner", "business_id": BRIGHTSIDE_BUSINESS_ID}],
        "refresh_token": SANDBOX_REFRESH_TOKEN,
    },
    {
        "id": MULTI_IDENTITY_ID,
        "identity_uuid": "5e2a9b7c-3d4f-4a1b-8e6c-2b3c4d5e6f22",
        "first_name": "Jordan",
        "last_name": "Reyes",
        "email": "jordan@harborlanestudio.example",
        "confirmed_at": "2023-09-03T10:22:45Z",
        "memberships": [
            {"id": 140202, "role": "owner", "business_id": HARBOR_BUSINESS_ID},
            {"id": 140203, "role": "business_admin", "business_id": BRIGHTSIDE_BUSINESS_ID},
        ],
        "refresh_token": SANDBOX_MULTI_REFRESH_TOKEN,
    },
]

CATEGORIES: list[dict[str, Any]] = [
    {"id": 3001, "category": "Contract Labor"},
    {"id": 3002, "category": "Software & Subscriptions"},
    {"id": 3003, "category": "Advertising"},
    {"id": 3004, "category": "Office Supplies"},
    {"id": 3005, "category": "Meals & Entertainment"},
]


def _ledger(number: str, name: str, type_: str, sub_type: str, system_name: str | None = None) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"freshbooks-sandbox/{BRIGHTSIDE_BUSINESS_UUID}/{number}")),
        "number": number,
        "name": name,
        "description": "",
        "type": type_,
        "sub_type": sub_type,
        "system_account_name": system_name,
        "parent_account": None,
        "sub_accounts": [],
        "auto_created": system_name is not None,
        "state": "active",
    }


LEDGER_ACCOUNTS: list[dict[str, Any]] = [
    _ledger("1000", "Cash & Bank", "asset", "Cash & Bank", "Cash"),
    _ledger("1200", "Accounts Receivable", "asset", "Accounts Receivable", "Accounts Receivable"),
    _ledger("2000", "Accounts Payable", "liability", "Accounts Payable", "Accounts Payable"),
    _ledger("3000", "Owner's Equity", "equity", "Equity"),
    _ledger("4000", "Sales", "income", "Income", "Sales"),
    _ledger("6010", "Contract Labor", "expense", "Expenses"),
    _ledger("6020", "Software & Subscriptions", "expense", "Expenses"),
    _ledger("6030", "Advertising", "expense", "Expenses"),
    _ledger("6040", "Office Supplies", "expense", "Expenses"),
    _ledger("6050", "Meals & Entertainment", "expense", "Expenses"),
]

BILL_VENDORS: list[dict[str, Any]] = [
    {
        "vendorid": 5101,
        "vendor_name": "Pixel Forge Studio",
        "account_number": "BRT-2210",
        "street": "2180 Bryant St",
        "city": "San Francisco",
        "province": "California",
        "postal_code": "94110",
        "country": "United States",
        "phone": "4155550187",
        "website": "pixelforge.example",
        "primary_contact_email": "billing@pixelforge.example",
        "primary_contact_first_name": "Ana",
        "primary_contact_last_name": "Duarte",
        "currency_code": "USD",
        "language": "en",
        "is_1099": True,
        "note": "Freelance design studio (contractor)",
    },
    {
        "vendorid": 5102,
        "vendor_name": "Adobe Inc.",
        "account_number": "AD-77310452",
        "street": "345 Park Avenue",
        "city": "San Jose",
        "province": "California",
        "postal_code": "95110",
        "country": "United States",
        "website": "adobe.com",
        "primary_contact_email": "billing@adobe.example",
        "currency_code": "USD",
        "language": "en",
        "is_1099": False,
        "note": "Creative Cloud for teams",
    },
    {
        "vendorid": 5103,
        "vendor_name": "Meta Platforms Ireland Ltd",
        "account_number": "ACT-118842",
        "street": "4 Grand Canal Square",
        "city": "Dublin 2",
        "province": "Dublin",
        "postal_code": "D02 X525",
        "country": "Ireland",
        "website": "facebook.com/business",
        "currency_code": "USD",
        "language": "en",
        "is_1099": False,
        "note": "Facebook and Instagram ads",
    },
    {
        "vendorid": 5104,
        "vendor_name": "Google LLC",
        "account_number": "518-204-7731",
        "street": "1600 Amphitheatre Parkway",
        "city": "Mountain View",
        "province": "California",
        "postal_code": "94043",
        "country": "United States",
        "website": "ads.google.com",
        "currency_code": "USD",
        "language": "en",
        "is_1099": False,
        "note": "Google Ads",
    },
    {
        "vendorid": 5105,
        "vendor_name": "Northside Catering Co.",
        "street": "88 Ossington Ave",
        "city": "Toronto",
        "province": "Ontario",
        "postal_code": "M6J 2Y7",
        "country": "Canada",
        "phone": "4165550123",
        "primary_contact_email": "orders@northsidecatering.example",
        "primary_contact_first_name": "Sam",
        "primary_contact_last_name": "Okafor",
        "currency_code": "USD",
        "language": "en",
        "is_1099": False,
        "note": "Team lunches",
    },
]


def _usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "code": "USD"}


def _line(categoryid: int, description: str, amount: str) -> dict[str, Any]:
    return {
        "categoryid": categoryid,
        "description": description,
        "quantity": 1,
        "unit_cost": _usd(amount),
    }


def _bill(
    bill_id: int, vendorid: int, number: str, issued: str, offset: int, lines: list[dict[str, Any]], vis: int = 0
) -> dict[str, Any]:
    return {
        "id": bill_id,
        "vendorid": vendorid,
        "bill_number": number,
        "issue_date": issued,
        "due_offset_days": offset,
        "currency_code": "USD",
        "language": "en",
        "lines": lines,
        "vis_state": vis,
    }


BILLS: list[dict[str, Any]] = [
    _bill(
        7101,
        5101,
        "PFS-1041",
        "2026-10-05",
        30,
        [
            _line(3001, "Campaign landing pages: design sprint", "2400.00"),
            _line(3001, "Landing pages: extra revision round", "350.00"),
        ],
    ),
    _bill(7102, 5101, "PFS-1042", "2026-11-02", 30, [_line(3001, "Social ad creative set (November)", "1875.50")]),
    _bill(
        7103, 5102, "ADB-2026-10", "2026-10-01", 15, [_line(3002, "Creative Cloud for teams, 12 seats (Oct)", "659.88")]
    ),
    _bill(
        7104, 5102, "ADB-2026-11", "2026-11-01", 15, [_line(3002, "Creative Cloud for teams, 12 seats (Nov)", "659.88")]
    ),
    _bill(7105, 5103, "META-88213", "2026-10-31", 15, [_line(3003, "Facebook and Instagram ads (October)", "4210.37")]),
    _bill(
        7106,
        5104,
        "GADS-5521",
        "2026-11-03",
        20,
        [_line(3003, "Google Ads (October)", "1250.00"), _line(3004, "Conference room webcam", "84.99")],
    ),
    _bill(7107, 5105, "NCC-778", "2026-11-12", 15, [_line(3005, "Team lunch: Q4 planning offsite", "612.40")]),
    _bill(
        7108, 5101, "PFS-1039", "2026-10-01", 30, [_line(3001, "Logo explorations (project cancelled)", "990.00")], 2
    ),
]

CLIENTS: list[dict[str, Any]] = [
    {
        "id": 88001,
        "organization": "Harbor & Pine Realty",
        "fname": "Olivia",
        "lname": "Brooks",
        "email": "olivia@harborpine.example",
        "currency_code": "USD",
        "language": "en",
        "p_street": "500 SW 5th Ave",
        "p_city": "Portland",
        "p_province": "Oregon",
        "p_country": "United States",
        "p_code": "97204",
    },
    {
        "id": 88002,
        "organization": "Summit Outdoor Co.",
        "fname": "Marcus",
        "lname": "Lee",
        "email": "marcus@summitoutdoor.example",
        "currency_code": "USD",
        "language": "en",
        "p_city": "Bend",
        "p_province": "Oregon",
        "p_country": "United States",
    },
    {
        "id": 88003,
        "organization": "Juniper Dental Group",
        "fname": "Aisha",
        "lname": "Patel",
        "email": "aisha@juniperdental.example",
        "currency_code": "USD",
        "language": "en",
        "p_city": "Seattle",
        "p_province": "Washington",
        "p_country": "United States",
    },
]

ITEMS: list[dict[str, Any]] = [
    {
        "id": 2201,
        "name": "Monthly retainer",
        "description": "Marketing retainer",
        "qty": "1",
        "unit_cost": _usd("4500.00"),
    },
    {
        "id": 2202,
        "name": "Campaign strategy workshop",
        "description": "Half-day workshop",
        "unit_cost": _usd("1800.00"),
    },
    {"id": 2203, "name": "Paid social management", "description": "Per month", "unit_cost": _usd("1200.00")},
]

TAXES: list[dict[str, Any]] = [{"id": 11, "name": "WA Sales Tax", "amount": "10.25", "number": None, "compound": False}]

STAFFS: list[dict[str, Any]] = [
    {"id": 1, "fname": "Maya", "lname": "Chen", "email": "maya@brightsidemarketing.example", "username": "mchen"},
    {"id": 2, "fname": "Luis", "lname": "Ortega", "email": "luis@brightsidemarketing.example", "username": "lortega"},
    {"id": 3, "fname": "Priya", "lname": "Nair", "email": "priya@brightsidemarketing.example", "username": "pnair"},
]

TEAM_MEMBERS: list[dict[str, Any]] = [
    {
        "uuid": "a1e4c2d0-6b3f-4c8e-9f1a-7d2b3c4e5f01",
        "first_name": "Maya",
        "last_name": "Chen",
        "email": "maya@brightsidemarketing.example",
        "job_title": "Founder",
        "business_role_name": "owner",
        "identity_id": DEMO_IDENTITY_ID,
    },
    {
        "uuid": "a1e4c2d0-6b3f-4c8e-9f1a-7d2b3c4e5f02",
        "first_name": "Luis",
        "last_name": "Ortega",
        "email": "luis@brightsidemarketing.example",
        "job_title": "Account Manager",
        "business_role_name": "employee",
        "identity_id": 5550011,
    },
    {
        "uuid": "a1e4c2d0-6b3f-4c8e-9f1a-7d2b3c4e5f03",
        "first_name": "Priya",
        "last_name": "Nair",
        "email": "priya@brightsidemarketing.example",
        "job_title": "Designer",
        "business_role_name": "employee",
        "identity_id": 5550012,
    },
]

# --- bamboohr_to_freshbooks: Brightside's people as FreshBooks knows them (BambooHR sandbox demo) ------
# Legacy staff records (the ids expenses carry as staffid) of the long-standing employees; Grace's
# e-mail was typed in another case. The new hires have none: Ethan Park is a team member without a
# staff record yet, Sofia Marchetti is not a team member at all (both wait for someone in FreshBooks).
_HR = "brightsidemarketing.com"
_HR_PEOPLE = [
    (21, "Dana", "Whitfield", "dana.whitfield", "Founder & CEO"),
    (22, "Marcus", "Oyelaran", "marcus.oyelaran", "Creative Director"),
    (23, "Priya", "Raman", "priya.raman", "Senior Designer"),
    (24, "Tomás", "Ibarra", "tom.ibarra", "Copywriter"),
    (25, "Grace", "Kowalski", "Grace.Kowalski", "Account Director"),
    (26, "Jamal", "Reed", "jamal.reed", "Account Manager"),
    (27, "Hannah", "Lindqvist", "hannah.lindqvist", "Head of Media"),
    (28, "Olivia", "Brennan", "olivia.brennan", "Office & Finance Manager"),
]
HR_STAFFS: list[dict[str, Any]] = [
    {"id": i, "fname": first, "lname": last, "email": f"{local}@{_HR}", "username": local.lower().replace(".", "")}
    for i, first, last, local, _ in _HR_PEOPLE
]
HR_TEAM_MEMBERS: list[dict[str, Any]] = [
    {
        "uuid": f"b7c1d2e3-0000-4000-8000-0000000000{i}",
        "first_name": first,
        "last_name": last,
        "email": f"{local}@{_HR}",
        "job_title": title,
        "business_role_name": "business_employee",
        "identity_id": 5560000 + i,
    }
    for i, first, last, local, title in [*_HR_PEOPLE, (29, "Ethan", "Park", "ethan.park", "Media Analyst")]
]
#: Internal projects named like departments (the opt-in department carrier); "Media" has none.
HR_PROJECTS: list[dict[str, Any]] = [
    {"id": 9101, "title": "Creative", "internal": True},
    {"id": 9102, "title": "Accounts", "internal": True},
    {"id": 9103, "title": "Operations", "internal": True},
    {"id": 9104, "title": "Summit Outdoor rebrand", "internal": False, "client_id": 88002},
]
#: Staff expenses: untagged ones get their department; Jamal's was tagged by hand (kept); one is in
#: CAD; one was written for Sofia (no staff record) and names her e-mail in the notes.
HR_EXPENSES: list[dict[str, Any]] = [
    {
        "id": 63901,
        "categoryid": 3002,
        "staffid": 22,
        "date": "2026-11-12",
        "amount": {"amount": "149.00", "code": "USD"},
        "vendor": "Adobe Stock",
        "notes": "Stock photography, Summit Outdoor moodboard",
    },
    {
        "id": 63902,
        "categoryid": 3005,
        "staffid": 26,
        "date": "2026-11-13",
        "amount": {"amount": "212.75", "code": "USD"},
        "vendor": "Marlowe",
        "notes": "Client dinner [dept: Sales]",
    },
    {
        "id": 63903,
        "categoryid": 3004,
        "staffid": 27,
        "date": "2026-11-17",
        "amount": {"amount": "395.00", "code": "CAD"},
        "vendor": "Dx3 Toronto",
        "notes": "Conference pass",
    },
    {
        "id": 63904,
        "categoryid": 3002,
        "staffid": 1,
        "date": "2026-11-19",
        "amount": {"amount": "59.00", "code": "USD"},
        "vendor": "Fontshare",
        "notes": f"Font licence, paid for sofia.marchetti@{_HR}",
    },
]

INVOICES: list[dict[str, Any]] = [
    {
        "id": 120001,
        "invoice_number": "0000107",
        "customerid": 88001,
        "create_date": "2026-11-01",
        "due_offset_days": 30,
        "currency_code": "USD",
        "language": "en",
        "lines": [
            {
                "name": "Monthly retainer",
                "description": "November 2026",
                "qty": 1,
                "unit_cost": {"amount": "4500.00", "code": "USD"},
            }
        ],
        "action_mark_as_sent": True,
    }
]

EXPENSES: list[dict[str, Any]] = [
    {
        "id": 64001,
        "categoryid": 3005,
        "staffid": 2,
        "clientid": 88002,
        "date": "2026-11-14",
        "amount": {"amount": "86.40", "code": "USD"},
        "vendor": "Bluebird Cafe",
        "notes": "Client lunch, Summit Outdoor kickoff",
    }
]


def demo_fixture() -> dict[str, Any]:
    """The demo story as a seed fixture: ``{"accounts": {account_id: {resource: [records]}}}``."""
    return {
        "accounts": {
            BRIGHTSIDE_ACCOUNT_ID: {
                "categories": CATEGORIES,
                "ledger_accounts": LEDGER_ACCOUNTS,
                "staffs": STAFFS + HR_STAFFS,
                "team_members": TEAM_MEMBERS + HR_TEAM_MEMBERS,
                "projects": HR_PROJECTS,
                "bill_vendors": BILL_VENDORS,
                "bills": BILLS,
                "clients": CLIENTS,
                "items": ITEMS,
                "taxes": TAXES,
                "invoices": INVOICES,
                "expenses": EXPENSES + HR_EXPENSES,
            },
            HARBOR_ACCOUNT_ID: {
                "categories": CATEGORIES[:2],
                "bill_vendors": [{"vendorid": 5201, "vendor_name": "Lakeshore Print Shop", "country": "Canada"}],
            },
        }
    }


# --- benchmark data ----------------------------------------------------------------------
_WORDS = [
    "Acme",
    "Apex",
    "Beacon",
    "Birch",
    "Cedar",
    "Cobalt",
    "Delta",
    "Ember",
    "Fable",
    "Granite",
    "Harbor",
    "Iris",
    "Juniper",
    "Keystone",
    "Lumen",
    "Maple",
    "Meridian",
    "Nimbus",
    "Oak",
    "Orchid",
    "Pioneer",
    "Quarry",
    "Raven",
    "Sage",
    "Sierra",
    "Summit",
    "Tidal",
    "Umber",
    "Vertex",
    "Willow",
    "Zenith",
]
_KINDS = [
    "Studio",
    "Supply",
    "Media",
    "Labs",
    "Consulting",
    "Print",
    "Cloud",
    "Logistics",
    "Catering",
    "Design",
    "Systems",
    "Partners",
]
_SUFFIXES = ("LLC", "Inc.", "Co.", "Ltd", "Group")
# (country, city, province, postal code): realistic, complete addresses as a real AP ledger has them.
_PLACES = (
    ("United States", "Austin", "Texas", "78701"),
    ("United States", "Denver", "Colorado", "80202"),
    ("United States", "Portland", "Oregon", "97205"),
    ("Canada", "Toronto", "Ontario", "M5V 2T6"),
    ("Ireland", "Dublin", "Leinster", "D02 X285"),
    ("United Kingdom", "London", "Greater London", "EC1A 1BB"),
)
# Mostly mapped categories; a few meals lines so a benchmark also exercises the dead-letter path.
_CATEGORY_WEIGHTS = (30, 25, 25, 18, 2)


def generated_vendor(n: int, rng: random.Random) -> dict[str, Any]:
    """A synthetic bill vendor (numbered so names stay unique) with a complete address."""
    name = f"{rng.choice(_WORDS)} {rng.choice(_KINDS)} {rng.choice(_SUFFIXES)} #{n:05d}"
    country, city, province, postal = rng.choice(_PLACES)
    return {
        "vendor_name": name,
        "street": f"{rng.randint(1, 999)} Market Street",
        "city": city,
        "province": province,
        "postal_code": postal,
        "country": country,
        "currency_code": "USD",
        "language": "en",
    }


def generated_bill(n: int, vendorid: int, rng: random.Random) -> dict[str, Any]:
    """A synthetic bill with 1-3 lines on the demo expense categories."""
    lines = []
    for _ in range(rng.randint(1, 3)):
        cents = rng.randint(500, 500_000)
        lines.append(
            _line(
                rng.choices(CATEGORIES, weights=_CATEGORY_WEIGHTS)[0]["id"],
                f"Generated line {n}",
                str(Decimal(cents) / 100),
            ),
        )
    return {
        "vendorid": vendorid,
        "bill_number": f"GEN-{n:06d}",
        "issue_date": f"2026-{rng.randint(9, 11):02d}-{rng.randint(1, 28):02d}",
        "due_offset_days": rng.choice((15, 30, 45)),
        "currency_code": "USD",
        "language": "en",
        "lines": lines,
    }
