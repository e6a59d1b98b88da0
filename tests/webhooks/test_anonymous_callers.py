"""Nothing an anonymous caller sends makes the receiver write (issue 13, item 6).

The FreshBooks verification message cannot be authenticated, so the receiver must answer it
from reads alone unless it is the first verifier of a callback we registered; handshakes are
rate-limited; caller text is quoted in the log; a replayed signed event starts at most one run.
Checked on SQLite and on a real PostgreSQL (the ``pg_server`` fixture of the state tests).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from airflow_provider_mlconnector.exceptions import FatalApiError, RetryableApiError
from airflow_provider_mlconnector.state import StateStore, schema
from airflow_provider_mlconnector.webhooks.app import create_app
from airflow_provider_mlconnector.webhooks.credentials import WebhookCredentials
from airflow_provider_mlconnector.webhooks.dispatcher import Dispatcher
from airflow_provider_mlconnector.webhooks.settings import WebhookSettings
from tests.state.conftest import PgServer, pg_server  # noqa: F401  (pg_server is a fixture)
from tests.webhooks.conftest import FB_ACCOUNT, FakeAirflow, FakeExtras, b64_hmac, freshbooks_sign

PENDING = "2001"  # registered, no verifier yet
OFFERED = "2003"  # registered, a verifier received, not confirmed with FreshBooks yet
VERIFIED = "2002"  # registered and verified
VERIFIER = "fb-verifier-of-2002"
OFFERED_VERIFIER = "fb-verifier-of-2003"


def settings(**env: str) -> WebhookSettings:
    """Settings as the environment spells them (``handshake_burst`` -> MLCONNECTOR_WEBHOOK_HANDSHAKE_BURST)."""
    defaults = {"max_body_bytes": "4096", "handshake_burst": "3", "handshake_interval": "3600"}
    return WebhookSettings.from_env({f"MLCONNECTOR_WEBHOOK_{k.upper()}": v for k, v in {**defaults, **env}.items()})


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """A migrated store on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        url = server.create_schema()
    state = StateStore(url, [Fernet.generate_key().decode()])
    state.migrate()
    try:
        yield state
    finally:
        state.close()
        if request.param == "postgresql":
            server.drop_schema(url)


class Statements:
    """Every SQL statement the store's engine sends while recording."""

    def __init__(self, store: StateStore) -> None:
        self.engine = store.db.engine
        self.seen: list[str] = []
        sa.event.listen(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append(" ".join(statement.split()).upper())

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    @property
    def writes(self) -> list[str]:
        """Statements that write or take a write lock (SQLite BEGIN IMMEDIATE, FOR UPDATE)."""
        verbs = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")
        return [s for s in self.seen if s.startswith(verbs) or " FOR UPDATE" in s]


@pytest.fixture
def statements(any_store: StateStore) -> Iterator[Statements]:
    recorder = Statements(any_store)
    try:
        yield recorder
    finally:
        recorder.close()


def snapshot(store: StateStore) -> dict[str, list[Any]]:
    """Every token and inbox row, with versions and ciphertexts (a rewrite changes both)."""
    tables = {"token": schema.token, "inbox": schema.inbox}
    with store.db.read() as conn:
        return {
            name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
            for name, table in tables.items()
        }


class FakeFreshBooksHook:
    """Stands in for FreshBooksHook in the confirmation that follows an accepted verifier."""

    calls: list[tuple[str, str]] = []
    error: Exception | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def verify_callback(self, callback_id: str, verifier: str) -> dict[str, Any]:
        FakeFreshBooksHook.calls.append((str(callback_id), verifier))
        if FakeFreshBooksHook.error is not None:
            raise FakeFreshBooksHook.error
        return {"callbackid": callback_id, "verified": True}


@pytest.fixture
def freshbooks_api(monkeypatch: pytest.MonkeyPatch) -> type[FakeFreshBooksHook]:
    import airflow_provider_mlconnector.hooks.freshbooks as module

    monkeypatch.setattr(module, "FreshBooksHook", FakeFreshBooksHook)
    FakeFreshBooksHook.calls = []
    FakeFreshBooksHook.error = None
    return FakeFreshBooksHook


def seed_callbacks(store: StateStore) -> WebhookCredentials:
    credentials = WebhookCredentials(store.tokens)
    for callback_id in (PENDING, VERIFIED, OFFERED):
        credentials.remember_callback(FB_ACCOUNT, callback_id, "bill.update", "https://x/webhooks/freshbooks")
    credentials.mark_verified(FB_ACCOUNT, VERIFIED, VERIFIER)
    assert credentials.accept_verifier(FB_ACCOUNT, OFFERED, OFFERED_VERIFIER)
    return credentials


def receiver(store: StateStore, tunables: WebhookSettings | None = None, **options: Any) -> TestClient:
    app = create_app(settings=tunables or settings(), store=store, extras=FakeExtras(), run_dispatcher=False, **options)
    return TestClient(app)


def post_form(client: TestClient, fields: list[tuple[str, str]], headers: dict[str, str] | None = None) -> Any:
    body = urlencode(fields).encode()
    return client.post("/webhooks/freshbooks", content=body, headers=headers or {})


def handshake(callback_id: str, verifier: str = "attacker-chosen", **extra: str) -> list[tuple[str, str]]:
    return [("name", "callback.verify"), ("object_id", callback_id), ("verifier", verifier), *extra.items()]


def bill_update(object_id: str = "7105") -> list[tuple[str, str]]:
    return [
        ("name", "bill.update"),
        ("object_id", object_id),
        ("account_id", FB_ACCOUNT),
        ("business_id", "6543"),
        ("identity_id", "1234"),
        ("user_id", "1"),
    ]


def signed(fields: list[tuple[str, str]], verifier: str = VERIFIER) -> dict[str, str]:
    return {"X-FreshBooks-Hmac-SHA256": freshbooks_sign(verifier, fields)}


# ---------------------------------------------------------------------- reads only


ANONYMOUS_POSTS = {
    "unknown callback of our account": handshake("666", account_id=FB_ACCOUNT),
    "unknown callback of an unknown account": handshake("667", account_id="stranger"),
    "unknown callback, no account": handshake("668"),
    "our pending callback claimed for another account": handshake(PENDING, account_id="stranger"),
    "verified callback re-keyed": handshake(VERIFIED),
    "verified callback re-keyed with its account": handshake(VERIFIED, account_id=FB_ACCOUNT),
    "second verifier for an offered callback": handshake(OFFERED),
    "callback id that is not an id": handshake("' OR 1=1 --"),
    "huge callback id": handshake("9" * 3000),
}


@pytest.mark.parametrize("fields", ANONYMOUS_POSTS.values(), ids=ANONYMOUS_POSTS.keys())
def test_anonymous_handshake_posts_are_refused_from_reads_alone(any_store, statements, freshbooks_api, fields):
    seed_callbacks(any_store)
    before = snapshot(any_store)
    statements.seen.clear()
    with receiver(any_store) as client:
        assert post_form(client, fields).status_code == 401
    assert statements.writes == []
    assert snapshot(any_store) == before
    assert freshbooks_api.calls == []


def test_anonymous_events_are_refused_from_reads_alone(any_store, statements):
    seed_callbacks(any_store)
    before = snapshot(any_store)
    statements.seen.clear()
    with receiver(any_store) as client:
        assert post_form(client, bill_update()).status_code == 401  # unsigned
        assert post_form(client, bill_update(), signed(bill_update(), "guess")).status_code == 401
        other = [*bill_update()[:2], ("account_id", "stranger"), *bill_update()[3:]]
        assert post_form(client, other, signed(other)).status_code == 401
    assert statements.writes == []
    assert snapshot(any_store) == before


def test_the_first_verifier_of_a_pending_callback_is_the_only_write(any_store, statements, freshbooks_api):
    credentials = seed_callbacks(any_store)
    statements.seen.clear()
    with receiver(any_store) as client:
        assert post_form(client, handshake(PENDING, "the-real-verifier")).status_code == 200
    assert freshbooks_api.calls == [(PENDING, "the-real-verifier")]
    assert credentials.freshbooks_callback(FB_ACCOUNT, PENDING) == {
        "event": "bill.update",
        "uri": "https://x/webhooks/freshbooks",
        "verifier": "the-real-verifier",
        "verified": True,
    }
    assert statements.writes  # the verifier, then its confirmation
    with receiver(any_store) as client:
        assert post_form(client, bill_update(), signed(bill_update(), "the-real-verifier")).status_code == 200


# ---------------------------------------------------------------------- one verifier per callback


def test_a_second_verifier_for_a_pending_callback_is_refused_and_changes_nothing(store, freshbooks_api):
    credentials = seed_callbacks(store)
    freshbooks_api.error = RetryableApiError("FreshBooks is down", system="freshbooks", status=503)
    with receiver(store) as client:
        assert post_form(client, handshake(PENDING, "first")).status_code == 200
        kept = credentials.freshbooks_callback(FB_ACCOUNT, PENDING)
        assert kept is not None and kept["verifier"] == "first" and not kept["verified"]
        assert post_form(client, handshake(PENDING, "second")).status_code == 401
        assert credentials.freshbooks_callback(FB_ACCOUNT, PENDING) == kept
        # FreshBooks resending the same message retries the confirmation, nothing else.
        freshbooks_api.error = None
        assert post_form(client, handshake(PENDING, "first")).status_code == 200
    assert freshbooks_api.calls == [(PENDING, "first"), (PENDING, "first")]
    assert sorted(credentials.freshbooks_verifiers(FB_ACCOUNT)) == sorted([VERIFIER, "first"])


def test_a_verifier_freshbooks_refuses_is_forgotten_so_the_real_one_can_arrive(store, freshbooks_api):
    credentials = seed_callbacks(store)
    freshbooks_api.error = FatalApiError("Invalid verifier.", system="freshbooks", status=422)
    with receiver(store) as client:
        assert post_form(client, handshake(PENDING, "planted-by-a-stranger")).status_code == 200
        assert "verifier" not in (credentials.freshbooks_callback(FB_ACCOUNT, PENDING) or {})
        freshbooks_api.error = None
        assert post_form(client, handshake(PENDING, "the-real-verifier")).status_code == 200
    assert sorted(credentials.freshbooks_verifiers(FB_ACCOUNT)) == sorted([VERIFIER, "the-real-verifier"])


# ---------------------------------------------------------------------- rate limit


def test_handshakes_beyond_the_rate_get_429_before_the_store_is_read(any_store, statements, freshbooks_api):
    seed_callbacks(any_store)
    before = snapshot(any_store)
    with receiver(any_store, settings(handshake_burst="2")) as client:
        assert [post_form(client, handshake("666")).status_code for _ in range(2)] == [401, 401]
        statements.seen.clear()
        answers = [post_form(client, handshake("666")) for _ in range(5)]
        assert {answer.status_code for answer in answers} == {429}
        assert 0 < int(answers[0].headers["Retry-After"]) <= 3600
        assert statements.seen == []  # throttled before any read
        # Each callback has its own budget: the one we registered still gets its verifier.
        assert post_form(client, handshake(PENDING, "the-real-verifier")).status_code == 200
    assert snapshot(any_store)["inbox"] == before["inbox"]


def test_token_buckets_refill_and_hold_a_bounded_number_of_keys():
    from airflow_provider_mlconnector.core.throttle import TokenBuckets

    now = [0.0]
    buckets = TokenBuckets(burst=2, interval=10.0, max_keys=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 10.0]
    now[0] = 5.0
    assert buckets.take("a") == 5.0  # half a token earned: 5 s to go
    now[0] = 10.0
    assert buckets.take("a") == 0.0
    for key in ("b", "c", "d"):
        buckets.take(key)
    assert len(buckets) == 3  # "a", least recently used, was forgotten
    assert buckets.take("a") == 0.0  # and starts full again


# ---------------------------------------------------------------------- log lines


HOSTILE = "1\nCRITICAL webhooks: forged line\r\x1b[2J\u2028"


@pytest.mark.parametrize(
    "fields",
    [
        handshake(HOSTILE),
        handshake("666", account_id=HOSTILE),
        [*bill_update()[:2], ("account_id", HOSTILE), *bill_update()[3:]],
    ],
    ids=["callback id", "handshake account", "event account"],
)
def test_caller_text_in_log_lines_is_quoted(store, caplog, fields):
    with caplog.at_level(logging.INFO, logger="airflow_provider_mlconnector"), receiver(store) as client:
        post_form(client, fields, {"X-FreshBooks-Hmac-SHA256": "AAAA"})
    messages = [record.getMessage() for record in caplog.records]
    assert messages, "the refusal is logged"
    for message in messages:
        assert not any(char in message for char in "\n\r\x1b\u2028"), message
    assert any("\\n" in message and "\\x1b" in message for message in messages), messages


def test_bill_subscription_id_in_log_lines_is_quoted(store, caplog):
    body = b'{"metadata": {"subscriptionId": "s\\nforged", "organizationId": "o"}}'
    headers = {"x-bill-sha-signature": b64_hmac(b"guess", body)}
    with caplog.at_level(logging.INFO, logger="airflow_provider_mlconnector"), receiver(store) as client:
        assert client.post("/webhooks/bill", content=body, headers=headers).status_code == 401
    messages = [record.getMessage() for record in caplog.records]
    assert messages and all("\n" not in message for message in messages)
    assert any("'s\\nforged'" in message for message in messages), messages


# ---------------------------------------------------------------------- replays


class Clock:
    def __init__(self, start: float = 7.0) -> None:
        self.now = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=start)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_an_identical_signed_replay_triggers_at_most_one_run(any_store, statements):
    seed_callbacks(any_store)
    clock = Clock()
    airflow = FakeAirflow({"freshbooks_to_bill"})
    dispatcher = Dispatcher(any_store.inbox, airflow, interval=30, clock=clock)
    with receiver(any_store, settings(replay_window="900"), clock=clock) as client:
        assert post_form(client, bill_update(), signed(bill_update())).json()["stored"] == 1
        dispatcher.tick()
        airflow.advance()
        airflow.advance()  # the run read FreshBooks and finished
        statements.seen.clear()
        for _ in range(20):  # someone replays the captured delivery, a run's worth apart
            clock.advance(40)
            answer = post_form(client, bill_update(), signed(bill_update()))
            assert (answer.status_code, answer.json()["stored"]) == (200, 0)
            dispatcher.tick()
            airflow.advance()
            airflow.advance()
    assert [dag for dag, _run, _conf in airflow.triggers] == ["freshbooks_to_bill"]
    assert statements.writes == []  # a resend is answered from a read
    assert len(snapshot(any_store)["inbox"]) == 1


@pytest.mark.parametrize("start", [7.0, 899.999], ids=["early in a window", "at the end of a window"])
def test_identical_content_is_one_event_until_a_replay_window_after_the_last_one_kept(store, start):
    seed_callbacks(store)
    clock = Clock(start)
    with receiver(store, settings(replay_window="900"), clock=clock) as client:

        def deliver() -> str:
            answer = post_form(client, bill_update(), signed(bill_update())).json()
            return "stored" if answer["stored"] else "duplicate"

        assert deliver() == "stored"
        clock.advance(0.002)
        assert deliver() == "duplicate"
        clock.advance(899)
        assert deliver() == "duplicate"  # 899.002 s after the first one
        clock.advance(1)
        assert deliver() == "stored"  # 900.002 s
        clock.advance(600)
        assert deliver() == "duplicate"
    assert len(store.inbox.pending("freshbooks")) == 2
