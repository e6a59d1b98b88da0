"""Expensify hook."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_mlconnector.hooks.base import MLConnectorHook


class ExpensifyHook(MLConnectorHook):
    """Expensify API hook (connection type ``expensify``)."""

    conn_name_attr: ClassVar[str] = "expensify_conn_id"
    default_conn_name: ClassVar[str] = "expensify_default"
    conn_type: ClassVar[str] = "expensify"
    hook_name: ClassVar[str] = "Expensify"
    default_host: ClassVar[str] = "https://integrations.expensify.com"
