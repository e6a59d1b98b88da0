"""A pair is a declaration: its entities as data, its mapping rules as small pure functions.

A pair module (``pairs/<source>_to_<target>.py``) writes only what is really its own: how a
source record becomes a target payload, its natural key, how to look it up, and the vendor
rules (an archived bill, a paid bill that changed). Everything else (claims, fencing,
dead letters, parking, audit, dry runs, summaries, the DAG) is the engine's, the same for
every pair::

    def bill_payload(bill: Record, ctx: Ctx) -> Record | Retire | Skip:
        vendor_id = ctx.target_id("vendor", bill["vendorid"])   # NotLinkedYetError parks the bill
        ...

    PAIR = Pair("freshbooks_to_bill", source=FreshBooksHook, target=BillHook, doc=__doc__, entities=(
        Entity("vendor", read=..., fetch=..., transform=vendor_payload, natural_key=..., find=...,
               create=..., update=...),
        Entity("bill", after=("vendor",), ..., retire=retire_bill),
        Entity("payment", after=("bill",), reverse=True, ...),   # BILL -> FreshBooks
    ))

    # dags/freshbooks_to_bill.py
    dag = sync_dag(freshbooks_to_bill.PAIR, schedule="@hourly", tags=["accounts-payable"])

``transform`` returns the payload to write, :class:`Retire` (the target record must be archived,
voided or deleted: the engine calls ``retire`` when it was synced, and skips it otherwise) or
:class:`Skip` (deliberately not written, with the reason). It raises ``MappingError`` for a
record that cannot be mapped (a dead letter) and ``NotLinkedYetError`` (via ``ctx``) for one
whose reference is not synced yet (parked: re-fetched by id every run until it resolves).
Anything else it raises for one bad record (a missing field, ``"N/A"`` as an amount) dead-letters
that record as ``malformed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_mlconnector.exceptions import ApiError, NotLinkedYetError, RecordError

if TYPE_CHECKING:
    from airflow_provider_mlconnector.hooks.base import MLConnectorHook
    from airflow_provider_mlconnector.operators.reconcile import Reconciliation
    from airflow_provider_mlconnector.state.id_map import IdMapping
    from airflow_provider_mlconnector.state.stream import Stream
    from airflow_provider_mlconnector.state.watermarks import Window

Record = dict[str, Any]
Hook = Any  # the pair's concrete hook classes; functions annotate them precisely


@dataclass(frozen=True)
class Retire:
    """Archive, void or delete the synced target record (the source record is gone or void)."""

    reason: str


@dataclass(frozen=True)
class Skip:
    """Deliberately not written (e.g. an unpaid order, a draft), with the reason for the audit."""

    reason: str


Outcome = Record | Retire | Skip


@dataclass(frozen=True)
class SharedKey:
    """Target records that several pairs create under one natural key, whichever meets them first
    (one FreshBooks bill vendor per person, for Expensify and BambooHR alike).

    Each pair's ID map guards only its own records: two pairs that both find no vendor for a new
    e-mail would both create one. With a shared key, a create is also claimed by the key itself,
    across pairs (in the ID map, as pair :data:`SHARED_PAIR`, entity ``name``): while one pair
    creates it, the other parks the record (``busy_elsewhere``, retried next run); once it exists,
    the other links to it instead of creating a second.

    :param name: the records' shared name, the same in every pair that declares it.

    A record another pair created is linked like one found before creating (``update_matches``).
    """

    name: str


#: the ID map's pair name for claims on shared natural keys (:class:`SharedKey`).
SHARED_PAIR = "shared"


def record_id(record: Mapping[str, Any]) -> str:
    """The default source and target id: the record's ``id`` field."""
    return str(record["id"])


@dataclass(frozen=True)
class Entity:
    """One synced entity of a pair.

    :param read: changed source records in a window: ``(source_hook, window) -> records``.
    :param fetch: one source record by id (replays, parked records): ``(source_hook, id)``.
    :param transform: ``(record, ctx) -> payload | Retire | Skip`` (see the module docstring).
    :param natural_key: ``(record, payload) -> key`` that identifies the record in the target.
    :param find: the target record with this natural key: ``(target_hook, key) -> record | None``.
    :param create: ``(target_hook, payload) -> created record``.
    :param create_many: optional bulk create ``(target_hook, payloads) -> created records`` in
        the same order; used for up to ``bulk_limit`` records per call. All or nothing (BILL's
        bulk endpoints): a refused call is halved until the refused record stands alone. Item by
        item (QuickBooks' batch): an item's answer may be its own error instead of a record, and
        only that record is dead-lettered (or looked up, or retried). A lost answer sends every
        record of the call through the lookup-before-create protocol.
    :param update: ``(target_hook, target_id, payload)``; raise ``RecordError`` (kind
        ``manual_reconciliation``) when the target no longer allows it (a paid bill).
    :param retire: ``(target_hook, target_id)``: archive / void / delete; ``None`` when the
        entity is never retired.
    :param update_matches: a target record found before creating (someone made it by hand, or
        another pair did) is brought up to date with this payload (``update``) once linked;
        ``False``: linked as it is.
    :param index: optional batch lookup ``(target_hook, payloads) -> {key: record}``, one call
        instead of a ``find`` per record.
    :param reference_index: optional batch lookup in the reference data ``prepare`` read once
        per task: ``(reference, payloads) -> {key: record}``, for a target that can only be
        searched one key at a time, so the whole table is read once per task instead (FreshBooks
        invoices by number). Takes precedence over ``index``.
    :param prepare: reference data read once per task (chart of accounts, currencies):
        ``(source_hook, target_hook) -> anything``; transform sees it as ``ctx.reference``.
    :param after: entities that must run before this one (a bill references its vendor).
    :param reverse: the entity flows back, from the pair's target system to its source.
    :param batch_size: records per mapped task.
    :param reconcile: how to compare a synced record in both systems (fetch the target by id,
        compare), for the reconciliation report (:mod:`~.reconcile`); ``None``: not reconciled.
    :param target_version: the target's revision of a record in a write's answer (QuickBooks'
        ``SyncToken``), kept in the ID map: a change read back from the target with that revision
        is this integration's own write (:meth:`Ctx.written_unchanged`). ``None``: not tracked.
    :param enrich: optional ``(source_hook, listed records) -> full records``: what ``read``'s
        listing lacks (BigCommerce orders' products and transactions), read only for the records
        whose ``source_version`` moved since their sync (a listed record at the revision last
        synced is unchanged, and nothing more is read for it). A full read (first run,
        ``full_resync``) enriches every record.
    :param source_version: ``(listed record) -> revision`` at the source (BigCommerce's
        ``date_modified``), kept in the ID map with each sync; with ``enrich``.
    :param shared: the natural key is shared with other pairs that create the same target
        records (:class:`SharedKey`); ``None``: this pair alone creates them.
    """

    name: str
    read: Callable[[Hook, Window], Iterable[Record]]
    fetch: Callable[[Hook, str], Record | None]
    transform: Callable[[Record, Ctx], Outcome]
    natural_key: Callable[[Record, Record], str]
    find: Callable[[Hook, str], Record | None]
    create: Callable[[Hook, Record], Record]
    update: Callable[[Hook, str, Record], object]
    retire: Callable[[Hook, str], object] | None = None
    create_many: Callable[[Hook, list[Record]], Sequence[Record | RecordError | ApiError]] | None = None
    bulk_limit: int = 1
    update_matches: bool = False
    index: Callable[[Hook, list[Record]], Mapping[str, Record]] | None = None
    reference_index: Callable[[Any, list[Record]], Mapping[str, Record]] | None = None
    prepare: Callable[[Hook, Hook], Any] | None = None
    source_id: Callable[[Record], str] = record_id
    target_id: Callable[[Record], str] = record_id
    after: tuple[str, ...] = ()
    reverse: bool = False
    batch_size: int = 250
    reconcile: Reconciliation | None = None
    target_version: Callable[[Record], str | None] | None = None
    enrich: Callable[[Hook, list[Record]], Iterable[Record]] | None = None
    source_version: Callable[[Record], str | None] | None = None
    shared: SharedKey | None = None


@dataclass(frozen=True)
class Pair:
    """An integration: two systems and the entities synced between them, in dependency order."""

    name: str
    source: type[MLConnectorHook]
    target: type[MLConnectorHook]
    entities: tuple[Entity, ...]
    doc: str = ""
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [e.name for e in self.entities]
        if len(set(names)) != len(names):
            raise ValueError(f"pair {self.name}: duplicate entity names {names}")
        for position, entity in enumerate(self.entities):
            earlier = set(names[:position])
            missing = [a for a in entity.after if a not in earlier]
            if missing:
                raise ValueError(f"pair {self.name}: {entity.name} runs after {missing}, declared later or absent")
            if (entity.enrich is None) != (entity.source_version is None):
                raise ValueError(f"pair {self.name}: {entity.name} declares enrich and source_version together")
            if entity.shared is not None and entity.create_many is not None:
                raise ValueError(f"pair {self.name}: {entity.name} has a shared key: its creates cannot be bulk")

    def entity(self, name: str) -> Entity:
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(f"pair {self.name!r} has no entity {name!r}; known: {[e.name for e in self.entities]}")

    def systems(self, entity: Entity) -> tuple[type[MLConnectorHook], type[MLConnectorHook]]:
        """(source hook class, target hook class) of one entity's flow."""
        return (self.target, self.source) if entity.reverse else (self.source, self.target)


@dataclass
class Ctx:
    """What a transform may know besides its record: references through the ID map, reference data.

    The pair never reads the state store itself: ``target_id`` and ``source_id`` resolve the
    records this entity references, and raise :class:`NotLinkedYetError` (the record is parked)
    while the referenced record is not synced.
    """

    source: Hook
    target: Hook
    reference: Any
    mapped: bool
    streams: Mapping[str, Stream]
    #: references this task resolved already, shared by its records (10,000 bills over 1,000
    #: vendors ask the ID map 1,000 times, not 10,000); a synced record's target id never changes.
    resolved: dict[tuple[str, str], str] = field(default_factory=dict)

    def target_id(self, entity: str, source_id: object) -> str:
        """The target id of the referenced ``entity`` record synced from ``source_id``."""
        known = self.resolved.get((entity, str(source_id)))
        if known is not None:
            return known
        mapping = self._stream(entity).mapping(str(source_id))
        if mapping is None or mapping.target_id is None:
            raise NotLinkedYetError(f"its {entity} {source_id} is not synced yet")
        self.resolved[(entity, str(source_id))] = mapping.target_id
        return mapping.target_id

    def source_id(self, entity: str, target_id: object) -> str:
        """The source id of the referenced ``entity`` record that became ``target_id``.

        For a reverse entity (payments coming back) ``target_id`` is an id in *this* entity's
        source system, which is the referenced entity's target.
        """
        return self._linked(entity, target_id).source_id

    def written_unchanged(self, entity: str, target_id: object, version: object) -> bool:
        """Whether the ``entity`` record ``target_id`` is still at the revision ``version`` this
        integration's last write left (nobody changed it in the target since)."""
        written = self._linked(entity, target_id).target_version
        return written is not None and version is not None and str(version) == written

    def _linked(self, entity: str, target_id: object) -> IdMapping:
        stream = self._stream(entity)
        mapping = stream.store.id_map.get_by_target(stream.pair, entity, stream.target_tenant, str(target_id))
        if mapping is None:
            raise NotLinkedYetError(f"its {entity} {target_id} is not linked by this integration yet")
        return mapping

    def _stream(self, entity: str) -> Stream:
        try:
            return self.streams[entity]
        except KeyError:
            raise KeyError(f"entity {entity!r} is not declared before this one") from None


__all__ = [
    "SHARED_PAIR",
    "Ctx",
    "Entity",
    "NotLinkedYetError",
    "Outcome",
    "Pair",
    "Record",
    "Retire",
    "SharedKey",
    "Skip",
    "record_id",
]
