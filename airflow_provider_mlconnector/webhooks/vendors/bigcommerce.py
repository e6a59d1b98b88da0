"""BigCommerce webhooks: Standard Webhooks signatures, or the secret header set at creation.

Signature: ``webhook-signature: v1,<base64 HMAC-SHA256(key=client_secret, id.timestamp.body)>``
with ``webhook-id`` and ``webhook-timestamp`` (header names UNCONFIRMED on BigCommerce; these
are the Standard Webhooks names). When the connection has a ``client_secret`` and the delivery is
signed, the signature decides alone. Otherwise the custom header that the registration helper
put on the hook (kept in the token store) must match. A repeated event carries the same
``hash``, which is the event id (``webhook-id`` when there is no hash).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mlconnector.webhooks import signatures
from airflow_provider_mlconnector.webhooks.model import (
    Delivery,
    Event,
    HandlerContext,
    Receipt,
    Rejected,
    content_id,
    quoted,
)
from airflow_provider_mlconnector.webhooks.vendors._common import load_json, unreadable

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SYSTEM = "bigcommerce"


def receive(delivery: Delivery, context: HandlerContext) -> Receipt:
    client_secret = context.extras.get(SYSTEM, "client_secret")
    if client_secret and delivery.headers.get(SIGNATURE_HEADER):
        _check_signature(delivery, client_secret, context)
    else:
        _check_secret_header(delivery, context)
    return Receipt([_event(delivery, context)])


def _check_signature(delivery: Delivery, client_secret: str, context: HandlerContext) -> None:
    message_id = delivery.headers.get(ID_HEADER, "")
    timestamp = delivery.headers.get(TIMESTAMP_HEADER, "")
    if not message_id or not timestamp.strip().isdigit():
        raise Rejected(f"signed delivery without {ID_HEADER} or a unix {TIMESTAMP_HEADER}")
    signed_at = signatures.parse_timestamp(timestamp)
    if signed_at is None or not signatures.is_fresh(signed_at, delivery.received_at, context.settings.max_clock_skew):
        raise Rejected(f"stale {TIMESTAMP_HEADER} {quoted(timestamp, 20)}")
    if not signatures.standard_webhooks(
        client_secret, message_id, timestamp, delivery.body, delivery.headers[SIGNATURE_HEADER]
    ):
        raise Rejected("webhook-signature does not match the client secret")


def _check_secret_header(delivery: Delivery, context: HandlerContext) -> None:
    store_hash = context.extras.get(SYSTEM, "store_hash")
    configured = context.credentials().bigcommerce_header(store_hash) if store_hash else None
    if configured is None:
        raise Rejected("unsigned delivery and no secret header registered for this store")
    name, value = configured
    if not signatures.shared_secret(value, delivery.headers.get(name)):
        raise Rejected(f"secret header {name} missing or wrong")


def _event(delivery: Delivery, context: HandlerContext) -> Event:
    document = load_json(delivery.body)
    if not isinstance(document, dict) or not document.get("scope"):
        return unreadable(delivery, "no scope")
    return Event(
        tenant=_store_hash(document) or context.extras.get(SYSTEM, "store_hash"),
        event_id=_event_id(document, delivery),
        event_type=str(document["scope"]),
        payload=document,
    )


def _event_id(document: dict[str, Any], delivery: Delivery) -> str:
    if document.get("hash"):
        return f"hash-{document['hash']}"
    if delivery.headers.get(ID_HEADER):
        return f"id-{delivery.headers[ID_HEADER]}"
    return content_id("bc", delivery.body.decode("utf-8"))  # load_json accepted it: valid UTF-8


def _store_hash(document: dict[str, Any]) -> str | None:
    producer = str(document.get("producer") or "")
    return producer.removeprefix("stores/") if producer.startswith("stores/") else None
