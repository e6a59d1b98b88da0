"""Registering our receiver with each vendor, through the hooks' own webhook methods.

Every helper is safe to run again: it reuses what exists (BILL, BigCommerce, BambooHR) or
registers only what is missing (FreshBooks). Secrets the vendors hand out go to the token store
encrypted (see :mod:`.credentials`); nothing secret is printed.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlconnector.exceptions import ConfigurationError, MLConnectorError
from airflow_provider_mlconnector.webhooks.credentials import WebhookCredentials

log = logging.getLogger(__name__)

FRESHBOOKS_EVENTS: tuple[str, ...] = (
    # bill.* and bill_vendor.* appear only in a third-party spec, bill_payment.* nowhere
    # (dossier A12): a name FreshBooks refuses is reported and the others still register.
    "bill.create",
    "bill.update",
    "bill.delete",
    "bill_vendor.create",
    "bill_vendor.update",
    "bill_vendor.delete",
    "bill_payment.create",
    "bill_payment.update",
    "bill_payment.delete",
)
BIGCOMMERCE_SCOPES: tuple[str, ...] = ("store/order/*",)
BIGCOMMERCE_HEADER = "X-MLConnector-Webhook-Secret"
BAMBOOHR_EVENTS: tuple[str, ...] = ("employee.created", "employee.updated", "employee.deleted")
BAMBOOHR_MONITOR_FIELDS: tuple[str, ...] = (
    "firstName",
    "lastName",
    "preferredName",
    "workEmail",
    "jobTitle",
    "department",
    "status",
)
BAMBOOHR_NAME = "ml-connector"

QUICKBOOKS_INSTRUCTIONS = """\
QuickBooks Online webhooks are configured in Intuit's developer portal, not through the API:

 1. developer.intuit.com > your app > Webhooks (production and development are separate).
 2. Endpoint URL: {url}
 3. Tick the entities to be notified about (Vendor, PurchaseOrder, Bill, BillPayment...).
 4. Copy the "Verifier Token" the portal shows and store it in the extra of the Airflow
    connection {conn_id!r}: {{"webhook_verifier_token": "<token>"}} (Admin > Connections, or
    `airflow connections add/edit`, or your secrets backend). The receiver re-reads it within
    a minute.
 5. The connection's realm_id must be the company whose events you want; changes for other
    realms are acknowledged and dropped.
"""


@dataclass
class RegistrationReport:
    """What a helper did, printable without secrets."""

    system: str
    done: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _method(hook: Any, name: str) -> Any:
    """The hook's method, or a configuration error naming what is missing."""
    method = getattr(hook, name, None)
    if method is None:
        raise ConfigurationError(f"{type(hook).__name__} has no {name}(); this registration needs it")
    return method


# ---------------------------------------------------------------------- FreshBooks


def register_freshbooks(
    hook: Any, credentials: WebhookCredentials, url: str, events: Sequence[str] = FRESHBOOKS_EVENTS
) -> RegistrationReport:
    """Register missing callbacks, remember them, then ask FreshBooks to resend the verifications.

    The resend matters: FreshBooks posts the verifier right after the registration, possibly
    before the callback id is remembered here, and the receiver refuses verifiers of callbacks
    it does not know.
    """
    report = RegistrationReport("freshbooks")
    account_id = str(hook.business.account_id)
    existing = {(c.get("event"), c.get("uri")): c for c in hook.callbacks.list()}
    for event in events:
        callback = existing.get((event, url))
        try:
            if callback is None:
                callback = hook.callbacks.create({"event": event, "uri": url})
            callback_id = str(callback["callbackid"])
            credentials.remember_callback(account_id, callback_id, event, url)
            if callback.get("verified"):
                report.done.append(f"{event}: callback {callback_id} already verified")
                continue
            _method(hook, "resend_callback_verification")(callback_id)
            report.done.append(f"{event}: callback {callback_id} registered, verification requested")
        except MLConnectorError as exc:
            report.problems.append(f"{event}: {exc}")
    return report


def verify_freshbooks(hook: Any, credentials: WebhookCredentials, callback_id: str) -> RegistrationReport:
    """Confirm a callback with the verifier the receiver stored (when the automatic step failed)."""
    report = RegistrationReport("freshbooks")
    account_id = credentials.callback_account(callback_id) or str(hook.business.account_id)
    callback = credentials.freshbooks_callback(account_id, callback_id) or {}
    verifier = callback.get("verifier")
    if not verifier:
        report.problems.append(
            f"no verifier received for callback {callback_id} yet: run `register freshbooks --resend {callback_id}`"
        )
        return report
    _method(hook, "verify_callback")(callback_id, verifier)
    credentials.mark_verified(account_id, callback_id, verifier)
    report.done.append(f"callback {callback_id} verified")
    return report


def resend_freshbooks(hook: Any, callback_id: str) -> RegistrationReport:
    _method(hook, "resend_callback_verification")(callback_id)
    return RegistrationReport("freshbooks", done=[f"verification of callback {callback_id} requested again"])


# ---------------------------------------------------------------------- BILL


def register_bill(hook: Any, url: str) -> RegistrationReport:
    """One consolidated subscription (vendor, bill and payment events) to ``url``.

    ``BillHook.ensure_subscription`` sends ``X-Idempotent-Key`` and keeps the one-time
    ``securityKey`` encrypted in the token store, where the receiver reads it.
    """
    subscription = _method(hook, "ensure_subscription")(notification_url=url)
    events = ", ".join(str(e.get("type")) for e in subscription.get("events") or [])
    return RegistrationReport("bill", done=[f"subscription {subscription.get('id')} -> {url} ({events})"])


# ---------------------------------------------------------------------- BigCommerce


def register_bigcommerce(
    hook: Any, credentials: WebhookCredentials, url: str, scopes: Sequence[str] = BIGCOMMERCE_SCOPES
) -> RegistrationReport:
    """Create or reactivate the order hooks, each sending our secret header.

    The header is the fallback authentication when deliveries are unsigned or the connection
    has no ``client_secret``; it is generated once per store and reused.
    """
    report = RegistrationReport("bigcommerce")
    store_hash = str(hook.config.store_hash)
    current = credentials.bigcommerce_header(store_hash)
    name, value = current or (BIGCOMMERCE_HEADER, secrets.token_urlsafe(32))
    # Saved before any hook carries it, so no delivery can arrive with an unknown secret.
    credentials.save_bigcommerce_header(store_hash, name, value, {})
    for scope in scopes:
        try:
            hook_row = _method(hook, "ensure_webhook")(scope, url, headers={name: value})
        except MLConnectorError as exc:
            report.problems.append(f"{scope}: {exc}")
            continue
        credentials.save_bigcommerce_header(store_hash, name, value, {str(hook_row.get("id")): scope})
        state = "active" if hook_row.get("is_active", True) else "INACTIVE"
        report.done.append(f"{scope}: hook {hook_row.get('id')} -> {url} ({state})")
    return report


# ---------------------------------------------------------------------- BambooHR


def register_bamboohr(
    hook: Any,
    credentials: WebhookCredentials,
    url: str,
    monitor_fields: Sequence[str] = BAMBOOHR_MONITOR_FIELDS,
) -> RegistrationReport:
    """Create the event-based webhook unless one with a known key already posts to ``url``.

    ``BambooHRHook.create_webhook`` keeps the private key (returned only at creation) encrypted;
    the index row written here lets the receiver find it.
    """
    report = RegistrationReport("bamboohr")
    company = str(hook.config.company_domain)
    known = set(credentials.bamboohr_webhook_ids(company))
    for existing in _method(hook, "list_webhooks")():
        if existing.get("url") == url and str(existing.get("id")) in known:
            report.done.append(f"webhook {existing.get('id')} -> {url} already registered")
            return report
    created = _method(hook, "create_webhook")(
        BAMBOOHR_NAME, url, monitor_fields=list(monitor_fields), events=list(BAMBOOHR_EVENTS)
    )
    credentials.index_bamboohr_webhook(company, str(created["id"]))
    report.done.append(f"webhook {created['id']} -> {url} created (monitoring {', '.join(monitor_fields)})")
    return report


# ---------------------------------------------------------------------- QuickBooks


def quickbooks_instructions(url: str, conn_id: str) -> RegistrationReport:
    return RegistrationReport("quickbooks", done=[QUICKBOOKS_INSTRUCTIONS.format(url=url, conn_id=conn_id)])
