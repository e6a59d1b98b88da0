"""Webhook ingestion: a signed-delivery receiver, an inbox, and a dispatcher that triggers DAGs.

See ``README.md`` in this folder. Entry points: :func:`~.app.create_app`, the Airflow plugin
:class:`~.plugin.MLConnectorWebhooksPlugin`, and ``python -m airflow_provider_mlconnector.webhooks``.
"""

from __future__ import annotations
