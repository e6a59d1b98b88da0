"""Keeping secrets out of logs, XCom, audit rows and exception text."""

from __future__ import annotations

import re
from collections.abc import Iterable

SENSITIVE_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "api_key",
    "apikey",
    "session",
    "devkey",
    "dev_key",
    "verifier",
    "credential",
    "private_key",
    "privatekey",
    "signature",
)

# "key": "value" pairs in JSON/form text whose key looks sensitive.
_PAIR = re.compile(
    r"""(?P<k>["']?[\w-]*(?:%s)[\w-]*["']?\s*[:=]\s*)(?P<q>["']?)(?P<v>[^"'&,\s}]+)""" % "|".join(SENSITIVE_WORDS),
    re.IGNORECASE,
)

_SCHEME = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def mask(*secrets: str | None) -> None:
    """Register runtime secrets (fresh access tokens, session ids) with Airflow's log masker."""
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        if secret:
            mask_secret(secret)


def redact_text(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Blank sensitive ``key: value`` pairs and any known secret in ``text``."""
    redacted = _SCHEME.sub(lambda m: f"{m.group(1)} ***", text)
    redacted = _PAIR.sub(lambda m: f"{m.group('k')}{m.group('q')}***", redacted)
    for secret in extra_secrets:
        if secret and len(secret) >= 4:
            redacted = redacted.replace(secret, "***")
    return redacted


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_WORDS)
