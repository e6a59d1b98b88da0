"""The pairs' DAG runs and their ``summary`` / ``reconcile`` results, read from Airflow's database.

The page runs inside the API server, which owns the metadata database; reading it directly is
one query per pair instead of a REST round trip carrying the user's token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class RunView:
    run_id: str
    state: str
    started: datetime | None
    summary: dict[str, Any] | None  # the summary task's XCom: {"entities": {entity: counts}, ...}
    reconcile: dict[str, Any] | None  # the reconcile task's XCom (a ReconcileReport), when it ran


class Runs(Protocol):
    def last_runs(self, dag_id: str, limit: int) -> list[RunView]: ...


class AirflowRuns:
    """:class:`Runs` from the metadata database (DagRun + XCom ``return_value``)."""

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
                    select(XComModel.dag_run_id, XComModel.task_id, XComModel.value).where(
                        XComModel.dag_run_id.in_([r.id for r in runs]),
                        XComModel.task_id.in_(("summary", "reconcile")),
                        XComModel.key == "return_value",
                        XComModel.map_index == -1,
                    )
                ).all()
                values = {(row.dag_run_id, row.task_id): XComModel.deserialize_value(row) for row in rows}
        return [
            RunView(
                r.run_id,
                str(getattr(r.state, "value", r.state)),
                r.start_date,
                _dict(values.get((r.id, "summary"))),
                _dict(values.get((r.id, "reconcile"))),
            )
            for r in runs
        ]


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None
