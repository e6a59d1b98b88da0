"""BambooHR hook."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_mlconnector.hooks.base import MLConnectorHook


class BambooHRHook(MLConnectorHook):
    """BambooHR API hook (connection type ``bamboohr``)."""

    conn_name_attr: ClassVar[str] = "bamboohr_conn_id"
    default_conn_name: ClassVar[str] = "bamboohr_default"
    conn_type: ClassVar[str] = "bamboohr"
    hook_name: ClassVar[str] = "BambooHR"
    default_host: ClassVar[str] = "https://api.bamboohr.com"
