"""Response bodies are decoded as declared, else as UTF-8, and refused when they are not: never guessed, never
patched with replacement characters (a "Caf\ufffd" vendor name would be synced as data)."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_mlconnector.core.http import ApiClient, RetrySettings, body_text
from airflow_provider_mlconnector.exceptions import FatalApiError

BASE = "https://api.example.test"
LATIN1_JSON = '{"name": "Café"}'.encode("latin-1")  # é is the single byte 0xE9: not UTF-8


def client(sleeps) -> ApiClient:
    return ApiClient(system="toy", base_url=BASE, sleep=sleeps, retry=RetrySettings(max_attempts=2))


def answer(requests_mock, content: bytes, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    requests_mock.get(f"{BASE}/vendor", content=content, headers=headers)
    requests_mock.post(f"{BASE}/vendor", content=content, headers=headers)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_a_body_without_charset_that_is_not_utf8_is_refused(requests_mock, sleeps, content_type):
    answer(requests_mock, LATIN1_JSON, content_type)
    for call in (lambda c: c.get_json("/vendor"), lambda c: c.send_json("POST", "/vendor", json={})):
        with pytest.raises(FatalApiError, match="not valid UTF-8") as raised:
            call(client(sleeps))
        assert raised.value.system == "toy" and raised.value.status == 200
        assert "\ufffd" not in str(raised.value) + (raised.value.body or "")
    assert len(sleeps) == 0  # the same bytes would come back: no retry


@pytest.mark.parametrize("content_type", ["application/json; charset=ISO-8859-1", 'application/json;charset="latin1"'])
def test_a_declared_charset_is_how_the_body_is_decoded(requests_mock, sleeps, content_type):
    answer(requests_mock, LATIN1_JSON, content_type)
    assert client(sleeps).get_json("/vendor") == {"name": "Café"}


@pytest.mark.parametrize("prefix", [b"", b"\xef\xbb\xbf"])  # with and without a UTF-8 byte order mark
def test_utf8_without_charset_is_read_as_utf8(requests_mock, sleeps, prefix):
    answer(requests_mock, prefix + '{"name": "Café Zoë"}'.encode(), "application/json")
    assert client(sleeps).get_json("/vendor") == {"name": "Café Zoë"}


def test_text_without_charset_is_utf8_not_requests_latin1_default(requests_mock):
    requests_mock.get(f"{BASE}/file", content="exporté.json".encode(), headers={"Content-Type": "text/plain"})
    response = requests.get(f"{BASE}/file", timeout=5)
    assert response.text == "exportÃ©.json"  # what requests does (RFC 2616's ISO-8859-1 default for text/*)
    assert body_text(response, "toy") == "exporté.json"


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [("application/json; charset=utf-8", "not valid UTF-8"), ("application/json; charset=klingon", "unknown charset")],
)
def test_bytes_invalid_in_the_declared_charset_or_an_unknown_charset_are_refused(
    requests_mock, sleeps, content_type, reason
):
    answer(requests_mock, LATIN1_JSON, content_type)
    with pytest.raises(FatalApiError, match=reason):
        client(sleeps).get_json("/vendor")
