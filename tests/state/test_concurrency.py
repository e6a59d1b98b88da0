"""Real multi-process races against both backends (each worker is a separate interpreter)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mlconnector.state import StateStore
from airflow_provider_mlconnector.state.db import head_revision

WORKER = Path(__file__).with_name("_workers.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def run_workers(kind: str, count: int, tmp_path: Path, **args: Any) -> list[dict[str, Any]]:
    gate = tmp_path / f"gate-{kind}"
    gate.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), kind, json.dumps({**args, "index": i, "gate": str(gate)})],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for i in range(count)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(gate.glob("ready-*"))) < count:
            failed = [p for p in procs if p.poll() not in (None, 0)]
            assert not failed, failed[0].communicate()[1].decode()
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.01)
        (gate / "go").touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err.decode()
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def test_eight_processes_refresh_one_credential_exactly_once(
    store: StateStore, state_url: str, fernet_key: str, tmp_path: Path
) -> None:
    store.tokens.put("quickbooks", "realm-1", {"access_token": "a0", "refresh_token": "r0", "expires_at": 0})
    vendor_log = tmp_path / "vendor.log"

    results = run_workers("refresh", 8, tmp_path, url=state_url, keys=[fernet_key], vendor_log=str(vendor_log))

    calls = vendor_log.read_text().splitlines()
    assert len(calls) == 1, calls
    assert calls[0].endswith("using r0")
    assert sum(r["refreshed"] for r in results) == 1
    newest = store.tokens.get("quickbooks", "realm-1")
    assert newest is not None
    assert newest["access_token"].startswith("access-")
    assert all(r["final"] == newest for r in results)
    assert store.tokens.version("quickbooks", "realm-1") == 2  # the seed, then one refresh


def test_concurrent_claims_create_the_record_once(store: StateStore, state_url: str, tmp_path: Path) -> None:
    vendor_log = tmp_path / "vendor.log"

    results = run_workers("claim", 4, tmp_path, url=state_url, vendor_log=str(vendor_log))

    outcomes = sorted(r["outcome"] for r in results)
    assert outcomes == ["busy", "busy", "busy", "claimed"]
    assert len(vendor_log.read_text().splitlines()) == 1
    mapping = store.id_map.get("freshbooks_to_quickbooks", "bill", "acct-1", "inv-1")
    assert mapping is not None
    assert mapping.status == "synced"
    assert mapping.target_id is not None
    assert mapping.target_id.startswith("qbo-")


def test_processes_opening_a_new_store_migrate_it_once(state_url: str, tmp_path: Path) -> None:
    results = run_workers("migrate", 4, tmp_path, url=state_url)

    assert {r["revision"] for r in results} == {head_revision()}
    assert StateStore(state_url).current_revision() == head_revision()


def test_store_survives_fork(store: StateStore) -> None:
    store.id_map.record("p", "customer", "t1", "parent-before", "t2", "T1", None, "fp")
    pid = os.fork()
    if pid == 0:  # child: must open its own engine, not reuse the parent's sockets
        code = 1
        try:
            store.id_map.record("p", "customer", "t1", "child", "t2", "T2", None, "fp")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's pooled connection still works after the child exited.
    store.id_map.record("p", "customer", "t1", "parent-after", "t2", "T3", None, "fp")
    assert [m.source_id for m in store.id_map.list("p", "customer")] == ["parent-before", "child", "parent-after"]


class _BusyThenFree:
    """A cursor on a new file another process is converting: refused at once a few times."""

    def __init__(self, refusals: int) -> None:
        self.refusals, self.executed = refusals, []

    def execute(self, sql):
        self.executed.append(sql)
        if self.refusals:
            self.refusals -= 1
            raise sqlite3.OperationalError("database is locked")
        return self

    def fetchone(self):
        return ("delete",)


def test_a_store_opened_while_another_process_converts_the_file_to_wal_waits_for_it() -> None:
    from airflow_provider_mlconnector.state.db import use_wal

    cursor = _BusyThenFree(refusals=3)
    use_wal(cursor, wait_seconds=5)
    assert cursor.executed[-1] == "PRAGMA journal_mode=WAL" and cursor.refusals == 0
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        use_wal(_BusyThenFree(refusals=1000), wait_seconds=0.2)
