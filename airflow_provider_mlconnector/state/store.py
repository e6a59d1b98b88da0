"""The state store facade and the per-process default instance."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from airflow_provider_mlconnector.state.audit import AuditTrail
from airflow_provider_mlconnector.state.db import Database, safe_url
from airflow_provider_mlconnector.state.dead_letters import DeadLetterQueue
from airflow_provider_mlconnector.state.id_map import IdMap
from airflow_provider_mlconnector.state.inbox import WebhookInbox
from airflow_provider_mlconnector.state.settings import resolve_fernet_keys, resolve_state_url
from airflow_provider_mlconnector.state.tokens import TokenStore
from airflow_provider_mlconnector.state.watermarks import Watermarks


class StateStore:
    """The provider's own durable state: ID map, watermarks, audit, dead letters, tokens, inbox.

    Every key is scoped by tenant (FreshBooks account id, BILL organization id, QBO realm id,
    BigCommerce store hash, BambooHR company, Expensify policy). Nothing touches the database
    until first use; the schema is then upgraded to the newest revision. Safe to share across
    threads and to use after ``fork``: each process opens its own engine.

    :param url: SQLAlchemy URL, ``sqlite:///path`` or ``postgresql+psycopg2://...``.
    :param fernet_keys: token encryption keys, newest first; without them ``tokens`` refuses
        to work (nothing else needs a key).
    :param auto_migrate: upgrade the schema on first use (default).
    """

    def __init__(self, url: str, fernet_keys: Sequence[str] | None = None, *, auto_migrate: bool = True) -> None:
        self.db = Database(url, auto_migrate=auto_migrate)
        self.id_map = IdMap(self.db)
        self.watermarks = Watermarks(self.db)
        self.audit = AuditTrail(self.db)
        self.dead_letters = DeadLetterQueue(self.db)
        self.tokens = TokenStore(self.db, fernet_keys)
        self.inbox = WebhookInbox(self.db)

    @property
    def url(self) -> str:
        """The URL with the password hidden."""
        return safe_url(self.db.url)

    def migrate(self, revision: str = "head") -> str:
        """Upgrade the schema (``head`` by default); returns the revision now in place."""
        return self.db.migrate(revision)

    def current_revision(self) -> str | None:
        """The schema revision in the database (``None`` before the first migration)."""
        return self.db.current_revision()

    def close(self) -> None:
        """Close pooled connections (the store reconnects if used again)."""
        self.db.dispose()

    def __repr__(self) -> str:
        return f"StateStore({self.url!r})"


@functools.cache
def get_state_store() -> StateStore:
    """The process-wide store built from settings (see :mod:`~.state.settings`).

    Cached for the life of the process; a forked child reuses the object but opens its own
    engine. Tests call ``get_state_store.cache_clear()`` after changing the environment.
    """
    url = resolve_state_url()
    return StateStore(url, resolve_fernet_keys(url))
