"""
### FreshBooks -> BILL: bills become payable in BILL; BILL payments come back to FreshBooks

1. **Vendors**: FreshBooks bill vendors become BILL vendors (matched by the ID map, then by name;
   countries converted to ISO codes; a supplier is never duplicated).
2. **Bills**: FreshBooks bills become BILL bills, matched by vendor + bill number before any
   create. Each line's FreshBooks expense category is mapped to a BILL chart-of-accounts entry
   (by name, by ledger account number, or by the overrides in the Airflow Variable
   `mlconnector_freshbooks_to_bill_gl_overrides`). A bill with an unmapped line goes to the
   dead-letter queue with the reason; nothing is guessed. Archived or deleted FreshBooks bills
   are never pushed; if they were already in BILL and are still unpaid there, the BILL bill is
   archived; if BILL already paid them, they go to the dead-letter queue for an accountant.
3. **Payments back**: settled BILL payments are written to FreshBooks as bill payments against
   the original bill, exactly once per BILL bill payment (partial payments add up).

**Params**: `dry_run` (decide and report, write nothing), `full_resync` (ignore watermarks),
`replay_dead_letters` (dead-letter ids to retry after fixing the cause).

**Safe to rerun**: clearing any task, retries, `airflow backfill create --dag-id freshbooks_to_bill
--from-date ... --to-date ...` and concurrent runs never create duplicates (write intents in the
state store + natural-key lookups). BILL calls run in the `bill_api` pool (3 slots: BILL allows
3 concurrent requests per organization). Summary per entity in the `summary` task's log and XCom.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, Param

from airflow_provider_mlconnector.operators.retry_policy import sync_retry_policy
from airflow_provider_mlconnector.operators.sync import (
    ExtractOperator,
    MatchOperator,
    SyncSummaryOperator,
    UpsertOperator,
)

PAIR = "freshbooks_to_bill"
FRESHBOOKS = os.environ.get("MLCONNECTOR_FRESHBOOKS_CONN_ID", "freshbooks_default")
BILL = os.environ.get("MLCONNECTOR_BILL_CONN_ID", "bill_default")
BILL_POOL = os.environ.get("MLCONNECTOR_BILL_POOL", "bill_api")
BILL_CONCURRENCY = 3

with DAG(
    dag_id=PAIR,
    description="FreshBooks vendors and bills into BILL; BILL payments back to FreshBooks",
    schedule=os.environ.get("MLCONNECTOR_FRESHBOOKS_TO_BILL_SCHEDULE", "@hourly"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["mlconnector", "freshbooks", "bill", "accounts-payable"],
    doc_md=__doc__,
    params={
        "dry_run": Param(False, type="boolean", description="Report what would change; write nothing."),
        "full_resync": Param(False, type="boolean", description="Ignore watermarks and re-read everything."),
        "replay_dead_letters": Param(
            [], type="array", items={"type": "integer"}, description="Dead-letter ids to write again."
        ),
    },
    default_args={
        "owner": "data-team",
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "retry_policy": sync_retry_policy(),
    },
) as dag:
    streams: dict[str, tuple[str, str]] = {}
    previous = None
    # Vendors before bills (bills need the vendor map), bills before payments (payments need bills).
    for entity, source, target in (
        ("vendor", FRESHBOOKS, BILL),
        ("bill", FRESHBOOKS, BILL),
        ("payment", BILL, FRESHBOOKS),
    ):
        common = {"pair": PAIR, "entity": entity, "source_conn_id": source, "target_conn_id": target}
        extract = ExtractOperator(
            task_id=f"extract_{entity}s", pool=BILL_POOL if source == BILL else "default_pool", **common
        )
        match = MatchOperator.partial(
            task_id=f"match_{entity}s", pool=BILL_POOL if target == BILL else "default_pool", **common
        ).expand(records=extract.output)
        # BILL allows 3 concurrent requests per organization: an upsert writing to BILL takes all
        # 3 pool slots and writes 3 records at a time, so the pool still caps it across tasks.
        upsert = UpsertOperator.partial(
            task_id=f"upsert_{entity}s",
            pool=BILL_POOL if target == BILL else "default_pool",
            pool_slots=BILL_CONCURRENCY if target == BILL else 1,
            workers=BILL_CONCURRENCY,
            **common,
        ).expand(decisions=match.output)
        if previous is not None:
            previous >> extract
        previous = upsert
        streams[entity] = (extract.task_id, f"upsert_{entity}s")

    summary = SyncSummaryOperator(task_id="summary", pair=PAIR, streams=streams)
    previous >> summary
