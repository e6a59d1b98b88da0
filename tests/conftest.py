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

import json  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import pytest  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from airflow_provider_mlconnector.sandbox.server import RunningSandbox  # noqa: E402
from airflow_provider_mlconnector.state import StateStore  # noqa: E402

# ------------------------------------------------------------------ state store


@pytest.fixture
def fernet_key():
    return Fernet.generate_key().decode()


@pytest.fixture
def state_url(tmp_path):
    return f"sqlite:///{tmp_path}/state.db"


@pytest.fixture
def state_store(state_url, fernet_key):
    """A StateStore on a fresh SQLite file under tmp_path, encrypted with a fresh Fernet key."""
    store = StateStore(state_url, fernet_keys=[fernet_key])
    yield store
    store.close()


# ------------------------------------------------------------------ Airflow connections


@pytest.fixture
def use_connection(monkeypatch):
    """Set AIRFLOW_CONN_<ID> from a connection dict; keyword overrides update it (``extra`` is merged)."""

    def use(conn_id: str, connection: dict, **overrides) -> dict:
        extra = overrides.pop("extra", None)
        connection.update(overrides)
        if extra is not None:
            connection["extra"] = {**connection["extra"], **extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        return connection

    return use


# ------------------------------------------------------------------ sandboxes


@pytest.fixture(scope="module")
def sandbox(request):
    """A RunningSandbox of the requesting module's ``SANDBOX_SYSTEMS``, shared by its tests."""
    running = RunningSandbox(systems=list(request.module.SANDBOX_SYSTEMS))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def running(sandbox):
    """The same module-scoped sandbox, under the name some modules use."""
    return sandbox


# The demo story's "now": its records are dated October and November 2026. Tests that check story
# records against a vendor rule relative to today (Expensify's one-year export anchor, FreshBooks'
# "overdue") set the sandbox clock here, so they judge the story on its own day, whatever today is.
DEMO_STORY_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def reset_demo(sandbox):
    """Reset the sandbox to its demo data; optionally rewind its clock first and restore switches after.

    ``at_story_time`` sets the sandbox clock to ``DEMO_STORY_NOW`` before seeding (it still runs on from there).
    """
    restore: list[str] = []

    def reset(*, rewind_clock: bool = False, restore_switches: bool = False, at_story_time: bool = False) -> None:
        if rewind_clock:
            sandbox.sandbox.ctx.clock.offset = 0.0  # reset() keeps the clock; tests fast-forward it
        sandbox.control.reset()
        if at_story_time:
            sandbox.sandbox.ctx.clock.offset = DEMO_STORY_NOW.timestamp() - time.time()
        sandbox.control.seed_demo()
        if restore_switches:
            restore.extend(sandbox.sandbox.systems)

    yield reset
    for name in restore:
        system = sandbox.sandbox.systems[name]
        system.switches.clear()
        system.switches.update(type(system).default_switches)


# ------------------------------------------------------------------ time


class FakeTime:
    """A monotonic clock moved only by ``sleep``; optionally fast-forwards the sandbox too."""

    def __init__(self, control=None, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []
        self.control = control

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.control is not None and seconds > 0:
            self.control.advance_clock(seconds)


@pytest.fixture
def fake_time():
    """The FakeTime class (call it: ``fake_time(control)``)."""
    return FakeTime


class Sleeps(list):
    """A ``sleep`` that records the requested waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()
