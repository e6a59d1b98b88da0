"""The audit trail: one row per record-level action, queryable per record across systems."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from airflow_provider_mlconnector.state import schema
from airflow_provider_mlconnector.state.db import Database
from airflow_provider_mlconnector.state.redaction import storable
from airflow_provider_mlconnector.state.schema import TextEnum, utcnow

_T = schema.audit


class AuditAction(TextEnum):
    """What happened to a record."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    MATCHED_EXISTING = "matched_existing"
    QUARANTINED = "quarantined"
    REPLAYED = "replayed"
    FAILED = "failed"
    DELETED = "deleted"
    # on-call actions on a dead letter (state/oncall.py); the summary names the user
    REPLAY_REQUESTED = "replay_requested"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class AuditEvent:
    """An action to record. ``summary`` is redacted before it is stored."""

    pair: str
    entity: str
    action: AuditAction | str
    source_system: str
    source_tenant: str | None
    source_id: str | None
    target_system: str
    target_tenant: str | None = None
    target_id: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    try_number: int | None = None
    vendor_request_id: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRow:
    """A stored audit event."""

    id: int
    occurred_at: datetime
    pair: str
    entity: str
    action: AuditAction
    source_system: str
    source_tenant: str | None
    source_id: str | None
    target_system: str
    target_tenant: str | None
    target_id: str | None
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    try_number: int | None
    vendor_request_id: str | None
    summary: dict[str, Any]

    @classmethod
    def from_row(cls, row: RowMapping) -> AuditRow:
        values = {f.name: row[f.name] for f in dataclasses.fields(cls)}
        values["action"] = AuditAction(values["action"])
        return cls(**values)


class AuditTrail:
    """Append-only record of what each run did to each record."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, event: AuditEvent, *, occurred_at: datetime | None = None) -> int:
        """Store one event (its summary redacted) and return its id."""
        with self._db.write() as conn:
            return int(
                conn.execute(sa.insert(_T).values(**_values(event, occurred_at)).returning(_T.c.id)).scalar_one()
            )

    def record_many(self, events: Sequence[AuditEvent]) -> None:
        """Store many events in one transaction (a run's thousands of "unchanged" rows cost one commit)."""
        if not events:
            return
        now = utcnow()
        with self._db.write() as conn:
            conn.execute(sa.insert(_T), [_values(event, now) for event in events])

    def history(self, system: str, record_id: str) -> builtins.list[AuditRow]:
        """Every event that touched ``record_id`` of ``system``, as source or target, oldest first.

        A QuickBooks bill id finds the events that created or updated it from FreshBooks (they
        carry it as ``target_id``) as well as events where it was itself the source.
        """
        where = sa.or_(
            sa.and_(_T.c.source_system == system, _T.c.source_id == record_id),
            sa.and_(_T.c.target_system == system, _T.c.target_id == record_id),
        )
        return self._select(where)

    def for_run(self, dag_id: str, run_id: str) -> builtins.list[AuditRow]:
        """Everything one DAG run did, oldest first."""
        return self._select(sa.and_(_T.c.dag_id == dag_id, _T.c.run_id == run_id))

    def _select(self, where: sa.ColumnElement[bool]) -> builtins.list[AuditRow]:
        query = sa.select(_T).where(where).order_by(_T.c.occurred_at, _T.c.id)
        with self._db.read() as conn:
            return [AuditRow.from_row(row) for row in conn.execute(query).mappings()]


def _values(event: AuditEvent, occurred_at: datetime | None) -> dict[str, Any]:
    values = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    values["action"] = AuditAction(event.action).value  # rejects unknown actions
    values["summary"] = storable(event.summary)
    values["occurred_at"] = occurred_at or utcnow()
    return values
