"""One stream's view of the state store: the ID map, dead letters and audit of one entity.

A stream is (pair, entity, source tenant, target tenant). Held as one frozen value it cannot be
half-passed or have its tenants swapped, and every call below reads as what it means.

Typical use (the sync engine)::

    stream = Stream(store, "freshbooks_to_bill", "bill", source_tenant="BRT4201", target_tenant="008...")
    claim = stream.claim("7101", natural_key="00n...|PFS-1041", fingerprint=fp, owner=token)
    if stream.renew("7101", owner=token, natural_key=nk, fingerprint=fp):
        created = vendor_call()
        stream.complete("7101", created["id"], fingerprint=fp, owner=token)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_mlconnector.state.audit import AuditAction, AuditEvent
from airflow_provider_mlconnector.state.dead_letters import DeadLetter, LetterStatus

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state.errors import StateError
    from airflow_provider_mlconnector.state.id_map import Claim, IdMapping, Intent
    from airflow_provider_mlconnector.state.store import StateStore


@dataclass(frozen=True)
class Stream:
    """The state of one entity of one pair between one source and one target tenant."""

    store: StateStore
    pair: str
    entity: str
    source_system: str
    target_system: str
    source_tenant: str
    target_tenant: str

    # ------------------------------------------------------------------ ID map

    def mapping(self, source_id: str) -> IdMapping | None:
        return self.store.id_map.get(self.pair, self.entity, self.source_tenant, source_id)

    def mappings(self, source_ids: Iterable[str]) -> dict[str, IdMapping]:
        return self.store.id_map.get_many(self.pair, self.entity, self.source_tenant, source_ids)

    def open_letters(self, source_ids: Iterable[str]) -> dict[str, DeadLetter]:
        return self.store.dead_letters.open_for_many(self.pair, self.entity, self.source_tenant, source_ids)

    def owner_of_key(self, natural_key: str) -> IdMapping | None:
        return self.store.id_map.get_by_natural_key(self.pair, self.entity, self.target_tenant, natural_key)

    def claim(self, source_id: str, *, natural_key: str, fingerprint: str | None, owner: str) -> Claim:
        return self.store.id_map.claim(
            self.pair,
            self.entity,
            self.source_tenant,
            source_id,
            self.target_tenant,
            natural_key,
            owner,
            fingerprint=fingerprint,
        )

    def renew(self, source_id: str, *, owner: str, natural_key: str, fingerprint: str | None) -> bool:
        return self.store.id_map.renew(
            self.pair,
            self.entity,
            self.source_tenant,
            source_id,
            owner=owner,
            natural_key=natural_key,
            fingerprint=fingerprint,
        )

    def complete(
        self,
        source_id: str,
        target_id: str,
        *,
        fingerprint: str | None,
        owner: str,
        target_version: str | None = None,
        source_version: str | None = None,
    ) -> IdMapping:
        return self.store.id_map.complete(
            self.pair,
            self.entity,
            self.source_tenant,
            source_id,
            target_id,
            fingerprint,
            owner=owner,
            target_version=target_version,
            source_version=source_version,
        )

    def note_source_versions(self, versions: Mapping[str, str]) -> None:
        self.store.id_map.note_source_versions(self.pair, self.entity, self.source_tenant, versions)

    def claim_many(self, intents: Sequence[Intent]) -> list[Claim]:
        """:meth:`claim` of many records, in order (fresh ones in one transaction)."""
        return self.store.id_map.claim_many(self.pair, self.entity, self.source_tenant, self.target_tenant, intents)

    def renew_many(self, intents: Sequence[Intent]) -> set[str]:
        """:meth:`renew` of many records in one transaction: the source ids still ours."""
        return self.store.id_map.renew_many(self.pair, self.entity, self.source_tenant, intents)

    def complete_many(self, done: Sequence[Intent]) -> dict[str, StateError]:
        """:meth:`complete` of many records in one transaction: what failed, by source id."""
        return self.store.id_map.complete_many(self.pair, self.entity, self.source_tenant, done)

    def abandon(self, source_id: str, *, owner: str) -> bool:
        return self.store.id_map.abandon(self.pair, self.entity, self.source_tenant, source_id, owner=owner)

    def hold(self, source_id: str, *, owner: str) -> bool:
        return self.store.id_map.hold(self.pair, self.entity, self.source_tenant, source_id, owner=owner)

    def let_go(self, source_id: str, *, owner: str) -> bool:
        return self.store.id_map.let_go(self.pair, self.entity, self.source_tenant, source_id, owner=owner)

    def reopen(self, source_id: str, *, target_id: str, owner: str) -> bool:
        return self.store.id_map.reopen(
            self.pair, self.entity, self.source_tenant, source_id, target_id=target_id, owner=owner
        )

    def release(self, source_id: str, *, owner: str) -> bool:
        return self.store.id_map.release(self.pair, self.entity, self.source_tenant, source_id, owner=owner)

    def record(
        self,
        source_id: str,
        target_id: str,
        *,
        natural_key: str | None,
        fingerprint: str,
        target_version: str | None = None,
        source_version: str | None = None,
    ) -> IdMapping:
        return self.store.id_map.record(
            self.pair,
            self.entity,
            self.source_tenant,
            source_id,
            self.target_tenant,
            target_id,
            natural_key,
            fingerprint,
            target_version,
            source_version,
        )

    # ------------------------------------------------------------------ dead letters

    def open_letter(self, source_id: str) -> DeadLetter | None:
        return self.store.dead_letters.open_for(self.pair, self.entity, self.source_tenant, source_id)

    def dead_letter(
        self, source_id: str, *, reason: str, kind: str, payload: Mapping[str, Any], run_id: str
    ) -> DeadLetter:
        return self.store.dead_letters.add(
            self.pair,
            self.entity,
            self.source_tenant,
            source_id,
            reason=reason,
            error_kind=kind,
            payload=payload,
            run_id=run_id,
        )

    def park(self, source_id: str, *, reason: str, kind: str, payload: Mapping[str, Any], run_id: str) -> DeadLetter:
        """A letter that every run re-fetches by id until the record resolves (flagged for replay)."""
        letter = self.dead_letter(source_id, reason=reason, kind=kind, payload=payload, run_id=run_id)
        self.store.dead_letters.request_replay([letter.id])
        return letter

    def letters_to_replay(self) -> list[DeadLetter]:
        return [
            letter
            for letter in self.store.dead_letters.replay_requested(self.pair)
            if letter.entity == self.entity and letter.source_tenant == self.source_tenant
        ]

    def close_letter(self, letter: DeadLetter) -> None:
        if letter.status in (LetterStatus.OPEN, LetterStatus.REPLAY_REQUESTED):
            self.store.dead_letters.mark_replayed(letter.id)

    # ------------------------------------------------------------------ audit

    def audit(
        self,
        action: AuditAction,
        *,
        source_id: str,
        target_id: str | None,
        run: Mapping[str, Any],
        summary: Mapping[str, Any],
    ) -> None:
        self.store.audit.record(self._event(action, source_id, target_id, run, summary))

    def audit_many(
        self, actions: Iterable[tuple[AuditAction, str, str | None, Mapping[str, Any]]], *, run: Mapping[str, Any]
    ) -> None:
        """``(action, source_id, target_id, summary)`` rows of one run, in one transaction."""
        self.store.audit.record_many(
            [self._event(a, source, target, run, summary) for a, source, target, summary in actions]
        )

    def _event(
        self, action: AuditAction, source: str, target: str | None, run: Mapping[str, Any], summary: Mapping[str, Any]
    ) -> AuditEvent:
        return AuditEvent(
            pair=self.pair,
            entity=self.entity,
            action=action,
            source_system=self.source_system,
            source_tenant=self.source_tenant,
            source_id=source,
            target_system=self.target_system,
            target_tenant=self.target_tenant,
            target_id=target,
            dag_id=run.get("dag_id"),
            run_id=run.get("run_id"),
            task_id=run.get("task_id"),
            try_number=run.get("try_number"),
            summary=summary,
        )
