"""BILL webhooks: JSON signed with the subscription's security key over the raw body.

BILL says the payload "is JSON-escaped and is presented as a string" (exact wire form
UNCONFIRMED), so a body that is a JSON string literal wrapping the object is accepted too, with
the signature checked over the bytes as received or, failing that, over the wrapped JSON text.
The key's encoding is UNCONFIRMED as well: integrators use the key text as UTF-8; when the key is
valid base64 its decoded bytes are tried too. Every variant still needs the secret key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import Any

from airflow_provider_mlconnector.webhooks import signatures
from airflow_provider_mlconnector.webhooks.model import Delivery, Event, HandlerContext, Receipt, Rejected, quoted
from airflow_provider_mlconnector.webhooks.vendors._common import load_json, required_header, unreadable

SIGNATURE_HEADER = "x-bill-sha-signature"
SYSTEM = "bill"


def unwrap(body: bytes) -> tuple[Any, bytes | None]:
    """The document, and the inner JSON bytes when the body was a JSON string literal."""
    document = load_json(body)
    if isinstance(document, str):
        inner = document.encode("utf-8")
        return load_json(inner), inner
    return document, None


def receive(delivery: Delivery, context: HandlerContext) -> Receipt:
    signature = required_header(delivery, SIGNATURE_HEADER)
    document, inner = unwrap(delivery.body)
    metadata = document.get("metadata") if isinstance(document, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    subscription_id = str(metadata.get("subscriptionId") or "")
    keys = _security_keys(str(metadata.get("organizationId") or ""), subscription_id, context)
    if not keys:
        raise Rejected(f"no security key known for subscription {quoted(subscription_id)}")
    signed = [delivery.body] if inner is None else [delivery.body, inner]
    variants = [form for key in keys for form in _key_forms(key)]
    if not any(signatures.body_hmac(key, message, signature) for key in variants for message in signed):
        raise Rejected(f"signature does not match subscription {quoted(subscription_id)}")
    return Receipt([_event(document, delivery)])


def _security_keys(organization_id: str, subscription_id: str, context: HandlerContext) -> list[str]:
    """The subscription's key stored by ``BillHook``, plus the connection's manual one if set.

    The delivery names its organization; the connection's ``organization_id`` is tried as well in
    case the delivery omits it. Naming a subscription only selects a key: the signature still
    has to match it.
    """
    keys: list[str] = []
    organizations = dict.fromkeys(o for o in (organization_id, context.extras.get(SYSTEM, "organization_id")) if o)
    if subscription_id:
        for organization in organizations:
            stored = context.credentials().bill_security_key(organization, subscription_id)
            if stored:
                keys.append(stored)
    manual = context.extras.get(SYSTEM, "webhook_security_key")
    if manual:
        keys.append(manual)
    return keys


def _key_forms(key: str) -> list[str | bytes]:
    forms: list[str | bytes] = [key]
    with contextlib.suppress(binascii.Error, ValueError):  # not base64: the text form is the only one
        forms.append(base64.b64decode(key, validate=True))
    return forms


def _event(document: Any, delivery: Delivery) -> Event:
    metadata = document.get("metadata") if isinstance(document, dict) else None
    if not isinstance(metadata, dict) or not metadata.get("eventId") or not metadata.get("eventType"):
        return unreadable(delivery, "no metadata.eventId/eventType")
    return Event(
        tenant=str(metadata.get("organizationId") or "") or None,
        event_id=str(metadata["eventId"]),
        event_type=str(metadata["eventType"]),
        payload=_ids_only(document),
    )


def _ids_only(document: dict[str, Any]) -> dict[str, Any]:
    """Metadata plus each entity's id: the DAG re-reads the record, so amounts and bank details stay out."""
    kept: dict[str, Any] = {"metadata": document["metadata"]}
    for key, value in document.items():
        if key != "metadata" and isinstance(value, dict) and "id" in value:
            kept[key] = {"id": value["id"]}
    return kept
