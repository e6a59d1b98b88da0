"""Shared test setup: an isolated AIRFLOW_HOME before Airflow is imported."""

from __future__ import annotations

import os
import tempfile

# Airflow reads its home and config at import time; give the test session its own.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="mlconnector-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
