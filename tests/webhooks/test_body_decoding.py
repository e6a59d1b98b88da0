"""Webhook bodies are decoded as declared, else as UTF-8, and refused when they are not: never patched with
replacement characters (a "\ufffd" in a stored event, or two different bodies read as the same one)."""

from __future__ import annotations

import base64
import json
import time

from tests.webhooks.conftest import FB_ACCOUNT, bamboohr_sign, freshbooks_sign, rows

FORM = "application/x-www-form-urlencoded"
BHR_KEY = "global-bamboo-key"


def post_bamboohr(client, body: bytes, content_type: str):
    stamp = str(int(time.time()))
    headers = {
        "X-BambooHR-Timestamp": stamp,
        "X-BambooHR-Signature": bamboohr_sign(BHR_KEY, body, stamp),
        "content-type": content_type,
    }
    return client.post("/webhooks/bamboohr", content=body, headers=headers)


def test_bamboohr_form_with_a_non_utf8_escape_is_kept_unreadable_not_patched(client, store, extras):
    extras.values["bamboohr"]["webhook_private_key"] = BHR_KEY
    body = b"type=employee.updated&data%5BemployeeId%5D=5&data%5Bnote%5D=Caf%E9"  # %E9: Latin-1, no charset
    assert post_bamboohr(client, body, FORM).status_code == 200
    (event,) = rows(store, "bamboohr")
    assert event.event_type == "unreadable"
    assert "\ufffd" not in json.dumps(event.payload, ensure_ascii=False)
    assert event.payload["body"] == body.decode()  # the evidence is the exact body


def test_bamboohr_form_in_a_declared_charset_is_decoded_in_it(client, store, extras):
    extras.values["bamboohr"]["webhook_private_key"] = BHR_KEY
    body = b"type=employee.updated&data%5BemployeeId%5D=5&data%5Bnote%5D=Caf%E9"
    assert post_bamboohr(client, body, f"{FORM}; charset=ISO-8859-1").status_code == 200
    (event,) = rows(store, "bamboohr")
    assert event.event_type == "employee.updated"
    assert event.payload["data[note]"] == "Café"


def test_json_that_is_not_utf8_is_unreadable_and_its_evidence_is_the_exact_bytes(client, store, extras):
    extras.values["bamboohr"]["webhook_private_key"] = BHR_KEY
    latin1 = '{"type": "employee.updated", "data": {"employeeId": "5", "note": "Café"}}'.encode("latin-1")
    utf16 = '{"type": "employee.updated", "data": {"employeeId": "6"}}'.encode("utf-16-le")  # json.loads would accept
    for body in (latin1, utf16):
        assert post_bamboohr(client, body, "application/json").status_code == 200
    first, second = rows(store, "bamboohr")
    assert (first.event_type, second.event_type) == ("unreadable", "unreadable")
    assert base64.b64decode(first.payload["body_base64"]) == latin1 and "body" not in first.payload
    assert second.payload["body"].encode() == utf16  # UTF-16 of ASCII is valid UTF-8 (NULs): kept as text


def test_freshbooks_event_with_a_non_utf8_escape_is_refused(client, store, credentials):
    credentials.remember_callback(FB_ACCOUNT, "2001", "bill.create", "u")
    credentials.mark_verified(FB_ACCOUNT, "2001", "fb-verifier")
    fields = [("name", "bill.create"), ("object_id", "12"), ("account_id", FB_ACCOUNT), ("note", "Caf\ufffd")]
    body = f"name=bill.create&object_id=12&account_id={FB_ACCOUNT}&note=Caf%E9".encode()
    # signed over what a replacing decoder would read: it must not get that far
    headers = {"content-type": FORM, "X-FreshBooks-Hmac-SHA256": freshbooks_sign("fb-verifier", fields)}
    response = client.post("/webhooks/freshbooks", content=body, headers=headers)
    assert response.status_code in (400, 401)
    assert rows(store) == []
