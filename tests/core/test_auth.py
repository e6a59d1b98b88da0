"""RotatingOAuth's edge cases that the sandbox cannot stage twice in a row (requests-mock)."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
import requests
import requests_mock

from airflow_provider_mlconnector.core.auth import RotatingOAuth, oauth_error_parser
from airflow_provider_mlconnector.core.http import ApiClient, RetrySettings
from airflow_provider_mlconnector.exceptions import (
    ReauthorizationRequiredError,
    RetryableApiError,
    WriteOutcomeUnknownError,
)

TOKEN_URL = "https://auth.example.com/token"
COMMAND = "python -m airflow_provider_mlconnector.hooks.consent freshbooks --conn-id fb"


@pytest.fixture
def flow(state_store) -> RotatingOAuth:
    client = ApiClient(
        system="freshbooks",
        base_url="https://auth.example.com",
        error_parser=oauth_error_parser,
        retry=RetrySettings(max_attempts=3, base_wait=0.0),
        sleep=lambda _s: None,
    )
    return RotatingOAuth(
        token_client=client,
        token_path="/token",
        client_id="cid",
        client_secret="secret-value",
        initial_refresh_token="rt-0",
        reauthorize=COMMAND,
        tokens=state_store.tokens,
        system="freshbooks",
        credential_key="chain",
        conn_id="fb",
    )


def sent_refresh_tokens(mock: requests_mock.Mocker) -> list[str]:
    return [parse_qs(r.text)["refresh_token"][0] for r in mock.request_history]


def test_a_refresh_answered_with_a_5xx_is_sent_once_more_with_the_same_grant(flow, state_store):
    with requests_mock.Mocker() as mock:
        mock.post(
            TOKEN_URL,
            [
                {"status_code": 502, "json": {"error": "bad_gateway"}},
                {"json": {"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600}},
            ],
        )
        assert flow.credential()["access_token"] == "at-1"
    assert sent_refresh_tokens(mock) == ["rt-0", "rt-0"]
    assert state_store.tokens.get("freshbooks", "chain")["refresh_token"] == "rt-1"


def test_an_answer_lost_twice_keeps_the_stored_token_and_is_retryable_not_a_third_try(flow, state_store):
    state_store.tokens.put("freshbooks", "chain", {"access_token": "old", "refresh_token": "rt-5", "expires_at": 0})
    with requests_mock.Mocker() as mock:
        mock.post(TOKEN_URL, exc=requests.exceptions.ChunkedEncodingError("connection dropped mid-answer"))
        with pytest.raises(RetryableApiError) as caught:
            flow.credential()
    assert not isinstance(caught.value, WriteOutcomeUnknownError)
    assert "lost twice" in str(caught.value)
    assert sent_refresh_tokens(mock) == ["rt-5", "rt-5"]
    assert state_store.tokens.get("freshbooks", "chain")["refresh_token"] == "rt-5"  # nothing lost, nothing burnt


def test_no_refresh_token_at_all_is_a_reauthorization_error_naming_the_command(flow):
    flow.initial_refresh_token = None
    with pytest.raises(ReauthorizationRequiredError) as caught:
        flow.credential()
    assert caught.value.command == COMMAND and COMMAND in str(caught.value)
    assert "secret-value" not in str(caught.value)
