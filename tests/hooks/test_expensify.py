"""ExpensifyHook against the running sandbox, plus requests-mock for wire edge cases."""

from __future__ import annotations

import functools
import json
import logging
from datetime import date
from urllib.parse import parse_qs

import pytest
import requests_mock

from airflow_provider_mlconnector.core.http import RetrySettings
from airflow_provider_mlconnector.exceptions import (
    AuthError,
    ConfigurationError,
    FatalApiError,
    RateLimitedError,
    RetryableApiError,
)
from airflow_provider_mlconnector.hooks.expensify import JOB_PATH, REPORTS_TEMPLATE, ExpensifyHook
from airflow_provider_mlconnector.sandbox.expensify import (
    PARTNER_USER_ID,
    PARTNER_USER_SECRET,
    POLICY_ID,
    ExpensifySandbox,
)

LABEL = "mlconnector-freshbooks"
OCT = date(2026, 10, 1)
MOCK_URL = f"https://integrations.expensify.test{JOB_PATH}"


SANDBOX_SYSTEMS = [ExpensifySandbox]


@pytest.fixture
def fake_time(fake_time):
    return functools.partial(fake_time, start=5000.0)


@pytest.fixture(autouse=True)
def _demo(sandbox, reset_demo):
    reset_demo(restore_switches=True, at_story_time=True)  # exports anchor on story dates; one-year rule
    sandbox.control.advance_clock(61)  # forget the previous test's calls in the rate windows


@pytest.fixture
def make_hook(sandbox, use_connection, state_store, fake_time):
    def make(*, fake=None, password=None, extra=None, retry=None, host=None):
        conn = sandbox.sandbox.systems["expensify"].connection(f"{sandbox.url}/expensify")
        if password is not None:
            conn["password"] = password
        if host is not None:
            conn["host"] = host
        conn["extra"].update(extra or {})
        use_connection("expensify_test", conn)
        fake = fake or fake_time(sandbox.control if host is None else None)
        return ExpensifyHook(
            "expensify_test",
            state_store=state_store,
            sleep=fake.sleep,
            clock=fake.clock,
            retry=retry or RetrySettings(max_attempts=4, base_wait=0.01, max_wait=60),
        )

    return make


def _calls(sandbox, status=None):
    return [r for r in sandbox.control.requests("expensify") if status is None or r["status"] == status]


def _mock_form(request) -> dict:
    form = parse_qs(request.text)
    return {"job": json.loads(form["requestJobDescription"][0]), "template": form.get("template", [None])[0]}


# ---------------------------------------------------------------- connection and credentials


def test_test_connection_names_the_policy(make_hook):
    ok, message = make_hook().test_connection()
    assert ok is True
    assert message == f"Expensify policy 'Brightside Marketing' ({POLICY_ID}), role admin"


def test_wrong_secret_fails_fast_without_leaking_it(sandbox, make_hook, caplog):
    caplog.set_level(logging.DEBUG)
    hook = make_hook(password="not-the-secret-9f8e7d")
    ok, message = hook.test_connection()
    assert ok is False
    assert "407" in message and "partnerUserID (login) and the partnerUserSecret (password)" in message
    assert "not-the-secret-9f8e7d" not in message
    assert len(_calls(sandbox)) == 1  # static credentials: no retry, no refresh
    with pytest.raises(AuthError) as raised:
        hook.get_categories()
    assert "not-the-secret-9f8e7d" not in str(raised.value) + (raised.value.body or "")
    assert "not-the-secret-9f8e7d" not in caplog.text


def test_unknown_policy_is_a_clear_failure(make_hook):
    ok, message = make_hook(extra={"policy_id": "0000000000000000"}).test_connection()
    assert ok is False and "0000000000000000" in message and "not visible" in message


def test_secret_never_in_logs_or_errors_even_when_the_vendor_fails(make_hook, caplog):
    caplog.set_level(logging.DEBUG)
    hook = make_hook(host="https://integrations.expensify.test", retry=RetrySettings(max_attempts=2, base_wait=0.01))
    with requests_mock.Mocker() as m:
        m.post(MOCK_URL, [{"status_code": 500, "text": "<html>oops</html>"}, {"status_code": 502, "text": "bad"}])
        with pytest.raises(RetryableApiError) as raised:
            hook.get_policy_list()
        sent = _mock_form(m.request_history[0])
    assert sent["job"]["credentials"] == {"partnerUserID": PARTNER_USER_ID, "partnerUserSecret": PARTNER_USER_SECRET}
    assert PARTNER_USER_SECRET not in caplog.text
    assert PARTNER_USER_SECRET not in str(raised.value) + (raised.value.body or "")
    assert PARTNER_USER_SECRET not in repr(hook.config)


# ---------------------------------------------------------------- exporting reports


def test_export_reads_approved_and_reimbursed_reports_via_two_jobs(sandbox, make_hook):
    hook = make_hook()
    reports = hook.export_reports(start_date=OCT)
    assert [r["reportID"] for r in reports] == [
        "R00B3nV8pL4C",
        "R00A7kQ2mX1B",
        "R00E6tR3eW2F",
        "R00F1qA9sD7G",
        "R00G4hJ6kL0H",
    ]
    assert len(_calls(sandbox)) == 2  # file, then download
    october = reports[1]
    assert october["status"] == "Approved" and october["total"] == 17057 and october["currency"] == "USD"
    staples = october["transactionList"][1]
    assert (staples["amount"], staples["modifiedAmount"], staples["convertedAmount"]) == (4217, 3917, 3917)
    assert staples["categoryGlCode"] == "6040" and staples["tag"] == "Internal" and staples["billable"] is False
    meta = reports[0]["transactionList"][1]
    assert meta["merchant"] == "META*ADS 8812" and meta["modifiedMerchant"] == "Meta Ads"
    gifts = reports[2]["transactionList"][0]
    assert gifts["category"] == "Client Gifts" and gifts["categoryGlCode"] == ""  # unmappable: no guess
    toronto = reports[4]["transactionList"][0]
    assert (toronto["currency"], toronto["amount"], toronto["convertedAmount"]) == ("CAD", 8450, 6160)
    assert toronto["currencyConversionRate"] == 0.729
    assert sandbox.control.state("expensify")["reports"]["R00A7kQ2mX1B"]["labels"] == []  # nothing labelled


def test_export_request_shape(make_hook):
    hook = make_hook(host="https://integrations.expensify.test")
    with requests_mock.Mocker() as m:
        m.post(MOCK_URL, [{"text": "mlconnector1234.json"}, {"text": "[]"}])
        assert hook.export_reports(start_date=OCT, end_date=date(2026, 11, 30), label=LABEL) == []
        first, second = (_mock_form(r) for r in m.request_history)
    job = first["job"]
    assert job["type"] == "file" and job["onReceive"] == {"immediateResponse": ["returnRandomFileName"]}
    assert job["inputSettings"] == {
        "type": "combinedReportData",
        "reportState": "APPROVED,REIMBURSED",
        "filters": {
            "startDate": "2026-10-01",
            "endDate": "2026-11-30",
            "policyIDList": POLICY_ID,
            "markedAsExported": LABEL,
        },
    }
    assert job["outputSettings"]["fileExtension"] == "json" and "onFinish" not in job
    assert first["template"] == REPORTS_TEMPLATE
    assert second["job"] == {
        "type": "download",
        "fileName": "mlconnector1234.json",
        "fileSystem": "integrationServer",
        "credentials": {"partnerUserID": PARTNER_USER_ID, "partnerUserSecret": PARTNER_USER_SECRET},
    }


def test_label_after_the_write_then_later_exports_skip_those_reports(sandbox, make_hook):
    hook = make_hook()
    first = hook.export_reports(start_date=OCT, label=LABEL)
    written = [r["reportID"] for r in first[:2]]  # pretend only two reached FreshBooks
    hook.mark_exported(written, LABEL)
    state = sandbox.control.state("expensify")["reports"]
    assert {rid for rid, r in state.items() if r["labels"]} == set(written)
    later = hook.export_reports(start_date=OCT, label=LABEL)
    assert [r["reportID"] for r in later] == [r["reportID"] for r in first[2:]]
    hook.mark_exported([], LABEL)  # nothing to do, no call
    assert len(_calls(sandbox)) == 5


def test_mark_exported_in_the_export_job(sandbox, make_hook):
    hook = make_hook()
    reports = hook.export_reports(start_date=OCT, label=LABEL, mark_exported=True)
    assert len(reports) == 5 and len(_calls(sandbox)) == 2  # labelled by the job's onFinish
    labels = {rid: r["labels"] for rid, r in sandbox.control.state("expensify")["reports"].items()}
    assert labels["R00A7kQ2mX1B"] == [LABEL] and labels["R00C9wE1rT6D"] == []
    assert hook.export_reports(start_date=OCT, label=LABEL) == []
    with pytest.raises(ConfigurationError):
        hook.export_reports(start_date=OCT, mark_exported=True)


def test_test_report_prefix_reads_and_labels_only_test_reports(sandbox, make_hook):
    hook = make_hook(extra={"test_report_prefix": "TEST - "})
    reports = hook.export_reports(start_date=OCT, label=LABEL, mark_exported=True)
    assert [r["reportName"] for r in reports] == ["TEST - Sandbox Sync Check"]
    labels = {rid: r["labels"] for rid, r in sandbox.control.state("expensify")["reports"].items()}
    assert [rid for rid, lbl in labels.items() if lbl] == ["R00F1qA9sD7G"]  # real reports untouched


def test_export_needs_an_anchor(make_hook):
    with pytest.raises(ConfigurationError, match="start_date"):
        make_hook().export_reports()


def test_export_by_report_ids_and_states(make_hook):
    hook = make_hook()
    picked = hook.export_reports(report_ids=["R00C9wE1rT6D", "R00G4hJ6kL0H"], states=("SUBMITTED", "APPROVED"))
    assert [r["status"] for r in picked] == ["Processing", "Approved"]


def test_not_rendered_yet_download_is_polled(sandbox, make_hook, fake_time):
    sandbox.control.switch("expensify", "render_delay_seconds", 5)
    fake = fake_time(sandbox.control)
    hook = make_hook(fake=fake)
    assert len(hook.export_reports(approved_after=date(2026, 11, 10))) == 2
    assert len(_calls(sandbox)) >= 3 and sum(fake.slept) >= 5


def test_file_not_found_is_fatal(make_hook):
    hook = make_hook(host="https://integrations.expensify.test")
    with requests_mock.Mocker() as m:
        m.post(MOCK_URL, [{"text": "export42.json"}, {"json": {"responseMessage": "File not found"}}])
        with pytest.raises(FatalApiError, match="File not found"):
            hook.export_reports(start_date=OCT)
        assert len(m.request_history) == 2


# ---------------------------------------------------------------- body codes and limits


def test_body_response_code_wins_over_http_200(make_hook):
    hook = make_hook(host="https://integrations.expensify.test")
    with requests_mock.Mocker() as m:
        m.post(MOCK_URL, json={"responseMessage": "Policy not found", "responseCode": 404})
        with pytest.raises(FatalApiError) as raised:
            hook.get_categories()
        assert raised.value.code == "404" and raised.value.status == 200 and len(m.request_history) == 1
        m.post(
            MOCK_URL,
            [
                {"json": {"responseMessage": "Internal error", "responseCode": 500}},
                {"json": {"responseCode": 200, "policyList": [{"id": POLICY_ID, "name": "Brightside Marketing"}]}},
            ],
        )
        assert hook.get_policy_list()[0]["name"] == "Brightside Marketing"  # body 500 retried


def test_rate_budget_keeps_every_call_under_the_limits(sandbox, make_hook, fake_time):
    fake = fake_time(sandbox.control)
    hook = make_hook(fake=fake)
    for _ in range(22):
        hook.get_policy_list()
    assert _calls(sandbox, status=429) == []
    assert len(_calls(sandbox)) == 22
    assert sum(fake.slept) >= 60  # 22 calls cannot fit in one minute


def test_server_429_is_absorbed(sandbox, make_hook, fake_time):
    fake = fake_time(sandbox.control)
    hook = make_hook(fake=fake)
    sandbox.control.fault("expensify", "429")
    assert hook.get_policy_list()[0]["id"] == POLICY_ID
    assert fake.slept and 12 <= fake.slept[0] <= 13  # Expensify sends no Retry-After: the pause constant


def test_in_body_429_under_http_200_is_a_rate_limit(make_hook, fake_time):
    fake = fake_time()
    hook = make_hook(fake=fake, host="https://integrations.expensify.test", retry=RetrySettings(max_attempts=2))
    with requests_mock.Mocker() as m:
        m.post(MOCK_URL, json={"responseMessage": "You have been rate-limited.", "responseCode": 429})
        with pytest.raises(RateLimitedError):
            hook.get_policy_list()
        assert len(m.request_history) == 2


# ---------------------------------------------------------------- policy data and write-back


def test_categories_with_gl_codes_and_flattened_tags(make_hook):
    hook = make_hook()
    categories = {c["name"]: c for c in hook.get_categories()}
    assert categories["Contract Labor"]["glCode"] == "6010"
    assert categories["Client Gifts"]["glCode"] == ""
    assert categories["Entertainment (retired)"]["enabled"] is False
    tags = hook.get_tags()
    assert {(t["level"], t["name"]) for t in tags} >= {("Client", "Harbor Health"), ("Project", "Internal")}
    assert next(t for t in tags if t["name"] == "Harbor Rebrand")["glCode"] == "P-102"


def test_flat_tag_lists_are_accepted(make_hook):
    hook = make_hook(host="https://integrations.expensify.test")
    with requests_mock.Mocker() as m:
        m.post(
            MOCK_URL, json={"responseCode": 200, "policyInfo": {POLICY_ID: {"tags": [{"name": "Solo", "glCode": "9"}]}}}
        )
        assert hook.get_tags() == [{"name": "Solo", "glCode": "9", "level": None}]


def test_mark_reimbursed(sandbox, make_hook):
    outcome = make_hook().mark_reimbursed(["R00A7kQ2mX1B", "R00C9wE1rT6D"])
    assert outcome["reportIDs"] == ["R00A7kQ2mX1B"]
    assert outcome["skippedReports"][0]["reportID"] == "R00C9wE1rT6D"
    assert sandbox.control.state("expensify")["reports"]["R00A7kQ2mX1B"]["state"] == "REIMBURSED"
