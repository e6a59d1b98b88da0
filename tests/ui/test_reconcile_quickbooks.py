"""bill_to_quickbooks' reconciliation over real HTTP to the sandbox: a Purchase Order that agrees
with its BILL bill, then one edited in QuickBooks behind the integration's back, and a vendor."""

from __future__ import annotations

import pytest

from airflow_provider_mlconnector.hooks.bill import BillHook
from airflow_provider_mlconnector.hooks.quickbooks import QuickBooksHook
from airflow_provider_mlconnector.operators.reconcile import reconcile
from airflow_provider_mlconnector.pairs.bill_to_quickbooks import PAIR, PURCHASE_ORDER
from airflow_provider_mlconnector.sandbox.bill import BillSandbox
from airflow_provider_mlconnector.sandbox.quickbooks import QuickBooksSandbox

SANDBOX_SYSTEMS = [BillSandbox, QuickBooksSandbox]
ADOBE_IN_QUICKBOOKS, AP_ACCOUNT, SOFTWARE = "56", "33", "59"


@pytest.fixture
def hooks(sandbox_hooks):
    return sandbox_hooks(BillHook, QuickBooksHook)


def _synced_purchase_order(bill: BillHook, qb: QuickBooksHook, store) -> tuple[dict, dict]:
    """Adobe's BILL bill and a Purchase Order that agrees with it, linked in the ID map as a sync would."""
    adobe = next(b for b in bill.bills.list() if (b.get("invoice") or {}).get("invoiceNumber") == "ADB-2026-10")
    lines = [
        {
            "DetailType": "AccountBasedExpenseLineDetail",
            "Amount": float(line["amount"]),
            "AccountBasedExpenseLineDetail": {"AccountRef": {"value": SOFTWARE}},
        }
        for line in adobe["billLineItems"]
    ]
    order = qb.purchase_orders.create(
        {
            "VendorRef": {"value": ADOBE_IN_QUICKBOOKS},
            "APAccountRef": {"value": AP_ACCOUNT},
            "DocNumber": "ADB-2026-10",
            "Line": lines,
            "POStatus": "Closed" if str(adobe.get("paymentStatus")).upper() == "PAID" else "Open",
        }
    )
    store.id_map.record(PAIR.name, PURCHASE_ORDER, bill.tenant, adobe["id"], qb.tenant, order["Id"], "k", "fp")
    return adobe, order


def test_a_purchase_order_edited_in_quickbooks_is_named_and_nothing_is_written(hooks, sandbox, state_store):
    bill, qb = hooks
    adobe, order = _synced_purchase_order(bill, qb, state_store)
    (orders,) = [e for e in reconcile(PAIR, bill, qb, state_store).entities if e.entity == PURCHASE_ORDER]
    assert (orders.checked, orders.drift) == (1, [])

    line = {**order["Line"][0], "Amount": 700.0}
    qb.purchase_orders.update(order["Id"], {"Line": [line]})
    sandbox.control.clear_requests()
    (drift,) = reconcile(PAIR, bill, qb, state_store).drift
    assert (drift.entity, drift.source_id, drift.target_id) == (PURCHASE_ORDER, adobe["id"], order["Id"])
    assert any(p.startswith("TotalAmt is 700.00, BILL says") for p in drift.problems), drift.problems
    writes = [r for r in sandbox.control.request_counts() if r.split()[1] in ("POST", "PUT", "PATCH", "DELETE")]
    assert [r for r in writes if not any(w in r for w in ("login", "oauth", "query"))] == []  # it reads only


def test_a_vendor_renamed_in_quickbooks_is_drift(hooks, state_store):
    bill, qb = hooks
    adobe = next(v for v in bill.vendors.list() if v["name"] == "Adobe Inc.")
    state_store.id_map.record(PAIR.name, "vendor", bill.tenant, adobe["id"], qb.tenant, ADOBE_IN_QUICKBOOKS, "k", "fp")
    (vendors,) = [e for e in reconcile(PAIR, bill, qb, state_store).entities if e.entity == "vendor"]
    assert (vendors.checked, vendors.drift) == (1, [])
    qb.vendors.update(ADOBE_IN_QUICKBOOKS, {"DisplayName": "Adobe Systems"})
    (drift,) = reconcile(PAIR, bill, qb, state_store).drift
    assert drift.problems == ["DisplayName is 'Adobe Systems', BILL says 'Adobe Inc.'"]
