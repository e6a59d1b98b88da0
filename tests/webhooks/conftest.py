"""Fixtures for the webhook tests: a tmp SQLite state store, fake connection extras, a TestClient.

Signatures in these tests are computed here, from the dossiers' formulas, never with the code
under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from airflow_provider_mlconnector.state import StateStore
from airflow_provider_mlconnector.webhooks.app import create_app
from airflow_provider_mlconnector.webhooks.credentials import WebhookCredentials
from airflow_provider_mlconnector.webhooks.dispatcher import ActiveRun, TriggerResult
from airflow_provider_mlconnector.webhooks.settings import WebhookSettings
from tests.webhooks import _airflow_probe

QBO_VERIFIER = "qbo-verifier-token-123"
QBO_REALM = "1185883450"
BC_SECRET = "bc-client-secret-xyz"
BC_STORE = "abc123store"
BILL_ORG = "00802DEVKGROHKDIY4zyx"
BAMBOO_COMPANY = "acme"
FB_ACCOUNT = "6BApk"


class FakeExtras:
    """Connection extras per system, mutable by tests."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, str]] = {
            "quickbooks": {"realm_id": QBO_REALM, "webhook_verifier_token": QBO_VERIFIER},
            "bigcommerce": {"store_hash": BC_STORE, "client_secret": BC_SECRET},
            "bill": {"organization_id": BILL_ORG},
            "bamboohr": {"company_domain": BAMBOO_COMPANY},
            "freshbooks": {"account_id": FB_ACCOUNT},
        }

    def get(self, system: str, name: str) -> str | None:
        return self.values.get(system, {}).get(name)


class FakeAirflow:
    """Enough of Airflow: runs are created queued; tests move them to running and done."""

    def __init__(self, dags: set[str]) -> None:
        self.dags = dags
        self.runs: dict[str, dict[str, str]] = {}  # dag -> run_id -> state
        self.triggers: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_next: Exception | None = None

    def active_run(self, dag_id: str) -> ActiveRun | None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        runs = self.runs.get(dag_id, {})
        for wanted in ("queued", "running"):
            for run_id, state in runs.items():
                if state == wanted:
                    return ActiveRun(run_id, state)
        return None

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any]) -> TriggerResult:
        if dag_id not in self.dags:
            return TriggerResult.NO_DAG
        runs = self.runs.setdefault(dag_id, {})
        if run_id in runs:
            return TriggerResult.EXISTS
        runs[run_id] = "queued"
        self.triggers.append((dag_id, run_id, dict(conf)))
        return TriggerResult.TRIGGERED

    def advance(self) -> None:
        """The scheduler's move: queued -> running -> success (one step per call)."""
        for runs in self.runs.values():
            for run_id, state in runs.items():
                runs[run_id] = {"queued": "running", "running": "success"}.get(state, state)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Build Airflow's API app in the background while the other tests run.
    if any(item.name == _airflow_probe.TEST_NAME for item in items):
        _airflow_probe.start()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}", [Fernet.generate_key().decode()])
    try:
        yield state
    finally:
        state.close()


@pytest.fixture
def extras() -> FakeExtras:
    return FakeExtras()


@pytest.fixture
def settings() -> WebhookSettings:
    return WebhookSettings(max_body_bytes=4096, max_clock_skew=300)


@pytest.fixture
def credentials(store: StateStore) -> WebhookCredentials:
    return WebhookCredentials(store.tokens)


@pytest.fixture
def client(store: StateStore, extras: FakeExtras, settings: WebhookSettings) -> Iterator[TestClient]:
    app = create_app(settings=settings, store=store, extras=extras, run_dispatcher=False)
    with TestClient(app) as test_client:
        yield test_client


def rows(store: StateStore, system: str | None = None) -> list[Any]:
    return store.inbox.pending(system)


# ---------------------------------------------------------------- signatures, from the dossiers


def b64_hmac(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def freshbooks_sign(verifier: str, fields: list[tuple[str, str]]) -> str:
    # FreshBooks' reference code, quoted in the dossier (A12).
    msg = dict((k, str(v)) for k, v in fields)  # verbatim from the vendor sample
    return base64.b64encode(
        hmac.new(verifier.encode("utf-8"), msg=json.dumps(msg).encode("utf-8"), digestmod=hashlib.sha256).digest()
    ).decode()


def bamboohr_sign(private_key: str, body: bytes, timestamp: str) -> str:
    return hmac.new(private_key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def standard_sign(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    return "v1," + b64_hmac(secret.encode(), f"{message_id}.{timestamp}.".encode() + body)
