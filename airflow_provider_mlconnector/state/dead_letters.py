"""The dead-letter queue: records that could not be written, kept for a human or a replay.

A letter is *active* while ``open`` or ``replay_requested``; the database allows at most one
active letter per source record, so a rerun that fails the same record again updates it
(``attempts`` + 1) instead of adding a second row.

Replay: on-call runs ``dlq replay ID``, which only flags the letter ``replay_requested``. The
next DAG run (or one triggered with ``replay_dead_letters``) asks :meth:`replay_requested`,
re-reads each source record *by id* and sends it through the normal upsert path; on success it
calls :meth:`mark_replayed`, on failure :meth:`add` reopens the letter. Replaying is safe to
repeat because the upsert path goes through the ID map's claim protocol: a record created by an
earlier attempt is found there (or by its natural key) and is never created twice. The stored
``payload`` is redacted and only informs humans; it is never what gets written.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from airflow_provider_mlconnector.state import schema
from airflow_provider_mlconnector.state.db import Database, rows_for_records
from airflow_provider_mlconnector.state.errors import NotFoundInStateError, StateError
from airflow_provider_mlconnector.state.redaction import storable
from airflow_provider_mlconnector.state.schema import TextEnum, utcnow

_T = schema.dead_letter
_MAX_ROUNDS = 5


class LetterStatus(TextEnum):
    """Lifecycle of a dead letter."""

    OPEN = "open"
    REPLAY_REQUESTED = "replay_requested"
    REPLAYED = "replayed"
    RESOLVED = "resolved"


_ACTIVE = (LetterStatus.OPEN.value, LetterStatus.REPLAY_REQUESTED.value)


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered record."""

    id: int
    pair: str
    entity: str
    source_tenant: str
    source_id: str
    reason: str
    error_kind: str
    payload: dict[str, Any]
    status: LetterStatus
    attempts: int
    created_at: datetime
    updated_at: datetime
    last_run_id: str | None
    resolution_note: str | None

    @classmethod
    def from_row(cls, row: RowMapping) -> DeadLetter:
        values = {f.name: row[f.name] for f in dataclasses.fields(cls)}
        values["status"] = LetterStatus(values["status"])
        return cls(**values)

    @property
    def active(self) -> bool:
        """Still waiting for a fix or a replay."""
        return self.status.value in _ACTIVE


def _record(pair: str, entity: str, source_tenant: str, source_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        _T.c.pair == pair,
        _T.c.entity == entity,
        _T.c.source_tenant == source_tenant,
        _T.c.source_id == source_id,
    )


def _fetch(conn: Connection, where: sa.ColumnElement[bool], *, lock: bool = False) -> DeadLetter | None:
    query = sa.select(_T).where(where)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return DeadLetter.from_row(row) if row is not None else None


class DeadLetterQueue:
    """Records that cannot be written, with an on-call resolve/replay workflow."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        pair: str,
        entity: str,
        source_tenant: str,
        source_id: str,
        *,
        reason: str,
        error_kind: str,
        payload: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> DeadLetter:
        """Dead-letter a record, or update its active letter (attempts + 1, status back to open).

        :param reason: a sentence an accountant can act on ("GL account 4010 is not mapped").
        :param error_kind: ``unmapped_account``, ``missing_reference``, ``validation``,
            ``manual_reconciliation``...
        :param payload: the record as read, for humans; redacted before storage.
        """
        changes: dict[str, Any] = {
            "reason": reason,
            "error_kind": error_kind,
            "payload": storable(payload or {}),
            "status": LetterStatus.OPEN.value,
            "last_run_id": run_id,
        }
        active = sa.and_(_record(pair, entity, source_tenant, source_id), _T.c.status.in_(_ACTIVE))
        for _ in range(_MAX_ROUNDS):
            now = utcnow()
            try:
                with self._db.write() as conn:
                    existing = _fetch(conn, active, lock=True)
                    if existing is None:
                        letter_id = conn.execute(
                            sa.insert(_T)
                            .values(
                                pair=pair,
                                entity=entity,
                                source_tenant=source_tenant,
                                source_id=source_id,
                                attempts=1,
                                created_at=now,
                                updated_at=now,
                                **changes,
                            )
                            .returning(_T.c.id)
                        ).scalar_one()
                    else:
                        letter_id = existing.id
                        conn.execute(
                            sa.update(_T)
                            .where(_T.c.id == letter_id)
                            .values(attempts=_T.c.attempts + 1, updated_at=now, **changes)
                        )
                    letter = _fetch(conn, _T.c.id == letter_id)
            except IntegrityError:
                continue  # another run inserted the active letter first; update it next round
            assert letter is not None  # written in this very transaction
            return letter
        raise StateError(f"could not dead-letter {pair}/{entity}/{source_tenant}/{source_id}")

    def get(self, letter_id: int) -> DeadLetter | None:
        """One letter by id."""
        with self._db.read() as conn:
            return _fetch(conn, _T.c.id == letter_id)

    def list(self, status: LetterStatus | str | None = None, pair: str | None = None) -> builtins.list[DeadLetter]:
        """Letters, oldest first, optionally filtered."""
        query = sa.select(_T).order_by(_T.c.id)
        if status is not None:
            query = query.where(_T.c.status == LetterStatus(status).value)
        if pair is not None:
            query = query.where(_T.c.pair == pair)
        with self._db.read() as conn:
            return [DeadLetter.from_row(row) for row in conn.execute(query).mappings()]

    def open_for(self, pair: str, entity: str, source_tenant: str, source_id: str) -> DeadLetter | None:
        """The active letter of a record, if any (so a later success can close it)."""
        where = sa.and_(_record(pair, entity, source_tenant, source_id), _T.c.status.in_(_ACTIVE))
        with self._db.read() as conn:
            return _fetch(conn, where)

    def open_for_many(
        self, pair: str, entity: str, source_tenant: str, source_ids: Iterable[str]
    ) -> dict[str, DeadLetter]:
        """The active letters of many records, by source id, in one query per ``IN_CHUNK`` ids."""
        scope = sa.and_(
            _T.c.pair == pair, _T.c.entity == entity, _T.c.source_tenant == source_tenant, _T.c.status.in_(_ACTIVE)
        )
        found: dict[str, DeadLetter] = {}
        with self._db.read() as conn:
            for row in rows_for_records(conn, _T, scope, source_ids):
                found.setdefault(str(row["source_id"]), DeadLetter.from_row(row))
        return found

    def replay_requested(self, pair: str) -> builtins.list[DeadLetter]:
        """Letters of ``pair`` that on-call asked to replay, oldest first."""
        return self.list(status=LetterStatus.REPLAY_REQUESTED, pair=pair)

    def request_replay(self, ids: Iterable[int]) -> builtins.list[int]:
        """Flag open letters for replay by the next run; returns the ids that were flagged."""
        wanted = builtins.list(ids)
        if not wanted:
            return []
        where = sa.and_(_T.c.id.in_(wanted), _T.c.status == LetterStatus.OPEN.value)
        with self._db.write() as conn:
            flagged = conn.execute(
                sa.update(_T)
                .where(where)
                .values(status=LetterStatus.REPLAY_REQUESTED.value, updated_at=utcnow())
                .returning(_T.c.id)
            ).scalars()
            return sorted(flagged)

    def resolve(self, letter_id: int, note: str) -> DeadLetter:
        """Close an active letter by hand (fixed in the target, or not to be synced)."""
        return self._close(letter_id, LetterStatus.RESOLVED, note)

    def mark_replayed(self, letter_id: int) -> DeadLetter:
        """Close an active letter after the record was written successfully. Idempotent."""
        return self._close(letter_id, LetterStatus.REPLAYED, None)

    def _close(self, letter_id: int, status: LetterStatus, note: str | None) -> DeadLetter:
        with self._db.write() as conn:
            letter = _fetch(conn, _T.c.id == letter_id, lock=True)
            if letter is None:
                raise NotFoundInStateError(f"no dead letter with id {letter_id}")
            if letter.status is status:
                return letter
            if not letter.active:
                raise StateError(f"dead letter {letter_id} is already {letter.status.value}")
            changes: dict[str, Any] = {"status": status.value, "updated_at": utcnow()}
            if note is not None:
                changes["resolution_note"] = note
            conn.execute(sa.update(_T).where(_T.c.id == letter_id).values(**changes))
            closed = _fetch(conn, _T.c.id == letter_id)
        assert closed is not None
        return closed
