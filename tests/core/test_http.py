"""The shared HTTP core: retries, Retry-After, error mapping, write safety, masking."""

from __future__ import annotations

import logging

import pytest
import requests

from airflow_provider_mlconnector.core.http import ApiAuth, ApiClient, ErrorInfo, RetrySettings
from airflow_provider_mlconnector.core.paging import CursorPaginator, OffsetPaginator, PageNumberPaginator
from airflow_provider_mlconnector.exceptions import (
    ApiError,
    AuthError,
    FatalApiError,
    NotFoundError,
    RateLimitedError,
    RecordRejectedError,
    RetryableApiError,
    WriteOutcomeUnknownError,
)

BASE = "https://api.example.test"


def client(sleeps, **kwargs) -> ApiClient:
    return ApiClient(system="toy", base_url=BASE, sleep=sleeps, retry=RetrySettings(max_attempts=4), **kwargs)


def test_retries_5xx_then_succeeds(requests_mock, sleeps):
    requests_mock.get(f"{BASE}/things", [{"status_code": 503}, {"status_code": 502}, {"json": {"ok": 1}}])
    assert client(sleeps).get_json("/things") == {"ok": 1}
    assert requests_mock.call_count == 3
    assert len(sleeps) == 2
    # full jitter: each wait is within [0, base * 2**(n-1)]
    assert 0 <= sleeps[0] <= 1.0
    assert 0 <= sleeps[1] <= 2.0


def test_honours_retry_after_seconds(requests_mock, sleeps):
    requests_mock.get(f"{BASE}/things", [{"status_code": 429, "headers": {"Retry-After": "7"}}, {"json": {}}])
    client(sleeps).get_json("/things")
    assert 7.0 <= sleeps[0] <= 8.0


def test_vendor_hint_from_error_parser_is_honoured(requests_mock, sleeps):
    def parser(response: requests.Response) -> ErrorInfo:
        return ErrorInfo(message="slow down", code="X1", kind="rate_limited", retry_after=3.0)

    requests_mock.get(f"{BASE}/things", [{"status_code": 400}, {"json": {}}])
    client(sleeps, error_parser=parser).get_json("/things")
    assert 3.0 <= sleeps[0] <= 4.0


def test_wait_longer_than_max_fails_clearly(requests_mock, sleeps):
    requests_mock.get(f"{BASE}/things", status_code=429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimitedError, match="more than the configured maximum"):
        client(sleeps).get_json("/things")
    assert sleeps == []


def test_gives_up_after_max_attempts(requests_mock, sleeps):
    requests_mock.get(f"{BASE}/things", status_code=500)
    with pytest.raises(RetryableApiError) as info:
        client(sleeps).get_json("/things")
    assert requests_mock.call_count == 4
    assert info.value.status == 500


@pytest.mark.parametrize(
    ("status", "method", "expected"),
    [
        (400, "GET", FatalApiError),
        (404, "GET", NotFoundError),
        (403, "GET", AuthError),
        (422, "POST", RecordRejectedError),
        (400, "PUT", RecordRejectedError),
    ],
)
def test_status_to_error_mapping(requests_mock, sleeps, status, method, expected):
    requests_mock.request(method, f"{BASE}/x", status_code=status, json={"message": "nope"})
    with pytest.raises(expected) as info:
        client(sleeps).request(method, "/x")
    assert info.value.status == status
    assert requests_mock.call_count == 1


def test_record_rejection_is_both_record_and_api_error(requests_mock, sleeps):
    requests_mock.post(f"{BASE}/x", status_code=422, json={"message": "name: must not be blank"})
    with pytest.raises(RecordRejectedError) as info:
        client(sleeps).request("POST", "/x", json={})
    assert isinstance(info.value, ApiError)
    assert "must not be blank" in info.value.reason


def test_post_is_never_replayed_after_a_lost_answer(requests_mock, sleeps):
    requests_mock.post(f"{BASE}/bills", exc=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(WriteOutcomeUnknownError, match="look it up"):
        client(sleeps).request("POST", "/bills", json={"n": 1})
    assert requests_mock.call_count == 1


def test_post_5xx_is_outcome_unknown_not_retried(requests_mock, sleeps):
    requests_mock.post(f"{BASE}/bills", status_code=500)
    with pytest.raises(WriteOutcomeUnknownError):
        client(sleeps).request("POST", "/bills", json={})
    assert requests_mock.call_count == 1


def test_post_429_is_safe_to_retry(requests_mock, sleeps):
    requests_mock.post(f"{BASE}/bills", [{"status_code": 429}, {"status_code": 201, "json": {"id": 1}}])
    assert client(sleeps).send_json("POST", "/bills", json={}) == {"id": 1}


def test_idempotent_post_retries_after_timeout(requests_mock, sleeps):
    requests_mock.post(
        f"{BASE}/q", [{"exc": requests.exceptions.ReadTimeout("t")}, {"status_code": 200, "json": {"ok": True}}]
    )
    assert client(sleeps).send_json("POST", "/q", json={}, idempotent=True) == {"ok": True}


def test_connect_failure_on_post_is_retried(sleeps):
    # Nothing listens on port 9: the request provably never left, so a retry cannot duplicate.
    c = ApiClient(system="toy", base_url="http://127.0.0.1:9", sleep=sleeps, retry=RetrySettings(max_attempts=2))
    with pytest.raises(RetryableApiError) as info:
        c.request("POST", "/x", json={})
    assert not isinstance(info.value, WriteOutcomeUnknownError)
    assert len(sleeps) == 1


class CountingAuth(ApiAuth):
    def __init__(self) -> None:
        self.token = "old-token-123456"
        self.refreshes = 0

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request

    def refresh(self, failure) -> bool:
        self.refreshes += 1
        self.token = "new-token-654321"
        return True


def test_401_refreshes_once_and_retries(requests_mock, sleeps):
    def reply(request, context):
        if request.headers["Authorization"] == "Bearer new-token-654321":
            return {"ok": True}
        context.status_code = 401
        return {"message": "expired"}

    requests_mock.get(f"{BASE}/me", json=reply)
    auth = CountingAuth()
    assert client(sleeps, auth=auth).get_json("/me") == {"ok": True}
    assert auth.refreshes == 1


def test_401_after_refresh_fails_without_storm(requests_mock, sleeps):
    requests_mock.get(f"{BASE}/me", status_code=401, json={"message": "expired"})
    auth = CountingAuth()
    with pytest.raises(AuthError):
        client(sleeps, auth=auth).get_json("/me")
    assert auth.refreshes == 1
    assert requests_mock.call_count == 2


def test_success_body_error_wins_over_http_200(requests_mock, sleeps):
    def hidden(response):
        body = response.json()
        if body.get("responseCode") != 200:
            return ErrorInfo(message=body["responseMessage"], code=str(body["responseCode"]), kind="fatal")
        return None

    requests_mock.post(f"{BASE}/job", json={"responseCode": 410, "responseMessage": "missing filters"})
    with pytest.raises(FatalApiError, match="missing filters"):
        client(sleeps, success_body_error=hidden).request("POST", "/job")


def test_tokens_never_reach_logs_or_errors(requests_mock, sleeps, caplog):
    secret = "sk_live_SUPERSECRET_987654321"
    requests_mock.get(
        f"{BASE}/me",
        status_code=400,
        json={"message": "bad", "access_token": secret, "echo": f"Authorization: Bearer {secret}"},
    )
    caplog.set_level(logging.DEBUG)
    c = client(sleeps, headers={"Authorization": f"Bearer {secret}"})
    with pytest.raises(FatalApiError) as info:
        c.request("GET", "/me", params={"api_key": secret, "page": 2})
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("airflow_provider_mlconnector"))
    assert secret not in ours
    assert secret not in str(info.value)
    assert secret not in (info.value.body or "")
    assert "page=2" in ours  # the call itself is logged, with its harmless parameters


def test_request_id_is_captured(requests_mock, sleeps):
    requests_mock.get(f"{BASE}/x", status_code=404, headers={"intuit_tid": "tid-42"}, json={})
    with pytest.raises(NotFoundError) as info:
        client(sleeps).get_json("/x")
    assert info.value.request_id == "tid-42"
    assert "tid-42" in str(info.value)


def test_page_number_paginator_uses_total_pages(requests_mock, sleeps):
    pages = {1: [1, 2], 2: [3, 4], 3: [5]}
    requests_mock.get(
        f"{BASE}/items",
        json=lambda req, ctx: {"items": pages[int(req.qs["page"][0])], "pages": 3},
    )
    paginator = PageNumberPaginator(size=2, total_pages=lambda p: p["pages"])
    got = list(client(sleeps).paginate("/items", paginator, records=lambda p: p["items"]))
    assert got == [1, 2, 3, 4, 5]
    assert requests_mock.call_count == 3


def test_cursor_paginator_continues_over_empty_pages(requests_mock, sleeps):
    responses = {
        None: {"results": [1], "nextPage": "a"},
        "a": {"results": [], "nextPage": "b"},
        "b": {"results": [2]},
    }
    requests_mock.get(f"{BASE}/v", json=lambda req, ctx: responses[req.qs.get("page", [None])[0]])
    paginator = CursorPaginator(token=lambda p: p.get("nextPage"))
    assert list(client(sleeps).paginate("/v", paginator, records=lambda p: p["results"])) == [1, 2]


def test_offset_paginator_stops_on_short_page(requests_mock, sleeps):
    data = list(range(7))
    requests_mock.get(
        f"{BASE}/q",
        json=lambda req, ctx: {"rows": data[int(req.qs["start"][0]) - 1 :][: int(req.qs["max"][0])]},
    )
    paginator = OffsetPaginator(offset_param="start", size_param="max", size=3, first_offset=1)
    assert list(client(sleeps).paginate("/q", paginator, records=lambda p: p["rows"])) == data


def test_credential_renewal_never_waits_for_a_throttle_permit_it_holds(requests_mock, sleeps):
    """Three workers share a 3-permit limit and a session that must first be created by a login
    that is itself throttled: renewal must happen outside the permit, or everything deadlocks."""
    import threading

    from airflow_provider_mlconnector.core.throttle import ConcurrencyLimit

    limit = ConcurrencyLimit(3)
    login_client = ApiClient(system="toy", base_url=BASE, sleep=sleeps, throttle=limit)
    barrier = threading.Barrier(3)
    lock = threading.Lock()

    class SessionAuth(ApiAuth):
        session = None

        def __call__(self, request):
            barrier.wait(timeout=5)  # all three workers are mid-request before anyone logs in
            with lock:
                if self.session is None:
                    self.session = login_client.send_json("POST", "/login")["sessionId"]
            request.headers["sessionId"] = self.session
            return request

    requests_mock.post(f"{BASE}/login", json={"sessionId": "s-1"})
    requests_mock.get(f"{BASE}/things", json={"ok": True})
    c = ApiClient(system="toy", base_url=BASE, sleep=sleeps, throttle=limit, auth=SessionAuth())
    results = []
    workers = [threading.Thread(target=lambda: results.append(c.get_json("/things"))) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=10)
    assert results == [{"ok": True}] * 3, "workers deadlocked on the throttle during the login"


def test_a_write_whose_claim_was_lost_during_a_429_wait_is_never_sent(requests_mock, sleeps):
    from airflow_provider_mlconnector.core.fence import fenced
    from airflow_provider_mlconnector.state.errors import ClaimLostError

    requests_mock.post(f"{BASE}/bills", [{"status_code": 429, "headers": {"Retry-After": "1"}}, {"json": {"id": 1}}])
    checks: list[int] = []

    def still_ours() -> None:
        checks.append(len(checks))
        if len(checks) > 1:  # the lease ran out while the client waited out the 429
            raise ClaimLostError("taken over")

    with fenced(still_ours), pytest.raises(ClaimLostError):
        client(sleeps).send_json("POST", "/bills", json={"n": 1})
    assert requests_mock.call_count == 1  # the first attempt only: the retry never left


def test_reads_are_not_fenced(requests_mock, sleeps):
    from airflow_provider_mlconnector.core.fence import fenced

    requests_mock.get(f"{BASE}/bills", json={"ok": 1})

    def never() -> None:
        raise AssertionError("a read must not check the fence")

    with fenced(never):
        assert client(sleeps).get_json("/bills") == {"ok": 1}
