"""The generic Airflow operators: plan (extract + match), upsert, and the run summary.

They work for any pair: each resolves its hooks from connection ids (``conn.get_hook()``, as
``HttpOperator`` does) and its :class:`~.pair.Pair` from :data:`~airflow_provider_mlconnector.pairs.PAIRS`
(explicit imports), and delegates to :class:`~airflow_provider_mlconnector.operators.engine.SyncEngine`.
XCom carries only bounded batches (``Entity.batch_size`` records), so large volumes become mapped
tasks. :func:`~.dag.sync_dag` wires them from the declaration; by hand it reads::

    writes = PlanOperator(task_id="plan_bills", pair=..., entity="bill", ...)
    results = UpsertOperator.partial(task_id="upsert_bills", ...).expand(decisions=writes.output)
"""

from __future__ import annotations

import logging
import resource
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator

from airflow_provider_mlconnector.exceptions import SyncIncompleteError
from airflow_provider_mlconnector.operators.reconcile import RECONCILE_KEY, run_reconcile

if TYPE_CHECKING:
    from airflow.sdk import Context

    # The engine (and the state store's tables under it) is imported when a task runs, not when
    # the DAG processor parses a DAG file that only declares these operators.
    from airflow_provider_mlconnector.operators.engine import BatchResult, RunInfo, SyncEngine
    from airflow_provider_mlconnector.state import StateStore
    from airflow_provider_mlconnector.state.watermarks import Window

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = (
    "read",
    "created",
    "updated",
    "matched_existing",
    "unchanged",
    "retired",
    "skipped",
    "waiting",
    "quarantined",
)


class SyncStepOperator(BaseOperator):
    """Shared plumbing: hooks from connection ids, the state store, run identity.

    :param pair: the integration's name, a key of :data:`~airflow_provider_mlconnector.pairs.PAIRS`.
    :param entity: the entity within the pair, e.g. ``bill``.
    :param source_conn_id: Airflow connection of the pair's source system.
    :param target_conn_id: Airflow connection of the pair's target system (for a reverse entity,
        the system it reads from).
    """

    template_fields: Sequence[str] = ("source_conn_id", "target_conn_id")
    ui_color = "#e8f4ea"

    def __init__(self, *, pair: str, entity: str, source_conn_id: str, target_conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pair = pair
        self.entity = entity
        self.source_conn_id = source_conn_id
        self.target_conn_id = target_conn_id

    def engine(self, context: Context) -> SyncEngine:
        from airflow_provider_mlconnector.operators.engine import SyncEngine
        from airflow_provider_mlconnector.pairs import PAIRS
        from airflow_provider_mlconnector.state import get_state_store

        store = get_state_store()
        pair = PAIRS[self.pair]
        source, target = (self._hook(conn_id, store) for conn_id in (self.source_conn_id, self.target_conn_id))
        return SyncEngine(pair, pair.entity(self.entity), source, target, store, run_info(context))

    @staticmethod
    def record_peak_memory(context: Context) -> None:
        """Push this task process's peak RSS (MiB) as XCom ``peak_rss_mb`` (read by the benchmark)."""
        peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        context["ti"].xcom_push(key="peak_rss_mb", value=peak_mb)

    @staticmethod
    def _hook(conn_id: str, store: StateStore) -> Any:
        return BaseHook.get_connection(conn_id).get_hook(hook_params={"state_store": store})  # type: ignore[no-untyped-call]


def run_info(context: Context) -> RunInfo:
    from airflow_provider_mlconnector.operators.engine import RunInfo

    ti = context["ti"]
    params = context.get("params") or {}
    return RunInfo(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1,
        try_number=getattr(ti, "try_number", 1) or 1,
        dry_run=bool(params.get("dry_run", False)),
    )


class PlanOperator(SyncStepOperator):
    """Read the source records changed in this run's window, decide each, settle what needs no write.

    The window: a backfill run uses its data interval and never moves the live watermark; a
    ``full_resync`` run reads everything; otherwise the watermark minus ``lookback``. Records
    parked or asked to be replayed (CLI ``dlq replay`` or the ``replay_dead_letters`` param) are
    re-read by id. Unchanged, skipped, parked and dead-lettered records are settled here; only
    the records that must be written to the target go on, in bounded batches, one mapped upsert
    each: a quiet run starts no upsert task at all.

    :param workers: batches matched in parallel (the target's concurrency).
    """

    def __init__(self, *, lookback: timedelta = timedelta(hours=2), workers: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lookback = lookback
        self.workers = workers

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow_provider_mlconnector.operators.engine import decisions_to_xcom

        engine = self.engine(context)
        stream = engine.stream
        params = context.get("params") or {}
        window = self._window(context, engine)
        if params.get("full_resync"):
            window = type(window)(start=None, end=window.end, is_backfill=window.is_backfill)
        replay = [int(i) for i in (params.get("replay_dead_letters") or [])]
        plan = engine.plan(window, replay_ids=replay, workers=self.workers)
        self.record_peak_memory(context)
        retry_later = plan.counts.pop("retry_later", 0)
        log.info("%s/%s: window %s: %s; %d batches to write", stream.pair, stream.entity, window,
                 dict(plan.counts), len(plan.write_batches))  # fmt: skip
        ti = context["ti"]
        ti.xcom_push(
            key="window",
            value={
                "start": window.start.isoformat() if window.start else None,
                "end": window.end.isoformat(),
                "is_backfill": window.is_backfill,
                "counts": dict(plan.counts),
                "batches": len(plan.write_batches),
                "tenant": stream.source_tenant,
            },
        )
        if retry_later:
            raise SyncIncompleteError(f"{retry_later} {self.entity} record(s) hit transient errors; retrying")
        # One XCom per batch, and only small references in the return value: each mapped upsert
        # pulls its own batch, never the whole plan (10,000 bills are ~15 MB).
        refs = []
        for index, batch in enumerate(plan.write_batches):
            key = f"batch_{index}"
            ti.xcom_push(key=key, value=decisions_to_xcom(batch))
            refs.append({"task_id": self.task_id, "key": key, "records": len(batch)})
        return refs

    def _window(self, context: Context, engine: SyncEngine) -> Window:
        stream = engine.stream
        dag_run = context.get("dag_run")
        start = end = None
        if str(getattr(dag_run, "run_type", "")).lower().endswith("backfill"):
            start, end = context.get("data_interval_start"), context.get("data_interval_end")
        return stream.store.watermarks.window(
            stream.pair, stream.entity, stream.source_tenant, lookback=self.lookback, start=start, end=end
        )


class UpsertOperator(SyncStepOperator):
    """Write one batch of decisions to the target exactly once; record-level failures are dead-lettered.

    Fails (so Airflow retries) only when some records hit transient errors; the retry resumes
    them through the ID map's write-intent protocol and cannot create duplicates.

    :param decisions: one batch reference from :class:`PlanOperator` (via ``.expand``).
    :param workers: records written in parallel within the task; give the task as many pool
        slots (``pool_slots``) so the pool still caps the vendor's concurrency across tasks.
    """

    template_fields: Sequence[str] = (*SyncStepOperator.template_fields, "decisions")

    def __init__(self, *, decisions: Any, workers: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decisions = decisions
        self.workers = workers

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_mlconnector.operators.engine import decisions_from_xcom

        result: BatchResult = self.engine(context).upsert(
            decisions_from_xcom(self.batch(context)), workers=self.workers
        )
        self.record_peak_memory(context)
        log.info("%s/%s: %s", self.pair, self.entity, dict(result.counts))
        if result.retry_later:
            raise SyncIncompleteError(
                f"{len(result.retry_later)} {self.entity} record(s) hit transient errors and will be retried: "
                + ", ".join(result.retry_later[:10])
            )
        return result.as_dict()

    def batch(self, context: Context) -> list[dict[str, Any]]:
        ref = self.decisions
        pulled = context["ti"].xcom_pull(task_ids=ref["task_id"], key=ref["key"])
        items = list(pulled or [])
        if len(items) != int(ref["records"]):
            raise SyncIncompleteError(
                f"batch {ref['key']} of {ref['task_id']} holds {len(items)} decisions, expected {ref['records']}"
            )
        return items


class SyncSummaryOperator(BaseOperator):
    """Per-entity summary (read / created / updated / unchanged / quarantined) in the log and XCom;
    advances each stream's watermark when all of its batches succeeded (never for backfills).

    :param pair: the integration.
    :param streams: entity -> (plan task id, upsert task id).
    :param reconcile: ``source_conn_id`` and ``target_conn_id`` when the pair can be reconciled:
        a run triggered with ``{"reconcile": true}`` then reconciles once every stream succeeded,
        the report in XCom key ``reconcile``.
    """

    def __init__(
        self,
        *,
        pair: str,
        streams: Mapping[str, tuple[str, str]],
        reconcile: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.pair = pair
        self.streams = dict(streams)
        self.reconcile = dict(reconcile) if reconcile else None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_mlconnector.state import get_state_store

        ti = context["ti"]
        store = get_state_store()
        summary: dict[str, Any] = {}
        failed: list[str] = []
        for entity, (plan_id, upsert_id) in self.streams.items():
            window = ti.xcom_pull(task_ids=plan_id, key="window") or {}
            results = _as_list(ti.xcom_pull(task_ids=upsert_id))
            counts: Counter[str] = Counter(window.get("counts") or {})
            for item in results:
                counts.update(item.get("counts", {}))
            summary[entity] = dict(counts)
            # A failed mapped upsert pushes no result: fewer results than batches means a failure.
            if not window or len(results) < int(window.get("batches") or 0):
                failed.append(entity)
            elif not window.get("is_backfill") and not (context.get("params") or {}).get("dry_run"):
                # Backfills never move the live watermark (a later window would skip the gap).
                store.watermarks.advance(self.pair, entity, window["tenant"], datetime.fromisoformat(window["end"]))
        log.info("%s summary:\n%s", self.pair, format_summary(summary))
        if failed:
            raise SyncIncompleteError(f"streams with failed batches: {', '.join(failed)}")
        if self.reconcile and (context.get("params") or {}).get("reconcile"):
            report = run_reconcile(self.pair, self.reconcile["source_conn_id"], self.reconcile["target_conn_id"], store)
            ti.xcom_push(key=RECONCILE_KEY, value=report.as_dict())
        return {"pair": self.pair, "entities": summary, "dead_letters_open": _open_letters(store, self.pair)}


def _as_list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return [v for v in value if isinstance(v, dict)]


def _open_letters(store: StateStore, pair: str) -> list[dict[str, Any]]:
    return [
        {"id": d.id, "entity": d.entity, "source_id": d.source_id, "reason": d.reason, "kind": d.error_kind}
        for d in store.dead_letters.list(status="open", pair=pair)
    ]


def format_summary(summary: Mapping[str, Mapping[str, int]]) -> str:
    header = f"{'entity':<14}" + "".join(f"{c:>17}" for c in SUMMARY_COLUMNS)
    rows = [header]
    for entity, counts in summary.items():
        rows.append(f"{entity:<14}" + "".join(f"{counts.get(c, 0):>17}" for c in SUMMARY_COLUMNS))
    return "\n".join(rows)
