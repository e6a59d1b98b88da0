"""Benchmark: sync N BILL bills (with their vendors) into QuickBooks through ``bill_to_quickbooks``.

Same harness as ``bench_freshbooks_to_bill.py`` (a real ``airflow standalone`` against the sandbox,
latency injected on every BILL and QuickBooks call); QuickBooks' real limits stay on (10
concurrent requests and 500 per minute per realm: the sandbox answers 429 beyond them, the DAG
uses the ``quickbooks_api`` pool of 10 slots). Reports wall times, calls per endpoint and the ratio
to the lower bound: every Vendor and Purchase Order that must exist costs one QuickBooks create,
at most 10 at a time and 500 a minute.

Usage::

    python benchmarks/bench_bill_to_quickbooks.py --bills 1000 --vendors 100 --latency-ms 50
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_freshbooks_to_bill import first_run, parse_time, peak_memory, rerun

from airflow_provider_mlconnector.demo import DemoEnv, free_port, prepare, stop, wait_until_parsed
from airflow_provider_mlconnector.sandbox.server import SandboxControl

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "bill_to_quickbooks"
QUICKBOOKS_CONCURRENCY = 10
QUICKBOOKS_PER_MINUTE = 500


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bills", type=int, default=1000)
    parser.add_argument("--vendors", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--home", type=Path, default=ROOT / ".bench")
    args = parser.parse_args()

    env = DemoEnv(args.home.resolve(), free_port(8910), free_port(8090))
    stop(env)
    prepare(env, seed={})
    control = SandboxControl(env.sandbox_url)
    try:
        control.reset()
        control.seed_demo()  # both charts of accounts, the demo vendors and bills
        control.generate({"bill": {"vendors": args.vendors, "bills": args.bills}})
        for system in ("bill", "quickbooks"):
            control.latency(system, args.latency_ms)
        wait_until_parsed(env, [DAG_ID])
        run_id, first, state1, calls1 = first_run(env, control, DAG_ID)
        second, state2, calls2 = rerun(env, control, DAG_ID)
        peaks = peak_memory(env, run_id, DAG_ID)
    finally:
        stop(env)

    creates = sum(
        n
        for route, n in calls1.items()
        if route.startswith("quickbooks POST") and route.endswith(("/vendor", "/purchaseorder"))
    )
    # The physical limit: one create per record that must exist, 10 at a time, 500 a minute.
    lower_bound = max(creates * args.latency_ms / 1000 / QUICKBOOKS_CONCURRENCY, creates * 60 / QUICKBOOKS_PER_MINUTE)
    report = {
        "bills": args.bills,
        "vendors": args.vendors,
        "latency_ms": args.latency_ms,
        "first_run": {"state": state1, "wall_s": round(first, 1)},
        "no_change_rerun": {"state": state2, "wall_s": round(second, 1), "calls": dict(calls2)},
        "calls_per_endpoint": dict(sorted(calls1.items())),
        "quickbooks_writes": creates,
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
