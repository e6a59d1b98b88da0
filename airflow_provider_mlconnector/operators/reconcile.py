"""Reconciliation: where the two systems of a pair disagree about the records it synced.

For every synced row of the ID map, the source record is fetched by its id (``Entity.fetch``)
and the target record by its id (``Reconciliation.fetch_target``); a record missing on either
side is drift, and so is whatever the entity's ``compare`` reports (an amount that differs, a
bill paid in one system and not in the other). It reads, never writes: no vendor write, no
ID-map or dead-letter change. Accountants run it before month-end close.

An entity opts in by declaring ``reconcile=Reconciliation(fetch_target=..., compare=...)``;
retired records (archived, voided or deleted on purpose) are counted, not compared.

Where it runs: the pair's own DAG, in its ``summary`` task once every stream succeeded, when the
run is triggered with ``{"reconcile": true}`` (param default False), e.g. ``airflow dags trigger
freshbooks_to_bill -c '{"reconcile": true}'``; the report is the summary's ``reconcile`` XCom. In
the summary rather than a task of its own so that an ordinary run starts no worker for it. Same
DAG, after the sync, because the DAG has ``max_active_runs=1``: no sync run writes while
it compares, so a record half-written by a concurrent run is never reported as drift (a DAG on
its own schedule would race the sync). It costs two reads per synced record (fewer where the
source is read in batches, ``fetch_sources``), which is why it is opt-in rather than hourly.
``mlconnector-state reconcile <pair>`` runs the same check from a shell and the ML Connector page
shows the latest report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import Param

from airflow_provider_mlconnector.exceptions import NotFoundError, RecordError
from airflow_provider_mlconnector.operators.pair import Entity, Hook, Pair, Record

if TYPE_CHECKING:
    from airflow_provider_mlconnector.hooks.base import MLConnectorHook
    from airflow_provider_mlconnector.state import StateStore

log = logging.getLogger(__name__)

#: the ``summary`` task's XCom key holding the report (a :class:`ReconcileReport` as a dict).
RECONCILE_KEY = "reconcile"
#: the DAG's param (added by sync_dag when the pair has reconcilable entities).
RECONCILE_PARAM = {
    "reconcile": Param(
        False, type="boolean", description="After the sync, compare every synced record in both systems (reads only)."
    )
}
#: the ID map's fingerprint of a record the integration retired on purpose (engine.RETIRED).
_RETIRED = "retired"


@dataclass(frozen=True)
class Reconciliation:
    """How to reconcile one entity: fetch its target record by id, and compare the two.

    :param fetch_target: ``(target_hook, target_id) -> record | None`` (``NotFoundError`` also
        means missing).
    :param compare: ``(source_record, target_record) -> problems``, one sentence each naming
        both values ("amount differs: FreshBooks 120.00, BILL 110.00"); empty when they agree.
    :param fetch_sources: ``(source_hook, source_ids) -> {source_id: record}``, reading the source
        records in a few calls where one read per record is dear (Expensify's exporter: two
        rate-limited calls per read); an id absent from the answer is missing there. ``None``:
        ``Entity.fetch`` per record.
    :param missing_source: why a source record may be gone, added to its drift line.
    """

    fetch_target: Callable[[Hook, str], Record | None]
    compare: Callable[[Record, Record], list[str]]
    fetch_sources: Callable[[Hook, list[str]], Mapping[str, Record]] | None = None
    missing_source: str = "no longer exists there"


@dataclass(frozen=True)
class Drift:
    """One synced record on which the two systems disagree."""

    entity: str
    source_id: str
    target_id: str
    problems: list[str]


@dataclass
class EntityReport:
    entity: str
    source_system: str
    target_system: str
    checked: int = 0
    retired: int = 0
    drift: list[Drift] = field(default_factory=list)


@dataclass
class ReconcileReport:
    """The drift of one pair; JSON-able (the task's XCom) and back."""

    pair: str
    checked_at: str
    entities: list[EntityReport]

    @property
    def drift(self) -> list[Drift]:
        return [d for e in self.entities for d in e.drift]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReconcileReport:
        entities = [
            EntityReport(**{**e, "drift": [Drift(**d) for d in e.get("drift", [])]}) for e in data.get("entities", [])
        ]
        return cls(pair=str(data["pair"]), checked_at=str(data.get("checked_at", "")), entities=entities)


def reconcilable(pair: Pair) -> list[Entity]:
    """The pair's entities that declare how to reconcile them."""
    return [e for e in pair.entities if e.reconcile is not None]


def reconcile(
    pair: Pair, source: MLConnectorHook, target: MLConnectorHook, store: StateStore, *, now: datetime | None = None
) -> ReconcileReport:
    """Compare every synced record of ``pair`` in both systems. Reads only.

    :param source: hook of the pair's source system; ``target`` of its target system (reverse
        entities swap them, as the sync does).
    """
    moment = now or datetime.now(timezone.utc)
    reports = [_reconcile_entity(pair, entity, source, target, store) for entity in reconcilable(pair)]
    report = ReconcileReport(pair.name, moment.isoformat(), reports)
    log.info("%s reconciliation:\n%s", pair.name, format_report(report))
    return report


def _reconcile_entity(
    pair: Pair, entity: Entity, source: MLConnectorHook, target: MLConnectorHook, store: StateStore
) -> EntityReport:
    from airflow_provider_mlconnector.state.id_map import MappingStatus  # not at import: DAG files parse this

    assert entity.reconcile is not None
    reader, writer = (target, source) if entity.reverse else (source, target)
    report = EntityReport(entity.name, reader.conn_type, writer.conn_type)
    synced = []
    for mapping in store.id_map.list(pair.name, entity.name, reader.tenant):
        if mapping.status is not MappingStatus.SYNCED or mapping.target_id is None:
            continue  # a write in flight (or abandoned): the sync, not this report, settles it
        if mapping.fingerprint == _RETIRED:
            report.retired += 1
        else:
            synced.append((mapping.source_id, mapping.target_id))
    source_record = _source_reader(entity, reader, [source_id for source_id, _ in synced])
    for source_id, target_id in synced:
        report.checked += 1
        target_record = _get(entity.reconcile.fetch_target, writer, target_id)
        problems = _compare(entity.reconcile, source_id, target_id, source_record(source_id), target_record, report)
        if problems:
            report.drift.append(Drift(entity.name, source_id, target_id, problems))
    return report


def _source_reader(entity: Entity, reader: MLConnectorHook, source_ids: list[str]) -> Callable[[str], Record | None]:
    """How to get one synced source record: from one batched read of them all, or by id."""
    assert entity.reconcile is not None
    if entity.reconcile.fetch_sources is None or not source_ids:
        return lambda source_id: _get(entity.fetch, reader, source_id)
    found = dict(entity.reconcile.fetch_sources(reader, source_ids))
    return found.get


def _compare(
    how: Reconciliation,
    source_id: str,
    target_id: str,
    source_record: Record | None,
    target_record: Record | None,
    r: EntityReport,
) -> list[str]:
    problems = []
    if source_record is None:
        problems.append(f"missing in {r.source_system}: {r.entity} {source_id} {how.missing_source}")
    if target_record is None:
        problems.append(f"missing in {r.target_system}: {r.entity} {target_id} no longer exists there")
    if source_record is not None and target_record is not None:
        try:
            problems += how.compare(source_record, target_record)
        except RecordError as exc:  # e.g. a record edited into something the pair cannot read
            problems.append(f"cannot be compared: {exc.reason}")
    return problems


def _get(read: Callable[[Hook, str], Record | None], hook: MLConnectorHook, record_id: str) -> Record | None:
    try:
        return read(hook, record_id)
    except NotFoundError:
        return None


def format_report(report: ReconcileReport) -> str:
    """Plain text for logs and the CLI."""
    lines = []
    for entity in report.entities:
        lines.append(
            f"{entity.entity}: {entity.checked} compared ({entity.source_system} -> {entity.target_system}), "
            f"{len(entity.drift)} with drift, {entity.retired} retired"
        )
        for drift in entity.drift:
            lines += [f"  {drift.source_id} -> {drift.target_id}: {problem}" for problem in drift.problems]
    return "\n".join(lines) or f"{report.pair}: no entity declares how to reconcile it"


def run_reconcile(
    pair_name: str, source_conn_id: str, target_conn_id: str, store: StateStore | None = None
) -> ReconcileReport:
    """:func:`reconcile` with hooks from Airflow connections and the process's state store."""
    from airflow.sdk import BaseHook

    from airflow_provider_mlconnector.pairs import PAIRS
    from airflow_provider_mlconnector.state import get_state_store

    store = store or get_state_store()
    source, target = (
        BaseHook.get_connection(conn_id).get_hook(hook_params={"state_store": store})  # type: ignore[no-untyped-call]
        for conn_id in (source_conn_id, target_conn_id)
    )
    return reconcile(PAIRS[pair_name], source, target, store)


__all__ = [
    "RECONCILE_KEY",
    "RECONCILE_PARAM",
    "Drift",
    "EntityReport",
    "ReconcileReport",
    "Reconciliation",
    "format_report",
    "reconcilable",
    "reconcile",
    "run_reconcile",
]
