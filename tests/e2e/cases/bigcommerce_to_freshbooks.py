"""bigcommerce_to_freshbooks in the pair conformance suite (the story: sandbox/bigcommerce/demo.py).

Summit Outfitters' paid orders land in the Brightside Marketing FreshBooks account of the sandbox.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from tests.e2e.pair_cases import PairCase

FB_ACCOUNT = "BRT4201"
STORE = "summit7x"
OUR_INVOICE = re.compile(r"BigCommerce order \d+ · total")
REFUND_LINE = re.compile(r"^Refund \d+")


def freshbooks(harness: Any) -> dict[str, Any]:
    account: dict[str, Any] = harness.control.state("freshbooks")["accounts"][FB_ACCOUNT]
    return account


def target_keys(harness: Any) -> dict[str, list[str]]:
    fb = freshbooks(harness)
    ours = [i for i in fb["invoices"] if OUR_INVOICE.search(str(i.get("notes") or ""))]
    return {
        "client": [str(c["email"]).casefold() for c in fb["clients"] if c.get("email") and c.get("vis_state") != 1],
        "item": [str(i["sku"]) for i in fb["items"] if i.get("sku")],
        "invoice": [str(i["invoice_number"]) for i in ours],
        "payment": [
            " ".join(str(p["note"]).split()[:3])
            for p in fb["payments"]
            if str(p.get("note") or "").startswith("BigCommerce transaction")
        ],
        "refund": [
            f"{i['invoice_number']}:{REFUND_LINE.match(str(li['name'])).group(0)}"  # type: ignore[union-attr]
            for i in ours
            for li in i.get("lines") or []
            if REFUND_LINE.match(str(li.get("name") or ""))
        ],
    }


def store_api(harness: Any, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A call to the BigCommerce sandbox's real API, as the merchant's other tools would make it."""
    conn = harness.control.connections()["bigcommerce"]
    response = requests.request(
        method,
        f"{conn['host']}/stores/{STORE}/v3/{path}",
        json=body,
        headers={"X-Auth-Token": conn["password"], "Accept": "application/json"},
        timeout=10,
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()["data"]
    return data


def malform(harness: Any) -> tuple[str, str]:
    # Order 101's product lines come back without their price in both concurrent runs' reads.
    harness.control.fault(
        "bigcommerce", "corrupt_row", count=2, method="GET", path=r"/v2/orders/101/products$", field="price_ex_tax"
    )
    return "invoice", "101"


def list_twice(harness: Any) -> tuple[str, str]:
    harness.control.fault("bigcommerce", "page_drift", count=1, method="GET", path=r"/v2/orders$")
    return "client", "avery.chen@example.com"  # order 100, the first row, is Avery's


def rename_onto_sibling(harness: Any) -> tuple[str, str]:
    # SKUs are unique in BigCommerce at every moment, but they can move: the tent gives its SKU
    # up, then the stake set takes it (two valid edits between runs).
    store_api(harness, "PUT", "catalog/products/77", {"sku": "SO-TENT-RL2P-V2"})
    store_api(harness, "PUT", "catalog/products/83", {"sku": "SO-TENT-RL2P"})
    return "item", "83"


def stream_goes_on(harness: Any) -> tuple[str, str]:
    mug = {"name": "Enamel Trail Mug", "type": "physical", "weight": 1, "price": 14.5, "sku": "SO-ACC-MUG"}
    store_api(harness, "POST", "catalog/products", mug)
    return "item", "SO-ACC-MUG"


CASE = PairCase(
    dag_id="bigcommerce_to_freshbooks",
    seed=lambda harness: harness.control.seed_demo(),
    target_keys=target_keys,
    story={
        "client": {
            "avery.chen@example.com",
            "marcus.oyelaran@example.net",
            "priya@ramanadventure.example",
            "jordan.blake@example.com",
            "sofia.marquez@example.com",
            "liam.oconnor@example.org",
        },
        "item": {"SO-TENT-RL2P", "SO-TENT-BC4P", "SO-STOVE-AMC", "SO-STOVE-TC2B", "SO-JKT-STORM", "SO-FUEL-230"},
        "invoice": {"100", "101", "102", "105", "106", "107", "109", "111", "112"},
        "payment": {"BigCommerce transaction"},
        "refund": {"105:Refund 1", "106:Refund 2", "112:Refund 3"},
    },
    creates=[
        ("freshbooks", "POST", r"/users/clients$"),
        ("freshbooks", "POST", r"/items/items$"),
        ("freshbooks", "POST", r"/invoices/invoices$"),
        ("freshbooks", "POST", r"/payments/payments$"),
        ("freshbooks", "POST", r"/credit_notes/credit_notes$"),
    ],
    empty=lambda harness: None,  # the reset sandbox: an empty store and an empty FreshBooks account
    malform=malform,
    list_twice=list_twice,
    rename_onto_sibling=rename_onto_sibling,
    stream_goes_on=stream_goes_on,
)
