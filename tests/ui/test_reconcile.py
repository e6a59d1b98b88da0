"""The reconciliation report over real HTTP to the sandbox: agreement, then drift made behind the
integration's back (an amount edited in BILL, a bill deleted there), through the CLI's code path."""

from __future__ import annotations

import pytest

from airflow_provider_mlconnector.hooks.bill import BillHook
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook
from airflow_provider_mlconnector.operators.reconcile import reconcile
from airflow_provider_mlconnector.pairs.freshbooks_to_bill import PAIR, money_amount
from airflow_provider_mlconnector.sandbox.bill import BillSandbox
from airflow_provider_mlconnector.sandbox.freshbooks import FreshBooksSandbox
from airflow_provider_mlconnector.state import cli as state_cli

SANDBOX_SYSTEMS = [FreshBooksSandbox, BillSandbox]


@pytest.fixture
def hooks(sandbox_hooks):
    return sandbox_hooks(FreshBooksHook, BillHook)


def _synced_copy(fb: FreshBooksHook, bill: BillHook, store) -> tuple[str, str]:
    """A FreshBooks bill and a BILL bill of the same total, linked in the ID map as a sync would."""
    fb_bill = next(b for b in fb.bills.list() if int(b.get("vis_state") or 0) == 0 and b.get("lines"))
    vendor = next(v for v in bill.vendors.list() if not v.get("archived"))
    account = next(iter(bill.chart_of_accounts.list()))
    total = money_amount(fb_bill.get("total_amount") or fb_bill.get("amount"))
    created = bill.bills.create(
        {
            "vendorId": vendor["id"],
            "invoice": {"invoiceNumber": f"RECON-{fb_bill['id']}", "invoiceDate": str(fb_bill["issue_date"])},
            "dueDate": str(fb_bill.get("due_date") or fb_bill["issue_date"]),
            "billLineItems": [{"amount": float(total), "classifications": {"chartOfAccountId": account["id"]}}],
        }
    )
    source_id, target_id = str(fb_bill["id"]), str(created["id"])
    store.id_map.record(PAIR.name, "bill", fb.tenant, source_id, bill.tenant, target_id, "k", "fp")
    return source_id, target_id


def test_a_clean_copy_has_no_drift_and_an_amount_edited_in_bill_is_named(hooks, state_store):
    fb, bill = hooks
    source_id, target_id = _synced_copy(fb, bill, state_store)
    report = reconcile(PAIR, fb, bill, state_store)
    (bills,) = [e for e in report.entities if e.entity == "bill"]
    assert (bills.checked, bills.drift) == (1, [])

    current = bill.bills.get(target_id)
    line = current["billLineItems"][0]
    bill.bills.update(target_id, {"billLineItems": [{**line, "amount": float(line["amount"]) + 10}]})
    (drift,) = reconcile(PAIR, fb, bill, state_store).drift
    assert (drift.source_id, drift.target_id) == (source_id, target_id)
    assert any(p.startswith("amount differs: FreshBooks") for p in drift.problems), drift.problems


def test_a_bill_missing_in_bill_is_drift_and_the_cli_exits_2(hooks, sandbox, state_store, capsys):
    fb, bill = hooks
    source_id, _ = _synced_copy(fb, bill, state_store)
    state_store.id_map.record(PAIR.name, "bill", fb.tenant, source_id, bill.tenant, "00n000000000000GONE", "k", "fp")
    sandbox.control.clear_requests()
    assert state_cli.main(["reconcile", PAIR.name], store=state_store) == 2
    assert "missing in bill: bill 00n000000000000GONE" in capsys.readouterr().out
    writes = [r for r in sandbox.control.request_counts() if r.split()[1] in ("POST", "PUT", "PATCH", "DELETE")]
    assert [r for r in writes if "login" not in r and "oauth" not in r] == []  # it reads, never writes
