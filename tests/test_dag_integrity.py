"""The DAG folder: imports cleanly, fast, and every DAG is documented, owned, tagged and retried."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

DAG_FOLDER = Path(__file__).resolve().parents[1] / "dags"
DAG_FILES = sorted(DAG_FOLDER.glob("*.py"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAG_FOLDER))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dags, "no DAGs found"


def test_one_dag_per_file_named_like_the_file(dagbag):
    assert {Path(f).stem for f in map(str, DAG_FILES)} == set(dagbag.dag_ids)


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_dag_contract(dagbag, dag_file):
    dag = dagbag.dags[dag_file.stem]
    assert dag.doc_md and len(dag.doc_md) > 200
    assert dag.tags and "mlconnector" in dag.tags
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", task.task_id
        assert task.retries >= 1, task.task_id


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_dag_file_imports_fast(dag_file):
    # A fresh interpreter with Airflow already imported (as the DAG processor has it), then time
    # only our file: it must do no I/O at parse time.
    code = (
        "import time, runpy, airflow.sdk;"
        "t=time.perf_counter();"
        f"runpy.run_path({str(dag_file)!r});"
        "print(time.perf_counter()-t)"
    )
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    elapsed = float(out.stdout.strip().splitlines()[-1])
    assert elapsed < 1.0, f"{dag_file.name} took {elapsed:.2f}s to import"
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_parsing_a_dag_file_leaves_the_engine_and_the_state_store_to_its_tasks(dag_file):
    # The DAG processor parses every file every few seconds: declaring a pair's tasks needs the
    # operators and the hooks, not the engine or the state store's tables (imported when a task runs).
    code = (
        "import sys, runpy, airflow.sdk;"
        f"runpy.run_path({str(dag_file)!r});"
        "print(sorted(m for m in sys.modules if m.startswith(('airflow_provider_mlconnector.state', "
        "'airflow_provider_mlconnector.operators.engine'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
