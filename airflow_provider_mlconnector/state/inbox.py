"""The webhook inbox: vendor events stored once, processed later by a DAG run.

The receiver answers the vendor fast and only calls :meth:`WebhookInbox.add`; vendors resend
events (QuickBooks, BigCommerce retry until they get a 2xx), and the unique (system, event_id)
constraint turns every resend into a no-op.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from airflow_provider_mlconnector.state import schema
from airflow_provider_mlconnector.state.db import Database
from airflow_provider_mlconnector.state.redaction import storable
from airflow_provider_mlconnector.state.schema import utcnow

_T = schema.inbox


@dataclass(frozen=True)
class InboxEvent:
    """One received webhook event."""

    id: int
    system: str
    tenant: str | None
    event_id: str
    event_type: str
    payload: dict[str, Any]
    received_at: datetime
    processed_at: datetime | None
    run_id: str | None

    @classmethod
    def from_row(cls, row: RowMapping) -> InboxEvent:
        return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls)})


class WebhookInbox:
    """Deduplicated store of incoming webhook events."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        system: str,
        tenant: str | None,
        event_id: str,
        event_type: str,
        payload: Mapping[str, Any],
        received_at: datetime | None = None,
    ) -> bool:
        """Store an event; ``False`` (and nothing stored) if this system's event id was seen before.

        The payload is redacted: events only tell a run which records to re-read by id. A resend
        is answered from a read, so repeated deliveries never take the write lock.
        """
        if self._exists(system, event_id):
            return False
        values = {
            "system": system,
            "tenant": tenant,
            "event_id": event_id,
            "event_type": event_type,
            "payload": storable(payload),
            "received_at": received_at or utcnow(),
        }
        try:
            with self._db.write() as conn:
                conn.execute(sa.insert(_T).values(**values))
        except IntegrityError:
            return False
        return True

    def _exists(self, system: str, event_id: str) -> bool:
        query = sa.select(_T.c.id).where(_T.c.system == system, _T.c.event_id == event_id)
        with self._db.read() as conn:
            return conn.execute(query).first() is not None

    def get(self, system: str, event_id: str) -> InboxEvent | None:
        """One event by its vendor id."""
        with self._db.read() as conn:
            row = conn.execute(sa.select(_T).where(_T.c.system == system, _T.c.event_id == event_id)).mappings().first()
        return InboxEvent.from_row(row) if row is not None else None

    def pending(self, system: str | None = None, limit: int = 500) -> builtins.list[InboxEvent]:
        """Unprocessed events, oldest first."""
        query = sa.select(_T).where(_T.c.processed_at.is_(None)).order_by(_T.c.received_at, _T.c.id).limit(limit)
        if system is not None:
            query = query.where(_T.c.system == system)
        with self._db.read() as conn:
            return [InboxEvent.from_row(row) for row in conn.execute(query).mappings()]

    def mark_processed(self, ids: Iterable[int], run_id: str) -> int:
        """Mark events (by inbox ``id``) processed by ``run_id``; returns how many changed.

        Already processed events keep their first run id.
        """
        wanted = builtins.list(ids)
        if not wanted:
            return 0
        statement = (
            sa.update(_T)
            .where(_T.c.id.in_(wanted), _T.c.processed_at.is_(None))
            .values(processed_at=utcnow(), run_id=run_id)
        )
        with self._db.write() as conn:
            return conn.execute(statement).rowcount
