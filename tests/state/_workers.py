"""Worker processes for the state-store concurrency tests.

Run as a script (``python _workers.py KIND JSON_ARGS``) so each worker is a fresh interpreter
with its own engine, exactly like separate Airflow task processes. Every worker signals
``ready-N`` in the gate directory, waits for ``go`` so all start together, then prints one JSON
line with its result.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from airflow_provider_mlconnector.state import StateStore

SYSTEM, CREDENTIAL = "quickbooks", "realm-1"
PAIR, ENTITY = "freshbooks_to_quickbooks", "bill"


def _gate(gate: Path, index: int) -> None:
    (gate / f"ready-{index}").touch()
    deadline = time.monotonic() + 60
    while not (gate / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("gate never opened")
        time.sleep(0.002)


def _append(path: str, line: str) -> None:
    # O_APPEND writes of one short line are atomic, so every "vendor call" is counted.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def refresh(store: StateStore, index: int, args: dict[str, Any]) -> dict[str, Any]:
    """The hooks' refresh pattern: check, lock, re-check, refresh, save before use."""
    token = store.tokens.get(SYSTEM, CREDENTIAL)
    assert token is not None
    refreshed = False
    if token["expires_at"] <= time.time():
        with store.tokens.locked(SYSTEM, CREDENTIAL) as locked:
            assert locked.value is not None
            if locked.value["expires_at"] <= time.time():
                _append(args["vendor_log"], f"refresh by {index} using {locked.value['refresh_token']}")
                time.sleep(0.2)  # the vendor's token endpoint is slow
                locked.save(
                    {
                        "access_token": f"access-{index}",
                        "refresh_token": f"refresh-{index}",
                        "expires_at": time.time() + 3600,
                    }
                )
                refreshed = True
    return {"refreshed": refreshed, "final": store.tokens.get(SYSTEM, CREDENTIAL)}


def claim(store: StateStore, index: int, args: dict[str, Any]) -> dict[str, Any]:
    """Two runs upserting the same source record: only the claimer may create it."""
    owner = f"dag/run-{index}/upsert"
    result = store.id_map.claim(PAIR, ENTITY, "acct-1", "inv-1", "realm-1", "B-100|vendor-7", owner)
    if result.may_write:
        time.sleep(1.0)  # a slow vendor create: the other runs claim meanwhile
        _append(args["vendor_log"], f"create by {index}")
        store.id_map.complete(PAIR, ENTITY, "acct-1", "inv-1", f"qbo-{index}", "fp")
    return {"outcome": result.outcome.value}


def migrate(store: StateStore, index: int, args: dict[str, Any]) -> dict[str, Any]:
    """First use of a brand-new store from several processes at once."""
    store.watermarks.get(PAIR, "invoices", "acct-1")  # auto-migrates on first use
    return {"revision": store.current_revision()}


def main() -> None:
    kind, raw = sys.argv[1], sys.argv[2]
    args = json.loads(raw)
    index = int(args["index"])
    # The parent migrated already, except for the "migrate" race itself.
    store = StateStore(args["url"], args.get("keys"), auto_migrate=kind == "migrate")
    _gate(Path(args["gate"]), index)
    result = {"refresh": refresh, "claim": claim, "migrate": migrate}[kind](store, index, args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
