"""Token chains survive a lost answer, and a chain that is really broken says who must re-authorize
and how. Against the sandbox: FreshBooks and QuickBooks rotate refresh tokens; BILL logins wait on
a per-minute cap while holding the session lock."""

from __future__ import annotations

import threading
import time

import pytest

from airflow_provider_mlconnector.core.http import RetrySettings
from airflow_provider_mlconnector.exceptions import AuthError, ReauthorizationRequiredError
from airflow_provider_mlconnector.hooks import bill as bill_module
from airflow_provider_mlconnector.hooks.bill import BillHook
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook
from airflow_provider_mlconnector.hooks.quickbooks import QuickBooksHook
from airflow_provider_mlconnector.sandbox import bill, freshbooks, quickbooks

SANDBOX_SYSTEMS = [freshbooks.FreshBooksSandbox, quickbooks.QuickBooksSandbox, bill.BillSandbox]
CONN_ID = "chain_test"
FAST = RetrySettings(max_attempts=3, base_wait=0.01, max_wait=120)
TOKEN_ROUTES = {"freshbooks": "/auth/oauth/token", "quickbooks": "/oauth2/v1/tokens/bearer"}
GRACE_SWITCHES = {"freshbooks": "refresh_reuse_grace_seconds", "quickbooks": "refresh_token_grace_seconds"}
HOOKS = {"freshbooks": FreshBooksHook, "quickbooks": QuickBooksHook}


@pytest.fixture(autouse=True)
def _fresh(sandbox, reset_demo, monkeypatch):
    reset_demo(rewind_clock=True, restore_switches=True)
    sandbox.control.clear_requests()
    monkeypatch.setattr(bill_module, "_LIMITS", {})


@pytest.fixture
def connect(sandbox, use_connection):
    def _connect(system: str, **extra) -> dict:
        conn = sandbox.sandbox.systems[system].connection(f"{sandbox.url}/{system}")
        conn["extra"].update(extra)
        return use_connection(CONN_ID, conn)

    return _connect


def hook_for(system: str, store):
    return HOOKS[system](CONN_ID, state_store=store, retry=FAST, sleep=lambda _s: None)


def token_calls(sandbox, system: str) -> int:
    return sum(n for route, n in sandbox.control.request_counts(system).items() if TOKEN_ROUTES[system] in route)


def touch(hook) -> object:
    """One authenticated call."""
    return hook.me() if isinstance(hook, FreshBooksHook) else hook.get_company_info()


def lose_the_next_refresh_answer(sandbox, system: str) -> None:
    """The vendor rotates the refresh token, then the connection drops before its answer arrives."""
    sandbox.control.fault(system, "drop_after_commit", method="POST", path=TOKEN_ROUTES[system])


@pytest.mark.parametrize("system", sorted(HOOKS))
def test_a_lost_refresh_answer_keeps_the_chain_when_the_vendor_accepts_the_retried_grant(
    system, sandbox, connect, state_store
):
    sandbox.control.switch(system, GRACE_SWITCHES[system], 60)
    connect(system)
    lose_the_next_refresh_answer(sandbox, system)
    assert touch(hook_for(system, state_store))  # the same grant, sent once more, answered
    assert token_calls(sandbox, system) == 2

    # the chain goes on: a later refresh (the access token expired) works with what was stored
    sandbox.control.fault(system, "expired_auth")
    assert touch(hook_for(system, state_store))
    assert token_calls(sandbox, system) == 3


def test_a_lost_refresh_answer_on_a_strictly_single_use_chain_is_one_reauthorization_error(
    sandbox, connect, state_store
):
    """FreshBooks documents single-use refresh tokens; whether it accepts a retry is unconfirmed, and
    by default the sandbox does not: the retry is refused, the chain is broken, and the error says so."""
    connect("freshbooks")
    lose_the_next_refresh_answer(sandbox, "freshbooks")
    with pytest.raises(ReauthorizationRequiredError) as caught:
        touch(hook_for("freshbooks", state_store))
    error = caught.value
    assert token_calls(sandbox, "freshbooks") == 2  # the grant was retried exactly once
    assert isinstance(error, AuthError)
    assert error.conn_id == CONN_ID
    assert error.command == f"python -m airflow_provider_mlconnector.hooks.consent freshbooks --conn-id {CONN_ID}"
    assert error.command in str(error) and "answer was lost" in str(error)
    # every later task fails the same clear way, without hammering the token endpoint
    with pytest.raises(ReauthorizationRequiredError):
        touch(hook_for("freshbooks", state_store))
    assert token_calls(sandbox, "freshbooks") == 3


@pytest.mark.parametrize("system", sorted(HOOKS))
def test_a_refused_refresh_token_is_one_reauthorization_error_naming_the_connection(
    system, sandbox, connect, state_store
):
    connect(system, refresh_token="not-a-token-the-vendor-issued")
    with pytest.raises(ReauthorizationRequiredError) as caught:
        touch(hook_for(system, state_store))
    assert token_calls(sandbox, system) == 1  # refused: nothing to retry
    assert f"connection '{CONN_ID}'" in str(caught.value)
    assert f"hooks.consent {system} --conn-id {CONN_ID}" in str(caught.value)


def test_a_bill_login_waiting_on_its_per_minute_cap_does_not_stop_other_writers(
    sandbox, connect, state_store, fake_time
):
    """The session lock is held while the login waits for BILL's per-minute login cap; other tasks
    write to the state store meanwhile (on SQLite the lock must not be the database write lock)."""
    connect("bill")
    sandbox.control.switch("bill", "login_per_minute_limit", 1)
    others: list[object] = []
    clock = fake_time(sandbox.control, start=time.time())

    def sleep(seconds: float) -> None:
        # while the login waits, another task records something
        def write() -> None:
            others.append(state_store.tokens.put("quickbooks", "another-realm", {"access_token": "a"}))

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(timeout=5)
        others.append("done" if not writer.is_alive() else "blocked")
        clock.sleep(seconds)

    first = BillHook(CONN_ID, state_store=state_store, retry=FAST, sleep=sleep, clock=clock.clock)
    first.login()  # the one login this minute allows
    sandbox.control.fault("bill", "expired_auth")  # the session dies: the next call logs in again
    second = BillHook(CONN_ID, state_store=state_store, retry=FAST, sleep=sleep, clock=clock.clock)
    assert second.session_info()["organizationId"] == first.organization_id
    assert others and "blocked" not in others, others
    assert clock.slept  # it really waited for the cap
