"""BigCommerce hook."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_mlconnector.hooks.base import MLConnectorHook


class BigCommerceHook(MLConnectorHook):
    """BigCommerce API hook (connection type ``bigcommerce``)."""

    conn_name_attr: ClassVar[str] = "bigcommerce_conn_id"
    default_conn_name: ClassVar[str] = "bigcommerce_default"
    conn_type: ClassVar[str] = "bigcommerce"
    hook_name: ClassVar[str] = "BigCommerce"
    default_host: ClassVar[str] = "https://api.bigcommerce.com"
