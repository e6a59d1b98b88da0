"""A reduced ``make demo`` in CI: the real scheduler (airflow standalone) runs the integration DAGs
against the demo story; then a rerun must write nothing."""

from __future__ import annotations

import json
import time

import pytest
import requests

from airflow_provider_mlconnector import demo
from airflow_provider_mlconnector.sandbox.server import SandboxControl
from airflow_provider_mlconnector.state import StateStore
from tests.e2e.pair_cases import CASES

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("demo")]
ORG = "00802BRTSIDEMKT0001A"


@pytest.fixture(scope="module")
def running_demo(tmp_path_factory):
    env = demo.DemoEnv(tmp_path_factory.mktemp("demo"), demo.free_port(0), demo.free_port(0))
    demo.prepare(env, seed=None)
    try:
        demo.wait_until_parsed(env, demo.INTEGRATION_DAGS)
        yield env
    finally:
        demo.stop(env)


def test_scheduler_runs_every_integration_dag_then_a_rerun_writes_nothing(running_demo):
    env = running_demo
    control = SandboxControl(env.sandbox_url)
    runs: dict[str, str] = {}
    for dag_id in demo.INTEGRATION_DAGS:
        run_id, state = demo.run_scheduled(env, dag_id, timeout=900)
        assert state == "success", f"{dag_id} {run_id}"
        assert run_id.startswith("scheduled__")  # the scheduler made it, not a test harness
        runs[dag_id] = run_id

    org = control.state("bill")["organizations"][ORG]
    numbers = [b["invoice"]["invoiceNumber"] for b in org["bills"]]
    assert len(numbers) == len(set(numbers))
    assert {"PFS-1041", "PFS-1042", "ADB-2026-11", "META-88213", "GADS-5521"} <= set(numbers)
    store = StateStore(env.environ()["MLCONNECTOR_STATE_URL"], fernet_keys=[env.environ()["MLCONNECTOR_FERNET_KEY"]])
    table = demo.summarize(env, "freshbooks_to_bill", runs["freshbooks_to_bill"])
    assert table["bill"]["created"] == 5 and table["bill"]["quarantined"] == 1
    assert table["payment"]["created"] == 1
    (letter,) = store.dead_letters.list(status="open", pair="freshbooks_to_bill")
    assert letter.error_kind == "unmapped_account"

    control.clear_requests()
    # Expensify's one endpoint takes reads and writes alike as POSTs: its reports (labels, states)
    # are compared instead.
    expensify_reports = control.state("expensify")["reports"]
    for dag_id in demo.INTEGRATION_DAGS:
        assert demo.trigger_and_wait(env, dag_id, "rerun_1", timeout=900) == "success"
    reading_posts = {route for case in CASES for route in case.read_posts}
    writes = {
        route: n
        for route, n in control.request_counts().items()
        if route.split()[1] in ("POST", "PUT", "PATCH", "DELETE")
        and "login" not in route
        and "oauth" not in route
        and route not in reading_posts
    }
    assert writes == {}
    assert control.state("expensify")["reports"] == expensify_reports
    assert len(control.state("bill")["organizations"][ORG]["bills"]) == len(numbers)


def test_backfill_window_is_safe_and_keeps_the_live_watermark(running_demo):
    """`airflow backfill create` (Airflow 2's `dags backfill`) over the last three hours: the
    scheduler runs each interval, nothing is duplicated, and the live watermark does not move."""
    from datetime import datetime, timedelta, timezone

    env = running_demo
    control = SandboxControl(env.sandbox_url)
    store = StateStore(env.environ()["MLCONNECTOR_STATE_URL"], fernet_keys=[env.environ()["MLCONNECTOR_FERNET_KEY"]])
    demo.run_scheduled(env, "freshbooks_to_bill", timeout=900)  # no-op if the first test already ran it
    mark = store.watermarks.get("freshbooks_to_bill", "payment", ORG)
    bills_before = len(control.state("bill")["organizations"][ORG]["bills"])
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start, end = now - timedelta(hours=3), now - timedelta(hours=2)
    demo.airflow(
        env,
        "backfill", "create", "--dag-id", "freshbooks_to_bill",
        "--from-date", start.isoformat(), "--to-date", end.isoformat(),
        "--reprocess-behavior", "completed",
    )  # fmt: skip
    deadline = time.monotonic() + 900
    while True:
        runs = demo.json_rows(demo.airflow(env, "dags", "list-runs", "freshbooks_to_bill", "-o", "json").stdout)
        backfills = [r for r in runs if r["run_id"].startswith("backfill__")]
        if backfills and all(r["state"] in ("success", "failed") for r in backfills):
            break
        assert time.monotonic() < deadline, runs
        time.sleep(3)
    assert backfills and {r["state"] for r in backfills} == {"success"}
    org = control.state("bill")["organizations"][ORG]
    numbers = [b["invoice"]["invoiceNumber"] for b in org["bills"]]
    assert len(numbers) == len(set(numbers)) == bills_before
    assert store.watermarks.get("freshbooks_to_bill", "payment", ORG) == mark


def test_admin_connections_lists_the_sandbox_connections_and_their_test_button_tells_the_truth(running_demo):
    """What a newcomer does after `make up`: open Admin > Connections, Test the sandbox connection,
    edit it (here: a wrong secret, as a typo in a real account would be), Test again."""
    base = f"http://127.0.0.1:{running_demo.api_port}"
    login = {"username": demo.UI_USER, "password": demo.UI_PASSWORD}
    token = requests.post(f"{base}/auth/token", json=login, timeout=10)
    assert token.status_code in (200, 201), token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    listed = requests.get(f"{base}/api/v2/connections", headers=headers, params={"limit": 100}, timeout=10)
    assert listed.status_code == 200, listed.text
    saved = {c["connection_id"]: c for c in listed.json()["connections"]}
    systems = ("freshbooks", "bill", "bigcommerce", "expensify", "bamboohr", "quickbooks")
    assert {f"{s}_default" for s in systems} <= set(saved)

    sandbox = running_demo.sandbox_connections()
    for conn_id, conn in sandbox.items():
        # The body the UI's Test button posts: the form's fields, the extra as JSON text.
        body = {**conn, "connection_id": conn_id, "extra": json.dumps(conn["extra"])}
        body.pop("description")
        tested = requests.post(f"{base}/api/v2/connections/test", headers=headers, json=body, timeout=60)
        assert tested.status_code == 200, tested.text
        assert tested.json()["status"] is True, (conn_id, tested.json())

        wrong = {**body, "password": "a-typo-in-the-secret"}
        tested = requests.post(f"{base}/api/v2/connections/test", headers=headers, json=wrong, timeout=60)
        assert tested.json()["status"] is False, (conn_id, tested.json())
        assert "password" in tested.json()["message"] and "a-typo-in-the-secret" not in tested.json()["message"]
