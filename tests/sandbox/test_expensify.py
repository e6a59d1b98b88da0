"""The Expensify emulator over real HTTP: the job envelope, the exporter, filters, limits."""

from __future__ import annotations

import json
import re

import pytest
import requests

from airflow_provider_mlconnector.sandbox.expensify import (
    JOB_PATH,
    PARTNER_USER_ID,
    PARTNER_USER_SECRET,
    POLICY_ID,
    ExpensifySandbox,
)
from airflow_provider_mlconnector.sandbox.expensify.freemarker import TemplateError, render

CREDENTIALS = {"partnerUserID": PARTNER_USER_ID, "partnerUserSecret": PARTNER_USER_SECRET}
IDS_TEMPLATE = "<#list reports as report>${report.reportID}<#sep>,</#sep></#list>"


SANDBOX_SYSTEMS = [ExpensifySandbox]


@pytest.fixture(autouse=True)
def _demo(sandbox, reset_demo):
    reset_demo(restore_switches=True, at_story_time=True)  # exports anchor on story dates; one-year rule
    # Most tests are about behaviour, not limits: lift them (the limit tests restore them).
    sandbox.sandbox.systems["expensify"].switches["rate_limits"] = [[1000, 10], [1000, 60]]


class Client:
    def __init__(self, url):
        self.url = f"{url}/expensify{JOB_PATH}"

    def post(self, job, template=None, credentials=CREDENTIALS):
        form = {"requestJobDescription": json.dumps({**job, "credentials": credentials})}
        if template is not None:
            form["template"] = template
        return requests.post(self.url, data=form, timeout=10)

    def export(self, filters, template=IDS_TEMPLATE, **extra):
        settings = {"type": "combinedReportData", "filters": filters}
        settings.update(extra.pop("settings", {}))
        job = {
            "type": "file",
            "onReceive": {"immediateResponse": ["returnRandomFileName"]},
            "inputSettings": settings,
            "outputSettings": {"fileExtension": "txt"},
            **extra,
        }
        return self.post(job, template)

    def download(self, name):
        return self.post({"type": "download", "fileName": name, "fileSystem": "integrationServer"})

    def export_text(self, filters, template=IDS_TEMPLATE, **extra):
        response = self.export(filters, template, **extra)
        assert response.status_code == 200
        assert not response.text.startswith("{"), response.text
        return self.download(response.text).text


@pytest.fixture
def client(sandbox):
    return Client(sandbox.url)


# ---------------------------------------------------------------- envelope and credentials


def test_bad_credentials_answer_a_body_code_under_http_200(sandbox, client):
    bad = client.post(
        {"type": "get", "inputSettings": {"type": "policyList"}},
        credentials={**CREDENTIALS, "partnerUserSecret": "nope"},
    )
    assert bad.status_code == 200
    assert bad.json() == {"responseMessage": "Authentication error", "responseCode": 407}
    sandbox.control.switch("expensify", "bad_credentials_code", 401)
    assert client.post({"type": "get"}, credentials={}).json()["responseCode"] == 401


def test_malformed_requests_are_410(client):
    assert requests.post(client.url, data={}, timeout=5).json()["responseCode"] == 410
    assert requests.post(client.url, data={"requestJobDescription": "{nope"}, timeout=5).json()["responseCode"] == 410
    assert requests.post(client.url, json={"type": "get"}, timeout=5).json()["responseCode"] == 410
    assert client.post({"type": "teleport"}).json()["responseCode"] == 410


def test_expired_auth_fault_revokes_the_partner_secret(sandbox, client):
    sandbox.control.fault("expensify", "expired_auth")
    assert client.post({"type": "get", "inputSettings": {"type": "policyList"}}).json()["responseCode"] == 407


# ---------------------------------------------------------------- the report exporter


def test_export_returns_a_bare_file_name_and_download_the_rendered_file(client):
    response = client.export({"startDate": "2026-10-01"}, settings={"reportState": "APPROVED,REIMBURSED"})
    assert re.fullmatch(r"export[0-9a-f-]{36}\.txt", response.text)
    assert client.download(response.text).text == "R00B3nV8pL4C,R00A7kQ2mX1B,R00E6tR3eW2F,R00F1qA9sD7G,R00G4hJ6kL0H"


def test_download_of_an_unknown_file(client):
    missing = client.download("export00000000-0000-0000-0000-000000000000.json")
    assert missing.status_code == 200 and missing.json() == {"responseMessage": "File not found"}
    wrong_fs = client.post({"type": "download", "fileName": "x.json", "fileSystem": "reconciliation"})
    assert wrong_fs.json()["responseCode"] == 410


def test_not_rendered_yet_is_an_empty_body(sandbox, client):
    sandbox.control.switch("expensify", "render_delay_seconds", 30)
    name = client.export({"reportIDList": "R00A7kQ2mX1B"}).text
    early = client.download(name)
    assert early.status_code == 200 and early.content == b""
    sandbox.control.advance_clock(31)
    assert client.download(name).text == "R00A7kQ2mX1B"


def test_states_anchor_and_date_filters(client):
    def ids(filters, states=None, **settings):
        if states:
            settings["reportState"] = states
        text = client.export_text(filters, settings=settings)
        return text.split(",") if text else []

    no_anchor = client.export({"endDate": "2026-12-01", "policyIDList": POLICY_ID})
    assert no_anchor.json() == {
        "responseMessage": "filters must contain at least one of reportIDList, startDate or approvedAfter",
        "responseCode": 410,
    }
    everything = ids({"startDate": "2026-10-01"})
    assert set(everything) == {
        "R00A7kQ2mX1B",
        "R00B3nV8pL4C",
        "R00C9wE1rT6D",
        "R00D2yU5iO8E",
        "R00E6tR3eW2F",
        "R00F1qA9sD7G",
        "R00G4hJ6kL0H",
    }
    assert ids({"startDate": "2026-10-01"}, "SUBMITTED,OPEN") == ["R00C9wE1rT6D", "R00D2yU5iO8E"]
    # the later of created/submitted decides, both ends inclusive
    assert ids({"startDate": "2026-10-30", "endDate": "2026-11-07"}, "APPROVED") == ["R00A7kQ2mX1B", "R00E6tR3eW2F"]
    assert ids({"approvedAfter": "2026-11-10"}, "APPROVED,REIMBURSED") == ["R00F1qA9sD7G", "R00G4hJ6kL0H"]
    assert ids({"reportIDList": "R00G4hJ6kL0H,R00B3nV8pL4C"}) == ["R00B3nV8pL4C", "R00G4hJ6kL0H"]
    assert ids({"startDate": "2026-10-01", "policyIDList": "0000000000000000"}) == []
    assert ids({"startDate": "2026-10-01"}, "APPROVED", limit="2") == ["R00A7kQ2mX1B", "R00E6tR3eW2F"]
    assert (
        ids({"startDate": "2026-10-01"}, "APPROVED,OPEN", employeeEmail="harper.nguyen@brightside-marketing.example")
        == []
    )
    assert client.export({"startDate": "2025-01-01"}).json()["responseCode"] == 410  # >1 year old, no endDate
    assert client.export({"startDate": "2025-01-01", "endDate": "2026-03-01"}).json()["responseCode"] == 410
    assert client.export({"startDate": "2026-10-01"}, settings={"reportState": "PAID"}).json()["responseCode"] == 410


def test_marked_as_exported_filter_and_on_finish_label(sandbox, client):
    label = "mlconnector-freshbooks"
    approved = {"reportState": "APPROVED"}
    on_finish = [{"actionName": "markAsExported", "label": label}]
    test_run = client.export_text({"reportIDList": "R00A7kQ2mX1B"}, onFinish=on_finish, test="true")
    assert test_run == "R00A7kQ2mX1B"
    assert sandbox.control.state("expensify")["reports"]["R00A7kQ2mX1B"]["labels"] == []  # test skips onFinish
    client.export_text({"reportIDList": "R00A7kQ2mX1B,R00E6tR3eW2F"}, onFinish=on_finish)
    state = sandbox.control.state("expensify")["reports"]
    assert state["R00A7kQ2mX1B"]["labels"] == [label] and state["R00E6tR3eW2F"]["labels"] == [label]
    remaining = client.export_text({"startDate": "2026-10-01", "markedAsExported": label}, settings=approved)
    assert remaining.split(",") == ["R00F1qA9sD7G", "R00G4hJ6kL0H"]
    other_label = client.export_text({"startDate": "2026-10-01", "markedAsExported": "another"}, settings=approved)
    assert len(other_label.split(",")) == 4


JSON_TEMPLATE = """[<#list reports as report>{"id":"${report.reportID?json_string}",
"name":"${report.reportName?json_string}","status":"${report.status}","total":${report.total?c},"approved":"${report.approved}",
"expenses":[<#list report.transactionList as e>{"merchant":"${e.merchant?json_string}","amount":${e.amount?c},
"modified":<#if e.modifiedAmount?has_content>${e.modifiedAmount?c}<#else>null</#if>,"converted":${e.convertedAmount?c},
"currency":"${e.currency}","gl":"${e.categoryGlCode}","billable":${e.billable?c},
"receipt":"${(e.receiptObject.url)!""}"}<#sep>,</#sep></#list>]}<#sep>,</#sep></#list>]"""


def test_template_model_renders_to_valid_json(client):
    reports = json.loads(
        client.export_text({"startDate": "2026-10-01"}, JSON_TEMPLATE, settings={"reportState": "APPROVED"})
    )
    by_id = {r["id"]: r for r in reports}
    october = by_id["R00A7kQ2mX1B"]
    assert october["status"] == "Approved" and october["approved"] == "2026-11-03 10:02:55"
    assert october["total"] == 8640 + 3917 + 4500  # edited amounts count, in cents
    staples = october["expenses"][1]
    assert (staples["amount"], staples["modified"], staples["converted"]) == (4217, 3917, 3917)
    assert october["expenses"][0]["receipt"].startswith("https://") and october["expenses"][1]["receipt"] == ""
    gifts = by_id["R00E6tR3eW2F"]["expenses"][0]
    assert gifts["gl"] == "" and gifts["amount"] == 18450
    toronto = by_id["R00G4hJ6kL0H"]["expenses"][0]
    assert (toronto["currency"], toronto["amount"], toronto["converted"]) == ("CAD", 8450, 6160)
    assert by_id["R00A7kQ2mX1B"]["expenses"][0]["billable"] is True


def test_template_strings_are_escaped_and_status_style_switch(sandbox, client):
    sandbox.control.seed(
        {
            "expensify": {
                "reports": [
                    {
                        "reportID": "R00QUOTE00001",
                        "reportName": 'Say "hi" \\ to Zoë\nnext line',
                        "policyID": POLICY_ID,
                        "accountEmail": "maya.okafor@brightside-marketing.example",
                        "state": "APPROVED",
                        "created": "2026-11-18 10:00:00",
                        "approved": "2026-11-18 11:00:00",
                        "expenses": [],
                    }
                ]
            }
        }
    )
    sandbox.control.switch("expensify", "report_status_style", "state")
    reports = json.loads(client.export_text({"reportIDList": "R00QUOTE00001"}, JSON_TEMPLATE))
    assert reports == [
        {
            "id": "R00QUOTE00001",
            "name": 'Say "hi" \\ to Zoë\nnext line',
            "status": "APPROVED",
            "total": 0,
            "approved": "2026-11-18 11:00:00",
            "expenses": [],
        }
    ]


def test_template_errors_are_validation_failures(client):
    missing = client.export({"reportIDList": "R00A7kQ2mX1B"}, "${report.nope}")
    assert missing.json()["responseCode"] == 410 and "Template error" in missing.json()["responseMessage"]
    no_default = client.export(
        {"reportIDList": "R00A7kQ2mX1B"},
        "<#list reports as r><#list r.transactionList as e>${e.receiptObject.url}</#list></#list>",
    )
    assert no_default.json()["responseCode"] == 410
    assert client.export({"reportIDList": "R00A7kQ2mX1B"}, template="").json()["responseCode"] == 410
    # a number printed without ?c gets the locale's grouping, as in FreeMarker
    grouped = client.export_text({"reportIDList": "R00B3nV8pL4C"}, "<#list reports as r>${r.total}</#list>")
    assert grouped == "47,999"


def test_freemarker_subset_unit():
    data = {"xs": [{"n": 1, "b": True}, {"n": 2, "b": False}], "name": "Zed"}
    source = (
        '<#list xs as x>${x.n?c}:${x.b?string("y","n")}<#sep>;</#list>'
        '|<#if name?starts_with("Z") && xs?size gt 1>ok<#else>no</#if>'
        '|${missing!"dflt"}|${(xs[0].nope.deeper)!"-"}'
    )
    assert render(source, data) == "1:y;2:n|ok|dflt|-"
    with pytest.raises(TemplateError):
        render("${xs[0].b}", data)  # a boolean needs ?c or ?string
    with pytest.raises(TemplateError):
        render("${name?c}", data)  # ?c refuses strings
    with pytest.raises(TemplateError):
        render("<#assign x = 1>", data)  # unsupported directives are refused, never executed
    with pytest.raises(TemplateError):
        render("<#list xs as x>${x.n?c}", data)  # unclosed


# ---------------------------------------------------------------- policies and status updates


def test_policy_list_and_policy_getter(client):
    listed = client.post({"type": "get", "inputSettings": {"type": "policyList", "adminOnly": True}}).json()
    assert listed["responseCode"] == 200
    assert listed["policyList"] == [
        {
            "id": POLICY_ID,
            "name": "Brightside Marketing",
            "owner": "nora.ellison@brightside-marketing.example",
            "role": "admin",
            "outputCurrency": "USD",
            "type": "corporate",
        }
    ]
    got = client.post(
        {
            "type": "get",
            "inputSettings": {"type": "policy", "fields": ["categories", "tags"], "policyIDList": [POLICY_ID]},
        }
    ).json()
    info = got["policyInfo"][POLICY_ID]
    assert set(info) == {"categories", "tags"}
    gl = {c["name"]: c["glCode"] for c in info["categories"]}
    assert gl["Client Gifts"] == "" and gl["Advertising"] == "6030" and gl["Meals & Entertainment"] == "6050"
    assert [level["name"] for level in info["tags"]] == ["Client", "Project"]
    no_fields = client.post({"type": "get", "inputSettings": {"type": "policy", "policyIDList": [POLICY_ID]}})
    assert no_fields.json()["responseCode"] == 410
    unknown = client.post(
        {"type": "get", "inputSettings": {"type": "policy", "fields": ["tax"], "policyIDList": ["FFFF"]}}
    )
    assert unknown.json()["responseCode"] == 404


def test_report_status_update_only_from_approved(sandbox, client):
    answer = client.post(
        {
            "type": "update",
            "inputSettings": {
                "type": "reportStatus",
                "status": "REIMBURSED",
                "filters": {"reportIDList": "R00A7kQ2mX1B,R00C9wE1rT6D"},
            },
        }
    ).json()
    assert answer["responseCode"] == 200 and answer["reportIDs"] == ["R00A7kQ2mX1B"]
    assert answer["skippedReports"][0]["reportID"] == "R00C9wE1rT6D"
    assert sandbox.control.state("expensify")["reports"]["R00A7kQ2mX1B"]["state"] == "REIMBURSED"
    wrong = client.post(
        {"type": "update", "inputSettings": {"type": "reportStatus", "status": "APPROVED", "filters": {}}}
    )
    assert wrong.json()["responseCode"] == 410


# ---------------------------------------------------------------- rate limits


def test_five_per_ten_seconds_then_429(sandbox, client):
    sandbox.sandbox.systems["expensify"].switches["rate_limits"] = [[5, 10], [20, 60]]
    job = {"type": "get", "inputSettings": {"type": "policyList"}}
    codes = [client.post(job).status_code for _ in range(6)]
    assert codes == [200, 200, 200, 200, 200, 429]
    refused = client.post(job)
    assert refused.json() == {
        "responseMessage": "You have been rate-limited. Please try again later or contact help@expensify.com"
        " for assistance.",
        "responseCode": 429,
    }
    sandbox.control.advance_clock(10.1)
    assert client.post(job).status_code == 200


def test_twenty_per_sixty_seconds(sandbox, client):
    sandbox.sandbox.systems["expensify"].switches["rate_limits"] = [[5, 10], [20, 60]]
    job = {"type": "get", "inputSettings": {"type": "policyList"}}
    for _ in range(4):
        assert [client.post(job).json()["responseCode"] for _ in range(5)] == [200] * 5
        sandbox.control.advance_clock(10.1)
    assert client.post(job).json()["responseCode"] == 429  # 20 within the last 60 s
    sandbox.control.advance_clock(20)
    assert client.post(job).json()["responseCode"] == 200
    sandbox.control.switch("expensify", "rate_limit_http_status", 200)
    for _ in range(5):
        client.post(job)
    in_body = client.post(job)
    assert in_body.status_code == 200 and in_body.json()["responseCode"] == 429


def test_generate_reports(sandbox):
    sandbox.control.reset()
    sandbox.control.generate({"expensify": {"reports": 30}})
    state = sandbox.control.state("expensify")
    assert len(state["reports"]) == 30
    assert {"APPROVED", "REIMBURSED"} <= {r["state"] for r in state["reports"].values()}
    assert state["policies"][POLICY_ID]["name"] == "Brightside Marketing"
