"""FreshBooks callbacks: form posts signed over a JSON rendering of the fields.

Two kinds of post arrive at the same URL:

* the **verification message** after a callback is registered: ``verifier`` + ``object_id``
  (the callback id), name ``callback.verify`` (UNCONFIRMED, so any post carrying ``verifier``
  counts). It cannot be authenticated, so it is rate-limited per callback id and answered from
  reads alone, except for the first verifier of a callback that ``register freshbooks``
  recorded for that account and that is not verified yet. We keep that verifier (the
  callback's signing key) and confirm it to FreshBooks after answering; see
  :func:`complete_verification`.
* **events**: ``name``, ``object_id`` (the changed record), ``account_id``, ``business_id``,
  ``identity_id``, ``user_id``, signed with ``X-FreshBooks-Hmac-SHA256`` using the verifier.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from airflow_provider_mlconnector.exceptions import AuthError, FatalApiError, MLConnectorError
from airflow_provider_mlconnector.webhooks import signatures
from airflow_provider_mlconnector.webhooks.model import (
    Delivery,
    Event,
    HandlerContext,
    Receipt,
    Rejected,
    Throttled,
    Twin,
    content_id,
    quoted,
)
from airflow_provider_mlconnector.webhooks.settings import conn_id_for
from airflow_provider_mlconnector.webhooks.vendors._common import form_fields

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-FreshBooks-Hmac-SHA256"
SYSTEM = "freshbooks"
#: what a callback or account id looks like (callback ids are numbers, account ids short codes);
#: anything else is refused before it is used as a key anywhere
IDENTIFIER = re.compile(r"[A-Za-z0-9_-]{1,64}")


def parse_form(delivery: Delivery) -> list[tuple[str, str]]:
    try:
        return form_fields(delivery)
    except ValueError:
        raise Rejected("body is not a form post in UTF-8 or its declared charset") from None


def receive(delivery: Delivery, context: HandlerContext) -> Receipt:
    fields = parse_form(delivery)
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
        raise Rejected(f"signature matches no verified callback of account {quoted(account_id)}")
    return Receipt([_event(values, fields, delivery.received_at, context.settings.replay_window)])


def _event(values: dict[str, str], fields: list[tuple[str, str]], received_at: datetime, window: float) -> Event:
    # No event id and no time in a FreshBooks event, so a replayed delivery looks exactly like a
    # repeat of the same change. Identical deliveries less than one replay window after the last
    # one kept are one event (the inbox keeps each id once, as with BILL's event ids), so a replay
    # starts at most one run per window. A real second change inside the window is read by the
    # run the first one started, or by the scheduled one.
    message = signatures.freshbooks_message(fields).decode()
    window_number = int(received_at.timestamp() // window)
    return Event(
        tenant=values["account_id"],
        event_id=content_id("fb", message, window_number),
        event_type=values.get("name", ""),
        payload=values,
        twin=Twin(content_id("fb", message, window_number - 1), received_at - timedelta(seconds=window)),
    )


def _handshake(values: dict[str, str], context: HandlerContext) -> Receipt:
    """Keep the first verifier of a callback we registered; everything else is answered from reads."""
    callback_id = values.get("object_id") or values.get("callback_id") or ""
    claimed_account = values.get("account_id", "")
    if not IDENTIFIER.fullmatch(callback_id) or not (claimed_account == "" or IDENTIFIER.fullmatch(claimed_account)):
        ids = f"callback {quoted(callback_id)}, account {quoted(claimed_account)}"
        raise Rejected(f"malformed ids in a verification message ({ids})")
    wait = context.handshakes.take((SYSTEM, callback_id))
    if wait > 0:
        raise Throttled(f"FreshBooks verification messages for callback {callback_id}", wait)
    credentials = context.credentials()
    account_id = credentials.callback_account(callback_id)
    verifier = values["verifier"]
    if account_id is None or claimed_account not in ("", account_id):
        raise Rejected(f"verification message for callback {callback_id} we did not register for this account")
    if not credentials.accept_verifier(account_id, callback_id, verifier):
        raise Rejected(f"verification message for callback {callback_id}, which has a verifier already")
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
    except FatalApiError as exc:
        if isinstance(exc, AuthError):  # our credentials, not the verifier
            log.exception("webhooks: could not confirm the verifier of callback %s; %s", callback_id, instruction)
            return False
        # Refused (anyone can post a verifier): forget it so FreshBooks' real one is accepted.
        context.credentials().forget_verifier(account_id, callback_id, verifier)
        log.warning(
            "webhooks: FreshBooks refused the verifier posted for callback %s (%s); it was dropped; ask for the "
            "real one with: python -m airflow_provider_mlconnector.webhooks register freshbooks --resend %s",
            callback_id,
            exc,
            callback_id,
        )
        return False
    except MLConnectorError:
        log.exception("webhooks: could not confirm the verifier of callback %s; %s", callback_id, instruction)
        return False
    context.credentials().mark_verified(account_id, callback_id, verifier)
    log.info("webhooks: FreshBooks callback %s verified", callback_id)
    return True
