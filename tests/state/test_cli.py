"""The on-call CLI: ``python -m airflow_provider_mlconnector.state``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from airflow_provider_mlconnector.state import AuditAction, AuditEvent, StateStore
from airflow_provider_mlconnector.state.cli import main

PAIR = "freshbooks_to_quickbooks"


def letter(store: StateStore, source_id: str = "INV-1") -> int:
    return store.dead_letters.add(
        PAIR,
        "invoice",
        "acct-1",
        source_id,
        reason="GL account 4010 is not mapped to a QuickBooks account",
        error_kind="unmapped_account",
        payload={"number": source_id, "password": "hunter2"},
        run_id="run-1",
    ).id


def test_dlq_list_table_and_json(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list"], store=store) == 0
    assert capsys.readouterr().out == "no dead letters\n"
    first, second = letter(store, "INV-1"), letter(store, "INV-2")
    store.dead_letters.resolve(second, "done")

    assert main(["dlq", "list", "--status", "open", "--pair", PAIR], store=store) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "ID",
        "STATUS",
        "PAIR",
        "ENTITY",
        "TENANT",
        "SOURCE_ID",
        "KIND",
        "TRIES",
        "UPDATED",
        "REASON",
    ]
    assert len(lines) == 2
    assert lines[1].split()[:8] == [str(first), "open", PAIR, "invoice", "acct-1", "INV-1", "unmapped_account", "1"]
    assert "GL account 4010 is not mapped to a QuickBooks" in lines[1]

    assert main(["--json", "dlq", "list"], store=store) == 0
    assert [d["status"] for d in json.loads(capsys.readouterr().out)] == ["open", "resolved"]
    assert main(["dlq", "list", "--json", "--status", "resolved"], store=store) == 0
    assert [d["id"] for d in json.loads(capsys.readouterr().out)] == [second]


def test_dlq_show_resolve_replay(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = letter(store, "INV-1"), letter(store, "INV-2")

    assert main(["dlq", "show", str(first)], store=store) == 0
    out = capsys.readouterr().out
    assert "error_kind" in out
    assert '"password": "***"' in out
    assert "hunter2" not in out
    assert main(["dlq", "show", "999"], store=store) == 1
    assert "no dead letter with id 999" in capsys.readouterr().err

    assert main(["dlq", "replay", str(first), "999"], store=store) == 1
    out = capsys.readouterr().out
    assert f"flagged for replay by the next run: {first}" in out
    assert "skipped 999: not found" in out
    assert [d.id for d in store.dead_letters.replay_requested(PAIR)] == [first]

    assert main(["dlq", "resolve", str(second), "--note", "voided in FreshBooks"], store=store) == 0
    assert capsys.readouterr().out == f"dead letter {second} resolved: voided in FreshBooks\n"
    assert main(["dlq", "resolve", "999", "--note", "x"], store=store) == 1
    assert "no dead letter with id 999" in capsys.readouterr().err
    assert main(["--json", "dlq", "show", str(second)], store=store) == 0
    assert json.loads(capsys.readouterr().out)["resolution_note"] == "voided in FreshBooks"


def test_audit_history(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    store.audit.record(
        AuditEvent(
            PAIR,
            "invoice",
            AuditAction.CREATED,
            "freshbooks",
            "acct-1",
            "INV-1",
            "quickbooks",
            "realm-1",
            "77",
            dag_id="fb_to_qbo",
            run_id="run-1",
            try_number=1,
        )
    )
    assert main(["audit", "quickbooks", "77"], store=store) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["WHEN", "ACTION", "PAIR", "ENTITY", "SOURCE", "TARGET", "RUN", "TRY"]
    assert lines[1].split()[2:] == [
        "created",
        PAIR,
        "invoice",
        "freshbooks:acct-1/INV-1",
        "quickbooks:realm-1/77",
        "fb_to_qbo/run-1",
        "1",
    ]
    assert main(["audit", "bill", "77"], store=store) == 0
    assert capsys.readouterr().out == "no audit events for bill 77\n"
    assert main(["audit", "freshbooks", "INV-1", "--json"], store=store) == 0
    assert json.loads(capsys.readouterr().out)[0]["target_id"] == "77"


def test_tokens_rotate_key_and_migrate(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    store.tokens.put("quickbooks", "realm-1", {"access_token": "a"})
    assert main(["tokens", "rotate-key"], store=store) == 0
    assert capsys.readouterr().out == "re-encrypted 1 credential(s) with the newest key\n"
    assert main(["migrate", "--json"], store=store) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == "0003"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dlq"])
    assert exited.value.code == 2


def test_python_dash_m_uses_the_configured_store(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MLCONNECTOR_STATE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "MLCONNECTOR_FERNET_KEY": Fernet.generate_key().decode(),
    }
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_mlconnector.state", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"state store sqlite:///{tmp_path / 'cli.db'} is at revision 0003\n"
