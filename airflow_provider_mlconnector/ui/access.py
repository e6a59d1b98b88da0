"""Who is looking, and what Airflow's auth manager lets them do.

The page is a plugin FastAPI app, which Airflow does not authenticate: every request is checked
here with the same JWT the Airflow UI uses (``Authorization: Bearer`` or the ``_token`` cookie
the UI sets at login, sent along because the page is served from Airflow's own origin).

* look: ``GET`` on the pair's DAG (any role that may see the DAG);
* act (replay, resolve): ``PUT`` on the DAG's runs, the permission that clears and reruns its
  tasks in the Airflow UI: a replay is a rerun of one record. Read-only users see the buttons
  disabled, and a forged POST gets 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import HTTPException, Request


@dataclass(frozen=True)
class Viewer:
    """The signed-in Airflow user (``user`` is the auth manager's object)."""

    name: str
    user: Any


class Access(Protocol):
    async def viewer(self, request: Request) -> Viewer: ...
    def may_view(self, viewer: Viewer, pair: str) -> bool: ...
    def may_act(self, viewer: Viewer, pair: str) -> bool: ...


class AirflowAccess:
    """:class:`Access` through the running API server's auth manager."""

    async def viewer(self, request: Request) -> Viewer:
        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
        from airflow.api_fastapi.core_api.security import resolve_user_from_token

        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
        user = await resolve_user_from_token(token)  # 401 / 403 when missing, expired or forged
        return Viewer(user.get_name(), user)

    def may_view(self, viewer: Viewer, pair: str) -> bool:
        return self._dag(viewer, pair, "GET", run=False)

    def may_act(self, viewer: Viewer, pair: str) -> bool:
        return self._dag(viewer, pair, "PUT", run=True)

    @staticmethod
    def _dag(viewer: Viewer, pair: str, method: str, *, run: bool) -> bool:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

        return bool(
            get_auth_manager().is_authorized_dag(
                method=method,  # type: ignore[arg-type]
                access_entity=DagAccessEntity.RUN if run else None,
                details=DagDetails(id=pair),
                user=viewer.user,
            )
        )


def forbid_unless(allowed: bool, what: str) -> None:
    if not allowed:
        raise HTTPException(status_code=403, detail=f"your Airflow role may not {what}")
