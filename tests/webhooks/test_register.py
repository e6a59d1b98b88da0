"""Registration helpers with fake hooks; the token-store rows they leave for the receiver."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_mlconnector.exceptions import ConfigurationError, FatalApiError
from airflow_provider_mlconnector.webhooks import cli, register
from airflow_provider_mlconnector.webhooks.credentials import bamboohr_hook_key, bill_hook_key

URL = "https://hooks.example.com/mlconnector/webhooks/x"


class FakeFreshBooks:
    def __init__(self, existing: list[dict[str, Any]] | None = None, refuse: set[str] | None = None) -> None:
        self.business = SimpleNamespace(account_id="6BApk")
        self.existing = existing or []
        self.refuse = refuse or set()
        self.calls: list[tuple[str, Any]] = []
        self.callbacks = SimpleNamespace(list=lambda: iter(self.existing), create=self._create_callback)

    def _create_callback(self, body):
        event, uri = body["event"], body["uri"]
        if event in self.refuse:
            raise FatalApiError(f"unknown event {event}", system="freshbooks", status=422)
        self.calls.append(("register", event))
        return {"callbackid": 2000 + len(self.calls), "event": event, "uri": uri, "verified": False}

    def resend_callback_verification(self, callback_id):
        self.calls.append(("resend", callback_id))
        return {}

    def verify_callback(self, callback_id, verifier):
        self.calls.append(("verify", (callback_id, verifier)))
        return {"verified": True}


def test_freshbooks_registers_remembers_and_asks_for_a_resend(credentials):
    hook = FakeFreshBooks(
        existing=[{"callbackid": 1999, "event": "bill.create", "uri": URL, "verified": True}],
        refuse={"bill_payment.create"},
    )
    report = register.register_freshbooks(hook, credentials, URL, ["bill.create", "bill.update", "bill_payment.create"])
    assert hook.calls == [("register", "bill.update"), ("resend", "2001")]
    assert credentials.freshbooks_callback("6BApk", "1999")["event"] == "bill.create"
    assert credentials.freshbooks_callback("6BApk", "2001") == {
        "event": "bill.update",
        "uri": URL,
        "verified": False,
    }
    assert credentials.callback_account("2001") == "6BApk"
    assert not report.ok
    assert "bill_payment.create" in report.problems[0]


def test_freshbooks_manual_verify_uses_the_stored_verifier(credentials):
    hook = FakeFreshBooks()
    credentials.remember_callback("6BApk", "2001", "bill.create", URL)
    assert not register.verify_freshbooks(hook, credentials, "2001").ok  # nothing received yet
    assert credentials.accept_verifier("6BApk", "2001", "the-verifier")
    assert register.verify_freshbooks(hook, credentials, "2001").ok
    assert hook.calls == [("verify", ("2001", "the-verifier"))]
    assert credentials.freshbooks_verifiers("6BApk") == ["the-verifier"]


def test_bill_uses_the_consolidated_subscription():
    seen: dict[str, Any] = {}

    class FakeBill:
        def ensure_subscription(self, *, notification_url):
            seen["url"] = notification_url
            return {"id": "sub-1", "events": [{"type": "vendor.created"}, {"type": "bill.created"}]}

    report = register.register_bill(FakeBill(), URL)
    assert seen == {"url": URL}
    assert report.done == [f"subscription sub-1 -> {URL} (vendor.created, bill.created)"]


def test_bigcommerce_hooks_carry_a_stored_secret_header(credentials):
    calls: list[tuple[str, str, dict[str, str]]] = []

    class FakeBigCommerce:
        config = SimpleNamespace(store_hash="store1")

        def ensure_webhook(self, scope, destination, *, headers):
            calls.append((scope, destination, headers))
            return {"id": 7, "scope": scope, "is_active": True}

    register.register_bigcommerce(FakeBigCommerce(), credentials, URL)
    name, value = credentials.bigcommerce_header("store1")
    assert calls == [("store/order/*", URL, {name: value})]
    assert len(value) >= 32
    register.register_bigcommerce(FakeBigCommerce(), credentials, URL)  # again: same secret reused
    assert calls[1][2] == {name: value}


def test_bamboohr_creates_once_and_indexes_the_key(store, credentials):
    created: list[dict[str, Any]] = []

    class FakeBamboo:
        config = SimpleNamespace(company_domain="acme")

        def list_webhooks(self):
            return [{"id": c["id"], "url": URL} for c in created]

        def create_webhook(self, name, url, *, monitor_fields, events):
            hook = {"id": "12", "name": name, "url": url, "monitor": monitor_fields, "events": events}
            created.append(hook)
            store.tokens.put("bamboohr", bamboohr_hook_key("acme", "12"), {"private_key": "pk"})  # as the hook does
            return {"id": "12"}

    register.register_bamboohr(FakeBamboo(), credentials, URL)
    register.register_bamboohr(FakeBamboo(), credentials, URL)
    assert len(created) == 1
    assert created[0]["events"] == ["employee.created", "employee.updated", "employee.deleted"]
    assert credentials.bamboohr_private_keys("acme") == ["pk"]


def test_missing_hook_method_is_a_configuration_error(credentials):
    with pytest.raises(ConfigurationError, match="ensure_subscription"):
        register.register_bill(object(), URL)


def test_key_formats_agree_with_the_hooks():
    from airflow_provider_mlconnector.hooks.bamboohr import BambooHRHook
    from airflow_provider_mlconnector.hooks.bill import BillConfig

    config = BillConfig(base_url="u", username="u", password="p", dev_key="d", organization_id="org1")
    assert config.webhook_key("sub1") == bill_hook_key("org1", "sub1")
    hook = BambooHRHook.__new__(BambooHRHook)
    hook.__dict__["config"] = SimpleNamespace(company_domain="acme")
    assert hook.webhook_key_name("7") == bamboohr_hook_key("acme", "7")


def test_cli_quickbooks_prints_instructions(capsys):
    assert cli.main(["register", "quickbooks", "--url", URL]) == 0
    out = capsys.readouterr().out
    assert URL in out
    assert "webhook_verifier_token" in out
    assert "'quickbooks_default'" in out


def test_cli_register_uses_the_hook_and_reports_problems(monkeypatch, capsys, credentials):
    hook = FakeFreshBooks(refuse={"bill.create"})
    monkeypatch.setattr(cli, "make_hook", lambda system: hook)
    monkeypatch.setattr(cli, "make_credentials", lambda: credentials)
    assert cli.main(["register", "freshbooks", "--url", URL, "--event", "bill.create", "--event", "bill.update"]) == 1
    captured = capsys.readouterr()
    assert "bill.update: callback" in captured.out
    assert "problem: bill.create" in captured.err


def test_cli_defaults_to_serve(monkeypatch):
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli, "serve", lambda host, port, **kw: seen.update(host=host, port=port, **kw) or 0)
    assert cli.main(["--host", "0.0.0.0", "--port", "9001", "--no-dispatcher"]) == 0
    assert seen == {"host": "0.0.0.0", "port": 9001, "dispatcher": False, "log_level": "info"}
