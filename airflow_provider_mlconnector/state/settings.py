"""Where the state store lives and which Fernet keys protect its tokens.

URL, first match wins:

1. ``MLCONNECTOR_STATE_URL`` (any SQLAlchemy URL; tests, or a DSN from the environment);
2. the Airflow connection ``mlconnector_state`` -> ``postgresql+psycopg2://login:password@host:port/schema``
   (``extra`` keys such as ``sslmode`` become libpq options);
3. the embedded default ``sqlite:///$AIRFLOW_HOME/mlconnector_state.db`` (``AIRFLOW_HOME`` defaults to
   ``~/airflow``).

Fernet keys, first match wins (comma-separated, newest first):

1. ``MLCONNECTOR_FERNET_KEY``;
2. Airflow config ``[mlconnector] fernet_key`` (``AIRFLOW__MLCONNECTOR__FERNET_KEY``);
3. only for the embedded SQLite default: ``$AIRFLOW_HOME/mlconnector_fernet.key``, generated once
   with mode 0600. Any other store without a key refuses to hold tokens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)

STATE_URL_ENV = "MLCONNECTOR_STATE_URL"
FERNET_KEY_ENV = "MLCONNECTOR_FERNET_KEY"
STATE_CONN_ID = "mlconnector_state"
CONFIG_SECTION = "mlconnector"
DB_FILENAME = "mlconnector_state.db"
KEY_FILENAME = "mlconnector_fernet.key"
_LIBPQ_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name", "options")


def airflow_home() -> Path:
    """``$AIRFLOW_HOME``, or ``~/airflow`` like Airflow itself."""
    return Path(os.environ.get("AIRFLOW_HOME") or "~/airflow").expanduser()


def default_sqlite_url() -> str:
    """The embedded store's URL."""
    return f"sqlite:///{airflow_home() / DB_FILENAME}"


def _connection_url() -> URL | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(STATE_CONN_ID)
    except AirflowNotFoundException:
        return None
    extra = conn.extra_dejson or {}
    query = {name: str(extra[name]) for name in _LIBPQ_EXTRAS if extra.get(name) is not None}
    return URL.create(
        "postgresql+psycopg2",
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
        query=query,
    )


def resolve_state_url() -> str:
    """The state store URL from the environment, the Airflow connection, or the default."""
    url = os.environ.get(STATE_URL_ENV, "").strip()
    if url:
        return url
    conn_url = _connection_url()
    if conn_url is not None:
        # render with the password: this string goes to create_engine, never to a log
        return conn_url.render_as_string(hide_password=False)
    url = default_sqlite_url()
    # Worth a line in every task log: on a multi-machine deployment each worker would get its
    # own file, and separate ID maps cannot prevent duplicates.
    log.info("no %s or connection %r: using the embedded state store %s", STATE_URL_ENV, STATE_CONN_ID, url)
    return url


def _split_keys(raw: str | None) -> list[str]:
    return [key.strip() for key in (raw or "").split(",") if key.strip()]


def _configured_keys() -> list[str]:
    from airflow.configuration import conf

    return _split_keys(conf.get(CONFIG_SECTION, "fernet_key", fallback=None))


def is_embedded_default(url: str) -> bool:
    """True for the default SQLite file under ``$AIRFLOW_HOME``."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return False
    return Path(parsed.database).expanduser().resolve() == (airflow_home() / DB_FILENAME).resolve()


def resolve_fernet_keys(url: str) -> list[str]:
    """Fernet keys, newest first; empty when none is configured (tokens then refuse to work)."""
    keys = _split_keys(os.environ.get(FERNET_KEY_ENV))
    if keys:
        return keys
    keys = _configured_keys()
    if keys:
        return keys
    if is_embedded_default(url):
        return [load_or_create_key_file(airflow_home() / KEY_FILENAME)]
    return []


def load_or_create_key_file(path: Path) -> str:
    """Read the local key file, creating it (mode 0600) on first use.

    The key is written to a private temporary file that is then hard-linked into place, so two
    processes starting together agree on one key and nobody reads a half-written file.
    """
    if not path.exists():
        from cryptography.fernet import Fernet

        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(Fernet.generate_key().decode() + "\n")
            with contextlib.suppress(FileExistsError):  # another process won the race: use its key
                os.link(temporary, path)
                log.warning("generated a Fernet key for the mlconnector token store at %s; back it up", path)
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_text().strip()
