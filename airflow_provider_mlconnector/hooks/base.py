"""What every ml-connector hook shares: connection parsing, the API client, the state store.

A system's hook is a subclass that sets the four Airflow attributes (``conn_name_attr``,
``default_conn_name``, ``conn_type``, ``hook_name``), its vendor host, and builds its
:class:`~airflow_provider_mlconnector.core.http.ApiClient` (auth, error parser, throttle).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_provider_mlconnector.core.http import RetrySettings
from airflow_provider_mlconnector.core.secrets import mask
from airflow_provider_mlconnector.exceptions import ConfigurationError, MLConnectorError

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_mlconnector.core.http import ApiClient
    from airflow_provider_mlconnector.state import StateStore


def _in_task() -> bool:
    """True inside a task (or any process the Task SDK supervises): never read the metadata DB there."""
    return getattr(sys.modules.get("airflow.sdk.execution_time.task_runner"), "SUPERVISOR_COMMS", None) is not None


def _saved_connection(conn_id: str) -> Connection:
    """A connection from Airflow's own lookup chain (environment, secrets backends, metadata database)."""
    from airflow.models.connection import Connection as SavedConnection
    from airflow.sdk import Connection

    saved = SavedConnection.get_connection_from_secrets(conn_id)
    mask(saved.password)
    return Connection(
        conn_id=conn_id,
        conn_type=saved.conn_type,
        host=saved.host,
        schema=saved.schema,
        login=saved.login,
        password=saved.password,
        port=saved.port,
        extra=saved.extra,
    )


class MLConnectorHook(BaseHook):
    """Base hook: reads its Airflow Connection once and owns one :class:`ApiClient`.

    :param conn_id: the Airflow connection id; also accepted as ``<system>_conn_id=``.
    :param state_store: the durable state store (tokens, ID map); defaults to the configured one.
    :param retry: retry policy of API calls (default: the hook's ``default_retry``).
    :param sleep: how to wait between retries and for throttles (tests inject a fake).
    """

    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    #: where the vendor's API lives when the connection's ``host`` does not override it.
    default_host: ClassVar[str]
    #: retry policy of API calls unless the caller passes one (tuned per vendor).
    default_retry: ClassVar[RetrySettings] = RetrySettings()
    #: the Airflow pool every task calling this system runs in (``None``: the default pool).
    pool: ClassVar[str | None] = None
    #: requests the vendor allows at once per tenant: an upsert writes this many records in
    #: parallel (and takes this many pool slots when the system has a pool).
    max_concurrency: ClassVar[int] = 1

    @property
    def tenant(self) -> str:
        """The account, organization, company or store this connection works in (scopes all state)."""
        raise NotImplementedError(f"{type(self).__name__} does not name its tenant yet")

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        state_store: StateStore | None = None,
        retry: RetrySettings | None = None,
        sleep: Callable[[float], None] | None = None,
        **kwargs: Any,
    ) -> None:
        named = kwargs.pop(self.conn_name_attr, None)
        super().__init__(**kwargs)
        self.conn_id: str = conn_id or named or self.default_conn_name
        setattr(self, self.conn_name_attr, self.conn_id)
        self._state_store = state_store
        self._retry: RetrySettings = retry if retry is not None else self.default_retry
        self._sleep: Callable[[float], None] = sleep if sleep is not None else time.sleep

    # ------------------------------------------------------------------ connection

    @cached_property
    def connection(self) -> Connection:
        """The Airflow Connection, fetched once per hook (each fetch is a round trip in tasks).

        Tasks and Airflow's servers see every connection through the Task SDK. A command-line tool
        (the consent helper, webhook registration) sees only ``AIRFLOW_CONN_*`` variables there, so
        for it a connection saved in Admin > Connections is read the way ``airflow connections get``
        reads it: from the secrets backends and the metadata database.
        """
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            return self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            if _in_task():
                raise
            return _saved_connection(self.conn_id)

    def extra(self, name: str, default: Any = None) -> Any:
        """An extra field, read under its plain name or the legacy ``extra__<type>__<name>`` form."""
        extras = self.connection.extra_dejson or {}
        for key in (name, f"extra__{self.conn_type}__{name}"):
            value = extras.get(key)
            if value not in (None, ""):
                return value
        return default

    def require(self, value: Any, field: str) -> str:
        """``value`` as a non-empty string, or a configuration error naming the connection field."""
        if value in (None, ""):
            raise ConfigurationError(
                f"connection '{self.conn_id}' ({self.conn_type}) is missing {field}; "
                "set it in Admin > Connections or the AIRFLOW_CONN_ variable"
            )
        return str(value)

    def host_url(self, default: str | None = None) -> str:
        """Scheme+host(+path) of the API: the connection's ``host`` overrides the vendor host.

        A host without a scheme gets ``https://``. A sandbox or staging host may carry a path prefix.
        """
        host = (self.connection.host or "").strip()
        if not host:
            return (default or self.default_host).rstrip("/")
        if "://" not in host:
            host = f"https://{host}"
        parts = urlsplit(host)
        if self.connection.port and not parts.port:
            host = host.replace(parts.netloc, f"{parts.netloc}:{self.connection.port}", 1)
        return host.rstrip("/")

    # ------------------------------------------------------------------ client and state

    @cached_property
    def client(self) -> ApiClient:
        return self.build_client()

    def build_client(self) -> ApiClient:
        raise NotImplementedError

    def get_conn(self) -> ApiClient:
        return self.client

    def token_client(self, token_url: str) -> ApiClient:
        """An unauthenticated client on an OAuth token endpoint (errors read the RFC 6749 way)."""
        from airflow_provider_mlconnector.core.auth import oauth_error_parser
        from airflow_provider_mlconnector.core.http import ApiClient

        return ApiClient(
            system=self.conn_type,
            base_url=token_url,
            error_parser=oauth_error_parser,
            retry=self._retry,
            sleep=self._sleep,
        )

    @property
    def state(self) -> StateStore:
        if self._state_store is None:
            from airflow_provider_mlconnector.state import get_state_store

            self._state_store = get_state_store()
        return self._state_store

    def connection_check(self, probe: Any) -> tuple[bool, str]:
        """Run ``probe()`` for ``test_connection``: ``(True, what it reached)`` or ``(False, why)``.

        ``probe`` must reach the vendor with the connection's secrets as they are now: the stored
        credentials it may reuse are only those these secrets obtained (see ``core.auth``).
        """
        try:
            return True, str(probe())
        except MLConnectorError as exc:
            return False, f"connection '{self.conn_id}': {exc}"
