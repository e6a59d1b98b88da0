"""BigCommerce -> FreshBooks: paid orders become sent invoices with their payments, refunds reflected.

Mapping rules an accountant can check:

* **Which orders**: paid statuses (2 Shipped, 3 Partially Shipped, 8 Awaiting Pickup, 9 Awaiting
  Shipment, 10 Completed, 11 Awaiting Fulfillment), and refunded orders (4 Refunded, 14 Partially
  Refunded) that have a successful capture. Every other status (Pending, Awaiting Payment,
  Cancelled, Declined, Disputed, Manual Verification...) is skipped with its reason; a status change
  moves ``date_modified``, so the order is read again and invoiced once it is paid. Orders are read
  by ``min_date_modified`` from the watermark (with the store's overlap), keyed on ``status_id``,
  never on the merchant-editable label. An order listed again at the ``date_modified`` its invoice
  was synced at is unchanged: its products and transactions are not read again (a date less than
  :data:`SETTLED` old is not trusted for that: BigCommerce keeps it to the second).
* **Clients**: one FreshBooks client per e-mail address (case-insensitive, stored lower-case): a
  registered customer's account e-mail, a guest's (customer 0) billing e-mail. A guest and a
  registered customer with the same e-mail are the same client. Found by the ID map, then by
  ``search[email]`` (as written and lower-cased), else created. A guest order never overwrites the
  details of a client already synced. A payer without an e-mail is a dead letter.
* **Items**: one FreshBooks item per BigCommerce catalog product (read by ``date_modified:min``),
  matched by ``search[sku]`` (exact), else created with the product's name; a product without a
  SKU is skipped until it has one. A SKU moved from one product to another is a dead letter
  (``duplicate_natural_key``) until the two are told apart. FreshBooks invoice lines cannot
  reference an item id: each line carries the product's name as ordered (plus a variant's option
  values) and ``SKU <sku>`` (the variant's SKU when ordered as a variant) in its description. An
  order line without a SKU, or a custom product that is not in the catalog, dead-letters its order.
* **Invoices**: number = the order number, with the optional prefix of the Airflow Variable
  ``mlconnector_bigcommerce_to_freshbooks_invoice_prefix`` (always sent: no 409 on concurrent
  creates). Before creating, the number is looked up, deleted invoices included (FreshBooks never
  reuses a number): taken by an invoice this integration did not create (its notes lack the
  ``BigCommerce order <n>`` marker) is a dead letter ``invoice_number_taken`` naming that invoice;
  ours but deleted is ``invoice_deleted``. Currency = the order's transactional currency
  (``default_currency_code``); an unknown code is a dead letter ``unknown_currency``. Date = the
  order's creation date.
* **Lines**: one per order product (quantity, ex-tax unit price; a unit price with fractions of a
  cent becomes one line of the line total), a ``Discount`` line per discounted product, and
  ``Shipping``, ``Handling`` and ``Gift wrapping`` lines when non-zero. Tax is a FreshBooks tax
  percentage per line (``taxAmount1``, 3 decimals, from the line's tax / ex-tax amounts);
  FreshBooks computes the tax amounts itself. The FreshBooks total is predicted line by line
  (half-up cents) and compared with ``total_inc_tax``: up to :data:`ROUNDING_TOLERANCE` (5 cents)
  becomes one ``Rounding adjustment`` line, so the totals match to the cent; more is a dead letter
  ``total_mismatch`` and nothing is written. After creating, FreshBooks' own total is compared
  again (and the adjustment corrected within the tolerance, else the invoice stays a draft, out of
  the reports, and the order is dead-lettered). Then the invoice is **marked sent**.
* **Payments**: one FreshBooks payment per successful ``purchase``/``capture`` transaction, keyed by
  the BigCommerce transaction id (in the note, with the gateway and its transaction id), for its
  amount and date; type from the card brand or method (``VISA``, ``PayPal``, ``Credit``...). A
  payment in another currency than its invoice is a dead letter. The invoice shows paid or partial.
* **Refunds** (FreshBooks has no refund API): all refunds of one order are one record, so they are
  applied one at a time per order and each exactly once (keyed by refund id: the ``Refund <id>``
  invoice line is written last and marks it applied). Refunds to the original payment method
  (default mode ``reduce``): the invoice gets a negative ``Refund <id>`` line for the refunded
  amount (tax included) and the recorded payments are reduced by it, newest first, each noting the
  refund (a payment reduced to zero is deleted): the invoice total, the payments and the net cash
  then all equal what the customer finally paid, and nothing is outstanding. Refunds to store credit
  (or every refund, in mode ``credit_note`` of the Variable
  ``mlconnector_bigcommerce_to_freshbooks_refund_mode``) become a FreshBooks credit note for the
  client numbered ``<invoice number>-R<refund id>``; the invoice gets a zero ``Refund <id>`` line
  naming it.
* **Bad input** (an order without products, a product without a SKU, an unknown currency, a
  payer without an e-mail): a dead letter with the reason; the rest of the batch is written.

**Params**: ``dry_run``, ``full_resync``, ``replay_dead_letters`` (as every pair). Webhooks:
``store/order/*`` deliveries (order created/updated/status/refund, id only) trigger a run that
reads the changed orders; the schedule is the backstop (BigCommerce deactivates failing hooks).
"""

from __future__ import annotations

import email.utils
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_mlconnector.exceptions import (
    ConfigurationError,
    MappingError,
    RecordError,
    WriteOutcomeUnknownError,
)
from airflow_provider_mlconnector.hooks.bigcommerce import PAID_STATUS_IDS, READS_AT_ONCE, BigCommerceHook
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook, VisState, money, parse_money
from airflow_provider_mlconnector.operators.pair import Ctx, Entity, Outcome, Pair, Record, Skip
from airflow_provider_mlconnector.operators.reconcile import Reconciliation
from airflow_provider_mlconnector.pairs.variables import variable

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state.watermarks import Window

T = TypeVar("T")
PREFIX_VARIABLE = "mlconnector_bigcommerce_to_freshbooks_invoice_prefix"
REFUND_MODE_VARIABLE = "mlconnector_bigcommerce_to_freshbooks_refund_mode"
REFUND_MODES = ("reduce", "credit_note")
CENT = Decimal("0.01")
PERCENT = Decimal("0.001")
ZERO = Decimal("0")
#: The largest gap between FreshBooks' recomputed total and the order total that is rounding:
#: FreshBooks recomputes tax per line from a 3-decimal percentage, a few cents per order at most.
ROUNDING_TOLERANCE = Decimal("0.05")
REFUNDED_STATUSES = frozenset({4, 14})
STATUS_NAMES = {
    0: "Incomplete",
    1: "Pending",
    5: "Cancelled",
    6: "Declined",
    7: "Awaiting Payment",
    12: "Manual Verification Required",
    13: "Disputed",
}
CAPTURE_EVENTS = frozenset({"purchase", "capture"})
STORE_CREDIT = "storecredit"
ROUNDING_LINE = "Rounding adjustment"
#: Marks an invoice this integration created (and carries the order total it must add up to).
MARKER = re.compile(r"BigCommerce order (\d+) · total (-?\d+\.\d{2}) ([A-Z]{3})")
REFUND_LINE = re.compile(r"^Refund (\d+)\b")
#: ISO 4217 codes (active ones): an order in anything else cannot be invoiced.
ISO_4217 = """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
    GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP
    LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL"""
CURRENCIES = frozenset(ISO_4217.split())
#: FreshBooks payment types (FB-JS enum) by BigCommerce card brand, gateway or method.
CARD_TYPES = {
    "visa": "VISA",
    "mastercard": "MASTERCARD",
    "amex": "AMEX",
    "american_express": "AMEX",
    "discover": "DISCOVER",
    "diners": "DINERS",
    "jcb": "JCB",
}
GATEWAY_TYPES = {"paypalexpress": "PayPal", "paypal": "PayPal", "braintreepaypal": "PayPal", "2checkout": "2Checkout"}
METHOD_TYPES = {"credit_card": "Credit Card", "store_credit": "Credit", "gift_certificate": "Credit"}


def cents(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------------------------- settings


def setting(name: str, default: str) -> str:
    value = variable(name)
    return default if value is None else value.strip()


@dataclass(frozen=True)
class Settings:
    """What the user chose: the invoice number prefix and how refunds are reflected."""

    prefix: str = ""
    refund_mode: str = "reduce"

    @classmethod
    def read(cls) -> Settings:
        mode = setting(REFUND_MODE_VARIABLE, "reduce").lower()
        if mode not in REFUND_MODES:
            raise ConfigurationError(f"Variable {REFUND_MODE_VARIABLE} must be one of {REFUND_MODES}, not {mode!r}")
        return cls(prefix=setting(PREFIX_VARIABLE, ""), refund_mode=mode)

    def invoice_number(self, order_id: object) -> str:
        return f"{self.prefix}{order_id}"


def read_settings(bigcommerce: BigCommerceHook, freshbooks: FreshBooksHook) -> Settings:
    return Settings.read()


@dataclass(frozen=True)
class InvoiceBooks(Settings):
    """The settings, and every FreshBooks invoice by number, deleted ones included: read once per
    plan task, and only when an order of it is not invoiced yet (a run of unchanged or already
    invoiced orders reads nothing). FreshBooks searches invoices one exact number at a time, and
    a number is never reused, so checking each order's number costs two listings; one read of the
    whole table answers every order of the task (``reference_index``, and the "number taken" check).
    """

    freshbooks: FreshBooksHook | None = field(default=None, repr=False, compare=False)
    _table: dict[str, list[Record]] = field(default_factory=dict, repr=False, compare=False)
    _read: list[bool] = field(default_factory=list, repr=False, compare=False)  # frozen: a flag in a list
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def invoices_numbered(self, number: str) -> list[Record]:
        with self._lock:  # batches are matched in parallel threads: one of them reads the table
            if not self._read and self.freshbooks is not None:
                listed = [*self.freshbooks.invoices.list(), *self.freshbooks.invoices.list(vis_state=VisState.DELETED)]
                for invoice in sorted(listed, key=lambda i: int(i["id"])):
                    self._table.setdefault(str(invoice.get("invoice_number")), []).append(invoice)
                self._read.append(True)
        return self._table.get(number, [])


def invoice_books(bigcommerce: BigCommerceHook | None, freshbooks: FreshBooksHook) -> InvoiceBooks:
    settings = Settings.read()
    return InvoiceBooks(prefix=settings.prefix, refund_mode=settings.refund_mode, freshbooks=freshbooks)


def our_invoices_by_number(books: InvoiceBooks, payloads: list[Record]) -> dict[str, Record]:
    """The batch's invoices this integration created, by number (the oldest first)."""
    found: dict[str, Record] = {}
    for payload in payloads:
        number = str(payload["invoice_number"])
        ours = [i for i in books.invoices_numbered(number) if is_ours(i)]
        if ours:
            found[number] = ours[0]
    return found


# ---------------------------------------------------------------------------------- reading orders


def is_invoiceable_status(order: Mapping[str, Any]) -> bool:
    return int(order["status_id"]) in PAID_STATUS_IDS | REFUNDED_STATUSES


def orders_in(bigcommerce: BigCommerceHook, window: Window) -> Iterator[Record]:
    if window.start is None:
        return bigcommerce.orders.list()
    return bigcommerce.orders.list(min_date_modified=window.start)


def with_customers(bigcommerce: BigCommerceHook, orders: Iterable[Record]) -> list[Record]:
    """Each order with its registered customer (``_customer``; ``None`` for a guest)."""
    batch = list(orders)
    registered = sorted({int(o.get("customer_id") or 0) for o in batch} - {0})  # guests are customer 0
    customers = {int(c["id"]): c for c in bigcommerce.customers.list(id__in=registered)}
    return [{**o, "_customer": customers.get(int(o.get("customer_id") or 0))} for o in batch]


def enriched(bigcommerce: BigCommerceHook, order: Record) -> Record:
    """An order with its products and transactions: everything its invoice needs."""
    order_id = int(order["id"])
    return {
        **order,
        "_products": list(bigcommerce.order_products.list(order_id=order_id)),
        "_transactions": list(bigcommerce.transactions.list(order_id=order_id)),
    }


def per_order(bigcommerce: BigCommerceHook, read: Callable[[int], T], order_ids: Iterable[int]) -> Iterator[T]:
    """``read`` for each order, :data:`~..hooks.bigcommerce.READS_AT_ONCE` at a time, in order.

    BigCommerce has no bulk read of order products, transactions or refunds: one call per order
    each. Their latency, not the quota, bounds a run, so they overlap (the quota throttle still
    keeps every call inside the store's window).
    """
    with ThreadPoolExecutor(max_workers=READS_AT_ONCE, thread_name_prefix="bigcommerce-read") as pool:
        yield from pool.map(read, order_ids)


def enrich_orders(bigcommerce: BigCommerceHook, orders: list[Record]) -> Iterator[Record]:
    """Paid orders with their customer, products and transactions; unpaid ones as listed (they are
    skipped with their reason). The engine asks only for orders whose ``date_modified`` moved
    since their invoice was synced: a status change, a capture or a refund moves it."""
    paid = {int(o["id"]): o for o in with_customers(bigcommerce, (o for o in orders if is_invoiceable_status(o)))}
    yield from per_order(bigcommerce, lambda order_id: enriched(bigcommerce, paid[order_id]), paid)
    yield from (o for o in orders if not is_invoiceable_status(o))


#: how far in the past an order's ``date_modified`` must be before it stands for the order's content:
#: BigCommerce keeps it to the second (two edits in the second of our read would share it), and
#: its clock is not ours.
SETTLED = timedelta(minutes=5)


def order_version(order: Mapping[str, Any]) -> str | None:
    """The order's revision (``date_modified``), or None while it is too recent to be trusted."""
    text = str(order.get("date_modified") or "")
    try:
        modified = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if modified.tzinfo is None or datetime.now(timezone.utc) - modified < SETTLED:
        return None
    return text


def fetch_order(bigcommerce: BigCommerceHook, source_id: str) -> Record | None:
    order = bigcommerce.orders.get(int(source_id))
    if not is_invoiceable_status(order):
        return order
    return enriched(bigcommerce, with_customers(bigcommerce, [order])[0])


def captures(order: Mapping[str, Any]) -> list[Record]:
    """The order's successful purchase/capture transactions."""
    return [
        t
        for t in order.get("_transactions") or []
        if t.get("event") in CAPTURE_EVENTS and t.get("status") == "ok" and cents(t.get("amount") or 0) > ZERO
    ]


# ---------------------------------------------------------------------------------- clients


def payer_email(order: Mapping[str, Any]) -> str:
    customer = order.get("_customer")
    found = (customer or {}).get("email") or (order.get("billing_address") or {}).get("email") or ""
    return str(found).strip()


def payer_id(order: Mapping[str, Any]) -> str:
    """The client's source id: the payer's e-mail, lower-cased (one client per e-mail)."""
    address = payer_email(order)
    return address.casefold() if address else f"order-{order['id']}-without-email"


def payer(order: Mapping[str, Any]) -> Record:
    customer = order.get("_customer")
    billing = dict(order.get("billing_address") or {})
    person = customer or billing
    return {
        "id": payer_id(order),
        "email": payer_email(order),
        "guest": customer is None,
        "order_id": order["id"],
        "first_name": person.get("first_name") or "",
        "last_name": person.get("last_name") or "",
        "company": person.get("company") or billing.get("company") or "",
        "phone": person.get("phone") or billing.get("phone") or "",
        "address": billing,
    }


def read_payers(bigcommerce: BigCommerceHook, window: Window) -> Iterator[Record]:
    paid = [o for o in orders_in(bigcommerce, window) if is_invoiceable_status(o)]
    payers = [payer(o) for o in with_customers(bigcommerce, paid)]
    # The later record wins in extract: a registered customer's details over a guest's.
    yield from sorted(payers, key=lambda p: not p["guest"])


def fetch_payer(bigcommerce: BigCommerceHook, source_id: str) -> Record | None:
    if source_id.startswith("order-"):
        orders = [bigcommerce.orders.get(int(source_id.split("-")[1]))]
    else:
        orders = [o for o in bigcommerce.orders.list(email=source_id) if is_invoiceable_status(o)]
    if not orders:
        return None
    return payer(with_customers(bigcommerce, orders[-1:])[0])


def client_payload(person: Record, ctx: Ctx) -> Outcome:
    if not person["email"]:
        raise MappingError(
            f"the payer of order {person['order_id']} has no e-mail address: FreshBooks clients are matched by "
            "e-mail; add it to the order's billing address",
            kind="validation",
        )
    if person["guest"] and ctx.mapped:
        return Skip("a guest order does not change the details of a client already synced")
    address = person["address"]
    payload: Record = {
        "email": str(person["email"]).casefold(),
        "fname": person["first_name"],
        "lname": person["last_name"],
        "organization": person["company"],
        "bus_phone": person["phone"],
        "p_street": address.get("street_1") or "",
        "p_street2": address.get("street_2") or "",
        "p_city": address.get("city") or "",
        "p_province": address.get("state") or "",
        "p_code": address.get("zip") or "",
        "p_country": address.get("country") or "",
    }
    return {k: v for k, v in payload.items() if v}


def clients_by_email(freshbooks: FreshBooksHook, payloads: list[Record]) -> dict[str, Record]:
    """Existing clients by lower-cased e-mail, the oldest of duplicates.

    FreshBooks' ``search[email]`` is an exact match: a client a person typed as ``Avery@…`` would
    be missed, so the batch reads the client list once (100 per page) and compares case-insensitively.
    """
    found: dict[str, Record] = {}
    for client in sorted(freshbooks.clients.list(), key=lambda c: int(c["id"])):
        found.setdefault(str(client.get("email") or "").casefold(), client)
    found.pop("", None)
    return found


def find_client(freshbooks: FreshBooksHook, key: str) -> Record | None:
    """The client this integration created for ``key`` (it writes e-mails lower-cased)."""
    return freshbooks.clients.find(email=key)


# ---------------------------------------------------------------------------------- items


def item_name(line: Mapping[str, Any]) -> str:
    """The name an order line shows: the product's name as ordered, plus a variant's option values."""
    options = [str(o.get("display_value")) for o in line.get("product_options") or [] if o.get("display_value")]
    name = str(line.get("name") or "").strip()
    return f"{name} ({', '.join(options)})" if options else name


def read_items(bigcommerce: BigCommerceHook, window: Window) -> Iterator[Record]:
    if window.start is None:
        return bigcommerce.products.list()
    return bigcommerce.products.list(date_modified__min=window.start)


def fetch_item(bigcommerce: BigCommerceHook, source_id: str) -> Record | None:
    return next(bigcommerce.products.list(id=int(source_id)), None)


def item_payload(product: Record, ctx: Ctx) -> Outcome:
    sku = str(product.get("sku") or "").strip()
    if not sku:
        # Not a dead letter: a catalog product nobody ordered needs no item. An order of it is one.
        return Skip("catalog product has no SKU: it becomes a FreshBooks item once it has one")
    return {"name": str(product["name"]).strip(), "sku": sku, "description": f"BigCommerce product {product['id']}"}


def find_item(freshbooks: FreshBooksHook, sku: str) -> Record | None:
    return freshbooks.items.find(sku=sku)


# ---------------------------------------------------------------------------------- invoices


def status_skip(order: Mapping[str, Any]) -> Skip | None:
    """Why an order is not invoiced (yet), or None when it is paid."""
    status = int(order["status_id"])
    label = STATUS_NAMES.get(status, f"status {status}")
    if status in PAID_STATUS_IDS:
        return None
    if status in REFUNDED_STATUSES:
        return None if captures(order) else Skip("refunded order without a successful capture: nothing was paid")
    return Skip(f"order is {label}, not paid; it is invoiced once it is paid")


def currency_of(order: Mapping[str, Any]) -> str:
    # default_currency_code is the transactional currency the shopper paid in.
    code = str(order.get("default_currency_code") or order.get("currency_code") or "").upper()
    if code not in CURRENCIES:
        raise MappingError(f"order currency {code or '(none)'!r} is not an ISO 4217 code", kind="unknown_currency")
    return code


def tax_percent(tax: Any, ex_tax: Any) -> Decimal | None:
    tax_amount, base = Decimal(str(tax or 0)), Decimal(str(ex_tax or 0))
    if tax_amount == ZERO or base == ZERO:
        return None
    return (tax_amount / base * 100).quantize(PERCENT, rounding=ROUND_HALF_UP)


def line(name: str, description: str, qty: Any, unit: Decimal, code: str, pct: Decimal | None) -> Record:
    out: Record = {"name": name, "description": description, "qty": int(qty), "unit_cost": money(unit, code)}
    if pct is not None:
        out.update(taxName1="Tax", taxAmount1=str(pct))
    return out


def product_lines(product: Mapping[str, Any], code: str, ctx: Ctx) -> list[Record]:
    sku = str(product.get("sku") or "").strip()
    if not sku:
        raise MappingError(
            f"order product '{product.get('name')}' has no SKU: it cannot be tied to a FreshBooks item; "
            "give the product a SKU in BigCommerce",
            kind="validation",
        )
    if not int(product.get("product_id") or 0):
        raise MappingError(
            f"order product '{product.get('name')}' ({sku}) is a custom product, not in the catalog: it has no "
            "FreshBooks item; add it to the catalog or invoice the order by hand",
            kind="validation",
        )
    ctx.target_id("item", product["product_id"])  # the item exists before a line names it
    name, qty = item_name(product), int(product["quantity"])
    pct = tax_percent(product.get("total_tax"), product.get("total_ex_tax"))
    unit = Decimal(str(product["price_ex_tax"]))
    lines = (
        [line(name, f"SKU {sku}", qty, unit, code, pct)]
        if unit == unit.quantize(CENT)
        else [line(name, f"SKU {sku} ({qty} x {unit})", 1, cents(product["total_ex_tax"]), code, pct)]
    )
    discount = sum((Decimal(str(d.get("amount") or 0)) for d in product.get("applied_discounts") or []), ZERO)
    if discount:
        names = ", ".join(str(d.get("name") or d.get("code") or "discount") for d in product["applied_discounts"])
        lines.append(line("Discount", f"{names} on SKU {sku}", 1, -cents(discount), code, pct))
    return lines


ORDER_CHARGES = (("Shipping", "shipping_cost"), ("Handling", "handling_cost"), ("Gift wrapping", "wrapping_cost"))


def charge_lines(order: Mapping[str, Any], code: str) -> list[Record]:
    lines = []
    for name, charge in ORDER_CHARGES:
        amount = cents(order.get(f"{charge}_ex_tax") or 0)
        if amount:
            pct = tax_percent(order.get(f"{charge}_tax"), order.get(f"{charge}_ex_tax"))
            lines.append(line(name, f"Order {order['id']}", 1, amount, code, pct))
    return lines


def predicted_total(lines: Iterable[Mapping[str, Any]]) -> Decimal:
    """What FreshBooks will compute: per line quantity x unit cost plus its tax percentage, in cents."""
    total = ZERO
    for item in lines:
        amount = cents(Decimal(str(item["qty"])) * Decimal(str(item["unit_cost"]["amount"])))
        pct = Decimal(str(item.get("taxAmount1") or 0))
        total += amount + cents(amount * pct / 100)
    return total


def rounding_line(difference: Decimal, code: str) -> Record:
    return line(
        ROUNDING_LINE, "difference between BigCommerce's and FreshBooks' tax rounding", 1, difference, code, None
    )


def balanced(lines: list[Record], total: Decimal, code: str, what: str) -> list[Record]:
    """``lines`` plus the rounding adjustment that makes them add up to ``total``, or a dead letter."""
    kept = [li for li in lines if li["name"] != ROUNDING_LINE]
    difference = total - predicted_total(kept)
    if abs(difference) > ROUNDING_TOLERANCE:
        raise MappingError(
            f"{what}: FreshBooks would total {predicted_total(kept)} {code} but the order total is {total} {code} "
            f"(difference {difference}, tolerance {ROUNDING_TOLERANCE}); not invoiced",
            kind="total_mismatch",
        )
    return [*kept, rounding_line(difference, code)] if difference else kept


def marker(order_id: object, total: Decimal, code: str) -> str:
    return f"BigCommerce order {order_id} · total {total} {code}"


def invoice_payload(order: Record, ctx: Ctx) -> Outcome:
    if (skip := status_skip(order)) is not None:
        return skip
    settings: InvoiceBooks = ctx.reference
    products = order.get("_products") or []
    if not products:
        raise MappingError(f"order {order['id']} has no products", kind="validation")
    code = currency_of(order)
    if not payer_email(order):
        raise MappingError(f"order {order['id']} has no payer e-mail: no FreshBooks client", kind="validation")
    client = ctx.target_id("client", payer_id(order))
    lines = [li for product in products for li in product_lines(product, code, ctx)] + charge_lines(order, code)
    total = cents(order["total_inc_tax"])
    number = settings.invoice_number(order["id"])
    payload: Record = {
        "customerid": int(client),
        "invoice_number": number,
        "create_date": email.utils.parsedate_to_datetime(str(order["date_created"])).date().isoformat(),
        "currency_code": code,
        "notes": marker(order["id"], total, code),
        "lines": balanced(lines, total, code, f"order {order['id']}"),
    }
    if not ctx.mapped:
        refuse_taken_number(settings.invoices_numbered(number), number, order["id"])
    return payload


def invoices_numbered(freshbooks: FreshBooksHook, number: str) -> list[Record]:
    """Every invoice with this exact number, deleted ones included (numbers are never reused)."""
    listed = [
        *freshbooks.invoices.list(invoice_number=number),
        *freshbooks.invoices.list(invoice_number=number, vis_state=VisState.DELETED),
    ]
    return [i for i in listed if str(i.get("invoice_number")) == number]


def is_ours(invoice: Mapping[str, Any]) -> bool:
    return MARKER.search(str(invoice.get("notes") or "")) is not None


def refuse_taken_number(numbered: list[Record], number: str, order_id: object) -> None:
    """Refuse a number another invoice holds: one this integration did not create, or our own deleted one."""
    for invoice in numbered:
        if not is_ours(invoice):
            raise MappingError(
                f"invoice number {number} is already used by FreshBooks invoice {invoice['id']}, which this "
                f"integration did not create; set a prefix in the Airflow Variable {PREFIX_VARIABLE} (e.g. 'BC-')",
                kind="invoice_number_taken",
            )
        if int(invoice.get("vis_state") or 0) == VisState.DELETED:
            raise MappingError(
                f"FreshBooks invoice {invoice['id']} ({number}) of order {order_id} was deleted, and FreshBooks never "
                "reuses a number: restore it in FreshBooks, or set a prefix to invoice the order again",
                kind="invoice_deleted",
            )


def find_invoice(freshbooks: FreshBooksHook, number: str) -> Record | None:
    ours = [i for i in invoices_numbered(freshbooks, number) if is_ours(i)]
    return ours[0] if ours else None


def create_invoice(freshbooks: FreshBooksHook, payload: Record) -> Record:
    created = freshbooks.invoices.create(payload)
    finish_invoice(freshbooks, created)
    return created


#: What an invoice update may change; the number stays (FreshBooks numbers are for good).
INVOICE_CONTENT = ("customerid", "currency_code", "create_date", "notes", "lines")


def update_invoice(freshbooks: FreshBooksHook, invoice_id: str, payload: Record) -> None:
    current = freshbooks.invoices.get(invoice_id)
    if invoice_content(current) == invoice_content(payload):
        return  # e.g. only the prefix changed: an invoice keeps the number it was sent with
    if parse_money(current.get("paid")) > ZERO or refund_lines(current):
        raise RecordError(
            f"order changed after FreshBooks invoice {invoice_id} was paid or refunded; reconcile it by hand",
            kind="manual_reconciliation",
        )
    changes = {k: payload[k] for k in INVOICE_CONTENT}
    finish_invoice(freshbooks, freshbooks.invoices.update(invoice_id, changes))


def invoice_content(invoice: Mapping[str, Any]) -> tuple[Any, ...]:
    lines = [
        (
            str(li["name"]),
            Decimal(str(li["qty"])),
            Decimal(str(li["unit_cost"]["amount"])),
            Decimal(str(li.get("taxAmount1") or 0)),
        )
        for li in invoice.get("lines") or []
        if not REFUND_LINE.match(str(li.get("name") or ""))
    ]
    return (int(invoice["customerid"]), str(invoice["currency_code"]), str(invoice["create_date"]), lines)


def refund_lines(invoice: Mapping[str, Any]) -> list[Record]:
    return [li for li in invoice.get("lines") or [] if REFUND_LINE.match(str(li.get("name") or ""))]


def applied_refund_ids(invoice: Mapping[str, Any]) -> set[str]:
    """Refunds whose ``Refund <id>`` line is on the invoice (written last: the refund is done)."""
    return {m.group(1) for li in invoice.get("lines") or [] if (m := REFUND_LINE.match(str(li.get("name") or "")))}


def request_line(stored: Mapping[str, Any]) -> Record:
    """An invoice line as read, in the shape FreshBooks accepts back (lines are replaced as a whole)."""
    out: Record = {k: stored[k] for k in ("name", "description", "qty", "unit_cost") if k in stored}
    if stored.get("taxAmount1") not in (None, "", "0"):
        out.update(taxName1=stored.get("taxName1") or "Tax", taxAmount1=str(stored["taxAmount1"]))
    return out


def finish_invoice(freshbooks: FreshBooksHook, invoice: Record) -> Record:
    """Make FreshBooks' total equal the order's (rounding line, within tolerance), then mark it sent.

    Idempotent, from the invoice alone: its notes carry the order total it must add up to.
    """
    found = MARKER.search(str(invoice.get("notes") or ""))
    if found is None:
        raise RecordError(
            f"FreshBooks invoice {invoice['id']} lost its BigCommerce marker", kind="manual_reconciliation"
        )
    expected = Decimal(found.group(2)) + sum((parse_money(li.get("amount")) for li in refund_lines(invoice)), ZERO)
    actual = parse_money(invoice.get("amount"))
    if actual != expected:
        if abs(expected - actual) > ROUNDING_TOLERANCE:
            raise RecordError(
                f"FreshBooks computed {actual} for invoice {invoice['id']} but the order total is {expected}; "
                "left as a draft (not in reports): check its lines",
                kind="total_mismatch",
            )
        lines = [request_line(li) for li in invoice.get("lines") or []]
        rounding = next((li for li in lines if li["name"] == ROUNDING_LINE), None)
        already = Decimal(str(rounding["unit_cost"]["amount"])) if rounding else ZERO
        kept = [li for li in lines if li["name"] != ROUNDING_LINE]
        difference = already + expected - actual
        code = str(found.group(3))
        new_lines = [*kept, rounding_line(difference, code)] if difference else kept
        invoice = freshbooks.invoices.update(invoice["id"], {"lines": new_lines})
    if int(invoice.get("status") or 1) == 1:  # a draft: keep it out of reports no longer
        invoice = freshbooks.invoices.act(invoice["id"], "action_mark_as_sent")
    return invoice


#: The store-credit half of a refund, as :func:`apply_refund` writes it on its zero line.
CREDITED = re.compile(r"credit note \S+ for (-?\d+\.\d{2}) [A-Z]{3}$")


def refunded_on_invoice(invoice: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """(taken off the invoice and its payments, given as store credit) by the ``Refund <id>`` lines."""
    reduced = -sum((parse_money(li.get("amount")) for li in refund_lines(invoice)), ZERO)
    credited = sum(
        (Decimal(m.group(1)) for li in refund_lines(invoice) if (m := CREDITED.search(str(li.get("description"))))),
        ZERO,
    )
    return cents(reduced), cents(credited)


def compare_invoice(order: Record, invoice: Record) -> list[str]:
    """Drift between an order and its FreshBooks invoice (the reconciliation report): the order
    still paid, the currency, the total before refunds, what was refunded, and what was paid."""
    if int(invoice.get("vis_state") or 0) == VisState.DELETED:
        return [f"FreshBooks invoice {invoice.get('invoice_number')} is deleted, the order is not"]
    if not is_invoiceable_status(order):
        label = STATUS_NAMES.get(int(order["status_id"]), f"status {order['status_id']}")
        number = invoice.get("invoice_number")
        return [f"the order is {label} in BigCommerce, not paid, but FreshBooks invoice {number} stands"]
    code = str(order.get("default_currency_code") or order.get("currency_code") or "").upper()
    problems = []
    if str(invoice.get("currency_code")) != code:
        problems.append(f"currency differs: BigCommerce {code}, FreshBooks {invoice.get('currency_code')}")
    reduced, credited = refunded_on_invoice(invoice)
    order_total, invoice_total = cents(order["total_inc_tax"]), parse_money(invoice.get("amount")) + reduced
    if order_total != invoice_total:
        problems.append(f"total differs: BigCommerce {order_total} {code}, FreshBooks {invoice_total} (before refunds)")
    refunded = cents(order.get("refunded_amount") or 0)
    if refunded != reduced + credited:
        problems.append(f"refunded differs: BigCommerce {refunded}, FreshBooks {reduced + credited}")
    captured = sum((cents(t["amount"]) for t in captures(order)), ZERO)
    paid = parse_money(invoice.get("paid"))
    if captured - reduced != paid:
        problems.append(
            f"paid differs: BigCommerce captured {captured} less {reduced} refunded to the payment, "
            f"FreshBooks shows {paid} paid, {parse_money(invoice.get('outstanding'))} outstanding"
        )
    if int(invoice.get("status") or 1) == 1:
        problems.append("the FreshBooks invoice is still a draft: it is in no report")
    return problems


# ---------------------------------------------------------------------------------- payments


def read_captures(bigcommerce: BigCommerceHook, window: Window) -> Iterator[Record]:
    paid = [int(o["id"]) for o in orders_in(bigcommerce, window) if is_invoiceable_status(o)]
    for records in per_order(bigcommerce, lambda order_id: captures_of(bigcommerce, order_id), paid):
        yield from records


def captures_of(bigcommerce: BigCommerceHook, order_id: int) -> list[Record]:
    return capture_records({"id": order_id}, bigcommerce.transactions.list(order_id=order_id))


def capture_records(order: Mapping[str, Any], transactions: Iterable[Record]) -> list[Record]:
    found = captures({"_transactions": list(transactions)})
    return [{**t, "id": f"{order['id']}/{t['id']}", "transaction_id": t["id"], "order_id": order["id"]} for t in found]


def fetch_capture(bigcommerce: BigCommerceHook, source_id: str) -> Record | None:
    order_id, _, transaction_id = source_id.partition("/")
    return next(
        (r for r in captures_of(bigcommerce, int(order_id)) if str(r["transaction_id"]) == transaction_id), None
    )


def payment_type(capture: Mapping[str, Any]) -> str:
    card = str((capture.get("credit_card") or {}).get("card_type") or "").lower()
    return (
        CARD_TYPES.get(card)
        or GATEWAY_TYPES.get(str(capture.get("gateway") or "").lower())
        or METHOD_TYPES.get(str(capture.get("method") or ""), "Other")
    )


def payment_marker(transaction_id: object) -> str:
    return f"BigCommerce transaction {transaction_id} "


def payment_payload(capture: Record, ctx: Ctx) -> Outcome:
    invoice = ctx.target_id("invoice", capture["order_id"])
    code = str(capture.get("currency") or "").upper()
    if code not in CURRENCIES:
        raise MappingError(f"transaction currency {code!r} is not an ISO 4217 code", kind="unknown_currency")
    return {
        "invoiceid": int(invoice),
        "amount": money(cents(capture["amount"]), code),
        "date": str(capture["date_created"])[:10],
        "type": payment_type(capture),
        "note": f"{payment_marker(capture['transaction_id'])}via {capture.get('gateway')} "
        f"(gateway id {capture.get('gateway_transaction_id') or '-'})",
    }


def payment_key(capture: Record, payload: Record) -> str:
    return f"{payload['invoiceid']}|{capture['transaction_id']}"


def find_payment(freshbooks: FreshBooksHook, key: str) -> Record | None:
    invoice_id, _, transaction_id = key.partition("|")
    wanted = payment_marker(transaction_id)
    return next(
        (p for p in freshbooks.payments.list(invoiceid=invoice_id) if str(p.get("note")).startswith(wanted)), None
    )


def create_payment(freshbooks: FreshBooksHook, payload: Record) -> Record:
    invoice = freshbooks.invoices.get(payload["invoiceid"])
    if str(invoice.get("currency_code")) != payload["amount"]["code"]:
        raise RecordError(
            f"payment in {payload['amount']['code']} on FreshBooks invoice {invoice['id']} in "
            f"{invoice.get('currency_code')}; record it by hand",
            kind="currency_mismatch",
        )
    finish_invoice(freshbooks, invoice)  # sent (and balanced) before it is paid, even after a lost answer
    return freshbooks.payments.create(payload)


def update_payment(freshbooks: FreshBooksHook, payment_id: str, payload: Record) -> None:
    current = freshbooks.payments.get(payment_id)
    if "[refund " in str(current.get("note") or ""):
        raise RecordError(
            f"BigCommerce transaction changed after FreshBooks payment {payment_id} was reduced by a refund; "
            "reconcile it by hand",
            kind="manual_reconciliation",
        )
    freshbooks.payments.update(payment_id, {k: v for k, v in payload.items() if k != "invoiceid"})


# ---------------------------------------------------------------------------------- refunds


def read_refunded_orders(bigcommerce: BigCommerceHook, window: Window) -> Iterator[Record]:
    listed = bigcommerce.refunds.list() if window.start is None else bigcommerce.refunds.list(created__min=window.start)
    order_ids = sorted({int(r["order_id"]) for r in listed})
    yield from per_order(bigcommerce, lambda order_id: refunds_of(bigcommerce, order_id), order_ids)


def refunds_of(bigcommerce: BigCommerceHook, order_id: int) -> Record:
    """All refunds of one order (applied in id order) and its captures: one record per order."""
    transactions = list(bigcommerce.transactions.list(order_id=order_id))
    return {
        "id": str(order_id),
        "refunds": sorted(bigcommerce.order_refunds.list(order_id=order_id), key=lambda r: int(r["id"])),
        "captures": [r["id"] for r in capture_records({"id": order_id}, transactions)],
    }


def refunds_payload(record: Record, ctx: Ctx) -> Outcome:
    if not record["refunds"]:
        return Skip("order has no refunds")
    if not record["captures"]:
        return Skip("order has no successful capture: it was never invoiced as paid, there is nothing to refund")
    settings: Settings = ctx.reference
    refunds = []
    for refund in record["refunds"]:
        store_credit = sum((cents(p["amount"]) for p in refund.get("payments") or [] if is_store_credit(p)), ZERO)
        total = cents(refund["total_amount"])
        to_credit = total if settings.refund_mode == "credit_note" else store_credit
        refunds.append(
            {
                "id": int(refund["id"]),
                "date": str(refund.get("created") or "")[:10],
                "reason": str(refund.get("reason") or ""),
                "reduce": str(total - to_credit),
                "credit": str(to_credit),
            }
        )
    return {
        "invoiceid": int(ctx.target_id("invoice", record["id"])),
        "payments": [int(ctx.target_id("payment", capture)) for capture in record["captures"]],
        "refunds": refunds,
    }


def is_store_credit(payment: Mapping[str, Any]) -> bool:
    return str(payment.get("provider_id") or "") == STORE_CREDIT


def refunds_key(record: Record, payload: Record) -> str:
    return f"{payload['invoiceid']}|" + ",".join(str(r["id"]) for r in payload["refunds"])


def find_applied_refunds(freshbooks: FreshBooksHook, key: str) -> Record | None:
    """The invoice, when every refund in the key has its ``Refund <id>`` line (written last)."""
    invoice_id, _, ids = key.partition("|")
    invoice = freshbooks.invoices.get(invoice_id)
    return invoice if set(ids.split(",")) <= applied_refund_ids(invoice) else None


def apply_refunds(freshbooks: FreshBooksHook, payload: Record) -> Record:
    """Apply each refund not applied yet, one at a time: payments first, its invoice line last."""
    invoice = freshbooks.invoices.get(payload["invoiceid"])
    for refund in payload["refunds"]:
        if str(refund["id"]) in applied_refund_ids(invoice):
            continue
        invoice = apply_refund(freshbooks, invoice, payload["payments"], refund)
    return invoice


def update_refunds(freshbooks: FreshBooksHook, invoice_id: str, payload: Record) -> None:
    apply_refunds(freshbooks, payload)


def apply_refund(freshbooks: FreshBooksHook, invoice: Record, payment_ids: list[int], refund: Record) -> Record:
    code = str(invoice["currency_code"])
    reduce, credit = Decimal(refund["reduce"]), Decimal(refund["credit"])
    about = f"BigCommerce refund {refund['id']} of {refund['date']}" + (
        f": {refund['reason']}" if refund["reason"] else ""
    )
    new_lines = []
    if reduce:
        reduce_payments(freshbooks, payment_ids, refund["id"], reduce)
        new_lines.append(line(f"Refund {refund['id']}", about, 1, -reduce, code, None))
    if credit:
        note = credit_note(freshbooks, invoice, refund, credit)
        new_lines.append(
            line(
                f"Refund {refund['id']} (store credit)",
                f"{about}; credit note {note} for {credit} {code}",
                1,
                ZERO,
                code,
                None,
            )
        )
    lines = [request_line(li) for li in invoice.get("lines") or []]
    return freshbooks.invoices.update(invoice["id"], {"lines": [*lines, *new_lines]})


REDUCED = re.compile(r"\[refund (\d+): -(\d+\.\d{2})( deleted)?\]")


def reduce_payments(freshbooks: FreshBooksHook, payment_ids: list[int], refund_id: int, amount: Decimal) -> None:
    """Take ``amount`` off the invoice's payments, newest first; each cut is noted, so it happens once."""
    payments = [freshbooks.payments.get(p) for p in sorted(payment_ids, reverse=True)]
    remaining = amount
    done: set[int] = set()
    for payment in payments:  # what an interrupted earlier try already took off
        for found in REDUCED.finditer(str(payment.get("note") or "")):
            if int(found.group(1)) == int(refund_id):
                remaining -= Decimal(found.group(2))
                done.add(int(payment["id"]))
                if found.group(3) and int(payment.get("vis_state") or 0) != VisState.DELETED:
                    freshbooks.payments.delete(payment["id"])
    for payment in payments:
        if remaining <= ZERO:
            return
        if int(payment["id"]) in done or int(payment.get("vis_state") or 0) == VisState.DELETED:
            continue
        paid = parse_money(payment["amount"])
        cut = min(paid, remaining)
        remaining -= cut
        if cut == paid:  # nothing left: FreshBooks refuses a zero payment, so note it and delete it
            freshbooks.payments.update(
                payment["id"], {"note": f"{payment.get('note')} [refund {refund_id}: -{cut} deleted]"}
            )
            freshbooks.payments.delete(payment["id"])
        else:
            freshbooks.payments.update(
                payment["id"],
                {
                    "amount": money(paid - cut, str(payment["amount"]["code"])),
                    "note": f"{payment.get('note')} [refund {refund_id}: -{cut}]",
                },
            )
    if remaining > ZERO:
        raise RecordError(
            f"refund {refund_id} is {remaining} more than the payments recorded on the invoice; reconcile by hand",
            kind="manual_reconciliation",
        )


def credit_note(freshbooks: FreshBooksHook, invoice: Record, refund: Record, amount: Decimal) -> str:
    """The credit note of a store-credit refund, created once (looked up by its number first)."""
    number = f"{invoice['invoice_number']}-R{refund['id']}"
    if credit_note_exists(freshbooks, number):
        return number
    code = str(invoice["currency_code"])
    body = {
        "clientid": invoice["customerid"],
        "credit_number": number,
        "create_date": refund["date"] or invoice["create_date"],
        "currency_code": code,
        "credit_type": "goodwill",
        "notes": f"Store credit for BigCommerce refund {refund['id']} of invoice {invoice['invoice_number']}",
        "lines": [line(f"Refund {refund['id']}", refund["reason"] or "store credit", 1, amount, code, None)],
    }
    try:
        freshbooks.credit_notes.create(body)
    except WriteOutcomeUnknownError:
        if not credit_note_exists(freshbooks, number):  # the answer was lost: FreshBooks may have it
            raise
    return number


def credit_note_exists(freshbooks: FreshBooksHook, number: str) -> bool:
    # No credit-note search is documented: the list is read (only when a store-credit refund is applied).
    return any(str(c.get("credit_number")) == number for c in freshbooks.credit_notes.list())


PAIR = Pair(
    name="bigcommerce_to_freshbooks",
    source=BigCommerceHook,
    target=FreshBooksHook,
    doc=__doc__ or "",
    description="Paid BigCommerce orders into FreshBooks: clients, items, sent invoices, payments, refunds",
    entities=(
        Entity(
            "client",
            read=read_payers,
            fetch=fetch_payer,
            transform=client_payload,
            natural_key=lambda person, payload: str(payload["email"]),
            index=clients_by_email,
            find=find_client,
            create=lambda fb, payload: fb.clients.create(payload),
            update=lambda fb, client_id, payload: fb.clients.update(client_id, payload),
        ),
        Entity(
            "item",
            read=read_items,
            fetch=fetch_item,
            transform=item_payload,
            natural_key=lambda product, payload: str(payload["sku"]),
            find=find_item,
            create=lambda fb, payload: fb.items.create(payload),
            update=lambda fb, item_id, payload: fb.items.update(item_id, payload),
        ),
        Entity(
            "invoice",
            after=("client", "item"),
            read=orders_in,
            enrich=enrich_orders,
            source_version=order_version,
            fetch=fetch_order,
            prepare=invoice_books,
            transform=invoice_payload,
            natural_key=lambda order, payload: str(payload["invoice_number"]),
            reference_index=our_invoices_by_number,
            find=find_invoice,
            create=create_invoice,
            update=update_invoice,
            reconcile=Reconciliation(
                fetch_target=lambda fb, invoice_id: fb.invoices.get(invoice_id), compare=compare_invoice
            ),
        ),
        Entity(
            "payment",
            after=("invoice",),
            read=read_captures,
            fetch=fetch_capture,
            transform=payment_payload,
            natural_key=payment_key,
            find=find_payment,
            create=create_payment,
            update=update_payment,
        ),
        Entity(
            "refund",
            after=("payment",),
            read=read_refunded_orders,
            fetch=lambda bc, source_id: refunds_of(bc, int(source_id)),
            prepare=read_settings,
            transform=refunds_payload,
            natural_key=refunds_key,
            find=find_applied_refunds,
            create=apply_refunds,
            update=update_refunds,
        ),
    ),
)
