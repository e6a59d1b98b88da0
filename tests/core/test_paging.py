"""Paging that cannot run away: a vendor whose pager loops is stopped with a clear error, no row twice."""

from __future__ import annotations

import pytest

from airflow_provider_mlconnector.core.http import ApiClient, RetrySettings
from airflow_provider_mlconnector.core.paging import (
    MAX_PAGES,
    CursorPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    allowed_pages,
)
from airflow_provider_mlconnector.exceptions import FatalApiError, PagingError

BASE = "https://api.example.test"


def client(sleeps) -> ApiClient:
    return ApiClient(system="toy", base_url=BASE, sleep=sleeps, retry=RetrySettings(max_attempts=2))


def page(ids, **extra):
    return {"json": {"rows": [{"id": i} for i in ids], **extra}}


def rows(payload):
    return payload["rows"]


def test_a_repeated_cursor_stops_with_a_clear_error_before_any_row_repeats(requests_mock, sleeps):
    # The vendor hands out cursor "B" again after page 2: following it would loop forever.
    requests_mock.get(
        f"{BASE}/things",
        [page([1, 2], next="A"), page([3, 4], next="B"), page([5, 6], next="B"), page([7], next=None)],
    )
    seen = []
    paginator = CursorPaginator(token=lambda p: p.get("next"), token_param="cursor")
    with pytest.raises(PagingError, match="cursor 'B' came back") as caught:
        seen.extend(r["id"] for r in client(sleeps).paginate("/things", paginator, records=rows))
    assert seen == [1, 2, 3, 4, 5, 6]  # every page read once, nothing after the loop was detected
    assert requests_mock.call_count == 3
    assert caught.value.system == "toy"
    assert isinstance(caught.value, FatalApiError)  # retrying the same call cannot fix a looping pager


def test_a_page_identical_to_the_previous_one_stops_before_its_rows_are_yielded(requests_mock, sleeps):
    # A server that ignores ``page`` answers page 1 forever; without a page count nothing else ends it.
    requests_mock.get(f"{BASE}/things", [page([1, 2]), page([1, 2]), page([1, 2])])
    seen = []
    with pytest.raises(PagingError, match="page 2 is identical to page 1"):
        seen.extend(r["id"] for r in client(sleeps).paginate("/things", PageNumberPaginator(size=2), records=rows))
    assert seen == [1, 2]
    assert requests_mock.call_count == 2


def test_an_offset_pager_whose_server_ignores_the_offset_is_stopped_too(requests_mock, sleeps):
    requests_mock.get(f"{BASE}/things", [page([1, 2]), page([1, 2])])
    with pytest.raises(PagingError, match="identical"):
        list(client(sleeps).paginate("/things", OffsetPaginator(size=2), records=rows))


def test_more_pages_than_the_vendors_own_count_allows_stop_at_the_cap(requests_mock, sleeps):
    # The first page says 3 pages; the server then keeps raising ``pages`` and serving new rows.
    answers = [page([n * 10 + 1, n * 10 + 2], pages=3 + n) for n in range(20)]
    requests_mock.get(f"{BASE}/things", answers)
    paginator = PageNumberPaginator(size=2, total_pages=lambda p: p["pages"])
    with pytest.raises(PagingError, match="more than the 3 pages the first answer announced"):
        list(client(sleeps).paginate("/things", paginator, records=rows))
    assert requests_mock.call_count == allowed_pages(3) == 5  # 3 announced + a margin for records created meanwhile


def test_the_cap_leaves_room_for_records_created_while_paging(requests_mock, sleeps):
    # Announced 2 pages, one more appears while reading: within the margin, read to the end.
    requests_mock.get(f"{BASE}/things", [page([1, 2], pages=2), page([3, 4], pages=3), page([5], pages=3)])
    paginator = PageNumberPaginator(size=2, total_pages=lambda p: p["pages"])
    assert [r["id"] for r in client(sleeps).paginate("/things", paginator, records=rows)] == [1, 2, 3, 4, 5]


def test_a_record_count_caps_cursor_paging_as_well(requests_mock, sleeps):
    answers = [page([n], next=f"c{n}", total=2) for n in range(10)]
    requests_mock.get(f"{BASE}/things", answers)
    paginator = CursorPaginator(token=lambda p: p.get("next"), size=1, total_records=lambda p: p["total"])
    with pytest.raises(PagingError, match="more than the 2 pages"):
        list(client(sleeps).paginate("/things", paginator, records=rows))
    assert requests_mock.call_count == allowed_pages(2)


def test_empty_pages_that_carry_a_new_cursor_are_followed(requests_mock, sleeps):
    # BILL: an empty results[] with a nextPage still means continue; only a repeated cursor is a loop.
    requests_mock.get(f"{BASE}/things", [page([], next="A"), page([], next="B"), page([1], next=None)])
    paginator = CursorPaginator(token=lambda p: p.get("next"))
    assert [r["id"] for r in client(sleeps).paginate("/things", paginator, records=rows)] == [1]


def test_allowed_pages_adds_a_tenth_and_at_least_two():
    assert allowed_pages(1) == 3
    assert allowed_pages(30) == 33
    assert allowed_pages(1000) == 1100
    assert allowed_pages(None) == MAX_PAGES
