"""On-call actions, one implementation for the ``mlconnector-state`` CLI and the Airflow UI page.

Replay only flags a letter ``replay_requested``: the pair's next DAG run re-reads the source
record by id and writes it through the normal exactly-once path. Resolve closes a letter by
hand with a note. Each action is one audit row (``replay_requested`` / ``resolved``) whose
summary names the user and where they acted (``cli`` or ``ui``), so a record's history shows
who touched it and why.

A record's history joins the audit trail (by source *or* target id) with the ID-map rows those
events name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from airflow_provider_mlconnector.state.audit import AuditAction, AuditEvent, AuditRow
from airflow_provider_mlconnector.state.dead_letters import DeadLetter
from airflow_provider_mlconnector.state.errors import NotFoundInStateError, StateError
from airflow_provider_mlconnector.state.id_map import IdMapping
from airflow_provider_mlconnector.state.store import StateStore

NOT_FOUND = "not found"


@dataclass(frozen=True)
class Actor:
    """Who acts: the Airflow user (``via="ui"``) or the operating-system user (``via="cli"``)."""

    name: str
    via: str


@dataclass(frozen=True)
class ReplayOutcome:
    """Letters flagged for the next run, and why the others were not (their status, or not found)."""

    flagged: list[int]
    skipped: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordHistory:
    """Everything the state store knows about one record id of one system."""

    system: str
    record_id: str
    events: list[AuditRow]
    mappings: list[IdMapping]


@dataclass(frozen=True)
class LetterFilter:
    """Which letters to list; ``None`` means any. ``older_than``: dead-lettered at least that long ago."""

    status: str | None = "open"
    pair: str | None = None
    entity: str | None = None
    kind: str | None = None
    older_than: timedelta | None = None


def find_letters(store: StateStore, wanted: LetterFilter, *, now: datetime | None = None) -> list[DeadLetter]:
    """Dead letters matching ``wanted``, oldest first."""
    cutoff = (now or datetime.now(timezone.utc)) - wanted.older_than if wanted.older_than else None
    return [
        letter
        for letter in store.dead_letters.list(status=wanted.status or None, pair=wanted.pair or None)
        if (not wanted.entity or letter.entity == wanted.entity)
        and (not wanted.kind or letter.error_kind == wanted.kind)
        and (cutoff is None or _aware(letter.created_at) <= cutoff)
    ]


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the store writes UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def request_replay(store: StateStore, ids: Iterable[int], actor: Actor) -> ReplayOutcome:
    """Flag open letters for replay by their pair's next run; one audit row per flagged letter."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    flagged = store.dead_letters.request_replay(wanted)
    skipped: dict[int, str] = {}
    for letter_id in wanted:
        letter = store.dead_letters.get(letter_id)
        if letter is None:
            skipped[letter_id] = NOT_FOUND
        elif letter_id in flagged:
            _audit(store, letter, AuditAction.REPLAY_REQUESTED, actor, note=None)
        else:
            skipped[letter_id] = letter.status.value
    return ReplayOutcome(flagged, skipped)


def resolve(store: StateStore, letter_id: int, note: str, actor: Actor) -> DeadLetter:
    """Close an active letter by hand; the note (what was done) goes into the letter and the audit."""
    if not note.strip():
        raise StateError("a note saying what was done is required")
    letter = store.dead_letters.resolve(letter_id, note.strip())
    _audit(store, letter, AuditAction.RESOLVED, actor, note=note.strip())
    return letter


def record_history(store: StateStore, system: str, record_id: str) -> RecordHistory:
    """Audit rows where ``record_id`` of ``system`` was source or target, and their ID-map rows."""
    events = store.audit.history(system, record_id)
    seen: dict[tuple[str, str, str, str], IdMapping] = {}
    for event in events:
        if event.source_tenant is None or event.source_id is None:
            continue
        key = (event.pair, event.entity, event.source_tenant, event.source_id)
        if key not in seen and (mapping := store.id_map.get(*key)) is not None:
            seen[key] = mapping
    return RecordHistory(system, record_id, events, list(seen.values()))


def letter_or_error(store: StateStore, letter_id: int) -> DeadLetter:
    letter = store.dead_letters.get(letter_id)
    if letter is None:
        raise NotFoundInStateError(f"no dead letter with id {letter_id}")
    return letter


def _audit(store: StateStore, letter: DeadLetter, action: AuditAction, actor: Actor, *, note: str | None) -> None:
    source_system, target_system = _systems(letter)
    mapping = store.id_map.get(letter.pair, letter.entity, letter.source_tenant, letter.source_id)
    summary: dict[str, object] = {
        "by": actor.name,
        "via": actor.via,
        "dead_letter_id": letter.id,
        "kind": letter.error_kind,
    }
    if note is not None:
        summary["note"] = note
    store.audit.record(
        AuditEvent(
            pair=letter.pair,
            entity=letter.entity,
            action=action,
            source_system=source_system,
            source_tenant=letter.source_tenant,
            source_id=letter.source_id,
            target_system=target_system,
            target_tenant=mapping.target_tenant if mapping is not None else None,
            target_id=mapping.target_id if mapping is not None else None,
            task_id=f"oncall:{actor.via}",
            summary=summary,
        )
    )


def _systems(letter: DeadLetter) -> tuple[str, str]:
    """(source, target) system of the letter's entity flow, from the pair declaration.

    Imported here, not at module level: the state store stays importable without the pairs
    (and their hooks); only naming the systems in an audit row needs them.
    """
    from airflow_provider_mlconnector.pairs import PAIRS

    pair = PAIRS.get(letter.pair)
    if pair is None:
        return "unknown", "unknown"
    try:
        entity = pair.entity(letter.entity)
    except KeyError:
        return pair.source.conn_type, pair.target.conn_type
    source, target = pair.systems(entity)
    return source.conn_type, target.conn_type
