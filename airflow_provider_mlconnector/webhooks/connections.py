"""Webhook secrets kept in the systems' Airflow connections, read through the Task SDK.

The receiver answers QuickBooks within 3 s, so connection lookups (a metadata-database or
secrets-backend round trip) are cached for a short time; a rotated secret is picked up within
``ttl`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_mlconnector.webhooks.settings import conn_id_for

log = logging.getLogger(__name__)

Fetch = Callable[[str], Mapping[str, Any] | None]


def fetch_connection_extras(conn_id: str) -> Mapping[str, Any] | None:
    """The connection's ``extra`` as a dict, or ``None`` when the connection does not exist."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    extras: Mapping[str, Any] = connection.extra_dejson or {}
    return extras


class ConnectionExtras:
    """``get(system, name)``: an extra of ``system``'s connection (plain or ``extra__<type>__`` key).

    :param fetch: connection id -> extras (``None``: no such connection); tests pass a dict lookup.
    :param ttl: seconds a lookup is reused.
    """

    def __init__(self, fetch: Fetch = fetch_connection_extras, *, ttl: float = 60.0) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Mapping[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def get(self, system: str, name: str) -> str | None:
        extras = self._extras(system)
        if not extras:
            return None
        for key in (name, f"extra__{system}__{name}"):
            value = extras.get(key)
            if value not in (None, ""):
                return str(value)
        return None

    def _extras(self, system: str) -> Mapping[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(system)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        conn_id = conn_id_for(system)
        extras = self._fetch(conn_id)
        if extras is None:
            log.warning("webhooks: Airflow connection %r (%s) does not exist", conn_id, system)
        with self._lock:
            self._cache[system] = (now, extras)
        return extras
