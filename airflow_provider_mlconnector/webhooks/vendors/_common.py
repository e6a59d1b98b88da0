"""Small helpers every vendor handler uses."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from airflow_provider_mlconnector.core.http import declared_charset, decode_text
from airflow_provider_mlconnector.webhooks.model import Delivery, Event, Rejected

log = logging.getLogger("airflow_provider_mlconnector.webhooks")


def required_header(delivery: Delivery, name: str) -> str:
    """The header's value, or a rejection: every scheme needs its signature header."""
    value = delivery.headers.get(name)
    if not value:
        raise Rejected(f"missing {name} header")
    return value


def load_json(body: bytes) -> Any:
    """The JSON document in ``body``, or ``None`` when it is not UTF-8 JSON (RFC 8259: the only encoding)."""
    try:
        return json.loads(decode_text(body, None))
    except ValueError:  # UnicodeError included
        return None


def form_fields(delivery: Delivery) -> list[tuple[str, str]]:
    """A form post's fields, escapes decoded in the declared charset, else UTF-8.

    :raises ValueError: not a form, or bytes (raw or percent-escaped) that are not valid in that charset;
        ``parse_qsl`` on its own would turn them into replacement characters.
    """
    content_type = delivery.headers.get("content-type")
    text = decode_text(delivery.body, content_type)
    charset = declared_charset(content_type) or "utf-8"
    return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), encoding=charset, errors="strict")


def unreadable(delivery: Delivery, why: str) -> Event:
    """A verified delivery we cannot understand, kept as evidence instead of a vendor retry storm.

    A 4xx here would make the vendor retry it for days (and BILL and BigCommerce disable the
    hook, QuickBooks hold later events); the scheduled poll still syncs the records, and the
    stored row shows what arrived.
    """
    log.error("webhooks: verified %s delivery could not be read (%s); kept as 'unreadable'", delivery.system, why)
    digest = hashlib.sha256(delivery.body).hexdigest()
    return Event(
        tenant=None,
        event_id=f"unreadable-{digest}",
        event_type="unreadable",
        payload={**_evidence(delivery.body), "why": why},
    )


def _evidence(body: bytes, limit: int = 4096) -> dict[str, str]:
    """The body as it arrived: text when it is UTF-8, else base64 (never patched, so it can be examined)."""
    try:
        return {"body": body.decode("utf-8")[:limit]}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body[:limit]).decode("ascii")}
