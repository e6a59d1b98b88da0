"""The ID map: which target record each source record became, and the write-intent protocol.

The vendors offer no idempotency keys, so "create exactly once" rests on this table. A caller
about to create a record in the target system first *claims* it, which durably records a
``pending`` intent; only then does it call the vendor, and afterwards it *completes* the claim
with the new target id. Two unique constraints make the database the referee:

* ``(pair, entity, source_tenant, source_id)``: one mapping per source record;
* ``(pair, entity, target_tenant, natural_key)``: one mapping per natural key in the target, so
  two source records that would create the same target record cannot both go ahead.

Typical use in an upsert step::

    claim = store.id_map.claim(pair, "bill", src_tenant, src_id, tgt_tenant, nk, owner)
    if claim.outcome == "synced":      # already mapped: update if the fingerprint changed
        ...
    elif claim.outcome == "busy":      # another run holds a live lease: skip, a later run retries
        ...
    elif claim.outcome == "conflict":  # natural key taken by another source record: dead-letter
        ...
    else:                              # "claimed", or "recovering" after a crash
        found = target.find_by_natural_key(nk) if claim.outcome == "recovering" else None
        try:
            target_id = found or target.create(record)
        except RecordRejectedError:
            store.id_map.release(pair, "bill", src_tenant, src_id, owner=owner)
            raise
        store.id_map.complete(pair, "bill", src_tenant, src_id, target_id, fingerprint)

``owner`` is the claim's fencing token: unique per writer (task try *and* worker thread), so a
live sibling sees ``busy``, never ``recovering``. The token is checked again right before the
vendor call (:meth:`IdMap.renew`, which also restarts the lease, so the lease outlives any call
the HTTP core can make) and on :meth:`IdMap.complete`. A writer whose call definitively ended
without a record (a lost answer it could not confirm, a transient failure) calls
:meth:`IdMap.abandon`: the intent stays, with its natural key and fingerprint, and the next
writer takes it over at once and recovers by looking that key up in the target.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from airflow_provider_mlconnector.state import schema
from airflow_provider_mlconnector.state.db import Database, rows_for_records
from airflow_provider_mlconnector.state.errors import ClaimLostError, IdMapConflictError, StateError
from airflow_provider_mlconnector.state.schema import TextEnum, utcnow

log = logging.getLogger(__name__)

_T = schema.id_map
# Each round either settles the claim or observed another writer change the row; a handful of
# rounds only runs out under pathological contention.
_MAX_ROUNDS = 5


class MappingStatus(TextEnum):
    """State of an ID-map row."""

    PENDING = "pending"
    SYNCED = "synced"


class ClaimOutcome(TextEnum):
    """What a :meth:`IdMap.claim` caller may do next (compares equal to its string value)."""

    CLAIMED = "claimed"  # fresh intent: create the record
    RECOVERING = "recovering"  # an earlier intent exists: look up by natural key, create if absent
    BUSY = "busy"  # another owner holds a live lease: do not create
    SYNCED = "synced"  # already mapped: do not create
    CONFLICT = "conflict"  # the natural key is mapped to another source record: do not create


@dataclass(frozen=True)
class IdMapping:
    """One row of the ID map."""

    pair: str
    entity: str
    source_tenant: str
    source_id: str
    target_tenant: str
    target_id: str | None
    natural_key: str | None
    fingerprint: str | None
    #: the target's revision of the record as this integration last wrote it (QuickBooks' SyncToken)
    target_version: str | None
    #: the source's revision in its listing as last synced (BigCommerce's ``date_modified``)
    source_version: str | None
    status: MappingStatus
    claimed_by: str | None
    claimed_at: datetime | None
    last_synced_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RowMapping) -> IdMapping:
        values = {field.name: row[field.name] for field in dataclasses.fields(cls)}
        values["status"] = MappingStatus(values["status"])
        return cls(**values)


@dataclass(frozen=True)
class Claim:
    """The answer to :meth:`IdMap.claim`; ``mapping`` is the row as it stands after the claim."""

    outcome: ClaimOutcome
    mapping: IdMapping

    @property
    def may_write(self) -> bool:
        """True when this caller owns the intent (``claimed`` or ``recovering``)."""
        return self.outcome in (ClaimOutcome.CLAIMED, ClaimOutcome.RECOVERING)


class Intent(NamedTuple):
    """One record of a batched claim, renewal or completion (:meth:`IdMap.claim_many` and co.)."""

    source_id: str
    owner: str
    natural_key: str | None = None
    fingerprint: str | None = None
    target_id: str | None = None
    target_version: str | None = None
    source_version: str | None = None


def content_fingerprint(record: Any) -> str:
    """A stable SHA-256 of a JSON-able record, to skip writing records that did not change."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _source(pair: str, entity: str, source_tenant: str, source_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        _T.c.pair == pair,
        _T.c.entity == entity,
        _T.c.source_tenant == source_tenant,
        _T.c.source_id == source_id,
    )


def _held_by(pair: str, entity: str, source_tenant: str, source_id: str, owner: str) -> sa.ColumnElement[bool]:
    """The record's row while ``owner`` holds its pending claim (the compare of every compare-and-set)."""
    return sa.and_(
        _source(pair, entity, source_tenant, source_id),
        _T.c.status == MappingStatus.PENDING.value,
        _T.c.claimed_by == owner,
    )


def _fetch(conn: Connection, where: sa.ColumnElement[bool], *, lock: bool = False) -> IdMapping | None:
    query = sa.select(_T).where(where).order_by(_T.c.id).limit(1)
    if lock:
        query = query.with_for_update()  # a no-op on SQLite, whose write transactions are exclusive
    row = conn.execute(query).mappings().first()
    return IdMapping.from_row(row) if row is not None else None


def _equal_or_null(column: sa.Column[Any], value: Any) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


class IdMap:
    """Source-to-target ID mappings with a claim/complete protocol that prevents double creates."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ------------------------------------------------------------------ reads

    def get(self, pair: str, entity: str, source_tenant: str, source_id: str) -> IdMapping | None:
        """The mapping of one source record, pending or synced."""
        with self._db.read() as conn:
            return _fetch(conn, _source(pair, entity, source_tenant, source_id))

    def get_many(self, pair: str, entity: str, source_tenant: str, source_ids: Iterable[str]) -> dict[str, IdMapping]:
        """The mappings of many source records, by source id, in one query per ``IN_CHUNK`` ids."""
        scope = sa.and_(_T.c.pair == pair, _T.c.entity == entity, _T.c.source_tenant == source_tenant)
        found: dict[str, IdMapping] = {}
        with self._db.read() as conn:
            for row in rows_for_records(conn, _T, scope, source_ids):
                found.setdefault(str(row["source_id"]), IdMapping.from_row(row))
        return found

    def get_by_target(self, pair: str, entity: str, target_tenant: str, target_id: str) -> IdMapping | None:
        """The mapping that points at a target record (the oldest, if several sources merged into it)."""
        where = sa.and_(
            _T.c.pair == pair,
            _T.c.entity == entity,
            _T.c.target_tenant == target_tenant,
            _T.c.target_id == target_id,
        )
        with self._db.read() as conn:
            return _fetch(conn, where)

    def get_by_natural_key(self, pair: str, entity: str, target_tenant: str, natural_key: str) -> IdMapping | None:
        """The mapping that owns a natural key in the target tenant."""
        where = sa.and_(
            _T.c.pair == pair,
            _T.c.entity == entity,
            _T.c.target_tenant == target_tenant,
            _T.c.natural_key == natural_key,
        )
        with self._db.read() as conn:
            return _fetch(conn, where)

    def list(self, pair: str, entity: str, source_tenant: str | None = None) -> builtins.list[IdMapping]:
        """All mappings of one entity, oldest first, for reports."""
        query = sa.select(_T).where(_T.c.pair == pair, _T.c.entity == entity).order_by(_T.c.id)
        if source_tenant is not None:
            query = query.where(_T.c.source_tenant == source_tenant)
        with self._db.read() as conn:
            return [IdMapping.from_row(row) for row in conn.execute(query).mappings()]

    # ------------------------------------------------------------------ write intent

    def claim(
        self,
        pair: str,
        entity: str,
        source_tenant: str,
        source_id: str,
        target_tenant: str,
        natural_key: str | None,
        owner: str,
        lease_seconds: float = 900,
        *,
        fingerprint: str | None = None,
    ) -> Claim:
        """Record the intent to create a source record in the target, before calling the vendor.

        :param natural_key: the target-side identity (e.g. ``"bill_number|vendor"``); ``None``
            when the entity has none, which gives up the cross-record duplicate guard.
        :param owner: who claims, stable across retries of the same task.
        :param lease_seconds: how old another owner's pending claim must be before it is taken over.
        :param fingerprint: of the payload about to be written, kept with the intent so that a
            recovery can tell whether what it finds in the target is what was sent.
        """
        for _ in range(_MAX_ROUNDS):
            existing = self.get(pair, entity, source_tenant, source_id)
            if existing is None:
                claim = self._insert_intent(
                    pair, entity, source_tenant, source_id, target_tenant, natural_key, owner, fingerprint
                )
            elif existing.status is MappingStatus.SYNCED:
                return Claim(ClaimOutcome.SYNCED, existing)
            elif existing.claimed_by != owner and not _lease_expired(existing, lease_seconds):
                return Claim(ClaimOutcome.BUSY, existing)
            else:
                claim = self._take_over(existing, owner)
            if claim is not None:
                return claim
        raise StateError(f"could not claim {pair}/{entity}/{source_tenant}/{source_id}: row kept changing")

    def _insert_intent(
        self,
        pair: str,
        entity: str,
        source_tenant: str,
        source_id: str,
        target_tenant: str,
        natural_key: str | None,
        owner: str,
        fingerprint: str | None,
    ) -> Claim | None:
        values = _intent_values(
            pair, entity, source_tenant, target_tenant, Intent(source_id, owner, natural_key, fingerprint)
        )
        try:
            with self._db.write() as conn:
                conn.execute(sa.insert(_T).values(**values))
        except IntegrityError:
            # Either another writer inserted this very record first (the next round reads its
            # row), or the natural key already belongs to a different source record.
            if self.get(pair, entity, source_tenant, source_id) is not None or natural_key is None:
                return None
            other = self.get_by_natural_key(pair, entity, target_tenant, natural_key)
            return Claim(ClaimOutcome.CONFLICT, other) if other is not None else None
        return Claim(ClaimOutcome.CLAIMED, IdMapping(**{**values, "status": MappingStatus.PENDING}))

    def claim_many(
        self, pair: str, entity: str, source_tenant: str, target_tenant: str, intents: Sequence[Intent]
    ) -> builtins.list[Claim]:
        """:meth:`claim` for many records (a bulk create's), in the order of ``intents``.

        Records the ID map has never seen, the usual case, are claimed in one transaction. Any
        other record (a row exists: synced, busy or to recover), and all of them when that one
        insert collides with a concurrent writer or a natural key, go through :meth:`claim` one
        by one: the batch changes how many commits a claim costs, never what it answers.
        """
        known = self.get_many(pair, entity, source_tenant, [i.source_id for i in intents])
        fresh = [i for i in intents if i.source_id not in known]
        claims: dict[str, Claim] = {}
        if fresh and len({i.source_id for i in fresh}) == len(fresh):
            rows = [_intent_values(pair, entity, source_tenant, target_tenant, i) for i in fresh]
            try:
                with self._db.write() as conn:
                    conn.execute(sa.insert(_T), rows)
            except IntegrityError:
                pass  # someone raced one of them, or a key is taken: each is claimed alone below
            else:
                claims = {
                    str(row["source_id"]): Claim(
                        ClaimOutcome.CLAIMED, IdMapping(**{**row, "status": MappingStatus.PENDING})
                    )
                    for row in rows
                }
        return [
            claims.get(i.source_id)
            or self.claim(
                pair,
                entity,
                source_tenant,
                i.source_id,
                target_tenant,
                i.natural_key,
                i.owner,
                fingerprint=i.fingerprint,
            )
            for i in intents
        ]

    def _take_over(self, existing: IdMapping, owner: str) -> Claim | None:
        # Compare-and-set on the claim we saw: if two takers race, exactly one UPDATE matches.
        now = utcnow()
        where = sa.and_(
            _source(existing.pair, existing.entity, existing.source_tenant, existing.source_id),
            _T.c.status == MappingStatus.PENDING.value,
            _equal_or_null(_T.c.claimed_by, existing.claimed_by),
            _equal_or_null(_T.c.claimed_at, existing.claimed_at),
        )
        with self._db.write() as conn:
            result = conn.execute(sa.update(_T).where(where).values(claimed_by=owner, claimed_at=now, updated_at=now))
        if result.rowcount != 1:
            return None
        if existing.claimed_by != owner:
            log.warning(
                "taking over the expired claim of %s on %s/%s/%s/%s",
                existing.claimed_by,
                existing.pair,
                existing.entity,
                existing.source_tenant,
                existing.source_id,
            )
        mapping = dataclasses.replace(existing, claimed_by=owner, claimed_at=now, updated_at=now)
        return Claim(ClaimOutcome.RECOVERING, mapping)

    def complete(
        self,
        pair: str,
        entity: str,
        source_tenant: str,
        source_id: str,
        target_id: str,
        fingerprint: str | None,
        *,
        owner: str | None = None,
        target_version: str | None = None,
        source_version: str | None = None,
    ) -> IdMapping:
        """Mark a claimed record as created: store its target id and release the claim.

        Idempotent for the same ``target_id``. Raises :class:`IdMapConflictError` if the record is
        already mapped to a *different* target id (a duplicate now exists in the target), and
        :class:`StateError` if there is no row (the intent was released meanwhile). With
        ``owner`` (the fencing token), raises :class:`ClaimLostError` unless that owner still
        holds the pending claim.
        """
        now = utcnow()
        with self._db.write() as conn:
            existing = _fetch(conn, _source(pair, entity, source_tenant, source_id), lock=True)
            if existing is None:
                raise StateError(
                    f"no intent recorded for {pair}/{entity}/{source_tenant}/{source_id} "
                    f"(target id {target_id}); record it with record()"
                )
            if owner is not None and (existing.status is not MappingStatus.PENDING or existing.claimed_by != owner):
                raise ClaimLostError(
                    f"{pair}/{entity}/{source_tenant}/{source_id}: the claim of {owner} was taken over "
                    f"by {existing.claimed_by or 'a completed write'}"
                )
            if existing.status is MappingStatus.SYNCED and existing.target_id != target_id:
                raise IdMapConflictError(
                    f"{pair}/{entity}/{source_tenant}/{source_id} is already mapped to "
                    f"{existing.target_id}; {target_id} is probably a duplicate in the target",
                    existing=existing,
                )
            where = _source(pair, entity, source_tenant, source_id)
            conn.execute(
                sa.update(_T)
                .where(where)
                .values(**_synced_values(target_id, fingerprint, now, target_version, source_version))
            )
            mapping = _fetch(conn, where)
        assert mapping is not None  # written in this very transaction
        return mapping

    def complete_many(
        self, pair: str, entity: str, source_tenant: str, done: Sequence[Intent]
    ) -> dict[str, StateError]:
        """:meth:`complete` (with its owner) for many created records in one transaction.

        Each row is completed only while its owner still holds the pending claim (compare and
        set). A record for which that fails is completed alone by :meth:`complete`, and what it
        raises (:class:`ClaimLostError`, :class:`IdMapConflictError`, :class:`StateError`) is
        returned by source id; the others are synced.
        """
        now = utcnow()
        missed = []
        with self._db.write() as conn:
            for item in done:
                where = _held_by(pair, entity, source_tenant, item.source_id, item.owner)
                changes = _synced_values(
                    item.target_id, item.fingerprint, now, item.target_version, item.source_version
                )
                if conn.execute(sa.update(_T).where(where).values(**changes)).rowcount != 1:
                    missed.append(item)
        failures: dict[str, StateError] = {}
        for item in missed:
            assert item.target_id is not None
            try:
                self.complete(
                    pair,
                    entity,
                    source_tenant,
                    item.source_id,
                    item.target_id,
                    item.fingerprint,
                    owner=item.owner,
                    target_version=item.target_version,
                    source_version=item.source_version,
                )
            except StateError as exc:
                failures[item.source_id] = exc
        return failures

    def renew_many(self, pair: str, entity: str, source_tenant: str, intents: Sequence[Intent]) -> set[str]:
        """:meth:`renew` for many records in one transaction: the source ids whose claim is still ours.

        A natural key taken meanwhile rolls the batch back and renews one by one, so that
        :meth:`renew` raises :class:`IdMapConflictError` for exactly that record.
        """
        now = utcnow()
        ours: set[str] = set()
        try:
            with self._db.write() as conn:
                for item in intents:
                    where = _held_by(pair, entity, source_tenant, item.source_id, item.owner)
                    changes = {
                        "claimed_at": now,
                        "updated_at": now,
                        "natural_key": item.natural_key,
                        "fingerprint": item.fingerprint,
                    }
                    if conn.execute(sa.update(_T).where(where).values(**changes)).rowcount == 1:
                        ours.add(item.source_id)
        except IntegrityError:
            kept = {
                i.source_id
                for i in intents
                if self.renew(
                    pair,
                    entity,
                    source_tenant,
                    i.source_id,
                    owner=i.owner,
                    natural_key=i.natural_key,
                    fingerprint=i.fingerprint,
                )
            }
            return kept
        return ours

    def renew(
        self,
        pair: str,
        entity: str,
        source_tenant: str,
        source_id: str,
        *,
        owner: str,
        natural_key: str | None,
        fingerprint: str | None,
    ) -> bool:
        """Right before the vendor call: check ``owner`` still holds the claim and restart its lease.

        Also records the natural key and fingerprint about to be written (a recovery may have
        found the source record changed since the intent was first recorded). Returns False
        when the claim was lost; raises :class:`IdMapConflictError` when the new natural key is
        already another source record's.
        """
        where = _held_by(pair, entity, source_tenant, source_id, owner)
        now = utcnow()
        changes = {"claimed_at": now, "updated_at": now, "natural_key": natural_key, "fingerprint": fingerprint}
        try:
            with self._db.write() as conn:
                return bool(conn.execute(sa.update(_T).where(where).values(**changes)).rowcount == 1)
        except IntegrityError:
            raise IdMapConflictError(
                f"natural key {natural_key!r} of {pair}/{entity} is already mapped to another source record"
            ) from None

    def abandon(self, pair: str, entity: str, source_tenant: str, source_id: str, *, owner: str) -> bool:
        """The owner's call ended without a confirmed record: keep the intent, end the lease now.

        The next writer (a task retry, the next run) takes it over at once and recovers it by
        natural key; nobody waits for the lease to run out. Returns whether the claim was ours.
        """
        where = _held_by(pair, entity, source_tenant, source_id, owner)
        with self._db.write() as conn:
            return bool(conn.execute(sa.update(_T).where(where).values(claimed_at=None)).rowcount == 1)

    def note_source_versions(self, pair: str, entity: str, source_tenant: str, versions: Mapping[str, str]) -> None:
        """Record the source revision of synced records found unchanged (one transaction), so the
        next run need not read what their listing lacks."""
        if not versions:
            return
        with self._db.write() as conn:
            for source_id, version in versions.items():
                where = sa.and_(
                    _source(pair, entity, source_tenant, source_id), _T.c.status == MappingStatus.SYNCED.value
                )
                conn.execute(
                    sa.update(_T)
                    .where(where, _T.c.source_version.is_distinct_from(version))
                    .values(source_version=version)
                )

    def hold(
        self, pair: str, entity: str, source_tenant: str, source_id: str, *, owner: str, lease_seconds: float = 900
    ) -> bool:
        """Take the lease to change a synced record in the target: one writer at a time.

        An update may apply a change rather than restate the record (a refund taken off payments):
        two runs doing it at once would apply it twice. The lease is free when nobody holds it or
        the holder's ran out (a dead task); :meth:`record` gives it back, as does :meth:`let_go`.
        Returns whether ``owner`` holds it now.
        """
        now = utcnow()
        free = sa.or_(_T.c.claimed_at.is_(None), _T.c.claimed_at <= now - timedelta(seconds=lease_seconds))
        where = sa.and_(_source(pair, entity, source_tenant, source_id), _T.c.status == MappingStatus.SYNCED.value)
        with self._db.write() as conn:
            result = conn.execute(sa.update(_T).where(where, free).values(claimed_by=owner, claimed_at=now))
            return result.rowcount == 1

    def let_go(self, pair: str, entity: str, source_tenant: str, source_id: str, *, owner: str) -> bool:
        """Give back the update lease of :meth:`hold` (the update failed; the mapping is unchanged)."""
        where = sa.and_(_source(pair, entity, source_tenant, source_id), _T.c.claimed_by == owner)
        with self._db.write() as conn:
            return conn.execute(sa.update(_T).where(where).values(claimed_by=None, claimed_at=None)).rowcount == 1

    def reopen(self, pair: str, entity: str, source_tenant: str, source_id: str, *, target_id: str, owner: str) -> bool:
        """Make a synced row ``owner``'s pending claim again, when its target record is gone.

        For a shared natural key whose record was renamed or deleted in the target: the key is free,
        and whoever reopens it creates the next record. Compare-and-set on the target id seen, so
        of two writers that found it free exactly one gets it. Returns whether ``owner`` did.
        """
        now = utcnow()
        where = sa.and_(
            _source(pair, entity, source_tenant, source_id),
            _T.c.status == MappingStatus.SYNCED.value,
            _T.c.target_id == target_id,
        )
        values: dict[str, Any] = {"status": MappingStatus.PENDING.value, "target_id": None, "target_version": None}
        values |= {"claimed_by": owner, "claimed_at": now}
        with self._db.write() as conn:
            return conn.execute(sa.update(_T).where(where).values(**values, updated_at=now)).rowcount == 1

    def release(self, pair: str, entity: str, source_tenant: str, source_id: str, *, owner: str | None = None) -> bool:
        """Drop a pending intent after the create definitively failed (e.g. a validation error).

        Synced mappings are never touched. With ``owner``, only that owner's intent is dropped.
        Returns whether a row was deleted.
        """
        where = sa.and_(_source(pair, entity, source_tenant, source_id), _T.c.status == MappingStatus.PENDING.value)
        if owner is not None:
            where = sa.and_(where, _T.c.claimed_by == owner)
        with self._db.write() as conn:
            return conn.execute(sa.delete(_T).where(where)).rowcount == 1

    def record(
        self,
        pair: str,
        entity: str,
        source_tenant: str,
        source_id: str,
        target_tenant: str,
        target_id: str,
        natural_key: str | None,
        fingerprint: str | None,
        target_version: str | None = None,
        source_version: str | None = None,
    ) -> IdMapping:
        """Upsert a synced mapping: after matching an existing target record, or after an update.

        ``natural_key=None`` keeps the stored one; ``target_version`` is the revision the write left
        (``None``: unknown, e.g. a record found rather than written). Raises :class:`IdMapConflictError` when the
        natural key is already mapped to another source record.
        """
        for _ in range(_MAX_ROUNDS):
            try:
                return self._upsert_synced(
                    pair,
                    entity,
                    source_tenant,
                    source_id,
                    target_tenant,
                    target_id,
                    natural_key,
                    fingerprint,
                    target_version,
                    source_version,
                )
            except IntegrityError:
                if natural_key is None:
                    continue
                other = self.get_by_natural_key(pair, entity, target_tenant, natural_key)
                if other is not None and (other.source_tenant, other.source_id) != (source_tenant, source_id):
                    raise IdMapConflictError(
                        f"natural key {natural_key!r} of {pair}/{entity} in {target_tenant} is already "
                        f"mapped to source record {other.source_tenant}/{other.source_id}",
                        existing=other,
                    ) from None
        raise StateError(f"could not record {pair}/{entity}/{source_tenant}/{source_id}: row kept changing")

    def _upsert_synced(
        self,
        pair: str,
        entity: str,
        source_tenant: str,
        source_id: str,
        target_tenant: str,
        target_id: str,
        natural_key: str | None,
        fingerprint: str | None,
        target_version: str | None,
        source_version: str | None,
    ) -> IdMapping:
        now = utcnow()
        where = _source(pair, entity, source_tenant, source_id)
        synced = _synced_values(target_id, fingerprint, now, target_version, source_version)
        values: dict[str, Any] = {"target_tenant": target_tenant, **synced}
        with self._db.write() as conn:
            existing = _fetch(conn, where, lock=True)
            if existing is None:
                identity = {"pair": pair, "entity": entity, "source_tenant": source_tenant, "source_id": source_id}
                conn.execute(sa.insert(_T).values(**identity, **values, natural_key=natural_key, created_at=now))
            else:
                if existing.target_id not in (None, target_id):
                    log.warning(
                        "re-mapping %s/%s/%s/%s from %s to %s",
                        pair,
                        entity,
                        source_tenant,
                        source_id,
                        existing.target_id,
                        target_id,
                    )
                # natural_key=None keeps the stored key (callers updating a record may not know it)
                key = {"natural_key": natural_key} if natural_key is not None else {}
                conn.execute(sa.update(_T).where(where).values(**values, **key))
            mapping = _fetch(conn, where)
        assert mapping is not None  # written in this very transaction
        return mapping


def _intent_values(pair: str, entity: str, source_tenant: str, target_tenant: str, intent: Intent) -> dict[str, Any]:
    """The row of a fresh pending claim."""
    now = utcnow()
    return {
        "pair": pair,
        "entity": entity,
        "source_tenant": source_tenant,
        "source_id": intent.source_id,
        "target_tenant": target_tenant,
        "target_id": None,
        "natural_key": intent.natural_key,
        "fingerprint": intent.fingerprint,
        "target_version": None,
        "source_version": None,
        "status": MappingStatus.PENDING.value,
        "claimed_by": intent.owner,
        "claimed_at": now,
        "last_synced_at": None,
        "created_at": now,
        "updated_at": now,
    }


def _synced_values(
    target_id: str | None,
    fingerprint: str | None,
    now: datetime,
    target_version: str | None = None,
    source_version: str | None = None,
) -> dict[str, Any]:
    """What completing a claim writes: the target id (and both revisions), synced, the claim released."""
    return {
        "target_id": target_id,
        "fingerprint": fingerprint,
        "target_version": target_version,
        "source_version": source_version,
        "status": MappingStatus.SYNCED.value,
        "claimed_by": None,
        "claimed_at": None,
        "last_synced_at": now,
        "updated_at": now,
    }


def _lease_expired(mapping: IdMapping, lease_seconds: float) -> bool:
    if mapping.claimed_at is None:
        return True
    return utcnow() >= mapping.claimed_at + timedelta(seconds=lease_seconds)
