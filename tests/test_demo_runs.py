"""The demo's run bookkeeping, on Airflow's own ``dags list-runs -o json`` output (an edge case
of the hour boundary that a live scheduler produces only now and then)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_mlconnector import demo


def test_the_first_run_is_the_earliest_interval_not_the_one_listed_first(monkeypatch, tmp_path: Path) -> None:
    # Unpaused at 16:59: the 15:00-16:00 run does the work; at 17:00 the scheduler adds the next
    # interval's run, which Airflow lists first and which finds everything already written.
    runs = [
        {
            "run_id": "scheduled__2026-12-02T16:00:00+00:00",
            "state": "success",
            "logical_date": "2026-12-02T16:00:00+00:00",
        },
        {
            "run_id": "scheduled__2026-12-02T15:00:00+00:00",
            "state": "success",
            "logical_date": "2026-12-02T15:00:00+00:00",
        },
    ]

    def listed(env: demo.DemoEnv, *args: str) -> subprocess.CompletedProcess[str]:
        assert args[:2] == ("dags", "list-runs")
        return subprocess.CompletedProcess(args, 0, stdout="a warning line\n" + json.dumps(runs), stderr="")

    monkeypatch.setattr(demo, "airflow", listed)
    env = demo.DemoEnv(tmp_path, 1, 2)
    assert demo.wait_for_run(env, "freshbooks_to_bill", None, timeout=5) == (
        "scheduled__2026-12-02T15:00:00+00:00",
        "success",
    )
    assert demo.wait_for_run(env, "freshbooks_to_bill", "scheduled__2026-12-02T16:00:00+00:00", timeout=5)[0] == (
        "scheduled__2026-12-02T16:00:00+00:00"
    )


@pytest.mark.parametrize("state", ["queued", "running"])
def test_an_unfinished_first_run_is_waited_for(monkeypatch, tmp_path: Path, state: str) -> None:
    runs = [
        {"run_id": "scheduled__b", "state": "success", "logical_date": "2026-12-02T16:00:00+00:00"},
        {"run_id": "scheduled__a", "state": state, "logical_date": "2026-12-02T15:00:00+00:00"},
    ]
    monkeypatch.setattr(
        demo, "airflow", lambda env, *a: subprocess.CompletedProcess(a, 0, stdout=json.dumps(runs), stderr="")
    )
    monkeypatch.setattr(demo.time, "sleep", lambda seconds: None)
    assert demo.wait_for_run(demo.DemoEnv(tmp_path, 1, 2), "d", None, timeout=0.2) == ("?", "timed out")


def test_a_process_that_imports_a_hook_first_starts_with_the_demo_environment(tmp_path: Path) -> None:
    # Airflow imports the demo's SQLite connect args while it initialises: a process that imports our
    # package first (the webhook CLI imports a hook, which imports airflow.sdk) must not close a cycle.
    env = demo.DemoEnv(tmp_path, 1, 2).environ()
    script = "import airflow_provider_mlconnector.hooks.bill; from airflow import settings; print(settings.engine.url)"
    imported = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert "sqlite" in imported.stdout
