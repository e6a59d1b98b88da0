"""Index the audit trail by target record, so history() is fast from either side.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_mlc_audit_target", "mlc_audit", ["target_system", "target_id"])


def downgrade() -> None:
    op.drop_index("ix_mlc_audit_target", table_name="mlc_audit")
