"""``make demo`` / ``make up``: every integration DAG against the sandbox, on a real Airflow.

``python -m airflow_provider_mlconnector.demo run --home DIR``
    starts the sandbox (seeded with the demo story), prepares an Airflow home (SQLite), stores the
    six connections (pointing at the sandbox) in Airflow's metadata database, so Admin >
    Connections shows each with its form and a working Test button, creates the pools, starts
    ``airflow standalone``
    (api-server, scheduler, dag-processor, triggerer), unpauses and triggers each integration DAG,
    waits for the runs, prints a summary table per DAG and the dead letters, then stops
    everything. Exits non-zero if a run failed.
``python -m airflow_provider_mlconnector.demo up --home DIR``
    the same, but leaves Airflow and the sandbox running and prints the UI address and login.
``python -m airflow_provider_mlconnector.demo down --home DIR``
    stops what ``up`` started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import requests

from airflow_provider_mlconnector.pairs import PAIRS

REPO = Path(__file__).resolve().parents[1]
#: every integration DAG and its entities, from the pair declarations (a new pair joins the demo
#: by being in ``PAIRS``).
INTEGRATION_DAGS = tuple(PAIRS)
ENTITIES = {name: tuple(entity.name for entity in pair.entities) for name, pair in PAIRS.items()}
POOLS = {
    "bill_api": (3, "BILL allows 3 concurrent requests per organization"),
    "quickbooks_api": (10, "QuickBooks allows 10 concurrent requests per realm"),
}
UI_USER = "admin"
# Airflow loads it by dotted path while it initialises (see that module for why it stands alone).
SQLITE_CONNECT_ARGS = "airflow_provider_mlconnector.demo_connect_args.SQLITE"
UI_PASSWORD = "admin"  # noqa: S105 - the local demo's login, not a secret
SANDBOX_CONNECTION_NOTE = (
    "Points at the local sandbox. Test it, then edit host and credentials to your real account and Test again."
)


@dataclass
class DemoEnv:
    home: Path
    sandbox_port: int
    api_port: int

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @cached_property
    def environ_cached(self) -> dict[str, str]:
        return self._build_environ()

    def environ(self) -> dict[str, str]:
        """The environment every Airflow process of the demo runs with."""
        return dict(self.environ_cached)

    def _build_environ(self) -> dict[str, str]:
        env = dict(os.environ)
        # `airflow standalone` starts its components as `airflow ...` from PATH: use this venv's.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": SQLITE_CONNECT_ARGS,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": SQLITE_CONNECT_ARGS,
                # Airflow loads plugins that providers declare (the webhook receiver, mounted at
                # /mlconnector on the API server) only when providers are discovered eagerly.
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:admin",
                # Admin > Connections > Test: "ping your real systems" is a click (local demo only;
                # Airflow keeps it disabled by default because testing runs hook code on the server).
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__FERNET_KEY": self._secret_file("airflow_fernet.key"),
                # Local only: the demo login is the well-known admin / admin.
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "MLCONNECTOR_STATE_URL": f"sqlite:///{self.home / 'mlconnector_state.db'}",
                # The webhook plugin (on the API server) triggers DAG runs through the REST API.
                "MLCONNECTOR_AIRFLOW_API_URL": f"http://127.0.0.1:{self.api_port}",
                "MLCONNECTOR_AIRFLOW_API_USER": UI_USER,
                "MLCONNECTOR_AIRFLOW_API_PASSWORD": UI_PASSWORD,
                "MLCONNECTOR_FERNET_KEY": self._secret_file("mlconnector_fernet.key"),
            }
        )
        # The connections live in the metadata database (see store_connections), never in AIRFLOW_CONN_*
        # variables: those would hide from the UI and silently win over any edit made there.
        for conn_id in self.sandbox_connections():
            env.pop(f"AIRFLOW_CONN_{conn_id.upper()}", None)
        return env

    def sandbox_connections(self) -> dict[str, dict[str, Any]]:
        """``<system>_default`` -> the connection to that system's emulator, as ``connections import`` reads it."""
        from airflow_provider_mlconnector.sandbox.core import Sandbox

        return {
            f"{name}_default": {**conn, "description": SANDBOX_CONNECTION_NOTE}
            for name, conn in Sandbox().connections(self.sandbox_url).items()
        }

    def _secret_file(self, name: str) -> str:
        from cryptography.fernet import Fernet

        path = self.home / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Fernet.generate_key().decode())
            path.chmod(0o600)
        return path.read_text().strip()


def free_port(preferred: int = 0) -> int:
    """``preferred`` when it is free, else (or when 0) any free port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AirflowCommandError(RuntimeError):
    """An ``airflow`` CLI command exited non-zero; the message carries the tail of what it printed."""


def airflow(env: DemoEnv, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env.environ(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and done.returncode:
        # CalledProcessError would drop stderr from the message, and stderr is where the reason is.
        printed = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise AirflowCommandError(f"airflow {' '.join(args)} exited {done.returncode}:\n{printed}")
    return done


def json_rows(stdout: str) -> list[dict[str, Any]]:
    """The JSON table of an ``airflow ... -o json`` command (Airflow prints warnings on stdout too)."""
    for line in stdout.splitlines():
        if line.startswith("["):
            rows: list[dict[str, Any]] = json.loads(line)
            return rows
    return []


def start(env: DemoEnv, log_name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
    log_file = (env.home / log_name).open("ab")
    process = subprocess.Popen(
        list(argv), env=env.environ(), stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    (env.home / f"{log_name}.pid").write_text(str(process.pid))
    return process


def wait_for(url: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{what} did not come up at {url} within {timeout:.0f}s")


def prepare(env: DemoEnv, *, seed: dict[str, Any] | None) -> None:
    env.home.mkdir(parents=True, exist_ok=True)
    # The sandbox starts from its seed every time, so the state store must too: an ID map or a
    # token chain from an earlier demo would point at records and tokens that no longer exist.
    for stale in [*env.home.glob("mlconnector_state.db*"), *env.airflow_home.glob("airflow.db*")]:
        stale.unlink()
    start(
        env,
        "sandbox.log",
        [sys.executable, "-m", "airflow_provider_mlconnector.sandbox", "--port", str(env.sandbox_port)],
    )
    wait_for(f"{env.sandbox_url}/_sandbox/requests/counts", 30, "the sandbox")
    from airflow_provider_mlconnector.sandbox.server import SandboxControl

    control = SandboxControl(env.sandbox_url)
    control.reset()
    if seed is None:
        control.seed_demo()
    else:
        control.seed(seed)
    airflow(env, "db", "migrate")
    store_connections(env)
    for pool, (slots, description) in POOLS.items():
        airflow(env, "pools", "set", pool, str(slots), description)
    # The simple auth manager would generate a random password; the UI login and the webhook
    # dispatcher's REST calls (MLCONNECTOR_AIRFLOW_API_PASSWORD) use this one.
    passwords = env.airflow_home / "simple_auth_manager_passwords.json.generated"
    passwords.write_text(json.dumps({UI_USER: UI_PASSWORD}) + "\n")
    passwords.chmod(0o600)
    start(env, "airflow.log", [sys.executable, "-m", "airflow", "standalone"])
    wait_for(f"http://127.0.0.1:{env.api_port}/api/v2/version", 180, "the Airflow API server")


def store_connections(env: DemoEnv) -> None:
    """Save the sandbox connections in Airflow's metadata database (Admin > Connections shows them)."""
    path = env.home / "sandbox_connections.json"
    path.touch(mode=0o600, exist_ok=True)  # sandbox credentials only, but private like any connection file
    path.chmod(0o600)
    path.write_text(json.dumps(env.sandbox_connections(), indent=2))
    airflow(env, "connections", "import", str(path), "--overwrite")


def wait_until_parsed(env: DemoEnv, dag_ids: Sequence[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = airflow(env, "dags", "list", "-o", "json", check=False)
        if listed.returncode == 0:
            known = {d["dag_id"] for d in json_rows(listed.stdout)}
            if set(dag_ids) <= known:
                return
        time.sleep(2)
    errors = airflow(env, "dags", "list-import-errors", check=False).stdout
    raise SystemExit(f"DAGs not parsed within {timeout:.0f}s: {dag_ids}\n{errors}")


def wait_for_run(env: DemoEnv, dag_id: str, run_id: str | None, timeout: float) -> tuple[str, str]:
    """Wait until run ``run_id`` (or, when None, the DAG's first run) has finished.

    The first run is the earliest by its logical date: a run unpaused just before an interval ends
    is followed by the next interval's run, which finds everything already written.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = json_rows(airflow(env, "dags", "list-runs", dag_id, "-o", "json").stdout)
        wanted = [r for r in runs if run_id in (None, r["run_id"])]
        run = min(wanted, key=_run_order, default=None)
        if run is not None and run["state"] in ("success", "failed"):
            return str(run["run_id"]), str(run["state"])
        time.sleep(3)
    return run_id or "?", "timed out"


def _run_order(run: dict[str, Any]) -> str:
    return str(run.get("logical_date") or run.get("run_after") or run.get("start_date") or run["run_id"])


def run_scheduled(env: DemoEnv, dag_id: str, timeout: float = 1800) -> tuple[str, str]:
    """Unpause the DAG and let the scheduler run it (catchup is off: it schedules the latest interval)."""
    airflow(env, "dags", "unpause", dag_id)
    return wait_for_run(env, dag_id, None, timeout)


def trigger_and_wait(env: DemoEnv, dag_id: str, run_id: str, timeout: float = 1800) -> str:
    """A manual run (e.g. a rerun), as a user would trigger it from the UI."""
    airflow(env, "dags", "trigger", dag_id, "--run-id", run_id)
    return wait_for_run(env, dag_id, run_id, timeout)[1]


def summarize(env: DemoEnv, dag_id: str, run_id: str) -> dict[str, Counter[str]]:
    """Per-entity action counts of one run, read from the state store's audit trail."""
    os.environ.update({k: v for k, v in env.environ().items() if k.startswith("MLCONNECTOR_")})
    from airflow_provider_mlconnector.state import get_state_store

    get_state_store.cache_clear()
    table: dict[str, Counter[str]] = {}
    for row in get_state_store().audit.for_run(dag_id, run_id):
        action = str(row.action.value if hasattr(row.action, "value") else row.action)
        if action == "unchanged" and (row.summary or {}).get("skipped"):
            action = "skipped"
        table.setdefault(row.entity, Counter())[action] += 1
    return table


def print_report(env: DemoEnv, results: dict[str, tuple[str, str]]) -> None:
    from airflow_provider_mlconnector.state import get_state_store

    columns = ("created", "updated", "matched_existing", "unchanged", "skipped", "quarantined", "failed")
    for dag_id, (run_id, state) in results.items():
        print(f"\n== {dag_id}  run {run_id}: {state}")
        print(f"  {'entity':<10}" + "".join(f"{c:>17}" for c in ("read", *columns)))
        table = summarize(env, dag_id, run_id)
        for entity in ENTITIES.get(dag_id, tuple(table)):
            counts = table.get(entity, Counter())
            read = sum(v for k, v in counts.items() if k in columns and k not in ("failed",))
            print(f"  {entity:<10}{read:>17}" + "".join(f"{counts.get(c, 0):>17}" for c in columns))
    letters = get_state_store().dead_letters.list(status="open")
    print(f"\n== dead letters ({len(letters)} open)")
    for letter in letters:
        print(f"  #{letter.id} {letter.pair}/{letter.entity} {letter.source_id}: {letter.reason}")


def stop(env: DemoEnv) -> None:
    for name in ("airflow.log.pid", "sandbox.log.pid"):
        pid_file = env.home / name
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            pid_file.unlink()


def run_demo(env: DemoEnv, *, keep_running: bool, seed: dict[str, Any] | None = None) -> int:
    stop(env)
    prepare(env, seed=seed)
    try:
        wait_until_parsed(env, INTEGRATION_DAGS)
        results = {dag: run_scheduled(env, dag) for dag in INTEGRATION_DAGS}
        print_report(env, results)
        if keep_running:
            print(f"\nAirflow UI: http://127.0.0.1:{env.api_port}  (login {UI_USER} / {UI_PASSWORD})")
            print("Admin > Connections: one sandbox connection per system; Test it, edit it to your real account,")
            print("                     Test again (see README, 'Connecting your real systems').")
            print(f"Sandbox:    {env.sandbox_url}/_sandbox/requests/counts")
        failed = [dag for dag, (_, state) in results.items() if state != "success"]
        if failed:
            print(f"\nFAILED: {', '.join(failed)} (logs under {env.airflow_home / 'logs'})")
            return 1
        return 0
    finally:
        if not keep_running:
            stop(env)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_mlconnector.demo")
    parser.add_argument("command", choices=("run", "up", "down"))
    parser.add_argument("--home", type=Path, default=REPO / ".demo")
    parser.add_argument("--sandbox-port", type=int, default=8900)
    parser.add_argument("--api-port", type=int, default=8080)
    args = parser.parse_args(argv)
    env = DemoEnv(args.home.resolve(), free_port(args.sandbox_port), free_port(args.api_port))
    if args.command == "down":
        stop(env)
        return 0
    return run_demo(env, keep_running=args.command == "up")


if __name__ == "__main__":
    raise SystemExit(main())
