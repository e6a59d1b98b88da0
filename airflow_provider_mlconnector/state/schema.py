"""Table definitions of the state store (SQLAlchemy Core).

The live schema is built by the Alembic scripts in ``migrations/versions``; these objects are
what the code queries, and a test checks that both agree. Tables carry an ``mlc_`` prefix and the
Alembic version table has its own name, so the store can share a database (even Airflow's) safely.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

VERSION_TABLE = "mlconnector_state_version"

# Short string sizes are fine: tenants and ids are vendor ids; owners are dag/run/task ids.
_NAME = 128
_ID = 255
_LONG = 512


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no timezone type and would silently drop the offset, so values are stored there as
    naive UTC and tagged UTC again on the way out. Naive input is refused: guessing a timezone
    for a watermark could skip or double-sync a day of invoices.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class TextEnum(str, Enum):
    """A string enum that prints as its value (``enum.StrEnum`` needs Python 3.11)."""

    def __str__(self) -> str:
        return str(self.value)


def json_type() -> sa.types.TypeEngine[Any]:
    """JSON, stored as JSONB on PostgreSQL."""
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


metadata = sa.MetaData()


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


id_map = sa.Table(
    "mlc_id_map",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pair", sa.String(_NAME), nullable=False),
    sa.Column("entity", sa.String(_NAME), nullable=False),
    sa.Column("source_tenant", sa.String(_NAME), nullable=False),
    sa.Column("source_id", sa.String(_ID), nullable=False),
    sa.Column("target_tenant", sa.String(_NAME), nullable=False),
    sa.Column("target_id", sa.String(_ID), nullable=True),
    sa.Column("natural_key", sa.String(_LONG), nullable=True),
    sa.Column("fingerprint", sa.String(_NAME), nullable=True),
    # The target's revision of the record as this integration last wrote it (QuickBooks' SyncToken).
    sa.Column("target_version", sa.String(_NAME), nullable=True),
    # The source's revision in its listing as last synced (BigCommerce's date_modified).
    sa.Column("source_version", sa.String(_NAME), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("claimed_by", sa.String(_LONG), nullable=True),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    sa.Column("last_synced_at", UTCDateTime(), nullable=True),
    *_timestamps(),
    sa.UniqueConstraint("pair", "entity", "source_tenant", "source_id", name="uq_mlc_id_map_source"),
    # NULL natural keys are distinct on both backends, so records without one are not constrained.
    sa.UniqueConstraint("pair", "entity", "target_tenant", "natural_key", name="uq_mlc_id_map_natural_key"),
    sa.Index("ix_mlc_id_map_target", "pair", "entity", "target_tenant", "target_id"),
)

watermark = sa.Table(
    "mlc_watermark",
    metadata,
    sa.Column("pair", sa.String(_NAME), primary_key=True),
    sa.Column("stream", sa.String(_NAME), primary_key=True),
    sa.Column("tenant", sa.String(_NAME), primary_key=True),
    sa.Column("value", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

audit = sa.Table(
    "mlc_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("pair", sa.String(_NAME), nullable=False),
    sa.Column("entity", sa.String(_NAME), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("source_system", sa.String(_NAME), nullable=False),
    sa.Column("source_tenant", sa.String(_NAME), nullable=True),
    sa.Column("source_id", sa.String(_ID), nullable=True),
    sa.Column("target_system", sa.String(_NAME), nullable=False),
    sa.Column("target_tenant", sa.String(_NAME), nullable=True),
    sa.Column("target_id", sa.String(_ID), nullable=True),
    sa.Column("dag_id", sa.String(_ID), nullable=True),
    sa.Column("run_id", sa.String(_ID), nullable=True),
    sa.Column("task_id", sa.String(_ID), nullable=True),
    sa.Column("try_number", sa.Integer, nullable=True),
    sa.Column("vendor_request_id", sa.String(_ID), nullable=True),
    sa.Column("summary", json_type(), nullable=False),
    sa.Index("ix_mlc_audit_source", "source_system", "source_id"),
    sa.Index("ix_mlc_audit_target", "target_system", "target_id"),  # added by revision 0002
    sa.Index("ix_mlc_audit_run", "dag_id", "run_id"),
)

ACTIVE_LETTER_STATUSES = ("open", "replay_requested")

dead_letter = sa.Table(
    "mlc_dead_letter",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pair", sa.String(_NAME), nullable=False),
    sa.Column("entity", sa.String(_NAME), nullable=False),
    sa.Column("source_tenant", sa.String(_NAME), nullable=False),
    sa.Column("source_id", sa.String(_ID), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("error_kind", sa.String(64), nullable=False),
    sa.Column("payload", json_type(), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_run_id", sa.String(_ID), nullable=True),
    sa.Column("resolution_note", sa.Text, nullable=True),
    *_timestamps(),
    # At most one active letter per record, enforced by the database (a partial unique index on
    # both backends) so concurrent failing runs cannot create two.
    sa.Index(
        "uq_mlc_dead_letter_active",
        "pair",
        "entity",
        "source_tenant",
        "source_id",
        unique=True,
        sqlite_where=sa.text("status IN ('open', 'replay_requested')"),
        postgresql_where=sa.text("status IN ('open', 'replay_requested')"),
    ),
    sa.Index("ix_mlc_dead_letter_status", "status", "pair"),
)

token = sa.Table(
    "mlc_token",
    metadata,
    sa.Column("system", sa.String(_NAME), primary_key=True),
    sa.Column("credential_key", sa.String(_ID), primary_key=True),
    # Fernet token (base64 text); NULL only for a lock row created before the first save.
    sa.Column("ciphertext", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

inbox = sa.Table(
    "mlc_inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("system", sa.String(_NAME), nullable=False),
    sa.Column("tenant", sa.String(_NAME), nullable=True),
    sa.Column("event_id", sa.String(_ID), nullable=False),
    sa.Column("event_type", sa.String(_NAME), nullable=False),
    sa.Column("payload", json_type(), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("processed_at", UTCDateTime(), nullable=True),
    sa.Column("run_id", sa.String(_ID), nullable=True),
    sa.UniqueConstraint("system", "event_id", name="uq_mlc_inbox_event"),
    sa.Index("ix_mlc_inbox_pending", "processed_at", "system"),
)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)
