"""BigCommerce -> FreshBooks mapping rules: order in -> invoice / payment / refund payload, Skip or dead letter.

Records are shaped like the BigCommerce v2/v3 answers (money as 4-decimal strings in v2, numbers
in v3); the FreshBooks side is a small in-memory fake where a function calls the hook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_mlconnector.exceptions import MappingError, NotLinkedYetError, RecordError
from airflow_provider_mlconnector.operators.pair import Skip
from airflow_provider_mlconnector.pairs import PAIRS
from airflow_provider_mlconnector.pairs.bigcommerce_to_freshbooks import (
    PAIR,
    ROUNDING_LINE,
    InvoiceBooks,
    Settings,
    apply_refunds,
    client_payload,
    compare_invoice,
    find_applied_refunds,
    finish_invoice,
    invoice_books,
    invoice_payload,
    item_payload,
    our_invoices_by_number,
    payer,
    payment_payload,
    predicted_total,
    refunds_payload,
)

# ---------------------------------------------------------------------------------- fakes


class FakeResource:
    def __init__(self, rows: dict[int, dict[str, Any]], filters: tuple[str, ...] = ()) -> None:
        self.rows = rows
        self.calls: list[tuple[str, Any]] = []

    def list(self, **filters: Any) -> list[dict[str, Any]]:
        vis = int(filters.pop("vis_state", 0))
        rows = [
            r for r in self.rows.values() if int(r.get("vis_state", 0)) == vis or (vis == 0 and r.get("vis_state") == 2)
        ]
        return [r for r in rows if all(str(r.get(k)) == str(v) for k, v in filters.items())]

    def get(self, record_id: Any) -> dict[str, Any]:
        return dict(self.rows[int(record_id)])

    def update(self, record_id: Any, changes: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("update", record_id))
        self.rows[int(record_id)].update(changes)
        return self.get(record_id)

    def delete(self, record_id: Any) -> None:
        self.calls.append(("delete", record_id))
        self.rows[int(record_id)]["vis_state"] = 1

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        new_id = max(self.rows, default=0) + 1
        self.rows[new_id] = {"id": new_id, **body}
        self.calls.append(("create", new_id))
        return dict(self.rows[new_id])


class FakeInvoices(FakeResource):
    """Recomputes ``amount`` like FreshBooks: per line qty x unit cost plus its tax percentage."""

    def _computed(self, row: dict[str, Any]) -> dict[str, Any]:
        code = row.get("currency_code", "USD")
        lines = [
            {**li, "amount": {"amount": str(predicted_total([{**li, "taxAmount1": None}])), "code": code}}
            for li in row["lines"]
        ]
        return {**row, "lines": lines, "amount": {"amount": str(predicted_total(row["lines"])), "code": code}}

    def get(self, record_id: Any) -> dict[str, Any]:
        return self._computed(self.rows[int(record_id)])

    def act(self, record_id: Any, action: str) -> dict[str, Any]:
        self.calls.append((action, record_id))
        self.rows[int(record_id)]["status"] = 2
        return self.get(record_id)


class FakeFreshBooks:
    def __init__(self) -> None:
        self.invoices = FakeInvoices({})
        self.payments = FakeResource({})
        self.credit_notes = FakeResource({})


@dataclass
class FakeCtx:
    """What a transform sees: linked ids per entity, the settings, the FreshBooks hook."""

    links: dict[str, dict[str, str]] = field(default_factory=dict)
    reference: Any = field(default_factory=InvoiceBooks)
    mapped: bool = False
    target: Any = field(default_factory=FakeFreshBooks)

    def target_id(self, entity: str, source_id: object) -> str:
        try:
            return self.links[entity][str(source_id)]
        except KeyError:
            raise NotLinkedYetError(f"its {entity} {source_id} is not synced yet") from None


def linked(**extra: dict[str, str]) -> FakeCtx:
    links = {
        "client": {"avery.chen@example.com": "88101"},
        "item": {"77": "2301", "83": "2302"},
        "invoice": {"100": "120101"},
        "payment": {"100/1": "33101"},
    }
    return FakeCtx(links={**links, **extra})


# ---------------------------------------------------------------------------------- records


def product(
    sku: str = "SO-TENT-RL2P",
    name: str = "Ridgeline 2P Backpacking Tent",
    price: str = "349.00",
    qty: int = 1,
    rate: str = "0.08",
    product_id: int = 77,
) -> dict[str, Any]:
    unit = Decimal(price)
    tax = (unit * Decimal(rate)).quantize(Decimal("0.01"))
    return {
        "id": 1,
        "product_id": product_id,
        "variant_id": 0,
        "name": name,
        "sku": sku,
        "quantity": qty,
        "price_ex_tax": f"{unit:.4f}",
        "price_tax": f"{tax:.4f}",
        "total_ex_tax": f"{unit * qty:.4f}",
        "total_tax": f"{tax * qty:.4f}",
        "total_inc_tax": f"{(unit + tax) * qty:.4f}",
        "applied_discounts": [],
        "product_options": [],
    }


def order(status: int = 10, products: list[dict[str, Any]] | None = None, **changes: Any) -> dict[str, Any]:
    lines = (
        [product(), product("SO-ACC-TISTK8", "Titanium Tent Stake Set (8)", "39.50", product_id=83)]
        if products is None
        else products
    )
    items_inc = sum((Decimal(p["total_inc_tax"]) for p in lines), Decimal(0))
    shipping = Decimal(changes.pop("shipping", "12.00"))
    record = {
        "id": 100,
        "customer_id": 1,
        "status_id": status,
        "date_created": "Sat, 03 Oct 2026 15:12:09 +0000",
        "currency_code": "USD",
        "default_currency_code": "USD",
        "shipping_cost_ex_tax": f"{shipping:.4f}",
        "shipping_cost_tax": "0.0000",
        "handling_cost_ex_tax": "0.0000",
        "wrapping_cost_ex_tax": "0.0000",
        "total_inc_tax": f"{items_inc + shipping:.4f}",
        "billing_address": {
            "first_name": "Avery",
            "last_name": "Chen",
            "email": "Avery.Chen@example.com",
            "city": "Boulder",
        },
        "_customer": {"id": 1, "email": "avery.chen@example.com", "first_name": "Avery", "last_name": "Chen"},
        "_products": lines,
        "_transactions": [{"id": 1, "event": "purchase", "status": "ok", "amount": 431.58, "currency": "USD"}],
    }
    record.update(changes)
    return record


# ---------------------------------------------------------------------------------- the declaration


def test_the_pair_is_registered_and_writes_clients_and_items_before_invoices_payments_and_refunds() -> None:
    assert PAIRS["bigcommerce_to_freshbooks"] is PAIR
    assert [e.name for e in PAIR.entities] == ["client", "item", "invoice", "payment", "refund"]
    assert set(PAIR.entity("invoice").after) == {"client", "item"}
    assert PAIR.entity("refund").after == ("payment",)


# ---------------------------------------------------------------------------------- invoices


def test_a_paid_order_becomes_an_invoice_numbered_like_the_order_with_tax_percentages_and_shipping() -> None:
    payload = invoice_payload(order(), linked())
    assert isinstance(payload, dict)
    assert payload["invoice_number"] == "100"
    assert payload["customerid"] == 88101
    assert payload["create_date"] == "2026-10-03"
    assert payload["currency_code"] == "USD"
    names = [li["name"] for li in payload["lines"]]
    assert names == ["Ridgeline 2P Backpacking Tent", "Titanium Tent Stake Set (8)", "Shipping"]
    tent = payload["lines"][0]
    assert tent["description"] == "SKU SO-TENT-RL2P"
    assert tent["unit_cost"] == {"amount": "349.00", "code": "USD"}
    assert tent["taxAmount1"] == "8.000"
    assert "taxAmount1" not in payload["lines"][2]  # untaxed shipping
    assert predicted_total(payload["lines"]) == Decimal("431.58")


def test_the_optional_prefix_is_put_in_front_of_the_order_number() -> None:
    ctx = linked()
    ctx.reference = InvoiceBooks(prefix="BC-")
    payload = invoice_payload(order(), ctx)
    assert isinstance(payload, dict) and payload["invoice_number"] == "BC-100"


@pytest.mark.parametrize("status", [1, 5, 6, 7, 12, 13])
def test_an_unpaid_order_is_skipped_with_its_status(status: int) -> None:
    outcome = invoice_payload(order(status=status), linked())
    assert isinstance(outcome, Skip) and "not paid" in outcome.reason


def test_a_refunded_order_is_invoiced_only_when_it_was_captured() -> None:
    assert isinstance(invoice_payload(order(status=4), linked()), dict)
    uncaptured = order(status=14, _transactions=[{"id": 2, "event": "authorization", "status": "ok", "amount": 10}])
    assert isinstance(invoice_payload(uncaptured, linked()), Skip)


def test_a_cent_of_tax_rounding_becomes_one_rounding_adjustment_line() -> None:
    # 3 x 19.99 at 8.25 %: FreshBooks will compute 64.92; the order says 4 cents more (its own rounding).
    line = product("SO-TENT-RL2P", price="19.99", qty=3, rate="0.0825")
    record = order(products=[line], shipping="0")
    record["total_inc_tax"] = "64.9600"
    payload = invoice_payload(record, linked())
    assert isinstance(payload, dict)
    assert payload["lines"][-1]["name"] == ROUNDING_LINE
    assert predicted_total(payload["lines"]) == Decimal("64.96")


def test_a_total_far_from_what_freshbooks_computes_is_a_dead_letter_not_a_wrong_invoice() -> None:
    record = order()
    record["total_inc_tax"] = "400.0000"
    with pytest.raises(MappingError) as caught:
        invoice_payload(record, linked())
    assert caught.value.kind == "total_mismatch"


@pytest.mark.parametrize(
    ("change", "kind", "words"),
    [
        ({"_products": []}, "validation", "no products"),
        ({"_products": [product(sku="")]}, "validation", "no SKU"),
        ({"default_currency_code": "XYZ"}, "unknown_currency", "XYZ"),
        ({"_customer": None, "billing_address": {"first_name": "Jo"}}, "validation", "e-mail"),
    ],
)
def test_bad_orders_are_dead_letters_with_the_reason(change: dict[str, Any], kind: str, words: str) -> None:
    with pytest.raises(MappingError) as caught:
        invoice_payload(order(**change), linked())
    assert caught.value.kind == kind and words in caught.value.reason


def test_the_invoice_currency_is_the_transactional_currency() -> None:
    record = order(currency_code="USD", default_currency_code="EUR")
    payload = invoice_payload(record, linked())
    assert isinstance(payload, dict) and payload["currency_code"] == "EUR"
    assert payload["lines"][0]["unit_cost"]["code"] == "EUR"


def test_an_order_waits_for_its_client_and_items() -> None:
    with pytest.raises(NotLinkedYetError):
        invoice_payload(order(), FakeCtx(links={"client": {"avery.chen@example.com": "1"}}))


def test_a_number_taken_by_an_invoice_we_did_not_create_is_a_dead_letter_naming_it() -> None:
    ctx = linked()
    ctx.target.invoices.rows[777] = {"id": 777, "invoice_number": "100", "notes": "typed by hand", "lines": []}
    ctx.reference = invoice_books(None, ctx.target)
    assert our_invoices_by_number(ctx.reference, [{"invoice_number": "100"}]) == {}
    with pytest.raises(MappingError) as caught:
        invoice_payload(order(), ctx)
    assert caught.value.kind == "invoice_number_taken"
    assert "777" in caught.value.reason and "prefix" in caught.value.reason


def test_our_own_deleted_invoice_is_found_too_and_is_never_replaced() -> None:
    ctx = linked()
    ctx.target.invoices.rows[5] = {
        "id": 5,
        "invoice_number": "100",
        "vis_state": 1,
        "notes": "BigCommerce order 100 · total 431.58 USD",
        "lines": [],
    }
    ctx.reference = invoice_books(None, ctx.target)
    assert our_invoices_by_number(ctx.reference, [{"invoice_number": "100"}])["100"]["id"] == 5
    with pytest.raises(MappingError) as caught:
        invoice_payload(order(), ctx)
    assert caught.value.kind == "invoice_deleted"


def test_the_invoice_table_is_read_once_per_task_and_answers_every_order_of_it() -> None:
    fb = FakeFreshBooks()
    ours = {"notes": "BigCommerce order 100 · total 431.58 USD", "lines": []}
    fb.invoices.rows.update(
        {
            7: {"id": 7, "invoice_number": "100", **ours},
            9: {"id": 9, "invoice_number": "100", **ours},  # a duplicate a person made: the oldest is ours
            8: {"id": 8, "invoice_number": "101", "notes": "typed by hand", "lines": []},
        }
    )
    listed = []
    list_invoices = fb.invoices.list
    fb.invoices.list = lambda **filters: listed.append(filters) or list_invoices(**filters)
    books = invoice_books(None, fb)
    assert listed == []  # nothing is read until an order that is not invoiced yet asks
    found = our_invoices_by_number(books, [{"invoice_number": n} for n in ("100", "101", "102")])
    assert books.invoices_numbered("100") and len(listed) == 2  # active and deleted, once
    assert {number: invoice["id"] for number, invoice in found.items()} == {"100": 7}
    assert [i["id"] for i in books.invoices_numbered("101")] == [8] and books.invoices_numbered("102") == []


def test_finishing_adds_the_rounding_line_freshbooks_needs_and_marks_the_invoice_sent() -> None:
    fb = FakeFreshBooks()
    unit = {"amount": "19.99", "code": "USD"}
    fb.invoices.rows[1] = {
        "id": 1,
        "status": 1,
        "currency_code": "USD",
        "notes": "BigCommerce order 9 · total 64.96 USD",
        "lines": [{"name": "Tent", "qty": 3, "unit_cost": unit, "taxName1": "Tax", "taxAmount1": "8.250"}],
    }
    finished = finish_invoice(fb, fb.invoices.get(1))
    assert finished["amount"]["amount"] == "64.96"
    assert finished["status"] == 2
    assert [li["name"] for li in finished["lines"]] == ["Tent", ROUNDING_LINE]
    assert finish_invoice(fb, fb.invoices.get(1))["amount"]["amount"] == "64.96"  # idempotent


def test_finishing_refuses_a_total_beyond_the_tolerance_and_leaves_the_draft() -> None:
    fb = FakeFreshBooks()
    fb.invoices.rows[1] = {
        "id": 1,
        "status": 1,
        "notes": "BigCommerce order 9 · total 70.00 USD",
        "lines": [{"name": "Tent", "qty": 1, "unit_cost": {"amount": "60.00", "code": "USD"}}],
    }
    with pytest.raises(RecordError) as caught:
        finish_invoice(fb, fb.invoices.get(1))
    assert caught.value.kind == "total_mismatch"
    assert fb.invoices.rows[1]["status"] == 1


# ---------------------------------------------------------------------------------- clients and items


def test_a_guest_and_a_registered_customer_with_the_same_email_are_one_client() -> None:
    registered = payer(order())
    guest = payer(order(customer_id=0, _customer=None))
    assert registered["id"] == guest["id"] == "avery.chen@example.com"
    assert registered["guest"] is False and guest["guest"] is True


def test_a_client_is_written_with_its_email_lower_cased_and_a_guest_never_overwrites_it() -> None:
    guest = payer(order(customer_id=0, _customer=None))
    payload = client_payload(guest, FakeCtx())
    assert isinstance(payload, dict)
    assert payload["email"] == "avery.chen@example.com" and payload["fname"] == "Avery"
    assert isinstance(client_payload(guest, FakeCtx(mapped=True)), Skip)


def test_a_payer_without_email_is_a_dead_letter() -> None:
    person = payer(order(customer_id=0, _customer=None, billing_address={"first_name": "Jo"}))
    assert person["id"] == "order-100-without-email"
    with pytest.raises(MappingError):
        client_payload(person, FakeCtx())


def test_a_catalog_product_becomes_an_item_keyed_by_its_sku() -> None:
    catalog = {"id": 77, "name": "Ridgeline 2P Backpacking Tent ", "sku": "SO-TENT-RL2P", "price": 349}
    payload = item_payload(catalog, FakeCtx())
    assert payload == {
        "name": "Ridgeline 2P Backpacking Tent",
        "sku": "SO-TENT-RL2P",
        "description": "BigCommerce product 77",
    }
    assert PAIR.entity("item").natural_key(catalog, payload) == "SO-TENT-RL2P"


def test_a_catalog_product_without_sku_is_skipped_not_dead_lettered() -> None:
    assert isinstance(item_payload({"id": 90, "name": "Gift card", "sku": ""}, FakeCtx()), Skip)


def test_a_variant_line_carries_its_options_in_the_name_and_its_own_sku() -> None:
    line = product(sku="SO-JKT-STORM-M-GRN") | {
        "product_id": 77,
        "variant_id": 412,
        "product_options": [{"display_value": "M"}, {"display_value": "Green"}],
    }
    payload = invoice_payload(order(products=[line]), linked())
    assert isinstance(payload, dict)
    assert payload["lines"][0]["name"] == "Ridgeline 2P Backpacking Tent (M, Green)"
    assert payload["lines"][0]["description"] == "SKU SO-JKT-STORM-M-GRN"


def test_a_custom_product_outside_the_catalog_is_a_dead_letter() -> None:
    custom = product(sku="ENGRAVE") | {"product_id": 0, "name": "Custom engraving"}
    with pytest.raises(MappingError) as caught:
        invoice_payload(order(products=[custom]), linked())
    assert "custom product" in caught.value.reason


# ---------------------------------------------------------------------------------- payments


def capture(**changes: Any) -> dict[str, Any]:
    record = {
        "id": "100/1",
        "transaction_id": 1,
        "order_id": 100,
        "event": "purchase",
        "method": "credit_card",
        "amount": 431.58,
        "currency": "USD",
        "gateway": "authorizenet",
        "gateway_transaction_id": "60120000700",
        "date_created": "2026-10-03T15:12:09+00:00",
        "credit_card": {"card_type": "visa"},
    }
    return record | changes


def test_a_capture_becomes_a_payment_keyed_by_its_transaction_id() -> None:
    payload = payment_payload(capture(), linked())
    assert payload == {
        "invoiceid": 120101,
        "amount": {"amount": "431.58", "code": "USD"},
        "date": "2026-10-03",
        "type": "VISA",
        "note": "BigCommerce transaction 1 via authorizenet (gateway id 60120000700)",
    }


def test_a_paypal_capture_is_a_paypal_payment() -> None:
    payload = payment_payload(capture(method="offsite", gateway="paypalexpress", credit_card=None), linked())
    assert isinstance(payload, dict) and payload["type"] == "PayPal"


def test_a_capture_waits_for_its_invoice() -> None:
    with pytest.raises(NotLinkedYetError):
        payment_payload(capture(order_id=101), linked())


# ---------------------------------------------------------------------------------- refunds


def refunds(*items: dict[str, Any]) -> dict[str, Any]:
    return {"id": "100", "refunds": list(items), "captures": ["100/1"]}


def refund(refund_id: int, amount: float, provider: str = "authorizenet") -> dict[str, Any]:
    return {
        "id": refund_id,
        "order_id": 100,
        "created": "2026-10-25T15:40:10+00:00",
        "reason": "Cracked valve.",
        "total_amount": amount,
        "payments": [{"provider_id": provider, "amount": amount}],
    }


def invoiced_and_paid(fb: FakeFreshBooks) -> None:
    fb.invoices.rows[120101] = {
        "id": 120101,
        "status": 4,
        "invoice_number": "100",
        "customerid": 88101,
        "currency_code": "USD",
        "create_date": "2026-10-03",
        "notes": "BigCommerce order 100 · total 431.58 USD",
        "lines": [{"name": "Tent", "qty": 1, "unit_cost": {"amount": "431.58", "code": "USD"}}],
    }
    fb.payments.rows[33101] = {
        "id": 33101,
        "invoiceid": 120101,
        "amount": {"amount": "431.58", "code": "USD"},
        "note": "BigCommerce transaction 1 via x",
    }


def test_a_refund_to_the_card_reduces_the_invoice_and_the_payment_by_the_same_amount_once() -> None:
    fb = FakeFreshBooks()
    invoiced_and_paid(fb)
    payload = refunds_payload(refunds(refund(2, 64.95)), linked())
    assert isinstance(payload, dict)
    apply_refunds(fb, payload)
    invoice = fb.invoices.get(120101)
    assert invoice["amount"]["amount"] == "366.63"
    assert fb.payments.rows[33101]["amount"] == {"amount": "366.63", "code": "USD"}
    assert "[refund 2: -64.95]" in fb.payments.rows[33101]["note"]
    assert find_applied_refunds(fb, "120101|2") is not None
    calls = len(fb.payments.calls) + len(fb.invoices.calls)
    apply_refunds(fb, payload)  # a rerun: nothing applied twice
    assert len(fb.payments.calls) + len(fb.invoices.calls) == calls


def test_an_interrupted_refund_is_completed_without_reducing_the_payment_twice() -> None:
    fb = FakeFreshBooks()
    invoiced_and_paid(fb)
    fb.payments.rows[33101].update(
        amount={"amount": "366.63", "code": "USD"}, note="BigCommerce transaction 1 [refund 2: -64.95]"
    )
    assert find_applied_refunds(fb, "120101|2") is None  # the invoice line (written last) is missing
    payload = refunds_payload(refunds(refund(2, 64.95)), linked())
    assert isinstance(payload, dict)
    apply_refunds(fb, payload)
    assert fb.payments.rows[33101]["amount"]["amount"] == "366.63"
    assert fb.invoices.get(120101)["amount"]["amount"] == "366.63"


def test_a_full_refund_deletes_the_payment_and_leaves_nothing_outstanding() -> None:
    fb = FakeFreshBooks()
    invoiced_and_paid(fb)
    payload = refunds_payload(refunds(refund(1, 431.58)), linked())
    assert isinstance(payload, dict)
    apply_refunds(fb, payload)
    assert fb.invoices.get(120101)["amount"]["amount"] == "0.00"
    assert fb.payments.rows[33101]["vis_state"] == 1
    assert "deleted" in fb.payments.rows[33101]["note"]


def test_a_refund_to_store_credit_becomes_a_credit_note_and_leaves_the_payment() -> None:
    fb = FakeFreshBooks()
    invoiced_and_paid(fb)
    payload = refunds_payload(refunds(refund(3, 39.50, provider="storecredit")), linked())
    assert isinstance(payload, dict)
    apply_refunds(fb, payload)
    (note,) = fb.credit_notes.rows.values()
    assert note["credit_number"] == "100-R3" and note["clientid"] == 88101
    assert fb.payments.rows[33101]["amount"]["amount"] == "431.58"
    assert fb.invoices.get(120101)["amount"]["amount"] == "431.58"
    apply_refunds(fb, payload)
    assert len(fb.credit_notes.rows) == 1


def test_in_credit_note_mode_every_refund_becomes_a_credit_note() -> None:
    ctx = linked()
    ctx.reference = Settings(refund_mode="credit_note")
    payload = refunds_payload(refunds(refund(2, 64.95)), ctx)
    assert isinstance(payload, dict)
    assert payload["refunds"][0]["reduce"] == "0.00" and payload["refunds"][0]["credit"] == "64.95"


def test_refunds_wait_for_the_payments_they_reduce() -> None:
    ctx = linked()
    ctx.links["payment"] = {}
    with pytest.raises(NotLinkedYetError):
        refunds_payload(refunds(refund(2, 64.95)), ctx)


# ---------------------------------------------------------------------------------- reconciliation


def as_read(fb: FakeFreshBooks, paid: str) -> dict[str, Any]:
    """The invoice as FreshBooks answers a GET: its computed total, paid and outstanding."""
    invoice = fb.invoices.get(120101)
    total = Decimal(invoice["amount"]["amount"])
    return {**invoice, "paid": {"amount": paid, "code": "USD"}, "outstanding": {"amount": str(total - Decimal(paid))}}


def refunded(fb: FakeFreshBooks, *applied: dict[str, Any]) -> None:
    payload = refunds_payload(refunds(*applied), linked())
    assert isinstance(payload, dict)
    apply_refunds(fb, payload)


def test_an_invoice_that_matches_its_order_has_no_drift_before_and_after_refunds() -> None:
    fb = FakeFreshBooks()
    invoiced_and_paid(fb)
    assert compare_invoice(order(), as_read(fb, "431.58")) == []
    refunded(fb, refund(2, 64.95), refund(3, 39.50, provider="storecredit"))
    after = order(status=14, refunded_amount="104.4500")
    assert compare_invoice(after, as_read(fb, "366.63")) == []


def test_a_payment_deleted_in_freshbooks_is_named_with_what_is_outstanding() -> None:
    fb = FakeFreshBooks()
    invoiced_and_paid(fb)
    assert compare_invoice(order(), as_read(fb, "0.00")) == [
        "paid differs: BigCommerce captured 431.58 less 0.00 refunded to the payment, "
        "FreshBooks shows 0.00 paid, 431.58 outstanding"
    ]


def test_a_refund_not_on_the_invoice_and_a_total_edited_in_freshbooks_are_named() -> None:
    fb = FakeFreshBooks()
    invoiced_and_paid(fb)
    fb.invoices.rows[120101]["lines"][0]["unit_cost"] = {"amount": "421.58", "code": "USD"}
    problems = compare_invoice(order(status=14, refunded_amount="20.0000"), as_read(fb, "431.58"))
    assert problems[:2] == [
        "total differs: BigCommerce 431.58 USD, FreshBooks 421.58 (before refunds)",
        "refunded differs: BigCommerce 20.00, FreshBooks 0.00",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"status_id": 5}, "the order is Cancelled in BigCommerce, not paid, but FreshBooks invoice 100 stands"),
        ({"vis_state": 1}, "FreshBooks invoice 100 is deleted, the order is not"),
        ({"currency_code": "EUR"}, "currency differs: BigCommerce USD, FreshBooks EUR"),
        ({"status": 1}, "the FreshBooks invoice is still a draft: it is in no report"),
    ],
)
def test_an_order_no_longer_paid_or_an_invoice_deleted_moved_or_left_a_draft_is_drift(
    change: dict[str, Any], expected: str
) -> None:
    fb = FakeFreshBooks()
    invoiced_and_paid(fb)
    the_order, invoice = order(), as_read(fb, "431.58")
    (the_order if "status_id" in change else invoice).update(change)
    assert compare_invoice(the_order, invoice) == [expected]


def test_an_orders_revision_is_its_date_modified_once_settled_and_none_while_it_could_still_share_a_second():
    from email.utils import format_datetime

    from airflow_provider_mlconnector.pairs.bigcommerce_to_freshbooks import order_version

    old = format_datetime(datetime.now(timezone.utc) - timedelta(hours=1))
    assert order_version({"date_modified": old}) == old
    assert order_version({"date_modified": format_datetime(datetime.now(timezone.utc))}) is None
    assert order_version({"date_modified": "not a date"}) is None
    assert order_version({}) is None
