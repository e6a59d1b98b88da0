"""The FreshBooks hook against the running sandbox, plus requests-mock for edge cases."""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
import requests
import requests_mock

from airflow_provider_mlconnector.core.http import RetrySettings
from airflow_provider_mlconnector.core.secrets import mask
from airflow_provider_mlconnector.exceptions import (
    AuthError,
    ConfigurationError,
    RecordRejectedError,
    WriteOutcomeUnknownError,
)
from airflow_provider_mlconnector.hooks.freshbooks import (
    FreshBooksHook,
    VisState,
    credential_key,
    freshbooks_error_parser,
    line_category_id,
    money,
    parse_money,
)
from airflow_provider_mlconnector.sandbox.freshbooks import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_MULTI_REFRESH_TOKEN,
    SANDBOX_REFRESH_TOKEN,
    FreshBooksSandbox,
)
from airflow_provider_mlconnector.webhooks import signatures

CONN_ID = "freshbooks_test"
TOKEN_ROUTE = "freshbooks POST /auth/oauth/token"
ME_ROUTE = "freshbooks GET /auth/api/v1/users/me"
BILLS_ROUTE = "freshbooks GET /accounting/account/{account_id}/bills/bills"
FAST = RetrySettings(max_attempts=3, base_wait=0.01, max_wait=5)
DEMO_BILLS = ["ADB-2026-10", "ADB-2026-11", "GADS-5521", "META-88213", "NCC-778", "PFS-1039", "PFS-1041", "PFS-1042"]


@pytest.fixture(scope="module", autouse=True)
def _airflow_logging_ready():
    # The first mask_secret() configures Airflow's logging, which replaces the root handlers (and
    # pytest's caplog handler with them): make it happen before any test captures logs.
    mask("mlconnector-freshbooks-warm-up")


SANDBOX_SYSTEMS = [FreshBooksSandbox]


@pytest.fixture(autouse=True)
def _fresh(sandbox, reset_demo):
    reset_demo()  # reset() also restores the default switches and rewinds the clock
    sandbox.control.clear_requests()


@pytest.fixture
def store(state_store):
    return state_store


@pytest.fixture
def connect(sandbox, use_connection):
    """Point AIRFLOW_CONN_<id> at the sandbox; returns the connection dict."""

    def _connect(conn_id: str = CONN_ID, **extra):
        conn = sandbox.sandbox.systems["freshbooks"].connection(f"{sandbox.url}/freshbooks")
        conn["extra"].update(extra)
        conn["extra"] = {k: v for k, v in conn["extra"].items() if v is not None}
        return use_connection(conn_id, conn)

    _connect()
    return _connect


@pytest.fixture
def make_hook(store, connect):
    def _make(conn_id: str = CONN_ID, **kwargs) -> FreshBooksHook:
        return FreshBooksHook(conn_id, state_store=store, retry=FAST, sleep=lambda _s: None, **kwargs)

    return _make


def counts(sandbox) -> dict[str, int]:
    return sandbox.control.request_counts("freshbooks")


def token_calls(sandbox) -> int:
    return counts(sandbox).get(TOKEN_ROUTE, 0)


def oauth_stats(sandbox) -> dict[str, int]:
    return sandbox.control.state("freshbooks")["oauth"]


def numbers(bills) -> list[str]:
    return sorted(b["bill_number"] for b in bills)


# ------------------------------------------------------------------ the token chain


def test_first_use_refreshes_once_and_later_tasks_reuse_the_stored_chain(sandbox, make_hook, store):
    hook = make_hook()
    assert numbers(hook.bills.list()) == DEMO_BILLS
    assert token_calls(sandbox) == 1
    key = credential_key(SANDBOX_CLIENT_ID, SANDBOX_REFRESH_TOKEN)
    assert hook.credential_key == key
    assert hook.account_id == "BRT4201"
    stored = store.tokens.get("freshbooks", key)
    assert stored["refresh_token"] != SANDBOX_REFRESH_TOKEN  # rotated, and kept
    assert stored["expires_at"] > time.time() + 40000
    # a later task (new hook) uses the stored access token and the cached business: no token, no users/me
    sandbox.control.clear_requests()
    again = make_hook()
    assert len(list(again.bill_vendors.list())) == 5
    assert counts(sandbox) == {"freshbooks GET /accounting/account/{account_id}/bill_vendors/bill_vendors": 1}


def test_rotated_refresh_token_is_saved_before_the_new_access_token_is_used(make_hook, store, monkeypatch):
    conn = {
        "conn_type": "freshbooks",
        "login": "cid",
        "password": "csecret",
        "extra": {"refresh_token": "initial-rt", "redirect_uri": "https://example.com/cb"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_FB_MOCKED", json.dumps(conn))
    key = credential_key("cid", "initial-rt")
    seen: dict[str, object] = {}

    def users_me(request, context):
        # The moment the new access token is first used, the new refresh token must already be stored.
        seen["stored"] = store.tokens.get("freshbooks", key)["refresh_token"]
        seen["auth"] = request.headers["Authorization"]
        return {"response": {"identity_id": 7, "business_memberships": [_membership("ACC1", 1, "u-1", "Solo Co")]}}

    with requests_mock.Mocker() as mocked:
        token = mocked.post(
            "https://api.freshbooks.com/auth/oauth/token",
            # the server's clock is 14 hours behind ours: expiry must be counted on our clock
            json={
                "access_token": "access-1",
                "refresh_token": "rt-2",
                "expires_in": 43200,
                "created_at": int(time.time()) - 50400,
            },
        )
        mocked.get("https://api.freshbooks.com/auth/api/v1/users/me", json=users_me)
        mocked.get(
            "https://api.freshbooks.com/accounting/account/ACC1/bills/bills",
            json={"response": {"result": {"bills": [], "page": 1, "pages": 0, "per_page": 100, "total": 0}}},
        )
        hook = FreshBooksHook("fb_mocked", state_store=store, retry=FAST, sleep=lambda _s: None)
        assert list(hook.bills.list()) == []
        assert list(hook.bills.list()) == []
        assert token.call_count == 1
    assert store.tokens.get("freshbooks", key)["expires_at"] > time.time() + 43000
    assert seen == {"stored": "rt-2", "auth": "Bearer access-1"}
    sent = dict(parse_qsl(token.last_request.text))
    assert sent == {
        "grant_type": "refresh_token",
        "refresh_token": "initial-rt",
        "redirect_uri": "https://example.com/cb",
        "client_id": "cid",
        "client_secret": "csecret",
    }


def _membership(account_id, business_id, uuid, name, role="owner"):
    return {
        "id": business_id + 1,
        "role": role,
        "business": {"id": business_id, "business_uuid": uuid, "account_id": account_id, "name": name},
    }


def test_eight_threads_with_an_expired_token_make_exactly_one_refresh(sandbox, make_hook, store):
    assert make_hook().business  # first chain link + business cache
    key = credential_key(SANDBOX_CLIENT_ID, SANDBOX_REFRESH_TOKEN)
    stored = store.tokens.get("freshbooks", key)
    store.tokens.put("freshbooks", key, {**stored, "expires_at": time.time() - 5})
    sandbox.control.advance_clock(43201)  # and dead on the server too
    sandbox.control.clear_requests()
    hooks = [make_hook() for _ in range(8)]
    barrier = threading.Barrier(8)
    results: list[object] = [None] * 8

    def task(n: int) -> None:
        barrier.wait()
        try:
            results[n] = numbers(hooks[n].bills.list())
        except Exception as exc:  # reported below
            results[n] = exc

    threads = [threading.Thread(target=task, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [DEMO_BILLS] * 8
    assert token_calls(sandbox) == 1
    assert counts(sandbox)[BILLS_ROUTE] == 8  # nobody was turned away
    assert oauth_stats(sandbox)["rejected_refresh"] == 0


WORKER = r"""
import json, os, sys, time, pathlib
from airflow_provider_mlconnector.core.http import RetrySettings
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook
from airflow_provider_mlconnector.state import StateStore

store = StateStore(os.environ["FB_TEST_STATE_URL"], fernet_keys=[os.environ["FB_TEST_FERNET_KEY"]])
hook = FreshBooksHook(sys.argv[1], state_store=store, retry=RetrySettings(max_attempts=2, base_wait=0.01))
folder = pathlib.Path(sys.argv[2])
(folder / f"ready-{os.getpid()}").touch()
deadline = time.monotonic() + 60
while not (folder / "go").exists():
    if time.monotonic() > deadline:
        raise SystemExit("no go signal")
    time.sleep(0.005)
print(json.dumps(sorted(b["bill_number"] for b in hook.bills.list())))
"""


def test_real_processes_whose_token_died_make_exactly_one_refresh(sandbox, make_hook, state_url, fernet_key, tmp_path):
    assert make_hook().business  # the chain and the business cache exist; the stored token looks valid
    sandbox.control.advance_clock(43201)  # ...but the server has expired it: every process gets a 401
    sandbox.control.clear_requests()
    env = {**os.environ, "FB_TEST_STATE_URL": state_url, "FB_TEST_FERNET_KEY": fernet_key}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, CONN_ID, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    deadline = time.monotonic() + 90
    while len(list(tmp_path.glob("ready-*"))) < len(procs):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
        time.sleep(0.05)
    (tmp_path / "go").touch()
    outputs = [p.communicate(timeout=90) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        assert json.loads(out.strip().splitlines()[-1]) == DEMO_BILLS
    assert token_calls(sandbox) == 1
    assert oauth_stats(sandbox)["rejected_refresh"] == 0


def test_a_task_holding_a_replaced_token_never_sends_a_used_refresh_token(sandbox, make_hook):
    first, second = make_hook(), make_hook()
    assert first.business == second.business  # both hold the same access token in memory
    sandbox.control.advance_clock(43201)
    list(first.bills.list())  # 401 -> refresh (this revokes the token `second` holds)
    list(second.bills.list())  # 401 -> waits for the lock -> takes the stored token, no refresh
    assert token_calls(sandbox) == 2  # the initial link and one refresh
    assert oauth_stats(sandbox)["reused_refresh"] == 0
    assert oauth_stats(sandbox)["rejected_refresh"] == 0


def test_token_expiring_mid_pagination_is_absorbed_by_one_refresh(sandbox, make_hook):
    sandbox.control.generate({"freshbooks": {"bills": 242}})
    hook = make_hook()
    bills = hook.bills.list()
    head = list(itertools.islice(bills, 100))  # page 1 read
    sandbox.control.fault("freshbooks", "expired_auth", path="bills/bills$")
    middle = list(itertools.islice(bills, 100))
    sandbox.control.advance_clock(43300)  # and once more by the clock before page 3
    tail = list(bills)
    assert len({b["id"] for b in head + middle + tail}) == 250
    assert token_calls(sandbox) == 3  # first link + one refresh per expiry
    assert counts(sandbox)[BILLS_ROUTE] == 5  # 3 pages + 2 replays after a 401


def test_unauthenticated_answered_with_403_still_triggers_one_refresh(sandbox, make_hook):
    sandbox.control.switch("freshbooks", "users_me_unauthenticated_status", 403)
    hook = make_hook()
    hook.me()
    sandbox.control.fault("freshbooks", "expired_auth")
    assert hook.me()["first_name"] == "Maya"
    assert token_calls(sandbox) == 2


def test_an_unknown_refresh_token_fails_fast_with_reauthorize(sandbox, make_hook, connect):
    connect(refresh_token="0" * 64)
    hook = make_hook()
    with pytest.raises(AuthError) as caught:
        hook.me()
    assert "re-authorize" in str(caught.value)
    assert caught.value.code == "invalid_grant"
    assert token_calls(sandbox) == 1  # no retry storm


def test_a_broken_chain_fails_fast_with_reauthorize(sandbox, make_hook):
    assert make_hook().business
    sandbox.control.reset()  # the vendor forgot every token we hold (revoked access)
    sandbox.control.seed_demo()
    sandbox.control.clear_requests()
    with pytest.raises(AuthError, match="re-authorize"):
        list(make_hook().bills.list())
    assert token_calls(sandbox) == 1
    assert counts(sandbox)[BILLS_ROUTE] == 1


def test_no_token_or_secret_in_logs_or_exception_text(sandbox, make_hook, store, caplog, connect):
    caplog.set_level(logging.DEBUG)
    hook = make_hook()
    list(hook.bills.list())
    sandbox.control.fault("freshbooks", "expired_auth")
    list(hook.bill_vendors.list())
    with pytest.raises(RecordRejectedError) as rejected:
        hook.bill_payments.create(
            {"billid": 7101, "amount": money("99999"), "paid_date": "2026-11-20", "payment_type": "Check"}
        )
    # a stale store: its refresh token was used already, so the vendor refuses it
    key = credential_key(SANDBOX_CLIENT_ID, SANDBOX_REFRESH_TOKEN)
    stale = {**store.tokens.get("freshbooks", key), "refresh_token": SANDBOX_REFRESH_TOKEN, "expires_at": 0}
    store.tokens.put("freshbooks", key, stale)
    with pytest.raises(AuthError) as refused:
        list(make_hook().bills.list())
    backend = sandbox.sandbox.systems["freshbooks"].backend
    secrets = [SANDBOX_CLIENT_SECRET, SANDBOX_REFRESH_TOKEN, *backend.access_tokens, *backend.refresh_tokens]
    assert len(secrets) > 4
    texts = [caplog.text, *(r.getMessage() for r in caplog.records)]
    for exc in (rejected.value, refused.value):
        texts += [str(exc), repr(exc), exc.body or "", json.dumps(exc.to_dict())]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    # the capture really saw the whole run (raw records: caplog's handler does not mask)
    messages = [r.getMessage() for r in caplog.records]
    assert any("credentials renewed" in m for m in messages)
    assert any("bill_payments/bill_payments -> 422" in m for m in messages)


# ------------------------------------------------------------------ business discovery


def test_an_identity_with_two_businesses_must_name_one(sandbox, make_hook, connect):
    connect(refresh_token=SANDBOX_MULTI_REFRESH_TOKEN)
    with pytest.raises(ConfigurationError) as caught:
        _ = make_hook().business
    message = str(caught.value)
    assert "Harbor Lane Studio (account_id HLS7733, business_id 439002" in message
    assert "Brightside Marketing (account_id BRT4201, business_id 439001" in message
    assert "business_id" in message
    connect(refresh_token=SANDBOX_MULTI_REFRESH_TOKEN, business_id="439002")
    assert [v["vendor_name"] for v in make_hook().bill_vendors.list()] == ["Lakeshore Print Shop"]
    connect(refresh_token=SANDBOX_MULTI_REFRESH_TOKEN, account_id="BRT4201")
    assert make_hook().business.name == "Brightside Marketing"
    connect(refresh_token=SANDBOX_MULTI_REFRESH_TOKEN, account_id="NOPE42")
    with pytest.raises(ConfigurationError, match="account_id NOPE42, but this FreshBooks identity belongs to"):
        _ = make_hook().business
    assert counts(sandbox)[ME_ROUTE] == 2  # once to fill the cache, once more for the unknown name


def test_test_connection_names_the_business(make_hook, connect):
    ok, message = make_hook().test_connection()
    assert ok
    assert message == (
        "Connected to FreshBooks as Maya Chen: "
        "Brightside Marketing (account_id BRT4201, business_id 439001, role owner)"
    )
    connect(refresh_token=SANDBOX_MULTI_REFRESH_TOKEN)
    ok, message = make_hook().test_connection()
    assert not ok
    assert "several businesses" in message


def test_missing_connection_fields_are_configuration_errors(make_hook, connect):
    connect(redirect_uri=None)
    with pytest.raises(ConfigurationError, match="redirect_uri"):
        _ = make_hook().config
    connect(refresh_token=None)
    with pytest.raises(ConfigurationError, match=r"hooks\.consent freshbooks --conn-id"):
        _ = make_hook().credential_key


# ------------------------------------------------------------------ resources


def test_paging_walks_every_page(sandbox, make_hook):
    sandbox.control.generate({"freshbooks": {"bill_vendors": 120, "bills": 242}})
    hook = make_hook()
    bills = list(hook.bills.list())
    assert len(bills) == 250
    assert len({b["id"] for b in bills}) == 250
    assert counts(sandbox)[BILLS_ROUTE] == 3
    assert len(list(hook.bill_vendors.list())) == 125


def test_bill_filters_and_includes(make_hook):
    hook = make_hook()
    assert numbers(hook.bills.list(vendorid=5102)) == ["ADB-2026-10", "ADB-2026-11"]
    assert numbers(hook.bills.list(ids=[7105, 7107])) == ["META-88213", "NCC-778"]
    assert list(hook.bills.list(ids=[])) == []
    assert "PFS-1041" in numbers(hook.bills.list(statuses=["overdue"]))
    bill = next(hook.bills.list(ids=[7106], include=["vendor"]))
    assert bill["vendor"]["vendor_name"] == "Google LLC"
    assert [line_category_id(line) for line in bill["lines"]] == [3003, 3004]
    assert [parse_money(line["amount"]) for line in bill["lines"]] == [Decimal("1250.00"), Decimal("84.99")]
    assert hook.bills.get(7103, include=["vendor"])["vendor"]["vendor_name"] == "Adobe Inc."


def test_updates_never_carry_vis_state_and_archive_sends_only_vis_state(sandbox, make_hook):
    hook = make_hook()
    with pytest.raises(ValueError, match="vis_state"):
        hook.bills.update(7102, {"vis_state": 0, "bill_number": "X"})
    with pytest.raises(ValueError, match="action_mark_as_sent"):
        hook.invoices.update(120001, {"action_mark_as_sent": True, "notes": "x"})
    assert hook.bills.update(7102, {"bill_number": "PFS-1042-R"})["bill_number"] == "PFS-1042-R"
    assert hook.bills.archive(7102)["vis_state"] == VisState.ARCHIVED
    assert "PFS-1042-R" in numbers(hook.bills.list())  # archived bills stay listed
    hook.bills.delete(7102)
    assert "PFS-1042-R" not in numbers(hook.bills.list())
    assert numbers(hook.bills.list(vis_state=VisState.DELETED)) == ["PFS-1042-R"]
    hook.bills.restore(7102)
    assert hook.bills.get(7102)["vis_state"] == 0
    with requests_mock.Mocker(real_http=True) as mocked:
        put = mocked.put(
            f"{sandbox.url}/freshbooks/accounting/account/BRT4201/bills/bills/7104",
            json={"response": {"result": {"bill": {"id": 7104, "vis_state": 2}}}},
        )
        hook.bills.archive(7104)
        hook.bills.delete(7104)
    assert [r.json() for r in put.request_history] == [{"bill": {"vis_state": 2}}, {"bill": {"vis_state": 1}}]


def test_bill_payment_write_back_recomputes_the_bill(make_hook):
    hook = make_hook()
    part = hook.bill_payments.create(
        {"billid": 7103, "amount": money(Decimal("300.00")), "paid_date": "2026-11-20", "payment_type": "ACH"}
    )
    bill = hook.bills.get(7103)
    assert (bill["status"], parse_money(bill["outstanding"])) == ("partial", Decimal("359.88"))
    hook.bill_payments.create(
        {"billid": 7103, "amount": money("359.88"), "paid_date": "2026-11-21", "payment_type": "ACH", "note": "BILL"}
    )
    bill = hook.bills.get(7103)
    assert (bill["status"], parse_money(bill["paid"])) == ("paid", Decimal("659.88"))
    assert [parse_money(p["amount"]) for p in bill["bill_payments"]] == [
        Decimal("300.00"),
        Decimal("359.88"),
    ]
    with pytest.raises(RecordRejectedError) as over:
        hook.bill_payments.create(
            {"billid": 7103, "amount": money("0.01"), "paid_date": "2026-11-21", "payment_type": "ACH"}
        )
    assert over.value.code == "1004"
    assert over.value.status == 422
    hook.bill_payments.delete(part["id"])
    assert hook.bills.get(7103)["status"] == "partial"
    assert len(list(hook.bill_payments.list())) == 1
    assert len(list(hook.bill_payments.list(vis_state=VisState.DELETED))) == 1


def test_a_lost_create_answer_is_write_outcome_unknown_and_was_committed(sandbox, make_hook):
    hook = make_hook()
    assert hook.business
    sandbox.control.fault("freshbooks", "drop_after_commit", method="POST", path="bill_payments")
    with pytest.raises(WriteOutcomeUnknownError):
        hook.bill_payments.create(
            {"billid": 7105, "amount": money("100.00"), "paid_date": "2026-11-20", "payment_type": "Check"}
        )
    # the upsert layer looks it up before creating again: it is there
    assert [p["amount"]["amount"] for p in hook.bills.get(7105)["bill_payments"]] == ["100.00"]


def test_rate_limits_and_server_errors_are_retried_with_the_injected_sleep(sandbox, store, connect):
    waits: list[float] = []
    hook = FreshBooksHook(CONN_ID, state_store=store, retry=FAST, sleep=waits.append)
    assert hook.business
    sandbox.control.switch("freshbooks", "rate_limit_retry_after", 2)
    sandbox.control.fault("freshbooks", "429", path="bills/bills$")
    sandbox.control.fault("freshbooks", "500", path="bills/bills$")
    assert len(list(hook.bills.list())) == 8
    assert len(waits) == 2
    assert all(w < 5 for w in waits)


def test_reference_data_and_other_resources(make_hook):
    hook = make_hook()
    categories = {c["id"]: c["category"] for c in hook.expense_categories.list()}
    assert categories[3005] == "Meals & Entertainment"
    ledger = {a["number"]: a["name"] for a in hook.ledger_accounts.list()}
    assert ledger["6030"] == "Advertising"
    assert hook.ledger_accounts.get(next(iter(hook.ledger_accounts.list()))["uuid"])["number"]
    members = [m["first_name"] for m in hook.team_members.list()]
    assert members[:3] == ["Maya", "Luis", "Priya"] and len(members) == 12  # 3 users, then the HR demo's people
    assert [s["fname"] for s in hook.staff.list()][:3] == ["Maya", "Luis", "Priya"]
    assert hook.clients.find(email="marcus@summitoutdoor.example")["organization"] == "Summit Outdoor Co."
    invoice = hook.invoices.create(
        {
            "customerid": 88003,
            "create_date": "2026-11-21",
            "lines": [{"name": "Audit", "qty": 1, "unit_cost": money("950")}],
        }
    )
    assert invoice["status"] == 1
    assert hook.invoices.act(invoice["id"], "action_mark_as_sent")["status"] == 2
    hook.payments.create({"invoiceid": invoice["id"], "amount": money("950"), "date": "2026-11-22", "type": "Check"})
    assert hook.invoices.get(invoice["id"])["v3_status"] == "paid"
    assert [p["invoiceid"] for p in hook.payments.list(invoiceid=invoice["id"])] == [invoice["id"]]
    item = hook.items.create({"name": "Brand audit", "unit_cost": money("950.00")})
    assert hook.items.update(item["id"], {"description": "Two days"})["description"] == "Two days"
    expense = hook.expenses.create(
        {"categoryid": 3002, "staffid": 1, "date": "2026-11-21", "amount": money("12.00"), "vendor": "Figma"}
    )
    listed = list(hook.expenses.list(categoryid=3002))
    assert expense["id"] in [e["id"] for e in listed] and {e["categoryid"] for e in listed} == {3002}
    assert hook.invoices.delete(invoice["id"])["vis_state"] == 1
    assert len(list(hook.taxes.list())) == 1
    with pytest.raises(TypeError, match="freshbooks expense_categories cannot create"):
        hook.expense_categories.create({"category": "New"})
    with pytest.raises(TypeError, match="cannot be filtered by updated_min"):
        list(hook.bill_vendors.list(updated_min="2026-01-01"))  # undocumented: FreshBooks would ignore it


def test_projects_live_under_the_business_with_singular_member_paths(sandbox, make_hook):
    # The sandbox serves no projects: the wire format of FB-JS APIClient.ts, mocked around the real hook.
    hook = make_hook()
    business = hook.business.business_id
    base = f"{sandbox.url}/freshbooks/projects/business/{business}"
    with requests_mock.Mocker(real_http=True) as mocked:
        listing = mocked.get(
            f"{base}/projects",
            [
                {"json": {"projects": [{"id": 1, "title": "Audit"}], "meta": {"page": 1, "pages": 2, "total": 2}}},
                {"json": {"projects": [{"id": 2, "title": "Brand"}], "meta": {"page": 2, "pages": 2, "total": 2}}},
            ],
        )
        created = mocked.post(f"{base}/project", json={"project": {"id": 3, "title": "Launch"}})
        updated = mocked.put(f"{base}/project/3", json={"project": {"id": 3, "title": "Launch 2"}})
        deleted = mocked.delete(f"{base}/project/3", status_code=204)
        assert [p["title"] for p in hook.projects.list(active=True)] == ["Audit", "Brand"]
        assert hook.projects.create({"title": "Launch"})["id"] == 3
        assert hook.projects.update(3, {"title": "Launch 2"})["title"] == "Launch 2"
        assert hook.projects.delete(3) is None
    assert listing.request_history[0].qs["active"] == ["true"]
    assert created.last_request.json() == {"project": {"title": "Launch"}}
    assert updated.last_request.json() == {"project": {"title": "Launch 2"}}
    assert deleted.called


def test_credit_notes_are_a_classic_collection_deleted_by_vis_state(sandbox, make_hook):
    # Round-2 addendum 1.3 (the sandbox may not serve credit notes): the classic envelope, mocked.
    hook = make_hook()
    base = f"{sandbox.url}/freshbooks/accounting/account/{hook.account_id}/credit_notes/credit_notes"
    with requests_mock.Mocker(real_http=True) as mocked:
        mocked.get(base, json={"response": {"result": {"credit_notes": [{"id": 4}], "page": 1, "pages": 1}}})
        created = mocked.post(base, json={"response": {"result": {"credit_note": {"id": 5, "vis_state": 0}}}})
        deleted = mocked.put(f"{base}/5", json={"response": {"result": {"credit_note": {"id": 5, "vis_state": 1}}}})
        assert [c["id"] for c in hook.credit_notes.list()] == [4]
        assert hook.credit_notes.create({"clientid": 88001, "credit_type": "goodwill"})["id"] == 5
        assert hook.credit_notes.delete(5)["vis_state"] == VisState.DELETED
    assert created.last_request.json() == {"credit_note": {"clientid": 88001, "credit_type": "goodwill"}}
    assert deleted.last_request.json() == {"credit_note": {"vis_state": 1}}


def test_the_bill_payment_calls_the_freshbooks_to_bill_pair_makes(make_hook):
    hook = make_hook()
    assert numbers(hook.bills.list()) == DEMO_BILLS
    payment = hook.bill_payments.create(
        {"billid": 7103, "amount": money("10.00"), "paid_date": "2026-11-20", "payment_type": "ACH", "note": "m1"}
    )
    embedded = hook.bills.get(7103)["bill_payments"]  # how the pair finds a payment again by its note
    assert [(p["id"], p["note"]) for p in embedded] == [(payment["id"], "m1")]
    assert hook.bill_payments.update(payment["id"], {"note": "x"})["note"] == "x"
    assert hook.bill_payments.delete(payment["id"])["vis_state"] == VisState.DELETED
    assert hook.bills.get(7103)["bill_payments"] == []
    assert numbers(hook.bills.list(vis_state=VisState.DELETED)) == []


# ------------------------------------------------------------------ webhooks


def test_callback_lifecycle_and_signature_verification(sandbox, make_hook):
    hook = make_hook()
    ctx = sandbox.sandbox.ctx
    start = len(ctx.webhooks.deliveries)
    callback = hook.callbacks.create({"event": "bill", "uri": "http://127.0.0.1:9/freshbooks-events"})
    ctx.webhooks.wait_idle()
    verification = dict(parse_qsl(ctx.webhooks.deliveries[start].body.decode()))
    assert verification["object_id"] == str(callback["callbackid"])
    verifier = verification["verifier"]
    assert hook.verify_callback(callback["callbackid"], verifier)["verified"] is True
    hook.bills.update(7105, {"bill_number": "META-88213-R"})
    ctx.webhooks.wait_idle()
    event = ctx.webhooks.deliveries[-1]
    fields = parse_qsl(event.body.decode())
    assert dict(fields)["name"] == "bill.update"
    signature = event.headers["X-FreshBooks-Hmac-SHA256"]
    # the receiver's verifier (webhooks/signatures.py) accepts what the sandbox signed, and nothing else
    assert signatures.form_json_hmac(verifier, fields, signature)
    assert not signatures.form_json_hmac(verifier, [*fields[:-1], ("user_id", "2")], signature)
    assert not signatures.form_json_hmac("another-verifier", fields, signature)
    assert [c["callbackid"] for c in hook.callbacks.list(event="bill.update")] == [callback["callbackid"]]
    hook.resend_callback_verification(callback["callbackid"])
    assert hook.callbacks.delete(callback["callbackid"]) is None
    assert list(hook.callbacks.list()) == []
    with pytest.raises(RecordRejectedError, match="Unrecognized event"):
        hook.callbacks.create({"event": "bill.explode", "uri": "http://127.0.0.1:9/x"})


# ------------------------------------------------------------------ helpers and error shapes


def test_money_helpers_refuse_floats_and_sub_cent_amounts():
    assert money(Decimal("659.88")) == {"amount": "659.88", "code": "USD"}
    assert money("125", "CAD") == {"amount": "125.00", "code": "CAD"}
    assert money(7) == {"amount": "7.00", "code": "USD"}
    with pytest.raises(TypeError):
        money(0.1)
    with pytest.raises(ValueError, match="cents"):
        money("1.005")
    assert parse_money({"amount": "4210.37", "code": "USD"}) == Decimal("4210.37")
    with pytest.raises(ValueError):
        parse_money({"code": "USD"})
    assert line_category_id({"category": {"categoryid": 3001, "category": "Contract Labor"}}) == 3001
    assert line_category_id({"category": "Equipment", "categoryid": 3696445}) == 3696445


def _response(status: int, body: object) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    return response


@pytest.mark.parametrize(
    ("status", "body", "message", "code", "kind"),
    [
        (
            404,
            {
                "response": {
                    "errors": [
                        {
                            "errno": 1012,
                            "field": "userid",
                            "message": "Client not found.",
                            "object": "client",
                            "value": "12345",
                        }
                    ]
                }
            },
            "Client not found. (field userid)",
            "1012",
            None,
        ),
        (
            400,
            {
                "errors": {
                    "message": "Request failed with status code 400",
                    "status": 400,
                    "details": [{"reason": "name: This field is required.", "metadata": {"field": "name"}}],
                }
            },
            "name: This field is required.",
            "400",
            None,
        ),
        (
            422,
            {
                "errno": 422,
                "message": "The request was well-formed but was unable to be followed due to semantic errors.",
                "details": ["event: Value error, Unrecognized event."],
            },
            "The request was well-formed but was unable to be followed due to semantic errors. "
            "(event: Value error, Unrecognized event.)",
            "422",
            None,
        ),
        (
            403,
            {"error": "unauthenticated", "error_description": "This action requires authentication to continue."},
            "This action requires authentication to continue.",
            "unauthenticated",
            "auth_expired",
        ),
        (
            400,
            {
                "code": 3,
                "message": "Invalid argument",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "1004",
                        "metadata": {"field": "amount"},
                    }
                ],
            },
            "Invalid argument (1004)",
            "3",
            None,
        ),
    ],
    ids=["accounting", "businesses", "events", "auth-unauthenticated", "accounting-new-style"],
)
def test_error_parser_reads_every_service_shape(status, body, message, code, kind):
    info = freshbooks_error_parser(_response(status, body))
    assert (info.message, info.code, info.kind) == (message, code, kind)
    assert "12345" not in info.message  # field values are left out
