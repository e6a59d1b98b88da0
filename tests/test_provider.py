"""Provider registration: the entry point, the six connection types, their forms and hooks."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

SYSTEMS = {
    "freshbooks": ("FreshBooksHook", {"refresh_token", "redirect_uri", "account_id", "business_id"}),
    "bill": ("BillHook", {"dev_key", "organization_id"}),
    "bigcommerce": ("BigCommerceHook", {"store_hash", "client_id", "client_secret"}),
    "expensify": ("ExpensifyHook", {"policy_id", "test_report_prefix"}),
    "bamboohr": ("BambooHRHook", {"company_domain", "auth_type", "refresh_token"}),
    "quickbooks": ("QuickBooksHook", {"realm_id", "refresh_token", "environment"}),
}
SECRETS = {
    ("freshbooks", "refresh_token"),
    ("bill", "dev_key"),
    ("bill", "webhook_security_key"),
    ("bigcommerce", "client_secret"),
    ("bamboohr", "refresh_token"),
    ("bamboohr", "webhook_private_key"),
    ("quickbooks", "refresh_token"),
    ("quickbooks", "webhook_verifier_token"),
}


def provider_info() -> dict:
    (ep,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_mlconnector")
    ]
    return ep.load()()


def test_entry_point_package_name_matches_distribution():
    from importlib.metadata import distribution

    info = provider_info()
    assert info["package-name"] == distribution("airflow-provider-mlconnector").metadata["Name"]


def test_provider_info_validates_against_airflow_schema():
    import json
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(provider_info(), schema)


@pytest.mark.parametrize("conn_type", sorted(SYSTEMS))
def test_connection_type_declares_hook_and_fields(conn_type):
    (entry,) = [c for c in provider_info()["connection-types"] if c["connection-type"] == conn_type]
    cls_name, fields = SYSTEMS[conn_type]
    module, _, cls = entry["hook-class-name"].rpartition(".")
    assert module == f"airflow_provider_mlconnector.hooks.{conn_type}" and cls == cls_name
    hook = getattr(importlib.import_module(module), cls)
    assert hook.conn_type == conn_type
    assert hook.default_conn_name == f"{conn_type}_default"
    assert hook.conn_name_attr == f"{conn_type}_conn_id"
    assert hook.hook_name
    assert fields <= set(entry["conn-fields"])
    for name, field in entry["conn-fields"].items():
        is_secret = field["schema"].get("format") == "password"
        assert is_secret == ((conn_type, name) in SECRETS), name
    behaviour = entry["ui-field-behaviour"]
    assert "schema" in behaviour["hidden-fields"]
    assert behaviour["relabeling"]["host"] == "API host override"


def test_providers_manager_lists_six_forms_and_hooks():
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "airflow-provider-mlconnector" in pm.providers
    widgets = pm.connection_form_widgets
    for conn_type, (cls_name, fields) in SYSTEMS.items():
        hook = pm.hooks[conn_type]
        assert hook is not None and hook.hook_class_name.endswith(cls_name)
        for field in fields:
            assert f"extra__{conn_type}__{field}" in widgets
    assert widgets["extra__freshbooks__refresh_token"].is_sensitive
    assert not widgets["extra__freshbooks__account_id"].is_sensitive


def test_airflow_cli_lists_the_provider():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list"], capture_output=True, text=True, timeout=120, check=True
    )
    assert "airflow-provider-mlconnector" in out.stdout


def test_hook_accepts_named_conn_id_and_host_override(monkeypatch):
    from airflow_provider_mlconnector.hooks.bigcommerce import BigCommerceHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_BC_TEST",
        '{"conn_type": "bigcommerce", "host": "127.0.0.1", "port": 8900, "password": "t",'
        ' "extra": {"store_hash": "abc"}}',
    )
    hook = BigCommerceHook(bigcommerce_conn_id="bc_test")
    assert hook.conn_id == "bc_test"
    assert hook.host_url() == "https://127.0.0.1:8900"
    assert hook.extra("store_hash") == "abc"


def test_webhook_and_ui_plugins_are_registered_and_airflow_loads_them():
    # `airflow.plugins` entry points (provider-declared plugins load only with eager discovery).
    prefixes = {}
    for name in ("mlconnector_webhooks", "mlconnector_ui"):
        (ep,) = [ep for ep in entry_points(group="airflow.plugins") if ep.name == name]
        (app,) = ep.load().fastapi_apps
        prefixes[name] = app["url_prefix"]
    assert prefixes == {"mlconnector_webhooks": "/mlconnector", "mlconnector_ui": "/mlconnector-ui"}
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "plugins", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "airflow_provider_mlconnector.webhooks.plugin" in out.stdout
    assert "airflow_provider_mlconnector.ui.plugin" in out.stdout
