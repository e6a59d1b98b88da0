"""End-to-end fixtures: the sandbox over real HTTP and a real Airflow running the DAGs.

Each DAG run is ``airflow dags test`` in a subprocess (a real Airflow: DAG parsing, mapped
tasks, XCom, params, retries), with connections pointing at the sandbox and the state store on a
temp SQLite file. ``make demo`` and tests/e2e/test_demo.py cover the real scheduler.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from airflow_provider_mlconnector.sandbox.server import RunningSandbox
from airflow_provider_mlconnector.state import StateStore

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="session")
def sandbox():
    running = RunningSandbox()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-home")
    env = {**os.environ, **_airflow_env(home)}
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    return home


def _airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }


@dataclass
class Harness:
    """One isolated world: a reset sandbox with the demo story, a fresh state store, Airflow."""

    sandbox: RunningSandbox
    home: Path
    state_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fernet = Fernet.generate_key().decode()
        self.state_url = f"sqlite:///{self.state_dir}/state.db"
        self.store = StateStore(self.state_url, fernet_keys=[self.fernet])

    @property
    def control(self):
        return self.sandbox.control

    def env(self) -> dict[str, str]:
        env = {**os.environ, **_airflow_env(self.home)}
        env["MLCONNECTOR_STATE_URL"] = self.state_url
        env["MLCONNECTOR_FERNET_KEY"] = self.fernet
        for name, conn in self.control.connections().items():
            env[f"AIRFLOW_CONN_{name.upper()}_DEFAULT"] = json.dumps(conn)
        env.update(self.extra_env)
        return env

    def start_dag(self, dag_id: str, conf: dict | None = None) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "airflow", "dags", "test", dag_id]
        if conf:
            argv += ["-c", json.dumps(conf)]
        return subprocess.Popen(argv, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def run_dag(self, dag_id: str, conf: dict | None = None, timeout: float = 600) -> str:
        process = self.start_dag(dag_id, conf)
        output, _ = process.communicate(timeout=timeout)
        return output

    @contextlib.contextmanager
    def hook(self, system: str) -> Iterator[Any]:
        """A hook on the sandbox connection of ``system``, as a user's script would hold one.

        It shares the runs' state store, so a rotating refresh token stays one chain.
        """
        from airflow_provider_mlconnector.get_provider_info import get_provider_info

        connection_types = {c["connection-type"]: c["hook-class-name"] for c in get_provider_info()["connection-types"]}
        module, _, name = connection_types[system].rpartition(".")
        hook_class = getattr(importlib.import_module(module), name)
        saved = dict(os.environ)
        os.environ.update({k: v for k, v in self.env().items() if k.startswith(("AIRFLOW_CONN_", "MLCONNECTOR_"))})
        try:
            hook = hook_class(state_store=self.store)
            yield hook
        finally:
            os.environ.clear()
            os.environ.update(saved)


def assert_succeeded(output: str) -> None:
    """``airflow dags test`` output of a run whose every task succeeded (its summary ran)."""
    assert "summary" in output, output[-3000:]
    lowered = output.lower()
    assert "state=failed" not in lowered and "dagrun failed" not in lowered, output[-5000:]


@pytest.fixture
def harness(sandbox, airflow_home, tmp_path):
    sandbox.control.reset()
    sandbox.control.seed_demo()
    return Harness(sandbox, airflow_home, tmp_path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests make several real DAG runs each: give them room on a loaded CI machine."""
    for item in items:
        if "e2e" in str(item.fspath) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(1500))
