"""Encrypted token store: no plaintext at rest, versions, locking, key rotation."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from airflow.sdk import RetryAction
from cryptography.fernet import Fernet

from airflow_provider_mlconnector.exceptions import ConfigurationError, StateBusyError
from airflow_provider_mlconnector.operators.retry_policy import sync_retry_policy
from airflow_provider_mlconnector.state import StateError, StateStore, TokenLockTimeoutError
from airflow_provider_mlconnector.state import db as db_module

SECRET_ACCESS = "ACCESS-PLAINTEXT-7f3a9c"
SECRET_REFRESH = "REFRESH-PLAINTEXT-b21e04"
TOKEN = {"access_token": SECRET_ACCESS, "refresh_token": SECRET_REFRESH, "expires_at": 1_900_000_000}


def test_put_get_round_trip_and_versions(store: StateStore) -> None:
    assert store.tokens.get("freshbooks", "acct-1") is None
    assert store.tokens.version("freshbooks", "acct-1") == 0
    assert store.tokens.put("freshbooks", "acct-1", TOKEN) == 1
    assert store.tokens.get("freshbooks", "acct-1") == TOKEN
    assert store.tokens.put("freshbooks", "acct-1", {**TOKEN, "access_token": "x"}) == 2
    assert store.tokens.get("freshbooks", "acct-1") == {**TOKEN, "access_token": "x"}
    assert store.tokens.get("freshbooks", "acct-2") is None  # scoped by credential key


def test_nothing_is_stored_in_plaintext(store: StateStore, state_url: str) -> None:
    store.tokens.put("quickbooks", "realm-1", TOKEN)
    with store.tokens.locked("bill", "org-1") as locked:
        locked.save({"session_id": SECRET_ACCESS})

    with store.db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM mlc_token")).all()
    dumped = repr(rows)
    assert len(rows) == 2
    for secret in (SECRET_ACCESS, SECRET_REFRESH, "access_token", "session_id"):
        assert secret not in dumped

    if state_url.startswith("sqlite"):
        store.close()
        db_file = Path(state_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
        assert b"mlc_token" in raw  # really reading the database
        for secret in (SECRET_ACCESS, SECRET_REFRESH):
            assert secret.encode() not in raw


def test_without_a_key_tokens_refuse_to_work(state_url: str) -> None:
    store = StateStore(state_url, fernet_keys=None)
    for call in (
        lambda: store.tokens.put("quickbooks", "realm-1", TOKEN),
        lambda: store.tokens.get("quickbooks", "realm-1"),
        lambda: store.tokens.locked("quickbooks", "realm-1").__enter__(),
        store.tokens.rotate_key,
    ):
        with pytest.raises(ConfigurationError, match="MLCONNECTOR_FERNET_KEY"):
            call()
    with store.db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM mlc_token")).scalar() == 0
    store.close()


def test_invalid_or_wrong_key(store: StateStore, state_url: str) -> None:
    with pytest.raises(ConfigurationError, match="#2 is invalid"):
        StateStore(state_url, [Fernet.generate_key().decode(), "not-a-key"])
    store.tokens.put("quickbooks", "realm-1", TOKEN)
    stranger = StateStore(state_url, [Fernet.generate_key().decode()])
    with pytest.raises(ConfigurationError, match="no configured Fernet key matches"):
        stranger.tokens.get("quickbooks", "realm-1")
    stranger.close()


def test_ciphertext_moved_to_another_row_is_refused(store: StateStore) -> None:
    store.tokens.put("quickbooks", "realm-1", TOKEN)
    store.tokens.put("quickbooks", "realm-2", {"access_token": "other"})
    with store.db.write() as conn:
        conn.execute(
            sa.text(
                "UPDATE mlc_token SET ciphertext = "
                "(SELECT ciphertext FROM mlc_token WHERE credential_key = 'realm-1') "
                "WHERE credential_key = 'realm-2'"
            )
        )
    with pytest.raises(StateError, match="belongs to another row"):
        store.tokens.get("quickbooks", "realm-2")


def test_rotate_key_re_encrypts_with_the_newest_key(store: StateStore, state_url: str, fernet_key: str) -> None:
    store.tokens.put("quickbooks", "realm-1", TOKEN)
    store.tokens.put("freshbooks", "acct-1", {"access_token": "a"})
    new_key = Fernet.generate_key().decode()

    rotating = StateStore(state_url, [new_key, fernet_key])
    assert rotating.tokens.rotate_key() == 2
    rotating.close()

    new_only = StateStore(state_url, [new_key])
    assert new_only.tokens.get("quickbooks", "realm-1") == TOKEN
    assert new_only.tokens.get("freshbooks", "acct-1") == {"access_token": "a"}
    new_only.close()
    with pytest.raises(ConfigurationError):
        store.tokens.get("quickbooks", "realm-1")  # the old key alone no longer decrypts


def test_locked_reads_saves_and_versions(store: StateStore) -> None:
    with store.tokens.locked("quickbooks", "realm-1") as locked:
        assert (locked.value, locked.version) == (None, 0)
        assert locked.save(TOKEN) == 1
    with store.tokens.locked("quickbooks", "realm-1") as locked:
        assert (locked.value, locked.version) == (TOKEN, 1)
    assert store.tokens.get("quickbooks", "realm-1") == TOKEN


def test_a_saved_token_survives_an_error_later_in_the_block(store: StateStore) -> None:
    store.tokens.put("quickbooks", "realm-1", TOKEN)

    def refresh_then_fail(save: bool) -> None:
        with store.tokens.locked("quickbooks", "realm-1") as locked:
            if save:
                locked.save({**TOKEN, "refresh_token": "rotated"})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        refresh_then_fail(save=True)  # the vendor already rotated the refresh token
    assert store.tokens.get("quickbooks", "realm-1") == {**TOKEN, "refresh_token": "rotated"}
    assert store.tokens.version("quickbooks", "realm-1") == 2

    with pytest.raises(RuntimeError, match="boom"):
        refresh_then_fail(save=False)  # the refresh call itself failed
    assert store.tokens.version("quickbooks", "realm-1") == 2


# ------------------------------------------------------------------ the credential lock and other writers


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, dict[str, object]]:
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # the test inspects whatever happened
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_held_credential_lock_never_blocks_other_writers(store: StateStore) -> None:
    """A refresh or a BILL login runs under the credential's lock, and may wait a minute on the
    vendor's cap: meanwhile every other write to the state store goes on (on SQLite too)."""
    with store.tokens.locked("bill", "session:org-1") as locked:
        writer, outcome = _in_thread(lambda: store.tokens.put("quickbooks", "realm-1", TOKEN))
        writer.join(timeout=5)
        assert not writer.is_alive(), "another writer waited for the credential lock (database write lock held)"
        assert outcome == {"value": 1}
        locked.save({"session_id": "s-1"})
    assert store.tokens.get("bill", "session:org-1") == {"session_id": "s-1"}
    assert store.tokens.get("quickbooks", "realm-1") == TOKEN


def test_the_credential_lock_still_admits_one_holder_at_a_time(store: StateStore) -> None:
    entered = threading.Event()

    def second_refresher() -> object:
        with store.tokens.locked("freshbooks", "chain-1") as locked:
            entered.set()
            return locked.value

    with store.tokens.locked("freshbooks", "chain-1") as locked:
        waiter, outcome = _in_thread(second_refresher)
        assert not entered.wait(1.0), "two holders of one credential lock"
        locked.save({"refresh_token": "rotated"})
    waiter.join(timeout=10)
    assert outcome == {"value": {"refresh_token": "rotated"}}  # it re-reads what the first one saved


def test_waiting_too_long_for_a_credential_lock_is_a_retryable_state_busy_error(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "LOCK_WAIT_SECONDS", 1)
    with store.tokens.locked("freshbooks", "chain-1"):
        waiter, outcome = _in_thread(lambda: store.tokens.locked("freshbooks", "chain-1").__enter__())
        waiter.join(timeout=15)
    error = outcome.get("error")
    assert isinstance(error, TokenLockTimeoutError) and isinstance(error, StateBusyError), outcome
    assert sync_retry_policy().evaluate(error, try_number=1, max_tries=3).action == RetryAction.RETRY


def test_database_is_locked_on_sqlite_is_a_retryable_state_busy_error(
    store: StateStore, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not state_url.startswith("sqlite"):
        pytest.skip("SQLite's database-wide write lock")
    monkeypatch.setattr(db_module, "LOCK_WAIT_SECONDS", 1)
    store.close()  # new connections pick up the short busy timeout
    blocker = sqlite3.connect(state_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # someone else (an old provider version, a sqlite3 shell) writes
    try:
        with pytest.raises(StateBusyError, match="busy") as caught:
            store.tokens.put("quickbooks", "realm-1", TOKEN)
    finally:
        blocker.rollback()
        blocker.close()
    assert sync_retry_policy().evaluate(caught.value, try_number=1, max_tries=3).action == RetryAction.RETRY
    assert store.tokens.put("quickbooks", "realm-1", TOKEN) == 1  # and the retry works
