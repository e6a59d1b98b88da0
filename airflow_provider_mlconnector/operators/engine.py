"""The sync engine: extract, match and upsert for one :class:`~.pair.Entity` of a pair.

* **extract** reads the source for a window, adds the records waiting to be re-fetched by id
  (parked records and dead letters asked to be replayed), de-duplicates them by source id (a
  page that drifted lists a record twice) and cuts them into bounded batches;
* **match** decides per record, read-only: ``create``, ``match`` (found in the target by natural
  key), ``update``, ``unchanged``, ``retire``, ``skip``, ``quarantine`` (a dead letter) or
  ``wait`` (a reference is not synced yet: parked);
* **upsert** carries the decisions out. Every record ends written, unchanged, skipped (with a
  reason), parked or dead-lettered, and every action is one audit row.

Exactly once, fenced (no vendor offers idempotency keys): a create first *claims* the natural
key in the ID map with a token unique to this task try and worker, so a live sibling sees
``busy`` and never ``recovering``. Right before the vendor call the token is checked and the
lease restarted (the lease outlives any call the HTTP core can make); completion checks it
again. A claim left behind (a lost answer, a crash) is recovered by looking up the natural key
*stored with the claim*, and what is found is compared with the current payload: unchanged, it
is adopted; changed, it is updated while the target allows and dead-lettered as
``manual_reconciliation`` otherwise. Natural-key conflicts (a rename onto a sibling's name) are
found before any write and dead-lettered.

Per-record isolation: any error mapping one record and any non-transient vendor error writing
it dead-letters that record; the batch goes on. Transient errors fail the task at the end
(:class:`SyncIncompleteError`) so Airflow retries it, and the retry resumes through the same
protocol.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_mlconnector.core.fence import fenced
from airflow_provider_mlconnector.exceptions import (
    ApiError,
    AuthError,
    FatalApiError,
    NotFoundError,
    NotLinkedYetError,
    RecordError,
    RetryableApiError,
    WriteOutcomeUnknownError,
)
from airflow_provider_mlconnector.operators.pair import SHARED_PAIR, Ctx, Entity, Pair, Record, Retire, Skip
from airflow_provider_mlconnector.state.audit import AuditAction
from airflow_provider_mlconnector.state.dead_letters import LetterStatus
from airflow_provider_mlconnector.state.errors import ClaimLostError, IdMapConflictError, StateError
from airflow_provider_mlconnector.state.id_map import ClaimOutcome, Intent, MappingStatus, content_fingerprint
from airflow_provider_mlconnector.state.stream import Stream

if TYPE_CHECKING:
    from airflow_provider_mlconnector.hooks.base import MLConnectorHook
    from airflow_provider_mlconnector.state import StateStore
    from airflow_provider_mlconnector.state.dead_letters import DeadLetter
    from airflow_provider_mlconnector.state.id_map import Claim, IdMapping
    from airflow_provider_mlconnector.state.watermarks import Window

log = logging.getLogger(__name__)

#: stored with a dead letter, so an unchanged record the vendor refused is not resent until replayed.
FINGERPRINT_KEY = "_mlconnector_fingerprint"
#: the ID map's fingerprint of a record this integration retired (archived, voided, deleted).
RETIRED = "retired"
#: dead-letter kinds that are not errors: the record is re-fetched by id every run until it resolves.
PARKED_KINDS = frozenset({"not_linked_yet", "busy_elsewhere"})
#: what one bad source record raises while it is mapped (a missing field, "N/A" as an amount).
MALFORMED = (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError)

Action = Literal["create", "match", "update", "unchanged", "retire", "skip", "quarantine", "wait"]


@dataclass
class RunInfo:
    """Who is writing: claim tokens and audit rows."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int = 1
    dry_run: bool = False

    def claim_token(self) -> str:
        """A fencing token unique to this task try *and* this claim (so, to the worker thread)."""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}/{self.map_index}/try{self.try_number}/{uuid.uuid4().hex}"

    def as_audit(self) -> dict[str, Any]:
        return {"dag_id": self.dag_id, "run_id": self.run_id, "task_id": self.task_id, "try_number": self.try_number}


@dataclass
class Decision:
    """What to do with one source record; JSON-able so it can travel by XCom."""

    source_id: str
    action: Action
    natural_key: str | None = None
    fingerprint: str | None = None
    target_id: str | None = None
    payload: Record | None = None
    reason: str | None = None
    error_kind: str | None = None
    record: Record | None = None
    #: the source's revision in its listing (``Entity.source_version``), kept in the ID map once synced
    source_version: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(**data)


#: decisions that call the target vendor; everything else is settled in the state store alone.
VENDOR_WRITES = frozenset({"create", "update", "retire"})
#: decisions settled with one audit row and nothing else, and what each counts as
QUIET = {"unchanged": "unchanged", "skip": "skipped"}


@dataclass
class Plan:
    """What a run of one entity must still write, and the counts of what it settled already."""

    counts: Counter[str]
    write_batches: list[list[Decision]]


@dataclass
class BatchResult:
    """Per-batch counts, merged into the run summary."""

    counts: Counter[str] = field(default_factory=Counter)
    retry_later: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "retry_later": self.retry_later}


def streams_of(pair: Pair, source: MLConnectorHook, target: MLConnectorHook, store: StateStore) -> dict[str, Stream]:
    """Every entity's stream, tenants read from the pair's two hooks (reverse entities swap them)."""
    tenants = {False: (source, target), True: (target, source)}
    streams = {}
    for entity in pair.entities:
        src, tgt = tenants[entity.reverse]
        streams[entity.name] = Stream(
            store, pair.name, entity.name, src.conn_type, tgt.conn_type, src.tenant, tgt.tenant
        )
    return streams


def shared_keys(stream: Stream, entity: Entity) -> Stream | None:
    """The cross-pair claims on ``entity``'s natural keys (:class:`~.pair.SharedKey`), or None.

    A stream of the ID map like any other, keyed by the natural key itself in the target tenant:
    its claim protocol (fresh, busy, recovering by lookup, synced) is the one every create uses.
    """
    if entity.shared is None:
        return None
    tenant, system = stream.target_tenant, stream.target_system
    return Stream(stream.store, SHARED_PAIR, entity.shared.name, system, system, tenant, tenant)


class SyncEngine:
    """Runs extract / match / upsert for one entity of a pair within one task."""

    def __init__(
        self,
        pair: Pair,
        entity: Entity,
        source: MLConnectorHook,
        target: MLConnectorHook,
        store: StateStore,
        run: RunInfo,
    ) -> None:
        """:param source: hook of the *pair's* source system; ``target`` of its target system."""
        self.pair = pair
        self.entity = entity
        self.run = run
        self.streams = streams_of(pair, source, target, store)
        self.stream = self.streams[entity.name]
        self.shared = shared_keys(self.stream, entity)
        # Within this entity's flow: reverse entities read the pair's target and write its source.
        self.reader, self.writer = (target, source) if entity.reverse else (source, target)
        self._reference: Any = None
        self._prepared = False
        self._resolved: dict[tuple[str, str], str] = {}  # references resolved by this task (Ctx)
        #: listed records the last :meth:`extract` found at the source revision of their sync
        self.unchanged: list[Decision] = []

    # --- extract --------------------------------------------------------------------------
    def extract(self, window: Window, replay_ids: Iterable[int] = ()) -> list[list[Record]]:
        """The window's changed records plus the ones waiting by id, de-duplicated, in batches."""
        records: dict[str, Record] = {}
        for record in self.entity.read(self.reader, window):
            records[self._source_id(record)] = record  # the later listing is the fresher copy
        self.unchanged = []
        if self.entity.enrich is not None:
            records = self._enriched(records, full=window.start is None)
        for letter in self._letters_to_refetch(replay_ids):
            if letter.source_id not in records:
                fresh = self._fetch(letter.source_id)
                if fresh is not None:
                    records[letter.source_id] = fresh
                elif not self.run.dry_run:
                    self.stream.store.dead_letters.resolve(letter.id, "the source record no longer exists")
        size = self.entity.batch_size
        values = list(records.values())
        return [values[i : i + size] for i in range(0, len(values), size)]

    def _enriched(self, listed: dict[str, Record], *, full: bool) -> dict[str, Record]:
        """The listed records completed by ``Entity.enrich``, except those still at the revision
        last synced (kept in :attr:`unchanged`, decided without reading anything more). A full
        read (first run, ``full_resync``) completes them all."""
        kept = {} if full else self._unchanged_since_synced(listed)
        self.unchanged = [
            Decision(source_id, "unchanged", target_id=target_id, reason="unchanged at the source since its sync")
            for source_id, target_id in kept.items()
        ]
        to_read = [record for source_id, record in listed.items() if source_id not in kept]
        assert self.entity.enrich is not None
        return {self._source_id(record): record for record in self.entity.enrich(self.reader, to_read)}

    def _unchanged_since_synced(self, listed: dict[str, Record]) -> dict[str, str]:
        """Source id -> target id of the listed records at the source revision their sync recorded
        (and with no open dead letter: those are decided again)."""
        ids = list(listed)
        mappings, letters = self.stream.mappings(ids), self.stream.open_letters(ids)
        kept = {}
        for source_id, record in listed.items():
            mapping = mappings.get(source_id)
            if mapping is None or mapping.status is not MappingStatus.SYNCED or source_id in letters:
                continue
            if mapping.target_id and mapping.source_version and mapping.source_version == self._listed_version(record):
                kept[source_id] = mapping.target_id
        return kept

    def _listed_version(self, record: Record) -> str | None:
        if self.entity.source_version is None:
            return None
        try:
            return self.entity.source_version(record)
        except MALFORMED:
            return None

    def _fetch(self, source_id: str) -> Record | None:
        try:
            return self.entity.fetch(self.reader, source_id)
        except NotFoundError:
            return None

    def _letters_to_refetch(self, replay_ids: Iterable[int]) -> list[DeadLetter]:
        letters = self.stream.store.dead_letters
        # Only this stream's letters: another entity's are flagged when its own plan runs (after
        # this one may have re-dead-lettered them, so they are not flagged twice).
        asked = [
            letter
            for i in sorted({int(i) for i in replay_ids})
            if (letter := letters.get(i)) is not None and letter.active and self._is_ours(letter)
        ]
        if self.run.dry_run:
            # Read-only: show what a replay would do without flagging anything.
            return [*self.stream.letters_to_replay(), *asked]
        letters.request_replay([letter.id for letter in asked])
        return self.stream.letters_to_replay()

    def _is_ours(self, letter: DeadLetter) -> bool:
        return (letter.pair, letter.entity, letter.source_tenant) == (
            self.stream.pair,
            self.stream.entity,
            self.stream.source_tenant,
        )

    def _source_id(self, record: Record) -> str:
        try:
            return self.entity.source_id(record)
        except MALFORMED:
            digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]
            return f"malformed-{digest}"

    # --- match ----------------------------------------------------------------------------
    def match(self, records: list[Record]) -> list[Decision]:
        """Read-only decisions for a batch (safe in a dry run)."""
        ids = [self._source_id(record) for record in records]
        known = Known(self.stream.mappings(ids), self.stream.open_letters(ids))  # two queries, not two per record
        decisions = [self._decide(record, known) for record in records]
        self._match_in_target(decisions)
        return decisions

    @property
    def reference(self) -> Any:
        if not self._prepared and self.entity.prepare is not None:
            self._reference = self.entity.prepare(self.reader, self.writer)
        self._prepared = True
        return self._reference

    def _decide(self, record: Record, known: Known) -> Decision:
        decision = self._decide_record(record, known)
        decision.source_version = self._listed_version(record)
        return decision

    def _decide_record(self, record: Record, known: Known) -> Decision:
        source_id = self._source_id(record)
        mapping = known.mappings.get(source_id)
        synced = mapping if mapping is not None and mapping.status is MappingStatus.SYNCED else None
        ctx = Ctx(self.reader, self.writer, self.reference, synced is not None, self.streams, self._resolved)
        try:
            if source_id.startswith("malformed-"):
                raise KeyError("the record has no id")
            outcome = self.entity.transform(record, ctx)
            if isinstance(outcome, Skip):
                return Decision(source_id, "skip", reason=outcome.reason, target_id=_target_of(synced))
            if isinstance(outcome, Retire):
                return self._retire_decision(source_id, outcome, synced)
            natural_key = self.entity.natural_key(record, outcome)
        except NotLinkedYetError as exc:
            return Decision(source_id, "wait", reason=exc.reason, error_kind="not_linked_yet", record=record)
        except RecordError as exc:
            return Decision(source_id, "quarantine", reason=exc.reason, error_kind=exc.kind, record=record)
        except (AuthError, RetryableApiError):
            raise  # not this record's fault: the task fails and Airflow retries it
        except FatalApiError as exc:
            return Decision(source_id, "quarantine", reason=str(exc), error_kind="rejected", record=record)
        except MALFORMED as exc:
            reason = f"malformed source record ({type(exc).__name__}: {exc}); fix it at the source"
            return Decision(source_id, "quarantine", reason=reason, error_kind="malformed", record=record)
        return self._write_decision(source_id, record, outcome, natural_key, synced, known.letters.get(source_id))

    def _retire_decision(self, source_id: str, retire: Retire, synced: IdMapping | None) -> Decision:
        if synced is None:
            return Decision(source_id, "skip", reason=f"{retire.reason}, and it was never synced")
        if synced.fingerprint == RETIRED:
            return Decision(source_id, "unchanged", target_id=synced.target_id, reason=retire.reason)
        return Decision(source_id, "retire", target_id=synced.target_id, reason=retire.reason, fingerprint=RETIRED)

    def _write_decision(
        self,
        source_id: str,
        record: Record,
        payload: Record,
        natural_key: str,
        synced: IdMapping | None,
        letter: DeadLetter | None,
    ) -> Decision:
        fingerprint = content_fingerprint(payload)
        decision = Decision(source_id, "create", natural_key, fingerprint, payload=payload, record=record)
        if (rejected := _still_rejected(letter, fingerprint)) is not None:
            # The vendor already refused exactly this content and nobody asked for a replay.
            decision.action, decision.reason, decision.error_kind = "quarantine", rejected.reason, rejected.error_kind
            return decision
        if synced is not None:
            decision.target_id = synced.target_id
            decision.action = "unchanged" if synced.fingerprint == fingerprint else "update"
        if decision.action != "unchanged" and (conflict := self._key_taken(decision)) is not None:
            decision.action, decision.reason, decision.error_kind = "quarantine", conflict, "duplicate_natural_key"
        return decision

    def _index(self, payloads: list[Record]) -> Mapping[str, Record] | None:
        """The target records of these payloads' keys in one lookup, or None: ``find`` each."""
        if self.entity.reference_index is not None:
            return self.entity.reference_index(self.reference, payloads)
        return self.entity.index(self.writer, payloads) if self.entity.index is not None else None

    def _key_taken(self, decision: Decision) -> str | None:
        """Why the decision's natural key belongs to another source record, if it does."""
        assert decision.natural_key is not None
        owner = self.stream.owner_of_key(decision.natural_key)
        if owner is None or owner.source_id == decision.source_id:
            return None
        return (
            f"{self.stream.source_system} record {owner.source_id} already maps to the same "
            f"{self.stream.target_system} {self.entity.name} ({decision.natural_key}); "
            "rename or merge one of them (nothing was written)"
        )

    def _match_in_target(self, decisions: list[Decision]) -> None:
        """Creates become matches when the target already has the key; renames must not collide."""
        pending = [d for d in decisions if d.action == "create" or (d.action == "update" and self._key_changed(d))]
        if not pending:
            return
        index = self._index([d.payload or {} for d in pending])
        for decision in pending:
            assert decision.natural_key is not None
            found = index.get(decision.natural_key) if index is not None else self._find(decision.natural_key)
            if found is None:
                continue
            found_id = self.entity.target_id(found)
            if decision.action == "update":
                if found_id != decision.target_id:
                    decision.action, decision.error_kind = "quarantine", "duplicate_natural_key"
                    decision.reason = (
                        f"the change would make it {decision.natural_key}, which {self.stream.target_system} "
                        f"{self.entity.name} {found_id} already is; rename or merge one of them (nothing was written)"
                    )
                continue
            other = self.stream.store.id_map.get_by_target(
                self.stream.pair, self.entity.name, self.stream.target_tenant, found_id
            )
            if other is not None and other.source_id != decision.source_id:
                decision.action, decision.error_kind = "quarantine", "duplicate_natural_key"
                decision.reason = (
                    f"{self.stream.target_system} {self.entity.name} {found_id} ({decision.natural_key}) is already "
                    f"synced from {self.stream.source_system} record {other.source_id}; rename or merge one of them"
                )
                continue
            decision.action, decision.target_id = "match", found_id

    def _key_changed(self, decision: Decision) -> bool:
        mapping = self.stream.mapping(decision.source_id)
        return mapping is not None and mapping.natural_key != decision.natural_key

    def _find(self, natural_key: str) -> Record | None:
        try:
            return self.entity.find(self.writer, natural_key)
        except NotFoundError:
            return None

    # --- plan: extract + match, and settle what needs no vendor write -----------------------
    def plan(self, window: Window, replay_ids: Iterable[int] = (), *, workers: int = 1) -> Plan:
        """Read, decide, and carry out every decision that writes nothing to the target vendor.

        Unchanged, skipped, parked, dead-lettered and adopted records are settled here (state
        store only), so a run with nothing to write starts no upsert task. Batches are matched
        in parallel (``workers``, the target's concurrency) after the reference data is read once.
        """
        batches = self.extract(window, replay_ids)
        counts: Counter[str] = Counter({"read": sum(len(b) for b in batches) + len(self.unchanged)})
        if not batches:
            counts.update(self.upsert(self.unchanged).counts)
            return Plan(counts, [])
        _ = self.reference  # read once, before the worker threads share it
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="match") as pool:
            decided = [d for decisions in pool.map(self.match, batches) for d in decisions]
        writes = [d for d in decided if d.action in VENDOR_WRITES and not self.run.dry_run]
        settled = [*self.unchanged, *(d for d in decided if d.action not in VENDOR_WRITES or self.run.dry_run)]
        result = self.upsert(settled, workers=workers)
        counts.update(result.counts)
        if result.retry_later:
            counts["retry_later"] += len(result.retry_later)
        size = self.entity.batch_size
        return Plan(counts, [writes[i : i + size] for i in range(0, len(writes), size)])

    # --- upsert ---------------------------------------------------------------------------
    def upsert(self, decisions: Iterable[Decision], *, workers: int = 1) -> BatchResult:
        """Carry out decisions: record-level failures are dead-lettered, transient ones retried later.

        :param workers: records written in parallel, within the vendor's concurrency limit. Each
            record still has one writer (claims are per record, tokens per claim).
        """
        result = BatchResult()
        decisions = list(decisions)
        in_bulk = [d for d in decisions if self._bulk and d.action == "create" and not self.run.dry_run]
        quiet = [] if self.run.dry_run else [d for d in decisions if d.action in QUIET]
        apart = {id(d) for d in (*in_bulk, *quiet)}
        one_by_one = [d for d in decisions if id(d) not in apart]
        outcomes = self._settle_quietly(quiet)
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="upsert") as pool:
            outcomes += pool.map(self._apply, one_by_one)
            if in_bulk:
                outcomes += self._bulk_creates(in_bulk, pool)
        for outcome, retry_id in outcomes:
            result.counts[outcome] += 1
            if retry_id is not None:
                result.retry_later.append(retry_id)
        return result

    def _settle_quietly(self, decisions: list[Decision]) -> list[tuple[str, str | None]]:
        """Unchanged and skipped records touch nothing but the audit trail: one insert for them all."""
        rows = [
            (
                AuditAction.UNCHANGED,
                d.source_id,
                d.target_id,
                self._summary(d, {"skipped": d.reason} if d.action == "skip" else {}),
            )
            for d in decisions
        ]
        self.stream.audit_many(rows, run=self.run.as_audit())
        # Unchanged records decided from their full content: the next run may skip reading it.
        self.stream.note_source_versions(
            {d.source_id: d.source_version for d in decisions if d.action == "unchanged" and d.source_version}
        )
        return [(QUIET[d.action], None) for d in decisions]

    # --- bulk creates (BILL: vendors 20, bills 100 per call, all or nothing) -------------------
    @property
    def _bulk(self) -> bool:
        return self.entity.create_many is not None and self.entity.bulk_limit > 1

    def _bulk_creates(self, decisions: list[Decision], pool: ThreadPoolExecutor) -> list[tuple[str, str | None]]:
        """Claim each record (the fresh ones in one transaction), then create the claimed ones in
        bulk calls within the vendor's limit."""
        tokens = [self.run.claim_token() for _ in decisions]
        claims = self.stream.claim_many(
            [Intent(d.source_id, t, d.natural_key, d.fingerprint) for d, t in zip(decisions, tokens, strict=True)]
        )
        outcomes: list[tuple[str, str | None]] = []
        ready: list[tuple[Decision, str]] = []
        for decision, token, claim in zip(decisions, tokens, claims, strict=True):
            outcome = self._guarded(decision, partial(self._claimed, decision, token, claim))
            if outcome[0] == "claimed":
                ready.append((decision, token))
            else:
                outcomes.append(outcome)
        limit = self.entity.bulk_limit
        chunks = [ready[i : i + limit] for i in range(0, len(ready), limit)]
        for chunk_outcomes in pool.map(self._send_bulk, chunks):
            outcomes += chunk_outcomes
        return outcomes

    def _send_bulk(self, chunk: list[tuple[Decision, str]]) -> list[tuple[str, str | None]]:
        assert self.entity.create_many is not None
        try:
            with fenced(lambda: self._all_ours(chunk)):
                created = self.entity.create_many(self.writer, [d.payload or {} for d, _ in chunk])
        except (ClaimLostError, RecordError, ApiError) as exc:
            return self._bulk_failed(chunk, exc)
        if len(created) != len(chunk):
            unknown = WriteOutcomeUnknownError(
                f"bulk create answered {len(created)} records for {len(chunk)}", system=self.stream.target_system
            )
            return self._confirm_each(chunk, unknown)
        outcomes: list[tuple[str, str | None]] = []
        written: list[tuple[Decision, str, Record]] = []
        for (decision, token), answer in zip(chunk, created, strict=True):
            if isinstance(answer, (RecordError, ApiError)):
                # That record's own answer (QuickBooks' batch answers each item apart).
                outcomes += self._bulk_failed([(decision, token)], answer)
            else:
                written.append((decision, token, answer))
        return outcomes + self._completed_many(written)

    def _completed_many(self, written: list[tuple[Decision, str, Record]]) -> list[tuple[str, str | None]]:
        """:meth:`_completed` for the records of one bulk call: one transaction for their ID-map
        rows, one for their audit rows, one read of their open letters."""
        intents = [
            Intent(
                d.source_id,
                token,
                fingerprint=d.fingerprint,
                target_id=self.entity.target_id(created),
                target_version=self._version(created),
                source_version=d.source_version,
            )
            for d, token, created in written
        ]
        failures = self.stream.complete_many(intents)
        outcomes: list[tuple[str, str | None]] = []
        done: list[Decision] = []
        for (decision, _, _), intent in zip(written, intents, strict=True):
            decision.target_id = intent.target_id
            if decision.source_id in failures:
                failed = partial(self._completion_failed, decision, failures[decision.source_id])
                outcomes.append(self._guarded(decision, failed))
            else:
                done.append(decision)
        rows = [(AuditAction.CREATED, d.source_id, d.target_id, self._summary(d, {"bulk": True})) for d in done]
        self.stream.audit_many(rows, run=self.run.as_audit())
        self._close_letters(done)
        return outcomes + [("created", None) for _ in done]

    def _bulk_failed(
        self, chunk: list[tuple[Decision, str]], exc: ClaimLostError | RecordError | ApiError
    ) -> list[tuple[str, str | None]]:
        """What a refused, lost or throttled bulk call (or one item of it) means for its records."""
        if isinstance(exc, ClaimLostError):
            return self._without_lost_claims(chunk)
        if isinstance(exc, RecordError):
            return self._split_refused(chunk, exc)
        if isinstance(exc, AuthError):
            raise exc
        if isinstance(exc, (WriteOutcomeUnknownError, FatalApiError)):
            # Some, all or none may be committed: each record goes through the lookup protocol.
            return self._confirm_each(chunk, exc)
        if isinstance(exc, RetryableApiError):
            for decision, token in chunk:
                self.stream.abandon(decision.source_id, owner=token)
            return [("retry_later", d.source_id) for d, _ in chunk]
        raise exc

    def _confirm_each(self, chunk: list[tuple[Decision, str]], exc: ApiError) -> list[tuple[str, str | None]]:
        return [self._guarded(d, partial(self._confirm_after_unknown, d, t, exc)) for d, t in chunk]

    def _all_ours(self, chunk: list[tuple[Decision, str]]) -> None:
        """The fence of a bulk call: every claim of it still ours (one transaction), leases restarted."""
        ours = self.stream.renew_many([Intent(d.source_id, t, d.natural_key, d.fingerprint) for d, t in chunk])
        lost = [d.source_id for d, _ in chunk if d.source_id not in ours]
        if lost:
            raise ClaimLostError(f"{self.entity.name} {', '.join(lost[:5])}: claims taken over before the bulk call")

    def _without_lost_claims(self, chunk: list[tuple[Decision, str]]) -> list[tuple[str, str | None]]:
        """Nothing was sent: park the records another writer took over, send the rest again."""
        kept, outcomes = [], []
        for decision, token in chunk:
            assert decision.natural_key
            if self.stream.renew(
                decision.source_id, owner=token, natural_key=decision.natural_key, fingerprint=decision.fingerprint
            ):
                kept.append((decision, token))
            else:
                outcomes.append((self._park(decision, "another run took this record over", "busy_elsewhere"), None))
        return outcomes + (self._send_bulk(kept) if kept else [])

    def _split_refused(self, chunk: list[tuple[Decision, str]], exc: RecordError) -> list[tuple[str, str | None]]:
        """All or nothing was refused: halve until the refused record stands alone, write the others."""
        if len(chunk) == 1:
            ((decision, token),) = chunk
            self.stream.release(decision.source_id, owner=token)
            return [(self._quarantine(decision, *_reason_and_kind(exc), exc), None)]
        middle = len(chunk) // 2
        return self._send_bulk(chunk[:middle]) + self._send_bulk(chunk[middle:])

    def _apply(self, decision: Decision) -> tuple[str, str | None]:
        if self.run.dry_run:
            log.info("dry run: would %s %s %s", decision.action, self.entity.name, decision.source_id)
            return f"would_{decision.action}", None
        return self._guarded(decision, lambda: self._carry_out(decision))

    def _guarded(self, decision: Decision, step: Callable[[], str]) -> tuple[str, str | None]:
        """One record's outcome: its own failures become its dead letter, transient ones a retry."""
        try:
            outcome = step()
        except RetryableApiError as exc:
            log.warning("%s %s: %s; the task will retry it", self.entity.name, decision.source_id, exc)
            self._audit(decision, AuditAction.FAILED, {"error": exc.to_dict(), "retrying": True})
            return "retry_later", decision.source_id
        except (RecordError, FatalApiError, IdMapConflictError) as exc:
            if isinstance(exc, AuthError):
                raise
            outcome = self._quarantine(decision, *_reason_and_kind(exc), exc)
        if outcome in ("created", "updated", "matched_existing", "unchanged", "retired", "skipped"):
            self._close_letter(decision)
        return outcome, None

    def _carry_out(self, decision: Decision) -> str:
        match decision.action:
            case "skip" | "unchanged":
                ((outcome, _),) = self._settle_quietly([decision])
                return outcome
            case "wait":
                return self._park(decision, decision.reason or "waiting", decision.error_kind or "not_linked_yet")
            case "quarantine":
                return self._quarantine(decision, decision.reason or "cannot be mapped", decision.error_kind or "")
            case "update":
                return self._update(decision)
            case "retire":
                return self._retire(decision)
            case _:
                return self._create_once(decision)

    def _update(self, decision: Decision) -> str:
        assert decision.target_id and decision.payload is not None and decision.natural_key
        if conflict := self._key_taken(decision):  # again: another run may have taken it since match
            return self._quarantine(decision, conflict, "duplicate_natural_key")
        token = self.run.claim_token()
        if not self.stream.hold(decision.source_id, owner=token):
            return self._park(decision, "another run is changing this record right now", "busy_elsewhere")
        try:
            answer = self.entity.update(self.writer, decision.target_id, decision.payload)
        except BaseException:
            self.stream.let_go(decision.source_id, owner=token)
            raise
        self.stream.record(  # gives the lease back
            decision.source_id,
            decision.target_id,
            natural_key=decision.natural_key,
            fingerprint=decision.fingerprint or "",
            target_version=self._version(dict(answer)) if isinstance(answer, Mapping) else None,
            source_version=decision.source_version,
        )
        self._audit(decision, AuditAction.UPDATED, {})
        return "updated"

    def _retire(self, decision: Decision) -> str:
        assert decision.target_id and self.entity.retire is not None
        self.entity.retire(self.writer, decision.target_id)
        self.stream.record(
            decision.source_id,
            decision.target_id,
            natural_key=None,
            fingerprint=RETIRED,
            source_version=decision.source_version,
        )
        self._audit(decision, AuditAction.DELETED, {"retired": decision.reason})
        return "retired"

    def _create_once(self, decision: Decision) -> str:
        token = self.run.claim_token()
        settled = self._claim(decision, token)
        return settled if settled is not None else self._create_claimed(decision, token)

    def _claim(self, decision: Decision, token: str) -> str | None:
        """Claim the record; the outcome when that settles it, ``None`` when it must be created."""
        assert decision.natural_key and decision.payload is not None
        claim = self.stream.claim(
            decision.source_id, natural_key=decision.natural_key, fingerprint=decision.fingerprint, owner=token
        )
        return self._settle_claim(decision, token, claim)

    def _claimed(self, decision: Decision, token: str, claim: Claim) -> str:
        """``claimed`` when the record is to be created in bulk, else how its claim settled it."""
        return self._settle_claim(decision, token, claim) or "claimed"

    def _settle_claim(self, decision: Decision, token: str, claim: Claim) -> str | None:
        """What a claim answer means: the outcome when it settles the record, ``None`` to create it."""
        if claim.outcome == ClaimOutcome.SYNCED:
            # Another run finished it since we matched: an ordinary mapped record now.
            decision.target_id = claim.mapping.target_id
            if claim.mapping.fingerprint == decision.fingerprint:
                self._audit(decision, AuditAction.UNCHANGED, {"synced_by_other_run": True})
                return "unchanged"
            return self._update(decision)
        if claim.outcome == ClaimOutcome.BUSY:
            # A live writer holds it: never write twice, never count it done. Re-fetched next run.
            return self._park(decision, "another run is writing this record right now", "busy_elsewhere")
        if claim.outcome == ClaimOutcome.CONFLICT:
            other = claim.mapping.source_id
            reason = (
                f"{self.stream.source_system} record {other} already maps to the same {self.stream.target_system} "
                f"{self.entity.name} ({decision.natural_key}); rename or merge one of them"
            )
            return self._quarantine(decision, reason, "duplicate_natural_key")
        if claim.outcome == ClaimOutcome.RECOVERING:
            return self._recover(decision, claim.mapping, token)
        if decision.action == "match" and decision.target_id is not None:
            return self._link(decision, token, decision.target_id, {})
        return None

    def _recover(self, decision: Decision, intent: IdMapping, token: str) -> str | None:
        """An earlier writer may have created it: look up the key *it* claimed, then compare."""
        earlier_key = intent.natural_key or decision.natural_key
        assert earlier_key is not None
        found = self._find(earlier_key)
        if found is None:
            return None
        target_id = self.entity.target_id(found)
        self.stream.complete(decision.source_id, target_id, fingerprint=intent.fingerprint, owner=token)
        decision.target_id = target_id
        if intent.fingerprint == decision.fingerprint and earlier_key == decision.natural_key:
            self._audit(decision, AuditAction.CREATED, {"confirmed_by_lookup": True})
            return "created"
        # It was created with what the source said then; the source changed since: update it.
        self._audit(decision, AuditAction.CREATED, {"confirmed_by_lookup": True, "source_changed_since": True})
        return self._update(decision)

    def _create_claimed(self, decision: Decision, token: str) -> str:
        """Create the claimed record; for a shared key, only while this writer also holds the key."""
        if self.shared is None:
            return self._send_create(decision, token)
        assert decision.natural_key
        key = decision.natural_key
        claim = self.shared.claim(key, natural_key=key, fingerprint=decision.fingerprint, owner=token)
        try:
            settled = self._settle_shared_claim(decision, token, claim)
            if settled is not None:
                return settled
            outcome = self._send_create(decision, token)
        except RecordError:
            self.shared.release(key, owner=token)  # refused: nothing exists, the key is free again
            raise
        except BaseException:
            # It may exist: whoever claims next (a retry, the other pair) looks it up first.
            self.shared.abandon(key, owner=token)
            self.stream.abandon(decision.source_id, owner=token)
            raise
        self._close_shared_claim(key, token, decision.target_id if outcome == "created" else None)
        return outcome

    def _settle_shared_claim(self, decision: Decision, token: str, claim: Claim) -> str | None:
        """What the key's claim says: another pair is creating it right now (park), did or may have
        (look it up in the target: link to what is there); ``None`` when this writer creates it."""
        assert self.shared is not None and decision.natural_key
        key = decision.natural_key
        if claim.outcome == ClaimOutcome.BUSY:
            return self._park_own(decision, token, "another integration is creating this record right now")
        if claim.outcome not in (ClaimOutcome.SYNCED, ClaimOutcome.RECOVERING):
            return None
        # The target is the truth: the key's record may have been renamed or deleted since.
        found = self._find(key)
        if found is not None:
            target_id = self.entity.target_id(found)
            if claim.outcome == ClaimOutcome.RECOVERING:
                self._close_shared_claim(key, token, target_id)
            return self._adopt(decision, token, target_id)
        if claim.outcome == ClaimOutcome.SYNCED:
            assert claim.mapping.target_id is not None
            if not self.shared.reopen(key, target_id=claim.mapping.target_id, owner=token):
                return self._park_own(decision, token, "another integration took this key at the same time")
        return None

    def _park_own(self, decision: Decision, token: str, reason: str) -> str:
        """Nothing was sent: drop this writer's claim and retry the record next run."""
        self.stream.release(decision.source_id, owner=token)
        return self._park(decision, reason, "busy_elsewhere")

    def _close_shared_claim(self, key: str, token: str, target_id: str | None) -> None:
        """Record who the key is (``target_id``), or end the claim for the next claimer to look up."""
        assert self.shared is not None
        if target_id is not None:
            try:
                self.shared.complete(key, target_id, fingerprint=None, owner=token)
                return
            except StateError as exc:  # the record is this pair's either way: its own claim completed
                log.warning("%s %s: shared key not recorded (%s)", self.entity.name, key, exc)
        self.shared.abandon(key, owner=token)

    def _adopt(self, decision: Decision, token: str, target_id: str) -> str:
        """Link the record another pair created under the shared key."""
        return self._link(decision, token, target_id, {"created_by_another_pair": True})

    def _link(self, decision: Decision, token: str, target_id: str, summary: dict[str, Any]) -> str:
        """Map the record to a target record found before creating; update it when the entity says so."""
        decision.target_id = target_id
        if not self.entity.update_matches:
            self._complete(decision, token, target_id)
            self._audit(decision, AuditAction.MATCHED_EXISTING, summary)
            return "matched_existing"
        # Linked with no fingerprint until the update lands: a failed update is tried again next run.
        self._complete(decision, token, target_id, written=False)
        self._audit(decision, AuditAction.MATCHED_EXISTING, {**summary, "updating": True})
        return self._update(decision)

    def _send_create(self, decision: Decision, token: str) -> str:
        assert decision.natural_key and decision.payload is not None
        try:
            # Fenced: right before each write attempt leaves (after any throttle wait), the HTTP
            # core checks the claim is still ours and restarts its lease.
            with fenced(lambda: self._still_ours(decision, token)):
                created = self.entity.create(self.writer, decision.payload)
        except ClaimLostError:
            return self._park(decision, "another run took this record over before it was sent", "busy_elsewhere")
        except RecordError:
            self.stream.release(decision.source_id, owner=token)
            raise
        except (WriteOutcomeUnknownError, FatalApiError) as exc:
            # The vendor may have committed it (a lost answer, a 200 with an HTML page): look first.
            return self._confirm_after_unknown(decision, token, exc)
        except RetryableApiError:
            self.stream.abandon(decision.source_id, owner=token)
            raise
        return self._completed(decision, token, self.entity.target_id(created), {}, self._version(created))

    def _still_ours(self, decision: Decision, token: str) -> None:
        assert decision.natural_key
        if not self.stream.renew(
            decision.source_id, owner=token, natural_key=decision.natural_key, fingerprint=decision.fingerprint
        ):
            raise ClaimLostError(f"{self.entity.name} {decision.source_id}: claim {token} was taken over")

    def _confirm_after_unknown(self, decision: Decision, token: str, exc: ApiError) -> str:
        assert decision.natural_key
        found = self._find(decision.natural_key)
        if found is not None:
            return self._completed(decision, token, self.entity.target_id(found), {"confirmed_by_lookup": True})
        if isinstance(exc, WriteOutcomeUnknownError):
            self.stream.abandon(decision.source_id, owner=token)  # the retry recovers it at once
            raise exc
        self.stream.release(decision.source_id, owner=token)
        raise exc

    def _complete(
        self,
        decision: Decision,
        token: str,
        target_id: str,
        target_version: str | None = None,
        *,
        written: bool = True,
    ) -> None:
        """Complete the record's claim: its target id and, once the target holds this payload
        (``written``), its fingerprint and both systems' revisions."""
        self.stream.complete(
            decision.source_id,
            target_id,
            fingerprint=decision.fingerprint if written else None,
            owner=token,
            target_version=target_version,
            source_version=decision.source_version if written else None,
        )

    def _version(self, written: Record) -> str | None:
        """The target's revision of a record this writer wrote, from the vendor's answer."""
        return self.entity.target_version(written) if self.entity.target_version is not None else None

    def _completed(
        self, decision: Decision, token: str, target_id: str, summary: dict[str, Any], version: str | None = None
    ) -> str:
        """:param version: the revision our write left; ``None`` for a record found by lookup
        (someone may have changed it since)."""
        decision.target_id = target_id
        try:
            self._complete(decision, token, target_id, version)
        except ClaimLostError as exc:
            return self._completion_failed(decision, exc)
        self._audit(decision, AuditAction.CREATED, summary)
        return "created"

    def _completion_failed(self, decision: Decision, exc: StateError) -> str:
        """A record was created but its claim could not be completed."""
        if not isinstance(exc, ClaimLostError):
            raise exc  # a duplicate in the target (IdMapConflictError: dead-lettered) or a lost row
        # Our lease was taken over while we were inside the call: the new holder recovers the
        # record by its key (it finds this one). Say so loudly; never map it twice.
        log.warning(
            "%s %s: claim lost during the create; the new holder adopts it", self.entity.name, decision.target_id
        )
        return self._park(decision, "claim taken over during the create; next run confirms", "busy_elsewhere")

    # --- outcomes that are not writes -------------------------------------------------------
    def _park(self, decision: Decision, reason: str, kind: str) -> str:
        letter = self.stream.park(
            decision.source_id, reason=reason, kind=kind, payload=decision.record or {}, run_id=self.run.run_id
        )
        self._audit(decision, AuditAction.UNCHANGED, {"parked": reason, "kind": kind, "dead_letter_id": letter.id})
        log.info("%s %s parked (#%s): %s", self.entity.name, decision.source_id, letter.id, reason)
        return "waiting"

    def _quarantine(self, decision: Decision, reason: str, kind: str, exc: Exception | None = None) -> str:
        letter = self.stream.dead_letter(
            decision.source_id,
            reason=reason,
            kind=kind or "validation",
            payload={**(decision.record or {}), FINGERPRINT_KEY: decision.fingerprint},
            run_id=self.run.run_id,
        )
        summary: dict[str, Any] = {"reason": reason, "kind": kind, "dead_letter_id": letter.id}
        if isinstance(exc, ApiError):
            summary["error"] = exc.to_dict()
        self._audit(decision, AuditAction.QUARANTINED, summary)
        log.warning("%s %s dead-lettered (#%s): %s", self.entity.name, decision.source_id, letter.id, reason)
        return "quarantined"

    def _close_letter(self, decision: Decision) -> None:
        letter = self.stream.open_letter(decision.source_id)
        if letter is not None:
            self.stream.close_letter(letter)
            self._audit(decision, AuditAction.REPLAYED, {"dead_letter_id": letter.id, "kind": letter.error_kind})

    def _close_letters(self, decisions: list[Decision]) -> None:
        """:meth:`_close_letter` for many written records: one read finds the few with a letter."""
        letters = self.stream.open_letters(d.source_id for d in decisions) if decisions else {}
        for decision in decisions:
            if (letter := letters.get(decision.source_id)) is not None:
                self.stream.close_letter(letter)
                self._audit(decision, AuditAction.REPLAYED, {"dead_letter_id": letter.id, "kind": letter.error_kind})

    def _audit(self, decision: Decision, action: AuditAction, summary: Mapping[str, Any]) -> None:
        self.stream.audit(
            action,
            source_id=decision.source_id,
            target_id=decision.target_id,
            run=self.run.as_audit(),
            summary=self._summary(decision, summary),
        )

    @staticmethod
    def _summary(decision: Decision, summary: Mapping[str, Any]) -> dict[str, Any]:
        return {"match_on": decision.natural_key, "decision": decision.action, **summary}


@dataclass(frozen=True)
class Known:
    """What the state store holds for one batch's records, read in one go before deciding."""

    mappings: Mapping[str, IdMapping]
    letters: Mapping[str, DeadLetter]


def _still_rejected(letter: DeadLetter | None, fingerprint: str) -> DeadLetter | None:
    """The letter of a vendor refusal of exactly this content, nobody having asked for a replay."""
    if letter is None or letter.status != LetterStatus.OPEN:
        return None
    same = (letter.payload or {}).get(FINGERPRINT_KEY) == fingerprint
    return letter if same and letter.error_kind == "validation" else None


def _target_of(mapping: IdMapping | None) -> str | None:
    return mapping.target_id if mapping is not None else None


def _reason_and_kind(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, RecordError):
        return exc.reason, exc.kind
    if isinstance(exc, IdMapConflictError):
        return f"{exc}; nothing else was changed", "duplicate_natural_key"
    if isinstance(exc, NotFoundError):
        return f"the target record is gone: {exc}", "missing_in_target"
    return str(exc), "rejected"


def decisions_to_xcom(decisions: list[Decision]) -> list[dict[str, Any]]:
    return [asdict(d) for d in decisions]


def decisions_from_xcom(items: Iterable[Mapping[str, Any]]) -> Iterator[Decision]:
    for item in items:
        yield Decision.from_dict(item)


__all__ = [
    "PARKED_KINDS",
    "RETIRED",
    "VENDOR_WRITES",
    "BatchResult",
    "Decision",
    "Plan",
    "RunInfo",
    "SyncEngine",
    "decisions_from_xcom",
    "decisions_to_xcom",
    "streams_of",
]
