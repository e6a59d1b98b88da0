"""Initial state-store schema: id map, watermarks, audit, dead letters, tokens, inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Frozen: later changes go into new revisions, never here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "mlc_id_map",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pair", sa.String(128), nullable=False),
        sa.Column("entity", sa.String(128), nullable=False),
        sa.Column("source_tenant", sa.String(128), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("target_tenant", sa.String(128), nullable=False),
        sa.Column("target_id", sa.String(255), nullable=True),
        sa.Column("natural_key", sa.String(512), nullable=True),
        sa.Column("fingerprint", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(512), nullable=True),
        _ts("claimed_at", nullable=True),
        _ts("last_synced_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("pair", "entity", "source_tenant", "source_id", name="uq_mlc_id_map_source"),
        sa.UniqueConstraint("pair", "entity", "target_tenant", "natural_key", name="uq_mlc_id_map_natural_key"),
    )
    op.create_index("ix_mlc_id_map_target", "mlc_id_map", ["pair", "entity", "target_tenant", "target_id"])

    op.create_table(
        "mlc_watermark",
        sa.Column("pair", sa.String(128), primary_key=True),
        sa.Column("stream", sa.String(128), primary_key=True),
        sa.Column("tenant", sa.String(128), primary_key=True),
        _ts("value"),
        _ts("updated_at"),
    )

    op.create_table(
        "mlc_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _ts("occurred_at"),
        sa.Column("pair", sa.String(128), nullable=False),
        sa.Column("entity", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("source_system", sa.String(128), nullable=False),
        sa.Column("source_tenant", sa.String(128), nullable=True),
        sa.Column("source_id", sa.String(255), nullable=True),
        sa.Column("target_system", sa.String(128), nullable=False),
        sa.Column("target_tenant", sa.String(128), nullable=True),
        sa.Column("target_id", sa.String(255), nullable=True),
        sa.Column("dag_id", sa.String(255), nullable=True),
        sa.Column("run_id", sa.String(255), nullable=True),
        sa.Column("task_id", sa.String(255), nullable=True),
        sa.Column("try_number", sa.Integer, nullable=True),
        sa.Column("vendor_request_id", sa.String(255), nullable=True),
        sa.Column("summary", _json(), nullable=False),
    )
    op.create_index("ix_mlc_audit_source", "mlc_audit", ["source_system", "source_id"])
    op.create_index("ix_mlc_audit_run", "mlc_audit", ["dag_id", "run_id"])

    op.create_table(
        "mlc_dead_letter",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pair", sa.String(128), nullable=False),
        sa.Column("entity", sa.String(128), nullable=False),
        sa.Column("source_tenant", sa.String(128), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("error_kind", sa.String(64), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_run_id", sa.String(255), nullable=True),
        sa.Column("resolution_note", sa.Text, nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
    )
    active = sa.text("status IN ('open', 'replay_requested')")
    op.create_index(
        "uq_mlc_dead_letter_active",
        "mlc_dead_letter",
        ["pair", "entity", "source_tenant", "source_id"],
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )
    op.create_index("ix_mlc_dead_letter_status", "mlc_dead_letter", ["status", "pair"])

    op.create_table(
        "mlc_token",
        sa.Column("system", sa.String(128), primary_key=True),
        sa.Column("credential_key", sa.String(255), primary_key=True),
        sa.Column("ciphertext", sa.Text, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        _ts("updated_at"),
    )

    op.create_table(
        "mlc_inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        _ts("received_at"),
        _ts("processed_at", nullable=True),
        sa.Column("run_id", sa.String(255), nullable=True),
        sa.UniqueConstraint("system", "event_id", name="uq_mlc_inbox_event"),
    )
    op.create_index("ix_mlc_inbox_pending", "mlc_inbox", ["processed_at", "system"])


def downgrade() -> None:
    for table in ("mlc_inbox", "mlc_token", "mlc_dead_letter", "mlc_audit", "mlc_watermark", "mlc_id_map"):
        op.drop_table(table)
