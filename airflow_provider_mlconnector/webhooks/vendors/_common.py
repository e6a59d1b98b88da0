"""Small helpers every vendor handler uses."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from airflow_provider_mlconnector.webhooks.model import Delivery, Event, Rejected

log = logging.getLogger("airflow_provider_mlconnector.webhooks")


def required_header(delivery: Delivery, name: str) -> str:
    """The header's value, or a rejection: every scheme needs its signature header."""
    value = delivery.headers.get(name)
    if not value:
        raise Rejected(f"missing {name} header")
    return value


def load_json(body: bytes) -> Any:
    """The JSON document in ``body``, or ``None`` when it is not JSON."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None


def unreadable(delivery: Delivery, why: str) -> Event:
    """A verified delivery we cannot understand, kept as evidence instead of a vendor retry storm.

    A 4xx here would make the vendor retry it for days (and BILL and BigCommerce disable the
    hook, QuickBooks hold later events); the scheduled poll still syncs the records, and the
    stored row shows what arrived.
    """
    log.error("webhooks: verified %s delivery could not be read (%s); kept as 'unreadable'", delivery.system, why)
    digest = hashlib.sha256(delivery.body).hexdigest()
    text = delivery.body[:4096].decode("utf-8", errors="replace")
    return Event(
        tenant=None, event_id=f"unreadable-{digest}", event_type="unreadable", payload={"body": text, "why": why}
    )
