"""expensify_to_freshbooks through a real Airflow against the sandbox: the demo story of issue 15.

(The pair conformance suite covers dry runs, lost answers, concurrency and page drift.)
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_mlconnector.pairs.expensify_to_freshbooks import CATEGORY_OVERRIDES_VARIABLE
from tests.e2e.conftest import assert_succeeded

pytestmark = pytest.mark.e2e

DAG = "expensify_to_freshbooks"
ACCOUNT = "BRT4201"


def books(harness):
    fb = harness.control.state("freshbooks")["accounts"][ACCOUNT]
    bills = {b["bill_number"]: b for b in fb["bills"] if str(b.get("overall_description")).startswith("Expensify")}
    expenses = [e for e in fb["expenses"] if str(e.get("notes") or "").startswith("Expensify report")]
    payments = [p for p in fb["bill_payments"] if "Reimbursed in Expensify" in str(p.get("note"))]
    return bills, expenses, payments


def freshbooks_writes(harness) -> dict[str, int]:
    return {
        route: n
        for route, n in harness.control.request_counts("freshbooks").items()
        if route.split()[1] in ("POST", "PUT", "DELETE") and "token" not in route
    }


def test_the_story_books_exact_amounts_holds_the_unmapped_report_and_a_replay_writes_it_once(harness):
    assert_succeeded(harness.run_dag(DAG))
    bills, expenses, payments = books(harness)
    assert sorted(bills) == ["R00A7kQ2mX1B", "R00B3nV8pL4C", "R00F1qA9sD7G", "R00G4hJ6kL0H"]
    october = bills["R00A7kQ2mX1B"]
    assert [line["unit_cost"]["amount"] for line in october["lines"]] == ["86.40", "39.17"]  # the edit wins
    assert october["total_amount"] == {"amount": "125.57", "code": "USD"}
    assert bills["R00G4hJ6kL0H"]["total_amount"]["amount"] == "61.60"  # Expensify's CAD conversion
    assert sorted(e["amount"]["amount"] for e in expenses) == ["14.99", "250.00", "45.00", "89.99"]
    (payment,) = payments
    assert payment["amount"]["amount"] == "479.99" and payment["billid"] == bills["R00B3nV8pL4C"]["id"]
    assert bills["R00B3nV8pL4C"]["status"] == "paid"
    letters = {d.source_id: d for d in harness.store.dead_letters.list(pair=DAG) if d.active}
    assert letters["R00E6tR3eW2F"].error_kind == "manual_reconciliation"
    assert "'Client Gifts'" in letters["R00E6tR3eW2F"].reason
    assert letters["R00H8cN2vB5J"].error_kind == "currency_mismatch"
    labels = harness.control.state("expensify")["reports"]
    assert labels["R00A7kQ2mX1B"]["labels"] == ["ml-connector"] and labels["R00E6tR3eW2F"]["labels"] == []

    harness.extra_env[f"AIRFLOW_VAR_{CATEGORY_OVERRIDES_VARIABLE.upper()}"] = json.dumps(
        {"Client Gifts": "Meals & Entertainment"}
    )
    assert_succeeded(harness.run_dag(DAG, conf={"replay_dead_letters": [letters["R00E6tR3eW2F"].id]}))
    bills, _, _ = books(harness)
    assert bills["R00E6tR3eW2F"]["total_amount"]["amount"] == "248.70"  # 184.50 + 64.20, both lines

    harness.control.clear_requests()
    assert_succeeded(harness.run_dag(DAG))
    assert freshbooks_writes(harness) == {}, "a no-change rerun wrote to FreshBooks"
    bills_again, expenses_again, payments_again = books(harness)
    assert sorted(bills_again) == sorted(bills) and len(expenses_again) == 4 and len(payments_again) == 1


def test_with_a_test_report_prefix_only_the_test_reports_sync(harness):
    connection = harness.control.connections()["expensify"]
    connection["extra"] = {**connection.get("extra", {}), "test_report_prefix": "TEST - "}
    harness.extra_env["AIRFLOW_CONN_EXPENSIFY_DEFAULT"] = json.dumps(connection)
    assert_succeeded(harness.run_dag(DAG))
    bills, expenses, _ = books(harness)
    assert list(bills) == ["R00F1qA9sD7G"] and expenses == []
    assert bills["R00F1qA9sD7G"]["overall_description"] == "Expensify report R00F1qA9sD7G (TEST - Sandbox Sync Check)"


def test_a_run_asked_to_reconcile_finds_agreement_then_names_an_expense_deleted_in_freshbooks(harness):
    clean = harness.run_dag(DAG, conf={"reconcile": True})
    assert_succeeded(clean)
    assert "bill: 4 compared (expensify -> freshbooks), 0 with drift" in clean, clean[-3000:]
    assert "expense: 4 compared (expensify -> freshbooks), 0 with drift" in clean, clean[-3000:]

    _, expenses, _ = books(harness)
    with harness.hook("freshbooks") as fb:
        fb.expenses.delete(expenses[0]["id"])  # behind the integration's back
    drifted = harness.run_dag(DAG, conf={"reconcile": True})
    assert_succeeded(drifted)
    report = drifted[drifted.index("expensify_to_freshbooks reconciliation:") :]
    assert "expense: 4 compared (expensify -> freshbooks), 1 with drift" in report, report[:3000]
    assert f"FreshBooks expense {expenses[0]['id']} is deleted, the Expensify transaction is not" in report
