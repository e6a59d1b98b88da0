"""Redaction of secrets in dicts before they are stored (audit summaries, dead-letter payloads)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from airflow_provider_mlconnector.core.secrets import SENSITIVE_WORDS

MASK = "***"

# Substring match on the key name, case-insensitive. "key" alone is deliberately broad (it also
# hides e.g. "natural_key"): an over-redacted audit row costs nothing, a leaked secret does.
SENSITIVE_KEY_PARTS: tuple[str, ...] = (*SENSITIVE_WORDS, "key", "cookie")

# Credentials pasted into free text (e.g. an echoed request header inside an error message).
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def is_sensitive_key(name: object) -> bool:
    """True when a mapping key looks like it names a secret."""
    lowered = str(name).lower()
    return any(part in lowered for part in SENSITIVE_KEY_PARTS)


def redact(value: Any) -> Any:
    """Return a deep copy of ``value`` with secrets replaced by ``"***"``.

    Values under a sensitive key are masked whatever their type; ``Bearer``/``Basic``
    credentials inside any string are masked too. Lists, tuples and nested mappings are walked.
    """
    if isinstance(value, Mapping):
        return {str(key): MASK if is_sensitive_key(key) else redact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {MASK}", value)
    return value


def _json_default(value: Any) -> Any:
    # Money stays exact: Decimal becomes its string, never a float.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return MASK  # raw bytes in a payload are more likely a secret than something to read
    return str(value)


def storable(value: Mapping[str, Any]) -> dict[str, Any]:
    """``redact(value)`` made JSON-safe (Decimal -> str, datetime -> ISO 8601), ready to store."""
    result: dict[str, Any] = json.loads(json.dumps(redact(value), default=_json_default))
    return result
