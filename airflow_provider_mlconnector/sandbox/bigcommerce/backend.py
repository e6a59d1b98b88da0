"""In-memory state of the BigCommerce emulator and its actions, named like the vendor's endpoints.

Money is ``Decimal`` throughout; :mod:`.api` serialises it the way each API version does (v2:
strings with four decimals, v3: JSON numbers). Times are epoch seconds from the sandbox clock.
Actions raise :class:`BigCommerceError` subclasses; the adapter renders them in the v2 (array) or
v3 (object) error shape. Webhook-worthy changes are queued in :attr:`BigCommerceBackend.events`
and delivered by the adapter after the request that caused them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

STORE_HASH = "summit7x"
STORE_ID = "1001447"
STORE_NAME = "Summit Outfitters"
ACCESS_TOKEN = "bc-sandbox-x-auth-token-summit7x-4f1c9e0a"
CLIENT_ID = "bc-sandbox-client-summit7x"
CLIENT_SECRET = "bc-sandbox-client-secret-summit7x-9b2d"

CENT = Decimal("0.01")
ZERO = Decimal("0")

#: id -> (system label, system description), per the v2 ``/order_statuses`` documentation.
ORDER_STATUSES: dict[int, tuple[str, str]] = {
    0: ("Incomplete", "An incomplete order happens when a shopper reached the payment page, but did not complete."),
    1: ("Pending", "Customer started the checkout process, but did not complete it."),
    2: ("Shipped", "Order has been shipped, but receipt has not been confirmed."),
    3: ("Partially Shipped", "Only some items in the order have been shipped."),
    4: ("Refunded", "Seller has used the Refund action."),
    5: ("Cancelled", "Seller has cancelled an order, due to a stock inconsistency or other reasons."),
    6: ("Declined", "Seller has marked the order as declined for lack of manual payment, or other reasons."),
    7: ("Awaiting Payment", "Customer has completed checkout process, but payment has yet to be confirmed."),
    8: ("Awaiting Pickup", "Order has been pulled, and is awaiting customer pickup from a seller-specified location."),
    9: (
        "Awaiting Shipment",
        "Order has been pulled and packaged, and is awaiting collection from a shipping provider.",
    ),
    10: ("Completed", "Client has paid for their digital product and their file(s) are available for download."),
    11: ("Awaiting Fulfillment", "Customer has completed the checkout process and payment has been confirmed."),
    12: ("Manual Verification Required", "Order on hold while some aspect needs to be manually confirmed."),
    13: ("Disputed", "Customer has initiated a dispute resolution process for the PayPal transaction."),
    14: ("Partially Refunded", "Seller has partially refunded the order."),
}
PAID_STATUSES = frozenset({2, 3, 8, 9, 10, 11})

HOOK_SCOPES = frozenset(
    {
        "store/order/*",
        "store/order/created",
        "store/order/updated",
        "store/order/archived",
        "store/order/statusUpdated",
        "store/order/message/created",
        "store/order/refund/created",
        "store/customer/*",
        "store/customer/created",
        "store/customer/updated",
        "store/product/*",
        "store/product/created",
        "store/product/updated",
    }
)
MAX_HOOKS_PER_SCOPE = 10
GATEWAY_NAMES = {"authorizenet": "Authorize.Net", "paypalexpress": "PayPal Express Checkout"}


# --------------------------------------------------------------------------- errors


class BigCommerceError(Exception):
    """A vendor error; ``status`` and ``message`` are rendered by the adapter."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.errors = dict(errors or {})


class BadRequest(BigCommerceError):
    status = 400


class NotFound(BigCommerceError):
    status = 404

    def __init__(self, message: str = "The requested resource was not found.") -> None:
        super().__init__(message)


class LimitExceeded(BigCommerceError):
    """413: "the limit parameter exceeded the maximum" (status-codes doc)."""

    status = 413

    def __init__(self, maximum: int) -> None:
        super().__init__(f"The limit parameter exceeded the maximum of {maximum}.")


class Unprocessable(BigCommerceError):
    status = 422


class RefundInProgress(BigCommerceError):
    """A second refund on an order whose refund is still processing ("process refunds sequentially")."""

    status = 409


# --------------------------------------------------------------------------- model


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def decimal_of(value: Any, name: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise BadRequest(f"The field '{name}' is invalid.") from None


@dataclass
class Customer:
    id: int
    email: str
    first_name: str
    last_name: str
    company: str = ""
    phone: str = ""
    notes: str = ""
    customer_group_id: int = 0
    tax_exempt_category: str = ""
    date_created: float = 0.0
    date_modified: float = 0.0
    addresses: list[dict[str, Any]] = field(default_factory=list)
    store_credit: Decimal = ZERO


@dataclass
class Product:
    id: int
    name: str
    sku: str
    price: Decimal
    cost_price: Decimal = ZERO
    retail_price: Decimal = ZERO
    sale_price: Decimal = ZERO
    categories: list[int] = field(default_factory=list)
    brand_id: int = 0
    inventory_level: int = 0
    is_visible: bool = True
    type: str = "physical"
    weight: Decimal = ZERO
    tax_class_id: int = 0
    date_created: float = 0.0
    date_modified: float = 0.0


@dataclass
class OrderLine:
    id: int
    order_id: int
    product_id: int
    name: str
    sku: str
    quantity: int
    base_price: Decimal  # unit price excluding tax
    price_tax: Decimal  # unit tax
    quantity_refunded: int = 0
    refund_amount: Decimal = ZERO

    @property
    def price_inc_tax(self) -> Decimal:
        return self.base_price + self.price_tax

    @property
    def total_ex_tax(self) -> Decimal:
        return self.base_price * self.quantity

    @property
    def total_tax(self) -> Decimal:
        return self.price_tax * self.quantity

    @property
    def total_inc_tax(self) -> Decimal:
        return self.price_inc_tax * self.quantity


@dataclass
class Order:
    id: int
    customer_id: int
    status_id: int
    date_created: float
    date_modified: float
    lines: list[OrderLine]
    billing_address: dict[str, Any]
    shipping_cost_ex_tax: Decimal = ZERO
    shipping_cost_tax: Decimal = ZERO
    payment_method: str = "Credit Card"
    payment_provider_id: str = ""
    refunded_amount: Decimal = ZERO
    #: the transactional currency the shopper pays in (v2 ``default_currency_code``).
    currency_code: str = "USD"
    #: the display currency when the shopper browsed in another one (v2 ``currency_code``).
    display_currency_code: str = ""
    date_shipped: float | None = None
    customer_message: str = ""
    staff_notes: str = ""
    order_source: str = "www"
    channel_id: int = 1
    external_source: str = ""
    is_deleted: bool = False

    @property
    def subtotal_ex_tax(self) -> Decimal:
        return sum((line.total_ex_tax for line in self.lines), ZERO)

    @property
    def subtotal_tax(self) -> Decimal:
        return sum((line.total_tax for line in self.lines), ZERO)

    @property
    def total_ex_tax(self) -> Decimal:
        return self.subtotal_ex_tax + self.shipping_cost_ex_tax

    @property
    def total_tax(self) -> Decimal:
        return self.subtotal_tax + self.shipping_cost_tax

    @property
    def total_inc_tax(self) -> Decimal:
        return self.total_ex_tax + self.total_tax

    @property
    def refundable(self) -> Decimal:
        return self.total_inc_tax - self.refunded_amount

    @property
    def payment_status(self) -> str:
        if self.status_id == 4:
            return "refunded"
        if self.status_id == 14:
            return "partially refunded"
        if self.status_id in PAID_STATUSES:
            return "captured"
        if self.status_id == 7:
            return "pending"
        return ""


@dataclass
class Transaction:
    id: int
    order_id: int
    event: str
    method: str
    amount: Decimal
    currency: str
    gateway: str
    date_created: float
    gateway_transaction_id: str = ""
    status: str = "ok"
    reference_transaction_id: int | None = None
    card_type: str = "visa"
    card_last4: str = "4242"


@dataclass
class Refund:
    id: int
    order_id: int
    created: float
    reason: str
    total_amount: Decimal
    total_tax: Decimal
    items: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    user_id: int = 0
    uses_merchant_override_values: bool = False


@dataclass
class Hook:
    id: int
    scope: str
    destination: str
    headers: dict[str, str] | None
    is_active: bool
    created_at: int
    updated_at: int
    client_id: str = CLIENT_ID
    store_hash: str = STORE_HASH

    def matches(self, scope: str) -> bool:
        if self.scope.endswith("/*"):
            return scope.startswith(self.scope[:-1])
        return self.scope == scope


# --------------------------------------------------------------------------- backend


class BigCommerceBackend:
    """One store ("Summit Outfitters" in the demo) with its catalog, customers, orders and hooks."""

    def __init__(self, *, now: Callable[[], float], switches: Mapping[str, Any]) -> None:
        self.now = now
        self.switches = switches
        self.store_hash = STORE_HASH
        self.store_id = STORE_ID
        self.store_name = STORE_NAME
        self.customers: dict[int, Customer] = {}
        self.products: dict[int, Product] = {}
        self.orders: dict[int, Order] = {}
        self.transactions: dict[int, list[Transaction]] = {}
        self.refunds: dict[int, Refund] = {}
        self.hooks: dict[int, Hook] = {}
        #: orders whose refund is being processed right now (the sequential-refund rule).
        self.refunding: set[int] = set()
        #: (scope, data) of webhook events raised by the last actions, drained by the adapter.
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._ids: dict[str, int] = {"order": 99, "line": 0, "txn": 0, "refund": 0, "hook": 20172983, "payment": 0}

    def next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def bump(self, kind: str, at_least: int) -> None:
        self._ids[kind] = max(self._ids[kind], at_least)

    # ------------------------------------------------------------------ v2 orders

    def get_orders(
        self,
        *,
        status_id: int | None = None,
        customer_id: int | None = None,
        min_id: int | None = None,
        max_id: int | None = None,
        min_total: Decimal | None = None,
        max_total: Decimal | None = None,
        email: str | None = None,
        date_ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
        sort: tuple[str, bool] = ("id", False),
    ) -> list[Order]:
        """Filtered, sorted orders. Incomplete (status 0) orders only appear when asked for by status."""
        result = []
        for order in self.orders.values():
            if order.is_deleted:
                continue
            if status_id is None and order.status_id == 0:
                continue
            if status_id is not None and order.status_id != status_id:
                continue
            if customer_id is not None and order.customer_id != customer_id:
                continue
            if min_id is not None and order.id < min_id:
                continue
            if max_id is not None and order.id > max_id:
                continue
            if min_total is not None and order.total_inc_tax < min_total:
                continue
            if max_total is not None and order.total_inc_tax > max_total:
                continue
            if email is not None and order.billing_address.get("email", "").lower() != email.lower():
                continue
            if not _in_ranges(order, date_ranges or {}):
                continue
            result.append(order)
        key, descending = sort
        result.sort(key=lambda o: (_sort_value(o, key), o.id), reverse=descending)
        return result

    def get_order(self, order_id: int) -> Order:
        order = self.orders.get(order_id)
        if order is None or order.is_deleted:
            raise NotFound()
        return order

    def create_order(self, body: Mapping[str, Any]) -> Order:
        billing = body.get("billing_address")
        products = body.get("products")
        if not isinstance(billing, dict):
            raise BadRequest("The required field 'billing_address' was not supplied.")
        if not isinstance(products, list) or not products:
            raise BadRequest("The required field 'products' was not supplied.")
        status_id = int(body.get("status_id", 1))
        if status_id not in ORDER_STATUSES:
            raise BadRequest("The field 'status_id' is invalid.")
        now = self.now()
        order = Order(
            id=self.next_id("order"),
            customer_id=int(body.get("customer_id", 0)),
            status_id=status_id,
            date_created=now,
            date_modified=now,
            lines=[],
            billing_address=dict(billing),
            shipping_cost_ex_tax=decimal_of(body.get("shipping_cost_ex_tax", "0"), "shipping_cost_ex_tax"),
            payment_method=str(body.get("payment_method", "Manual")),
            customer_message=str(body.get("customer_message", "")),
            staff_notes=str(body.get("staff_notes", "")),
            order_source="external",
            external_source=str(body.get("external_source", "")),
        )
        if order.customer_id and order.customer_id not in self.customers:
            raise BadRequest("The field 'customer_id' is invalid.")
        for item in products:
            order.lines.append(self._line_from_request(order.id, item))
        self.orders[order.id] = order
        if status_id in PAID_STATUSES:
            self.record_purchase(order)
        self.events.append(("store/order/created", {"type": "order", "id": order.id}))
        return order

    def update_order(self, order_id: int, body: Mapping[str, Any]) -> Order:
        order = self.get_order(order_id)
        previous = order.status_id
        if "status_id" in body:
            status_id = int(body["status_id"])
            if status_id not in ORDER_STATUSES:
                raise BadRequest("The field 'status_id' is invalid.")
            order.status_id = status_id
        for name in ("staff_notes", "customer_message"):
            if name in body:
                setattr(order, name, str(body[name]))
        if order.status_id in (2, 3) and order.date_shipped is None:
            order.date_shipped = self.now()
        order.date_modified = self.now()
        if order.status_id in PAID_STATUSES and not self._captured(order.id):
            self.record_purchase(order)
        self.events.append(("store/order/updated", {"type": "order", "id": order.id}))
        if order.status_id != previous:
            self.events.append(
                (
                    "store/order/statusUpdated",
                    {
                        "type": "order",
                        "id": order.id,
                        "status": {"previous_status_id": previous, "new_status_id": order.status_id},
                    },
                )
            )
        return order

    def _line_from_request(self, order_id: int, item: Any) -> OrderLine:
        if not isinstance(item, dict):
            raise BadRequest("The field 'products' is invalid.")
        quantity = int(item.get("quantity", 0))
        if quantity < 1:
            raise BadRequest("The field 'quantity' is invalid.")
        if "product_id" in item:
            product = self.products.get(int(item["product_id"]))
            if product is None:
                raise BadRequest(f"The product id {item['product_id']} is invalid.")
            ex_tax = decimal_of(item.get("price_ex_tax", product.price), "price_ex_tax")
            inc_tax = decimal_of(item.get("price_inc_tax", ex_tax), "price_inc_tax")
            name, sku, product_id = product.name, product.sku, product.id
        else:
            if "name" not in item or "price_inc_tax" not in item:
                raise BadRequest("A custom product needs 'name', 'quantity' and 'price_inc_tax'.")
            inc_tax = decimal_of(item["price_inc_tax"], "price_inc_tax")
            ex_tax = decimal_of(item.get("price_ex_tax", inc_tax), "price_ex_tax")
            name, sku, product_id = str(item["name"]), str(item.get("sku", "")), 0
        return OrderLine(
            id=self.next_id("line"),
            order_id=order_id,
            product_id=product_id,
            name=name,
            sku=sku,
            quantity=quantity,
            base_price=cents(ex_tax),
            price_tax=cents(inc_tax - ex_tax),
        )

    def _captured(self, order_id: int) -> bool:
        return any(t.event in ("purchase", "capture") for t in self.transactions.get(order_id, []))

    def record_purchase(self, order: Order) -> None:
        gateway, method = (
            ("paypalexpress", "offsite") if order.payment_method == "PayPal" else ("authorizenet", "credit_card")
        )
        txn = Transaction(
            id=self.next_id("txn"),
            order_id=order.id,
            event="purchase",
            method=method,
            amount=order.total_inc_tax,
            currency=order.currency_code,
            gateway=gateway,
            gateway_transaction_id=f"{60120000000 + order.id * 7}",
            date_created=order.date_created,
        )
        self.transactions.setdefault(order.id, []).append(txn)

    # ------------------------------------------------------------------ v3 refunds

    def create_refund_quote(self, order_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        order = self.get_order(order_id)
        total, tax, _ = self._price_refund_items(order, body.get("items"))
        methods: list[list[dict[str, Any]]] = []
        gateway = self._gateway_of(order)
        if gateway:
            methods.append(
                [
                    {
                        "provider_id": gateway,
                        "provider_description": GATEWAY_NAMES.get(gateway, gateway),
                        "amount": total,
                        "offline": False,
                    }
                ]
            )
        methods.append(
            [
                {
                    "provider_id": "custom",
                    "provider_description": "Manual refund",
                    "amount": total,
                    "offline": True,
                    "offline_provider": True,
                    "offline_reason": "",
                }
            ]
        )
        if order.customer_id:
            methods.append(
                [
                    {
                        "provider_id": "storecredit",
                        "provider_description": "Store Credit",
                        "amount": total,
                        "offline": True,
                    }
                ]
            )
        return {
            "order_id": order.id,
            "total_refund_amount": total,
            "total_refund_tax_amount": tax,
            "rounding": ZERO,
            "adjustment": ZERO,
            "tax_inclusive": True,
            "refund_methods": methods,
        }

    def create_refund(self, order_id: int, body: Mapping[str, Any]) -> Refund:
        order = self.get_order(order_id)
        total, tax, priced = self._price_refund_items(order, body.get("items"))
        payments = body.get("payments")
        if not isinstance(payments, list) or not payments:
            raise Unprocessable("At least one refund payment is required.")
        paid = ZERO
        recorded: list[dict[str, Any]] = []
        for payment in payments:
            if not isinstance(payment, dict) or "provider_id" not in payment or "amount" not in payment:
                raise Unprocessable("Each payment needs 'provider_id' and 'amount'.")
            provider = str(payment["provider_id"])
            amount = cents(decimal_of(payment["amount"], "amount"))
            if provider == "storecredit" and order.customer_id == 0:
                raise Unprocessable("Unable to provide store credit for a guest customer.")
            if provider not in {"storecredit", "custom", self._gateway_of(order)}:
                raise Unprocessable(f"The payment provider '{provider}' cannot refund this order.")
            paid += amount
            recorded.append(
                {
                    "id": self.next_id("payment"),
                    "provider_id": provider,
                    "amount": amount,
                    "offline": bool(payment.get("offline", provider != self._gateway_of(order))),
                    "is_declined": False,
                    "declined_message": "",
                }
            )
        if paid != total:
            raise Unprocessable(f"The refund payments ({paid}) do not add up to the refund total ({total}).")
        for line, quantity, amount in priced:
            if line is not None:
                line.quantity_refunded += quantity
                line.refund_amount += amount
        order.refunded_amount += total
        previous = order.status_id
        order.status_id = 4 if order.refundable <= ZERO else 14
        order.date_modified = self.now()
        refund = Refund(
            id=self.next_id("refund"),
            order_id=order.id,
            created=self.now(),
            reason=str(body.get("reason", "")),
            total_amount=total,
            total_tax=tax,
            items=[dict(item) for item in body.get("items") or []],
            payments=recorded,
        )
        self.refunds[refund.id] = refund
        for payment in recorded:
            if not payment["offline"]:
                txn = Transaction(
                    id=self.next_id("txn"),
                    order_id=order.id,
                    event="refund",
                    method="credit_card",
                    amount=payment["amount"],
                    currency=order.currency_code,
                    gateway=payment["provider_id"],
                    date_created=self.now(),
                    reference_transaction_id=self._purchase_id(order.id),
                )
                self.transactions.setdefault(order.id, []).append(txn)
                payment["transaction_id"] = txn.id
        self.events.append(
            ("store/order/refund/created", {"type": "order", "id": order.id, "refund": {"refund_id": refund.id}})
        )
        self.events.append(("store/order/updated", {"type": "order", "id": order.id}))
        if order.status_id != previous:
            self.events.append(
                (
                    "store/order/statusUpdated",
                    {
                        "type": "order",
                        "id": order.id,
                        "status": {"previous_status_id": previous, "new_status_id": order.status_id},
                    },
                )
            )
        return refund

    def _gateway_of(self, order: Order) -> str:
        purchases = [t for t in self.transactions.get(order.id, []) if t.event in ("purchase", "capture")]
        return purchases[0].gateway if purchases else ""

    def _purchase_id(self, order_id: int) -> int | None:
        purchases = [t for t in self.transactions.get(order_id, []) if t.event in ("purchase", "capture")]
        return purchases[0].id if purchases else None

    def _price_refund_items(
        self, order: Order, items: Any
    ) -> tuple[Decimal, Decimal, list[tuple[OrderLine | None, int, Decimal]]]:
        """Total, tax and per-line effects of refund ``items``; validation errors are 422s."""
        if order.status_id not in PAID_STATUSES | {14}:
            raise Unprocessable(f"Order {order.id} is not in a refundable state.")
        if not isinstance(items, list) or not items:
            raise Unprocessable("At least one refund item is required.")
        total = tax = ZERO
        priced: list[tuple[OrderLine | None, int, Decimal]] = []
        lines = {line.id: line for line in order.lines}
        for item in items:
            if not isinstance(item, dict):
                raise Unprocessable("Each refund item must be an object.")
            kind = item.get("item_type")
            item_id = int(item.get("item_id", 0))
            if kind == "PRODUCT":
                line = lines.get(item_id)
                if line is None:
                    raise Unprocessable(f"Order product {item_id} does not belong to order {order.id}.")
                quantity = int(item.get("quantity", 0))
                if quantity < 1 or quantity > line.quantity - line.quantity_refunded:
                    raise Unprocessable(f"Quantity {quantity} of order product {item_id} cannot be refunded.")
                amount = line.price_inc_tax * quantity
                total += amount
                tax += line.price_tax * quantity
                priced.append((line, quantity, amount))
            elif kind in ("ORDER", "SHIPPING", "HANDLING", "GIFT_WRAPPING", "FEE"):
                if "amount" not in item:
                    raise Unprocessable(f"A refund item of type {kind} needs an 'amount'.")
                amount = cents(decimal_of(item["amount"], "amount"))
                if amount <= ZERO:
                    raise Unprocessable("Refund amounts must be positive.")
                total += amount
                priced.append((None, 0, amount))
            else:
                raise Unprocessable(f"Unknown refund item_type {kind!r}.")
        total = cents(total)
        if total > order.refundable:
            raise Unprocessable(
                f"The refund total {total} exceeds the refundable amount {order.refundable} of order {order.id}."
            )
        return total, cents(tax), priced

    def get_refunds(
        self,
        *,
        order_ids: Iterable[int] | None = None,
        refund_ids: Iterable[int] | None = None,
        created_min: float | None = None,
        created_max: float | None = None,
    ) -> list[Refund]:
        wanted_orders = set(order_ids) if order_ids is not None else None
        wanted_ids = set(refund_ids) if refund_ids is not None else None
        return [
            r
            for r in sorted(self.refunds.values(), key=lambda r: r.id)
            if (wanted_orders is None or r.order_id in wanted_orders)
            and (wanted_ids is None or r.id in wanted_ids)
            and (created_min is None or r.created >= created_min)
            and (created_max is None or r.created <= created_max)
        ]

    def get_refund(self, refund_id: int) -> Refund:
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise NotFound()
        return refund

    # ------------------------------------------------------------------ v3 customers and products

    def get_customers(
        self,
        *,
        ids: set[int] | None = None,
        emails: set[str] | None = None,
        modified_min: float | None = None,
        modified_max: float | None = None,
        created_min: float | None = None,
        created_max: float | None = None,
    ) -> list[Customer]:
        return [
            c
            for c in sorted(self.customers.values(), key=lambda c: c.id)
            if (ids is None or c.id in ids)
            and (emails is None or c.email.lower() in emails)
            and (modified_min is None or c.date_modified >= modified_min)
            and (modified_max is None or c.date_modified <= modified_max)
            and (created_min is None or c.date_created >= created_min)
            and (created_max is None or c.date_created <= created_max)
        ]

    def get_products(
        self,
        *,
        ids: set[int] | None = None,
        skus: set[str] | None = None,
        name: str | None = None,
        modified_min: float | None = None,
        is_visible: bool | None = None,
    ) -> list[Product]:
        return [
            p
            for p in sorted(self.products.values(), key=lambda p: p.id)
            if (ids is None or p.id in ids)
            and (skus is None or p.sku in skus)
            and (name is None or p.name == name)
            and (modified_min is None or p.date_modified >= modified_min)
            and (is_visible is None or p.is_visible == is_visible)
        ]

    def create_product(self, body: Mapping[str, Any]) -> Product:
        """``POST /v3/catalog/products``: name, type, weight and price are required; SKUs are unique."""
        for name in ("name", "type", "weight", "price"):
            if body.get(name) in (None, ""):
                raise Unprocessable(f"The field '{name}' is required.", errors={name: "required"})
        now = self.now()
        product = Product(
            id=max(self.products, default=0) + 1,
            name=str(body["name"]),
            sku=str(body.get("sku") or ""),
            price=decimal_of(body["price"], "price"),
            weight=decimal_of(body["weight"], "weight"),
            type=str(body["type"]),
            date_created=now,
            date_modified=now,
        )
        self._check_sku(product.sku, product.id)
        self.products[product.id] = product
        self.events.append(("store/product/created", {"type": "product", "id": product.id}))
        return product

    def update_product(self, product_id: int, body: Mapping[str, Any]) -> Product:
        """``PUT /v3/catalog/products/{id}``: name, sku, price, is_visible; moves ``date_modified``."""
        product = self.products.get(product_id)
        if product is None:
            raise NotFound()
        if "sku" in body:
            self._check_sku(str(body["sku"]), product_id)
            product.sku = str(body["sku"])
        if "name" in body:
            product.name = str(body["name"])
        if "price" in body:
            product.price = decimal_of(body["price"], "price")
        if "is_visible" in body:
            product.is_visible = bool(body["is_visible"])
        product.date_modified = self.now()
        self.events.append(("store/product/updated", {"type": "product", "id": product.id}))
        return product

    def _check_sku(self, sku: str, product_id: int) -> None:
        # SKUs are unique across the catalog (the HTTP status of the refusal is UNCONFIRMED: 409).
        if sku and any(p.sku == sku and p.id != product_id for p in self.products.values()):
            raise BigCommerceError(
                f"The product SKU '{sku}' is already in use.", status=409, errors={"sku": "duplicate"}
            )

    # ------------------------------------------------------------------ v3 hooks

    def create_hook(self, body: Mapping[str, Any]) -> Hook:
        scope, destination, headers = self._validate_hook(body)
        same_scope = [h for h in self.hooks.values() if h.scope == scope]
        if any(h.destination == destination for h in same_scope):
            raise Unprocessable(f"A webhook for scope '{scope}' and this destination already exists.")
        if len(same_scope) >= MAX_HOOKS_PER_SCOPE:
            raise Unprocessable(f"At most {MAX_HOOKS_PER_SCOPE} webhooks may exist for scope '{scope}'.")
        now = int(self.now())
        hook = Hook(
            id=self.next_id("hook"),
            scope=scope,
            destination=destination,
            headers=headers,
            is_active=bool(body.get("is_active", True)),
            created_at=now,
            updated_at=now,
        )
        self.hooks[hook.id] = hook
        return hook

    def get_hook(self, hook_id: int) -> Hook:
        hook = self.hooks.get(hook_id)
        if hook is None:
            raise NotFound("Webhook not found.")
        return hook

    def update_hook(self, hook_id: int, body: Mapping[str, Any]) -> Hook:
        hook = self.get_hook(hook_id)
        merged = {
            "scope": body.get("scope", hook.scope),
            "destination": body.get("destination", hook.destination),
            "headers": body.get("headers", hook.headers),
        }
        scope, destination, headers = self._validate_hook(merged)
        clash = [
            h for h in self.hooks.values() if h.id != hook.id and h.scope == scope and h.destination == destination
        ]
        if clash:
            raise Unprocessable(f"A webhook for scope '{scope}' and this destination already exists.")
        hook.scope, hook.destination, hook.headers = scope, destination, headers
        if "is_active" in body:
            hook.is_active = bool(body["is_active"])
        hook.updated_at = int(self.now())
        return hook

    def delete_hook(self, hook_id: int) -> Hook:
        hook = self.get_hook(hook_id)
        del self.hooks[hook_id]
        return hook

    def deactivate_hook(self, hook_id: int) -> Hook:
        """What BigCommerce does after the last failed retry (~48 h): ``is_active`` becomes false."""
        hook = self.get_hook(hook_id)
        hook.is_active = False
        hook.updated_at = int(self.now())
        return hook

    def _validate_hook(self, body: Mapping[str, Any]) -> tuple[str, str, dict[str, str] | None]:
        scope = body.get("scope")
        destination = body.get("destination")
        headers = body.get("headers")
        if not isinstance(scope, str) or scope not in HOOK_SCOPES:
            raise Unprocessable("The scope is invalid.", errors={"scope": "must be a supported webhook scope"})
        if not isinstance(destination, str) or not destination:
            raise Unprocessable("The destination is invalid.", errors={"destination": "is required"})
        if not _destination_allowed(destination, bool(self.switches.get("require_https_destination", True))):
            raise Unprocessable(
                "The destination must be an https URL on port 443.",
                errors={"destination": "must use https on port 443"},
            )
        if headers is not None and (
            not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values())
        ):
            raise Unprocessable("The headers are invalid.", errors={"headers": "must be an object of strings"})
        return scope, destination, dict(headers) if headers is not None else None


# --------------------------------------------------------------------------- helpers


def _in_ranges(order: Order, ranges: Mapping[str, tuple[float | None, float | None]]) -> bool:
    for name, (low, high) in ranges.items():
        value = order.date_created if name == "date_created" else order.date_modified
        if low is not None and value < low:
            return False
        if high is not None and value > high:
            return False
    return True


def _sort_value(order: Order, key: str) -> Any:
    if key == "external_id":
        return order.external_source
    return getattr(order, key)


def _destination_allowed(destination: str, require_https: bool) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(destination)
    if parts.scheme == "https" and parts.hostname and parts.port in (None, 443):
        return True
    if require_https:
        return False
    # Local receivers in tests and the demo: plain http on the loopback interface only.
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")


def encode_cursor(customer_id: int) -> str:
    return base64.urlsafe_b64encode(str(customer_id).encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, binascii.Error):
        raise BadRequest("The cursor is invalid.") from None
