"""Which DAGs an event should make run sooner.

The DAG re-reads the records itself (payloads carry ids), so an event only says "run soon".
Systems absent from the table are stored and left pending for a future consumer; event types of
a listed system that match no route are marked done as ``!unrouted``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    system: str
    #: an event type matches ``"bill."`` when it starts with it or equals ``"bill"``
    prefixes: tuple[str, ...]
    dags: tuple[str, ...]

    def matches(self, system: str, event_type: str) -> bool:
        return system == self.system and any(
            event_type.startswith(prefix) or event_type == prefix.rstrip("./") for prefix in self.prefixes
        )


ROUTES: tuple[Route, ...] = (
    # BILL vendors and bills feed both the FreshBooks write-back and the QuickBooks copy.
    Route("bill", ("vendor.", "bill."), ("freshbooks_to_bill", "bill_to_quickbooks")),
    Route("bill", ("payment.",), ("freshbooks_to_bill",)),
    Route("freshbooks", ("bill.", "bill_vendor.", "bill_payment."), ("freshbooks_to_bill",)),
    Route("bigcommerce", ("store/order/",), ("bigcommerce_to_freshbooks",)),
    Route("bamboohr", ("",), ("bamboohr_to_freshbooks",)),
    # QuickBooks Vendor / PurchaseOrder / Bill changes: bill_to_quickbooks checks them against BILL
    # (legacy ``Vendor.Update`` and CloudEvents ``qbo.vendor.updated.v1`` types alike).
    Route(
        "quickbooks",
        ("Vendor.", "PurchaseOrder.", "Bill.", "qbo.vendor.", "qbo.purchaseorder.", "qbo.bill."),
        ("bill_to_quickbooks",),
    ),
)

ROUTED_SYSTEMS: tuple[str, ...] = tuple(dict.fromkeys(route.system for route in ROUTES))


def dags_for(system: str, event_type: str, routes: tuple[Route, ...] = ROUTES) -> tuple[str, ...]:
    """The DAG ids to trigger for one event, in table order, without repeats."""
    found = (dag for route in routes if route.matches(system, event_type) for dag in route.dags)
    return tuple(dict.fromkeys(found))
