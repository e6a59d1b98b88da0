"""bigcommerce_to_freshbooks end to end: a real Airflow runs the DAG against the sandbox's Summit Outfitters.

The story (sandbox/bigcommerce/demo.py): paid orders 100-102, 107, 109, 111; unpaid 103, 104, 113;
refunded 105 (fully), 106 (to the card), 112 (to store credit); 110 has a custom product without SKU.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from tests.e2e.conftest import assert_succeeded
from tests.e2e.pair_cases import CASES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
DAG = "bigcommerce_to_freshbooks"
CASE = next(case for case in CASES if case.dag_id == DAG)
STORE = "summit7x"


def freshbooks(harness) -> dict:
    return harness.control.state("freshbooks")["accounts"]["BRT4201"]


def ours(harness) -> dict[str, dict]:
    return {i["invoice_number"]: i for i in freshbooks(harness)["invoices"] if "BigCommerce order" in str(i["notes"])}


def money(value: dict) -> Decimal:
    return Decimal(value["amount"])


def store_orders(harness) -> dict[int, dict]:
    conn = harness.control.connections()["bigcommerce"]
    headers = {"X-Auth-Token": conn["password"], "Accept": "application/json"}
    listed = requests.get(f"{conn['host']}/stores/{STORE}/v2/orders", headers=headers, timeout=10).json()
    return {o["id"]: o for o in listed}


def test_paid_orders_become_sent_paid_invoices_refunds_leave_nothing_outstanding_and_a_rerun_writes_nothing(harness):
    harness.run_dag(DAG)
    invoices = ours(harness)
    orders = store_orders(harness)

    assert sorted(invoices, key=int) == ["100", "101", "102", "105", "106", "107", "109", "111", "112"]
    letters = {(d.entity, d.source_id): d for d in harness.store.dead_letters.list(pair=DAG, status="open")}
    assert letters[("invoice", "110")].error_kind == "validation"
    assert "no SKU" in letters[("invoice", "110")].reason
    for number, invoice in invoices.items():
        order = orders[int(number)]
        refunded = Decimal(order["refunded_amount"]) if number != "112" else Decimal(0)  # 112: store credit
        assert invoice["status"] != 1, f"invoice {number} is still a draft"
        assert money(invoice["amount"]) == Decimal(order["total_inc_tax"]) - refunded, number
        assert money(invoice["outstanding"]) == 0, number
        assert invoice["currency_code"] == order["default_currency_code"]
    assert invoices["111"]["currency_code"] == "EUR"

    fb = freshbooks(harness)
    active = [p for p in fb["payments"] if p.get("vis_state") != 1]
    for number in ("105", "106"):  # refunded to the card: payments equal what the customer kept paying
        paid = sum((money(p["amount"]) for p in active if p["invoiceid"] == invoices[number]["id"]), Decimal(0))
        assert paid == money(invoices[number]["amount"]), number
    assert [c["credit_number"] for c in fb["credit_notes"]] == ["112-R3"]

    avery = [c for c in fb["clients"] if str(c.get("email")).casefold() == "avery.chen@example.com"]
    assert len(avery) == 1, "guest order 109 and customer 1 share one client"
    assert invoices["109"]["customerid"] == invoices["100"]["customerid"] == avery[0]["id"]

    for unpaid in ("103", "104", "113"):
        assert unpaid not in invoices

    harness.control.clear_requests()
    harness.run_dag(DAG)
    writes = {r: n for r, n in harness.control.request_counts().items() if r.split()[1] in ("POST", "PUT", "DELETE")}
    assert {r: n for r, n in writes.items() if "token" not in r} == {}, "a rerun must write nothing"


def test_an_unpaid_order_is_invoiced_once_it_is_paid_and_a_new_refund_is_applied_once(harness):
    harness.run_dag(DAG)
    assert "103" not in ours(harness)
    conn = harness.control.connections()["bigcommerce"]
    headers = {"X-Auth-Token": conn["password"], "Accept": "application/json"}
    base = f"{conn['host']}/stores/{STORE}"
    requests.put(f"{base}/v2/orders/103", json={"status_id": 11}, headers=headers, timeout=10).raise_for_status()
    items = [{"item_type": "ORDER", "item_id": 100, "amount": "20.00"}]
    quote = requests.post(
        f"{base}/v3/orders/100/payment_actions/refund_quotes", json={"items": items}, headers=headers, timeout=10
    ).json()["data"]
    gateway = quote["refund_methods"][0][0]["provider_id"]
    refund = {"items": items, "payments": [{"provider_id": gateway, "amount": "20.00"}], "reason": "Late delivery"}
    requests.post(
        f"{base}/v3/orders/100/payment_actions/refunds", json=refund, headers=headers, timeout=10
    ).raise_for_status()

    harness.run_dag(DAG)
    harness.run_dag(DAG)  # and again: nothing applied twice
    invoices = ours(harness)
    assert invoices["103"]["status"] == 4 and money(invoices["103"]["outstanding"]) == 0
    assert money(invoices["100"]["amount"]) == Decimal("411.58")
    assert [li["name"] for li in invoices["100"]["lines"]].count("Refund 4") == 1
    payments = [p for p in freshbooks(harness)["payments"] if p["invoiceid"] == invoices["100"]["id"]]
    assert [money(p["amount"]) for p in payments] == [Decimal("411.58")]
    assert str(payments[0]["note"]).count("[refund 4:") == 1


def test_a_run_asked_to_reconcile_finds_agreement_then_names_a_deleted_payment_and_a_cancelled_order(harness):
    """Accountants before month-end: ``airflow dags trigger bigcommerce_to_freshbooks -c '{"reconcile": true}'``."""
    clean = harness.run_dag(DAG, conf={"reconcile": True})
    assert_succeeded(clean)
    assert "invoice: 9 compared (bigcommerce -> freshbooks), 0 with drift" in clean, clean[-3000:]

    invoices = ours(harness)
    paid = next(p for p in freshbooks(harness)["payments"] if p["invoiceid"] == invoices["101"]["id"])
    with harness.hook("freshbooks") as fb:
        fb.payments.delete(paid["id"])  # behind the integration's back
    conn = harness.control.connections()["bigcommerce"]
    headers = {"X-Auth-Token": conn["password"], "Accept": "application/json"}
    cancel = {"status_id": 5}
    requests.put(
        f"{conn['host']}/stores/{STORE}/v2/orders/102", json=cancel, headers=headers, timeout=10
    ).raise_for_status()

    drifted = harness.run_dag(DAG, conf={"reconcile": True})
    assert_succeeded(drifted)
    report = drifted[drifted.index("bigcommerce_to_freshbooks reconciliation:") :]
    assert "invoice: 9 compared (bigcommerce -> freshbooks), 2 with drift" in report, report[:3000]
    assert f"101 -> {invoices['101']['id']}: paid differs: BigCommerce captured" in report, report[:3000]
    assert f"102 -> {invoices['102']['id']}: the order is Cancelled in BigCommerce, not paid" in report, report[:3000]
