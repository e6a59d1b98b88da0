"""Demo data: "Summit Outfitters" (store hash ``summit7x``), an outdoor-gear shop in Boulder, CO.

Orders cover every case the BigCommerce -> FreshBooks sync must handle:

=====  ===========  ====================  ==================================================
order  customer     status                why it is there
=====  ===========  ====================  ==================================================
100    1 Avery      10 Completed          paid, Colorado sales tax 8 %, shipping
101    2 Marcus     2 Shipped             paid, free shipping
102    3 Priya      11 Awaiting Fulfil.   paid, out-of-state (no tax), a company customer
103    1 Avery      1 Pending             unpaid: must not be invoiced
104    4 Liam       7 Awaiting Payment    unpaid: must not be invoiced
105    2 Marcus     4 Refunded            fully refunded (refund 1: product + shipping)
106    3 Priya      14 Partially Refunded paid, one stove refunded (refund 2)
107    0 (guest)    10 Completed          guest checkout, PayPal
108    4 Liam       0 Incomplete          abandoned checkout: hidden from order lists
109    0 (guest)    11 Awaiting Fulfil.   guest with Avery's e-mail (other case): the same client
110    5 Sofia      10 Completed          a custom product without SKU: cannot be invoiced
111    5 Sofia      9 Awaiting Shipment   paid in EUR (transactional) while browsing in USD
112    4 Liam       14 Partially Refunded stake set refunded to store credit (refund 3)
113    1 Avery      6 Declined            payment declined: skipped with its reason
=====  ===========  ====================  ==================================================

Orders 105 and 106 are listed with the status they had *before* their refund; seeding replays
the refund, which moves them to 4 and 14 the way the real store would.
"""

from __future__ import annotations

from typing import Any

_CO = {"city": "Boulder", "state": "Colorado", "zip": "80302", "country": "United States", "country_iso2": "US"}
_DENVER = {"city": "Denver", "state": "Colorado", "zip": "80205", "country": "United States", "country_iso2": "US"}
_OREGON = {"city": "Bend", "state": "Oregon", "zip": "97701", "country": "United States", "country_iso2": "US"}


def _address(
    first: str, last: str, street: str, place: dict[str, str], email: str, company: str = ""
) -> dict[str, Any]:
    return {
        "first_name": first,
        "last_name": last,
        "company": company,
        "street_1": street,
        "street_2": "",
        **place,
        "phone": "303-555-0" + str(100 + len(first + last)),
        "email": email,
        "form_fields": [],
    }


AVERY = _address("Avery", "Chen", "1420 Pearl Street", _CO, "avery.chen@example.com")
MARCUS = _address("Marcus", "Oyelaran", "2231 Welton Street", _DENVER, "marcus.oyelaran@example.net")
PRIYA = _address(
    "Priya", "Raman", "61 NW Oregon Avenue", _OREGON, "priya@ramanadventure.example", "Raman Adventure Co."
)
LIAM = _address("Liam", "O'Connor", "805 Walnut Street", _CO, "liam.oconnor@example.org")
GUEST = _address("Jordan", "Blake", "17 Canyon Boulevard", _CO, "jordan.blake@example.com")
SOFIA = _address("Sofia", "Marquez", "3 Baseline Road", _CO, "sofia.marquez@example.com")


def demo_fixture() -> dict[str, Any]:
    """The Summit Outfitters store as a JSON fixture (see :meth:`BigCommerceSandbox.seed`)."""
    return {
        "customers": [
            _customer(1, AVERY, "2026-08-14T17:02:11Z"),
            _customer(2, MARCUS, "2026-09-02T09:45:30Z"),
            _customer(3, PRIYA, "2026-09-20T21:13:05Z", notes="Guiding company; invoices to accounts@."),
            _customer(4, LIAM, "2026-10-30T12:00:48Z"),
            _customer(5, SOFIA, "2026-11-10T08:30:00Z"),
        ],
        "products": [
            _product(77, "Ridgeline 2P Backpacking Tent", "SO-TENT-RL2P", "349.00", "162.00", [23], 14),
            _product(78, "Basecamp 4P Family Tent", "SO-TENT-BC4P", "529.00", "248.00", [23], 6),
            _product(79, "Alpine Micro Canister Stove", "SO-STOVE-AMC", "64.95", "24.10", [24], 31),
            _product(80, "TrailChef Two-Burner Camp Stove", "SO-STOVE-TC2B", "139.00", "61.00", [24], 9),
            _product(81, "Stormshell Rain Jacket", "SO-JKT-STORM", "189.00", "74.00", [25], 22),
            _product(82, "Summit 800-Fill Down Jacket", "SO-JKT-DOWN800", "279.00", "118.00", [25], 12),
            _product(83, "Titanium Tent Stake Set (8)", "SO-ACC-TISTK8", "39.50", "11.25", [23], 40),
            _product(84, "Isobutane Fuel Canister 230 g", "SO-FUEL-230", "7.95", "3.10", [24], 120),
        ],
        "orders": [
            _order(
                100, 1, 10, "2026-10-03T15:12:09Z", "2026-10-05T10:01:44Z", AVERY, [(77, 1), (83, 1)], "0.08", "12.00"
            ),
            _order(101, 2, 2, "2026-10-11T18:40:27Z", "2026-10-13T09:12:00Z", MARCUS, [(82, 1), (81, 1)], "0.08", "0"),
            _order(
                102,
                3,
                11,
                "2026-11-02T16:05:51Z",
                "2026-11-02T16:06:03Z",
                PRIYA,
                [(78, 1), (80, 1), (84, 4)],
                "0",
                "25.00",
            ),
            _order(
                103, 1, 1, "2026-11-09T20:31:12Z", "2026-11-09T20:31:12Z", AVERY, [(79, 1), (84, 2)], "0.08", "8.00"
            ),
            _order(104, 4, 7, "2026-11-12T11:18:40Z", "2026-11-12T11:18:40Z", LIAM, [(81, 2)], "0.08", "0"),
            _order(105, 2, 10, "2026-10-18T13:22:05Z", "2026-10-25T15:40:10Z", MARCUS, [(80, 1)], "0.08", "9.50"),
            _order(
                106,
                3,
                2,
                "2026-10-21T10:02:33Z",
                "2026-10-30T17:05:00Z",
                PRIYA,
                [(77, 1), (79, 1), (83, 1)],
                "0.08",
                "0",
            ),
            _order(
                107,
                0,
                10,
                "2026-11-05T14:48:19Z",
                "2026-11-06T09:00:00Z",
                GUEST,
                [(81, 1), (84, 2)],
                "0.08",
                "6.95",
                payment_method="PayPal",
            ),
            _order(108, 4, 0, "2026-11-15T22:10:00Z", "2026-11-15T22:10:00Z", LIAM, [(82, 1)], "0.08", "0"),
            _order(
                109,
                0,
                11,
                "2026-11-16T09:14:00Z",
                "2026-11-16T09:14:30Z",
                AVERY | {"email": "Avery.Chen@Example.com"},
                [(84, 6)],
                "0.08",
                "5.00",
            ),
            _order(
                110,
                5,
                10,
                "2026-11-17T13:30:00Z",
                "2026-11-18T10:00:00Z",
                SOFIA,
                [(83, 1), {"name": "Custom engraving", "price": "15.00", "quantity": 1}],
                "0.08",
                "0",
            ),
            _order(
                111,
                5,
                9,
                "2026-11-18T19:02:41Z",
                "2026-11-18T19:03:00Z",
                SOFIA,
                [(81, 1)],
                "0.19",
                "14.00",
                currency="EUR",
                display_currency="USD",
            ),
            _order(112, 4, 10, "2026-11-19T08:00:00Z", "2026-11-20T16:45:00Z", LIAM, [(77, 1), (83, 2)], "0.08", "0"),
            _order(113, 1, 6, "2026-11-20T11:11:11Z", "2026-11-20T11:12:00Z", AVERY, [(82, 1)], "0.08", "0"),
        ],
        "refunds": [
            {
                "order_id": 105,
                "created": "2026-10-25T15:40:10Z",
                "reason": "Arrived with a cracked burner valve.",
                "items": [
                    {"item_type": "PRODUCT", "line_index": 0, "quantity": 1},
                    {"item_type": "SHIPPING", "amount": "9.50"},
                ],
            },
            {
                "order_id": 106,
                "created": "2026-10-30T17:05:00Z",
                "reason": "Customer returned the unused stove.",
                "items": [{"item_type": "PRODUCT", "line_index": 1, "quantity": 1}],
            },
            {
                "order_id": 112,
                "created": "2026-11-20T16:45:00Z",
                "reason": "One stake set too many; store credit instead.",
                "items": [{"item_type": "PRODUCT", "line_index": 1, "quantity": 1}],
                "provider": "storecredit",
            },
        ],
    }


def _customer(customer_id: int, address: dict[str, Any], created: str, notes: str = "") -> dict[str, Any]:
    return {
        "id": customer_id,
        "email": address["email"],
        "first_name": address["first_name"],
        "last_name": address["last_name"],
        "company": address["company"],
        "phone": address["phone"],
        "notes": notes,
        "date_created": created,
        "date_modified": created,
        "addresses": [
            {
                k: address[k]
                for k in (
                    "first_name",
                    "last_name",
                    "company",
                    "city",
                    "state",
                    "zip",
                    "country",
                    "country_iso2",
                    "phone",
                )
            }
            | {"address1": address["street_1"], "address2": "", "address_type": "residential"}
        ],
    }


def _product(
    product_id: int, name: str, sku: str, price: str, cost: str, categories: list[int], stock: int
) -> dict[str, Any]:
    return {
        "id": product_id,
        "name": name,
        "sku": sku,
        "price": price,
        "cost_price": cost,
        "categories": categories,
        "inventory_level": stock,
        "brand_id": 36,
        "date_created": "2026-06-01T12:00:00Z",
        "date_modified": "2026-09-15T08:30:00Z",
    }


def _order(
    order_id: int,
    customer_id: int,
    status_id: int,
    created: str,
    modified: str,
    billing: dict[str, Any],
    lines: list[tuple[int, int] | dict[str, Any]],
    tax_rate: str,
    shipping: str,
    *,
    payment_method: str = "Credit Card",
    currency: str = "USD",
    display_currency: str = "",
) -> dict[str, Any]:
    return {
        "id": order_id,
        "customer_id": customer_id,
        "status_id": status_id,
        "date_created": created,
        "date_modified": modified,
        "billing_address": billing,
        "lines": [line if isinstance(line, dict) else {"product_id": line[0], "quantity": line[1]} for line in lines],
        "currency": currency,
        "display_currency": display_currency,
        "tax_rate": tax_rate,
        "shipping_cost_ex_tax": shipping,
        "payment_method": payment_method,
    }
