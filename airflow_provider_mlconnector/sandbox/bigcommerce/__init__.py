"""BigCommerce emulator (REST Management API v2 + v3) for store ``summit7x``, "Summit Outfitters"."""

from __future__ import annotations

from airflow_provider_mlconnector.sandbox.bigcommerce.api import BigCommerceSandbox, sign_delivery
from airflow_provider_mlconnector.sandbox.bigcommerce.backend import (
    ACCESS_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    STORE_HASH,
    STORE_ID,
    STORE_NAME,
)

__all__ = [
    "ACCESS_TOKEN",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "STORE_HASH",
    "STORE_ID",
    "STORE_NAME",
    "BigCommerceSandbox",
    "sign_delivery",
]
