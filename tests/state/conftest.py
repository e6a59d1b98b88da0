"""Fixtures for the state-store tests: one ``store`` on SQLite and one on a real PostgreSQL.

Self-contained (it may move to ``tests/conftest.py``). PostgreSQL comes from, in order:

* ``MLCONNECTOR_TEST_PG_URL``: an existing database; its role needs the CREATE privilege;
* a throw-away cluster made with ``initdb``/``pg_ctl`` (``MLCONNECTOR_PG_BIN``, default
  ``/usr/lib/postgresql/15/bin``), listening only on a unix socket in a temp dir, run as the
  ``postgres`` OS user when the tests run as root.

If neither works the PostgreSQL tests FAIL; set ``MLCONNECTOR_SKIP_POSTGRES=1`` to skip them.
Every test gets a fresh, empty schema (selected through ``search_path``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import URL, make_url

from airflow_provider_mlconnector.state import StateStore, get_state_store

PG_BIN = Path(os.environ.get("MLCONNECTOR_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class PgServer:
    """A PostgreSQL database the tests may create schemas in (one fresh schema per test)."""

    url: URL

    def _admin(self) -> sa.Engine:
        return sa.create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)

    def create_schema(self) -> str:
        """A URL whose connections see only a new, empty schema (via ``search_path``)."""
        name = f"mlc_test_{uuid.uuid4().hex[:12]}"
        engine = self._admin()
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        engine.dispose()
        url = self.url.update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False)

    def drop_schema(self, url: str) -> None:
        options = make_url(url).query["options"]
        assert isinstance(options, str)
        name = options.split("=", 1)[1]
        engine = self._admin()
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        engine.dispose()


class _Cluster:
    """A temporary PostgreSQL cluster."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="mlc-pg-"))
        self.data = self.base / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.base, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()

    def _run(self, *args: str, check: bool = True) -> None:
        subprocess.run([*self.prefix, *args], cwd=self.base, check=check, capture_output=True, timeout=60)

    def start(self) -> URL:
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"
        )
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"), "-o", options, "-w", "start"
        )
        return URL.create(
            "postgresql+psycopg2",
            username="postgres",
            database="postgres",
            query={"host": str(self.base), "port": str(self.port)},
        )

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self) -> str:
        log = self.base / "log"
        return log.read_text()[-2000:] if log.exists() else "(no server log)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the whole session (see the module docstring)."""
    if os.environ.get("MLCONNECTOR_SKIP_POSTGRES") == "1":
        pytest.skip("PostgreSQL tests skipped: MLCONNECTOR_SKIP_POSTGRES=1")
    given = os.environ.get("MLCONNECTOR_TEST_PG_URL")
    if given:
        yield PgServer(make_url(given))
        return
    cluster: _Cluster | None = None
    try:
        cluster = _Cluster()
        url = cluster.start()
    except (OSError, KeyError, subprocess.SubprocessError) as exc:  # KeyError: no postgres OS user
        detail = getattr(exc, "stderr", b"") or b""
        tail = cluster.log_tail() if cluster else ""
        if cluster:
            cluster.stop()
        pytest.fail(
            f"cannot start a test PostgreSQL with {PG_BIN} ({exc}; {detail.decode(errors='replace')}; {tail}). "
            "Set MLCONNECTOR_TEST_PG_URL to an existing server, or MLCONNECTOR_SKIP_POSTGRES=1 to skip.",
            pytrace=False,
        )
    try:
        yield PgServer(url)
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    url = server.create_schema()
    try:
        yield url
    finally:
        server.drop_schema(url)


@pytest.fixture
def fernet_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def store(state_url: str, fernet_key: str) -> Iterator[StateStore]:
    """A migrated store on a fresh database."""
    state = StateStore(state_url, [fernet_key])
    state.migrate()
    try:
        yield state
    finally:
        state.close()


@pytest.fixture(autouse=True)
def _isolated_state_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Keep tests away from the developer's ~/airflow and from each other's cached store."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    for name in ("MLCONNECTOR_STATE_URL", "MLCONNECTOR_FERNET_KEY", "AIRFLOW__MLCONNECTOR__FERNET_KEY"):
        monkeypatch.delenv(name, raising=False)
    get_state_store.cache_clear()
    yield
    get_state_store.cache_clear()
