"""BILL hook."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_mlconnector.hooks.base import MLConnectorHook


class BillHook(MLConnectorHook):
    """BILL API hook (connection type ``bill``)."""

    conn_name_attr: ClassVar[str] = "bill_conn_id"
    default_conn_name: ClassVar[str] = "bill_default"
    conn_type: ClassVar[str] = "bill"
    hook_name: ClassVar[str] = "BILL"
    default_host: ClassVar[str] = "https://gateway.prod.bill.com"
