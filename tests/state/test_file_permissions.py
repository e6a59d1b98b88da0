"""The embedded SQLite store holds tokens, the ID map and business data: only its owner may read it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from airflow_provider_mlconnector.state import StateStore


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that lets group and others read new files (a common default is 022)."""
    previous = os.umask(0o002)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_wal_and_shm_files_are_created_owner_only(tmp_path: Path, permissive_umask: None) -> None:
    database = tmp_path / "nested" / "state.db"
    store = StateStore(f"sqlite:///{database}", fernet_keys=[Fernet.generate_key().decode()])
    try:
        store.watermarks.advance("pair", "stream", "tenant", datetime(2026, 3, 1, tzinfo=timezone.utc))
        files = [database, database.with_name("state.db-wal"), database.with_name("state.db-shm")]
        assert all(path.exists() for path in files)  # WAL mode, connection still pooled
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
    finally:
        store.close()


def test_an_existing_database_keeps_its_mode_and_one_open_to_everyone_is_reported(
    tmp_path: Path, permissive_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "shared.db"
    first = StateStore(f"sqlite:///{database}")
    first.migrate()
    first.close()
    for chosen, warned in ((0o640, False), (0o644, True)):  # a group that backs it up; every local user
        database.chmod(chosen)
        caplog.clear()
        store = StateStore(f"sqlite:///{database}")
        try:
            store.migrate()
        finally:
            store.close()
        assert mode(database) == chosen
        assert ("open to every local user (mode 0644): chmod 600 it" in caplog.text) is warned
