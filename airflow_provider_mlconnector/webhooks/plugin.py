"""Mounts the webhook receiver on Airflow's API server at ``/mlconnector``.

Delivery URLs then read ``https://<airflow>/mlconnector/webhooks/<system>``. Airflow does not
authenticate plugin routes; every route here verifies the vendor's signature itself.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_mlconnector.webhooks.app import create_app

URL_PREFIX = "/mlconnector"
# Built at import but inert: the store, the connections and the dispatcher start with the app.
app = create_app()


class MLConnectorWebhooksPlugin(AirflowPlugin):
    """ml-connector webhook receiver (FreshBooks, BILL, BigCommerce, BambooHR, QuickBooks)."""

    name = "mlconnector_webhooks"
    fastapi_apps = [
        {"app": app, "url_prefix": URL_PREFIX, "name": "ml-connector webhooks"},
    ]
