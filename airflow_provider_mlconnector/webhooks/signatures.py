"""The signature schemes the vendors use, one function per scheme.

Every comparison goes through :func:`hmac.compare_digest` on bytes, so a forger learns nothing
from response times, and a malformed signature is simply "no match" (never an exception).

=========================  ==========================================================  ==============
scheme                     signed message and encoding                                 used by
=========================  ==========================================================  ==============
:func:`form_json_hmac`     base64 HMAC-SHA256 of ``json.dumps`` of the form fields       FreshBooks
:func:`body_hmac`          base64 HMAC-SHA256 of the raw body                          BILL, QuickBooks
:func:`body_timestamp_hmac`  hex HMAC-SHA256 of raw body + timestamp                   BambooHR
:func:`standard_webhooks`  ``v1,`` base64 HMAC-SHA256 of ``id.timestamp.body``          BigCommerce
:func:`shared_secret`      a secret header value set when the hook was created          BigCommerce
=========================  ==========================================================  ==============
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone


def _digest(key: str | bytes, message: bytes) -> bytes:
    secret = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.new(secret, message, hashlib.sha256).digest()


def _b64_equals(expected: bytes, provided: str) -> bool:
    try:
        decoded = base64.b64decode(provided.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(expected, decoded)


def freshbooks_message(fields: Sequence[tuple[str, str]]) -> bytes:
    """What FreshBooks signs: Python's default ``json.dumps`` of the fields, values as strings.

    Default separators (``", "`` and ``": "``) and the order the fields were posted in, exactly
    as FreshBooks' reference code; a repeated field keeps its first position and last value, as
    building a ``dict`` does there.
    """
    return json.dumps({name: str(value) for name, value in fields}).encode("utf-8")


def form_json_hmac(verifier: str, fields: Sequence[tuple[str, str]], signature: str) -> bool:
    """FreshBooks ``X-FreshBooks-Hmac-SHA256`` (keyed with the callback's verifier)."""
    return _b64_equals(_digest(verifier, freshbooks_message(fields)), signature)


def body_hmac(key: str | bytes, body: bytes, signature: str) -> bool:
    """BILL ``x-bill-sha-signature`` and QuickBooks ``intuit-signature`` (a text key is used as UTF-8)."""
    return _b64_equals(_digest(key, body), signature)


def body_timestamp_hmac(private_key: str, body: bytes, timestamp: str, signature: str) -> bool:
    """BambooHR ``X-BambooHR-Signature``: lowercase hex over the body then the timestamp header."""
    expected = _digest(private_key, body + timestamp.encode("utf-8")).hex().encode("ascii")
    return hmac.compare_digest(expected, signature.strip().lower().encode("utf-8"))


def standard_webhooks(secret: str, message_id: str, timestamp: str, body: bytes, signature_header: str) -> bool:
    """Standard Webhooks ``webhook-signature``: any ``v1,<base64>`` entry of the space-separated list.

    Several entries appear while the sender rotates its secret; other versions are ignored.
    """
    expected = _digest(secret, f"{message_id}.{timestamp}.".encode() + body)
    return any(
        _b64_equals(expected, value) for version, value in _signature_entries(signature_header) if version == "v1"
    )


def _signature_entries(header: str) -> Iterable[tuple[str, str]]:
    for entry in header.split():
        version, _, value = entry.partition(",")
        if value:
            yield version, value


def shared_secret(expected: str, provided: str | None) -> bool:
    """A static secret header (BigCommerce custom ``headers`` given when the hook was created)."""
    if not expected or provided is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), provided.encode("utf-8"))


def parse_timestamp(value: str) -> datetime | None:
    """A signed timestamp header as aware UTC: unix seconds, ISO 8601 or RFC 2822; else ``None``.

    BambooHR's format is unconfirmed (unix seconds and ISO strings both appear in samples).
    """
    text = value.strip()
    if not text:
        return None
    try:
        return datetime.fromtimestamp(float(text), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    for parse in (datetime.fromisoformat, email.utils.parsedate_to_datetime):
        try:
            parsed = parse(text)
        except (ValueError, TypeError):
            continue
        # A timestamp without an offset cannot be checked for freshness honestly.
        return parsed.astimezone(timezone.utc) if parsed.tzinfo else None
    return None


def is_fresh(signed_at: datetime, now: datetime, max_skew_seconds: float) -> bool:
    """Within ``max_skew_seconds`` of ``now`` either way (replays are old, clocks drift both ways)."""
    return abs((now - signed_at).total_seconds()) <= max_skew_seconds
