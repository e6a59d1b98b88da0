"""BILL v3 emulator state and actions (moto style: plain dicts, actions named like the endpoints).

Records are kept in the vendor's JSON shape with ``Decimal`` money; keys starting with ``_`` are
internal (epoch timestamps for filters and sorting, the owning organization) and never rendered.
Time comes from the sandbox clock so sessions, hourly caps and ``updatedTime`` move when a test
fast-forwards it.
"""

from __future__ import annotations

import copy
import random
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_provider_mlconnector.sandbox.bill.countries import ISO_COUNTRIES
from airflow_provider_mlconnector.sandbox.bill.errors import (
    BAD_CREDENTIALS,
    BAD_DEV_KEY,
    HOURLY_LIMIT,
    INVALID_ENTITY,
    MFA_REQUIRED,
    SESSION_INVALID,
    SESSION_INVALID_MESSAGE,
    BillError,
    NotFound,
    ValidationFailed,
)

CENT = Decimal("0.01")
ACCOUNT_TYPES = ("BUSINESS", "PERSON", "NONE")
FUNDING_TYPES = ("BANK_ACCOUNT", "CARD_ACCOUNT", "WALLET")
Record = dict[str, Any]
#: (organization id, event type, payload key, entity) -> deliveries to matching subscriptions.
Emit = Callable[[str, str, str, Record], None]


def iso(ts: float) -> str:
    """BILL v3 timestamps: ``2026-12-15T23:15:23.127+00:00``."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")


def parse_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


@dataclass
class Session:
    id: str
    dev_key: str
    user_id: str
    organization_id: str
    last_used: float
    trusted: bool


@dataclass
class Organization:
    id: str
    name: str
    vendors: dict[str, Record] = field(default_factory=dict)
    bills: dict[str, Record] = field(default_factory=dict)
    accounts: dict[str, Record] = field(default_factory=dict)
    payments: dict[str, Record] = field(default_factory=dict)
    bank_accounts: dict[str, Record] = field(default_factory=dict)


@dataclass
class User:
    username: str
    password: str
    user_id: str
    organization_ids: list[str]


class BillBackend:
    """All organizations, users, developer keys, sessions and rate-limit counters."""

    def __init__(self, *, clock: Callable[[], float], emit: Emit, switches: Callable[[], dict[str, Any]]) -> None:
        self.clock = clock
        self.emit = emit
        self._switches = switches  # read at each use: the control plane may replace the dict
        self.reset()

    @property
    def switches(self) -> dict[str, Any]:
        return self._switches()

    def reset(self) -> None:
        self.orgs: dict[str, Organization] = {}
        self.users: dict[str, User] = {}
        self.dev_keys: set[str] = set()
        self.sessions: dict[str, Session] = {}
        self.counters: dict[tuple[str, str, int], int] = {}
        self.stats: dict[str, int] = {"logins": 0, "failed_logins": 0}
        self._rng = random.Random(20261121)

    # ------------------------------------------------------------------ ids and time

    def new_id(self, prefix: str) -> str:
        """20 characters: the documented 3-char prefix, ``02``, then 15 random characters."""
        upper = "".join(self._rng.choices(string.ascii_uppercase, k=10))
        tail = "".join(self._rng.choices(string.ascii_lowercase + string.digits, k=5))
        return f"{prefix}02{upper}{tail}"

    def _stamp(self, record: Record, *, created: bool = False, at: float | None = None) -> None:
        now = self.clock() if at is None else at
        if created:
            record["_created"] = now
            record["createdTime"] = iso(now)
        record["_updated"] = now
        record["updatedTime"] = iso(now)

    # ------------------------------------------------------------------ login and sessions

    def add_identity(
        self, *, dev_key: str, username: str, password: str, user_id: str, org_id: str, org_name: str
    ) -> None:
        self.dev_keys.add(dev_key)
        self.orgs.setdefault(org_id, Organization(org_id, org_name))
        user = self.users.get(username)
        if user is None:
            self.users[username] = User(username, password, user_id, [org_id])
        elif org_id not in user.organization_ids:
            user.organization_ids.append(org_id)

    def _count(self, bucket: str, dev_key: str, window: int, limit: int, message: str) -> None:
        slot = int(self.clock() // window)
        key = (bucket, dev_key, slot)
        self.counters[key] = self.counters.get(key, 0) + 1
        if self.counters[key] > limit:
            raise BillError(HOURLY_LIMIT, message, status=int(self.switches["rate_limit_status"]))

    def count_request(self, dev_key: str) -> None:
        limit = int(self.switches["hourly_request_limit"])
        self._count("hour", dev_key, 3600, limit, f"Max number of allowed requests per hour reached: {limit}.")

    def login(self, body: Mapping[str, Any]) -> Record:
        problems = [
            f"{name}: must not be blank"
            for name in ("username", "password", "organizationId", "devKey")
            if not isinstance(body.get(name), str) or not body[name].strip()
        ]
        if problems:
            raise ValidationFailed(problems)
        dev_key = str(body["devKey"])
        if dev_key not in self.dev_keys:
            self.stats["failed_logins"] += 1
            raise BillError(BAD_DEV_KEY, "Developer key is invalid.", status=401)
        self.count_request(dev_key)
        login_hourly = int(self.switches["login_hourly_limit"])
        self._count(
            "login-hour",
            dev_key,
            3600,
            login_hourly,
            f"Max number of allowed login requests per hour reached: {login_hourly}.",
        )
        per_minute = int(self.switches["login_per_minute_limit"])
        self._count(
            "login-minute",
            dev_key,
            60,
            per_minute,
            f"Max number of allowed login requests per minute reached: {per_minute}.",
        )
        user = self.users.get(str(body["username"]))
        if user is None or not secrets.compare_digest(user.password, str(body["password"])):
            self.stats["failed_logins"] += 1
            raise BillError(BAD_CREDENTIALS, "Incorrect userName or password.", status=401)
        org_id = str(body["organizationId"])
        if org_id not in user.organization_ids:
            self.stats["failed_logins"] += 1
            raise BillError(BAD_CREDENTIALS, "The user does not belong to this organization.", status=401)
        session = Session(
            id=secrets.token_urlsafe(24),
            dev_key=dev_key,
            user_id=user.user_id,
            organization_id=org_id,
            last_used=self.clock(),
            trusted=bool(self.switches["sessions_trusted"]),
        )
        self.sessions[session.id] = session
        self.stats["logins"] += 1
        return {"sessionId": session.id, "organizationId": org_id, "userId": user.user_id, "trusted": session.trusted}

    def _live_session(self, dev_key: str | None, session_id: str | None) -> Session | None:
        session = self.sessions.get(session_id or "")
        if session is None or session.dev_key != dev_key:
            return None
        if self.clock() - session.last_used > float(self.switches["session_idle_minutes"]) * 60:
            return None
        return session

    def peek_session(self, dev_key: str | None, session_id: str | None) -> Session | None:
        """The live session these headers name, without touching its idle timer."""
        return self._live_session(dev_key, session_id)

    def authenticate(self, dev_key: str | None, session_id: str | None) -> Session:
        """Check ``devKey`` + ``sessionId`` headers, count the call, slide the 35-minute idle timer."""
        if not dev_key or dev_key not in self.dev_keys:
            raise BillError(BAD_DEV_KEY, "Developer key is invalid.", status=401)
        self.count_request(dev_key)
        session = self._live_session(dev_key, session_id)
        if session is None:
            self.sessions.pop(session_id or "", None)
            raise BillError(
                SESSION_INVALID, SESSION_INVALID_MESSAGE, status=int(self.switches["session_expired_status"])
            )
        session.last_used = self.clock()
        return session

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def session_info(self, session: Session) -> Record:
        return {"organizationId": session.organization_id, "userId": session.user_id, "trusted": session.trusted}

    def logout(self, session: Session) -> None:
        self.sessions.pop(session.id, None)

    def org(self, session: Session) -> Organization:
        return self.orgs[session.organization_id]

    # ------------------------------------------------------------------ vendors

    def create_vendor(self, org: Organization, body: Mapping[str, Any], *, emit: bool = True) -> Record:
        vendor = self._vendor_record(org, body)
        org.vendors[vendor["id"]] = vendor
        if emit:
            self.emit(org.id, "vendor.created", "vendor", self.render_vendor(vendor))
        return vendor

    def bulk_create_vendors(self, org: Organization, items: Any) -> list[Record]:
        items = _bulk_items(items, int(self.switches["bulk_vendors_limit"]), "vendors")
        problems: list[str] = []
        for index, item in enumerate(items):
            try:
                self._validate_vendor(item, partial=False, prefix=f"[{index}].")
            except ValidationFailed as exc:
                problems.extend(exc.messages)
        if problems:  # all-or-nothing
            raise ValidationFailed(problems)
        return [self.create_vendor(org, item) for item in items]

    def _vendor_record(self, org: Organization, body: Mapping[str, Any]) -> Record:
        clean = self._validate_vendor(body, partial=False)
        vendor: Record = {
            "id": self.new_id("009"),
            "archived": False,
            "name": clean["name"],
            "accountType": clean.get("accountType", "NONE"),
            "billCurrency": clean.get("billCurrency", "USD"),
            "_org": org.id,
        }
        for key in (
            "shortName",
            "accountNumber",
            "email",
            "phone",
            "address",
            "paymentInformation",
            "additionalInfo",
            "autoPay",
        ):
            if key in clean:
                vendor[key] = clean[key]
        if "paymentInformation" in vendor:
            vendor["paymentInformation"] = _mask_bank(vendor["paymentInformation"])
        vendor["recordStatus"] = "ACTIVE"
        self._stamp(vendor, created=True)
        return vendor

    def _validate_vendor(self, body: Any, *, partial: bool, prefix: str = "") -> Record:
        if not isinstance(body, Mapping):
            raise ValidationFailed([f"{prefix or 'body'}: must be a JSON object"])
        problems: list[str] = []
        clean: Record = {}
        if "name" in body or not partial:
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                problems.append(f"{prefix}name: must not be blank")
            elif len(name) > 100:
                problems.append(f"{prefix}name: size must be between 1 and 100")
            else:
                clean["name"] = name
        for key, limit in (
            ("shortName", 40),
            ("accountNumber", 100),
            ("email", 255),
            ("phone", 40),
            ("additionalInfo", 4000),
        ):
            if key in body and body[key] is not None:
                value = body[key]
                if not isinstance(value, str) or len(value) > limit:
                    problems.append(f"{prefix}{key}: must be a string of at most {limit} characters")
                elif key == "email" and "@" not in value:
                    problems.append(f"{prefix}email: must be a well-formed email address")
                else:
                    clean[key] = value
        if "accountType" in body:
            if body["accountType"] not in ACCOUNT_TYPES:
                problems.append(f"{prefix}accountType: must be one of {', '.join(ACCOUNT_TYPES)}")
            else:
                clean["accountType"] = body["accountType"]
        if "billCurrency" in body:
            currency = body["billCurrency"]
            if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()):
                problems.append(f"{prefix}billCurrency: must be an ISO 4217 currency code")
            else:
                clean["billCurrency"] = currency
        if "autoPay" in body:
            clean["autoPay"] = body["autoPay"]
        address = body.get("address")
        if address is None:
            if not partial and self.switches["vendor_address_required"]:
                problems.append(f"{prefix}address: must not be null")
        else:
            problems.extend(
                _address_problems(address, f"{prefix}address.", list(self.switches["vendor_address_required_fields"]))
            )
            if isinstance(address, Mapping):
                clean["address"] = dict(address)
        if "paymentInformation" in body and body["paymentInformation"] is not None:
            info = body["paymentInformation"]
            if not isinstance(info, Mapping):
                problems.append(f"{prefix}paymentInformation: must be an object")
            else:
                if partial and "bankAccount" in info:
                    problems.append(
                        f"{prefix}paymentInformation.bankAccount: bank information cannot be changed here; "
                        "use /v3/vendors/{vendorId}/bank-account"
                    )
                bank = info.get("bankAccount")
                if isinstance(bank, Mapping):
                    routing = bank.get("routingNumber")
                    if not (isinstance(routing, str) and routing.isdigit() and len(routing) == 9):
                        problems.append(f"{prefix}paymentInformation.bankAccount.routingNumber: must be 9 digits")
                    if not isinstance(bank.get("accountNumber"), str) or not bank["accountNumber"].strip():
                        problems.append(f"{prefix}paymentInformation.bankAccount.accountNumber: must not be blank")
                clean["paymentInformation"] = copy.deepcopy(dict(info))
        if problems:
            raise ValidationFailed(problems)
        return clean

    def get_vendor(self, org: Organization, vendor_id: str) -> Record:
        vendor = org.vendors.get(vendor_id)
        if vendor is None:
            raise NotFound("Vendor", vendor_id)
        return vendor

    def update_vendor(self, org: Organization, vendor_id: str, body: Any) -> Record:
        vendor = self.get_vendor(org, vendor_id)
        clean = self._validate_vendor(body, partial=True)
        if "paymentInformation" in clean:
            clean["paymentInformation"] = _mask_bank(clean["paymentInformation"])
        changed = {k: v for k, v in clean.items() if vendor.get(k) != v}
        if changed:
            vendor.update(changed)
            self._stamp(vendor)
            self.emit(org.id, "vendor.updated", "vendor", self.render_vendor(vendor))
        return vendor

    def set_vendor_archived(self, org: Organization, vendor_id: str, archived: bool) -> Record:
        vendor = self.get_vendor(org, vendor_id)
        if vendor["archived"] != archived:
            vendor["archived"] = archived
            vendor["recordStatus"] = "INACTIVE" if archived else "ACTIVE"
            self._stamp(vendor)
            self.emit(
                org.id, "vendor.archived" if archived else "vendor.restored", "vendor", self.render_vendor(vendor)
            )
        return vendor

    def render_vendor(self, vendor: Record, *, row: bool = False) -> Record:
        out = _public(vendor)
        if row and self.switches["thin_list_rows"]:
            # List rows are thinner than the single GET (dossier B7, INT-SF).
            for key in ("paymentInformation", "additionalInfo", "autoPay"):
                out.pop(key, None)
        return out

    # ------------------------------------------------------------------ chart of accounts

    def create_account(self, org: Organization, body: Any, *, at: float | None = None) -> Record:
        if not isinstance(body, Mapping):
            raise ValidationFailed(["body: must be a JSON object"])
        problems = []
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append("name: must not be blank")
        parent = body.get("parentId")
        if parent is not None and parent not in org.accounts:
            problems.append("parentId: chart of account not found")
        number = body.get("accountNumber")
        if number is not None and not isinstance(number, str):
            problems.append("accountNumber: must be a string")
        if problems:
            raise ValidationFailed(problems)
        account: Record = {
            "id": body.get("id") or self.new_id("0ca"),
            "name": name,
            "accountNumber": number,
            "accountType": body.get("accountType", "EXPENSE"),
            "description": body.get("description", ""),
            "parentId": parent,
            "archived": False,
            "_org": org.id,
        }
        self._stamp(account, created=True, at=at)
        org.accounts[account["id"]] = account
        return account

    def get_account(self, org: Organization, account_id: str) -> Record:
        account = org.accounts.get(account_id)
        if account is None:
            raise NotFound("Chart of account", account_id)
        return account

    def update_account(self, org: Organization, account_id: str, body: Any) -> Record:
        account = self.get_account(org, account_id)
        if not isinstance(body, Mapping):
            raise ValidationFailed(["body: must be a JSON object"])
        if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
            raise ValidationFailed(["name: must not be blank"])
        for key in ("name", "description", "accountNumber", "accountType"):
            if key in body:
                account[key] = body[key]
        self._stamp(account)
        return account

    def _account_problem(self, org: Organization, account_id: Any, where: str) -> str | None:
        if account_id is None:
            return None
        account = org.accounts.get(account_id) if isinstance(account_id, str) else None
        if account is None:
            return f"{where}: chart of account {account_id} was not found"
        if account["archived"]:
            return f"{where}: chart of account {account_id} is archived"
        return None

    # ------------------------------------------------------------------ bills

    def create_bill(self, org: Organization, body: Any, session: Session | None, *, emit: bool = True) -> Record:
        clean = self._validate_bill(org, body)
        bill = self._bill_record(org, clean, session.user_id if session else None)
        org.bills[bill["id"]] = bill
        if emit:
            self.emit(org.id, "bill.created", "bill", self.render_bill(bill, webhook=True))
        return bill

    def bulk_create_bills(self, org: Organization, items: Any, session: Session) -> list[Record]:
        items = _bulk_items(items, int(self.switches["bulk_bills_limit"]), "bills")
        problems: list[str] = []
        cleaned = []
        for index, item in enumerate(items):
            try:
                cleaned.append(self._validate_bill(org, item, prefix=f"[{index}]."))
            except ValidationFailed as exc:
                problems.extend(exc.messages)
        if problems:  # all-or-nothing: nothing is created
            raise ValidationFailed(problems)
        created = []
        for clean in cleaned:
            bill = self._bill_record(org, clean, session.user_id)
            org.bills[bill["id"]] = bill
            self.emit(org.id, "bill.created", "bill", self.render_bill(bill, webhook=True))
            created.append(bill)
        return created

    def _bill_record(self, org: Organization, clean: Record, user_id: str | None) -> Record:
        vendor = org.vendors[clean["vendorId"]]
        bill: Record = {
            "id": self.new_id("00n"),
            "archived": False,
            "vendorId": vendor["id"],
            "vendorName": vendor["name"],
            "invoice": clean["invoice"],
            "dueDate": clean["dueDate"],
            "description": clean.get("description", ""),
            "billLineItems": clean["billLineItems"],
            "amount": clean["amount"],
            "paidAmount": Decimal("0.00"),
            "dueAmount": clean["amount"],
            "paymentStatus": "UNPAID",
            "approvalStatus": "UNASSIGNED",
            "recordStatus": "ACTIVE",
            "createdBy": user_id,
            "_org": org.id,
        }
        for key in ("payFromChartOfAccountId", "classifications", "purchaseOrderNumber"):
            if key in clean:
                bill[key] = clean[key]
        self._stamp(bill, created=True)
        return bill

    def _validate_bill(self, org: Organization, body: Any, *, prefix: str = "", base: Record | None = None) -> Record:
        """Validate a create/replace body, or a PATCH merged onto ``base``; returns clean fields."""
        if not isinstance(body, Mapping):
            raise ValidationFailed([f"{prefix or 'body'}: must be a JSON object"])
        merged: Record = dict(base or {})
        for key, value in body.items():
            if key == "invoice" and isinstance(value, Mapping) and isinstance(merged.get("invoice"), Mapping):
                merged["invoice"] = {**merged["invoice"], **value}
            else:
                merged[key] = value
        problems: list[str] = []
        clean: Record = {}
        vendor_id = merged.get("vendorId")
        vendor = org.vendors.get(vendor_id) if isinstance(vendor_id, str) else None
        if not vendor_id:
            problems.append(f"{prefix}vendorId: must not be blank")
        elif vendor is None:
            problems.append(f"{prefix}vendorId: vendor {vendor_id} was not found")
        elif vendor["archived"]:
            problems.append(f"{prefix}vendorId: vendor {vendor_id} is archived")
        else:
            clean["vendorId"] = vendor_id
        due = merged.get("dueDate")
        if not _is_date(due):
            problems.append(f"{prefix}dueDate: must be a date in yyyy-MM-dd format")
        else:
            clean["dueDate"] = due
        invoice = merged.get("invoice")
        if not isinstance(invoice, Mapping):
            problems.append(f"{prefix}invoice: must not be null")
        else:
            number, invoice_date = invoice.get("invoiceNumber"), invoice.get("invoiceDate")
            if not isinstance(number, str) or not number.strip():
                problems.append(f"{prefix}invoice.invoiceNumber: must not be blank")
            if not _is_date(invoice_date):
                problems.append(f"{prefix}invoice.invoiceDate: must be a date in yyyy-MM-dd format")
            clean["invoice"] = {"invoiceNumber": number, "invoiceDate": invoice_date}
        lines = merged.get("billLineItems")
        if not isinstance(lines, list) or not lines:
            problems.append(f"{prefix}billLineItems: must contain at least one line item")
        else:
            clean_lines, line_problems = [], []
            for index, line in enumerate(lines):
                clean_line, found = self._bill_line(org, line, f"{prefix}billLineItems[{index}]")
                line_problems.extend(found)
                clean_lines.append(clean_line)
            problems.extend(line_problems)
            clean["billLineItems"] = clean_lines
            if not line_problems:
                total = money(sum((line["amount"] for line in clean_lines), Decimal("0")))
                if total <= 0:
                    problems.append(f"{prefix}amount: the bill total must be greater than 0")
                clean["amount"] = total
        for key in ("description", "purchaseOrderNumber"):
            if key in merged and merged[key] is not None:
                if not isinstance(merged[key], str) or len(merged[key]) > 4000:
                    problems.append(f"{prefix}{key}: must be a string of at most 4000 characters")
                else:
                    clean[key] = merged[key]
        if "payFromChartOfAccountId" in merged:
            problem = self._account_problem(org, merged["payFromChartOfAccountId"], f"{prefix}payFromChartOfAccountId")
            if problem:
                problems.append(problem)
            clean["payFromChartOfAccountId"] = merged["payFromChartOfAccountId"]
        if isinstance(merged.get("classifications"), Mapping):
            problem = self._account_problem(
                org, merged["classifications"].get("chartOfAccountId"), f"{prefix}classifications.chartOfAccountId"
            )
            if problem:
                problems.append(problem)
            clean["classifications"] = dict(merged["classifications"])
        if problems:
            raise ValidationFailed(problems)
        return clean

    def _bill_line(self, org: Organization, line: Any, where: str) -> tuple[Record, list[str]]:
        if not isinstance(line, Mapping):
            return {}, [f"{where}: must be an object"]
        problems: list[str] = []
        clean: Record = {}
        amount = _number(line.get("amount"))
        quantity, price = _number(line.get("quantity")), _number(line.get("price"))
        if amount is None and quantity is not None and price is not None:
            amount = quantity * price  # amount wins when all three are set (dossier B8)
        if line.get("amount") is not None and _number(line.get("amount")) is None:
            problems.append(f"{where}.amount: must be a number")
        elif amount is None:
            problems.append(f"{where}.amount: must not be null")
        elif amount != amount.quantize(CENT):
            problems.append(f"{where}.amount: must have at most 2 decimal places")
        else:
            clean["amount"] = money(amount)
        if quantity is not None:
            clean["quantity"] = quantity
        if price is not None:
            clean["price"] = price
        description = line.get("description")
        if description is not None:
            if not isinstance(description, str) or len(description) > 4000:
                problems.append(f"{where}.description: must be a string of at most 4000 characters")
            else:
                clean["description"] = description
        classifications = line.get("classifications")
        if classifications is not None:
            if not isinstance(classifications, Mapping):
                problems.append(f"{where}.classifications: must be an object")
            else:
                problem = self._account_problem(
                    org, classifications.get("chartOfAccountId"), f"{where}.classifications.chartOfAccountId"
                )
                if problem:
                    problems.append(problem)
                clean["classifications"] = dict(classifications)
        if "chartOfAccountId" in line:
            # The flat form is UNCONFIRMED; most likely ignored like any unknown property.
            mode = self.switches["flat_line_chart_of_account_id"]
            if mode == "reject":
                problems.append(f"{where}.chartOfAccountId: unknown field; use classifications.chartOfAccountId")
            elif mode == "accept":
                problem = self._account_problem(org, line["chartOfAccountId"], f"{where}.chartOfAccountId")
                if problem:
                    problems.append(problem)
                clean.setdefault("classifications", {})["chartOfAccountId"] = line["chartOfAccountId"]
        return clean, problems

    def get_bill(self, org: Organization, bill_id: str) -> Record:
        bill = org.bills.get(bill_id)
        if bill is None:
            raise NotFound("Bill", bill_id)
        return bill

    def update_bill(self, org: Organization, bill_id: str, body: Any, *, replace: bool) -> Record:
        bill = self.get_bill(org, bill_id)
        base = None if replace else {k: copy.deepcopy(v) for k, v in bill.items() if not k.startswith("_")}
        if base is not None:
            base["billLineItems"] = [_line_body(line) for line in bill["billLineItems"]]
        clean = self._validate_bill(org, body, base=base)
        if self._has_payments(org, bill_id) and (
            clean["vendorId"] != bill["vendorId"] or clean["amount"] != bill["amount"]
        ):
            raise BillError(INVALID_ENTITY, "A bill with payments cannot change its vendor or amount.", status=400)
        before = {k: bill.get(k) for k in clean}
        if replace:
            for key in ("description", "purchaseOrderNumber", "payFromChartOfAccountId", "classifications"):
                bill.pop(key, None)
        bill.update(clean)
        bill["vendorName"] = org.vendors[bill["vendorId"]]["name"]
        if any(bill.get(k) != v for k, v in before.items()) or replace:
            self._recompute(org, bill)
            self._stamp(bill)
            self.emit(org.id, "bill.updated", "bill", self.render_bill(bill, webhook=True))
        return bill

    def set_bill_archived(self, org: Organization, bill_id: str, archived: bool) -> Record:
        bill = self.get_bill(org, bill_id)
        if bill["archived"] != archived:
            bill["archived"] = archived
            bill["recordStatus"] = "INACTIVE" if archived else "ACTIVE"
            self._stamp(bill)
            self.emit(
                org.id, "bill.archived" if archived else "bill.restored", "bill", self.render_bill(bill, webhook=True)
            )
        return bill

    def render_bill(self, bill: Record, *, row: bool = False, webhook: bool = False) -> Record:
        out = _public(bill)
        if (webhook or self.switches["invoice_date_as_datetime"]) and out["invoice"].get("invoiceDate"):
            # Webhook payloads echo the invoice date as a date-time (dossier B11 example).
            out["invoice"]["invoiceDate"] = f"{out['invoice']['invoiceDate']}T00:00:00.000Z"
        if row and self.switches["thin_list_rows"]:
            out.pop("dueAmount", None)  # may be absent in list rows (dossier B8, INT-SF)
        return out

    # ------------------------------------------------------------------ payments

    def _has_payments(self, org: Organization, bill_id: str) -> bool:
        return any(
            bp["billId"] == bill_id and p["singleStatus"] not in ("CANCELED", "VOIDED")
            for p in org.payments.values()
            for bp in p["billPayments"]
        )

    def _recompute(self, org: Organization, bill: Record) -> None:
        """paidAmount = cleared payments; dueAmount = amount - paidAmount; paymentStatus follows."""
        cleared, scheduled = Decimal("0"), Decimal("0")
        for payment in org.payments.values():
            for application in payment["billPayments"]:
                if application["billId"] != bill["id"]:
                    continue
                if payment["singleStatus"] == "CLEARED":
                    cleared += application["amount"]
                elif payment["singleStatus"] == "SCHEDULED":
                    scheduled += application["amount"]
        bill["paidAmount"] = money(cleared)
        bill["dueAmount"] = money(bill["amount"] - cleared)
        if cleared >= bill["amount"]:
            bill["paymentStatus"] = "PAID"
        elif scheduled > 0:
            bill["paymentStatus"] = "SCHEDULED"
        elif cleared > 0:
            bill["paymentStatus"] = "PARTIAL"
        else:
            bill["paymentStatus"] = "UNPAID"

    def _open_amount(self, org: Organization, bill: Record) -> Decimal:
        committed = sum(
            (
                bp["amount"]
                for p in org.payments.values()
                if p["singleStatus"] in ("SCHEDULED", "CLEARED")
                for bp in p["billPayments"]
                if bp["billId"] == bill["id"]
            ),
            Decimal("0"),
        )
        return Decimal(bill["amount"]) - committed

    def create_payment(self, org: Organization, body: Any, session: Session) -> Record:
        """``POST /v3/payments``: only from an MFA-trusted session (dossier B2, B9)."""
        if not session.trusted:
            raise BillError(
                MFA_REQUIRED,
                "This operation requires an MFA-trusted session. Complete MFA and sign in again.",
                status=int(self.switches["mfa_required_status"]),
            )
        if not isinstance(body, Mapping):
            raise ValidationFailed(["body: must be a JSON object"])
        problems = []
        funding = body.get("fundingAccount")
        if not isinstance(funding, Mapping) or funding.get("type") not in FUNDING_TYPES or not funding.get("id"):
            problems.append("fundingAccount: type (BANK_ACCOUNT|CARD_ACCOUNT|WALLET) and id are required")
        if not isinstance(body.get("processingOptions"), Mapping):
            problems.append("processingOptions: must not be null")
        if problems:
            raise ValidationFailed(problems)
        vendor_id = body.get("vendorId")
        payment = self.make_payment(
            org,
            bill_id=body.get("billId"),
            amount=body.get("amount"),
            status="SCHEDULED",
            process_date=body.get("processDate"),
            funding=dict(funding) if isinstance(funding, Mapping) else None,
            created_by=session.user_id,
            description=body.get("description"),
        )
        if vendor_id is not None and vendor_id != payment["vendorId"]:
            raise ValidationFailed(["vendorId: does not match the bill's vendor"])
        return payment

    def make_payment(
        self,
        org: Organization,
        *,
        bill_id: Any,
        amount: Any,
        status: str,
        process_date: Any = None,
        funding: Record | None = None,
        created_by: str | None = None,
        description: str | None = None,
        payment_id: str | None = None,
        at: float | None = None,
        emit: bool = True,
    ) -> Record:
        """A payment applied to one bill; ``status`` SCHEDULED or CLEARED (settled)."""
        bill = org.bills.get(bill_id) if isinstance(bill_id, str) else None
        problems = []
        if bill is None:
            problems.append(f"billId: bill {bill_id} was not found")
        elif bill["archived"]:
            problems.append(f"billId: bill {bill_id} is archived")
        value = _number(amount)
        if value is None or value <= 0 or value != value.quantize(CENT):
            problems.append("amount: must be a positive amount with at most 2 decimal places")
        if status not in ("SCHEDULED", "CLEARED"):
            problems.append("status: must be SCHEDULED or CLEARED")
        if process_date is not None and not _is_date(process_date):
            problems.append("processDate: must be a date in yyyy-MM-dd format")
        if not problems and bill is not None and value is not None and value > self._open_amount(org, bill):
            problems.append("amount: exceeds the bill's open amount")
        if problems:
            raise ValidationFailed(problems)
        assert bill is not None and value is not None
        now = self.clock() if at is None else at
        vendor = org.vendors[bill["vendorId"]]
        bank = next(iter(org.bank_accounts), None)
        payment: Record = {
            "id": payment_id or self.new_id("stp"),
            "vendorId": vendor["id"],
            "vendorName": vendor["name"],
            "billId": bill["id"],
            "billPayments": [{"id": self.new_id("blp"), "billId": bill["id"], "amount": money(value)}],
            "description": description or f"Payment for {bill['invoice']['invoiceNumber']}",
            "processDate": process_date or datetime.fromtimestamp(now, tz=timezone.utc).date().isoformat(),
            "amount": money(value),
            "status": "SCHEDULED",
            "singleStatus": "SCHEDULED",
            "disbursementStatus": "SCHEDULED",
            "fundingAccount": funding or {"type": "BANK_ACCOUNT", "id": bank},
            "transactionNumber": None,
            "createdBy": created_by,
            "_org": org.id,
        }
        self._stamp(payment, created=True, at=now)
        org.payments[payment["id"]] = payment
        if status == "CLEARED":
            self._clear(payment, at=now)
        self._recompute(org, bill)
        self._stamp(bill, at=now)
        if emit:
            self.emit(org.id, "payment.updated", "payment", self.payment_event(org, payment))
        return payment

    def _clear(self, payment: Record, *, at: float) -> None:
        payment["status"] = "PAID"
        payment["singleStatus"] = "CLEARED"
        payment["disbursementStatus"] = "CLEARED"
        payment["transactionNumber"] = payment["transactionNumber"] or f"ACH{int(at) % 10**9:09d}"
        self._stamp(payment, at=at)

    def settle_payment(self, org: Organization, payment_id: str) -> Record:
        payment = self.get_payment(org, payment_id)
        if payment["singleStatus"] != "SCHEDULED":
            raise BillError(INVALID_ENTITY, f"Payment {payment_id} is {payment['singleStatus']}, not SCHEDULED.")
        self._clear(payment, at=self.clock())
        for application in payment["billPayments"]:
            bill = org.bills[application["billId"]]
            self._recompute(org, bill)
            self._stamp(bill)
        self.emit(org.id, "payment.updated", "payment", self.payment_event(org, payment))
        return payment

    def get_payment(self, org: Organization, payment_id: str) -> Record:
        payment = org.payments.get(payment_id)
        if payment is None:
            raise NotFound("Payment", payment_id)
        return payment

    def find_org_of_bill(self, bill_id: str) -> Organization:
        for org in self.orgs.values():
            if bill_id in org.bills:
                return org
        raise NotFound("Bill", bill_id)

    def find_org_of_payment(self, payment_id: str) -> Organization:
        for org in self.orgs.values():
            if payment_id in org.payments:
                return org
        raise NotFound("Payment", payment_id)

    def payment_event(self, org: Organization, payment: Record) -> Record:
        """The ``payment`` object of payment.updated webhooks (dossier B11; differs from the GET)."""
        return {
            "id": payment["id"],
            "billIds": [bp["billId"] for bp in payment["billPayments"]],
            "transactionNumber": payment["transactionNumber"],
            "status": payment["status"],
            "createdBy": payment["createdBy"],
            "createdTime": payment["createdTime"],
            "updatedTime": payment["updatedTime"],
            "processDate": payment["processDate"],
            "amount": payment["amount"],
            "funding": dict(payment["fundingAccount"]),
            "disbursement": {"arrivesByDate": payment["processDate"]},
            "vendor": {"id": payment["vendorId"], "name": payment["vendorName"]},
            "billingType": "BDC",
        }


def _public(record: Record) -> Record:
    return {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}


def _line_body(line: Record) -> Record:
    return copy.deepcopy(line)


def _mask_bank(info: Record) -> Record:
    info = copy.deepcopy(info)
    bank = info.get("bankAccount")
    if isinstance(bank, dict) and isinstance(bank.get("accountNumber"), str):
        bank["accountNumber"] = "x" * max(0, len(bank["accountNumber"]) - 4) + bank["accountNumber"][-4:]
    return info


def _bulk_items(items: Any, limit: int, entity: str) -> list[Any]:
    if not isinstance(items, list) or not items:
        raise ValidationFailed([f"body: must be a non-empty JSON array of {entity}"])
    if len(items) > limit:
        raise ValidationFailed([f"body: at most {limit} {entity} can be created in one bulk request"])
    return items


def _address_problems(address: Any, where: str, required: list[str]) -> list[str]:
    if not isinstance(address, Mapping):
        return [f"{where.rstrip('.')}: must be an object"]
    problems = []
    for key in required:
        if not isinstance(address.get(key), str) or not address[key].strip():
            problems.append(f"{where}{key}: must not be blank")
    country = address.get("country")
    if isinstance(country, str) and country.strip() and country not in ISO_COUNTRIES:
        problems.append(f"{where}country: must be a valid ISO 3166-1 alpha-2 country code, e.g. US")
    return problems


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _number(value: Any) -> Decimal | None:
    """A JSON number as Decimal (bodies are parsed with ``parse_float=Decimal``); strings refused."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        try:
            return Decimal(repr(value))
        except InvalidOperation:
            return None
    return None
