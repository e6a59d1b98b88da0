"""Serving the sandbox: in a background thread (tests) or in the foreground (CLI, compose)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import requests
import uvicorn

from airflow_provider_mlconnector.sandbox.core import DropConnection, Sandbox, SystemSandbox


class _HideInjectedDrops(logging.Filter):
    """Injected connection drops are intended; keep uvicorn from printing them as crashes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


def _config(sandbox: Sandbox, host: str, port: int) -> uvicorn.Config:
    logging.getLogger("uvicorn.error").addFilter(_HideInjectedDrops())
    return uvicorn.Config(
        sandbox.app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_keep_alive=30,
    )


class RunningSandbox:
    """A sandbox served from a daemon thread; ``url`` is its base address."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, systems: Iterable[type[SystemSandbox]] | None = None
    ) -> None:
        self.sandbox = Sandbox(systems)
        self.server = uvicorn.Server(_config(self.sandbox, host, port))
        self.thread = threading.Thread(target=self.server.run, name="sandbox", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.01)
        bound = self.server.servers[0].sockets[0].getsockname()
        self.url = f"http://{host}:{bound[1]}"
        self.control = SandboxControl(self.url)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(host: str, port: int, *, seed_demo: bool = False) -> None:
    sandbox = Sandbox()
    if seed_demo:
        sandbox.seed({"demo": True})
    uvicorn.Server(_config(sandbox, host, port)).run()


class SandboxControl:
    """A small client of the control plane, for tests, the demo and the benchmark."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        response = self.http.request(method, f"{self.base_url}/_sandbox{path}", json=body, params=params, timeout=60)
        response.raise_for_status()
        return response.json()

    def reset(self, system: str | None = None) -> None:
        self._call("POST", "/reset", params={"system": system} if system else None)

    def seed_demo(self, *systems: str) -> None:
        """The demo story's data, in every system or only in ``systems``."""
        self._call("POST", "/seed", {"demo": list(systems) or True})

    def seed(self, fixtures: dict[str, Any]) -> None:
        self._call("POST", "/seed", {"fixtures": fixtures})

    def generate(self, counts: dict[str, dict[str, int]]) -> None:
        self._call("POST", "/seed", {"generate": counts})

    def fault(self, system: str, kind: str, count: int = 1, **where: Any) -> None:
        self._call("POST", "/faults", {"system": system, "kind": kind, "count": count, **where})

    def pending_faults(self) -> list[dict[str, Any]]:
        """The injected faults no call has triggered yet (a test's proof that its route was called)."""
        faults: list[dict[str, Any]] = self._call("GET", "/faults")
        return faults

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def latency(self, system: str, ms: float, per_record_ms: float = 0.0) -> None:
        self._call("POST", "/latency", {"system": system, "ms": ms, "per_record_ms": per_record_ms})

    def advance_clock(self, seconds: float) -> None:
        self._call("POST", "/clock/advance", {"seconds": seconds})

    def requests(self, system: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/requests", params={"system": system} if system else None)
        return result

    def request_counts(self, system: str | None = None) -> dict[str, int]:
        result: dict[str, int] = self._call("GET", "/requests/counts", params={"system": system} if system else None)
        return result

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def state(self, system: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/state/{system}")
        return result

    def switch(self, system: str, name: str, value: Any) -> None:
        self._call("POST", "/switches", {"system": system, "name": name, "value": value})

    def webhooks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/webhooks")
        return result

    def redeliver(self, n: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/webhooks/{n}/redeliver")
        return result

    def connections(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = self._call("GET", "/connections")
        return result
