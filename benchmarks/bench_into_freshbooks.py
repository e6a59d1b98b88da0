"""Benchmark: the pairs that write into FreshBooks (``bigcommerce_to_freshbooks``,
``expensify_to_freshbooks``, ``bamboohr_to_freshbooks``) on N generated source records.

Same harness as ``bench_freshbooks_to_bill.py`` (a real scheduler, injected latency on every call),
reporting the first run, a no-change rerun, calls per endpoint and per record, peak task memory,
DAG parse time, and the lower bound: every FreshBooks write the run needed (FreshBooks has no bulk
create: one call per client, item, invoice, mark-sent, payment, refund update, bill, expense or
vendor) times the latency, over the writers FreshBooks tasks use (``FreshBooksHook.max_concurrency``).

Usage::

    python benchmarks/bench_into_freshbooks.py bigcommerce_to_freshbooks --records 1000 --latency-ms 50
    python benchmarks/bench_into_freshbooks.py expensify_to_freshbooks --records 1000 --latency-ms 50
    python benchmarks/bench_into_freshbooks.py bamboohr_to_freshbooks --records 1000 --latency-ms 50
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_freshbooks_to_bill import first_run, parse_time, peak_memory, rerun, sandboxed_airflow

from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook

ROOT = Path(__file__).resolve().parents[1]
WRITES = ("POST", "PUT", "DELETE")

#: What each pair's N source records are: the sandbox generator's counts.
GENERATED: dict[str, Callable[[int], dict[str, dict[str, int]]]] = {
    "bigcommerce_to_freshbooks": lambda n: {"bigcommerce": {"orders": n, "customers": max(1, n // 5), "products": 50}},
    "expensify_to_freshbooks": lambda n: {"expensify": {"reports": n}},
    "bamboohr_to_freshbooks": lambda n: {"bamboohr": {"employees": n}},
}


def freshbooks_writes(calls: dict[str, int]) -> int:
    """FreshBooks write calls, not counting token refreshes."""
    return sum(
        n
        for route, n in calls.items()
        if route.startswith("freshbooks ") and route.split()[1] in WRITES and "oauth" not in route
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("pair", choices=sorted(GENERATED))
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--home", type=Path, default=ROOT / ".bench")
    args = parser.parse_args()

    generate = GENERATED[args.pair](args.records)
    with sandboxed_airflow(args.home, args.pair, generate, args.latency_ms) as (env, control):
        run_id, first, state1, calls1 = first_run(env, control, args.pair)
        memory = peak_memory(env, run_id, args.pair)
        second, state2, calls2 = rerun(env, control, args.pair)

    writes = freshbooks_writes(calls1)
    lower_bound = writes * args.latency_ms / 1000 / FreshBooksHook.max_concurrency
    report: dict[str, Any] = {
        "pair": args.pair,
        "records": args.records,
        "generated": GENERATED[args.pair](args.records),
        "latency_ms": args.latency_ms,
        "first_run": {"state": state1, "wall_s": round(first, 1)},
        "no_change_rerun": {
            "state": state2,
            "wall_s": round(second, 1),
            "freshbooks_writes": freshbooks_writes(calls2),
            "calls": dict(calls2),
        },
        "calls_per_endpoint": dict(sorted(calls1.items())),
        "calls_per_record": round(sum(calls1.values()) / max(1, args.records), 2),
        "freshbooks_writes": writes,
        "lower_bound_s": round(lower_bound, 1),
        "ratio_to_lower_bound": round(first / lower_bound, 2) if lower_bound else None,
        "peak_memory_mib": memory,
        "dag_parse_s": round(parse_time(args.pair), 3),
    }
    print(json.dumps(report, indent=2))
    return 0 if state1 == state2 == "success" else 1


if __name__ == "__main__":
    raise SystemExit(main())
