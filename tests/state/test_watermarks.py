"""Watermarks only move forward; backfill windows never rewind them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_mlconnector.state import StateStore

UTC = timezone.utc
P, S, T = "freshbooks_to_quickbooks", "invoices", "acct-1"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_first_window_is_a_full_read(store: StateStore) -> None:
    assert store.watermarks.get(P, S, T) is None
    window = store.watermarks.window(P, S, T, lookback=timedelta(minutes=10), now=NOW)
    assert (window.start, window.end, window.is_backfill) == (None, NOW, False)


def test_incremental_window_uses_lookback(store: StateStore) -> None:
    store.watermarks.advance(P, S, T, datetime(2026, 3, 1, 11, 0, tzinfo=UTC))
    window = store.watermarks.window(P, S, T, lookback=timedelta(minutes=10), now=NOW)
    assert window.start == datetime(2026, 3, 1, 10, 50, tzinfo=UTC)
    assert window.end == NOW
    assert not window.is_backfill


def test_advance_never_moves_backwards(store: StateStore) -> None:
    late, early = datetime(2026, 3, 1, 11, 0, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    assert store.watermarks.advance(P, S, T, late) == late
    assert store.watermarks.advance(P, S, T, early) == late
    assert store.watermarks.get(P, S, T) == late
    # Offsets are normalised to UTC and compared as instants.
    later = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))  # 12:00 UTC
    assert store.watermarks.advance(P, S, T, later) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_backfill_window_does_not_rewind_the_live_watermark(store: StateStore) -> None:
    live = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    store.watermarks.advance(P, S, T, live)
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)

    window = store.watermarks.window(P, S, T, lookback=timedelta(minutes=10), start=start, end=end, now=NOW)
    assert (window.start, window.end, window.is_backfill) == (start, end, True)
    store.watermarks.advance(P, S, T, window.end)  # what a backfill run does when it finishes

    assert store.watermarks.get(P, S, T) == live
    assert store.watermarks.window(P, S, T, lookback=timedelta(0), start=start, now=NOW).end == NOW


def test_watermarks_are_scoped_and_validated(store: StateStore) -> None:
    store.watermarks.advance(P, S, T, NOW)
    assert store.watermarks.get(P, S, "acct-2") is None
    assert store.watermarks.get(P, "bills", T) is None
    with pytest.raises(ValueError, match="naive"):
        store.watermarks.advance(P, S, T, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="after its end"):
        store.watermarks.window(P, S, T, lookback=timedelta(0), start=NOW, end=NOW - timedelta(days=1))


def test_watermark_ahead_of_the_clock_gives_an_empty_window(store: StateStore) -> None:
    store.watermarks.advance(P, S, T, NOW + timedelta(hours=1))  # another worker's clock runs fast
    window = store.watermarks.window(P, S, T, lookback=timedelta(minutes=10), now=NOW)
    assert window.start == window.end == NOW
