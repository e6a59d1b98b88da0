"""Where the store lives and where its Fernet keys come from."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from airflow_provider_mlconnector.exceptions import ConfigurationError
from airflow_provider_mlconnector.state import get_state_store
from airflow_provider_mlconnector.state.settings import (
    resolve_fernet_keys,
    resolve_state_url,
)


def test_default_is_sqlite_under_airflow_home(tmp_path: Path) -> None:
    assert resolve_state_url() == f"sqlite:///{tmp_path / 'airflow_home' / 'mlconnector_state.db'}"


def test_env_url_wins_over_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MLCONNECTOR_STATE", "postgresql://u:p@db:5432/state")
    monkeypatch.setenv("MLCONNECTOR_STATE_URL", "sqlite:////tmp/x.db")
    assert resolve_state_url() == "sqlite:////tmp/x.db"


def test_url_from_the_airflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "postgres",
        "host": "db.internal",
        "port": 5433,
        "login": "mlc",
        "password": "p@ss:word",
        "schema": "mlconnector",
        "extra": {"sslmode": "require", "ignored": "x"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MLCONNECTOR_STATE", json.dumps(conn))
    assert resolve_state_url() == "postgresql+psycopg2://mlc:p%40ss%3Aword@db.internal:5433/mlconnector?sslmode=require"


def test_key_precedence_env_then_airflow_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert resolve_fernet_keys(url) == []  # not the embedded default: no key file is generated
    monkeypatch.setenv("AIRFLOW__MLCONNECTOR__FERNET_KEY", "cfg-new, cfg-old")
    assert resolve_fernet_keys(url) == ["cfg-new", "cfg-old"]
    monkeypatch.setenv("MLCONNECTOR_FERNET_KEY", "env-new,env-old,")
    assert resolve_fernet_keys(url) == ["env-new", "env-old"]
    assert not (tmp_path / "airflow_home" / "mlconnector_fernet.key").exists()


def test_embedded_default_generates_a_private_key_file_once(tmp_path: Path) -> None:
    url = resolve_state_url()
    (key,) = resolve_fernet_keys(url)
    key_file = tmp_path / "airflow_home" / "mlconnector_fernet.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    Fernet(key.encode())  # a valid key
    assert resolve_fernet_keys(url) == [key]
    assert list(key_file.parent.glob(".mlconnector_fernet.key.*")) == []  # no temp files left


def test_get_state_store_is_cached_and_works_out_of_the_box(tmp_path: Path) -> None:
    store = get_state_store()
    assert store is get_state_store()
    store.tokens.put("bill", "org-1", {"session_id": "s"})
    assert store.tokens.get("bill", "org-1") == {"session_id": "s"}
    assert (tmp_path / "airflow_home" / "mlconnector_state.db").exists()
    store.close()


def test_configured_store_without_key_refuses_tokens(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLCONNECTOR_STATE_URL", f"sqlite:///{tmp_path / 'prod.db'}")
    store = get_state_store()
    store.watermarks.get("p", "s", "t")  # everything else works without a key
    with pytest.raises(ConfigurationError, match="no Fernet key"):
        store.tokens.put("bill", "org-1", {"session_id": "s"})
    store.close()


def test_unsupported_backends_are_rejected(tmp_path: Path) -> None:
    from airflow_provider_mlconnector.state import StateStore

    with pytest.raises(ConfigurationError, match="unsupported"):
        StateStore("mysql://u@h/db").watermarks.get("p", "s", "t")
    with pytest.raises(ConfigurationError, match="SQLite file"):
        StateStore("sqlite://").watermarks.get("p", "s", "t")
