"""Benchmark: sync N BILL bills (with their vendors) into QuickBooks through ``bill_to_quickbooks``.

Same harness as ``bench_freshbooks_to_bill.py`` (a real ``airflow standalone`` against the sandbox,
latency injected on every BILL and QuickBooks call); QuickBooks' real limits stay on (10
concurrent requests and 500 per minute per realm: the sandbox answers 429 beyond them, the DAG
uses the ``quickbooks_api`` pool of 10 slots). Reports wall times, calls per endpoint and the ratio
to the lower bound: every Vendor and Purchase Order that must exist is created in full batches of
30 (each item costing ``--per-record-ms`` on top of the call's latency), 10 calls at a time and
40 batch calls a minute.

Usage::

    python benchmarks/bench_bill_to_quickbooks.py --bills 1000 --vendors 100 --latency-ms 50
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_freshbooks_to_bill import first_run, parse_time, peak_memory, rerun, sandboxed_airflow

from airflow_provider_mlconnector.hooks.quickbooks import BATCH_MAX_ITEMS, BATCH_PER_MINUTE
from airflow_provider_mlconnector.sandbox.quickbooks import SANDBOX_REALM_ID
from airflow_provider_mlconnector.sandbox.server import SandboxControl

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "bill_to_quickbooks"
QUICKBOOKS_CONCURRENCY = 10


def written(control: SandboxControl) -> int:
    """Vendors and Purchase Orders in the QuickBooks company now."""
    books = control.state("quickbooks")[SANDBOX_REALM_ID]
    return len(books["Vendor"]) + len(books["PurchaseOrder"])


def lower_bound_s(records: int, latency_ms: float, per_record_ms: float) -> float:
    """The fastest QuickBooks allows: every record created in full batches of 30, 10 calls at a time,
    40 batch calls a minute (calls past the first minute's 40 wait for the next minute)."""
    calls = math.ceil(records / BATCH_MAX_ITEMS)
    by_latency = (calls * latency_ms + records * per_record_ms) / 1000 / QUICKBOOKS_CONCURRENCY
    by_rate = (math.ceil(calls / BATCH_PER_MINUTE) - 1) * 60.0
    return max(by_latency, by_rate)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bills", type=int, default=1000)
    parser.add_argument("--vendors", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--per-record-ms", type=float, default=5.0, help="extra latency per record of a batch call")
    parser.add_argument("--home", type=Path, default=ROOT / ".bench")
    args = parser.parse_args()

    generate = {"bill": {"vendors": args.vendors, "bills": args.bills}}
    with sandboxed_airflow(args.home, DAG_ID, generate, args.latency_ms, args.per_record_ms) as (env, control):
        before = written(control)
        run_id, first, state1, calls1 = first_run(env, control, DAG_ID)
        creates = written(control) - before
        second, state2, calls2 = rerun(env, control, DAG_ID)
        peaks = peak_memory(env, run_id, DAG_ID)

    lower_bound = lower_bound_s(creates, args.latency_ms, args.per_record_ms)
    report = {
        "bills": args.bills,
        "vendors": args.vendors,
        "latency_ms": args.latency_ms,
        "first_run": {"state": state1, "wall_s": round(first, 1)},
        "no_change_rerun": {"state": state2, "wall_s": round(second, 1), "calls": dict(calls2)},
        "calls_per_endpoint": dict(sorted(calls1.items())),
        "per_record_ms": args.per_record_ms,
        "quickbooks_records_created": creates,
        "quickbooks_calls": sum(n for route, n in calls1.items() if route.startswith("quickbooks ")),
        "calls_per_record": round(sum(calls1.values()) / max(1, args.bills), 2),
        "lower_bound_s": round(lower_bound, 1),
        "ratio_to_lower_bound": round(first / lower_bound, 2) if lower_bound else None,
        "dag_parse_s": round(parse_time(DAG_ID), 3),
        "peak_rss_mb_per_task": peaks,
    }
    print(json.dumps(report, indent=2))
    return 0 if state1 == state2 == "success" else 1


if __name__ == "__main__":
    raise SystemExit(main())
