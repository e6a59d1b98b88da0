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
* **Payments back**: each settled BILL bill payment (``billPayments[]`` of a payment whose
  status is CLEARED) becomes one FreshBooks bill payment on the original bill, for the settled
  amount, dated the process date, with the BILL ids in the note (which is also how a lost answer
  is found again). Partial payments add up; FreshBooks recomputes the bill's status.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mlconnector.exceptions import MappingError, RecordError
from airflow_provider_mlconnector.operators.engine import EntitySpec, Record
from airflow_provider_mlconnector.pairs.countries import iso_country

if TYPE_CHECKING:
    from airflow_provider_mlconnector.hooks.bill import BillHook
    from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook
    from airflow_provider_mlconnector.state.watermarks import Window

PAIR = "freshbooks_to_bill"
GL_OVERRIDES_VARIABLE = "mlconnector_freshbooks_to_bill_gl_overrides"
CENT = Decimal("0.01")
SETTLED = {"CLEARED"}
VOIDED = {"VOIDED", "CANCELED", "FUNDING_FAILED_VOIDED"}
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


# ---------------------------------------------------------------------------------- specs


class _FreshBooksToBill(EntitySpec):
    pair: ClassVar[str] = PAIR
    source_system: ClassVar[str] = "freshbooks"
    target_system: ClassVar[str] = "bill"
    source: FreshBooksHook
    target: BillHook

    @property
    def source_tenant(self) -> str:
        return self.source.account_id

    @property
    def target_tenant(self) -> str:
        return self.target.organization_id

    def source_id(self, record: Record) -> str:
        return str(record["id"] if "id" in record else record["vendorid"])

    def target_id(self, target_record: Record) -> str:
        return str(target_record["id"])


class VendorSpec(_FreshBooksToBill):
    """FreshBooks bill vendors -> BILL vendors."""

    entity: ClassVar[str] = "vendor"

    def extract(self, window: Window) -> Iterator[Record]:
        # FreshBooks documents no updated-since filter for bill vendors: read all, skip unchanged
        # by fingerprint (cheap: one page per 100 vendors).
        return self.source.list_bill_vendors()

    def fetch(self, source_id: str) -> Record | None:
        return self.source.get_bill_vendor(source_id)

    def source_id(self, record: Record) -> str:
        return str(record.get("vendorid") or record["id"])

    def skip_reason(self, record: Record, mapped: bool) -> str | None:
        if int(record.get("vis_state") or 0) != ACTIVE and not mapped:
            return "vendor is archived or deleted in FreshBooks and was never synced"
        return None

    def transform(self, record: Record) -> Record:
        name = str(record.get("vendor_name") or "").strip()
        if not name:
            raise MappingError("FreshBooks vendor has no name", kind="validation")
        payload: Record = {"name": name[:100], "accountType": "BUSINESS"}
        optional = {
            "email": record.get("primary_contact_email"),
            "phone": record.get("phone"),
            "accountNumber": record.get("account_number"),
            "billCurrency": record.get("currency_code"),
        }
        payload.update({k: v for k, v in optional.items() if v})
        if record.get("street") or record.get("city"):
            payload["address"] = {
                "line1": record.get("street") or "",
                "line2": record.get("street2") or None,
                "city": record.get("city") or "",
                "stateOrProvince": record.get("province") or "",
                "zipOrPostalCode": record.get("postal_code") or "",
                "country": iso_country(record.get("country")),
            }
            payload["address"] = {k: v for k, v in payload["address"].items() if v is not None}
        return payload

    def natural_key(self, record: Record, payload: Record) -> str:
        return str(payload["name"]).casefold()

    def index_existing(self, payloads: list[tuple[str, Record]]) -> dict[str, Record] | None:
        # One paged listing beats one lookup per vendor until BILL holds ~100x the batch size.
        return {str(v["name"]).casefold(): v for v in self.target.list_vendors() if not v.get("archived")}

    def find_existing(self, natural_key: str, payload: Record) -> Record | None:
        return self.target.find_vendor_by_name(str(payload["name"]))

    def create(self, payload: Record, record: Record) -> Record:
        return self.target.create_vendor(payload)

    def update(self, target_id: str, payload: Record, record: Record) -> Record | None:
        return self.target.update_vendor(target_id, payload)


class BillSpec(_FreshBooksToBill):
    """FreshBooks bills -> BILL bills, GL-mapped line by line."""

    entity: ClassVar[str] = "bill"
    # Each BILL upsert task takes all 3 pool slots, so bill batches run one after another: fewer,
    # larger batches spend less on task start-up (a batch of 500 is about 0.7 MB of XCom).
    batch_size: ClassVar[int] = 500
    gl: GLMapping | None = None

    def extract(self, window: Window) -> Iterator[Record]:
        # Active + archived (FreshBooks' default listing), then deleted ones (which only matter
        # when already synced: they may need archiving in BILL).
        yield from self.source.list_bills()
        yield from self.source.list_bills(vis_state=DELETED)

    def fetch(self, source_id: str) -> Record | None:
        return self.source.get_bill(source_id)

    def prepare(self, records: list[Record]) -> None:
        if self.gl is None:
            self.gl = build_gl_mapping(
                self.source.list_expense_categories(),
                self.source.list_ledger_accounts(),
                self.target.list_chart_of_accounts(),
                gl_overrides(),
            )

    def skip_reason(self, record: Record, mapped: bool) -> str | None:
        state = int(record.get("vis_state") or 0)
        if state != ACTIVE and not mapped:
            return f"bill is {'deleted' if state == DELETED else 'archived'} in FreshBooks and was never synced"
        return None

    def invoice_number(self, record: Record) -> str:
        return str(record.get("bill_number") or f"FB-{record['id']}")

    def vendor_target_id(self, record: Record) -> str:
        vendor_id = str(record["vendorid"])
        mapping = self.store.id_map.get(PAIR, "vendor", self.source_tenant, vendor_id)
        if mapping is None or mapping.target_id is None:
            raise MappingError(
                f"FreshBooks vendor {vendor_id} is not in BILL yet (see the vendor's dead letter, if any)",
                kind="missing_reference",
            )
        return mapping.target_id

    def transform(self, record: Record) -> Record:
        if int(record.get("vis_state") or 0) != ACTIVE:
            return {"archived": True, "vendorId": self.vendor_target_id(record)}
        assert self.gl is not None
        lines = []
        for line in record.get("lines") or []:
            category_id = str(line.get("categoryid") or (line.get("category") or {}).get("categoryid") or "")
            amount = money_amount(line.get("total_amount") or line.get("amount"))
            lines.append(
                {
                    "amount": float(amount),
                    "description": str(line.get("description") or line.get("name") or "")[:4000],
                    "classifications": {"chartOfAccountId": self.gl.account_for(category_id)},
                }
            )
        if not lines:
            raise MappingError("FreshBooks bill has no lines", kind="validation")
        total = money_amount(record.get("total_amount") or record.get("amount"))
        line_sum = sum((cents(li["amount"]) for li in lines), Decimal("0"))
        if line_sum != total:
            raise MappingError(
                f"line totals {line_sum} do not add up to the bill total {total}; not sent", kind="validation"
            )
        return {
            "vendorId": self.vendor_target_id(record),
            "invoice": {"invoiceNumber": self.invoice_number(record), "invoiceDate": str(record["issue_date"])},
            "dueDate": str(record.get("due_date") or record["issue_date"]),
            "billLineItems": lines,
            **({"description": str(record["overall_description"])[:4000]} if record.get("overall_description") else {}),
        }

    def natural_key(self, record: Record, payload: Record) -> str:
        return f"{payload['vendorId']}|{self.invoice_number(record)}"

    def index_existing(self, payloads: list[tuple[str, Record]]) -> dict[str, Record] | None:
        vendor_ids = sorted({str(p["vendorId"]) for _, p in payloads})
        index: dict[str, Record] = {}
        for bill in self.target.list_bills_for_vendors(vendor_ids):
            number = str((bill.get("invoice") or {}).get("invoiceNumber") or "")
            index[f"{bill['vendorId']}|{number}"] = bill
        return index

    def find_existing(self, natural_key: str, payload: Record) -> Record | None:
        vendor_id, _, number = natural_key.partition("|")
        return self.target.find_bill(vendor_id, number)

    def create(self, payload: Record, record: Record) -> Record:
        if payload.get("archived"):
            raise RecordError("archived FreshBooks bill cannot be created in BILL", kind="skipped")
        return self.target.create_bill(payload)

    def update(self, target_id: str, payload: Record, record: Record) -> Record | None:
        current = self.target.get_bill(target_id)
        status = str(current.get("paymentStatus") or "UNPAID").upper()
        if payload.get("archived"):
            if status != "UNPAID":
                raise RecordError(
                    f"bill was archived or deleted in FreshBooks but BILL shows it {status}; reconcile manually",
                    kind="manual_reconciliation",
                )
            if not current.get("archived"):
                self.target.archive_bill(target_id)
            return current
        if status != "UNPAID":
            raise RecordError(
                f"bill changed in FreshBooks after BILL started paying it ({status}); reconcile manually",
                kind="manual_reconciliation",
            )
        return self.target.update_bill(target_id, payload)


class PaymentSpec(EntitySpec):
    """Settled BILL bill payments -> FreshBooks bill payments (one per BILL ``billPayments[]`` item)."""

    pair: ClassVar[str] = PAIR
    entity: ClassVar[str] = "payment"
    source_system: ClassVar[str] = "bill"
    target_system: ClassVar[str] = "freshbooks"
    source: BillHook
    target: FreshBooksHook

    @property
    def source_tenant(self) -> str:
        return self.source.organization_id

    @property
    def target_tenant(self) -> str:
        return self.target.account_id

    def extract(self, window: Window) -> Iterator[Record]:
        for payment in self.source.list_payments(updated_since=window.start, updated_before=window.end):
            yield from self.split(payment)

    def fetch(self, source_id: str) -> Record | None:
        payment_id = source_id.split("/", 1)[0]
        payment = self.source.get_payment(payment_id)
        return next((r for r in self.split(payment) if r["id"] == source_id), None)

    @staticmethod
    def split(payment: Record) -> Iterator[Record]:
        for applied in payment.get("billPayments") or []:
            yield {
                "id": f"{payment['id']}/{applied['id']}",
                "paymentId": payment["id"],
                "billPaymentId": applied["id"],
                "billId": applied["billId"],
                "amount": applied["amount"],
                "processDate": payment.get("processDate"),
                "status": payment.get("singleStatus") or payment.get("status"),
                "fundingType": (payment.get("fundingAccount") or {}).get("type"),
            }

    def source_id(self, record: Record) -> str:
        return str(record["id"])

    def target_id(self, target_record: Record) -> str:
        return str(target_record["id"])

    def fb_bill_id(self, record: Record) -> str | None:
        mapping = self.store.id_map.get_by_target(PAIR, "bill", self.target_tenant_of_bills, str(record["billId"]))
        return mapping.source_id if mapping else None

    @property
    def target_tenant_of_bills(self) -> str:
        return self.source.organization_id

    def skip_reason(self, record: Record, mapped: bool) -> str | None:
        status = str(record.get("status") or "").upper()
        if not mapped and status not in SETTLED:
            return f"BILL payment not settled yet ({status or 'unknown'})"
        if self.fb_bill_id(record) is None:
            return "BILL bill is not linked to a FreshBooks bill by this integration"
        return None

    def transform(self, record: Record) -> Record:
        fb_bill = self.fb_bill_id(record)
        if fb_bill is None:
            raise MappingError("BILL bill is not linked to a FreshBooks bill", kind="missing_reference")
        if str(record.get("status") or "").upper() in VOIDED:
            return {"billid": fb_bill, "void": True}
        return {
            "billid": fb_bill,
            "amount": {"amount": str(cents(record["amount"])), "code": "USD"},
            "paid_date": str(record.get("processDate") or "")[:10],
            "payment_type": FUNDING_TO_PAYMENT_TYPE.get(str(record.get("fundingType") or "").upper(), "ACH"),
            "note": f"BILL payment {record['paymentId']} ({record['billPaymentId']})",
        }

    def natural_key(self, record: Record, payload: Record) -> str:
        return f"{payload['billid']}|{record['billPaymentId']}"

    def find_existing(self, natural_key: str, payload: Record) -> Record | None:
        bill_id, _, marker = natural_key.partition("|")
        for existing in self.target.list_bill_payments(bill_id):
            if marker in str(existing.get("note") or ""):
                return existing
        return None

    def create(self, payload: Record, record: Record) -> Record:
        if payload.get("void"):
            raise RecordError("voided BILL payment was never written to FreshBooks", kind="skipped")
        return self.target.create_bill_payment(payload)

    def update(self, target_id: str, payload: Record, record: Record) -> Record | None:
        if payload.get("void"):
            return self.target.delete_bill_payment(target_id)
        return self.target.update_bill_payment(target_id, {k: v for k, v in payload.items() if k != "billid"})


ENTITY_SPECS: dict[str, type[EntitySpec]] = {"vendor": VendorSpec, "bill": BillSpec, "payment": PaymentSpec}
