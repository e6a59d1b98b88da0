"""Webhook secrets that the vendors hand out at registration, kept encrypted in the token store.

Rows (``store.tokens``; system, credential key -> value)::

    freshbooks_webhook   <account_id>                 {"callbacks": {"<callbackid>": {"event", "uri",
                                                       "verifier", "verified"}}}
    freshbooks_webhook   callback:<callbackid>        {"account_id"}   (an index, no secret)
    bigcommerce_webhook  <store_hash>                 {"header_name", "header_value", "hooks": {"<id>": "<scope>"}}
    bamboohr_webhook     <company_domain>             {"webhook_ids": ["<id>", ...]}   (an index, no secret)
    bill                 webhook:<org_id>:<sub_id>    {"security_key", ...}   written by BillHook
    bamboohr             webhook:<domain>:<hook_id>   {"private_key", ...}    written by BambooHRHook

A FreshBooks, BigCommerce or BambooHR delivery does not say which hook sent it, so the receiver
tries every key of the tenant (a handful); hence one row per tenant. Updates of such a row are
read-modify-write under the row's lock so two registrations cannot lose each other.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, Literal

from airflow_provider_mlconnector.state.tokens import TokenStore

FRESHBOOKS = "freshbooks_webhook"
BIGCOMMERCE = "bigcommerce_webhook"
BAMBOOHR = "bamboohr_webhook"

Row = dict[str, Any]


class WebhookCredentials:
    """Typed access to the rows above."""

    def __init__(self, tokens: TokenStore) -> None:
        self._tokens = tokens

    def _update(self, system: str, key: str, change: Callable[[Row], bool]) -> bool:
        """Apply ``change`` to the row under its lock; saved only when ``change`` returns True."""
        with self._tokens.locked(system, key) as locked:
            row: Row = dict(locked.value or {})
            if not change(row):
                return False
            locked.save(row)
        return True

    # ------------------------------------------------------------------ FreshBooks

    def remember_callback(self, account_id: str, callback_id: str, event: str, uri: str) -> None:
        """A callback we registered; its verification message will be accepted."""

        def change(row: Row) -> bool:
            callbacks = row.setdefault("callbacks", {})
            known = callbacks.get(callback_id, {})
            callbacks[callback_id] = {**known, "event": event, "uri": uri, "verified": known.get("verified", False)}
            return True

        self._update(FRESHBOOKS, account_id, change)
        self._tokens.put(FRESHBOOKS, f"callback:{callback_id}", {"account_id": account_id})

    def callback_account(self, callback_id: str) -> str | None:
        """The account a registered callback belongs to (verification messages may omit it)."""
        row = self._tokens.get(FRESHBOOKS, f"callback:{callback_id}") or {}
        account: str | None = row.get("account_id")
        return account

    def accept_verifier(self, account_id: str, callback_id: str, verifier: str) -> bool:
        """Whether ``verifier`` is now the one verifier of a callback we registered, not verified yet.

        Anyone can post a verification message, so this reads first and writes only the first
        verifier of a callback of this account: no lock is taken and no row is created for a
        stranger's post. A different verifier for a callback that already has one is refused and
        changes nothing (it would let a stranger choose the key our signatures are checked with);
        the same one again (FreshBooks resending) is accepted without a write.
        """
        offer = _verifier_offer(self.freshbooks_callback(account_id, callback_id), verifier)
        if offer != "first":
            return offer == "same"
        outcome: list[Offer] = []

        def change(row: Row) -> bool:
            callback = row.get("callbacks", {}).get(callback_id)
            outcome.append(_verifier_offer(callback, verifier))  # again, under the lock
            if outcome[0] != "first" or callback is None:
                return False
            callback["verifier"] = verifier
            return True

        return self._update(FRESHBOOKS, account_id, change) or outcome == ["same"]

    def forget_verifier(self, account_id: str, callback_id: str, verifier: str) -> bool:
        """FreshBooks refused ``verifier``: drop it so the callback's real verification can arrive."""
        if _verifier_offer(self.freshbooks_callback(account_id, callback_id), verifier) != "same":
            return False  # read first: usually nothing to forget

        def change(row: Row) -> bool:
            callback = row.get("callbacks", {}).get(callback_id)
            if callback is None or _verifier_offer(callback, verifier) != "same":
                return False
            del callback["verifier"]
            return True

        return self._update(FRESHBOOKS, account_id, change)

    def mark_verified(self, account_id: str, callback_id: str, verifier: str) -> bool:
        """FreshBooks accepted ``verifier`` for the callback: deliveries signed with it now count."""

        def change(row: Row) -> bool:
            callback = row.get("callbacks", {}).get(callback_id)
            if callback is None:
                return False
            callback.update(verifier=verifier, verified=True)
            return True

        return self._update(FRESHBOOKS, account_id, change)

    def freshbooks_callback(self, account_id: str, callback_id: str) -> Row | None:
        row = self._tokens.get(FRESHBOOKS, account_id) or {}
        callback: Row | None = row.get("callbacks", {}).get(callback_id)
        return callback

    def freshbooks_verifiers(self, account_id: str) -> list[str]:
        """Verifiers of the account's verified callbacks."""
        row = self._tokens.get(FRESHBOOKS, account_id) or {}
        callbacks = row.get("callbacks", {}).values()
        return [c["verifier"] for c in callbacks if c.get("verified") and c.get("verifier")]

    # ------------------------------------------------------------------ BILL

    def bill_security_key(self, organization_id: str, subscription_id: str) -> str | None:
        """The key ``BillHook.create_subscription`` / ``rotate_security_key`` stored."""
        row = self._tokens.get(BILL_HOOK_SYSTEM, bill_hook_key(organization_id, subscription_id)) or {}
        key: str | None = row.get("security_key")
        return key

    # ------------------------------------------------------------------ BigCommerce

    def save_bigcommerce_header(self, store_hash: str, name: str, value: str, hooks: dict[str, str]) -> None:
        def change(row: Row) -> bool:
            row.update(header_name=name, header_value=value)
            row["hooks"] = {**row.get("hooks", {}), **hooks}
            return True

        self._update(BIGCOMMERCE, store_hash, change)

    def bigcommerce_header(self, store_hash: str) -> tuple[str, str] | None:
        row = self._tokens.get(BIGCOMMERCE, store_hash) or {}
        if row.get("header_name") and row.get("header_value"):
            return str(row["header_name"]), str(row["header_value"])
        return None

    # ------------------------------------------------------------------ BambooHR

    def index_bamboohr_webhook(self, company_domain: str, webhook_id: str) -> None:
        """Remember that the company has this webhook (its key is stored by the hook)."""

        def change(row: Row) -> bool:
            ids = row.setdefault("webhook_ids", [])
            if webhook_id in ids:
                return False
            ids.append(webhook_id)
            return True

        self._update(BAMBOOHR, company_domain, change)

    def bamboohr_webhook_ids(self, company_domain: str) -> list[str]:
        index = self._tokens.get(BAMBOOHR, company_domain) or {}
        return [str(webhook_id) for webhook_id in index.get("webhook_ids", [])]

    def bamboohr_private_keys(self, company_domain: str) -> list[str]:
        """Private keys of the company's indexed webhooks (deleted ones have none)."""
        keys = []
        for webhook_id in self.bamboohr_webhook_ids(company_domain):
            row = self._tokens.get(BAMBOOHR_HOOK_SYSTEM, bamboohr_hook_key(company_domain, webhook_id)) or {}
            if row.get("private_key"):
                keys.append(str(row["private_key"]))
        return keys


Offer = Literal["first", "same", "refused"]


def _verifier_offer(callback: Row | None, verifier: str) -> Offer:
    """``first``, ``same`` (the stored one again) or ``refused`` (unknown, verified, or another verifier)."""
    if callback is None or callback.get("verified"):
        return "refused"
    stored = callback.get("verifier")
    if not stored:
        return "first"
    return "same" if hmac.compare_digest(str(stored).encode(), verifier.encode()) else "refused"


# Rows written by the hooks themselves. Same formats as ``BillConfig.webhook_key`` and
# ``BambooHRHook.webhook_key_name`` (tests/webhooks/test_credentials.py checks they agree).
BILL_HOOK_SYSTEM = "bill"
BAMBOOHR_HOOK_SYSTEM = "bamboohr"


def bill_hook_key(organization_id: str, subscription_id: str) -> str:
    return f"webhook:{organization_id}:{subscription_id}"


def bamboohr_hook_key(company_domain: str, webhook_id: str) -> str:
    return f"webhook:{company_domain}:{webhook_id}"
