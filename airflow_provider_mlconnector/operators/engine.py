"""The sync engine behind the three generic steps: extract, match, upsert.

A pair module (``pairs/<source>_to_<target>.py``) describes each entity it syncs with an
:class:`EntitySpec`: how to read changed source records, how to turn one into a target payload
(raising :class:`~airflow_provider_mlconnector.exceptions.MappingError` when it cannot, never
guessing), its natural key, how to find, create and update it in the target. The engine does the
rest, the same way for every pair:

* **extract** reads the source for a window and cuts it into bounded batches (XCom-sized);
* **match** decides per record, read-only: ``unchanged`` (same fingerprint as last synced),
  ``update`` (mapped, changed), ``match`` (not mapped but found in the target by natural key),
  ``create``, ``skip`` (e.g. archived and never synced) or ``quarantine`` (cannot be mapped);
* **upsert** carries the decisions out. A create first *claims* the natural key in the ID map
  (a durable write intent, unique per natural key), then creates, then completes the claim. A
  retry after a crash finds its own pending claim (``recovering``) and looks the record up in the
  target before creating, so a lost answer never becomes a second record. Record-level failures
  go to the dead-letter queue and the batch goes on; anything transient makes the task fail at
  the end so Airflow retries it, and the retry resumes through the same protocol.

Every record ends as written, unchanged, skipped (with a reason) or dead-lettered, and every
action is one audit row.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow_provider_mlconnector.exceptions import (
    ApiError,
    MLConnectorError,
    RecordError,
    RetryableApiError,
    WriteOutcomeUnknownError,
)
from airflow_provider_mlconnector.state.audit import AuditAction, AuditEvent
from airflow_provider_mlconnector.state.dead_letters import LetterStatus
from airflow_provider_mlconnector.state.id_map import ClaimOutcome, content_fingerprint

if TYPE_CHECKING:
    from airflow_provider_mlconnector.hooks.base import MLConnectorHook
    from airflow_provider_mlconnector.state import StateStore
    from airflow_provider_mlconnector.state.watermarks import Window

log = logging.getLogger(__name__)

#: stored with a dead letter, so an unchanged record the vendor refused is not sent again.
FINGERPRINT_KEY = "_mlconnector_fingerprint"
Action = Literal["create", "update", "match", "unchanged", "skip", "quarantine"]
Record = dict[str, Any]


@dataclass
class RunInfo:
    """Who is writing: used for claim ownership and audit rows."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int = 1
    dry_run: bool = False

    @property
    def owner(self) -> str:
        # Stable across retries of the same task instance, so a retry "recovers" its own claims.
        suffix = f"/{self.map_index}" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{suffix}"


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
    dead_letter_id: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(**data)


class EntitySpec(ABC):
    """How one entity of one pair is synced. Subclasses live in the pair's module."""

    pair: ClassVar[str]
    entity: ClassVar[str]
    source_system: ClassVar[str]
    target_system: ClassVar[str]
    #: records per XCom batch (one mapped task each).
    batch_size: ClassVar[int] = 250

    def __init__(self, source: MLConnectorHook, target: MLConnectorHook, store: StateStore) -> None:
        self.source = source
        self.target = target
        self.store = store

    # --- tenants --------------------------------------------------------------------------
    @property
    @abstractmethod
    def source_tenant(self) -> str: ...

    @property
    @abstractmethod
    def target_tenant(self) -> str: ...

    # --- reading --------------------------------------------------------------------------
    @abstractmethod
    def extract(self, window: Window) -> Iterable[Record]:
        """The source records changed in ``window`` (or all, when the source cannot filter)."""

    @abstractmethod
    def fetch(self, source_id: str) -> Record | None:
        """One source record by id (for dead-letter replays)."""

    @abstractmethod
    def source_id(self, record: Record) -> str: ...

    def skip_reason(self, record: Record, mapped: bool) -> str | None:
        """Why this record is deliberately not written (e.g. archived and never synced)."""
        return None

    # --- mapping --------------------------------------------------------------------------
    def prepare(self, records: list[Record]) -> None:
        """Load reference data once per batch (GL accounts, vendor ids...)."""
        return None

    @abstractmethod
    def transform(self, record: Record) -> Record:
        """The target payload for ``record``; raise ``MappingError`` when it cannot be mapped."""

    @abstractmethod
    def natural_key(self, record: Record, payload: Record) -> str:
        """The key that identifies the record in the target (e.g. vendor id + bill number)."""

    # --- target ---------------------------------------------------------------------------
    def index_existing(self, payloads: list[tuple[str, Record]]) -> dict[str, Record] | None:
        """Optionally look up many natural keys at once; ``None`` = use :meth:`find_existing`."""
        return None

    @abstractmethod
    def find_existing(self, natural_key: str, payload: Record) -> Record | None:
        """The target record with this natural key, if it exists."""

    @abstractmethod
    def create(self, payload: Record, record: Record) -> Record: ...

    @abstractmethod
    def update(self, target_id: str, payload: Record, record: Record) -> Record | None:
        """Update the target; return None when it deliberately did nothing."""

    @abstractmethod
    def target_id(self, target_record: Record) -> str: ...


@dataclass
class BatchResult:
    """Per-batch counts, merged into the run summary."""

    counts: Counter[str] = field(default_factory=Counter)
    retry_later: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "retry_later": self.retry_later}


class SyncEngine:
    """Runs extract / match / upsert for one :class:`EntitySpec` within one task."""

    def __init__(self, spec: EntitySpec, store: StateStore, run: RunInfo) -> None:
        self.spec = spec
        self.store = store
        self.run = run

    # --- extract --------------------------------------------------------------------------
    def extract(self, window: Window, replay_ids: Iterable[int] = ()) -> list[list[Record]]:
        """The window's changed records plus requested dead-letter replays, in bounded batches."""
        records = list(self.spec.extract(window))
        seen = {self.spec.source_id(r) for r in records}
        for letter in self._letters_to_replay(replay_ids):
            if letter.source_id in seen:
                continue
            fresh = self.spec.fetch(letter.source_id)
            if fresh is not None:
                records.append(fresh)
                seen.add(letter.source_id)
        size = self.spec.batch_size
        return [records[i : i + size] for i in range(0, len(records), size)]

    def _letters_to_replay(self, replay_ids: Iterable[int]) -> list[Any]:
        letters = self.store.dead_letters
        wanted = {int(i) for i in replay_ids}
        if wanted:
            letters.request_replay(wanted)
        return [
            letter
            for letter in letters.replay_requested(self.spec.pair)
            if letter.entity == self.spec.entity and letter.source_tenant == self.spec.source_tenant
        ]

    # --- match ----------------------------------------------------------------------------
    def match(self, records: list[Record]) -> list[Decision]:
        """Read-only decisions for a batch (safe in a dry run)."""
        self.spec.prepare(records)
        drafts: list[Decision] = []
        for record in records:
            drafts.append(self._decide_locally(record))
        pending = [(d.natural_key, d.payload) for d in drafts if d.action == "create" and d.natural_key and d.payload]
        if pending:
            self._match_in_target(drafts, pending)
        return drafts

    def _decide_locally(self, record: Record) -> Decision:
        spec = self.spec
        source_id = spec.source_id(record)
        mapping = self.store.id_map.get(spec.pair, spec.entity, spec.source_tenant, source_id)
        mapped = mapping is not None and mapping.target_id is not None
        if reason := spec.skip_reason(record, mapped):
            return Decision(source_id, "skip", reason=reason, target_id=mapping.target_id if mapping else None)
        try:
            payload = spec.transform(record)
            natural_key = spec.natural_key(record, payload)
        except RecordError as exc:
            return Decision(source_id, "quarantine", reason=exc.reason, error_kind=exc.kind, record=record)
        fingerprint = content_fingerprint(payload)
        rejected = self._still_rejected(source_id, fingerprint)
        if rejected is not None:
            # The vendor already refused exactly this content and nobody asked for a replay:
            # sending it again would only be refused again. It stays in the dead-letter queue.
            return Decision(
                source_id,
                "quarantine",
                natural_key,
                fingerprint,
                reason=rejected.reason,
                error_kind=rejected.error_kind,
                record=record,
            )
        base = Decision(source_id, "create", natural_key, fingerprint, payload=payload, record=record)
        if mapped and mapping is not None:
            base.target_id = mapping.target_id
            base.action = "unchanged" if mapping.fingerprint == fingerprint else "update"
        return base

    def _still_rejected(self, source_id: str, fingerprint: str) -> Any:
        spec = self.spec
        letter = self.store.dead_letters.open_for(spec.pair, spec.entity, spec.source_tenant, source_id)
        if letter is None or letter.status != LetterStatus.OPEN:
            return None
        same = (letter.payload or {}).get(FINGERPRINT_KEY) == fingerprint
        return letter if same and letter.error_kind == "validation" else None

    def _match_in_target(self, drafts: list[Decision], pending: list[tuple[str, Record]]) -> None:
        index = self.spec.index_existing(pending)
        for decision in drafts:
            if decision.action != "create" or decision.natural_key is None or decision.payload is None:
                continue
            found = (
                index.get(decision.natural_key)
                if index is not None
                else self.spec.find_existing(decision.natural_key, decision.payload)
            )
            if found is not None:
                decision.action = "match"
                decision.target_id = self.spec.target_id(found)

    # --- upsert ---------------------------------------------------------------------------
    def upsert(self, decisions: Iterable[Decision], *, workers: int = 1) -> BatchResult:
        """Carry out decisions; record-level failures are dead-lettered, transient ones retried later.

        :param workers: records written in parallel. Each record is still written exactly once
            (claims are per record); keep it within the vendor's concurrency limit (BILL: 3).
        """
        result = BatchResult()
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="upsert") as pool:
            for outcome, retry_id in pool.map(self._apply, decisions):
                result.counts[outcome] += 1
                if retry_id is not None:
                    result.retry_later.append(retry_id)
        return result

    def _apply(self, decision: Decision) -> tuple[str, str | None]:
        """One record's outcome, and its id when it must be retried later."""
        try:
            return self._apply_one(decision), None
        except RetryableApiError as exc:
            # Transient after the core's own retries: leave it for the task retry (its claim, if
            # any, is kept and will be recovered by natural-key lookup).
            log.warning("%s %s: %s; will retry", self.spec.entity, decision.source_id, exc)
            self._audit(decision, AuditAction.FAILED, summary={"error": exc.to_dict(), "retrying": True})
            return "retry_later", decision.source_id

    def _apply_one(self, decision: Decision) -> str:
        if self.run.dry_run:
            log.info("dry run: would %s %s %s", decision.action, self.spec.entity, decision.source_id)
            return f"would_{decision.action}"
        try:
            outcome = self._write(decision)
        except RecordError as exc:
            return self._quarantine(decision, exc.reason, exc.kind, exc)
        if outcome in ("created", "updated", "matched_existing", "unchanged"):
            self._close_dead_letter(decision)
        return outcome

    def _write(self, decision: Decision) -> str:
        if decision.action == "skip":
            self._audit(decision, AuditAction.UNCHANGED, summary={"skipped": decision.reason})
            return "skipped"
        if decision.action == "quarantine":
            raise RecordError(decision.reason or "cannot be mapped", kind=decision.error_kind or "unmapped")
        if decision.action == "unchanged":
            self._audit(decision, AuditAction.UNCHANGED)
            return "unchanged"
        if decision.action == "update":
            return self._update(decision)
        return self._create_once(decision)

    def _update(self, decision: Decision) -> str:
        spec = self.spec
        assert decision.target_id and decision.payload is not None and decision.record is not None
        spec.update(decision.target_id, decision.payload, decision.record)
        self._record_mapping(decision, decision.target_id)
        self._audit(decision, AuditAction.UPDATED)
        return "updated"

    def _create_once(self, decision: Decision) -> str:
        spec = self.spec
        assert decision.natural_key and decision.payload is not None and decision.record is not None
        claim = self.store.id_map.claim(
            spec.pair,
            spec.entity,
            spec.source_tenant,
            decision.source_id,
            spec.target_tenant,
            decision.natural_key,
            self.run.owner,
        )
        if claim.outcome == ClaimOutcome.SYNCED:
            # Another run finished it since we matched: treat as an ordinary mapped record.
            decision.target_id = claim.mapping.target_id
            if claim.mapping.fingerprint == decision.fingerprint:
                self._audit(decision, AuditAction.UNCHANGED, summary={"synced_by_other_run": True})
                return "unchanged"
            return self._update(decision)
        if claim.outcome == ClaimOutcome.BUSY:
            # Another live run is creating it right now; it will finish it. Never create twice.
            self._audit(decision, AuditAction.UNCHANGED, summary={"in_progress_elsewhere": claim.mapping.claimed_by})
            return "in_progress_elsewhere"
        if claim.outcome == ClaimOutcome.CONFLICT:
            other = claim.mapping.source_id
            raise RecordError(
                f"another {spec.source_system} record ({other}) already maps to the same "
                f"{spec.target_system} {spec.entity} ({decision.natural_key}); merge or rename one of them",
                kind="duplicate_natural_key",
            )
        return self._create_claimed(decision, recovering=claim.outcome == ClaimOutcome.RECOVERING)

    def _create_claimed(self, decision: Decision, *, recovering: bool) -> str:
        spec = self.spec
        assert decision.natural_key and decision.payload is not None and decision.record is not None
        existing_id = decision.target_id if decision.action == "match" else None
        if existing_id is None and recovering:
            found = spec.find_existing(decision.natural_key, decision.payload)
            existing_id = spec.target_id(found) if found else None
        if existing_id is not None:
            self._complete(decision, existing_id)
            self._audit(decision, AuditAction.MATCHED_EXISTING)
            return "matched_existing"
        try:
            created = spec.create(decision.payload, decision.record)
        except WriteOutcomeUnknownError:
            # The vendor may have committed it: look before anyone creates again.
            found = spec.find_existing(decision.natural_key, decision.payload)
            if found is None:
                raise  # claim stays pending; the task retry recovers it through the same lookup
            self._complete(decision, spec.target_id(found))
            self._audit(decision, AuditAction.CREATED, summary={"confirmed_by_lookup": True})
            return "created"
        except RecordError:
            self.store.id_map.release(
                spec.pair, spec.entity, spec.source_tenant, decision.source_id, owner=self.run.owner
            )
            raise
        self._complete(decision, spec.target_id(created))
        self._audit(decision, AuditAction.CREATED)
        return "created"

    def _complete(self, decision: Decision, target_id: str) -> None:
        spec = self.spec
        decision.target_id = target_id
        self.store.id_map.complete(
            spec.pair, spec.entity, spec.source_tenant, decision.source_id, target_id, decision.fingerprint or ""
        )

    def _record_mapping(self, decision: Decision, target_id: str) -> None:
        spec = self.spec
        self.store.id_map.record(
            spec.pair,
            spec.entity,
            spec.source_tenant,
            decision.source_id,
            spec.target_tenant,
            target_id,
            decision.natural_key or "",
            decision.fingerprint or "",
        )

    def _quarantine(self, decision: Decision, reason: str, kind: str, exc: Exception | None = None) -> str:
        spec = self.spec
        letter = self.store.dead_letters.add(
            spec.pair,
            spec.entity,
            spec.source_tenant,
            decision.source_id,
            reason=reason,
            error_kind=kind,
            payload={**(decision.record or {}), FINGERPRINT_KEY: decision.fingerprint},
            run_id=self.run.run_id,
        )
        summary: dict[str, Any] = {"reason": reason, "kind": kind, "dead_letter_id": letter.id}
        if isinstance(exc, ApiError):
            summary["error"] = exc.to_dict()
        self._audit(decision, AuditAction.QUARANTINED, summary=summary)
        log.warning("%s %s dead-lettered (#%s): %s", spec.entity, decision.source_id, letter.id, reason)
        return "quarantined"

    def _close_dead_letter(self, decision: Decision) -> None:
        spec = self.spec
        letter = self.store.dead_letters.open_for(spec.pair, spec.entity, spec.source_tenant, decision.source_id)
        if letter is not None:
            self.store.dead_letters.mark_replayed(letter.id)
            self._audit(decision, AuditAction.REPLAYED, summary={"dead_letter_id": letter.id})

    def _audit(self, decision: Decision, action: AuditAction, summary: Mapping[str, Any] | None = None) -> None:
        spec = self.spec
        self.store.audit.record(
            AuditEvent(
                pair=spec.pair,
                entity=spec.entity,
                action=action,
                source_system=spec.source_system,
                source_tenant=spec.source_tenant,
                source_id=decision.source_id,
                target_system=spec.target_system,
                target_tenant=spec.target_tenant,
                target_id=decision.target_id,
                dag_id=self.run.dag_id,
                run_id=self.run.run_id,
                task_id=self.run.task_id,
                try_number=self.run.try_number,
                summary={"match_on": decision.natural_key, "decision": decision.action, **(summary or {})},
            )
        )


def decisions_to_xcom(decisions: list[Decision]) -> list[dict[str, Any]]:
    return [asdict(d) for d in decisions]


def decisions_from_xcom(items: Iterable[Mapping[str, Any]]) -> Iterator[Decision]:
    for item in items:
        yield Decision.from_dict(item)


__all__ = [
    "BatchResult",
    "Decision",
    "EntitySpec",
    "MLConnectorError",
    "RunInfo",
    "SyncEngine",
    "decisions_from_xcom",
    "decisions_to_xcom",
]
