"""QuickBooks Online webhooks: JSON signed with the app's verifier token over the raw body.

Two payload formats arrive during Intuit's migration (dossier 4.11): the legacy
``eventNotifications`` (one realm per notification, several entities each) and CloudEvents (an
array that may mix realms). Every entity change becomes one inbox event. Changes for realms
this deployment does not serve are acknowledged and dropped: a 4xx would make Intuit retry them
and hold back the events we do want.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from airflow_provider_mlconnector.webhooks import signatures
from airflow_provider_mlconnector.webhooks.model import Delivery, Event, HandlerContext, Receipt, Rejected, content_id
from airflow_provider_mlconnector.webhooks.vendors._common import load_json, required_header, unreadable

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "intuit-signature"
SYSTEM = "quickbooks"


def receive(delivery: Delivery, context: HandlerContext) -> Receipt:
    signature = required_header(delivery, SIGNATURE_HEADER)
    verifier_token = context.extras.get(SYSTEM, "webhook_verifier_token")
    if not verifier_token:
        raise Rejected("no webhook_verifier_token in the quickbooks connection extra")
    if not signatures.body_hmac(verifier_token, delivery.body, signature):
        raise Rejected("intuit-signature does not match")
    document = load_json(delivery.body)
    if not recognised(document):
        return Receipt([unreadable(delivery, "neither eventNotifications nor CloudEvents")])
    events = list(parse(document))
    served = {realm for realm in [context.extras.get(SYSTEM, "realm_id")] if realm}
    ours = [event for event in events if event.tenant in served]
    if len(ours) < len(events):
        log.warning(
            "webhooks: ignored %d QuickBooks change(s) for realms other than %s",
            len(events) - len(ours),
            sorted(served) or "(no realm_id in the quickbooks connection)",
        )
    return Receipt(ours, ignored=len(events) - len(ours))


def recognised(document: Any) -> bool:
    """Whether ``document`` is one of the two payload formats."""
    if isinstance(document, dict):
        return isinstance(document.get("eventNotifications"), list) or "specversion" in document
    return isinstance(document, list)


def parse(document: Any) -> Iterator[Event]:
    """Events of either payload format (an unknown shape yields nothing)."""
    if isinstance(document, dict) and isinstance(document.get("eventNotifications"), list):
        yield from _notifications(document["eventNotifications"])
    elif isinstance(document, dict) and "specversion" in document:
        yield from _cloud_events([document])
    elif isinstance(document, list):
        yield from _cloud_events(document)


def _notifications(notifications: list[Any]) -> Iterator[Event]:
    for notification in notifications:
        if not isinstance(notification, dict):
            continue
        realm = str(notification.get("realmId", ""))
        entities = (notification.get("dataChangeEvent") or {}).get("entities") or []
        for entity in entities:
            if isinstance(entity, dict):
                yield _entity_event(realm, entity)


def _entity_event(realm: str, entity: dict[str, Any]) -> Event:
    name, entity_id = str(entity.get("name", "")), str(entity.get("id", ""))
    operation, updated = str(entity.get("operation", "")), str(entity.get("lastUpdated", ""))
    # Legacy notifications carry no id; a retry repeats these five values exactly.
    return Event(
        tenant=realm,
        event_id=content_id("qbo", realm, name, entity_id, operation, updated),
        event_type=f"{name}.{operation}",
        payload={"realmId": realm, **entity},
    )


def _cloud_events(items: list[Any]) -> Iterator[Event]:
    for item in items:
        if isinstance(item, dict) and item.get("id") and item.get("type"):
            yield Event(
                tenant=str(item.get("intuitaccountid", "")),
                event_id=str(item["id"]),
                event_type=str(item["type"]),
                payload=item,
            )
