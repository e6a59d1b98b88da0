"""FreshBooks -> BILL mapping rules with in-memory hooks: payments back, currencies, retiring.

The engine is the real one (real state store); only the two vendors are small fakes.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_provider_mlconnector.exceptions import MappingError
from airflow_provider_mlconnector.operators.engine import RunInfo, SyncEngine
from airflow_provider_mlconnector.operators.pair import Ctx, Retire, Skip
from airflow_provider_mlconnector.pairs.freshbooks_to_bill import (
    PAIR,
    BillReference,
    GLMapping,
    bill_payload,
    payment_payload,
)
from airflow_provider_mlconnector.state.watermarks import Window

ORG, ACCOUNT = "00802BRTSIDEMKT0001A", "BRT4201"
WINDOW = Window(start=None, end=datetime(2026, 11, 21, tzinfo=timezone.utc), is_backfill=False)


class Rows:
    """A tiny stand-in for a hook resource (``hook.<resource>.list/get/create/update/delete``)."""

    def __init__(self, rows=None, *, listed=lambda rows: rows) -> None:
        self.rows: dict[str, dict] = {str(r["id"]): r for r in rows or []}
        self.listed = listed

    def list(self, **filters):
        return list(self.listed(list(self.rows.values())))

    def get(self, record_id):
        return self.rows[str(record_id)]

    def create(self, body):
        new = {"id": str(len(self.rows) + 1), **body}
        self.rows[new["id"]] = new
        return new

    def update(self, record_id, changes):
        self.rows[str(record_id)].update(changes)
        return self.rows[str(record_id)]

    def delete(self, record_id):
        return self.rows.pop(str(record_id))


class FakeBill:
    conn_type = "bill"
    tenant = ORG

    def __init__(self) -> None:
        self.in_window = True  # False: the watermark moved past them (still readable by id)
        self.payments = Rows(listed=lambda rows: rows if self.in_window else [])
        self.vendors = Rows([{"id": "009V1", "name": "Pixel Forge Studio"}, {"id": "009V2", "billCurrency": "CAD"}])

    def pay(self, *payments):
        self.payments.rows = {p["id"]: p for p in payments}


class FakeFreshBooks:
    conn_type = "freshbooks"
    tenant = ACCOUNT

    def __init__(self) -> None:
        self.bill_payments = Rows()
        outer = self

        class Bills:
            def get(self, bill_id):
                return {
                    "id": bill_id,
                    "bill_payments": [p for p in outer.bill_payments.list() if p["billid"] == bill_id],
                }

        self.bills = Bills()


def payment(pid: str, status: str, *applied: tuple[str, str], bill_id: str = "00nBILL1", vendor: str = "009V1"):
    return {
        "id": pid,
        "vendorId": vendor,
        "singleStatus": status,
        "processDate": "2026-11-20",
        "fundingAccount": {"type": "BANK_ACCOUNT"},
        "billPayments": [{"id": blp, "billId": bill_id, "amount": amount} for blp, amount in applied],
    }


def sync(store, bill, fb, run_id):
    engine = SyncEngine(PAIR, PAIR.entity("payment"), fb, bill, store, RunInfo("dag", run_id, "upsert_payments"))
    counts: dict[str, int] = {}
    for batch in engine.extract(WINDOW):
        for outcome, n in engine.upsert(engine.match(batch)).counts.items():
            counts[outcome] = counts.get(outcome, 0) + n
    return counts


def link_bill(store, fb_bill="7101", bill_id="00nBILL1"):
    store.id_map.record(PAIR.name, "bill", ACCOUNT, fb_bill, ORG, bill_id, f"009V1|PFS-{fb_bill}", "fp")


def test_settled_partials_add_up_once_and_a_void_is_undone(state_store):
    link_bill(state_store)
    bill, fb = FakeBill(), FakeFreshBooks()
    bill.pay(payment("stp1", "SCHEDULED", ("blp1", "1000.00")))
    assert sync(state_store, bill, fb, "r1") == {"skipped": 1}  # not settled yet: nothing written
    bill.pay(payment("stp1", "CLEARED", ("blp1", "1000.00")), payment("stp2", "CLEARED", ("blp2", "1750.00")))
    assert sync(state_store, bill, fb, "r2") == {"created": 2}
    assert sync(state_store, bill, fb, "r3") == {"unchanged": 2}
    assert sorted(p["amount"]["amount"] for p in fb.bill_payments.rows.values()) == ["1000.00", "1750.00"]
    assert all(p["billid"] == "7101" and "BILL payment stp" in p["note"] for p in fb.bill_payments.rows.values())
    bill.payments.rows["stp2"]["singleStatus"] = "VOIDED"  # BILL voided the second payment after it cleared
    assert sync(state_store, bill, fb, "r4") == {"unchanged": 1, "retired": 1}
    assert [p["amount"]["amount"] for p in fb.bill_payments.rows.values()] == ["1000.00"]
    assert sync(state_store, bill, fb, "r5") == {"unchanged": 2}


@pytest.mark.parametrize("status", ["DISBURSEMENT_FAILED_VENDOR_BANK_REJECTED", "FUNDING_FAILED_ACTION_NEEDED"])
def test_a_payment_that_fails_or_is_returned_after_it_cleared_is_removed_from_freshbooks(state_store, status):
    link_bill(state_store)
    bill, fb = FakeBill(), FakeFreshBooks()
    bill.pay(payment("stp1", "CLEARED", ("blp1", "500.00")))
    assert sync(state_store, bill, fb, "r1") == {"created": 1}
    bill.payments.rows["stp1"]["singleStatus"] = status
    assert sync(state_store, bill, fb, "r2") == {"retired": 1}
    assert fb.bill_payments.rows == {}


def test_a_payment_whose_bill_is_not_linked_yet_waits_and_is_written_once_the_bill_is(state_store):
    bill, fb = FakeBill(), FakeFreshBooks()
    bill.pay(payment("stp9", "CLEARED", ("blp9", "420.00")))
    assert sync(state_store, bill, fb, "r1") == {"waiting": 1}
    assert fb.bill_payments.rows == {}
    link_bill(state_store)  # the bill syncs (or is matched) later
    bill.in_window = False  # and the payment is no longer in the watermark window
    assert sync(state_store, bill, fb, "r2") == {"created": 1}
    assert [p["amount"]["amount"] for p in fb.bill_payments.rows.values()] == ["420.00"]


def test_a_cleared_payment_without_bill_payments_is_dead_lettered_not_dropped(state_store):
    bill, fb = FakeBill(), FakeFreshBooks()
    bill.pay({"id": "stp7", "singleStatus": "CLEARED", "amount": 100})
    assert sync(state_store, bill, fb, "r1") == {"quarantined": 1}
    (letter,) = state_store.dead_letters.list(status="open", pair=PAIR.name)
    assert letter.error_kind == "unknown_payment_shape" and letter.source_id == "stp7"


def test_a_null_payment_amount_is_dead_lettered_and_the_other_payments_are_written(state_store):
    link_bill(state_store)
    bill, fb = FakeBill(), FakeFreshBooks()
    bill.pay(payment("stp1", "CLEARED", ("blp1", None)), payment("stp2", "CLEARED", ("blp2", "10.00")))
    assert sync(state_store, bill, fb, "r1") == {"quarantined": 1, "created": 1}


def test_payments_back_are_written_in_the_bills_currency(state_store):
    link_bill(state_store, "7200", "00nCAD")
    bill, fb = FakeBill(), FakeFreshBooks()
    bill.pay(payment("stp3", "CLEARED", ("blp3", "99.90"), bill_id="00nCAD", vendor="009V2"))
    assert sync(state_store, bill, fb, "r1") == {"created": 1}
    (written,) = fb.bill_payments.rows.values()
    assert written["amount"] == {"amount": "99.90", "code": "CAD"}


def ctx(reference=None, mapped=False, vendors=None):
    class Stream:
        def __init__(self, targets):
            self.targets = targets

        def mapping(self, source_id):
            target = self.targets.get(source_id)
            return type("M", (), {"target_id": target})() if target else None

    return Ctx(None, None, reference, mapped, {"vendor": Stream(vendors or {"11": "009V1", "12": "009V2"})})


def fb_bill(**changes):
    bill = {
        "id": 7101,
        "vendorid": 11,
        "bill_number": "PFS-1041",
        "issue_date": "2026-11-02",
        "due_date": "2026-12-02",
        "currency_code": "USD",
        "vis_state": 0,
        "total_amount": {"amount": "100.00", "code": "USD"},
        "lines": [{"categoryid": 5, "total_amount": {"amount": "100.00", "code": "USD"}, "description": "Design"}],
    }
    bill.update(changes)
    return bill


REFERENCE = BillReference(GLMapping({"5": "0ca1"}, {"5": "Design"}), {"009V1": "USD", "009V2": "CAD"})


def test_a_bill_in_another_currency_than_bill_books_it_in_is_a_dead_letter_naming_both():
    with pytest.raises(MappingError) as caught:
        bill_payload(fb_bill(currency_code="CAD", total_amount={"amount": "10000.00", "code": "CAD"}), ctx(REFERENCE))
    assert caught.value.kind == "currency_mismatch"
    assert "CAD" in caught.value.reason and "USD" in caught.value.reason


def test_a_bill_in_its_vendors_billing_currency_is_sent():
    cad = fb_bill(vendorid=12, currency_code="CAD", total_amount={"amount": "100.00", "code": "CAD"})
    payload = bill_payload(cad, ctx(REFERENCE))
    assert isinstance(payload, dict) and payload["vendorId"] == "009V2"


def test_an_archived_bill_is_retired_and_a_draft_payment_is_skipped():
    assert isinstance(bill_payload(fb_bill(vis_state=2), ctx(REFERENCE)), Retire)
    pending = {"status": "SCHEDULED", "billPaymentId": "blp1", "billId": "x"}
    assert isinstance(payment_payload(pending, ctx({})), Skip)
