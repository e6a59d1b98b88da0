"""The ID map keeps both systems' revision of each record as this integration last synced it.

``target_version``: QuickBooks answers every write with the record's ``SyncToken``; a change read
later with the same token is this integration's own write, and needs no comparison with the source.
``source_version``: the source's revision in its listing (BigCommerce's ``date_modified``); a
listed record at the revision last synced is unchanged, and what the listing lacks is not read.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mlc_id_map") as table:
        table.add_column(sa.Column("target_version", sa.String(128), nullable=True))
        table.add_column(sa.Column("source_version", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mlc_id_map") as table:
        table.drop_column("source_version")
        table.drop_column("target_version")
