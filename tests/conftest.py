"""Shared test setup: an isolated AIRFLOW_HOME before Airflow is imported."""

from __future__ import annotations

import os
import tempfile

# Airflow reads its home and config at import time; give the test session its own.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="mlconnector-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

# Airflow's first mask_secret() call reconfigures logging and drops pytest's caplog handler; make
# that happen once, before any test, so log assertions really see the log.
from airflow.sdk.log import mask_secret

mask_secret("mlconnector-test-warmup-value")
