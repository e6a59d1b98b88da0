"""Expensify Integration Server emulator for the "Brightside Marketing" policy."""

from __future__ import annotations

from airflow_provider_mlconnector.sandbox.expensify.api import JOB_PATH, ExpensifySandbox
from airflow_provider_mlconnector.sandbox.expensify.backend import (
    PARTNER_USER_ID,
    PARTNER_USER_SECRET,
    POLICY_ID,
    POLICY_NAME,
)

__all__ = ["JOB_PATH", "PARTNER_USER_ID", "PARTNER_USER_SECRET", "POLICY_ID", "POLICY_NAME", "ExpensifySandbox"]
