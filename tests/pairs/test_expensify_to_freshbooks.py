"""Expensify -> FreshBooks mapping rules, through the real engine and state store with small fake hooks.

The fakes keep only what the pair calls: Expensify's exporter (states, ids, labels) and
FreshBooks' resources (list with the documented filters, get, create, update).
"""

from __future__ import annotations

import copy
import itertools
from datetime import datetime, timezone

import pytest

from airflow_provider_mlconnector.exceptions import MappingError
from airflow_provider_mlconnector.operators.engine import RunInfo, SyncEngine
from airflow_provider_mlconnector.operators.pair import Ctx, Skip
from airflow_provider_mlconnector.operators.reconcile import reconcile
from airflow_provider_mlconnector.pairs import people
from airflow_provider_mlconnector.pairs.expensify_to_freshbooks import (
    BOOKING_VARIABLE,
    CATEGORY_OVERRIDES_VARIABLE,
    PAIR,
    TAG_CATEGORIES_VARIABLE,
    Books,
    bill_payload,
    cents,
    check_report,
)
from airflow_provider_mlconnector.state.watermarks import Window

POLICY, ACCOUNT = "B2A5D0E6F1C34A97", "BRT4201"
WINDOW = Window(start=None, end=datetime(2026, 11, 21, tzinfo=timezone.utc), is_backfill=False)
MAYA = "maya.okafor@brightside-marketing.example"
ids = itertools.count(9001)


class FakeExpensify:
    conn_type = "expensify"
    tenant = POLICY

    def __init__(self, reports):
        self.reports = {r["reportID"]: r for r in reports}
        self.labels: dict[str, set[str]] = {}
        self.exports = 0
        self.mark_calls = 0
        self.config = type("Config", (), {"export_label": "ml-connector"})()

    def export_reports(self, *, report_ids=None, states=("APPROVED", "REIMBURSED"), label=None, **dates):
        self.exports += 1
        wanted = {s.casefold() for s in states}
        return [
            copy.deepcopy(r)
            for r in self.reports.values()
            if r["status"].casefold() in wanted
            and (report_ids is None or r["reportID"] in report_ids)
            and (label is None or label not in self.labels.get(r["reportID"], set()))
        ]

    def mark_exported(self, report_ids, label):
        self.mark_calls += 1
        for report_id in report_ids:
            self.labels.setdefault(report_id, set()).add(label)


class Collection:
    def __init__(self, id_field="id", filters=(), rows=()):
        self.id_field = id_field
        self.filters = filters
        self.rows = {str(r[id_field]): dict(r) for r in rows}
        self.created: list[dict] = []

    def list(self, **filters):
        rows = [r for r in self.rows.values() if r.get("vis_state", 0) != 1]
        for name, value in filters.items():
            assert name in self.filters, f"undocumented filter {name}"
            rows = [r for r in rows if str(r.get(name)) == str(value)]
        return iter(copy.deepcopy(rows))

    def get(self, record_id):
        return copy.deepcopy(self.rows[str(record_id)])

    def create(self, body):
        record = {**copy.deepcopy(body), self.id_field: next(ids)}
        self.rows[str(record[self.id_field])] = record
        self.created.append(record)
        return copy.deepcopy(record)

    def update(self, record_id, changes):
        self.rows[str(record_id)].update(copy.deepcopy(changes))
        return self.get(record_id)


class FakeFreshBooks:
    conn_type = "freshbooks"
    tenant = ACCOUNT

    def __init__(self):
        self.bill_vendors = Collection("vendorid")
        self.bills = Collection(filters=("vendorid",))
        self.expenses = Collection()
        self.bill_payments = Collection()
        self.expense_categories = Collection(
            "categoryid",
            rows=[
                {"categoryid": 3004, "category": "Office Supplies"},
                {"categoryid": 3005, "category": "Meals & Entertainment"},
                {"categoryid": 3002, "category": "Software & Subscriptions"},
                {"categoryid": 3003, "category": "Advertising"},
                {"categoryid": 3010, "category": "Travel"},
            ],
        )
        self.ledger_accounts = Collection("uuid", rows=[{"uuid": "u1", "number": "6040", "name": "Office Supplies"}])
        self.staff = Collection(rows=[{"id": 1, "email": "owner@brightside.example"}, {"id": 7, "email": MAYA.upper()}])

    def paid(self, bill_id, amount):
        payment = self.bill_payments.create({"billid": bill_id, "amount": amount, "note": "by hand"})
        self.bills.rows[str(bill_id)]["status"] = "paid"
        self.bills.rows[str(bill_id)].setdefault("bill_payments", []).append(payment)


def expense(tid, amount, category, *, reimbursable=True, tag="", **more):
    return {
        "transactionID": tid,
        "merchant": f"Merchant {tid}",
        "modifiedMerchant": "",
        "amount": amount,
        "modifiedAmount": None,
        "convertedAmount": amount,
        "currency": "USD",
        "created": "2026-11-02",
        "modifiedCreated": "",
        "category": category,
        "categoryGlCode": "",
        "tag": tag,
        "comment": "",
        "reimbursable": reimbursable,
        **more,
    }


def report(rid, *expenses, status="Approved", email=MAYA, currency="USD", **more):
    return {
        "reportID": rid,
        "reportName": f"Report {rid}",
        "status": status,
        "accountEmail": email,
        "currency": currency,
        "total": sum(e["convertedAmount"] or 0 for e in expenses),
        "approved": "2026-11-03 10:02:55",
        "reimbursed": "2026-11-06 09:00:00" if status == "Reimbursed" else "",
        "transactionList": list(expenses),
        **more,
    }


def sync(store, expensify, fb, run_id, replay=()):
    counts: dict[str, dict[str, int]] = {}
    for entity in PAIR.entities:
        engine = SyncEngine(PAIR, entity, expensify, fb, store, RunInfo("expensify_to_freshbooks", run_id, entity.name))
        totals: dict[str, int] = {}
        for batch in engine.extract(WINDOW, replay_ids=replay):
            for outcome, n in engine.upsert(engine.match(batch)).counts.items():
                totals[outcome] = totals.get(outcome, 0) + n
        counts[entity.name] = totals
    return counts


def letters(store):
    """Active dead letters (open, or flagged for replay: parked records are both)."""
    return [x for x in store.dead_letters.list(pair=PAIR.name) if x.active]


MIXED = report(
    "R1",
    expense("T1", 8640, "Meals & Entertainment", comment="Kick-off lunch", tag="Northwind"),
    expense("T2", 3917, "Office Supplies"),
    expense("T3", 2599, "Software & Subscriptions", reimbursable=False),
)


def test_an_approved_report_becomes_one_bill_and_its_card_transaction_one_expense_then_a_rerun_writes_nothing(
    state_store,
):
    expensify, fb = FakeExpensify([copy.deepcopy(MIXED)]), FakeFreshBooks()
    counts = sync(state_store, expensify, fb, "r1")
    assert counts["person"] == {"created": 1} and counts["bill"] == {"created": 1}
    assert counts["expense"] == {"created": 1} and counts["label"] == {"created": 1}
    (vendor,) = fb.bill_vendors.rows.values()
    assert vendor["primary_contact_email"] == MAYA and vendor["vendor_name"] == "Maya Okafor"
    (bill,) = fb.bills.rows.values()
    assert bill["vendorid"] == str(vendor["vendorid"]) and bill["bill_number"] == "R1"
    assert bill["issue_date"] == "2026-11-03" and bill["currency_code"] == "USD"
    assert [(li["categoryid"], li["unit_cost"]["amount"]) for li in bill["lines"]] == [
        ("3005", "86.40"),
        ("3004", "39.17"),
    ]
    assert bill["lines"][0]["description"] == "Merchant T1 - Kick-off lunch (Northwind)"
    (card,) = fb.expenses.rows.values()
    assert card["amount"] == {"amount": "25.99", "code": "USD"} and card["categoryid"] == "3002"
    assert card["staffid"] == "7" and card["vendor"] == "Merchant T3" and card["date"] == "2026-11-02"
    assert card["notes"].startswith("Expensify report R1 (Report R1) / transaction T3")
    assert expensify.labels == {"R1": {"ml-connector"}}
    again = sync(state_store, expensify, fb, "r2")
    assert all(set(c) <= {"unchanged"} for c in again.values()), again
    assert len(fb.bills.created) == len(fb.expenses.created) == len(fb.bill_vendors.created) == 1


def test_the_employee_is_the_bill_vendor_that_already_has_their_e_mail_whatever_its_case(state_store):
    fb = FakeFreshBooks()
    fb.bill_vendors.rows["5555"] = {"vendorid": 5555, "vendor_name": "Maya O.", "primary_contact_email": MAYA.title()}
    counts = sync(state_store, FakeExpensify([copy.deepcopy(MIXED)]), fb, "r1")
    assert counts["person"] == {"matched_existing": 1}
    assert fb.bill_vendors.created == [] and fb.bills.created[0]["vendorid"] == "5555"


def test_an_unmapped_category_holds_the_whole_report_and_a_replay_after_an_override_writes_it_once(
    state_store, monkeypatch
):
    held = report(
        "R2",
        expense("T20", 18450, "Client Gifts"),
        expense("T21", 6420, "Meals & Entertainment"),
        expense("T22", 999, "Parking", reimbursable=False),
        expense("T23", 500, "Office Supplies", reimbursable=False),
    )
    expensify, fb = FakeExpensify([held, copy.deepcopy(MIXED)]), FakeFreshBooks()
    counts = sync(state_store, expensify, fb, "r1")
    assert counts["bill"] == {"quarantined": 1, "created": 1}  # R1 is written, R2 is held
    assert counts["expense"] == {"waiting": 2, "created": 1}
    assert [b["bill_number"] for b in fb.bills.created] == ["R1"] and len(fb.expenses.created) == 1
    (letter,) = [x for x in letters(state_store) if x.error_kind == "manual_reconciliation"]
    assert letter.entity == "bill" and letter.source_id == "R2"
    assert "'Client Gifts'" in letter.reason and "'Parking'" in letter.reason  # every missing reference
    assert "R2" not in expensify.labels

    monkeypatch.setenv(
        f"AIRFLOW_VAR_{CATEGORY_OVERRIDES_VARIABLE.upper()}", '{"Client Gifts": "Meals & Entertainment"}'
    )
    counts = sync(state_store, expensify, fb, "r2", replay=[letter.id])
    assert counts["bill"] == {"quarantined": 1, "unchanged": 1}  # Parking is still unmapped
    monkeypatch.setenv(
        f"AIRFLOW_VAR_{CATEGORY_OVERRIDES_VARIABLE.upper()}", '{"Client Gifts": "3005", "Parking": "Travel"}'
    )
    (letter,) = [x for x in letters(state_store) if x.error_kind == "manual_reconciliation"]
    counts = sync(state_store, expensify, fb, "r3", replay=[letter.id])
    assert counts["bill"] == {"created": 1, "unchanged": 1} and counts["expense"] == {"created": 2, "unchanged": 1}
    r2 = next(b for b in fb.bills.created if b["bill_number"] == "R2")
    assert [li["categoryid"] for li in r2["lines"]] == ["3005", "3005"]
    assert sorted(e["categoryid"] for e in fb.expenses.created) == ["3002", "3004", "3010"]
    assert letters(state_store) == [] and "ml-connector" in expensify.labels["R2"]
    assert expensify.mark_calls == 2  # one call per approval month: R1 alone, then R1 and R2 (same month)
    sync(state_store, expensify, fb, "r4")
    assert len(fb.bills.created) == 2 and len(fb.expenses.created) == 3


def test_a_reimbursed_report_gets_one_bill_payment_dated_the_reimbursement(state_store):
    expensify, fb = FakeExpensify([report("R3", expense("T30", 35000, "Advertising"))]), FakeFreshBooks()
    assert sync(state_store, expensify, fb, "r1")["payment"] == {}
    expensify.reports["R3"].update(status="Reimbursed", reimbursed="2026-11-08 09:00:00")
    assert sync(state_store, expensify, fb, "r2")["payment"] == {"created": 1}
    (payment,) = fb.bill_payments.created
    assert payment["amount"] == {"amount": "350.00", "code": "USD"} and payment["paid_date"] == "2026-11-08"
    assert payment["billid"] == str(fb.bills.created[0]["id"])
    assert sync(state_store, expensify, fb, "r3")["payment"] == {"unchanged": 1}
    assert len(fb.bill_payments.created) == 1


def test_a_report_edited_after_approval_updates_its_bill_unless_freshbooks_shows_it_paid(state_store):
    expensify, fb = FakeExpensify([report("R4", expense("T40", 1000, "Advertising"))]), FakeFreshBooks()
    sync(state_store, expensify, fb, "r1")
    expensify.reports["R4"]["transactionList"][0]["convertedAmount"] = 1250
    assert sync(state_store, expensify, fb, "r2")["bill"] == {"updated": 1}
    (bill,) = fb.bills.rows.values()
    assert bill["lines"][0]["unit_cost"]["amount"] == "12.50" and len(fb.bills.created) == 1
    fb.paid(bill["id"], {"amount": "12.50", "code": "USD"})
    expensify.reports["R4"]["transactionList"][0]["convertedAmount"] = 1300
    assert sync(state_store, expensify, fb, "r3")["bill"] == {"quarantined": 1}
    (letter,) = letters(state_store)
    assert letter.error_kind == "manual_reconciliation" and "paid" in letter.reason


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        (report("R5", expense("T50", 1000, "Advertising"), currency="EUR"), "currency_mismatch"),
        (report("R5", expense("T50", 1000, "Advertising"), expense("T51", -1000, "Advertising")), "validation"),
        (report("R5", expense("T50", 1000, "Advertising"), status="Closed"), "validation"),
        (report("R5", expense("T50", None, "Advertising", convertedAmount=None)), "malformed"),
    ],
    ids=["another-currency", "zero-total", "unknown-state", "no-amount"],
)
def test_a_bad_report_is_a_dead_letter_with_the_reason_and_the_others_are_written(state_store, bad, kind):
    expensify = FakeExpensify([bad, copy.deepcopy(MIXED)])
    expensify.export_reports = lambda _orig=expensify.export_reports, **kw: _orig(
        **{**kw, "states": ("Approved", "Reimbursed", "Closed")}
    )
    fb = FakeFreshBooks()
    counts = sync(state_store, expensify, fb, "r1")
    assert counts["bill"] == {"quarantined": 1, "created": 1}
    (letter,) = letters(state_store)
    assert (letter.source_id, letter.error_kind) == ("R5", kind)
    assert [b["bill_number"] for b in fb.bills.created] == ["R1"]


def test_a_refund_line_is_booked_exactly_and_cents_are_never_rounded():
    assert cents(-1999) == cents("-1999") and str(cents(-1999)) == "-19.99"
    with pytest.raises(ValueError, match="whole number of cents"):
        cents("12.5")


@pytest.mark.parametrize(
    ("booking", "on_bill", "as_expenses"), [("bills", 3, 0), ("expenses", 0, 3)], ids=["bills", "expenses"]
)
def test_everything_can_be_booked_as_bills_or_everything_as_expenses(
    state_store, monkeypatch, booking, on_bill, as_expenses
):
    monkeypatch.setenv(f"AIRFLOW_VAR_{BOOKING_VARIABLE.upper()}", booking)
    fb = FakeFreshBooks()
    sync(state_store, FakeExpensify([copy.deepcopy(MIXED)]), fb, "r1")
    assert sum(len(b["lines"]) for b in fb.bills.created) == on_bill
    assert len(fb.expenses.created) == as_expenses
    assert len(fb.bill_vendors.created) == (1 if on_bill else 0)


def books(**changes):
    reference = Books(
        categories={"3004": "3004", "office supplies": "3004", "3010": "3010", "travel": "3010"},
        ledger_names={"6040": "Office Supplies"},
    )
    return Books(**{**reference.__dict__, **changes})


def test_a_category_maps_by_override_then_gl_code_then_name():
    by_gl = expense("T1", 100, "Supplies (new)", categoryGlCode="6040")
    assert books().category_for(by_gl) == ("3004", None)
    assert books(overrides={"Supplies (new)": "Travel"}).category_for(by_gl) == ("3010", None)
    assert books().category_for(expense("T2", 100, "office supplies")) == ("3004", None)
    category, problem = books().category_for(expense("T3", 100, "Gifts", categoryGlCode="7777"))
    assert category is None and "GL code 7777" in problem and CATEGORY_OVERRIDES_VARIABLE in problem


def test_with_tag_categories_a_tag_books_the_expense_and_an_unmapped_tag_holds_the_report():
    reference = books(tag_categories={"Harbor Rebrand": "Travel"})
    assert reference.category_for(expense("T1", 100, "Office Supplies", tag="Harbor Rebrand")) == ("3010", None)
    assert reference.category_for(expense("T2", 100, "Office Supplies")) == ("3004", None)
    with pytest.raises(MappingError) as caught:
        check_report(report("R9", expense("T3", 100, "Office Supplies", tag="Lumen")), reference)
    assert caught.value.kind == "manual_reconciliation" and TAG_CATEGORIES_VARIABLE in caught.value.reason


def test_an_employee_without_an_e_mail_holds_the_report():
    with pytest.raises(MappingError) as caught:
        check_report(report("R8", expense("T1", 100, "Office Supplies"), email=""), books())
    assert caught.value.kind == "manual_reconciliation" and "e-mail" in caught.value.reason


def test_a_report_with_only_card_expenses_has_no_bill():
    ctx = Ctx(None, None, books(), False, {})
    outcome = bill_payload(report("R7", expense("T1", 100, "Office Supplies", reimbursable=False)), ctx)
    assert isinstance(outcome, Skip)


def test_the_person_key_is_the_case_folded_e_mail_shared_with_the_bamboohr_pair():
    assert people.person_key("  Maya.Okafor@Brightside-Marketing.EXAMPLE ") == MAYA
    assert people.display_name("theo.lindqvist@x.example") == "Theo Lindqvist"


# ---------------------------------------------------------------------------------- reconciliation


class RenderedBills(Collection):
    """Bills read back as FreshBooks renders them: total and status computed from lines and payments."""

    def get(self, record_id):
        bill = super().get(record_id)
        total = sum(cents(round(float(li["unit_cost"]["amount"]) * 100)) for li in bill["lines"])
        bill.setdefault("status", "unpaid")
        return {**bill, "total_amount": {"amount": str(total), "code": bill["currency_code"]}}


def test_reconciling_reads_the_reports_in_one_export_per_entity_and_names_what_changed_behind_its_back(state_store):
    two = report("R5", expense("T50", 4200, "Travel"), expense("T51", 1999, "Office Supplies", reimbursable=False))
    expensify, fb = FakeExpensify([copy.deepcopy(MIXED), two]), FakeFreshBooks()
    fb.bills = RenderedBills(filters=("vendorid",))
    sync(state_store, expensify, fb, "r1")
    before = expensify.exports
    clean = reconcile(PAIR, expensify, fb, state_store)
    assert {e.entity: (e.checked, e.drift) for e in clean.entities} == {"bill": (2, []), "expense": (2, [])}
    assert expensify.exports - before == 2  # one export of both reports for the bills, one for the expenses

    r1 = next(b for b in fb.bills.rows.values() if b["bill_number"] == "R1")
    r1["lines"][0]["unit_cost"] = {"amount": "80.00", "code": "USD"}  # edited in FreshBooks
    card = next(e for e in fb.expenses.rows.values() if "transaction T51" in e["notes"])
    card["vis_state"] = 1  # deleted in FreshBooks
    expensify.reports["R5"].update(status="Reimbursed", reimbursed="2026-11-08 09:00:00")  # no sync since
    del expensify.reports["R1"]  # sent back to Open: the exporter no longer returns it
    drift = {(d.entity, d.source_id): d.problems for d in reconcile(PAIR, expensify, fb, state_store).drift}
    assert drift == {
        ("bill", "R1"): [
            "missing in expensify: bill R1 is no longer exported (deleted, or sent back to Open in Expensify)"
        ],
        ("bill", "R5"): ["reimbursed in Expensify, but the FreshBooks bill is unpaid"],
        ("expense", "R1/T3"): [
            "missing in expensify: expense R1/T3 is no longer exported (deleted, or sent back to Open in Expensify)"
        ],
        ("expense", "R5/T51"): [f"FreshBooks expense {card['id']} is deleted, the Expensify transaction is not"],
    }

    expensify.reports["R1"] = copy.deepcopy(MIXED)
    (edited,) = [d for d in reconcile(PAIR, expensify, fb, state_store).drift if d.source_id == "R1"]
    assert edited.problems == ["total differs: Expensify 125.57 (reimbursable expenses), FreshBooks 119.17"]


def test_a_months_reports_are_labelled_in_calls_of_a_bounded_size(monkeypatch):
    from airflow_provider_mlconnector.pairs import expensify_to_freshbooks as pair

    calls: list[list[str]] = []

    class Labeller:
        def mark_exported(self, report_ids, label):
            calls.append(list(report_ids))

    monkeypatch.setattr(pair, "LABEL_CALL_MAX_REPORTS", 2)
    written = pair.apply_label(
        Labeller(), {"label": "ml-connector", "month": "2026-11", "reportIDs": ["R1", "R2", "R3"]}
    )
    assert calls == [["R1", "R2"], ["R3"]] and written == {"id": "ml-connector|2026-11"}
