"""Incremental-read watermarks: per (pair, stream, tenant), the point up to which data is synced.

Use::

    window = store.watermarks.window(pair, "invoices", tenant, lookback=timedelta(minutes=10))
    records = source.read(updated_since=window.start, updated_before=window.end)
    ...write them...
    store.watermarks.advance(pair, "invoices", tenant, window.end)  # only after the writes succeeded

The lookback re-reads a little overlap on every run (vendors' ``updated_at`` clocks and indexes
lag); the ID map's fingerprints make re-reading cheap and harmless. ``advance`` keeps the maximum,
so a backfill of an old window can never rewind the live watermark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from airflow_provider_mlconnector.state import schema
from airflow_provider_mlconnector.state.db import Database
from airflow_provider_mlconnector.state.schema import utcnow

_T = schema.watermark


@dataclass(frozen=True)
class Window:
    """The time range one run should read. ``start=None`` means a full read."""

    start: datetime | None
    end: datetime
    is_backfill: bool


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name}={value!r} is naive: pass a timezone-aware (UTC) datetime")


class Watermarks:
    """Per (pair, stream, tenant) UTC watermarks that only move forward."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _key(self, pair: str, stream: str, tenant: str) -> sa.ColumnElement[bool]:
        return sa.and_(_T.c.pair == pair, _T.c.stream == stream, _T.c.tenant == tenant)

    def get(self, pair: str, stream: str, tenant: str) -> datetime | None:
        """The current watermark, or ``None`` before the first successful run."""
        with self._db.read() as conn:
            return conn.execute(sa.select(_T.c.value).where(self._key(pair, stream, tenant))).scalar()

    def advance(self, pair: str, stream: str, tenant: str, value: datetime) -> datetime:
        """Move the watermark to ``value`` unless it is already later; return the stored value.

        Done as one atomic upsert keeping the maximum, so concurrent runs cannot rewind it either.
        """
        _require_aware("value", value)
        now = utcnow()
        insert = postgresql.insert(_T) if self._db.dialect == "postgresql" else sqlite.insert(_T)
        insert = insert.values(pair=pair, stream=stream, tenant=tenant, value=value, updated_at=now)
        # SQLite stores these UTC timestamps as fixed-width ISO text, so text order is time order.
        later = sa.case((insert.excluded.value > _T.c.value, insert.excluded.value), else_=_T.c.value)
        statement = insert.on_conflict_do_update(
            index_elements=[_T.c.pair, _T.c.stream, _T.c.tenant],
            set_={"value": later, "updated_at": now},
        )
        with self._db.write() as conn:
            conn.execute(statement)
            stored: datetime = conn.execute(sa.select(_T.c.value).where(self._key(pair, stream, tenant))).scalar_one()
        return stored

    def window(
        self,
        pair: str,
        stream: str,
        tenant: str,
        *,
        lookback: timedelta,
        start: datetime | None = None,
        end: datetime | None = None,
        now: datetime | None = None,
    ) -> Window:
        """The range to read now.

        With an explicit ``start`` and/or ``end`` (a backfill, or the run's data interval) those
        bounds are returned with ``is_backfill=True``; a missing ``end`` means now. Otherwise the
        window runs from the watermark minus ``lookback`` (``None``: never synced, read all) to now.
        """
        for name, value in (("start", start), ("end", end), ("now", now)):
            _require_aware(name, value)
        now = now or utcnow()
        if start is not None or end is not None:
            end = end or now
            if start is not None and start > end:
                raise ValueError(f"window start {start} is after its end {end}")
            return Window(start=start, end=end, is_backfill=True)
        mark = self.get(pair, stream, tenant)
        if mark is None:
            return Window(start=None, end=now, is_backfill=False)
        # A watermark ahead of this worker's clock (skew) must not produce an inverted window.
        return Window(start=min(mark - lookback, now), end=now, is_backfill=False)
