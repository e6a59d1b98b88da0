"""The BambooHR emulator over real HTTP: auth, formats, employees, reports, webhooks, throttling, OAuth."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_mlconnector.sandbox.bamboohr import (
    SANDBOX_API_KEY,
    SANDBOX_OAUTH_CLIENT_ID,
    SANDBOX_OAUTH_CLIENT_SECRET,
    SANDBOX_OAUTH_REDIRECT_URI,
    SANDBOX_OAUTH_REFRESH_TOKEN,
    BambooHRSandbox,
)

JSON = {"Accept": "application/json"}
RECEIVER = "http://127.0.0.1:9/bamboohr-hook"  # closed port: deliveries are recorded, not received


SANDBOX_SYSTEMS = [BambooHRSandbox]


@pytest.fixture(autouse=True)
def demo(reset_demo):
    reset_demo(rewind_clock=True)


@pytest.fixture
def deliveries(running):
    """Webhook deliveries made during this test (the sandbox keeps them across resets)."""
    before = len(running.control.webhooks())

    def made():
        running.sandbox.ctx.webhooks.wait_idle()
        return running.control.webhooks()[before:]

    return made


@pytest.fixture
def emulator(running) -> BambooHRSandbox:
    return running.sandbox.systems["bamboohr"]


@pytest.fixture
def api(running):
    session = requests.Session()
    session.auth = (SANDBOX_API_KEY, "x")
    session.headers.update(JSON)
    base = f"{running.url}/bamboohr/api/gateway.php/brightside/v1"

    class Api:
        url = base

        def get(self, path, **kw):
            return session.get(base + path, timeout=10, **kw)

        def post(self, path, **kw):
            return session.post(base + path, timeout=10, **kw)

        def put(self, path, **kw):
            return session.put(base + path, timeout=10, **kw)

        def delete(self, path, **kw):
            return session.delete(base + path, timeout=10, **kw)

    return Api()


# ---------------------------------------------------------------------- auth and formats


def test_basic_auth_key_as_user_and_any_password(running, api):
    url = api.url + "/meta/fields"
    assert requests.get(url, auth=(SANDBOX_API_KEY, "anything"), headers=JSON, timeout=5).status_code == 200
    missing = requests.get(url, headers=JSON, timeout=5)
    assert missing.status_code == 401
    assert missing.headers["X-BambooHR-Error-Message"] == "Your API key is missing"
    assert missing.content == b""
    assert requests.get(url, auth=("not-the-key", "x"), headers=JSON, timeout=5).status_code == 401
    assert requests.get(url, auth=("", "x"), headers=JSON, timeout=5).status_code == 401  # the key is the user


def basic(credentials: bytes) -> dict[str, str]:
    return {**JSON, "Authorization": "Basic " + base64.b64encode(credentials).decode()}


def test_the_key_works_with_an_empty_password_as_clients_send_it(running, api):
    url = api.url + "/meta/fields"
    # `key:` is what curl -u KEY: and clients built on requests' auth=(key, "") send
    assert requests.get(url, auth=(SANDBOX_API_KEY, ""), headers=JSON, timeout=5).status_code == 200
    assert requests.get(url, headers=basic(f"{SANDBOX_API_KEY}:".encode()), timeout=5).status_code == 200
    assert requests.get(url, headers=basic(SANDBOX_API_KEY.encode()), timeout=5).status_code == 401  # no colon
    running.control.switch("bamboohr", "api_key_password_required", True)  # the docs' "any non-empty string"
    refused = requests.get(url, auth=(SANDBOX_API_KEY, ""), headers=JSON, timeout=5)
    assert refused.status_code == 401 and refused.headers["X-BambooHR-Error-Message"] == "Your API key is missing"
    assert requests.get(url, auth=(SANDBOX_API_KEY, "x"), headers=JSON, timeout=5).status_code == 200


def test_key_of_one_company_is_refused_on_another_and_unknown_company_is_404(running):
    other = f"{running.url}/bamboohr/api/gateway.php/othercorp/v1/meta/fields"
    assert requests.get(other, auth=(SANDBOX_API_KEY, "x"), headers=JSON, timeout=5).status_code == 404
    running.control.seed({"bamboohr": {"company": "othercorp", "company_id": "9", "name": "Other"}})
    assert requests.get(other, auth=(SANDBOX_API_KEY, "x"), headers=JSON, timeout=5).status_code == 401


def test_json_only_when_accept_names_it(running, api):
    xml = requests.get(api.url + "/employees/4", auth=(SANDBOX_API_KEY, "x"), timeout=5)
    assert xml.status_code == 200
    assert xml.headers["content-type"].startswith("text/xml")
    assert xml.text.startswith('<?xml version="1.0"?>\n<employee id="4">')
    running.control.switch("bamboohr", "non_json_accept", "406")
    refused = requests.get(api.url + "/employees/4", auth=(SANDBOX_API_KEY, "x"), timeout=5)
    assert refused.status_code == 406
    assert api.get("/employees/4").json() == {"id": "4", "firstName": "Dana", "lastName": "Whitfield"}


def test_both_url_prefixes_are_served(running, api):
    modern = requests.get(
        f"{running.url}/bamboohr/api/v1/employees/5?fields=jobTitle",
        auth=(SANDBOX_API_KEY, "x"),
        headers=JSON,
        timeout=5,
    )
    assert modern.json() == {"id": "5", "jobTitle": "Creative Director"}
    assert api.get("/employees/5?fields=jobTitle").json() == modern.json()


# ---------------------------------------------------------------------- employees


def test_directory_current_staff_only_by_default(api):
    current = api.get("/employees/directory").json()
    ids = [e["id"] for e in current["employees"]]
    assert len(ids) == 12 and "15" not in ids
    assert all(isinstance(i, str) for i in ids)
    assert {"id": "displayName", "type": "text", "name": "Display name"} in current["fields"]
    tom = next(e for e in current["employees"] if e["id"] == "7")
    assert tom["displayName"] == "Tom Ibarra" and tom["department"] == "Creative"
    everyone = api.get("/employees/directory?onlyCurrent=false").json()
    assert "15" in [e["id"] for e in everyone["employees"]]


def test_empty_directory_is_404(running, api):
    running.control.reset()
    response = api.get("/employees/directory")
    assert response.status_code == 404


def test_employee_returns_only_named_fields(running, api):
    record = api.get("/employees/15?fields=status,terminationDate,hireDate,notAField").json()
    assert record == {"id": "15", "status": "Inactive", "terminationDate": "2026-10-31", "hireDate": "2024-02-05"}
    assert api.get("/employees/4").json() == {"id": "4", "firstName": "Dana", "lastName": "Whitfield"}
    running.control.switch("bamboohr", "employee_default_fields", [])
    assert api.get("/employees/4").json() == {"id": "4"}


def test_employee_zero_is_the_keys_owner_and_empty_dates_are_zeros(running, api):
    assert api.get("/employees/0?fields=workEmail,terminationDate").json() == {
        "id": "4",
        "workEmail": "dana.whitfield@brightsidemarketing.com",
        "terminationDate": "0000-00-00",
    }
    running.control.switch("bamboohr", "empty_date_as_zeros", False)
    assert api.get("/employees/0?fields=terminationDate").json()["terminationDate"] is None


def test_employee_errors(api):
    assert api.get("/employees/999?fields=firstName").status_code == 404
    too_many = ",".join(["firstName"] * 401)
    assert api.get(f"/employees/4?fields={too_many}").status_code == 400


def test_changed_employees_since(api):
    changed = api.get("/employees/changed", params={"since": "2026-11-01T00:00:00Z"}).json()
    assert changed["employees"] == {
        "9": {"id": "9", "action": "Updated", "lastChanged": "2026-11-10T09:20:00+00:00"},
        "12": {"id": "12", "action": "Updated", "lastChanged": "2026-11-18T10:00:00+00:00"},
        "13": {"id": "13", "action": "Updated", "lastChanged": "2026-11-02T15:30:00+00:00"},
        "14": {"id": "14", "action": "Inserted", "lastChanged": "2026-11-16T15:05:00+00:00"},
        "16": {"id": "16", "action": "Inserted", "lastChanged": "2026-11-09T12:00:00+00:00"},
        "17": {"id": "17", "action": "Inserted", "lastChanged": "2026-11-16T17:00:00+00:00"},
    }
    assert changed["latest"] >= "2026-11-16"
    inserted = api.get("/employees/changed", params={"since": "2026-11-01T00:00:00+00:00", "type": "inserted"}).json()
    assert list(inserted["employees"]) == ["14", "16", "17"]


def test_changed_employees_validation_and_deletions(running, api, emulator):
    assert api.get("/employees/changed").status_code == 400
    assert api.get("/employees/changed", params={"since": "last tuesday"}).status_code == 400
    assert (
        api.get("/employees/changed", params={"since": "2026-11-01T00:00:00Z", "type": "Inserted"}).status_code == 400
    )
    running.control.switch("bamboohr", "changed_type_case_sensitive", False)
    assert api.get("/employees/changed", params={"since": "2026-11-01T00:00:00Z", "type": "Inserted"}).ok
    emulator.delete_employee("12")
    deleted = api.get("/employees/changed", params={"since": "2026-11-20T00:00:00Z", "type": "deleted"}).json()
    assert deleted["employees"]["12"]["action"] == "Deleted"


def test_update_and_add_employee_change_tracking(api):
    assert api.post("/employees/9", json={"jobTitle": "Senior Account Manager"}).status_code == 200
    assert api.post("/employees/9", json={"nope": 1}).status_code == 400
    created = api.post("/employees", json={"firstName": "Mina", "lastName": "Sato", "department": "Media"})
    assert created.status_code == 201
    new_id = created.headers["Location"].rsplit("/", 1)[1]
    changed = api.get("/employees/changed", params={"since": "2026-11-20T00:00:00Z"}).json()["employees"]
    assert changed["9"]["action"] == "Updated"
    assert changed[new_id]["action"] == "Inserted"


# ---------------------------------------------------------------------- custom reports and fields


def test_custom_report_json(api):
    report = api.post("/reports/custom?format=JSON", json={"title": "HR", "fields": ["firstName", "status", "nope"]})
    assert report.status_code == 200
    body = report.json()
    assert body["title"] == "HR"
    assert [f["id"] for f in body["fields"]] == ["firstName", "status"]  # unknown fields dropped
    statuses = {e["id"]: e["status"] for e in body["employees"]}
    assert statuses["15"] == "Inactive" and statuses["4"] == "Active"  # Active and Inactive both included


def test_custom_report_filters(api):
    body = {
        "fields": ["firstName"],
        "filters": {"lastChanged": {"includeNull": "no", "value": "2026-11-05T00:00:00Z"}, "employeeIds": [9, 14, 4]},
    }
    rows = api.post("/reports/custom?format=json", json=body).json()["employees"]
    assert rows == [{"id": "9", "firstName": "Jamal"}, {"id": "14", "firstName": "Ethan"}]


def test_custom_report_content_type_and_format_rules(running, api):
    form = api.post("/reports/custom?format=JSON", data=json.dumps({"fields": ["firstName"]}))
    assert form.status_code == 400
    assert form.headers["X-BambooHR-Error-Message"] == "Malformed XML"
    url = api.url + "/reports/custom"
    vague = requests.post(
        url,
        json={"fields": ["firstName"]},
        auth=(SANDBOX_API_KEY, "x"),
        headers={"Accept": "application/json, */*"},
        timeout=5,
    )
    assert vague.status_code == 404
    exact = requests.post(url, json={"fields": ["firstName"]}, auth=(SANDBOX_API_KEY, "x"), headers=JSON, timeout=5)
    assert exact.status_code == 200 and exact.json()["employees"]
    csv = api.post("/reports/custom?format=csv", json={"fields": ["firstName"]})
    assert csv.text.splitlines()[0] == "id,First Name"
    assert api.post("/reports/custom?format=JSON", json={"fields": ["firstName"] * 401}).status_code == 400


def test_meta_fields(api):
    fields = api.get("/meta/fields").json()
    aliases = {f["alias"] for f in fields}
    assert {"firstName", "workEmail", "status", "hireDate", "terminationDate"} <= aliases
    assert all({"id", "name", "type", "alias"} <= set(f) for f in fields)
    assert len({f["id"] for f in fields}) == len(fields)


# ---------------------------------------------------------------------- webhooks


def _hook_body(**overrides):
    body = {
        "name": "ml-connector",
        "url": "https://hooks.example.com/bamboohr",
        "monitorFields": ["jobTitle", "department", "status"],
        "postFields": {"firstName": "First Name", "jobTitle": "Job Title"},
        "format": "json",
        "includeCompanyDomain": True,
        "events": ["employee.created", "employee.updated", "employee.deleted"],
    }
    body.update(overrides)
    return body


def test_webhook_private_key_only_at_creation(api):
    created = api.post("/webhooks", json=_hook_body())
    assert created.status_code == 201
    hook = created.json()
    assert len(hook["privateKey"]) == 64
    listed = api.get("/webhooks").json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "privateKey" not in listed[0]
    assert "privateKey" not in api.get(f"/webhooks/{hook['id']}").json()
    assert api.delete(f"/webhooks/{hook['id']}").status_code == 204
    assert api.get(f"/webhooks/{hook['id']}").status_code == 404


def test_webhook_validation(api):
    assert api.post("/webhooks", json=_hook_body(url="http://hooks.example.com/x")).status_code == 400
    assert api.post("/webhooks", json=_hook_body(monitorFields=[])).status_code == 400
    mixed = _hook_body(events=["employee.created", "employee_with_fields.updated"])
    assert api.post("/webhooks", json=mixed).status_code == 400
    assert api.post("/webhooks", json=_hook_body(format="xml")).status_code == 400
    default_events = api.post("/webhooks", json=_hook_body(events=None)).json()["events"]
    assert sorted(default_events) == sorted(
        ["employee_with_fields.updated", "employee_with_fields.deleted", "employee_with_fields.created"]
    )


def test_event_webhook_is_signed_body_then_timestamp(api, deliveries):
    key = api.post("/webhooks", json=_hook_body(url=RECEIVER)).json()["privateKey"]
    api.post("/employees/9", json={"jobTitle": "Senior Account Manager"})
    api.post("/employees/9", json={"workPhone": "415-555-0199"})  # not monitored: no delivery
    made = deliveries()
    assert len(made) == 1
    delivery = made[0]
    payload = json.loads(delivery["body"])
    assert payload["type"] == "employee.updated"
    assert payload["data"] == {"companyId": "148213", "employeeId": "9", "changedFields": ["jobTitle"]}
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    assert headers["company-domain"] == "brightside"
    assert headers["user-agent"].startswith("BambooHR-WebHooks/1.0")
    assert headers["x-bamboohr-timestamp"].isdigit()
    expected = hmac.new(
        key.encode(), delivery["body"].encode() + headers["x-bamboohr-timestamp"].encode(), hashlib.sha256
    ).hexdigest()
    assert headers["x-bamboohr-signature"] == expected


def test_create_fires_created_and_updated_events(api, deliveries):
    api.post("/webhooks", json=_hook_body(url=RECEIVER, monitorFields=["department"]))
    api.post("/employees", json={"firstName": "Mina", "lastName": "Sato", "department": "Media"})
    types = [json.loads(d["body"])["type"] for d in deliveries()]
    assert types == ["employee.created", "employee.updated"]


def test_field_based_webhook_payload(api, emulator, deliveries):
    events = ["employee_with_fields.updated", "employee_with_fields.deleted", "employee_with_fields.created"]
    api.post("/webhooks", json=_hook_body(url=RECEIVER, events=events))
    emulator.terminate_employee("9", "2026-11-30")
    payload = json.loads(deliveries()[0]["body"])
    (entry,) = payload["employees"]
    assert entry["id"] == "9" and entry["action"] == "Updated"
    assert entry["changedFields"] == ["Status"]
    assert entry["fields"] == {"First Name": "Jamal", "Job Title": "Account Manager"}


# ---------------------------------------------------------------------- throttling and faults


def test_throttle_switch_answers_429_with_retry_after(running, api):
    running.control.switch("bamboohr", "throttle_limit", 3)
    running.control.switch("bamboohr", "throttle_window_seconds", 30)
    statuses = [api.get("/meta/fields").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = api.get("/meta/fields")
    assert limited.headers["Retry-After"] == "5"
    running.control.advance_clock(31)
    assert api.get("/meta/fields").status_code == 200


def test_legacy_503_throttling(running, api):
    running.control.switch("bamboohr", "rate_limit_status", 503)
    running.control.fault("bamboohr", "429")
    response = api.get("/meta/fields")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


# ---------------------------------------------------------------------- OAuth


def _token(running, **form):
    data = {"client_id": SANDBOX_OAUTH_CLIENT_ID, "client_secret": SANDBOX_OAUTH_CLIENT_SECRET, **form}
    return requests.post(f"{running.url}/bamboohr/token.php?request=token", data=data, timeout=5)


def test_refresh_rotates_and_spends_the_old_token(running, api):
    first = _token(running, grant_type="refresh_token", refresh_token=SANDBOX_OAUTH_REFRESH_TOKEN)
    assert first.status_code == 200
    body = first.json()
    assert body["expires_in"] == 3600 and body["refresh_token"] != SANDBOX_OAUTH_REFRESH_TOKEN
    again = _token(running, grant_type="refresh_token", refresh_token=SANDBOX_OAUTH_REFRESH_TOKEN)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {body['access_token']}", **JSON}
    assert requests.get(api.url + "/meta/fields", headers=bearer, timeout=5).status_code == 200
    running.control.fault("bamboohr", "expired_auth")
    assert requests.get(api.url + "/meta/fields", headers=bearer, timeout=5).status_code == 401


def test_access_token_expires_after_an_hour(running, api):
    token = _token(running, grant_type="refresh_token", refresh_token=SANDBOX_OAUTH_REFRESH_TOKEN).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}", **JSON}
    running.control.advance_clock(3601)
    assert requests.get(api.url + "/meta/fields", headers=bearer, timeout=5).status_code == 401


def test_token_endpoint_errors(running):
    assert _token(running, grant_type="refresh_token", refresh_token="nope").json()["error"] == "invalid_grant"
    bad_client = requests.post(
        f"{running.url}/bamboohr/token.php?request=token",
        data={"client_id": SANDBOX_OAUTH_CLIENT_ID, "client_secret": "wrong", "grant_type": "refresh_token"},
        timeout=5,
    )
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    no_request = requests.post(f"{running.url}/bamboohr/token.php", data={}, timeout=5)
    assert no_request.status_code == 400


def test_authorization_code_flow(running):
    consent = requests.get(
        f"{running.url}/bamboohr/authorize.php",
        params={
            "client_id": SANDBOX_OAUTH_CLIENT_ID,
            "response_type": "code",
            "redirect_uri": SANDBOX_OAUTH_REDIRECT_URI,
            "state": "s1",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert consent.status_code == 302
    query = parse_qs(urlsplit(consent.headers["location"]).query)
    assert query["state"] == ["s1"]
    token = _token(
        running, grant_type="authorization_code", code=query["code"][0], redirect_uri=SANDBOX_OAUTH_REDIRECT_URI
    )
    assert token.status_code == 200 and token.json()["refresh_token"]
    reused = _token(
        running, grant_type="authorization_code", code=query["code"][0], redirect_uri=SANDBOX_OAUTH_REDIRECT_URI
    )
    assert reused.status_code == 400


def test_reset_restores_credentials_and_snapshot(running):
    _token(running, grant_type="refresh_token", refresh_token=SANDBOX_OAUTH_REFRESH_TOKEN)
    running.control.reset()
    assert _token(running, grant_type="refresh_token", refresh_token=SANDBOX_OAUTH_REFRESH_TOKEN).status_code == 200
    assert running.control.state("bamboohr")["brightside"]["employees"] == {}
