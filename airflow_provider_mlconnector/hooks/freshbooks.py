"""FreshBooks hook."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_mlconnector.hooks.base import MLConnectorHook


class FreshBooksHook(MLConnectorHook):
    """FreshBooks API hook (connection type ``freshbooks``)."""

    conn_name_attr: ClassVar[str] = "freshbooks_conn_id"
    default_conn_name: ClassVar[str] = "freshbooks_default"
    conn_type: ClassVar[str] = "freshbooks"
    hook_name: ClassVar[str] = "FreshBooks"
    default_host: ClassVar[str] = "https://api.freshbooks.com"
