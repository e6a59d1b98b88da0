"""Durable sync state kept by the provider itself.

Airflow 3 tasks may not write the metadata database or update Connections, and the vendors
offer no idempotency keys, so this package keeps: the ID map with its write-intent protocol,
watermarks, the audit trail, the dead-letter queue, encrypted rotating tokens and the webhook
inbox. Entry points: :func:`get_state_store` and :class:`StateStore`.
"""

from __future__ import annotations

from airflow_provider_mlconnector.state.audit import AuditAction, AuditEvent, AuditRow
from airflow_provider_mlconnector.state.dead_letters import DeadLetter, LetterStatus
from airflow_provider_mlconnector.state.errors import IdMapConflictError, NotFoundInStateError, StateError
from airflow_provider_mlconnector.state.id_map import (
    Claim,
    ClaimOutcome,
    IdMapping,
    Intent,
    MappingStatus,
    content_fingerprint,
)
from airflow_provider_mlconnector.state.inbox import InboxEvent
from airflow_provider_mlconnector.state.redaction import redact
from airflow_provider_mlconnector.state.store import StateStore, get_state_store
from airflow_provider_mlconnector.state.tokens import LockedToken, TokenLockTimeoutError
from airflow_provider_mlconnector.state.watermarks import Window

__all__ = [
    "AuditAction",
    "AuditEvent",
    "AuditRow",
    "Claim",
    "ClaimOutcome",
    "DeadLetter",
    "IdMapConflictError",
    "IdMapping",
    "InboxEvent",
    "Intent",
    "LetterStatus",
    "LockedToken",
    "MappingStatus",
    "NotFoundInStateError",
    "StateError",
    "StateStore",
    "TokenLockTimeoutError",
    "Window",
    "content_fingerprint",
    "get_state_store",
    "redact",
]
