"""Mounts the ML Connector on-call page on Airflow's API server at ``/mlconnector-ui``.

A sibling of the webhook receiver's plugin: the page authenticates Airflow users, the receiver
verifies vendors' signatures, so each is its own app under its own prefix.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_mlconnector.ui.app import create_app

URL_PREFIX = "/mlconnector-ui"

# Built at import but inert: the store and the connections are opened per request.
app = create_app()


class MLConnectorUIPlugin(AirflowPlugin):
    """The ML Connector page: open dead letters, replays, recent runs and reconciliation."""

    name = "mlconnector_ui"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "ml-connector on-call page"}]
    # An external view with a url_route: a top-level "ML Connector" entry in Airflow's navigation
    # that shows the page inside the Airflow UI (an iframe on the same origin, so the login cookie
    # comes along). No React bundle to build: the page is server-rendered.
    external_views = [
        {
            "name": "ML Connector",
            "href": f"{URL_PREFIX}/",
            "url_route": "mlconnector",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
