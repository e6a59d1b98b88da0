"""Alembic environment for the state store.

Only the programmatic path is supported: :meth:`StateStore.migrate` passes an open connection
(already inside a transaction that holds the migration lock) in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context

from airflow_provider_mlconnector.state.schema import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run state-store migrations with `python -m airflow_provider_mlconnector.state migrate`")

# render_as_batch lets future ALTERs work on SQLite (table copy) as well as on PostgreSQL.
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
