"""The Airflow plugin: its shape, and mounted on Airflow's own API app (real create_app)."""

from __future__ import annotations

from fastapi import FastAPI

from tests.webhooks import _airflow_probe


def test_plugin_declares_one_fastapi_app():
    from airflow.plugins_manager import AirflowPlugin

    from airflow_provider_mlconnector.webhooks.plugin import MLConnectorWebhooksPlugin

    assert issubclass(MLConnectorWebhooksPlugin, AirflowPlugin)
    (entry,) = MLConnectorWebhooksPlugin.fastapi_apps
    assert entry["url_prefix"] == "/mlconnector"
    assert entry["name"] == "ml-connector webhooks"
    assert isinstance(entry["app"], FastAPI)
    reserved = ("/api/v2", "/ui", "/execution", "/auth", "/pluginsv2")
    assert not entry["url_prefix"].startswith(reserved)


def test_mounted_on_airflows_api_server():
    """Airflow 3.3's app factory mounts the plugin; routes answer without Airflow auth."""
    result = _airflow_probe.result()
    assert "/mlconnector" in result["mounts"]
    assert result["dispatcher"] == "Dispatcher"
    assert result["expensify"] == 404
    assert result["unsigned"] == 401  # our verification, not Airflow's auth
    assert result["api_without_jwt"] == 401  # Airflow's own API still demands a token
    assert "mlconnector_webhooks" in result["plugins"]
