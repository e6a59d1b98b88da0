"""Engines, transactions and migrations for the state store.

Two transaction flavours, because SQLite needs them:

* :meth:`Database.write` - on SQLite ``BEGIN IMMEDIATE``: the write lock is taken up front, so a
  read-then-write transaction waits (``busy_timeout``) instead of failing halfway with
  ``database is locked`` when another process wrote in between.
* :meth:`Database.read` - a plain deferred transaction; in WAL mode readers never wait.

pysqlite's own transaction handling is switched off (``isolation_level = None``) and SQLAlchemy's
``begin`` event emits the BEGIN, the recipe from the SQLAlchemy SQLite dialect docs.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import tenacity
from sqlalchemy.engine import URL, Connection, Engine, RowMapping, make_url

from airflow_provider_mlconnector.state.errors import ConfigurationError, StateBusyError, StateError
from airflow_provider_mlconnector.state.schema import VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 30
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: ids per ``IN (...)`` list: well under SQLite's and PostgreSQL's bound-parameter limits.
IN_CHUNK = 500


def rows_for_records(
    conn: Connection, table: sa.Table, scope: sa.ColumnElement[bool], source_ids: Iterable[str]
) -> Iterator[RowMapping]:
    """The rows of ``table`` within ``scope`` for many source ids, one ``IN (...)`` per ``IN_CHUNK``."""
    wanted = sorted(set(source_ids))
    for i in range(0, len(wanted), IN_CHUNK):
        where = sa.and_(scope, table.c.source_id.in_(wanted[i : i + IN_CHUNK]))
        yield from conn.execute(sa.select(table).where(where).order_by(table.c.id)).mappings()


# Arbitrary constant; serialises concurrent first-time migrations on PostgreSQL.
_PG_MIGRATION_LOCK = 0x6D6C6373  # "mlcs"
_BEGIN_OPTION = "mlc_sqlite_begin"


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for logs and CLI output."""
    return make_url(url).render_as_string(hide_password=True)


def _refused_as_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def use_wal(cursor: Any, *, wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
    """Put the database file in WAL mode (it persists in the file: only its first opener changes it).

    Changing the mode needs the file to itself, and SQLite may answer "database is locked" at once,
    without waiting, to processes that open a new store together while one migrates it. So the
    mode is read first, and a refused change is tried again until ``wait_seconds`` ran out.
    """
    for attempt in tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda exc: isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
        ),
        stop=tenacity.stop_after_delay(wait_seconds),
        wait=tenacity.wait_fixed(0.05),
        reraise=True,
    ):
        with attempt:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's begin event emits BEGIN instead
    cursor = dbapi_connection.cursor()
    try:
        use_wal(cursor)
        cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_SECONDS * 1000}")
        # NORMAL is durable across application crashes in WAL mode; only an OS crash or power
        # loss may lose the last commits, never corrupt the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def is_busy(exc: sa.exc.OperationalError) -> bool:
    """A lock wait ran out: SQLite's "database is locked", PostgreSQL's lock_timeout (55P03)."""
    return getattr(exc.orig, "pgcode", None) == "55P03" or "database is locked" in str(exc.orig)


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _create_owner_only(database: Path) -> None:
    """Create the SQLite file with mode 0600 if it is new: it holds tokens, the ID map and business data.

    SQLite gives the ``-wal`` and ``-shm`` files the database file's mode, so they are private too (its own
    default would be 0644 whatever the umask). An existing file keeps the mode its owner chose; one that
    every local user can read is worth a warning.
    """
    database.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(database.stat().st_mode)
        if mode & stat.S_IRWXO:
            log.warning("state store %s is open to every local user (mode %04o): chmod 600 it", database, mode)
        return
    try:
        os.fchmod(descriptor, 0o600)  # exactly 0600, whatever the umask
    finally:
        os.close(descriptor)


def create_state_engine(url: str | URL) -> Engine:
    """An engine with the pragmas and transaction handling the store relies on."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:":
            raise ConfigurationError("the state store needs a SQLite file, not an in-memory database")
        _create_owner_only(Path(database).expanduser())
        engine = sa.create_engine(parsed, connect_args={"timeout": LOCK_WAIT_SECONDS})
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True)
    raise ConfigurationError(f"unsupported state store backend {backend!r}: use sqlite or postgresql")


# Alembic is imported only when migrating: it costs a task ~0.2 s of start-up otherwise.


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest schema revision shipped with this package."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise StateError("no state-store migrations found")
    return head


_databases: weakref.WeakSet[Database] = weakref.WeakSet()


def _reset_locks_in_child() -> None:
    # A lock held by another thread at fork time would stay locked forever in the child.
    for database in list(_databases):
        database._lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_locks_in_child)


class Database:
    """One engine per process (created lazily after a fork), migrated on first use.

    :param url: SQLAlchemy URL (``sqlite:///...`` or ``postgresql+psycopg2://...``).
    :param auto_migrate: upgrade the schema to head the first time the engine is used.
    """

    def __init__(self, url: str | URL, *, auto_migrate: bool = True) -> None:
        self.url = make_url(url)
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._pid: int | None = None
        self._migrated = not auto_migrate
        _databases.add(self)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.url.get_backend_name()

    def _process_engine(self) -> Engine:
        pid = os.getpid()
        with self._lock:
            if self._engine is None or self._pid != pid:
                if self._engine is not None:
                    # Inherited across fork: forget the parent's pooled connections without
                    # closing them, or the parent's sessions would break under it.
                    self._engine.dispose(close=False)
                self._engine = create_state_engine(self.url)
                self._pid = pid
            return self._engine

    @property
    def engine(self) -> Engine:
        """This process's engine; the schema is upgraded first if needed."""
        engine = self._process_engine()
        if not self._migrated:
            self.migrate()
        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may write; committed on success, rolled back on error.

        A writer that waited ``LOCK_WAIT_SECONDS`` for SQLite's database lock gets a retryable
        :class:`StateBusyError` (nothing was written), never a bare "database is locked".
        """
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except sa.exc.OperationalError as exc:
            if not is_busy(exc):
                raise
            raise StateBusyError(
                f"the state store at {safe_url(self.url)} stayed busy (locked by another writer) for "
                f"{LOCK_WAIT_SECONDS}s; nothing was written, retry"
            ) from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (deferred on SQLite, so it never waits for a writer)."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
            with conn.begin():
                yield conn

    def migrate(self, revision: str = "head") -> str:
        """Upgrade the schema to ``revision`` and return the revision now in place.

        Runs in one transaction under a lock (an advisory lock on PostgreSQL, the SQLite write
        lock), so processes opening a new store at the same moment migrate it exactly once.
        """
        from alembic import command
        from alembic.util import CommandError

        engine = self._process_engine()
        with engine.connect() as conn:
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                config = _alembic_config()
                config.attributes["connection"] = conn
                try:
                    command.upgrade(config, revision)
                except CommandError as exc:
                    raise StateError(
                        f"cannot migrate the state store at {safe_url(self.url)} to {revision!r}: {exc}. "
                        "Is the database newer than this provider version?"
                    ) from exc
            current = _current_revision(conn)
        self._migrated = True
        log.debug("state store %s at revision %s", safe_url(self.url), current)
        return current or ""

    def current_revision(self) -> str | None:
        """The schema revision recorded in the database, or ``None`` for an empty database."""
        with self._process_engine().connect() as conn:
            conn.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
            with conn.begin():
                return _current_revision(conn)

    def dispose(self) -> None:
        """Close this process's pooled connections."""
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                self._engine.dispose()
            self._engine = None
            self._pid = None


def _current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()
