"""``test_connection()`` (the UI's Test button, ``airflow connections test``) proves the secrets that are
in the connection now, for all six systems, against the real sandbox.

Each case first warms every cache the hook has (a stored OAuth access token, a BILL session), then
puts a wrong secret in the connection: the Test must fail and name the field to fix. Putting the
right secret back must work again without a new consent (a wrong secret never breaks a token chain).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet

from airflow_provider_mlconnector.hooks.bamboohr import BambooHRHook
from airflow_provider_mlconnector.hooks.base import MLConnectorHook
from airflow_provider_mlconnector.hooks.bigcommerce import BigCommerceHook
from airflow_provider_mlconnector.hooks.bill import BillHook
from airflow_provider_mlconnector.hooks.expensify import ExpensifyHook
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook
from airflow_provider_mlconnector.hooks.quickbooks import QuickBooksHook
from airflow_provider_mlconnector.sandbox.registry import SYSTEMS

SANDBOX_SYSTEMS = SYSTEMS
CONN_ID = "truth_test"


@dataclass(frozen=True)
class Case:
    """One way of connecting a system, and the secret to get wrong."""

    name: str
    hook: type[MLConnectorHook]
    field: str  # "password" or an extra's name
    named_as: tuple[str, ...]  # what the failure message must say (the field to fix)
    oauth: bool = False  # the sandbox's OAuth-mode connection (BambooHR)


CASES = [
    Case("freshbooks", FreshBooksHook, "password", ("client secret (password)",)),
    Case("bill", BillHook, "password", ("password",)),
    Case("bill", BillHook, "dev_key", ("dev_key",)),
    Case("quickbooks", QuickBooksHook, "password", ("client secret (password)",)),
    Case("bamboohr", BambooHRHook, "password", ("API key (password)",)),
    Case("bamboohr", BambooHRHook, "password", ("client secret (password)",), oauth=True),
    Case("expensify", ExpensifyHook, "password", ("partnerUserSecret (password)",)),
    Case("bigcommerce", BigCommerceHook, "password", ("access token (password)",)),
]


def _id(case: Case) -> str:
    return f"{case.name}{'-oauth' if case.oauth else ''}-{case.field}"


@pytest.fixture(autouse=True)
def _fresh(sandbox, reset_demo):
    reset_demo(rewind_clock=True)


@pytest.fixture
def connect(sandbox, use_connection):
    def _connect(case: Case, **changes: str) -> dict:
        system = sandbox.sandbox.systems[case.name]
        base = f"{sandbox.url}/{case.name}"
        conn = system.oauth_connection(base) if case.oauth else system.connection(base)  # type: ignore[attr-defined]
        for field, value in changes.items():
            if field in ("login", "password"):
                conn[field] = value
            else:
                conn["extra"][field] = value
        return use_connection(CONN_ID, conn)

    return _connect


def _hook(case: Case, store) -> MLConnectorHook:
    return case.hook(CONN_ID, state_store=store, sleep=lambda _s: None)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_a_wrong_secret_fails_the_test_even_with_a_warm_cache(case, connect, state_store, sandbox):
    right = connect(case)
    ok, message = _hook(case, state_store).test_connection()
    assert ok, message  # warm: tokens / session now cached in the state store

    connect(case, **{case.field: "wrong-" + case.name})
    ok, message = _hook(case, state_store).test_connection()
    assert not ok, message
    for words in case.named_as:
        assert words in message
    assert f"'{CONN_ID}'" in message  # which connection to fix

    connect(case, **{case.field: right["password"] if case.field == "password" else right["extra"][case.field]})
    ok, message = _hook(case, state_store).test_connection()
    assert ok, message  # the wrong attempt did not break the token chain or the session


def test_a_cached_token_is_not_used_by_other_secrets_even_for_a_sync_call(connect, state_store, sandbox):
    case = CASES[0]
    connect(case)
    assert _hook(case, state_store).test_connection()[0]
    connect(case, password="wrong")
    hook = _hook(case, state_store)
    with pytest.raises(Exception, match=r"client secret \(password\)"):
        hook.me()  # type: ignore[attr-defined]


# ------------------------------------------------------------------ through Airflow's own CLI


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """A migrated Airflow home of its own (SQLite): connections saved as Admin > Connections saves them."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "MLCONNECTOR_STATE_URL": f"sqlite:///{home}/state.db",
        "MLCONNECTOR_FERNET_KEY": Fernet.generate_key().decode(),
    }
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW_CONN_")}
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    return env


def _airflow(env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True)


def test_airflow_connections_test_proves_a_saved_connection_and_names_a_wrong_secret(airflow_home, sandbox):
    conn = sandbox.sandbox.systems["freshbooks"].connection(f"{sandbox.url}/freshbooks")
    saved = _airflow(airflow_home, "connections", "add", "fb_saved", "--conn-json", json.dumps(conn))
    assert saved.returncode == 0, saved.stderr
    tested = _airflow(airflow_home, "connections", "test", "fb_saved")
    assert "Connection success!" in tested.stdout, tested.stdout + tested.stderr

    # a command-line tool outside Airflow (the consent helper, webhook registration) finds it too
    probe = (
        "from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook; "
        "print(FreshBooksHook('fb_saved').test_connection())"
    )
    found = subprocess.run([sys.executable, "-c", probe], env=airflow_home, capture_output=True, text=True)
    assert "Connected to FreshBooks as Maya Chen" in found.stdout, found.stdout + found.stderr

    edited = {**conn, "password": "not-the-secret"}
    _airflow(airflow_home, "connections", "delete", "fb_saved")
    assert _airflow(airflow_home, "connections", "add", "fb_saved", "--conn-json", json.dumps(edited)).returncode == 0
    tested = _airflow(airflow_home, "connections", "test", "fb_saved")
    assert "Connection failed!" in tested.stdout, tested.stdout + tested.stderr
    assert "client secret (password)" in tested.stdout, tested.stdout + tested.stderr
    assert "not-the-secret" not in tested.stdout + tested.stderr
