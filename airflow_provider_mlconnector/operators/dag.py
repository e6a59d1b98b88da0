"""One call builds a pair's DAG from its declaration: ``dag = sync_dag(PAIR, schedule="@hourly")``.

Per entity, in ``after`` order: ``plan_<entity>s`` (read, decide, settle what needs no write) ->
``upsert_<entity>s`` (mapped, one per batch of records to write: none on a quiet run); a
``summary`` task at the end reports every entity, moves the watermarks and, when the run asks
(``{"reconcile": true}``) and the pair declares how, reconciles (:mod:`.reconcile`). Pools, slots and
parallel writers come from the hook classes (BILL: the ``bill_api`` pool, 3 slots, 3 writers);
connection ids from ``MLCONNECTOR_<SYSTEM>_CONN_ID`` (default ``<system>_default``); the schedule
from ``MLCONNECTOR_<PAIR>_SCHEDULE``. An entity with nothing to write maps zero upserts, and what
follows it still runs (``none_failed``): a quiet hour succeeds and says 0.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Param

from airflow_provider_mlconnector.operators.reconcile import RECONCILE_PARAM, reconcilable
from airflow_provider_mlconnector.operators.retry_policy import sync_retry_policy
from airflow_provider_mlconnector.operators.sync import PlanOperator, SyncSummaryOperator, UpsertOperator

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

    from airflow_provider_mlconnector.hooks.base import MLConnectorHook
    from airflow_provider_mlconnector.operators.pair import Entity, Pair

PARAMS = {
    "dry_run": Param(False, type="boolean", description="Report what would change; write nothing anywhere."),
    "full_resync": Param(False, type="boolean", description="Ignore watermarks and re-read everything."),
    "replay_dead_letters": Param(
        [], type="array", items={"type": "integer"}, description="Dead-letter ids to write again."
    ),
}
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-team",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
}


def conn_id(hook: type[MLConnectorHook]) -> str:
    """The connection a pair uses for a system: ``MLCONNECTOR_<TYPE>_CONN_ID`` or the hook's default."""
    return os.environ.get(f"MLCONNECTOR_{hook.conn_type.upper()}_CONN_ID", hook.default_conn_name)


def _pool(*hooks: type[MLConnectorHook]) -> str:
    """The first pool among the systems a task calls (the writer first), or the default pool."""
    return next((h.pool for h in hooks if h.pool), "default_pool")


def sync_dag(pair: Pair, *, schedule: str | None, tags: Sequence[str] = (), **dag_kwargs: Any) -> DAG:
    """The DAG of ``pair``: one extract -> match -> upsert chain per entity, then the summary."""
    schedule = os.environ.get(f"MLCONNECTOR_{pair.name.upper()}_SCHEDULE", schedule)
    connections = {"source_conn_id": conn_id(pair.source), "target_conn_id": conn_id(pair.target)}
    with DAG(
        dag_id=pair.name,
        description=pair.description or None,
        schedule=schedule,
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["mlconnector", pair.source.conn_type, pair.target.conn_type, *tags],
        doc_md=pair.doc,
        params={**PARAMS, **RECONCILE_PARAM} if reconcilable(pair) else PARAMS,
        default_args={**DEFAULT_ARGS, "retry_policy": sync_retry_policy()},
        **dag_kwargs,
    ) as dag:
        ends: dict[str, BaseOperator] = {}
        streams: dict[str, tuple[str, str]] = {}
        for entity in pair.entities:
            plan, upsert = _entity_chain(pair, entity, connections)
            for upstream in entity.after:
                ends[upstream] >> plan
            ends[entity.name] = upsert
            streams[entity.name] = (plan.task_id, upsert.task_id)
        summary = SyncSummaryOperator(
            task_id="summary", pair=pair.name, streams=streams, reconcile=connections if reconcilable(pair) else None
        )
        list(ends.values()) >> summary
    return dag


def _entity_chain(pair: Pair, entity: Entity, connections: dict[str, str]) -> tuple[BaseOperator, Any]:
    reader, writer = pair.systems(entity)
    common: dict[str, Any] = {"pair": pair.name, "entity": entity.name, **connections}
    plural = f"{entity.name}s"
    # The plan reads the source and looks records up in the target, one batch per writer slot.
    planner = next((h for h in (writer, reader) if h.pool), writer)
    plan = PlanOperator(
        task_id=f"plan_{plural}",
        pool=_pool(planner),
        pool_slots=planner.max_concurrency if planner.pool else 1,
        workers=writer.max_concurrency,
        trigger_rule="none_failed",
        **common,
    )
    # A writer with a pool takes as many slots as it writes records at once: the pool still caps
    # the vendor's concurrency across every task and DAG (BILL: 3 per organization).
    upsert = UpsertOperator.partial(
        task_id=f"upsert_{plural}",
        pool=_pool(writer),
        pool_slots=writer.max_concurrency if writer.pool else 1,
        workers=writer.max_concurrency,
        **common,
    ).expand(decisions=plan.output)
    return plan, upsert
