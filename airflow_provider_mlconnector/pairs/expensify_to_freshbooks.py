"""Expensify -> FreshBooks: approved expense reports become bills and expenses, each exactly once.

Mapping rules an accountant can check:

* **Which reports**: state Approved or Reimbursed, read with Expensify's two-step Report Exporter
  (no webhooks exist) on the schedule: reports created or submitted since the last run minus
  :data:`LOOKBACK` (so a report approved or reimbursed weeks after submission is still seen), plus
  every report approved since the last run; the first run (and ``full_resync``) reads the last
  year, the longest span the exporter allows. Open and submitted reports are never exported.
  **Trying it on production** (Expensify has no sandbox): set the Expensify connection's
  ``test_report_prefix`` extra (e.g. ``TEST - ``): only reports whose name starts with it sync, and
  their bills and expenses carry the report name in FreshBooks. Remove the extra to go live.
* **Booking** (Airflow Variable ``mlconnector_expensify_to_freshbooks_booking``): ``split``
  (default, what Expensify's own accounting exports do) books a report's *reimbursable* expenses
  as one FreshBooks **bill** and its *non-reimbursable* (company card) expenses as one FreshBooks
  **expense** each; ``bills`` books every expense on the bill; ``expenses`` books every expense as
  a FreshBooks expense (no bill, no vendor, no payment).
* **The bill**: vendor = the employee's FreshBooks bill vendor (one per person, found by e-mail,
  case-insensitive, before one is created: :mod:`~airflow_provider_mlconnector.pairs.people`, the
  same rule as the BambooHR pair), ``bill_number`` = the Expensify report id, issue date = the
  approval date (due the same day), one line per expense: its mapped category, the amount exact to
  the cent, ``merchant - comment (tag)`` as the description; the report id and name in the bill's
  description.
* **An expense** (card transaction): the mapped category, the transaction date and amount, the
  merchant as the free-text vendor, the employee's FreshBooks staff member (matched by e-mail;
  the account owner, the lowest staff id, when the employee is not staff), and
  ``Expensify report <id> (<name>) / transaction <id>``, the approval date, the comment and the
  tag in the notes.
* **Categories**: FreshBooks expense categories cannot be created through the API and carry no GL
  code. An Expensify category maps to a FreshBooks category by (1) an explicit override, Airflow
  Variable ``mlconnector_expensify_to_freshbooks_category_overrides``, JSON ``{"<Expensify
  category>": "<FreshBooks category name or id>"}``; (2) its GL code: the FreshBooks ledger account
  with that number, and the category of that account's name (FreshBooks' default categories are
  its chart of accounts); (3) the same name (case-insensitive).
* **Tags** (cost centres, projects) are carried in the descriptions and notes. With the Variable
  ``mlconnector_expensify_to_freshbooks_tag_categories`` (JSON ``{"<tag>": "<FreshBooks category
  name or id>"}``) a tagged expense is booked to its tag's category instead, and a tag missing from
  that map is a missing reference.
* **Manual reconciliation**: when any expense of a report has a category or tag that cannot be
  mapped, or the report's employee has no usable e-mail, *nothing* of the report is written: one
  dead letter ``manual_reconciliation`` (on the report's bill, or on its first card transaction
  when it has no bill) names every missing reference, and the report's other records wait
  (parked) until it is resolved. Fix the mapping, then replay that dead letter: the report is
  written once.
* **Money**: Expensify amounts are integer cents (negative for refunds and credits), converted
  exactly; an expense's amount is Expensify's converted amount in the report currency (edits
  included). A report in another currency than the booking currency (Variable
  ``mlconnector_expensify_to_freshbooks_currency``, default USD) is dead-lettered
  (``currency_mismatch``), never converted 1:1. A report whose total is zero or negative, or whose
  reimbursable part is, is dead-lettered with the reason. An unknown report state, a missing field
  or an expense without an amount dead-letters that report; the others are written.
* **Exactly once**: the report id keys the bill, the transaction id each expense (found again
  through the ``Expensify ... transaction <id>`` note after a lost answer). A report edited and
  approved again updates its bill and expenses, unless FreshBooks already shows the bill paid or
  partly paid: then it is dead-lettered (``manual_reconciliation``).
* **Reimbursed**: when a report booked as a bill turns Reimbursed, one FreshBooks bill payment for
  the bill's total is recorded, dated the reimbursement date, so the bill shows paid.
* **Export label**: after a report's bill or expenses are written, the report is marked exported
  in Expensify with the label of the Expensify connection's ``export_label`` extra (default
  ``ml-connector``), one record per approval month: one Expensify call per
  :data:`LABEL_CALL_MAX_REPORTS` reports of the month (the exporter allows 20 calls a minute, so a
  call per day spent minutes labelling a busy quarter).
  The label is for people working in Expensify; the ID map decides what was written, so an
  already-labelled report is still synced when it changes.

**Params**: ``dry_run`` (decide and report, write nothing anywhere), ``full_resync`` (re-read the
last year), ``replay_dead_letters`` (dead-letter ids to retry after fixing the cause).

**What the APIs make impossible**: Expensify cannot say which reports changed (no webhooks, no
modified-since filter): reports are re-exported over the lookback and unchanged ones cost nothing
(fingerprints). A report sent back to Open after it was written is no longer exported at all: it
is not retired in FreshBooks (fix it there). FreshBooks documents no search on bill vendors,
bill numbers or expense notes: lookups page through the lists. Expensify's 5 requests per 10 s /
20 per minute limit is kept client-side.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_mlconnector.exceptions import ConfigurationError, MappingError, NotLinkedYetError, RecordError
from airflow_provider_mlconnector.hooks.expensify import ExpensifyHook
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook, money, parse_money
from airflow_provider_mlconnector.operators.pair import Ctx, Entity, Outcome, Pair, Record, SharedKey, Skip
from airflow_provider_mlconnector.operators.reconcile import Reconciliation
from airflow_provider_mlconnector.pairs import people, variables

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state.watermarks import Window

PREFIX = "mlconnector_expensify_to_freshbooks"
CATEGORY_OVERRIDES_VARIABLE = f"{PREFIX}_category_overrides"
TAG_CATEGORIES_VARIABLE = f"{PREFIX}_tag_categories"
BOOKING_VARIABLE = f"{PREFIX}_booking"
CURRENCY_VARIABLE = f"{PREFIX}_currency"
BOOKINGS = ("split", "bills", "expenses")
#: FreshBooks' own default currency for bills and bill vendors.
DEFAULT_CURRENCY = "USD"
#: How far before the last run reports are re-exported: approvals and reimbursements come later
#: than submission, and Expensify has no modified-since filter.
LOOKBACK = timedelta(days=90)
#: The exporter refuses spans over a year.
LONGEST_SPAN = timedelta(days=365)
#: Report states as the export template prints them (display or upper-case style, UNCONFIRMED).
STATES = {"approved": "APPROVED", "reimbursed": "REIMBURSED"}
CENTS = Decimal("0.01")
BILL, EXPENSE = "bill", "expense"
#: How our FreshBooks records name their report (bill description, expense notes).
MARKER = re.compile(r"Expensify report (\S+)")
APPROVED_NOTE = re.compile(r"^approved: (\d{4}-\d{2}-\d{2})$", re.MULTILINE)


# ---------------------------------------------------------------------------------- settings


def text_variable(name: str, default: str) -> str:
    return (variables.variable(name) or "").strip() or default


def booking_mode() -> str:
    mode = text_variable(BOOKING_VARIABLE, "split").lower()
    if mode not in BOOKINGS:
        raise ConfigurationError(f"Variable {BOOKING_VARIABLE} must be one of {', '.join(BOOKINGS)}, not {mode!r}")
    return mode


# ---------------------------------------------------------------------------------- reference


@dataclass(frozen=True)
class Books:
    """What FreshBooks offers to book into (read once per task) and the user's mapping choices."""

    categories: dict[str, str]  # FreshBooks category id, and name case-folded -> id
    ledger_names: dict[str, str]  # ledger account number -> name
    overrides: dict[str, str] = field(default_factory=dict)
    tag_categories: dict[str, str] = field(default_factory=dict)
    currency: str = DEFAULT_CURRENCY
    booking: str = "split"
    staff: dict[str, str] = field(default_factory=dict)  # person key -> staff id
    owner_staff: str | None = None

    def category(self, name_or_id: str) -> str | None:
        return self.categories.get(name_or_id) or self.categories.get(name_or_id.casefold())

    def category_for(self, expense: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """(FreshBooks category id, None) or (None, the missing reference, in words)."""
        tag = str(expense.get("tag") or "")
        if self.tag_categories and tag:
            if tag not in self.tag_categories:
                return None, f"tag '{tag}' has no FreshBooks category in Variable {TAG_CATEGORIES_VARIABLE}"
            target = self.tag_categories[tag]
            found = self.category(target)
            return (found, None) if found else (None, f"tag '{tag}' maps to FreshBooks category '{target}', not found")
        name = str(expense.get("category") or "")
        if not name:
            return None, f"expense {expense.get('transactionID')} has no category"
        if name in self.overrides:
            target = self.overrides[name]
            found = self.category(target)
            return (found, None) if found else (None, f"category '{name}' is overridden to '{target}', not found")
        gl_code = str(expense.get("categoryGlCode") or "")
        by_gl = self.category(self.ledger_names.get(gl_code, "")) if gl_code else None
        found = by_gl or self.category(name)
        if found:
            return found, None
        why = f"GL code {gl_code} matches no FreshBooks category" if gl_code else "no GL code"
        return None, (
            f"Expensify category '{name}' ({why}) has no FreshBooks expense category: map it in Variable "
            f"{CATEGORY_OVERRIDES_VARIABLE}"
        )

    def staff_for(self, email: str) -> str | None:
        try:
            return self.staff.get(people.person_key(email), self.owner_staff)
        except MappingError:
            return self.owner_staff


def books(expensify: ExpensifyHook, freshbooks: FreshBooksHook) -> Books:
    categories: dict[str, str] = {}
    for category in freshbooks.expense_categories.list():
        if int(category.get("vis_state") or 0) == people.DELETED:
            continue
        ident = str(category.get("categoryid") or category["id"])
        categories[ident] = ident
        categories.setdefault(str(category.get("category") or "").casefold(), ident)
    ledger = {str(a["number"]): str(a["name"]) for a in freshbooks.ledger_accounts.list() if a.get("number")}
    staff = people.staff_ids_by_key(freshbooks)
    return Books(
        categories=categories,
        ledger_names=ledger,
        overrides=variables.json_mapping(CATEGORY_OVERRIDES_VARIABLE),
        tag_categories=variables.json_mapping(TAG_CATEGORIES_VARIABLE),
        currency=text_variable(CURRENCY_VARIABLE, DEFAULT_CURRENCY).upper(),
        booking=booking_mode(),
        staff=staff,
        owner_staff=min(staff.values(), key=int) if staff else None,
    )


# ---------------------------------------------------------------------------------- reading


def read_reports(expensify: ExpensifyHook, window: Window) -> list[Record]:
    """Approved and reimbursed reports of the window (see the module docstring), each once."""
    end = window.end.date() + timedelta(days=1)
    if window.start is None:
        return expensify.export_reports(start_date=end - LONGEST_SPAN, end_date=end)
    since = window.start.date()
    reports = {
        str(r.get("reportID")): r
        for r in expensify.export_reports(start_date=max(since - LOOKBACK, end - LONGEST_SPAN), end_date=end)
    }
    for report in expensify.export_reports(approved_after=since - timedelta(days=1)):
        reports[str(report.get("reportID"))] = report
    return list(reports.values())


def fetch_report(expensify: ExpensifyHook, report_id: str) -> Record | None:
    found = expensify.export_reports(report_ids=[report_id])
    return found[0] if found else None


def route(expense: Mapping[str, Any], booking: str) -> str:
    """Where one expense is booked: on the report's bill or as a FreshBooks expense."""
    if booking == "split":
        return BILL if expense.get("reimbursable", True) is not False else EXPENSE
    return BILL if booking == "bills" else EXPENSE


def expenses_of(report: Mapping[str, Any], booking: str, where: str) -> list[Record]:
    return [e for e in report.get("transactionList") or [] if route(e, booking) == where]


def read_people(expensify: ExpensifyHook, window: Window) -> Iterator[Record]:
    """The employees of reports that have a bill to book (everyone else needs no bill vendor)."""
    booking = booking_mode()
    for report in read_reports(expensify, window):
        if not expenses_of(report, booking, BILL):
            continue
        try:
            key = people.person_key(report.get("accountEmail"))
        except MappingError:
            continue  # the report itself is dead-lettered for it
        yield {"id": key, "email": str(report["accountEmail"]).strip()}


def read_card_expenses(expensify: ExpensifyHook, window: Window) -> Iterator[Record]:
    booking = booking_mode()
    for report in read_reports(expensify, window):
        yield from card_records(report, booking)


def card_records(report: Record, booking: str) -> Iterator[Record]:
    for expense in expenses_of(report, booking, EXPENSE):
        yield {"id": f"{report['reportID']}/{expense['transactionID']}", "report": report}


def fetch_card_expense(expensify: ExpensifyHook, source_id: str) -> Record | None:
    report = fetch_report(expensify, source_id.split("/", 1)[0])
    if report is None:
        return None
    return next((r for r in card_records(report, booking_mode()) if r["id"] == source_id), None)


# ---------------------------------------------------------------------------------- one report


def report_state(report: Mapping[str, Any]) -> str:
    raw = str(report.get("status") or "").strip()
    state = STATES.get(raw.casefold())
    if state is None:
        raise MappingError(f"report {report.get('reportID')} has an unknown state {raw or '(none)'}", kind="validation")
    return state


def cents(value: Any) -> Decimal:
    """Integer cents as an exact Decimal amount; anything but a whole number of cents is refused."""
    if isinstance(value, bool) or value in (None, ""):
        raise ValueError(f"not an amount in cents: {value!r}")
    number = Decimal(str(value))
    if number != number.to_integral_value():
        raise ValueError(f"not a whole number of cents: {value!r}")
    return (number / 100).quantize(CENTS)


def expense_amount(expense: Mapping[str, Any], report_currency: str) -> Decimal:
    """The expense in the report currency, Expensify's own conversion and edits included."""
    if expense.get("convertedAmount") is not None:
        return cents(expense["convertedAmount"])
    if str(expense.get("currency") or report_currency) != report_currency:
        raise MappingError(
            f"expense {expense.get('transactionID')} is in {expense.get('currency')} without a converted amount "
            f"in {report_currency}; nothing is converted here",
            kind="currency_mismatch",
        )
    amount = expense["modifiedAmount"] if expense.get("modifiedAmount") is not None else expense["amount"]
    return cents(amount)


def expense_date(expense: Mapping[str, Any]) -> str:
    return date.fromisoformat(str(expense.get("modifiedCreated") or expense["created"])[:10]).isoformat()


def approval_date(report: Mapping[str, Any]) -> str:
    return date.fromisoformat(str(report["approved"])[:10]).isoformat()


def merchant(expense: Mapping[str, Any]) -> str:
    return str(expense.get("modifiedMerchant") or expense.get("merchant") or "").strip()


def description(expense: Mapping[str, Any]) -> str:
    text = " - ".join(part for part in (merchant(expense), str(expense.get("comment") or "").strip()) if part)
    return f"{text} ({expense['tag']})" if expense.get("tag") else text


@dataclass(frozen=True)
class Booked:
    """One report, checked and mapped: every expense's category and amount, or it raised."""

    report: Record
    currency: str
    categories: dict[str, str]  # transactionID -> FreshBooks category id
    amounts: dict[str, Decimal]  # transactionID -> amount in the report currency

    @property
    def report_id(self) -> str:
        return str(self.report["reportID"])

    def label(self) -> str:
        return f"Expensify report {self.report_id} ({self.report.get('reportName') or ''})"


def booked_report(report: Record, ctx: Ctx, holder: str) -> Booked:
    """The whole report checked at once, for whichever of its records is being mapped.

    Any report-level problem (unknown state, currency, total, a missing reference) is raised on
    one record only, ``holder``: the report's bill, else its first card transaction. The others
    wait for it (parked), so the report is one dead letter, and nothing of it is written.
    """
    reference: Books = ctx.reference
    try:
        return check_report(report, reference)
    except RecordError:
        if holder == report_holder(report, reference.booking):
            raise
        raise NotLinkedYetError(
            f"its report {report.get('reportID')} waits for manual reconciliation (see the dead letter on "
            f"{report_holder(report, reference.booking)})"
        ) from None


def report_holder(report: Mapping[str, Any], booking: str) -> str:
    if expenses_of(report, booking, BILL) or not expenses_of(report, booking, EXPENSE):
        return f"bill {report.get('reportID')}"
    first = min(str(e["transactionID"]) for e in expenses_of(report, booking, EXPENSE))
    return f"expense {report.get('reportID')}/{first}"


def check_report(report: Record, reference: Books) -> Booked:
    report_state(report)
    currency = str(report["currency"]).upper()
    if currency != reference.currency:
        raise MappingError(
            f"report {report['reportID']} is in {currency} but is booked in {reference.currency}; nothing is "
            f"converted: book it by hand, or set Variable {CURRENCY_VARIABLE} for a business in {currency}",
            kind="currency_mismatch",
        )
    expenses = list(report.get("transactionList") or [])
    if not expenses:
        raise MappingError(f"report {report['reportID']} has no expenses", kind="validation")
    amounts = {str(e["transactionID"]): expense_amount(e, currency) for e in expenses}
    total = sum(amounts.values(), Decimal(0))
    if total <= 0:
        raise MappingError(
            f"report {report['reportID']} totals {total} {currency}: a zero or negative report is not booked",
            kind="validation",
        )
    categories: dict[str, str] = {}
    missing: list[str] = []
    for expense in expenses:
        category, problem = reference.category_for(expense)
        if category is not None:
            categories[str(expense["transactionID"])] = category
        elif problem not in missing:
            missing.append(str(problem))
    try:
        people.person_key(report.get("accountEmail"))
    except MappingError as exc:
        missing.append(f"employee: {exc.reason}")
    if missing:
        raise MappingError(
            f"report {report['reportID']} ({report.get('reportName') or ''}) is held, nothing of it is written: "
            + "; ".join(missing),
            kind="manual_reconciliation",
        )
    return Booked(report, currency, categories, amounts)


# ---------------------------------------------------------------------------------- people


def person_payload(person: Record, ctx: Ctx) -> Outcome:
    return people.person_vendor_payload(str(person["email"]))


def person_key_of(person: Record, payload: Record) -> str:
    return people.person_key(payload["primary_contact_email"])


# ---------------------------------------------------------------------------------- bills


def bill_lines(booked: Booked, booking: str) -> list[Record]:
    return [
        {
            "categoryid": booked.categories[str(e["transactionID"])],
            "description": description(e)[:4000],
            "quantity": 1,
            "unit_cost": money(booked.amounts[str(e["transactionID"])], booked.currency),
        }
        for e in expenses_of(booked.report, booking, BILL)
    ]


def bill_payload(report: Record, ctx: Ctx) -> Outcome:
    reference: Books = ctx.reference
    if not expenses_of(report, reference.booking, BILL):
        return Skip(f"no expense of this report is booked on a bill (booking '{reference.booking}')")
    booked = booked_report(report, ctx, f"bill {report.get('reportID')}")
    lines = bill_lines(booked, reference.booking)
    total = sum((parse_money(line["unit_cost"]) for line in lines), Decimal(0))
    if total <= 0:
        raise MappingError(
            f"the reimbursable expenses of report {booked.report_id} total {total}: a bill cannot be zero or negative",
            kind="validation",
        )
    vendor = ctx.target_id("person", people.person_key(report["accountEmail"]))
    return {
        "vendorid": vendor,
        "bill_number": booked.report_id,
        "issue_date": approval_date(report),
        "due_offset_days": 0,
        "currency_code": booked.currency,
        "language": "en",
        "overall_description": booked.label()[:4000],
        "lines": lines,
    }


def bill_key(report: Record, payload: Record) -> str:
    return f"{payload['vendorid']}|{payload['bill_number']}"


def bills_by_key(freshbooks: FreshBooksHook, payloads: list[Record]) -> dict[str, Record]:
    found: dict[str, Record] = {}
    for vendor in sorted({str(p["vendorid"]) for p in payloads}):
        for bill in freshbooks.bills.list(vendorid=vendor):
            found.setdefault(f"{vendor}|{bill.get('bill_number') or ''}", bill)
    return found


def find_bill(freshbooks: FreshBooksHook, key: str) -> Record | None:
    vendor, _, number = key.partition("|")
    return next((b for b in freshbooks.bills.list(vendorid=vendor) if str(b.get("bill_number")) == number), None)


def update_bill(freshbooks: FreshBooksHook, bill_id: str, payload: Record) -> None:
    status = str(freshbooks.bills.get(bill_id).get("status") or "unpaid")
    if status in ("paid", "partial"):
        raise RecordError(
            f"the report changed after approval, but FreshBooks bill {bill_id} is already {status}; "
            "reconcile it by hand",
            kind="manual_reconciliation",
        )
    freshbooks.bills.update(bill_id, payload)


# ---------------------------------------------------------------------------------- card expenses


def card_expense_payload(record: Record, ctx: Ctx) -> Outcome:
    report: Record = record["report"]
    reference: Books = ctx.reference
    transaction_id = str(record["id"]).split("/", 1)[1]
    booked = booked_report(report, ctx, f"expense {record['id']}")
    expense = next(e for e in report["transactionList"] if str(e["transactionID"]) == transaction_id)
    notes = [f"{booked.label()} / transaction {transaction_id}", f"approved: {approval_date(report)}"]
    notes += [f"{name}: {expense[name]}" for name in ("comment", "tag") if expense.get(name)]
    payload: Record = {
        "categoryid": booked.categories[transaction_id],
        "date": expense_date(expense),
        "amount": money(booked.amounts[transaction_id], booked.currency),
        "vendor": merchant(expense)[:255],
        "notes": "\n".join(notes),
    }
    staff = reference.staff_for(str(report.get("accountEmail") or ""))
    if staff is not None:
        payload["staffid"] = staff
    return payload


def card_expense_key(record: Record, payload: Record) -> str:
    return str(record["id"]).split("/", 1)[1]


def transaction_of(expense: Mapping[str, Any]) -> str | None:
    found = re.search(r"Expensify report \S+ \(.*\) / transaction (\S+)", str(expense.get("notes") or ""))
    return found.group(1) if found else None


def expenses_by_key(freshbooks: FreshBooksHook, payloads: list[Record]) -> dict[str, Record]:
    found: dict[str, Record] = {}
    for expense in freshbooks.expenses.list():
        key = transaction_of(expense)
        if key is not None:
            found.setdefault(key, expense)
    return found


def find_expense(freshbooks: FreshBooksHook, key: str) -> Record | None:
    return expenses_by_key(freshbooks, []).get(key)


# ---------------------------------------------------------------------------------- payments


def read_reimbursed(expensify: ExpensifyHook, window: Window) -> Iterator[Record]:
    for report in read_reports(expensify, window):
        if str(report.get("status") or "").casefold() == "reimbursed":
            yield report


def payment_payload(report: Record, ctx: Ctx) -> Outcome:
    reference: Books = ctx.reference
    if report_state(report) != "REIMBURSED":
        return Skip("the report is not reimbursed yet")
    if not expenses_of(report, reference.booking, BILL):
        return Skip("the report has no bill to pay")
    bill_id = ctx.target_id("bill", report["reportID"])  # parked until its bill is written
    booked = check_report(report, reference)
    total = sum((parse_money(line["unit_cost"]) for line in bill_lines(booked, reference.booking)), Decimal(0))
    paid = date.fromisoformat(str(report["reimbursed"])[:10]).isoformat()
    return {
        "billid": bill_id,
        "amount": money(total, booked.currency),
        "paid_date": paid,
        "payment_type": "Other",
        "note": f"Reimbursed in Expensify: report {booked.report_id}",
    }


def payment_key(report: Record, payload: Record) -> str:
    return f"{payload['billid']}|{report['reportID']}"


def find_payment(freshbooks: FreshBooksHook, key: str) -> Record | None:
    bill_id, _, report_id = key.partition("|")
    marker = f"Reimbursed in Expensify: report {report_id}"
    payments = freshbooks.bills.get(bill_id).get("bill_payments") or []
    return next((p for p in payments if str(p.get("note") or "") == marker), None)


def update_payment(freshbooks: FreshBooksHook, payment_id: str, payload: Record) -> None:
    freshbooks.bill_payments.update(payment_id, {k: v for k, v in payload.items() if k != "billid"})


# ---------------------------------------------------------------------------------- reconciliation

#: Reports per export when reconciling (the exporter takes a list of report ids; two calls each).
REPORTS_PER_EXPORT = 100
#: Why a synced report may no longer come out of the exporter (it exports approved and reimbursed ones).
NOT_EXPORTED = "is no longer exported (deleted, or sent back to Open in Expensify)"


def reports_by_id(expensify: ExpensifyHook, report_ids: list[str]) -> dict[str, Record]:
    """The reports, read by id :data:`REPORTS_PER_EXPORT` at a time, not one export each."""
    wanted = sorted(set(report_ids))
    found: dict[str, Record] = {}
    for start in range(0, len(wanted), REPORTS_PER_EXPORT):
        for report in expensify.export_reports(report_ids=wanted[start : start + REPORTS_PER_EXPORT]):
            found[str(report["reportID"])] = report
    return found


def card_expenses_by_id(expensify: ExpensifyHook, source_ids: list[str]) -> dict[str, Record]:
    booking = booking_mode()
    reports = reports_by_id(expensify, [source_id.split("/", 1)[0] for source_id in source_ids])
    return {r["id"]: r for report in reports.values() for r in card_records(report, booking)}


def is_deleted(record: Mapping[str, Any]) -> bool:
    return int(record.get("vis_state") or 0) == people.DELETED


def compare_bill(report: Record, bill: Record) -> list[str]:
    """Drift between a report and its FreshBooks bill: deleted, currency, the reimbursable total,
    and reimbursed in one system but not paid in the other."""
    if is_deleted(bill):
        return [f"FreshBooks bill {bill['id']} is deleted, Expensify report {report['reportID']} is not"]
    currency = str(report.get("currency") or "").upper()
    problems = []
    if str(bill.get("currency_code")) != currency:
        problems.append(f"currency differs: Expensify {currency}, FreshBooks {bill.get('currency_code')}")
    expected = sum((expense_amount(e, currency) for e in expenses_of(report, booking_mode(), BILL)), Decimal(0))
    total = parse_money(bill.get("total_amount") or bill.get("amount"))
    if expected != total:
        problems.append(f"total differs: Expensify {expected} (reimbursable expenses), FreshBooks {total}")
    reimbursed, status = report_state(report) == "REIMBURSED", str(bill.get("status") or "unpaid")
    if reimbursed and status != "paid":
        problems.append(f"reimbursed in Expensify, but the FreshBooks bill is {status}")
    if not reimbursed and status in ("paid", "partial"):
        problems.append(f"the FreshBooks bill is {status}, but the report is not reimbursed in Expensify")
    return problems


def compare_card_expense(record: Record, expense: Record) -> list[str]:
    """Drift between a card transaction and its FreshBooks expense: deleted, amount, date."""
    if is_deleted(expense):
        return [f"FreshBooks expense {expense['id']} is deleted, the Expensify transaction is not"]
    report: Record = record["report"]
    transaction_id = str(record["id"]).split("/", 1)[1]
    transaction = next(e for e in report["transactionList"] if str(e["transactionID"]) == transaction_id)
    problems = []
    expected, amount = expense_amount(transaction, str(report["currency"]).upper()), parse_money(expense["amount"])
    if expected != amount:
        problems.append(f"amount differs: Expensify {expected}, FreshBooks {amount}")
    if expense_date(transaction) != str(expense.get("date")):
        problems.append(f"date differs: Expensify {expense_date(transaction)}, FreshBooks {expense.get('date')}")
    return problems


# ---------------------------------------------------------------------------------- export label


#: report ids per labelling call: Expensify documents no limit on ``reportIDList``; a bounded list
#: keeps one call's request small while a month of reports takes a call or two, not one a day.
LABEL_CALL_MAX_REPORTS = 500


def read_written_reports(freshbooks: FreshBooksHook, window: Window) -> list[Record]:
    # FreshBooks documents no updated-since filter on bills or expenses: every run reads them all.
    return written_months(freshbooks)


def written_months(freshbooks: FreshBooksHook) -> list[Record]:
    """What this pair wrote, seen from FreshBooks, one record per approval month (``YYYY-MM``)."""
    months: dict[str, set[tuple[str, str, str]]] = {}
    for bill in freshbooks.bills.list():
        found = MARKER.match(str(bill.get("overall_description") or ""))
        if found and found.group(1) == str(bill.get("bill_number")):
            months.setdefault(str(bill["issue_date"])[:7], set()).add(("bill", str(bill["id"]), found.group(1)))
    for expense in freshbooks.expenses.list():
        found = MARKER.match(str(expense.get("notes") or ""))
        day = APPROVED_NOTE.search(str(expense.get("notes") or ""))
        if found and day and transaction_of(expense):
            months.setdefault(day.group(1)[:7], set()).add(("expense", str(expense["id"]), found.group(1)))
    return [{"id": month, "written": sorted(written)} for month, written in sorted(months.items())]


def fetch_written_month(freshbooks: FreshBooksHook, month: str) -> Record | None:
    return next((r for r in written_months(freshbooks) if r["id"] == month), None)


def label_payload(written: Record, ctx: Ctx) -> Outcome:
    ours = set()
    for entity, freshbooks_id, report_id in written["written"]:
        try:
            ctx.source_id(entity, freshbooks_id)
        except NotLinkedYetError:
            continue  # it names an Expensify report, but this integration did not write it
        ours.add(str(report_id))
    if not ours:
        return Skip("nothing written by this integration was approved that month")
    return {"label": ctx.reference, "month": written["id"], "reportIDs": sorted(ours)}


def label_key(written: Record, payload: Record) -> str:
    return f"{payload['label']}|{payload['month']}"


def apply_label(expensify: ExpensifyHook, payload: Record) -> Record:
    """Label the month's reports, :data:`LABEL_CALL_MAX_REPORTS` a call. Labelling is idempotent: a
    repeat (after a lost answer, or when a report joins the month) only labels again, so no lookup
    is needed before it."""
    ids = [str(i) for i in payload["reportIDs"]]
    for start in range(0, len(ids), LABEL_CALL_MAX_REPORTS):
        expensify.mark_exported(ids[start : start + LABEL_CALL_MAX_REPORTS], str(payload["label"]))
    return {"id": f"{payload['label']}|{payload['month']}"}


PAIR = Pair(
    name="expensify_to_freshbooks",
    source=ExpensifyHook,
    target=FreshBooksHook,
    doc=__doc__ or "",
    description="Approved Expensify reports into FreshBooks: one bill per report, one expense per card transaction",
    entities=(
        Entity(
            "person",
            read=read_people,
            fetch=lambda expensify, key: {"id": key, "email": key},
            transform=person_payload,
            natural_key=person_key_of,
            index=people.person_vendors_by_key,
            find=people.find_person_vendor,
            create=lambda fb, payload: fb.bill_vendors.create(payload),
            update=lambda fb, vendor_id, payload: fb.bill_vendors.update(vendor_id, payload),
            target_id=people.vendor_id,
            shared=SharedKey(people.SHARED_KEY),  # BambooHR's vendor of the person is linked as it is
        ),
        Entity(
            "bill",
            after=("person",),
            read=read_reports,
            fetch=fetch_report,
            source_id=lambda report: str(report["reportID"]),
            prepare=books,
            transform=bill_payload,
            natural_key=bill_key,
            index=bills_by_key,
            find=find_bill,
            create=lambda fb, payload: fb.bills.create(payload),
            update=update_bill,
            reconcile=Reconciliation(
                fetch_target=lambda fb, bill_id: fb.bills.get(bill_id),
                compare=compare_bill,
                fetch_sources=reports_by_id,
                missing_source=NOT_EXPORTED,
            ),
        ),
        Entity(
            "expense",
            after=("bill",),
            read=read_card_expenses,
            fetch=fetch_card_expense,
            prepare=books,
            transform=card_expense_payload,
            natural_key=card_expense_key,
            index=expenses_by_key,
            find=find_expense,
            create=lambda fb, payload: fb.expenses.create(payload),
            update=lambda fb, expense_id, payload: fb.expenses.update(expense_id, payload),
            reconcile=Reconciliation(
                fetch_target=lambda fb, expense_id: fb.expenses.get(expense_id),
                compare=compare_card_expense,
                fetch_sources=card_expenses_by_id,
                missing_source=NOT_EXPORTED,
            ),
        ),
        Entity(
            "payment",
            after=("bill",),
            read=read_reimbursed,
            fetch=fetch_report,
            source_id=lambda report: str(report["reportID"]),
            prepare=books,
            transform=payment_payload,
            natural_key=payment_key,
            find=find_payment,
            create=lambda fb, payload: fb.bill_payments.create(payload),
            update=update_payment,
        ),
        Entity(
            "label",
            after=("bill", "expense"),
            reverse=True,
            read=read_written_reports,
            fetch=fetch_written_month,
            prepare=lambda fb, expensify: expensify.config.export_label,
            transform=label_payload,
            natural_key=label_key,
            find=lambda expensify, key: None,  # labelling twice is harmless: never looked up
            create=apply_label,
            update=lambda expensify, key, payload: apply_label(expensify, payload),
        ),
    ),
)
