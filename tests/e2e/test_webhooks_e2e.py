"""Issue 8 end to end: a BILL payment webhook makes a real Airflow record the payment, once.

Everything is real except the vendors (the sandbox): ``airflow standalone`` as ``make demo``
starts it (API server with the ml-connector webhook plugin mounted at ``/mlconnector``,
scheduler, LocalExecutor), the registration CLI in its own process, the sandbox's BILL emulator
signing and delivering ``payment.updated``, the receiver verifying it into the state store's
inbox, and the dispatcher inside the API server triggering ``freshbooks_to_bill`` through the
REST API. The event is delivered three times; FreshBooks must still get one bill payment, from
one webhook-triggered run. A forged delivery gets 401 and leaves nothing behind.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import requests
import sqlalchemy as sa

from airflow_provider_mlconnector import demo
from airflow_provider_mlconnector.sandbox.server import SandboxControl
from airflow_provider_mlconnector.state import StateStore, schema

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

DAG_ID = "freshbooks_to_bill"
ORG = "00802BRTSIDEMKT0001A"
FB_ACCOUNT = "BRT4201"
BILL_NUMBER = "PFS-1041"  # 2750.00 in FreshBooks and, after the first sync, in BILL
AMOUNT = "1000.00"  # a partial payment
SIGNATURE_HEADER = "x-bill-sha-signature"
T = TypeVar("T")


@pytest.fixture(scope="module")
def running_demo(tmp_path_factory):
    env = demo.DemoEnv(tmp_path_factory.mktemp("webhooks"), demo.free_port(0), demo.free_port(0))
    # Daily instead of hourly, so that no scheduled run lands in the middle of the scenario
    # (run_scheduled still gets its run: catchup is off, the latest interval is scheduled).
    env.environ_cached["MLCONNECTOR_FRESHBOOKS_TO_BILL_SCHEDULE"] = "@daily"
    demo.prepare(env, seed=None)
    try:
        demo.wait_until_parsed(env, (DAG_ID,))
        yield env
    finally:
        demo.stop(env)


def log_tail(env: demo.DemoEnv, lines: int = 80) -> str:
    path = env.home / "airflow.log"
    text = path.read_text(errors="replace") if path.exists() else "(no airflow.log)"
    return "\n--- tail of airflow.log ---\n" + "\n".join(text.splitlines()[-lines:])


def poll(env: demo.DemoEnv, what: str, probe: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
    """``probe()`` once it is truthy; fails with the Airflow log tail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s{log_tail(env)}")
        time.sleep(every)


def dag_runs(env: demo.DemoEnv) -> list[dict[str, Any]]:
    return demo.json_rows(demo.airflow(env, "dags", "list-runs", DAG_ID, "-o", "json").stdout)


def webhook_runs(env: demo.DemoEnv) -> list[dict[str, Any]]:
    return [r for r in dag_runs(env) if str(r["run_id"]).startswith("webhook__")]


def api_run(env: demo.DemoEnv, run_id: str) -> dict[str, Any]:
    """The run as Airflow's REST API shows it, with the demo's login."""
    base = f"http://127.0.0.1:{env.api_port}"
    login = {"username": demo.UI_USER, "password": demo.UI_PASSWORD}
    token = requests.post(f"{base}/auth/token", json=login, timeout=10)
    assert token.status_code in (200, 201), token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    response = requests.get(f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def inbox_rows(store: StateStore, system: str = "bill") -> list[dict[str, Any]]:
    with store.db.read() as conn:
        query = sa.select(schema.inbox).where(schema.inbox.c.system == system).order_by(schema.inbox.c.id)
        return [dict(row) for row in conn.execute(query).mappings()]


def fb_payments_of(control: SandboxControl, bill_number: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    account = control.state("freshbooks")["accounts"][FB_ACCOUNT]
    bill = next(b for b in account["bills"] if b["bill_number"] == bill_number)
    return bill, [p for p in account["bill_payments"] if str(p["billid"]) == str(bill["id"])]


def sent(control: SandboxControl, start: int, count: int) -> list[dict[str, Any]] | None:
    """The sandbox's deliveries after the first ``start``, once ``count`` of them were answered."""
    deliveries = control.webhooks()[start:]
    done = len(deliveries) == count and all(d["status"] or d["error"] for d in deliveries)
    return deliveries if done else None


def sign(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def test_bill_payment_webhook_records_the_payment_once_through_real_airflow(running_demo):
    env = running_demo
    control = SandboxControl(env.sandbox_url)
    store = StateStore(env.environ()["MLCONNECTOR_STATE_URL"], fernet_keys=[env.environ()["MLCONNECTOR_FERNET_KEY"]])
    receiver_url = f"http://127.0.0.1:{env.api_port}/mlconnector/webhooks/bill"

    # 1. The scheduler's first run creates the bills in BILL (and fills the ID map).
    run_id, state = demo.run_scheduled(env, DAG_ID, timeout=240)
    assert state == "success", f"first scheduled run {run_id}: {state}{log_tail(env)}"
    bill = next(
        b for b in control.state("bill")["organizations"][ORG]["bills"] if b["invoice"]["invoiceNumber"] == BILL_NUMBER
    )
    _, before = fb_payments_of(control, BILL_NUMBER)
    assert before == [], "PFS-1041 has no payment in FreshBooks yet"

    # The plugin is mounted on the API server (no Airflow auth on its routes).
    health = requests.get(f"http://127.0.0.1:{env.api_port}/mlconnector/health", timeout=10)
    assert health.status_code == 200 and "bill" in health.json()["systems"], health.text

    # 2. Register the consolidated subscription with the CLI, as an operator would.
    control.switch("bill", "require_https_notification_url", False)
    registered = subprocess.run(
        [sys.executable, "-m", "airflow_provider_mlconnector.webhooks", "register", "bill", "--url", receiver_url],
        env=env.environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert registered.returncode == 0, f"register bill failed:\n{registered.stdout}\n{registered.stderr}"
    assert "payment.updated" in registered.stdout, registered.stdout

    # 3. A cleared partial payment in BILL: the sandbox signs and posts payment.updated to us.
    deliveries_before = len(control.webhooks())
    paid = requests.post(
        f"{env.sandbox_url}/bill/_sandbox/payments",
        json={"billId": bill["id"], "amount": AMOUNT, "status": "CLEARED"},
        timeout=10,
    )
    assert paid.status_code == 201, paid.text
    first = poll(
        env,
        "the payment.updated delivery",
        lambda: next((d for d in control.webhooks()[deliveries_before:] if d["status"] or d["error"]), None),
        timeout=20,
        every=0.2,
    )
    assert first["url"] == receiver_url and first["status"] == 200, f"{first}{log_tail(env)}"
    assert SIGNATURE_HEADER in {k.lower() for k in first["headers"]}, first["headers"]
    body = first["body"].encode()
    event_id = json.loads(body)["metadata"]["eventId"]
    assert json.loads(body)["metadata"]["eventType"] == "payment.updated"

    # ...delivered twice more, as BILL does when it thinks we missed it.
    for _ in range(2):
        control.redeliver(first["n"])
    burst = poll(
        env,
        "the redeliveries",
        lambda: sent(control, deliveries_before, 3),
        timeout=20,
        every=0.2,
    )
    assert [d["status"] for d in burst] == [200, 200, 200], burst
    assert {d["body"] for d in burst} == {first["body"]}
    rows = inbox_rows(store)
    assert [r["event_id"] for r in rows] == [event_id], rows
    assert rows[0]["event_type"] == "payment.updated"

    # A forged delivery: same body, wrong signature -> 401, nothing stored.
    forged_headers = {k: v for k, v in first["headers"].items() if k.lower() != SIGNATURE_HEADER}
    forged_headers[SIGNATURE_HEADER] = sign("not-the-security-key", body)
    forged = requests.post(receiver_url, data=body, headers=forged_headers, timeout=10)
    assert forged.status_code == 401, forged.text
    # ...and a forged new event (fresh eventId, signed with a wrong key) leaves no inbox row.
    document = json.loads(body)
    document["metadata"]["eventId"] = str(uuid.uuid4())
    forged_body = json.dumps(document, separators=(",", ":")).encode()
    forged_headers[SIGNATURE_HEADER] = sign("not-the-security-key", forged_body)
    forged = requests.post(receiver_url, data=forged_body, headers=forged_headers, timeout=10)
    assert forged.status_code == 401, forged.text
    # ...as does an unsigned one.
    unsigned = {k: v for k, v in forged_headers.items() if k.lower() != SIGNATURE_HEADER}
    assert requests.post(receiver_url, data=forged_body, headers=unsigned, timeout=10).status_code == 401
    assert store.inbox.get("bill", document["metadata"]["eventId"]) is None
    assert [r["event_id"] for r in inbox_rows(store)] == [event_id]

    # 4. The dispatcher in the API server triggers the run (the test never triggers one).
    run = poll(
        env,
        "a webhook-triggered freshbooks_to_bill run that finished",
        lambda: next((r for r in webhook_runs(env) if r["state"] in ("success", "failed")), None),
        timeout=150,
        every=3,
    )
    assert run["state"] == "success", f"{run}{log_tail(env)}"
    assert [r["run_id"] for r in webhook_runs(env)] == [run["run_id"]], "the burst must make one run"
    detail = api_run(env, run["run_id"])  # the CLI does not show conf and note
    assert detail["conf"] == {"webhook_events": 1}, detail
    assert detail["note"] == "triggered by ml-connector webhooks", detail
    event = store.inbox.get("bill", event_id)
    assert event is not None and event.processed_at is not None
    assert event.run_id == f"{DAG_ID}/{run['run_id']}"

    fb_bill, payments = fb_payments_of(control, BILL_NUMBER)
    assert [Decimal(p["amount"]["amount"]) for p in payments] == [Decimal(AMOUNT)], payments
    assert fb_bill["status"] == "partial", fb_bill
    others = [r["run_id"] for r in dag_runs(env) if r["run_id"] not in (run_id, run["run_id"])]
    if not others:  # (a scheduled run at midnight UTC could have taken the payment first)
        created = [
            a.source_id
            for a in store.audit.for_run(DAG_ID, run["run_id"])
            if a.entity == "payment" and a.action == "created"
        ]
        assert len(created) == 1, f"the webhook run should have written the payment: {created}"

    # A late duplicate, after the run: acknowledged, not stored, no new run.
    late = control.redeliver(first["n"])
    poll(
        env,
        "the late redelivery",
        lambda: next((d for d in control.webhooks() if d["n"] == late["n"] and (d["status"] or d["error"])), None),
        timeout=20,
        every=0.2,
    )
    assert next(d for d in control.webhooks() if d["n"] == late["n"])["status"] == 200
    time.sleep(6)  # several dispatcher ticks (2 s)
    assert [r["event_id"] for r in inbox_rows(store)] == [event_id]
    assert store.inbox.pending("bill") == []
    assert [r["run_id"] for r in webhook_runs(env)] == [run["run_id"]]
    _, payments = fb_payments_of(control, BILL_NUMBER)
    assert len(payments) == 1, payments
