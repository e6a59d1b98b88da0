"""The redact() helper shared by the audit trail, the dead-letter queue and the inbox."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from airflow_provider_mlconnector.state.redaction import redact, storable


@pytest.mark.parametrize(
    "key",
    [
        "access_token",
        "Refresh-Token",
        "client_secret",
        "password",
        "Authorization",
        "X-Api-Key",
        "api_key",
        "sessionId",
        "devKey",
        "PRIVATE_KEY",
        "verifierToken",
    ],
)
def test_sensitive_keys_are_masked(key: str) -> None:
    assert redact({key: "s3cr3t"}) == {key: "***"}


def test_nested_structures_and_free_text() -> None:
    value = {
        "invoice": {"number": "INV-1", "amount": 12.5, "lines": [{"token": {"nested": "x"}, "qty": 2}]},
        "message": "401 for header Authorization: Bearer abc.DEF-123 and Basic dXNlcjpwYXNz",
        "ids": ("a", "b"),
        "count": 3,
        "none": None,
    }
    assert redact(value) == {
        "invoice": {"number": "INV-1", "amount": 12.5, "lines": [{"token": "***", "qty": 2}]},
        "message": "401 for header Authorization: Bearer *** and Basic ***",
        "ids": ["a", "b"],
        "count": 3,
        "none": None,
    }
    assert value["invoice"]["lines"][0]["token"] == {"nested": "x"}  # type: ignore[index]  # input untouched


def test_storable_is_json_safe_and_keeps_money_exact() -> None:
    assert storable({"amount": Decimal("0.10"), "day": date(2026, 1, 2), "tags": {"b", "a"}, "raw": b"\x00"}) == {
        "amount": "0.10",
        "day": "2026-01-02",
        "tags": ["a", "b"],
        "raw": "***",
    }
