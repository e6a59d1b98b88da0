"""Airflow's real API app with our plugin, in a subprocess started as soon as tests are collected.

Importing and building Airflow's app takes 10-20 s; running it beside the other tests keeps the
suite fast (the test lives in ``test_server_plugin.py``, collected late, so the probe has a head
start). ``result()`` waits for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

TEST_NAME = "test_mounted_on_airflows_api_server"

PROBE = textwrap.dedent(
    """
    import json
    from airflow import plugins_manager
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient
    from starlette.routing import Mount

    app = create_app(apps="core")
    out = {"mounts": [r.path for r in app.routes if isinstance(r, Mount)]}
    with TestClient(app) as client:  # runs Airflow's lifespan, which enters ours
        from airflow_provider_mlconnector.webhooks import plugin
        out["dispatcher"] = type(getattr(plugin.app.state, "dispatcher", None)).__name__
        out["expensify"] = client.post("/mlconnector/webhooks/expensify", content=b"{}").status_code
        out["unsigned"] = client.post("/mlconnector/webhooks/quickbooks", content=b"{}").status_code
        out["api_without_jwt"] = client.get("/api/v2/dags").status_code
    out["plugins"] = [p["name"] for p in plugins_manager.get_plugin_info()]
    print("RESULT " + json.dumps(out))
    """
)

_process: subprocess.Popen[str] | None = None


def start() -> None:
    global _process
    if _process is not None:
        return
    root = Path(tempfile.mkdtemp(prefix="mlc-plugin-probe-"))
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "mlc_webhooks.py").write_text(
        "from airflow_provider_mlconnector.webhooks.plugin import MLConnectorWebhooksPlugin  # noqa: F401\n"
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(root / "home"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-secret",
        "MLCONNECTOR_STATE_URL": f"sqlite:///{root / 'state.db'}",
        "MLCONNECTOR_AIRFLOW_API_URL": "http://127.0.0.1:9",  # unreachable: the dispatcher only logs
        "MLCONNECTOR_WEBHOOK_DISPATCH_TICK": "60",
    }
    _process = subprocess.Popen(
        [sys.executable, "-c", PROBE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def result(timeout: float = 180) -> dict[str, Any]:
    start()
    assert _process is not None
    stdout, stderr = _process.communicate(timeout=timeout)
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stderr[-3000:]
    return dict(json.loads(lines[-1].removeprefix("RESULT ")))
