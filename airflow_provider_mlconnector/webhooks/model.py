"""What a vendor handler receives, what it returns, and how it says no."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from airflow_provider_mlconnector.webhooks.credentials import WebhookCredentials
    from airflow_provider_mlconnector.webhooks.settings import WebhookSettings


class Rejected(Exception):
    """The delivery is unsigned, forged, stale or not ours. ``reason`` goes to the log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """One HTTP request, body already size-checked. ``headers`` must be case-insensitive."""

    system: str
    body: bytes
    headers: Mapping[str, str]
    received_at: datetime


@dataclass(frozen=True)
class Event:
    """One vendor event to keep in the inbox (deduplicated on ``(system, event_id)``).

    ``rearm``: the id is derived from content that carries no time (FreshBooks), so an identical
    delivery is a duplicate only while its twin is still pending; once the twin was handed to a
    run, the same content means the record changed again and is kept as a new event.
    """

    tenant: str | None
    event_id: str
    event_type: str
    payload: dict[str, Any]
    rearm: bool = False


@dataclass(frozen=True)
class Receipt:
    """A verified delivery: events to store, and work to do after answering (FreshBooks handshake)."""

    events: list[Event] = field(default_factory=list)
    after_response: Callable[[], object] | None = None
    #: dropped, verified content worth a log line (QuickBooks realms we do not serve...)
    ignored: int = 0


class ExtrasSource(Protocol):
    """Read access to a system's Airflow connection extras."""

    def get(self, system: str, name: str) -> str | None: ...


@dataclass(frozen=True)
class HandlerContext:
    """Everything a vendor handler may consult; no handler calls a vendor API."""

    settings: WebhookSettings
    extras: ExtrasSource
    credentials: Callable[[], WebhookCredentials]


def content_id(prefix: str, *parts: object) -> str:
    """A stable event id from content, for vendors that send none."""
    canonical = json.dumps([str(part) for part in parts], separators=(",", ":"))
    return f"{prefix}-{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def canonical_json(document: Any) -> str:
    """Key order and spacing never change an id derived from a JSON document."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
