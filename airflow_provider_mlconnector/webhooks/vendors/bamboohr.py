"""BambooHR webhooks: hex HMAC-SHA256 over the raw body then ``X-BambooHR-Timestamp``.

The key is the webhook's ``privateKey`` (returned once, when the webhook is created through the
API; shown in the UI for global webhooks). A delivery does not name its webhook, so every key
known for the company is tried. BambooHR sends no event id: the id is a hash of the payload,
which holds the event's own timestamp, so a resend is a duplicate and a new change is not.
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
    canonical_json,
    content_id,
    quoted,
)
from airflow_provider_mlconnector.webhooks.vendors._common import form_fields, load_json, required_header, unreadable

SIGNATURE_HEADER = "X-BambooHR-Signature"
TIMESTAMP_HEADER = "X-BambooHR-Timestamp"
SYSTEM = "bamboohr"


def receive(delivery: Delivery, context: HandlerContext) -> Receipt:
    signature = required_header(delivery, SIGNATURE_HEADER)
    timestamp = required_header(delivery, TIMESTAMP_HEADER)
    signed_at = signatures.parse_timestamp(timestamp)
    if signed_at is None:
        raise Rejected(f"unreadable {TIMESTAMP_HEADER} {quoted(timestamp, 40)}")
    if not signatures.is_fresh(signed_at, delivery.received_at, context.settings.max_clock_skew):
        raise Rejected(f"stale {TIMESTAMP_HEADER} {quoted(timestamp, 40)}")
    company = context.extras.get(SYSTEM, "company_domain") or ""
    keys = _private_keys(company, context)
    if not keys:
        raise Rejected(f"no webhook private key known for company {company or '(no company_domain)'}")
    if not any(signatures.body_timestamp_hmac(key, delivery.body, timestamp, signature) for key in keys):
        raise Rejected("X-BambooHR-Signature does not match")
    return Receipt([_event(delivery, company)])


def _private_keys(company: str, context: HandlerContext) -> list[str]:
    """Keys of webhooks we created (token store) plus a global webhook's key from the connection."""
    keys = context.credentials().bamboohr_private_keys(company) if company else []
    manual = context.extras.get(SYSTEM, "webhook_private_key")
    return [*keys, manual] if manual else keys


def _document(delivery: Delivery) -> Any:
    if "form" in delivery.headers.get("content-type", ""):
        try:
            return dict(form_fields(delivery))
        except ValueError:
            return None  # kept as unreadable evidence
    return load_json(delivery.body)


def _event(delivery: Delivery, company: str) -> Event:
    document = _document(delivery)
    if not isinstance(document, dict):
        return unreadable(delivery, "not a JSON object or form")
    return Event(
        tenant=company or None,
        event_id=content_id("bhr", canonical_json(document)),
        event_type=event_type(document),
        payload=_without_field_values(document),
    )


def _without_field_values(document: dict[str, Any]) -> dict[str, Any]:
    """Field-based payloads carry employee data (names, emails...); the DAG re-reads it anyway."""
    employees = document.get("employees")
    if not isinstance(employees, list):
        return document
    kept = [{k: v for k, v in e.items() if k != "fields"} if isinstance(e, dict) else e for e in employees]
    return {**document, "employees": kept}


def event_type(document: dict[str, Any]) -> str:
    """``employee.updated`` (event-based) or ``employee_with_fields.<action>`` (field-based)."""
    if document.get("type"):
        return str(document["type"])
    employees = document.get("employees")
    if isinstance(employees, list) and employees and isinstance(employees[0], dict):
        return f"employee_with_fields.{str(employees[0].get('action', 'changed')).lower()}"
    return "unknown"
