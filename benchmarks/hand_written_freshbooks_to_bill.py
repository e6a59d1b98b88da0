"""The peer: the FreshBooks -> BILL sync a team would write by hand, without this provider.

A plain script, not Airflow: read every FreshBooks vendor and bill, then for each record search
BILL by its natural key (vendor name; vendor + invoice number) and create it when absent, three
workers at a time (BILL's 3 concurrent requests per organization). No ID map, no bulk endpoint,
no fingerprints: what a careful team writes in an afternoon. It uses this provider's hooks only as
its HTTP client (auth, BILL's concurrency limit, retries), so the comparison is of the write
protocol, not of two HTTP stacks; the GL mapping is the pair's, so both write the same bills.

The benchmark runs it on the same generated data and sandbox as the DAG (see
``bench_freshbooks_to_bill.py``); it can also run alone against a running sandbox.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from airflow_provider_mlconnector.exceptions import MappingError, RateLimitedError
from airflow_provider_mlconnector.hooks.bill import HOURLY_LIMIT, BillHook
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook
from airflow_provider_mlconnector.pairs.countries import iso_country
from airflow_provider_mlconnector.pairs.freshbooks_to_bill import bill_line, build_gl_mapping, invoice_number

Record = dict[str, Any]
WORKERS = 3


def vendor_body(vendor: Record) -> Record | None:
    """BILL's vendor body; None for a vendor BILL would refuse (no name or no mailing address)."""
    name = str(vendor.get("vendor_name") or "").strip()
    if not name or not (vendor.get("street") or vendor.get("city")):
        return None
    return {
        "name": name[:100],
        "accountType": "BUSINESS",
        "address": {
            "line1": vendor.get("street") or "",
            "city": vendor.get("city") or "",
            "stateOrProvince": vendor.get("province") or "",
            "zipOrPostalCode": vendor.get("postal_code") or "",
            "country": iso_country(vendor.get("country")),
        },
    }


QUOTA = "stopped_by_quota"


def quota_guarded(step: Callable[[], Any], stopped: Any) -> Any:
    """BILL's 20,000 requests an hour per developer key: once spent, the script stops writing
    (``BDC_1144`` asks to wait for the next hour) and says how far it got."""
    try:
        return step()
    except RateLimitedError as exc:
        if exc.code != HOURLY_LIMIT:
            raise
        return stopped


def sync_vendor(bill: BillHook, vendor: Record) -> tuple[str, str | None, str]:
    try:
        body = vendor_body(vendor)
    except MappingError:  # a country ISO 3166 does not know
        body = None
    if body is None or int(vendor.get("vis_state") or 0) != 0:
        return str(vendor["vendorid"]), None, "skipped"
    found = bill.vendors.find(name=body["name"], archived=False)
    if found is not None:
        return str(vendor["vendorid"]), str(found["id"]), "found"
    return str(vendor["vendorid"]), str(bill.vendors.create(body)["id"]), "created"


def sync_bill(bill: BillHook, gl: Any, vendor_ids: dict[str, str | None], fb_bill: Record) -> str:
    vendor = vendor_ids.get(str(fb_bill["vendorid"]))
    if vendor is None or int(fb_bill.get("vis_state") or 0) != 0:
        return "skipped"
    try:
        lines = [bill_line(line, gl) for line in fb_bill.get("lines") or []]
    except MappingError:
        return "skipped"  # an unmapped category: the team's script logs it and goes on
    number = invoice_number(fb_bill)
    found = bill.bills.find(
        vendorId=vendor, archived=False, matching=lambda b: (b.get("invoice") or {}).get("invoiceNumber") == number
    )
    if found is not None:
        return "found"
    bill.bills.create(
        {
            "vendorId": vendor,
            "invoice": {"invoiceNumber": number, "invoiceDate": str(fb_bill["issue_date"])},
            "dueDate": str(fb_bill.get("due_date") or fb_bill["issue_date"]),
            "billLineItems": lines,
        }
    )
    return "created"


@dataclass
class PeerRun:
    """One pass: its wall time and what it did with each vendor and bill (created, found, skipped)."""

    wall_s: float
    vendors: dict[str, int]
    bills: dict[str, int]
    calls: int = 0
    bill_calls: int = 0

    @property
    def stopped(self) -> bool:
        """Whether BILL's hourly quota stopped it before every record was written."""
        return QUOTA in self.vendors or QUOTA in self.bills


def run(freshbooks: FreshBooksHook, bill: BillHook, workers: int = WORKERS) -> PeerRun:
    """One pass of the hand-written sync: its wall time and what it did per record."""
    started = time.monotonic()
    gl = build_gl_mapping(
        freshbooks.expense_categories.list(),
        list(freshbooks.ledger_accounts.list()),
        bill.chart_of_accounts.list(archived=False),
        {},
    )
    vendors = list(freshbooks.bill_vendors.list())
    bills = list(freshbooks.bills.list())
    with ThreadPoolExecutor(workers) as pool:
        vendor_results = list(
            pool.map(lambda v: quota_guarded(lambda: sync_vendor(bill, v), (v["vendorid"], None, QUOTA)), vendors)
        )
        vendor_ids = {str(source): target for source, target, _ in vendor_results}
        bill_results = Counter(
            pool.map(lambda b: quota_guarded(lambda: sync_bill(bill, gl, vendor_ids, b), QUOTA), bills)
        )
    vendor_outcomes = Counter(outcome for _, _, outcome in vendor_results)
    return PeerRun(round(time.monotonic() - started, 1), dict(vendor_outcomes), dict(bill_results))
