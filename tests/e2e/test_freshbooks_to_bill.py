"""freshbooks_to_bill end to end, beyond the pair conformance suite (test_pair_conformance.py, which
covers the story, reruns, dropped answers, concurrency, dry runs, renames): partial payments,
a dead letter replayed after its cause is fixed, and credentials expiring mid-run.

The story (see the FreshBooks and BILL emulators' demo data): a ten-person marketing agency's
bills in FreshBooks; BILL already knows Adobe and one Adobe bill (paid); BILL has no meals account.
"""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import assert_succeeded

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
    harness.control.fault("bill", "expired_auth", count=1, method="POST", path=r"^/connect/v3/bills(/bulk)?$")
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


def test_a_run_asked_to_reconcile_names_an_amount_edited_in_bill(harness):
    """``airflow dags trigger freshbooks_to_bill -c '{"reconcile": true}'``: the summary compares
    every synced bill in both systems; an ordinary run does not."""
    ordinary = harness.run_dag("freshbooks_to_bill")
    assert_succeeded(ordinary)
    assert "reconciliation:" not in ordinary
    synced = bills_by_number(harness)["PFS-1041"][0]
    with harness.hook("bill") as bill:
        line = bill.bills.get(synced["id"])["billLineItems"][0]
        bill.bills.update(synced["id"], {"billLineItems": [{**line, "amount": float(line["amount"]) + 10}]})
    asked = harness.run_dag("freshbooks_to_bill", conf={"reconcile": True})
    assert_succeeded(asked)
    report = asked[asked.index("freshbooks_to_bill reconciliation:") :]
    assert f"-> {synced['id']}: amount differs: FreshBooks" in report, report[:3000]
    assert "bill: 6 compared (freshbooks -> bill), 1 with drift" in report, report[:3000]
