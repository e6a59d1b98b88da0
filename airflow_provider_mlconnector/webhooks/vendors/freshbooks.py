"""FreshBooks callbacks: form posts signed over a JSON rendering of the fields.

Two kinds of post arrive at the same URL:

* the **verification message** after a callback is registered: ``verifier`` + ``object_id``
  (the callback id), name ``callback.verify`` (UNCONFIRMED, so any post carrying ``verifier``
  counts, for a callback registered through ``register freshbooks`` and not verified yet). We
  keep the verifier (the callback's signing key) and confirm it to FreshBooks after answering;
  see :func:`complete_verification`.
* **events**: ``name``, ``object_id`` (the changed record), ``account_id``, ``business_id``,
  ``identity_id``, ``user_id``, signed with ``X-FreshBooks-Hmac-SHA256`` using the verifier.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from airflow_provider_mlconnector.exceptions import MLConnectorError
from airflow_provider_mlconnector.webhooks import signatures
from airflow_provider_mlconnector.webhooks.model import Delivery, Event, HandlerContext, Receipt, Rejected, content_id
from airflow_provider_mlconnector.webhooks.settings import conn_id_for

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-FreshBooks-Hmac-SHA256"
SYSTEM = "freshbooks"


def parse_form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise Rejected("body is not a form post") from None


def receive(delivery: Delivery, context: HandlerContext) -> Receipt:
    fields = parse_form(delivery.body)
    values = dict(fields)
    if values.get("verifier"):
        # Events never carry a verifier. Whether the verification message is signed is unknown,
        # so a signature does not matter here: _handshake only accepts callbacks we registered.
        return _handshake(values, context)
    signature = delivery.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise Rejected(f"missing {SIGNATURE_HEADER} header")
    account_id = values.get("account_id")
    if not account_id:
        raise Rejected("event without account_id")
    verifiers = context.credentials().freshbooks_verifiers(account_id)
    if not any(signatures.form_json_hmac(verifier, fields, signature) for verifier in verifiers):
        raise Rejected(f"signature matches no verified callback of account {account_id}")
    return Receipt([_event(values, fields)])


def _event(values: dict[str, str], fields: list[tuple[str, str]]) -> Event:
    # No event id and no time in a FreshBooks event: identical deliveries are one event while it
    # is pending (a run will read the record anyway), a new one once it was handed to a run.
    return Event(
        tenant=values["account_id"],
        event_id=content_id("fb", signatures.freshbooks_message(fields).decode()),
        event_type=values.get("name", ""),
        payload=values,
        rearm=True,
    )


def _handshake(values: dict[str, str], context: HandlerContext) -> Receipt:
    callback_id = values.get("object_id") or values.get("callback_id") or ""
    if not callback_id:
        raise Rejected("verification message without a callback id (object_id)")
    credentials = context.credentials()
    account_id = values.get("account_id") or credentials.callback_account(callback_id) or ""
    verifier = values["verifier"]
    if not account_id or not credentials.accept_verifier(account_id, callback_id, verifier):
        raise Rejected(f"verification message for callback {callback_id} we did not register (or already verified)")
    log.info("webhooks: FreshBooks callback %s of account %s sent its verifier", callback_id, account_id)
    return Receipt(after_response=lambda: complete_verification(context, account_id, callback_id, verifier))


def complete_verification(context: HandlerContext, account_id: str, callback_id: str, verifier: str) -> bool:
    """Confirm the verifier to FreshBooks (``FreshBooksHook.verify_callback``); True when done.

    Runs after the 200 went out, so FreshBooks never waits on its own API. Without the hook
    method (or when the call fails) the verifier stays stored and the log says how to finish.
    """
    instruction = (
        f"finish with: python -m airflow_provider_mlconnector.webhooks register freshbooks --verify {callback_id}"
    )
    try:
        from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook
    except ImportError:
        log.warning("webhooks: FreshBooks hook unavailable; callback %s not verified yet; %s", callback_id, instruction)
        return False
    hook = FreshBooksHook(conn_id_for(SYSTEM))
    verify = getattr(hook, "verify_callback", None)
    if verify is None:
        log.warning(
            "webhooks: FreshBooksHook has no verify_callback(); callback %s not verified; %s", callback_id, instruction
        )
        return False
    try:
        verify(callback_id, verifier)
    except MLConnectorError:
        log.exception("webhooks: FreshBooks rejected the verifier of callback %s; %s", callback_id, instruction)
        return False
    context.credentials().mark_verified(account_id, callback_id, verifier)
    log.info("webhooks: FreshBooks callback %s verified", callback_id)
    return True
