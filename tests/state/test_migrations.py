"""Schema migrations: upgrade keeps data, the models match the migrations, clear errors."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from airflow_provider_mlconnector.state import AuditAction, AuditEvent, StateError, StateStore
from airflow_provider_mlconnector.state.db import head_revision
from airflow_provider_mlconnector.state.schema import VERSION_TABLE, metadata

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def audit_indexes(store: StateStore) -> set[str]:
    with store.db.engine.connect() as conn:
        return {ix["name"] for ix in sa.inspect(conn).get_indexes("mlc_audit") if ix["name"]}


def test_upgrade_from_0001_to_head_keeps_rows(state_url: str) -> None:
    old = StateStore(state_url, auto_migrate=False)
    assert old.current_revision() is None
    assert old.migrate("0001") == "0001"
    old.audit.record(
        AuditEvent(
            "fb_to_qbo", "invoice", AuditAction.CREATED, "freshbooks", "acct-1", "INV-1", "quickbooks", "realm-1", "77"
        )
    )
    with old.db.write() as conn:  # a row as 0001 wrote it (today's code writes columns added since)
        conn.execute(
            sa.text(
                "INSERT INTO mlc_id_map (pair, entity, source_tenant, source_id, target_tenant, target_id, "
                "natural_key, fingerprint, status, created_at, updated_at) VALUES ('fb_to_qbo', 'invoice', "
                "'acct-1', 'INV-1', 'realm-1', '77', 'INV-1|C-1', 'fp', 'synced', :now, :now)"
            ),
            {"now": T0},
        )
    old.watermarks.advance("fb_to_qbo", "invoices", "acct-1", T0)
    old.dead_letters.add("fb_to_qbo", "invoice", "acct-1", "INV-2", reason="r", error_kind="validation")
    assert "ix_mlc_audit_target" not in audit_indexes(old)
    old.close()

    new = StateStore(state_url)  # first use upgrades to head
    assert [r.source_id for r in new.audit.history("quickbooks", "77")] == ["INV-1"]
    assert new.current_revision() == head_revision() == "0003"
    assert "ix_mlc_audit_target" in audit_indexes(new)
    mapping = new.id_map.get("fb_to_qbo", "invoice", "acct-1", "INV-1")
    assert mapping is not None
    assert (mapping.target_id, mapping.target_version, mapping.source_version) == ("77", None, None)  # 0003
    assert new.watermarks.get("fb_to_qbo", "invoices", "acct-1") == T0
    assert len(new.dead_letters.list(status="open")) == 1
    assert new.migrate() == "0003"  # idempotent
    new.close()


def test_migrations_produce_exactly_the_models(store: StateStore) -> None:
    with store.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    ignorable = {"mlconnector_state_version"}
    assert [d for d in diff if not (d[0] == "remove_table" and d[1].name in ignorable)] == []


def test_database_newer_than_the_code_is_a_clear_error(store: StateStore, state_url: str) -> None:
    with store.db.write() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    newer = StateStore(state_url)
    with pytest.raises(StateError, match="newer than this provider"):
        newer.watermarks.get("p", "s", "t")
    newer.close()
