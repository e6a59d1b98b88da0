"""Payments back (BILL -> FreshBooks) with in-memory hooks: settled once, partials add up, voids undone."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow_provider_mlconnector.operators.engine import RunInfo, SyncEngine
from airflow_provider_mlconnector.pairs.freshbooks_to_bill import PAIR, PaymentSpec
from airflow_provider_mlconnector.state.watermarks import Window

ORG, ACCOUNT = "00802BRTSIDEMKT0001A", "BRT4201"
WINDOW = Window(start=None, end=datetime(2026, 11, 21, tzinfo=timezone.utc), is_backfill=False)


class FakeBill:
    organization_id = ORG

    def __init__(self) -> None:
        self.payments: list[dict] = []

    def list_payments(self, *, updated_since=None, updated_before=None):
        return list(self.payments)

    def get_payment(self, payment_id):
        return next(p for p in self.payments if p["id"] == payment_id)


class FakeFreshBooks:
    account_id = ACCOUNT

    def __init__(self) -> None:
        self.bill_payments: dict[str, dict] = {}

    def list_bill_payments(self, bill_id):
        return [p for p in self.bill_payments.values() if p["billid"] == bill_id]

    def create_bill_payment(self, payload):
        new = {"id": str(len(self.bill_payments) + 1), **payload}
        self.bill_payments[new["id"]] = new
        return new

    def update_bill_payment(self, payment_id, changes):
        self.bill_payments[payment_id].update(changes)
        return self.bill_payments[payment_id]

    def delete_bill_payment(self, payment_id):
        return self.bill_payments.pop(payment_id)


def payment(pid: str, status: str, *applied: tuple[str, str]) -> dict:
    return {
        "id": pid,
        "singleStatus": status,
        "processDate": "2026-11-20",
        "fundingAccount": {"type": "BANK_ACCOUNT"},
        "billPayments": [{"id": blp, "billId": "00nBILL1", "amount": amount} for blp, amount in applied],
    }


def sync(store, bill, fb, run_id):
    engine = SyncEngine(PaymentSpec(bill, fb, store), store, RunInfo("dag", run_id, "upsert_payments"))
    counts: dict[str, int] = {}
    for batch in engine.extract(WINDOW):
        for outcome, n in engine.upsert(engine.match(batch)).counts.items():
            counts[outcome] = counts.get(outcome, 0) + n
    return counts


def test_settled_partials_add_up_once_and_a_void_is_undone(state_store):
    # The BILL bill 00nBILL1 was created by this integration from FreshBooks bill 7101.
    state_store.id_map.record(PAIR, "bill", ACCOUNT, "7101", ORG, "00nBILL1", "v|PFS-1041", "fp")
    bill, fb = FakeBill(), FakeFreshBooks()
    bill.payments = [payment("stp1", "SCHEDULED", ("blp1", "1000.00"))]
    assert sync(state_store, bill, fb, "r1") == {"skipped": 1}  # not settled yet: nothing written
    bill.payments = [payment("stp1", "CLEARED", ("blp1", "1000.00")), payment("stp2", "CLEARED", ("blp2", "1750.00"))]
    assert sync(state_store, bill, fb, "r2") == {"created": 2}
    assert sync(state_store, bill, fb, "r3") == {"unchanged": 2}
    assert sorted(p["amount"]["amount"] for p in fb.bill_payments.values()) == ["1000.00", "1750.00"]
    assert all(p["billid"] == "7101" and "BILL payment stp" in p["note"] for p in fb.bill_payments.values())
    bill.payments[1]["singleStatus"] = "VOIDED"  # BILL voided the second payment after it cleared
    assert sync(state_store, bill, fb, "r4") == {"unchanged": 1, "updated": 1}
    assert [p["amount"]["amount"] for p in fb.bill_payments.values()] == ["1000.00"]


def test_payment_on_a_bill_this_integration_did_not_create_is_skipped(state_store):
    bill, fb = FakeBill(), FakeFreshBooks()
    bill.payments = [payment("stp9", "CLEARED", ("blp9", "420.00"))]
    assert sync(state_store, bill, fb, "r1") == {"skipped": 1}
    assert fb.bill_payments == {}
