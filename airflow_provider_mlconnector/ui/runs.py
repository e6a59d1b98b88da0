"""The pairs' DAG runs and their ``summary`` XComs (counts; the reconciliation when asked), from Airflow's DB.

The page runs inside the API server, which owns the metadata database; reading it directly is
one query per pair instead of a REST round trip carrying the user's token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from airflow_provider_mlconnector.operators.reconcile import RECONCILE_KEY


@dataclass(frozen=True)
class RunView:
    run_id: str
    state: str
    started: datetime | None
    summary: dict[str, Any] | None  # the summary task's XCom: {"entities": {entity: counts}, ...}
    reconcile: dict[str, Any] | None  # the summary's ``reconcile`` XCom (a ReconcileReport), when asked


class Runs(Protocol):
    def last_runs(self, dag_id: str, limit: int) -> list[RunView]: ...


class AirflowRuns:
    """:class:`Runs` from the metadata database (DagRun + the summary task's XComs)."""

    def last_runs(self, dag_id: str, limit: int) -> list[RunView]:
        from airflow.models.dagrun import DagRun
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            runs = session.execute(
                select(DagRun.id, DagRun.run_id, DagRun.state, DagRun.start_date)
                .where(DagRun.dag_id == dag_id)
                .order_by(DagRun.id.desc())
                .limit(limit)
            ).all()
            values: dict[tuple[int, str], Any] = {}
            if runs:
                rows = session.execute(
                    select(XComModel.dag_run_id, XComModel.key, XComModel.value).where(
                        XComModel.dag_run_id.in_([r.id for r in runs]),
                        XComModel.task_id == "summary",
                        XComModel.key.in_(("return_value", RECONCILE_KEY)),
                        XComModel.map_index == -1,
                    )
                ).all()
                values = {(row.dag_run_id, row.key): XComModel.deserialize_value(row) for row in rows}
        return [
            RunView(
                r.run_id,
                str(getattr(r.state, "value", r.state)),
                r.start_date,
                _dict(values.get((r.id, "return_value"))),
                _dict(values.get((r.id, RECONCILE_KEY))),
            )
            for r in runs
        ]


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None
