"""The six emulators the sandbox serves, each from its own folder."""

from __future__ import annotations

import importlib

from airflow_provider_mlconnector.sandbox.core import SystemSandbox

SYSTEM_CLASSES = {
    "freshbooks": "airflow_provider_mlconnector.sandbox.freshbooks:FreshBooksSandbox",
    "bill": "airflow_provider_mlconnector.sandbox.bill:BillSandbox",
    "bigcommerce": "airflow_provider_mlconnector.sandbox.bigcommerce:BigCommerceSandbox",
    "expensify": "airflow_provider_mlconnector.sandbox.expensify:ExpensifySandbox",
    "bamboohr": "airflow_provider_mlconnector.sandbox.bamboohr:BambooHRSandbox",
    "quickbooks": "airflow_provider_mlconnector.sandbox.quickbooks:QuickBooksSandbox",
}


def load(name: str) -> type[SystemSandbox]:
    module, _, cls = SYSTEM_CLASSES[name].partition(":")
    loaded: type[SystemSandbox] = getattr(importlib.import_module(module), cls)
    return loaded


def __getattr__(attr: str) -> list[type[SystemSandbox]]:
    # SYSTEMS is resolved lazily so importing one emulator does not import all six.
    if attr == "SYSTEMS":
        return [load(name) for name in SYSTEM_CLASSES]
    raise AttributeError(attr)
