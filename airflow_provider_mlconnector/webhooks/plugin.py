"""Mounts the webhook receiver on Airflow's API server at ``/mlconnector``.

Delivery URLs then read ``https://<airflow>/mlconnector/webhooks/<system>``. Airflow does not
authenticate plugin routes; every route here verifies the vendor's signature itself.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_mlconnector.ui.app import create_app as create_ui_app
from airflow_provider_mlconnector.webhooks.app import create_app

URL_PREFIX = "/mlconnector"
#: the ML Connector page (a sibling app: it authenticates Airflow users, the receiver vendors).
UI_PREFIX = "/mlconnector-ui"

# Built at import but inert: the store, the connections and the dispatcher start with the app.
app = create_app()
ui_app = create_ui_app()


class MLConnectorWebhooksPlugin(AirflowPlugin):
    """ml-connector webhook receiver (FreshBooks, BILL, BigCommerce, BambooHR, QuickBooks)."""

    name = "mlconnector_webhooks"
    fastapi_apps = [
        {"app": app, "url_prefix": URL_PREFIX, "name": "ml-connector webhooks"},
        {"app": ui_app, "url_prefix": UI_PREFIX, "name": "ml-connector on-call page"},
    ]
    # An external view with a url_route: a top-level "ML Connector" entry in Airflow's navigation
    # that shows the page inside the Airflow UI (an iframe on the same origin, so the login cookie
    # comes along). No React bundle to build: the page is server-rendered.
    external_views = [
        {
            "name": "ML Connector",
            "href": f"{UI_PREFIX}/",
            "url_route": "mlconnector",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
