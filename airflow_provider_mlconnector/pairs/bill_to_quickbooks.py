"""BILL -> QuickBooks Online: vendors become Vendors, bills become Purchase Orders (or Bills), per company.

Mapping rules an accountant can check:

* **Company scope**: every mapping is keyed by the BILL organization id and the QuickBooks realm
  id, so pointing a connection at another company or sandbox never reuses the first one's ids.
* **Vendors**: a BILL vendor -> a QuickBooks ``Vendor``, matched by the ID map, then by exact
  ``DisplayName`` (active and inactive vendors; quotes escaped in the query), else created with
  the display and company name (``PERSON`` vendors get no company name), e-mail, phone (30
  characters), billing address (country as ISO alpha-3: ``US`` -> ``USA``), account number, the
  1099 flag when BILL sends ``track1099`` and the vendor's ``billCurrency``. Updates are sparse on
  the current ``SyncToken`` (a stale token is re-read and the update retried once). Archived in
  BILL -> ``Active: false``; restored -> ``Active: true``; archived and never synced -> skipped. A
  name QuickBooks already has for a customer, employee or vendor (6240) is a dead letter naming
  that record, never a silent rename; so is a name with ``:``, a tab or a newline (QuickBooks
  refuses them). QuickBooks never changes a vendor's currency once set: a BILL currency change
  is dead-lettered (``manual_reconciliation``).
* **Bills -> Purchase Orders** (default): ``DocNumber`` = the BILL invoice number. QuickBooks
  allows 21 characters; a longer number becomes its first 12 characters, ``~`` and 8 hex digits
  of its SHA-256 (``INV-2026-000~1A2B3C4D``: the same number always gives the same short form),
  and the full number goes in the private note. Matched by vendor + ``DocNumber`` before any
  create. ``TxnDate`` = invoice date, ``DueDate`` = due date, ``PrivateNote`` = ``BILL bill
  <id>``; one ``AccountBasedExpenseLineDetail`` line per BILL line with the exact amount and the
  mapped account, on the company's A/P account. Paid in BILL (``paymentStatus`` PAID) -> the
  Purchase Order is ``Closed``. Archived in BILL -> the Purchase Order is deleted while no
  QuickBooks transaction links to it (else ``manual_reconciliation``).
  Purchase Orders do not post to the ledger (no A/P balance, no expense); for the payable booked,
  set the Airflow Variable ``mlconnector_bill_to_quickbooks_target`` to ``bill``: bills are then
  written as QuickBooks ``Bill`` s with the same rules (deleted when archived while QuickBooks
  shows nothing paid). Switching the mode writes the other document type from then on.
* **Accounts**: QuickBooks is the system of record for the chart of accounts, read once per task;
  nothing is written to BILL's chart. A BILL chart-of-accounts entry maps to a QuickBooks
  ``Account`` by override (Variable ``mlconnector_bill_to_quickbooks_account_overrides``, JSON
  ``{"<BILL account id, number or name>": "<QuickBooks Id, AcctNum or Name>"}``), then account
  number (``AcctNum``), then name (case-insensitive). A line whose account maps to nothing sends
  its bill to the dead-letter queue naming the account (``unmapped_account``). The A/P account is
  the company's only ``Accounts Payable`` account, or the Variable
  ``mlconnector_bill_to_quickbooks_ap_account`` (Id, AcctNum or Name) when it has several.
* **Bad input** (dead letters with the reason; the rest of the batch is written): a bill without
  lines, a zero or negative line or total, a vendor with no name, a ``DocNumber`` QuickBooks
  already uses for another vendor's document (6140), a date in a closed accounting period (6210).
* **Edits in QuickBooks** (``quickbooks_edits``): the QuickBooks Vendors, Purchase Orders and
  Bills changed since the last run (change data capture, 30 days at most; QuickBooks webhooks
  trigger a run) are compared with BILL: a synced record deleted or edited in QuickBooks (name,
  active flag, vendor, document number, amounts, status) is a dead letter for a person
  (``edited_in_quickbooks``, ``deleted_in_quickbooks``), never silently overwritten. Records this
  integration did not write are left alone, and so is a record whose ``SyncToken`` is still the one
  this integration's last write left (kept in the ID map): nobody changed it, so BILL is not read.

**Safe to retry**: every create and update carries a ``requestid`` derived from the record, its
content and the hour (QuickBooks replays its first answer to a repeated requestid). A create whose
answer was lost is never re-sent blindly: the ``DisplayName`` / vendor + ``DocNumber`` lookup runs
first (requestid alone has let duplicates through), and only then the create, with the same
requestid. Creates go 30 at a time through QuickBooks' batch endpoint (40 batch calls a minute):
each item is answered apart, so a refused vendor or document is dead-lettered alone and the others
are written; a lost batch answer sends each of its records through the same lookup. BILL reads run
in the ``bill_api`` pool, QuickBooks calls in ``quickbooks_api`` (10 concurrent requests per realm).

**Params**: ``dry_run``, ``full_resync``, ``replay_dead_letters`` (see the DAG's params).
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_mlconnector.core.resources import Resource
from airflow_provider_mlconnector.exceptions import (
    ApiError,
    ConfigurationError,
    MappingError,
    NotFoundError,
    NotLinkedYetError,
    RecordError,
    RecordRejectedError,
)
from airflow_provider_mlconnector.hooks.bill import BillHook
from airflow_provider_mlconnector.hooks.quickbooks import (
    BATCH_MAX_ITEMS,
    DOC_NUMBER_MAX,
    DUPLICATE_DOC_NUMBER,
    DUPLICATE_NAME,
    PERIOD_CLOSED,
    QboEntity,
    QuickBooksHook,
)
from airflow_provider_mlconnector.operators.pair import Ctx, Entity, Outcome, Pair, Record, Retire, Skip
from airflow_provider_mlconnector.operators.reconcile import Reconciliation
from airflow_provider_mlconnector.pairs.countries import iso_alpha3
from airflow_provider_mlconnector.pairs.variables import json_mapping, variable

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state.watermarks import Window

NAME = "bill_to_quickbooks"
TARGET_VARIABLE = "mlconnector_bill_to_quickbooks_target"
ACCOUNT_OVERRIDES_VARIABLE = "mlconnector_bill_to_quickbooks_account_overrides"
AP_ACCOUNT_VARIABLE = "mlconnector_bill_to_quickbooks_ap_account"
PURCHASE_ORDER, BILL = "purchase_order", "bill"
CENT = Decimal("0.01")
#: DocNumbers per ``IN (...)`` lookup when matching a batch.
LOOKUP_CHUNK = 50
#: QuickBooks CDC looks back 30 days at most; stay a day inside it (our clock is not Intuit's).
CDC_LOOKBACK = timedelta(days=29)
FORBIDDEN_IN_NAMES = {":": "a colon", "\t": "a tab", "\n": "a newline"}
EXPENSE_LINE = "AccountBasedExpenseLineDetail"


def cents(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def target_mode() -> str:
    """``purchase_order`` (the product's promise, the default) or ``bill`` (the opt-in mode)."""
    mode = (variable(TARGET_VARIABLE) or PURCHASE_ORDER).strip().lower()
    if mode not in (PURCHASE_ORDER, BILL):
        raise ConfigurationError(f"Variable {TARGET_VARIABLE} must be '{PURCHASE_ORDER}' or '{BILL}', not {mode!r}")
    return mode


def batch_write_id(entity: str, payloads: list[Record]) -> str:
    """The ``requestid`` of a batch: the same records with the same content in the same hour."""
    return write_id(f"{entity}.batch", str(len(payloads)), {"items": payloads})


def write_id(entity: str, identity: str, payload: Record, *, now: datetime | None = None) -> str:
    """The ``requestid`` of a write: the record, its content and the hour.

    A retry within the hour replays QuickBooks' first answer; a replay after fixing the cause
    later gets a fresh answer (QuickBooks also replays refusals), and the lookup before every
    create still prevents a duplicate.
    """
    from airflow_provider_mlconnector.state.id_map import content_fingerprint  # a task's, not the DAG file's

    hour = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H")
    return QuickBooksHook.request_id_for(NAME, entity, identity, content_fingerprint(payload), hour)


# ---------------------------------------------------------------------------------- vendors


def read_vendors(bill: BillHook, window: Window) -> Iterator[Record]:
    return bill.vendors.list(updated_since=window.start, updated_before=window.end)


def vendor_payload(vendor: Record, ctx: Ctx) -> Outcome:
    archived = bool(vendor.get("archived"))
    if archived and not ctx.mapped:
        return Skip("vendor is archived in BILL and was never synced")
    name = str(vendor.get("name") or "").strip()
    if not name:
        raise MappingError("BILL vendor has no name", kind="validation")
    refused = [label for char, label in FORBIDDEN_IN_NAMES.items() if char in name]
    if refused:
        raise MappingError(
            f"vendor name {name!r} contains {' and '.join(refused)}, which QuickBooks refuses in a name; "
            "rename the vendor in BILL",
            kind="validation",
        )
    payload: Record = {"DisplayName": name, "Active": not archived}
    if vendor.get("accountType") != "PERSON":
        payload["CompanyName"] = name[:100]
    optional: dict[str, Any] = {
        "PrimaryEmailAddr": {"Address": vendor["email"]} if vendor.get("email") else None,
        "PrimaryPhone": {"FreeFormNumber": str(vendor["phone"])[:30]} if vendor.get("phone") else None,
        "AcctNum": str(vendor["accountNumber"])[:100] if vendor.get("accountNumber") else None,
        "Vendor1099": vendor["track1099"] if isinstance(vendor.get("track1099"), bool) else None,
        "CurrencyRef": {"value": str(vendor["billCurrency"])} if vendor.get("billCurrency") else None,
        "BillAddr": billing_address(vendor["address"]) if vendor.get("address") else None,
    }
    payload.update({k: v for k, v in optional.items() if v is not None})
    return payload


def billing_address(address: Mapping[str, Any]) -> Record:
    fields = {
        "Line1": address.get("line1"),
        "Line2": address.get("line2"),
        "City": address.get("city"),
        "CountrySubDivisionCode": address.get("stateOrProvince"),
        "PostalCode": address.get("zipOrPostalCode"),
        "Country": iso_alpha3(address["country"]) if address.get("country") else None,
    }
    return {k: str(v) for k, v in fields.items() if v}


def vendor_key(vendor: Record, payload: Record) -> str:
    return str(payload["DisplayName"])


def vendors_by_name(qb: QuickBooksHook, payloads: list[Record]) -> dict[str, Record]:
    names = sorted({str(p["DisplayName"]) for p in payloads})
    found: dict[str, Record] = {}
    for chunk in chunks(names):
        for vendor in qb.vendors.list(DisplayName=chunk, Active=[True, False]):
            found.setdefault(str(vendor["DisplayName"]), vendor)
    return found


def find_vendor(qb: QuickBooksHook, display_name: str) -> Record | None:
    return qb.vendors.find(DisplayName=display_name, Active=[True, False])


def create_vendor(qb: QuickBooksHook, payload: Record) -> Record:
    name = str(payload["DisplayName"])
    try:
        return qb.vendors.create(payload, request_id=write_id("vendor", name, payload), replay=False)
    except RecordRejectedError as exc:
        raise refusal(qb, exc, payload) from None


def create_vendors(qb: QuickBooksHook, payloads: list[Record]) -> list[Record | RecordError | ApiError]:
    return create_in_batch(qb, qb.vendors, "vendor", payloads)


def create_in_batch(
    qb: QuickBooksHook, resource: QboEntity, entity: str, payloads: list[Record]
) -> list[Record | RecordError | ApiError]:
    """Up to 30 records in one batch call; each item's refusal worded as :func:`refusal` words it."""
    answers = resource.create_many(payloads, request_id=batch_write_id(entity, payloads))
    return [
        refusal(qb, answer, payload) if isinstance(answer, RecordRejectedError) else answer
        for answer, payload in zip(answers, payloads, strict=True)
    ]


def update_vendor(qb: QuickBooksHook, vendor_id: str, payload: Record) -> Record:
    current = qb.vendors.get(vendor_id)
    wanted = (payload.get("CurrencyRef") or {}).get("value")
    kept = (current.get("CurrencyRef") or {}).get("value")
    if wanted and kept and wanted != kept:
        raise RecordError(
            f"BILL now bills this vendor in {wanted}, but QuickBooks keeps a vendor's currency ({kept}) once "
            "set; create a new vendor in QuickBooks or change BILL back",
            kind="manual_reconciliation",
        )
    changes = {k: v for k, v in payload.items() if k != "CurrencyRef"}
    try:
        return qb.vendors.update(vendor_id, changes, request_id=write_id("vendor", vendor_id, payload), current=current)
    except RecordRejectedError as exc:
        raise refusal(qb, exc, payload) from None


# ---------------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class Chart:
    """QuickBooks' chart of accounts (the system of record), read once per task."""

    accounts: tuple[Record, ...]
    overrides: Mapping[str, str]
    ap_override: str | None

    def _lookup(self, reference: str) -> Record | None:
        """A QuickBooks account by Id, AcctNum or Name (case-insensitive)."""
        for field in ("Id", "AcctNum"):
            found = next((a for a in self.accounts if str(a.get(field) or "") == reference), None)
            if found is not None:
                return found
        return next((a for a in self.accounts if str(a.get("Name") or "").casefold() == reference.casefold()), None)

    def account_for(self, bill_account: Mapping[str, Any]) -> str:
        """The QuickBooks Account Id of a BILL chart-of-accounts entry: override, number, then name."""
        names = [str(bill_account.get(k) or "") for k in ("id", "accountNumber", "name")]
        override = next((self.overrides[n] for n in names if n and n in self.overrides), None)
        if override is not None:
            found = self._lookup(override)
        else:
            number, name = names[1], names[2]
            by_number = next((a for a in self.accounts if number and str(a.get("AcctNum") or "") == number), None)
            by_name = next(
                (a for a in self.accounts if name and str(a.get("Name") or "").casefold() == name.casefold()), None
            )
            found = by_number or by_name
        if found is None:
            label = " ".join(p for p in (names[1], names[2]) if p) or names[0]
            raise MappingError(
                f"BILL account '{label}' has no QuickBooks account: add it to the QuickBooks chart of accounts "
                f"(same number or name) or map it in the Airflow Variable {ACCOUNT_OVERRIDES_VARIABLE}",
                kind="unmapped_account",
            )
        return str(found["Id"])

    def ap_account(self) -> str:
        """The A/P account documents are booked on (QuickBooks requires it on a purchase order)."""
        if self.ap_override:
            found = self._lookup(self.ap_override)
            if found is None:
                raise ConfigurationError(f"Variable {AP_ACCOUNT_VARIABLE}: no QuickBooks account {self.ap_override!r}")
            return str(found["Id"])
        payable = [a for a in self.accounts if a.get("AccountType") == "Accounts Payable"]
        if len(payable) != 1:
            raise ConfigurationError(
                f"QuickBooks has {len(payable)} Accounts Payable accounts: name the one to use in the Airflow "
                f"Variable {AP_ACCOUNT_VARIABLE}"
            )
        return str(payable[0]["Id"])


def read_chart(bill: BillHook, qb: QuickBooksHook) -> Chart:
    return Chart(tuple(qb.accounts.list()), json_mapping(ACCOUNT_OVERRIDES_VARIABLE), variable(AP_ACCOUNT_VARIABLE))


#: BILL's chart of accounts per hook (one task): read once, attached to the bills as they are read,
#: so that only tasks in the ``bill_api`` pool ever call BILL.
_BILL_CHARTS: weakref.WeakKeyDictionary[BillHook, dict[str, Record]] = weakref.WeakKeyDictionary()


def bill_accounts(bill: BillHook) -> dict[str, Record]:
    if bill not in _BILL_CHARTS:
        _BILL_CHARTS[bill] = {
            str(a["id"]): {"id": a["id"], "accountNumber": a.get("accountNumber"), "name": a.get("name")}
            for a in bill.chart_of_accounts.list()
        }
    return _BILL_CHARTS[bill]


def with_accounts(bill_record: Record, accounts: Mapping[str, Record]) -> Record:
    """The bill with ``_accounts``: the BILL chart entries its lines use (number and name)."""
    used = {str(i) for i in (account_id(line, bill_record) for line in bill_record.get("billLineItems") or []) if i}
    return {**bill_record, "_accounts": {i: accounts[i] for i in sorted(used) if i in accounts}}


def account_id(line: Mapping[str, Any], bill_record: Mapping[str, Any]) -> str | None:
    own = (line.get("classifications") or {}).get("chartOfAccountId")
    return own or (bill_record.get("classifications") or {}).get("chartOfAccountId")


# ---------------------------------------------------------------------------------- documents


def short_doc_number(number: str) -> str:
    """``number`` if QuickBooks takes it (21 characters), else its deterministic short form."""
    if len(number) <= DOC_NUMBER_MAX:
        return number
    digest = hashlib.sha256(number.encode()).hexdigest()[:8].upper()
    return f"{number[: DOC_NUMBER_MAX - 9]}~{digest}"


def invoice_number(bill_record: Record) -> str:
    number = str((bill_record.get("invoice") or {}).get("invoiceNumber") or "").strip()
    if not number:
        raise MappingError("BILL bill has no invoice number", kind="validation")
    return number


def bill_reader(mode: str) -> Callable[[BillHook, Window], Iterator[Record]]:
    """BILL bills changed in the window, for the entity of ``mode`` (none while the other mode is on)."""

    def read(bill: BillHook, window: Window) -> Iterator[Record]:
        if target_mode() != mode:
            return
        accounts = bill_accounts(bill)
        for row in bill.bills.list(updated_since=window.start, updated_before=window.end):
            yield with_accounts(row, accounts)

    return read


def fetch_bill(bill: BillHook, bill_id: str) -> Record:
    return with_accounts(bill.bills.get(bill_id), bill_accounts(bill))


def document_payload(bill_record: Record, ctx: Ctx) -> Outcome:
    """The QuickBooks document of a BILL bill (the fields both document types share)."""
    if bill_record.get("archived"):
        return Retire("bill is archived in BILL")
    chart: Chart = ctx.reference
    vendor = ctx.target_id("vendor", bill_record["vendorId"])
    lines = [expense_line(line, bill_record, chart) for line in bill_record.get("billLineItems") or []]
    if not lines:
        raise MappingError("BILL bill has no lines", kind="validation")
    total = sum((cents(line["Amount"]) for line in lines), Decimal("0"))
    number = invoice_number(bill_record)
    doc_number = short_doc_number(number)
    note = f"BILL bill {bill_record['id']}"
    if doc_number != number:
        note += f"; BILL invoice number {number}"
    if total <= 0:
        raise MappingError(f"bill total is {total}: QuickBooks takes no zero or negative document", kind="validation")
    return {
        "VendorRef": {"value": vendor},
        "APAccountRef": {"value": chart.ap_account()},
        "DocNumber": doc_number,
        "TxnDate": str(bill_record["invoice"]["invoiceDate"])[:10],
        "DueDate": str(bill_record["dueDate"])[:10],
        "PrivateNote": note,
        "Line": lines,
    }


def purchase_order_payload(bill_record: Record, ctx: Ctx) -> Outcome:
    outcome = document_payload(bill_record, ctx)
    if isinstance(outcome, dict):
        paid = str(bill_record.get("paymentStatus") or "").upper() == "PAID"
        outcome["POStatus"] = "Closed" if paid else "Open"
    return outcome


def expense_line(line: Record, bill_record: Record, chart: Chart) -> Record:
    amount = cents(line["amount"])
    if amount <= 0:
        raise MappingError(
            f"a line of {amount} ({line.get('description') or 'no description'}): QuickBooks expense lines "
            "must be positive",
            kind="validation",
        )
    coa = account_id(line, bill_record)
    if not coa:
        raise MappingError("a line of the bill has no chart-of-accounts entry in BILL", kind="unmapped_account")
    bill_account = (bill_record.get("_accounts") or {}).get(coa) or {"id": coa}
    detail: Record = {
        "DetailType": EXPENSE_LINE,
        "Amount": float(amount),
        EXPENSE_LINE: {"AccountRef": {"value": chart.account_for(bill_account)}},
    }
    if line.get("description"):
        detail["Description"] = str(line["description"])[:4000]
    return detail


def document_key(bill_record: Record, payload: Record) -> str:
    return f"{payload['VendorRef']['value']}|{payload['DocNumber']}"


@dataclass(frozen=True)
class Documents:
    """How one QuickBooks document type (``PurchaseOrder`` or ``Bill``) is written and found."""

    entity: str
    resource: Callable[[QuickBooksHook], QboEntity]

    def index(self, qb: QuickBooksHook, payloads: list[Record]) -> dict[str, Record]:
        numbers = sorted({str(p["DocNumber"]) for p in payloads})
        found: dict[str, Record] = {}
        for chunk in chunks(numbers):
            for document in sorted(self.resource(qb).list(DocNumber=chunk), key=_id_order):
                found.setdefault(
                    f"{(document.get('VendorRef') or {}).get('value')}|{document.get('DocNumber')}", document
                )
        return found

    def find(self, qb: QuickBooksHook, key: str) -> Record | None:
        vendor, _, number = key.partition("|")
        same = [
            d
            for d in self.resource(qb).list(DocNumber=number)
            if str((d.get("VendorRef") or {}).get("value")) == vendor and str(d.get("DocNumber")) == number
        ]
        return min(same, key=_id_order) if same else None

    def create(self, qb: QuickBooksHook, payload: Record) -> Record:
        try:
            return self.resource(qb).create(
                payload, request_id=write_id(self.entity, document_key({}, payload), payload), replay=False
            )
        except RecordRejectedError as exc:
            raise refusal(qb, exc, payload) from None

    def create_many(self, qb: QuickBooksHook, payloads: list[Record]) -> list[Record | RecordError | ApiError]:
        return create_in_batch(qb, self.resource(qb), self.entity, payloads)

    def update(self, qb: QuickBooksHook, document_id: str, payload: Record) -> Record:
        current = self.resource(qb).get(document_id)
        if self.entity == "Bill" and cents(current.get("Balance", 0)) != cents(current.get("TotalAmt", 0)):
            raise RecordError(
                f"bill changed in BILL but QuickBooks Bill {document_id} is already (partly) paid there; "
                "reconcile manually",
                kind="manual_reconciliation",
            )
        try:
            return self.resource(qb).update(
                document_id, payload, request_id=write_id(self.entity, document_id, payload), current=current
            )
        except RecordRejectedError as exc:
            raise refusal(qb, exc, payload) from None

    def retire(self, qb: QuickBooksHook, document_id: str) -> None:
        current = self.resource(qb).get(document_id)
        settled = self.entity == "Bill" and cents(current.get("Balance", 0)) != cents(current.get("TotalAmt", 0))
        if current.get("LinkedTxn") or settled:
            raise RecordError(
                f"bill archived in BILL, but QuickBooks {self.entity} {document_id} is linked to other "
                "transactions or paid; reconcile manually",
                kind="manual_reconciliation",
            )
        self.resource(qb).delete(document_id)


PURCHASE_ORDERS = Documents("PurchaseOrder", lambda qb: qb.purchase_orders)
BILLS = Documents("Bill", lambda qb: qb.bills)


def _id_order(record: Mapping[str, Any]) -> tuple[int, str]:
    text = str(record.get("Id") or "")
    return (int(text) if text.isdigit() else 0, text)


def chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]


# ---------------------------------------------------------------------------------- refusals


def refusal(qb: QuickBooksHook, exc: RecordRejectedError, payload: Record) -> RecordError:
    """QuickBooks' refusal as a reason a person can act on (the code and QuickBooks' words kept).

    Kind ``validation`` like every refusal, so the engine does not resend the same content every
    run; the reason says what to fix.
    """
    if exc.code == DUPLICATE_NAME:
        name = str(payload.get("DisplayName") or "")
        holder = name_holder(qb, name)
        return RecordError(
            f"QuickBooks {holder} already uses the name '{name}' (names are unique across vendors, customers "
            "and employees; 6240): rename one of them, nothing was renamed",
            kind="validation",  # QuickBooks refused this content: not resent until replayed
        )
    if exc.code == DUPLICATE_DOC_NUMBER:
        return RecordError(
            f"QuickBooks already has a document numbered {payload.get('DocNumber')} (6140: {exc.message}); "
            "another vendor's document uses it: renumber one of them",
            kind="validation",  # QuickBooks refused this content: not resent until replayed
        )
    if exc.code == PERIOD_CLOSED:
        return RecordError(
            f"the QuickBooks books are closed for {payload.get('TxnDate')} (6210: {exc.message}); "
            "reopen the period or re-date the bill, then replay",
            kind="validation",  # QuickBooks refused this content: not resent until replayed
        )
    return exc


def name_holder(qb: QuickBooksHook, name: str) -> str:
    """Which QuickBooks record holds a DisplayName: ``Customer 12 'Harbor Street Bakery'``."""
    where = f"DisplayName = {qb.quote(name)} AND Active IN (true, false)"
    for entity in ("Customer", "Employee", "Vendor"):
        holder = next(iter(qb.query_entities(entity, where, order_by=None, page_size=10)), None)
        if holder is not None:
            return f"{entity} {holder.get('Id')} '{holder.get('DisplayName')}'"
    return "customer, employee or vendor"


# ---------------------------------------------------------------------------------- edits in QuickBooks

#: QuickBooks entity -> the stream that writes it.
CHECKED = {"Vendor": "vendor", "PurchaseOrder": PURCHASE_ORDER, "Bill": BILL}


def read_quickbooks_changes(qb: QuickBooksHook, window: Window) -> Iterator[Record]:
    """QuickBooks Vendors and documents changed since the window opened (CDC; deletions included)."""
    oldest = window.end - CDC_LOOKBACK
    since = oldest if window.start is None or window.start < oldest else window.start
    for entity, rows in qb.get_changes(list(CHECKED), since).items():
        for row in rows:
            yield {"id": f"{entity}/{row['Id']}", "entity": entity, "qbo": row}


def fetch_quickbooks_change(qb: QuickBooksHook, change_id: str) -> Record:
    entity, _, qbo_id = change_id.partition("/")
    resources: dict[str, Resource[QuickBooksHook]] = {
        "Vendor": qb.vendors,
        "PurchaseOrder": qb.purchase_orders,
        "Bill": qb.bills,
    }
    try:
        row = resources[entity].get(qbo_id)
    except NotFoundError:
        row = {"Id": qbo_id, "status": "Deleted"}
    return {"id": change_id, "entity": entity, "qbo": row}


def check_against_bill(change: Record, ctx: Ctx) -> Outcome:
    """Agreeing with BILL -> skipped; edited or deleted in QuickBooks -> a dead letter, nothing written."""
    entity, qbo = str(change["entity"]), change["qbo"]
    stream = CHECKED[entity]
    try:
        source_id = ctx.source_id(stream, qbo["Id"])
    except NotLinkedYetError:
        return Skip(f"QuickBooks {entity} {qbo['Id']} was not written by this integration")
    if qbo.get("status") != "Deleted" and ctx.written_unchanged(stream, qbo["Id"], qbo.get("SyncToken")):
        return Skip(f"QuickBooks {entity} {qbo['Id']} is as this integration last wrote it")
    bill: BillHook = ctx.target
    source = (bill.vendors if stream == "vendor" else bill.bills).get(source_id)
    if stream != "vendor" and source.get("archived"):
        return Skip(f"BILL bill {source_id} is archived: its QuickBooks {entity} was retired on purpose")
    what = f"QuickBooks {entity} {qbo['Id']} (from BILL {stream.replace('_', ' ')} {source_id})"
    if qbo.get("status") == "Deleted":
        raise RecordError(
            f"{what} was deleted in QuickBooks; nothing was recreated: restore it or archive the record in BILL",
            kind="deleted_in_quickbooks",
        )
    differences = vendor_differences(qbo, source) if stream == "vendor" else document_differences(qbo, source, ctx)
    if differences:
        raise RecordError(
            f"{what} was edited in QuickBooks and no longer agrees with BILL: {'; '.join(differences)}. "
            "Nothing was overwritten: correct QuickBooks (or BILL), then replay",
            kind="edited_in_quickbooks",
        )
    return Skip("QuickBooks agrees with BILL")


def vendor_differences(qbo: Record, vendor: Record) -> list[str]:
    expected = {"DisplayName": str(vendor.get("name") or "").strip(), "Active": not vendor.get("archived")}
    return [
        f"{field} is {qbo.get(field)!r}, BILL says {value!r}"
        for field, value in expected.items()
        if qbo.get(field, True if field == "Active" else None) != value
    ]


def document_differences(qbo: Record, bill_record: Record, ctx: Ctx) -> list[str]:
    return _document_differences(qbo, bill_record, ctx.target_id("vendor", bill_record["vendorId"]))


def reconcile_document(bill_record: Record, qbo: Record) -> list[str]:
    """The reconciliation report's comparison: number, total, lines and open/closed (the vendor is
    checked through its own entity)."""
    return _document_differences(qbo, bill_record, vendor_id=None)


def _document_differences(qbo: Record, bill_record: Record, vendor_id: str | None) -> list[str]:
    amounts = [cents(line["amount"]) for line in bill_record.get("billLineItems") or []]
    theirs = [cents(line["Amount"]) for line in qbo.get("Line") or [] if line.get("DetailType") == EXPENSE_LINE]
    expected: dict[str, Any] = {
        "DocNumber": short_doc_number(invoice_number(bill_record)),
        "TotalAmt": sum(amounts, Decimal("0")),
    }
    actual: dict[str, Any] = {
        "DocNumber": str(qbo.get("DocNumber") or ""),
        "TotalAmt": cents(qbo.get("TotalAmt") or 0),
    }
    if vendor_id is not None:
        expected["VendorRef"] = vendor_id
        actual["VendorRef"] = str((qbo.get("VendorRef") or {}).get("value") or "")
    if "POStatus" in qbo:
        expected["POStatus"] = "Closed" if str(bill_record.get("paymentStatus")).upper() == "PAID" else "Open"
        actual["POStatus"] = qbo["POStatus"]
    found = [f"{k} is {actual[k]}, BILL says {v}" for k, v in expected.items() if actual[k] != v]
    if not found and theirs != amounts:
        found.append(f"line amounts are {[str(a) for a in theirs]}, BILL says {[str(a) for a in amounts]}")
    return found


def sync_token(record: Record) -> str | None:
    """QuickBooks' revision of a record (every write answers with it; a change bumps it)."""
    token = record.get("SyncToken")
    return None if token is None else str(token)


def never_written(*args: object) -> Record:
    raise AssertionError("quickbooks_edits only reports: its transform never returns a payload")


# ---------------------------------------------------------------------------------- the pair


def document_entity(mode: str, documents: Documents, transform: Callable[[Record, Ctx], Outcome]) -> Entity:
    return Entity(
        mode,
        after=("vendor",),
        read=bill_reader(mode),
        fetch=fetch_bill,
        prepare=read_chart,
        transform=transform,
        natural_key=document_key,
        index=documents.index,
        find=documents.find,
        create=documents.create,
        create_many=documents.create_many,
        bulk_limit=BATCH_MAX_ITEMS,
        update=documents.update,
        retire=documents.retire,
        target_id=lambda record: str(record["Id"]),
        target_version=sync_token,
        reconcile=Reconciliation(
            fetch_target=lambda qb, document_id: documents.resource(qb).get(document_id), compare=reconcile_document
        ),
    )


PAIR = Pair(
    name=NAME,
    source=BillHook,
    target=QuickBooksHook,
    doc=__doc__ or "",
    description="BILL vendors and bills into QuickBooks Online as Vendors and Purchase Orders (or Bills)",
    entities=(
        Entity(
            "vendor",
            read=read_vendors,
            fetch=lambda bill, vendor_id: bill.vendors.get(vendor_id),
            transform=vendor_payload,
            natural_key=vendor_key,
            index=vendors_by_name,
            find=find_vendor,
            create=create_vendor,
            create_many=create_vendors,
            bulk_limit=BATCH_MAX_ITEMS,
            update=update_vendor,
            target_id=lambda record: str(record["Id"]),
            target_version=sync_token,
            reconcile=Reconciliation(
                fetch_target=lambda qb, vendor_id: qb.vendors.get(vendor_id),
                compare=lambda vendor, qbo: vendor_differences(qbo, vendor),
            ),
        ),
        document_entity(PURCHASE_ORDER, PURCHASE_ORDERS, purchase_order_payload),
        document_entity(BILL, BILLS, document_payload),
        Entity(
            "quickbooks_edit",
            after=("vendor", PURCHASE_ORDER, BILL),
            reverse=True,
            read=read_quickbooks_changes,
            fetch=fetch_quickbooks_change,
            transform=check_against_bill,
            natural_key=lambda change, payload: str(change["id"]),
            find=lambda qb, key: None,
            create=never_written,
            update=never_written,
        ),
    ),
)
