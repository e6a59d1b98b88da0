"""The REST trigger against a mocked Airflow API (JWT, 409, 404, active runs)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_provider_mlconnector.exceptions import AuthError, FatalApiError, RetryableApiError
from airflow_provider_mlconnector.webhooks.airflow_api import AirflowApiConfig, RestTrigger
from airflow_provider_mlconnector.webhooks.dispatcher import ActiveRun, TriggerResult

API = "http://airflow.test:8080"
RUNS = f"{API}/api/v2/dags/freshbooks_to_bill/dagRuns"


@pytest.fixture
def trigger() -> RestTrigger:
    return RestTrigger(AirflowApiConfig(API, "webhooks", "pw"))


def token(requests_mock, *values: str):
    return requests_mock.post(f"{API}/auth/token", [{"json": {"access_token": v}, "status_code": 201} for v in values])


def test_trigger_posts_the_documented_body_with_a_jwt(requests_mock, trigger):
    login = token(requests_mock, "jwt-1")
    post = requests_mock.post(RUNS, json={"dag_run_id": "webhook__x", "state": "queued"})
    assert trigger.trigger("freshbooks_to_bill", "webhook__x", {"webhook_events": 3}) is TriggerResult.TRIGGERED
    assert login.last_request.json() == {"username": "webhooks", "password": "pw"}
    body = post.last_request.json()
    assert body["logical_date"] is None  # the key is required, null allowed
    assert body["dag_run_id"] == "webhook__x"
    assert body["conf"] == {"webhook_events": 3}
    assert post.last_request.headers["Authorization"] == "Bearer jwt-1"


def test_token_is_reused_and_renewed_after_401(requests_mock, trigger):
    login = token(requests_mock, "jwt-1", "jwt-2")
    post = requests_mock.post(
        RUNS, [{"status_code": 200, "json": {}}, {"status_code": 401}, {"status_code": 200, "json": {}}]
    )
    trigger.trigger("freshbooks_to_bill", "r1", {})
    trigger.trigger("freshbooks_to_bill", "r2", {})
    assert login.call_count == 2
    assert [r.headers["Authorization"] for r in post.request_history] == [
        "Bearer jwt-1",
        "Bearer jwt-1",
        "Bearer jwt-2",
    ]


def test_conflict_and_missing_dag(requests_mock, trigger):
    token(requests_mock, "jwt")
    requests_mock.post(RUNS, status_code=409, json={"detail": "exists"})
    assert trigger.trigger("freshbooks_to_bill", "r", {}) is TriggerResult.EXISTS
    requests_mock.post(RUNS, status_code=404, json={"detail": "Dag not found"})
    assert trigger.trigger("freshbooks_to_bill", "r", {}) is TriggerResult.NO_DAG


def test_errors_are_classified(requests_mock, trigger):
    token(requests_mock, "jwt")
    requests_mock.post(RUNS, status_code=503)
    with pytest.raises(RetryableApiError):
        trigger.trigger("freshbooks_to_bill", "r", {})
    requests_mock.post(RUNS, status_code=400, json={"detail": "import errors"})
    with pytest.raises(FatalApiError):
        trigger.trigger("freshbooks_to_bill", "r", {})
    requests_mock.post(RUNS, status_code=403)
    with pytest.raises(AuthError):
        trigger.trigger("freshbooks_to_bill", "r", {})


def test_bad_credentials(requests_mock, trigger):
    requests_mock.post(f"{API}/auth/token", status_code=401)
    with pytest.raises(AuthError):
        trigger.trigger("freshbooks_to_bill", "r", {})


def test_active_run_prefers_queued(requests_mock, trigger):
    token(requests_mock, "jwt")
    listing = requests_mock.get(
        RUNS,
        json={
            "dag_runs": [
                {"dag_run_id": "scheduled__1", "state": "running"},
                {"dag_run_id": "webhook__2", "state": "queued"},
            ],
            "total_entries": 2,
        },
    )
    assert trigger.active_run("freshbooks_to_bill") == ActiveRun("webhook__2", "queued")
    assert listing.last_request.qs["state"] == ["queued", "running"]
    requests_mock.get(RUNS, json={"dag_runs": [], "total_entries": 0})
    assert trigger.active_run("freshbooks_to_bill") is None
    requests_mock.get(RUNS, status_code=404)
    assert trigger.active_run("freshbooks_to_bill") is None


def test_anonymous_token_for_all_admins_mode(requests_mock):
    anonymous = requests_mock.get(f"{API}/auth/token", status_code=201, json={"access_token": "jwt"})
    requests_mock.post(RUNS, json={})
    RestTrigger(AirflowApiConfig(API)).trigger("freshbooks_to_bill", "r", {})
    assert anonymous.called


def test_config_from_env_then_connection():
    env = {
        "MLCONNECTOR_AIRFLOW_API_URL": "http://api:8080/",
        "MLCONNECTOR_AIRFLOW_API_USER": "u",
        "MLCONNECTOR_AIRFLOW_API_PASSWORD": "p",
    }
    assert AirflowApiConfig.resolve(env) == AirflowApiConfig("http://api:8080", "u", "p")
    conn = SimpleNamespace(host="apiserver", port=8080, login="u2", password="p2")
    assert AirflowApiConfig.resolve({}, lambda conn_id: conn) == AirflowApiConfig("http://apiserver:8080", "u2", "p2")
    https = SimpleNamespace(host="https://airflow.example.com/base", port=None, login="u", password="p")
    assert AirflowApiConfig.resolve({}, lambda conn_id: https).base_url == "https://airflow.example.com/base"
    assert AirflowApiConfig.resolve({}, lambda conn_id: None) is None
    assert "p2" not in repr(AirflowApiConfig.resolve({}, lambda conn_id: conn))
