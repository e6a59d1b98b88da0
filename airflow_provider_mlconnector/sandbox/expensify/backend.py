"""In-memory state of the Expensify emulator and its jobs, named like the Integration Server's.

Jobs raise :class:`ExpensifyError` carrying the ``responseCode`` Expensify would put in the body
(410 validation, 404 policy not found, 403 permissions, ...). The adapter in :mod:`.api` turns
them into the JSON envelope under HTTP 200. Amounts are integer cents, as in the template model.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from airflow_provider_mlconnector.sandbox.expensify import freemarker

PARTNER_USER_ID = "aa_ops_brightside-marketing_example"
PARTNER_USER_SECRET = "exp-sandbox-partner-secret-7f3c2b9d41"
POLICY_ID = "B2A5D0E6F1C34A97"
POLICY_NAME = "Brightside Marketing"

REPORT_STATES = ("OPEN", "SUBMITTED", "APPROVED", "REIMBURSED", "ARCHIVED")
#: How ``report.status`` reads in templates (UNCONFIRMED; switch ``report_status_style``).
STATUS_DISPLAY = {
    "OPEN": "Open",
    "SUBMITTED": "Processing",
    "APPROVED": "Approved",
    "REIMBURSED": "Reimbursed",
    "ARCHIVED": "Closed",
}
FILE_EXTENSIONS = ("csv", "xls", "xlsx", "txt", "pdf", "json", "xml")
POLICY_FIELDS = ("categories", "reportFields", "tags", "tax", "employees")


class ExpensifyError(Exception):
    """A job failure with Expensify's body ``responseCode`` and ``responseMessage``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ValidationFailed(ExpensifyError):
    def __init__(self, message: str) -> None:
        super().__init__(410, message)


class FileNotFound(ExpensifyError):
    """Rendered by the adapter as ``{"responseMessage": "File not found"}`` (no code)."""

    def __init__(self) -> None:
        super().__init__(404, "File not found")


@dataclass
class Expense:
    transactionID: str
    merchant: str
    amount: int  # cents, in the expense currency
    created: str  # yyyy-mm-dd
    category: str
    currency: str = "USD"
    tag: str = ""
    comment: str = ""
    billable: bool = False
    reimbursable: bool = True
    converted_amount: int | None = None  # in the report currency; None = same as amount
    conversion_rate: Decimal = Decimal(1)
    modified_amount: int | None = None
    modified_merchant: str = ""
    modified_created: str = ""
    receipt_url: str = ""
    mcc: int = 0
    inserted: str = ""

    @property
    def effective_converted(self) -> int:
        """In the report currency, after any edit of the amount."""
        if self.converted_amount is not None:
            return self.converted_amount
        return self.modified_amount if self.modified_amount is not None else self.amount


@dataclass
class Report:
    reportID: str
    reportName: str
    policyID: str
    accountEmail: str
    accountID: int
    state: str
    created: str  # "yyyy-mm-dd hh:mm:ss"
    currency: str = "USD"
    managerEmail: str = ""
    submitted: str = ""
    approved: str = ""
    reimbursed: str = ""
    expenses: list[Expense] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)

    def total(self) -> int:
        return sum(e.effective_converted for e in self.expenses)


@dataclass
class Policy:
    id: str
    name: str
    owner: str
    role: str = "admin"
    outputCurrency: str = "USD"
    type: str = "corporate"
    categories: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)  # tag levels: [{"name", "tags": [...]}]
    reportFields: list[dict[str, Any]] = field(default_factory=list)
    tax: dict[str, Any] = field(default_factory=dict)
    employees: list[dict[str, Any]] = field(default_factory=list)

    def category(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.categories if c.get("name") == name), None)

    def tag(self, name: str) -> dict[str, Any] | None:
        for level in self.tags:
            for tag in level.get("tags", []):
                if tag.get("name") == name:
                    return dict(tag)
        return None


@dataclass
class ExportFile:
    name: str
    content: bytes
    ready_at: float


@dataclass
class People:
    first: str
    last: str
    email: str
    account_id: int


class ExpensifyBackend:
    """One Expensify account (the partner credentials' user) with its policies and reports."""

    def __init__(self, *, now: Callable[[], float], switches: Mapping[str, Any]) -> None:
        self.now = now
        self.switches = switches
        self.policies: dict[str, Policy] = {}
        self.reports: dict[str, Report] = {}
        self.files: dict[str, ExportFile] = {}
        self.people: dict[str, People] = {}

    # ------------------------------------------------------------------ get

    def get_policy_list(self, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
        admin_only = str(settings.get("adminOnly", "false")).lower() == "true"
        return [
            {
                "id": p.id,
                "name": p.name,
                "owner": p.owner,
                "role": p.role,
                "outputCurrency": p.outputCurrency,
                "type": p.type,
            }
            for p in self.policies.values()
            if not admin_only or p.role == "admin"
        ]

    def get_policy(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        fields = settings.get("fields")
        if not isinstance(fields, list) or not fields:
            raise ValidationFailed("Please specify at least one field to retrieve in inputSettings.fields")
        unknown = [f for f in fields if f not in POLICY_FIELDS]
        if unknown:
            raise ValidationFailed(f"Unknown policy field(s): {', '.join(map(str, unknown))}")
        ids = settings.get("policyIDList")
        if not isinstance(ids, list) or not ids:
            raise ValidationFailed("inputSettings.policyIDList is required")
        found = {pid: self.policies[pid] for pid in ids if pid in self.policies}
        if not found:
            raise ExpensifyError(404, "Policy not found")
        info: dict[str, Any] = {}
        for pid, policy in found.items():
            if policy.role != "admin":
                raise ExpensifyError(403, "Invalid permissions: you must be a policy admin")
            info[pid] = {name: _copy(getattr(policy, name)) for name in fields}
        return info

    # ------------------------------------------------------------------ file (report exporter)

    def export_reports(self, job: Mapping[str, Any], template: str | None) -> str:
        """Run the report exporter; return the generated file name (the bare response body)."""
        settings = _object(job.get("inputSettings"), "inputSettings")
        if settings.get("type") != "combinedReportData":
            raise ValidationFailed("inputSettings.type must be combinedReportData")
        on_receive = job.get("onReceive")
        if not isinstance(on_receive, dict) or on_receive.get("immediateResponse") != ["returnRandomFileName"]:
            raise ValidationFailed('onReceive.immediateResponse must be ["returnRandomFileName"]')
        output = job.get("outputSettings") or {}
        if not isinstance(output, dict):
            raise ValidationFailed("outputSettings must be an object")
        extension = str(output.get("fileExtension", "csv"))
        if extension not in FILE_EXTENSIONS:
            raise ValidationFailed(f"Unsupported fileExtension {extension!r}")
        if not template:
            raise ValidationFailed("A template is required to generate the file")
        reports = self.select_reports(settings)
        data = {"reports": [self.template_model(r) for r in reports], "addHeader": True}
        try:
            content = freemarker.render(template, data)
        except freemarker.TemplateError as exc:
            raise ValidationFailed(f"Template error: {exc}") from None
        basename = str(output.get(str(self.switches.get("file_basename_key", "fileBasename")), "export"))
        name = f"{basename}{uuid.uuid4()}.{extension}"
        delay = float(self.switches.get("render_delay_seconds", 0.0))
        self.files[name] = ExportFile(name, content.encode("utf-8"), self.now() + delay)
        if str(job.get("test", "false")).lower() != "true":
            self._on_finish(job.get("onFinish"), reports)
        return name

    def select_reports(self, settings: Mapping[str, Any]) -> list[Report]:
        filters = settings.get("filters")
        if not isinstance(filters, dict) or not any(
            filters.get(k) for k in ("reportIDList", "startDate", "approvedAfter")
        ):
            raise ValidationFailed("filters must contain at least one of reportIDList, startDate or approvedAfter")
        states = _states(settings.get("reportState"))
        employee = settings.get("employeeEmail")
        if employee:
            states.discard("OPEN")  # the employee filter never returns OPEN reports
        start = _date(filters, "startDate")
        end = _date(filters, "endDate")
        approved_after = _date(filters, "approvedAfter")
        anchor = start or approved_after
        today = datetime.fromtimestamp(self.now(), tz=timezone.utc).date()
        if anchor is not None and end is None and (today - anchor) > timedelta(days=366):
            raise ValidationFailed("endDate is required when the start date is more than one year ago")
        if anchor is not None and end is not None and (end - anchor) > timedelta(days=366):
            raise ValidationFailed("The date range cannot be longer than one year")
        ids = _csv(filters.get("reportIDList"))
        policies = _csv(filters.get("policyIDList"))
        exported_label = filters.get("markedAsExported")
        limit = int(str(settings["limit"])) if settings.get("limit") not in (None, "") else None
        selected = []
        for report in sorted(self.reports.values(), key=lambda r: (r.created, r.reportID)):
            if report.state not in states:
                continue
            if ids is not None and report.reportID not in ids:
                continue
            if policies is not None and report.policyID not in policies:
                continue
            if employee and report.accountEmail.lower() != str(employee).lower():
                continue
            if exported_label and exported_label in report.labels:
                continue
            # startDate/endDate apply to the later of created and submitted, both ends inclusive.
            key = max(report.created, report.submitted)[:10]
            if start is not None and key < start.isoformat():
                continue
            if end is not None and key > end.isoformat():
                continue
            # approvedAfter keeps reports approved strictly after that date; unapproved ones pass.
            if approved_after is not None and report.approved and report.approved[:10] <= approved_after.isoformat():
                continue
            selected.append(report)
        return selected[:limit] if limit is not None else selected

    def _on_finish(self, actions: Any, reports: list[Report]) -> None:
        if actions is None:
            return
        if not isinstance(actions, list):
            raise ValidationFailed("onFinish must be a list of actions")
        for action in actions:
            if isinstance(action, dict) and action.get("actionName") == "markAsExported":
                label = str(action.get("label") or "")
                if not label:
                    raise ValidationFailed("markAsExported needs a label")
                for report in reports:
                    report.labels.add(label)

    def download(self, job: Mapping[str, Any]) -> bytes:
        if job.get("fileSystem", "integrationServer") != "integrationServer":
            raise ValidationFailed("fileSystem must be integrationServer for report exports")
        export = self.files.get(str(job.get("fileName", "")))
        if export is None:
            raise FileNotFound()
        if self.now() < export.ready_at:
            return b""  # still rendering: an empty body
        return export.content

    # ------------------------------------------------------------------ update

    def update_report_status(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        if settings.get("status") != "REIMBURSED":
            raise ValidationFailed("Only the REIMBURSED status is supported")
        filters = settings.get("filters")
        if not isinstance(filters, dict) or not (filters.get("reportIDList") or filters.get("startDate")):
            raise ValidationFailed("filters must contain reportIDList or startDate")
        ids = _csv(filters.get("reportIDList"))
        start = _date(filters, "startDate")
        updated, skipped = [], []
        for report in sorted(self.reports.values(), key=lambda r: r.reportID):
            if ids is not None and report.reportID not in ids:
                continue
            if start is not None and report.created[:10] < start.isoformat():
                continue
            if report.state != "APPROVED":
                skipped.append({"reportID": report.reportID, "reason": f"Report is {report.state}, not APPROVED"})
                continue
            report.state = "REIMBURSED"
            report.reimbursed = self.timestamp()
            updated.append(report.reportID)
        return {"reportIDs": updated, "skippedReports": skipped}

    # ------------------------------------------------------------------ the template data model

    def template_model(self, report: Report) -> dict[str, Any]:
        policy = self.policies.get(report.policyID)
        sign = -1 if self.switches.get("negative_expense_amounts") else 1
        style = self.switches.get("report_status_style", "display")
        submitter = self.people.get(report.accountEmail)
        manager = self.people.get(report.managerEmail)
        transactions = []
        for e in report.expenses:
            category = policy.category(e.category) if policy else None
            tag = policy.tag(e.tag) if policy and e.tag else None
            expense: dict[str, Any] = {
                "transactionID": e.transactionID,
                "reportID": report.reportID,
                "merchant": e.merchant,
                "modifiedMerchant": e.modified_merchant,
                "amount": sign * e.amount,
                "modifiedAmount": "" if e.modified_amount is None else sign * e.modified_amount,
                "convertedAmount": sign * e.effective_converted,
                "currency": e.currency,
                "currencyConversionRate": e.conversion_rate,
                "created": e.created,
                "modifiedCreated": e.modified_created,
                "inserted": e.inserted or f"{e.created} 12:00:00",
                "category": e.category,
                "categoryGlCode": (category or {}).get("glCode", ""),
                "categoryPayrollCode": (category or {}).get("payrollCode", ""),
                "tag": e.tag,
                "tagGlCode": (tag or {}).get("glCode", ""),
                "comment": e.comment,
                "billable": e.billable,
                "reimbursable": e.reimbursable,
                "mcc": e.mcc,
                "bank": "",
                "type": "cash" if e.reimbursable else "card",
                "taxAmount": 0,
                "taxName": "",
                "receiptID": "",
                "receiptFilename": "",
                # No receipt -> no receiptObject at all: templates need ``(expense.receiptObject.url)!""``.
                "receiptObject": {"url": e.receipt_url, "type": "image", "transactionID": e.transactionID}
                if e.receipt_url
                else None,
            }
            transactions.append(expense)
        return {
            "reportID": report.reportID,
            "reportName": report.reportName,
            "status": STATUS_DISPLAY[report.state] if style == "display" else report.state,
            "policyID": report.policyID,
            "policyName": policy.name if policy else "",
            "accountEmail": report.accountEmail,
            "accountID": report.accountID,
            "submitterUserID": submitter.email if submitter else report.accountEmail,
            "submitterPayrollID": "",
            "managerEmail": report.managerEmail,
            "managerUserID": report.managerEmail,
            "managerPayrollID": "",
            "manager": {
                "firstName": manager.first if manager else "",
                "lastName": manager.last if manager else "",
                "fullName": f"{manager.first} {manager.last}" if manager else "",
            },
            "approvers": [
                {
                    "email": report.managerEmail,
                    "date": report.approved,
                    "firstName": manager.first if manager else "",
                    "lastName": manager.last if manager else "",
                    "fullName": f"{manager.first} {manager.last}" if manager else "",
                    "employeeUserID": report.managerEmail,
                    "employeePayrollID": "",
                }
            ]
            if report.approved
            else [],
            "currency": report.currency,
            "total": sign * report.total(),
            "created": report.created,
            "submitted": report.submitted,
            "approved": report.approved,
            "reimbursed": report.reimbursed,
            "entryID": f"E{zlib.crc32(report.reportID.encode()) % 10**8:08d}" if report.reimbursed else "",
            "isACHReimbursed": bool(report.reimbursed),
            "transactionList": transactions,
        }

    def timestamp(self) -> str:
        return datetime.fromtimestamp(self.now(), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------- helpers


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationFailed(f"{name} is required")
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _states(raw: Any) -> set[str]:
    if raw in (None, ""):
        return set(REPORT_STATES)
    states = {s.strip().upper() for s in str(raw).split(",") if s.strip()}
    unknown = states - set(REPORT_STATES)
    if unknown:
        raise ValidationFailed(f"Unknown reportState value(s): {', '.join(sorted(unknown))}")
    return states


def _csv(raw: Any) -> set[str] | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, list):
        return {str(x).strip() for x in raw}
    return {part.strip() for part in str(raw).split(",") if part.strip()}


def _date(filters: Mapping[str, Any], name: str) -> date | None:
    raw = filters.get(name)
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        raise ValidationFailed(f"{name} must be a date formatted yyyy-mm-dd") from None
