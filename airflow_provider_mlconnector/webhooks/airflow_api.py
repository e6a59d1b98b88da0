"""The dispatcher's production :class:`~.dispatcher.Trigger`: Airflow's public REST API.

Why REST and not the ORM: the receiver may run outside the API server (standalone), Airflow 3
keeps its ORM private to its own components, and a REST call is checked by the auth manager
like any user's. Calls: ``POST /auth/token`` for a JWT (renewed after a 401),
``GET /api/v2/dags/{dag_id}/dagRuns?state=queued&state=running`` and
``POST /api/v2/dags/{dag_id}/dagRuns`` with ``{"logical_date": null, "dag_run_id", "conf"}``.

Configuration, first match wins:

1. ``MLCONNECTOR_AIRFLOW_API_URL`` (e.g. ``http://airflow-apiserver:8080``) with
   ``MLCONNECTOR_AIRFLOW_API_USER`` / ``MLCONNECTOR_AIRFLOW_API_PASSWORD``;
2. the Airflow connection ``mlconnector_airflow_api`` (host with scheme, port, login, password).

Without a user the token is fetched with ``GET /auth/token``, which only the simple auth manager
in "all admins" mode answers (local demos).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from airflow_provider_mlconnector.exceptions import AuthError, FatalApiError, RetryableApiError
from airflow_provider_mlconnector.webhooks.dispatcher import ActiveRun, TriggerResult

log = logging.getLogger(__name__)

CONN_ID = "mlconnector_airflow_api"
SYSTEM = "airflow"


@dataclass(frozen=True)
class AirflowApiConfig:
    base_url: str
    username: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def resolve(
        cls,
        environ: Mapping[str, str] | None = None,
        connection: Callable[[str], Any | None] | None = None,
    ) -> AirflowApiConfig | None:
        """The configuration from the environment or the connection; ``None`` when neither is set."""
        env = os.environ if environ is None else environ
        url = env.get("MLCONNECTOR_AIRFLOW_API_URL", "").strip()
        if url:
            return cls(
                url.rstrip("/"),
                env.get("MLCONNECTOR_AIRFLOW_API_USER", ""),
                env.get("MLCONNECTOR_AIRFLOW_API_PASSWORD", ""),
            )
        conn = (connection or _get_connection)(CONN_ID)
        if conn is None or not conn.host:
            return None
        return cls(_connection_url(conn.host, conn.port), conn.login or "", conn.password or "")


def _get_connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _connection_url(host: str, port: int | None) -> str:
    url = host.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    scheme, _, rest = url.partition("://")
    if port and ":" not in rest.split("/", 1)[0]:
        host_part, slash, path = rest.partition("/")
        rest = f"{host_part}:{port}{slash}{path}"
    return f"{scheme}://{rest}"


class RestTrigger:
    """Triggers and inspects DAG runs over Airflow's REST API with a cached JWT."""

    def __init__(
        self, config: AirflowApiConfig, *, session: requests.Session | None = None, timeout: float = 10.0
    ) -> None:
        self.config = config
        self.session = session or requests.Session()
        self.timeout = timeout
        self._token: str | None = None
        self._lock = threading.Lock()

    def active_run(self, dag_id: str) -> ActiveRun | None:
        response = self._call(
            "GET", _runs_path(dag_id), params=[("state", "queued"), ("state", "running"), ("limit", "20")]
        )
        if response.status_code == 404:
            return None  # the trigger call reports the missing DAG
        runs = [run for run in self._json(response, dag_id).get("dag_runs", []) if isinstance(run, dict)]
        for wanted in ("queued", "running"):
            for run in runs:
                if run.get("state") == wanted:
                    return ActiveRun(str(run["dag_run_id"]), wanted)
        return None

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any]) -> TriggerResult:
        body = {
            "dag_run_id": run_id,
            "logical_date": None,
            "conf": dict(conf),
            "note": "triggered by ml-connector webhooks",
        }
        response = self._call("POST", _runs_path(dag_id), json=body)
        if response.status_code == 409:
            return TriggerResult.EXISTS
        if response.status_code == 404:
            return TriggerResult.NO_DAG
        self._json(response, dag_id)
        return TriggerResult.TRIGGERED

    # ------------------------------------------------------------------ plumbing

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.config.base_url + path
        response = self.session.request(method, url, headers=self._auth(), timeout=self.timeout, **kwargs)
        if response.status_code == 401:  # expired JWT: one fresh token, one retry
            response = self.session.request(method, url, headers=self._auth(renew=True), timeout=self.timeout, **kwargs)
        if response.status_code in (401, 403):
            user = self.config.username or "anonymous"
            raise AuthError(f"Airflow API refused {user}", system=SYSTEM, status=response.status_code)
        return response

    def _auth(self, *, renew: bool = False) -> dict[str, str]:
        with self._lock:
            if self._token is None or renew:
                self._token = self._fetch_token()
            return {"Authorization": f"Bearer {self._token}"}

    def _fetch_token(self) -> str:
        url = f"{self.config.base_url}/auth/token"
        if self.config.username:
            credentials = {"username": self.config.username, "password": self.config.password}
            response = self.session.post(url, json=credentials, timeout=self.timeout)
        else:
            response = self.session.get(url, timeout=self.timeout)
        if response.status_code >= 400:
            raise AuthError(
                f"Airflow API token request failed for {self.config.username or 'anonymous'}",
                system=SYSTEM,
                status=response.status_code,
            )
        token = response.json().get("access_token")
        if not token:
            raise AuthError(
                "Airflow API token response had no access_token", system=SYSTEM, status=response.status_code
            )
        return str(token)

    def _json(self, response: requests.Response, dag_id: str) -> dict[str, Any]:
        if response.status_code >= 500:
            raise RetryableApiError(f"Airflow API error for {dag_id}", system=SYSTEM, status=response.status_code)
        if response.status_code >= 400:
            raise FatalApiError(
                f"Airflow API refused the request for {dag_id}: {response.text[:300]}",
                system=SYSTEM,
                status=response.status_code,
            )
        document: dict[str, Any] = response.json()
        return document


def _runs_path(dag_id: str) -> str:
    return f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns"
