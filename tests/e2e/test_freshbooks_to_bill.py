"""freshbooks_to_bill end to end: real Airflow runs the DAG against the sandbox's demo story.

The story (see the FreshBooks and BILL emulators' demo data): a ten-person marketing agency's
bills in FreshBooks; BILL already knows Adobe and one Adobe bill (paid); BILL has no meals account.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

pytestmark = pytest.mark.e2e

ORG = "00802BRTSIDEMKT0001A"
FB_ACCOUNT = "BRT4201"
EXPECTED_NEW_BILLS = {"PFS-1041", "PFS-1042", "ADB-2026-11", "META-88213", "GADS-5521"}


def bill_org(harness) -> dict:
    return harness.control.state("bill")["organizations"][ORG]


def fb_account(harness) -> dict:
    return harness.control.state("freshbooks")["accounts"][FB_ACCOUNT]


def bills_by_number(harness) -> dict[str, list[dict]]:
    result: dict[str, list[dict]] = {}
    for bill in bill_org(harness)["bills"]:
        result.setdefault(bill["invoice"]["invoiceNumber"], []).append(bill)
    return result


def assert_succeeded(output: str) -> None:
    assert "summary" in output, output[-3000:]
    assert "state=failed" not in output.lower() and "dagrun failed" not in output.lower(), output[-5000:]


def writes(harness) -> dict[str, int]:
    counts = harness.control.request_counts()
    return {
        k: v
        for k, v in counts.items()
        if k.split()[1] in ("POST", "PUT", "PATCH", "DELETE") and "login" not in k and "oauth" not in k
    }


def test_first_run_writes_the_story_and_second_run_writes_nothing(harness):
    assert_succeeded(harness.run_dag("freshbooks_to_bill"))

    org = bill_org(harness)
    vendors = [v["name"] for v in org["vendors"]]
    assert sorted(vendors) == sorted(
        [
            "Adobe Inc.",
            "Cloudline Hosting",
            "Pixel Forge Studio",
            "Meta Platforms Ireland Ltd",
            "Google LLC",
            "Northside Catering Co.",
        ]
    )  # Adobe matched by name, not duplicated
    meta = next(v for v in org["vendors"] if v["name"] == "Meta Platforms Ireland Ltd")
    assert meta["address"]["country"] == "IE"

    bills = bills_by_number(harness)
    assert all(len(v) == 1 for v in bills.values()), "a bill was duplicated"
    assert set(bills) >= EXPECTED_NEW_BILLS
    assert "NCC-778" not in bills  # unmapped meals account: dead-lettered, never guessed
    assert "PFS-1039" not in bills  # archived in FreshBooks and never synced
    accounts = {a["id"]: a for a in org["chart_of_accounts"]}
    gads = bills["GADS-5521"][0]
    lines = {
        (Decimal(str(li["amount"])), accounts[li["classifications"]["chartOfAccountId"]]["name"])
        for li in gads["billLineItems"]
    }
    assert lines == {(Decimal("1250.00"), "Advertising & Promotion"), (Decimal("84.99"), "Office Supplies")}
    assert Decimal(str(bills["PFS-1041"][0]["amount"])) == Decimal("2750.00")

    letters = harness.store.dead_letters.list(status="open", pair="freshbooks_to_bill")
    assert [(d.entity, d.error_kind) for d in letters] == [("bill", "unmapped_account")]
    assert "Meals & Entertainment" in letters[0].reason

    # BILL's cleared Adobe payment is written back against the original FreshBooks bill.
    fb = fb_account(harness)
    adobe_bill = next(b for b in fb["bills"] if b["bill_number"] == "ADB-2026-10")
    payments = [p for p in fb["bill_payments"] if str(p["billid"]) == str(adobe_bill["id"])]
    assert len(payments) == 1 and payments[0]["amount"]["amount"] == "659.88"
    assert adobe_bill["status"] == "paid"

    harness.control.clear_requests()
    assert_succeeded(harness.run_dag("freshbooks_to_bill"))
    assert writes(harness) == {}, "a no-change rerun must write nothing"
    assert all(len(v) == 1 for v in bills_by_number(harness).values())


def test_partial_payments_add_up_exactly_once(harness):
    assert_succeeded(harness.run_dag("freshbooks_to_bill"))
    pfs = bills_by_number(harness)["PFS-1041"][0]
    base = f"{harness.sandbox.url}/bill/_sandbox/payments"
    for amount in ("1000.00", "1750.00"):
        payment = requests.post(base, json={"billId": pfs["id"], "amount": amount, "status": "SCHEDULED"}, timeout=10)
        payment.raise_for_status()
        requests.post(f"{base}/{payment.json()['id']}/settle", json={}, timeout=10).raise_for_status()
    assert_succeeded(harness.run_dag("freshbooks_to_bill"))
    assert_succeeded(harness.run_dag("freshbooks_to_bill"))
    fb = fb_account(harness)
    bill = next(b for b in fb["bills"] if b["bill_number"] == "PFS-1041")
    amounts = sorted(p["amount"]["amount"] for p in fb["bill_payments"] if str(p["billid"]) == str(bill["id"]))
    assert amounts == ["1000.00", "1750.00"]
    assert bill["status"] == "paid"


def test_commit_then_drop_on_bill_create_leaves_one_bill(harness):
    harness.control.fault("bill", "drop_after_commit", count=2, method="POST", path=r"^/connect/v3/bills$")
    assert_succeeded(harness.run_dag("freshbooks_to_bill"))
    bills = bills_by_number(harness)
    assert set(bills) >= EXPECTED_NEW_BILLS
    assert all(len(v) == 1 for v in bills.values()), "a dropped answer became a duplicate bill"


def test_two_concurrent_runs_leave_no_duplicate(harness, tmp_path_factory):
    # Two Airflow processes (separate metadata DBs, as two schedulers' workers would be) share the
    # state store and the sandbox; BILL latency widens the race window.
    harness.control.latency("bill", 40)
    first = harness.start_dag("freshbooks_to_bill")
    second = harness.start_dag("freshbooks_to_bill")
    out1, _ = first.communicate(timeout=600)
    out2, _ = second.communicate(timeout=600)
    harness.run_dag("freshbooks_to_bill")  # whatever one of them deferred, a later run finishes
    bills = bills_by_number(harness)
    assert set(bills) >= EXPECTED_NEW_BILLS, out1[-2000:] + out2[-2000:]
    assert all(len(v) == 1 for v in bills.values()), "concurrent runs duplicated a bill"
    names = [v["name"] for v in bill_org(harness)["vendors"]]
    assert len(names) == len(set(names)), "concurrent runs duplicated a vendor"


def test_unmapped_account_is_dead_lettered_then_replayed_once(harness):
    assert_succeeded(harness.run_dag("freshbooks_to_bill"))
    (letter,) = harness.store.dead_letters.list(status="open", pair="freshbooks_to_bill")
    # The accountant maps meals to Office Supplies and asks for a replay of that letter.
    harness.extra_env["AIRFLOW_VAR_MLCONNECTOR_FRESHBOOKS_TO_BILL_GL_OVERRIDES"] = '{"Meals & Entertainment": "6040"}'
    assert_succeeded(harness.run_dag("freshbooks_to_bill", conf={"replay_dead_letters": [letter.id]}))
    assert_succeeded(harness.run_dag("freshbooks_to_bill"))
    assert len(bills_by_number(harness)["NCC-778"]) == 1
    assert harness.store.dead_letters.get(letter.id).status == "replayed"
    history = [row.action for row in harness.store.audit.history("freshbooks", letter.source_id)]
    assert "replayed" in history and history.count("created") == 1


def test_expiring_session_and_token_mid_run_are_absorbed(harness):
    before = harness.control.state("freshbooks")["oauth"]
    harness.control.fault("bill", "expired_auth", count=1, method="POST", path=r"^/connect/v3/bills$")
    harness.control.fault("freshbooks", "expired_auth", count=1, path=r"/bills/bills")
    assert_succeeded(harness.run_dag("freshbooks_to_bill"))
    assert set(bills_by_number(harness)) >= EXPECTED_NEW_BILLS
    oauth = harness.control.state("freshbooks")["oauth"]
    # One refresh at the start and exactly one more after the injected expiry; no refresh token was
    # ever sent twice, and the chain still has exactly one live token (the others are demo seeds).
    assert oauth["refresh_token"] - before["refresh_token"] == 2
    assert oauth["reused_refresh"] == 0 and oauth["rejected_refresh"] == 0
    assert oauth["unused_refresh_tokens"] == before["unused_refresh_tokens"]
    sessions = [r for r in harness.control.requests("bill") if r["route"] == "/connect/v3/login"]
    assert len(sessions) == 2  # the first login, and one re-login after the session expired


def test_dry_run_writes_nothing(harness):
    harness.control.clear_requests()
    assert_succeeded(harness.run_dag("freshbooks_to_bill", conf={"dry_run": True}))
    assert writes(harness) == {}
    assert harness.store.id_map.list("freshbooks_to_bill", "bill") == []
