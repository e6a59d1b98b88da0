"""Each signature scheme against the dossiers' formulas and documented examples."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_mlconnector.webhooks import signatures
from tests.webhooks.conftest import b64_hmac, bamboohr_sign, freshbooks_sign, standard_sign

# Dossier A12 delivery example.
FB_FIELDS = [
    ("name", "invoice.create"),
    ("object_id", "1234567"),
    ("account_id", "6BApk"),
    ("business_id", "6543"),
    ("identity_id", "1234"),
    ("user_id", "1"),
]


def test_freshbooks_message_is_python_json_dumps_with_default_separators():
    message = signatures.freshbooks_message(FB_FIELDS).decode()
    assert message.startswith('{"name": "invoice.create", "object_id": "1234567", ')
    assert message == json.dumps(dict(FB_FIELDS))


def test_freshbooks_signature_matches_vendor_reference_code():
    signature = freshbooks_sign("verifier-abc", FB_FIELDS)
    assert signatures.form_json_hmac("verifier-abc", FB_FIELDS, signature)
    assert not signatures.form_json_hmac("other-verifier", FB_FIELDS, signature)
    # Not over the raw body, and field order matters.
    assert not signatures.form_json_hmac("verifier-abc", list(reversed(FB_FIELDS)), signature)


def test_body_hmac_bill_and_quickbooks_documented_payloads():
    bill = json.dumps({"metadata": {"eventId": "625947c4", "eventType": "bill.created"}}, separators=(",", ":"))
    qbo = b'{"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":[]}}]}'
    for key, body in (("bill-security-key", bill.encode()), ("qbo-verifier", qbo)):
        signature = b64_hmac(key.encode(), body)
        assert signatures.body_hmac(key, body, signature)
        assert not signatures.body_hmac(key, body + b" ", signature)
        assert not signatures.body_hmac(key + "x", body, signature)


def test_bamboohr_hex_over_body_then_timestamp():
    body = b'{"type":"employee.updated"}'
    signature = bamboohr_sign("private-key", body, "1658248023")
    assert signatures.body_timestamp_hmac("private-key", body, "1658248023", signature)
    assert signatures.body_timestamp_hmac("private-key", body, "1658248023", signature.upper())
    assert not signatures.body_timestamp_hmac("private-key", body, "1658248024", signature)
    # timestamp first is the wrong order
    wrong = bamboohr_sign("private-key", b"1658248023", body.decode())
    assert not signatures.body_timestamp_hmac("private-key", body, "1658248023", wrong)


def test_standard_webhooks_accepts_any_of_several_signatures():
    body = b'{"scope":"store/order/created"}'
    good = standard_sign("secret", "msg_1", "1700000000", body)
    stale_key = standard_sign("old-secret", "msg_1", "1700000000", body)
    assert signatures.standard_webhooks("secret", "msg_1", "1700000000", body, good)
    assert signatures.standard_webhooks("secret", "msg_1", "1700000000", body, f"{stale_key} {good}")
    assert not signatures.standard_webhooks("secret", "msg_1", "1700000000", body, stale_key)
    assert not signatures.standard_webhooks("secret", "msg_2", "1700000000", body, good)
    assert not signatures.standard_webhooks("secret", "msg_1", "1700000000", body, good.replace("v1,", "v2,"))


@pytest.mark.parametrize("garbage", ["", "not base64!!", "v1,", "====", "é", "v1,é"])
def test_garbage_signatures_never_match_nor_raise(garbage):
    assert not signatures.body_hmac("k", b"x", garbage)
    assert not signatures.body_timestamp_hmac("k", b"x", "1", garbage)
    assert not signatures.standard_webhooks("k", "i", "1", b"x", garbage)
    assert not signatures.form_json_hmac("k", [("a", "b")], garbage)


def test_base64_signature_compared_as_bytes():
    signature = b64_hmac(b"k", b"body")
    assert signatures.body_hmac("k", b"body", f"  {signature}\n")
    assert not signatures.body_hmac("k", b"body", base64.b64encode(b"\x00" * 32).decode())


def test_shared_secret():
    assert signatures.shared_secret("s3cret", "s3cret")
    assert not signatures.shared_secret("s3cret", "s3cre")
    assert not signatures.shared_secret("s3cret", None)
    assert not signatures.shared_secret("", "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1658248023", datetime(2022, 7, 19, 16, 27, 3, tzinfo=timezone.utc)),
        ("2026-01-31T18:42:00+0000", datetime(2026, 1, 31, 18, 42, tzinfo=timezone.utc)),
        ("2026-01-31T18:42:00Z", datetime(2026, 1, 31, 18, 42, tzinfo=timezone.utc)),
        ("Sat, 31 Jan 2026 18:42:00 +0000", datetime(2026, 1, 31, 18, 42, tzinfo=timezone.utc)),
        ("2026-01-31T18:42:00", None),  # no offset: freshness cannot be judged
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_timestamp(text, expected):
    assert signatures.parse_timestamp(text) == expected


def test_freshness_window_both_ways():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert signatures.is_fresh(now - timedelta(seconds=299), now, 300)
    assert not signatures.is_fresh(now - timedelta(seconds=301), now, 300)
    assert not signatures.is_fresh(now + timedelta(seconds=301), now, 300)
