"""The sandbox machinery itself, exercised with a two-route toy system over real HTTP."""

from __future__ import annotations

import pytest
import requests
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_provider_mlconnector.sandbox.core import SystemSandbox
from airflow_provider_mlconnector.sandbox.server import RunningSandbox


class ToySandbox(SystemSandbox):
    name = "toy"

    def reset(self) -> None:
        self.items: list[dict] = []
        self.token_valid = True

    def routes(self):
        async def create(request: Request) -> Response:
            if not self.token_valid:
                return JSONResponse({"error": "expired"}, status_code=401)
            body = await request.json()
            self.items.append(body)
            return JSONResponse({"id": len(self.items)}, status_code=201)

        async def listing(request: Request) -> Response:
            return JSONResponse({"items": self.items})

        return [Route("/items", create, methods=["POST"]), Route("/items", listing, methods=["GET"])]

    def seed(self, fixture):
        self.items.extend(fixture.get("items", []))

    def snapshot(self):
        return {"items": self.items}

    def expire_credentials(self) -> None:
        self.token_valid = False

    def connection(self, base_url):
        return {"conn_type": "toy", "host": base_url}


@pytest.fixture(scope="module")
def toy():
    running = RunningSandbox(systems=[ToySandbox])
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _reset(toy):
    toy.control.reset()


def test_commit_then_drop_commits_and_breaks_the_read(toy):
    toy.control.fault("toy", "drop_after_commit", method="POST", path="^/items$")
    with pytest.raises(requests.exceptions.RequestException):
        requests.post(f"{toy.url}/toy/items", json={"n": 1}, timeout=5)
    assert toy.control.state("toy")["items"] == [{"n": 1}]
    # the fault is spent: the next call answers normally
    assert requests.post(f"{toy.url}/toy/items", json={"n": 2}, timeout=5).status_code == 201


def test_status_faults_are_served_then_spent(toy):
    toy.control.fault("toy", "429", count=2)
    statuses = [requests.get(f"{toy.url}/toy/items", timeout=5).status_code for _ in range(3)]
    assert statuses == [429, 429, 200]
    toy.control.fault("toy", "500")
    assert requests.get(f"{toy.url}/toy/items", timeout=5).status_code == 500


def test_timeout_fault_holds_past_the_client_timeout(toy):
    toy.control.fault("toy", "timeout", hold_seconds=2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{toy.url}/toy/items", timeout=0.5)


def test_expired_auth_fault_expires_credentials(toy):
    toy.control.fault("toy", "expired_auth")
    assert requests.post(f"{toy.url}/toy/items", json={}, timeout=5).status_code == 401


def test_request_log_counts_per_route_and_reset(toy):
    requests.get(f"{toy.url}/toy/items", timeout=5)
    requests.get(f"{toy.url}/toy/items", timeout=5)
    requests.post(f"{toy.url}/toy/items", json={"a": 1}, timeout=5)
    assert toy.control.request_counts("toy") == {"toy GET /items": 2, "toy POST /items": 1}
    toy.control.reset()
    assert toy.control.state("toy")["items"] == []
    assert toy.control.request_counts() == {}


def test_latency_is_added_to_every_call(toy):
    import time

    toy.control.latency("toy", 200)
    started = time.monotonic()
    requests.get(f"{toy.url}/toy/items", timeout=5)
    assert time.monotonic() - started >= 0.2


def test_seed_and_unknown_fault_kind(toy):
    toy.control.seed({"toy": {"items": [{"x": 1}]}})
    assert toy.control.state("toy")["items"] == [{"x": 1}]
    with pytest.raises(requests.HTTPError):
        toy.control.fault("toy", "meteor")
