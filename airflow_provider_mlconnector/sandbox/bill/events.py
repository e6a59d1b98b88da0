"""BILL's webhook API (``/connect-events/v3``): catalog, subscriptions, security keys, deliveries.

Deliveries (dossier B11): one POST per (event, enabled subscription listening to it), body =
minified JSON ``{"metadata": {...}, "<entity>": {...}}`` with a unique ``eventId``, header
``x-bill-sha-signature`` = base64(HMAC-SHA256(key=securityKey as UTF-8, msg=raw body)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mlconnector.sandbox.bill.backend import Record, iso
from airflow_provider_mlconnector.sandbox.bill.errors import (
    INVALID_ENTITY,
    BillError,
    InvalidRequest,
    NotFound,
    ValidationFailed,
)
from airflow_provider_mlconnector.sandbox.bill.wire import render_json

CATALOG: list[tuple[str, str]] = [
    ("vendor.created", "A vendor was created"),
    ("vendor.updated", "A vendor was updated"),
    ("vendor.archived", "A vendor was archived"),
    ("vendor.restored", "A vendor was restored"),
    ("autopay.failed", "An autopay payment failed"),
    ("bill.created", "A bill was created"),
    ("bill.updated", "A bill was updated"),
    ("bill.archived", "A bill was archived"),
    ("bill.restored", "A bill was restored"),
    ("payment.updated", "A payment changed status"),
    ("payment.failed", "A payment failed"),
    ("bank-account.created", "A bank account was created"),
    ("bank-account.updated", "A bank account was updated"),
    ("card-account.created", "A card account was created"),
    ("card-account.updated", "A card account was updated"),
    ("invoice.created", "An invoice was created"),
    ("invoice.updated", "An invoice was updated"),
    ("invoice.archived", "An invoice was archived"),
    ("invoice.restored", "An invoice was restored"),
    ("risk-verification.updated", "A risk verification changed"),
]
EVENT_TYPES = frozenset(t for t, _ in CATALOG)
IDEMPOTENCY_TTL = 24 * 3600
MAX_SUBSCRIPTIONS = 10


def sign(body: bytes, security_key: str, encoding: str = "utf8") -> str:
    """``x-bill-sha-signature`` for ``body`` (the key's encoding is UNCONFIRMED: a switch)."""
    key = base64.b64decode(security_key) if encoding == "base64" else security_key.encode("utf-8")
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


@dataclass
class SentEvent:
    event_id: str
    subscription_id: str
    event_type: str
    created: float
    url: str
    body: bytes
    headers: dict[str, str]
    delivery: Any  # the sandbox's Delivery (status filled in by the sender thread)


class EventHub:
    """Subscriptions per organization and the notifications sent to them."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        send: Callable[[str, bytes, dict[str, str]], Any],
        switches: Callable[[], dict[str, Any]],
    ) -> None:
        self.clock = clock
        self.send = send
        self._switches = switches  # read at each use: the control plane may replace the dict
        self.reset()

    @property
    def switches(self) -> dict[str, Any]:
        return self._switches()

    def reset(self) -> None:
        self.subscriptions: dict[str, dict[str, Record]] = {}  # org id -> id -> subscription
        self.history: dict[str, list[SentEvent]] = {}  # subscription id -> events
        self._idempotent: dict[tuple[str, str, str], tuple[float, int, Any]] = {}

    # ------------------------------------------------------------------ idempotency

    def replay(self, org_id: str, operation: str, key: str | None) -> tuple[int, Any] | None:
        """A cached answer for this ``X-Idempotent-Key`` (UUID4, 24 h), or None to go ahead."""
        if not key:
            raise InvalidRequest("X-Idempotent-Key: header is required")
        try:
            valid = uuid.UUID(key).version == 4
        except ValueError:
            valid = False
        if not valid:
            raise InvalidRequest("X-Idempotent-Key: must be a UUID4")
        cached = self._idempotent.get((org_id, operation, key))
        if cached is not None and self.clock() - cached[0] < IDEMPOTENCY_TTL:
            return cached[1], cached[2]
        return None

    def remember(self, org_id: str, operation: str, key: str, status: int, payload: Any) -> None:
        self._idempotent[(org_id, operation, key)] = (self.clock(), status, payload)

    # ------------------------------------------------------------------ subscriptions

    def catalog(self) -> list[Record]:
        return [{"type": t, "version": "1", "description": d} for t, d in CATALOG]

    def list_subscriptions(self, org_id: str) -> list[Record]:
        return [self.render(s) for s in self.subscriptions.get(org_id, {}).values()]

    def get(self, org_id: str, subscription_id: str) -> Record:
        sub = self.subscriptions.get(org_id, {}).get(subscription_id)
        if sub is None:
            raise NotFound("Subscription", subscription_id)
        return sub

    def create(self, org_id: str, body: Any) -> Record:
        subs = self.subscriptions.setdefault(org_id, {})
        clean = self._validate(body, partial=False)
        if len(subs) >= MAX_SUBSCRIPTIONS:
            raise BillError(INVALID_ENTITY, f"An organization can have at most {MAX_SUBSCRIPTIONS} subscriptions.")
        self._refuse_duplicates(org_id, clean, exclude=None)
        now = self.clock()
        sub: Record = {
            "id": str(uuid.uuid4()),
            "name": clean["name"],
            "organizationId": org_id,
            "status": clean.get("status", {"enabled": True}),
            "events": clean["events"],
            "notificationUrl": clean["notificationUrl"],
            "createdTime": iso(now),
            "updatedTime": iso(now),
            "_securityKey": _new_key(),
        }
        subs[sub["id"]] = sub
        return {**self.render(sub), "securityKey": sub["_securityKey"]}

    def update(self, org_id: str, subscription_id: str, body: Any, *, replace: bool) -> Record:
        sub = self.get(org_id, subscription_id)
        clean = self._validate(body, partial=not replace)
        candidate = {**sub, **clean}
        self._refuse_duplicates(org_id, candidate, exclude=subscription_id)
        sub.update(clean)
        sub["updatedTime"] = iso(self.clock())
        return self.render(sub)

    def delete(self, org_id: str, subscription_id: str) -> None:
        self.get(org_id, subscription_id)
        del self.subscriptions[org_id][subscription_id]

    def rotate_key(self, org_id: str, subscription_id: str) -> Record:
        sub = self.get(org_id, subscription_id)
        sub["_securityKey"] = _new_key()
        sub["updatedTime"] = iso(self.clock())
        return {"id": sub["id"], "securityKey": sub["_securityKey"]}

    def _validate(self, body: Any, *, partial: bool) -> Record:
        if not isinstance(body, Mapping):
            raise ValidationFailed(["body: must be a JSON object"])
        problems: list[str] = []
        clean: Record = {}
        if "name" in body or not partial:
            if not isinstance(body.get("name"), str) or not body["name"].strip():
                problems.append("name: must not be blank")
            else:
                clean["name"] = body["name"]
        if "status" in body:
            status = body["status"]
            if not isinstance(status, Mapping) or not isinstance(status.get("enabled"), bool):
                problems.append("status.enabled: must be true or false")
            else:
                clean["status"] = {"enabled": status["enabled"]}
        if "events" in body or not partial:
            events = body.get("events")
            if not isinstance(events, list) or not events:
                problems.append("events: must contain at least one event")
            else:
                clean_events = []
                for index, event in enumerate(events):
                    kind = event.get("type") if isinstance(event, Mapping) else None
                    version = str(event.get("version")) if isinstance(event, Mapping) else None
                    if kind not in EVENT_TYPES:
                        problems.append(f"events[{index}].type: unknown event type {kind!r}")
                    elif version != "1":
                        problems.append(f"events[{index}].version: {kind} has only version 1")
                    else:
                        clean_events.append({"type": kind, "version": version})
                if len({e["type"] for e in clean_events}) != len(clean_events):
                    problems.append("events: an event type is listed twice")
                clean["events"] = clean_events
        if "notificationUrl" in body or not partial:
            url = body.get("notificationUrl")
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append("notificationUrl: must be an absolute URL")
            elif parts.scheme != "https" and self.switches["require_https_notification_url"]:
                problems.append("notificationUrl: must use HTTPS")
            else:
                clean["notificationUrl"] = url
        if problems:
            raise ValidationFailed(problems)
        return clean

    def _refuse_duplicates(self, org_id: str, candidate: Record, exclude: str | None) -> None:
        wanted = {e["type"] for e in candidate["events"]}
        for other in self.subscriptions.get(org_id, {}).values():
            if other["id"] == exclude or other["notificationUrl"] != candidate["notificationUrl"]:
                continue
            overlap = wanted & {e["type"] for e in other["events"]}
            if overlap:
                raise BillError(
                    INVALID_ENTITY,
                    f"Subscription {other['id']} already sends {', '.join(sorted(overlap))} to this notificationUrl.",
                )

    def render(self, sub: Record) -> Record:
        return {k: v for k, v in sub.items() if not k.startswith("_")}

    # ------------------------------------------------------------------ deliveries

    def publish(self, org_id: str, event_type: str, entity_key: str, entity: Record) -> None:
        for sub in list(self.subscriptions.get(org_id, {}).values()):
            if sub["status"].get("enabled") and any(e["type"] == event_type for e in sub["events"]):
                self._deliver(sub, event_type, entity_key, entity)

    def send_test(self, org_id: str, subscription_id: str) -> Record:
        sub = self.get(org_id, subscription_id)
        event_type = sub["events"][0]["type"]
        entity_key = event_type.split(".")[0].replace("-", "")
        sent = self._deliver(sub, event_type, entity_key, {"id": "test", "test": True})
        return {"eventId": sent.event_id}

    def _deliver(self, sub: Record, event_type: str, entity_key: str, entity: Record) -> SentEvent:
        event_id = str(uuid.uuid4())
        payload = {
            "metadata": {
                "eventId": event_id,
                "subscriptionId": sub["id"],
                "organizationId": sub["organizationId"],
                "eventType": event_type,
                "version": "1",
            },
            entity_key: entity,
        }
        body = render_json(payload)
        if self.switches["webhook_body_as_json_string"]:
            # "payload is JSON-escaped and presented as a string" (UNCONFIRMED wire form).
            body = json.dumps(body.decode()).encode()
        headers = {
            "Content-Type": "application/json",
            "x-bill-sha-signature": sign(body, sub["_securityKey"], self.switches["webhook_signature_key_encoding"]),
        }
        sent = SentEvent(event_id, sub["id"], event_type, self.clock(), sub["notificationUrl"], body, headers, None)
        sent.delivery = self.send(sub["notificationUrl"], body, headers)
        self.history.setdefault(sub["id"], []).append(sent)
        return sent

    def events_of(self, org_id: str, subscription_id: str) -> list[Record]:
        self.get(org_id, subscription_id)
        return [_event_row(e) for e in self.history.get(subscription_id, [])]

    def resend(self, org_id: str, subscription_id: str, event_id: str) -> Record:
        self.get(org_id, subscription_id)
        for event in self.history.get(subscription_id, []):
            if event.event_id == event_id:
                self.send(event.url, event.body, dict(event.headers))
                return _event_row(event)
        raise NotFound("Event", event_id)

    def snapshot(self) -> dict[str, Any]:
        return {
            org_id: [{**self.render(s), "securityKey": s["_securityKey"]} for s in subs.values()]
            for org_id, subs in self.subscriptions.items()
        }


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _event_row(event: SentEvent) -> Record:
    status = getattr(event.delivery, "status", None)
    error = getattr(event.delivery, "error", None)
    state = "PENDING" if status is None and error is None else ("DELIVERED" if status == 200 else "FAILED")
    return {
        "eventId": event.event_id,
        "subscriptionId": event.subscription_id,
        "eventType": event.event_type,
        "version": "1",
        "createdTime": iso(event.created),
        "status": state,
    }
