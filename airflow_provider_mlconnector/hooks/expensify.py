"""Expensify hook: the Integration Server's single job endpoint, read-mostly.

Every call is ``POST /Integration-Server/ExpensifyIntegrations`` with a form field
``requestJobDescription`` (JSON) that carries the partner credentials inline; that description is
never logged and never put in an exception. Failures come back as ``responseCode`` inside an HTTP
200 body, so :func:`expensify_body_error` runs on every 2xx answer.

Approved (and reimbursed) reports are read with the two-step report exporter: a ``file`` job
renders :data:`REPORTS_TEMPLATE` (the provider's own FreeMarker template, emitting JSON) and answers
with a file name; a ``download`` job fetches the file. Reports already labelled with the export
label are excluded by the ``markedAsExported`` filter.

Labelling is deliberately a separate step (:meth:`ExpensifyHook.mark_exported`): labelling in the
export job itself (``onFinish``) would, after a crash before the FreshBooks write, hide those
reports from every later export. The DAG exports with ``mark_exported=False``, writes, and labels
only what was written.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, ClassVar

import requests

from airflow_provider_mlconnector.core.http import ApiClient, ErrorInfo, RetrySettings
from airflow_provider_mlconnector.core.secrets import mask
from airflow_provider_mlconnector.core.throttle import SlidingWindowBudget
from airflow_provider_mlconnector.exceptions import ConfigurationError, FatalApiError, RetryableApiError
from airflow_provider_mlconnector.hooks.base import MLConnectorHook

log = logging.getLogger(__name__)

JOB_PATH = "/Integration-Server/ExpensifyIntegrations"
#: Report states the sync exports: approved, and approved-then-reimbursed.
EXPORT_STATES: tuple[str, ...] = ("APPROVED", "REIMBURSED")
#: Expensify's documented limits: 5 requests per 10 s and 20 per 60 s. Each window is widened a
#: little so that network jitter between our clock and theirs cannot push a call over.
RATE_WINDOWS: tuple[tuple[int, float], ...] = ((5, 10.5), (20, 61.0))
#: Wait after a 429 without Retry-After (Expensify rarely sends one): the short window, plus slack.
RATE_LIMIT_PAUSE = 12.0
#: The label reports get once written to the target, unless the connection's ``export_label`` names one.
DEFAULT_EXPORT_LABEL = "ml-connector"
#: responseCodes meaning "these partner credentials are not accepted".
AUTH_CODES = frozenset({401, 407})

#: The provider's export template: one JSON array of reports, each with its expenses. Optional
#: fields get ``!`` defaults; required ones (ids, amounts) fail the render loudly when absent.
#: Amounts stay integer cents; ``modifiedAmount``/``convertedAmount`` are null when Expensify has
#: none. Numbers go through ``?c`` (no locale grouping), strings through ``?json_string``.
REPORTS_TEMPLATE = r"""<#-- ml-connector: approved expense reports as JSON -->
[<#list reports as report>
{"reportID":"${report.reportID?json_string}",
"reportName":"${report.reportName?json_string}",
"status":"${((report.status)!"")?json_string}",
"policyID":"${((report.policyID)!"")?json_string}",
"policyName":"${((report.policyName)!"")?json_string}",
"accountEmail":"${((report.accountEmail)!"")?json_string}",
"managerEmail":"${((report.managerEmail)!"")?json_string}",
"currency":"${report.currency?json_string}",
"total":${report.total?c},
"created":"${((report.created)!"")?json_string}",
"submitted":"${((report.submitted)!"")?json_string}",
"approved":"${((report.approved)!"")?json_string}",
"reimbursed":"${((report.reimbursed)!"")?json_string}",
"transactionList":[<#list report.transactionList as expense>
{"transactionID":"${expense.transactionID?json_string}",
"merchant":"${((expense.merchant)!"")?json_string}",
"modifiedMerchant":"${((expense.modifiedMerchant)!"")?json_string}",
"amount":${expense.amount?c},
"modifiedAmount":<#if expense.modifiedAmount?has_content>${expense.modifiedAmount?c}<#else>null</#if>,
"convertedAmount":<#if expense.convertedAmount?has_content>${expense.convertedAmount?c}<#else>null</#if>,
"currency":"${expense.currency?json_string}",
"currencyConversionRate":
<#if expense.currencyConversionRate?has_content>${expense.currencyConversionRate?c}<#else>null</#if>,
"created":"${expense.created?json_string}",
"modifiedCreated":"${((expense.modifiedCreated)!"")?json_string}",
"category":"${((expense.category)!"")?json_string}",
"categoryGlCode":"${((expense.categoryGlCode)!"")?json_string}",
"tag":"${((expense.tag)!"")?json_string}",
"tagGlCode":"${((expense.tagGlCode)!"")?json_string}",
"comment":"${((expense.comment)!"")?json_string}",
"billable":${((expense.billable)!false)?c},
"reimbursable":${((expense.reimbursable)!true)?c},
"receiptURL":"${((expense.receiptObject.url)!"")?json_string}"}<#sep>,</#sep></#list>]}<#sep>,</#sep>
</#list>]
"""

#: Template of the labelling job: its output is never downloaded, only its onFinish matters.
MARK_TEMPLATE = "${reports?size?c}"


@dataclass(frozen=True)
class ExpensifyConfig:
    """What the connection says. ``partner_user_secret`` is kept out of ``repr``."""

    base_url: str
    partner_user_id: str
    partner_user_secret: str = field(repr=False)
    policy_id: str | None = None
    test_report_prefix: str | None = None
    export_label: str = DEFAULT_EXPORT_LABEL


class ExpensifyHook(MLConnectorHook):
    """Expensify Integration Server hook (connection type ``expensify``).

    :param conn_id: Airflow connection id (login = partnerUserID, password = partnerUserSecret,
        extras ``policy_id``, optional ``test_report_prefix`` and ``export_label``).
    :param state_store: the state store (unused by Expensify's static credentials; accepted for symmetry).
    :param retry: retry policy of every job.
    :param sleep: how to wait (tests inject a fake that advances a fake clock).
    :param clock: monotonic clock of the client-side rate budget.
    :param download_polls: how many times to fetch an export file that is not rendered yet.
    """

    conn_name_attr: ClassVar[str] = "expensify_conn_id"
    default_conn_name: ClassVar[str] = "expensify_default"
    conn_type: ClassVar[str] = "expensify"
    hook_name: ClassVar[str] = "Expensify"
    default_host: ClassVar[str] = "https://integrations.expensify.com"
    default_retry: ClassVar[RetrySettings] = RetrySettings(max_attempts=6, base_wait=2.0, max_wait=90.0)

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        download_polls: int = 6,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id, **kwargs)
        self._clock = clock
        self.download_polls = download_polls

    # ------------------------------------------------------------------ configuration and client

    @cached_property
    def config(self) -> ExpensifyConfig:
        conn = self.connection
        secret = self.require(conn.password, "password (partnerUserSecret)")
        mask(secret)
        extras = {name: self.extra(name) for name in ("policy_id", "test_report_prefix", "export_label")}
        prefix = extras["test_report_prefix"]
        return ExpensifyConfig(
            base_url=self.host_url(),
            partner_user_id=self.require(conn.login, "login (partnerUserID)"),
            partner_user_secret=secret,
            policy_id=str(extras["policy_id"]) if extras["policy_id"] else None,
            test_report_prefix=str(prefix) if prefix else None,
            export_label=str(extras["export_label"] or DEFAULT_EXPORT_LABEL),
        )

    @property
    def tenant(self) -> str:
        """The policy (workspace) whose reports this connection reads; the partner user without one."""
        return self.config.policy_id or self.config.partner_user_id

    def build_client(self) -> ApiClient:
        return ApiClient(
            system="expensify",
            base_url=self.config.base_url,
            error_parser=expensify_error_parser,
            success_body_error=expensify_body_error,
            throttle=SlidingWindowBudget(RATE_WINDOWS, clock=self._clock, sleep=self._sleep),
            retry=self._retry,
            sleep=self._sleep,
        )

    def _job(self, job: Mapping[str, Any], *, template: str | None = None) -> requests.Response:
        """Send one job. Every job the provider sends is safe to repeat (reads; labelling is
        idempotent), so retries are allowed. The description carries the secret: never log it."""
        cfg = self.config
        description = {
            **job,
            "credentials": {"partnerUserID": cfg.partner_user_id, "partnerUserSecret": cfg.partner_user_secret},
        }
        form = {"requestJobDescription": json.dumps(description)}
        if template is not None:
            form["template"] = template
        settings = job.get("inputSettings")
        log.debug("expensify %s job (%s)", job.get("type"), (settings or {}).get("type", "-"))
        return self.client.request("POST", JOB_PATH, data=form, idempotent=True, write=False)

    def _json_job(self, job: Mapping[str, Any]) -> dict[str, Any]:
        body = _json_object(self._job(job))
        return body

    # ------------------------------------------------------------------ policies

    def get_policy_list(self, *, admin_only: bool = True) -> list[dict[str, Any]]:
        """The policies (workspaces) these credentials can see.

        :param admin_only: only policies where the credentials' user is an admin.
        """
        body = self._json_job({"type": "get", "inputSettings": {"type": "policyList", "adminOnly": admin_only}})
        policies = body.get("policyList") or []
        return [p for p in policies if isinstance(p, dict)]

    def get_policy(
        self, policy_id: str | None = None, *, fields: Sequence[str] = ("categories", "tags")
    ) -> dict[str, Any]:
        """One policy's details (``categories``, ``tags``, ``reportFields``, ``tax``, ``employees``).

        :param policy_id: defaults to the connection's ``policy_id``.
        :param fields: which parts to fetch; at least one.
        """
        pid = self._policy_id(policy_id)
        body = self._json_job(
            {"type": "get", "inputSettings": {"type": "policy", "fields": list(fields), "policyIDList": [pid]}}
        )
        info = (body.get("policyInfo") or {}).get(pid)
        if not isinstance(info, dict):
            raise FatalApiError(f"policy {pid} is missing from Expensify's answer", system="expensify")
        return info

    def get_categories(self, policy_id: str | None = None) -> list[dict[str, Any]]:
        """Expense categories with their GL codes (``glCode`` is ``""`` when none is set).

        :param policy_id: defaults to the connection's ``policy_id``.
        """
        categories = self.get_policy(policy_id, fields=("categories",)).get("categories") or []
        return [c for c in categories if isinstance(c, dict)]

    def get_tags(self, policy_id: str | None = None) -> list[dict[str, Any]]:
        """Tags as a flat list; each carries ``level`` (its tag list's name, or ``None``).

        Expensify answers either a flat tag list or a list of levels ``{"name", "tags": [...]}``.

        :param policy_id: defaults to the connection's ``policy_id``.
        """
        flat: list[dict[str, Any]] = []
        for item in self.get_policy(policy_id, fields=("tags",)).get("tags") or []:
            if isinstance(item, dict) and isinstance(item.get("tags"), list):
                flat.extend({**tag, "level": item.get("name")} for tag in item["tags"] if isinstance(tag, dict))
            elif isinstance(item, dict):
                flat.append({**item, "level": None})
        return flat

    # ------------------------------------------------------------------ reports

    def export_reports(
        self,
        *,
        start_date: date | None = None,
        end_date: date | None = None,
        approved_after: date | None = None,
        report_ids: Sequence[str] | None = None,
        states: Sequence[str] = EXPORT_STATES,
        label: str | None = None,
        mark_exported: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Export reports as JSON dicts (see :data:`REPORTS_TEMPLATE` for the fields).

        At least one of ``start_date``, ``approved_after`` or ``report_ids`` is required (Expensify
        refuses an export without an anchor). Only the connection's policy is read, and only
        reports whose name starts with ``test_report_prefix`` when that extra is set.

        :param start_date: reports created/submitted on or after this date.
        :param end_date: ... and on or before this date (required for anchors over a year old).
        :param approved_after: reports approved after this date.
        :param report_ids: exactly these reports.
        :param states: report states to include (default approved and reimbursed).
        :param label: skip reports already marked exported with this label.
        :param mark_exported: label the exported reports at once. Leave False in sync DAGs and
            call :meth:`mark_exported` after the target write succeeded.
        :param limit: at most this many reports.
        """
        if start_date is None and approved_after is None and not report_ids:
            raise ConfigurationError("export_reports needs start_date, approved_after or report_ids")
        if mark_exported and not label:
            raise ConfigurationError("mark_exported=True needs a label")
        filters: dict[str, str] = {}
        if start_date is not None:
            filters["startDate"] = start_date.isoformat()
        if end_date is not None:
            filters["endDate"] = end_date.isoformat()
        if approved_after is not None:
            filters["approvedAfter"] = approved_after.isoformat()
        if report_ids:
            filters["reportIDList"] = ",".join(report_ids)
        if self.config.policy_id:
            filters["policyIDList"] = self.config.policy_id
        if label:
            filters["markedAsExported"] = label
        prefix = self.config.test_report_prefix
        # With a test prefix, the server would label reports this hook then drops: label afterwards.
        label_in_job = mark_exported and not prefix
        settings: dict[str, Any] = {"type": "combinedReportData", "reportState": ",".join(states), "filters": filters}
        if limit is not None:
            settings["limit"] = str(limit)
        job: dict[str, Any] = {
            "type": "file",
            "onReceive": {"immediateResponse": ["returnRandomFileName"]},
            "inputSettings": settings,
            "outputSettings": {"fileExtension": "json", "fileBasename": "mlconnector"},
        }
        if label_in_job:
            job["onFinish"] = [{"actionName": "markAsExported", "label": label}]
        file_name = self._job(job, template=REPORTS_TEMPLATE).text.strip()
        reports = _parse_export(self._download(file_name), file_name)
        if prefix:
            reports = [r for r in reports if str(r.get("reportName", "")).startswith(prefix)]
        if mark_exported and not label_in_job and reports and label:
            self.mark_exported([str(r["reportID"]) for r in reports], label)
        return reports

    def iter_reports(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """:meth:`export_reports` as an iterator (one export file is read in full anyway)."""
        yield from self.export_reports(**kwargs)

    def mark_exported(self, report_ids: Sequence[str], label: str) -> None:
        """Label reports as exported (irreversible through the API), so later exports skip them.

        Runs a second ``file`` job limited to ``report_ids`` whose ``onFinish`` applies the label.

        :param report_ids: the reports that were written to the target.
        :param label: the export label (the same one passed to :meth:`export_reports`).
        """
        if not report_ids:
            return
        if not label:
            raise ConfigurationError("mark_exported needs a label")
        self._job(
            {
                "type": "file",
                "onReceive": {"immediateResponse": ["returnRandomFileName"]},
                "inputSettings": {
                    "type": "combinedReportData",
                    "filters": {"reportIDList": ",".join(report_ids)},
                },
                "outputSettings": {"fileExtension": "txt"},
                "onFinish": [{"actionName": "markAsExported", "label": label}],
            },
            template=MARK_TEMPLATE,
        )

    def mark_reimbursed(self, report_ids: Sequence[str]) -> dict[str, Any]:
        """Set approved reports to REIMBURSED (optional write-back); others come back as skipped.

        :param report_ids: the reports to mark.
        :return: ``{"reportIDs": [...], "skippedReports": [{"reportID", "reason"}], ...}``.
        """
        return self._json_job(
            {
                "type": "update",
                "inputSettings": {
                    "type": "reportStatus",
                    "status": "REIMBURSED",
                    "filters": {"reportIDList": ",".join(report_ids)},
                },
            }
        )

    def _download(self, file_name: str) -> bytes:
        """Fetch an export file; an empty body means "not rendered yet", so wait and ask again."""
        if not file_name or "{" in file_name or "\n" in file_name:
            raise FatalApiError("the report exporter did not return a file name", system="expensify")
        for attempt in range(self.download_polls):
            content = self._job({"type": "download", "fileName": file_name, "fileSystem": "integrationServer"}).content
            if content.strip():
                return content
            self._sleep(min(2.0**attempt, 10.0))
        raise RetryableApiError(
            f"export file {file_name} was still not rendered after {self.download_polls} downloads",
            system="expensify",
        )

    def _policy_id(self, policy_id: str | None) -> str:
        pid = policy_id or self.config.policy_id
        if not pid:
            raise ConfigurationError(f"connection '{self.conn_id}' (expensify) has no policy_id extra")
        return str(pid)

    # ------------------------------------------------------------------ Airflow

    def test_connection(self) -> tuple[bool, str]:
        """Authenticate and name the configured policy (or count the visible ones)."""

        def probe() -> str:
            policies = self.get_policy_list(admin_only=False)
            pid = self.config.policy_id
            if not pid:
                return f"Expensify reached: {len(policies)} policies visible to {self.config.partner_user_id}"
            match = next((p for p in policies if p.get("id") == pid), None)
            if match is None:
                raise ConfigurationError(f"Expensify policy {pid} is not visible to {self.config.partner_user_id}")
            return f"Expensify policy '{match.get('name')}' ({pid}), role {match.get('role')}"

        return self.connection_check(probe)


# --------------------------------------------------------------------------- wire helpers


def _response_code(body: Mapping[str, Any]) -> int | None:
    raw = body.get("responseCode")
    try:
        return int(float(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _classify(code: int, message: str) -> ErrorInfo:
    text = message or f"responseCode {code}"
    if code in AUTH_CODES or (code == 500 and "authenticate" in text.lower()):
        return ErrorInfo(
            message=f"Expensify rejected the partner credentials ({text}); "
            "check the partnerUserID (login) and the partnerUserSecret (password)",
            code=str(code),
            kind="auth_fatal",
        )
    if code == 403:
        return ErrorInfo(
            message=f"Expensify permission denied ({text}): the user must be a policy admin",
            code="403",
            kind="auth_fatal",
        )
    if code == 429:
        return ErrorInfo(message=text, code="429", kind="rate_limited", retry_after=RATE_LIMIT_PAUSE)
    if code >= 500:
        return ErrorInfo(message=text, code=str(code), kind="retryable")
    # 404 policy not found, 410 validation: our request is wrong; retrying cannot help.
    return ErrorInfo(message=text, code=str(code), kind="fatal")


def expensify_body_error(response: requests.Response) -> ErrorInfo | None:
    """The failure hidden in a 2xx body: ``responseCode`` outside 200/207, or a bare
    ``responseMessage`` ("File not found"). File names and file contents are not envelopes."""
    if not response.content.lstrip().startswith(b"{"):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = _response_code(body)
    message = str(body.get("responseMessage") or "")
    if code is None:
        return ErrorInfo(message=message, kind="fatal") if "responseMessage" in body else None
    if code in (200, 207):
        return None
    return _classify(code, message)


def expensify_error_parser(response: requests.Response) -> ErrorInfo:
    """Non-2xx answers: the body's ``responseCode`` when there is one, else the HTTP status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and _response_code(body) is not None:
        info = _classify(_response_code(body) or response.status_code, str(body.get("responseMessage") or ""))
        if info.kind == "rate_limited" and response.headers.get("Retry-After"):
            return ErrorInfo(message=info.message, code=info.code, kind=info.kind)  # the header wins
        return info
    if response.status_code == 429:
        retry_after = None if response.headers.get("Retry-After") else RATE_LIMIT_PAUSE
        return ErrorInfo(message="rate limited", code="429", kind="rate_limited", retry_after=retry_after)
    return ErrorInfo(message=response.reason or f"HTTP {response.status_code}")


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise FatalApiError("expected a JSON envelope from Expensify", system="expensify") from None
    if not isinstance(body, dict):
        raise FatalApiError("expected a JSON object from Expensify", system="expensify")
    return body


def _parse_export(content: bytes, file_name: str) -> list[dict[str, Any]]:
    try:
        reports = json.loads(content)
    except ValueError:
        raise FatalApiError(
            f"export file {file_name} is not the JSON the provider's template emits", system="expensify"
        ) from None
    if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
        raise FatalApiError(f"export file {file_name} is not a JSON list of reports", system="expensify")
    return reports
