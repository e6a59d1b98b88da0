"""QuickBooks Online hook."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_mlconnector.hooks.base import MLConnectorHook


class QuickBooksHook(MLConnectorHook):
    """QuickBooks Online API hook (connection type ``quickbooks``)."""

    conn_name_attr: ClassVar[str] = "quickbooks_conn_id"
    default_conn_name: ClassVar[str] = "quickbooks_default"
    conn_type: ClassVar[str] = "quickbooks"
    hook_name: ClassVar[str] = "QuickBooks Online"
    default_host: ClassVar[str] = "https://quickbooks.api.intuit.com"
