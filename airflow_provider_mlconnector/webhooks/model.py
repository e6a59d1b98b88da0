"""What a vendor handler receives, what it returns, and how it says no."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from airflow_provider_mlconnector.core.throttle import TokenBuckets
    from airflow_provider_mlconnector.webhooks.credentials import WebhookCredentials
    from airflow_provider_mlconnector.webhooks.settings import WebhookSettings


def quoted(text: object, limit: int = 64) -> str:
    """Caller-controlled text made safe for a log line: ``repr`` (so newlines, escape sequences
    and other unprintables cannot forge or hide lines), cut to ``limit`` characters."""
    value = str(text)
    return repr(value[:limit]) + (f"...(+{len(value) - limit} chars)" if len(value) > limit else "")


class Rejected(Exception):
    """The delivery is unsigned, forged, stale or not ours. ``reason`` goes to the log only.

    Any part of ``reason`` taken from the request goes through :func:`quoted`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Throttled(Exception):
    """Too many requests of one kind (FreshBooks handshakes): 429, nothing read or written."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


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

    ``twin``: for ids made of content and a time window (FreshBooks), the same content's id in
    the previous window; the event is a duplicate of it too if that one arrived recently.
    """

    tenant: str | None
    event_id: str
    event_type: str
    payload: dict[str, Any]
    twin: Twin | None = None


@dataclass(frozen=True)
class Twin:
    """An earlier event with the same content: a delivery is its duplicate if it arrived after ``after``."""

    event_id: str
    after: datetime


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
    """Everything a vendor handler may consult; no handler calls a vendor API.

    ``handshakes``: the rate limit of unauthenticated handshakes, shared by the process's requests.
    """

    settings: WebhookSettings
    extras: ExtrasSource
    credentials: Callable[[], WebhookCredentials]
    handshakes: TokenBuckets


def content_id(prefix: str, *parts: object) -> str:
    """A stable event id from content, for vendors that send none."""
    canonical = json.dumps([str(part) for part in parts], separators=(",", ":"))
    return f"{prefix}-{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def canonical_json(document: Any) -> str:
    """Key order and spacing never change an id derived from a JSON document."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
