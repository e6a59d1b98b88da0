"""FreshBooks -> BILL: vendors and bills into BILL, settled BILL payments back to FreshBooks.

Mapping rules an accountant can check:

* **Vendors**: FreshBooks bill vendor -> BILL vendor, matched by the ID map, then by name
  (case-insensitive). Countries become ISO 3166 alpha-2 codes; an unknown country is a dead
  letter, never a guess.
* **GL accounts**: each FreshBooks expense category maps to a BILL chart-of-accounts entry:
  an explicit override first (Airflow Variable ``mlconnector_freshbooks_to_bill_gl_overrides``,
  JSON ``{"<FreshBooks category name or id>": "<BILL account number, name or id>"}``), then the
  same name, then the number of the FreshBooks ledger account that has the category's name.
  A bill with any unmapped line goes to the dead-letter queue naming the category.
* **Bills**: matched on BILL vendor + invoice number (``bill_number``, or ``FB-<id>`` when the
  FreshBooks bill has none). Line amounts are the FreshBooks line totals (tax included) to the
  cent and must add up to the bill total. A changed FreshBooks bill updates the BILL bill while it
  is unpaid; once BILL has started paying it, the change is dead-lettered for an accountant.
  Archived or deleted FreshBooks bills are never pushed; if already in BILL and unpaid there, the
  BILL bill is archived; if BILL paid it, the bill is dead-lettered (manual reconciliation).
* **Currency**: a BILL bill is booked in its vendor's ``billCurrency`` (USD when unset). A
  FreshBooks bill in another currency is dead-lettered naming both currencies (``currency_mismatch``);
  nothing is converted 1:1.
* **Payments back**: each settled BILL bill payment (``billPayments[]`` of a payment whose
  status is CLEARED) becomes one FreshBooks bill payment on the original bill, for the settled
  amount in the bill's currency, dated the process date, with the BILL ids in the note (which is
  also how a lost answer is found again). Partial payments add up; FreshBooks recomputes the
  bill's status. A payment that leaves the settled state after it was written (voided, failed,
  returned) is deleted from FreshBooks. A payment whose bill is not linked yet waits (it is
  re-read every run until its bill is synced). A cleared payment without ``billPayments[]`` is
  dead-lettered, never dropped.

**Params**: ``dry_run`` (decide and report, write nothing anywhere), ``full_resync`` (ignore
watermarks), ``replay_dead_letters`` (dead-letter ids to retry after fixing the cause).

**Safe to rerun**: clearing any task, retries, ``airflow backfill create --dag-id freshbooks_to_bill
--from-date ... --to-date ...`` and concurrent runs never create duplicates (fenced write intents
in the state store + natural-key lookups). BILL calls run in the ``bill_api`` pool (3 slots: BILL
allows 3 concurrent requests per organization). Summary per entity in the ``summary`` task.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_mlconnector.exceptions import MappingError, RecordError
from airflow_provider_mlconnector.hooks.bill import BULK_BILLS_LIMIT, BULK_VENDORS_LIMIT, BillHook
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook
from airflow_provider_mlconnector.operators.pair import Ctx, Entity, Outcome, Pair, Record, Retire, Skip
from airflow_provider_mlconnector.operators.reconcile import Reconciliation
from airflow_provider_mlconnector.pairs import people
from airflow_provider_mlconnector.pairs.countries import iso_country

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state.watermarks import Window

GL_OVERRIDES_VARIABLE = "mlconnector_freshbooks_to_bill_gl_overrides"
CENT = Decimal("0.01")
SETTLED = {"CLEARED"}
#: BILL books a bill in its vendor's ``billCurrency``; BILL organizations are US-dollar by default.
BILL_DEFAULT_CURRENCY = "USD"
FUNDING_TO_PAYMENT_TYPE = {"BANK_ACCOUNT": "ACH", "CARD_ACCOUNT": "Credit Card", "WALLET": "Other", "CHECK": "Check"}
ACTIVE, DELETED, ARCHIVED = 0, 1, 2


def cents(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def money_amount(money: Any) -> Decimal:
    """FreshBooks Money ``{"amount": "12.30", "code": "USD"}`` (or a bare number) as Decimal."""
    if isinstance(money, dict):
        return cents(money.get("amount") or "0")
    return cents(money or "0")


# ---------------------------------------------------------------------------------- GL mapping


@dataclass(frozen=True)
class GLMapping:
    """FreshBooks expense category id -> BILL chart-of-accounts id (with why, for the audit)."""

    accounts: dict[str, str]
    names: dict[str, str]

    def account_for(self, category_id: str) -> str:
        if category_id in self.accounts:
            return self.accounts[category_id]
        name = self.names.get(category_id, f"id {category_id}")
        raise MappingError(
            f"FreshBooks expense category '{name}' has no BILL GL account: add it to the BILL chart of "
            f"accounts, or map it in the Airflow Variable {GL_OVERRIDES_VARIABLE}",
            kind="unmapped_account",
        )


def build_gl_mapping(
    categories: Iterable[Record],
    ledger_accounts: Iterable[Record],
    bill_accounts: Iterable[Record],
    overrides: dict[str, str],
) -> GLMapping:
    """Seed by name and by ledger-account number; explicit overrides win."""
    bill = list(bill_accounts)
    by_id = {str(a["id"]): str(a["id"]) for a in bill}
    by_number = {str(a.get("accountNumber")): str(a["id"]) for a in bill if a.get("accountNumber")}
    by_name = {str(a["name"]).casefold(): str(a["id"]) for a in bill if a.get("name")}
    ledger_number = {str(la["name"]).casefold(): str(la.get("number")) for la in ledger_accounts if la.get("name")}

    def resolve(target: str) -> str | None:
        return by_id.get(target) or by_number.get(target) or by_name.get(target.casefold())

    accounts: dict[str, str] = {}
    names: dict[str, str] = {}
    for category in categories:
        category_id = str(category.get("categoryid") or category["id"])
        name = str(category.get("category") or category.get("name") or "")
        names[category_id] = name
        override = overrides.get(category_id) or overrides.get(name)
        if override is not None:
            resolved = resolve(str(override))
            if resolved is None:
                continue  # an override naming a missing account stays unmapped (and says so)
            accounts[category_id] = resolved
            continue
        found = by_name.get(name.casefold()) or by_number.get(ledger_number.get(name.casefold(), ""))
        if found:
            accounts[category_id] = found
    return GLMapping(accounts, names)


def gl_overrides() -> dict[str, str]:
    """The user's overrides from the Airflow Variable (or its ``AIRFLOW_VAR_`` env form)."""
    raw = os.environ.get(f"AIRFLOW_VAR_{GL_OVERRIDES_VARIABLE.upper()}")
    if raw is None:
        try:
            from airflow.sdk import Variable

            raw = Variable.get(GL_OVERRIDES_VARIABLE, default=None)
        except Exception:  # noqa: BLE001 - outside a task (tests, CLI) there is no Variable API
            raw = None
    if not raw:
        return {}
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        from airflow_provider_mlconnector.exceptions import ConfigurationError

        raise ConfigurationError(f"Variable {GL_OVERRIDES_VARIABLE} is not valid JSON: {exc}") from None
    return {str(k): str(v) for k, v in dict(parsed).items()}


# ---------------------------------------------------------------------------------- vendors


def vendor_id(vendor: Record) -> str:
    return str(vendor.get("vendorid") or vendor["id"])


def vendor_payload(vendor: Record, ctx: Ctx) -> Outcome:
    if int(vendor.get("vis_state") or 0) != ACTIVE and not ctx.mapped:
        return Skip("vendor is archived or deleted in FreshBooks and was never synced")
    name = str(vendor.get("vendor_name") or "").strip()
    if not name:
        raise MappingError("FreshBooks vendor has no name", kind="validation")
    payload: Record = {"name": name[:100], "accountType": "BUSINESS"}
    optional = {
        "email": vendor.get("primary_contact_email"),
        "phone": vendor.get("phone"),
        "accountNumber": vendor.get("account_number"),
        "billCurrency": vendor.get("currency_code"),
    }
    payload.update({k: v for k, v in optional.items() if v})
    if not (vendor.get("street") or vendor.get("city")):
        if ctx.mapped:
            return payload  # an update leaves BILL's address as it is
        return _without_address(vendor)
    address = {
        "line1": vendor.get("street") or "",
        "line2": vendor.get("street2") or None,
        "city": vendor.get("city") or "",
        "stateOrProvince": vendor.get("province") or "",
        "zipOrPostalCode": vendor.get("postal_code") or "",
        "country": iso_country(vendor.get("country")),
    }
    payload["address"] = {k: v for k, v in address.items() if v is not None}
    return payload


def _without_address(vendor: Record) -> Skip:
    """BILL creates no vendor without a mailing address: say so before spending a call on it.

    Employees that the Expensify and BambooHR pairs keep as FreshBooks bill vendors have none (their
    home address is not synced); they are skipped until someone adds one, not dead-lettered: most
    are never paid through BILL. A supplier without one is a letter: its bills cannot be paid.
    """
    if people.is_person_vendor(vendor):
        return Skip("employee without a mailing address in FreshBooks; BILL needs one to create the vendor")
    raise MappingError(
        "FreshBooks vendor has no mailing address and BILL requires one to create a vendor: "
        "add the street, city, postal code and country in FreshBooks",
        kind="validation",
    )


def vendor_key(vendor: Record, payload: Record) -> str:
    return str(payload["name"]).casefold()


def active_vendors_by_key(bill: BillHook, payloads: list[Record]) -> dict[str, Record]:
    # One paged listing beats one lookup per vendor until BILL holds ~100x the batch size.
    return {str(v["name"]).casefold(): v for v in bill.vendors.list() if not v.get("archived")}


def find_vendor(bill: BillHook, key: str) -> Record | None:
    return active_vendors_by_key(bill, []).get(key)


# ---------------------------------------------------------------------------------- bills


@dataclass(frozen=True)
class BillReference:
    """Read once per task: the GL mapping and the currency each BILL vendor books in."""

    gl: GLMapping
    vendor_currency: dict[str, str]


def bill_reference(freshbooks: FreshBooksHook, bill: BillHook) -> BillReference:
    gl = build_gl_mapping(
        freshbooks.expense_categories.list(),
        list(freshbooks.ledger_accounts.list()),
        bill.chart_of_accounts.list(archived=False),
        gl_overrides(),
    )
    return BillReference(gl, vendor_currencies(bill))


def vendor_currencies(bill: BillHook) -> dict[str, str]:
    return {str(v["id"]): str(v.get("billCurrency") or BILL_DEFAULT_CURRENCY) for v in bill.vendors.list()}


def read_bills(freshbooks: FreshBooksHook, window: Window) -> Iterator[Record]:
    # Active + archived (FreshBooks' default listing), then deleted ones (which only matter when
    # already synced: they may need archiving in BILL). No updated-since filter is documented.
    yield from freshbooks.bills.list()
    yield from freshbooks.bills.list(vis_state=DELETED)


def invoice_number(bill: Record) -> str:
    return str(bill.get("bill_number") or f"FB-{bill['id']}")


def bill_currency(bill: Record) -> str:
    total = bill.get("total_amount") or bill.get("amount")
    code = bill.get("currency_code") or (total.get("code") if isinstance(total, dict) else None)
    return str(code or BILL_DEFAULT_CURRENCY).upper()


def bill_payload(bill: Record, ctx: Ctx) -> Outcome:
    state = int(bill.get("vis_state") or 0)
    if state != ACTIVE:
        return Retire(f"bill is {'deleted' if state == DELETED else 'archived'} in FreshBooks")
    reference: BillReference = ctx.reference
    vendor = ctx.target_id("vendor", bill["vendorid"])
    booked_in = reference.vendor_currency.get(vendor, BILL_DEFAULT_CURRENCY).upper()
    if bill_currency(bill) != booked_in:
        raise MappingError(
            f"bill is in {bill_currency(bill)} but BILL books this vendor's bills in {booked_in}; "
            "nothing is converted: set the vendor's currency in BILL or enter the bill there",
            kind="currency_mismatch",
        )
    lines = [bill_line(line, reference.gl) for line in bill.get("lines") or []]
    if not lines:
        raise MappingError("FreshBooks bill has no lines", kind="validation")
    total = money_amount(bill.get("total_amount") or bill.get("amount"))
    line_sum = sum((cents(li["amount"]) for li in lines), Decimal("0"))
    if line_sum != total:
        raise MappingError(
            f"line totals {line_sum} do not add up to the bill total {total}; not sent", kind="validation"
        )
    payload: Record = {
        "vendorId": vendor,
        "invoice": {"invoiceNumber": invoice_number(bill), "invoiceDate": str(bill["issue_date"])},
        "dueDate": str(bill.get("due_date") or bill["issue_date"]),
        "billLineItems": lines,
    }
    if bill.get("overall_description"):
        payload["description"] = str(bill["overall_description"])[:4000]
    return payload


def bill_line(line: Record, gl: GLMapping) -> Record:
    category_id = str(line.get("categoryid") or (line.get("category") or {}).get("categoryid") or "")
    return {
        "amount": float(money_amount(line.get("total_amount") or line.get("amount"))),
        "description": str(line.get("description") or line.get("name") or "")[:4000],
        "classifications": {"chartOfAccountId": gl.account_for(category_id)},
    }


def bill_key(bill: Record, payload: Record) -> str:
    return f"{payload['vendorId']}|{payload['invoice']['invoiceNumber']}"


def bills_by_key(bill: BillHook, payloads: list[Record]) -> dict[str, Record]:
    vendor_ids = sorted({str(p["vendorId"]) for p in payloads})
    return {
        f"{b['vendorId']}|{(b.get('invoice') or {}).get('invoiceNumber') or ''}": b
        for b in bill.bills.list(vendorId=vendor_ids, archived=False)
    }


def find_bill(bill: BillHook, key: str) -> Record | None:
    vendor, _, number = key.partition("|")
    return bill.bills.find(
        vendorId=vendor, archived=False, matching=lambda b: (b.get("invoice") or {}).get("invoiceNumber") == number
    )


def unpaid_bill(bill: BillHook, bill_id: str, change: str) -> Record:
    """The BILL bill, if BILL has not started paying it; otherwise an accountant decides."""
    current = bill.bills.get(bill_id)
    status = str(current.get("paymentStatus") or "UNPAID").upper()
    if status != "UNPAID":
        raise RecordError(
            f"bill {change} in FreshBooks but BILL shows it {status}; reconcile manually", kind="manual_reconciliation"
        )
    return current


def update_bill(bill: BillHook, bill_id: str, payload: Record) -> None:
    unpaid_bill(bill, bill_id, "changed after BILL started paying it")
    bill.bills.update(bill_id, payload)


def archive_bill(bill: BillHook, bill_id: str) -> None:
    if not unpaid_bill(bill, bill_id, "was archived or deleted").get("archived"):
        bill.bills.archive(bill_id)


def compare_bill(fb_bill: Record, bill_bill: Record) -> list[str]:
    """Drift between a FreshBooks bill and the BILL bill it became: total, paid amount, archived."""
    problems = []
    fb_total, bill_total = (
        money_amount(fb_bill.get("total_amount") or fb_bill.get("amount")),
        cents(bill_bill.get("amount") or 0),
    )
    if fb_total != bill_total:
        problems.append(f"amount differs: FreshBooks {fb_total}, BILL {bill_total}")
    fb_paid = money_amount(fb_bill.get("paid"))
    bill_paid = cents(bill_bill.get("paidAmount") or bill_total - cents(bill_bill.get("dueAmount") or bill_total))
    if bill_paid > fb_paid:
        problems.append(f"paid in BILL ({bill_paid}) but not in FreshBooks ({fb_paid})")
    elif fb_paid > bill_paid:
        problems.append(f"paid in FreshBooks ({fb_paid}) but not in BILL ({bill_paid})")
    if bill_bill.get("archived") and int(fb_bill.get("vis_state") or 0) == ACTIVE:
        problems.append("archived in BILL but active in FreshBooks")
    return problems


# ---------------------------------------------------------------------------------- payments


def read_applications(bill: BillHook, window: Window) -> Iterator[Record]:
    for payment in bill.payments.list(updated_since=window.start, updated_before=window.end):
        yield from applications(payment)


def fetch_application(bill: BillHook, source_id: str) -> Record | None:
    payment = bill.payments.get(source_id.split("/", 1)[0])
    return next((r for r in applications(payment) if r["id"] == source_id), None)


def applications(payment: Record) -> Iterator[Record]:
    """One record per ``billPayments[]`` item; a payment without any stays one record (a dead letter)."""
    common = {
        "paymentId": payment["id"],
        "vendorId": payment.get("vendorId"),
        "processDate": payment.get("processDate"),
        "status": payment.get("singleStatus") or payment.get("status"),
        "fundingType": (payment.get("fundingAccount") or {}).get("type"),
    }
    applied = payment.get("billPayments")
    if not applied:
        yield {"id": str(payment["id"]), "billPaymentId": None, **common}
        return
    for item in applied:
        yield {
            "id": f"{payment['id']}/{item['id']}",
            "billPaymentId": item["id"],
            "billId": item.get("billId"),
            "amount": item.get("amount"),
            **common,
        }


def payment_payload(application: Record, ctx: Ctx) -> Outcome:
    status = str(application.get("status") or "").upper()
    if status not in SETTLED:
        if ctx.mapped:
            return Retire(f"BILL payment is {status or 'no longer settled'} after it was written")
        return Skip(f"BILL payment not settled yet ({status or 'unknown'})")
    if application["billPaymentId"] is None:
        raise MappingError(
            "BILL payment has no billPayments[]: which bills it pays is unknown; record it by hand",
            kind="unknown_payment_shape",
        )
    fb_bill = ctx.source_id("bill", application["billId"])
    currency: str = ctx.reference.get(str(application.get("vendorId")), BILL_DEFAULT_CURRENCY)
    return {
        "billid": fb_bill,
        "amount": {"amount": str(cents(application["amount"])), "code": currency},
        "paid_date": str(application.get("processDate") or "")[:10],
        "payment_type": FUNDING_TO_PAYMENT_TYPE.get(str(application.get("fundingType") or "").upper(), "ACH"),
        "note": f"BILL payment {application['paymentId']} ({application['billPaymentId']})",
    }


def payment_key(application: Record, payload: Record) -> str:
    return f"{payload['billid']}|{application['billPaymentId']}"


def find_payment(freshbooks: FreshBooksHook, key: str) -> Record | None:
    bill_id, _, marker = key.partition("|")
    # The bill embeds its payments: one call, and the marker in the note is BILL's payment id.
    embedded = freshbooks.bills.get(bill_id).get("bill_payments") or []
    return next((p for p in embedded if marker in str(p.get("note") or "")), None)


def update_payment(freshbooks: FreshBooksHook, payment_id: str, payload: Record) -> None:
    freshbooks.bill_payments.update(payment_id, {k: v for k, v in payload.items() if k != "billid"})


PAIR = Pair(
    name="freshbooks_to_bill",
    source=FreshBooksHook,
    target=BillHook,
    doc=__doc__ or "",
    description="FreshBooks vendors and bills into BILL; BILL payments back to FreshBooks",
    entities=(
        Entity(
            "vendor",
            # FreshBooks documents no updated-since filter for bill vendors: read all, skip the
            # unchanged by fingerprint (one page per 100 vendors).
            read=lambda fb, window: fb.bill_vendors.list(),
            fetch=lambda fb, source_id: fb.bill_vendors.get(source_id),
            source_id=vendor_id,
            transform=vendor_payload,
            natural_key=vendor_key,
            index=active_vendors_by_key,
            find=find_vendor,
            create=lambda bill, payload: bill.vendors.create(payload),
            create_many=lambda bill, payloads: bill.vendors.create_many(payloads),
            bulk_limit=BULK_VENDORS_LIMIT,
            update=lambda bill, vendor_id, payload: bill.vendors.update(vendor_id, payload),
            batch_size=1000,  # small payloads; one upsert task start-up per 1,000 vendors
        ),
        Entity(
            "bill",
            after=("vendor",),
            # Each BILL upsert takes all 3 pool slots, so bill batches run one after another:
            # fewer, larger batches spend less on task start-up and scheduling gaps (2,500 bills:
            # about 3.5 MB of XCom, 25 bulk calls of 100; 10,000 bills are 4 upserts, not 10).
            batch_size=2500,
            read=read_bills,
            fetch=lambda fb, source_id: fb.bills.get(source_id),
            prepare=bill_reference,
            transform=bill_payload,
            natural_key=bill_key,
            index=bills_by_key,
            find=find_bill,
            create=lambda bill, payload: bill.bills.create(payload),
            create_many=lambda bill, payloads: bill.bills.create_many(payloads),
            bulk_limit=BULK_BILLS_LIMIT,
            update=update_bill,
            retire=archive_bill,
            reconcile=Reconciliation(fetch_target=lambda bill, bill_id: bill.bills.get(bill_id), compare=compare_bill),
        ),
        Entity(
            "payment",
            after=("bill",),
            reverse=True,
            read=read_applications,
            fetch=fetch_application,
            prepare=lambda bill, fb: vendor_currencies(bill),
            transform=payment_payload,
            natural_key=payment_key,
            find=find_payment,
            create=lambda fb, payload: fb.bill_payments.create(payload),
            update=update_payment,
            retire=lambda fb, payment_id: fb.bill_payments.delete(payment_id),
        ),
    ),
)
