"""Rotating credentials (OAuth access/refresh tokens, BILL session ids), encrypted at rest.

Airflow 3 tasks cannot update Connections, and FreshBooks and QuickBooks rotate the refresh
token on every refresh: the old one stops working at once. So the newest token must be saved
durably, by exactly one refresher, before anyone uses it. The pattern every hook follows::

    token = store.tokens.get("quickbooks", realm_id)
    if token is None or token["expires_at"] <= time.time() + 60:
        with store.tokens.locked("quickbooks", realm_id) as locked:
            token = locked.value
            # Someone may have refreshed while we waited for the lock: check again.
            if token is None or token["expires_at"] <= time.time() + 60:
                token = refresh_with_vendor(token["refresh_token"])  # HTTP call under the lock
                locked.save(token)  # before the new access token is used anywhere
    use(token["access_token"])

The lock is held for the whole ``with`` block, which contains a vendor call that may take a
minute (a BILL login waiting on its per-minute cap). So it is never a lock that other writers wait
for: on PostgreSQL it is the credential's row lock (``SELECT ... FOR UPDATE``); on SQLite, whose
only lock is database-wide, it is an OS file lock (``flock``) on a per-credential file beside the
database (``.<db>-locks/``), and ``save()`` commits at once in its own short write transaction.
Waiting is bounded by ``LOCK_WAIT_SECONDS``; running out of it is a retryable
:class:`TokenLockTimeoutError`.

Values are JSON dicts encrypted with Fernet (MultiFernet: newest key first, older keys still
decrypt). The plaintext also names its (system, credential_key), so a ciphertext copied onto
another row is refused instead of handing one tenant's token to another.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from airflow_provider_mlconnector.state import db as state_db
from airflow_provider_mlconnector.state import schema
from airflow_provider_mlconnector.state.db import Database, is_busy
from airflow_provider_mlconnector.state.errors import ConfigurationError, StateBusyError, StateError
from airflow_provider_mlconnector.state.schema import utcnow

_T = schema.token


class TokenLockTimeoutError(StateError, StateBusyError):
    """Another process held the credential lock for longer than ``LOCK_WAIT_SECONDS`` (retryable)."""


def build_cipher(keys: Sequence[str] | None) -> MultiFernet | None:
    """A MultiFernet from keys ordered newest first, or ``None`` when there are none."""
    cleaned = [key.strip() for key in keys or () if key and key.strip()]
    if not cleaned:
        return None
    fernets = []
    for position, key in enumerate(cleaned, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except ValueError as exc:  # binascii.Error is a ValueError too
            raise ConfigurationError(
                f"mlconnector Fernet key #{position} is invalid: it must be 32 url-safe base64-encoded "
                "bytes (generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from exc
    return MultiFernet(fernets)


class _Codec:
    """JSON + Fernet, binding each ciphertext to the row it belongs to."""

    def __init__(self, cipher: MultiFernet) -> None:
        self.cipher = cipher

    def encrypt(self, system: str, credential_key: str, value: Mapping[str, Any]) -> str:
        envelope = {"system": system, "credential_key": credential_key, "value": dict(value)}
        return self.cipher.encrypt(json.dumps(envelope).encode()).decode()

    def decrypt(self, system: str, credential_key: str, ciphertext: str | None) -> dict[str, Any] | None:
        if ciphertext is None:
            return None
        try:
            envelope = json.loads(self.cipher.decrypt(ciphertext.encode()))
        except InvalidToken:
            raise ConfigurationError(
                f"cannot decrypt the stored {system} credential {credential_key!r}: no configured Fernet "
                "key matches. Keep the old key after the new one until `tokens rotate-key` has run."
            ) from None
        if (envelope.get("system"), envelope.get("credential_key")) != (system, credential_key):
            raise StateError(f"the stored {system} credential {credential_key!r} belongs to another row")
        value: dict[str, Any] = envelope["value"]
        return value


class LockedToken:
    """A credential held under its lock; see :meth:`TokenStore.locked`.

    :param value: the stored value when the lock was taken (re-check it: someone may have renewed).
    :param version: its version (0: never saved).
    :param write: persists a new value, returns the new version.
    """

    def __init__(
        self,
        system: str,
        credential_key: str,
        value: dict[str, Any] | None,
        version: int,
        write: Callable[[Mapping[str, Any]], int],
    ) -> None:
        self.system = system
        self.credential_key = credential_key
        self.value = value
        self.version = version
        self._write = write
        self.saved = False

    def save(self, new_value: Mapping[str, Any]) -> int:
        """Persist the new value; returns the new version.

        It is kept even if the block raises afterwards (committed at once on SQLite, with the row
        lock's transaction on PostgreSQL): a refresh token the vendor has already rotated must never
        be thrown away.
        """
        self.version = self._write(new_value)
        self.value = dict(new_value)
        self.saved = True
        return self.version


@contextmanager
def _file_lock(path: Path, what: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``, waited for at most ``LOCK_WAIT_SECONDS``.

    ``flock`` belongs to the open file, so it also excludes other threads of this process (each
    opens the file itself), and the OS drops it if the holder dies.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + state_db.LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TokenLockTimeoutError(
                        f"timed out after {state_db.LOCK_WAIT_SECONDS}s waiting for the {what} credential lock"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


class TokenStore:
    """Encrypted, versioned credentials with a per-credential lock for refreshes.

    :param fernet_keys: Fernet keys, newest first. Without keys every call raises
        ``ConfigurationError``: secrets are never stored in plaintext.
    """

    def __init__(self, db: Database, fernet_keys: Sequence[str] | None) -> None:
        self._db = db
        cipher = build_cipher(fernet_keys)
        self._codec = _Codec(cipher) if cipher is not None else None

    def _require_codec(self) -> _Codec:
        if self._codec is None:
            raise ConfigurationError(
                "no Fernet key for the mlconnector token store: set MLCONNECTOR_FERNET_KEY or "
                "[mlconnector] fernet_key (tokens are never stored unencrypted)"
            )
        return self._codec

    def _where(self, system: str, credential_key: str) -> sa.ColumnElement[bool]:
        return sa.and_(_T.c.system == system, _T.c.credential_key == credential_key)

    def get(self, system: str, credential_key: str) -> dict[str, Any] | None:
        """The decrypted credential, or ``None`` if none was saved yet."""
        codec = self._require_codec()
        with self._db.read() as conn:
            ciphertext = conn.execute(sa.select(_T.c.ciphertext).where(self._where(system, credential_key))).scalar()
        return codec.decrypt(system, credential_key, ciphertext)

    def version(self, system: str, credential_key: str) -> int:
        """How many times the credential was saved (0: never)."""
        with self._db.read() as conn:
            version = conn.execute(sa.select(_T.c.version).where(self._where(system, credential_key))).scalar()
        return int(version or 0)

    def put(self, system: str, credential_key: str, value: Mapping[str, Any]) -> int:
        """Save a credential without locking (initial seeding, tests); returns the new version."""
        codec = self._require_codec()
        with self._db.write() as conn:
            return self._upsert(conn, codec, system, credential_key, value)

    def _upsert(
        self, conn: Connection, codec: _Codec, system: str, credential_key: str, value: Mapping[str, Any]
    ) -> int:
        now = utcnow()
        insert = postgresql.insert(_T) if self._db.dialect == "postgresql" else sqlite.insert(_T)
        statement = (
            insert.values(
                system=system,
                credential_key=credential_key,
                ciphertext=codec.encrypt(system, credential_key, value),
                version=1,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=[_T.c.system, _T.c.credential_key],
                set_={"ciphertext": insert.excluded.ciphertext, "version": _T.c.version + 1, "updated_at": now},
            )
            .returning(_T.c.version)
        )
        return int(conn.execute(statement).scalar_one())

    @contextmanager
    def locked(self, system: str, credential_key: str) -> Iterator[LockedToken]:
        """Hold the credential's lock for the block; yields its current value to re-check.

        See the module docstring for the refresh pattern.
        """
        codec = self._require_codec()  # fail before taking any lock
        if self._db.dialect == "sqlite":
            with _file_lock(self._lock_file(system, credential_key), f"{system} {credential_key!r}"):
                with self._db.read() as conn:
                    ciphertext, version = self._row(conn, system, credential_key)
                value = codec.decrypt(system, credential_key, ciphertext)
                # save() commits at once, in its own short write transaction (see the module docstring).
                yield LockedToken(
                    system, credential_key, value, version, lambda new: self.put(system, credential_key, new)
                )
            return
        with self._db.engine.connect() as conn:
            transaction = self._lock(conn, system, credential_key)
            ciphertext, version = self._row(conn, system, credential_key)
            token = LockedToken(
                system,
                credential_key,
                codec.decrypt(system, credential_key, ciphertext),
                version,
                lambda new: self._upsert(conn, codec, system, credential_key, new),
            )
            try:
                yield token
            except BaseException:
                # Keep a saved token even when the caller fails afterwards: the vendor has
                # already invalidated the previous refresh token.
                if token.saved:
                    transaction.commit()
                else:
                    transaction.rollback()
                raise
            transaction.commit()

    def _lock_file(self, system: str, credential_key: str) -> Path:
        """The SQLite flavour's lock: one file per credential beside the database (named by a hash)."""
        database = Path(str(self._db.url.database)).expanduser()
        name = hashlib.sha256(f"{system}\x1f{credential_key}".encode()).hexdigest()[:32]
        return database.with_name(f".{database.name}-locks") / f"{name}.lock"

    def _row(self, conn: Connection, system: str, credential_key: str) -> tuple[str | None, int]:
        row = conn.execute(sa.select(_T.c.ciphertext, _T.c.version).where(self._where(system, credential_key))).first()
        return (row.ciphertext, int(row.version)) if row else (None, 0)

    def _lock(self, conn: Connection, system: str, credential_key: str) -> sa.RootTransaction:
        """PostgreSQL: the credential's row lock, in a transaction the caller commits."""
        try:
            transaction = conn.begin()
            conn.execute(sa.text(f"SET LOCAL lock_timeout = '{state_db.LOCK_WAIT_SECONDS}s'"))
            # The row must exist for FOR UPDATE to lock anything; concurrent first-timers
            # serialise on the primary key here.
            conn.execute(
                postgresql.insert(_T)
                .values(system=system, credential_key=credential_key, ciphertext=None, version=0, updated_at=utcnow())
                .on_conflict_do_nothing(index_elements=[_T.c.system, _T.c.credential_key])
            )
            conn.execute(sa.select(_T.c.version).where(self._where(system, credential_key)).with_for_update())
        except sa.exc.OperationalError as exc:
            conn.rollback()
            if not is_busy(exc):
                raise
            raise TokenLockTimeoutError(
                f"timed out after {state_db.LOCK_WAIT_SECONDS}s waiting for the {system} credential lock "
                f"{credential_key!r}"
            ) from exc
        return transaction

    def rotate_key(self) -> int:
        """Re-encrypt every stored credential with the newest key; returns how many.

        Rotation: put the new key first in ``MLCONNECTOR_FERNET_KEY`` (``new,old``), run this,
        then drop the old key.
        """
        codec = self._require_codec()
        with self._db.write() as conn:
            rows = conn.execute(
                sa.select(_T.c.system, _T.c.credential_key, _T.c.ciphertext)
                .where(_T.c.ciphertext.is_not(None))
                .with_for_update()
            ).all()
            for row in rows:
                rotated = codec.cipher.rotate(row.ciphertext.encode()).decode()
                conn.execute(
                    sa.update(_T)
                    .where(self._where(row.system, row.credential_key))
                    .values(ciphertext=rotated, updated_at=utcnow())
                )
        return len(rows)
